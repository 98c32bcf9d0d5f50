// SPDX-License-Identifier: MIT
/*
 * The interference library (dmm_interference.h) on cases worked out by hand:
 * the update rule on two sources, the energy of a two-source image,
 * preprocessing with and without the rest-state quirk, the tie and all-zero
 * prediction rules, determinism by seed, and the double-slit update.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_error.h"
#include "dmm_interference.h"

/* An image whose sources are all zero strangers (they add no energy). */
static void blank_image(dmm_if_image *img)
{
    memset(img, 0, sizeof *img);
    for (int s = 0; s < DMM_IF_SOURCES; s++) {
        img->kind[s] = DMM_IF_STRANGER;
        img->eta[s] = DMM_IF_ETA_STRANGER;
    }
}

static void set_source(dmm_if_image *img, int s, const double f[DMM_IF_DIM])
{
    double v[DMM_IF_DIM], sim = 0.0;
    dmm_if_target(v);
    memcpy(img->f[s], f, sizeof img->f[s]);
    for (int k = 0; k < DMM_IF_DIM; k++)
        sim += f[k] * v[k];
    img->sim[s] = sim;
    img->kind[s] = (uint8_t)dmm_if_kind(sim);
    img->eta[s] = dmm_if_eta(img->kind[s]);
}

static void test_geometry(void **state)
{
    (void)state;
    /* Corner sources: source 0 at (-4,-4) is 2 from class 0, 18 from 2. */
    assert_int_equal(dmm_if_dist(0, 0), 2);
    assert_int_equal(dmm_if_dist(0, 2), 18);
    assert_int_equal(dmm_if_dist(80, 2), 2);
    assert_int_equal(dmm_if_dist(8, 3), 2);  /* (-4,+4) next to (-5,+5) */
    assert_int_equal(dmm_if_dist(72, 1), 2); /* (+4,-4) next to (+5,-5) */
    assert_int_equal(dmm_if_dist(40, 1), 10);
    assert_int_equal(dmm_if_class_of_digit(4), 3);
    assert_int_equal(dmm_if_class_of_digit(3), -1);
    assert_int_equal(dmm_if_digit_of_class(3), 4);
    assert_int_equal(dmm_if_kind(0.7), DMM_IF_FRIEND);
    assert_int_equal(dmm_if_kind(0.69), DMM_IF_STRANGER);
    assert_int_equal(dmm_if_kind(-0.7), DMM_IF_FOE);
}

/* Run-time thresholds and learning rates: the published ones change
 * nothing; others move sources between classes and set their eta. */
static void test_classify_params(void **state)
{
    (void)state;
    uint8_t px[DMM_IF_PIXELS];
    for (int i = 0; i < DMM_IF_PIXELS; i++)
        px[i] = (uint8_t)((i * 37 + (i / 28) * 11) % 256);
    dmm_if_image a, b;
    dmm_if_preprocess(px, DMM_IF_FAITHFUL, &a);
    b = a;
    dmm_if_params p;
    dmm_if_params_published(&p);
    dmm_if_classify(&b, &p);
    assert_memory_equal(&a, &b, sizeof a);
    /* Every source a friend: eta 0.25 everywhere. */
    p = (dmm_if_params){-2, -3, {0.25, -0.5, -0.8}};
    dmm_if_classify(&b, &p);
    for (int s = 0; s < DMM_IF_SOURCES; s++) {
        assert_int_equal(b.kind[s], DMM_IF_FRIEND);
        assert_true(b.eta[s] == 0.25);
    }
    /* Thresholds at 0: sim >= 0 friend, else foe (nothing is a stranger);
     * eta 0 is a real value. */
    p = (dmm_if_params){0, 0, {0, -0.5, -0.1}};
    dmm_if_classify(&b, &p);
    for (int s = 0; s < DMM_IF_SOURCES; s++) {
        assert_int_equal(b.kind[s], a.sim[s] >= 0 ? DMM_IF_FRIEND : DMM_IF_FOE);
        assert_true(b.eta[s] == (a.sim[s] >= 0 ? 0.0 : -0.1));
    }
    /* The double slit's published values give dmm_ds_run bit for bit. */
    dmm_ds_model m1, m2;
    dmm_ds_result r1, r2;
    dmm_ds_params_published(&p);
    dmm_ds_run(4, DMM_IF_FAITHFUL, &m1, &r1);
    dmm_ds_run_params(4, DMM_IF_FAITHFUL, &p, &m2, &r2, NULL);
    assert_memory_equal(&m1, &m2, sizeof m1);
    assert_memory_equal(&r1, &r2, sizeof r1);
    p.eta[0] = 0.3;
    dmm_ds_run_params(4, DMM_IF_FAITHFUL, &p, &m2, &r2, NULL);
    assert_memory_not_equal(m1.p, m2.p, sizeof m1.p);
}

/*
 * Two sources on a uniform table (every entry 1/25), class 0.
 * Source 40 (centre, dist 10) is a friend: the 15 entries d >= 10 double,
 * the row sums to 10/25 + 30/25 = 40/25, so d < 10 -> 1/40, d >= 10 -> 1/20.
 * Source 0 (dist 2) is a foe: 23 entries times 0.2, sum 2/25 + 4.6/25 =
 * 6.6/25, so d < 2 -> 1/6.6 and d >= 2 -> 0.2/6.6.
 * Every other source is a stranger: 23..9 entries halved.
 */
static void test_update_two_sources(void **state)
{
    (void)state;
    dmm_if_model *m = malloc(sizeof *m);
    dmm_if_image img;
    blank_image(&img);
    double fr[DMM_IF_DIM] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    double foe[DMM_IF_DIM] = {0, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    for (int k = 1; k < DMM_IF_DIM; k++) {
        fr[k] /= 3.0;
        foe[k] /= 3.0;
    }
    set_source(&img, 40, fr);
    set_source(&img, 0, foe);
    assert_int_equal(img.kind[40], DMM_IF_FRIEND);
    assert_int_equal(img.kind[0], DMM_IF_FOE);

    dmm_if_model_init_uniform(m);
    dmm_if_train(m, &img, 0);
    for (int d = 0; d < DMM_IF_TIMES; d++) {
        assert_float_equal(dmm_if_route(m, 40, 0, d), d < 10 ? 1.0 / 40 : 0.05,
                           1e-15);
        assert_float_equal(dmm_if_route(m, 0, 0, d),
                           d < 2 ? 1 / 6.6 : 0.2 / 6.6, 1e-15);
        /* Source 1 (dist 3, stranger): 3 + 22/2 = 14 units. */
        assert_float_equal(dmm_if_route(m, 1, 0, d),
                           d < 3 ? 1 / 14.0 : 0.5 / 14.0, 1e-15);
        /* Other classes untouched. */
        for (int c = 1; c < DMM_IF_CLASSES; c++)
            assert_float_equal(dmm_if_route(m, 40, c, d), 1.0 / 25, 0);
    }
    double mass[DMM_IF_SOURCES];
    dmm_if_reachable(m, 0, mass);
    assert_float_equal(mass[40], 15 * 0.05, 1e-14);
    assert_float_equal(mass[0], 23 * 0.2 / 6.6, 1e-14);

    /* A second image with the roles swapped: the order does not matter. */
    dmm_if_image img2;
    blank_image(&img2);
    set_source(&img2, 0, fr);
    set_source(&img2, 40, foe);
    dmm_if_model *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    dmm_if_rng r;
    dmm_if_rng_seed(&r, 7);
    dmm_if_model_init_random(a, &r);
    memcpy(b, a, sizeof *a);
    dmm_if_train(a, &img, 0);
    dmm_if_train(a, &img2, 0);
    dmm_if_train(b, &img2, 0);
    dmm_if_train(b, &img, 0);
    for (int s = 0; s < DMM_IF_SOURCES; s++)
        for (int d = 0; d < DMM_IF_TIMES; d++)
            assert_float_equal(a->p[0][s][d], b->p[0][s][d], 1e-15);
    free(a);
    free(b);
    free(m);
}

/*
 * Energy at class 0 with a stranger b = source 0 (dist 2, f = e9, sim 1/3)
 * and a friend a = source 80 (dist 18, f = [0,1,..,1,0]/sqrt 8, sim 0.943,
 * orthogonal to e9). t < 2: nothing arrives, 0. 2 <= t < 18: no friend yet,
 * a = v: 1000 P_b(t) (e9 . v) = 1000 P_b(t) / 3. t >= 18: 1000 (P_a(t) +
 * P_b(t) e9 . f_a) = 1000 P_a(t).
 */
static void test_energy_hand(void **state)
{
    (void)state;
    dmm_if_model *m = malloc(sizeof *m);
    dmm_if_rng r;
    dmm_if_rng_seed(&r, 3);
    dmm_if_model_init_random(m, &r);
    dmm_if_image img;
    blank_image(&img);
    double e9[DMM_IF_DIM] = {0}, fa[DMM_IF_DIM] = {0};
    e9[9] = 1.0;
    for (int k = 1; k < 9; k++)
        fa[k] = 1.0 / sqrt(8.0);
    set_source(&img, 0, e9);
    set_source(&img, 80, fa);
    assert_int_equal(img.kind[0], DMM_IF_STRANGER);
    assert_int_equal(img.kind[80], DMM_IF_FRIEND);
    double J[DMM_IF_TIMES];
    dmm_if_energy(m, &img, 0, J);
    for (int t = 0; t < DMM_IF_TIMES; t++) {
        double want = t < 2    ? 0.0
                      : t < 18 ? 1000 * dmm_if_route(m, 0, 0, t) / 3
                               : 1000 * dmm_if_route(m, 80, 0, t);
        assert_float_equal(J[t], want, 1e-12);
    }
    /* Two different friends, a is their mean: b = e1 (sim 1/3, a stranger)
     * at source 0, friends v at source 1 (dist 3) and fa at source 80.
     * t = 2: a = v, 1000 P_0 / 3. 3 <= t < 18: a = v, 1000 (P_1 + P_0 / 3).
     * t >= 18: a = (v + fa) / 2, e1 . a = (1/3 + 1/sqrt 8) / 2. */
    double e1[DMM_IF_DIM] = {0}, v[DMM_IF_DIM];
    e1[1] = 1.0;
    dmm_if_target(v);
    set_source(&img, 0, e1);
    set_source(&img, 1, v);
    assert_int_equal(img.kind[1], DMM_IF_FRIEND);
    dmm_if_energy(m, &img, 0, J);
    assert_float_equal(J[2], 1000 * dmm_if_route(m, 0, 0, 2) / 3, 1e-12);
    for (int t = 3; t < 18; t++)
        assert_float_equal(
            J[t],
            1000 * (dmm_if_route(m, 1, 0, t) + dmm_if_route(m, 0, 0, t) / 3),
            1e-12);
    double ea = (1.0 / 3 + 1 / sqrt(8.0)) / 2;
    for (int t = 18; t < DMM_IF_TIMES; t++)
        assert_float_equal(J[t],
                           1000 * (dmm_if_route(m, 1, 0, t) +
                                   dmm_if_route(m, 80, 0, t) +
                                   dmm_if_route(m, 0, 0, t) * ea),
                           1e-12);
    /* The other classes see the same sources at other distances: class 2
     * (source 80 at dist 2) gets only the friend's mass at t = 2. */
    dmm_if_energy(m, &img, 2, J);
    assert_float_equal(J[2], 1000 * dmm_if_route(m, 80, 2, 2), 1e-12);
    free(m);
}

/* One lit 3x3 patch (patch row 4, column 4) on a blank image. */
static void test_preprocess_quirk(void **state)
{
    (void)state;
    uint8_t px[DMM_IF_PIXELS] = {0};
    for (int y = 12; y < 15; y++)
        for (int x = 12; x < 15; x++)
            px[y * 28 + x] = 255;
    px[27 * 28 + 27] = 255; /* outside the 27 x 27 crop: ignored */
    dmm_if_image f, c;
    dmm_if_preprocess(px, DMM_IF_FAITHFUL, &f);
    dmm_if_preprocess(px, DMM_IF_CORRECTED, &c);
    /* The lit patch: p = 1 - 1/81 each, normalised to 1/3: a friend. */
    for (int k = 1; k < DMM_IF_DIM; k++) {
        assert_float_equal(f.f[40][k], 1.0 / 3, 1e-15);
        assert_float_equal(c.f[40][k], 1.0 / 3, 1e-15);
    }
    assert_int_equal(f.kind[40], DMM_IF_FRIEND);
    assert_float_equal(f.sim[40], 1.0, 1e-15);
    /* Blank patch, faithful: centred to -1/81 each, sum != 0, so not the
     * rest state but [0, -1/3, ...]: a foe (the QUIRK). */
    assert_float_equal(f.f[0][0], 0.0, 0);
    for (int k = 1; k < DMM_IF_DIM; k++)
        assert_float_equal(f.f[0][k], -1.0 / 3, 1e-15);
    assert_int_equal(f.kind[0], DMM_IF_FOE);
    assert_float_equal(f.eta[0], DMM_IF_ETA_FOE, 0);
    /* Corrected: the rest state [1, 0, ...], a stranger. */
    assert_float_equal(c.f[0][0], 1.0, 0);
    for (int k = 1; k < DMM_IF_DIM; k++)
        assert_float_equal(c.f[0][k], 0.0, 0);
    assert_int_equal(c.kind[0], DMM_IF_STRANGER);
    /* Source 80 holds pixel (26,26) but not (27,27): blank too. */
    assert_int_equal(f.kind[80], DMM_IF_FOE);

    /* A uniform image centres to exactly 0: the faithful test fires. */
    memset(px, 255, sizeof px);
    dmm_if_preprocess(px, DMM_IF_FAITHFUL, &f);
    assert_float_equal(f.f[17][0], 1.0, 0);
    assert_int_equal(f.kind[17], DMM_IF_STRANGER);
}

static void test_prediction_rules(void **state)
{
    (void)state;
    assert_int_equal(dmm_if_argmax((double[]){0, 0, 0, 0}), 0);
    assert_int_equal(dmm_if_argmax((double[]){1, 3, 3, 2}), 1);
    assert_int_equal(dmm_if_argmax((double[]){-1, -2, -0.5, -3}), 2);
    /* --ties: `first` is the argmax; `peak` picks among the classes that
     * share the top score the one with the highest peak, the first of
     * those on equal peaks, and never a class outside the tie. */
    const double *pk = (double[]){-4, -1, -2, 9};
    assert_int_equal(
        dmm_if_argmax_ties((double[]){0, 0, 0, 0}, pk, DMM_IF_TIES_FIRST), 0);
    assert_int_equal(
        dmm_if_argmax_ties((double[]){0, 0, 0, 0}, pk, DMM_IF_TIES_PEAK), 3);
    assert_int_equal(
        dmm_if_argmax_ties((double[]){0, 0, 0, -1}, pk, DMM_IF_TIES_PEAK), 1);
    assert_int_equal(dmm_if_argmax_ties((double[]){1, 3, 3, 2},
                                        (double[]){0, 5, 7, 99},
                                        DMM_IF_TIES_PEAK),
                     2);
    assert_int_equal(dmm_if_argmax_ties((double[]){1, 3, 3, 2},
                                        (double[]){0, 7, 7, 99},
                                        DMM_IF_TIES_PEAK),
                     1);
    assert_int_equal(dmm_if_argmax_ties((double[]){5, 3, 3, 2},
                                        (double[]){0, 7, 7, 99},
                                        DMM_IF_TIES_PEAK),
                     0);

    /* Every source a foe [0, -1/3 ...] and no friend: a = v, each J_c(t)
     * for t >= 2 is -1000 times the mass present, negative. */
    dmm_if_model *m = malloc(sizeof *m);
    dmm_if_rng r;
    dmm_if_rng_seed(&r, 11);
    dmm_if_model_init_random(m, &r);
    dmm_if_image img;
    double foe[DMM_IF_DIM] = {0};
    for (int k = 1; k < DMM_IF_DIM; k++)
        foe[k] = -1.0 / 3;
    blank_image(&img);
    for (int s = 0; s < DMM_IF_SOURCES; s++)
        set_source(&img, s, foe);
    double sc[DMM_IF_CLASSES];
    assert_int_equal(dmm_if_predict(m, &img, DMM_IF_FAITHFUL, sc), 0);
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        assert_float_equal(sc[c], 0.0, 0);
    int pred = dmm_if_predict(m, &img, DMM_IF_FIX_SCORE, sc);
    double best = -INFINITY;
    int want = -1;
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        double J[DMM_IF_TIMES], mx = -INFINITY;
        dmm_if_energy(m, &img, c, J);
        for (int t = 2; t < DMM_IF_TIMES; t++)
            mx = J[t] > mx ? J[t] : mx;
        assert_true(sc[c] < 0);
        assert_float_equal(sc[c], mx, 0);
        if (mx > best) {
            best = mx;
            want = c;
        }
    }
    assert_int_equal(pred, want);
    /* The peaks are those corrected scores, and the faithful all-0 tie goes
     * to the highest of them under `peak`; the corrected scores do not
     * tie, and both rules give that same class. */
    double sf[DMM_IF_CLASSES], peak[DMM_IF_CLASSES];
    dmm_if_scores_peaks(m, &img, DMM_IF_FAITHFUL, sf, peak);
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        assert_float_equal(sf[c], 0.0, 0);
        assert_float_equal(peak[c], sc[c], 0);
    }
    assert_int_equal(
        dmm_if_predict_ties(m, &img, DMM_IF_FAITHFUL, DMM_IF_TIES_PEAK, NULL),
        want);
    for (int t = 0; t < 2; t++)
        assert_int_equal(
            dmm_if_predict_ties(m, &img, DMM_IF_FIX_SCORE, t, NULL), want);
    free(m);
}

/* A synthetic data set: digit d images lit in a class-specific corner. */
typedef struct synth {
    uint8_t *img, *lab;
    size_t n;
} synth;

static void synth_make(synth *s, size_t n, uint64_t seed)
{
    s->n = n;
    s->img = calloc(n, DMM_IF_PIXELS);
    s->lab = malloc(n);
    dmm_if_rng r;
    dmm_if_rng_seed(&r, seed);
    static const int digits[] = {0, 1, 2, 4, 7};
    for (size_t i = 0; i < n; i++) {
        int d = digits[i % 5];
        s->lab[i] = (uint8_t)d;
        int c = dmm_if_class_of_digit(d);
        int y0 = (c == 1 || c == 2) ? 15 : 3, x0 = (c >= 2) ? 15 : 3;
        for (int y = y0; y < y0 + 9; y++)
            for (int x = x0; x < x0 + 9; x++)
                if (dmm_if_rng_uniform(&r) < 0.7)
                    s->img[i * DMM_IF_PIXELS + y * 28 + x] = 200;
    }
}

/* The run-time geometries: distances worked out by hand for each layout
 * and metric; the published one is dmm_if_dist; bad values are refused. */
static void test_geometry_options(void **state)
{
    (void)state;
    dmm_if_geometry g, pub;
    dmm_if_geometry_published(&pub);
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            assert_int_equal(pub.dist[c][s], dmm_if_dist(s, c));
    assert_int_equal(pub.times, DMM_IF_TIMES);
    /* corners, class 0 at (-5,-5): source 0 at (-4,-4), 80 at (4,4) */
    static const struct {
        int at, metric, c, s, dist;
    } cases[] = {
        {DMM_IF_AT_CORNERS, DMM_IF_EUCLIDEAN, 0, 0, 2},   /* ceil(1.41) */
        {DMM_IF_AT_CORNERS, DMM_IF_EUCLIDEAN, 0, 80, 13}, /* ceil(12.73) */
        {DMM_IF_AT_CORNERS, DMM_IF_CHEBYSHEV, 0, 0, 1},
        {DMM_IF_AT_CORNERS, DMM_IF_CHEBYSHEV, 0, 80, 9},
        /* sides, class 0 at (0,-5) on the left: 36 at (0,-4), 0 at (-4,-4),
         * 8 at (-4,4); class 3 at (-5,0) on top: 4 at (-4,0) */
        {DMM_IF_AT_SIDES, DMM_IF_MANHATTAN, 0, 36, 1},
        {DMM_IF_AT_SIDES, DMM_IF_MANHATTAN, 0, 0, 5},
        {DMM_IF_AT_SIDES, DMM_IF_EUCLIDEAN, 0, 0, 5}, /* ceil(4.12) */
        {DMM_IF_AT_SIDES, DMM_IF_CHEBYSHEV, 0, 0, 4},
        {DMM_IF_AT_SIDES, DMM_IF_MANHATTAN, 0, 8, 13},
        {DMM_IF_AT_SIDES, DMM_IF_EUCLIDEAN, 0, 8, 10}, /* ceil(9.85) */
        {DMM_IF_AT_SIDES, DMM_IF_CHEBYSHEV, 0, 8, 9},
        {DMM_IF_AT_SIDES, DMM_IF_MANHATTAN, 3, 4, 1},
        {DMM_IF_AT_SIDES, DMM_IF_MANHATTAN, 1, 76, 1}, /* (4,0) under */
        {DMM_IF_AT_SIDES, DMM_IF_MANHATTAN, 2, 44, 1}, /* (0,4) right */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(
            dmm_if_geometry_make(&g, cases[k].at, cases[k].metric, 30), 0);
        assert_int_equal(g.times, 30);
        assert_int_equal(g.dist[cases[k].c][cases[k].s], cases[k].dist);
    }
    assert_int_equal(
        dmm_if_geometry_make(&g, DMM_IF_AT_SIDES, DMM_IF_MANHATTAN, 25), 0);
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        assert_int_equal(dmm_if_geometry_nearest(&g, c), 1);
    assert_int_equal(dmm_if_geometry_nearest(&pub, 2), 2);
    dmm_if_geometry before = g;
    assert_int_equal(dmm_if_geometry_make(&g, 0, 0, 0), DMM_E_INVAL);
    assert_int_equal(dmm_if_geometry_make(&g, 0, 0, DMM_IF_TIMES_MAX + 1),
                     DMM_E_INVAL);
    assert_int_equal(dmm_if_geometry_make(&g, 2, 0, 25), DMM_E_INVAL);
    assert_int_equal(dmm_if_geometry_make(&g, 0, 3, 25), DMM_E_INVAL);
    assert_memory_equal(&g, &before, sizeof g);
    dmm_ds_geometry dg;
    assert_int_equal(dmm_ds_geometry_make(&dg, 0), DMM_E_INVAL);
    assert_int_equal(dmm_ds_geometry_make(&dg, DMM_DS_TIMES_MAX + 1),
                     DMM_E_INVAL);
    assert_int_equal(dmm_ds_geometry_make(&dg, DMM_DS_TIMES_MAX), 0);
    assert_int_equal(dg.dist[0][0], 1);
    assert_int_equal(dg.dist[0][1], 3);
}

/*
 * Horizon 10 on a uniform table (every entry 1/10), class 0, worked by
 * hand. Source 40 (dist 10) is a friend but reaches no duration below 10:
 * its row stays 1/10. Source 0 (dist 2) is a foe: 8 entries times 0.2, sum
 * (2 + 1.6)/10, so d < 2 -> 1/3.6, d >= 2 -> 0.2/3.6. Nothing from d = 10.
 */
static void test_horizon_update(void **state)
{
    (void)state;
    dmm_if_model *m = malloc(sizeof *m);
    dmm_if_geometry g;
    assert_int_equal(
        dmm_if_geometry_make(&g, DMM_IF_AT_CORNERS, DMM_IF_MANHATTAN, 10), 0);
    dmm_if_model_init(m, &g, NULL);
    dmm_if_image img;
    blank_image(&img);
    double fr[DMM_IF_DIM] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    double foe[DMM_IF_DIM] = {0, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    for (int k = 1; k < DMM_IF_DIM; k++) {
        fr[k] /= 3.0;
        foe[k] /= 3.0;
    }
    set_source(&img, 40, fr);
    set_source(&img, 0, foe);
    dmm_if_train(m, &img, 0);
    for (int d = 0; d < DMM_IF_TIMES_MAX; d++) {
        assert_float_equal(dmm_if_route(m, 40, 0, d), d < 10 ? 0.1 : 0, 1e-15);
        assert_float_equal(dmm_if_route(m, 0, 0, d),
                           d >= 10 ? 0
                           : d < 2 ? 1 / 3.6
                                   : 0.2 / 3.6,
                           1e-15);
    }
    /* Horizon 2 ends before any source reaches a corner: every score is 0
     * in both variants, and the first class wins. */
    assert_int_equal(
        dmm_if_geometry_make(&g, DMM_IF_AT_CORNERS, DMM_IF_MANHATTAN, 2), 0);
    dmm_if_model_init(m, &g, NULL);
    double sc[DMM_IF_CLASSES];
    for (unsigned v = 0; v < 2; v++) {
        assert_int_equal(dmm_if_predict(m, &img, v ? DMM_IF_CORRECTED : 0, sc),
                         0);
        for (int c = 0; c < DMM_IF_CLASSES; c++)
            assert_true(sc[c] == 0);
    }
    free(m);
}

static void test_determinism(void **state)
{
    (void)state;
    synth tr, te;
    synth_make(&tr, 5500, 1);
    synth_make(&te, 5 * 980, 2);
    dmm_if_data train = {tr.img, tr.lab, tr.n}, test = {te.img, te.lab, te.n};
    dmm_if_options o = {.shots = 3, .seed = 42, .epochs = 2};
    dmm_if_model *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    dmm_if_result ra, rb;
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, a, &ra), 0);
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), 0);
    assert_memory_equal(a, b, sizeof *a);
    assert_memory_equal(&ra, &rb, sizeof ra);
    assert_int_equal(ra.total, 3920);
    /* The classes sit in different corners: this is easy. */
    assert_true(ra.correct > 3500);
    o.seed = 43;
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), 0);
    assert_true(memcmp(a, b, sizeof *a) != 0);
    /* The published geometry given explicitly is the published run, bit for
     * bit; another one is another run. */
    dmm_if_geometry g;
    dmm_if_geometry_published(&g);
    o.seed = 42;
    o.geometry = &g;
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), 0);
    assert_memory_equal(a, b, sizeof *a);
    assert_memory_equal(&ra, &rb, sizeof ra);
    assert_int_equal(
        dmm_if_geometry_make(&g, DMM_IF_AT_SIDES, DMM_IF_EUCLIDEAN, 30), 0);
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), 0);
    assert_true(memcmp(a->p, b->p, sizeof a->p) != 0);
    assert_int_equal(b->geom.times, 30);
    assert_true(rb.correct > 2000); /* still learns */
    o.geometry = NULL;
    o.seed = 43;
    /* Mixed order trains on the same images (same seed): same routes up to
     * rounding, since the update commutes. */
    o.seed = 42;
    o.order_mixed = 1;
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), 0);
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            for (int d = 0; d < DMM_IF_TIMES; d++)
                assert_float_equal(a->p[c][s][d], b->p[c][s][d], 1e-12);
    /* Too many shots, no epochs. */
    o.shots = 2000;
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), DMM_E_INVAL);
    o.shots = 1;
    o.epochs = 0;
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), DMM_E_INVAL);

    /* Picks: first K in file order from the split, random ones distinct. */
    size_t idx[4 * 3];
    assert_int_equal(dmm_if_pick(tr.lab, tr.n, 5000, 3, 0, NULL, idx), 0);
    assert_int_equal(idx[0], 5000); /* 5000 % 5 == 0: digit 0 */
    assert_int_equal(idx[1], 5005);
    assert_int_equal(idx[3], 5001); /* digit 1 */
    dmm_if_rng r;
    dmm_if_rng_seed(&r, 5);
    assert_int_equal(dmm_if_pick(tr.lab, tr.n, 5000, 3, 1, &r, idx), 0);
    for (int i = 0; i < 12; i++) {
        assert_true(idx[i] >= 5000);
        assert_int_equal(dmm_if_class_of_digit(tr.lab[idx[i]]), i / 3);
        for (int j = 0; j < i; j++)
            assert_true(idx[i] != idx[j]);
    }
    assert_int_equal(dmm_if_pick(tr.lab, tr.n, 5000, 101, 0, NULL, idx),
                     DMM_E_INVAL);
    free(a);
    free(b);
    free(tr.img);
    free(tr.lab);
    free(te.img);
    free(te.lab);
}

/*
 * Double slit: source 0 always a friend ([0, 1]) trains target 0 (dist 1):
 * each d >= 1 gains 0.1 per arrival, min(40, 60 - d) arrivals; the row is
 * then renormalised.
 */
static void test_double_slit_update(void **state)
{
    (void)state;
    assert_int_equal(dmm_ds_dist(0, 0), 1);
    assert_int_equal(dmm_ds_dist(0, 1), 3);
    assert_int_equal(dmm_ds_dist(1, 0), 3);
    dmm_ds_model m;
    dmm_ds_model_init(&m, NULL);
    dmm_ds_signal sig;
    for (int tau = 0; tau < DMM_DS_EMIT; tau++) {
        sig.x[0][tau][0] = 0.0;
        sig.x[0][tau][1] = 1.0;
        sig.x[1][tau][0] = 1.0; /* cos 0: a stranger, -0.01 per arrival */
        sig.x[1][tau][1] = 0.0;
    }
    dmm_ds_train(&m, &sig, 0);
    double w[DMM_DS_TIMES], sum = 0.0;
    for (int d = 0; d < DMM_DS_TIMES; d++) {
        int n = d < 1 ? 0 : (60 - d < 40 ? 60 - d : 40);
        w[d] = 1.0 + 0.1 * n;
        sum += w[d];
    }
    for (int d = 0; d < DMM_DS_TIMES; d++)
        assert_float_equal(m.p[0][0][d], w[d] / sum, 1e-15);
    assert_float_equal(m.p[0][1][5], 1.0 / 60, 1e-15); /* other target */
    /* Horizon 30: arrivals tau + d < 30, so 30 - d of them; nothing from
     * d = 30 on. */
    dmm_ds_geometry g30;
    assert_int_equal(dmm_ds_geometry_make(&g30, 30), 0);
    dmm_ds_model_init_geom(&m, &g30, NULL);
    dmm_ds_train(&m, &sig, 0);
    sum = 0.0;
    for (int d = 0; d < 30; d++) {
        w[d] = 1.0 + 0.1 * (d < 1 ? 0 : 30 - d);
        sum += w[d];
    }
    for (int d = 0; d < DMM_DS_TIMES_MAX; d++)
        assert_float_equal(m.p[0][0][d], d < 30 ? w[d] / sum : 0, 1e-15);
    assert_float_equal(m.p[0][1][5], 1.0 / 30, 1e-15);
    /* The published horizon given explicitly: the published run. */
    dmm_ds_model m60, mpub;
    dmm_ds_result r60, rpub;
    assert_int_equal(dmm_ds_geometry_make(&g30, DMM_DS_TIMES), 0);
    dmm_ds_run_geom(4, 0, NULL, &g30, &m60, &r60, NULL);
    dmm_ds_run(4, 0, &mpub, &rpub);
    assert_memory_equal(&m60, &mpub, sizeof m60);
    assert_memory_equal(&r60, &rpub, sizeof r60);

    /* Corrected noise keeps the second source within pi/12 of its phase. */
    dmm_if_rng r;
    dmm_if_rng_seed(&r, 1);
    dmm_ds_signal_make(&sig, 0, DMM_IF_CORRECTED, &r);
    for (int tau = 0; tau < DMM_DS_EMIT; tau += 8) {
        assert_true(sig.x[0][tau][1] >
                    cos(3.14159265358979323846 / 12) - 1e-12);
        assert_true(sig.x[1][tau][1] <
                    -cos(3.14159265358979323846 / 12) + 1e-12);
    }
    /* Same seed, same run. */
    dmm_ds_result a, b;
    dmm_ds_run(9, DMM_IF_CORRECTED, &m, &a);
    dmm_ds_run(9, DMM_IF_CORRECTED, &m, &b);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(a.total, DMM_DS_TRIALS);
}

/*
 * Double slit: the phase noise is one draw per source for the whole sample
 * (spec §2, w = omega tau + theta_i + noise), so each phasor repeats every
 * period of 8 steps and one sample takes exactly two uniforms from the rng;
 * DMM_DS_NOISE_PER_STEP redraws it at every tau.
 */
static void test_double_slit_noise(void **state)
{
    (void)state;
    const double pi = 3.14159265358979323846;
    for (unsigned variant = 0; variant <= DMM_IF_CORRECTED;
         variant += DMM_IF_CORRECTED) {
        dmm_if_rng r, twice;
        dmm_if_rng_seed(&r, 3);
        dmm_if_rng_seed(&twice, 3);
        dmm_ds_signal sig;
        dmm_ds_signal_make(&sig, 1, variant, &r);
        (void)dmm_if_rng_next(&twice);
        (void)dmm_if_rng_next(&twice);
        assert_memory_equal(&r, &twice, sizeof r);
        for (int s = 0; s < DMM_DS_SOURCES; s++)
            for (int tau = 0; tau + DMM_DS_PERIOD < DMM_DS_EMIT; tau++)
                for (int k = 0; k < 2; k++)
                    assert_float_equal(sig.x[s][tau + DMM_DS_PERIOD][k],
                                       sig.x[s][tau][k], 1e-12);
    }
    /* The faithful second source: offset U(-1,1) + pi/12, the same one at
     * every tau, so w2 - w1 stays one constant within [-1 - pi/12,
     * 1 + pi/6] of theta. */
    dmm_if_rng r;
    dmm_if_rng_seed(&r, 4);
    dmm_ds_signal sig;
    dmm_ds_signal_make(&sig, 1, DMM_IF_FAITHFUL, &r);
    double d0 = atan2(sig.x[1][0][0], sig.x[1][0][1]) -
                atan2(sig.x[0][0][0], sig.x[0][0][1]);
    assert_true(d0 > -1.0 - pi / 12 && d0 < 1.0 + pi / 6);
    for (int tau = 1; tau < DMM_DS_EMIT; tau++) {
        double c = sig.x[0][tau][1] * sig.x[1][tau][1] +
                   sig.x[0][tau][0] * sig.x[1][tau][0]; /* cos(w2 - w1) */
        assert_float_equal(c, cos(d0), 1e-12);
    }
    /* Per step: 80 draws, and the phasor no longer repeats exactly. */
    dmm_if_rng a, b;
    dmm_if_rng_seed(&a, 3);
    dmm_if_rng_seed(&b, 3);
    dmm_ds_signal_make(&sig, 1, DMM_IF_CORRECTED | DMM_DS_NOISE_PER_STEP, &a);
    for (int i = 0; i < 2 * DMM_DS_EMIT; i++)
        (void)dmm_if_rng_next(&b);
    assert_memory_equal(&a, &b, sizeof a);
    assert_true(fabs(sig.x[0][DMM_DS_PERIOD][1] - sig.x[0][0][1]) > 1e-9);
}

/*
 * Spec §2: with the intended noise every run separates the classes
 * perfectly. Seeds 1..10, 200 trials each: corrected 200/200 every time;
 * the faithful noise does not (seeds 1, 2 and 5 miss some); nor does the
 * per-step reading of the noise (seed 6: 193/200).
 */
static void test_double_slit_separates(void **state)
{
    (void)state;
    dmm_ds_model m;
    dmm_ds_result res;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        dmm_ds_run(seed, DMM_IF_CORRECTED, &m, &res);
        assert_int_equal(res.total, DMM_DS_TRIALS);
        assert_int_equal(res.correct, DMM_DS_TRIALS);
        assert_true(res.confusion[0][0] > 0 && res.confusion[1][1] > 0);
    }
    dmm_ds_run(1, DMM_IF_FAITHFUL, &m, &res);
    assert_int_equal(res.correct, 178);
    dmm_ds_run(5, DMM_IF_FAITHFUL, &m, &res);
    assert_int_equal(res.correct, 175);
    dmm_ds_run(6, DMM_IF_CORRECTED | DMM_DS_NOISE_PER_STEP, &m, &res);
    assert_int_equal(res.correct, 193);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_update_two_sources),
        cmocka_unit_test(test_energy_hand),
        cmocka_unit_test(test_preprocess_quirk),
        cmocka_unit_test(test_prediction_rules),
        cmocka_unit_test(test_geometry_options),
        cmocka_unit_test(test_horizon_update),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_double_slit_update),
        cmocka_unit_test(test_double_slit_noise),
        cmocka_unit_test(test_double_slit_separates),
        cmocka_unit_test(test_classify_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
