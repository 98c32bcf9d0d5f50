// SPDX-License-Identifier: MIT
/*
 * Induced interference training (dmm_interference.h; spec interference.md
 * §1, §2). Pure computation on caller-owned structs. The energy of all four
 * classes shares one table of dot products between sources and friends, so a
 * test image costs a few thousand multiply-adds instead of the 81 x 10 x 25
 * per class of the direct formula.
 */
#include "dmm_interference.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_error.h"
#include "dmm_rng.h"

/* ---- Random numbers ---------------------------------------------------- */

void dmm_if_rng_seed(dmm_if_rng *r, uint64_t seed)
{
    dmm_rng_seed(r->s, seed);
}

uint64_t dmm_if_rng_next(dmm_if_rng *r)
{
    return dmm_rng_next(r->s);
}

double dmm_if_rng_uniform(dmm_if_rng *r)
{
    return dmm_rng_uniform(r->s);
}

uint64_t dmm_if_rng_below(dmm_if_rng *r, uint64_t n)
{
    return dmm_rng_below(r->s, n);
}

void dmm_if_shuffle(size_t *idx, size_t n, dmm_if_rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)dmm_if_rng_below(r, i);
        size_t tmp = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = tmp;
    }
}

/* ---- Sources ----------------------------------------------------------- */

void dmm_if_target(double v[DMM_IF_DIM])
{
    v[0] = 0.0;
    for (int k = 1; k < DMM_IF_DIM; k++)
        v[k] = 1.0 / 3.0;
}

int dmm_if_kind(double sim)
{
    if (sim >= DMM_IF_FRIEND_SIM)
        return DMM_IF_FRIEND;
    if (sim <= DMM_IF_FOE_SIM)
        return DMM_IF_FOE;
    return DMM_IF_STRANGER;
}

double dmm_if_eta(int kind)
{
    switch (kind) {
    case DMM_IF_FRIEND:
        return DMM_IF_ETA_FRIEND;
    case DMM_IF_FOE:
        return DMM_IF_ETA_FOE;
    default:
        return DMM_IF_ETA_STRANGER;
    }
}

void dmm_if_params_published(dmm_if_params *p)
{
    *p = (dmm_if_params){
        DMM_IF_FRIEND_SIM,
        DMM_IF_FOE_SIM,
        {DMM_IF_ETA_FRIEND, DMM_IF_ETA_STRANGER, DMM_IF_ETA_FOE}};
}

static int kind_under(const dmm_if_params *p, double sim)
{
    if (sim >= p->friend_sim)
        return DMM_IF_FRIEND;
    if (sim <= p->foe_sim)
        return DMM_IF_FOE;
    return DMM_IF_STRANGER;
}

void dmm_if_classify(dmm_if_image *img, const dmm_if_params *p)
{
    for (int s = 0; s < DMM_IF_SOURCES; s++) {
        int k = kind_under(p, img->sim[s]);
        img->kind[s] = (uint8_t)k;
        img->eta[s] = p->eta[k];
    }
}

void dmm_if_preprocess(const uint8_t pixels[DMM_IF_PIXELS], unsigned variant,
                       dmm_if_image *out)
{
    enum { CROP = 27 };
    double mean = 0.0;
    for (int y = 0; y < CROP; y++)
        for (int x = 0; x < CROP; x++)
            mean += pixels[y * DMM_IF_SIDE + x] / 255.0;
    mean /= CROP * CROP;

    double v[DMM_IF_DIM];
    dmm_if_target(v);
    for (int i = 0; i < DMM_IF_GRID; i++) {
        for (int j = 0; j < DMM_IF_GRID; j++) {
            int s = DMM_IF_GRID * i + j;
            double *f = out->f[s];
            double sum = 0.0, norm2 = 0.0;
            int raw = 0;
            for (int a = 0; a < 3; a++) {
                for (int b = 0; b < 3; b++) {
                    uint8_t px = pixels[(3 * i + a) * DMM_IF_SIDE + 3 * j + b];
                    double p = px / 255.0 - mean;
                    raw |= px;
                    f[1 + 3 * a + b] = p;
                    sum += p;
                    norm2 += p * p;
                }
            }
            int rest = (variant & DMM_IF_FIX_REST) ? raw == 0 : sum == 0.0;
            if (rest) {
                f[0] = 1.0;
                if (variant & DMM_IF_FIX_REST)
                    for (int k = 1; k < DMM_IF_DIM; k++)
                        f[k] = 0.0;
            } else {
                /* sum != 0 implies norm2 > 0; the FIX_REST case may have a
                 * non-blank patch equal to the mean (norm 0): keep zeros. */
                double inv = norm2 > 0.0 ? 1.0 / sqrt(norm2) : 0.0;
                f[0] = 0.0;
                for (int k = 1; k < DMM_IF_DIM; k++)
                    f[k] *= inv;
            }
            double sim = 0.0;
            for (int k = 0; k < DMM_IF_DIM; k++)
                sim += f[k] * v[k];
            out->sim[s] = sim;
            out->kind[s] = (uint8_t)dmm_if_kind(sim);
            out->eta[s] = dmm_if_eta(out->kind[s]);
        }
    }
}

/* ---- Geometry ---------------------------------------------------------- */

static const int corner[DMM_IF_CLASSES][2] = {
    {-5, -5}, {5, -5}, {5, 5}, {-5, 5}};

int dmm_if_dist(int s, int c)
{
    int y = s / DMM_IF_GRID - 4, x = s % DMM_IF_GRID - 4;
    return abs(y - corner[c][0]) + abs(x - corner[c][1]);
}

static const int class_digit[DMM_IF_CLASSES] = {0, 1, 2, 4};

int dmm_if_class_of_digit(int digit)
{
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        if (class_digit[c] == digit)
            return c;
    return -1;
}

int dmm_if_digit_of_class(int c)
{
    return class_digit[c];
}

/* Target positions (row, column) of each DMM_IF_AT_* layout. */
static const int at_sides[DMM_IF_CLASSES][2] = {
    {0, -5}, {5, 0}, {0, 5}, {-5, 0}};

/* The smallest k with k * k >= n (n >= 0), without floating point. */
static int ceil_sqrt(int n)
{
    int k = 0;
    while (k * k < n)
        k++;
    return k;
}

int dmm_if_geometry_make(dmm_if_geometry *g, int targets, int metric, int times)
{
    if (targets < DMM_IF_AT_CORNERS || targets > DMM_IF_AT_SIDES ||
        metric < DMM_IF_MANHATTAN || metric > DMM_IF_CHEBYSHEV || times < 1 ||
        times > DMM_IF_TIMES_MAX)
        return DMM_E_INVAL;
    const int(*at)[2] = targets == DMM_IF_AT_SIDES ? at_sides : corner;
    memset(g, 0, sizeof *g);
    g->targets = targets;
    g->metric = metric;
    g->times = times;
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int s = 0; s < DMM_IF_SOURCES; s++) {
            int dy = abs(s / DMM_IF_GRID - 4 - at[c][0]);
            int dx = abs(s % DMM_IF_GRID - 4 - at[c][1]);
            int d = metric == DMM_IF_MANHATTAN   ? dy + dx
                    : metric == DMM_IF_EUCLIDEAN ? ceil_sqrt(dy * dy + dx * dx)
                                                 : (dy > dx ? dy : dx);
            g->dist[c][s] = (uint8_t)d;
        }
    return 0;
}

void dmm_if_geometry_published(dmm_if_geometry *g)
{
    dmm_if_geometry_make(g, DMM_IF_AT_CORNERS, DMM_IF_MANHATTAN, DMM_IF_TIMES);
}

int dmm_if_geometry_nearest(const dmm_if_geometry *g, int c)
{
    int best = INT_MAX;
    for (int s = 0; s < DMM_IF_SOURCES; s++)
        if (g->dist[c][s] < best)
            best = g->dist[c][s];
    return best;
}

/* ---- Route table ------------------------------------------------------- */

static void normalise(double *row, int n)
{
    double sum = 0.0;
    for (int d = 0; d < n; d++)
        sum += row[d];
    for (int d = 0; d < n; d++)
        row[d] /= sum;
}

void dmm_if_model_init(dmm_if_model *m, const dmm_if_geometry *g, dmm_if_rng *r)
{
    /* Everything, padding and the entries beyond the horizon included, is
     * set, so that two models of the same run compare equal byte for byte. */
    memset(m, 0, sizeof *m);
    if (g)
        m->geom = *g;
    else
        dmm_if_geometry_published(&m->geom);
    int n = m->geom.times;
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int s = 0; s < DMM_IF_SOURCES; s++) {
            if (!r) {
                for (int d = 0; d < n; d++)
                    m->p[c][s][d] = 1.0 / n;
                continue;
            }
            for (int d = 0; d < n; d++)
                m->p[c][s][d] = 9.0 + dmm_if_rng_uniform(r);
            normalise(m->p[c][s], n);
        }
}

void dmm_if_model_init_random(dmm_if_model *m, dmm_if_rng *r)
{
    dmm_if_model_init(m, NULL, r);
}

void dmm_if_model_init_uniform(dmm_if_model *m)
{
    dmm_if_model_init(m, NULL, NULL);
}

/* ---- Energy ------------------------------------------------------------ */

/*
 * The energy term of the non-friends is (sum_s P_s f_s) . a with a = S / n,
 * S the sum of the n friends that have arrived. Written as
 * sum_s P_s (f_s . S) / n, it needs only the dot products f_s . f_k between
 * non-friends s and friends k, which are the same for all four classes: one
 * table per image. Each class then walks t upwards; when friends arrive the
 * running f_s . S of the non-friends already present is bumped from the
 * table, and each J_c(t) is one pass over the sources present.
 */
static void energy_classes(const dmm_if_model *m, const dmm_if_image *img,
                           int c_lo, int c_hi, double J[][DMM_IF_TIMES_MAX])
{
    uint8_t friend_rank[DMM_IF_SOURCES];
    int nfriend = 0;
    for (int s = 0; s < DMM_IF_SOURCES; s++)
        friend_rank[s] =
            img->kind[s] == DMM_IF_FRIEND ? (uint8_t)nfriend++ : 0xff;

    /* dots[s * nfriend + k] = f_s . f_(k-th friend), non-friends s only. */
    double dots[DMM_IF_SOURCES * DMM_IF_SOURCES];
    if (nfriend > 0) {
        int friends[DMM_IF_SOURCES];
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            if (friend_rank[s] != 0xff)
                friends[friend_rank[s]] = s;
        for (int s = 0; s < DMM_IF_SOURCES; s++) {
            if (friend_rank[s] != 0xff)
                continue;
            const double *fs = img->f[s];
            for (int k = 0; k < nfriend; k++) {
                const double *fk = img->f[friends[k]];
                double dot = 0.0;
                for (int e = 0; e < DMM_IF_DIM; e++)
                    dot += fs[e] * fk[e];
                dots[s * nfriend + k] = dot;
            }
        }
    }

    int times = m->geom.times;
    for (int c = c_lo; c < c_hi; c++) {
        /* Sources bucketed by their distance to c (2..18 for the corners);
         * those the horizon never reaches share the last bucket, unread. */
        const uint8_t *dist = m->geom.dist[c];
        uint8_t order[DMM_IF_SOURCES];
        int start[DMM_IF_TIMES_MAX + 2] = {0};
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            start[(dist[s] < times ? dist[s] : times) + 1]++;
        for (int t = 0; t <= times; t++)
            start[t + 1] += start[t];
        int fill[DMM_IF_TIMES_MAX + 1];
        memcpy(fill, start, sizeof fill);
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            order[fill[dist[s] < times ? dist[s] : times]++] = (uint8_t)s;

        uint8_t fr[DMM_IF_SOURCES], nf[DMM_IF_SOURCES];
        int nfr = 0, nnf = 0;
        double q[DMM_IF_SOURCES]; /* f_s . S for the non-friends present */
        for (int t = 0; t < times; t++) {
            for (int i = start[t]; i < start[t + 1]; i++) {
                int s = order[i];
                if (friend_rank[s] != 0xff) {
                    int k = friend_rank[s];
                    for (int j = 0; j < nnf; j++)
                        q[nf[j]] += dots[nf[j] * nfriend + k];
                    fr[nfr++] = (uint8_t)s;
                } else {
                    double sum = 0.0;
                    for (int j = 0; j < nfr; j++)
                        sum += dots[s * nfriend + friend_rank[fr[j]]];
                    q[s] = sum;
                    nf[nnf++] = (uint8_t)s;
                }
            }
            const double(*p)[DMM_IF_TIMES_MAX] = m->p[c];
            double fm = 0.0, rm = 0.0;
            for (int j = 0; j < nfr; j++)
                fm += p[fr[j]][t];
            if (nfr > 0) {
                for (int j = 0; j < nnf; j++)
                    rm += p[nf[j]][t] * q[nf[j]];
                rm /= nfr;
            } else {
                /* No friend yet: a = v, and f_s . v is sim_s. */
                for (int j = 0; j < nnf; j++)
                    rm += p[nf[j]][t] * img->sim[nf[j]];
            }
            J[c][t] = DMM_IF_SCALE * (fm + rm);
        }
    }
}

void dmm_if_energy(const dmm_if_model *m, const dmm_if_image *img, int c,
                   double *J)
{
    double all[DMM_IF_CLASSES][DMM_IF_TIMES_MAX];
    energy_classes(m, img, c, c + 1, all);
    memcpy(J, all[c], (size_t)m->geom.times * sizeof *J);
}

void dmm_if_scores_peaks(const dmm_if_model *m, const dmm_if_image *img,
                         unsigned variant, double score[DMM_IF_CLASSES],
                         double peak[DMM_IF_CLASSES])
{
    double J[DMM_IF_CLASSES][DMM_IF_TIMES_MAX];
    energy_classes(m, img, 0, DMM_IF_CLASSES, J);
    int times = m->geom.times;
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        /* The peak: from the first time a source reaches c (2 for the
         * corners); 0 when the horizon ends before. */
        int t0 = dmm_if_geometry_nearest(&m->geom, c);
        double top = t0 < times ? J[c][t0] : 0.0;
        for (int t = t0 + 1; t < times; t++)
            if (J[c][t] > top)
                top = J[c][t];
        if (peak)
            peak[c] = top;
        if (variant & DMM_IF_FIX_SCORE) {
            score[c] = top;
            continue;
        }
        /* Faithful: from t = 0, where nothing has arrived (J = 0), so never
         * below 0. */
        double best = J[c][0];
        for (int t = 1; t < times; t++)
            if (J[c][t] > best)
                best = J[c][t];
        if (best < 0)
            best = 0.0; /* only when a source reaches c at t = 0 */
        score[c] = best;
    }
}

void dmm_if_scores(const dmm_if_model *m, const dmm_if_image *img,
                   unsigned variant, double score[DMM_IF_CLASSES])
{
    dmm_if_scores_peaks(m, img, variant, score, NULL);
}

int dmm_if_argmax(const double score[DMM_IF_CLASSES])
{
    int best = 0;
    for (int c = 1; c < DMM_IF_CLASSES; c++)
        if (score[c] > score[best])
            best = c;
    return best;
}

int dmm_if_argmax_ties(const double score[DMM_IF_CLASSES],
                       const double peak[DMM_IF_CLASSES], int ties)
{
    int best = dmm_if_argmax(score);
    if (ties != DMM_IF_TIES_PEAK)
        return best;
    for (int c = best + 1; c < DMM_IF_CLASSES; c++)
        if (score[c] == score[best] && peak[c] > peak[best])
            best = c;
    return best;
}

int dmm_if_predict(const dmm_if_model *m, const dmm_if_image *img,
                   unsigned variant, double score[DMM_IF_CLASSES])
{
    return dmm_if_predict_ties(m, img, variant, DMM_IF_TIES_FIRST, score);
}

int dmm_if_predict_ties(const dmm_if_model *m, const dmm_if_image *img,
                        unsigned variant, int ties,
                        double score[DMM_IF_CLASSES])
{
    double local[DMM_IF_CLASSES], peak[DMM_IF_CLASSES];
    double *sc = score ? score : local;
    dmm_if_scores_peaks(m, img, variant, sc, peak);
    return dmm_if_argmax_ties(sc, peak, ties);
}

void dmm_if_train(dmm_if_model *m, const dmm_if_image *img, int c)
{
    int times = m->geom.times;
    for (int s = 0; s < DMM_IF_SOURCES; s++) {
        double *row = m->p[c][s];
        double gain = 1.0 + img->eta[s];
        for (int d = m->geom.dist[c][s]; d < times; d++)
            row[d] *= gain;
        normalise(row, times);
    }
}

void dmm_if_reachable(const dmm_if_model *m, int c, double mass[DMM_IF_SOURCES])
{
    for (int s = 0; s < DMM_IF_SOURCES; s++) {
        double sum = 0.0;
        for (int d = m->geom.dist[c][s]; d < m->geom.times; d++)
            sum += m->p[c][s][d];
        mass[s] = sum;
    }
}

/* ---- Few-shot protocol ------------------------------------------------- */

int dmm_if_pick(const uint8_t *labels, size_t n, size_t begin, size_t k,
                int random, dmm_if_rng *r, size_t *out)
{
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        int digit = class_digit[c];
        size_t avail = 0;
        for (size_t i = begin; i < n; i++)
            avail += labels[i] == digit;
        if (avail < k)
            return DMM_E_INVAL;
        size_t *dst = out + (size_t)c * k, got = 0;
        /* Selection sampling (Knuth's algorithm S): each of the remaining
         * `avail` images is taken with probability need / avail, which
         * draws a uniform k-subset in one pass without scratch memory. */
        for (size_t i = begin; i < n && got < k; i++) {
            if (labels[i] != digit)
                continue;
            if (!random || dmm_if_rng_below(r, avail) < k - got)
                dst[got++] = i;
            avail--;
        }
    }
    return 0;
}

int dmm_if_plan(const dmm_if_data *train, const dmm_if_data *test,
                const dmm_if_options *opt, dmm_if_model *model, size_t *seq,
                size_t *test_idx)
{
    if (opt->shots < 1 || opt->shots > train->n || opt->epochs < 1)
        return DMM_E_INVAL;
    size_t ntrain = DMM_IF_CLASSES * opt->shots;
    dmm_if_rng rng;
    dmm_if_rng_seed(&rng, opt->seed);
    dmm_if_model_init(model, opt->geometry, opt->init_uniform ? NULL : &rng);
    int rc = dmm_if_pick(train->labels, train->n, DMM_IF_SPLIT_BEGIN,
                         opt->shots, !opt->pick_first, &rng, seq);
    if (!rc)
        rc = dmm_if_pick(test->labels, test->n, 0, DMM_IF_TEST_PER_CLASS, 0,
                         NULL, test_idx);
    if (rc)
        return rc;
    /* Epoch e shuffles the order of epoch e - 1 (seq[0..ntrain) holds the
     * picks as drawn), as the published code shuffles one list in place. */
    for (int e = 0; e < opt->epochs; e++) {
        size_t *ep = seq + (size_t)e * ntrain;
        if (e > 0)
            memcpy(ep, ep - ntrain, ntrain * sizeof *ep);
        if (opt->order_mixed)
            dmm_if_shuffle(ep, ntrain, &rng);
    }
    return 0;
}

int dmm_if_fewshot(const dmm_if_data *train, const dmm_if_data *test,
                   const dmm_if_options *opt, dmm_if_model *model,
                   dmm_if_result *res)
{
    memset(res, 0, sizeof *res);
    if (opt->shots < 1 || opt->shots > train->n || opt->epochs < 1)
        return DMM_E_INVAL;
    size_t nseq = DMM_IF_CLASSES * opt->shots * (size_t)opt->epochs;
    size_t ntest = DMM_IF_CLASSES * (size_t)DMM_IF_TEST_PER_CLASS;
    size_t *seq = malloc(nseq * sizeof *seq);
    size_t *te = malloc(ntest * sizeof *te);
    int rc = !seq || !te ? DMM_E_NOMEM
                         : dmm_if_plan(train, test, opt, model, seq, te);
    if (rc) {
        free(seq);
        free(te);
        return rc;
    }

    dmm_if_image img;
    uint64_t steps = nseq + ntest;
    for (size_t i = 0; i < nseq; i++) {
        size_t at = seq[i];
        if (opt->progress)
            opt->progress(opt->progress_ud, i, steps);
        dmm_if_preprocess(train->images + at * DMM_IF_PIXELS, opt->variant,
                          &img);
        if (opt->params)
            dmm_if_classify(&img, opt->params);
        dmm_if_train(model, &img, dmm_if_class_of_digit(train->labels[at]));
    }
    for (size_t i = 0; i < ntest; i++) {
        size_t at = te[i];
        if (opt->progress)
            opt->progress(opt->progress_ud, nseq + i, steps);
        int truth = dmm_if_class_of_digit(test->labels[at]);
        dmm_if_preprocess(test->images + at * DMM_IF_PIXELS, opt->variant,
                          &img);
        if (opt->params)
            dmm_if_classify(&img, opt->params);
        int pred =
            dmm_if_predict_ties(model, &img, opt->variant, opt->ties, NULL);
        res->confusion[truth][pred]++;
        res->correct += pred == truth;
        res->total++;
    }
    free(seq);
    free(te);
    return 0;
}

/* ---- Double slit ------------------------------------------------------- */

static const int ds_source_pos[DMM_DS_SOURCES] = {-1, 1};
static const int ds_target_pos[DMM_DS_TARGETS] = {-2, 2};

int dmm_ds_dist(int source, int target)
{
    return abs(ds_target_pos[target] - ds_source_pos[source]);
}

int dmm_ds_geometry_make(dmm_ds_geometry *g, int times)
{
    if (times < 1 || times > DMM_DS_TIMES_MAX)
        return DMM_E_INVAL;
    memset(g, 0, sizeof *g);
    g->times = times;
    for (int s = 0; s < DMM_DS_SOURCES; s++)
        for (int t = 0; t < DMM_DS_TARGETS; t++)
            g->dist[s][t] = (uint8_t)dmm_ds_dist(s, t);
    return 0;
}

void dmm_ds_signal_make(dmm_ds_signal *sig, int in_phase, unsigned variant,
                        dmm_if_rng *r)
{
    const double pi = 3.14159265358979323846;
    const double omega = 2.0 * pi / DMM_DS_PERIOD, spread = pi / 12.0;
    double theta = in_phase ? 0.0 : pi;
    double u1 = 0.0, u2 = 0.0;
    for (int tau = 0; tau < DMM_DS_EMIT; tau++) {
        /* Spec §2: w = omega tau + theta_i + noise, the noise a phase of
         * the source for the whole sample; DMM_DS_NOISE_PER_STEP redraws it
         * at every tau (the other reading, kept for comparison). */
        if (tau == 0 || (variant & DMM_DS_NOISE_PER_STEP)) {
            u1 = 1.0 - 2.0 * dmm_if_rng_uniform(r);
            u2 = 1.0 - 2.0 * dmm_if_rng_uniform(r);
        }
        double w1 = omega * tau + u1 * spread;
        double noise2 =
            (variant & DMM_IF_FIX_NOISE) ? u2 * spread : u2 + spread;
        double w2 = omega * tau + theta + noise2;
        sig->x[0][tau][0] = sin(w1);
        sig->x[0][tau][1] = cos(w1);
        sig->x[1][tau][0] = sin(w2);
        sig->x[1][tau][1] = cos(w2);
    }
}

void dmm_ds_model_init(dmm_ds_model *m, dmm_if_rng *r)
{
    dmm_ds_model_init_geom(m, NULL, r);
}

void dmm_ds_model_init_geom(dmm_ds_model *m, const dmm_ds_geometry *geom,
                            dmm_if_rng *r)
{
    memset(m, 0, sizeof *m); /* all of it: models compare byte for byte */
    if (geom)
        m->geom = *geom;
    else
        dmm_ds_geometry_make(&m->geom, DMM_DS_TIMES);
    int n = m->geom.times;
    for (int s = 0; s < DMM_DS_SOURCES; s++)
        for (int g = 0; g < DMM_DS_TARGETS; g++) {
            double *row = m->p[s][g];
            for (int d = 0; d < n; d++)
                row[d] = r ? 9.0 + dmm_if_rng_uniform(r) : 1.0;
            normalise(row, n);
        }
}

void dmm_ds_params_published(dmm_if_params *p)
{
    *p = (dmm_if_params){
        DMM_DS_FRIEND_SIM,
        DMM_DS_FOE_SIM,
        {DMM_DS_ETA_FRIEND, DMM_DS_ETA_STRANGER, DMM_DS_ETA_FOE}};
}

/* p, or the published double-slit values in *own when p is NULL. */
static const dmm_if_params *ds_params(const dmm_if_params *p,
                                      dmm_if_params *own)
{
    if (p)
        return p;
    dmm_ds_params_published(own);
    return own;
}

void dmm_ds_energy(const dmm_ds_model *m, const dmm_ds_signal *sig,
                   double J[DMM_DS_TARGETS][DMM_DS_TIMES_MAX])
{
    dmm_ds_energy_params(m, sig, NULL, J);
}

void dmm_ds_energy_params(const dmm_ds_model *m, const dmm_ds_signal *sig,
                          const dmm_if_params *pp,
                          double J[DMM_DS_TARGETS][DMM_DS_TIMES_MAX])
{
    dmm_if_params own;
    const dmm_if_params *prm = ds_params(pp, &own);
    for (int g = 0; g < DMM_DS_TARGETS; g++) {
        for (int t = 0; t < m->geom.times; t++) {
            double fm = 0.0, rest[2] = {0.0, 0.0}, att[2] = {0.0, 0.0};
            int nfr = 0;
            for (int s = 0; s < DMM_DS_SOURCES; s++) {
                int last = t - m->geom.dist[s][g];
                if (last >= DMM_DS_EMIT)
                    last = DMM_DS_EMIT - 1;
                for (int tau = 0; tau <= last; tau++) {
                    const double *x = sig->x[s][tau];
                    double p = DMM_IF_SCALE * m->p[s][g][t - tau];
                    if (kind_under(prm, x[1]) == DMM_IF_FRIEND) {
                        fm += p;
                        att[0] += x[0];
                        att[1] += x[1];
                        nfr++;
                    } else {
                        rest[0] += p * x[0];
                        rest[1] += p * x[1];
                    }
                }
            }
            double a0 = 0.0, a1 = 1.0; /* the target vector [0, 1] */
            if (nfr > 0) {
                a0 = att[0] / nfr;
                a1 = att[1] / nfr;
            }
            J[g][t] = fm + rest[0] * a0 + rest[1] * a1;
        }
    }
}

void dmm_ds_train(dmm_ds_model *m, const dmm_ds_signal *sig, int target)
{
    dmm_ds_train_params(m, sig, target, NULL);
}

void dmm_ds_train_params(dmm_ds_model *m, const dmm_ds_signal *sig, int target,
                         const dmm_if_params *pp)
{
    dmm_if_params own;
    const dmm_if_params *prm = ds_params(pp, &own);
    int times = m->geom.times;
    for (int s = 0; s < DMM_DS_SOURCES; s++) {
        double *row = m->p[s][target];
        double dw[DMM_DS_TIMES_MAX] = {0};
        int dist = m->geom.dist[s][target];
        /* Every arrival (tau, t) with d = t - tau >= dist and t < 60. */
        for (int tau = 0; tau < DMM_DS_EMIT; tau++) {
            double e = prm->eta[kind_under(prm, sig->x[s][tau][1])];
            for (int d = dist; tau + d < times; d++)
                dw[d] += row[d] * e;
        }
        for (int d = 0; d < times; d++)
            row[d] += dw[d];
        normalise(row, times);
    }
}

int dmm_ds_predict(const dmm_ds_model *m, const dmm_ds_signal *sig,
                   double mean_J[DMM_DS_TARGETS])
{
    return dmm_ds_predict_params(m, sig, NULL, mean_J);
}

int dmm_ds_predict_params(const dmm_ds_model *m, const dmm_ds_signal *sig,
                          const dmm_if_params *p, double mean_J[DMM_DS_TARGETS])
{
    double J[DMM_DS_TARGETS][DMM_DS_TIMES_MAX], mean[DMM_DS_TARGETS];
    dmm_ds_energy_params(m, sig, p, J);
    int best = 0;
    for (int g = 0; g < DMM_DS_TARGETS; g++) {
        double sum = 0.0;
        for (int t = 0; t < m->geom.times; t++)
            sum += J[g][t];
        mean[g] = sum / m->geom.times;
        if (mean[g] > mean[best])
            best = g;
    }
    if (mean_J)
        memcpy(mean_J, mean, sizeof mean);
    return best;
}

void dmm_ds_run(uint64_t seed, unsigned variant, dmm_ds_model *model,
                dmm_ds_result *res)
{
    dmm_ds_run_params(seed, variant, NULL, model, res, NULL);
}

void dmm_ds_run_params(uint64_t seed, unsigned variant, const dmm_if_params *p,
                       dmm_ds_model *model, dmm_ds_result *res,
                       dmm_ds_trials *trials)
{
    dmm_ds_run_geom(seed, variant, p, NULL, model, res, trials);
}

void dmm_ds_run_geom(uint64_t seed, unsigned variant, const dmm_if_params *p,
                     const dmm_ds_geometry *geom, dmm_ds_model *model,
                     dmm_ds_result *res, dmm_ds_trials *trials)
{
    dmm_if_rng rng;
    dmm_ds_signal sig;
    dmm_if_rng_seed(&rng, seed);
    memset(res, 0, sizeof *res);
    dmm_ds_model_init_geom(model, geom, &rng);
    for (int phase = 1; phase >= 0; phase--)
        for (int i = 0; i < DMM_DS_SHOTS; i++) {
            dmm_ds_signal_make(&sig, phase, variant, &rng);
            dmm_ds_train_params(model, &sig, dmm_ds_target_of(phase), p);
        }
    for (int i = 0; i < DMM_DS_TRIALS; i++) {
        int truth = (int)dmm_if_rng_below(&rng, 2);
        dmm_ds_signal_make(&sig, truth == 1, variant, &rng);
        double mean[DMM_DS_TARGETS];
        int pred = dmm_ds_predict_params(model, &sig, p, mean);
        if (trials) {
            trials->truth[i] = (uint8_t)truth;
            trials->pred[i] = (uint8_t)pred;
            memcpy(trials->mean_J[i], mean, sizeof mean);
        }
        res->confusion[truth][pred]++;
        res->correct += pred == truth;
        res->total++;
    }
}
