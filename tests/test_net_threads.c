// SPDX-License-Identifier: MIT
/*
 * The parallel cycle and the compiled matrix: random networks (scalar and
 * map streams, rows of every shape, a self-editing neuron, edits that add
 * and remove rows and neurons) run on 1, 2 and 3 threads give the same state
 * bit for bit after every cycle; a network whose compiled matrix was patched
 * along the way steps exactly like a fresh copy restored from its state (a
 * fresh compile); failures on several threads are those of one thread.
 * The pool splits each piece of work over the threads by default; a mode
 * runs it on the caller alone or chooses by how fast each way has been
 * (net_hooks.h): the tests force the split where they compare against one
 * thread, so that it is what they test, and check the choice on its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_hooks.h"
#include "testutil_net.h"

/* n threads, every piece of work run as mode says. */
static void threads_mode(dmm_net *net, unsigned n, dmm__pool_mode mode)
{
    dmm_error err;
    assert_int_equal(dmm_net_set_threads(net, n, &err), 0);
    assert_int_equal(dmm_net_threads(net), n);
    dmm__pool_set_mode(net, mode);
}

static uint64_t seed_state;

static uint32_t rnd(uint32_t n)
{
    seed_state = seed_state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(seed_state >> 33) % n;
}

static double rnd_w(void)
{
    return ((double)rnd(2001) - 1000) / 1700.0; /* about -0.6 .. 0.6 */
}

#define M 24
static const char *const types[] = {"identity", "tanh", "relu", "accum"};

static const char *type_of(int k)
{
    return types[k % 4];
}
static const char *in_of(int k, int which)
{
    if (k % 4 == 3)
        return which ? "delta" : "accum";
    return which ? "b" : "a";
}
static const char *out_of(int k, int which)
{
    return k % 4 == 3 ? "single" : which ? "b" : "a";
}

/* A random source path: a stream or a part of a stream. (Whole neurons as
 * sources would nest the streams deeper every cycle.) */
static void source(vv_buf *b, int j)
{
    int shape = (int)rnd(8);
    if (shape == 0)
        tu_put(b, "%s/u%d/%s/k%u", type_of(j), j, out_of(j, 0), rnd(2));
    else
        tu_put(b, "%s/u%d/%s", type_of(j), j, out_of(j, (int)rnd(2)));
}

/* A random network of M neurons; selfmod adds identity/ed, which adds 0.01
 * to one weight through Self every cycle. */
static char *random_net(bool selfmod)
{
    vv_buf b = {0};
    tu_put(&b, "{\"dmm\": 1, \"matrix\": {}, \"seed\": 7, \"links\": ["
               "[\"accum/self/accum\", \"accum/self/single\", 1]");
    for (int k = 0; k < M; k++) {
        int rows = 1 + (int)rnd(2);
        for (int r = 0; r < rows; r++) {
            int terms = 1 + (int)rnd(4);
            for (int t = 0; t < terms; t++) {
                tu_put(&b, ", [\"%s/u%d/%s\", \"", type_of(k), k, in_of(k, r));
                source(&b, (int)rnd(M));
                tu_put(&b, "\", %.17g]", rnd_w());
            }
        }
    }
    if (selfmod)
        tu_put(&b, ", [\"identity/ed/d\", \"identity/ed/d\", 1], "
                   "[\"accum/self/delta\", \"identity/ed/d\", 1]");
    tu_put(&b, "], \"outputs\": {");
    for (int f = 0; f < 4; f++) {
        tu_put(&b, "%s\"%s\": {", f ? ", " : "", types[f]);
        for (int k = f; k < M; k += 4) {
            tu_put(&b, "%s\"u%d\": {", k == f ? "" : ", ", k);
            for (int s = 0; s < (f == 3 ? 1 : 2); s++) {
                if (rnd(2))
                    tu_put(&b, "%s\"%s\": %.17g", s ? ", " : "", out_of(k, s),
                           rnd_w());
                else
                    tu_put(&b, "%s\"%s\": {\"k0\": %.17g, \"k1\": %.17g}",
                           s ? ", " : "", out_of(k, s), rnd_w(), rnd_w());
            }
            tu_put(&b, "}");
        }
        if (selfmod && f == 0)
            tu_put(&b, ", \"ed\": {\"d\": {\"tanh\": {\"u1\": {\"a\": "
                       "{\"identity\": {\"u0\": {\"a\": 0.01}}}}}}}");
        tu_put(&b, "}");
    }
    tu_put(&b, "}}");
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

static char *state_of(dmm_net *net)
{
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

static void assert_same_state(dmm_net *a, dmm_net *b)
{
    char *sa = state_of(a), *sb = state_of(b);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
}

/* A random edit: add a link, change a weight, or remove a neuron's row. */
static vv random_edit(tn_world *w, dmm_net *net)
{
    char text[512];
    int k = (int)rnd(M), j = (int)rnd(M), r = (int)rnd(2);
    int kind = (int)rnd(3);
    if (kind == 2) {
        /* Remove row r of u_k: subtract it (exact, x + -x = 0). */
        vv_label p[3] = {tu_label(w->vc, type_of(k)), 0,
                         tu_label(w->vc, in_of(k, r))};
        snprintf(text, sizeof text, "u%d", k);
        p[1] = tu_label(w->vc, text);
        vv row = vv_get(dmm_net_matrix(net), p, 3), neg, delta;
        assert_int_equal(vv_scale(w->vc, -1, row, &neg), 0);
        assert_int_equal(vv_set(w->vc, VV_ZERO, p, 3, neg, &delta), 0);
        vv_free(w->vc, neg);
        return delta;
    }
    snprintf(text, sizeof text,
             "{\"%s\": {\"u%d\": {\"%s\": {\"%s\": {\"u%d\": {\"%s\": "
             "%.17g}}}}}}",
             type_of(k), k, in_of(k, r), type_of(j), j, out_of(j, 0), rnd_w());
    return tu_vv(w->vc, text);
}

static void step_ok(dmm_net *net)
{
    dmm_error err;
    int rc = dmm_net_step(net, &err);
    if (rc)
        fail_msg("step: %s", err.text);
}

/* 1, 2 and 3 threads agree after every cycle, edits included. */
static void test_threads_identical(void **state)
{
    tn_world *w = *state;
    for (int round = 0; round < 12; round++) {
        seed_state = 1000 + (uint64_t)round;
        char *text = random_net(round % 2 == 1);
        /* 1, 2 and 3 threads split, and 2 threads choosing */
        enum { NN = 4 };
        dmm_net *net[NN];
        for (int n = 0; n < NN; n++)
            net[n] = tn_load(w, text);
        threads_mode(net[1], 2, DMM__POOL_SPLIT);
        threads_mode(net[2], 3, DMM__POOL_SPLIT);
        threads_mode(net[3], 2, DMM__POOL_ADAPT);
        free(text);
        for (int t = 0; t < 40; t++) {
            if (t % 5 == 4) {
                vv delta = random_edit(w, net[0]);
                for (int n = 0; n < NN; n++) {
                    dmm_error err;
                    assert_int_equal(dmm_net_edit(net[n], delta, &err), 0);
                }
                vv_free(w->vc, delta);
            }
            dmm_error e[NN];
            int rc[NN];
            for (int n = 0; n < NN; n++)
                rc[n] = dmm_net_step(net[n], &e[n]);
            for (int n = 1; n < NN; n++) {
                assert_int_equal(rc[n], rc[0]);
                if (rc[0])
                    assert_string_equal(e[n].text, e[0].text);
                assert_same_state(net[0], net[n]);
            }
            if (rc[0])
                break; /* a NaN: all of them stopped the same way */
        }
        for (int n = 0; n < NN; n++)
            dmm_net_free(net[n]);
    }
}

/* A network whose compiled matrix was patched by self-edits and edits steps
 * exactly like a fresh copy restored from its state, which compiles W anew. */
static void test_patch_equals_fresh(void **state)
{
    tn_world *w = *state;
    for (int round = 0; round < 8; round++) {
        seed_state = 77 + (uint64_t)round;
        char *text = random_net(true);
        dmm_net *net = tn_load(w, text);
        free(text);
        for (int t = 0; t < 30; t++) {
            if (t % 3 == 2) {
                vv delta = random_edit(w, net);
                dmm_error err;
                assert_int_equal(dmm_net_edit(net, delta, &err), 0);
                vv_free(w->vc, delta);
            }
            char *s = state_of(net);
            dmm_net *fresh;
            dmm_error err;
            assert_int_equal(dmm_net_restore_text(w->vc, w->reg, s, strlen(s),
                                                  "state", &fresh, &err),
                             0);
            free(s);
            int rc = dmm_net_step(net, &err);
            dmm_error err2;
            assert_int_equal(dmm_net_step(fresh, &err2), rc);
            assert_same_state(net, fresh);
            dmm_net_free(fresh);
            if (rc)
                break;
        }
        dmm_net_free(net);
    }
}

/* A NaN in the middle of a large network: the same error on 2 threads as on
 * one, and the network as it was. */
static void test_threads_failure(void **state)
{
    tn_world *w = *state;
    vv_buf b = {0};
    tu_put(&b, "{\"dmm\": 1, \"matrix\": {}, \"links\": ["
               "[\"accum/self/accum\", \"accum/self/single\", 1]");
    for (int k = 0; k < 200; k++)
        tu_put(&b, ", [\"identity/n%03d/x\", \"identity/n%03d/x\", %s]", k, k,
               k == 150 ? "1e300" : "1");
    tu_put(&b, "], \"outputs\": {\"identity\": {\"n000\": {\"x\": 1}");
    for (int k = 1; k < 200; k++)
        tu_put(&b, ", \"n%03d\": {\"x\": %s}", k, k >= 150 ? "1e300" : "1");
    tu_put(&b, "}}}");
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    dmm_net *one = tn_load(w, b.data), *two = tn_load(w, b.data);
    free(b.data);
    dmm_error err1, err2;
    assert_int_equal(dmm_net_step(one, &err1), DMM_E_NONFINITE);
    /* split, on the caller, and chosen (split first, then serial) */
    const dmm__pool_mode modes[] = {DMM__POOL_SPLIT, DMM__POOL_SERIAL,
                                    DMM__POOL_ADAPT, DMM__POOL_ADAPT};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        if (m < 3)
            threads_mode(two, 2, modes[m]);
        char *before = state_of(two);
        assert_int_equal(dmm_net_step(two, &err2), DMM_E_NONFINITE);
        assert_string_equal(err1.text, err2.text);
        assert_non_null(strstr(err2.text, "identity/n150"));
        char *after = state_of(two);
        assert_string_equal(before, after);
        free(before);
        free(after);
        assert_int_equal(dmm_net_set_threads(two, 1, &err2), 0);
    }
    /* Back to one thread and on again: still the same failure. */
    assert_int_equal(dmm_net_set_threads(two, 1, &err2), 0);
    assert_int_equal(dmm_net_step(two, &err2), DMM_E_NONFINITE);
    threads_mode(two, 3, DMM__POOL_SPLIT);
    assert_int_equal(dmm_net_step(two, &err2), DMM_E_NONFINITE);
    assert_string_equal(err1.text, err2.text);
    dmm_net_free(one);
    dmm_net_free(two);
}

/* Input neurons fed unevenly (some queues run dry) pop their queues on the
 * workers in the commit: 1, 2 and 3 threads agree on the state and on every
 * queue after each cycle, whether or not Y is read between cycles (the two
 * ways the commit moves the outputs). */
static void test_threads_feeds(void **state)
{
    tn_world *w = *state;
    enum { N = 40 };
    vv_buf b = {0};
    tu_put(&b, "{\"dmm\": 1, \"matrix\": {}, \"links\": ["
               "[\"accum/self/accum\", \"accum/self/single\", 1]");
    for (int k = 0; k < N; k++)
        tu_put(&b,
               ", [\"input/i%02d/x\", \"input/i%02d/x\", 1]"
               ", [\"accum/a%02d/accum\", \"accum/a%02d/single\", 1]"
               ", [\"accum/a%02d/delta\", \"input/i%02d/x\", 0.5]",
               k, k, k, k, k, k);
    tu_put(&b, "]}");
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    for (int watch = 0; watch < 2; watch++) {
        dmm_net *net[3];
        for (int n = 0; n < 3; n++)
            net[n] = tn_load(w, b.data);
        threads_mode(net[1], 2, DMM__POOL_SPLIT);
        threads_mode(net[2], 3, DMM__POOL_SPLIT);
        for (int k = 0; k < N; k++) {
            char name[16], text[64];
            snprintf(name, sizeof name, "i%02d", k);
            vv_label l = tu_label(w->vc, name);
            for (int q = 0; q < k % 7; q++) {
                snprintf(text, sizeof text, "{\"x\": {\"v%d\": %d}}", q % 3,
                         k + q);
                vv v = tu_vv(w->vc, text);
                for (int n = 0; n < 3; n++) {
                    dmm_error err;
                    assert_int_equal(dmm_net_feed(net[n], l, v, &err), 0);
                }
                vv_free(w->vc, v);
            }
        }
        for (int t = 0; t < 10; t++) {
            for (int n = 0; n < 3; n++) {
                step_ok(net[n]);
                if (watch)
                    (void)dmm_net_outputs(net[n]);
            }
            for (int n = 1; n < 3; n++) {
                assert_same_state(net[0], net[n]);
                for (int k = 0; k < N; k++) {
                    char name[16];
                    snprintf(name, sizeof name, "i%02d", k);
                    vv_label l = tu_label(w->vc, name);
                    assert_int_equal(dmm_net_queue_len(net[n], l),
                                     dmm_net_queue_len(net[0], l));
                }
            }
        }
        /* At most 6 feeds each, 10 cycles: every queue ran dry. */
        for (int k = 0; k < N; k++) {
            char name[16];
            snprintf(name, sizeof name, "i%02d", k);
            for (int n = 0; n < 3; n++)
                assert_int_equal(
                    dmm_net_queue_len(net[n], tu_label(w->vc, name)), 0);
        }
        for (int n = 0; n < 3; n++)
            dmm_net_free(net[n]);
    }
    free(b.data);
}

static void test_threads_range(void **state)
{
    tn_world *w = *state;
    dmm_net *net = tn_load(w, "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\":"
                              " {\"accum\": {\"accum\": {\"self\": "
                              "{\"single\": 1}}}}}}}");
    dmm_error err;
    assert_int_equal(dmm_net_set_threads(net, 0, &err), DMM_E_INVAL);
    assert_non_null(strstr(err.text, "threads"));
    assert_int_equal(dmm_net_set_threads(net, 65, &err), DMM_E_INVAL);
    assert_int_equal(dmm_net_threads(net), 1);
    assert_int_equal(dmm_net_set_threads(net, 64, &err), 0);
    step_ok(net);
    assert_int_equal(dmm_net_step_count(net), 1);
    dmm_net_free(net);
}

/* The choice between split and serial, as a state machine fed made-up
 * costs: each way measured first, then the cheaper one runs and the other
 * is tried again now and then, less often while the tries confirm the
 * choice, and taken when a try finds it cheaper. */
static void test_adapt_choice(void **state)
{
    (void)state;
    dmm__adapt a = {0};
    assert_true(dmm__adapt_choose(&a)); /* split first */
    dmm__adapt_record(&a, true, 200);
    assert_false(dmm__adapt_choose(&a)); /* then serial */
    dmm__adapt_record(&a, false, 100);
    /* Split costs twice serial (an oversubscribed machine): 2000 calls
     * run serially but for a few tries, spaced further and further. */
    int split = 0, last_try = 0, gap = 0;
    for (int i = 1; i <= 2000; i++) {
        bool par = dmm__adapt_choose(&a);
        if (par) {
            assert_true(i - last_try >= gap); /* the tries space out */
            gap = i - last_try;
            last_try = i;
            split++;
        }
        dmm__adapt_record(&a, par, par ? 200 : 100);
    }
    assert_in_range(split, 3, 12);
    assert_true(gap >= 256);
    /* The machine gets quiet: split now costs half of serial. The next try
     * finds it, and from then on split runs but for rare serial tries. */
    int serial = 0, first_split = 0;
    for (int i = 1; i <= 2000; i++) {
        bool par = dmm__adapt_choose(&a);
        if (par && !first_split)
            first_split = i;
        serial += first_split && !par;
        dmm__adapt_record(&a, par, par ? 50 : 100);
    }
    assert_in_range(first_split, 1, 513);
    assert_in_range(serial, 1, 12);
    /* One slow split call (a preempted worker) does not flip the choice:
     * the running cost moves a quarter of the way. */
    dmm__adapt_record(&a, true, 140);
    assert_true(a.par < a.ser);
}

/* On a real network the pool measures both ways (the first call of each
 * piece of work split, the second serial) and the forced modes hold. */
static void test_adapt_counts(void **state)
{
    tn_world *w = *state;
    seed_state = 77;
    char *text = random_net(false);
    dmm_net *net = tn_load(w, text);
    free(text);
    uint64_t split, serial;
    dmm__pool_counts(net, &split, &serial);
    assert_true(split == 0 && serial == 0); /* one thread: no pool */
    threads_mode(net, 2, DMM__POOL_ADAPT);
    step_ok(net);
    step_ok(net);
    dmm__pool_counts(net, &split, &serial);
    assert_true(split >= 1 && serial >= 1);
    threads_mode(net, 3, DMM__POOL_SPLIT);
    for (int t = 0; t < 3; t++)
        step_ok(net);
    dmm__pool_counts(net, &split, &serial);
    assert_true(split >= 3 && serial == 0);
    threads_mode(net, 2, DMM__POOL_SERIAL);
    for (int t = 0; t < 3; t++)
        step_ok(net);
    dmm__pool_counts(net, &split, &serial);
    assert_true(split == 0 && serial >= 3);
    dmm_net_free(net);
}

static int setup(void **state)
{
    return tn_world_setup(state, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_patch_equals_fresh),
        cmocka_unit_test(test_threads_failure),
        cmocka_unit_test(test_threads_feeds),
        cmocka_unit_test(test_threads_range),
        cmocka_unit_test(test_adapt_choice),
        cmocka_unit_test(test_adapt_counts),
    };
    return cmocka_run_group_tests(tests, setup, tn_world_teardown);
}
