// SPDX-License-Identifier: MIT
/*
 * Out of memory in the engine: every allocation of load, step (one and two
 * threads), edit, save and restore is made to fail in turn, through the
 * context's allocator that the engine's own records use too. Each failure
 * must be DMM_E_NOMEM with the network exactly as it was (its saved state
 * compared as text), and nothing may leak (the allocator's byte count, and
 * ASan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"
#include "testutil_net.h"

/* Dense sources (a flat map swapped between two identities), a general
 * accumulator fed by an input neuron, a row of another shape (input/in
 * reads the whole accum/c), tanh dot products and a writer that edits one
 * tanh weight every cycle through Self. */
static const char net_text[] =
    "{\"dmm\": 1, \"matrix\": {"
    "\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": {\"single\": "
    "1}}}, \"delta\": {\"identity\": {\"writer\": {\"single\": 1}}}},"
    " \"c\": {\"accum\": {\"accum\": {\"c\": {\"single\": 0.5}}},"
    " \"delta\": {\"input\": {\"in\": {\"v\": 1}}, \"identity\": {\"p\": "
    "{\"a\": 0.25}}}}},"
    " \"input\": {\"in\": {\"d\": {\"accum\": {\"c\": 1}}}},"
    " \"identity\": {\"writer\": {\"single\": {\"identity\": {\"writer\": "
    "{\"single\": 1}}}},"
    " \"p\": {\"a\": {\"identity\": {\"q\": {\"a\": 1}}}},"
    " \"q\": {\"a\": {\"identity\": {\"p\": {\"a\": 1}}}}},"
    " \"tanh\": {\"t\": {\"x\": {\"accum\": {\"c\": {\"single\": 0.3}}, "
    "\"tanh\": {\"u\": {\"x\": 0.5}}}},"
    " \"u\": {\"x\": {\"tanh\": {\"t\": {\"x\": 0.7}, \"u\": {\"x\": 0.2}}}}}},"
    " \"outputs\": {\"identity\": {"
    "\"writer\": {\"single\": {\"tanh\": {\"u\": {\"x\": {\"tanh\": {\"t\": "
    "{\"x\": 0.001}}}}}}},"
    " \"p\": {\"a\": {\"k0\": 1, \"k1\": -2, \"k2\": 0.5}}},"
    " \"tanh\": {\"t\": {\"x\": 0.1}}}}";

typedef struct world {
    tu_alloc a;
    vv_ctx *vc;
    dmm_registry *reg;
} world;

static void world_open(world *w)
{
    memset(w, 0, sizeof *w);
    vv_options opt = {.alloc = tu_alloc_fn, .alloc_ud = &w->a};
    assert_non_null(w->vc = vv_ctx_new(&opt));
    assert_non_null(w->reg = dmm_registry_new(w->vc));
    assert_int_equal(dmm_registry_add_builtins(w->reg), 0);
}

static void world_close(world *w)
{
    dmm_registry_free(w->reg);
    vv_ctx_free(w->vc);
    assert_int_equal(w->a.bytes, 0); /* every byte given back */
}

/* Fail the k-th allocation from now (k <= 0: none). */
static void fail_in(world *w, long k)
{
    w->a.fail_at = k > 0 ? w->a.count + k : 0;
}

/* Did the planned failure happen? Then stop failing. */
static bool failed_yet(world *w)
{
    bool hit = w->a.fail_at > 0 && w->a.count >= w->a.fail_at;
    w->a.fail_at = 0;
    return hit;
}

/* new (free()): the whole state as saved, made with failures off. */
static char *state_of(world *w, const dmm_net *net)
{
    long saved = w->a.fail_at;
    w->a.fail_at = 0;
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    w->a.fail_at = saved;
    return b.data;
}

static dmm_net *load_ok(world *w)
{
    return tn_load(&(tn_world){.vc = w->vc, .reg = w->reg}, net_text);
}

static void feed(world *w, dmm_net *net, int n)
{
    vv_label in = tu_label(w->vc, "in");
    vv v = tu_vv(w->vc, "{\"v\": {\"p\": 1, \"q\": 2}}");
    dmm_error err;
    for (int k = 0; k < n; k++)
        assert_int_equal(dmm_net_feed(net, in, v, &err), 0);
    vv_free(w->vc, v);
}

static void test_load(void **state)
{
    (void)state;
    long fails = 0;
    for (long k = 1;; k++) {
        world w;
        world_open(&w);
        dmm_net *net = NULL;
        dmm_error err;
        fail_in(&w, k);
        int rc = dmm_net_load_text(w.vc, w.reg, net_text, strlen(net_text),
                                   "test.json", &net, &err);
        bool hit = failed_yet(&w);
        if (rc) {
            assert_int_equal(rc, DMM_E_NOMEM);
            assert_int_equal(err.code, DMM_E_NOMEM);
            assert_null(net);
            fails++;
        } else {
            assert_non_null(net);
            dmm_net_free(net);
        }
        world_close(&w);
        if (!hit)
            break;
    }
    assert_true(fails > 20);
    print_message("load: %ld failing allocations\n", fails);
}

/* The engine's records are the context's: a pool of workers, which holds no
 * V-value, is counted and given back. */
static void test_engine_bytes_counted(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    dmm_net *net = load_ok(&w);
    dmm_error err;
    size_t before = vv_ctx_bytes(w.vc);
    assert_int_equal(dmm_net_set_threads(net, 2, &err), 0);
    assert_true(vv_ctx_bytes(w.vc) > before);
    assert_int_equal(dmm_net_set_threads(net, 1, &err), 0);
    assert_int_equal(vv_ctx_bytes(w.vc), before);
    dmm_net_free(net);
    world_close(&w);
}

/* Four cycles with the k-th allocation from the start of the first failing
 * (k 0: none). Each failed step must leave the state as it was, and the
 * step retried must succeed; returns the final state (free()). */
static char *step_run(unsigned threads, long k, bool *hit, long *fails)
{
    world w;
    world_open(&w);
    dmm_net *net = load_ok(&w);
    dmm_error err;
    feed(&w, net, 3);
    assert_int_equal(dmm_net_set_threads(net, threads, &err), 0);
    fail_in(&w, k);
    for (int c = 0; c < 4; c++) {
        char *before = state_of(&w, net);
        int rc = dmm_net_step(net, &err);
        if (rc) {
            (*fails)++;
            assert_int_equal(rc, DMM_E_NOMEM);
            char *after = state_of(&w, net);
            assert_string_equal(after, before);
            free(after);
            rc = dmm_net_step(net, &err);
        }
        assert_int_equal(rc, 0);
        if (c == 1) { /* once Y is read, the step builds it */
            while ((rc = dmm_net_outputs_build(net, &err)) != 0) {
                assert_int_equal(rc, DMM_E_NOMEM);
                (*fails)++;
            }
        }
        free(before);
    }
    *hit = failed_yet(&w);
    char *text = state_of(&w, net);
    dmm_net_free(net);
    world_close(&w);
    return text;
}

static void step_sweep(unsigned threads)
{
    bool hit;
    long fails = 0, none = 0;
    char *want = step_run(threads, 0, &hit, &none);
    assert_int_equal(none, 0);
    long k = 1;
    for (;; k++) {
        char *got = step_run(threads, k, &hit, &fails);
        assert_string_equal(got, want);
        free(got);
        if (!hit)
            break;
    }
    assert_true(fails > 20);
    print_message("step on %u thread(s): %ld failing allocations of %ld\n",
                  threads, fails, k - 1);
    free(want);
}

static void test_step_one_thread(void **state)
{
    (void)state;
    step_sweep(1);
}

static void test_step_two_threads(void **state)
{
    (void)state;
    step_sweep(2);
}

/* An edit that adds a neuron (a rebuild) and changes a weight (a patch),
 * after two cycles; then a cycle on the edited network. */
static void test_edit(void **state)
{
    (void)state;
    const char *delta = "{\"tanh\": {\"v\": {\"x\": {\"tanh\": {\"t\": "
                        "{\"x\": 1}}}}, \"u\": {\"x\": {\"tanh\": {\"u\": "
                        "{\"x\": -0.1}}}}}}";
    char *want = NULL;
    long fails = 0;
    for (long k = 0;; k++) {
        world w;
        world_open(&w);
        dmm_net *net = load_ok(&w);
        dmm_error err;
        feed(&w, net, 2);
        assert_int_equal(dmm_net_step(net, &err), 0);
        assert_int_equal(dmm_net_step(net, &err), 0);
        vv d = tu_vv(w.vc, delta);
        char *before = state_of(&w, net);
        fail_in(&w, k);
        int rc = dmm_net_edit(net, d, &err);
        bool hit = failed_yet(&w);
        if (rc) {
            fails++;
            assert_int_equal(rc, DMM_E_NOMEM);
            char *after = state_of(&w, net);
            assert_string_equal(after, before);
            free(after);
            assert_int_equal(dmm_net_edit(net, d, &err), 0);
        }
        fail_in(&w, k);
        while ((rc = dmm_net_step(net, &err)) != 0) {
            assert_int_equal(rc, DMM_E_NOMEM);
            fails++;
        }
        hit |= failed_yet(&w);
        char *got = state_of(&w, net);
        if (k == 0)
            want = got;
        else {
            assert_string_equal(got, want);
            free(got);
        }
        free(before);
        vv_free(w.vc, d);
        dmm_net_free(net);
        world_close(&w);
        if (k > 0 && !hit)
            break;
    }
    assert_true(fails > 20);
    print_message("edit and the next step: %ld failing allocations\n", fails);
    free(want);
}

/* Save, then restore the saved text, each with failing allocations. */
static void test_save_restore(void **state)
{
    (void)state;
    world w;
    world_open(&w);
    dmm_net *net = load_ok(&w);
    dmm_error err;
    feed(&w, net, 3);
    for (int c = 0; c < 2; c++)
        assert_int_equal(dmm_net_step(net, &err), 0);
    char *want = state_of(&w, net);
    long fails = 0;
    for (long k = 1;; k++) {
        vv_buf b = {0};
        fail_in(&w, k);
        int rc = dmm_net_save_buf(net, &b);
        bool hit = failed_yet(&w);
        free(b.data);
        if (rc) {
            assert_int_equal(rc, DMM_E_NOMEM);
            fails++;
        }
        char *now = state_of(&w, net);
        assert_string_equal(now, want);
        free(now);
        if (!hit)
            break;
    }
    for (long k = 1;; k++) {
        dmm_net *back = NULL;
        fail_in(&w, k);
        int rc = dmm_net_restore_text(w.vc, w.reg, want, strlen(want),
                                      "state.json", &back, &err);
        bool hit = failed_yet(&w);
        if (rc) {
            if (rc != DMM_E_NOMEM)
                fail_msg("restore, allocation %ld failing: %s (%s)", k,
                         err.text, err.path);
            assert_null(back);
            fails++;
        } else {
            char *got = state_of(&w, back);
            assert_string_equal(got, want);
            free(got);
            dmm_net_free(back);
        }
        if (!hit)
            break;
    }
    assert_true(fails > 20);
    print_message("save and restore: %ld failing allocations\n", fails);
    free(want);
    dmm_net_free(net);
    world_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_engine_bytes_counted),
        cmocka_unit_test(test_step_one_thread),
        cmocka_unit_test(test_step_two_threads),
        cmocka_unit_test(test_edit),
        cmocka_unit_test(test_save_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
