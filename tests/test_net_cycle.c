// SPDX-License-Identifier: MIT
/*
 * The two-stroke cycle: activation and deactivation through Self, a failing
 * cycle leaving the network untouched (NaN, bad self-edit), edits, input
 * queues, and Self losing its rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"
#include "testutil_net.h"

typedef tn_world fixture;

/* identity, but fails like a numeric fault once its input reaches 3. */
static int fire_fragile(dmm_fire *f)
{
    if (vv_max_norm(f->input) >= 3)
        return dmm_error_set(f->err, DMM_E_NONFINITE, "", "input too large");
    f->output = vv_ref(f->input);
    return 0;
}

static const dmm_neuron_type fragile_type = {
    .name = "fragile",
    .summary = "identity below 3, a fault from 3 on",
    .outputs_doc = "same names as inputs",
    .fn = fire_fragile,
};

/* probe: reads a as its terms and never reads b; outputs "a" (a as the
 * sum of its terms, or as given), "given" (1 when a came as terms),
 * "terms" (how many), "b" (what it saw of b: nothing) and "c" (c as is). */
static int fire_probe(dmm_fire *f)
{
    vv_label l[5];
    static const char *const name[5] = {"a", "given", "terms", "b", "c"};
    for (int k = 0; k < 5; k++)
        if (vv_intern_cstr(f->vc, name[k], &l[k]))
            return DMM_E_NOMEM;
    const dmm_terms *t = f->terms ? &f->terms[0] : NULL;
    vv a = VV_ZERO;
    int rc = 0;
    if (t && t->given) {
        if (!vv_is_zero(dmm_fire_in(f, 0)))
            return dmm_error_set(f->err, DMM_E_INVAL, "", "a twice");
        rc = vv_sum(f->vc, t->n, t->w, t->v, &a);
    } else {
        a = vv_ref(dmm_fire_in(f, 0));
    }
    if (rc)
        return rc;
    vv kid[5] = {a, vv_number(t && t->given), vv_number(t ? (double)t->n : 0),
                 vv_ref(dmm_fire_in(f, 1)), vv_ref(dmm_fire_in(f, 2))};
    return vv_from_pairs(f->vc, 0, 5, l, kid, &f->output);
}

static const dmm_neuron_type probe_type = {
    .name = "probe",
    .summary = "shows how the engine gave its inputs",
    .inputs = (const char *const[]){"a", "b", "c", NULL},
    .outputs = (const char *const[]){"a", "given", "terms", "b", "c", NULL},
    .fn = fire_probe,
    .unread = (const char *const[]){"b", NULL},
    .terms = (const char *const[]){"a", NULL},
};

static int setup(void **state)
{
    static const dmm_neuron_type *const extra[] = {&fragile_type, &probe_type,
                                                   NULL};
    return tn_world_setup(state, extra);
}

static int teardown(void **state)
{
    return tn_world_teardown(state);
}

static void step_ok(dmm_net *net)
{
    dmm_error err;
    if (dmm_net_step(net, &err) != 0) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("step %llu failed: %s",
                 (unsigned long long)dmm_net_step_count(net) + 1, msg);
    }
}

/* borrowed: Y_t[type][name], zero when absent. */
static vv out_of(fixture *fx, dmm_net *net, const char *type, const char *name)
{
    vv_label p[2] = {tu_label(fx->vc, type), tu_label(fx->vc, name)};
    return vv_get(dmm_net_outputs(net), p, 2);
}

/* Fails unless Y_t[type][name] equals json. */
static void assert_out(fixture *fx, dmm_net *net, const char *type,
                       const char *name, const char *json)
{
    vv want = tu_vv(fx->vc, json);
    tu_assert_vv_close(fx->vc, out_of(fx, net, type, name), want, 0);
    vv_free(fx->vc, want);
}

#define SELF_ROW                                                               \
    "\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "                \
    "{\"single\": 1}}}"
#define D                                                                      \
    "{\"identity\": {\"late\": {\"x\": {\"identity\": {\"src\": "              \
    "{\"single\": 1}}}}}}"
#define MINUS_D                                                                \
    "{\"identity\": {\"late\": {\"x\": {\"identity\": {\"src\": "              \
    "{\"single\": -1}}}}}}"

static void test_activation_through_self(void **state)
{
    fixture *fx = *state;
    /* writer's output in Y_0 is a delta D giving identity/late a row;
     * writer2's -D reaches Self one cycle later through the delay d. */
    dmm_net *net = tn_load(
        fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW
            ", \"delta\": {\"identity\": {\"writer\": {\"single\": 1}, "
            "\"d\": {\"single\": 1}}}}},"
            " \"identity\": {\"src\": {\"single\": {\"identity\": {\"src\": "
            "{\"single\": 1}}}},"
            "  \"d\": {\"single\": {\"identity\": {\"writer2\": {\"single\": "
            "1}}}}}},"
            " \"outputs\": {\"identity\": {\"writer\": {\"single\": " D "},"
            "  \"writer2\": {\"single\": " MINUS_D "},"
            "  \"src\": {\"single\": 5}}}}");
    vv w0 = vv_ref(dmm_net_matrix(net));
    vv d = tu_vv(fx->vc, D);
    vv w1;
    assert_int_equal(vv_add(fx->vc, w0, d, &w1), 0);
    assert_int_equal(dmm_net_active_count(net), 3); /* Self, src, d */

    /* Cycle 1: D reaches Self's delta and is added to W; late has a row in
     * W_1 but has not computed yet. */
    step_ok(net);
    assert_true(vv_equal(dmm_net_matrix(net), w1));
    assert_true(vv_is_zero(out_of(fx, net, "identity", "late")));
    assert_true(vv_is_zero(out_of(fx, net, "identity", "writer")));
    assert_int_equal(dmm_net_active_count(net), 4);

    /* Cycle 2: late is active and reads src (5). -D arrives: W_2 = W_0. */
    step_ok(net);
    vv want = tu_vv(fx->vc, "{\"x\": 5}");
    assert_true(vv_equal(out_of(fx, net, "identity", "late"), want));
    assert_true(vv_equal(dmm_net_matrix(net), w0));
    assert_int_equal(dmm_net_active_count(net), 3);

    /* Cycle 3: late's last row is gone: not computed, output vanished. */
    step_ok(net);
    assert_true(vv_is_zero(out_of(fx, net, "identity", "late")));
    assert_out(fx, net, "identity", "src", "{\"single\": 5}");
    vv_free(fx->vc, want);
    vv_free(fx->vc, d);
    vv_free(fx->vc, w1);
    vv_free(fx->vc, w0);
    dmm_net_free(net);
}

static void test_nan_stop(void **state)
{
    fixture *fx = *state;
    /* c doubles each cycle: 2^1023 is the last finite power of two. */
    dmm_net *net = tn_load(fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW "},"
                               " \"c\": {\"accum\": {\"accum\": {\"c\": "
                               "{\"single\": 2}}}}}},"
                               " \"outputs\": {\"accum\": {\"c\": {\"single\": "
                               "1}}}}");
    dmm_error err;
    while (dmm_net_step_count(net) < 1023)
        step_ok(net);
    vv y = vv_ref(dmm_net_outputs(net));
    vv c = out_of(fx, net, "accum", "c");
    vv_label single = tu_label(fx->vc, "single");
    assert_true(vv_child(c, single).num == 0x1p1023);
    assert_int_equal(dmm_net_step(net, &err), DMM_E_NONFINITE);
    assert_int_equal(dmm_net_step_count(net), 1023);
    assert_int_equal(err.code, DMM_E_NONFINITE);
    assert_true(strncmp(err.text, "accum/c: ", 9) == 0);
    assert_non_null(strstr(err.text, "NaN or infinity"));
    assert_true(dmm_net_outputs(net).map == y.map);
    /* Again: the same failure, nothing changed. */
    assert_int_equal(dmm_net_step(net, &err), DMM_E_NONFINITE);
    assert_int_equal(dmm_net_step_count(net), 1023);
    assert_true(vv_equal(dmm_net_outputs(net), y));
    assert_true(dmm_net_outputs(net).map == y.map);
    vv_free(fx->vc, y);
    dmm_net_free(net);
}

static void test_nan_in_up_movement(void **state)
{
    fixture *fx = *state;
    /* c doubles in its own addition: accum + delta, both its output. */
    dmm_net *net = tn_load(fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW "},"
                               " \"c\": {\"accum\": {\"accum\": {\"c\": "
                               "{\"single\": 1}}}, \"delta\": {\"accum\": "
                               "{\"c\": {\"single\": 1}}}}}},"
                               " \"outputs\": {\"accum\": {\"c\": {\"single\": "
                               "1}}}}");
    while (dmm_net_step_count(net) < 1023)
        step_ok(net);
    vv y = vv_ref(dmm_net_outputs(net));
    dmm_error err;
    assert_int_equal(dmm_net_step(net, &err), DMM_E_NONFINITE);
    assert_string_equal(err.text, "accum/c: NaN or infinity produced");
    assert_int_equal(dmm_net_step_count(net), 1023);
    assert_true(dmm_net_outputs(net).map == y.map);
    vv_free(fx->vc, y);
    dmm_net_free(net);
}

static void test_fault_in_up_movement(void **state)
{
    fixture *fx = *state;
    dmm_net *net = tn_load(
        fx,
        "{\"dmm\": 1, \"matrix\": {" SELF_ROW "}},"
        " \"input\": {\"in\": {\"x\": {\"accum\": {\"self\": {\"single\":"
        " 1}}}}},"
        " \"fragile\": {\"f\": {\"x\": {\"input\": {\"in\": {\"v\": 1}}}}}}}");
    vv_label in = tu_label(fx->vc, "in");
    dmm_error err;
    const char *feeds[] = {"{\"v\": 1}", "{\"v\": 5}", "{\"v\": 2}"};
    for (int k = 0; k < 3; k++) {
        vv v = tu_vv(fx->vc, feeds[k]);
        assert_int_equal(dmm_net_feed(net, in, v, &err), 0);
        vv_free(fx->vc, v);
    }
    assert_int_equal(dmm_net_queue_len(net, in), 3);
    step_ok(net); /* input emits v=1 */
    step_ok(net); /* fragile reads 1; input emits v=5 */
    assert_int_equal(dmm_net_queue_len(net, in), 1);
    vv y = vv_ref(dmm_net_outputs(net));
    uint64_t t = dmm_net_step_count(net);
    /* fragile reads 5 and fails: the queued v=2 stays queued. */
    assert_int_equal(dmm_net_step(net, &err), DMM_E_NONFINITE);
    assert_string_equal(err.text, "fragile/f: input too large");
    assert_int_equal(dmm_net_step_count(net), t);
    assert_int_equal(dmm_net_queue_len(net, in), 1);
    assert_true(vv_equal(dmm_net_outputs(net), y));
    /* Remove fragile's row: the cycle runs and emits the kept feed. */
    vv cut = tu_vv(fx->vc, "{\"fragile\": {\"f\": {\"x\": {\"input\": "
                           "{\"in\": {\"v\": -1}}}}}}");
    assert_int_equal(dmm_net_edit(net, cut, &err), 0);
    step_ok(net);
    assert_int_equal(dmm_net_queue_len(net, in), 0);
    assert_out(fx, net, "input", "in", "{\"v\": 2}");
    assert_true(vv_is_zero(out_of(fx, net, "fragile", "f")));
    vv_free(fx->vc, cut);
    vv_free(fx->vc, y);
    dmm_net_free(net);
}

static void expect_edit_rejected(fixture *fx, dmm_net *net, const char *delta,
                                 const char *path)
{
    vv w = vv_ref(dmm_net_matrix(net));
    vv dv = tu_vv(fx->vc, delta);
    dmm_error err;
    assert_int_equal(dmm_net_edit(net, dv, &err), DMM_E_INVAL);
    assert_string_equal(err.path, path);
    assert_true(dmm_net_matrix(net).map == w.map);
    vv_free(fx->vc, dv);
    vv_free(fx->vc, w);
}

static void test_edits(void **state)
{
    fixture *fx = *state;
    dmm_net *net = tn_load(fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW "}}}}");
    expect_edit_rejected(fx, net,
                         "{\"foo\": {\"a\": {\"x\": {\"accum\": {\"self\": "
                         "{\"single\": 1}}}}}}",
                         "/foo");
    expect_edit_rejected(fx, net,
                         "{\"accum\": {\"c\": {\"bogus\": {\"accum\": "
                         "{\"self\": {\"single\": 1}}}}}}",
                         "/accum/c/bogus");
    expect_edit_rejected(fx, net,
                         "{\"identity\": {\"a\": {\"x\": {\"nope\": 1}}}}",
                         "/identity/a/x/nope");
    expect_edit_rejected(fx, net, "{\"identity\": {\"a\": 2}}", "/identity/a");

    /* A good edit is part of W at once: the next down movement uses it. */
    vv dv = tu_vv(fx->vc, "{\"identity\": {\"a\": {\"x\": {\"accum\": "
                          "{\"self\": {\"single\": 2}}}}}}");
    dmm_error err;
    assert_int_equal(dmm_net_edit(net, dv, &err), 0);
    assert_int_equal(dmm_net_step_count(net), 0);
    assert_int_equal(dmm_net_active_count(net), 2);
    vv w1 = vv_ref(dmm_net_matrix(net));
    step_ok(net);
    vv x = out_of(fx, net, "identity", "a");
    vv_label xl = tu_label(fx->vc, "x");
    vv want;
    assert_int_equal(vv_scale(fx->vc, 2, w1, &want), 0);
    assert_true(vv_equal(vv_child(x, xl), want));
    /* Self's accum input received the edited W. */
    assert_true(vv_equal(dmm_net_matrix(net), w1));
    vv_free(fx->vc, want);
    vv_free(fx->vc, w1);
    vv_free(fx->vc, dv);
    dmm_net_free(net);
}

static void test_bad_self_edit(void **state)
{
    fixture *fx = *state;
    /* writer's output, added to W by Self, names an unknown type. */
    dmm_net *net = tn_load(
        fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW
            ", \"delta\": {\"identity\": {\"writer\": {\"single\": 1}}}}}},"
            " \"outputs\": {\"identity\": {\"writer\": {\"single\": "
            "{\"foo\": {\"a\": {\"x\": {\"accum\": {\"self\": "
            "{\"single\": 1}}}}}}}}}}");
    vv y = vv_ref(dmm_net_outputs(net));
    dmm_error err;
    assert_int_equal(dmm_net_step(net, &err), DMM_E_INVAL);
    assert_string_equal(err.path, "/foo");
    assert_non_null(strstr(err.text, "unknown neuron type \"foo\""));
    assert_int_equal(dmm_net_step_count(net), 0);
    assert_true(dmm_net_outputs(net).map == y.map);
    vv_free(fx->vc, y);
    dmm_net_free(net);
}

/* A self-edit's matrix is checked along the paths of Self's delta only
 * (dmm__check_matrix_delta): each bad delta, added among siblings, gives
 * the error the full check of dmm_net_edit gives for the same delta. */
static void test_self_edit_check_as_edit(void **state)
{
    fixture *fx = *state;
    static const char *const deltas[] = {
        "{\"foo\": {\"a\": {\"x\": {\"tanh\": {\"t1\": {\"x\": 1}}}}}}",
        "{\"tanh\": {\"t1\": {\"nope\": {\"tanh\": {\"t0\": {\"x\": 1}}}}}}",
        "{\"tanh\": {\"t1\": {\"x\": {\"bar\": {\"t0\": {\"x\": 1}}}}}}",
        "{\"tanh\": {\"t2\": 3}}",
        "{\"tanh\": 3}",
        "{\"tanh\": {\"t0\": {\"x\": {\"tanh\": {\"t2\": {\"x\": 1}}, "
        "\"zzz\": {\"q\": {\"x\": 1}}}}}}",
        "{\"tanh\": {\"t9\": {\"x\": {\"tanh\": {\"t0\": {\"x\": 1}}}}}}",
    };
    static const char rows[] =
        "\"tanh\": {\"t0\": {\"x\": {\"tanh\": {\"t1\": {\"x\": 0.5}}}},"
        " \"t1\": {\"x\": {\"tanh\": {\"t2\": {\"x\": 0.5}}}},"
        " \"t2\": {\"x\": {\"tanh\": {\"t0\": {\"x\": 0.5}}}}}";
    for (size_t c = 0; c < sizeof deltas / sizeof deltas[0]; c++) {
        vv_buf b = {0};
        tu_put(&b,
               "{\"dmm\": 1, \"matrix\": {" SELF_ROW
               ", \"delta\": {\"identity\": {\"writer\": {\"single\": "
               "1}}}}}, %s}, \"outputs\": {\"identity\": {\"writer\": "
               "{\"single\": %s}}}}",
               rows, deltas[c]);
        tu_put(&b, "%c", 0);
        dmm_net *self = tn_load(fx, b.data);
        free(b.data);
        b = (vv_buf){0};
        tu_put(&b,
               "{\"dmm\": 1, \"matrix\": {" SELF_ROW
               ", \"delta\": {\"identity\": {\"writer\": {\"single\": "
               "1}}}}}, %s}}%c",
               rows, 0);
        dmm_net *edited = tn_load(fx, b.data);
        free(b.data);
        vv d = tu_vv(fx->vc, deltas[c]);
        dmm_error e1, e2;
        int r1 = dmm_net_step(self, &e1), r2 = dmm_net_edit(edited, d, &e2);
        assert_int_equal(r1, r2);
        if (r2) {
            assert_string_equal(e1.path, e2.path);
            const char *tail = strstr(e1.text, "is not valid: ");
            assert_non_null(tail);
            assert_string_equal(tail + strlen("is not valid: "), e2.text);
        } else {
            assert_true(vv_equal(dmm_net_matrix(self), dmm_net_matrix(edited)));
        }
        vv_free(fx->vc, d);
        dmm_net_free(self);
        dmm_net_free(edited);
    }
}

static void test_feed_queue(void **state)
{
    fixture *fx = *state;
    dmm_net *net = tn_load(fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW "}},"
                               " \"input\": {\"in\": {\"dummy\": {\"identity\":"
                               " {\"none\": {\"single\": 1}}}}}}}");
    vv_label in = tu_label(fx->vc, "in");
    vv a = tu_vv(fx->vc, "{\"s\": {\"a\": 1}}");
    vv b = tu_vv(fx->vc, "{\"s\": {\"b\": 2}}");
    dmm_error err;
    /* Two feeds before one cycle: emitted on consecutive cycles. */
    assert_int_equal(dmm_net_feed(net, in, a, &err), 0);
    assert_int_equal(dmm_net_feed(net, in, b, &err), 0);
    assert_int_equal(dmm_net_queue_len(net, in), 2);
    step_ok(net);
    assert_true(vv_equal(out_of(fx, net, "input", "in"), a));
    assert_int_equal(dmm_net_queue_len(net, in), 1);
    step_ok(net);
    assert_true(vv_equal(out_of(fx, net, "input", "in"), b));
    step_ok(net);
    assert_true(vv_is_zero(out_of(fx, net, "input", "in")));
    assert_int_equal(dmm_net_queue_len(net, in), 0);
    vv_free(fx->vc, a);
    vv_free(fx->vc, b);
    dmm_net_free(net);
}

/* Ports filled by their source (net_ports.c, "ports by source"): an input
 * neuron with ten outputs read, of which few are present in a cycle; every
 * reader sees each present one and zero for the others, also for an output
 * present one cycle and gone the next, and after an edit (which fills every
 * port the per-port way once). */
static void test_ports_by_source(void **state)
{
    fixture *fx = *state;
    char text[4096], *w = text;
    w += sprintf(w, "{\"dmm\": 1, \"matrix\": {" SELF_ROW "}},"
                    " \"input\": {\"in\": {\"dummy\": {\"identity\":"
                    " {\"none\": {\"single\": 1}}}}},"
                    " \"identity\": {\"r\": {\"x\": {\"input\": {\"in\": {");
    for (int i = 0; i < 10; i++)
        w += sprintf(w, "%s\"o%d\": %d", i ? ", " : "", i, i + 1);
    w += sprintf(w, "}}}, \"y\": {\"input\": {\"in\": {\"o3\": 1}}}}},"
                    " \"probe\": {\"p\": {\"a\": {\"input\": {\"in\": {");
    for (int i = 0; i < 10; i++) /* the same row, taken as its terms */
        w += sprintf(w, "%s\"o%d\": %d", i ? ", " : "", i, i + 1);
    sprintf(w, "}}}}}}}");
    dmm_net *net = tn_load(fx, text);
    vv_label in = tu_label(fx->vc, "in");
    dmm_error err;
    const char *feeds[] = {"{\"o0\": 1, \"o5\": 2}", "{\"o9\": 1, \"o3\": 4}",
                           NULL, "{\"o5\": {\"a\": 1}, \"o7\": 3}"};
    /* r's output after each step (the feed of the step before) */
    const char *want[] = {"{}", "{\"x\": 13}", "{\"x\": 26, \"y\": 4}", "{}"};
    /* p's: the present terms only, in order, however many ports */
    const char *pwant[] = {
        "{\"given\": 1}", "{\"a\": 13, \"given\": 1, \"terms\": 2}",
        "{\"a\": 26, \"given\": 1, \"terms\": 2}", "{\"given\": 1}"};
    for (int t = 0; t < 4; t++) {
        if (feeds[t]) {
            vv f = tu_vv(fx->vc, feeds[t]);
            assert_int_equal(dmm_net_feed(net, in, f, &err), 0);
            vv_free(fx->vc, f);
        }
        step_ok(net);
        assert_int_equal(dmm_net_outputs_build(net, &err), 0);
        assert_out(fx, net, "identity", "r", want[t]);
        assert_out(fx, net, "probe", "p", pwant[t]);
    }
    /* The input shows feed 3 now; an edit (y reads o7 too) in between. */
    vv d = tu_vv(fx->vc, "{\"identity\": {\"r\": {\"y\": {\"input\": {\"in\":"
                         " {\"o7\": 2}}}}}}");
    assert_int_equal(dmm_net_edit(net, d, &err), 0);
    vv_free(fx->vc, d);
    step_ok(net);
    assert_int_equal(dmm_net_outputs_build(net, &err), 0);
    assert_out(fx, net, "identity", "r",
               "{\"x\": {\":number\": 24, \"a\": 6}, \"y\": 6}");
    assert_out(fx, net, "probe", "p",
               "{\"a\": {\":number\": 24, \"a\": 6}, \"given\": 1, "
               "\"terms\": 2}");
    step_ok(net); /* o5 and o7 gone */
    assert_int_equal(dmm_net_outputs_build(net, &err), 0);
    assert_out(fx, net, "identity", "r", "{}");
    assert_out(fx, net, "probe", "p", "{\"given\": 1}");
    dmm_net_free(net);
}

/* A row of one weight 1 deeper than depth 3 reads that part of its port
 * (dmm__row.deep, no Y made); with another weight it is summed against Y
 * as before; both give what the sum over the row's paths says. */
static void test_deep_row(void **state)
{
    fixture *fx = *state;
    dmm_net *net = tn_load(
        fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW "}},"
            " \"input\": {\"in\": {\"dummy\": {\"identity\":"
            " {\"none\": {\"single\": 1}}}}},"
            " \"identity\": {\"r\": {"
            "  \"z\": {\"input\": {\"in\": {\"v\": {\"a\": 1}}}},"
            "  \"u\": {\"input\": {\"in\": {\"v\": {\"a\": {\"b\": 2}}}}},"
            "  \"m\": {\"input\": {\"in\": {\"v\": {\"x\": 1}}}}}}}}");
    vv_label in = tu_label(fx->vc, "in");
    dmm_error err;
    vv f = tu_vv(fx->vc, "{\"v\": {\"a\": {\"b\": 3, \"c\": 4}}}");
    assert_int_equal(dmm_net_feed(net, in, f, &err), 0);
    vv_free(fx->vc, f);
    step_ok(net);
    step_ok(net);
    assert_int_equal(dmm_net_outputs_build(net, &err), 0);
    assert_out(fx, net, "identity", "r",
               "{\"z\": {\"b\": 3, \"c\": 4}, \"u\": 6}");
    step_ok(net);
    assert_int_equal(dmm_net_outputs_build(net, &err), 0);
    assert_out(fx, net, "identity", "r", "{}");
    dmm_net_free(net);
}

static void test_self_loses_rows(void **state)
{
    fixture *fx = *state;
    /* k's output is -W_0: W_1 = W_0 - W_0 = {}, and the network stops. */
    dmm_net *net =
        tn_load(fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW
                    ", \"delta\": {\"identity\": {\"k\": {\"single\": 1}}}}}},"
                    " \"outputs\": {\"identity\": {\"k\": {\"single\": "
                    "{\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "
                    "{\"single\": -1}}}, \"delta\": {\"identity\": {\"k\": "
                    "{\"single\": -1}}}}}}}}}}");
    step_ok(net);
    assert_true(vv_is_zero(dmm_net_matrix(net)));
    assert_true(vv_is_zero(dmm_net_outputs(net)));
    assert_int_equal(dmm_net_active_count(net), 1);
    step_ok(net);
    assert_true(vv_is_zero(dmm_net_outputs(net)));
    assert_int_equal(dmm_net_step_count(net), 2);
    dmm_net_free(net);

    /* Only Self's accum row is cancelled: W_2 is just what the delta
     * gives, as Self's accum input is gone. */
    net = tn_load(fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW
                      ", \"delta\": {\"identity\": {\"k\": {\"single\": 1}}}}},"
                      " \"identity\": {\"k\": {\"single\": {\"identity\": "
                      "{\"k\": {\"single\": 1}}}}}},"
                      " \"outputs\": {\"identity\": {\"k\": {\"single\": "
                      "{\"accum\": {\"self\": {\"accum\": {\"accum\": "
                      "{\"self\": {\"single\": -1}}}}}}}}}}");
    step_ok(net);
    vv w1 = tu_vv(fx->vc, "{\"accum\": {\"self\": {\"delta\": {\"identity\":"
                          " {\"k\": {\"single\": 1}}}}}, \"identity\": "
                          "{\"k\": {\"single\": {\"identity\": {\"k\": "
                          "{\"single\": 1}}}}}}");
    assert_true(vv_equal(dmm_net_matrix(net), w1));
    step_ok(net);
    vv w2 = tu_vv(fx->vc, "{\"accum\": {\"self\": {\"accum\": {\"accum\": "
                          "{\"self\": {\"single\": -1}}}}}}");
    assert_true(vv_equal(dmm_net_matrix(net), w2));
    vv_free(fx->vc, w1);
    vv_free(fx->vc, w2);
    dmm_net_free(net);
}

/* Out of memory at every allocation of three cycles in turn: the failing
 * cycle returns DMM_E_NOMEM and changes nothing; retried, the run ends where
 * a run without failures ends. */
static const char oom_net[] =
    "{\"dmm\": 1, \"matrix\": {" SELF_ROW
    ", \"delta\": {\"identity\": {\"writer\": {\"single\": 1}}}},"
    " \"c\": {\"accum\": {\"accum\": {\"c\": {\"single\": 0.5}}},"
    " \"delta\": {\"input\": {\"in\": {\"v\": 1}}}}},"
    " \"input\": {\"in\": {\"d\": {\"accum\": {\"c\": 1}}}},"
    " \"tanh\": {\"t\": {\"x\": {\"accum\": {\"c\": {\"single\": 0.3}}}}}},"
    " \"outputs\": {\"identity\": {\"writer\": {\"single\": " D "}}}}";

static char *oom_run(long fail_at, bool *hit)
{
    tu_alloc a = {0};
    vv_options opt = {.alloc = tu_alloc_fn, .alloc_ud = &a};
    vv_ctx *vc = vv_ctx_new(&opt);
    dmm_registry *reg = dmm_registry_new(vc);
    assert_int_equal(dmm_registry_add_builtins(reg), 0);
    fixture fx = {.vc = vc, .reg = reg};
    dmm_net *net = tn_load(&fx, oom_net);
    vv_label in = tu_label(vc, "in");
    vv v = tu_vv(vc, "{\"v\": {\"p\": 1, \"q\": 2}}");
    dmm_error err;
    assert_int_equal(dmm_net_feed(net, in, v, &err), 0);
    assert_int_equal(dmm_net_feed(net, in, v, &err), 0);
    vv_free(vc, v);
    if (fail_at > 0)
        a.fail_at = a.count + fail_at;
    for (int k = 0; k < 3; k++) {
        vv y = vv_ref(dmm_net_outputs(net));
        uint64_t t = dmm_net_step_count(net);
        size_t q = dmm_net_queue_len(net, in);
        int rc = dmm_net_step(net, &err);
        if (rc) {
            assert_int_equal(rc, DMM_E_NOMEM);
            assert_true(dmm_net_outputs(net).map == y.map);
            assert_int_equal(dmm_net_step_count(net), t);
            assert_int_equal(dmm_net_queue_len(net, in), q);
            rc = dmm_net_step(net, &err);
        }
        assert_int_equal(rc, 0);
        vv_free(vc, y);
    }
    char *text = vv_to_string(vc, dmm_net_outputs(net));
    *hit = fail_at > 0 && a.count >= a.fail_at;
    dmm_net_free(net);
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    assert_int_equal(a.bytes, 0);
    return text;
}

static void test_out_of_memory(void **state)
{
    bool hit;
    char *want = oom_run(0, &hit);
    long k = 1;
    for (;; k++) {
        char *got = oom_run(k, &hit);
        assert_string_equal(got, want);
        free(got);
        if (!hit)
            break;
    }
    assert_true(k > 10);
    free(want);
}

/* A type's unread inputs are not computed, its terms inputs come as the
 * row's non-zero terms in label order, the others summed as ever. */
static void test_unread_and_terms(void **state)
{
    fixture *fx = *state;
    dmm_net *net = tn_load(
        fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW "}},"
            " \"identity\": {\"k1\": {\"v\": {\"identity\": {\"k1\": "
            "{\"v\": 1}}}}, \"k2\": {\"v\": {\"identity\": {\"k2\": "
            "{\"v\": 1}}}}},"
            " \"probe\": {\"p\": {"
            "  \"a\": {\"identity\": {\"k1\": {\"v\": 0.5}, \"k2\": {\"v\": "
            "3}, \"k3\": {\"v\": 7}}},"
            "  \"b\": {\"identity\": {\"k1\": {\"v\": 1}}},"
            "  \"c\": {\"identity\": {\"k1\": {\"v\": 0.25}, \"k2\": {\"v\": "
            "1}}}}}},"
            " \"outputs\": {\"identity\": {\"k1\": {\"v\": {\"x\": 1}},"
            "  \"k2\": {\"v\": {\"x\": 2, \"y\": 2}}}}}");
    dmm_error err;
    assert_int_equal(dmm_net_step(net, &err), 0);
    assert_int_equal(dmm_net_outputs_build(net, &err), 0);
    vv_label p[2] = {tu_label(fx->vc, "probe"), tu_label(fx->vc, "p")};
    vv got = vv_get(dmm_net_outputs(net), p, 2);
    /* a: 0.5·{x: 1} + 3·{x: 2, y: 2} from two terms (k3 has no output);
     * b: never computed; c: summed as usual */
    vv want = tu_vv(fx->vc, "{\"a\": {\"x\": 6.5, \"y\": 6}, \"given\": 1,"
                            " \"terms\": 2, \"c\": {\"x\": 2.25, \"y\": 2}}");
    assert_true(vv_equal(got, want));
    vv_free(fx->vc, want);
    dmm_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_through_self),
        cmocka_unit_test_setup_teardown(test_unread_and_terms, setup, teardown),
        cmocka_unit_test(test_nan_stop),
        cmocka_unit_test(test_nan_in_up_movement),
        cmocka_unit_test(test_fault_in_up_movement),
        cmocka_unit_test(test_edits),
        cmocka_unit_test(test_bad_self_edit),
        cmocka_unit_test(test_self_edit_check_as_edit),
        cmocka_unit_test(test_feed_queue),
        cmocka_unit_test(test_self_loses_rows),
        cmocka_unit_test_setup_teardown(test_deep_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ports_by_source, setup, teardown),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
