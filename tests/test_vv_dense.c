// SPDX-License-Identifier: MIT
/*
 * Dense levels (vvalue/src/vv_dense.c): a block {"0": {"0": x, …}, …} held
 * as arrays must be the same value as its tree form in every operation.
 * Random blocks are made dense (vv_from_dense, vv_parse) and turned into
 * trees level by level at random (vv_set of a child to itself rewrites the
 * levels on its path as trees), and every operation's result on any mix of
 * forms is compared with the all-tree result: vv_equal and the JSON bytes.
 * Then the out-of-memory sweep of the dense code paths.
 */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(x) assert_int_equal((x), 0)

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}
/* A pixel: often exactly zero, often a small multiple of 1/4 (so sums
 * cancel exactly), otherwise any double of moderate size. */
static double rnd_pixel(double zeros)
{
    double u = (double)(rnd() >> 11) / 9007199254740992.0;
    if (u < zeros)
        return 0.0;
    if (rnd() & 1)
        return (double)((int)rnd_below(13) - 6) / 4.0;
    return ((double)(rnd() >> 11) / 9007199254740992.0 - 0.5) *
           pow(2.0, (double)((int)rnd_below(40) - 20));
}

typedef struct block {
    int rank;
    size_t dims[3];
    double *x;
} block;

static size_t block_len(const block *b)
{
    size_t n = 1;
    for (int k = 0; k < b->rank; k++)
        n *= b->dims[k];
    return n;
}

static block rnd_block(int rank, double zeros)
{
    block b = {.rank = rank};
    for (int k = 0; k < rank; k++)
        b.dims[k] = 1 + rnd_below(rank == 1 ? 300 : rank == 2 ? 40 : 12);
    size_t n = block_len(&b);
    b.x = malloc(n * sizeof *b.x);
    assert_non_null(b.x);
    for (size_t i = 0; i < n; i++)
        b.x[i] = rnd_pixel(zeros);
    return b;
}

static char *json_of(vv_ctx *c, vv v)
{
    char *s = vv_to_string(c, v);
    assert_non_null(s);
    return s;
}

/* Fails unless a and b are the same value, by vv_equal, by the canonical
 * JSON text, and by Jansson's dump of vv_to_json (which keeps the order in
 * which children are visited, label-id order). */
static void assert_same(vv_ctx *c, const char *what, vv a, vv b)
{
    tu_assert_canonical(c, a);
    tu_assert_canonical(c, b);
    char *sa = json_of(c, a), *sb = json_of(c, b);
    if (strcmp(sa, sb) || !vv_equal(a, b) || !vv_equal(b, a))
        fail_msg("%s: forms differ:\n  %.400s\n  %.400s", what, sa, sb);
    json_t *ja = vv_to_json(c, a), *jb = vv_to_json(c, b);
    assert_non_null(ja);
    assert_non_null(jb);
    char *da = json_dumps(ja, JSON_COMPACT | JSON_ENCODE_ANY),
         *db = json_dumps(jb, JSON_COMPACT | JSON_ENCODE_ANY);
    if (strcmp(da, db))
        fail_msg("%s: child order differs:\n  %.400s\n  %.400s", what, da, db);
    free(da), free(db), free(sa), free(sb);
    json_decref(ja), json_decref(jb);
}

/* Rewrite the levels on the path to every child at depth `depth` (1 .. 3)
 * as trees, each with probability p: the same value, other forms. */
static vv untree_rec(vv_ctx *c, vv root, vv v, vv_label *path, int at,
                     int depth, double p, vv *acc)
{
    vv_iter it;
    vv_label l;
    vv x;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &x)) {
        path[at] = l;
        if (at + 1 < depth && x.map)
            untree_rec(c, root, x, path, at + 1, depth, p, acc);
        else if ((double)(rnd() >> 11) / 9007199254740992.0 < p) {
            vv r;
            OK(vv_set(c, *acc, path, (size_t)at + 1, x, &r));
            vv_free(c, *acc);
            *acc = r;
        }
    }
    return *acc;
}

/* new: v with levels rewritten as trees at random (p = 1: every level). */
static vv retree(vv_ctx *c, vv v, double p)
{
    vv acc = vv_ref(v);
    vv_label path[8];
    int d = vv_depth(v) < 8 ? vv_depth(v) : 8;
    if (d >= 1)
        untree_rec(c, v, v, path, 0, d, p, &acc);
    return acc;
}

static size_t map_bytes(vv v)
{
    vv_stats st;
    vv_measure(v, &st);
    return st.bytes;
}

/* Blocks whose vv_from_dense form is not their tree form. */
static int held_dense, views;

/* The forms of one value: dense, tree, a random mix, parsed back. */
#define NFORMS 4
typedef struct forms {
    vv f[NFORMS];
} forms;

static forms make_forms(vv_ctx *c, const block *b)
{
    forms F;
    OK(vv_from_dense(c, b->rank, b->dims, b->x, &F.f[0]));
    F.f[1] = retree(c, F.f[0], 1.0);
    F.f[2] = retree(c, F.f[0], 0.3);
    char *s = json_of(c, F.f[1]);
    F.f[3] = tu_vv(c, s);
    free(s);
    for (int k = 1; k < NFORMS; k++)
        assert_same(c, "forms", F.f[0], F.f[k]);
    held_dense += map_bytes(F.f[0]) != map_bytes(F.f[1]);
    return F;
}

static void free_forms(vv_ctx *c, forms *F)
{
    for (int k = 0; k < NFORMS; k++)
        vv_free(c, F->f[k]);
}

static double halve(double x, void *ud)
{
    (void)ud;
    return x / 2 + 1;
}

typedef struct leaf_log {
    vv_buf b;
} leaf_log;
static int log_leaf(const vv_label *path, int depth, double x, void *ud)
{
    leaf_log *g = ud;
    for (int i = 0; i < depth; i++)
        tu_put(&g->b, "%u/", (unsigned)path[i]);
    tu_put(&g->b, "=%a;", x);
    return 0;
}

/* Every operation on forms (i of A, j of B) against forms (1, 1), the
 * all-tree ones. */
static void check_ops(vv_ctx *c, const forms *A, const forms *B, int i, int j,
                      const vv *extra)
{
    vv a = A->f[i], b = B->f[j], ta = A->f[1], tb = B->f[1];
    vv r, t;
    char what[64];
#define SAME(op, call_r, call_t)                                               \
    do {                                                                       \
        int rc1 = (call_r), rc2 = (call_t);                                    \
        snprintf(what, sizeof what, "%s (forms %d, %d)", op, i, j);            \
        if (rc1 != rc2)                                                        \
            fail_msg("%s: %s vs %s", what, dmm_errname(rc1),                   \
                     dmm_errname(rc2));                                        \
        if (!rc1) {                                                            \
            assert_same(c, what, r, t);                                        \
            vv_free(c, r);                                                     \
            vv_free(c, t);                                                     \
        }                                                                      \
    } while (0)
    SAME("add", vv_add(c, a, b, &r), vv_add(c, ta, tb, &t));
    SAME("scale", vv_scale(c, -0.75, a, &r), vv_scale(c, -0.75, ta, &t));
    SAME("apply", vv_apply(c, a, halve, NULL, &r),
         vv_apply(c, ta, halve, NULL, &t));
    SAME("mult_mask", vv_mult_mask(c, a, b, &r), vv_mult_mask(c, ta, tb, &t));
    {
        /* axpy into an accumulator of its own and into a shared one */
        vv acc1 = retree(c, a, 0.0), acc2 = vv_ref(ta);
        vv keep = vv_ref(acc1);
        int rc1 = vv_axpy(c, &acc1, 1.5, b), rc2 = vv_axpy(c, &acc2, 1.5, tb);
        assert_int_equal(rc1, rc2);
        if (!rc1)
            assert_same(c, "axpy shared", acc1, acc2);
        vv_free(c, keep);
        vv_free(c, acc1);
        acc1 = vv_scale(c, 1.0, a, &r) == 0 ? r : VV_ZERO;
        /* a unique accumulator: a copy made by scaling */
        vv u;
        OK(vv_scale(c, 2.0, a, &u));
        vv tu;
        OK(vv_scale(c, 2.0, ta, &tu));
        rc1 = vv_axpy(c, &u, -3.0, b);
        rc2 = vv_axpy(c, &tu, -3.0, tb);
        assert_int_equal(rc1, rc2);
        if (!rc1)
            assert_same(c, "axpy unique", u, tu);
        vv_free(c, u), vv_free(c, tu), vv_free(c, acc1), vv_free(c, acc2);
    }
    {
        double w[4] = {0.5, -1.25, 3.0, 1.0};
        vv terms[4] = {a, b, a, extra ? *extra : b};
        vv tterms[4] = {ta, tb, ta, extra ? *extra : tb};
        SAME("sum", vv_sum(c, 4, w, terms, &r), vv_sum(c, 4, w, tterms, &t));
        SAME("sum2", vv_sum(c, 2, w + 1, terms + 1, &r),
             vv_sum(c, 2, w + 1, tterms + 1, &t));
        /* five blocks: summed four terms a pass, then one */
        double w5[5] = {0.5, -1.25, 3.0, 1.0, -0.75};
        vv t5[5] = {a, b, a, b, a}, tt5[5] = {ta, tb, ta, tb, ta};
        SAME("sum5", vv_sum(c, 5, w5, t5, &r), vv_sum(c, 5, w5, tt5, &t));
    }
    {
        /* lincomb of streams {"p": a, "q": b} by a row of weights, by a
         * row reaching into the blocks, and by a block as the row */
        vv_label pq[2] = {tu_label(c, "p"), tu_label(c, "q")};
        vv kids[2] = {vv_ref(a), vv_ref(b)},
           tkids[2] = {vv_ref(ta), vv_ref(tb)};
        vv m, tm;
        OK(vv_from_pairs(c, 0.0, 2, pq, kids, &m));
        OK(vv_from_pairs(c, 0.0, 2, pq, tkids, &tm));
        vv row = tu_vv(c, "{\"p\": 0.5, \"q\": -2, \"x\": 1}");
        SAME("lincomb", vv_lincomb(c, row, m, &r), vv_lincomb(c, row, tm, &t));
        vv_free(c, row);
        row = tu_vv(c, "{\"p\": {\"0\": 1.5, \"3\": {\"1\": -1}}, \"q\": "
                       "{\":number\": 2, \"1\": 0.25}}");
        SAME("lincomb deep", vv_lincomb(c, row, m, &r),
             vv_lincomb(c, row, tm, &t));
        vv_free(c, row);
        SAME("lincomb block row", vv_lincomb(c, a, b, &r),
             vv_lincomb(c, ta, tb, &t));
        vv_free(c, m), vv_free(c, tm);
    }
    {
        double d1 = 0, d2 = 0;
        int rc1 = vv_dot(c, a, b, &d1), rc2 = vv_dot(c, ta, tb, &d2);
        assert_int_equal(rc1, rc2);
        if (memcmp(&d1, &d2, sizeof d1))
            fail_msg("dot (forms %d, %d): %a vs %a", i, j, d1, d2);
        d1 = vv_max_norm(a), d2 = vv_max_norm(ta);
        assert_memory_equal(&d1, &d2, sizeof d1);
        assert_int_equal(vv_equal(a, b), vv_equal(ta, tb));
        assert_int_equal(vv_close(a, b, 1e-9, 0), vv_close(ta, tb, 1e-9, 0));
        assert_int_equal(vv_nchildren(a), vv_nchildren(ta));
        assert_int_equal(vv_depth(a), vv_depth(ta));
    }
    {
        leaf_log g1 = {{0}}, g2 = {{0}};
        tu_put(&g1.b, "-");
        tu_put(&g2.b, "-");
        OK(vv_foreach_leaf(a, log_leaf, &g1));
        OK(vv_foreach_leaf(ta, log_leaf, &g2));
        assert_string_equal(g1.b.data, g2.b.data);
        free(g1.b.data), free(g2.b.data);
    }
    {
        /* point reads and a write through vv_set */
        vv_label path[3] = {tu_label(c, "3"), tu_label(c, "1"),
                            tu_label(c, "0")};
        for (size_t n = 0; n <= 3; n++) {
            assert_true(vv_equal(vv_get(a, path, n), vv_get(ta, path, n)));
            SAME("set", vv_set(c, a, path, n, b, &r),
                 vv_set(c, ta, path, n, tb, &t));
        }
    }
#undef SAME
}

/* Blocks of every rank, full and sparse, in every pair of forms. */
static void test_forms_random(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    for (int round = 0; round < 60; round++) {
        int rank = 1 + (int)rnd_below(3);
        double zeros = round % 3 == 0 ? 0.0 : round % 3 == 1 ? 0.2 : 0.7;
        block ba = rnd_block(rank, zeros);
        block bb = rnd_block(rnd() & 1 ? rank : 1 + (int)rnd_below(3), zeros);
        if (round % 4 == 1) { /* b = -a on about half: sums cancel */
            free(bb.x);
            bb = ba;
            bb.x = malloc(block_len(&ba) * sizeof *bb.x);
            for (size_t k = 0; k < block_len(&ba); k++)
                bb.x[k] = rnd() & 1 ? -ba.x[k] : rnd_pixel(zeros);
        }
        forms A = make_forms(c, &ba), B = make_forms(c, &bb);
        /* A block mixed with a tree that is no block. */
        vv extra = tu_vv(c, "{\"0\": {\"x\": 1, \"1\": 2}, \"y\": 3, \"5\": "
                            "{\":number\": 4}}");
        for (int i = 0; i < NFORMS; i++)
            for (int j = 0; j < NFORMS; j++)
                check_ops(c, &A, &B, i, j, &extra);
        /* dense with sparse: the block plus the tree */
        forms X;
        for (int k = 0; k < NFORMS; k++)
            OK(vv_add(c, A.f[k], extra, &X.f[k]));
        for (int i = 0; i < NFORMS; i++)
            check_ops(c, &X, &A, i, (i + 1) % NFORMS, NULL);
        free_forms(c, &X);
        /* the block comes back out as it went in */
        double *back = malloc(block_len(&ba) * sizeof *back);
        for (int k = 0; k < NFORMS; k++) {
            OK(vv_dense_read(c, A.f[k], ba.rank, ba.dims, back));
            for (size_t q = 0; q < block_len(&ba); q++)
                if (memcmp(&back[q], &ba.x[q], sizeof *back) &&
                    !(back[q] == 0 && ba.x[q] == 0))
                    fail_msg("dense_read form %d at %zu: %a vs %a", k, q,
                             back[q], ba.x[q]);
            for (size_t q = 0; q < block_len(&ba); q++)
                assert_false(signbit(back[q]) && back[q] == 0);
            /* a view, where there is one, shows the same numbers */
            size_t vr, vc, vs;
            const double *vd;
            if (ba.rank == 2 && vv_dense_view(A.f[k], &vr, &vc, &vs, &vd)) {
                views++;
                for (size_t q = 0; q < ba.dims[0] * ba.dims[1]; q++) {
                    size_t i = q / ba.dims[1], j = q % ba.dims[1];
                    double y = i < vr && j < vc ? vd[i * vs + j] : 0.0;
                    assert_memory_equal(&y, &back[q], sizeof y);
                }
                for (size_t i = 0; i < vr; i++)
                    for (size_t j = 0; j < vc; j++)
                        if (i >= ba.dims[0] || j >= ba.dims[1])
                            assert_true(vd[i * vs + j] == 0.0);
            }
            int r1 = 0, r2 = 0;
            size_t d1[3], d2[3];
            bool s1 = vv_dense_shape(c, A.f[k], &r1, d1),
                 s2 = vv_dense_shape(c, A.f[1], &r2, d2);
            assert_int_equal(s1, s2);
            if (s1) {
                assert_int_equal(r1, r2);
                assert_memory_equal(d1, d2, (size_t)r1 * sizeof *d1);
                assert_int_equal(r1, ba.rank);
                for (int q = 0; q < r1; q++)
                    assert_true(d1[q] <= ba.dims[q]);
            }
        }
        free(back);
        vv_free(c, extra);
        free_forms(c, &A);
        free_forms(c, &B);
        free(ba.x);
        free(bb.x);
    }
    /* most of the 120 blocks have a dense level (not the narrow ones) */
    print_message("%d of 120 blocks held dense\n", held_dense);
    assert_true(held_dense > 60);
    print_message("%d views of rank-2 blocks\n", views);
    assert_true(views > 5);
    vv_ctx_free(c);
}

/* The dense form is what is held, and it is smaller: a full 64x64 block
 * made by vv_from_dense, read from JSON, or computed from dense operands. */
static void test_dense_is_held(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    size_t dims[2] = {64, 64};
    double *x = malloc(64 * 64 * sizeof *x);
    for (size_t i = 0; i < 64 * 64; i++)
        x[i] = 1.0 + (double)i;
    vv d;
    OK(vv_from_dense(c, 2, dims, x, &d));
    vv t = retree(c, d, 1.0);
    size_t bd = map_bytes(d), bt = map_bytes(t);
    /* dense rows: the doubles and a header; tree leaves: labels too */
    assert_true(bd < 64 * 64 * 8 + 64 * 64 + 4096);
    assert_true(bt > bd + 64 * 64 * 4 - 4096);
    char *s = json_of(c, t);
    vv p = tu_vv(c, s);
    assert_int_equal(map_bytes(p), bd);
    vv sum;
    OK(vv_add(c, d, p, &sum));
    assert_int_equal(map_bytes(sum), bd);
    vv lc;
    vv_label pq[2] = {tu_label(c, "p"), tu_label(c, "q")};
    vv kids[2] = {vv_ref(d), vv_ref(p)};
    vv m;
    OK(vv_from_pairs(c, 0.0, 2, pq, kids, &m));
    vv row = tu_vv(c, "{\"p\": 2, \"q\": -1}");
    OK(vv_lincomb(c, row, m, &lc));
    assert_true(vv_equal(lc, d));
    assert_int_equal(map_bytes(lc), bd);
    int rank;
    size_t got[3];
    assert_true(vv_dense_shape(c, lc, &rank, got));
    assert_int_equal(rank, 2);
    assert_int_equal(got[0], 64);
    assert_int_equal(got[1], 64);
    free(s);
    vv all[] = {d, t, p, sum, lc, m, row};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        vv_free(c, all[i]);
    free(x);
    vv_ctx_free(c);
}

/* Decimal labels interned out of order ("17" before "16") stop dense
 * levels at that width: wider blocks are trees, still the same values. */
static void test_labels_out_of_order(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    tu_label(c, "17");
    size_t dims[1] = {40};
    double x[40];
    for (int i = 0; i < 40; i++)
        x[i] = i + 1;
    vv v;
    OK(vv_from_dense(c, 1, dims, x, &v));
    assert_int_equal(vv_nchildren(v), 40);
    /* a tree leaf (labels and doubles), not a dense row (doubles) */
    assert_true(map_bytes(v) >= 40 * (sizeof(vv_label) + sizeof(double)));
    /* iteration is in label-id order, which is not numeric order here */
    vv_iter it;
    vv_label l, prev = 0;
    vv e;
    vv_iter_init(&it, v);
    bool first = true;
    while (vv_iter_next(&it, &l, &e)) {
        assert_true(first || l > prev);
        prev = l, first = false;
    }
    double back[40];
    OK(vv_dense_read(c, v, 1, dims, back));
    assert_memory_equal(back, x, sizeof x);
    vv_free(c, v);
    vv_ctx_free(c);
}

/* Sums of images at the edges of the check that finishes each row (done in
 * the last summing pass when every term covers the row): entries that cancel
 * to zero (a whole row too), negative zeros, and an overflow; each sum equals
 * the same sum over the doubles, left to right, made into a block. Rows of 17
 * take the vector pass and its odd tail; 5 terms take two passes. */
enum { ER = 16, EC = 17 };

static void edge_sum(vv_ctx *c, size_t n, const double *w, const vv *terms,
                     double (*const x[])[EC])
{
    double want[ER][EC];
    for (int i = 0; i < ER; i++)
        for (int j = 0; j < EC; j++) {
            double s = w[0] * x[0][i][j];
            for (size_t k = 1; k < n; k++)
                s = s + w[k] * x[k][i][j];
            want[i][j] = s == 0 ? 0.0 : s;
        }
    size_t dims[2] = {ER, EC};
    vv got, wv;
    OK(vv_sum(c, n, w, terms, &got));
    OK(vv_from_dense(c, 2, dims, &want[0][0], &wv));
    int rank = 0;
    size_t shape[3];
    assert_true(vv_dense_shape(c, got, &rank, shape)); /* the block path */
    assert_true(vv_equal(got, wv));
    tu_assert_canonical(c, got);
    double back[ER][EC];
    OK(vv_dense_read(c, got, 2, dims, &back[0][0]));
    for (int i = 0; i < ER; i++)
        for (int j = 0; j < EC; j++)
            assert_false(back[i][j] == 0 && signbit(back[i][j]));
    vv_free(c, got), vv_free(c, wv);
}

static void test_sum_images_edges(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    static double a[ER][EC], b[ER][EC], z[ER][EC], big[ER][EC];
    for (int i = 0; i < ER; i++)
        for (int j = 0; j < EC; j++) {
            a[i][j] = 1 + i * EC + j;
            /* b differs from a in every fourth column, but not in row 3 */
            b[i][j] = a[i][j] + (j % 4 == 1 && i != 3 ? 0.5 : 0);
            z[i][j] = (i + j) % 2; /* half zeros: −1 × z has −0s */
            big[i][j] = i == 5 && j == 3 ? 1.5e308 : 1; /* in a vector lane */
        }
    size_t dims[2] = {ER, EC};
    vv va, vb, vz, vbig;
    OK(vv_from_dense(c, 2, dims, &a[0][0], &va));
    OK(vv_from_dense(c, 2, dims, &b[0][0], &vb));
    OK(vv_from_dense(c, 2, dims, &z[0][0], &vz));
    OK(vv_from_dense(c, 2, dims, &big[0][0], &vbig));
    vv t5[5] = {va, vb, va, vb, va};
    double(*const x5[5])[EC] = {a, b, a, b, a};
    double w5[5] = {1, -1, 0.5, 0.5, -1};
    edge_sum(c, 2, w5, t5, x5); /* a − b */
    edge_sum(c, 5, w5, t5, x5); /* (a − b) / 2, through two passes */
    vv tz[2] = {vz, vz};
    double(*const xz[2])[EC] = {z, z};
    double wz[2] = {-1, -1};
    edge_sum(c, 2, wz, tz, xz); /* −0 + −0 where z is 0 */
    /* an overflow is refused and makes nothing */
    vv vbig2; /* another block of the same numbers */
    OK(vv_from_dense(c, 2, dims, &big[0][0], &vbig2));
    vv two[2] = {vbig, vbig2};
    double w2[2] = {1, 1};
    vv s = vv_number(3);
    assert_int_equal(vv_sum(c, 2, w2, two, &s), DMM_E_NONFINITE);
    assert_true(s.num == 3 && s.map == NULL);
    vv_free(c, vbig), vv_free(c, vbig2), vv_free(c, vz), vv_free(c, va),
        vv_free(c, vb);
    vv_ctx_free(c);
}

/* vv_label_dec: a label's index in a dense level, or -1. */
static void test_label_dec(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    const char *s[] = {"0",     "17",  "017", "-1", "65534",
                       "65535", "1e3", "a",   "00"};
    const int32_t want[] = {0, 17, -1, -1, 65534, -1, -1, -1, -1};
    for (size_t k = 0; k < sizeof s / sizeof *s; k++)
        assert_int_equal(vv_label_dec(c, tu_label(c, s[k])), want[k]);
    vv_ctx_free(c);
}

/* Bad blocks and values that are no blocks. */
static void test_bad_blocks(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    vv v = vv_number(7);
    size_t dims[4] = {2, 2, 2, 2};
    double x[16] = {1, 2, NAN, 4};
    assert_int_equal(vv_from_dense(c, 0, dims, x, &v), DMM_E_INVAL);
    assert_int_equal(vv_from_dense(c, 4, dims, x, &v), DMM_E_INVAL);
    size_t zero[1] = {0}, huge[1] = {VV_DENSE_MAX_DIM + 1};
    assert_int_equal(vv_from_dense(c, 1, zero, x, &v), DMM_E_INVAL);
    assert_int_equal(vv_from_dense(c, 1, huge, x, &v), DMM_E_INVAL);
    assert_int_equal(vv_from_dense(c, 2, dims, x, &v), DMM_E_NONFINITE);
    assert_true(v.num == 7 && v.map == NULL);
    /* all zeros: zero */
    double z[4] = {0, -0.0, 0, 0};
    OK(vv_from_dense(c, 2, dims, z, &v));
    assert_true(vv_is_zero(v));
    int rank = 9;
    size_t got[3];
    assert_false(vv_dense_shape(c, v, &rank, got));
    const char *no[] = {"5",
                        "{\":number\": 1, \"0\": 2}",
                        "{\"0\": {\":number\": 1, \"0\": 2}}",
                        "{\"0\": {\"0\": 1}, \"1\": 2}",
                        "{\"00\": 1}",
                        "{\"a\": 1}",
                        "{\"0\": {\"0\": {\"0\": {\"0\": 1}}}}"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        vv w = tu_vv(c, no[i]);
        assert_false(vv_dense_shape(c, w, &rank, got));
        double buf[64];
        size_t d3[3] = {4, 4, 4};
        assert_int_equal(vv_dense_read(c, w, 3, d3, buf), DMM_E_INVAL);
        vv_free(c, w);
    }
    /* a block read into too small a box */
    vv w = tu_vv(c, "{\"3\": {\"0\": 1}}");
    size_t d2[2] = {3, 3};
    double buf[9];
    assert_int_equal(vv_dense_read(c, w, 2, d2, buf), DMM_E_INVAL);
    assert_true(vv_dense_shape(c, w, &rank, got));
    assert_int_equal(rank, 2);
    assert_int_equal(got[0], 4);
    assert_int_equal(got[1], 1);
    vv_free(c, w);
    vv_ctx_free(c);
}

/* ---- out of memory ------------------------------------------------------ */

typedef struct oom_env {
    tu_alloc a;
    vv_ctx *c;
    vv D, E, T; /* dense 20x30, dense 30x20 minus a corner, tree of D */
    vv acc;
} oom_env;

typedef int (*oom_run)(oom_env *e, vv *out);

static int o_from_dense(oom_env *e, vv *out)
{
    size_t dims[3] = {3, 20, 30};
    static double x[3 * 20 * 30];
    for (size_t i = 0; i < 3 * 20 * 30; i++)
        x[i] = i % 7 ? (double)i : 0.0;
    return vv_from_dense(e->c, 3, dims, x, out);
}
static int o_parse(oom_env *e, vv *out)
{
    char *s = vv_to_string(e->c, e->D);
    int rc = vv_parse(e->c, s, strlen(s), NULL, out, NULL);
    free(s);
    return rc;
}
static int o_add(oom_env *e, vv *out)
{
    return vv_add(e->c, e->D, e->E, out);
}
static int o_add_mixed(oom_env *e, vv *out)
{
    return vv_add(e->c, e->T, e->E, out);
}
static int o_scale(oom_env *e, vv *out)
{
    return vv_scale(e->c, -2.0, e->E, out);
}
static int o_sum(oom_env *e, vv *out)
{
    double w[3] = {1, -1, 0.5};
    vv t[3] = {e->D, e->E, e->D};
    return vv_sum(e->c, 3, w, t, out);
}
static int o_sum_mixed(oom_env *e, vv *out)
{
    double w[3] = {1, -1, 0.5};
    vv t[3] = {e->D, e->E, e->T};
    return vv_sum(e->c, 3, w, t, out);
}
static int o_lincomb(oom_env *e, vv *out)
{
    return vv_lincomb(e->c, e->E, e->D, out);
}
static int o_mask(oom_env *e, vv *out)
{
    return vv_mult_mask(e->c, e->E, e->D, out);
}
static int o_set(oom_env *e, vv *out)
{
    vv_label path[2] = {tu_label(e->c, "4"), tu_label(e->c, "5")};
    return vv_set(e->c, e->D, path, 2, vv_number(9), out);
}
static int o_axpy(oom_env *e, vv *out)
{
    int rc = vv_axpy(e->c, &e->acc, -1.5, e->E);
    if (!rc) {
        *out = e->acc;
        e->acc = VV_ZERO;
    }
    return rc;
}
static int o_axpy_tree(oom_env *e, vv *out)
{
    int rc = vv_axpy(e->c, &e->acc, 2.0, e->T);
    if (!rc) {
        *out = e->acc;
        e->acc = VV_ZERO;
    }
    return rc;
}

static const struct {
    const char *name;
    oom_run run;
    bool acc; /* gets a fresh dense accumulator (a copy of D) */
} oom_ops[] = {
    {"vv_from_dense", o_from_dense, false},
    {"vv_parse (block)", o_parse, false},
    {"vv_add (dense)", o_add, false},
    {"vv_add (tree + dense)", o_add_mixed, false},
    {"vv_scale (dense)", o_scale, false},
    {"vv_sum (dense)", o_sum, false},
    {"vv_sum (mixed)", o_sum_mixed, false},
    {"vv_lincomb (dense)", o_lincomb, false},
    {"vv_mult_mask (dense)", o_mask, false},
    {"vv_set (dense)", o_set, false},
    {"vv_axpy (dense acc)", o_axpy, true},
    {"vv_axpy (dense acc, tree)", o_axpy_tree, true},
};

static void test_oom(void **state)
{
    (void)state;
    for (size_t op = 0; op < sizeof oom_ops / sizeof *oom_ops; op++) {
        oom_env e;
        memset(&e, 0, sizeof e);
        vv_options o = {.alloc = tu_alloc_fn, .alloc_ud = &e.a};
        e.c = vv_ctx_new(&o);
        assert_non_null(e.c);
        size_t d1[2] = {20, 30}, d2[2] = {30, 20};
        double x[600], y[600];
        for (int i = 0; i < 600; i++)
            x[i] = i + 1, y[i] = i % 20 < 3 && i < 60 ? 0 : -(i + 1);
        OK(vv_from_dense(e.c, 2, d1, x, &e.D));
        OK(vv_from_dense(e.c, 2, d2, y, &e.E));
        e.T = retree(e.c, e.D, 1.0);
        tu_label(e.c, "4"), tu_label(e.c, "5");
        char *snap[3] = {json_of(e.c, e.D), json_of(e.c, e.E),
                         json_of(e.c, e.T)};
        if (oom_ops[op].acc)
            OK(vv_scale(e.c, 1.0 / 3, e.D, &e.acc));
        vv want;
        OK(oom_ops[op].run(&e, &want));
        vv_free(e.c, e.acc);
        e.acc = VV_ZERO;
        long k, fails = 0;
        for (k = 1; k < 100000; k++) {
            if (oom_ops[op].acc)
                OK(vv_scale(e.c, 1.0 / 3, e.D, &e.acc));
            size_t bytes = vv_ctx_bytes(e.c);
            vv out = vv_number(42);
            e.a.count = 0;
            e.a.fail_at = k;
            int rc = oom_ops[op].run(&e, &out);
            bool injected = e.a.count >= k;
            e.a.fail_at = 0;
            if (!rc) {
                tu_assert_canonical(e.c, out);
                if (!vv_equal(out, want))
                    fail_msg("%s: wrong result after failed allocation %ld",
                             oom_ops[op].name, k);
                vv_free(e.c, out);
                vv_free(e.c, e.acc);
                e.acc = VV_ZERO;
                if (!injected)
                    break;
                continue;
            }
            fails++;
            if (rc != DMM_E_NOMEM || !injected)
                fail_msg("%s, allocation %ld failing: %s", oom_ops[op].name, k,
                         dmm_errname(rc));
            assert_true(out.num == 42 && out.map == NULL);
            if (oom_ops[op].acc) {
                /* the accumulator is canonical and finite; dropping it
                 * gives back everything */
                tu_assert_canonical(e.c, e.acc);
                vv_free(e.c, e.acc);
                e.acc = VV_ZERO;
                bytes -= 0; /* the accumulator was counted in bytes */
            }
            if (!oom_ops[op].acc && vv_ctx_bytes(e.c) != bytes)
                fail_msg("%s, allocation %ld failing: leak of %zd bytes",
                         oom_ops[op].name, k,
                         (ssize_t)(vv_ctx_bytes(e.c) - bytes));
            vv in[3] = {e.D, e.E, e.T};
            for (int q = 0; q < 3; q++) {
                char *now = json_of(e.c, in[q]);
                assert_string_equal(now, snap[q]);
                free(now);
            }
        }
        assert_true(k < 100000);
        assert_true(fails > 0);
        print_message("%-26s %ld failing allocation points\n", oom_ops[op].name,
                      fails);
        vv_free(e.c, want);
        vv_free(e.c, e.D), vv_free(e.c, e.E), vv_free(e.c, e.T);
        for (int q = 0; q < 3; q++)
            free(snap[q]);
        vv_ctx_free(e.c);
        assert_int_equal(e.a.bytes, 0);
    }
}

/* Decimal labels rolled back (a refused live request interned them) and
 * interned again in the reverse order: ids then decrease, so a 40-wide level
 * must not be held by position, and a value read afterwards must be the
 * same as its tree form, label by label. With a stale table of decimal ids
 * the rolled-back ids, reused by other labels, would be read. */
static void test_rollback_decimal_labels(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    size_t mark = vv_label_count(c);
    char buf[16], text[1024] = "{";
    vv_label l;
    for (int i = 0; i < 40; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        assert_int_equal(vv_intern_cstr(c, buf, &l), 0);
    }
    vv_label_rollback(c, mark);
    assert_int_equal(vv_label_count(c), mark);
    for (int i = 39; i >= 0; i--) {
        snprintf(buf, sizeof buf, "%d", i);
        assert_int_equal(vv_intern_cstr(c, buf, &l), 0);
    }
    for (int i = 0; i < 40; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "%s\"%d\": %d", i ? ", " : "", i, i + 1);
    strcat(text, "}");
    vv v;
    dmm_error err;
    assert_int_equal(vv_parse(c, text, strlen(text), "t", &v, &err), 0);
    for (int i = 0; i < 40; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        assert_int_equal(vv_label_find(c, buf, strlen(buf), &l), 0);
        assert_true(vv_child(v, l).num == i + 1);
    }
    vv twice;
    assert_int_equal(vv_add(c, v, v, &twice), 0);
    for (int i = 0; i < 40; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        assert_int_equal(vv_label_find(c, buf, strlen(buf), &l), 0);
        assert_true(vv_child(twice, l).num == 2 * (i + 1));
    }
    vv_free(c, twice);
    /* Children come in label-id order, as for every value. */
    vv_iter it;
    vv_label prev = 0, lab;
    vv ch;
    bool first = true;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &lab, &ch)) {
        assert_true(first || lab > prev);
        prev = lab;
        first = false;
    }
    /* Merged with a small tree-form value. */
    static const char small[] = "{\"3\": 100, \"30\": 200}";
    vv w, sum;
    assert_int_equal(vv_parse(c, small, sizeof small - 1, "s", &w, &err), 0);
    assert_int_equal(vv_add(c, v, w, &sum), 0);
    for (int i = 0; i < 40; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        assert_int_equal(vv_label_find(c, buf, strlen(buf), &l), 0);
        double want = i + 1 + (i == 3 ? 100 : i == 30 ? 200 : 0);
        assert_true(vv_child(sum, l).num == want);
    }
    vv_free(c, sum);
    vv_free(c, w);
    vv_free(c, v);
    vv_ctx_free(c);
}

/* new: block b in form k of make_forms's (made alone: it is the slow part
 * of a test that needs one). */
static vv one_form(vv_ctx *c, const block *b, int k)
{
    vv d;
    OK(vv_from_dense(c, b->rank, b->dims, b->x, &d));
    if (k == 0)
        return d;
    vv f = k == 3 ? VV_ZERO : retree(c, d, k == 1 ? 1.0 : 0.3);
    if (k == 3) {
        char *s = json_of(c, d);
        f = tu_vv(c, s);
        free(s);
    }
    vv_free(c, d);
    return f;
}

/*
 * vv_sum_add against its two steps, vv_add(vv_sum(A), vv_sum(D)): the same
 * value and JSON bytes whenever it makes one, for images of several sizes
 * (rows of other lengths, absent rows, sums that cancel to zero), weights
 * of 1, 0 and others, 0 to 6 terms a side, in every form; 1 (nothing made)
 * for a tree or a non-finite sum; the terms unchanged.
 */
static void test_sum_add(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    static const double ws[] = {1, 1, -1, 0.5, 0, -0.25, 3};
    int made = 0, declined = 0;
    for (int round = 0; round < 600; round++) {
        enum { MAXT = 6 };
        size_t na = rnd_below(4), nd = rnd_below(MAXT + 1);
        double w[2 * MAXT];
        vv t[2 * MAXT];
        double zeros = round % 3 == 0 ? 0.0 : round % 3 == 1 ? 0.3 : 0.8;
        /* dense (vv_from_dense's, parsed) most of the time, else trees */
        int form = rnd_below(4) ? (rnd() & 1 ? 0 : 3) : (int)rnd_below(NFORMS);
        for (size_t k = 0; k < na + nd; k++) {
            block b = rnd_block(2, zeros); /* mostly wide enough to be dense */
            if (rnd_below(5)) {
                free(b.x);
                b.dims[0] = 16 + rnd_below(20), b.dims[1] = 16 + rnd_below(20);
                b.x = malloc(block_len(&b) * sizeof *b.x);
                assert_non_null(b.x);
                for (size_t i = 0; i < block_len(&b); i++)
                    b.x[i] = rnd_pixel(zeros);
            }
            w[k] = ws[rnd_below(sizeof ws / sizeof ws[0])];
            /* mostly one form for all (the fast case), now and then mixed */
            t[k] = one_form(c, &b,
                            rnd_below(8) == 0 ? (int)rnd_below(NFORMS) : form);
            free(b.x);
        }
        bool neg = na + nd >= 2 && round % 5 == 0;
        if (neg) { /* a term and its negative: sums that cancel */
            vv_free(c, t[na + nd - 1]);
            t[na + nd - 1] = t[0];
            w[na + nd - 1] = -w[0];
        }
        char *before = na + nd ? json_of(c, t[0]) : NULL;
        vv sa, sd, want, got;
        OK(vv_sum(c, na, w, t, &sa));
        OK(vv_sum(c, nd, w + na, t + na, &sd));
        OK(vv_add(c, sa, sd, &want));
        int rc = vv_sum_add(c, na, w, t, nd, w + na, t + na, &got);
        if (rc == 0) {
            assert_same(c, "vv_sum_add", want, got);
            vv_free(c, got);
            made++;
        } else {
            assert_int_equal(rc, 1);
            declined++;
        }
        if (before) {
            char *after = json_of(c, t[0]);
            assert_string_equal(before, after);
            free(after);
            free(before);
        }
        vv_free(c, sa), vv_free(c, sd), vv_free(c, want);
        for (size_t k = 0; k < na + nd; k++)
            if (!neg || k + 1 < na + nd)
                vv_free(c, t[k]);
    }
    assert_true(made >= 100);
    assert_true(declined >= 20); /* trees among the terms */
    /* a sum that is not finite: declined, the two steps report it */
    size_t dims[2] = {20, 20};
    double x[400];
    for (int k = 0; k < 400; k++)
        x[k] = 1e308;
    vv big;
    OK(vv_from_dense(c, 2, dims, x, &big));
    double w2[2] = {1, 1};
    vv t2[2] = {big, big}, out;
    assert_int_equal(vv_sum_add(c, 1, w2, t2, 1, w2 + 1, t2 + 1, &out), 1);
    assert_int_equal(vv_add(c, big, big, &out), DMM_E_NONFINITE);
    vv_free(c, big);
    vv_ctx_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms_random),
        cmocka_unit_test(test_dense_is_held),
        cmocka_unit_test(test_labels_out_of_order),
        cmocka_unit_test(test_rollback_decimal_labels),
        cmocka_unit_test(test_bad_blocks),
        cmocka_unit_test(test_label_dec),
        cmocka_unit_test(test_sum_images_edges),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_sum_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
