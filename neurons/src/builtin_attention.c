// SPDX-License-Identifier: MIT
/*
 * Attention as neurons (spec interference.md §5): threshold attention (the
 * mean of a query and the keys close to it in angle), metric attention
 * (softmax of a learned pseudo-distance), and the matrix pieces softmax-rows,
 * softmax-cols and matmul. A matrix is a two-level map row → column → number;
 * every input is validated first, so a bad one is an error, never a guess.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"

/* Dense work arrays are refused above this many entries (8 bytes each). */
#define DENSE_LIMIT ((size_t)1 << 24)

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *in_name(const dmm_fire *f, size_t k)
{
    return f->type->desc->inputs[k];
}

/* A scalar input: a bare number, dflt when absent; a map is an error. */
static int scalar_input(dmm_fire *f, size_t k, double dflt, double *out)
{
    vv v = dmm_fire_in(f, k);
    if (!vv_is_scalar(v))
        return dmm__fire_failf(
            f, DMM_E_INVAL,
            "input %s must be a number, got a map with %zu children",
            in_name(f, k), vv_nchildren(v));
    *out = vv_is_zero(v) ? dflt : v.num;
    return 0;
}

/* ---- sorted label sets ----------------------------------------------------
 */

typedef struct label_set {
    vv_label *l;
    size_t n, cap;
} label_set;

static int set_push(label_set *s, vv_label l)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        vv_label *p = realloc(s->l, cap * sizeof *p);
        if (!p)
            return DMM_E_NOMEM;
        s->l = p;
        s->cap = cap;
    }
    s->l[s->n++] = l;
    return 0;
}

static int cmp_label(const void *a, const void *b)
{
    vv_label x = *(const vv_label *)a, y = *(const vv_label *)b;
    return (x > y) - (x < y);
}

/* Sort and drop duplicates. */
static void set_close(label_set *s)
{
    if (!s->n)
        return;
    qsort(s->l, s->n, sizeof *s->l, cmp_label);
    size_t w = 1;
    for (size_t r = 1; r < s->n; r++)
        if (s->l[r] != s->l[w - 1])
            s->l[w++] = s->l[r];
    s->n = w;
}

/* Index of l in a closed set, or -1. */
static long set_index(const label_set *s, vv_label l)
{
    const vv_label *p =
        s->n ? bsearch(&l, s->l, s->n, sizeof l, cmp_label) : NULL;
    return p ? (long)(p - s->l) : -1;
}

/* Children labels of v's root, appended to s. */
static int set_add_children(label_set *s, vv v)
{
    vv_iter it;
    vv_label l;
    vv c;
    int rc = 0;
    vv_iter_init(&it, v);
    while (!rc && vv_iter_next(&it, &l, &c))
        rc = set_push(s, l);
    return rc;
}

/* ---- matrices --------------------------------------------------------------
 */

/*
 * Check that input k is a matrix: no scalar at the root or at a row, every
 * entry a bare number. rows and cols (may be NULL) get the closed label sets
 * of its rows and of the columns used in any row.
 */
static int check_matrix(dmm_fire *f, size_t k, label_set *rows, label_set *cols)
{
    vv m = dmm_fire_in(f, k);
    const char *what = "a matrix is a two-level map row -> column -> number";
    if (m.num != 0.0)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "input %s has a number at its root; %s",
                               in_name(f, k), what);
    vv_iter it, jt;
    vv_label r, c;
    vv row, e;
    int rc = 0;
    vv_iter_init(&it, m);
    while (vv_iter_next(&it, &r, &row)) {
        const char *rs = vv_label_str(f->vc, r, NULL);
        if (row.num != 0.0)
            return dmm__fire_failf(f, DMM_E_INVAL,
                                   "input %s: row \"%s\" has a number of its "
                                   "own; %s",
                                   in_name(f, k), rs, what);
        vv_iter_init(&jt, row);
        while (vv_iter_next(&jt, &c, &e))
            if (!vv_is_scalar(e))
                return dmm__fire_failf(
                    f, DMM_E_INVAL,
                    "input %s: entry \"%s\"/\"%s\" is a map, not a number; %s",
                    in_name(f, k), rs, vv_label_str(f->vc, c, NULL), what);
        if (rows && (rc = set_push(rows, r)))
            return dmm__fire_fail(f, rc);
        if (cols && (rc = set_add_children(cols, row)))
            return dmm__fire_fail(f, rc);
    }
    if (rows)
        set_close(rows);
    if (cols)
        set_close(cols);
    return 0;
}

/* f->output = {out[0]: v}; takes v. */
static int emit1(dmm_fire *f, vv v)
{
    vv_label l = f->type->out[0];
    int rc = vv_from_pairs(f->vc, 0.0, 1, &l, &v, &f->output);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/* new: {rows[i]: {cols[j]: a[i·nc + j]}}; zeros are dropped. */
static int dense_to_vv(vv_ctx *c, const label_set *rows, const label_set *cols,
                       const double *a, vv *out)
{
    vv *rv = calloc(rows->n ? rows->n : 1, sizeof *rv);
    vv *kids = calloc(cols->n ? cols->n : 1, sizeof *kids);
    int rc = rv && kids ? 0 : DMM_E_NOMEM;
    size_t i = 0;
    for (; i < rows->n && !rc; i++) {
        for (size_t j = 0; j < cols->n; j++)
            kids[j] = vv_number(a[i * cols->n + j]);
        rc = vv_from_pairs(c, 0.0, cols->n, cols->l, kids, &rv[i]);
    }
    if (!rc)
        rc = vv_from_pairs(c, 0.0, rows->n, rows->l, rv, out);
    else
        for (size_t j = 0; j + 1 < i; j++)
            vv_free(c, rv[j]);
    free(rv);
    free(kids);
    return rc;
}

/* In-place softmax of n values spaced stride apart. */
static void softmax_strided(double *x, size_t n, size_t stride)
{
    double m = -INFINITY, sum = 0.0;
    for (size_t k = 0; k < n; k++)
        m = fmax(m, x[k * stride]);
    for (size_t k = 0; k < n; k++)
        sum += x[k * stride] = exp(x[k * stride] - m);
    for (size_t k = 0; k < n; k++)
        x[k * stride] /= sum;
}

/*
 * softmax-rows and softmax-cols of an image held as one block (a slab,
 * vv_dense_view): the support's rows and columns are found by a scan, the
 * support is gathered into the same compact array, in the same order (a
 * slab's labels are "0", "1", ... with increasing ids, the order of the
 * label sets below), and put through the same softmax_strided, so the bits
 * are the general path's; the result is one block. 1 when v is no slab.
 */
static int softmax_block(dmm_fire *f, bool by_rows, double tau)
{
    size_t nr, nc, ld;
    const double *x;
    if (!vv_dense_view(dmm_fire_in(f, 0), &nr, &nc, &ld, &x))
        return 1;
    if (nc > DENSE_LIMIT / nr)
        return 1; /* the general path says so */
    size_t *ri = malloc(nr * sizeof *ri), *ci = malloc(nc * sizeof *ci);
    bool *cu = calloc(nc, sizeof *cu);
    double *a = NULL, *out = calloc(nr * nc, sizeof *out);
    size_t m = 0, n = 0;
    int rc = ri && ci && cu && out ? 0 : DMM_E_NOMEM;
    for (size_t i = 0; i < nr && !rc; i++) {
        bool any = false;
        for (size_t j = 0; j < nc; j++)
            if (x[i * ld + j] != 0.0)
                any = cu[j] = true;
        if (any)
            ri[m++] = i;
    }
    for (size_t j = 0; j < nc && !rc; j++)
        if (cu[j])
            ci[n++] = j;
    if (!rc && !(a = malloc((m && n ? m * n : 1) * sizeof *a)))
        rc = DMM_E_NOMEM;
    if (!rc) {
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                a[i * n + j] = x[ri[i] * ld + ci[j]] / tau;
        if (by_rows)
            for (size_t i = 0; i < m; i++)
                softmax_strided(a + i * n, n, 1);
        else
            for (size_t j = 0; j < n; j++)
                softmax_strided(a + j, m, n);
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                out[ri[i] * nc + ci[j]] = a[i * n + j];
        vv r = VV_ZERO;
        size_t dims[2] = {nr, nc};
        if (m && !(rc = vv_from_dense(f->vc, 2, dims, out, &r)))
            rc = emit1(f, r);
        else if (rc)
            rc = dmm__fire_fail(f, rc);
    } else
        rc = dmm__fire_fail(f, rc);
    free(ri);
    free(ci);
    free(cu);
    free(a);
    free(out);
    return rc;
}

/*
 * softmax-rows and softmax-cols. Absent entries are zeros of a sparse matrix,
 * not missing ones: inside the matrix's support (the rows stored and the
 * columns used by any row) an absent entry counts as 0, so exp(0 − max) takes
 * part in the sum. The other reading, a softmax over the stored entries only,
 * would give a score of exactly 0 no weight at all while a score of 1e−300
 * gets e^0 of it: a jump that canonical form (no stored zeros) would make
 * happen whenever a sum cancels. A row (column) absent from the whole matrix
 * is outside the support and stays absent.
 */
static int fire_softmax_axis(dmm_fire *f, bool by_rows)
{
    label_set rows = {0}, cols = {0};
    double *a = NULL;
    double tau = dmm_fire_param(f, 0); /* input temperature, else params */
    if (!(tau > 0.0) || !isfinite(tau))
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "temperature must be positive, got %g", tau);
    int rc = softmax_block(f, by_rows, tau);
    if (rc <= 0)
        return rc;
    rc = check_matrix(f, 0, &rows, &cols);
    if (rc)
        goto done;
    if (rows.n && cols.n > DENSE_LIMIT / rows.n) {
        rc = dmm__fire_failf(f, DMM_E_LIMIT,
                             "a %zu x %zu matrix is larger than the %zu "
                             "entries a softmax works on",
                             rows.n, cols.n, DENSE_LIMIT);
        goto done;
    }
    a = calloc(rows.n * cols.n + 1, sizeof *a);
    if (!a) {
        rc = dmm__fire_fail(f, DMM_E_NOMEM);
        goto done;
    }
    vv m = dmm_fire_in(f, 0);
    for (size_t i = 0; i < rows.n; i++) {
        vv_iter it;
        vv_label c;
        vv e;
        vv_iter_init(&it, vv_child(m, rows.l[i]));
        while (vv_iter_next(&it, &c, &e))
            a[i * cols.n + (size_t)set_index(&cols, c)] = e.num / tau;
    }
    if (by_rows)
        for (size_t i = 0; i < rows.n; i++)
            softmax_strided(a + i * cols.n, cols.n, 1);
    else
        for (size_t j = 0; j < cols.n; j++)
            softmax_strided(a + j, rows.n, cols.n);
    vv r;
    if ((rc = dense_to_vv(f->vc, &rows, &cols, a, &r)))
        rc = dmm__fire_fail(f, rc);
    else
        rc = emit1(f, r);
done:
    free(rows.l);
    free(cols.l);
    free(a);
    return rc;
}

static int fire_softmax_rows(dmm_fire *f)
{
    return fire_softmax_axis(f, true);
}

static int fire_softmax_cols(dmm_fire *f)
{
    return fire_softmax_axis(f, false);
}

/*
 * A block as dgemm reads it: its view when it is held as one (no copy), else
 * a copy of its dims[0] × dims[1] entries into *buf (to free). 0 or NOMEM.
 */
static int block_operand(dmm_fire *f, vv v, const size_t *dims,
                         const double **x, size_t *ld, double **buf)
{
    size_t rows, cols;
    *buf = NULL;
    if (vv_dense_view(v, &rows, &cols, ld, x))
        return 0;
    *buf = malloc(dims[0] * dims[1] * sizeof **buf);
    if (!*buf)
        return DMM_E_NOMEM;
    int rc = vv_dense_read(f->vc, v, 2, dims, *buf);
    dmm_assert(!rc); /* vv_dense_shape said it fits */
    (void)rc;
    *x = *buf;
    *ld = dims[1];
    return 0;
}

/*
 * The product of two blocks (matrices whose labels are all decimal
 * integers, vv_dense_shape) by cblas_dgemm: left is m × K and right K × n,
 * K the smaller of left's columns and right's rows (past it one side is all
 * zeros). Images held as one block (vv_dense_view) are passed as they are,
 * others copied first. 1 when it does not apply (a label that is no number,
 * a block past DENSE_LIMIT entries), else 0 or an error with f set.
 *
 * The contract: dgemm sums each entry in its own order (blocked, with FMA
 * where the processor has it), so an entry may differ from the sparse
 * product's Σ_j in term order by rounding, at most about K·2⁻⁵³·Σ_j
 * |left[i][j]·right[j][k]|; where every partial sum is exact (integers,
 * quarters) it is the same. The dense and the nested forms of the same
 * matrices give the same bits: dgemm gets the same m, n, K and numbers
 * (it packs its operands first, so the row pitch does not matter).
 */
static int matmul_blas(dmm_fire *f, vv left, vv right, vv *out)
{
    int rl, rr;
    size_t dl[3], dr[3];
    if (!vv_dense_shape(f->vc, left, &rl, dl) || rl != 2 ||
        !vv_dense_shape(f->vc, right, &rr, dr) || rr != 2)
        return 1;
    size_t m = dl[0], k = dl[1] < dr[0] ? dl[1] : dr[0], n = dr[1];
    if (dl[1] > DENSE_LIMIT / m || dr[0] > DENSE_LIMIT / n ||
        m > DENSE_LIMIT / n)
        return 1;
    const double *a, *b;
    size_t lda, ldb, dp[2] = {m, n};
    double *ab = NULL, *bb = NULL, *p = malloc(m * n * sizeof *p);
    int rc = p ? 0 : DMM_E_NOMEM;
    if (!rc)
        rc = block_operand(f, left, dl, &a, &lda, &ab);
    if (!rc)
        rc = block_operand(f, right, dr, &b, &ldb, &bb);
    if (!rc) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n,
                    (int)k, 1.0, a, (int)lda, b, (int)ldb, 0.0, p, (int)n);
        rc = vv_from_dense(f->vc, 2, dp, p, out);
    }
    free(ab);
    free(bb);
    free(p);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/* product[i] = Σ_j left[i][j] · right[j] = lincomb(left[i], right): absent
 * entries are zeros on both sides, so the product is the sparse one. Blocks
 * go to BLAS (matmul_blas). */
static int fire_matmul(dmm_fire *f)
{
    int rc;
    vv left = dmm_fire_in(f, 0), right = dmm_fire_in(f, 1);
    vv bp;
    /* blocks are matrices: checked by vv_dense_shape, not entry by entry */
    if ((rc = matmul_blas(f, left, right, &bp)) <= 0)
        return rc ? rc : vv_is_zero(bp) ? 0 : emit1(f, bp);
    if ((rc = check_matrix(f, 0, NULL, NULL)) ||
        (rc = check_matrix(f, 1, NULL, NULL)))
        return rc;
    size_t n = vv_nchildren(left);
    if (n == 0)
        return 0;
    vv_label *labels = malloc(n * sizeof *labels);
    vv *rows = calloc(n, sizeof *rows);
    if (!labels || !rows) {
        rc = DMM_E_NOMEM;
        goto done;
    }
    vv_iter it;
    vv row;
    size_t k = 0;
    vv_iter_init(&it, left);
    while (!rc && vv_iter_next(&it, &labels[k], &row))
        if (!(rc = vv_lincomb(f->vc, row, right, &rows[k])))
            k++;
    if (rc) {
        for (size_t j = 0; j < k; j++)
            vv_free(f->vc, rows[j]);
        goto done;
    }
    vv p;
    if (!(rc = vv_from_pairs(f->vc, 0.0, n, labels, rows, &p))) {
        free(labels);
        free(rows);
        return emit1(f, p);
    }
done:
    free(labels);
    free(rows);
    return dmm__fire_fail(f, rc);
}

/* ---- threshold attention --------------------------------------------------
 */

/* cos(a, b) for non-zero a, b of any shape, computed on copies scaled to a
 * largest |scalar| of 1, so the dot products neither overflow nor underflow
 * to 0. Clamped to [−1, 1] against rounding. */
static int cosine(vv_ctx *c, vv a, vv b, double *out)
{
    vv sa, sb;
    int rc = vv_scale(c, 1.0 / vv_max_norm(a), a, &sa);
    if (rc)
        return rc;
    if ((rc = vv_scale(c, 1.0 / vv_max_norm(b), b, &sb))) {
        vv_free(c, sa);
        return rc;
    }
    double ab, aa, bb;
    if (!(rc = vv_dot(c, sa, sb, &ab)) && !(rc = vv_dot(c, sa, sa, &aa)) &&
        !(rc = vv_dot(c, sb, sb, &bb)))
        *out = fmax(-1.0, fmin(1.0, ab / (sqrt(aa) * sqrt(bb))));
    vv_free(c, sa);
    vv_free(c, sb);
    return rc;
}

/*
 * y = (query + Σ selected keys) / (1 + #selected), a key selected when its
 * cosine similarity with the query is at least the threshold. A zero query
 * has no direction: it selects nothing and y is zero, which is what a network
 * sees in its first cycles, before any signal arrives, so it is not an error.
 */
static int fire_threshold_attention(dmm_fire *f)
{
    double thr = 0.0; /* set by scalar_input; gcc cannot see it */
    int rc = scalar_input(f, 2, 0.0, &thr);
    if (rc)
        return rc;
    vv q = dmm_fire_in(f, 0), keys = dmm_fire_in(f, 1);
    if (keys.num != 0.0)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "input keys has a number at its root; keys "
                               "are a map label -> key vector");
    if (vv_is_zero(q))
        return 0;
    size_t n = vv_nchildren(keys);
    vv_label *sel = malloc((n + 1) * sizeof *sel);
    vv *terms = malloc((n + 1) * sizeof *terms);
    double *w = malloc((n + 1) * sizeof *w);
    vv *ones = malloc((n + 1) * sizeof *ones);
    if (!sel || !terms || !w || !ones) {
        rc = DMM_E_NOMEM;
        goto done;
    }
    size_t m = 0;
    terms[0] = q;
    vv_iter it;
    vv key;
    vv_iter_init(&it, keys);
    while (!rc && vv_iter_next(&it, &sel[m], &key)) {
        double cs;
        if (!(rc = cosine(f->vc, q, key, &cs)) && cs >= thr)
            terms[++m] = key;
    }
    if (rc)
        goto done;
    for (size_t k = 0; k <= m; k++) {
        w[k] = 1.0 / (double)(m + 1);
        ones[k] = vv_number(1.0);
    }
    vv y, selected;
    if ((rc = vv_sum(f->vc, m + 1, w, terms, &y)))
        goto done;
    if ((rc = vv_from_pairs(f->vc, 0.0, m, sel, ones, &selected))) {
        vv_free(f->vc, y);
        goto done;
    }
    vv outs[2] = {y, selected};
    rc = vv_from_pairs(f->vc, 0.0, 2, f->type->out, outs, &f->output);
done:
    free(sel);
    free(terms);
    free(w);
    free(ones);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/* ---- metric attention ------------------------------------------------------
 */

typedef struct metric_work {
    label_set items, comps, mrows, mcols;
    double *x; /* items × comps */
    double *p; /* items × dim: M x_i, or x_i when M is the identity */
    double *a; /* items × items */
    vv *terms; /* the item vectors, borrowed */
    vv *rows;  /* output rows being built */
    vv *wrows; /* weight rows being built */
} metric_work;

static void metric_work_free(metric_work *w)
{
    free(w->items.l);
    free(w->comps.l);
    free(w->mrows.l);
    free(w->mcols.l);
    free(w->x);
    free(w->p);
    free(w->a);
    free(w->terms);
    free(w->rows);
    free(w->wrows);
}

/* Check x: a map item -> vector, each vector a map component -> number. */
static int check_items(dmm_fire *f, metric_work *w)
{
    vv x = dmm_fire_in(f, 0);
    const char *what = "x is a map label -> vector, a vector a map "
                       "component -> number";
    if (x.num != 0.0)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "input x has a number at its root; %s", what);
    vv_iter it, jt;
    vv_label l, c;
    vv v, e;
    int rc;
    vv_iter_init(&it, x);
    while (vv_iter_next(&it, &l, &v)) {
        const char *ls = vv_label_str(f->vc, l, NULL);
        if (v.num != 0.0)
            return dmm__fire_failf(f, DMM_E_INVAL,
                                   "input x: \"%s\" has a number of its own; "
                                   "%s",
                                   ls, what);
        vv_iter_init(&jt, v);
        while (vv_iter_next(&jt, &c, &e))
            if (!vv_is_scalar(e))
                return dmm__fire_failf(
                    f, DMM_E_INVAL,
                    "input x: component \"%s\"/\"%s\" is a map, not a "
                    "number; %s",
                    ls, vv_label_str(f->vc, c, NULL), what);
        if ((rc = set_push(&w->items, l)) ||
            (rc = set_add_children(&w->comps, v)))
            return dmm__fire_fail(f, rc);
    }
    set_close(&w->items);
    set_close(&w->comps);
    return 0;
}

/*
 * a_ij = softmax_j(−‖M(x_i − x_j)‖² / τ), y_i = Σ_j a_ij x_j (Ruan & Zhang).
 * M(x_i − x_j) = p_i − p_j with p_i = M x_i, so M is applied n times, not n².
 * j runs over every item, i itself included (distance 0, the largest score,
 * which keeps every exponent ≤ 0). M's columns index the vectors' components
 * (a column no vector uses multiplies zeros), its rows the components of
 * M x; an absent M is the identity (plain squared distance), since the zero
 * matrix, which is what absent means elsewhere, would make every a_ij equal.
 */
static int fire_metric_attention(dmm_fire *f)
{
    metric_work w = {0};
    double tau = 1.0; /* set by scalar_input; gcc cannot see it */
    int rc;
    if ((rc = scalar_input(f, 2, 1.0, &tau)))
        return rc;
    if (!(tau > 0.0))
        return dmm__fire_failf(
            f, DMM_E_INVAL, "input temperature must be positive, got %g", tau);
    bool identity = vv_is_zero(dmm_fire_in(f, 1));
    if ((rc = check_items(f, &w)) ||
        (!identity && (rc = check_matrix(f, 1, &w.mrows, &w.mcols))))
        goto out;
    size_t n = w.items.n, nc = w.comps.n;
    size_t dim = identity ? nc : w.mrows.n;
    if (n == 0)
        goto out;
    if (n > DENSE_LIMIT / n || (nc && n > DENSE_LIMIT / nc) ||
        (dim && n > DENSE_LIMIT / dim)) {
        rc = dmm__fire_failf(f, DMM_E_LIMIT,
                             "%zu vectors of %zu components need more than "
                             "the %zu entries metric attention works on",
                             n, nc, DENSE_LIMIT);
        goto out;
    }
    w.x = calloc(n * nc + 1, sizeof *w.x);
    w.p = identity ? w.x : calloc(n * dim + 1, sizeof *w.p);
    w.a = calloc(n * n, sizeof *w.a);
    w.terms = calloc(n, sizeof *w.terms);
    w.rows = calloc(n, sizeof *w.rows);
    w.wrows = calloc(n, sizeof *w.wrows);
    if (!w.x || !w.p || !w.a || !w.terms || !w.rows || !w.wrows) {
        rc = dmm__fire_fail(f, DMM_E_NOMEM);
        if (identity)
            w.p = NULL;
        goto out;
    }
    vv x = dmm_fire_in(f, 0), mat = dmm_fire_in(f, 1);
    for (size_t i = 0; i < n; i++) {
        w.terms[i] = vv_child(x, w.items.l[i]);
        vv_iter it;
        vv_label c;
        vv e;
        vv_iter_init(&it, w.terms[i]);
        while (vv_iter_next(&it, &c, &e))
            w.x[i * nc + (size_t)set_index(&w.comps, c)] = e.num;
    }
    if (!identity)
        for (size_t r = 0; r < dim; r++) {
            vv_iter it;
            vv_label c;
            vv e;
            vv_iter_init(&it, vv_child(mat, w.mrows.l[r]));
            while (vv_iter_next(&it, &c, &e)) {
                long j = set_index(&w.comps, c);
                for (size_t i = 0; j >= 0 && i < n; i++)
                    w.p[i * dim + r] += e.num * w.x[i * nc + (size_t)j];
            }
        }
    for (size_t k = 0; k < n * dim; k++)
        if (!isfinite(w.p[k])) {
            rc = dmm__fire_failf(f, DMM_E_NONFINITE,
                                 "M x overflows for vector \"%s\"",
                                 vv_label_str(f->vc, w.items.l[k / dim], NULL));
            goto out;
        }
    for (size_t i = 0; i < n; i++) {
        double *ai = w.a + i * n;
        for (size_t j = 0; j < n; j++) {
            double d2 = 0.0; /* may reach +inf: exp(−inf) = 0, no NaN */
            for (size_t r = 0; r < dim; r++) {
                double d = w.p[i * dim + r] - w.p[j * dim + r];
                d2 += d * d;
            }
            ai[j] = -d2 / tau;
        }
        softmax_strided(ai, n, 1);
    }
    size_t built = 0;
    for (; built < n; built++) {
        rc = vv_sum(f->vc, n, w.a + built * n, w.terms, &w.rows[built]);
        if (rc)
            break;
        vv *kids = malloc(n * sizeof *kids);
        if (!kids) {
            rc = DMM_E_NOMEM;
            vv_free(f->vc, w.rows[built]);
            break;
        }
        for (size_t j = 0; j < n; j++)
            kids[j] = vv_number(w.a[built * n + j]);
        rc = vv_from_pairs(f->vc, 0.0, n, w.items.l, kids, &w.wrows[built]);
        free(kids);
        if (rc) {
            vv_free(f->vc, w.rows[built]);
            break;
        }
    }
    if (rc) {
        for (size_t j = 0; j < built; j++) {
            vv_free(f->vc, w.rows[j]);
            vv_free(f->vc, w.wrows[j]);
        }
        rc = dmm__fire_fail(f, rc);
        goto out;
    }
    vv outs[2];
    if ((rc = vv_from_pairs(f->vc, 0.0, n, w.items.l, w.rows, &outs[0]))) {
        for (size_t j = 0; j < n; j++)
            vv_free(f->vc, w.wrows[j]);
        rc = dmm__fire_fail(f, rc);
        goto out;
    }
    if ((rc = vv_from_pairs(f->vc, 0.0, n, w.items.l, w.wrows, &outs[1]))) {
        vv_free(f->vc, outs[0]);
        rc = dmm__fire_fail(f, rc);
        goto out;
    }
    if ((rc = vv_from_pairs(f->vc, 0.0, 2, f->type->out, outs, &f->output)))
        rc = dmm__fire_fail(f, rc);
out:
    if (identity)
        w.p = NULL; /* the same array as w.x */
    metric_work_free(&w);
    return rc;
}

static const dmm_param_spec softmax_params[] = {
    {"temperature", 1,
     "entries are divided by it before the softmax; an "
     "input stream temperature overrides it"},
    {NULL, 0, NULL},
};

const dmm_neuron_type dmm__builtin_attention[] = {
    {.name = "threshold-attention",
     .summary = "attention by angle (paper eq. 2): y = mean of query and every "
                "key (keys: a map label -> vector, vectors of any shape) whose "
                "cosine similarity with query is >= threshold (a bare number, "
                "0 when absent); selected = {label: 1} for those keys; a zero "
                "query selects nothing and gives {}",
     .inputs = NAMES("query", "keys", "threshold"),
     .outputs = NAMES("y", "selected"),
     .fn = fire_threshold_attention},
    {.name = "metric-attention",
     .summary = "attention by a learned pseudo-metric (Ruan & Zhang): over the "
                "vectors of x (a map label -> {component: number}), "
                "weights[i][j] = softmax_j(-|M(x_i - x_j)|^2 / temperature), "
                "y[i] = sum_j weights[i][j] x_j; metric M is a matrix over the "
                "components (row -> column -> number), the identity when "
                "absent; temperature a positive bare number, 1 when absent",
     .inputs = NAMES("x", "metric", "temperature"),
     .outputs = NAMES("y", "weights"),
     .fn = fire_metric_attention},
    {.name = "softmax-rows",
     .summary = "softmax along each row of a matrix (row -> column -> number): "
                "absent entries of a stored row count as 0 over the columns "
                "used anywhere in the matrix (sparse zeros, not missing "
                "values), so the output is dense on that support; a row with "
                "no entries is absent and stays absent; entries are divided by "
                "the temperature first",
     .inputs = NAMES("matrix"),
     .outputs = NAMES("matrix"),
     .params = softmax_params,
     .fn = fire_softmax_rows},
    {.name = "softmax-cols",
     .summary = "softmax down each column of a matrix (row -> column -> "
                "number), over the rows stored in the matrix, absent entries "
                "counting as 0 (as softmax-rows); softmax-rows of the left "
                "and softmax-cols of the right matrix into matmul give the "
                "'richer' product; entries are divided by the temperature "
                "first",
     .inputs = NAMES("matrix"),
     .outputs = NAMES("matrix"),
     .params = softmax_params,
     .fn = fire_softmax_cols},
    {.name = "matmul",
     .summary = "product[i][k] = sum_j left[i][j] * right[j][k] over matrices "
                "(row -> column -> number); sparse: absent entries are 0 and "
                "zero results are absent; matrices whose labels are all "
                "decimal integers (images) are multiplied by BLAS dgemm, "
                "exact up to its rounding order",
     .inputs = NAMES("left", "right"),
     .outputs = NAMES("product"),
     .fn = fire_matmul},
    {.name = NULL},
};
