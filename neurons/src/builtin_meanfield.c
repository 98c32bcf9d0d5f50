// SPDX-License-Identifier: MIT
/*
 * The `mean-field` neuron (spec interference.md §4): pools a whole input
 * sub-tree to its mean B and solves μ = tanh(K·μ + h), K = β·n̄·J, h = β·B,
 * from the μ it kept as state, so for K > 1 it is bistable and shows
 * hysteresis. The solver (dmm_meanfield.h) brackets each monotone piece of
 * g(μ) = tanh(K·μ + h) − μ instead of iterating μ ← tanh(K·μ + h).
 */
#include <float.h>
#include <math.h>

#include "builtins.h"
#include "dmm_meanfield.h"

/*
 * Why brackets. Plain iteration converges at the rate |g'(μ) + 1| =
 * K·(1 − tanh²), which tends to 1 at the saddle-node (|h| → h_c) and at K → 1:
 * thousands of iterations for a few digits, and a truncated iteration jumps
 * branch too early. g has slope g' = K·sech²(K·μ + h) − 1, zero where
 * K·μ + h = ±a with a = atanh(s), s = sqrt(1 − 1/K). So for K > 1, g falls on
 * (−∞, c−], rises on [c−, c+] and falls on [c+, ∞), c± = (±a − h)/K; each
 * piece holds at most one root, the falling ones the stable roots. g(−1) > 0 >
 * g(1) (up to rounding), so a falling piece holds a root exactly when g
 * changes sign over its part of [−1, 1], and a bracket on it cannot fail.
 */

static double g_of(double k, double h, double m)
{
    return tanh(k * m + h) - m;
}

static double dg_of(double k, double h, double m)
{
    double t = tanh(k * m + h);
    return k * (1.0 - t * t) - 1.0;
}

/* atanh(s) for s = sqrt(1 − 1/k): 1 − s² = 1/k, so atanh(s) =
 * ln(1 + s) − ½·ln(1 − s²) = log1p(s) + ½·ln k, finite for every finite k
 * (atanh itself overflows once s rounds to 1). */
static double atanh_s(double k, double s)
{
    return log1p(s) + 0.5 * log(k);
}

/*
 * A root of g in [lo, hi], where g(lo) and g(hi) have opposite signs or one
 * is 0, g monotone between them: Newton steps kept inside the shrinking
 * bracket, bisection when a step would leave it (which it does next to a
 * double root, where g' → 0). Ends when g is 0, the bracket is a few ulps
 * wide, or a step no longer moves.
 */
static double root_in(double k, double h, double lo, double hi)
{
    double flo = g_of(k, h, lo), fhi = g_of(k, h, hi);
    if (flo == 0.0)
        return lo;
    if (fhi == 0.0)
        return hi;
    if ((flo > 0) == (fhi > 0)) /* only by rounding at a touching root */
        return fabs(flo) < fabs(fhi) ? lo : hi;
    double m = 0.5 * (lo + hi);
    for (int it = 0; it < 400; it++) {
        double fm = g_of(k, h, m);
        if (fm == 0.0)
            return m;
        if ((fm > 0) == (flo > 0))
            lo = m, flo = fm;
        else
            hi = m;
        double tol = 2 * DBL_EPSILON * fmax(fabs(lo), fabs(hi)) + DBL_MIN;
        if (hi - lo <= tol)
            break;
        double d = dg_of(k, h, m), next = m - fm / d;
        if (!(next > lo && next < hi)) /* also catches d == 0 (NaN, inf) */
            next = 0.5 * (lo + hi);
        if (next == m)
            break;
        m = next;
    }
    return m;
}

double dmm_meanfield_hc(double k)
{
    if (!(k > 1.0))
        return 0.0;
    double s = sqrt((k - 1.0) / k);
    if (s >= 0.5) /* K >= 4/3: K·s is at most 6 times h_c, little is lost */
        return k * s - atanh_s(k, s);
    /* K·s − atanh(s) = s(K − 1) − s³/3 − s⁵/5 − …, and K − 1 = K·s², so
     * h_c = s³(K − 1/3) − Σ_{n≥2} s^(2n+1)/(2n+1), without the cancellation
     * that costs the direct form up to half its digits as K → 1. For
     * s < 0.5 the terms after n = 30 are below 1e−18 of the first. */
    double s2 = s * s, p = s2 * s * s2, tail = 0.0;
    for (int n = 2; n <= 30; n++, p *= s2)
        tail += p / (2 * n + 1);
    return s2 * s * (k - 1.0 / 3.0) - tail;
}

double dmm_meanfield_mstar(double k)
{
    return k > 1.0 ? dmm_meanfield_solve(k, 0.0, 1.0, NULL) : 0.0;
}

double dmm_meanfield_solve(double k, double h, double mu0, bool *bistable)
{
    dmm_assert(isfinite(k) && isfinite(h));
    if (bistable)
        *bistable = false;
    if (!(k > 1.0)) /* g' = K·sech² − 1 <= 0: g falls everywhere */
        return root_in(k, h, -1.0, 1.0);
    double s = sqrt((k - 1.0) / k), a = atanh_s(k, s);
    double cm = (-a - h) / k, cp = (a - h) / k; /* cm < cp */
    double lo_end = fmin(cm, 1.0), hi_start = fmax(cp, -1.0);
    bool lower = cm > -1.0 && g_of(k, h, lo_end) <= 0.0;
    bool upper = cp < 1.0 && g_of(k, h, hi_start) >= 0.0;
    if (!lower && !upper) /* rounding only: g(−1) ≥ 0 ≥ g(1) holds */
        return root_in(k, h, -1.0, 1.0);
    if (!(lower && upper))
        return lower ? root_in(k, h, -1.0, lo_end)
                     : root_in(k, h, hi_start, 1.0);
    if (bistable)
        *bistable = true;
    /* Two stable roots: the relaxation from mu0 goes to the one on mu0's
     * side of the unstable root u in [cm, cp], where g rises, so mu0 > u
     * exactly when g(mu0) > 0. */
    bool go_up;
    if (mu0 <= cm)
        go_up = false;
    else if (mu0 >= cp)
        go_up = true;
    else {
        double gm = g_of(k, h, mu0);
        go_up = gm > 0.0 || (gm == 0.0 && h >= 0.0);
    }
    return go_up ? root_in(k, h, hi_start, 1.0) : root_in(k, h, -1.0, lo_end);
}

/* ---- the neuron ---------------------------------------------------------- */

enum { IN_FIELD, IN_BETA, IN_COUPLING, IN_NEIGHBOURS };
enum { OUT_MU, OUT_BISTABLE, OUT_MARGIN, OUT_H, OUT_K };

/* A scalar input: a bare number, 1 when absent. A map is refused rather than
 * reduced: K and h must not change silently because a stream gained a child. */
static int scalar_input(dmm_fire *f, size_t k, double *out)
{
    vv v = dmm_fire_in(f, k);
    if (!vv_is_scalar(v))
        return dmm__fire_failf(
            f, DMM_E_INVAL,
            "input %s must be a number, got a map with %zu children",
            f->type->desc->inputs[k], vv_nchildren(v));
    *out = vv_is_zero(v) ? 1.0 : v.num;
    return 0;
}

typedef struct mean_acc {
    double sum;
    size_t n;
} mean_acc;

static int mean_leaf(const vv_label *path, int depth, double x, void *ud)
{
    mean_acc *m = ud;
    m->sum += x;
    m->n++;
    return 0;
}

static int fire_mean_field(dmm_fire *f)
{
    /* Set by scalar_input; initialised because gcc -O3 cannot see it. */
    double beta = 1.0, coupling = 1.0, neighbours = 1.0;
    int rc;
    if ((rc = scalar_input(f, IN_BETA, &beta)) ||
        (rc = scalar_input(f, IN_COUPLING, &coupling)) ||
        (rc = scalar_input(f, IN_NEIGHBOURS, &neighbours)))
        return rc;
    mean_acc m = {0.0, 0};
    vv_foreach_leaf(dmm_fire_in(f, IN_FIELD), mean_leaf, &m);
    double field = m.n ? m.sum / (double)m.n : 0.0;
    double k = beta * neighbours * coupling, h = beta * field;
    if (!isfinite(field) || !isfinite(k) || !isfinite(h))
        return dmm__fire_failf(
            f, DMM_E_NONFINITE,
            "K = beta*neighbours*coupling or h = beta*mean(field) overflows "
            "(beta %g, coupling %g, neighbours %g, field sum %g over %zu "
            "leaves)",
            beta, coupling, neighbours, m.sum, m.n);

    bool bistable;
    double mu = dmm_meanfield_solve(k, h, f->state.num, &bistable);
    vv_label labels[5];
    vv kids[5];
    size_t n = 0;
    labels[n] = f->type->out[OUT_MU], kids[n++] = vv_number(mu);
    labels[n] = f->type->out[OUT_BISTABLE], kids[n++] = vv_number(bistable);
    if (k > 1.0)
        labels[n] = f->type->out[OUT_MARGIN],
        kids[n++] = vv_number(dmm_meanfield_hc(k) - fabs(h));
    labels[n] = f->type->out[OUT_H], kids[n++] = vv_number(h);
    labels[n] = f->type->out[OUT_K], kids[n++] = vv_number(k);
    /* bare numbers own no memory, so nothing leaks if this fails */
    if ((rc = vv_from_pairs(f->vc, 0.0, n, labels, kids, &f->output)))
        return dmm__fire_fail(f, rc);
    f->new_state = vv_number(mu);
    return 0;
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

const dmm_neuron_type dmm__builtin_meanfield[] = {
    {.name = "mean-field",
     .summary =
         "mean-field pooling (spec interference.md §4): B = mean of the "
         "stored scalars of field (a tensor of any rank; {} gives 0), "
         "K = beta*neighbours*coupling, h = beta*B; mu solves "
         "mu = tanh(K*mu + h), found by bracketing from the last mu (state), "
         "so for K > 1 and |h| < h_c(K) = sqrt(K(K-1)) - atanh(sqrt(1-1/K)) "
         "it stays on its branch (hysteresis) and jumps at |h| = h_c (from "
         "the unstable root itself, e.g. mu = 0 at h = 0 on the first "
         "firing, it takes the branch of h's sign, the upper one for 0). "
         "beta, coupling, neighbours: bare numbers, 1 when absent (so 0 "
         "cannot be given), a map is an error. Outputs mu, bistable (1 when "
         "two stable roots exist), margin = h_c - |h| (only when K > 1), and "
         "h and k as used; zeros are absent, as always",
     .inputs = NAMES("field", "beta", "coupling", "neighbours"),
     .outputs = NAMES("mu", "bistable", "margin", "h", "k"),
     .stateful = true,
     .fn = fire_mean_field},
    {.name = NULL},
};
