// SPDX-License-Identifier: MIT
/*
 * Algebraic laws of V-values, each checked on >= 10 000 random values from a
 * seeded splitmix64 generator (seed printed; DMM_TEST_SEED overrides it),
 * plus structure at the extremes: deep chains, 100 000 children, overflow to
 * infinity. Reference results are built from other primitives, never copied.
 */
#include "testutil.h"

#include <float.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_LAW   10000
#define NPOOL   8
#define MAXPATH 8
#define OK(x)   assert_int_equal((x), 0)

static const char *const pool_names[NPOOL] = {"a",        "b",   "c",  "ab",
                                              "\xc3\xa9", "k/l", "~0", "Z"};

typedef struct fx {
    tu_alloc alloc;
    vv_ctx *c;
    vv_label pool[NPOOL];
    uint64_t rng;
    int budget;  /* nodes left for the value being generated */
    bool wild;   /* any finite double, not only tame ones */
    size_t base; /* vv_ctx_bytes with no value alive */
} fx;

static uint64_t seed_value(void)
{
    const char *s = getenv("DMM_TEST_SEED");
    return s && *s ? strtoull(s, NULL, 0) : UINT64_C(0x5eed0fd3a7a11c0d);
}

static uint64_t next(fx *f)
{
    uint64_t z = (f->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}
static unsigned below(fx *f, unsigned n)
{
    return (unsigned)(next(f) % n);
}
static double unit(fx *f) /* [-1, 1) */
{
    return (double)(next(f) >> 11) * 0x1p-52 - 1.0;
}

/* Tame: dyadic, small integers, or |x| in [2^-20, 2^20]: sums of a few
 * cannot overflow or underflow. Wild: any finite double. May return 0. */
static double rnd_double(fx *f)
{
    if (f->wild && below(f, 3) == 0) {
        for (;;) {
            uint64_t bits = next(f);
            double x;
            memcpy(&x, &bits, sizeof x);
            if (isfinite(x))
                return x;
        }
    }
    switch (below(f, 4)) {
    case 0:
        return ((int)below(f, 33) - 16) / 8.0;
    case 1:
        return (int)below(f, 7) - 3;
    default:
        return unit(f) * ldexp(1.0, (int)below(f, 41) - 20);
    }
}

static vv gen_depth(fx *f, int d)
{
    double num = below(f, 2) ? rnd_double(f) : 0.0;
    if (d == 0 || f->budget <= 0)
        return vv_number(num);
    unsigned w = below(f, 9);
    if ((int)w > f->budget)
        w = (unsigned)f->budget;
    f->budget -= (int)w;
    vv_label labels[8];
    vv children[8];
    for (unsigned k = 0; k < w; k++) {
        labels[k] = f->pool[below(f, NPOOL)];
        children[k] = gen_depth(f, below(f, 2) ? d - 1 : (int)below(f, d));
    }
    vv out = VV_ZERO;
    OK(vv_from_pairs(f->c, num, w, labels, children, &out));
    return out;
}

/* new: a random value of depth <= 5, width <= 8, at most ~40 nodes. */
static vv gen(fx *f)
{
    f->budget = 40;
    return gen_depth(f, (int)below(f, 6));
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    vv_options o = {.alloc = tu_alloc_fn, .alloc_ud = &f->alloc};
    f->c = vv_ctx_new(&o);
    if (!f->c)
        return -1;
    for (int i = 0; i < NPOOL; i++)
        if (vv_intern_cstr(f->c, pool_names[i], &f->pool[i]) != 0)
            return -1;
    f->rng = seed_value();
    /* Whatever reading interns or caches once is not a leak later. */
    vv warm = VV_ZERO;
    static const char doc[] = "{\":number\": 1, \"a\": 2}";
    if (vv_parse(f->c, doc, sizeof doc - 1, NULL, &warm, NULL) != 0)
        return -1;
    vv_free(f->c, warm);
    f->base = vv_ctx_bytes(f->c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    vv_ctx_free(f->c);
    /* Everything the context allocated came back, with the right sizes. */
    size_t left = f->alloc.bytes;
    free(f);
    if (left != 0) {
        print_error("%zu bytes still allocated after vv_ctx_free\n", left);
        return -1;
    }
    return 0;
}

/* Every value made by a law has been freed (reference counts are right). */
static void assert_no_leak(fx *f)
{
    if (vv_ctx_bytes(f->c) != f->base)
        fail_msg("vv_ctx_bytes %zu, %zu with no value alive: a leak",
                 vv_ctx_bytes(f->c), f->base);
}

static vv add(fx *f, vv a, vv b)
{
    vv r = VV_ZERO;
    OK(vv_add(f->c, a, b, &r));
    return r;
}
static vv scale(fx *f, double k, vv a)
{
    vv r = VV_ZERO;
    OK(vv_scale(f->c, k, a, &r));
    return r;
}
/* new: sub placed at path (takes sub). Built with vv_from_pairs, so that a
 * fault of vv_wrap shows in the test of vv_wrap only. */
static vv at_path(fx *f, const vv_label *p, size_t n, vv sub)
{
    for (size_t i = n; i-- > 0;) {
        vv w = VV_ZERO;
        OK(vv_from_pairs(f->c, 0.0, 1, &p[i], &sub, &w)); /* takes sub */
        sub = w;
    }
    return sub;
}
/* A random path of length <= 4 that mostly follows v's children. */
static size_t rnd_path(fx *f, vv v, vv_label *p)
{
    size_t n = below(f, 5);
    for (size_t i = 0; i < n; i++) {
        size_t nc = vv_nchildren(v);
        if (nc && below(f, 4)) {
            size_t pick = below(f, (unsigned)nc), k = 0;
            vv_iter it;
            vv ch = VV_ZERO;
            vv_iter_init(&it, v);
            while (vv_iter_next(&it, &p[i], &ch) && k++ < pick)
                ;
            v = ch;
        } else {
            p[i] = f->pool[below(f, NPOOL)];
            v = vv_child(v, p[i]);
        }
    }
    return n;
}
static char *str(fx *f, vv v)
{
    char *s = vv_to_string(f->c, v);
    assert_non_null(s);
    return s;
}
static void expect_close(fx *f, vv got, vv want, double abs_tol, long i,
                         const char *law)
{
    if (vv_close(got, want, 1e-12, abs_tol))
        return;
    char *g = str(f, got), *w = str(f, want);
    fail_msg("%s, iteration %ld:\n   got %s\n  want %s", law, i, g, w);
}
static void expect_equal(fx *f, vv got, vv want, long i, const char *law)
{
    if (vv_equal(got, want))
        return;
    char *g = str(f, got), *w = str(f, want);
    fail_msg("%s, iteration %ld:\n   got %s\n  want %s", law, i, g, w);
}

/* ---- vector-space laws --------------------------------------------------- */

static void test_add_laws(void **state)
{
    fx *f = *state;
    print_message("seed 0x%016" PRIx64 "\n", f->rng);
    for (long i = 0; i < N_LAW; i++) {
        vv a = gen(f), b = gen(f), x = gen(f);
        tu_assert_canonical(f->c, a);
        vv ab = add(f, a, b), ba = add(f, b, a);
        tu_assert_canonical(f->c, ab);
        expect_equal(f, ab, ba, i, "a+b = b+a");
        vv ab_x = add(f, ab, x), bx = add(f, b, x), a_bx = add(f, a, bx);
        double tol = 1e-12 * (vv_max_norm(a) + vv_max_norm(b) + vv_max_norm(x));
        expect_close(f, ab_x, a_bx, tol, i, "(a+b)+x = a+(b+x)");
        vv z = add(f, a, VV_ZERO);
        expect_equal(f, z, a, i, "a+0 = a");
        vv na = scale(f, -1.0, a), d = add(f, a, na);
        if (!vv_is_zero(d) || d.map != NULL)
            fail_msg("a + (-1)a is not canonical zero, iteration %ld: %s", i,
                     str(f, d));
        vv_free(f->c, a), vv_free(f->c, b), vv_free(f->c, x);
        vv_free(f->c, ab), vv_free(f->c, ba), vv_free(f->c, ab_x);
        vv_free(f->c, bx), vv_free(f->c, a_bx), vv_free(f->c, z);
        vv_free(f->c, na), vv_free(f->c, d);
    }
    assert_no_leak(f);
}

static void test_scale_laws(void **state)
{
    fx *f = *state;
    for (long i = 0; i < N_LAW; i++) {
        vv a = gen(f), b = gen(f);
        double k = rnd_double(f), j = rnd_double(f);
        vv ab = add(f, a, b), k_ab = scale(f, k, ab);
        tu_assert_canonical(f->c, k_ab);
        vv ka = scale(f, k, a), kb = scale(f, k, b), ka_kb = add(f, ka, kb);
        double tol = 1e-12 * fabs(k) * (vv_max_norm(a) + vv_max_norm(b));
        expect_close(f, k_ab, ka_kb, tol, i, "k(a+b) = ka+kb");
        vv ja = scale(f, j, a), k_ja = scale(f, k, ja),
           kj_a = scale(f, k * j, a);
        expect_close(f, k_ja, kj_a, 0.0, i, "k(ja) = (kj)a");
        if (vv_max_norm(ka) != fabs(k) * vv_max_norm(a))
            fail_msg("max_norm(ka) = %.17g, |k| max_norm(a) = %.17g (it %ld)",
                     vv_max_norm(ka), fabs(k) * vv_max_norm(a), i);
        vv one = scale(f, 1.0, a), zero = scale(f, 0.0, a);
        expect_equal(f, one, a, i, "1a = a");
        assert_true(vv_is_zero(zero));
        vv_free(f->c, a), vv_free(f->c, b), vv_free(f->c, ab);
        vv_free(f->c, k_ab), vv_free(f->c, ka), vv_free(f->c, kb);
        vv_free(f->c, ka_kb), vv_free(f->c, ja), vv_free(f->c, k_ja);
        vv_free(f->c, kj_a), vv_free(f->c, one), vv_free(f->c, zero);
    }
    assert_no_leak(f);
}

static void test_axpy(void **state)
{
    fx *f = *state;
    for (long i = 0; i < N_LAW; i++) {
        vv a = gen(f), b = gen(f);
        double w = rnd_double(f);
        char *sa = str(f, a), *sb = str(f, b);
        vv wb = scale(f, w, b), want = add(f, a, wb);
        double tol = 1e-12 * (vv_max_norm(a) + fabs(w) * vv_max_norm(b));
        /* Shared accumulator: the other reference must not see the update. */
        vv acc = vv_ref(a);
        OK(vv_axpy(f->c, &acc, w, b));
        tu_assert_canonical(f->c, acc);
        expect_close(f, acc, want, tol, i, "axpy(a, w, b) = a + wb");
        char *sa2 = str(f, a), *sb2 = str(f, b);
        if (strcmp(sa, sa2))
            fail_msg("axpy changed a shared value (copy-on-write), it %ld:\n"
                     "  before %s\n  after  %s",
                     i, sa, sa2);
        assert_string_equal(sb, sb2);
        /* Now acc is (likely) unshared: updated in place, same laws. */
        vv want2 = add(f, want, wb);
        OK(vv_axpy(f->c, &acc, w, b));
        tu_assert_canonical(f->c, acc);
        expect_close(f, acc, want2, 2 * tol + 1e-12 * fabs(w) * vv_max_norm(b),
                     i, "axpy twice");
        /* acc - acc through axpy is canonical zero. */
        vv self = vv_ref(acc);
        OK(vv_axpy(f->c, &acc, -1.0, self));
        if (!vv_is_zero(acc))
            fail_msg("axpy(acc, -1, acc) not zero (it %ld): %s", i,
                     str(f, acc));
        vv_free(f->c, self);
        free(sa), free(sb), free(sa2), free(sb2);
        vv_free(f->c, a), vv_free(f->c, b), vv_free(f->c, wb);
        vv_free(f->c, want), vv_free(f->c, want2), vv_free(f->c, acc);
    }
    assert_no_leak(f);
}

static void test_sum(void **state)
{
    fx *f = *state;
    for (long i = 0; i < N_LAW; i++) {
        size_t n = below(f, 7);
        vv terms[6], want = VV_ZERO;
        double w[6], tol = 0;
        for (size_t k = 0; k < n; k++) {
            terms[k] = gen(f);
            w[k] = below(f, 4) ? rnd_double(f) : 1.0;
            vv t = scale(f, w[k], terms[k]), s = add(f, want, t);
            vv_free(f->c, t), vv_free(f->c, want);
            want = s;
            tol += 1e-12 * fabs(w[k]) * vv_max_norm(terms[k]);
        }
        vv got = vv_number(42);
        OK(vv_sum(f->c, n, w, terms, &got));
        tu_assert_canonical(f->c, got);
        expect_close(f, got, want, tol, i, "vv_sum = repeated add");
        vv_free(f->c, got);
        if (n > 0) {
            double one = 1.0;
            OK(vv_sum(f->c, 1, &one, terms, &got));
            expect_equal(f, got, terms[0], i, "sum of one weight-1 term");
            /* Documented: a reference to the term, not a copy. */
            assert_ptr_equal(got.map, terms[0].map);
            vv_free(f->c, got);
        }
        for (size_t k = 0; k < n; k++)
            vv_free(f->c, terms[k]);
        vv_free(f->c, want);
    }
    assert_no_leak(f);
}

/* ---- products ------------------------------------------------------------ */

typedef struct leafref {
    fx *f;
    vv m;
    vv acc;      /* lincomb reference: terms added at the root */
    vv acc_mask; /* mult-mask reference: terms kept at their path */
    double dot;  /* Σ x · (m's scalar at the same path) */
    double maxabs;
    size_t leaves;
} leafref;

static int leaf_ref(const vv_label *path, int depth, double x, void *ud)
{
    leafref *r = ud;
    fx *f = r->f;
    assert_true(x != 0.0 && isfinite(x));
    vv sub = vv_get(r->m, path, (size_t)depth);
    OK(vv_axpy(f->c, &r->acc, x, sub));
    vv t = scale(f, x, sub);
    vv placed = at_path(f, path, (size_t)depth, t);
    OK(vv_axpy(f->c, &r->acc_mask, 1.0, placed));
    vv_free(f->c, placed);
    r->dot += x * sub.num;
    r->maxabs = fmax(r->maxabs, fabs(x));
    r->leaves++;
    return 0;
}

static void test_products(void **state)
{
    fx *f = *state;
    for (long i = 0; i < N_LAW; i++) {
        vv row = gen(f), m = gen(f);
        char *srow = str(f, row), *sm = str(f, m);
        leafref r = {f, m, VV_ZERO, VV_ZERO, 0, 0, 0};
        assert_int_equal(vv_foreach_leaf(row, leaf_ref, &r), 0);
        double tol =
            1e-12 * vv_max_norm(row) * vv_max_norm(m) * (double)(r.leaves + 1);
        vv lc = vv_number(42), mm = vv_number(42);
        OK(vv_lincomb(f->c, row, m, &lc));
        tu_assert_canonical(f->c, lc);
        expect_close(f, lc, r.acc, tol, i, "lincomb = Σ w·(m at p)");
        OK(vv_mult_mask(f->c, row, m, &mm));
        tu_assert_canonical(f->c, mm);
        expect_close(f, mm, r.acc_mask, tol, i, "mask ⊙ m = Σ w·(m at p) at p");
        double d1 = 0, d2 = 0;
        OK(vv_dot(f->c, row, m, &d1));
        OK(vv_dot(f->c, m, row, &d2));
        if (!(fabs(d1 - r.dot) <= tol && fabs(d1 - d2) <= tol))
            fail_msg("dot (it %ld): dot(a,b) %.17g dot(b,a) %.17g want %.17g",
                     i, d1, d2, r.dot);
        if (vv_max_norm(row) != r.maxabs)
            fail_msg("max_norm %.17g, largest |leaf| %.17g (it %ld)",
                     vv_max_norm(row), r.maxabs, i);
        char *srow2 = str(f, row), *sm2 = str(f, m);
        assert_string_equal(srow, srow2);
        assert_string_equal(sm, sm2);

        /* A row of one leaf w at path p selects w·(m at p), exactly. */
        vv_label p[MAXPATH];
        size_t n = rnd_path(f, m, p);
        double w = rnd_double(f);
        vv one = at_path(f, p, n, vv_number(w));
        vv got = VV_ZERO, want = scale(f, w, vv_get(m, p, n));
        OK(vv_lincomb(f->c, one, m, &got));
        expect_equal(f, got, want, i, "lincomb(w at p, m) = w·get(m, p)");
        vv_free(f->c, got);

        free(srow), free(sm), free(srow2), free(sm2);
        vv_free(f->c, row), vv_free(f->c, m), vv_free(f->c, r.acc);
        vv_free(f->c, r.acc_mask), vv_free(f->c, lc), vv_free(f->c, mm);
        vv_free(f->c, one), vv_free(f->c, want);
    }
    assert_no_leak(f);
}

/* ---- structure ----------------------------------------------------------- */

static void test_json_roundtrip(void **state)
{
    fx *f = *state;
    f->wild = true;
    for (long i = 0; i < N_LAW; i++) {
        vv a = gen(f), b = VV_ZERO;
        char *s = str(f, a);
        dmm_error err;
        int rc = vv_parse(f->c, s, strlen(s), NULL, &b, &err);
        if (rc != 0)
            fail_msg("re-reading %s: %s %s", s, err.path, err.text);
        expect_equal(f, b, a, i, "parse(print(a)) = a");
        char *s2 = str(f, b);
        assert_string_equal(s, s2);
        free(s), free(s2);
        vv_free(f->c, a), vv_free(f->c, b);
    }
    f->wild = false;
    assert_no_leak(f);
}

static bool label_less(fx *f, vv_label x, vv_label y)
{
    size_t nx, ny;
    const char *sx = vv_label_str(f->c, x, &nx),
               *sy = vv_label_str(f->c, y, &ny);
    int c = memcmp(sx, sy, nx < ny ? nx : ny);
    return c < 0 || (c == 0 && nx < ny);
}

static void check_children(fx *f, vv v)
{
    size_t n = vv_nchildren(v), k = 0;
    vv_label *ls = calloc(n + 1, sizeof *ls);
    vv *cs = calloc(n + 1, sizeof *cs);
    assert_non_null(ls);
    assert_non_null(cs);
    vv_children_sorted(f->c, v, ls, cs);
    for (k = 0; k < n; k++) {
        if (k > 0 && !label_less(f, ls[k - 1], ls[k]))
            fail_msg("vv_children_sorted: \"%s\" before \"%s\"",
                     vv_label_str(f->c, ls[k - 1], NULL),
                     vv_label_str(f->c, ls[k], NULL));
        assert_true(vv_equal(cs[k], vv_child(v, ls[k])));
    }
    vv_iter it;
    vv_label l, prev = 0;
    vv ch;
    k = 0;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &ch)) {
        if (k > 0 && l <= prev)
            fail_msg("vv_iter: label %u after %u", (unsigned)l, (unsigned)prev);
        assert_true(vv_equal(ch, vv_child(v, l)));
        assert_false(vv_is_zero(ch));
        prev = l;
        k++;
    }
    assert_int_equal(k, n);
    free(ls);
    free(cs);
}

static int depth_of(vv v)
{
    int d = 0;
    vv_iter it;
    vv_label l;
    vv ch;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &ch)) {
        int cd = 1 + depth_of(ch);
        d = cd > d ? cd : d;
    }
    return d;
}

static void test_set_get(void **state)
{
    fx *f = *state;
    for (long i = 0; i < N_LAW; i++) {
        vv v = gen(f), sub = below(f, 4) ? gen(f) : VV_ZERO;
        check_children(f, v);
        assert_int_equal(vv_depth(v), depth_of(v));
        vv_label p[MAXPATH];
        size_t n = rnd_path(f, v, p);
        char *sv = str(f, v);
        vv out = vv_number(42);
        OK(vv_set(f->c, v, p, n, sub, &out));
        tu_assert_canonical(f->c, out);
        expect_equal(f, vv_get(out, p, n), sub, i, "get(set(v, p, s), p) = s");
        /* Elsewhere nothing changed: out = v - (v at p) + s (exact). */
        vv old = at_path(f, p, n, vv_ref(vv_get(v, p, n)));
        vv news = at_path(f, p, n, vv_ref(sub));
        vv want = vv_ref(v);
        OK(vv_axpy(f->c, &want, -1.0, old));
        OK(vv_axpy(f->c, &want, 1.0, news));
        if (!vv_equal(out, want)) {
            char *sv0 = str(f, v), *ss = str(f, sub);
            print_error("v = %s\nsub = %s\npath =", sv0, ss);
            for (size_t q = 0; q < n; q++)
                print_error(" \"%s\"", vv_label_str(f->c, p[q], NULL));
            print_error("\nv - (v at p) = %s\n", str(f, old));
        }
        expect_equal(f, out, want, i, "set changes only the subtree at p");
        assert_int_equal(vv_depth(out), depth_of(out));
        char *sv2 = str(f, v);
        if (strcmp(sv, sv2))
            fail_msg("vv_set changed its input: %s became %s", sv, sv2);
        /* Copies only the path: the root's other children are shared. */
        if (n > 0) {
            vv_iter it;
            vv_label l;
            vv ch;
            vv_iter_init(&it, v);
            while (vv_iter_next(&it, &l, &ch))
                if (l != p[0] && ch.map)
                    assert_ptr_equal(vv_child(out, l).map, ch.map);
        }
        /* vv_wrap agrees with vv_from_pairs, depth cache included. */
        vv wr = VV_ZERO, wp = VV_ZERO, vr = vv_ref(v), ws = VV_ZERO;
        vv_label l0 = f->pool[below(f, NPOOL)];
        OK(vv_wrap(f->c, 0.25, l0, v, &wr));
        OK(vv_from_pairs(f->c, 0.25, 1, &l0, &vr, &wp));
        expect_equal(f, wr, wp, i, "wrap = from_pairs of one child");
        assert_int_equal(vv_depth(wr), depth_of(wr));
        OK(vv_add(f->c, wr, sub, &ws));
        vv wps = add(f, wp, sub);
        expect_equal(f, ws, wps, i, "wrap(v) + s = from_pairs(v) + s");
        vv_free(f->c, wr), vv_free(f->c, wp), vv_free(f->c, ws);
        vv_free(f->c, wps);
        free(sv), free(sv2);
        vv_free(f->c, v), vv_free(f->c, sub), vv_free(f->c, out);
        vv_free(f->c, old), vv_free(f->c, news), vv_free(f->c, want);
    }
    assert_no_leak(f);
}

static void test_measure(void **state)
{
    fx *f = *state;
    vv v =
        tu_vv(f->c, "{\":number\": 1, \"a\": {\"b\": 2, \"c\": -3}, \"Z\": 4}");
    vv_stats st;
    vv_measure(v, &st);
    assert_int_equal(st.leaves, 4);
    assert_int_equal(st.nodes, 5); /* root, a, a/b, a/c, Z */
    assert_int_equal(st.depth, 2);
    assert_int_equal(vv_depth(v), 2);
    assert_int_equal(vv_nchildren(v), 2);
    vv_measure(VV_ZERO, &st);
    assert_int_equal(st.leaves, 0);
    assert_int_equal(st.nodes, 1);
    assert_int_equal(st.depth, 0);
    vv_free(f->c, v);
    assert_no_leak(f);
}

static void test_labels(void **state)
{
    fx *f = *state;
    vv_label x, y, z;
    size_t before = vv_label_count(f->c), len;
    OK(vv_intern(f->c, "hello world", 5, &x));
    OK(vv_intern_cstr(f->c, "hello", &y));
    assert_int_equal(x, y);
    assert_int_equal(vv_label_count(f->c), before + 1);
    assert_int_equal(x, before); /* labels are 0 .. count-1 in intern order */
    assert_string_equal(vv_label_str(f->c, x, &len), "hello");
    assert_int_equal(len, 5);
    OK(vv_label_find(f->c, "hello", 5, &z));
    assert_int_equal(z, x);
    assert_int_equal(vv_label_find(f->c, "hellO", 5, &z), DMM_E_NOTFOUND);
    assert_int_equal(vv_label_count(f->c), before + 1);
    for (int i = 0; i < NPOOL; i++)
        assert_string_equal(vv_label_str(f->c, f->pool[i], NULL),
                            pool_names[i]);
    /* max_label_len bounds interning. */
    vv_options o = {.max_label_len = 4};
    vv_ctx *c = vv_ctx_new(&o);
    assert_non_null(c);
    OK(vv_intern_cstr(c, "abcd", &x));
    assert_int_equal(vv_intern_cstr(c, "abcde", &y), DMM_E_LIMIT);
    assert_int_equal(vv_label_count(c), 1);
    vv_ctx_free(c);
}

/* ---- depth --------------------------------------------------------------- */

/* new: a chain l/l/.../l = 1 of the given depth, built with vv_wrap or,
 * when by_pairs, with vv_from_pairs. */
static vv chain(vv_ctx *c, vv_label l, int depth, bool by_pairs)
{
    vv cur = vv_number(1.0);
    for (int i = 0; i < depth; i++) {
        vv n = VV_ZERO;
        if (by_pairs) {
            OK(vv_from_pairs(c, 0.0, 1, &l, &cur, &n)); /* takes cur */
        } else {
            OK(vv_wrap(c, 0.0, l, cur, &n));
            vv_free(c, cur);
        }
        cur = n;
    }
    return cur;
}

/* new: {l0: {l1: child}} made by vv_wrap (child borrowed). */
static vv wrap2(vv_ctx *c, vv_label l0, vv_label l1, vv child)
{
    vv in, out;
    OK(vv_wrap(c, 0.0, l1, child, &in));
    OK(vv_wrap(c, 0.0, l0, in, &out));
    vv_free(c, in);
    return out;
}

/* vv_rewrap writes a chain of one-entry maps over in place, what vv_wrap
 * makes (depth cache included); what it cannot take it leaves as it was:
 * a node held twice, two entries, a scalar leaf given a map, too short a
 * chain, a zero child, a result too deep. */
static void test_rewrap(void **state)
{
    fx *f = *state;
    vv_ctx *c = f->c;
    vv_label a = f->pool[0], b = f->pool[1], d = f->pool[2];
    vv x, y, yin;
    OK(vv_wrap(c, 0.0, d, vv_number(2.5), &x));   /* {d: 2.5} */
    OK(vv_wrap(c, 0.0, b, vv_number(1.0), &yin)); /* {a: {b: 1}} */
    OK(vv_wrap(c, 0.0, a, yin, &y));
    vv v = wrap2(c, a, a, x);
    vv_map *at = v.map;
    struct {
        vv_label l0, l1;
        vv child;
    } step[] = {
        {b, d, y}, {b, d, y}, {a, a, x}, {a, b, vv_number(3.0)}, {d, d, x}};
    for (size_t i = 0; i < sizeof step / sizeof *step; i++) {
        vv_label path[2] = {step[i].l0, step[i].l1};
        vv below = VV_ZERO;
        assert_true(vv_rewrap(c, v, path, 2, step[i].child, &below));
        assert_ptr_equal(below.map, vv_child(v, step[i].l0).map);
        assert_true(below.num == 0.0);
        vv want = wrap2(c, step[i].l0, step[i].l1, step[i].child);
        assert_true(vv_equal(v, want));
        assert_int_equal(vv_depth(v), depth_of(want));
        assert_int_equal(vv_depth(v), vv_depth(want));
        assert_ptr_equal(v.map, at); /* in place */
        vv_free(c, want);
    }
    /* refused, v untouched ({d: {d: x}}) */
    vv want = wrap2(c, d, d, x);
    vv_label ab[3] = {a, b, a};
    vv held = vv_ref(v); /* the top held twice */
    assert_false(vv_rewrap(c, v, ab, 2, y, NULL));
    vv_free(c, held);
    held = vv_ref(vv_child(v, d)); /* the inner node held twice */
    assert_false(vv_rewrap(c, v, ab, 2, y, NULL));
    vv_free(c, held);
    assert_false(vv_rewrap(c, v, ab, 3, y, NULL));         /* x: scalars */
    assert_false(vv_rewrap(c, v, ab, 2, VV_ZERO, NULL));   /* zero */
    assert_false(vv_rewrap(c, v, ab, 0, y, NULL));         /* no path */
    assert_false(vv_rewrap(c, yin, ab, 1, VV_ZERO, NULL)); /* zero */
    vv deep = chain(c, a, vv_ctx_max_depth(c) - 1, false);
    assert_false(vv_rewrap(c, v, ab, 2, deep, NULL)); /* max + 1 deep */
    assert_true(vv_equal(v, want));
    assert_int_equal(vv_depth(v), depth_of(want));
    vv_free(c, deep);
    vv two; /* two entries */
    vv kids[2] = {vv_number(1.0), vv_number(2.0)};
    OK(vv_from_pairs(c, 0.0, 2, ab, kids, &two));
    assert_false(vv_rewrap(c, two, ab, 1, vv_number(5.0), NULL));
    vv sc = wrap2(c, a, b, vv_number(3.0)); /* a leaf of scalars */
    assert_false(vv_rewrap(c, sc, ab, 2, x, NULL));
    assert_true(vv_rewrap(c, sc, ab, 2, vv_number(4.0), NULL));
    vv want_sc = wrap2(c, a, b, vv_number(4.0));
    assert_true(vv_equal(sc, want_sc));
    vv_free(c, two), vv_free(c, sc), vv_free(c, want_sc);
    vv_free(c, want), vv_free(c, v), vv_free(c, x), vv_free(c, y);
    vv_free(c, yin);
    assert_no_leak(f);
}

static void deep_limit(fx *f, bool by_pairs)
{
    vv_ctx *c = f->c;
    int max = vv_ctx_max_depth(c);
    assert_int_equal(max, VV_DEFAULT_MAX_DEPTH);
    vv small = chain(c, f->pool[0], 3, by_pairs);
    assert_int_equal(vv_depth(small), 3);
    vv_free(c, small);
    vv deep = chain(c, f->pool[0], max, by_pairs);
    assert_int_equal(vv_depth(deep), max);
    /* One more level is refused, by every constructor, outputs untouched. */
    vv out = vv_number(42);
    assert_int_equal(vv_wrap(c, 0.0, f->pool[1], deep, &out), DMM_E_DEPTH);
    assert_true(out.num == 42 && out.map == NULL);
    assert_int_equal(vv_set(c, VV_ZERO, &f->pool[1], 1, deep, &out),
                     DMM_E_DEPTH);
    assert_true(out.num == 42 && out.map == NULL);
    vv_label lab = f->pool[1];
    vv child = vv_ref(deep); /* taken by vv_from_pairs even on error */
    assert_int_equal(vv_from_pairs(c, 0.0, 1, &lab, &child, &out), DMM_E_DEPTH);
    assert_true(out.num == 42 && out.map == NULL);
    /* A max-depth value still works with the ordinary operations. */
    vv two = add(f, deep, deep);
    assert_int_equal(vv_depth(two), max);
    vv_label path[VV_DEFAULT_MAX_DEPTH];
    for (int i = 0; i < max; i++)
        path[i] = f->pool[0];
    assert_true(vv_get(two, path, (size_t)max).num == 2.0);
    char *s = str(f, deep);
    vv back = tu_vv(c, s);
    assert_true(vv_equal(back, deep));
    free(s);
    vv_free(c, back), vv_free(c, two), vv_free(c, deep);
    assert_no_leak(f);
}

static void test_deep_wrap(void **state)
{
    deep_limit(*state, false);
}

static void test_deep_pairs(void **state)
{
    deep_limit(*state, true);
}

typedef struct deep_job {
    vv_ctx *c;
    vv v;
} deep_job;

static void *free_on_small_stack(void *arg)
{
    deep_job *j = arg;
    vv_free(j->c, j->v);
    return NULL;
}

/* Freeing is iterative: a chain as deep as the context allows, freed on a
 * 256 KiB stack where one frame per level could not fit. */
static void test_deep_free(void **state)
{
    (void)state;
    tu_alloc a = {0};
    vv_options o = {.alloc = tu_alloc_fn, .alloc_ud = &a, .max_depth = 300000};
    vv_ctx *big = vv_ctx_new(&o);
    assert_non_null(big);
    int max = vv_ctx_max_depth(big); /* may be capped below what was asked */
    print_message("max_depth 300000 asked, %d given\n", max);
    assert_true(max >= 20000 && max <= 300000);
    vv_label l = tu_label(big, "x");
    deep_job j = {big, chain(big, l, max, true)};
    assert_int_equal(vv_depth(j.v), max);
    vv extra = vv_ref(j.v);
    vv_free(big, extra);
    pthread_attr_t attr;
    pthread_t th;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    assert_int_equal(pthread_create(&th, &attr, free_on_small_stack, &j), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
    vv_ctx_free(big);
    assert_int_equal(a.bytes, 0);
}

/* ---- the default allocator's small blocks -------------------------------- */

typedef struct small_job {
    vv_ctx *c;
    vv_label l[24];
    unsigned seed;
    int bad;
} small_job;

/* Values of 1 to 24 children (nodes of many small sizes; mostly 1 to 3, so
 * that the threads take from the same lists) made, checked and freed in a
 * shuffled order, 200 000 times. */
static void *small_churn(void *arg)
{
    small_job *j = arg;
    enum { LIVE = 16 };
    vv live[LIVE] = {{0}};
    double want[LIVE] = {0};
    size_t kids[LIVE] = {0};
    unsigned r = j->seed;
    for (int it = 0; it < 200000; it++) {
        r = r * 1103515245u + 12345u;
        size_t slot = (r >> 8) % LIVE,
               n = 1 + (r >> 16) % ((r >> 28) == 0 ? 24 : 3);
        if (!vv_is_zero(live[slot])) {
            if (vv_nchildren(live[slot]) != kids[slot] ||
                vv_child(live[slot], j->l[kids[slot] - 1]).num != want[slot])
                j->bad++;
            vv_free(j->c, live[slot]);
        }
        vv kid[24];
        for (size_t i = 0; i < n; i++)
            kid[i] = vv_number((double)(it + 1) + (double)i / 32);
        kids[slot] = n;
        want[slot] = kid[n - 1].num; /* vv_from_pairs takes kid */
        if (vv_from_pairs(j->c, 0.0, n, j->l, kid, &live[slot]))
            j->bad++;
    }
    for (size_t i = 0; i < LIVE; i++)
        vv_free(j->c, live[i]);
    return NULL;
}

/* The small blocks a context keeps are shared by its threads: two threads
 * making and freeing values of one context each get blocks of their own
 * (a block given twice breaks a value, or ASan reports it), and the bytes
 * counted come back to where they were. */
static void test_small_blocks_threads(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    small_job j[2] = {{.c = c, .seed = 1}, {.c = c, .seed = 2}};
    for (int i = 0; i < 24; i++) {
        char name[8];
        snprintf(name, sizeof name, "k%d", i);
        j[0].l[i] = j[1].l[i] = tu_label(c, name);
    }
    size_t before = vv_ctx_bytes(c);
    pthread_t th[2];
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, small_churn, &j[t]), 0);
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    assert_int_equal(j[0].bad + j[1].bad, 0);
    assert_int_equal(vv_ctx_bytes(c), before);
    vv_ctx_free(c);
}

/* The small blocks kept are bounded: 4.8 MB of one-child values freed give
 * back all but 64 KiB (malloc's chunks of them: about 96 KiB) to the heap. */
static void test_small_blocks_bounded(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    vv_label l = tu_label(c, "x");
    enum { N = 100000 };
    vv *v = malloc(N * sizeof *v);
    assert_non_null(v);
    size_t heap0 = mallinfo2().uordblks;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(vv_wrap(c, 0.0, l, vv_number((double)i + 1), &v[i]),
                         0);
    size_t heap1 = mallinfo2().uordblks;
    for (size_t i = 0; i < N; i++)
        vv_free(c, v[i]);
    size_t heap2 = mallinfo2().uordblks;
    print_message("%zu values: heap +%zu made, +%zu after freeing\n", (size_t)N,
                  heap1 - heap0, heap2 - heap0);
    free(v);
    vv_ctx_free(c);
    if (heap1 == heap0) /* AddressSanitizer's allocator: mallinfo is blind */
        skip();
    assert_true(heap1 - heap0 >= (size_t)N * 32);
    assert_true(heap2 - heap0 <= (size_t)128 << 10);
}

/* ---- non-finite results -------------------------------------------------- */

static double ret_nan(double x, void *ud)
{
    (void)ud;
    return x > 1.5 ? NAN : x;
}
static double ret_inf(double x, void *ud)
{
    (void)ud;
    return x < 0 ? -INFINITY : x;
}
static double keep_big(double x, void *ud)
{
    return fabs(x) > *(double *)ud ? 2 * x : 0.0;
}

#define EXPECT_NONFINITE(call)                                                 \
    do {                                                                       \
        vv out_ = vv_number(42);                                               \
        assert_int_equal(call, DMM_E_NONFINITE);                               \
        assert_true(out_.num == 42 && out_.map == NULL);                       \
    } while (0)

static void test_nonfinite(void **state)
{
    fx *f = *state;
    vv_ctx *c = f->c;
    vv big = tu_vv(c, "{\"a\": 1e300, \"b\": {\"c\": -1e300}}");
    vv bare = vv_number(1e300);
    vv small = tu_vv(c, "{\"a\": 1, \"b\": {\"c\": 2, \"ab\": -3}}");
    EXPECT_NONFINITE(vv_scale(c, 1e300, big, &out_));
    EXPECT_NONFINITE(vv_scale(c, -1e300, bare, &out_));
    EXPECT_NONFINITE(vv_apply(c, small, ret_nan, NULL, &out_));
    EXPECT_NONFINITE(vv_apply(c, small, ret_inf, NULL, &out_));
    /* A finite apply keeps the value canonical: zeros it returns vanish. */
    vv out = VV_ZERO;
    double cut = 1.5;
    OK(vv_apply(c, small, keep_big, &cut, &out));
    tu_assert_canonical(c, out);
    vv want = tu_vv(c, "{\"b\": {\"c\": 4, \"ab\": -6}}");
    assert_true(vv_equal(out, want));
    vv_free(c, out), vv_free(c, want);
    /* The invariant "no NaN or infinity anywhere" holds for every operation
     * that can overflow; the inputs are left as they were. */
    vv huge = tu_vv(c, "{\"a\": 1.5e308}");
    EXPECT_NONFINITE(vv_add(c, huge, huge, &out_));
    vv acc = vv_ref(huge);
    char *s0 = str(f, huge);
    assert_int_equal(vv_axpy(c, &acc, 1.0, huge), DMM_E_NONFINITE);
    char *s1 = str(f, acc);
    assert_string_equal(s0, s1);
    free(s1);
    vv_free(c, acc);
    acc = tu_vv(c, "{\"a\": 1.5e308}"); /* unshared: the in-place path */
    assert_int_equal(vv_axpy(c, &acc, 1.0, huge), DMM_E_NONFINITE);
    s1 = str(f, acc);
    assert_string_equal(s0, s1);
    free(s1);
    vv_free(c, acc);
    /* Unshared and several keys: the first key's sum is fine, the second
     * overflows. The contract (vv.h): an unshared accumulator may keep part
     * of the update but stays canonical and finite; a reference kept by the
     * caller makes the update copy, and that reference is untouched. */
    free(s0);
    acc = tu_vv(c, "{\"a\": 1, \"b\": 1.5e308}");
    vv other = tu_vv(c, "{\"a\": 1, \"b\": 1.5e308}");
    assert_int_equal(vv_axpy(c, &acc, 1.0, other), DMM_E_NONFINITE);
    tu_assert_canonical(c, acc);
    vv_free(c, acc);
    acc = tu_vv(c, "{\"a\": 1, \"b\": 1.5e308}");
    vv kept = vv_ref(acc);
    s0 = str(f, kept);
    assert_int_equal(vv_axpy(c, &acc, 1.0, other), DMM_E_NONFINITE);
    tu_assert_canonical(c, acc);
    s1 = str(f, kept);
    if (strcmp(s0, s1))
        fail_msg("failed vv_axpy changed a kept reference: %s became %s", s0,
                 s1);
    free(s1);
    free(s0);
    vv_free(c, kept);
    vv_free(c, other);
    s0 = str(f, huge);
    vv_free(c, acc);
    double w2[2] = {1, 1};
    vv t2[2] = {huge, huge};
    EXPECT_NONFINITE(vv_sum(c, 2, w2, t2, &out_));
    vv row = tu_vv(c, "{\"a\": 1e10}");
    EXPECT_NONFINITE(vv_lincomb(c, row, huge, &out_));
    EXPECT_NONFINITE(vv_mult_mask(c, row, huge, &out_));
    double d = 42;
    assert_int_equal(vv_dot(c, row, huge, &d), DMM_E_NONFINITE);
    assert_true(d == 42);
    free(s0);
    vv_free(c, big), vv_free(c, small), vv_free(c, huge), vv_free(c, row);
    assert_no_leak(f);
}

/* ---- wide nodes ---------------------------------------------------------- */

#define WIDE 100000

static void test_wide(void **state)
{
    fx *f = *state;
    vv_ctx *c = f->c;
    vv_label *ls = malloc(WIDE * sizeof *ls);
    vv *cs = malloc(WIDE * sizeof *cs);
    assert_non_null(ls);
    assert_non_null(cs);
    vv_label lx = f->pool[0];
    char name[16];
    /* Intern in reverse so that id order and byte order differ. */
    for (int i = WIDE - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "k%d", i);
        ls[i] = tu_label(c, name);
    }
    vv_label knew = tu_label(c, "knew");
    f->base = vv_ctx_bytes(c);
    for (int i = 0; i < WIDE; i++)
        OK(vv_wrap(c, 0.0, lx, vv_number(i + 1), &cs[i]));
    vv w = VV_ZERO;
    OK(vv_from_pairs(c, 0.0, WIDE, ls, cs, &w));
    assert_int_equal(vv_nchildren(w), WIDE);
    assert_int_equal(vv_depth(w), 2);
    for (int i = 0; i < WIDE; i++)
        assert_true(vv_child(vv_child(w, ls[i]), lx).num == i + 1);
    assert_true(vv_is_zero(vv_child(w, f->pool[1])));

    /* Add a one-leaf delta: one child changes, the rest are equal. */
    vv_label p[2] = {ls[5000], lx};
    vv delta = at_path(f, p, 2, vv_number(1.0)), r = add(f, w, delta);
    assert_int_equal(vv_nchildren(r), WIDE);
    assert_true(vv_get(r, p, 2).num == 5002);
    assert_true(vv_get(w, p, 2).num == 5001);
    for (int i = 0; i < WIDE; i++)
        if (i != 5000)
            assert_true(vv_equal(vv_child(r, ls[i]), vv_child(w, ls[i])));
    /* vv_set copies only the path: siblings are shared, not copied. */
    vv s = VV_ZERO;
    OK(vv_set(c, w, p, 2, vv_number(-7), &s));
    assert_int_equal(vv_nchildren(s), WIDE);
    assert_true(vv_get(s, p, 2).num == -7);
    for (int i = 0; i < WIDE; i++)
        if (i != 5000)
            assert_ptr_equal(vv_child(s, ls[i]).map, vv_child(w, ls[i]).map);
    /* A new key and a removed key. */
    vv_label q[2] = {knew, lx};
    vv d2 = at_path(f, q, 2, vv_number(3.0)), r2 = add(f, w, d2);
    assert_int_equal(vv_nchildren(r2), WIDE + 1);
    vv_label rm[2] = {ls[7], lx};
    vv d3 = at_path(f, rm, 2, vv_number(-8.0)), r3 = add(f, w, d3);
    assert_int_equal(vv_nchildren(r3), WIDE - 1);
    assert_true(vv_is_zero(vv_child(r3, ls[7])));
    /* axpy on a shared wide value copies; on the copy it works in place. */
    vv acc = vv_ref(w);
    OK(vv_axpy(c, &acc, 1.0, delta));
    assert_true(vv_equal(acc, r));
    assert_true(vv_get(w, p, 2).num == 5001);
    OK(vv_axpy(c, &acc, -1.0, delta));
    assert_true(vv_equal(acc, w));

    /* Iteration: each child once, labels increasing by id. */
    unsigned char *seen = calloc(WIDE, 1);
    assert_non_null(seen);
    vv_iter it;
    vv_label l, prev = 0;
    vv ch;
    size_t k = 0;
    vv_iter_init(&it, w);
    while (vv_iter_next(&it, &l, &ch)) {
        if (k > 0 && l <= prev)
            fail_msg("vv_iter: label %u after %u", (unsigned)l, (unsigned)prev);
        const char *ln = vv_label_str(c, l, NULL);
        assert_true(ln[0] == 'k');
        int i = atoi(ln + 1);
        assert_true(i >= 0 && i < WIDE);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        assert_true(vv_child(ch, lx).num == i + 1);
        prev = l;
        k++;
    }
    assert_int_equal(k, WIDE);
    free(seen);

    /* Byte order: k0 k1 k10 k100 k1000 k10000 k10001 ... k99999. */
    vv_children_sorted(c, w, ls, cs);
    static const char *const first[] = {"k0",    "k1",     "k10",   "k100",
                                        "k1000", "k10000", "k10001"};
    for (size_t j = 0; j < sizeof first / sizeof *first; j++)
        assert_string_equal(vv_label_str(c, ls[j], NULL), first[j]);
    assert_string_equal(vv_label_str(c, ls[WIDE - 1], NULL), "k99999");
    for (int i = 0; i < WIDE; i++) {
        if (i > 0)
            assert_true(label_less(f, ls[i - 1], ls[i]));
        assert_true(vv_equal(cs[i], vv_child(w, ls[i])));
    }
    check_children(f, r2);

    vv_free(c, w), vv_free(c, delta), vv_free(c, r), vv_free(c, s);
    vv_free(c, d2), vv_free(c, r2), vv_free(c, d3), vv_free(c, r3);
    vv_free(c, acc);
    free(ls);
    free(cs);
    assert_no_leak(f);
}

/*
 * Flat values of scalars several B+-tree leaves wide: the leaf-at-a-time
 * paths of add, scale and axpy (an unshared accumulator's leaves are updated
 * in place and reused), checked entry by entry against plain doubles.
 */
#define NFLAT 1000

static vv flat_value(fx *f, const vv_label *ls, const double *x)
{
    vv *cs = malloc(NFLAT * sizeof *cs), out = VV_ZERO;
    assert_non_null(cs);
    for (int i = 0; i < NFLAT; i++)
        cs[i] = vv_number(x[i]);
    OK(vv_from_pairs(f->c, 0.0, NFLAT, ls, cs, &out));
    free(cs);
    return out;
}

/* v holds exactly the non-zero x[i] at ls[i]. */
static void expect_flat(fx *f, vv v, const vv_label *ls, const double *x)
{
    size_t n = 0;
    tu_assert_canonical(f->c, v);
    for (int i = 0; i < NFLAT; i++) {
        if (vv_child(v, ls[i]).num != x[i])
            fail_msg("entry %d: got %.17g, want %.17g", i,
                     vv_child(v, ls[i]).num, x[i]);
        n += x[i] != 0.0;
    }
    assert_int_equal(vv_nchildren(v), n);
}

/* The children vv_iter gives, against a leaf view: the same, in order. */
static void expect_view(vv v, const vv_leaf *lf)
{
    vv_iter it;
    vv_label l;
    vv ch;
    size_t i = 0;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &ch)) {
        assert_true(i < lf->n);
        assert_int_equal(lf->label[i], l);
        vv got = vv_leaf_child(lf, i++);
        assert_true(got.num == ch.num && got.map == ch.map);
    }
    assert_int_equal(i, lf->n);
}

/* vv_leaf_view: small maps as arrays, whatever their children; nothing
 * for numbers, wide maps and dense levels. */
static void test_leaf_view(void **state)
{
    fx *f = *state;
    vv_ctx *c = f->c;
    vv_leaf lf = {0};
    assert_false(vv_leaf_view(VV_ZERO, &lf));
    assert_false(vv_leaf_view(vv_number(2.5), &lf));
    assert_int_equal(lf.n, 0); /* nothing set */

    vv flat = tu_vv(c, "{\"b\": 2, \"a\": 1, \"c\": -3}");
    assert_true(vv_leaf_view(flat, &lf));
    assert_int_equal(lf.n, 3);
    assert_null(lf.map); /* numbers only */
    expect_view(flat, &lf);

    vv deep = tu_vv(c, "{\"x\": {\"y\": 1}, \"z\": 2, \"w\": 0}");
    assert_true(vv_leaf_view(deep, &lf));
    assert_int_equal(lf.n, 2); /* the zero is not there */
    assert_non_null(lf.map);
    expect_view(deep, &lf);

    /* A wide map has interior nodes: not one leaf. */
    vv_label ls[300];
    vv kid[300];
    char name[16];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "w%d", i);
        ls[i] = tu_label(c, name);
        kid[i] = vv_number(i + 1);
    }
    vv wide;
    OK(vv_from_pairs(c, 0, 300, ls, kid, &wide));
    assert_false(vv_leaf_view(wide, &lf));

    /* A dense level (decimal labels, wide enough) is not a leaf either. */
    double x[40];
    for (int i = 0; i < 40; i++)
        x[i] = i + 1;
    vv row;
    OK(vv_from_dense(c, 1, (size_t[]){40}, x, &row));
    assert_false(vv_leaf_view(row, &lf));

    vv_free(c, row);
    vv_free(c, wide);
    vv_free(c, deep);
    vv_free(c, flat);
}

/* vv_iter_leaf: a wide map (300 numbers, then 100 maps) walked as a few
 * arrays, every child once and in vv_iter's order, also when leaves and
 * single children are taken in turn; a small map is one array; a dense
 * level gives none (iterate it). */
static void test_iter_leaf(void **state)
{
    fx *f = *state;
    vv_ctx *c = f->c;
    enum { N = 400 };
    vv_label ls[N];
    vv kid[N];
    char name[16];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "i%d", i);
        ls[i] = tu_label(c, name);
        kid[i] = i < 300 ? vv_number(i + 1) : tu_vv(c, "{\"q\": 7}");
    }
    vv wide;
    OK(vv_from_pairs(c, 0, N, ls, kid, &wide));
    vv_label want[N];
    vv wv[N];
    vv_iter it;
    vv_iter_init(&it, wide);
    size_t n = 0;
    while (vv_iter_next(&it, &want[n], &wv[n]))
        n++;
    assert_int_equal(n, N);
    for (int mix = 0; mix < 2; mix++) {
        vv_leaf lf;
        size_t got = 0, runs = 0;
        vv_iter_init(&it, wide);
        for (;;) {
            if (mix && runs % 2) { /* one child the usual way */
                vv_label l;
                vv x;
                if (!vv_iter_next(&it, &l, &x))
                    break;
                assert_true(l == want[got] && vv_equal(x, wv[got]));
                got++;
                runs++;
                continue;
            }
            if (!vv_iter_leaf(&it, &lf))
                break;
            assert_true(lf.n > 0 && got + lf.n <= N);
            for (size_t i = 0; i < lf.n; i++) {
                assert_true(lf.label[i] == want[got + i]);
                assert_true(vv_equal(vv_leaf_child(&lf, i), wv[got + i]));
            }
            got += lf.n;
            runs++;
        }
        assert_int_equal(got, N);
        assert_true(runs > 2 && runs < N / 4); /* a few arrays */
    }
    vv small = tu_vv(c, "{\"b\": 2, \"a\": {\"z\": 1}}");
    vv_leaf lf;
    vv_iter_init(&it, small);
    assert_true(vv_iter_leaf(&it, &lf));
    assert_int_equal(lf.n, 2);
    assert_false(vv_iter_leaf(&it, &lf));
    double x[40];
    for (int i = 0; i < 40; i++)
        x[i] = i + 1;
    vv row;
    OK(vv_from_dense(c, 1, (size_t[]){40}, x, &row));
    vv_iter_init(&it, row);
    assert_false(vv_iter_leaf(&it, &lf));
    vv_label l;
    vv y;
    size_t k = 0;
    while (vv_iter_next(&it, &l, &y))
        k++;
    assert_int_equal(k, 40);
    vv_free(c, row);
    vv_free(c, small);
    vv_free(c, wide);
}

static void test_flat_leaves(void **state)
{
    fx *f = *state;
    vv_ctx *c = f->c;
    vv_label ls[NFLAT];
    static double xa[NFLAT], xb[NFLAT], want[NFLAT];
    char name[16];
    for (int i = 0; i < NFLAT; i++) {
        snprintf(name, sizeof name, "f%d", i);
        ls[i] = tu_label(c, name);
        xa[i] = 1.0 + i;
        xb[i] = 0.5 * i - 3.0;
    }
    f->base = vv_ctx_bytes(c);
    vv a = flat_value(f, ls, xa), b = flat_value(f, ls, xb);
    char *sa = str(f, a);

    for (int i = 0; i < NFLAT; i++)
        want[i] = xa[i] + xb[i];
    vv r = add(f, a, b);
    expect_flat(f, r, ls, want);
    for (int i = 0; i < NFLAT; i++)
        want[i] = -0.25 * xa[i];
    vv s = scale(f, -0.25, a);
    expect_flat(f, s, ls, want);

    /* Scaling down to underflow drops entries; up to overflow fails. */
    vv t = scale(f, 1e-310, a);
    for (int i = 0; i < NFLAT; i++)
        want[i] = 1e-310 * xa[i];
    expect_flat(f, t, ls, want);
    vv_free(c, t);
    vv_free(c, s);
    s = VV_ZERO;
    assert_int_equal(vv_scale(c, 1e307, a, &s), DMM_E_NONFINITE);
    assert_true(vv_is_zero(s));

    /* An unshared accumulator: updated in place, leaf by leaf. */
    vv acc = vv_ref(r); /* shared first: r must not change */
    for (int i = 0; i < NFLAT; i++)
        want[i] = xa[i] + xb[i] + 2.0 * xb[i];
    OK(vv_axpy(c, &acc, 2.0, b));
    expect_flat(f, acc, ls, want);
    for (int i = 0; i < NFLAT; i++)
        want[i] = xa[i] + xb[i];
    expect_flat(f, r, ls, want);
    for (int i = 0; i < NFLAT; i++)
        want[i] = xa[i] + xb[i] + 2.0 * xb[i] - 0.5 * xb[i];
    OK(vv_axpy(c, &acc, -0.5, b));
    expect_flat(f, acc, ls, want);

    /* Cancellation inside some leaves: those entries leave. */
    vv acc2 = flat_value(f, ls, xa); /* unshared */
    double *xc = want; /* xc[i] = -xa[i] on every 7th entry, 1 elsewhere */
    for (int i = 0; i < NFLAT; i++)
        xc[i] = i % 7 ? 1.0 : -xa[i];
    vv cv = flat_value(f, ls, xc);
    OK(vv_axpy(c, &acc2, 1.0, cv));
    for (int i = 0; i < NFLAT; i++)
        want[i] = i % 7 ? xa[i] + 1.0 : 0.0;
    expect_flat(f, acc2, ls, want);

    /* Overflow part-way: an error, and acc stays canonical and finite. */
    vv big = scale(f, 1e305, a); /* up to 1e308 */
    int rc = vv_axpy(c, &acc, 1e3, big);
    assert_int_equal(rc, DMM_E_NONFINITE);
    tu_assert_canonical(c, acc);
    assert_true(isfinite(vv_max_norm(acc)));

    /* A value with children among the scalars gets a map array. */
    vv_label p[2] = {ls[500], f->pool[0]};
    vv nested = at_path(f, p, 2, vv_number(4.0));
    vv rn = add(f, a, nested);
    tu_assert_canonical(c, rn);
    assert_true(vv_get(rn, p, 2).num == 4.0);
    assert_true(vv_child(rn, ls[500]).num == xa[500]);
    assert_int_equal(vv_depth(rn), 2);
    vv back = VV_ZERO;
    OK(vv_axpy(c, &rn, -1.0, nested));
    tu_assert_canonical(c, rn);
    assert_true(vv_equal(rn, a));
    assert_int_equal(vv_depth(rn), 1);

    /* Children written into every third entry of an unshared wide value of
     * scalars: its leaves get map arrays, overfill and split. */
    vv wide = flat_value(f, ls, xa);
    for (int pass = 0; pass < 2; pass++)
        for (int i = pass; i < NFLAT; i += 3) {
            vv_label q[2] = {ls[i], f->pool[1]};
            vv d = at_path(f, q, 2, vv_number(i + 0.5));
            OK(vv_axpy(c, &wide, pass ? -1.0 : 1.0, d));
            vv_free(c, d);
        }
    /* a new key into the first leaf, which now holds maps: it splits */
    vv_label q0[2] = {f->pool[2], f->pool[1]};
    vv d0 = at_path(f, q0, 2, vv_number(7.0));
    OK(vv_axpy(c, &wide, 1.0, d0));
    tu_assert_canonical(c, wide);
    assert_int_equal(vv_nchildren(wide), NFLAT + 1);
    assert_true(vv_get(wide, q0, 2).num == 7.0);
    OK(vv_axpy(c, &wide, -1.0, d0));
    vv_free(c, d0);
    tu_assert_canonical(c, wide);
    for (int i = 0; i < NFLAT; i++) {
        vv_label q[2] = {ls[i], f->pool[1]};
        double kid = i % 3 == 0 ? i + 0.5 : i % 3 == 1 ? -(i + 0.5) : 0.0;
        assert_true(vv_child(wide, ls[i]).num == xa[i]);
        assert_true(vv_get(wide, q, 2).num == kid);
    }
    assert_int_equal(vv_nchildren(wide), NFLAT);
    assert_int_equal(vv_depth(wide), 2);
    vv_free(c, wide);

    char *sa2 = str(f, a);
    assert_string_equal(sa, sa2);
    free(sa), free(sa2);
    vv_free(c, back), vv_free(c, rn), vv_free(c, nested), vv_free(c, big);
    vv_free(c, acc), vv_free(c, acc2), vv_free(c, cv);
    vv_free(c, a), vv_free(c, b), vv_free(c, r);
    assert_no_leak(f);
}

/*
 * vv_sum of many wide terms sums in a scratch array indexed by label: the
 * result must equal the one-term-at-a-time sum exactly (same order of
 * additions), with nested children summed per label, cancelled entries
 * dropped and overflow reported.
 */
static void test_sum_dense(void **state)
{
    fx *f = *state;
    vv_ctx *c = f->c;
    enum { NT = 40, NK = 300, NL = 60 };
    vv_label ls[NK];
    char name[16];
    for (int i = 0; i < NK; i++) {
        snprintf(name, sizeof name, "s%d", i);
        ls[i] = tu_label(c, name);
    }
    f->base = vv_ctx_bytes(c);
    for (int round = 0; round < 20; round++) {
        vv terms[NT], want = VV_ZERO;
        double w[NT];
        for (int k = 0; k < NT; k++) {
            vv_label tl[NL];
            vv cs[NL];
            for (int i = 0; i < NL; i++) {
                tl[i] = ls[below(f, NK)];
                /* some children nested, some exact opposites of others */
                if (below(f, 8) == 0)
                    cs[i] = at_path(f, &f->pool[below(f, NPOOL)], 1,
                                    vv_number(rnd_double(f)));
                else
                    cs[i] = vv_number(below(f, 4) ? rnd_double(f)
                                                  : (double)below(f, 3));
            }
            OK(vv_from_pairs(c, rnd_double(f), NL, tl, cs, &terms[k]));
            w[k] = below(f, 5) ? rnd_double(f) : (below(f, 2) ? 1.0 : -1.0);
            vv t = scale(f, w[k], terms[k]), s = add(f, want, t);
            vv_free(c, t), vv_free(c, want);
            want = s;
        }
        vv got = VV_ZERO;
        OK(vv_sum(c, NT, w, terms, &got));
        tu_assert_canonical(c, got);
        if (!vv_equal(got, want)) {
            char *sg = str(f, got), *sw = str(f, want);
            fail_msg("round %d: vv_sum %.400s\n  want %.400s", round, sg, sw);
        }
        vv_free(c, got);
        /* lincomb of a row selecting every term is the same sum */
        vv row = VV_ZERO, m = VV_ZERO, rv[NT], mv[NT];
        for (int k = 0; k < NT; k++) {
            rv[k] = vv_number(w[k]);
            mv[k] = vv_ref(terms[k]);
        }
        OK(vv_from_pairs(c, 0.0, NT, ls, rv, &row));
        OK(vv_from_pairs(c, 0.0, NT, ls, mv, &m));
        OK(vv_lincomb(c, row, m, &got));
        if (!vv_equal(got, want))
            fail_msg("round %d: vv_lincomb differs from the sum", round);
        vv_free(c, got), vv_free(c, row), vv_free(c, m);
        /* a + (-1)·a + ... : exact cancellation gives canonical zero */
        double pm[2] = {1.0, -1.0};
        vv two[2] = {want, want};
        OK(vv_sum(c, 2, pm, two, &got));
        assert_true(vv_is_zero(got));
        for (int k = 0; k < NT; k++)
            vv_free(c, terms[k]);
        vv_free(c, want);
    }
    /* Overflow in one entry of the scratch array. */
    vv big[4];
    double wb[4] = {1e308, 1e308, 1.0, 1.0};
    for (int k = 0; k < 4; k++) {
        vv cs[NL];
        for (int i = 0; i < NL; i++)
            cs[i] = vv_number(1.0 + i);
        OK(vv_from_pairs(c, 0.0, NL, ls, cs, &big[k]));
    }
    vv got = vv_number(42);
    assert_int_equal(vv_sum(c, 4, wb, big, &got), DMM_E_NONFINITE);
    assert_true(got.num == 42 && got.map == NULL);
    for (int k = 0; k < 4; k++)
        vv_free(c, big[k]);
    assert_no_leak(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_laws, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scale_laws, setup, teardown),
        cmocka_unit_test_setup_teardown(test_axpy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_products, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_measure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_pairs, setup, teardown),
        cmocka_unit_test(test_deep_free),
        cmocka_unit_test_setup_teardown(test_nonfinite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flat_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaf_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_leaf, setup, teardown),
        cmocka_unit_test(test_small_blocks_threads),
        cmocka_unit_test(test_small_blocks_bounded),
        cmocka_unit_test_setup_teardown(test_sum_dense, setup, teardown),
    };
    print_message("test_vv_algebra: seed 0x%016" PRIx64
                  " (set DMM_TEST_SEED to change)\n",
                  seed_value());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
