// SPDX-License-Identifier: MIT
/*
 * The mean-field neuron (spec interference.md §4) and the attention neurons
 * (§5): the solver against the spec's table and against formulas other than
 * the implementation's, the hysteresis network run by the engine, and each
 * attention type on cases worked out by hand (the working is in the comments).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"
#include "dmm_meanfield.h"
#include "dmm_neuron.h"
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

/* Fire type on input with state (both borrowed). On success *out and
 * *new_state (may be NULL) get new values; on error both must be unset. */
static int fire(fx *x, const char *type, vv input, vv state, vv *out,
                vv *new_state, dmm_error *err)
{
    return tn_fire(x, type, input, VV_ZERO, state, out, new_state, err);
}

/* new: type's output on the JSON input; fails the test on error. */
static vv fire_json(fx *x, const char *type, const char *input)
{
    vv in = tu_vv(x->vc, input), out;
    dmm_error err;
    int rc = fire(x, type, in, VV_ZERO, &out, NULL, &err);
    vv_free(x->vc, in);
    if (rc)
        fail_msg("%s on %s: %s (%s)", type, input, dmm_errname(rc), err.text);
    return out;
}

/* type on input gives want (JSON) to a relative 1e-12. */
static void expect_fire(fx *x, const char *type, const char *input,
                        const char *want)
{
    vv got = fire_json(x, type, input), w = tu_vv(x->vc, want);
    tu_assert_vv_close(x->vc, got, w, 1e-12);
    vv_free(x->vc, got);
    vv_free(x->vc, w);
}

/* type on input fails with code and a message naming the neuron and
 * containing why. */
static void expect_fail(fx *x, const char *type, const char *input, int code,
                        const char *why)
{
    vv in = tu_vv(x->vc, input), out;
    dmm_error err;
    int rc = fire(x, type, in, VV_ZERO, &out, NULL, &err);
    vv_free(x->vc, in);
    if (rc != code)
        fail_msg("%s on %s: got %s, want %s", type, input, dmm_errname(rc),
                 dmm_errname(code));
    char head[128];
    snprintf(head, sizeof head, "neuron %s/n: ", type);
    if (strncmp(err.text, head, strlen(head)) != 0 || !strstr(err.text, why))
        fail_msg("%s on %s: message \"%s\" lacks \"%s\"", type, input, err.text,
                 why);
}

/* |a − b| <= tol, in doubles (cmocka's assert_float_equal works in float). */
#define assert_near(a, b, tol)                                                 \
    do {                                                                       \
        double a_ = (a), b_ = (b);                                             \
        if (!(fabs(a_ - b_) <= (tol)))                                         \
            fail_msg("%s = %.17g, want %.17g within %g", #a, a_, b_,           \
                     (double)(tol));                                           \
    } while (0)

/* borrowed: v[a][b] (b may be NULL). */
static vv at(fx *x, vv v, const char *a, const char *b)
{
    vv_label p[2] = {tu_label(x->vc, a), b ? tu_label(x->vc, b) : 0};
    return vv_get(v, p, b ? 2 : 1);
}

/* ---- the solver ------------------------------------------------------------
 */

static double residual(double k, double h, double mu)
{
    return fabs(tanh(k * mu + h) - mu);
}

/* The spec's table, to 4 decimals. h_c is also checked against the plain
 * formula sqrt(K(K−1)) − atanh(sqrt(1−1/K)) (no cancellation at these K),
 * and m* against its own equation m = tanh(K·m). */
static void test_meanfield_table(void **state)
{
    static const struct {
        double k, mstar, hc;
    } table[] = {
        {1.2, 0.6586, 0.0564},
        {1.5, 0.8586, 0.2075},
        {2.0, 0.9575, 0.5328},
        {3.0, 0.9949, 1.3033},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        double k = table[i].k;
        double m = dmm_meanfield_mstar(k), hc = dmm_meanfield_hc(k);
        assert_near(round(m * 1e4) / 1e4, table[i].mstar, 1e-12);
        assert_near(round(hc * 1e4) / 1e4, table[i].hc, 1e-12);
        assert_near(hc, sqrt(k * (k - 1)) - atanh(sqrt(1 - 1 / k)), 1e-14);
        assert_true(residual(k, 0, m) < 1e-15);
        assert_true(m > 0.5);
    }
}

/* Near K = 1 the two terms of h_c cancel; the series branch must agree with
 * the formula evaluated in long double, and both branches must meet at
 * s = 0.1. h_c ≈ (2/3)·ε^(3/2) for K = 1 + ε. */
static void test_meanfield_hc_near_one(void **state)
{
    const double eps[] = {1e-12, 1e-8, 1e-6, 1e-4, 1e-2, 0.2, 0.34};
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++) {
        double k = 1 + eps[i];
        long double kl = k, s = sqrtl((kl - 1) / kl);
        long double want = kl * s - atanhl(s);
        double got = dmm_meanfield_hc(k);
        /* long double keeps ~19 digits; the cancellation costs log10(1/ε)/2
         * of them, so 1e−6 relative is safe for every ε here */
        assert_true(fabsl(got - want) <= 1e-6L * want);
        double approx = 2.0 / 3.0 * pow(k - 1, 1.5);
        if (eps[i] < 0.1)
            assert_true(fabs(got - approx) <= 2.0 * eps[i] * approx);
    }
    /* s = 0.5 at K = 4/3: the two branches on either side agree */
    double k0 = 4.0 / 3.0;
    double below = dmm_meanfield_hc(nextafter(k0, 0)),
           above = dmm_meanfield_hc(nextafter(k0, 2));
    assert_true(fabs(above - below) < 1e-14 * above);
    assert_true(dmm_meanfield_hc(1.0) == 0.0);
    assert_true(dmm_meanfield_hc(0.3) == 0.0);
    assert_true(dmm_meanfield_hc(-4) == 0.0);
    assert_true(dmm_meanfield_mstar(1.0) == 0.0);
    /* very large K: atanh(s) stays finite */
    assert_true(isfinite(dmm_meanfield_hc(1e300)));
    assert_near(dmm_meanfield_mstar(1e300), 1.0, 0);
}

/* K <= 1: one root whatever the start; not bistable. */
static void test_meanfield_single_root(void **state)
{
    const double ks[] = {-3, -0.5, 0, 0.5, 0.9, 0.999};
    const double hs[] = {-2, -0.3, -1e-9, 0, 1e-300, 0.25, 5};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        for (size_t j = 0; j < sizeof hs / sizeof hs[0]; j++) {
            bool bi = true;
            double lo = dmm_meanfield_solve(ks[i], hs[j], -1, &bi);
            assert_false(bi);
            double hi = dmm_meanfield_solve(ks[i], hs[j], 1, &bi);
            assert_false(bi);
            assert_true(lo == hi);
            assert_true(residual(ks[i], hs[j], lo) < 1e-15);
        }
    /* K = 0: μ = tanh(h) */
    assert_near(dmm_meanfield_solve(0, 0.5, 0, NULL), tanh(0.5), 1e-16);
    /* K = 1, h = 0: a triple root at 0 (g ≈ −μ³/3), found to ~(3 ulp)^(1/3) */
    bool bi = true;
    assert_true(fabs(dmm_meanfield_solve(1, 0, 0.9, &bi)) < 1e-4);
    assert_false(bi);
    /* huge fields saturate */
    assert_near(dmm_meanfield_solve(0.5, 1e300, 0, NULL), 1.0, 0);
    assert_near(dmm_meanfield_solve(0.5, -1e300, 0, NULL), -1.0, 0);
}

/* K > 1: two stable roots for |h| < h_c, picked by the start; one beyond. */
static void test_meanfield_bistable(void **state)
{
    double k = 1.5, hc = dmm_meanfield_hc(k);
    bool bi;
    double up = dmm_meanfield_solve(k, 0.1, 0.2, &bi);
    assert_true(bi);
    assert_true(up > 0.85 && residual(k, 0.1, up) < 1e-15);
    double down = dmm_meanfield_solve(k, 0.1, -0.4, &bi);
    assert_true(bi);
    assert_true(down < -0.6 && residual(k, 0.1, down) < 1e-15);
    /* the unstable root u of h = 0.1 lies between: starts just either side
     * of it go to different roots; u solves tanh(1.5u + 0.1) = u, found
     * here by bisection on the rising piece [−0.5, 0] */
    double a = -0.5, b = 0.0;
    for (int i = 0; i < 200; i++) {
        double m = 0.5 * (a + b);
        if (tanh(k * m + 0.1) - m > 0)
            b = m;
        else
            a = m;
    }
    assert_true(dmm_meanfield_solve(k, 0.1, b + 1e-12, NULL) == up);
    assert_true(dmm_meanfield_solve(k, 0.1, a - 1e-12, NULL) == down);
    /* past h_c only the upper root is left, from any start */
    double only = dmm_meanfield_solve(k, 0.21, -1, &bi);
    assert_false(bi);
    assert_true(only > 0.9 && residual(k, 0.21, only) < 1e-15);
    /* at the edge: just inside h_c the lower branch survives (μ near its
     * end point −sqrt(1 − 1/K)); just outside it is gone */
    double edge = dmm_meanfield_solve(k, hc * (1 - 1e-9), -1, &bi);
    assert_true(bi);
    assert_near(edge, -sqrt(1 - 1 / k), 1e-3);
    assert_true(residual(k, hc * (1 - 1e-9), edge) < 1e-14);
    double past = dmm_meanfield_solve(k, hc * (1 + 1e-9), -1, &bi);
    assert_false(bi);
    assert_true(past > 0.9);
    /* symmetric: h → −h, μ → −μ */
    assert_near(dmm_meanfield_solve(k, -0.1, 0.4, NULL), -down, 1e-15);
    /* a start exactly on the unstable root: h = 0, μ0 = 0 goes up */
    assert_near(dmm_meanfield_solve(k, 0, 0, NULL), dmm_meanfield_mstar(k), 0);
    /* starts outside [−1, 1] (a hand-edited state) still pick a side */
    assert_true(dmm_meanfield_solve(k, 0, -7, NULL) < -0.8);
}

/* ---- the neuron ------------------------------------------------------------
 */

/* field {a: 0.1, b: {c: 0.3}}: two stored scalars, B = 0.2; beta 2,
 * coupling 0.25, neighbours 3: K = 2·3·0.25 = 1.5, h = 2·0.2 = 0.4 > h_c =
 * 0.2075, so one root; margin = h_c − 0.4 < 0. */
static void test_meanfield_neuron(void **state)
{
    fx *x = *state;
    vv in =
        tu_vv(x->vc, "{\"field\": {\"a\": 0.1, \"b\": {\"c\": 0.3}},"
                     " \"beta\": 2, \"coupling\": 0.25, \"neighbours\": 3}");
    vv out, st;
    dmm_error err;
    assert_int_equal(fire(x, "mean-field", in, VV_ZERO, &out, &st, &err), 0);
    double mu = at(x, out, "mu", NULL).num;
    assert_true(mu > 0.9 && residual(1.5, 0.4, mu) < 1e-15);
    assert_true(vv_is_zero(at(x, out, "bistable", NULL)));
    assert_near(at(x, out, "margin", NULL).num, dmm_meanfield_hc(1.5) - 0.4,
                1e-15);
    assert_near(at(x, out, "h", NULL).num, 0.4, 1e-15);
    assert_near(at(x, out, "k", NULL).num, 1.5, 1e-15);
    assert_int_equal(vv_nchildren(out), 4); /* bistable 0 is absent */
    assert_true(vv_is_scalar(st) && st.num == mu);
    vv_free(x->vc, out);
    vv_free(x->vc, in);

    /* defaults: K = 1, h = B = 0.5: one root, no margin */
    expect_fire(x, "mean-field", "{\"field\": 0.5}",
                "{\"mu\": 0.8812253607755204, \"h\": 0.5, \"k\": 1}");
    vv r = fire_json(x, "mean-field", "{\"field\": 0.5}");
    assert_true(residual(1, 0.5, at(x, r, "mu", NULL).num) < 1e-15);
    vv_free(x->vc, r);
    /* no input at all: K = 1, h = 0, μ = 0: every output is 0 except k */
    expect_fire(x, "mean-field", "{}", "{\"k\": 1}");

    /* hysteresis through the state: K = 2, h = 0.3 < h_c = 0.5328 */
    in = tu_vv(x->vc, "{\"field\": 0.3, \"coupling\": 2}");
    vv neg = vv_number(-0.9), pos = vv_number(0.9), st2;
    assert_int_equal(fire(x, "mean-field", in, neg, &out, &st, &err), 0);
    assert_true(at(x, out, "mu", NULL).num < -0.8);
    assert_near(at(x, out, "bistable", NULL).num, 1, 0);
    assert_near(at(x, out, "margin", NULL).num, dmm_meanfield_hc(2) - 0.3,
                1e-15);
    vv_free(x->vc, out);
    assert_int_equal(fire(x, "mean-field", in, pos, &out, &st2, &err), 0);
    assert_true(at(x, out, "mu", NULL).num > 0.9);
    assert_true(st.num < 0 && st2.num > 0);
    vv_free(x->vc, out);
    vv_free(x->vc, in);

    /* bad inputs */
    expect_fail(x, "mean-field", "{\"beta\": {\"x\": 1}}", DMM_E_INVAL,
                "input beta must be a number, got a map with 1 children");
    expect_fail(x, "mean-field", "{\"neighbours\": {\":number\": 4, \"y\": 1}}",
                DMM_E_INVAL, "input neighbours must be a number");
    expect_fail(x, "mean-field", "{\"beta\": 1e200, \"coupling\": 1e200}",
                DMM_E_NONFINITE, "overflows");
    expect_fail(x, "mean-field", "{\"field\": {\"a\": 1e308, \"b\": 1e308}}",
                DMM_E_NONFINITE, "overflows");
}

/* ---- the hysteresis network -----------------------------------------------
 */

typedef struct sweep {
    int jumps;
    double h_jump[4], h_before[4];
    int dir[4];        /* +1 up, −1 down */
    double max_step;   /* largest |Δh| per cycle within 0.05 of ±h_c */
    double mu_zero[2]; /* μ at the first h >= 0 after each jump */
} sweep;

/*
 * networks/hysteresis.json: an oscillator of two accumulators rotating by
 * 2π/4000 per cycle drives h = 0.8·sin through mean-field neurons with
 * K = 4 · 0.375 = 1.5 and K = 4 · 0.5 = 2. Over 4600 cycles the field goes
 * up to 0.8, down to −0.8 and up again past +h_c: μ must jump down once,
 * within 0.01 of −h_c (right after h passes it), and up once near +h_c.
 */
static void test_hysteresis_network(void **state)
{
    fx *x = *state;
    dmm_net *net = NULL;
    dmm_error err;
    char *path = tu_path("networks/hysteresis.json");
    if (dmm_net_load_file(x->vc, x->reg, path, &net, &err)) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("%s", msg);
    }
    free(path);
    const char *names[2] = {"k1.5", "k2"};
    const double ks[2] = {1.5, 2.0};
    sweep sw[2] = {0};
    double prev_mu[2] = {0}, prev_h[2] = {0};
    vv_label mf = tu_label(x->vc, "mean-field");
    for (int t = 1; t <= 4600; t++) {
        if (dmm_net_step(net, &err))
            fail_msg("step %d: %s", t, err.text);
        vv y = vv_child(dmm_net_outputs(net), mf);
        for (int n = 0; n < 2; n++) {
            vv o = at(x, y, names[n], NULL);
            double mu = at(x, o, "mu", NULL).num, h = at(x, o, "h", NULL).num;
            double hc = dmm_meanfield_hc(ks[n]);
            assert_near(at(x, o, "k", NULL).num, ks[n], 1e-15);
            /* bistable exactly when |h| <= h_c, and margin says by how much */
            assert_int_equal(at(x, o, "bistable", NULL).num == 1,
                             fabs(h) <= hc);
            assert_near(at(x, o, "margin", NULL).num, hc - fabs(h), 1e-15);
            sweep *s = &sw[n];
            if (t > 1 && fabs(fabs(h) - hc) < 0.05)
                s->max_step = fmax(s->max_step, fabs(h - prev_h[n]));
            if (t > 1 && (mu > 0) != (prev_mu[n] > 0)) {
                assert_true(s->jumps < 4);
                s->h_jump[s->jumps] = h;
                s->h_before[s->jumps] = prev_h[n];
                s->dir[s->jumps++] = mu > 0 ? 1 : -1;
            }
            if (s->jumps && s->jumps <= 2 && prev_h[n] < 0 && h >= 0 &&
                s->mu_zero[s->jumps - 1] == 0)
                s->mu_zero[s->jumps - 1] = mu;
            prev_mu[n] = mu;
            prev_h[n] = h;
        }
    }
    dmm_net_free(net);
    for (int n = 0; n < 2; n++) {
        sweep *s = &sw[n];
        double hc = dmm_meanfield_hc(ks[n]);
        assert_int_equal(s->jumps, 2);
        assert_int_equal(s->dir[0], -1);
        assert_int_equal(s->dir[1], 1);
        /* the jump is the first cycle past the edge, within 0.01 of it */
        assert_true(fabs(s->h_jump[0] + hc) < 0.01);
        assert_true(s->h_jump[0] < -hc && s->h_before[0] >= -hc);
        assert_true(fabs(s->h_jump[1] - hc) < 0.01);
        assert_true(s->h_jump[1] > hc && s->h_before[1] <= hc);
        assert_true(s->max_step < 0.0015);
        /* hysteresis: at h = 0 on the way up, after the down jump, μ is
         * still on the lower branch (−m*), though it started at +m* */
        assert_true(s->mu_zero[0] < -0.85);
    }
}

/* A bad input met in a running network stops the cycle with the neuron
 * named and leaves the network as it was (step count and outputs). */
static void test_meanfield_engine_fault(void **state)
{
    fx *x = *state;
    const char *text =
        "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
        "{\"accum\": {\"self\": {\"single\": 1}}}}}, \"identity\": "
        "{\"c\": {\"b\": {\"identity\": {\"c\": {\"b\": 1}}}}}, "
        "\"mean-field\": {\"m\": {\"beta\": {\"identity\": {\"c\": "
        "{\"b\": 1}}}}}}, \"outputs\": {\"identity\": {\"c\": {\"b\": "
        "{\"x\": 2}}}}}";
    dmm_net *net = NULL;
    dmm_error err;
    assert_int_equal(dmm_net_load_text(x->vc, x->reg, text, strlen(text),
                                       "t.json", &net, &err),
                     0);
    vv before = vv_ref(dmm_net_outputs(net));
    assert_int_equal(dmm_net_step(net, &err), DMM_E_INVAL);
    assert_non_null(strstr(err.text, "mean-field/m: input beta must be a "
                                     "number, got a map with 1 children"));
    assert_int_equal(dmm_net_step_count(net), 0);
    assert_true(vv_equal(dmm_net_outputs(net), before));
    vv_free(x->vc, before);
    dmm_net_free(net);
}

/*
 * networks/attention.json: the "richer" product of Q = {a: {u: 1, v: 2},
 * b: {u: 3}} and K = {u: {x: 1}, v: {x: 2, y: 1}}.
 * softmax-rows(Q): a = (1, e)/(1 + e) = (r, 1 − r) with r = 1/(1 + e);
 *   b = (e³, 1)/(e³ + 1) = (1 − s, s) with s = 1/(1 + e³).
 * softmax-cols(K): x over (u, v) = softmax(1, 2) = (r, 1 − r); y = softmax(0,
 *   1) = (r, 1 − r) as well.
 * product a = r·(r, r) + (1 − r)·(1 − r, 1 − r): x = y = r² + (1 − r)²;
 *   b = (1 − s)·r + s·(1 − r) for x and y.
 * metric-attention on Q's rows, τ = 4: d²(a, b) = 2² + 2² = 8, score −2:
 *   w_ab = 1/(1 + e²) = q; y_a = (1 − q)·a + q·b = {u: 1 + 2q, v: 2 − 2q}.
 * The product needs two cycles (softmax first, then matmul).
 */
static void test_attention_network(void **state)
{
    fx *x = *state;
    dmm_net *net = NULL;
    dmm_error err;
    char *path = tu_path("networks/attention.json");
    assert_int_equal(dmm_net_load_file(x->vc, x->reg, path, &net, &err), 0);
    free(path);
    for (int t = 0; t < 2; t++)
        assert_int_equal(dmm_net_step(net, &err), 0);
    const double e = exp(1.0), r = 1 / (1 + e), s = 1 / (1 + e * e * e),
                 q = 1 / (1 + e * e);
    vv y = dmm_net_outputs(net);
    vv p =
        at(x, at(x, at(x, y, "matmul", "richer"), "product", NULL), "a", NULL);
    assert_near(at(x, p, "x", NULL).num, r * r + (1 - r) * (1 - r), 1e-15);
    assert_near(at(x, p, "y", NULL).num, r * r + (1 - r) * (1 - r), 1e-15);
    p = at(x, at(x, at(x, y, "matmul", "richer"), "product", NULL), "b", NULL);
    assert_near(at(x, p, "x", NULL).num, (1 - s) * r + s * (1 - r), 1e-15);
    vv m = at(x, at(x, y, "metric-attention", "rows-of-q"), "y", NULL);
    assert_near(at(x, at(x, m, "a", NULL), "u", NULL).num, 1 + 2 * q, 1e-15);
    assert_near(at(x, at(x, m, "a", NULL), "v", NULL).num, 2 - 2 * q, 1e-15);
    dmm_net_free(net);
}

/* ---- attention -------------------------------------------------------------
 */

/*
 * query q = {x: 1}; keys a = {x: 2} (cos 1), b = {x: 1, y: 1} (cos 1/√2 =
 * 0.7071), c = {y: 3} (cos 0), d = {x: −1} (cos −1).
 * threshold 0.7 selects a, b: y = (q + a + b)/3 = {x: 4/3, y: 1/3}.
 * no threshold (0) selects a, b, c: y = (q + a + b + c)/4 = {x: 4/4, y: 4/4}.
 */
static void test_threshold_attention(void **state)
{
    fx *x = *state;
    const char *keys = "\"keys\": {\"a\": {\"x\": 2}, \"b\": {\"x\": 1, \"y\": "
                       "1}, \"c\": {\"y\": 3}, \"d\": {\"x\": -1}}";
    char in[512];
    snprintf(in, sizeof in, "{\"query\": {\"x\": 1}, %s, \"threshold\": 0.7}",
             keys);
    expect_fire(x, "threshold-attention", in,
                "{\"y\": {\"x\": 1.3333333333333333, \"y\": "
                "0.3333333333333333}, \"selected\": {\"a\": 1, \"b\": 1}}");
    snprintf(in, sizeof in, "{\"query\": {\"x\": 1}, %s}", keys);
    expect_fire(x, "threshold-attention", in,
                "{\"y\": {\"x\": 1, \"y\": 1}, \"selected\": {\"a\": 1, "
                "\"b\": 1, \"c\": 1}}");
    /* threshold 0.71 > 1/√2: b drops out: y = (q + a)/2 = {x: 1.5} */
    snprintf(in, sizeof in, "{\"query\": {\"x\": 1}, %s, \"threshold\": 0.71}",
             keys);
    expect_fire(x, "threshold-attention", in,
                "{\"y\": {\"x\": 1.5}, \"selected\": {\"a\": 1}}");
    /* threshold −1 selects all: y = (1+2+1−1, 1+3)/5 = {x: 0.6, y: 0.8} */
    snprintf(in, sizeof in, "{\"query\": {\"x\": 1}, %s, \"threshold\": -1}",
             keys);
    expect_fire(x, "threshold-attention", in,
                "{\"y\": {\"x\": 0.6, \"y\": 0.8}, \"selected\": {\"a\": 1, "
                "\"b\": 1, \"c\": 1, \"d\": 1}}");
    /* vectors of any shape; tiny values: the raw dot 1e−400 would underflow
     * to 0 and give 0/0; scaled, cos = 1: y = (q + k)/2 = q */
    expect_fire(x, "threshold-attention",
                "{\"query\": {\"p\": {\"x\": 1e-200}}, \"keys\": {\"k\": "
                "{\"p\": {\"x\": 1e-200}}}, \"threshold\": 0.99}",
                "{\"y\": {\"p\": {\"x\": 1e-200}}, \"selected\": {\"k\": 1}}");
    /* no keys: y = q; zero query: nothing */
    expect_fire(x, "threshold-attention", "{\"query\": {\"x\": 2}}",
                "{\"y\": {\"x\": 2}}");
    snprintf(in, sizeof in, "{%s}", keys);
    expect_fire(x, "threshold-attention", in, "{}");
    /* bad inputs */
    snprintf(in, sizeof in,
             "{\"query\": {\"x\": 1}, %s, \"threshold\": {\"t\": "
             "0.5}}",
             keys);
    expect_fail(x, "threshold-attention", in, DMM_E_INVAL,
                "input threshold must be a number");
    expect_fail(x, "threshold-attention",
                "{\"query\": {\"x\": 1}, \"keys\": {\":number\": 2, \"a\": "
                "{\"x\": 1}}}",
                DMM_E_INVAL, "input keys has a number at its root");
}

/*
 * Two 1-D vectors p = {u: 1}, q = {u: 2}, M = identity, τ = 1: d² = 1, so
 * a_pq = a_qp = 1/(1 + e) = 0.2689414213699951, a_pp = a_qq = e/(1 + e);
 * y_p = 1 + 1/(1 + e) = 1.2689414213699951, y_q = 2 − 1/(1 + e) =
 * 1.7310585786300049.
 * With M = {r: {u: 2}} and τ = 2: ‖M d‖² = 4, score −2: a_pq = 1/(1 + e²) =
 * 0.11920292202211755: y_p = 1.1192029220221176, y_q = 1.8807970779778824
 * (y stays in x's components, u, not M's rows).
 */
static void test_metric_attention(void **state)
{
    fx *x = *state;
    const double e = exp(1.0);
    expect_fire(
        x, "metric-attention",
        "{\"x\": {\"p\": {\"u\": 1}, \"q\": {\"u\": 2}}}",
        "{\"y\": {\"p\": {\"u\": 1.2689414213699951}, \"q\": {\"u\": "
        "1.7310585786300049}}, \"weights\": {\"p\": {\"p\": "
        "0.7310585786300049, \"q\": 0.2689414213699951}, \"q\": {\"p\": "
        "0.2689414213699951, \"q\": 0.7310585786300049}}}");
    assert_near(1 / (1 + e), 0.2689414213699951, 1e-16);
    expect_fire(x, "metric-attention",
                "{\"x\": {\"p\": {\"u\": 1}, \"q\": {\"u\": 2}}, \"metric\": "
                "{\"r\": {\"u\": 2}}, \"temperature\": 2}",
                "{\"y\": {\"p\": {\"u\": 1.1192029220221176}, \"q\": {\"u\": "
                "1.8807970779778824}}, \"weights\": {\"p\": {\"p\": "
                "0.8807970779778824, \"q\": 0.11920292202211755}, \"q\": "
                "{\"p\": 0.11920292202211755, \"q\": 0.8807970779778824}}}");
    /*
     * a = {u: 1, v: 5}, b = {u: 1, v: −3}, c = {u: 3}; M = {r: {u: 1}} keeps
     * only u, so a and b are at distance 0 and c at 2 from both (d² = 4).
     * Row a: scores 0, 0, −4: w = (1, 1, e⁻⁴)/(2 + e⁻⁴);
     *   y_a = {u: (1 + 1 + 3e⁻⁴)/(2 + e⁻⁴), v: (5 − 3)/(2 + e⁻⁴)}.
     * Row c: scores −4, −4, 0: w = (e⁻⁴, e⁻⁴, 1)/(1 + 2e⁻⁴);
     *   y_c = {u: (2e⁻⁴ + 3)/(1 + 2e⁻⁴), v: 2e⁻⁴/(1 + 2e⁻⁴)}.
     */
    vv got =
        fire_json(x, "metric-attention",
                  "{\"x\": {\"a\": {\"u\": 1, \"v\": 5}, \"b\": {\"u\": 1, "
                  "\"v\": -3}, \"c\": {\"u\": 3}}, \"metric\": {\"r\": "
                  "{\"u\": 1}}}");
    const double q = exp(-4.0);
    vv y = at(x, got, "y", NULL);
    assert_near(at(x, at(x, y, "a", NULL), "u", NULL).num,
                (2 + 3 * q) / (2 + q), 1e-15);
    assert_near(at(x, at(x, y, "a", NULL), "v", NULL).num, 2 / (2 + q), 1e-15);
    assert_near(at(x, at(x, y, "c", NULL), "u", NULL).num,
                (2 * q + 3) / (1 + 2 * q), 1e-15);
    assert_near(at(x, at(x, y, "c", NULL), "v", NULL).num, 2 * q / (1 + 2 * q),
                1e-15);
    vv wts = at(x, got, "weights", NULL);
    assert_near(at(x, wts, "a", "b").num, 1 / (2 + q), 1e-15);
    assert_near(at(x, wts, "c", "c").num, 1 / (1 + 2 * q), 1e-15);
    vv_free(x->vc, got);
    /* a far-away vector gets weight that underflows: absent, not 0 */
    expect_fire(x, "metric-attention",
                "{\"x\": {\"p\": {\"u\": 1}, \"q\": {\"u\": 1000}}}",
                "{\"y\": {\"p\": {\"u\": 1}, \"q\": {\"u\": 1000}}, "
                "\"weights\": {\"p\": {\"p\": 1}, \"q\": {\"q\": 1}}}");
    expect_fire(x, "metric-attention", "{}", "{}");
    /* bad inputs */
    expect_fail(x, "metric-attention",
                "{\"x\": {\"p\": {\"u\": 1}}, \"temperature\": -1}",
                DMM_E_INVAL, "input temperature must be positive");
    expect_fail(x, "metric-attention",
                "{\"x\": {\"p\": {\"u\": 1}}, \"temperature\": {\"t\": 1}}",
                DMM_E_INVAL, "input temperature must be a number");
    expect_fail(x, "metric-attention", "{\"x\": {\"p\": {\"u\": {\"w\": 1}}}}",
                DMM_E_INVAL, "component \"p\"/\"u\" is a map");
    expect_fail(x, "metric-attention", "{\"x\": {\"p\": 3}}", DMM_E_INVAL,
                "\"p\" has a number of its own");
    expect_fail(x, "metric-attention", "{\"x\": {\":number\": 1}}", DMM_E_INVAL,
                "input x has a number at its root");
    expect_fail(x, "metric-attention",
                "{\"x\": {\"p\": {\"u\": 1}}, \"metric\": {\"r\": {\"u\": "
                "{\"z\": 1}}}}",
                DMM_E_INVAL, "input metric: entry \"r\"/\"u\" is a map");
    expect_fail(x, "metric-attention",
                "{\"x\": {\"p\": {\"u\": 1e300}}, \"metric\": {\"r\": {\"u\": "
                "1e300}}}",
                DMM_E_NONFINITE, "M x overflows for vector \"p\"");
}

/*
 * m = {r1: {a: 1, b: 2}, r2: {a: 3}}; support: rows r1, r2, columns a, b;
 * r2's b is a sparse 0.
 * rows: r1 = softmax(1, 2) = (1, e)/(1 + e) = (0.2689414213699951,
 *   0.7310585786300049); r2 = softmax(3, 0) = (e³, 1)/(e³ + 1) =
 *   (0.9525741268224334, 0.04742587317756678).
 * cols: a = softmax(1, 3) over (r1, r2) = (1, e²)/(1 + e²) =
 *   (0.11920292202211755, 0.8807970779778823); b = softmax(2, 0) =
 *   (0.8807970779778823, 0.11920292202211755).
 */
static void test_softmax_rows_cols(void **state)
{
    fx *x = *state;
    const char *m =
        "{\"matrix\": {\"r1\": {\"a\": 1, \"b\": 2}, \"r2\": {\"a\": "
        "3}}}";
    expect_fire(x, "softmax-rows", m,
                "{\"matrix\": {\"r1\": {\"a\": 0.2689414213699951, \"b\": "
                "0.7310585786300049}, \"r2\": {\"a\": 0.9525741268224334, "
                "\"b\": 0.04742587317756678}}}");
    expect_fire(x, "softmax-cols", m,
                "{\"matrix\": {\"r1\": {\"a\": 0.11920292202211755, \"b\": "
                "0.8807970779778823}, \"r2\": {\"a\": 0.8807970779778823, "
                "\"b\": 0.11920292202211755}}}");
    /* large scores do not overflow: softmax(1000, 1001) */
    expect_fire(x, "softmax-rows",
                "{\"matrix\": {\"r\": {\"a\": 1000, \"b\": 1001}}}",
                "{\"matrix\": {\"r\": {\"a\": 0.2689414213699951, \"b\": "
                "0.7310585786300049}}}");
    /* a single column: every row is 1 */
    expect_fire(x, "softmax-rows",
                "{\"matrix\": {\"r1\": {\"a\": -5}, \"r2\": {\"a\": 7}}}",
                "{\"matrix\": {\"r1\": {\"a\": 1}, \"r2\": {\"a\": 1}}}");
    expect_fire(x, "softmax-cols", "{}", "{}");
    const char *types[2] = {"softmax-rows", "softmax-cols"};
    for (int i = 0; i < 2; i++) {
        expect_fail(x, types[i], "{\"matrix\": 3}", DMM_E_INVAL,
                    "input matrix has a number at its root");
        expect_fail(x, types[i], "{\"matrix\": {\"r1\": 5}}", DMM_E_INVAL,
                    "row \"r1\" has a number of its own");
        expect_fail(x, types[i], "{\"matrix\": {\"r1\": {\"a\": {\"z\": 1}}}}",
                    DMM_E_INVAL, "entry \"r1\"/\"a\" is a map, not a number");
    }
}

/*
 * L = {i: {j: 2, k: 1}, m: {k: −1}}, R = {j: {x: 3}, k: {x: 1, y: 4}}:
 * product i = 2·R[j] + 1·R[k] = {x: 7, y: 4}; m = −R[k] = {x: −1, y: −4}.
 * L = {i: {j: 1, k: −3}}, R = {j: {x: 3}, k: {x: 1}}: 3 − 3 = 0, absent.
 */
static void test_matmul(void **state)
{
    fx *x = *state;
    expect_fire(
        x, "matmul",
        "{\"left\": {\"i\": {\"j\": 2, \"k\": 1}, \"m\": {\"k\": -1}}, "
        "\"right\": {\"j\": {\"x\": 3}, \"k\": {\"x\": 1, \"y\": 4}}}",
        "{\"product\": {\"i\": {\"x\": 7, \"y\": 4}, \"m\": {\"x\": -1, "
        "\"y\": -4}}}");
    expect_fire(x, "matmul",
                "{\"left\": {\"i\": {\"j\": 1, \"k\": -3}}, \"right\": {\"j\": "
                "{\"x\": 3}, \"k\": {\"x\": 1}}}",
                "{}");
    /* a column of L with no row in R multiplies zeros */
    expect_fire(x, "matmul",
                "{\"left\": {\"i\": {\"z\": 5, \"j\": 1}}, \"right\": {\"j\": "
                "{\"x\": 3}}}",
                "{\"product\": {\"i\": {\"x\": 3}}}");
    expect_fire(x, "matmul", "{\"right\": {\"j\": {\"x\": 3}}}", "{}");
    expect_fail(x, "matmul",
                "{\"left\": {\"i\": {\"j\": 1}}, \"right\": {\"j\": {\"x\": "
                "{\"deep\": 1}}}}",
                DMM_E_INVAL, "input right: entry \"j\"/\"x\" is a map");
    expect_fail(x, "matmul", "{\"left\": {\"i\": 2}}", DMM_E_INVAL,
                "input left: row \"i\" has a number of its own");
    expect_fail(
        x, "matmul",
        "{\"left\": {\"i\": {\"j\": 1e300}}, \"right\": {\"j\": {\"x\": "
        "1e300}}}",
        DMM_E_NONFINITE, "NaN or infinity");
}

/* new: {"left": l, "right": r} (borrowed). */
static vv lr_input(fx *x, vv l, vv r)
{
    vv_label k[2] = {tu_label(x->vc, "left"), tu_label(x->vc, "right")};
    vv kids[2] = {vv_ref(l), vv_ref(r)}, in;
    assert_int_equal(vv_from_pairs(x->vc, 0.0, 2, k, kids, &in), 0);
    return in;
}

/* new: v with every row rewritten as a tree (vv_set of each row to itself
 * turns the dense levels on its path into B+-tree leaves): the same value. */
static vv as_tree(fx *x, vv v)
{
    vv acc = vv_ref(v), row;
    vv_iter it;
    vv_label path[2];
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &path[0], &row)) {
        vv_iter jt;
        vv e, r;
        vv_iter_init(&jt, row);
        while (vv_iter_next(&jt, &path[1], &e)) {
            assert_int_equal(vv_set(x->vc, acc, path, 2, e, &r), 0);
            vv_free(x->vc, acc);
            acc = r;
        }
    }
    return acc;
}

static vv product_of(fx *x, vv l, vv r)
{
    vv in = lr_input(x, l, r), out;
    dmm_error err;
    int rc = fire(x, "matmul", in, VV_ZERO, &out, NULL, &err);
    if (rc)
        fail_msg("matmul: %s (%s)", dmm_errname(rc), err.text);
    vv_free(x->vc, in);
    vv p = vv_child(out, tu_label(x->vc, "product"));
    p = vv_ref(p);
    vv_free(x->vc, out);
    return p;
}

/*
 * Blocks (decimal labels) are multiplied by cblas_dgemm. Exact where every
 * partial sum is exact (quarters): equal to the product summed in any
 * order. Random doubles: each entry within K·2^-52·Σ_j |l_ij·r_jk| of the
 * plain loop. The dense and the tree form give the same bits.
 */
static void test_matmul_blas(void **state)
{
    fx *x = *state;
    enum { M = 37, K = 29, N = 41 };
    static double l[M * K], r[K * N], p[M * N], bound[M * N];
    uint64_t s = 12345;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < M * K + K * N; i++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            double u = (double)(s >> 11) / 9007199254740992.0 - 0.5;
            double v = pass ? u * 1e3 : (double)(int)(u * 16) / 4.0;
            if (i < M * K)
                l[i] = i % 11 == 3 ? 0.0 : v;
            else
                r[i - M * K] = v;
        }
        for (int i = 0; i < M; i++)
            for (int k = 0; k < N; k++) {
                double sum = 0, mag = 0;
                for (int j = 0; j < K; j++) {
                    sum += l[i * K + j] * r[j * N + k];
                    mag += fabs(l[i * K + j] * r[j * N + k]);
                }
                p[i * N + k] = sum;
                bound[i * N + k] = K * 0x1p-52 * mag;
            }
        size_t dl[2] = {M, K}, dr[2] = {K, N}, dp[2] = {M, N};
        vv L, R, want;
        assert_int_equal(vv_from_dense(x->vc, 2, dl, l, &L), 0);
        assert_int_equal(vv_from_dense(x->vc, 2, dr, r, &R), 0);
        vv got = product_of(x, L, R);
        if (pass == 0) {
            assert_int_equal(vv_from_dense(x->vc, 2, dp, p, &want), 0);
            assert_true(vv_equal(got, want));
            vv_free(x->vc, want);
        } else {
            static double g[M * N];
            assert_int_equal(vv_dense_read(x->vc, got, 2, dp, g), 0);
            for (int i = 0; i < M * N; i++)
                assert_near(g[i], p[i], bound[i]);
        }
        vv TL = as_tree(x, L), TR = as_tree(x, R);
        vv got2 = product_of(x, TL, TR), got3 = product_of(x, L, TR);
        assert_true(vv_equal(got, got2));
        assert_true(vv_equal(got, got3));
        vv all[] = {L, R, got, TL, TR, got2, got3};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            vv_free(x->vc, all[i]);
    }
    /* a block times a matrix with other labels: the sparse product, exact */
    expect_fire(x, "matmul",
                "{\"left\": {\"0\": {\"0\": 2, \"1\": 1}}, \"right\": "
                "{\"0\": {\"x\": 3}, \"1\": {\"x\": 1, \"y\": 4}}}",
                "{\"product\": {\"0\": {\"x\": 7, \"y\": 4}}}");
    /* overflow in dgemm is the same error as in the sparse product */
    expect_fail(x, "matmul",
                "{\"left\": {\"0\": {\"0\": 1e300}}, \"right\": {\"0\": "
                "{\"0\": 1e300}}}",
                DMM_E_NONFINITE, "NaN or infinity");
}

/* Every attention type under a failing allocator: each failure is NOMEM with
 * nothing set and nothing leaked (teardown checks the byte count). */
static void test_attention_oom(void **state)
{
    fx *x = *state;
    static const struct {
        const char *type, *input;
    } cases[] = {
        {"threshold-attention", "{\"query\": {\"x\": 1}, \"keys\": {\"a\": "
                                "{\"x\": 2}, \"b\": {\"x\": 1, \"y\": 1}}}"},
        {"metric-attention", "{\"x\": {\"a\": {\"u\": 1, \"v\": 5}, \"b\": "
                             "{\"u\": 1}}, \"metric\": {\"r\": {\"u\": 1}}}"},
        {"softmax-rows", "{\"matrix\": {\"r1\": {\"a\": 1, \"b\": 2}, \"r2\": "
                         "{\"a\": 3}}}"},
        {"softmax-cols", "{\"matrix\": {\"r1\": {\"a\": 1, \"b\": 2}, \"r2\": "
                         "{\"a\": 3}}}"},
        {"matmul", "{\"left\": {\"i\": {\"j\": 2, \"k\": 1}}, \"right\": "
                   "{\"j\": {\"x\": 3}, \"k\": {\"x\": 1, \"y\": 4}}}"},
        {"matmul", "{\"left\": {\"0\": {\"0\": 2, \"1\": 1}, \"1\": {\"1\": "
                   "3}}, \"right\": {\"0\": {\"0\": 3}, \"1\": {\"0\": 1, "
                   "\"1\": 4}}}"},
        {"mean-field", "{\"field\": {\"a\": 1}, \"coupling\": 2}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vv in = tu_vv(x->vc, cases[i].input), want, out;
        dmm_error err;
        (void)dmm_registry_find(x->reg, tu_label(x->vc, cases[i].type));
        (void)tu_label(x->vc, "n");
        assert_int_equal(fire(x, cases[i].type, in, VV_ZERO, &want, NULL, &err),
                         0);
        bool succeeded = false;
        for (long k = 1; !succeeded && k < 200; k++) {
            x->alloc.count = 0;
            x->alloc.fail_at = k;
            int rc = fire(x, cases[i].type, in, VV_ZERO, &out, NULL, &err);
            x->alloc.fail_at = 0;
            if (rc == 0) {
                assert_true(vv_equal(out, want));
                vv_free(x->vc, out);
                succeeded = x->alloc.count < k; /* no call left to fail */
            } else {
                assert_int_equal(rc, DMM_E_NOMEM);
            }
        }
        assert_true(succeeded);
        vv_free(x->vc, want);
        vv_free(x->vc, in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meanfield_table),
        cmocka_unit_test(test_meanfield_hc_near_one),
        cmocka_unit_test(test_meanfield_single_root),
        cmocka_unit_test(test_meanfield_bistable),
        cmocka_unit_test_setup_teardown(test_meanfield_neuron, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hysteresis_network, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_meanfield_engine_fault, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_attention_network, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_threshold_attention, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metric_attention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_softmax_rows_cols, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_matmul, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_blas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attention_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
