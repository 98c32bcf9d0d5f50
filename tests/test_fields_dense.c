// SPDX-License-Identifier: MIT
/*
 * Fields on the dense path (issue 14, "Cost"): modulated neurons that have a
 * dense form multiply their inputs and outputs there, and fields are read
 * straight from a field neuron's dense output. Every network runs with the
 * built-in types as registered (dense forms on; on one and two threads) and
 * with copies of them without dense form (the general path only), and the
 * two must agree bit for bit after every cycle, errors included. The list of
 * what applies to which neuron is built when the neurons or the fields
 * change, not per cycle: a debug counter shows it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_hooks.h"
#include "testutil_forms.h"

#define M 21 /* ring neurons */

/* A stream value: a number, a flat map (two shapes), or absent. */
static void stream(vv_buf *b)
{
    uint32_t s = tf_rnd(5);
    if (s >= 3) {
        tu_put(b, s == 3 ? "%.17g" : "0", tf_rnd_x());
        return;
    }
    tu_put(b, s ? "{\"k0\": %.17g, \"k1\": %.17g}" : "{\"k1\": %.17g}",
           tf_rnd_x(), tf_rnd_x());
}

/*
 * The fields every network has, each changing or not:
 *   tanh/fv/v   a vector over labels 0, 2, 5, 3 (decimal, with gaps and not
 *               in label order), moving each cycle (0.9 itself + 0.5 a
 *               fixed vector); read straight from its dense output
 *   identity/fs/s  a number (a constant field)
 *   relu/fz/v   a vector that is zero every cycle (two equal sources
 *               cancelled): the constant 0
 *   identity/fn/n  by name: {type: {name: s}}
 *   identity/fl/m  a matrix (rank 2): no dense form, the V-value's lattice
 */
static void fields_sources(vv_buf *b)
{
    tu_put(b, ", [\"tanh/fv/v\", \"tanh/fv/v\", 0.9]"
              ", [\"tanh/fv/v\", \"identity/fg/v\", 0.5]"
              ", [\"identity/fg/v\", \"identity/fg/v\", 1]"
              ", [\"identity/fs/s\", \"identity/fs/s\", 1]"
              ", [\"relu/fz/v\", \"identity/fg/v\", 1]"
              ", [\"relu/fz/v\", \"identity/fg2/v\", -1]"
              ", [\"identity/fg2/v\", \"identity/fg2/v\", 1]"
              ", [\"identity/fn/n\", \"identity/fn/n\", 1]"
              ", [\"identity/fl/m\", \"identity/fl/m\", 1]");
}

static void fields_outputs(vv_buf *b)
{
    tu_put(b,
           "\"fg\": {\"v\": {\"0\": %.17g, \"2\": 1.5, \"5\": %.17g, "
           "\"3\": -0.75}}, "
           "\"fg2\": {\"v\": {\"0\": %.17g, \"2\": 1.5, \"5\": %.17g, "
           "\"3\": -0.75}}, "
           "\"fs\": {\"s\": %.17g}, "
           "\"fl\": {\"m\": {\"0\": {\"0\": 1, \"1\": 2}, \"1\": "
           "{\"0\": -0.5, \"2\": 3}}}, "
           "\"fn\": {\"n\": {\"tanh\": {\"u1\": 2, \"u8\": -0.5}, "
           "\"relu\": {\"u2\": 0.25}, \"identity\": {\"u0\": 3}}}, ",
           0.75, -2.0, 0.75, -2.0, 1.5 + tf_rnd_x());
}

/* One modulation of the menu (the dense path takes multiply of input or
 * output; the others send their targets to the general path). */
static void modulation(vv_buf *b, int q, uint32_t which)
{
    static const char *const menu[] = {
        "\"field\": \"tanh/fv/v\", \"target\": \"input\", \"mode\": "
        "\"multiply\", \"neurons\": \"embedded\"",
        "\"field\": \"tanh/fv/v\", \"target\": \"output\", \"mode\": "
        "\"multiply\", \"neurons\": \"embedded\"",
        "\"field\": \"identity/fs/s\", \"target\": \"input\", \"mode\": "
        "\"multiply\", \"neurons\": [\"tanh/u1\", \"relu/u9\", "
        "\"accum/u4\", \"dot/u6\", \"softmax/u5\"]",
        "\"field\": \"relu/fz/v\", \"target\": \"output\", \"mode\": "
        "\"multiply\", \"neurons\": [\"sigmoid/u3\", \"tanh/u8\"]",
        "\"field\": \"identity/fn/n\", \"by\": \"name\", \"target\": "
        "\"input\", \"mode\": \"multiply\", \"neurons\": \"embedded\"",
        "\"field\": \"tanh/fv/v\", \"target\": \"input\", \"mode\": "
        "\"multiply\", \"stream\": \"b\", \"neurons\": \"embedded\"",
        "\"field\": \"identity/fl/m\", \"target\": \"output\", \"mode\": "
        "\"multiply\", \"neurons\": \"embedded\"",
        "\"field\": \"tanh/fv/v\", \"target\": \"input\", \"mode\": "
        "\"add\", \"neurons\": [\"tanh/u1\", \"identity/u7\"]",
        "\"field\": \"tanh/fv/v\", \"target\": \"weight\", \"mode\": "
        "\"multiply\", \"at\": \"product\", \"neurons\": \"embedded\"",
        "\"field\": \"identity/fs/s\", \"target\": \"output\", \"mode\": "
        "\"multiply\", \"stream\": \"a\", \"neurons\": \"embedded\"",
    };
    tu_put(b, "%s{\"name\": \"m%d\", %s}", q ? ", " : "", q,
           menu[which % (sizeof menu / sizeof *menu)]);
}

/* Positions: most ring neurons, on a line or in the plane, some in between
 * lattice points, some outside it; and a field neuron. Then the
 * modulations. */
static void positions_modulations(vv_buf *b)
{
    tu_put(b, ",\n\"positions\": {\"tanh/fv\": [1.5]");
    for (int k = 0; k < M; k++)
        if (tf_rnd(5))
            tu_put(b, ", \"%s/u%d\": [%.17g, %.17g]", tf_type_of(k), k,
                   (double)tf_rnd(33) / 4 - 1.5, tf_rnd(2) ? 0.0 : tf_rnd_x());
    tu_put(b, "},\n\"modulations\": [");
    int nmods = 1 + (int)tf_rnd(3);
    for (int q = 0; q < nmods; q++)
        modulation(b, q, tf_rnd(10));
    tu_put(b, "]");
}

static const tf_net_shape net_shape = {.m = M,
                                       .nweights = 7,
                                       .weight_first = true,
                                       .stream = stream,
                                       .links = fields_sources,
                                       .outputs = fields_outputs,
                                       .sections = positions_modulations};

static dmm_net *restore(const tf_world *w, const char *text)
{
    dmm_net *net = NULL;
    dmm_error err;
    if (dmm_net_restore_text(w->vc, w->dense, text, strlen(text), "state", &net,
                             &err))
        fail_msg("restore failed: %s", err.text);
    return net;
}

/* Dense (1 and 2 threads) and general runs of random modulated networks
 * agree after every cycle, errors included; edits in the middle add a row
 * and a neuron (the list of applications is rebuilt), and a live change of
 * the modulations swaps the fields. A fourth network, loaded from the state
 * of the cycle before (its lists made afresh), agrees too: what both paths
 * share, the lists kept across cycles, is checked against a fresh start. */
static void test_dense_equals_general(void **state)
{
    tf_world *w = *state;
    int agreed = 0, fresh = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        tf_seed = seed;
        char *text = tf_random_net(&net_shape);
        dmm_net *nets[4] = {tf_load(w, w->general, text),
                            tf_load(w, w->dense, text),
                            tf_load(w, w->dense, text), NULL};
        free(text);
        dmm_error err, errs[4];
        assert_int_equal(dmm_net_set_threads(nets[2], 2, &err), 0);
        char *prev = NULL;
        for (int t = 0; t < 24; t++) {
            int rcs[4] = {0};
            char *st[4] = {NULL};
            if (prev) { /* the state saved after the cycle before */
                nets[3] = restore(w, prev);
                free(prev);
                prev = NULL;
            }
            int n = nets[3] ? 4 : 3;
            for (int k = 0; k < n; k++) {
                if (t == 6)
                    tf_edit(w, nets[k],
                            "{\"tanh\": {\"u1\": {\"b\": {\"tanh\": "
                            "{\"fv\": {\"v\": 0.5}}}}}}");
                if (t == 12)
                    tf_edit(w, nets[k],
                            "{\"relu\": {\"new\": {\"a\": "
                            "{\"relu\": {\"u2\": {\"a\": -1}}}}}}");
                if (t == 16) {
                    const char *mod =
                        "{\"name\": \"late\", \"field\": \"tanh/fv/v\", "
                        "\"target\": \"output\", \"mode\": \"multiply\", "
                        "\"neurons\": [\"relu/new\", \"sigmoid/u3\"]}";
                    assert_int_equal(dmm_net_modulate(nets[k], "add", mod,
                                                      strlen(mod), &err),
                                     0);
                }
                rcs[k] = dmm_net_step(nets[k], &errs[k]);
                st[k] = t % 3 != 2 || rcs[k] || k == 3 ? tf_state_of(nets[k])
                                                       : NULL;
            }
            for (int k = 1; k < n; k++) {
                assert_int_equal(rcs[0], rcs[k]);
                if (rcs[0])
                    assert_string_equal(errs[0].text, errs[k].text);
                if (st[0])
                    assert_string_equal(st[0], st[k]);
            }
            if (t % 5 == 4)
                tf_assert_same_outputs(w, nets[0], nets[1]);
            fresh += n == 4 && !rcs[3];
            if (nets[3]) {
                dmm_net_free(nets[3]);
                nets[3] = NULL;
            }
            if (t % 3 == 0 && !rcs[0]) {
                prev = st[0];
                st[0] = NULL;
            }
            for (int k = 0; k < 4; k++)
                free(st[k]);
            agreed += !rcs[0];
            if (rcs[0])
                break;
        }
        free(prev);
        for (int k = 0; k < 3; k++)
            dmm_net_free(nets[k]);
    }
    /* most cycles ran, not failed at once */
    assert_true(agreed > 40 * 12);
    assert_true(fresh > 40 * 4);
}

/* A field that stops being a vector (a non-decimal label appears with a
 * value): the same error on both paths, the network as it was. */
static void test_bad_field_same_error(void **state)
{
    tf_world *w = *state;
    const char *text =
        "{\"dmm\": 1, \"matrix\": {}, \"links\": ["
        "[\"accum/self/accum\", \"accum/self/single\", 1],"
        "[\"identity/f/v\", \"identity/f/v\", 1],"
        "[\"identity/f/v\", \"identity/g/v\", 1],"
        "[\"identity/g/v\", \"identity/h/v\", 1],"
        "[\"tanh/t/a\", \"tanh/t/a\", 0.5],"
        "[\"tanh/t/a\", \"identity/f/v\", 1]],"
        "\"outputs\": {\"identity\": {\"f\": {\"v\": {\"0\": 1, \"1\": 2}}, "
        "\"h\": {\"v\": {\"x\": 1}}}, \"tanh\": {\"t\": {\"a\": 0.5}}},"
        "\"positions\": {\"tanh/t\": [0.5]},"
        "\"modulations\": [{\"name\": \"m\", \"field\": \"identity/f/v\", "
        "\"target\": \"input\", \"mode\": \"multiply\", \"neurons\": "
        "\"embedded\"}]}";
    /* cycle 1: g is {} (h arrives), f a vector; cycle 2: f gets "x" */
    tf_check_same_failure(w, text, 2, DMM_E_INVAL,
                          "not a number, vector or matrix");
}

/* The list of applications is built once and kept while the compiled
 * neurons and the fields stay: across cycles, across a self-edit that
 * changes weights only (W patched, not rebuilt), and rebuilt once when a
 * neuron appears, when a field turns constant, or when the fields change. */
static void test_rebuilds_stay_put(void **state)
{
    tf_world *w = *state;
    const char *text =
        "{\"dmm\": 1, \"matrix\": {}, \"links\": ["
        "[\"accum/self/accum\", \"accum/self/single\", 1],"
        "[\"accum/self/delta\", \"identity/ed/d\", 1],"
        "[\"identity/ed/d\", \"identity/ed/d\", 1],"
        "[\"identity/f/v\", \"identity/f/v\", 1],"
        "[\"identity/f/v\", \"identity/off/v\", 1],"
        "[\"tanh/a/x\", \"tanh/b/x\", 0.9],"
        "[\"tanh/b/x\", \"tanh/a/x\", 0.9]],"
        "\"outputs\": {\"identity\": {\"f\": {\"v\": {\"0\": 1, \"1\": 2}}, "
        "\"ed\": {\"d\": {\"tanh\": {\"a\": {\"x\": {\"tanh\": {\"b\": "
        "{\"x\": 0.001}}}}}}}}, \"tanh\": {\"a\": {\"x\": 0.5}}},"
        "\"positions\": {\"tanh/a\": [0.25], \"tanh/b\": [1.5]},"
        "\"modulations\": [{\"name\": \"m\", \"field\": \"identity/f/v\", "
        "\"target\": \"input\", \"mode\": \"multiply\", \"neurons\": "
        "\"embedded\"}]}";
    dmm_net *d = tf_load(w, w->dense, text);
    dmm_error err;
    assert_int_equal(dmm__fields_rebuilds(d), 0);
    assert_int_equal(dmm_net_step(d, &err), 0);
    assert_int_equal(dmm__fields_rebuilds(d), 1);
    for (int t = 0; t < 10; t++) /* W's weight a <- b grows every cycle */
        assert_int_equal(dmm_net_step(d, &err), 0);
    assert_int_equal(dmm__fields_rebuilds(d), 1);
    /* a neuron appears: the compiled list is rebuilt, and so is ours */
    tf_edit(w, d,
            "{\"tanh\": {\"c\": {\"x\": {\"tanh\": {\"a\": {\"x\": 1}}}}}}");
    for (int t = 0; t < 5; t++)
        assert_int_equal(dmm_net_step(d, &err), 0);
    assert_int_equal(dmm__fields_rebuilds(d), 2);
    /* the field becomes a number (constant: neurons without a position
     * are inside it now) */
    tf_edit(
        w, d,
        "{\"identity\": {\"f\": {\"v\": {\"identity\": {\"f\": {\"v\": -1}, "
        "\"off\": {\"v\": 1}}}}, \"off\": {\"v\": {\"identity\": {\"off\": "
        "{\"v\": 1}}}}}}");
    /* f loses its own row and reads off twice, which is 0: the constant
     * 0 from the next cycle (off's arrival rebuilds too, in the same
     * cycle or one before) */
    for (int t = 0; t < 4; t++)
        assert_int_equal(dmm_net_step(d, &err), 0);
    size_t r = dmm__fields_rebuilds(d);
    assert_true(r >= 3 && r <= 4);
    for (int t = 0; t < 4; t++)
        assert_int_equal(dmm_net_step(d, &err), 0);
    assert_int_equal(dmm__fields_rebuilds(d), r);
    /* new fields: a new list */
    const char *mod = "{\"name\": \"m2\", \"field\": \"identity/f/v\", "
                      "\"target\": \"output\", \"mode\": \"multiply\", "
                      "\"neurons\": [\"tanh/c\"]}";
    assert_int_equal(dmm_net_modulate(d, "add", mod, strlen(mod), &err), 0);
    for (int t = 0; t < 4; t++)
        assert_int_equal(dmm_net_step(d, &err), 0);
    assert_int_equal(dmm__fields_rebuilds(d), 1);
    dmm_net_free(d);
}

static int step_op(tf_oom *o)
{
    return dmm_net_step(o->net, &o->err);
}

/* After a failed cycle the network is as its twin, and runs; then both
 * agree for two more cycles. */
static void step_check(tf_oom *o)
{
    dmm_error err;
    char *got = tf_state_of(o->net), *want = tf_state_of(o->twin);
    if (o->rc) {
        assert_string_equal(got, want);
        assert_int_equal(dmm_net_step(o->net, &err), 0);
    }
    free(got);
    free(want);
    assert_int_equal(dmm_net_step(o->twin, &err), 0);
    for (int t = 0; t < 2; t++) {
        tf_assert_same_state(o->net, o->twin);
        tf_step_both(o->net, o->twin);
    }
}

/* A cycle under an allocator that fails each allocation in turn, in the
 * first cycle (the list of applications built) and the second (the field
 * read from its dense output for the first time, its labels decoded): the
 * cycle reports DMM_E_NOMEM, the network is as it was (the state, and the
 * next cycle, those of a twin that never failed), and nothing leaks. */
static void test_step_out_of_memory(void **state)
{
    (void)state;
    const char *text =
        "{\"dmm\": 1, \"matrix\": {}, \"links\": ["
        "[\"accum/self/accum\", \"accum/self/single\", 1],"
        "[\"tanh/f/v\", \"tanh/f/v\", 0.5],"
        "[\"tanh/f/v\", \"identity/g/v\", 1],"
        "[\"identity/g/v\", \"identity/g/v\", 1],"
        "[\"tanh/a/x\", \"tanh/b/x\", 0.9],"
        "[\"tanh/b/x\", \"tanh/a/x\", 0.9],"
        "[\"sigmoid/c/x\", \"tanh/a/x\", 1]],"
        "\"outputs\": {\"identity\": {\"g\": {\"v\": {\"3\": 1, \"1\": 2, "
        "\"0\": -1}}}, \"tanh\": {\"a\": {\"x\": 0.5}}},"
        "\"positions\": {\"tanh/a\": [0.25], \"tanh/b\": [2.5], "
        "\"sigmoid/c\": [1]},"
        "\"modulations\": [{\"name\": \"m\", \"field\": \"tanh/f/v\", "
        "\"target\": \"input\", \"mode\": \"multiply\", \"neurons\": "
        "\"embedded\"}, {\"name\": \"o\", \"field\": \"tanh/f/v\", "
        "\"target\": \"output\", \"mode\": \"multiply\", \"neurons\": "
        "[\"sigmoid/c\"]}]}";
    void *cw_state;
    assert_int_equal(tn_world_setup_counted(&cw_state), 0);
    for (int warm = 0; warm < 2; warm++)
        assert_true(tf_fail_each_allocation(cw_state, text, warm, step_op,
                                            step_check, NULL) >= 3);
    tn_world_teardown(&cw_state); /* every byte given back */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_equals_general),
        cmocka_unit_test(test_bad_field_same_error),
        cmocka_unit_test(test_rebuilds_stay_put),
        cmocka_unit_test(test_step_out_of_memory),
    };
    return cmocka_run_group_tests(tests, tf_setup, tf_teardown);
}
