// SPDX-License-Identifier: MIT
/*
 * The `learner` neuron type (neurons/src/builtin_learner.c) fired by hand:
 * its energies against the direct engine's (dmm_if_energy) for the same
 * image and routes, bit for bit; a training episode's change of the routes
 * against dmm_if_train; the episode made again when the routes change; a
 * learner that takes a whole episode at once; and its bad inputs and
 * states, each refused with a reason.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_interference.h"
#include "dmm_neuron.h"
#include "testutil_net.h"

typedef tn_world fx;

static int setup(void **state)
{
    return tn_world_setup_counted(state);
}

static int teardown(void **state)
{
    return tn_world_teardown(state);
}

static vv_label lab(fx *x, const char *s)
{
    return tu_label(x->vc, s);
}

static vv_label labf(fx *x, const char *fmt, int i)
{
    char s[32];
    snprintf(s, sizeof s, fmt, i);
    return lab(x, s);
}

/* *acc with number y at path (p0 .. p[n-1]). */
static void set(fx *x, vv *acc, const vv_label *p, size_t n, double y)
{
    vv next;
    assert_int_equal(vv_set(x->vc, *acc, p, n, vv_number(y), &next), 0);
    vv_free(x->vc, *acc);
    *acc = next;
}

/* The image {s<i>: [1, f_i]} as the host feeds it. */
static vv image_of(fx *x, const dmm_if_image *img)
{
    vv v = VV_ZERO;
    for (int s = 0; s < DMM_IF_SOURCES; s++) {
        vv_label p[2] = {labf(x, "s%d", s), 0};
        for (int k = 0; k < DMM_IF_DIM; k++) {
            p[1] = labf(x, "%d", k);
            if (img->f[s][k] != 0)
                set(x, &v, p, 2, img->f[s][k]);
        }
        vv src = vv_child(v, p[0]), one;
        assert_int_equal(vv_add(x->vc, src, vv_number(1), &one), 0);
        vv next;
        assert_int_equal(vv_set(x->vc, v, p, 1, one, &next), 0);
        vv_free(x->vc, one);
        vv_free(x->vc, v);
        v = next;
    }
    return v;
}

/* The learner's own row of W for class c of m: {in|blocked: {delay:
 * {s<i>: {age: P}}}}, as the host writes it. */
static vv routes_of(fx *x, const dmm_if_model *m, int c)
{
    vv r = VV_ZERO;
    for (int s = 0; s < DMM_IF_SOURCES; s++)
        for (int d = 0; d < m->geom.times; d++) {
            vv_label p[4] = {lab(x, d >= m->geom.dist[c][s] ? "in" : "blocked"),
                             lab(x, "delay"), labf(x, "s%d", s),
                             labf(x, "%d", d)};
            set(x, &r, p, 4, m->p[c][s][d]);
        }
    return r;
}

/* The input map of one cycle (all borrowed, any may be zero). */
static vv input_of(fx *x, vv image, vv routes, vv target, double reset,
                   double learn)
{
    vv_label l[5] = {lab(x, "image"), lab(x, "routes"), lab(x, "target"),
                     lab(x, "reset"), lab(x, "learn")};
    vv v[5] = {vv_ref(image), vv_ref(routes), vv_ref(target), vv_number(reset),
               vv_number(learn)};
    vv in;
    assert_int_equal(vv_from_pairs(x->vc, 0, 5, l, v, &in), 0);
    return in;
}

/* The parameters learner/n fires with (zero: the defaults). */
static vv learner_params;

/* Fire learner/n once; *state is replaced by its new state on success and
 * left as it was on error (both outputs then zero, checked). */
static int fire(fx *x, vv input, vv *state, vv *out, dmm_error *err)
{
    vv next;
    int rc =
        tn_fire(x, "learner", input, learner_params, *state, out, &next, err);
    if (!rc) {
        vv_free(x->vc, *state);
        *state = next;
    }
    return rc;
}

static double out_num(fx *x, vv out, const char *name)
{
    return vv_child(out, lab(x, name)).num;
}

/* A test image from seed: whole bright patches (friends), half-lit ones
 * (strangers) on a dark ground (foes). */
static void image_make(uint64_t seed, dmm_if_image *img)
{
    dmm_if_rng r;
    dmm_if_rng_seed(&r, seed);
    uint8_t px[DMM_IF_PIXELS] = {0};
    for (int k = 0; k < 45; k++) {
        int i = (int)dmm_if_rng_below(&r, DMM_IF_GRID);
        int j = (int)dmm_if_rng_below(&r, DMM_IF_GRID);
        uint8_t lit = (uint8_t)(120 + dmm_if_rng_below(&r, 136));
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                if (k < 30 || (a + b) % 2)
                    px[(3 * i + a) * DMM_IF_SIDE + 3 * j + b] = lit;
    }
    dmm_if_preprocess(px, 0, img);
}

typedef struct world {
    dmm_if_model m;
    dmm_if_image img;
    vv image, target, routes[DMM_IF_CLASSES];
} world;

static world *world_new(fx *x, uint64_t seed)
{
    world *w = malloc(sizeof *w);
    assert_non_null(w);
    dmm_if_rng r;
    dmm_if_rng_seed(&r, seed);
    dmm_if_model_init(&w->m, NULL, &r);
    image_make(seed + 1, &w->img);
    w->image = image_of(x, &w->img);
    w->target = VV_ZERO;
    double v[DMM_IF_DIM];
    dmm_if_target(v);
    for (int k = 0; k < DMM_IF_DIM; k++)
        if (v[k] != 0) {
            vv_label p[1] = {labf(x, "%d", k)};
            set(x, &w->target, p, 1, v[k]);
        }
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        w->routes[c] = routes_of(x, &w->m, c);
    return w;
}

static void world_free(fx *x, world *w)
{
    vv_free(x->vc, w->image);
    vv_free(x->vc, w->target);
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        vv_free(x->vc, w->routes[c]);
    free(w);
}

/* One cycle: fire with these inputs, return the output (new). */
static vv cycle(fx *x, vv *state, vv image, vv routes, vv target, double reset,
                double learn)
{
    vv in = input_of(x, image, routes, target, reset, learn), out;
    dmm_error err;
    int rc = fire(x, in, state, &out, &err);
    if (rc)
        fail_msg("learner: %s", err.text);
    vv_free(x->vc, in);
    return out;
}

/* The cycle that takes w's image for class c (a reset: a new episode); its
 * output is checked to be empty of energy. The image is age 0 next cycle. */
static void take_image(fx *x, vv *st, const world *w, int c)
{
    vv out = cycle(x, st, w->image, w->routes[c], w->target, 1, 0);
    assert_true(out_num(x, out, "energy") == 0);
    vv_free(x->vc, out);
}

/*
 * Each class: the image taken at cycle 0 is age t at cycle t + 1, where the
 * energy is the direct engine's J_c(t) bit for bit (the same arithmetic in
 * the same order); score and peak are its faithful score and its peak.
 */
static void test_learner_vs_direct(void **state)
{
    fx *x = *state;
    world *w = world_new(x, 7);
    int kinds[3] = {0};
    for (int s = 0; s < DMM_IF_SOURCES; s++)
        kinds[w->img.kind[s]]++;
    for (int k = 0; k < 3; k++) /* all three classes, friends mixed in */
        assert_true(kinds[k] > 3);
    double score[DMM_IF_CLASSES], peak[DMM_IF_CLASSES];
    dmm_if_scores_peaks(&w->m, &w->img, 0, score, peak);
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        double J[DMM_IF_TIMES_MAX];
        dmm_if_energy(&w->m, &w->img, c, J);
        vv st = VV_ZERO, out;
        take_image(x, &st, w, c);
        int nonzero = 0;
        for (int t = 0; t < w->m.geom.times; t++) {
            out = cycle(x, &st, VV_ZERO, w->routes[c], w->target, 0, 0);
            assert_true(out_num(x, out, "energy") == J[t]);
            nonzero += J[t] != 0;
            vv_free(x->vc, out);
        }
        assert_true(nonzero > 10);
        /* past the horizon nothing arrives: J 0, the peak stays */
        out = cycle(x, &st, VV_ZERO, w->routes[c], w->target, 0, 0);
        assert_true(out_num(x, out, "energy") == 0);
        assert_true(out_num(x, out, "score") == score[c]);
        assert_true(out_num(x, out, "peak") == peak[c]);
        vv_free(x->vc, out);
        vv_free(x->vc, st);
    }
    world_free(x, w);
}

/* W's row plus delta's part of it (the learner's own row {learner: {n:
 * row}} in delta), as Self adds it. */
static vv apply(fx *x, vv routes, vv delta)
{
    vv_label p[2] = {lab(x, "learner"), lab(x, "n")};
    vv sum;
    assert_int_equal(vv_add(x->vc, routes, vv_get(delta, p, 2), &sum), 0);
    return sum;
}

/*
 * A training episode of class c (learn on its first cycle): the reset that
 * starts the next one emits on delta the change of every reachable source's
 * row, which Self adds to W; the rows are then dmm_if_train's up to the
 * rounding of new - old. A test episode (no learn) emits nothing.
 */
static void test_learner_train(void **state)
{
    fx *x = *state;
    world *w = world_new(x, 11);
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int learn = 0; learn < 2; learn++) {
            vv st = VV_ZERO, out;
            take_image(x, &st, w, c);
            for (int t = 0; t < w->m.geom.times; t++) {
                out = cycle(x, &st, VV_ZERO, w->routes[c], w->target, 0,
                            t == 0 && learn);
                assert_true(vv_is_zero(vv_child(out, lab(x, "delta"))));
                vv_free(x->vc, out);
            }
            out = cycle(x, &st, VV_ZERO, w->routes[c], w->target, 1, 0);
            vv delta = vv_ref(vv_child(out, lab(x, "delta")));
            vv_free(x->vc, out);
            vv_free(x->vc, st);
            if (!learn) {
                assert_true(vv_is_zero(delta));
                continue;
            }
            vv row = apply(x, w->routes[c], delta);
            dmm_if_model *trained = malloc(sizeof *trained);
            assert_non_null(trained);
            *trained = w->m;
            dmm_if_train(trained, &w->img, c);
            vv want = routes_of(x, trained, c);
            /* rows no source arrives on are left alone; here all arrive */
            tu_assert_vv_close(x->vc, row, want, 1e-15);
            vv_free(x->vc, want);
            vv_free(x->vc, row);
            vv_free(x->vc, delta);
            free(trained);
        }
    world_free(x, w);
}

/*
 * The routes change in the middle of an episode (as Self changes W two
 * cycles after a training reset, or a person edits it): from then on the
 * energy is the one of the new routes, as if the arrivals had come through
 * them.
 */
static void test_learner_routes_change(void **state)
{
    fx *x = *state;
    world *w = world_new(x, 21);
    world *w2 = world_new(x, 22); /* other routes, the same geometry */
    int c = 2;
    double J2[DMM_IF_TIMES_MAX];
    dmm_if_energy(&w2->m, &w->img, c, J2);
    vv st = VV_ZERO, out;
    take_image(x, &st, w, c);
    for (int t = 0; t < w->m.geom.times; t++) {
        vv r = t < 6 ? w->routes[c] : w2->routes[c];
        out = cycle(x, &st, VV_ZERO, r, w->target, 0, 0);
        if (t >= 6)
            assert_true(out_num(x, out, "energy") == J2[t]);
        vv_free(x->vc, out);
    }
    vv_free(x->vc, st);
    world_free(x, w);
    world_free(x, w2);
}

/* The masses an episode of state st keeps (borrowed). */
static vv masses_of(fx *x, vv st)
{
    return vv_child(vv_child(st, lab(x, "episode")), lab(x, "masses"));
}

/* Whether out shows these sums, bit for bit. */
static bool shows(fx *x, vv out, double energy, double score, double peak,
                  double total)
{
    return out_num(x, out, "energy") == energy &&
           out_num(x, out, "score") == score &&
           out_num(x, out, "peak") == peak && out_num(x, out, "total") == total;
}

/*
 * whole-episode 1: from the cycle the image is age 0 the learner shows the
 * sums of every age at once, the unfolded learner's after its last age (the
 * direct engine's score and peak, Σ J; energy: the last age's J), the same
 * each cycle until a reset, which shows zeros. The next image with the same
 * routes takes the episode's masses over (the same node); other routes
 * give that image's sums under them.
 */
static void test_learner_whole(void **state)
{
    fx *x = *state;
    world *w = world_new(x, 31), *w2 = world_new(x, 32);
    vv_label wl = lab(x, "whole-episode");
    assert_int_equal(
        vv_from_pairs(x->vc, 0, 1, &wl, (vv[]){vv_number(1)}, &learner_params),
        0);
    int times = w->m.geom.times;
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        double score[2][DMM_IF_CLASSES], peak[2][DMM_IF_CLASSES];
        double J[2][DMM_IF_TIMES_MAX], total[2] = {0, 0};
        const dmm_if_model *m[2] = {&w->m, &w2->m};
        for (int k = 0; k < 2; k++) {
            dmm_if_scores_peaks(m[k], &w2->img, 0, score[k], peak[k]);
            dmm_if_energy(m[k], &w2->img, c, J[k]);
            for (int t = 0; t < times; t++)
                total[k] += J[k][t];
        }
        vv st = VV_ZERO, out;
        take_image(x, &st, w, c);
        out = cycle(x, &st, VV_ZERO, w->routes[c], w->target, 0, 0);
        vv_free(x->vc, out);
        assert_true(total[0] != 0 && total[1] != total[0]);
        vv kept = vv_ref(masses_of(x, st));
        assert_false(vv_is_zero(kept));

        /* w2's image under w's routes: the masses taken over */
        out = cycle(x, &st, w2->image, w->routes[c], w->target, 1, 0);
        assert_true(shows(x, out, 0, 0, 0, 0)); /* the reset */
        vv_free(x->vc, out);
        for (int i = 0; i < 3; i++) {
            out = cycle(x, &st, VV_ZERO, w->routes[c], w->target, 0, 0);
            assert_true(shows(x, out, J[0][times - 1], score[0][c], peak[0][c],
                              total[0]));
            vv_free(x->vc, out);
            assert_true(masses_of(x, st).map == kept.map);
        }
        /* other routes: made again, w2's sums */
        out = cycle(x, &st, VV_ZERO, w2->routes[c], w->target, 0, 0);
        assert_true(
            shows(x, out, J[1][times - 1], score[1][c], peak[1][c], total[1]));
        assert_true(masses_of(x, st).map != kept.map);
        vv_free(x->vc, out);
        out = cycle(x, &st, VV_ZERO, w2->routes[c], w->target, 1, 0);
        assert_true(shows(x, out, 0, 0, 0, 0));
        vv_free(x->vc, out);
        vv_free(x->vc, kept);
        vv_free(x->vc, st);
    }
    vv_free(x->vc, learner_params);
    learner_params = VV_ZERO;
    world_free(x, w);
    world_free(x, w2);
}

/* Firing on input (taken) with state (taken) is refused, the state left as
 * it was, with a reason that holds want. */
static void refused_with(fx *x, vv in, vv st, const char *want)
{
    vv before = vv_ref(st), out;
    dmm_error err;
    assert_int_not_equal(fire(x, in, &st, &out, &err), 0);
    assert_non_null(strstr(err.text, want));
    assert_true(vv_equal(st, before));
    vv_free(x->vc, in);
    vv_free(x->vc, before);
    vv_free(x->vc, st);
}

/* input (JSON) refused on the cycle after image (JSON) was taken. */
static void refused(fx *x, const char *image, const char *routes,
                    const char *target, const char *want)
{
    vv img = tu_vv(x->vc, image), r = tu_vv(x->vc, routes),
       t = tu_vv(x->vc, target);
    vv st = VV_ZERO;
    vv out = cycle(x, &st, img, r, t, 1, 0);
    vv_free(x->vc, out);
    refused_with(x, input_of(x, VV_ZERO, r, t, 0, 0), st, want);
    vv_free(x->vc, img);
    vv_free(x->vc, r);
    vv_free(x->vc, t);
}

/* A state (JSON) refused with input (JSON). */
static void refused_state(fx *x, const char *state_json, const char *input,
                          const char *want)
{
    refused_with(x, tu_vv(x->vc, input), tu_vv(x->vc, state_json), want);
}

static void test_learner_bad(void **state)
{
    fx *x = *state;
    const char *routes = "{\"in\": {\"delay\": {\"s0\": {\"2\": 0.5, \"3\": "
                         "0.5}}}, \"blocked\": {\"delay\": {\"s0\": {\"0\": "
                         "0.1}}}}";
    const char *target = "{\"1\": 1}";
    refused(x, "{\"s0\": {\"1\": 0.5}}", routes, target, "no scalar part");
    refused(x, "{\"s0\": {\":number\": 1, \"1\": {\"a\": 1}}}", routes, target,
            "source s0 must be a flat vector");
    refused(x, "{\"s0\": {\":number\": 1, \"1\": 1}}", routes,
            "{\"1\": {\"a\": 1}}", "input target must be a flat vector");
    refused(x, "{\"s0\": {\":number\": 1, \"1\": 1}}",
            "{\"in\": {\"delay\": {\"s0\": {\"x\": 0.5}}}}", target,
            "route row s0 of input in must be {age");
    refused(x, "{\"s0\": {\":number\": 1, \"1\": 1}}",
            "{\"in\": {\"delay\": {\"s0\": {\"2\": {\"a\": 1}}}}}", target,
            "route row s0 of input in must be {age");
    refused(x, "{\"s0\": {\":number\": 1, \"1\": 1}}",
            "{\"in\": {\"delay\": {\"s0\": 0.5}}}", target,
            "route row s0 of input in must be {age");
    refused(x, "{\"s0\": {\":number\": 1, \"1\": 1}}", "{}", target,
            "input routes is empty: link it to Self's output");
    refused_state(x, "{\"age\": 2.5}", "{}", "state age must be an integer");
    refused_state(x, "{\"score\": {\"a\": 1}}", "{}",
                  "score must be a bare number");
    refused_state(x,
                  "{\"age\": 1, \"episode\": {\"table\": 3, \"horizon\": 4, "
                  "\"image\": {\"s0\": {\":number\": 1}}}}",
                  "{}", "episode table is not the");
    refused_state(x, "{\"age\": 1, \"episode\": {\"horizon\": 99}}", "{}",
                  "episode horizon must be an integer");
    refused_state(x, "{}", "{\"reset\": {\"a\": 1}}",
                  "input reset must be a bare number");
}

/*
 * Masses an episode keeps that do not fit its image (a state edited by
 * hand, with the routes the input gives): refused when the next image would
 * take them over.
 */
static void test_learner_bad_masses(void **state)
{
    fx *x = *state;
    world *w = world_new(x, 41);
    int c = 1;
    vv st = VV_ZERO, out;
    take_image(x, &st, w, c);
    out = cycle(x, &st, VV_ZERO, w->routes[c], w->target, 0, 0);
    vv_free(x->vc, out);
    const char *bad[3][2] = {
        {"{\"0\": {\"0\": 1}, \"x\": 2}", "episode masses is not the 26 x 82"},
        {"{\"0\": {\"0\": 30, \"1\": 2, \"80\": 1}, \"25\": {\"0\": 1}}",
         "episode masses give source s0 the distance 29"},
        {"{\"0\": {\"0\": 3}, \"1\": {\"81\": 2}}",
         "episode masses mark age 0 with 2, not 0 or 1"}};
    for (int k = 0; k < 3; k++) {
        vv_label p[2] = {lab(x, "episode"), lab(x, "masses")};
        vv edited, m = tu_vv(x->vc, bad[k][0]);
        assert_int_equal(vv_set(x->vc, st, p, 2, m, &edited), 0);
        vv_free(x->vc, m);
        /* the next image is taken, then its episode made */
        out = cycle(x, &edited, w->image, w->routes[c], w->target, 0, 0);
        vv_free(x->vc, out);
        refused_with(x, input_of(x, VV_ZERO, w->routes[c], w->target, 0, 0),
                     edited, bad[k][1]);
    }
    vv_free(x->vc, st);
    world_free(x, w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_learner_vs_direct, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_learner_train, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learner_routes_change, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_learner_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learner_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_learner_bad_masses, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
