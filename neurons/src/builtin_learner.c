// SPDX-License-Identifier: MIT
/*
 * `learner`: the induced interference target of spec interference.md §1 as
 * one neuron that computes its arrivals instead of receiving them
 * (docs/experiments.md, "The learner network").
 *
 * The `interference` neuron gets every arrival P·[1, f] through W from a
 * delay line per source: each cycle W's down movement carries a vector per
 * (source, target), and the target recovers f and its class from each one.
 * Sources emit once an episode in the MNIST experiment, so all of that is
 * fixed for the episode but the route probability P of the cycle's duration.
 * The learner holds the episode's image, classifies its sources once, and
 * each cycle reads one number per source from its routes, which stay where
 * they are in the delay-line network (W[learner][name][in][delay][source]
 * [age], an input the learner never reads as such) and which it reads
 * through Self, as it must to renormalise them anyway. Its arithmetic is the
 * direct engine's (interference.c, energy_classes), in the same order.
 * Since the table holds every age's energy, a learner with whole-episode 1
 * shows the sums of all ages at once, and images can follow a cycle apart.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

enum { IN_IMAGE, IN_IN, IN_BLOCKED, IN_TARGET, IN_ROUTES, IN_RESET, IN_LEARN };
enum {
    OUT_SCORE = DMM__TGT_SCORE,
    OUT_PEAK = DMM__TGT_PEAK,
    OUT_TOTAL = DMM__TGT_TOTAL
};
enum { FRIEND, STRANGER, FOE };
/* After the parameters both target types have. */
enum { P_WHOLE = DMM__TGT_SCALE + 1 };

/* Sources of an image, components of a vector, ages of a route row. */
enum { SRC_MAX = 1024, DIM_MAX = 64, AGES = DMM__DELAY_MAX };

/*
 * The episode's table as the state holds it, one block (vv_from_dense) of
 * max(sources, horizon) columns: what a cycle and the update read. An
 * absent entry of a block reads 0, hence the 1 + below.
 */
enum {
    EP_DIST,    /* column i: 1 + source i's first reachable age, 0: never */
    EP_KIND,    /* column i: 1 + its class */
    EP_J,       /* column t: J(t) / scale */
    EP_ARRIVES, /* column t: 2 when something arrives at t, else 1 */
    EP_ROWS
};

static const char *lstr(const dmm_fire *f, vv_label l)
{
    return vv_label_str(f->vc, l, NULL);
}

/* The age that label l spells (a registry age label), -1 for none. */
static int age_of(const dmm__builtin_labels *bl, vv_label l)
{
    if (l >= bl->age[0] && l - bl->age[0] < AGES &&
        bl->age[l - bl->age[0]] == l)
        return (int)(l - bl->age[0]);
    for (int a = 0; a < AGES; a++)
        if (bl->age[a] == l)
            return a;
    return -1;
}

/* The sources of image (borrowed, label-id order, as vv_iter gives them). */
typedef struct sources {
    size_t n;
    vv_label lab[SRC_MAX];
    vv x[SRC_MAX];
} sources;

static int sources_of(dmm_fire *f, vv image, sources *s)
{
    s->n = 0;
    if (image.num != 0)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "input image must be {source: vector}, not a "
                               "number");
    if (vv_nchildren(image) > SRC_MAX)
        return dmm__fire_failf(f, DMM_E_LIMIT,
                               "input image has %zu sources, more than %d",
                               vv_nchildren(image), SRC_MAX);
    vv_leaf lf;
    vv_iter it;
    vv_iter_init(&it, image);
    while (vv_iter_leaf(&it, &lf)) {
        memcpy(s->lab + s->n, lf.label, lf.n * sizeof *lf.label);
        for (size_t i = 0; i < lf.n; i++)
            s->x[s->n + i] = vv_leaf_child(&lf, i);
        s->n += lf.n;
    }
    while (vv_iter_next(&it, &s->lab[s->n], &s->x[s->n]))
        s->n++;
    return 0;
}

/* Column of source label l, -1 when the image has no such source. */
static int column_of(const sources *s, vv_label l)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->lab[mid] < l)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->lab[lo] == l ? (int)lo : -1;
}

/* Call fn(ud, column, row) for every route row {g: {ng: row}} of in whose
 * source ng the image has; stop at its first non-zero return. */
typedef int (*row_fn)(dmm_fire *f, void *ud, int col, vv_label ng, vv row);

static int each_row(dmm_fire *f, vv in, const sources *s, row_fn fn, void *ud)
{
    vv_iter ig, in_;
    vv_label g, ng;
    vv byname, row;
    vv_iter_init(&ig, in);
    while (vv_iter_next(&ig, &g, &byname)) {
        /* its leaves walked beside the image's sources (both sorted) */
        vv_leaf lf;
        size_t j = 0;
        vv_iter_init(&in_, byname);
        while (vv_iter_leaf(&in_, &lf))
            for (size_t i = 0; i < lf.n && j < s->n; i++) {
                while (j < s->n && s->lab[j] < lf.label[i])
                    j++;
                if (j == s->n || s->lab[j] != lf.label[i])
                    continue;
                int rc = fn(f, ud, (int)j, lf.label[i], vv_leaf_child(&lf, i));
                if (rc)
                    return rc;
            }
        while (vv_iter_next(&in_, &ng, &row)) { /* a dense level */
            int col = column_of(s, ng);
            int rc = col < 0 ? 0 : fn(f, ud, col, ng, row);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- the episode: what the direct engine computes once an image -------- */

/* x's children as a leaf of numbers (true), else false. */
static bool flat_view(vv x, vv_leaf *lf)
{
    return vv_leaf_view(x, lf) && !lf->map;
}

/* Entry (a, x) of a route row into the scan below. */
static inline void row_entry(int a, double x, double *out, size_t stride,
                             int *first, int *end)
{
    *first = a < *first ? a : *first;
    *end = a + 1 > *end ? a + 1 : *end;
    out[(size_t)a * stride] += x;
}

/* A route row's ages present, as the first and one past the last, and its
 * route probabilities P added at out[age · stride]; false when some entry
 * is not {age: number}. */
static bool row_scan(const dmm__builtin_labels *bl, vv row, double *out,
                     size_t stride, int *first, int *end)
{
    *first = AGES;
    *end = 0;
    if (!row.map)
        return false; /* a bare number: a weight, not routes by age */
    vv_dense_level dl;
    vv_leaf lf;
    if (vv_dense_level_view(row, &dl)) { /* ages "0" .. by position */
        if (dl.map || dl.n > AGES)
            return false;
        for (size_t a = 0; a < dl.n; a++)
            if (dl.num[a] != 0)
                row_entry((int)a, dl.num[a], out, stride, first, end);
        return true;
    }
    vv_iter it; /* not a dense level: leaves */
    vv_iter_init(&it, row);
    while (vv_iter_leaf(&it, &lf))
        for (size_t k = 0; k < lf.n; k++) {
            int a = age_of(bl, lf.label[k]);
            if (a < 0 || (lf.map && lf.map[k]))
                return false;
            row_entry(a, lf.num[k], out, stride, first, end);
        }
    return true;
}

/*
 * What an episode reads of the routes: each column's distance, the route
 * probabilities by age (rows from two source types add up) and, in column
 * n of an age, 1 when some P of that age is not 0. They depend on the routes
 * and the image's source names only, so an episode keeps them (its
 * `masses`) for the next image while both stay the same.
 */
typedef struct episode {
    const dmm__builtin_labels *bl;
    const sources *s;
    int horizon;
    int dist[SRC_MAX]; /* of each column: first reachable age, AGES: never */
    const double *p;   /* p[t · stride + i]: P of age t < horizon, column i;
                          p[t · stride + n]: 1 when one of them is not 0 */
    size_t stride;
    double *scan; /* the scan's own rows (row_reach), or NULL */
} episode;

/* A reachable row: its first age is the source's distance, its last sets
 * the horizon; its P go to e->scan. */
static int row_reach(dmm_fire *f, void *ud, int col, vv_label ng, vv row)
{
    episode *e = ud;
    int first, end;
    if (!row_scan(e->bl, row, e->scan + col, e->stride, &first, &end))
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "route row %s of input in must be {age 0..%d: "
                               "number}",
                               lstr(f, ng), AGES - 1);
    e->dist[col] = first < e->dist[col] ? first : e->dist[col];
    e->horizon = end > e->horizon ? end : e->horizon;
    return 0;
}

/* The components of v and of every source, label-id order, into comp. */
static int components(dmm_fire *f, vv v, const sources *s, vv_label *comp,
                      int *dim)
{
    int n = 0;
    vv_leaf last = {0};
    for (size_t i = 0; i <= s->n; i++) {
        vv x = i < s->n ? s->x[i] : v;
        vv_leaf lf;
        bool flat = flat_view(x, &lf);
        if (flat && lf.n == last.n &&
            !memcmp(lf.label, last.label, lf.n * sizeof *lf.label))
            continue; /* the labels of the one before (the usual case) */
        if (flat)
            last = lf;
        vv_iter it;
        vv_label l;
        vv c;
        vv_iter_init(&it, x);
        while (vv_iter_next(&it, &l, &c)) {
            if (c.map)
                return dmm__fire_failf(
                    f, DMM_E_INVAL,
                    "%s%s must be a flat vector {component: number}",
                    i < s->n ? "source " : "input target",
                    i < s->n ? lstr(f, s->lab[i]) : "");
            int k = n;
            while (k > 0 && comp[k - 1] > l)
                k--;
            if (k > 0 && comp[k - 1] == l)
                continue;
            if (n == DIM_MAX)
                return dmm__fire_failf(f, DMM_E_LIMIT,
                                       "more than %d vector components in "
                                       "the image and the target",
                                       DIM_MAX);
            memmove(comp + k + 1, comp + k, (size_t)(n - k) * sizeof *comp);
            comp[k] = l;
            n++;
        }
    }
    *dim = n;
    return 0;
}

/* x as a dense array over comp (0.0 where absent), each entry / div. Every
 * label of x is in comp (components). */
static void dense(vv x, const vv_label *comp, int dim, double div, double *out)
{
    vv_leaf lf;
    bool flat = flat_view(x, &lf);
    if (flat && lf.n == (size_t)dim) {
        /* every component: x's labels are comp (both sorted, x's in comp);
         * x / 1 is x */
        if (div == 1)
            memcpy(out, lf.num, (size_t)dim * sizeof *out);
        else
            for (int i = 0; i < dim; i++)
                out[i] = lf.num[i] / div;
        return;
    }
    int k = 0;
    for (int e = 0; e < dim; e++)
        out[e] = 0.0;
    if (flat) {
        for (size_t i = 0; i < lf.n; i++) {
            while (comp[k] != lf.label[i])
                k++;
            out[k] = lf.num[i] / div;
        }
        return;
    }
    vv_iter it;
    vv_label l;
    vv c;
    vv_iter_init(&it, x);
    while (vv_iter_next(&it, &l, &c)) {
        while (comp[k] != l)
            k++;
        out[k] = c.num / div;
    }
}

/*
 * J(t) / scale at age t, from the masses P · m of age t (p: P by column; m:
 * the sources' scalar parts, NULL when all are 1) of the friends fr and the
 * non-friends nf arrived, each in order of arrival: friends' mass +
 * non-friends' mass · q / nfr, q = f · (the friends arrived), or · (f · v) =
 * sim before any friend, summed as energy_classes does; *arrives 2 when some
 * mass is not 0, else 1. With every m 1 a mass is P, and P of age t is not 0
 * only from a source's distance on (its first route): then some mass is not
 * 0 when some P of the age is not (any, the caller's).
 */
static void energy_of(const int *fr, int nfr, const int *nf, int nnf,
                      const double *q, const double *sim, const double *p,
                      const double *m, bool any, double *u, double *arrives)
{
    const double *c = nfr > 0 ? q : sim;
    double fm = 0.0, rm = 0.0;
    bool some = false;
    if (m) {
        for (int j = 0; j < nfr; j++) {
            double mass = p[fr[j]] * m[fr[j]];
            some |= mass != 0;
            fm += mass;
        }
        for (int j = 0; j < nnf; j++) {
            double mass = p[nf[j]] * m[nf[j]];
            some |= mass != 0;
            rm += mass * c[nf[j]];
        }
    } else {
        for (int j = 0; j < nfr; j++)
            fm += p[fr[j]];
        for (int j = 0; j < nnf; j++)
            rm += p[nf[j]] * c[nf[j]];
        some = any;
    }
    if (nfr > 0)
        rm /= nfr;
    *u = fm + rm;
    *arrives = some ? 2 : 1;
}

/*
 * The table of an episode (new, in *table): each source's first age and
 * class, each age's J / scale and arrival mark (EP_*). Made as
 * energy_classes of interference.c makes the energies, step for step:
 * classes by f · v against the thresholds, the dot products of non-friends
 * with friends, the order of arrival (by first age, then column), and at
 * each age the arrivals of that age, the non-friends' running f · (friends
 * so far), then the sums, with the masses P · m of the routes in now.
 */
static int episode_table(dmm_fire *f, const sources *s, const episode *e,
                         vv *table)
{
    vv_label comp[DIM_MAX];
    int ndim = 0;
    vv target = dmm_fire_in(f, IN_TARGET);
    int rc = components(f, target, s, comp, &ndim);
    if (rc)
        return rc;
    size_t n = s->n, dim = (size_t)ndim, h = (size_t)e->horizon;
    size_t width = n > h ? n : h; /* the state's block */
    double *fv =
        malloc((2 * n * dim + dim + 3 * n + EP_ROWS * width) * sizeof *fv);
    if (!fv)
        return dmm__fire_fail(f, DMM_E_NOMEM);
    double *v = fv + n * dim, *sim = v + dim, *dots = NULL;
    double *q = sim + n, *ep = q + n, *ft = ep + EP_ROWS * width;
    double *mbuf = ft + n * dim, *m = NULL; /* the scalar parts, unless 1 */
    /* the block's entries past what is written below: sources' rows past
     * n, ages' rows past the horizon */
    for (size_t r = 0; r < EP_ROWS; r++) {
        size_t from = r == EP_DIST || r == EP_KIND ? n : h;
        memset(ep + r * width + from, 0, (width - from) * sizeof *ep);
    }
    dense(target, comp, ndim, 1.0, v);
    double th_friend = dmm_fire_param(f, DMM__TGT_FRIEND);
    double th_foe = dmm_fire_param(f, DMM__TGT_FOE);

    /* Classes, and friends ranked in column order (interference.c's
     * friend_rank). */
    int kind[SRC_MAX], rank[SRC_MAX], friends[SRC_MAX], nfriend = 0;
    for (size_t i = 0; i < n; i++) {
        double *fi = fv + i * dim, si = 0.0;
        dense(s->x[i], comp, ndim, s->x[i].num, fi);
        for (size_t k = 0; k < dim; k++)
            si += fi[k] * v[k];
        kind[i] = si >= th_friend ? FRIEND : si <= th_foe ? FOE : STRANGER;
        rank[i] = kind[i] == FRIEND ? nfriend : -1;
        if (kind[i] == FRIEND)
            friends[nfriend++] = (int)i;
        sim[i] = si;
        ep[EP_DIST * width + i] = e->dist[i] < AGES ? e->dist[i] + 1 : 0;
        ep[EP_KIND * width + i] = kind[i] + 1;
        mbuf[i] = s->x[i].num;
        m = mbuf[i] != 1 ? mbuf : m;
    }
    /* dots[i · nfriend + k] = f_i · f_(k-th friend), non-friends i: each
     * summed over the components in order from 0.0, as a plain dot product,
     * all the friends' at once (ft: their vectors by component), a loop
     * the compiler makes vector. A vector the same bits as the last one
     * computed, or as the last one found twice, has that one's row: an
     * image's blank patches all have one vector. */
    size_t nfr_ = (size_t)nfriend, vbytes = dim * sizeof *fv;
    if (nfr_ && !(dots = malloc(n * nfr_ * sizeof *dots))) {
        free(fv);
        return dmm__fire_fail(f, DMM_E_NOMEM);
    }
    for (size_t k = 0; k < nfr_; k++)
        for (size_t c = 0; c < dim; c++)
            ft[c * nfr_ + k] = fv[(size_t)friends[k] * dim + c];
    const double *last = NULL, *twice = NULL;
    size_t last_i = 0, twice_i = 0;
    for (size_t i = 0; i < n; i++) {
        if (rank[i] >= 0)
            continue;
        double *row = dots + i * nfr_;
        const double *a = fv + i * dim;
        if (twice && !memcmp(a, twice, vbytes)) {
            memcpy(row, dots + twice_i * nfr_, nfr_ * sizeof *row);
            continue;
        }
        if (last && !memcmp(a, last, vbytes)) {
            memcpy(row, dots + last_i * nfr_, nfr_ * sizeof *row);
            twice = last;
            twice_i = last_i;
            continue;
        }
        for (size_t k = 0; k < nfr_; k++)
            row[k] = 0.0;
        for (size_t c = 0; c < dim; c++)
            for (size_t k = 0; k < nfr_; k++)
                row[k] += a[c] * ft[c * nfr_ + k];
        last = a;
        last_i = i;
    }
    /* The order of arrival (a counting sort by first age, stable). */
    int order[SRC_MAX], start[AGES + 1] = {0}, reach = 0;
    for (size_t i = 0; i < n; i++)
        if (e->dist[i] < e->horizon)
            start[e->dist[i] + 1]++;
    for (int t = 0; t < AGES; t++)
        start[t + 1] += start[t];
    for (size_t i = 0; i < n; i++)
        if (e->dist[i] < e->horizon) {
            order[start[e->dist[i]]++] = (int)i;
            reach++;
        }
    /* Each age t: its arrivals, then the sums. */
    int fr[SRC_MAX], nf[SRC_MAX], nfr = 0, nnf = 0, next = 0;
    for (int t = 0; t < e->horizon; t++) {
        for (; next < reach && e->dist[order[next]] == t; next++) {
            int i = order[next];
            if (rank[i] >= 0) {
                for (int j = 0; j < nnf; j++)
                    q[nf[j]] +=
                        dots[(size_t)nf[j] * (size_t)nfriend + (size_t)rank[i]];
                fr[nfr++] = i;
            } else {
                double sum = 0.0;
                for (int j = 0; j < nfr; j++)
                    sum +=
                        dots[(size_t)i * (size_t)nfriend + (size_t)rank[fr[j]]];
                q[i] = sum;
                nf[nnf++] = i;
            }
        }
        const double *pt = e->p + (size_t)t * e->stride;
        energy_of(fr, nfr, nf, nnf, q, sim, pt, m, pt[n] != 0,
                  &ep[EP_J * width + (size_t)t],
                  &ep[EP_ARRIVES * width + (size_t)t]);
    }
    size_t dims[2] = {EP_ROWS, width};
    rc = vv_from_dense(f->vc, 2, dims, ep, table);
    free(dots);
    free(fv);
    if (rc)
        return rc == DMM_E_NONFINITE
                   ? dmm__fire_failf(f, rc,
                                     "the image's similarities or energies "
                                     "are not finite")
                   : dmm__fire_fail(f, rc);
    return 0;
}

/* ---- one cycle ----------------------------------------------------------- */

/* The table of the episode as an array: a view of its block when it is held
 * as one, else a copy (buf, to free). */
typedef struct table_view {
    const double *data;
    size_t rows, cols, stride;
    size_t n; /* sources */
    double *buf;
} table_view;

/* Block v of rows × cols as an array (n sources): a view when it is held as
 * one, else a copy; refused, naming it "episode <what>", when it is not. */
static int block_open(dmm_fire *f, vv v, size_t rows, size_t cols, size_t n,
                      const char *what, table_view *tv)
{
    *tv = (table_view){.n = n};
    if (vv_dense_view(v, &tv->rows, &tv->cols, &tv->stride, &tv->data) &&
        tv->rows == rows && tv->cols == cols)
        return 0;
    size_t dims[2] = {rows, cols};
    if (!(tv->buf = malloc(rows * cols * sizeof *tv->buf)))
        return dmm__fire_fail(f, DMM_E_NOMEM);
    if (vv_dense_read(f->vc, v, 2, dims, tv->buf)) {
        free(tv->buf);
        tv->buf = NULL;
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "episode %s is not the %zu x %zu block of "
                               "its image",
                               what, rows, cols);
    }
    tv->data = tv->buf;
    tv->rows = rows;
    tv->cols = tv->stride = cols;
    return 0;
}

static int table_open(dmm_fire *f, vv table, size_t n, size_t h, table_view *tv)
{
    return block_open(f, table, EP_ROWS, n > h ? n : h, n, "table", tv);
}

/* Entry (r, c) of an open table (r < its rows, c < its columns). */
static inline double cell(const table_view *tv, size_t r, size_t c)
{
    return tv->data[r * tv->stride + c];
}

/* J(t) of an episode at age t < its horizon, from its table: the
 * energies were summed when the table was made, from the routes it was made
 * from (made again when they change); the scale is this cycle's. *any:
 * whether anything arrives at t. */
static int energy_at(dmm_fire *f, const table_view *tv, int t, double scale,
                     double *j, bool *any)
{
    double a = cell(tv, EP_ARRIVES, (size_t)t);
    if (a != 1 && a != 2)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "episode table does not belong to its image "
                               "(arrival mark %g at age %d)",
                               a, t);
    *j = scale * cell(tv, EP_J, (size_t)t);
    *any = a == 2;
    return 0;
}

/* ---- learning ------------------------------------------------------------ */

typedef struct gains {
    const sources *s;
    const table_view *tv;
    double eta[3];
} gains;

/* A row of a source of the episode changes by its class's 1 + eta. */
static bool gain_of(void *ud, vv_label ng, double *gain, vv *add)
{
    const gains *g = ud;
    int col = column_of(g->s, ng);
    double kind = col < 0 ? 0 : cell(g->tv, EP_KIND, (size_t)col);
    if (!(kind >= 1 && kind <= 3) || cell(g->tv, EP_DIST, (size_t)col) == 0)
        return false; /* not in the image, or never arrived */
    *gain = 1.0 + g->eta[(int)kind - 1];
    *add = VV_ZERO;
    return true;
}

/* ---- the neuron ---------------------------------------------------------- */

/*
 * An episode as the state holds it, made once an image (and again when the
 * routes change): {image: the sources' vectors, routes: the rows in of W it
 * was made from (shared with W, to see a change), table: the block above,
 * horizon: one past the last age that arrives, masses: what it read of the
 * routes, a block of 1 + horizon rows by 1 + sources: 1 + the source's
 * distance (0: never), then P of each age and a last column of 1 where one
 * is not 0}. The next image with the same sources takes the masses over
 * while the routes stay the same node.
 */
typedef struct held_episode {
    vv image, routes, table, masses; /* borrowed */
    double horizon;
} held_episode;

static int episode_read(dmm_fire *f, vv ep, held_episode *e)
{
    const dmm__builtin_labels *bl = dmm__builtin_labels_of(f->type);
    const vv_label *in_l = f->type->in;
    *e = (held_episode){vv_child(ep, in_l[IN_IMAGE]),
                        vv_child(ep, in_l[IN_ROUTES]), vv_child(ep, bl->table),
                        vv_child(ep, bl->masses), 0};
    int rc = dmm__fire_number(f, vv_child(ep, bl->horizon), "episode ",
                              bl->horizon, &e->horizon);
    if (!rc && !(e->horizon >= 0 && e->horizon <= AGES &&
                 e->horizon == floor(e->horizon)))
        rc = dmm__fire_failf(f, DMM_E_INVAL,
                             "episode horizon must be an integer 0..%d, not "
                             "%g",
                             AGES, e->horizon);
    return rc;
}

static bool same(vv a, vv b)
{
    return a.num == b.num && a.map == b.map;
}

/* Whether image has exactly the sources s has, in the same order. */
static bool same_sources(vv image, const sources *s)
{
    vv_leaf lf;
    vv_iter it;
    vv_label l;
    vv x;
    size_t i = 0;
    vv_iter_init(&it, image);
    while (vv_iter_leaf(&it, &lf)) {
        if (lf.n > s->n - i ||
            memcmp(lf.label, s->lab + i, lf.n * sizeof *lf.label))
            return false;
        i += lf.n;
    }
    while (vv_iter_next(&it, &l, &x))
        if (i >= s->n || s->lab[i++] != l)
            return false;
    return i == s->n;
}

/* The masses of the last episode into e (mv: their view, to close): when
 * they were read from routes in, for the sources of s. 0, or 1 when they
 * cannot be taken over, or a refusal of masses that do not fit. */
static int masses_kept(dmm_fire *f, const held_episode *old, vv in,
                       const sources *s, episode *e, table_view *mv)
{
    if (vv_is_zero(old->masses) || !same(old->routes, in) ||
        !same_sources(old->image, s))
        return 1;
    size_t h = (size_t)old->horizon;
    int rc = block_open(f, old->masses, 1 + h, s->n + 1, s->n, "masses", mv);
    if (rc)
        return rc;
    for (size_t t = 0; t < h; t++) {
        double any = mv->data[(1 + t) * mv->stride + s->n];
        if (any != 0 && any != 1)
            return dmm__fire_failf(f, DMM_E_INVAL,
                                   "episode masses mark age %zu with %g, not "
                                   "0 or 1",
                                   t, any);
    }
    for (size_t i = 0; i < s->n; i++) {
        double d = mv->data[i];
        if (!(d >= 0 && d <= (double)h && d == (double)(int)d))
            return dmm__fire_failf(f, DMM_E_INVAL,
                                   "episode masses give source %s the "
                                   "distance %g, outside its horizon %zu",
                                   lstr(f, s->lab[i]), d - 1, h);
        e->dist[i] = d > 0 ? (int)d - 1 : AGES;
    }
    e->horizon = (int)h;
    e->p = mv->data + mv->stride;
    e->stride = mv->stride;
    return 0;
}

/* The masses read from routes in into e (its scan rows, to free) and, as
 * the block the episode keeps, into *masses (new; zero when nothing
 * arrives). */
static int masses_read(dmm_fire *f, vv in, episode *e, vv *masses)
{
    size_t n = e->s->n, w = n + 1;
    /* row 0: the distances once known, then AGES rows of P; column n */
    if (!(e->scan = calloc(w * (1 + AGES), sizeof *e->scan)))
        return dmm__fire_fail(f, DMM_E_NOMEM);
    e->stride = w;
    e->p = e->scan + w;
    e->scan += w; /* row_reach writes P from row 1 */
    e->horizon = 0;
    for (size_t i = 0; i < n; i++)
        e->dist[i] = AGES;
    int rc = each_row(f, in, e->s, row_reach, e);
    e->scan -= w;
    if (rc || e->horizon == 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        e->scan[i] = e->dist[i] < AGES ? e->dist[i] + 1 : 0;
    for (int t = 0; t < e->horizon; t++) {
        double *row = e->scan + (size_t)(1 + t) * w;
        bool any = false;
        for (size_t i = 0; i < n; i++)
            any |= row[i] != 0;
        row[n] = any;
    }
    size_t dims[2] = {1 + (size_t)e->horizon, w};
    rc = vv_from_dense(f->vc, 2, dims, e->scan, masses);
    return rc == DMM_E_NONFINITE
               ? dmm__fire_failf(f, rc, "a route of input in is not finite")
           : rc ? dmm__fire_fail(f, rc)
                : 0;
}

/* The episode of image with the routes in now (new, in *out), taking the
 * masses of the last one (old) over when they fit. */
static int episode_make(dmm_fire *f, vv image, vv in, const held_episode *old,
                        vv *out)
{
    const dmm__builtin_labels *bl = dmm__builtin_labels_of(f->type);
    sources *s = malloc(sizeof *s);
    episode *e = malloc(sizeof *e); /* its dist: what masses_* set */
    table_view mv = {0};
    vv table = VV_ZERO, masses = VV_ZERO;
    if (e)
        e->scan = NULL;
    int rc = s && e ? sources_of(f, image, s) : dmm__fire_fail(f, DMM_E_NOMEM);
    if (rc)
        goto done;
    e->bl = bl;
    e->s = s;
    for (size_t i = 0; i < s->n; i++)
        if (s->x[i].num == 0 || !isfinite(s->x[i].num)) {
            rc = dmm__fire_failf(f, DMM_E_INVAL,
                                 "source %s has no scalar part (the route "
                                 "mass: every source vector must carry the "
                                 "scalar 1)",
                                 lstr(f, s->lab[i]));
            goto done;
        }
    if ((rc = masses_kept(f, old, in, s, e, &mv)) == 0)
        masses = vv_ref(old->masses);
    else if (rc == 1)
        rc = masses_read(f, in, e, &masses);
    if (rc || s->n == 0 || (rc = episode_table(f, s, e, &table)))
        goto done;
    const vv_label *in_l = f->type->in;
    vv_label l[5] = {in_l[IN_IMAGE], in_l[IN_ROUTES], bl->table, bl->horizon,
                     bl->masses};
    vv v[5] = {vv_ref(image), vv_ref(in), table, vv_number(e->horizon), masses};
    table = masses = VV_ZERO;
    rc = dmm__fire_map(f, 5, l, v, out);
done:
    free(mv.buf);
    if (e)
        free(e->scan); /* NULL unless read */
    vv_free(f->vc, table);
    vv_free(f->vc, masses);
    free(e);
    free(s);
    return rc;
}

/* A training episode's change of the routes (new, in *delta). */
static int learned(dmm_fire *f, vv image, const table_view *tv, vv routes,
                   vv *delta)
{
    sources *s = malloc(sizeof *s);
    if (!s)
        return dmm__fire_fail(f, DMM_E_NOMEM);
    int rc = sources_of(f, image, s);
    if (!rc && s->n != tv->n)
        rc = dmm__fire_failf(f, DMM_E_INVAL,
                             "episode table has %zu columns for an image of "
                             "%zu sources",
                             tv->n, s->n);
    gains g = {s,
               tv,
               {dmm_fire_param(f, DMM__TGT_ETA_FRIEND),
                dmm_fire_param(f, DMM__TGT_ETA_STRANGER),
                dmm_fire_param(f, DMM__TGT_ETA_FOE)}};
    size_t matched;
    if (!rc)
        rc = dmm__routes_commit(f, f->type->in[IN_IN], f->type->in[IN_BLOCKED],
                                routes, gain_of, &g, &matched, delta);
    free(s);
    return rc;
}

static int fire_learner(dmm_fire *f)
{
    const dmm__builtin_labels *bl = dmm__builtin_labels_of(f->type);
    const vv_label *out_l = f->type->out;
    vv st = f->state;
    double reset = 0, learn = 0, learning, age;
    dmm__target_sums sums;
    bool whole = dmm_fire_param(f, P_WHOLE) != 0;
    int rc;
    if ((rc = dmm__fire_number(f, dmm_fire_in(f, IN_RESET), "input ",
                               f->type->in[IN_RESET], &reset)) ||
        (rc = dmm__fire_number(f, dmm_fire_in(f, IN_LEARN), "input ",
                               f->type->in[IN_LEARN], &learn)))
        return rc;
    if (st.num != 0)
        return dmm__fire_failf(f, DMM_E_INVAL, "state must be a map");
    struct {
        vv_label l;
        double *x;
    } nums[] = {
        {out_l[OUT_SCORE], &sums.score},    {out_l[OUT_PEAK], &sums.peak},
        {out_l[OUT_TOTAL], &sums.total},    {bl->count, &sums.count},
        {f->type->in[IN_LEARN], &learning}, {bl->age_now, &age}};
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
        if ((rc = dmm__fire_number(f, vv_child(st, nums[k].l), "state ",
                                   nums[k].l, nums[k].x)))
            return rc;
    if (!(age >= 0 && age <= AGES && age == floor(age)))
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "state age must be an integer 0..%d, not %g",
                               AGES, age);
    vv routes = dmm_fire_in(f, IN_ROUTES);
    vv in = vv_child(routes, f->type->in[IN_IN]);
    vv next = vv_child(st, bl->next);
    vv ep = vv_ref(vv_child(st, bl->episode)), delta = VV_ZERO;
    held_episode e;
    table_view tv = {0};
    if ((rc = episode_read(f, ep, &e)))
        goto done;
    if (!vv_is_zero(e.table) &&
        (rc = table_open(f, e.table, vv_nchildren(e.image), (size_t)e.horizon,
                         &tv)))
        goto done;

    /* A reset first applies a training episode's update, then starts over. */
    if (reset != 0) {
        if (learning != 0 && !vv_is_zero(e.table) &&
            (rc = learned(f, e.image, &tv, routes, &delta)))
            goto done;
        sums = (dmm__target_sums){0};
        learning = 0;
        if (whole)
            age = AGES; /* the episode is over */
    }
    if (learn > 0)
        learning = 1;

    /* The image taken last cycle is age 0 now (a delay line's hop); a
     * whole-episode learner stays at age 0 until a reset or the next image.
     * The episode is made again when the routes have changed (Self shares
     * what it does not change, so an unchanged row is the same node). */
    vv image = vv_is_zero(next) ? e.image : next;
    if (!vv_is_zero(next))
        age = 0;
    else if (!vv_is_zero(image) && age < AGES && !whole)
        age++;
    if (!vv_is_zero(next) || (!vv_is_zero(image) && !same(e.routes, in))) {
        vv made = VV_ZERO;
        free(tv.buf);
        tv = (table_view){0};
        /* Wired, routes holds at least its own row: empty, it is not. */
        if (vv_is_zero(routes)) {
            rc = dmm__fire_failf(f, DMM_E_INVAL,
                                 "an image arrived but input routes is empty: "
                                 "link it to Self's output at this neuron's "
                                 "own row (W[%s][%s][routes][accum][self]"
                                 "[single][%s][%s] = 1)",
                                 lstr(f, f->type->name), lstr(f, f->name),
                                 lstr(f, f->type->name), lstr(f, f->name));
            goto done;
        }
        if ((rc = episode_make(f, image, in, &e, &made)))
            goto done;
        vv_free(f->vc, ep);
        ep = made;
        if ((rc = episode_read(f, ep, &e)) ||
            (!vv_is_zero(e.table) &&
             (rc = table_open(f, e.table, vv_nchildren(e.image),
                              (size_t)e.horizon, &tv))))
            goto done;
    }

    /* This cycle's age, or while a whole episode runs every age at once,
     * summed from 0: what the unfolded learner shows after its last age. */
    double j = 0, scale = dmm_fire_param(f, DMM__TGT_SCALE);
    bool any = false;
    int t0 = 0, t1 = 0;
    if (whole)
        sums = (dmm__target_sums){0};
    if (vv_is_zero(e.table))
        ; /* nothing has arrived */
    else if (whole)
        t1 = age < AGES ? (int)e.horizon : 0;
    else if (age < e.horizon)
        t1 = (t0 = (int)age) + 1;
    for (int t = t0; t < t1; t++)
        if ((rc = energy_at(f, &tv, t, scale, &j, &any)) ||
            (whole && (rc = dmm__target_add(f, &sums, j, any))))
            goto done;
    vv output;
    if ((rc = whole ? dmm__target_output(f, &sums, j, &delta, &output)
                    : dmm__target_emit(f, &sums, j, any, &delta, &output)))
        goto done;
    vv_label sl[8] = {
        out_l[OUT_SCORE],      out_l[OUT_PEAK], out_l[OUT_TOTAL], bl->count,
        f->type->in[IN_LEARN], bl->age_now,     bl->episode,      bl->next};
    vv sv[8] = {vv_number(sums.score),
                vv_number(sums.peak),
                vv_number(sums.total),
                vv_number(sums.count),
                vv_number(learning),
                vv_number(age),
                ep,
                vv_ref(dmm_fire_in(f, IN_IMAGE))};
    ep = VV_ZERO;
    if ((rc = dmm__fire_map(f, 8, sl, sv, &f->new_state))) {
        vv_free(f->vc, output);
        goto done;
    }
    f->output = output;
done:
    free(tv.buf);
    vv_free(f->vc, ep);
    vv_free(f->vc, delta);
    return rc;
}

const dmm_neuron_type dmm__builtin_learner[] = {
    {.name = "learner",
     .summary =
         "induced interference target that computes its arrivals (spec "
         "interference.md §1, docs/experiments.md): image takes the sources' "
         "vectors {source: [1, f]} once an episode, which arrive from the "
         "next cycle on (age 0) wherever its routes in W (rows in and "
         "blocked, {g: {source: {age: P}}}, read through routes, never "
         "computed as inputs) have that age reachable; energy J = scale · "
         "(friends' P + non-friends' P (f · a)), a = the mean of the "
         "friends arrived or target, as `interference`; reset and learn as "
         "`interference`, a training episode multiplying each reachable "
         "route by 1 + eta of its source's class before the row is "
         "renormalised",
     .inputs =
         NAMES("image", "in", "blocked", "target", "routes", "reset", "learn"),
     .outputs = dmm__target_outputs,
     .params =
         (const dmm_param_spec[]){
             DMM__TARGET_PARAM_SPECS,
             {"whole-episode", 0,
              "1: every age of an episode at once: from the cycle its image "
              "is age 0 until a reset or the next image it shows the sums of "
              "the whole episode (score, peak, total; energy: the last age's "
              "J), so images can follow each other a cycle apart; 0: one age "
              "a cycle",
              0, 1, true},
             {NULL, 0, NULL}},
     .stateful = true,
     .fn = fire_learner,
     /* the routes are W's, read through routes: never summed */
     .unread = NAMES("in", "blocked")},
    {.name = NULL},
};
