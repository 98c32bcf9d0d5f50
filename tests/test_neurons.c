// SPDX-License-Identifier: MIT
/*
 * The neuron registry and every built-in type, fired directly through its
 * descriptor's fn with hand-built dmm_fire records (no engine). Expected values
 * are worked out by hand or with formulas other than the implementation's;
 * the neuron-level operations are also run on the reference vectors.
 */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_neuron.h"

static const char *const builtin_names[] = {
    "accum",    "identity", "max-norm", "less-or-equal", "mult-mask",
    "lin-comb", "dot",      "input",    "output",        "cons",
    "relu",     "tanh",     "sigmoid",  "softmax",       "gate",
};
/* Types registered after the spec §3 ones (learning neurons, other spec
 * files), tested in their own programs; here they only count. */
static const char *const later_names[] = {
    "mean-field",
    "threshold-attention",
    "metric-attention",
    "softmax-rows",
    "softmax-cols",
    "matmul",
    "delay",
    "interference",
    "learner",
    "grid",
    "sin",
    "cos",
    "mul",
    "affine",
    "power",
    "clamp",
    "transpose",
    "conv2d",
    "blur",
    "noise",
    "image",
};
#define N_SPEC3    (sizeof builtin_names / sizeof builtin_names[0])
#define N_BUILTINS (N_SPEC3 + sizeof later_names / sizeof later_names[0])

typedef struct fx {
    vv_ctx *vc;
    dmm_registry *reg;
    tu_alloc alloc;
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    vv_options opt = {.alloc = tu_alloc_fn, .alloc_ud = &x->alloc};
    x->vc = vv_ctx_new(&opt);
    assert_non_null(x->vc);
    x->reg = dmm_registry_new(x->vc);
    assert_non_null(x->reg);
    assert_int_equal(dmm_registry_add_builtins(x->reg), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    dmm_registry_free(x->reg);
    vv_ctx_free(x->vc);
    assert_int_equal(x->alloc.bytes, 0); /* every value was freed */
    free(x);
    return 0;
}

static const dmm_type_info *type_of(fx *x, const char *name)
{
    const dmm_type_info *t = dmm_registry_find(x->reg, tu_label(x->vc, name));
    assert_non_null(t);
    return t;
}

/* Fire type on input (borrowed) with feed; returns fn's code. On success
 * *out gets the new output; on error checks that nothing was set. */
static int fire_v(fx *x, const char *type, vv input, vv feed, vv *out,
                  dmm_error *err)
{
    const dmm_type_info *t = type_of(x, type);
    uint64_t rng[4] = {1, 2, 3, 4};
    dmm_fire f = {
        .vc = x->vc,
        .type = t,
        .name = tu_label(x->vc, "n"),
        .input = input,
        .feed = feed,
        .step = 1,
        .rng = rng,
        .err = err,
    };
    int rc = t->desc->fn(&f);
    assert_true(vv_is_zero(f.new_state)); /* no built-in keeps state */
    if (rc) {
        assert_true(vv_is_zero(f.output));
        *out = VV_ZERO;
    } else {
        tu_assert_canonical(x->vc, f.output);
        *out = f.output;
    }
    return rc;
}

/* new: the output of type fired on the JSON input; fails the test on error. */
static vv fire_json(fx *x, const char *type, const char *input)
{
    vv in = tu_vv(x->vc, input), out;
    dmm_error err;
    dmm_error_clear(&err);
    int rc = fire_v(x, type, in, VV_ZERO, &out, &err);
    vv_free(x->vc, in);
    if (rc)
        fail_msg("%s on %s: %s (%s)", type, input, dmm_errname(rc), err.text);
    return out;
}

/* type on input gives exactly want (JSON). */
static void expect_fire(fx *x, const char *type, const char *input,
                        const char *want)
{
    vv got = fire_json(x, type, input), w = tu_vv(x->vc, want);
    if (!vv_equal(got, w)) {
        char *g = vv_to_string(x->vc, got);
        fail_msg("%s on %s: got %s, want %s", type, input, g, want);
    }
    vv_free(x->vc, got);
    vv_free(x->vc, w);
}

/* type on input fails with code; err names the neuron. */
static void expect_fail(fx *x, const char *type, const char *input, int code)
{
    vv in = tu_vv(x->vc, input), out;
    dmm_error err;
    dmm_error_clear(&err);
    assert_int_equal(fire_v(x, type, in, VV_ZERO, &out, &err), code);
    assert_int_equal(err.code, code);
    assert_non_null(strstr(err.text, type));
    vv_free(x->vc, in);
}

/* ---- registry ------------------------------------------------------------ */

static int fire_nothing(dmm_fire *f)
{
    return 0;
}

static void test_registry_find(void **state)
{
    fx *x = *state;
    assert_int_equal(dmm_registry_count(x->reg), N_BUILTINS);
    assert_ptr_equal(dmm_registry_vctx(x->reg), x->vc);
    for (size_t i = 0; i < N_SPEC3; i++) {
        vv_label l = tu_label(x->vc, builtin_names[i]);
        const dmm_type_info *t = dmm_registry_find(x->reg, l);
        assert_non_null(t);
        assert_int_equal(t->name, l);
        assert_string_equal(t->desc->name, builtin_names[i]);
        assert_non_null(t->desc->summary);
        assert_non_null(t->desc->fn);
        assert_false(t->desc->stateful);
        /* every variadic output list is documented */
        if (!t->desc->outputs)
            assert_non_null(t->desc->outputs_doc);
    }
    assert_null(dmm_registry_find(x->reg, tu_label(x->vc, "no-such-type")));
    assert_null(dmm_registry_find(x->reg, tu_label(x->vc, "single")));
    assert_string_equal(dmm_registry_at(x->reg, 0)->desc->name, "accum");
    assert_null(dmm_registry_at(x->reg, N_BUILTINS));

    const dmm_type_info *acc = type_of(x, "accum");
    assert_int_equal(acc->n_inputs, 2);
    assert_int_equal(acc->in[0], tu_label(x->vc, "accum"));
    assert_int_equal(acc->in[1], tu_label(x->vc, "delta"));
    assert_int_equal(acc->n_outputs, 1);
    assert_int_equal(acc->out[0], tu_label(x->vc, "single"));
    assert_int_equal(acc->n_params, 0);
    const dmm_type_info *le = type_of(x, "less-or-equal");
    assert_int_equal(le->out[1], tu_label(x->vc, "false-channel"));
    const dmm_type_info *id = type_of(x, "identity");
    assert_null(id->in);
    assert_null(id->out);
    assert_int_equal(id->n_inputs, 0);
}

static void test_registry_accepts_input(void **state)
{
    fx *x = *state;
    const dmm_type_info *acc = type_of(x, "accum");
    assert_true(dmm_type_accepts_input(acc, tu_label(x->vc, "accum")));
    assert_true(dmm_type_accepts_input(acc, tu_label(x->vc, "delta")));
    assert_false(dmm_type_accepts_input(acc, tu_label(x->vc, "single")));
    assert_false(dmm_type_accepts_input(acc, tu_label(x->vc, "left")));
    const dmm_type_info *cons = type_of(x, "cons");
    assert_true(dmm_type_accepts_input(cons, tu_label(x->vc, "signal")));
    assert_false(dmm_type_accepts_input(cons, tu_label(x->vc, "this")));
    const char *variadic[] = {"identity", "max-norm", "input",
                              "output",   "relu",     "softmax"};
    for (size_t i = 0; i < sizeof variadic / sizeof variadic[0]; i++) {
        const dmm_type_info *t = type_of(x, variadic[i]);
        assert_true(dmm_type_accepts_input(t, tu_label(x->vc, "anything")));
        assert_true(dmm_type_accepts_input(t, tu_label(x->vc, "delta")));
    }
}

static const dmm_param_spec two_params[] = {
    {"k", 2.5, "a gain | with a bar"},
    {"bias", 0.0, "added"},
    {NULL, 0, NULL},
};

static void test_registry_invalid(void **state)
{
    fx *x = *state;
    /* a second registration of a name already there */
    assert_int_equal(dmm_registry_add(x->reg, type_of(x, "dot")->desc),
                     DMM_E_INVAL);
    static const dmm_neuron_type same_name = {
        .name = "accum", .summary = "other", .fn = fire_nothing};
    assert_int_equal(dmm_registry_add(x->reg, &same_name), DMM_E_INVAL);
    static const dmm_neuron_type no_fn = {.name = "no-fn", .summary = "x"};
    assert_int_equal(dmm_registry_add(x->reg, &no_fn), DMM_E_INVAL);
    static const dmm_neuron_type no_name = {.summary = "x", .fn = fire_nothing};
    assert_int_equal(dmm_registry_add(x->reg, &no_name), DMM_E_INVAL);
    assert_int_equal(dmm_registry_add(x->reg, NULL), DMM_E_INVAL);
    static const char *const twice[] = {"a", "b", "a", NULL};
    static const dmm_neuron_type dup_inputs = {
        .name = "dup-inputs", .inputs = twice, .fn = fire_nothing};
    assert_int_equal(dmm_registry_add(x->reg, &dup_inputs), DMM_E_INVAL);
    /* unread and terms name declared inputs only */
    static const char *const ab[] = {"a", "b", NULL}, *const z[] = {"z", NULL};
    static const dmm_neuron_type bad_unread = {
        .name = "bad-unread", .inputs = ab, .fn = fire_nothing, .unread = z};
    static const dmm_neuron_type bad_terms = {
        .name = "bad-terms", .inputs = ab, .fn = fire_nothing, .terms = z};
    static const dmm_neuron_type variadic_terms = {
        .name = "variadic-terms", .fn = fire_nothing, .terms = ab};
    assert_int_equal(dmm_registry_add(x->reg, &bad_unread), DMM_E_INVAL);
    assert_int_equal(dmm_registry_add(x->reg, &bad_terms), DMM_E_INVAL);
    assert_int_equal(dmm_registry_add(x->reg, &variadic_terms), DMM_E_INVAL);
    assert_null(dmm_registry_find(x->reg, tu_label(x->vc, "dup-inputs")));
    assert_int_equal(dmm_registry_count(x->reg), N_BUILTINS);

    /* a valid one goes in after all the rejected ones */
    static const char *const none[] = {NULL};
    static const dmm_neuron_type ok = {.name = "no-inputs",
                                       .summary = "fixed, no inputs",
                                       .inputs = none,
                                       .outputs = none,
                                       .params = two_params,
                                       .fn = fire_nothing};
    assert_int_equal(dmm_registry_add(x->reg, &ok), 0);
    const dmm_type_info *t = type_of(x, "no-inputs");
    assert_non_null(t->in); /* fixed arity with zero inputs, not variadic */
    assert_int_equal(t->n_inputs, 0);
    assert_false(dmm_type_accepts_input(t, tu_label(x->vc, "a")));
    assert_int_equal(t->n_params, 2);
    assert_int_equal(t->param[1], tu_label(x->vc, "bias"));
    assert_ptr_equal(dmm_registry_at(x->reg, N_BUILTINS), t);
}

static void test_registry_markdown(void **state)
{
    fx *x = *state;
    static const dmm_neuron_type with_params = {.name = "scaled",
                                                .summary = "k·x + bias",
                                                .inputs = NULL,
                                                .outputs_doc = "same names",
                                                .params = two_params,
                                                .stateful = true,
                                                .fn = fire_nothing};
    assert_int_equal(dmm_registry_add(x->reg, &with_params), 0);
    vv_buf b = {0};
    assert_int_equal(dmm_registry_markdown(x->reg, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0); /* NUL-terminate */
    const char *md = b.data;
    assert_non_null(
        strstr(md, "| type | inputs | outputs | state | summary |"));
    char needle[128];
    for (size_t i = 0; i < N_SPEC3; i++) {
        snprintf(needle, sizeof needle, "\n| `%s` | ", builtin_names[i]);
        assert_non_null(strstr(md, needle));
        snprintf(needle, sizeof needle, "\n## `%s`\n", builtin_names[i]);
        assert_non_null(strstr(md, needle));
    }
    /* the table row before the sections, in registration order */
    assert_true(strstr(md, "| `accum` |") < strstr(md, "| `identity` |"));
    assert_true(strstr(md, "| `softmax` |") < strstr(md, "\n## `accum`"));
    assert_non_null(
        strstr(md, "| `accum` | `accum`, `delta` | `single` | no | "));
    assert_non_null(strstr(md, "| `scaled` | any | same names | yes | "));
    /* parameters: name, default, summary; '|' in text escaped */
    assert_non_null(strstr(md, "| `k` | 2.5 | a gain \\| with a bar |"));
    assert_non_null(strstr(md, "| `bias` | 0 | added |"));
    free(b.data);
}

static void test_fire_param(void **state)
{
    fx *x = *state;
    static const dmm_neuron_type t = {
        .name = "p", .params = two_params, .fn = fire_nothing};
    assert_int_equal(dmm_registry_add(x->reg, &t), 0);
    dmm_fire f = {.vc = x->vc, .type = type_of(x, "p")};
    assert_true(dmm_fire_param(&f, 0) == 2.5); /* no params at all */
    assert_true(dmm_fire_param(&f, 1) == 0.0);
    f.params = tu_vv(x->vc, "{\"k\": 4, \"other\": 9}");
    assert_true(dmm_fire_param(&f, 0) == 4.0);
    assert_true(dmm_fire_param(&f, 1) == 0.0);
    vv_free(x->vc, f.params);
    f.params = tu_vv(x->vc, "{\"bias\": {\":number\": -3, \"x\": 1}}");
    assert_true(dmm_fire_param(&f, 0) == 2.5);
    assert_true(dmm_fire_param(&f, 1) == -3.0); /* the scalar part */
    vv_free(x->vc, f.params);
}

/* ---- built-in types ---------------------------------------------------- */

static void test_accum(void **state)
{
    fx *x = *state;
    expect_fire(x, "accum",
                "{\"accum\": {\"a\": 1, \"b\": 2}, "
                "\"delta\": {\"b\": -2, \"c\": {\"d\": 0.5}}}",
                "{\"single\": {\"a\": 1, \"c\": {\"d\": 0.5}}}");
    expect_fire(x, "accum", "{\"accum\": 3}", "{\"single\": 3}");
    expect_fire(x, "accum", "{\"delta\": {\"x\": 1}}",
                "{\"single\": {\"x\": 1}}");
    /* cancelling to zero leaves no "single" at all */
    expect_fire(x, "accum", "{\"accum\": {\"a\": 1}, \"delta\": {\"a\": -1}}",
                "{}");
    expect_fire(x, "accum", "{}", "{}");
    expect_fail(x, "accum", "{\"accum\": 1e308, \"delta\": 1e308}",
                DMM_E_NONFINITE);
}

static void test_identity_output(void **state)
{
    fx *x = *state;
    const char *in = "{\"a\": {\"b\": 1, \":number\": 2}, \"c\": -1}";
    expect_fire(x, "identity", in, in);
    expect_fire(x, "output", in, in);
    expect_fire(x, "identity", "{}", "{}");
    /* a reference to the input, not a copy */
    vv v = tu_vv(x->vc, in), out;
    assert_int_equal(fire_v(x, "identity", v, VV_ZERO, &out, NULL), 0);
    assert_ptr_equal(out.map, v.map);
    vv_free(x->vc, out);
    vv_free(x->vc, v);
}

static void test_max_norm(void **state)
{
    fx *x = *state;
    expect_fire(x, "max-norm", "{\"a\": {\":number\": 3, \"b\": -7}, \"c\": 2}",
                "7");
    expect_fire(x, "max-norm", "{\"in\": {\"x\": {\"y\": 0.25}}}", "0.25");
    expect_fire(x, "max-norm", "{}", "{}");
}

static void test_less_or_equal(void **state)
{
    fx *x = *state;
    const char *t = "{\"true-channel\": 1}", *f = "{\"false-channel\": 1}";
    expect_fire(x, "less-or-equal",
                "{\"left\": {\"a\": 1, \"b\": 2}, \"right\": {\"a\": 1, "
                "\"b\": 3}}",
                t);
    /* b absent on the right: right - left has -2 at b */
    expect_fire(x, "less-or-equal",
                "{\"left\": {\"a\": 1, \"b\": 2}, \"right\": {\"a\": 1}}", f);
    expect_fire(x, "less-or-equal", "{}", t);
    expect_fire(x, "less-or-equal", "{\"left\": {\"a\": -1}}", t);
    expect_fire(x, "less-or-equal", "{\"right\": {\"x\": {\"y\": -0.5}}}", f);
    /* deeper than the other side: compared with 0 */
    expect_fire(x, "less-or-equal",
                "{\"left\": {\"a\": 1}, \"right\": {\"a\": {\":number\": 1, "
                "\"z\": -1e-300}}}",
                f);
    /* right - left would overflow to infinity; the answer is still exact */
    expect_fire(x, "less-or-equal", "{\"left\": -1e308, \"right\": 1e308}", t);
    expect_fire(x, "less-or-equal", "{\"left\": 1e308, \"right\": -1e308}", f);
}

static void test_mult_mask_lin_comb_dot(void **state)
{
    fx *x = *state;
    expect_fire(x, "mult-mask",
                "{\"mask\": {\"a\": 2, \"b\": {\"c\": 3}}, "
                "\"main\": {\"a\": {\"x\": 1, \"y\": 2}, \"b\": {\"c\": 5, "
                "\"d\": 1}, \"e\": 9}}",
                "{\"single\": {\"a\": {\"x\": 2, \"y\": 4}, \"b\": {\"c\": "
                "15}}}");
    expect_fire(x, "mult-mask", "{\"main\": {\"a\": 1}}", "{}");
    /* the spec's example, and lincomb(M, M), a dot product */
    const char *m = "{\"a\": 1, \"b\": 2, \"c\": {\"a\": 1, \"b\": 2, \"c\": "
                    "{\"x\": 1, \"y\": 3}}}";
    char in[512];
    snprintf(in, sizeof in, "{\"mask\": {\"c\": 7}, \"main\": %s}", m);
    expect_fire(x, "lin-comb", in,
                "{\"single\": {\"a\": 7, \"b\": 14, \"c\": {\"x\": 7, "
                "\"y\": 21}}}");
    snprintf(in, sizeof in, "{\"mask\": %s, \"main\": %s}", m, m);
    expect_fire(x, "lin-comb", in, "{\"single\": 20}");
    expect_fire(x, "dot",
                "{\"x\": {\"a\": 2, \"b\": {\"c\": 3}}, "
                "\"y\": {\"a\": 5, \"b\": {\"c\": -1}, \"d\": 4}}",
                "{\"dot\": 7}");
    expect_fire(x, "dot", "{\"x\": {\"a\": 2}, \"y\": {\"b\": 2}}", "{}");
    expect_fail(x, "dot", "{\"x\": 1e200, \"y\": 1e200}", DMM_E_NONFINITE);
    expect_fail(x, "mult-mask", "{\"mask\": 1e200, \"main\": {\"a\": 1e200}}",
                DMM_E_NONFINITE);
}

static void test_input(void **state)
{
    fx *x = *state;
    vv in = tu_vv(x->vc, "{\"dummy\": {\"x\": 1}}");
    vv feed = tu_vv(x->vc, "{\"signal\": {\"h\": 1}}"), out;
    assert_int_equal(fire_v(x, "input", in, feed, &out, NULL), 0);
    assert_true(vv_equal(out, feed));
    assert_ptr_equal(out.map, feed.map); /* shared, not copied */
    vv_free(x->vc, out);
    /* nothing queued: zero, whatever the inputs */
    assert_int_equal(fire_v(x, "input", in, VV_ZERO, &out, NULL), 0);
    assert_true(vv_is_zero(out));
    vv_free(x->vc, feed);
    vv_free(x->vc, in);
}

static void test_cons(void **state)
{
    fx *x = *state;
    /* zero signal: the list passes through unchanged */
    expect_fire(x, "cons", "{\"self\": {\"this\": 1}}",
                "{\"self\": {\"this\": 1}}");
    expect_fire(x, "cons", "{}", "{}");
    /* the first element has no rest */
    expect_fire(x, "cons", "{\"signal\": {\"h\": 1}}",
                "{\"self\": {\"this\": {\"h\": 1}}}");
    expect_fire(x, "cons", "{\"signal\": 2, \"self\": {\"this\": 1}}",
                "{\"self\": {\"this\": 2, \"rest\": {\"this\": 1}}}");
    expect_fire(x, "cons",
                "{\"signal\": {\"e\": 1}, \"self\": {\"this\": {\"h\": 1}}}",
                "{\"self\": {\"this\": {\"e\": 1}, \"rest\": {\"this\": "
                "{\"h\": 1}}}}");
}

static void test_gate(void **state)
{
    fx *x = *state;
    expect_fire(x, "gate", "{\"main\": {\"a\": 2, \"b\": -1}, \"gate\": 0.5}",
                "{\"single\": {\"a\": 1, \"b\": -0.5}}");
    /* only the gate's scalar part counts */
    expect_fire(x, "gate",
                "{\"main\": {\"a\": 2}, \"gate\": {\":number\": -1, \"x\": "
                "5}}",
                "{\"single\": {\"a\": -2}}");
    expect_fire(x, "gate", "{\"main\": {\"a\": 2}, \"gate\": {\"x\": 5}}",
                "{}");
    expect_fire(x, "gate", "{\"gate\": 3}", "{}");
    expect_fail(x, "gate", "{\"main\": {\"a\": 1e300}, \"gate\": 1e300}",
                DMM_E_NONFINITE);
}

static void test_relu_tanh(void **state)
{
    fx *x = *state;
    expect_fire(x, "relu",
                "{\"s\": {\":number\": -3, \"a\": -1, \"b\": 2}, \"t\": 0.5, "
                "\"u\": -4}",
                "{\"s\": {\"b\": 2}, \"t\": 0.5}");
    expect_fire(x, "relu", "{}", "{}");

    vv got = fire_json(x, "tanh", "{\"s\": {\"a\": 1, \"b\": -2}}");
    double e2 = exp(2.0), e4 = exp(4.0);
    char want[256];
    snprintf(want, sizeof want, "{\"s\": {\"a\": %.17g, \"b\": %.17g}}",
             (e2 - 1) / (e2 + 1), -(e4 - 1) / (e4 + 1));
    vv w = tu_vv(x->vc, want);
    tu_assert_vv_close(x->vc, got, w, 1e-14);
    vv_free(x->vc, got);
    vv_free(x->vc, w);
}

static void test_sigmoid(void **state)
{
    fx *x = *state;
    /* only stored scalars are mapped: s itself has none and stays without */
    vv got = fire_json(x, "sigmoid", "{\"s\": {\"a\": 2, \"b\": -1}}");
    double e2 = exp(2.0), e = exp(1.0);
    char want[256];
    snprintf(want, sizeof want, "{\"s\": {\"a\": %.17g, \"b\": %.17g}}",
             e2 / (e2 + 1), 1 / (1 + e));
    vv w = tu_vv(x->vc, want);
    tu_assert_vv_close(x->vc, got, w, 1e-14);
    assert_true(vv_child(got, tu_label(x->vc, "s")).num == 0.0);
    vv_free(x->vc, got);
    vv_free(x->vc, w);
    expect_fire(x, "sigmoid", "{}", "{}");
}

static void test_softmax(void **state)
{
    fx *x = *state;
    /* s: children a (1), b (2), c (scalar part 0; its child ignored);
     * t has no children; u a single child; the root scalar of s ignored */
    vv got = fire_json(x, "softmax",
                       "{\"s\": {\":number\": 9, \"a\": 1, \"b\": 2, \"c\": "
                       "{\"x\": 5}}, \"t\": 3, \"u\": {\"only\": -7}}");
    double e = exp(1.0), z = 1 + e + e * e;
    char want[256];
    snprintf(want, sizeof want,
             "{\"s\": {\"a\": %.17g, \"b\": %.17g, \"c\": %.17g}, "
             "\"u\": {\"only\": 1}}",
             e / z, e * e / z, 1 / z);
    vv w = tu_vv(x->vc, want);
    tu_assert_vv_close(x->vc, got, w, 1e-14);
    vv_free(x->vc, got);
    vv_free(x->vc, w);
    /* large scores: exp(1000) overflows without the max subtracted */
    expect_fire(x, "softmax", "{\"s\": {\"a\": 1000, \"b\": 1000}}",
                "{\"s\": {\"a\": 0.5, \"b\": 0.5}}");
    /* exp(-899) underflows to 0 and is dropped */
    expect_fire(x, "softmax", "{\"s\": {\"a\": 1, \"b\": 900}}",
                "{\"s\": {\"b\": 1}}");
    expect_fire(x, "softmax", "{\"t\": 3}", "{}");
    expect_fire(x, "softmax", "{}", "{}");
}

/* ---- the reference vectors through the neurons -------------------------- */

static vv arg(fx *x, json_t *c, size_t k)
{
    vv v;
    dmm_error err;
    dmm_error_clear(&err);
    int rc = vv_from_json(x->vc, json_array_get(json_object_get(c, "args"), k),
                          "", &v, &err);
    if (rc)
        fail_msg("vv_from_json: %s", err.text);
    return v;
}

/* new: {a: x, b: y}; takes x and y. */
static vv pair(fx *x, const char *a, vv va, const char *b, vv vb)
{
    vv_label l[2] = {tu_label(x->vc, a), tu_label(x->vc, b)};
    vv kids[2] = {va, vb}, out;
    assert_int_equal(vv_from_pairs(x->vc, 0, 2, l, kids, &out), 0);
    return out;
}

static void test_vectors(void **state)
{
    fx *x = *state;
    char *path = tu_path("tests/data/vectors/vvalue-ops.json");
    json_error_t jerr;
    json_t *cases = json_load_file(path, 0, &jerr);
    if (!cases)
        fail_msg("%s: %s", path, jerr.text);
    free(path);
    size_t run = 0, i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        const char *op = json_string_value(json_object_get(c, "op"));
        const char *type, *out_name = NULL;
        vv in;
        if (!strcmp(op, "lincomb") || !strcmp(op, "mult-mask")) {
            type = op[0] == 'l' ? "lin-comb" : "mult-mask";
            out_name = "single";
            in = pair(x, "mask", arg(x, c, 0), "main", arg(x, c, 1));
        } else if (!strcmp(op, "dot")) {
            type = "dot";
            out_name = "dot";
            in = pair(x, "x", arg(x, c, 0), "y", arg(x, c, 1));
        } else if (!strcmp(op, "less-or-equal")) {
            type = op;
            in = pair(x, "left", arg(x, c, 0), "right", arg(x, c, 1));
        } else if (!strcmp(op, "max-norm")) {
            type = op;
            in = pair(x, "in", arg(x, c, 0), "other", VV_ZERO);
        } else {
            continue;
        }
        vv want, got;
        dmm_error err;
        dmm_error_clear(&err);
        assert_int_equal(
            vv_from_json(x->vc, json_object_get(c, "result"), "", &want, &err),
            0);
        if (out_name) {
            vv_label l = tu_label(x->vc, out_name);
            vv inner = want;
            assert_int_equal(vv_from_pairs(x->vc, 0, 1, &l, &inner, &want), 0);
        }
        if (fire_v(x, type, in, VV_ZERO, &got, &err))
            fail_msg("case %zu (%s): %s", i, op, err.text);
        if (!vv_close(got, want, 1e-12, 0)) {
            char *g = vv_to_string(x->vc, got), *w = vv_to_string(x->vc, want);
            fail_msg("case %zu (%s): got %s, want %s", i, op, g, w);
        }
        vv_free(x->vc, got);
        vv_free(x->vc, want);
        vv_free(x->vc, in);
        run++;
    }
    json_decref(cases);
    assert_int_equal(run, 24 + 6 + 6 + 10 + 7); /* as counted in the file */
}

/* accum adds a small delta path by path (vv_set), a larger one with vv_add:
 * both give exactly vv_add's sum, zeros dropped, interior scalars kept, and
 * a non-finite sum is an error either way. */
static void test_accum_small_delta(void **state)
{
    fx *x = *state;
    static const char *const cases[][2] = {
        {"{\"a\": {\"b\": {\"c\": 1, \"d\": 2}, \"e\": 3}}",
         "{\"a\": {\"b\": {\"c\": 0.5}}}"},
        {"{\"a\": {\"b\": {\"c\": 1, \"d\": 2}, \"e\": 3}}",
         "{\"a\": {\"b\": {\"c\": -1}}}"}, /* a leaf cancelled */
        {"{\"a\": {\"b\": {\"c\": 1}}}",
         "{\"a\": {\"b\": {\"c\": -1}}}"}, /* everything cancelled */
        {"{\"a\": {\"b\": {\"c\": 1}}}", "{\"x\": {\"y\": 2}, \"a\": 4}"},
        {"{\"a\": {\"b\": 1}}", "{\"a\": {\"b\": {\"c\": 7}}}"},
        {"{\"a\": 5}", "{\"a\": {\"b\": 1, \"c\": 2}, \"d\": 0.25}"},
        {"{\"a\": {\"k0\": 1, \"k1\": 1, \"k2\": 1, \"k3\": 1, \"k4\": 1, "
         "\"k5\": 1, \"k6\": 1, \"k7\": 1, \"k8\": 1}}",
         "{\"a\": {\"k0\": 1, \"k1\": 1, \"k2\": 1, \"k3\": 1, \"k4\": 1, "
         "\"k5\": 1, \"k6\": 1, \"k7\": 1, \"k8\": -1}}"}, /* not small */
        {"{\"a\": 1e308}", "{\"a\": 1e308}"},              /* overflow */
    };
    vv_label la = tu_label(x->vc, "accum"), ld = tu_label(x->vc, "delta"),
             ls = tu_label(x->vc, "single");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vv a = tu_vv(x->vc, cases[i][0]), d = tu_vv(x->vc, cases[i][1]);
        vv kids[2] = {vv_ref(a), vv_ref(d)}, in, out, want;
        assert_int_equal(
            vv_from_pairs(x->vc, 0, 2, (vv_label[]){la, ld}, kids, &in), 0);
        dmm_error err;
        int rc = fire_v(x, "accum", in, VV_ZERO, &out, &err);
        int wrc = vv_add(x->vc, a, d, &want);
        assert_int_equal(rc != 0, wrc != 0);
        if (!rc) {
            assert_true(vv_equal(vv_child(out, ls), want));
            assert_int_equal(vv_nchildren(out), vv_is_zero(want) ? 0 : 1);
            vv_free(x->vc, out);
            vv_free(x->vc, want);
        }
        vv_free(x->vc, in);
        vv_free(x->vc, a);
        vv_free(x->vc, d);
    }
}

/* ---- out of memory ------------------------------------------------------- */

/* Fail each allocation of one firing in turn: the firing reports
 * DMM_E_NOMEM with nothing set and nothing leaked, until it succeeds. */
static void oom_case(fx *x, const char *type, const char *input,
                     const char *want)
{
    vv in = tu_vv(x->vc, input), w = tu_vv(x->vc, want), out;
    tu_label(x->vc, "n"); /* interned before the failures start */
    type_of(x, type);
    size_t base = x->alloc.bytes;
    for (long k = 1;; k++) {
        assert_true(k < 1000);
        x->alloc.fail_at = x->alloc.count + k;
        dmm_error err;
        dmm_error_clear(&err);
        int rc = fire_v(x, type, in, VV_ZERO, &out, &err);
        x->alloc.fail_at = 0;
        if (rc == 0) {
            assert_true(vv_equal(out, w));
            vv_free(x->vc, out);
            assert_true(k > 1); /* the case did allocate */
            break;
        }
        assert_int_equal(rc, DMM_E_NOMEM);
        assert_int_equal(x->alloc.bytes, base);
    }
    vv_free(x->vc, in);
    vv_free(x->vc, w);
}

static void test_oom(void **state)
{
    fx *x = *state;
    oom_case(x, "accum",
             "{\"accum\": {\"a\": 1, \"b\": {\"c\": 2}}, "
             "\"delta\": {\"b\": {\"d\": 3}, \"e\": 4}}",
             "{\"single\": {\"a\": 1, \"b\": {\"c\": 2, \"d\": 3}, \"e\": 4}}");
    oom_case(x, "cons", "{\"signal\": 2, \"self\": {\"this\": 1}}",
             "{\"self\": {\"this\": 2, \"rest\": {\"this\": 1}}}");
    oom_case(x, "softmax", "{\"s\": {\"a\": 1, \"b\": 1}, \"t\": {\"c\": 5}}",
             "{\"s\": {\"a\": 0.5, \"b\": 0.5}, \"t\": {\"c\": 1}}");
    oom_case(x, "relu", "{\"s\": {\"a\": -1, \"b\": 2}, \"t\": 3}",
             "{\"s\": {\"b\": 2}, \"t\": 3}");
    oom_case(x, "less-or-equal", "{\"left\": 1, \"right\": 2}",
             "{\"true-channel\": 1}");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_registry_find),
        T(test_registry_accepts_input),
        T(test_registry_invalid),
        T(test_registry_markdown),
        T(test_fire_param),
        T(test_accum),
        T(test_identity_output),
        T(test_max_norm),
        T(test_less_or_equal),
        T(test_mult_mask_lin_comb_dot),
        T(test_input),
        T(test_cons),
        T(test_gate),
        T(test_relu_tanh),
        T(test_sigmoid),
        T(test_softmax),
        T(test_vectors),
        T(test_accum_small_delta),
        T(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
