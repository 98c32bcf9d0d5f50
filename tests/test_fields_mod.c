// SPDX-License-Identifier: MIT
/*
 * Fields (docs/fields.md): the worked examples of the page, its four laws,
 * positions and modulations saved and restored in states, and the live
 * changes (modulate, position) refused and accepted as the page says.
 * Fields are held constant by an `identity` neuron that feeds itself with
 * weight 1 (its output never changes), so each example's F is exact.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"
#include "dmm_neuron.h"
#include "testutil_net.h"

typedef tn_world fx;

/* A type with a parameter k: output = k · input (streams kept). */
static int fire_scaled(dmm_fire *f)
{
    return vv_scale(f->vc, dmm_fire_param(f, 0), f->input, &f->output);
}
static const dmm_param_spec scaled_params[] = {{"k", 1.0, "the factor"},
                                               {NULL, 0, NULL}};
static const dmm_neuron_type scaled_type = {
    .name = "scaled",
    .summary = "k times the input",
    .outputs_doc = "same names as inputs",
    .params = scaled_params,
    .fn = fire_scaled,
};
/* A fixed-input type with a parameter k: y = k · x; k can also arrive as
 * an input stream "k" (dmm_fire_param). */
static int fire_gained(dmm_fire *f)
{
    double y = dmm_fire_param(f, 0) * dmm_fire_in(f, 0).num;
    return vv_from_pairs(f->vc, 0, 1, &f->type->out[0], (vv[]){vv_number(y)},
                         &f->output);
}
static const dmm_neuron_type gained_type = {
    .name = "gained",
    .summary = "y = k x",
    .inputs = (const char *const[]){"x", NULL},
    .outputs = (const char *const[]){"y", NULL},
    .params = scaled_params,
    .fn = fire_gained,
};
static const dmm_neuron_type *const extra[] = {&scaled_type, &gained_type,
                                               NULL};

/* new (free): s with every `from` replaced by `to`. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t n = strlen(s) * 2 + 1;
    char *out = malloc(n), *o = out;
    size_t lf = strlen(from), lt = strlen(to);
    while (*s) {
        if (!strncmp(s, from, lf)) {
            memcpy(o, to, lt);
            o += lt;
            s += lf;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

static int setup(void **state)
{
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

/* Y_t[type][name][out] as a number. */
static double num_of(fx *x, dmm_net *net, const char *type, const char *name,
                     const char *out)
{
    vv_label p[3] = {tu_label(x->vc, type), tu_label(x->vc, name),
                     tu_label(x->vc, out)};
    vv v = vv_get(dmm_net_outputs(net), p, 3);
    assert_null(v.map);
    return v.num;
}

/* Self's row, and a constant field identity/f/single = F (JSON text). */
#define SELF                                                                   \
    "\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": {\"single\": "   \
    "1}}}}}"
#define FIELD_ROW "[\"identity/f/single\", \"identity/f/single\", 1]"

static char *net_text(const char *extra_matrix, const char *links,
                      const char *field, const char *outputs, const char *rest)
{
    char *t = malloc(8192);
    snprintf(t, 8192,
             "{\"dmm\": 1, \"matrix\": {" SELF "%s},\n"
             "\"links\": [" FIELD_ROW "%s],\n"
             "\"outputs\": {\"identity\": {\"f\": {\"single\": %s}%s}}%s}",
             extra_matrix, links, field, outputs, rest);
    return t;
}

static dmm_net *load(fx *x, const char *extra_matrix, const char *links,
                     const char *field, const char *outputs, const char *rest)
{
    char *t = net_text(extra_matrix, links, field, outputs, rest);
    dmm_net *net = tn_load(x, t);
    free(t);
    return net;
}

/* identity/c emits {"one": 1} for ever (feeds itself). */
#define CONST_ROW ", [\"identity/c/one\", \"identity/c/one\", 1]"
#define CONST_OUT ", \"c\": {\"one\": 1}"

/* ---- worked examples ----------------------------------------------------- */

static void test_constant_gate(void **state)
{
    fx *x = *state;
    const char *mods =
        ", \"modulations\": [{\"name\": \"gate\", \"field\": "
        "\"identity/f/single\", \"target\": \"input\", \"neurons\": "
        "[\"tanh/a\"], \"mode\": \"multiply\"}]";
    dmm_net *net =
        load(x, "", CONST_ROW ", [\"tanh/a/x\", \"identity/c/one\", 2]", "0.5",
             CONST_OUT, mods);
    step_ok(net);
    assert_true(num_of(x, net, "tanh", "a", "x") == 0.7615941559557649);
    dmm_net_free(net);
    /* Without it: tanh(2). */
    net = load(x, "", CONST_ROW ", [\"tanh/a/x\", \"identity/c/one\", 2]",
               "0.5", CONST_OUT, "");
    step_ok(net);
    assert_true(num_of(x, net, "tanh", "a", "x") == tanh(2.0));
    dmm_net_free(net);
}

/* identity/a at position pos, input x = 1 through field F by `mode`: its
 * output x after one cycle. */
static double sampled(fx *x, const char *field, const char *pos,
                      const char *mode)
{
    char rest[1024];
    snprintf(rest, sizeof rest,
             ", \"positions\": {\"identity/a\": %s}, \"modulations\": "
             "[{\"name\": \"m\", \"field\": \"identity/f/single\", \"target\": "
             "\"input\", \"neurons\": \"embedded\", \"mode\": \"%s\"}]",
             pos, mode);
    dmm_net *net =
        load(x, "", CONST_ROW ", [\"identity/a/x\", \"identity/c/one\", 1]",
             field, CONST_OUT, rest);
    step_ok(net);
    double v = num_of(x, net, "identity", "a", "x");
    dmm_net_free(net);
    return v;
}

#define F_BILINEAR "{\"0\": {\"0\": 1, \"1\": 3}, \"1\": {\"0\": 5}}"

static void test_bilinear(void **state)
{
    fx *x = *state;
    assert_true(sampled(x, F_BILINEAR, "[0.5, 0.25]", "multiply") == 2.125);
    /* At the lattice points, the entries; [x] means [x, 0]. */
    assert_true(sampled(x, F_BILINEAR, "[1]", "multiply") == 3.0);
    assert_true(sampled(x, F_BILINEAR, "[0, 1]", "multiply") == 5.0);
    assert_true(sampled(x, F_BILINEAR, "[1, 1]", "add") == 1.0);
    /* Rank 1: linear in x, y ignored. */
    assert_true(sampled(x, "{\"0\": 2, \"1\": 4}", "[0.25, 7]", "multiply") ==
                2.5);
}

static void test_outside_lattice(void **state)
{
    fx *x = *state;
    /* s = 0: replace gives 0 (the stream is absent), add gives 1 + 0. */
    assert_true(sampled(x, F_BILINEAR, "[-1, 0]", "replace") == 0.0);
    assert_true(sampled(x, F_BILINEAR, "[-1, 0]", "add") == 1.0);
    assert_true(sampled(x, F_BILINEAR, "[1e300, -1e300]", "replace") == 0.0);
}

static void test_weights_by_product(void **state)
{
    fx *x = *state;
    const char *rest =
        ", \"positions\": {\"output/o\": [1], \"identity/a\": [0], "
        "\"identity/b\": [2]}, \"modulations\": [{\"name\": \"wiring\", "
        "\"field\": \"identity/f/single\", \"target\": \"weight\", "
        "\"neurons\": [\"output/o\"], \"at\": \"product\", \"mode\": "
        "\"multiply\"}]";
    dmm_net *net =
        load(x, "",
             ", [\"identity/a/single\", \"identity/a/single\", 1]"
             ", [\"identity/b/single\", \"identity/b/single\", 1]"
             ", [\"output/o/x\", \"identity/a/single\", 2]"
             ", [\"output/o/x\", \"identity/b/single\", 4]",
             "{\"0\": 1, \"1\": 0.5, \"2\": 0.25}",
             ", \"a\": {\"single\": 1}, \"b\": {\"single\": 1}", rest);
    vv w0 = vv_ref(dmm_net_matrix(net));
    step_ok(net);
    /* 2·(0.5·1)·1 + 4·(0.5·0.25)·1 */
    assert_true(num_of(x, net, "output", "o", "x") == 1.5);
    /* Law 2: W still says 2 and 4, and Self's output is W. */
    assert_true(vv_equal(dmm_net_matrix(net), w0));
    vv_label p[6] = {tu_label(x->vc, "output"), tu_label(x->vc, "o"),
                     tu_label(x->vc, "x"),      tu_label(x->vc, "identity"),
                     tu_label(x->vc, "b"),      tu_label(x->vc, "single")};
    assert_true(vv_get(dmm_net_matrix(net), p, 6).num == 4.0);
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_non_null(strstr(b.data, "\"b\":{\"single\":4}"));
    free(b.data);
    vv_free(x->vc, w0);
    dmm_net_free(net);
}

static void test_replace_param(void **state)
{
    fx *x = *state;
    const char *mod = "{\"name\": \"k3\", \"field\": \"identity/f/single\", "
                      "\"target\": \"param\", \"param\": \"k\", \"neurons\": "
                      "[\"scaled/s\"], \"mode\": \"replace\"}";
    char rest[512];
    snprintf(rest, sizeof rest,
             ", \"params\": {\"scaled\": {\"s\": {\"k\": 1}}}, "
             "\"modulations\": [%s]",
             mod);
    dmm_net *net =
        load(x, "", CONST_ROW ", [\"scaled/s/x\", \"identity/c/one\", 5]", "3",
             CONST_OUT, rest);
    step_ok(net);
    assert_true(num_of(x, net, "scaled", "s", "x") == 15.0);
    dmm_error err;
    assert_int_equal(dmm_net_modulate(net, "remove", "\"k3\"", 4, &err), 0);
    step_ok(net);
    assert_true(num_of(x, net, "scaled", "s", "x") == 5.0);
    /* and back, live */
    assert_int_equal(dmm_net_modulate(net, "add", mod, strlen(mod), &err), 0);
    step_ok(net);
    assert_true(num_of(x, net, "scaled", "s", "x") == 15.0);
    dmm_net_free(net);
}

/* ---- law 1: identity fields change nothing, bit for bit ------------------ */

/* A ring of three tanh neurons with self-loops and a relu reading them,
 * all embedded on a 3 × 2 lattice; Self adds a small delta each cycle so W
 * changes too. */
static const char *ring_links =
    ", [\"tanh/a/x\", \"tanh/c/x\", 1.3], [\"tanh/a/x\", \"tanh/a/x\", 0.4]"
    ", [\"tanh/b/x\", \"tanh/a/x\", -0.9], [\"tanh/b/x\", \"identity/c/one\", "
    "0.3]"
    ", [\"tanh/c/x\", \"tanh/b/x\", 1.1], [\"tanh/c/x\", \"tanh/c/x\", -0.2]"
    ", [\"relu/r/x\", \"tanh/a/x\", 0.7], [\"relu/r/y\", \"tanh/b/x\", "
    "0.6]" CONST_ROW;
static const char *ring_out = CONST_OUT "}, \"tanh\": {\"a\": {\"x\": 0.5}";
static const char *ring_pos =
    "\"positions\": {\"tanh/a\": [0, 0], \"tanh/b\": [1.5, 0.25], "
    "\"tanh/c\": [2, 1], \"relu/r\": [0.3, 0.9], \"identity/c\": [1]}";

static vv trace_of(fx *x, const char *field, const char *mods, bool watch,
                   int steps)
{
    char rest[4096];
    snprintf(rest, sizeof rest, ", %s%s", ring_pos, mods);
    dmm_net *net = load(x, "", ring_links, field, ring_out, rest);
    vv acc = VV_ZERO;
    for (int t = 0; t < steps; t++) {
        step_ok(net);
        if (watch || t + 1 == steps) {
            vv_label l;
            char lab[16];
            snprintf(lab, sizeof lab, "t%d", t);
            l = tu_label(x->vc, lab);
            /* The field neuron's own output differs between runs: left
             * out, with its row in W. */
            vv_label f[2] = {tu_label(x->vc, "identity"), tu_label(x->vc, "f")};
            vv_label wf[5] = {tu_label(x->vc, "accum"), tu_label(x->vc, "self"),
                              tu_label(x->vc, "single"), f[0], f[1]};
            vv y0, y, next;
            assert_int_equal(
                vv_set(x->vc, dmm_net_outputs(net), f, 2, VV_ZERO, &y0), 0);
            assert_int_equal(vv_set(x->vc, y0, wf, 5, VV_ZERO, &y), 0);
            vv_free(x->vc, y0);
            assert_int_equal(vv_from_pairs(x->vc, 0, 1, &l, (vv[]){y}, &next),
                             0);
            vv sum;
            assert_int_equal(vv_add(x->vc, acc, next, &sum), 0);
            vv_free(x->vc, acc);
            vv_free(x->vc, next);
            acc = sum;
        }
    }
    dmm_net_free(net);
    return acc;
}

static char *written(fx *x, vv v)
{
    vv_buf b = {0};
    assert_int_equal(vv_write(x->vc, v, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

static void test_law1_identity(void **state)
{
    fx *x = *state;
    static const char *const mods[] = {
        /* multiply by a lattice of ones, every target */
        ", \"modulations\": ["
        "{\"name\": \"i\", \"field\": \"identity/f/single\", \"target\": "
        "\"input\", \"neurons\": \"embedded\", \"mode\": \"multiply\"},"
        "{\"name\": \"o\", \"field\": \"identity/f/single\", \"target\": "
        "\"output\", \"neurons\": \"embedded\", \"mode\": \"multiply\"},"
        "{\"name\": \"w\", \"field\": \"identity/f/single\", \"target\": "
        "\"weight\", \"neurons\": \"embedded\", \"at\": \"product\", "
        "\"mode\": \"multiply\"},"
        "{\"name\": \"ws\", \"field\": \"identity/f/single\", \"target\": "
        "\"weight\", \"neurons\": [\"tanh/a\", \"relu/r\"], \"at\": "
        "\"source\", \"mode\": \"multiply\"}]",
        /* a constant field by name */
        ", \"modulations\": [{\"name\": \"n\", \"field\": "
        "\"identity/f/single\", \"target\": \"input\", \"by\": \"name\", "
        "\"neurons\": [\"tanh/b\"], \"mode\": \"multiply\"}]",
    };
    const char *ones = "{\"0\": {\"0\": 1, \"1\": 1, \"2\": 1, \"3\": 1}, "
                       "\"1\": {\"0\": 1, \"1\": 1, \"2\": 1, \"3\": 1}, "
                       "\"2\": {\"0\": 1, \"1\": 1, \"2\": 1, \"3\": 1}}";
    for (int watch = 0; watch < 2; watch++) {
        vv base = trace_of(x, ones, "", watch, 12);
        char *bs = written(x, base);
        /* the plain run changes: the test could fail */
        assert_non_null(strstr(bs, "\"t11\""));
        vv m1 = trace_of(x, ones, mods[0], watch, 12);
        char *s1 = written(x, m1);
        if (strcmp(s1, bs))
            fail_msg("run s1 (watch %d) differs: %.300s", watch, s1 + 480);
        vv m1c = trace_of(x, "1", mods[0], watch, 12);
        char *s1c = written(x, m1c);
        if (strcmp(s1c, bs))
            fail_msg("run s1c (watch %d) differs: %.300s", watch, s1c + 480);
        /* add 0 everywhere: the zero field */
        char *add0 = replace_all(mods[0], "multiply", "add");
        vv m0 = trace_of(x, "0", add0, watch, 12);
        free(add0);
        char *s0 = written(x, m0);
        if (strcmp(s0, bs))
            fail_msg("run s0 (watch %d) differs: %.300s", watch, s0 + 480);
        vv mn = trace_of(x, "{\"tanh\": {\"b\": 1}}", mods[1], watch, 12);
        char *sn = written(x, mn);
        if (strcmp(sn, bs))
            fail_msg("run sn (watch %d) differs: %.300s", watch, sn + 480);
        /* and a field that is not the identity does change it */
        vv m2 = trace_of(x, "1.01", mods[0], watch, 12);
        char *s2 = written(x, m2);
        assert_string_not_equal(s2, bs);
        free(bs), free(s1), free(s1c), free(s0), free(sn), free(s2);
        vv_free(x->vc, base), vv_free(x->vc, m1), vv_free(x->vc, m1c);
        vv_free(x->vc, m0), vv_free(x->vc, mn), vv_free(x->vc, m2);
    }
}

/* ---- law 3: the documented order ----------------------------------------- */

static void test_law3_order(void **state)
{
    fx *x = *state;
    const char *add1 = "{\"name\": \"add\", \"field\": \"identity/c/one\", "
                       "\"target\": \"input\", \"neurons\": "
                       "[\"identity/a\"], \"mode\": \"add\"}";
    const char *mul2 = "{\"name\": \"mul\", \"field\": \"identity/f/single\", "
                       "\"target\": \"input\", \"neurons\": "
                       "[\"identity/a\"], \"mode\": \"multiply\"}";
    for (int order = 0; order < 2; order++) {
        char rest[1024];
        snprintf(rest, sizeof rest, ", \"modulations\": [%s, %s]",
                 order ? mul2 : add1, order ? add1 : mul2);
        dmm_net *net =
            load(x, "", CONST_ROW ", [\"identity/a/x\", \"identity/c/one\", 1]",
                 "2", CONST_OUT, rest);
        step_ok(net);
        /* (1 + 1)·2 = 4, against 1·2 + 1 = 3 */
        assert_true(num_of(x, net, "identity", "a", "x") ==
                    (order ? 3.0 : 4.0));
        dmm_net_free(net);
    }
    /* Parameter: the file's k = 2, then its input stream k = 3 overrides it,
     * then the modulations in order (add 1, multiply by 2): (3 + 1)·2 = 8
     * with x = 1. Without the stream: (2 + 1)·2 = 6. */
    for (int stream = 0; stream < 2; stream++) {
        const char *rest =
            ", \"params\": {\"gained\": {\"g\": {\"k\": 2}}}, "
            "\"modulations\": [{\"name\": \"p1\", \"field\": "
            "\"identity/c/one\", \"target\": \"param\", \"param\": \"k\", "
            "\"neurons\": [\"gained/g\"], \"mode\": \"add\"}, {\"name\": "
            "\"p2\", \"field\": \"identity/f/single\", \"target\": "
            "\"param\", \"param\": \"k\", \"neurons\": [\"gained/g\"], "
            "\"mode\": \"multiply\"}]";
        dmm_net *net =
            load(x, "",
                 stream ? CONST_ROW ", [\"gained/g/x\", \"identity/c/one\", 1]"
                                    ", [\"gained/g/k\", \"identity/c/one\", 3]"
                        : CONST_ROW ", [\"gained/g/x\", \"identity/c/one\", 1]",
                 "2", CONST_OUT, rest);
        step_ok(net);
        assert_true(num_of(x, net, "gained", "g", "y") == (stream ? 8.0 : 6.0));
        dmm_net_free(net);
    }
}

/* ---- law 4: a field that stops being produced ---------------------------- */

static void test_law4_edit(void **state)
{
    fx *x = *state;
    const char *rest =
        ", \"modulations\": [{\"name\": \"gate\", \"field\": "
        "\"identity/f/single\", \"target\": \"input\", \"neurons\": "
        "[\"identity/a\"], \"mode\": \"multiply\"}]";
    dmm_net *net =
        load(x, "", CONST_ROW ", [\"identity/a/x\", \"identity/c/one\", 1]",
             "2", CONST_OUT, rest);
    vv w0 = vv_ref(dmm_net_matrix(net));
    vv delta =
        tu_vv(x->vc, "{\"identity\": {\"f\": {\"single\": {\"identity\": "
                     "{\"f\": {\"single\": -1}}}}}}");
    dmm_error err;
    assert_int_equal(dmm_net_edit(net, delta, &err), DMM_E_INVAL);
    assert_non_null(strstr(err.text, "\"gate\""));
    assert_non_null(strstr(err.text, "not produced"));
    assert_true(vv_equal(dmm_net_matrix(net), w0));
    vv_free(x->vc, delta);
    /* Removing the target's row is refused too (it has no position). */
    delta = tu_vv(x->vc, "{\"identity\": {\"a\": {\"x\": {\"identity\": "
                         "{\"c\": {\"one\": -1}}}}}}");
    assert_int_equal(dmm_net_edit(net, delta, &err), DMM_E_INVAL);
    assert_non_null(strstr(err.text, "neither active nor embedded"));
    vv_free(x->vc, delta);
    /* ... but allowed once it is embedded. */
    double xy[1] = {3};
    assert_int_equal(dmm_net_position(net, "identity/a", xy, 1, &err), 0);
    delta = tu_vv(x->vc, "{\"identity\": {\"a\": {\"x\": {\"identity\": "
                         "{\"c\": {\"one\": -1}}}}}}");
    assert_int_equal(dmm_net_edit(net, delta, &err), 0);
    vv_free(x->vc, delta);
    step_ok(net);
    vv_free(x->vc, w0);
    dmm_net_free(net);
}

static void test_law4_cycle(void **state)
{
    fx *x = *state;
    /* Self's delta input reads identity/d, whose output (given at t = 0,
     * inactive after) removes the field's row in cycle 1. */
    const char *rest =
        ", \"modulations\": [{\"name\": \"gate\", \"field\": "
        "\"identity/f/single\", \"target\": \"input\", \"neurons\": "
        "[\"identity/a\"], \"mode\": \"multiply\"}]";
    dmm_net *net = load(
        x, "",
        CONST_ROW ", [\"identity/a/x\", \"identity/c/one\", 1]"
                  ", [\"accum/self/delta\", \"identity/d/single\", 1]",
        "2",
        CONST_OUT ", \"d\": {\"single\": {\"identity\": {\"f\": {\"single\": "
                  "{\"identity\": {\"f\": {\"single\": -1}}}}}}}",
        rest);
    vv w0 = vv_ref(dmm_net_matrix(net));
    dmm_error err;
    assert_int_equal(dmm_net_step(net, &err), DMM_E_INVAL);
    assert_non_null(strstr(err.text, "cycle 1"));
    assert_non_null(strstr(err.text, "\"gate\""));
    assert_int_equal(dmm_net_step_count(net), 0);
    assert_true(vv_equal(dmm_net_matrix(net), w0));
    /* Removing the modulation lets the cycle run. */
    assert_int_equal(
        dmm_net_modulate(net, "remove", "{\"name\": \"gate\"}", 16, &err), 0);
    step_ok(net);
    vv_free(x->vc, w0);
    dmm_net_free(net);
}

/* ---- states and live changes --------------------------------------------- */

static void test_state_round_trip(void **state)
{
    fx *x = *state;
    char rest[4096];
    snprintf(rest, sizeof rest,
             ", %s, \"modulations\": [{\"name\": \"g\", \"field\": "
             "\"identity/f/single\", \"target\": \"input\", \"neurons\": "
             "\"embedded\", \"mode\": \"multiply\"}, {\"name\": \"w\", "
             "\"field\": \"identity/f/single\", \"target\": \"weight\", "
             "\"neurons\": [\"tanh/a\"], \"at\": \"source\", \"mode\": "
             "\"add\"}]",
             ring_pos);
    dmm_net *a = load(x, "", ring_links, "{\"0\": {\"0\": 0.9, \"1\": 1.2}}",
                      ring_out, rest);
    step_ok(a);
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(a, &b), 0);
    assert_non_null(strstr(b.data, "\"modulations\""));
    assert_non_null(strstr(b.data, "\"tanh/b\": [1.5, 0.25]"));
    dmm_net *c;
    dmm_error err;
    assert_int_equal(
        dmm_net_restore_text(x->vc, x->reg, b.data, b.len, "s", &c, &err), 0);
    for (int t = 0; t < 5; t++) {
        step_ok(a);
        step_ok(c);
    }
    char *ya = written(x, dmm_net_outputs(a)),
         *yc = written(x, dmm_net_outputs(c));
    assert_string_equal(ya, yc);
    vv_buf fa = {0}, fc = {0};
    assert_int_equal(dmm_net_fields_save(a, &fa), 0);
    assert_int_equal(dmm_net_fields_save(c, &fc), 0);
    assert_int_equal(fa.len, fc.len);
    assert_memory_equal(fa.data, fc.data, fa.len);
    free(ya), free(yc), free(b.data), free(fa.data), free(fc.data);
    dmm_net_free(a);
    dmm_net_free(c);
}

static void test_live_refused(void **state)
{
    fx *x = *state;
    dmm_net *net =
        load(x, "", CONST_ROW ", [\"scaled/s/x\", \"identity/c/one\", 1]", "2",
             CONST_OUT, "");
    vv_buf before = {0};
    assert_int_equal(dmm_net_fields_save(net, &before), 0);
    static const struct {
        const char *action, *json, *says;
    } cases[] = {
        {"add",
         "{\"name\": \"m\", \"field\": \"identity/f/single\", "
         "\"target\": \"input\", \"neurons\": [\"tanh/q\"], \"mode\": "
         "\"multiply\"}",
         "neither active nor embedded"},
        {"add",
         "{\"name\": \"m\", \"field\": \"tanh/f/single\", \"target\": "
         "\"input\", \"neurons\": [\"scaled/s\"], \"mode\": "
         "\"multiply\"}",
         "field tanh/f/single is not produced: tanh/f has no row"},
        {"add",
         "{\"name\": \"m\", \"field\": \"identity/f/single\", "
         "\"target\": \"param\", \"param\": \"gian\", \"neurons\": "
         "[\"scaled/s\"], \"mode\": \"replace\"}",
         "scaled has no parameter \"gian\" (it has: k)"},
        {"add",
         "{\"name\": \"m\", \"field\": \"identity/f/single\", "
         "\"target\": \"input\", \"neurons\": [\"scaled/s\"], "
         "\"mode\": \"divide\"}",
         "mode must be"},
        {"add",
         "{\"name\": \"m\", \"field\": \"identity/f/single\", "
         "\"target\": \"input\", \"neurons\": [\"accum/self\"], "
         "\"mode\": \"add\"}",
         "Self"},
        {"change",
         "{\"name\": \"none\", \"field\": \"identity/f/single\", "
         "\"target\": \"input\", \"neurons\": [\"scaled/s\"], "
         "\"mode\": \"add\"}",
         "no modulation named"},
        {"remove", "\"none\"", "no modulation named"},
        {"rename", "\"none\"", "action must be"},
        {"add", "{\"name\": \"m\"", ""},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        dmm_error err;
        int rc = dmm_net_modulate(net, cases[k].action, cases[k].json,
                                  strlen(cases[k].json), &err);
        assert_int_not_equal(rc, 0);
        if (!strstr(err.text, cases[k].says))
            fail_msg("case %zu: %s", k, err.text);
        vv_buf now = {0};
        assert_int_equal(dmm_net_fields_save(net, &now), 0);
        assert_int_equal(now.len, before.len);
        free(now.data);
    }
    dmm_error err;
    double bad[2] = {NAN, 0};
    assert_int_equal(dmm_net_position(net, "tanh/a", bad, 2, &err),
                     DMM_E_INVAL);
    assert_int_equal(dmm_net_position(net, "nosuch/a", bad + 1, 1, &err),
                     DMM_E_INVAL);
    assert_non_null(strstr(err.text, "unknown neuron type"));
    /* change keeps the place in the order */
    const char *m1 = "{\"name\": \"a\", \"field\": \"identity/c/one\", "
                     "\"target\": \"input\", \"neurons\": [\"scaled/s\"], "
                     "\"mode\": \"add\"}";
    const char *m2 = "{\"name\": \"b\", \"field\": \"identity/f/single\", "
                     "\"target\": \"input\", \"neurons\": [\"scaled/s\"], "
                     "\"mode\": \"multiply\"}";
    const char *m1b = "{\"name\": \"a\", \"field\": \"identity/f/single\", "
                      "\"target\": \"input\", \"neurons\": [\"scaled/s\"], "
                      "\"mode\": \"add\"}";
    assert_int_equal(dmm_net_modulate(net, "add", m1, strlen(m1), &err), 0);
    assert_int_equal(dmm_net_modulate(net, "add", m2, strlen(m2), &err), 0);
    step_ok(net);
    assert_true(num_of(x, net, "scaled", "s", "x") == 4.0); /* (1+1)·2 */
    assert_int_equal(dmm_net_modulate(net, "change", m1b, strlen(m1b), &err),
                     0);
    step_ok(net);
    assert_true(num_of(x, net, "scaled", "s", "x") == 6.0); /* (1+2)·2 */
    /* restore brings back no modulations at all */
    assert_int_equal(dmm_net_fields_restore(net, before.data, before.len, &err),
                     0);
    step_ok(net);
    assert_true(num_of(x, net, "scaled", "s", "x") == 1.0);
    free(before.data);
    dmm_net_free(net);
}

/* A field of rank 3 fails the cycle with the modulation's name. */
static void test_not_a_field(void **state)
{
    fx *x = *state;
    const char *rest =
        ", \"positions\": {\"identity/a\": [0]}, \"modulations\": [{\"name\": "
        "\"g\", \"field\": \"identity/f/single\", \"target\": \"input\", "
        "\"neurons\": \"embedded\", \"mode\": \"multiply\"}]";
    dmm_net *net =
        load(x, "", CONST_ROW ", [\"identity/a/x\", \"identity/c/one\", 1]",
             "{\"0\": {\"0\": {\"0\": 1}}}", CONST_OUT, rest);
    dmm_error err;
    assert_int_equal(dmm_net_step(net, &err), DMM_E_INVAL);
    assert_non_null(strstr(err.text, "not a number, vector or matrix"));
    assert_int_equal(dmm_net_step_count(net), 0);
    dmm_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_constant_gate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bilinear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_lattice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weights_by_product, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replace_param, setup, teardown),
        cmocka_unit_test_setup_teardown(test_law1_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_law3_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_law4_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_law4_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_field, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
