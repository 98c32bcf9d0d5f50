// SPDX-License-Identifier: MIT
/*
 * Interference training as a DMM network (spec interference.md §3): the
 * `delay` and `interference` neuron types on cases worked out by hand (the
 * working is in the comments), the update they write into Self against
 * dmm_if_train, their bad inputs, and the whole experiment run by the engine
 * (networks/mnist-interference.json, mnist-learners.json, double-slit.json)
 * against the direct engine, prediction by prediction.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dmm.h"
#include "dmm_experiments.h"
#include "dmm_interference.h"
#include "dmm_neuron.h"
#include "net_hooks.h"
#include "testutil_net.h"

/* One context (counting allocator) and registry per test. */
typedef tn_world fx;

static int setup(void **state)
{
    return tn_world_setup_counted(state);
}

static int teardown(void **state)
{
    return tn_world_teardown(state);
}

/* Fire neuron type/n on input and params (JSON, "" for zero) and state.
 * On success *out and *new_state get new values; on error both stay zero
 * (checked) and err says why. */
static int fire(fx *x, const char *type, const char *input, const char *params,
                vv state, vv *out, vv *new_state, dmm_error *err)
{
    vv in = *input ? tu_vv(x->vc, input) : VV_ZERO;
    vv par = *params ? tu_vv(x->vc, params) : VV_ZERO;
    int rc = tn_fire(x, type, in, par, state, out, new_state, err);
    vv_free(x->vc, in);
    vv_free(x->vc, par);
    return rc;
}

static void expect(fx *x, vv got, const char *want)
{
    vv w = tu_vv(x->vc, want);
    tu_assert_vv_close(x->vc, got, w, 1e-15);
    vv_free(x->vc, w);
}

/* ---- delay ---------------------------------------------------------------
 */

static void test_delay_ages(void **state)
{
    fx *x = *state;
    dmm_error err;
    vv st = VV_ZERO, out, next;
    const char *par = "{\"length\": 3}";
    /* A = {x: {a: 1}} in, then B = {y: 2}, then nothing: each input moves up
     * one age per firing and is gone after age 2 (length 3). */
    static const char *const in[] = {"{\"x\": {\"a\": 1}}", "{\"y\": 2}", "",
                                     "", ""};
    static const char *const want[] = {
        "{\"0\": {\"0\": {\"x\": {\"a\": 1}}}}",
        "{\"0\": {\"0\": {\"y\": 2}}, \"1\": {\"1\": {\"x\": {\"a\": 1}}}}",
        "{\"1\": {\"1\": {\"y\": 2}}, \"2\": {\"2\": {\"x\": {\"a\": 1}}}}",
        "{\"2\": {\"2\": {\"y\": 2}}}",
        "{}",
    };
    for (int k = 0; k < 5; k++) {
        assert_int_equal(fire(x, "delay", in[k], par, st, &out, &next, &err),
                         0);
        expect(x, out, want[k]);
        vv_free(x->vc, out);
        vv_free(x->vc, st);
        st = next;
    }
    assert_true(vv_is_zero(st));
    /* The default length 1 only says what came in this cycle. */
    assert_int_equal(
        fire(x, "delay", "{\"x\": 1}", "", VV_ZERO, &out, &next, &err), 0);
    expect(x, out, "{\"0\": {\"0\": {\"x\": 1}}}");
    vv st2 = next;
    vv_free(x->vc, out);
    assert_int_equal(fire(x, "delay", "", "", st2, &out, &next, &err), 0);
    assert_true(vv_is_zero(out) && vv_is_zero(next));
    vv_free(x->vc, st2);
}

static void test_delay_bad(void **state)
{
    fx *x = *state;
    dmm_error err;
    vv out, next;
    static const char *const bad_len[] = {
        "{\"length\": 65}", "{\"length\": 2.5}", "{\"length\": -1}"};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(fire(x, "delay", "{\"x\": 1}", bad_len[k], VV_ZERO,
                              &out, &next, &err),
                         DMM_E_INVAL);
        assert_non_null(strstr(err.text, "length must be an integer"));
    }
    vv st = tu_vv(x->vc, "{\"foo\": {\"x\": 1}}");
    assert_int_equal(
        fire(x, "delay", "", "{\"length\": 4}", st, &out, &next, &err),
        DMM_E_INVAL);
    assert_non_null(strstr(err.text, "state key \"foo\" is not an age"));
    vv_free(x->vc, st);
    assert_int_equal(fire(x, "delay", "", "", vv_number(3), &out, &next, &err),
                     DMM_E_INVAL);
}

/* ---- delay lines run by the engine ----------------------------------------
 *
 * The engine fires `delay` neurons itself (net_cycle.c, delay_fire, by
 * dmm_delay_step) instead of calling the type's function. Two copies of one
 * network, one with that path off, fed alike: the same outputs and the same
 * saved state, through lines of length 1, 3 and 64 (one age and many), an
 * input of two rows, a reader of ages, a save restored in the middle, edits
 * that remove a row, take a line out and bring it back. The second copy is
 * also saved and restored before every cycle, so its states are always read
 * from the tree of a save, where the first keeps them per neuron and makes
 * the tree only when asked (net->stlazy), also before the edit that
 * rebuilds its list of neurons.
 */

#define DELAY_SELF                                                             \
    "\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": {\"single\": "   \
    "1}}}}}"
#define DELAY_TICK "{\"tick\": {\"accum\": {\"self\": {\"single\": 1}}}}"

static const char delay_net[] =
    "{\"dmm\": 1, \"params\": {\"delay\": {\"d3\": {\"length\": 3}, "
    "\"d64\": {\"length\": 64}}}, \"matrix\": {" DELAY_SELF ", "
    "\"delay\": {\"d1\": {\"x\": {\"input\": {\"a\": {\"x\": 1}}}}, "
    "\"d3\": {\"x\": {\"input\": {\"a\": {\"x\": 1}}}, "
    "\"y\": {\"input\": {\"b\": {\"y\": 0.5}}}}, "
    "\"d64\": {\"x\": {\"input\": {\"a\": {\"x\": 2}}}}}, "
    "\"identity\": {\"r\": {\"in\": {\"delay\": {\"d3\": {\"0\": 1, \"1\": 1, "
    "\"2\": 0.5}, \"d64\": {\"9\": 1, \"10\": 1}}}}}, "
    "\"input\": {\"a\": " DELAY_TICK ", \"b\": " DELAY_TICK "}}}";

/* new: the network's saved state. */
static char *delay_saved(const dmm_net *net)
{
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

/* The path on or off; on, over threads threads, their work split. */
static void delay_path(dmm_net *net, bool on, unsigned threads)
{
    dmm__delay_set(net, on);
    if (on && threads > 1) {
        dmm_error err;
        assert_int_equal(dmm_net_set_threads(net, threads, &err), 0);
        dmm__pool_set_mode(net, DMM__POOL_SPLIT);
    }
}

/* Net replaced by its own save restored; the path as it was. */
static void delay_reload(fx *x, dmm_net **net, bool on, unsigned threads)
{
    char *s = delay_saved(*net);
    dmm_error err;
    dmm_net_free(*net);
    assert_int_equal(
        dmm_net_restore_text(x->vc, x->reg, s, strlen(s), "<state>", net, &err),
        0);
    delay_path(*net, on, threads);
    free(s);
}

static void delay_edit(fx *x, dmm_net *net, const char *delta)
{
    dmm_error err;
    vv d = tu_vv(x->vc, delta);
    assert_int_equal(dmm_net_edit(net, d, &err), 0);
    vv_free(x->vc, d);
}

static void delay_run(fx *x, unsigned threads)
{
    dmm_net *net[2];
    for (int i = 0; i < 2; i++) {
        net[i] = tn_load(x, delay_net);
        delay_path(net[i], i == 0, threads);
    }
    vv_label a = tu_label(x->vc, "a"), b = tu_label(x->vc, "b");
    for (int t = 0; t < 90; t++) {
        char fa[96], fb[64];
        snprintf(fa, sizeof fa, "{\"x\": {\"p\": %d, \"q\": %d}}", t + 1, -t);
        snprintf(fb, sizeof fb, "{\"y\": {\"p\": %d}}", 2 * t + 1);
        for (int i = 0; i < 2; i++) {
            dmm_error err;
            if (t % 3 != 2) {
                vv v = tu_vv(x->vc, fa);
                assert_int_equal(dmm_net_feed(net[i], a, v, &err), 0);
                vv_free(x->vc, v);
            }
            if (t % 5 == 0) {
                vv v = tu_vv(x->vc, fb);
                assert_int_equal(dmm_net_feed(net[i], b, v, &err), 0);
                vv_free(x->vc, v);
            }
            if (t == 30 || i == 1) /* 1: its states always from a save */
                delay_reload(x, &net[i], i == 0, threads);
            if (t == 45) /* d3 loses its row y */
                delay_edit(x, net[i],
                           "{\"delay\": {\"d3\": {\"y\": {\"input\": {\"b\": "
                           "{\"y\": -0.5}}}}}}");
            if (t == 60) /* d1 is out: its state goes */
                delay_edit(x, net[i],
                           "{\"delay\": {\"d1\": {\"x\": {\"input\": {\"a\": "
                           "{\"x\": -1}}}}}}");
            if (t == 66) /* and back, from nothing */
                delay_edit(x, net[i],
                           "{\"delay\": {\"d1\": {\"x\": {\"input\": {\"a\": "
                           "{\"x\": 3}}}}}}");
            assert_int_equal(dmm_net_step(net[i], &err), 0);
        }
        /* (not every cycle: net 0 makes Y and its states only when
         * asked, and the edits above find them not made) */
        if (t % 3 == 0 || t > 85)
            assert_true(
                vv_equal(dmm_net_outputs(net[0]), dmm_net_outputs(net[1])));
        if (t % 7 == 6 || t > 85) {
            char *s0 = delay_saved(net[0]), *s1 = delay_saved(net[1]);
            assert_string_equal(s0, s1);
            free(s0);
            free(s1);
        }
    }
    /* the lines held several ages, and fired by the engine */
    vv y = dmm_net_outputs(net[0]);
    vv_label p[2] = {tu_label(x->vc, "delay"), tu_label(x->vc, "d64")};
    assert_true(vv_nchildren(vv_get(y, p, 2)) > 20);
    assert_true(dmm__delay_fired(net[0]) > 100);
    assert_int_equal(dmm__delay_fired(net[1]), 0);
    for (int i = 0; i < 2; i++)
        dmm_net_free(net[i]);
}

static void test_delay_engine(void **state)
{
    delay_run(*state, 1);
}

/* The same over two threads (the path fires in the down movement, split
 * over them), on a context without the counting allocator. */
static void test_delay_engine_threads(void **state)
{
    (void)state;
    void *w;
    assert_int_equal(tn_world_setup(&w, NULL), 0);
    delay_run(w, 2);
    assert_int_equal(tn_world_teardown(&w), 0);
}

/* What the engine's path cannot run goes to the type's function, which says
 * why, with the path on as off: a state restored that is not {age: X}
 * (another key, a number). (A bad length is refused when the network is
 * loaded.) */
static void test_delay_engine_bad(void **state)
{
    fx *x = *state;
    /* a state with a key that is no age, then a number */
    static const char *const bad_state[] = {"{\"foo\": {\"x\": 1}}", "3"};
    static const char *const why[] = {"state key \"foo\" is not an age",
                                      "state must be {age: input}"};
    for (int k = 0; k < 2; k++)
        for (int on = 0; on < 2; on++) {
            dmm_net *net = tn_load(x, delay_net);
            dmm_error err;
            assert_int_equal(dmm_net_step(net, &err), 0);
            char *s = delay_saved(net);
            dmm_net_free(net);
            json_error_t je;
            json_t *doc = json_loads(s, 0, &je);
            free(s);
            assert_non_null(doc);
            json_t *st = json_object_get(doc, "states");
            json_t *d = json_object();
            json_object_set_new(d, "d3",
                                json_loads(bad_state[k], JSON_DECODE_ANY, &je));
            json_object_set_new(st, "delay", d);
            s = json_dumps(doc, 0);
            json_decref(doc);
            assert_int_equal(dmm_net_restore_text(x->vc, x->reg, s, strlen(s),
                                                  "<state>", &net, &err),
                             0);
            free(s);
            dmm__delay_set(net, on);
            size_t before = dmm__delay_fired(net);
            assert_int_equal(dmm_net_step(net, &err), DMM_E_INVAL);
            assert_non_null(strstr(err.text, why[k]));
            assert_non_null(strstr(err.text, "delay/d3"));
            /* the other lines fired before the cycle failed, d3 did not */
            assert_true(dmm__delay_fired(net) - before <= 2);
            dmm_net_free(net);
        }
}

/* new (free()): v as compact JSON with sorted keys. */
static char *delay_text(fx *x, vv v)
{
    json_t *j = vv_to_json(x->vc, v);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(j);
    assert_non_null(s);
    return s;
}

/* Allocations of 20 cycles in which d64 only ages its one input (d1 and d3
 * are empty), the path on or off; then Y kept by the host across cycles,
 * and one age of d64's output kept alone, must stay as they were. */
static long delay_reuse_run(fx *x, bool on)
{
    dmm_net *net = tn_load(x, delay_net);
    dmm__delay_set(net, on);
    dmm_error err;
    vv v = tu_vv(x->vc, "{\"x\": {\"p\": 1, \"q\": 2}}");
    assert_int_equal(dmm_net_feed(net, tu_label(x->vc, "a"), v, &err), 0);
    vv_free(x->vc, v);
    for (int t = 0; t < 6; t++)
        assert_int_equal(dmm_net_step(net, &err), 0);
    long before = x->alloc.count;
    for (int t = 0; t < 20; t++)
        assert_int_equal(dmm_net_step(net, &err), 0);
    long allocs = x->alloc.count - before;
    vv_label p[2] = {tu_label(x->vc, "delay"), tu_label(x->vc, "d64")};
    for (int whole = 0; whole < 2; whole++) {
        vv y = dmm_net_outputs(net), held;
        if (whole) {
            held = vv_ref(y);
        } else { /* {a: X}: the line's state, its output's one child */
            vv_iter it;
            vv_label l;
            vv_iter_init(&it, vv_get(y, p, 2));
            assert_true(vv_iter_next(&it, &l, &held));
            held = vv_ref(held);
        }
        char *was = delay_text(x, held);
        for (int t = 0; t < 4; t++)
            assert_int_equal(dmm_net_step(net, &err), 0);
        char *is = delay_text(x, held);
        assert_string_equal(was, is);
        free(was);
        free(is);
        vv_free(x->vc, held);
    }
    assert_int_equal(vv_nchildren(vv_get(dmm_net_outputs(net), p, 2)), 1);
    dmm_net_free(net);
    return allocs;
}

/* The engine writes a line's output of the cycle before last over (one age:
 * dmm_delay_step_reuse, vv_rewrap) instead of making its two maps: two
 * allocations a cycle fewer than the type's function, which makes them;
 * never a value someone else still holds (Y kept by the host, one age kept
 * alone, another neuron's output). */
static void test_delay_engine_reuse(void **state)
{
    fx *x = *state;
    long on = delay_reuse_run(x, true), off = delay_reuse_run(x, false);
    /* 18 of the 20 cycles: in the two after `r` read d64's ages 9 and 10,
     * its output is that age's value itself, still in Y, and the spare
     * that holds it is not written over */
    assert_int_equal(off - on, 2 * 18);
}

/* ---- interference: energy and episode ------------------------------------
 *
 * Two components "0", "1"; target v = [0, 1]; thresholds ±0.7, scale 1000.
 * A: f = [0, 1], sim 1, a friend, route P = 0.25: arrives as
 *    {":number": 0.25, "1": 0.25}.
 * B: f = [0.8, 0.6], sim 0.6, a stranger, P = 0.5: {0.5, "0": 0.4, "1": 0.3}.
 * C: f = [0.8, -0.6], sim -0.6, a stranger, P = 0.5.
 * J(A, B) = 1000 (0.25 + [0.4, 0.3] . f_A) = 1000 (0.25 + 0.3) = 550.
 * J(C) = 1000 ([0.4, -0.3] . v) = -300 (no friend: a = v).
 */
#define ARR_A  "\"A\": {\":number\": 0.25, \"1\": 0.25}"
#define ARR_B  "\"B\": {\":number\": 0.5, \"0\": 0.4, \"1\": 0.3}"
#define ARR_C  "\"C\": {\":number\": 0.5, \"0\": 0.4, \"1\": -0.3}"
#define TARGET "\"target\": {\"1\": 1}"

static double out_num(fx *x, vv out, const char *name)
{
    return vv_child(out, tu_label(x->vc, name)).num;
}

static void test_interference_energy(void **state)
{
    fx *x = *state;
    dmm_error err;
    vv st = VV_ZERO, out, next;
    static const char *const in[] = {
        "{\"reset\": 1, " TARGET "}",
        "{" TARGET ", \"in\": {\"3\": {" ARR_C "}}}",
        "{" TARGET ", \"in\": {\"4\": {" ARR_A ", " ARR_B "}}}",
        "{" TARGET ", \"reset\": 1}",
    };
    /* energy, score = max(0, J), peak = max J over cycles with arrivals,
     * total = sum J; a reset starts again. */
    static const double want[][4] = {{0, 0, 0, 0},
                                     {-300, 0, -300, -300},
                                     {550, 550, 550, 250},
                                     {0, 0, 0, 0}};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(
            fire(x, "interference", in[k], "", st, &out, &next, &err), 0);
        assert_true(fabs(out_num(x, out, "energy") - want[k][0]) < 1e-12);
        assert_true(fabs(out_num(x, out, "score") - want[k][1]) < 1e-12);
        assert_true(fabs(out_num(x, out, "peak") - want[k][2]) < 1e-12);
        assert_true(fabs(out_num(x, out, "total") - want[k][3]) < 1e-12);
        assert_true(vv_is_zero(vv_child(out, tu_label(x->vc, "delta"))));
        vv_free(x->vc, out);
        vv_free(x->vc, st);
        st = next;
    }
    vv_free(x->vc, st);

    /* The thresholds and scale are parameters: with friend = 0.5, B is a
     * friend too, a = mean([0, 1], [0.8, 0.6]) and J = 1000 (0.25 + 0.5). */
    assert_int_equal(fire(x, "interference",
                          "{" TARGET ", \"in\": {\"4\": {" ARR_A ", " ARR_B
                          "}}}",
                          "{\"friend\": 0.5}", VV_ZERO, &out, &next, &err),
                     0);
    assert_true(fabs(out_num(x, out, "energy") - 750) < 1e-12);
    vv_free(x->vc, out);
    vv_free(x->vc, next);

    /* A negative route (the double slit's additive update can make one):
     * f = r / P is still [0, 1], a friend of mass -0.25: J = -250. */
    assert_int_equal(fire(x, "interference",
                          "{" TARGET ", \"in\": {\"4\": {\"A\": "
                          "{\":number\": -0.25, \"1\": -0.25}}}}",
                          "", VV_ZERO, &out, &next, &err),
                     0);
    assert_true(fabs(out_num(x, out, "energy") + 250) < 1e-12);
    vv_free(x->vc, out);
    vv_free(x->vc, next);
}

/*
 * Arrivals read by the paths of arrival(): labels new to the last arrival,
 * the same labels in component order (read in place, with components the
 * arrival lacks), the same labels not in component order (a subset, and one
 * with a component the target has not). Target (a 1, b 0.5), friend 0.7,
 * foe -0.7; one arrival an age, in age order:
 *   1 (0.9, 0.1) friend m 1   2 (0.3, 0.6) stranger   3 (b 0.8) stranger
 *   4 (b 0.5) m 0.5 stranger  5 (2, 0.4) m 2 friend    6 (a -0.9) foe
 *   7 (a 0.8, c 0.5) friend   8 (0.1, 0.1) stranger   9 (0.2, 0.2) stranger
 * Friends: mass 4, mean f (0.9, 0.1, 1/6); the rest (-0.3, 2.2, 0):
 * J = 1000 (4 - 0.27 + 0.22) = 3950.
 */
static void test_interference_arrival_paths(void **state)
{
    fx *x = *state;
    dmm_error err;
    vv out, next;
    assert_int_equal(
        fire(x, "interference",
             "{\"target\": {\"a\": 1, \"b\": 0.5}, \"in\": {"
             "\"1\": {\"s\": {\":number\": 1, \"a\": 0.9, \"b\": 0.1}}, "
             "\"2\": {\"s\": {\":number\": 1, \"a\": 0.3, \"b\": 0.6}}, "
             "\"3\": {\"s\": {\":number\": 1, \"b\": 0.8}}, "
             "\"4\": {\"s\": {\":number\": 0.5, \"b\": 0.5}}, "
             "\"5\": {\"s\": {\":number\": 2, \"a\": 2, \"b\": 0.4}}, "
             "\"6\": {\"s\": {\":number\": 1, \"a\": -0.9}}, "
             "\"7\": {\"s\": {\":number\": 1, \"a\": 0.8, \"c\": 0.5}}, "
             "\"8\": {\"s\": {\":number\": 1, \"a\": 0.1, \"b\": 0.1}}, "
             "\"9\": {\"s\": {\":number\": 1, \"a\": 0.2, \"b\": 0.2}}}}",
             "", VV_ZERO, &out, &next, &err),
        0);
    assert_true(fabs(out_num(x, out, "energy") - 3950) < 1e-9);
    vv_free(x->vc, out);
    vv_free(x->vc, next);
}

/*
 * The update, by hand. Routes of n (its row of W):
 *   in:      A {2: 0.25, 3: 0.25}   B {3: 0.5}
 *   blocked: A {0: 0.25, 1: 0.25}   B {0: 0.1, 1: 0.2, 2: 0.2}
 * A learning episode sees A at ages 2 and 3 (eta +1) and B at 3 (eta -0.5):
 * added A {2: 0.25, 3: 0.25}, B {3: -0.25}. Rows renormalised:
 *   A: in 0.5, 0.5, blocked 0.25, 0.25, S = 1.5: in 1/3 (+1/12), blocked 1/6
 *      (-1/12).
 *   B: in 0.25, blocked 0.1, 0.2, 0.2, S = 0.75: in 1/3 (-1/6), blocked 2/15
 *      (+1/30), 4/15 (+1/15), 4/15 (+1/15).
 */
#define ROUTES                                                                 \
    "\"routes\": {\"in\": {\"delay\": {\"A\": {\"2\": 0.25, \"3\": 0.25}, "    \
    "\"B\": {\"3\": 0.5}}}, \"blocked\": {\"delay\": {\"A\": {\"0\": 0.25, "   \
    "\"1\": 0.25}, \"B\": {\"0\": 0.1, \"1\": 0.2, \"2\": 0.2}}}}"
#define ARR_B_STRANGER "\"B\": {\":number\": 0.5, \"0\": 0.4, \"1\": 0.3}"

/* Input `in` given as its terms (dmm_fire.terms) gives the bits of the
 * same input summed: output, state and pending update, in a training
 * episode; also when two terms share an (age, source), which the neuron
 * then sums itself. */
static void test_interference_terms(void **state)
{
    fx *x = *state;
    const dmm_type_info *t =
        dmm_registry_find(x->reg, tu_label(x->vc, "interference"));
    static const char *const term_json[] = {
        "{\"3\": {\"s1\": {\":number\": 1, \"1\": 0.9, \"2\": 0.1}}}",
        "{\"2\": {\"s2\": {\":number\": 1, \"1\": -0.9}}}",
        "{\"3\": {\"s0\": {\":number\": 1, \"1\": 0.1, \"2\": 0.3}}}",
        "{\"3\": {\"s1\": {\":number\": 1, \"1\": 0.3}}}"};
    const double w[4] = {0.3, 2.0 / 3, 0.7, 0.1};
    vv v[4];
    for (int k = 0; k < 4; k++)
        v[k] = tu_vv(x->vc, term_json[k]);
    for (size_t n = 3; n <= 4; n++) { /* 4: s1 at age 3 twice */
        vv outs[2], states[2];
        for (int how = 0; how < 2; how++) {
            vv rest = tu_vv(x->vc, "{\"target\": {\"1\": 1, \"2\": 0.5},"
                                   " \"learn\": 1}");
            vv in = rest, sum = VV_ZERO;
            dmm_terms terms[6] = {{0}};
            if (how == 0) {
                vv_label l = tu_label(x->vc, "in");
                vv next;
                assert_int_equal(vv_sum(x->vc, n, w, v, &sum), 0);
                assert_int_equal(vv_set(x->vc, rest, &l, 1, sum, &next), 0);
                in = next;
            } else {
                terms[0] = (dmm_terms){.given = true, .n = n, .w = w, .v = v};
            }
            uint64_t rng[4] = {1, 2, 3, 4};
            dmm_error err;
            dmm_error_clear(&err);
            dmm_fire f = {.vc = x->vc,
                          .type = t,
                          .name = tu_label(x->vc, "n"),
                          .input = in,
                          .step = 1,
                          .rng = rng,
                          .err = &err,
                          .terms = how ? terms : NULL};
            assert_int_equal(t->desc->fn(&f), 0);
            outs[how] = f.output;
            states[how] = f.new_state;
            if (how == 0) {
                vv_free(x->vc, rest);
                vv_free(x->vc, sum);
            }
            vv_free(x->vc, in);
        }
        assert_true(vv_equal(outs[0], outs[1]));
        assert_true(vv_equal(states[0], states[1]));
        assert_false(vv_is_zero(vv_child(outs[0], tu_label(x->vc, "energy"))));
        for (int how = 0; how < 2; how++) {
            vv_free(x->vc, outs[how]);
            vv_free(x->vc, states[how]);
        }
    }
    for (int k = 0; k < 4; k++)
        vv_free(x->vc, v[k]);
}

static void test_interference_delta(void **state)
{
    fx *x = *state;
    dmm_error err;
    vv st = VV_ZERO, out, next;
    static const char *const in[] = {
        "{\"reset\": 1, \"learn\": 1, " TARGET ", " ROUTES "}",
        "{" TARGET ", " ROUTES ", \"in\": {\"2\": {\"A\": {\":number\": 0.25, "
        "\"1\": 0.25}}}}",
        "{" TARGET ", " ROUTES ", \"in\": {\"3\": {" ARR_A ", " ARR_B_STRANGER
        "}}}",
        "{\"reset\": 1, " TARGET ", " ROUTES "}",
    };
    for (int k = 0; k < 4; k++) {
        assert_int_equal(
            fire(x, "interference", in[k], "", st, &out, &next, &err), 0);
        vv delta = vv_child(out, tu_label(x->vc, "delta"));
        if (k < 3) {
            assert_true(vv_is_zero(delta));
        } else {
            expect(x, delta,
                   "{\"interference\": {\"n\": {"
                   "\"in\": {\"delay\": {\"A\": {\"2\": 0.08333333333333333, "
                   "\"3\": 0.08333333333333333}, \"B\": {\"3\": "
                   "-0.16666666666666666}}}, "
                   "\"blocked\": {\"delay\": {\"A\": {\"0\": "
                   "-0.08333333333333333, \"1\": -0.08333333333333333}, "
                   "\"B\": {\"0\": 0.03333333333333333, \"1\": "
                   "0.06666666666666667, \"2\": 0.06666666666666667}}}}}}");
            /* Nothing pending after the reset: no second update. */
            assert_true(vv_is_zero(vv_child(next, tu_label(x->vc, "delta"))));
        }
        vv_free(x->vc, out);
        vv_free(x->vc, st);
        st = next;
    }
    vv_free(x->vc, st);
}

/*
 * The same rule against dmm_if_train on MNIST geometry: sources 0 and 40
 * (distance 2 and 10 to class 0), a friend and a foe, random routes; the
 * neuron sees each source at every age d >= dist, as in an episode.
 */
static void route_json(vv_buf *b, const dmm_if_model *m, const int *src)
{
    vv_buf_printf(b, "\"routes\": {");
    for (int side = 0; side < 2; side++) {
        vv_buf_printf(b, "%s\"%s\": {\"delay\": {", side ? ", " : "",
                      side ? "blocked" : "in");
        for (int i = 0; i < 2; i++) {
            int s = src[i], dist = dmm_if_dist(s, 0), first = 1;
            vv_buf_printf(b, "%s\"s%d\": {", i ? ", " : "", s);
            for (int d = 0; d < DMM_IF_TIMES; d++)
                if ((d >= dist) == !side) {
                    vv_buf_printf(b, "%s\"%d\": ", first ? "" : ", ", d);
                    vv_buf_number(b, m->p[0][s][d]);
                    first = 0;
                }
            vv_buf_printf(b, "}");
        }
        vv_buf_printf(b, "}}");
    }
    vv_buf_printf(b, "}");
}

static void test_interference_vs_train(void **state)
{
    fx *x = *state;
    dmm_if_model *m = calloc(1, sizeof *m), *old = calloc(1, sizeof *old);
    assert_non_null(m);
    assert_non_null(old);
    dmm_if_rng r;
    dmm_if_rng_seed(&r, 7);
    dmm_if_model_init_random(m, &r);
    *old = *m;
    dmm_if_image img = {0};
    const int src[2] = {0, 40};
    img.eta[0] = DMM_IF_ETA_FRIEND; /* f = [0, 1/3, ...]: sim 1 */
    img.eta[40] = DMM_IF_ETA_FOE;   /* f = minus that: sim -1 */
    vv st = VV_ZERO, out, next;
    dmm_error err;
    /* t = 0: reset + learn; t = 1..24: arrivals of age t; t = 25: reset. */
    for (int t = 0; t <= DMM_IF_TIMES; t++) {
        vv_buf b = {0};
        vv_buf_printf(&b, "{\"target\": {");
        for (int k = 1; k < DMM_IF_DIM; k++)
            vv_buf_printf(&b, "%s\"%d\": 0.3333333333333333", k > 1 ? ", " : "",
                          k);
        vv_buf_printf(&b, "}, ");
        route_json(&b, m, src);
        if (t == 0 || t == DMM_IF_TIMES)
            vv_buf_printf(&b, ", \"reset\": 1%s", t ? "" : ", \"learn\": 1");
        int any = 0;
        for (int i = 0; i < 2 && t > 0 && t < DMM_IF_TIMES; i++) {
            int s = src[i];
            if (t < dmm_if_dist(s, 0))
                continue;
            double p = m->p[0][s][t], sgn = i ? -1 : 1;
            vv_buf_printf(&b, any ? ", " : ", \"in\": {\"%d\": {", t);
            vv_buf_printf(&b, "\"s%d\": {\":number\": ", s);
            vv_buf_number(&b, p);
            for (int k = 1; k < DMM_IF_DIM; k++) {
                vv_buf_printf(&b, ", \"%d\": ", k);
                vv_buf_number(&b, p * sgn / 3);
            }
            vv_buf_printf(&b, "}");
            any = 1;
        }
        vv_buf_printf(&b, any ? "}}}" : "}");
        vv_buf_append(&b, "", 1);
        assert_int_equal(
            fire(x, "interference", b.data, "", st, &out, &next, &err), 0);
        free(b.data);
        vv_free(x->vc, st);
        st = next;
        if (t < DMM_IF_TIMES)
            vv_free(x->vc, out);
    }
    /* old + delta against dmm_if_train of the same rows. */
    dmm_if_train(m, &img, 0);
    vv delta = vv_child(out, tu_label(x->vc, "delta"));
    double worst = 0;
    for (int i = 0; i < 2; i++) {
        int s = src[i], dist = dmm_if_dist(s, 0);
        for (int d = 0; d < DMM_IF_TIMES; d++) {
            char sn[8], dn[8];
            snprintf(sn, sizeof sn, "s%d", s);
            snprintf(dn, sizeof dn, "%d", d);
            vv_label p[6] = {tu_label(x->vc, "interference"),
                             tu_label(x->vc, "n"),
                             tu_label(x->vc, d >= dist ? "in" : "blocked"),
                             tu_label(x->vc, "delay"),
                             tu_label(x->vc, sn),
                             tu_label(x->vc, dn)};
            double got = old->p[0][s][d] + vv_get(delta, p, 6).num;
            worst = fmax(worst, fabs(got - m->p[0][s][d]));
        }
    }
    assert_true(worst < 1e-16);
    /* The friend's reachable routes grew, the foe's shrank. */
    assert_true(m->p[0][0][24] > old->p[0][0][24]);
    assert_true(m->p[0][40][24] < 0.5 * old->p[0][40][24]);
    vv_free(x->vc, out);
    vv_free(x->vc, st);
    free(m);
    free(old);
}

/* Each bad input is refused with a message, outputs and state untouched
 * (fire checks that nothing was set). */
static void test_interference_bad(void **state)
{
    fx *x = *state;
    dmm_error err;
    vv out, next;
    static const struct {
        const char *input, *msg;
    } cases[] = {
        {"{\"in\": 3}", "must be {age: {source: vector}}"},
        {"{\"in\": {\"3\": 5}}", "at age 3 must be {source: vector}"},
        {"{\"in\": {\"3\": {\"A\": {\"1\": 0.5}}}}",
         "arrival 3/A has no scalar part"},
        {"{\"in\": {\"3\": {\"A\": {\":number\": 1, \"1\": {\"x\": 1}}}}}",
         "must be a flat vector"},
        {"{\"reset\": {\"x\": 1}}", "input reset must be a bare number"},
        {"{\"learn\": {\"x\": 1}}", "input learn must be a bare number"},
        {"{\"target\": {\"1\": {\"x\": 1}}}", "input target must be a flat"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(fire(x, "interference", cases[k].input, "", VV_ZERO,
                              &out, &next, &err),
                         DMM_E_INVAL);
        if (!strstr(err.text, cases[k].msg))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", k, err.text,
                     cases[k].msg);
    }

    /* Learning, then a reset whose routes cannot take the update. */
    vv st;
    assert_int_equal(fire(x, "interference",
                          "{\"reset\": 1, \"learn\": 1, \"in\": {\"3\": "
                          "{" ARR_A "}}}",
                          "", VV_ZERO, &out, &st, &err),
                     0);
    vv_free(x->vc, out);
    static const struct {
        const char *input, *msg;
    } commit_cases[] = {
        {"{\"reset\": 1}", "1 sources arrived while learning but 0 have"},
        {"{\"reset\": 1, \"routes\": {\"in\": {\"delay\": {\"A\": {\"x\": "
         "0.5}}}}}",
         "route from output \"x\": not an age"},
        {"{\"reset\": 1, \"routes\": {\"in\": {\"delay\": {\"A\": {\"2\": "
         "0.5}}}}}",
         "arrival at age 3 has no reachable route"},
        {"{\"reset\": 1, \"routes\": {\"in\": {\"delay\": {\"A\": {\"3\": "
         "0.5}}}, \"blocked\": {\"delay\": {\"A\": {\"3\": 0.5}}}}}",
         "must be one number in in or blocked"},
    };
    for (size_t k = 0; k < sizeof commit_cases / sizeof commit_cases[0]; k++) {
        assert_int_equal(fire(x, "interference", commit_cases[k].input, "", st,
                              &out, &next, &err),
                         DMM_E_INVAL);
        if (!strstr(err.text, commit_cases[k].msg))
            fail_msg("commit case %zu: \"%s\" lacks \"%s\"", k, err.text,
                     commit_cases[k].msg);
    }
    /* With its route the same state commits: A's row is all reachable,
     * so it stays 1 after renormalising (delta 0.5 at age 3: 0.5 -> 1). */
    assert_int_equal(fire(x, "interference",
                          "{\"reset\": 1, \"routes\": {\"in\": {\"delay\": "
                          "{\"A\": {\"3\": 0.5}}}}}",
                          "", st, &out, &next, &err),
                     0);
    expect(x, vv_child(out, tu_label(x->vc, "delta")),
           "{\"interference\": {\"n\": {\"in\": {\"delay\": {\"A\": {\"3\": "
           "0.5}}}}}}");
    vv_free(x->vc, out);
    vv_free(x->vc, next);
    vv_free(x->vc, st);
}

/* ---- the networks against the direct engine ------------------------------
 *
 * Synthetic digits: a bright 9 x 9 block whose place depends on the digit,
 * on a dim noisy background; labels cycle 0, 1, 2, 3, 4 (3 is not one of the
 * four classes and must be skipped). */
typedef struct synth {
    uint8_t *images, *labels;
    size_t n;
} synth;

static void synth_make(synth *d, size_t n, uint64_t seed)
{
    d->n = n;
    d->images = malloc(n * DMM_IF_PIXELS);
    d->labels = malloc(n);
    assert_non_null(d->images);
    assert_non_null(d->labels);
    dmm_if_rng r;
    dmm_if_rng_seed(&r, seed);
    static const int at[5][2] = {{3, 3}, {3, 15}, {15, 15}, {9, 9}, {15, 3}};
    for (size_t i = 0; i < n; i++) {
        int digit = (int)(i % 5);
        uint8_t *px = d->images + i * DMM_IF_PIXELS;
        d->labels[i] = (uint8_t)digit;
        int y0 = at[digit][0] + (int)dmm_if_rng_below(&r, 5) - 2;
        int x0 = at[digit][1] + (int)dmm_if_rng_below(&r, 5) - 2;
        for (int y = 0; y < DMM_IF_SIDE; y++)
            for (int x = 0; x < DMM_IF_SIDE; x++) {
                int in = y >= y0 && y < y0 + 9 && x >= x0 && x < x0 + 9;
                int noise = (int)dmm_if_rng_below(&r, 40);
                px[y * DMM_IF_SIDE + x] =
                    (uint8_t)(in ? 200 + noise : (noise > 30 ? noise : 0));
            }
    }
}

static void synth_free(synth *d)
{
    free(d->images);
    free(d->labels);
}

/* Load the bundled network rel as JSON (new). */
static json_t *bundled_json_of(const char *rel)
{
    char *path = tu_path(rel);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    free(path);
    assert_non_null(j);
    return j;
}

/* The delay-line MNIST network as JSON (new). */
static json_t *bundled_json(void)
{
    return bundled_json_of("networks/mnist-interference.json");
}

/* Write j (taken) to a temporary file; returns its name (new). */
static char *temp_json(json_t *j)
{
    char *path = strdup("/tmp/dmm-test-netx-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(json_dump_file(j, path, JSON_COMPACT), 0);
    json_decref(j);
    return path;
}

enum { PER = 12 }; /* test images of each class run through the network */

/* 1 when every learner of the network file net takes a whole episode at
 * once (params.learner.<name>.whole-episode not 0): the host's short
 * schedule. */
static int whole_episodes_of(const char *net)
{
    json_error_t je;
    json_t *j = json_load_file(net, 0, &je);
    assert_non_null(j);
    json_t *ps = json_object_get(json_object_get(j, "params"), "learner");
    json_t *rows = json_object_get(json_object_get(j, "matrix"), "learner");
    int whole = json_object_size(rows) > 0;
    const char *name;
    json_t *row;
    json_object_foreach(rows, name, row)
    {
        json_t *x = json_object_get(json_object_get(ps, name), "whole-episode");
        whole &= json_number_value(x) != 0;
    }
    json_decref(j);
    return whole;
}

/* The learner network with whole-episode x for every learner, in a
 * temporary file (new name). */
static char *learners_whole(double x)
{
    json_t *j = bundled_json_of("networks/mnist-learners.json");
    json_t *ps = json_object_get(json_object_get(j, "params"), "learner");
    const char *name;
    json_t *p;
    json_object_foreach(ps, name, p)
    {
        assert_int_equal(json_object_set_new(p, "whole-episode", json_real(x)),
                         0);
    }
    return temp_json(j);
}

/* Run one configuration both ways on the network file net; compare
 * prediction by prediction. routes: whether it has the route layout (so
 * the trained routes can be compared too). */
static void compare_fewshot_on(const char *net, int routes, const synth *tr,
                               const synth *te, const dmm_if_options *o)
{
    dmm_if_data train = {tr->images, tr->labels, tr->n};
    dmm_if_data test = {te->images, te->labels, te->n};
    dmm_if_model *md = malloc(sizeof *md), *mn = malloc(sizeof *mn);
    assert_non_null(md);
    assert_non_null(mn);
    dmm_if_result rd, rn;
    assert_int_equal(dmm_if_fewshot(&train, &test, o, md, &rd), 0);

    uint8_t pred[DMM_IF_CLASSES * PER], truth[DMM_IF_CLASSES * PER];
    double scores[DMM_IF_CLASSES * PER * DMM_IF_CLASSES];
    dmm_netx_out out = {.pred = pred, .truth = truth, .scores = scores};
    dmm_error err;
    dmm_error_clear(&err);
    int rc = dmm_fewshot_network_run(net, &train, &test, o, PER, mn, &rn, &out,
                                     &err);
    if (rc)
        fail_msg("network engine: %s", err.text);
    dmm_netx_stats stats = out.stats;
    assert_int_equal(out.routes, routes);
    assert_int_equal(rn.total, DMM_IF_CLASSES * PER);
    size_t eps =
        DMM_IF_CLASSES * o->shots * (size_t)o->epochs + DMM_IF_CLASSES * PER;
    assert_int_equal(stats.episodes, eps);
    /* Episodes H cycles apart (H + 2 - the shortest distance when that is
     * below 2), the last one read H + 2 cycles after its image; learners
     * that take a whole episode at once: the training 3 apart, a closing
     * reset, then a test image a cycle, the last read 3 cycles after. */
    int H = md->geom.times, dmin = H;
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        int n = dmm_if_geometry_nearest(&md->geom, c);
        dmin = n < dmin ? n : dmin;
    }
    size_t period = (size_t)H + (dmin < 2 ? 2 - (size_t)dmin : 0);
    size_t ntest = DMM_IF_CLASSES * PER, nseq = eps - ntest;
    if (whole_episodes_of(net))
        assert_int_equal(stats.cycles, 3 * nseq + 1 + ntest + 3);
    else if (o->geometry)
        assert_int_equal(stats.cycles, (eps - 1) * period + (size_t)H + 3);
    else
        assert_int_equal(stats.cycles, eps * DMM_IF_TIMES + 3);

    /* The direct engine's predictions of the same test images. */
    size_t te_idx[DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS];
    assert_int_equal(dmm_if_pick(te->labels, te->n, 0, DMM_IF_TEST_PER_CLASS, 0,
                                 NULL, te_idx),
                     0);
    dmm_if_image img;
    size_t classes_seen = 0, agree = 0, correct = 0;
    int first = -1;
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int i = 0; i < PER; i++) {
            size_t at = te_idx[c * DMM_IF_TEST_PER_CLASS + i];
            dmm_if_preprocess(te->images + at * DMM_IF_PIXELS, o->variant,
                              &img);
            if (o->params)
                dmm_if_classify(&img, o->params);
            double sd[DMM_IF_CLASSES];
            int pd = dmm_if_predict_ties(md, &img, o->variant, o->ties, sd);
            int pn = pred[c * PER + i];
            assert_int_equal(truth[c * PER + i], c);
            for (int k = 0; k < DMM_IF_CLASSES; k++)
                assert_true(fabs(scores[(c * PER + i) * DMM_IF_CLASSES + k] -
                                 sd[k]) <= 1e-9 * (1 + fabs(sd[k])));
            agree += pd == pn;
            correct += pd == c;
            if (first < 0)
                first = pd;
            classes_seen += pd != first;
        }
    assert_int_equal(agree, DMM_IF_CLASSES * PER);
    assert_int_equal(rn.correct, correct);
    assert_true(classes_seen > 0); /* not one class for everything */
    /* The routes trained inside the network are the direct ones up to
     * rounding (Self adds new - old to old). */
    double worst = 0;
    for (int c = 0; c < DMM_IF_CLASSES && routes; c++)
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            for (int d = 0; d < DMM_IF_TIMES_MAX; d++) {
                if (d >= md->geom.times) { /* nothing beyond the horizon */
                    assert_true(mn->p[c][s][d] == 0 && md->p[c][s][d] == 0);
                    continue;
                }
                worst = fmax(worst, fabs(mn->p[c][s][d] - md->p[c][s][d]) /
                                        md->p[c][s][d]);
            }
    assert_true(worst < 1e-13);
    free(md);
    free(mn);
}

/* The default runs of the network file rel (beside the source tree) against
 * the direct engine. */
static void network_vs_direct_at(const char *net)
{
    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 60, 11);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 12);
    dmm_if_options o1 = {.shots = 3, .seed = 4, .epochs = 1};
    compare_fewshot_on(net, 1, &tr, &te, &o1);
    dmm_if_options o2 = {.shots = 2,
                         .seed = 9,
                         .epochs = 2,
                         .init_uniform = 1,
                         .pick_first = 1,
                         .order_mixed = 1,
                         .variant = DMM_IF_CORRECTED};
    compare_fewshot_on(net, 1, &tr, &te, &o2);
    /* Thresholds and learning rates other than the published ones reach
     * the network as its target neurons' params. */
    dmm_if_params prm = {0.6, -0.5, {0.5, -0.3, -0.6}};
    dmm_if_options o3 = {.shots = 3, .seed = 5, .epochs = 1, .params = &prm};
    compare_fewshot_on(net, 1, &tr, &te, &o3);
    synth_free(&tr);
    synth_free(&te);
}

/* run(the bundled network file rel). */
static void on_bundled(const char *rel, void (*run)(const char *net))
{
    char *net = tu_path(rel);
    run(net);
    free(net);
}

/* run(the learner network with learners that take an age a cycle), checked
 * to be such a file. */
static void on_unfolded_learners(void (*run)(const char *net))
{
    char *net = learners_whole(0);
    assert_int_equal(whole_episodes_of(net), 0);
    run(net);
    unlink(net);
    free(net);
}

static void test_network_vs_direct(void **state)
{
    (void)state;
    on_bundled("networks/mnist-interference.json", network_vs_direct_at);
}

/* The learner network (CLI default): the same route layout, so the same
 * runs, routes included; its learners take whole episodes, a test image
 * a cycle. The same file with learners that take an age a cycle (the
 * delay-line network's schedule) makes the same runs too. */
static void test_learners_vs_direct(void **state)
{
    (void)state;
    char *bundled = tu_path("networks/mnist-learners.json");
    assert_int_equal(whole_episodes_of(bundled), 1);
    free(bundled);
    on_bundled("networks/mnist-learners.json", network_vs_direct_at);
    on_unfolded_learners(network_vs_direct_at);
}

/*
 * The tie rules (--ties), both engines, prediction by prediction. One shot
 * and one epoch: many test digits stay below 0 at every class, so their
 * faithful scores are all 0 and tie. Under each rule the two engines make
 * the same predictions; the rules agree wherever the top score is not
 * shared, and `peak` moves some tied digits away from class 0, to the
 * class whose peak energy (the direct engine's, from t = 2) is highest.
 */
static void test_tie_rule(void **state)
{
    (void)state;
    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 60, 11);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 12);
    dmm_if_data train = {tr.images, tr.labels, tr.n};
    dmm_if_data test = {te.images, te.labels, te.n};
    char *net = tu_path("networks/mnist-interference.json");
    enum { N = DMM_IF_CLASSES * PER };
    uint8_t pred[2][2][N]; /* [rule][engine][test digit] */
    double score[N][DMM_IF_CLASSES], peak[N][DMM_IF_CLASSES];
    dmm_if_model *m = malloc(sizeof *m);
    assert_non_null(m);
    size_t te_idx[DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS];
    assert_int_equal(
        dmm_if_pick(te.labels, te.n, 0, DMM_IF_TEST_PER_CLASS, 0, NULL, te_idx),
        0);
    for (int rule = 0; rule < 2; rule++) {
        dmm_if_options o = {.shots = 1,
                            .seed = 3,
                            .epochs = 1,
                            .ties =
                                rule ? DMM_IF_TIES_PEAK : DMM_IF_TIES_FIRST};
        dmm_if_result rd, rn;
        assert_int_equal(dmm_if_fewshot(&train, &test, &o, m, &rd), 0);
        dmm_if_image img;
        size_t correct = 0;
        for (int c = 0; c < DMM_IF_CLASSES; c++)
            for (int i = 0; i < PER; i++) {
                size_t at = te_idx[c * DMM_IF_TEST_PER_CLASS + i];
                int k = c * PER + i;
                dmm_if_preprocess(te.images + at * DMM_IF_PIXELS, 0, &img);
                dmm_if_scores_peaks(m, &img, 0, score[k], peak[k]);
                pred[rule][0][k] =
                    (uint8_t)dmm_if_predict_ties(m, &img, 0, o.ties, NULL);
                correct += pred[rule][0][k] == c;
            }
        dmm_netx_out out = {.pred = pred[rule][1]};
        dmm_error err;
        dmm_error_clear(&err);
        if (dmm_fewshot_network_run(net, &train, &test, &o, PER, m, &rn, &out,
                                    &err))
            fail_msg("network engine: %s", err.text);
        assert_memory_equal(pred[rule][0], pred[rule][1], N);
        assert_int_equal(rn.correct, correct);
    }
    size_t tied = 0, moved = 0;
    for (int k = 0; k < N; k++) {
        double top = score[k][dmm_if_argmax(score[k])];
        int shared = 0, best = -1;
        for (int c = 0; c < DMM_IF_CLASSES; c++)
            if (score[k][c] == top) {
                shared++;
                if (best < 0 || peak[k][c] > peak[k][best])
                    best = c;
            }
        if (shared < 2) {
            assert_int_equal(pred[0][0][k], pred[1][0][k]);
            continue;
        }
        tied++;
        assert_int_equal(pred[0][0][k], dmm_if_argmax(score[k]));
        assert_int_equal(pred[1][0][k], best);
        moved += pred[0][0][k] != pred[1][0][k];
    }
    assert_true(tied > 0);
    assert_true(moved > 0);
    print_message("tie rule: %zu of %d test digits tie, %zu change class\n",
                  tied, N, moved);
    free(m);
    free(net);
    synth_free(&tr);
    synth_free(&te);
}

/*
 * Other geometries and horizons, both engines, prediction by prediction:
 * sides with Chebyshev distances and horizon 15 (the shortest distance is
 * 1, so the host closes each episode early), corners with Euclidean
 * distances and horizon 40 (longer delay lines than the file's, and seed
 * routes far enough from 1/25 that the host writes them in two edits).
 */
static void geometry_network_at(const char *net)
{
    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 60, 11);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 12);
    dmm_if_geometry g1, g2;
    assert_int_equal(
        dmm_if_geometry_make(&g1, DMM_IF_AT_SIDES, DMM_IF_CHEBYSHEV, 15), 0);
    assert_int_equal(
        dmm_if_geometry_make(&g2, DMM_IF_AT_CORNERS, DMM_IF_EUCLIDEAN, 40), 0);
    dmm_if_options o1 = {.shots = 2, .seed = 4, .epochs = 1, .geometry = &g1};
    compare_fewshot_on(net, 1, &tr, &te, &o1);
    dmm_if_options o2 = {.shots = 2,
                         .seed = 7,
                         .epochs = 1,
                         .order_mixed = 1,
                         .variant = DMM_IF_CORRECTED,
                         .geometry = &g2};
    compare_fewshot_on(net, 1, &tr, &te, &o2);
    synth_free(&tr);
    synth_free(&te);
}

static void test_geometry_network(void **state)
{
    (void)state;
    on_bundled("networks/mnist-interference.json", geometry_network_at);
}

/* The learner network has no delay lines to lengthen: the horizon reaches
 * it only as the routes the host writes. */
static void test_geometry_learners(void **state)
{
    (void)state;
    on_bundled("networks/mnist-learners.json", geometry_network_at);
    on_unfolded_learners(geometry_network_at);
    /* Without the layout, the refusal names the type the host found. */
    json_t *j = bundled_json_of("networks/mnist-learners.json");
    json_object_del(
        json_object_get(
            json_object_get(json_object_get(j, "matrix"), "learner"),
            "digit-2"),
        "in");
    char *net = temp_json(j);
    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 20, 1);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 2);
    dmm_if_data train = {tr.images, tr.labels, tr.n};
    dmm_if_data test = {te.images, te.labels, te.n};
    dmm_if_geometry g;
    assert_int_equal(
        dmm_if_geometry_make(&g, DMM_IF_AT_CORNERS, DMM_IF_MANHATTAN, 20), 0);
    dmm_if_options o = {.shots = 1, .seed = 1, .epochs = 1, .geometry = &g};
    dmm_if_model *m = malloc(sizeof *m);
    assert_non_null(m);
    dmm_if_result res;
    dmm_error err;
    dmm_error_clear(&err);
    assert_int_equal(
        dmm_fewshot_network_run(net, &train, &test, &o, 1, m, &res, NULL, &err),
        DMM_E_INVAL);
    assert_string_equal(err.path, "/matrix/learner");
    assert_non_null(strstr(err.text, "no route layout W[learner][<target>]"));
    unlink(net);
    free(net);
    free(m);
    synth_free(&tr);
    synth_free(&te);
}

/* The same options change the direct engine's result: the non-default run
 * above is not the default one in disguise. */
static void test_params_matter(void **state)
{
    (void)state;
    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 60, 11);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 12);
    dmm_if_data train = {tr.images, tr.labels, tr.n};
    dmm_if_data test = {te.images, te.labels, te.n};
    dmm_if_model *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    dmm_if_result ra, rb;
    dmm_if_params pub, prm = {0.6, -0.5, {0.5, -0.3, -0.6}};
    dmm_if_params_published(&pub);
    dmm_if_options o = {.shots = 3, .seed = 5, .epochs = 1};
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, a, &ra), 0);
    o.params = &pub; /* the published values given explicitly: same bits */
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), 0);
    assert_memory_equal(a, b, sizeof *a);
    assert_memory_equal(&ra, &rb, sizeof ra);
    o.params = &prm;
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, b, &rb), 0);
    assert_memory_not_equal(a->p, b->p, sizeof a->p);
    free(a);
    free(b);
    synth_free(&tr);
    synth_free(&te);
}

/* Seed 6: with noise redrawn at every step, the faithful training drove
 * some routes below 0 there (arrivals of negative mass). */
static void test_double_slit_vs_direct(void **state)
{
    (void)state;
    for (unsigned v = 0; v < 2; v++) {
        unsigned variant = v ? DMM_IF_CORRECTED : DMM_IF_FAITHFUL;
        dmm_ds_model md, mn;
        dmm_ds_result rd, rn;
        dmm_ds_run(6, variant, &md, &rd);
        char *net = tu_path("networks/double-slit.json");
        uint8_t pred[DMM_DS_TRIALS];
        dmm_error err;
        dmm_error_clear(&err);
        if (dmm_double_slit_network(net, 6, variant, &mn, &rn, pred, NULL,
                                    &err))
            fail_msg("network engine: %s", err.text);
        free(net);
        /* The direct predictions: dmm_ds_run's draws again. */
        dmm_if_rng r;
        dmm_ds_signal sig;
        dmm_ds_model m0;
        dmm_if_rng_seed(&r, 6);
        dmm_ds_model_init(&m0, &r);
        for (int i = 0; i < 2 * DMM_DS_SHOTS; i++)
            dmm_ds_signal_make(&sig, i < DMM_DS_SHOTS, variant, &r);
        for (int i = 0; i < DMM_DS_TRIALS; i++) {
            int truth = (int)dmm_if_rng_below(&r, 2);
            dmm_ds_signal_make(&sig, truth == 1, variant, &r);
            assert_int_equal(pred[i], dmm_ds_predict(&md, &sig, NULL));
        }
        assert_int_equal(rn.correct, rd.correct);
        assert_memory_equal(rn.confusion, rd.confusion, sizeof rd.confusion);
        for (int s = 0; s < DMM_DS_SOURCES; s++)
            for (int g = 0; g < DMM_DS_TARGETS; g++)
                for (int d = 0; d < DMM_DS_TIMES; d++)
                    assert_true(fabs(mn.p[s][g][d] - md.p[s][g][d]) <=
                                1e-13 * fabs(md.p[s][g][d]) + 1e-18);
    }
}

/* Horizons other than 60, both engines, the same predictions and routes:
 * 40 (shorter delay lines than the file's) and 64 (longer). */
static void test_double_slit_horizon(void **state)
{
    (void)state;
    static const int horizons[] = {40, 64};
    for (size_t k = 0; k < 2; k++) {
        dmm_ds_geometry g;
        assert_int_equal(dmm_ds_geometry_make(&g, horizons[k]), 0);
        dmm_ds_model md, mn;
        dmm_ds_result rd, rn;
        dmm_ds_trials *td = malloc(sizeof *td);
        assert_non_null(td);
        dmm_ds_run_geom(1, DMM_IF_FAITHFUL, NULL, &g, &md, &rd, td);
        char *net = tu_path("networks/double-slit.json");
        uint8_t pred[DMM_DS_TRIALS];
        dmm_netx_out out = {.pred = pred};
        dmm_ds_options o = {.seed = 1, .geometry = &g};
        dmm_error err;
        dmm_error_clear(&err);
        if (dmm_double_slit_network_run(net, &o, &mn, &rn, &out, &err))
            fail_msg("network engine: %s", err.text);
        free(net);
        assert_int_equal(out.routes, 1);
        assert_int_equal(out.stats.cycles,
                         (uint64_t)(2 * DMM_DS_SHOTS + DMM_DS_TRIALS) *
                             (uint64_t)(horizons[k] + DMM_DS_EMIT));
        for (int i = 0; i < DMM_DS_TRIALS; i++)
            assert_int_equal(pred[i], td->pred[i]);
        assert_memory_equal(rn.confusion, rd.confusion, sizeof rd.confusion);
        for (int s = 0; s < DMM_DS_SOURCES; s++)
            for (int t = 0; t < DMM_DS_TARGETS; t++)
                for (int d = 0; d < DMM_DS_TIMES_MAX; d++)
                    assert_true(fabs(mn.p[s][t][d] - md.p[s][t][d]) <=
                                1e-13 * fabs(md.p[s][t][d]));
        free(td);
    }
}

/* Non-default thresholds and learning rates, both engines, same
 * predictions; a parameter of exactly 0 is refused by the network form. */
static void test_double_slit_params(void **state)
{
    (void)state;
    dmm_if_params prm = {0.6, -0.9, {0.2, -0.02, -0.05}};
    dmm_ds_model md, mn, m0;
    dmm_ds_result rd, rn, r0;
    dmm_ds_run_params(3, DMM_IF_FAITHFUL, &prm, &md, &rd, NULL);
    dmm_ds_run(3, DMM_IF_FAITHFUL, &m0, &r0);
    assert_memory_not_equal(md.p, m0.p, sizeof md.p);
    char *net = tu_path("networks/double-slit.json");
    uint8_t pred[DMM_DS_TRIALS];
    double scores[DMM_DS_TRIALS * DMM_DS_TARGETS];
    dmm_netx_out out = {.pred = pred, .scores = scores};
    dmm_ds_options o = {.seed = 3, .params = &prm};
    dmm_error err;
    dmm_error_clear(&err);
    if (dmm_double_slit_network_run(net, &o, &mn, &rn, &out, &err))
        fail_msg("network engine: %s", err.text);
    assert_int_equal(out.routes, 1);
    dmm_if_rng r;
    dmm_ds_signal sig;
    dmm_if_rng_seed(&r, 3);
    dmm_ds_model_init(&m0, &r);
    for (int i = 0; i < 2 * DMM_DS_SHOTS; i++)
        dmm_ds_signal_make(&sig, i < DMM_DS_SHOTS, DMM_IF_FAITHFUL, &r);
    for (int i = 0; i < DMM_DS_TRIALS; i++) {
        int truth = (int)dmm_if_rng_below(&r, 2);
        double mean[DMM_DS_TARGETS];
        dmm_ds_signal_make(&sig, truth == 1, DMM_IF_FAITHFUL, &r);
        assert_int_equal(pred[i], dmm_ds_predict_params(&md, &sig, &prm, mean));
        for (int g = 0; g < DMM_DS_TARGETS; g++)
            assert_true(fabs(scores[i * DMM_DS_TARGETS + g] - mean[g]) <=
                        1e-9 * (1 + fabs(mean[g])));
    }
    assert_memory_equal(rn.confusion, rd.confusion, sizeof rd.confusion);
    prm.eta[1] = 0;
    assert_int_equal(dmm_double_slit_network_run(net, &o, &mn, &rn, NULL, &err),
                     DMM_E_INVAL);
    assert_non_null(strstr(err.text, "eta-stranger = 0 cannot be given"));
    free(net);
}

/* Rename key `from` of object o to `to`, keeping its value. */
static void rename_key(json_t *o, const char *from, const char *to)
{
    json_t *v = json_object_get(o, from);
    assert_non_null(v);
    json_object_set(o, to, v);
    json_object_del(o, from);
}

/*
 * --network FILE: any network that follows the contract runs. A copy of the
 * bundled network with its delay lines renamed (so the host does not find
 * the route layout and the network keeps its own uniform routes) and another
 * learning rate in its interference neurons' params gives the direct
 * engine's predictions with --init uniform and that learning rate.
 */
static void test_network_modified_copy(void **state)
{
    (void)state;
    json_t *j = bundled_json();
    json_t *m = json_object_get(j, "matrix");
    json_t *delay = json_object_get(m, "delay");
    json_t *dparams = json_object_get(json_object_get(j, "params"), "delay");
    json_t *inter = json_object_get(m, "interference");
    char from[16], to[16];
    const char *tn;
    json_t *t;
    for (int s = 0; s < DMM_IF_SOURCES; s++) {
        snprintf(from, sizeof from, "s%d", s);
        snprintf(to, sizeof to, "patch%d", s);
        rename_key(delay, from, to);
        /* its input too: an arrival is keyed by the delay line's input */
        rename_key(json_object_get(delay, to), from, to);
        rename_key(dparams, from, to);
        json_object_foreach(inter, tn, t)
        {
            rename_key(json_object_get(json_object_get(t, "in"), "delay"), from,
                       to);
            json_t *bl =
                json_object_get(json_object_get(t, "blocked"), "delay");
            if (json_object_get(bl, from))
                rename_key(bl, from, to);
        }
    }
    json_t *ip = json_object();
    json_object_foreach(inter, tn, t)
    {
        json_object_set_new(ip, tn, json_pack("{s:f}", "eta-friend", 0.5));
    }
    json_object_set_new(json_object_get(j, "params"), "interference", ip);
    char *net = temp_json(j);

    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 60, 11);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 12);
    dmm_if_params prm;
    dmm_if_params_published(&prm);
    prm.eta[DMM_IF_FRIEND] = 0.5;
    dmm_if_options o = {
        .shots = 3, .seed = 7, .epochs = 1, .init_uniform = 1, .params = &prm};
    /* The network takes eta-friend 0.5 from its own params: no opt.params. */
    dmm_if_options on = o;
    on.params = NULL;
    dmm_if_data train = {tr.images, tr.labels, tr.n};
    dmm_if_data test = {te.images, te.labels, te.n};
    dmm_if_model *md = malloc(sizeof *md), *mn = malloc(sizeof *mn);
    dmm_if_model *m0 = malloc(sizeof *m0);
    assert_non_null(md);
    assert_non_null(mn);
    assert_non_null(m0);
    dmm_if_result rd, rn, r0;
    assert_int_equal(dmm_if_fewshot(&train, &test, &o, md, &rd), 0);
    assert_int_equal(dmm_if_fewshot(&train, &test, &on, m0, &r0), 0);
    uint8_t pred[DMM_IF_CLASSES * PER];
    dmm_netx_out out = {.pred = pred};
    dmm_error err;
    dmm_error_clear(&err);
    if (dmm_fewshot_network_run(net, &train, &test, &on, PER, mn, &rn, &out,
                                &err))
        fail_msg("network engine: %s", err.text);
    assert_int_equal(out.routes, 0);
    /* A geometry sets the routes the host writes: without the route
     * layout it is refused, with the reason. */
    dmm_if_geometry g;
    assert_int_equal(
        dmm_if_geometry_make(&g, DMM_IF_AT_CORNERS, DMM_IF_MANHATTAN, 20), 0);
    dmm_if_options og = on;
    og.geometry = &g;
    dmm_if_result rg;
    assert_int_equal(dmm_fewshot_network_run(net, &train, &test, &og, 1, m0,
                                             &rg, NULL, &err),
                     DMM_E_INVAL);
    assert_non_null(strstr(err.text, "no route layout"));
    assert_non_null(strstr(err.text, "--horizon"));
    assert_int_equal(dmm_if_fewshot(&train, &test, &on, m0, &r0), 0);
    size_t te_idx[DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS];
    assert_int_equal(
        dmm_if_pick(te.labels, te.n, 0, DMM_IF_TEST_PER_CLASS, 0, NULL, te_idx),
        0);
    dmm_if_image img;
    size_t differ = 0;
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int i = 0; i < PER; i++) {
            size_t at = te_idx[c * DMM_IF_TEST_PER_CLASS + i];
            dmm_if_preprocess(te.images + at * DMM_IF_PIXELS, 0, &img);
            double s0[DMM_IF_CLASSES], s1[DMM_IF_CLASSES];
            dmm_if_predict(m0, &img, 0, s0);
            dmm_if_classify(&img, &prm);
            assert_int_equal(pred[c * PER + i],
                             dmm_if_predict(md, &img, 0, s1));
            differ += memcmp(s0, s1, sizeof s0) != 0;
        }
    assert_true(differ > 0); /* the rate made a difference */
    /* Given as options, the published values override the file's params. */
    dmm_if_params pub;
    dmm_if_params_published(&pub);
    on.params = &pub;
    if (dmm_fewshot_network_run(net, &train, &test, &on, PER, mn, &rn, &out,
                                &err))
        fail_msg("network engine: %s", err.text);
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int i = 0; i < PER; i++) {
            size_t at = te_idx[c * DMM_IF_TEST_PER_CLASS + i];
            dmm_if_preprocess(te.images + at * DMM_IF_PIXELS, 0, &img);
            assert_int_equal(pred[c * PER + i],
                             dmm_if_predict(m0, &img, 0, NULL));
        }
    unlink(net);
    free(net);
    free(md);
    free(mn);
    free(m0);
    synth_free(&tr);
    synth_free(&te);
}

/*
 * networks/fields/ (tools/gen_mnist_fields.py, docs/experiments.md "A
 * field on the learning rates"): every variant loads (what `dmm check`
 * needs); the neutral field (each eta-* times the constant 1) gives the
 * plain network's predictions, scores and trained routes bit for bit (law 1
 * of docs/fields.md); the count field trains as the direct engine does when
 * shot k of a class (0-based) uses eta-friend times k+1 and eta-stranger,
 * eta-foe times (k+1)^-0.25: the field reaches the first arrival of every
 * training episode, with the count of that episode.
 */
static void test_network_field_variants(void **state)
{
    fx *x = *state;
    static const char *const variants[] = {"neutral", "count", "count-anneal",
                                           "energy-anneal", "energy-amplify"};
    dmm_error err;
    char file[96];
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        snprintf(file, sizeof file, "networks/fields/mnist-field-%s.json",
                 variants[v]);
        char *path = tu_path(file);
        dmm_net *net = NULL;
        dmm_error_clear(&err);
        if (dmm_net_load_file(x->vc, x->reg, path, &net, &err))
            fail_msg("%s: %s", file, err.text);
        dmm_net_free(net);
        free(path);
    }

    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 60, 11);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 12);
    dmm_if_data train = {tr.images, tr.labels, tr.n};
    dmm_if_data test = {te.images, te.labels, te.n};
    dmm_if_options o = {.shots = 3, .seed = 4, .epochs = 1};
    enum { N = DMM_IF_CLASSES * PER };
    static const char *const nets[] = {
        "networks/mnist-interference.json",
        "networks/fields/mnist-field-neutral.json",
        "networks/fields/mnist-field-count.json"};
    uint8_t pred[3][N];
    double scores[3][N * DMM_IF_CLASSES];
    dmm_if_model *mn[3];
    for (int k = 0; k < 3; k++) {
        mn[k] = malloc(sizeof *mn[k]);
        assert_non_null(mn[k]);
        dmm_netx_out out = {.pred = pred[k], .scores = scores[k]};
        dmm_if_result r;
        char *path = tu_path(nets[k]);
        dmm_error_clear(&err);
        if (dmm_fewshot_network_run(path, &train, &test, &o, PER, mn[k], &r,
                                    &out, &err))
            fail_msg("%s: %s", nets[k], err.text);
        assert_int_equal(out.routes, 1);
        free(path);
    }
    /* Neutral: the same bits. */
    assert_memory_equal(pred[0], pred[1], sizeof pred[0]);
    assert_memory_equal(scores[0], scores[1], sizeof scores[0]);
    assert_memory_equal(mn[0]->p, mn[1]->p, sizeof mn[0]->p);

    /* Count: the direct engine with the schedule, shot by shot. */
    dmm_if_model *md = malloc(sizeof *md);
    assert_non_null(md);
    size_t seq[DMM_IF_CLASSES * 3];
    size_t te_idx[DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS];
    assert_int_equal(dmm_if_plan(&train, &test, &o, md, seq, te_idx), 0);
    int seen[DMM_IF_CLASSES] = {0};
    dmm_if_image img;
    for (size_t i = 0; i < DMM_IF_CLASSES * o.shots; i++) {
        int c = dmm_if_class_of_digit(tr.labels[seq[i]]);
        double n = ++seen[c];
        dmm_if_params p;
        dmm_if_params_published(&p);
        p.eta[DMM_IF_FRIEND] *= n;
        p.eta[DMM_IF_STRANGER] *= pow(n, -0.25);
        p.eta[DMM_IF_FOE] *= pow(n, -0.25);
        dmm_if_preprocess(tr.images + seq[i] * DMM_IF_PIXELS, 0, &img);
        dmm_if_classify(&img, &p);
        dmm_if_train(md, &img, c);
    }
    double worst = 0, moved = 0;
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            for (int d = 0; d < DMM_IF_TIMES; d++) {
                worst = fmax(worst, fabs(mn[2]->p[c][s][d] - md->p[c][s][d]) /
                                        md->p[c][s][d]);
                moved = fmax(moved, fabs(mn[0]->p[c][s][d] - md->p[c][s][d]) /
                                        md->p[c][s][d]);
            }
    assert_true(worst < 1e-13);
    assert_true(moved > 0.1); /* the field changed what was learnt */
    size_t differ = 0;
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int i = 0; i < PER; i++) {
            size_t at = te_idx[c * DMM_IF_TEST_PER_CLASS + i];
            dmm_if_preprocess(te.images + at * DMM_IF_PIXELS, 0, &img);
            double sd[DMM_IF_CLASSES];
            assert_int_equal(pred[2][c * PER + i],
                             dmm_if_predict(md, &img, 0, sd));
            for (int k = 0; k < DMM_IF_CLASSES; k++) {
                double sn = scores[2][(c * PER + i) * DMM_IF_CLASSES + k];
                assert_true(fabs(sn - sd[k]) <= 1e-9 * (1 + fabs(sd[k])));
                differ += sn != scores[0][(c * PER + i) * DMM_IF_CLASSES + k];
            }
        }
    assert_true(differ > 0);
    for (int k = 0; k < 3; k++)
        free(mn[k]);
    free(md);
    synth_free(&tr);
    synth_free(&te);
}

/* A copy without what the contract needs is refused before any cycle, with
 * the file, the JSON path and the missing part named. */
static void test_network_broken_copy(void **state)
{
    (void)state;
    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 20, 1);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 2);
    dmm_if_data train = {tr.images, tr.labels, tr.n};
    dmm_if_data test = {te.images, te.labels, te.n};
    dmm_if_options o = {.shots = 1, .seed = 1, .epochs = 1};
    dmm_if_model *m = malloc(sizeof *m);
    assert_non_null(m);
    dmm_if_result res;
    dmm_error err;
    static const struct {
        const char *a, *b, *c; /* the matrix entry to delete */
        unsigned variant;
        int ties;
        const char *path, *text;
    } cases[] = {
        {"output", "score", "digit-2", 0, 0, "/matrix/output/score/digit-2",
         "nothing feeds input digit-2 of output/score"},
        {"output", "peak", "digit-0", DMM_IF_CORRECTED, 0,
         "/matrix/output/peak/digit-0",
         "nothing feeds input digit-0 of output/peak"},
        {"input", "control", NULL, 0, 0, "/matrix/input/control",
         "no neuron input/control"},
        /* the faithful run reads output/peak only to break ties */
        {"output", "peak", "digit-1", 0, DMM_IF_TIES_PEAK,
         "/matrix/output/peak/digit-1",
         "nothing feeds input digit-1 of output/peak: the host reads the "
         "peak of digit-1 there; --ties peak breaks a tie of the scores by "
         "it"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        json_t *j = bundled_json();
        json_t *o1 = json_object_get(json_object_get(j, "matrix"), cases[k].a);
        if (cases[k].c)
            json_object_del(json_object_get(o1, cases[k].b), cases[k].c);
        else
            json_object_del(o1, cases[k].b);
        char *net = temp_json(j);
        o.variant = cases[k].variant;
        o.ties = cases[k].ties;
        dmm_error_clear(&err);
        assert_int_equal(dmm_fewshot_network_run(net, &train, &test, &o, 1, m,
                                                 &res, NULL, &err),
                         DMM_E_INVAL);
        if (o.ties) { /* the first-class rule does not need output/peak */
            o.ties = DMM_IF_TIES_FIRST;
            dmm_error_clear(&err);
            assert_int_equal(dmm_fewshot_network_run(net, &train, &test, &o, 1,
                                                     m, &res, NULL, &err),
                             0);
            o.ties = cases[k].ties;
            dmm_error_clear(&err);
            assert_int_equal(dmm_fewshot_network_run(net, &train, &test, &o, 1,
                                                     m, &res, NULL, &err),
                             DMM_E_INVAL);
        }
        assert_string_equal(err.source, net);
        assert_string_equal(err.path, cases[k].path);
        assert_non_null(strstr(err.text, cases[k].text));
        assert_non_null(strstr(err.text, "docs/experiments.md"));
        unlink(net);
        free(net);
    }
    /* Thresholds given to a network with no target type the host knows:
     * the refusal names every type it looks for. */
    json_t *j = bundled_json();
    json_object_del(json_object_get(j, "matrix"), "interference");
    char *net = temp_json(j);
    dmm_if_params prm = {0.6, -0.5, {0.5, -0.3, -0.6}};
    o = (dmm_if_options){.shots = 1, .seed = 1, .epochs = 1, .params = &prm};
    dmm_error_clear(&err);
    assert_int_equal(
        dmm_fewshot_network_run(net, &train, &test, &o, 1, m, &res, NULL, &err),
        DMM_E_INVAL);
    assert_string_equal(err.path, "/matrix/interference");
    assert_non_null(strstr(err.text, "no neuron of type interference|learner"));
    unlink(net);
    free(net);
    free(m);
    synth_free(&tr);
    synth_free(&te);
}

/* The host refuses a network without the neurons it feeds and reads. */
static void test_network_bad(void **state)
{
    (void)state;
    synth tr, te;
    synth_make(&tr, DMM_IF_SPLIT_BEGIN + 20, 1);
    synth_make(&te, 5 * DMM_IF_TEST_PER_CLASS, 2);
    dmm_if_data train = {tr.images, tr.labels, tr.n};
    dmm_if_data test = {te.images, te.labels, te.n};
    dmm_if_options o = {.shots = 1, .seed = 1, .epochs = 1};
    dmm_if_model *m = malloc(sizeof *m);
    assert_non_null(m);
    dmm_if_result res;
    dmm_error err;
    char *wave = tu_path("networks/wave.json");
    assert_int_equal(dmm_fewshot_network(wave, &train, &test, &o, 1, m, &res,
                                         NULL, NULL, &err),
                     DMM_E_INVAL);
    assert_non_null(strstr(err.text, "no neuron input/image"));
    assert_string_equal(err.path, "/matrix/input/image");
    assert_non_null(strstr(err.source, "networks/wave.json"));
    free(wave);
    char *ds = tu_path("networks/double-slit.json");
    assert_int_equal(dmm_fewshot_network(ds, &train, &test, &o, 1, m, &res,
                                         NULL, NULL, &err),
                     DMM_E_INVAL);
    free(ds);
    assert_int_not_equal(dmm_fewshot_network("/nonexistent/net.json", &train,
                                             &test, &o, 1, m, &res, NULL, NULL,
                                             &err),
                         0);
    assert_non_null(strstr(err.source, "/nonexistent/net.json"));
    o.shots = 0;
    assert_int_equal(dmm_fewshot_network("x", &train, &test, &o, 1, m, &res,
                                         NULL, NULL, &err),
                     DMM_E_INVAL);
    free(m);
    synth_free(&tr);
    synth_free(&te);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delay_ages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_engine, setup, teardown),
        cmocka_unit_test(test_delay_engine_threads),
        cmocka_unit_test_setup_teardown(test_delay_engine_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_engine_reuse, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interference_energy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interference_terms, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interference_arrival_paths, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interference_delta, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interference_vs_train, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_interference_bad, setup, teardown),
        cmocka_unit_test(test_network_vs_direct),
        cmocka_unit_test(test_learners_vs_direct),
        cmocka_unit_test(test_double_slit_vs_direct),
        cmocka_unit_test(test_geometry_network),
        cmocka_unit_test(test_geometry_learners),
        cmocka_unit_test(test_tie_rule),
        cmocka_unit_test(test_double_slit_horizon),
        cmocka_unit_test(test_params_matter),
        cmocka_unit_test(test_double_slit_params),
        cmocka_unit_test(test_network_bad),
        cmocka_unit_test(test_network_modified_copy),
        cmocka_unit_test(test_network_broken_copy),
        cmocka_unit_test_setup_teardown(test_network_field_variants, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
