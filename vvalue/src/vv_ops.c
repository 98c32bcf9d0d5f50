// SPDX-License-Identifier: MIT
/*
 * V-value algebra and structure: construction, paths, the vector-space
 * operations, the generalised products and comparison. Every result is
 * canonical; every arithmetic result is checked for NaN and infinity.
 * Recursion follows the nesting of values, which the context's max depth
 * bounds for every value this library builds.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "vv_internal.h"

vv vv_ref(vv v)
{
    if (v.map)
        vv__map_ref(v.map);
    return v;
}

void vv_free(vv_ctx *c, vv v)
{
    if (v.map)
        vv__map_unref(c, v.map);
}

static inline double clean(double x)
{
    return x == 0.0 ? 0.0 : x; /* no negative zero */
}

/* ---- structure ------------------------------------------------------------
 */

vv vv_child(vv v, vv_label label)
{
    if (!v.map)
        return VV_ZERO;
    vv r;
    vv__map_find(v.map, label, &r);
    return r;
}

vv vv_get(vv v, const vv_label *path, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!v.map)
            return VV_ZERO;
        v = vv_child(v, path[i]);
    }
    return v;
}

size_t vv_nchildren(vv v)
{
    return v.map ? v.map->total : 0;
}

int vv_depth(vv v)
{
    return vv__depth_of(v);
}

int vv_wrap(vv_ctx *c, double num, vv_label label, vv child, vv *out)
{
    if (!isfinite(num))
        return DMM_E_NONFINITE;
    if (vv__depth_of(child) + 1 > c->max_depth)
        return DMM_E_DEPTH;
    vv r = {clean(num), NULL};
    if (!vv_is_zero(child)) {
        /* one entry: a leaf of one, made directly (what slot_begin and
         * slot_end make of an empty map, without their search) */
        bool maps = child.map != NULL;
        vv_map *m = vv__leaf_new(c, 1, maps);
        if (!m)
            return DMM_E_NOMEM;
        vv__keys(m)[0] = label;
        vv__nums(m)[0] = child.num;
        if (maps)
            vv__maps(m)[0] = vv_ref(child).map;
        m->n = 1;
        m->total = 1;
        m->vdepth = (uint16_t)vv__depth_of(child);
        r.map = m;
    }
    *out = r;
    return 0;
}

bool vv_rewrap(vv_ctx *c, vv v, const vv_label *path, size_t n, vv child,
               vv *below)
{
    int depth = vv__depth_of(child);
    if (n == 0 || vv_is_zero(child) || (size_t)depth + n > (size_t)c->max_depth)
        return false;
    /* First check the whole chain, then write it: a chain that does not
     * fit is left as it was. */
    vv_map *m = v.map;
    for (size_t i = 0; i < n; i++) {
        bool last = i + 1 == n;
        if (!m || vv__is_dense(m) || m->height || m->n != 1 ||
            __atomic_load_n(&m->refs, __ATOMIC_ACQUIRE) != 1 ||
            (last ? child.map && !m->maps : !m->maps))
            return false;
        if (!last)
            m = vv__maps(m)[0];
    }
    /* Node i holds path[i] and is depth + n - 1 - i deep (vv_wrap's). */
    m = v.map;
    for (size_t i = 0; i + 1 < n; i++) {
        vv__keys(m)[0] = path[i];
        vv__nums(m)[0] = 0.0;
        m->vdepth = (uint16_t)(depth + (n - 1 - i));
        m = vv__maps(m)[0];
    }
    vv_map *old = m->maps ? vv__maps(m)[0] : NULL;
    vv__keys(m)[0] = path[n - 1];
    vv__nums(m)[0] = child.num;
    if (old != child.map) /* (the same child keeps its reference) */
        vv__maps(m)[0] = vv_ref(child).map;
    else
        old = NULL;
    m->vdepth = (uint16_t)depth;
    if (below)
        *below = n > 1 ? (vv){0.0, vv__maps(v.map)[0]} : child;
    if (old)
        vv__map_unref(c, old);
    return true;
}

/* A label and where it came from: sorting by both keeps equal labels in
 * their original order, which qsort alone does not. */
typedef struct pair_ix {
    vv_label label;
    uint32_t ix;
} pair_ix;

static int cmp_pair(const void *a, const void *b)
{
    const pair_ix *x = a, *y = b;
    if (x->label != y->label)
        return x->label < y->label ? -1 : 1;
    return x->ix < y->ix ? -1 : x->ix > y->ix;
}

int vv_add(vv_ctx *c, vv a, vv b, vv *out);

/* Push pairs in any order through a sorted index, adding duplicates.
 * Takes every child, also on error. */
static int push_unsorted(vv_ctx *c, vv__builder *b, size_t n,
                         const vv_label *labels, vv *children)
{
    pair_ix *ix = n <= UINT32_MAX ? vv__alloc(c, n * sizeof *ix) : NULL;
    if (!ix) {
        for (size_t i = 0; i < n; i++) {
            vv_free(c, children[i]);
            children[i] = VV_ZERO;
        }
        return DMM_E_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        ix[i] = (pair_ix){labels[i], (uint32_t)i};
    qsort(ix, n, sizeof *ix, cmp_pair);
    int rc = 0;
    for (size_t i = 0; i < n;) {
        vv sum = children[ix[i].ix];
        children[ix[i].ix] = VV_ZERO;
        size_t j = i + 1;
        for (; j < n && ix[j].label == ix[i].label; j++) {
            vv next;
            vv *dup = &children[ix[j].ix];
            if (!rc)
                rc = vv_add(c, sum, *dup, &next);
            vv_free(c, *dup);
            *dup = VV_ZERO;
            if (!rc) {
                vv_free(c, sum);
                sum = next;
            }
        }
        if (rc || vv_is_zero(sum))
            vv_free(c, sum);
        else
            rc = vv__push(b, ix[i].label, sum);
        i = j;
    }
    vv__free_mem(c, ix, n * sizeof *ix);
    return rc;
}

/*
 * vv_from_pairs of bare numbers under increasing labels, fewer than a leaf
 * holds, as full as the builder keeps a leaf and not a dense level: their
 * leaf, filled as the labels' order is checked (each pair stored at the
 * next place, which only a number not 0 takes) and the same value the
 * general way makes. 1 for any other pairs: the general way then.
 */
static int small_leaf(vv_ctx *c, double num, size_t n, const vv_label *labels,
                      const vv *children, vv *out)
{
    if (n == 0 || n > VV__LEAF_MAX || !isfinite(num) || c->max_depth < 1)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (children[i].map)
            return 1;
    vv_map *leaf = vv__leaf_new(c, (unsigned)n, false);
    if (!leaf)
        return DMM_E_NOMEM;
    vv_label *key = vv__keys(leaf);
    double *x = vv__nums(leaf);
    size_t m = 0;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        ok &= i == 0 || labels[i - 1] < labels[i];
        key[m] = labels[i];
        x[m] = children[i].num;
        m += children[i].num != 0.0;
    }
    /* Dense takes at least VV__DENSE_MIN / 2 entries and a decimal label of
     * VV__DENSE_MIN - 1 or more within the run "0" .. dec_mono - 1, whose
     * ids increase with the number: the last label (the largest id) is
     * then at least that one's. The builder gives a leaf under 3/4 full
     * its exact size. */
    uint32_t wide = VV__DENSE_MIN - 1;
    bool dense = m >= VV__DENSE_MIN / 2 && vv__dec_mono(c) > wide &&
                 labels[n - 1] >= vv__dec_id(c, wide);
    if (!ok || dense || m * 4 < n * 3) {
        vv__map_unref(c, leaf); /* empty: its n is 0 */
        return 1;
    }
    leaf->n = (uint16_t)m;
    leaf->total = (uint32_t)m;
    *out = (vv){clean(num), leaf};
    return 0;
}

int vv_from_pairs(vv_ctx *c, double num, size_t n, const vv_label *labels,
                  vv *children, vv *out)
{
    int rc = small_leaf(c, num, n, labels, children, out);
    if (rc <= 0) { /* bare numbers: nothing of children to take */
        for (size_t i = 0; i < n; i++)
            children[i] = VV_ZERO;
        return rc;
    }
    rc = 0;
    vv__builder b;
    vv__build_init(&b, c, n);
    if (!isfinite(num))
        rc = DMM_E_NONFINITE;
    for (size_t i = 0; i < n && !rc; i++)
        if (vv__depth_of(children[i]) + 1 > c->max_depth)
            rc = DMM_E_DEPTH;
    vv_map *dense = NULL;
    if (!rc && (rc = vv__dense_try(c, n, labels, children, &dense)) == 0 &&
        dense) { /* the node holds its own references */
        for (size_t i = 0; i < n; i++) {
            vv_free(c, children[i]);
            children[i] = VV_ZERO;
        }
        *out = (vv){clean(num), dense};
        return 0;
    }
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = labels[i - 1] < labels[i];
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            vv_free(c, children[i]);
            children[i] = VV_ZERO;
        }
    } else if (sorted) { /* the engine's case: no index, no sort */
        for (size_t i = 0; i < n; i++) {
            vv v = children[i];
            children[i] = VV_ZERO;
            if (rc || vv_is_zero(v))
                vv_free(c, v);
            else
                rc = vv__push(&b, labels[i], v);
        }
    } else {
        rc = push_unsorted(c, &b, n, labels, children);
    }
    vv r = {clean(num), NULL};
    if (!rc)
        rc = vv__build_finish(&b, &r.map);
    else
        vv__build_abort(&b);
    if (!rc)
        *out = r;
    return rc;
}

static int set_rec(vv_ctx *c, vv v, const vv_label *path, size_t n, vv sub,
                   vv *out)
{
    if (n == 0) {
        *out = vv_ref(sub);
        return 0;
    }
    vv nc;
    int rc = set_rec(c, vv_child(v, path[0]), path + 1, n - 1, sub, &nc);
    if (rc)
        return rc;
    vv r = vv_ref(v);
    vv__slot s;
    rc = vv__slot_begin(c, &r.map, path[0], nc.map != NULL, &s);
    if (rc) {
        vv_free(c, nc);
        vv_free(c, r);
        return rc;
    }
    if (*s.map)
        vv__map_unref(c, *s.map);
    *s.num = nc.num;
    *s.map = nc.map;
    vv__slot_end(c, &r.map, path[0]);
    *out = r;
    return 0;
}

int vv_set(vv_ctx *c, vv v, const vv_label *path, size_t n, vv sub, vv *out)
{
    if (n + (size_t)vv__depth_of(sub) > (size_t)c->max_depth)
        return DMM_E_DEPTH;
    return set_rec(c, v, path, n, sub, out);
}

/* ---- scaling and merging ----------------------------------------------------
 */

/*
 * The loops over the doubles of scalar leaves, written with GCC vector
 * extensions because the auto-vectoriser gives up on the finiteness and zero
 * flags. xo[i] = wa·xa[i] + wb·xb[i] (xb may be NULL: then wb is unused);
 * xo may be xa. Returns NUMS_BAD when some result is NaN or infinite and
 * NUMS_ZERO when some result is zero (the caller drops those entries).
 */
enum { NUMS_BAD = 1, NUMS_ZERO = 2 };
typedef double v2d __attribute__((vector_size(16)));
typedef int64_t v2l __attribute__((vector_size(16)));

static inline __attribute__((always_inline)) unsigned
nums_comb(double *xo, const double *xa, double wa, const double *xb, double wb,
          unsigned n)
{
    v2l bad = {0, 0}, zero = {0, 0};
    unsigned i = 0;
    for (; i + 2 <= n; i += 2) {
        v2d a, b, x;
        memcpy(&a, xa + i, sizeof a);
        if (xb) {
            memcpy(&b, xb + i, sizeof b);
            x = wa * a + wb * b;
        } else {
            x = wa * a;
        }
        memcpy(xo + i, &x, sizeof x);
        v2d t = x - x; /* NaN exactly when x is not finite */
        bad |= t != t;
        zero |= x == 0.0;
    }
    unsigned r =
        (bad[0] | bad[1] ? NUMS_BAD : 0) | (zero[0] | zero[1] ? NUMS_ZERO : 0);
    for (; i < n; i++) {
        double x = xb ? wa * xa[i] + wb * xb[i] : wa * xa[i];
        xo[i] = x;
        r |= (isfinite(x) ? 0 : NUMS_BAD) | (x == 0.0 ? NUMS_ZERO : 0);
    }
    return r;
}

/* Drop the zero entries of a scalar leaf (no map array). */
static void leaf_drop_zeros(vv_map *o)
{
    vv_label *k = vv__keys(o);
    double *x = vv__nums(o);
    unsigned m = 0;
    for (unsigned i = 0; i < o->n; i++)
        if (x[i] != 0.0) {
            k[m] = k[i];
            x[m++] = x[i];
        }
    o->n = (uint16_t)m;
    o->total = m;
}

/* Push the scalar leaf S scaled by w, and optionally plus wb·B (a leaf with
 * the same keys), as a new leaf. */
static int push_leaf_comb(vv_ctx *c, const vv_map *S, double w, const vv_map *B,
                          double wb, vv__builder *bld)
{
    unsigned n = S->n;
    vv_map *o = vv__leaf_new(c, n, false);
    if (!o)
        return DMM_E_NOMEM;
    unsigned f =
        nums_comb(vv__nums(o), vv__nums(S), w, B ? vv__nums(B) : NULL, wb, n);
    memcpy(vv__keys(o), vv__keys(S), n * sizeof(vv_label));
    o->n = (uint16_t)n;
    o->total = n;
    if (f & NUMS_ZERO) /* cancelled entries leave the leaf */
        leaf_drop_zeros(o);
    if ((f & NUMS_BAD) || o->n == 0) {
        vv__map_unref(c, o);
        return f & NUMS_BAD ? DMM_E_NONFINITE : 0;
    }
    return vv__build_push_leaf(bld, o);
}

/* Computes the new child for label k from the child v of a source map. */
typedef int (*child_fn)(vv_ctx *c, vv_label k, vv v, void *ud, vv *out);

/*
 * new: the map of fn(k, v) over the children of m, in order, zero results
 * dropped (NULL when none is left). The one loop behind every operation that
 * rebuilds a node child by child. Always inlined, so that each caller's fn is
 * a direct call the compiler can inline (an indirect call per child made
 * vv_scale three times slower).
 */
static inline __attribute__((always_inline)) int
map_children(vv_ctx *c, const vv_map *m, child_fn fn, void *ud, vv_map **out)
{
    vv__builder b;
    vv__build_init(&b, c, m->total);
    b.maps = m->vdepth > 0;
    vv_iter it;
    vv__cursor_init(&it, m);
    vv_label k;
    vv v;
    while (vv__next(&it, &k, &v)) {
        vv r;
        int rc = fn(c, k, v, ud, &r);
        if (!rc && !vv_is_zero(r))
            rc = vv__push(&b, k, r);
        if (rc) {
            vv__build_abort(&b);
            return rc;
        }
    }
    return vv__build_finish(&b, out);
}

static int scale_map(vv_ctx *c, const vv_map *m, double w, vv_map **out);
static int merge_maps(vv_ctx *c, const vv_map *A, double wa, const vv_map *B,
                      double wb, bool consume, vv_map **out);

/* Absent entries of a dense node are +0.0: a product w·0 may be -0.0. */
static void dense_clean_zeros(double *x, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (x[i] == 0.0)
            x[i] = 0.0;
}

/*
 * new: wa·A + wb·B for dense nodes (B may be NULL: wa·A), as a dense node
 * (NULL when nothing is left). Entry by entry the same arithmetic as the
 * tree merge: wa·a + wb·b where both are present, wa·a or wb·b where one is
 * (a present entry plus wb·0 is itself; absent entries are +0.0 and what
 * comes out zero is absent, as the tree drops it).
 */
static int image_comb(vv_ctx *c, const vv_map *A, double wa, const vv_map *B,
                      double wb, vv_map **out);

static int dense_comb(vv_ctx *c, const vv_map *A, double wa, const vv_map *B,
                      double wb, vv_map **out)
{
    if (vv__dense_image(A) && (!B || vv__dense_image(B)))
        return image_comb(c, A, wa, B, wb, out);
    unsigned na = A->n, nb = B ? B->n : 0;
    unsigned n = na > nb ? na : nb, both = na < nb ? na : nb;
    vv_map *d = vv__dense_new(c, n, A->maps || (B && B->maps));
    if (!d)
        return DMM_E_NOMEM;
    double *x = vv__dnums(d);
    unsigned f = nums_comb(x, vv__dnums(A), wa, B ? vv__dnums(B) : NULL, wb,
                           B ? both : na);
    if (B && na > both)
        f |= nums_comb(x + both, vv__dnums(A) + both, wa, NULL, 0.0, na - both);
    else if (B && nb > both)
        f |= nums_comb(x + both, vv__dnums(B) + both, wb, NULL, 0.0, nb - both);
    if (f & NUMS_BAD) {
        vv__map_unref(c, d);
        return DMM_E_NONFINITE;
    }
    if (f & NUMS_ZERO)
        dense_clean_zeros(x, n);
    vv_map **dm = vv__dmaps(d), **am = vv__dmaps(A),
           **bm = B ? vv__dmaps(B) : NULL;
    for (unsigned i = 0; dm && i < n; i++) {
        vv_map *a = am && i < na ? am[i] : NULL,
               *b = bm && i < nb ? bm[i] : NULL;
        int rc = 0;
        if (a && b)
            rc = merge_maps(c, a, wa, b, wb, false, &dm[i]);
        else if (a)
            rc = scale_map(c, a, wa, &dm[i]);
        else if (b)
            rc = scale_map(c, b, wb, &dm[i]);
        if (rc) {
            vv__map_unref(c, d);
            return rc;
        }
    }
    *out = vv__dense_finish(c, d);
    return 0;
}

/* The widest row of an image (a dense node of dense rows). */
static unsigned image_width(const vv_map *m)
{
    unsigned w = 0;
    vv_map **maps = vv__dmaps(m);
    for (unsigned i = 0; i < m->n; i++)
        if (maps[i] && maps[i]->n > w)
            w = maps[i]->n;
    return w;
}

/* x = wa·a + wb·b over rows of na and nb entries (a or b may be NULL). */
static unsigned row_comb(double *x, const double *a, unsigned na, double wa,
                         const double *b, unsigned nb, double wb)
{
    unsigned both = a && b ? (na < nb ? na : nb) : 0, f = 0;
    if (both)
        f |= nums_comb(x, a, wa, b, wb, both);
    if (a && na > both)
        f |= nums_comb(x + both, a + both, wa, NULL, 0.0, na - both);
    if (b && nb > both)
        f |= nums_comb(x + both, b + both, wb, NULL, 0.0, nb - both);
    return f;
}

/*
 * dense_comb of images (B may be NULL), as one slab: row by row the same
 * arithmetic as dense_comb of the rows (wa·a + wb·b where both rows have
 * the entry, wa·a or wb·b past the shorter), the rows' own numbers as
 * dense_comb's.
 */
static int image_comb(vv_ctx *c, const vv_map *A, double wa, const vv_map *B,
                      double wb, vv_map **out)
{
    unsigned na = A->n, nb = B ? B->n : 0, n = na > nb ? na : nb;
    unsigned wA = image_width(A), wB = B ? image_width(B) : 0;
    vv_map *s = vv__slab_new(c, n, wA > wB ? wA : wB, true);
    if (!s)
        return DMM_E_NOMEM;
    unsigned f = row_comb(vv__dnums(s), vv__dnums(A), na, wa,
                          B ? vv__dnums(B) : NULL, nb, wb);
    vv_map **am = vv__dmaps(A), **bm = B ? vv__dmaps(B) : NULL;
    for (unsigned i = 0; i < n; i++) {
        const vv_map *a = i < na ? am[i] : NULL, *b = i < nb ? bm[i] : NULL;
        if (a || b)
            f |= row_comb(vv__dnums(vv__slab_row(s, i)),
                          a ? vv__dnums(a) : NULL, a ? a->n : 0, wa,
                          b ? vv__dnums(b) : NULL, b ? b->n : 0, wb);
    }
    if (f & NUMS_BAD) {
        vv__map_unref(c, s);
        return DMM_E_NONFINITE;
    }
    if (f & NUMS_ZERO) {
        dense_clean_zeros(vv__dnums(s), n);
        for (unsigned i = 0; i < n; i++) {
            vv_map *r = vv__slab_row(s, i);
            dense_clean_zeros(vv__dnums(r), r->n);
        }
    }
    *out = vv__slab_finish(c, s);
    return 0;
}

/* new: w·v (a reference when w == 1). */
static int scale_val(vv_ctx *c, vv v, double w, vv *out)
{
    if (w == 1.0) {
        *out = vv_ref(v);
        return 0;
    }
    if (w == 0.0) {
        *out = VV_ZERO;
        return 0;
    }
    double x = v.num * w;
    if (!isfinite(x))
        return DMM_E_NONFINITE;
    vv r = {clean(x), NULL};
    if (v.map) {
        int rc = scale_map(c, v.map, w, &r.map);
        if (rc)
            return rc;
    }
    *out = r;
    return 0;
}

/* A leaf of scalars is scaled as one loop over its doubles; other leaves
 * entry by entry. */
static int scale_map(vv_ctx *c, const vv_map *m, double w, vv_map **out)
{
    if (w == 1.0) {
        vv__map_ref((vv_map *)m);
        *out = (vv_map *)m;
        return 0;
    }
    if (vv__is_dense(m))
        return dense_comb(c, m, w, NULL, 0.0, out);
    vv__builder b;
    vv__build_init(&b, c, m->total);
    b.maps = m->vdepth > 0;
    vv_iter it;
    vv__cursor_init(&it, m);
    const vv_map *l;
    unsigned p;
    while ((l = vv__leaf_at(&it, &p))) {
        int rc = 0;
        if (!l->vdepth) {
            rc = push_leaf_comb(c, l, w, NULL, 0.0, &b);
        } else {
            for (unsigned i = p; i < l->n && !rc; i++) {
                vv r;
                rc = scale_val(c, vv__leaf_val(l, i), w, &r);
                if (!rc && !vv_is_zero(r))
                    rc = vv__push(&b, vv__keys(l)[i], r);
            }
        }
        if (rc) {
            vv__build_abort(&b);
            return rc;
        }
        it.pos[it.top] = l->n;
    }
    return vv__build_finish(&b, out);
}

static int comb_val(vv_ctx *c, vv a, double wa, vv b, double wb, vv *out);

/*
 * *A += wb·B in place for two scalar leaves with the same keys, when A is
 * the caller's alone: the result is computed aside and written back only if
 * every entry stays finite and non-zero (so A keeps its keys and stays
 * canonical); returns 1 when it does not apply, with A unchanged.
 */
static int leaf_axpy_inplace(vv_map *A, const vv_map *B, double wb)
{
    double x[VV__LEAF_MAX];
    unsigned n = A->n;
    if (nums_comb(x, vv__nums(A), 1.0, vv__nums(B), wb, n))
        return 1;
    memcpy(vv__nums(A), x, n * sizeof(double));
    return 0;
}

/*
 * new: wa·A + wb·B by one ordered pass over both maps, a leaf at a time where
 * their leaves line up (same keys, scalars only: the shape of an accumulator
 * and its increment). With `consume` the caller gives up A after this call:
 * a leaf of A that nothing else references is then updated in place and
 * moved into the result instead of copied (wa must be 1).
 */
static int merge_maps(vv_ctx *c, const vv_map *A, double wa, const vv_map *B,
                      double wb, bool consume, vv_map **out)
{
    assert(!consume || wa == 1.0);
    if (vv__is_dense(A) || vv__is_dense(B)) {
        if (vv__is_dense(A) && vv__is_dense(B))
            return dense_comb(c, A, wa, B, wb, out);
        /* a dense side with a tree side: merged as two trees */
        vv_map *t;
        int rc = vv__dense_tree(c, vv__is_dense(A) ? A : B, &t);
        if (rc)
            return rc;
        rc = vv__is_dense(A) ? merge_maps(c, t, wa, B, wb, false, out)
                             : merge_maps(c, A, wa, t, wb, false, out);
        vv__map_unref(c, t);
        return rc;
    }
    vv__builder bld;
    vv__build_init(&bld, c, A->total > B->total ? A->total : B->total);
    vv_iter ia, ib;
    vv__cursor_init(&ia, A);
    vv__cursor_init(&ib, B);
    for (;;) {
        unsigned pa = 0, pb = 0;
        const vv_map *la = vv__leaf_at(&ia, &pa), *lb = vv__leaf_at(&ib, &pb);
        if (!la && !lb)
            break;
        int rc = 1;
        if (la && lb && pa == 0 && pb == 0 && la->n == lb->n && !la->vdepth &&
            !lb->vdepth &&
            memcmp(vv__keys(la), vv__keys(lb), la->n * sizeof(vv_label)) == 0) {
            vv_map *own = (vv_map *)la;
            if (consume && vv__iter_path_unique(&ia) &&
                leaf_axpy_inplace(own, lb, wb) == 0) {
                vv__map_ref(own); /* survives A's release */
                rc = vv__build_push_leaf(&bld, own);
            } else {
                rc = push_leaf_comb(c, la, wa, lb, wb, &bld);
            }
            if (rc == 0) {
                ia.pos[ia.top] = la->n;
                ib.pos[ib.top] = lb->n;
                continue;
            }
        }
        vv r;
        vv_label k;
        if (rc > 0) {
            vv_label ka = la ? vv__keys(la)[pa] : 0;
            vv_label kb = lb ? vv__keys(lb)[pb] : 0;
            if (la && lb && ka == kb) {
                k = ka;
                rc = comb_val(c, vv__leaf_val(la, pa), wa, vv__leaf_val(lb, pb),
                              wb, &r);
                ia.pos[ia.top]++;
                ib.pos[ib.top]++;
            } else if (la && (!lb || ka < kb)) {
                k = ka;
                rc = scale_val(c, vv__leaf_val(la, pa), wa, &r);
                ia.pos[ia.top]++;
            } else {
                k = kb;
                rc = scale_val(c, vv__leaf_val(lb, pb), wb, &r);
                ib.pos[ib.top]++;
            }
            if (!rc && !vv_is_zero(r))
                rc = vv__push(&bld, k, r);
        }
        if (rc) {
            vv__build_abort(&bld);
            return rc;
        }
    }
    return vv__build_finish(&bld, out);
}

/* new: wa·a + wb·b. */
static int comb_val(vv_ctx *c, vv a, double wa, vv b, double wb, vv *out)
{
    double x = wa * a.num + wb * b.num;
    if (!isfinite(x))
        return DMM_E_NONFINITE;
    vv r = {clean(x), NULL};
    int rc = 0;
    if (a.map && b.map)
        rc = merge_maps(c, a.map, wa, b.map, wb, false, &r.map);
    else if (a.map)
        rc = scale_map(c, a.map, wa, &r.map);
    else if (b.map)
        rc = scale_map(c, b.map, wb, &r.map);
    if (rc)
        return rc;
    *out = r;
    return 0;
}

static int axpy_val(vv_ctx *c, double *num, vv_map **map, double w, vv b);

/*
 * In place, when D is an unshared leaf that already holds every key of the
 * leaf S: add w·S entry by entry without allocating. Returns 1 when it does
 * not apply (nothing changed), 0 or an error code otherwise.
 */
static int axpy_leaf_inplace(vv_ctx *c, vv_map *D, double w, const vv_map *S)
{
    if (D->height || S->height || !vv__map_unique(D) || S->n > D->n ||
        (S->vdepth && !D->maps))
        return 1;
    const vv_label *dk = vv__keys(D), *sk = vv__keys(S);
    unsigned i = 0;
    for (unsigned j = 0; j < S->n; j++, i++) {
        while (i < D->n && dk[i] < sk[j])
            i++;
        if (i == D->n || dk[i] != sk[j])
            return 1;
    }
    int rc = 0;
    bool zeros = false;
    double *dn = vv__nums(D);
    vv_map **dm = vv__maps(D);
    i = 0;
    for (unsigned j = 0; j < S->n && !rc; j++, i++) {
        while (dk[i] < sk[j])
            i++;
        vv_map *none = NULL;
        vv_map **mp = dm ? &dm[i] : &none;
        rc = axpy_val(c, &dn[i], mp, w, vv__leaf_val(S, j));
        zeros |= dn[i] == 0.0 && !*mp;
    }
    if (zeros || rc) { /* keep canonical even after a failure part-way */
        unsigned n = 0;
        for (i = 0; i < D->n; i++)
            if (dn[i] != 0.0 || (dm && dm[i])) {
                vv__keys(D)[n] = dk[i];
                dn[n] = dn[i];
                if (dm)
                    dm[n] = dm[i];
                n++;
            }
        D->n = (uint16_t)n;
    }
    D->total = D->n;
    unsigned d = 0;
    for (i = 0; dm && i < D->n; i++)
        if (dm[i] && dm[i]->vdepth + 1u > d)
            d = dm[i]->vdepth + 1u;
    D->vdepth = (uint16_t)d;
    return rc;
}

/*
 * *D += w·S, *D owned (NULL-able afterwards). Small S into large D: point
 * writes, in place where D is unshared and by path copying where it is
 * shared. Otherwise one merge pass into a new map.
 */
static int axpy_map(vv_ctx *c, vv_map **D, double w, const vv_map *S)
{
    if (vv__is_dense(*D) || vv__is_dense(S)) {
        vv_map *m;
        int rc;
        if (vv__is_dense(*D) && vv__is_dense(S)) {
            if ((rc = dense_comb(c, *D, 1.0, S, w, &m)))
                return rc;
            vv__map_unref(c, *D);
            *D = m;
            return 0;
        }
        if ((rc = vv__undense(c, D)))
            return rc;
        if (!vv__is_dense(S))
            return axpy_map(c, D, w, S);
        if ((rc = vv__dense_tree(c, S, &m)))
            return rc;
        rc = axpy_map(c, D, w, m);
        vv__map_unref(c, m);
        return rc;
    }
    int rc = axpy_leaf_inplace(c, *D, w, S);
    if (rc <= 0) {
        if (*D && (*D)->n == 0) {
            vv__map_unref(c, *D);
            *D = NULL;
        }
        return rc;
    }
    if ((size_t)S->total * 8 <= (*D)->total) {
        vv_iter it;
        vv__cursor_init(&it, S);
        vv_label k;
        vv v;
        while (vv__next(&it, &k, &v)) {
            vv__slot s;
            rc = vv__slot_begin(c, D, k, v.map != NULL, &s);
            if (rc)
                return rc;
            rc = axpy_val(c, s.num, s.map, w, v);
            vv__slot_end(c, D, k);
            if (rc)
                return rc;
        }
        return 0;
    }
    vv_map *m;
    rc = merge_maps(c, *D, 1.0, S, w, true, &m);
    if (rc)
        return rc;
    vv__map_unref(c, *D);
    *D = m;
    return 0;
}

static int axpy_val(vv_ctx *c, double *num, vv_map **map, double w, vv b)
{
    double x = *num + w * b.num;
    if (!isfinite(x))
        return DMM_E_NONFINITE;
    if (b.map) {
        int rc =
            *map ? axpy_map(c, map, w, b.map) : scale_map(c, b.map, w, map);
        if (rc)
            return rc;
    }
    *num = clean(x);
    return 0;
}

int vv_axpy(vv_ctx *c, vv *acc, double w, vv b)
{
    if (w == 0.0 || vv_is_zero(b))
        return 0;
    if (!isfinite(w))
        return DMM_E_NONFINITE;
    if (vv_is_zero(*acc))
        return scale_val(c, b, w, acc);
    return axpy_val(c, &acc->num, &acc->map, w, b);
}

int vv_add(vv_ctx *c, vv a, vv b, vv *out)
{
    /* Start from the larger side, so a small addend costs its own size. */
    if (vv_nchildren(a) < vv_nchildren(b)) {
        vv t = a;
        a = b;
        b = t;
    }
    vv r = vv_ref(a);
    int rc = vv_axpy(c, &r, 1.0, b);
    if (rc) {
        vv_free(c, r);
        return rc;
    }
    *out = r;
    return 0;
}

int vv_scale(vv_ctx *c, double k, vv a, vv *out)
{
    if (!isfinite(k))
        return DMM_E_NONFINITE;
    return scale_val(c, a, k, out);
}

/*
 * Sums of many terms. Adding the terms one at a time into an accumulator
 * costs a merge (or a point write) per term. Instead, when the labels of the
 * terms' children fall in a range not much wider than the number of
 * children, they are summed in one scratch array of doubles indexed by label
 * (a bitmap records which labels occur), in term order, so the result is the
 * same double for double as the one-at-a-time sum; the node is then built
 * once, in label order, by scanning the bitmap. Children that have children
 * of their own are collected by label and summed the same way, one level
 * down. Sparse label ranges take the one-at-a-time path.
 */
typedef struct sum_term {
    double w;
    const vv_map *map;
} sum_term;

/* A nested child of a term, ordered by (label, order of the terms). */
typedef struct deep_entry {
    pair_ix key;
    sum_term t;
} deep_entry;

static vv_label map_first(const vv_map *m)
{
    return vv__keys(m)[0];
}
static vv_label map_last(const vv_map *m)
{
    while (m->height)
        m = vv__kids(m)[m->n - 1];
    return vv__keys(m)[m->n - 1];
}

static int sum_maps(vv_ctx *c, size_t n, const sum_term *t, vv_map **out);

/* The dense path of sum_maps over labels lo .. lo + range - 1. */
static int sum_dense(vv_ctx *c, size_t n, const sum_term *t, vv_label lo,
                     size_t range, size_t total, size_t ndeep, vv_map **out)
{
    size_t nwords = (range + 63) / 64;
    double *acc = vv__alloc(c, range * sizeof *acc);
    uint64_t *seen = vv__alloc(c, nwords * sizeof *seen);
    deep_entry *deep = ndeep ? vv__alloc(c, ndeep * sizeof *deep) : NULL;
    sum_term *grp = ndeep ? vv__alloc(c, ndeep * sizeof *grp) : NULL;
    int rc = 0;
    if (!acc || !seen || (ndeep && (!deep || !grp))) {
        rc = DMM_E_NOMEM;
        goto done;
    }
    memset(seen, 0, nwords * sizeof *seen);
    size_t nd = 0;
    for (size_t k = 0; k < n; k++) {
        double w = t[k].w;
        vv_iter it;
        vv__cursor_init(&it, t[k].map);
        const vv_map *l;
        unsigned p;
        while ((l = vv__leaf_at(&it, &p))) {
            const vv_label *keys = vv__keys(l);
            const double *x = vv__nums(l);
            for (unsigned i = p; i < l->n; i++) {
                size_t j = keys[i] - lo;
                uint64_t bit = UINT64_C(1) << (j & 63);
                double y = w * x[i];
                if (seen[j >> 6] & bit) {
                    acc[j] += y;
                } else {
                    acc[j] = y;
                    seen[j >> 6] |= bit;
                }
            }
            vv_map **maps = l->vdepth ? vv__maps(l) : NULL;
            for (unsigned i = p; maps && i < l->n; i++)
                if (maps[i])
                    deep[nd] = (deep_entry){{keys[i], (uint32_t)nd},
                                            (sum_term){w, maps[i]}},
                    nd++;
            it.pos[it.top] = l->n;
        }
    }
    if (nd > 1)
        qsort(deep, nd, sizeof *deep, cmp_pair);
    vv__builder b;
    vv__build_init(&b, c, total);
    b.maps = nd > 0;
    size_t d = 0;
    for (size_t wi = 0; wi < nwords && !rc; wi++) {
        for (uint64_t bits = seen[wi]; bits && !rc; bits &= bits - 1) {
            size_t j = wi * 64 + (size_t)__builtin_ctzll(bits);
            vv_label label = (vv_label)(lo + j);
            vv v = {clean(acc[j]), NULL};
            if (!isfinite(v.num)) {
                rc = DMM_E_NONFINITE;
                break;
            }
            size_t g = 0;
            for (; d < nd && deep[d].key.label == label; d++)
                grp[g++] = deep[d].t;
            if (g)
                rc = sum_maps(c, g, grp, &v.map);
            if (!rc && !vv_is_zero(v))
                rc = vv__push(&b, label, v);
        }
    }
    if (!rc)
        rc = vv__build_finish(&b, out);
    else
        vv__build_abort(&b);
done:
    if (grp)
        vv__free_mem(c, grp, ndeep * sizeof *grp);
    if (deep)
        vv__free_mem(c, deep, ndeep * sizeof *deep);
    if (seen)
        vv__free_mem(c, seen, nwords * sizeof *seen);
    if (acc)
        vv__free_mem(c, acc, range * sizeof *acc);
    return rc;
}

/*
 * The sum of dense terms, as a dense node: each entry summed in term order
 * from the first term's product, as sum_dense and the one-at-a-time path sum
 * it (an absent entry adds w·0, which changes no partial sum but the sign of
 * a zero). A non-finite partial sum stays non-finite, so checking the end
 * finds what checking each step would. Children with children are grouped
 * by position and summed one level down.
 */
static int sum_images(vv_ctx *c, size_t n, const sum_term *t, vv_map **out);

static int sum_dense_nodes(vv_ctx *c, size_t n, const sum_term *t, vv_map **out)
{
    bool images = true;
    for (size_t k = 0; k < n && images; k++)
        images = vv__dense_image(t[k].map);
    if (images)
        return sum_images(c, n, t, out);
    unsigned width = 0;
    bool maps = false;
    for (size_t k = 0; k < n; k++) {
        if (t[k].map->n > width)
            width = t[k].map->n;
        maps |= t[k].map->maps;
    }
    sum_term *grp = maps ? vv__alloc(c, n * sizeof *grp) : NULL;
    vv_map *d = !maps || grp ? vv__dense_new(c, width, maps) : NULL;
    int rc = d ? 0 : DMM_E_NOMEM;
    if (rc)
        goto done;
    double *x = vv__dnums(d);
    unsigned f = 0;
    for (size_t k = 0; k < n; k++) {
        const vv_map *m = t[k].map;
        f |= k ? nums_comb(x, x, 1.0, vv__dnums(m), t[k].w, m->n)
               : nums_comb(x, vv__dnums(m), t[k].w, NULL, 0.0, m->n);
    }
    if (f & NUMS_BAD) {
        rc = DMM_E_NONFINITE;
        goto done;
    }
    if (f & NUMS_ZERO)
        dense_clean_zeros(x, width);
    vv_map **dm = vv__dmaps(d);
    for (unsigned i = 0; dm && i < width && !rc; i++) {
        size_t g = 0;
        for (size_t k = 0; k < n; k++) {
            vv_map **mm = vv__dmaps(t[k].map);
            if (mm && i < t[k].map->n && mm[i])
                grp[g++] = (sum_term){t[k].w, mm[i]};
        }
        if (g)
            rc = sum_maps(c, g, grp, &dm[i]);
    }
done:
    if (grp)
        vv__free_mem(c, grp, n * sizeof *grp);
    if (rc) {
        if (d)
            vv__map_unref(c, d);
        return rc;
    }
    *out = vv__dense_finish(c, d);
    return 0;
}

/* clean() of both lanes (−0 + +0 is +0, any other s + 0 is s), counting the
 * non-zero ones into *cnt and the non-finite ones into *bad (s − s is 0
 * only when s is finite): the check pass of sum_images, in vector form. */
static inline v2d finish2(v2d s, v2l *cnt, v2l *bad)
{
    const v2d z = {0.0, 0.0};
    s = s + z;
    *bad |= (s - s) != z;
    *cnt -= s != z;
    return s;
}

/*
 * x[j] (+)= Σ_k w[k]·t[k][j] for j < n, the terms added one after the other
 * from the left ((x + w0·t0) + w1·t1 …, or w0·t0 + w1·t1 … when !add): up
 * to four terms in one pass over x instead of one pass per term. With total,
 * the pass also finishes the row as sum_images' check does (clean, *total
 * the non-zero entries, *bad when one is not finite).
 */
static void rows_fused(double *x, bool add, const double *const *t,
                       const double *w, unsigned nt, unsigned n,
                       uint32_t *total, bool *bad)
{
    v2l cnt = {0, 0}, badv = {0, 0};
    const double *t0 = t[0], *t1 = t[nt > 1], *t2 = t[nt > 2 ? 2 : 0],
                 *t3 = t[nt > 3 ? 3 : 0];
    double w0 = w[0], w1 = w[nt > 1], w2 = w[nt > 2 ? 2 : 0],
           w3 = w[nt > 3 ? 3 : 0];
    unsigned j = 0;
    for (; j + 2 <= n; j += 2) {
        v2d s, a;
        memcpy(&a, t0 + j, sizeof a);
        if (add) {
            memcpy(&s, x + j, sizeof s);
            s = s + w0 * a;
        } else {
            s = w0 * a;
        }
        if (nt > 1)
            memcpy(&a, t1 + j, sizeof a), s = s + w1 * a;
        if (nt > 2)
            memcpy(&a, t2 + j, sizeof a), s = s + w2 * a;
        if (nt > 3)
            memcpy(&a, t3 + j, sizeof a), s = s + w3 * a;
        if (total)
            s = finish2(s, &cnt, &badv);
        memcpy(x + j, &s, sizeof s);
    }
    for (; j < n; j++) {
        double s = add ? x[j] + w0 * t0[j] : w0 * t0[j];
        if (nt > 1)
            s = s + w1 * t1[j];
        if (nt > 2)
            s = s + w2 * t2[j];
        if (nt > 3)
            s = s + w3 * t3[j];
        if (total) {
            s = clean(s);
            badv[0] |= !isfinite(s);
            cnt[0] += s != 0.0;
        }
        x[j] = s;
    }
    if (total) {
        *total = (uint32_t)(cnt[0] + cnt[1]);
        *bad = (badv[0] | badv[1]) != 0;
    }
}

/*
 * sum_dense_nodes of images, as one slab: each entry summed in term order
 * over the terms that have it, from the first one's product, as sum_maps
 * sums the group of that row (an entry past a term's row gets nothing from
 * it; one past all of them is +0.0). Rows are summed four terms a pass.
 */
static int sum_images(vv_ctx *c, size_t n, const sum_term *t, vv_map **out)
{
    unsigned h = 0, w = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned wk = image_width(t[k].map);
        h = t[k].map->n > h ? t[k].map->n : h;
        w = wk > w ? wk : w;
    }
    const double **rt = vv__alloc(c, n * sizeof *rt);
    double *rw = vv__alloc(c, n * sizeof *rw);
    unsigned *rn = vv__alloc(c, n * sizeof *rn);
    vv_map *s = rt && rw && rn ? vv__slab_new(c, h, w, false) : NULL;
    int rc = s ? 0 : DMM_E_NOMEM;
    for (unsigned i = 0; i <= h && !rc; i++) {
        /* i == h: the slab's own numbers (the rows' scalar parts) */
        double *x = vv__dnums(i < h ? vv__slab_row(s, i) : s);
        unsigned g = 0, common = UINT32_MAX, width = i < h ? w : h;
        for (size_t k = 0; k < n; k++) {
            const vv_map *m = t[k].map;
            const vv_map *row = i == h ? m : i < m->n ? vv__dmaps(m)[i] : NULL;
            if (!row)
                continue;
            rt[g] = vv__dnums(row);
            rn[g] = row->n;
            rw[g++] = t[k].w;
            common = row->n < common ? row->n : common;
        }
        bool bad = false, checked = false;
        uint32_t total = 0;
        if (g) { /* the part every term has, then each term's rest */
            for (unsigned k = 0; k < g; k += 4) {
                /* a row every term covers is checked in its last pass */
                checked = k + 4 >= g && common == width;
                rows_fused(x, k > 0, rt + k, rw + k, g - k < 4 ? g - k : 4,
                           common, checked ? &total : NULL, &bad);
            }
            if (common < width) /* the slab's rows come unset */
                memset(x + common, 0, (width - common) * sizeof *x);
            for (unsigned k = 0; k < g; k++)
                for (unsigned j = common; j < rn[k]; j++)
                    x[j] = x[j] + rw[k] * rt[k][j];
        } else {
            memset(x, 0, width * sizeof *x);
        }
        /* one pass: finite, no negative zero, and the row's count */
        for (unsigned j = 0; j < width && !checked; j++) {
            bad |= !isfinite(x[j]);
            x[j] = clean(x[j]);
            total += x[j] != 0.0;
        }
        if (i < h)
            vv__slab_row(s, i)->total = total;
        if (bad)
            rc = DMM_E_NONFINITE;
    }
    if (rt)
        vv__free_mem(c, rt, n * sizeof *rt);
    if (rw)
        vv__free_mem(c, rw, n * sizeof *rw);
    if (rn)
        vv__free_mem(c, rn, n * sizeof *rn);
    if (rc) {
        if (s)
            vv__map_unref(c, s);
        return rc;
    }
    *out = vv__slab_finish_counted(c, s);
    return 0;
}

/* One side of vv_sum_add: its live terms, images, and row i of each. */
enum { SUM_ADD_MAX = 16 };
typedef struct sum_side {
    unsigned n;
    double w[SUM_ADD_MAX];
    const vv_map *m[SUM_ADD_MAX];
    const double *t[SUM_ADD_MAX];
    double *pad; /* a row of cols per term, for rows shorter than cols */
} sum_side;

/* The live terms of a side, *rows and *cols growing to hold each: 0, or 1
 * (a term that is not an image without numbers of its own at its rows). */
static int side_terms(size_t n, const double *w, const vv *t, sum_side *s,
                      unsigned *rows, unsigned *cols)
{
    s->n = 0;
    s->pad = NULL;
    for (size_t k = 0; k < n; k++) {
        if (w[k] == 0.0 || vv_is_zero(t[k]))
            continue;
        const vv_map *m = t[k].map;
        if (!isfinite(w[k]) || s->n == SUM_ADD_MAX || t[k].num != 0.0 || !m ||
            !vv__dense_image(m))
            return 1;
        const double *x = vv__dnums(m);
        for (unsigned i = 0; i < m->n; i++)
            if (x[i] != 0.0)
                return 1;
        unsigned wd = image_width(m);
        *rows = m->n > *rows ? m->n : *rows;
        *cols = wd > *cols ? wd : *cols;
        s->w[s->n] = w[k];
        s->m[s->n++] = m;
    }
    return 0;
}

/* Row i of each term of a side into s->t. A term's row shorter than cols
 * (or absent) is read padded with zeros: past its end the sum gets w·0
 * from it, where sum_images adds nothing, which differs in the sign of a
 * zero only, and zeros are made +0.0. */
static void side_ptrs(sum_side *s, unsigned i, unsigned cols)
{
    for (unsigned k = 0; k < s->n; k++) {
        const vv_map *m = s->m[k];
        const vv_map *r = i < m->n ? vv__dmaps(m)[i] : NULL;
        if (r && r->n == cols) {
            s->t[k] = vv__dnums(r);
            continue;
        }
        double *p = s->pad + (size_t)k * cols;
        unsigned have = r ? r->n : 0;
        if (have)
            memcpy(p, vv__dnums(r), have * sizeof *p);
        memset(p + have, 0, (cols - have) * sizeof *p);
        s->t[k] = p;
    }
}

/* Row i of a side's sum, not yet made +0.0 where zero: as vv_sum makes it
 * (a single weight-1 term is the term itself, else the products added from
 * the left, as sum_images adds them, four a pass) into tmp, or z (zeros). */
static const double *side_row(sum_side *s, unsigned i, double *tmp,
                              const double *z, unsigned cols)
{
    if (s->n == 0)
        return z;
    side_ptrs(s, i, cols);
    if (s->n == 1 && s->w[0] == 1.0)
        return s->t[0];
    for (unsigned k = 0; k < s->n; k += 4)
        rows_fused(tmp, k > 0, s->t + k, s->w + k, s->n - k < 4 ? s->n - k : 4,
                   cols, NULL, NULL);
    return tmp;
}

/* x = (a + 0) + (d + 0) where d = w0·t0 + w1·t1 … (nt ≤ 4 terms, from the
 * left, as rows_fused sums them; 1·t is t): x + 0.0 is x made +0.0 where
 * it is zero (clean), and the sum of two such is never -0.0. Two entries
 * at a time. *bad when an entry is not finite (so when a or d was not);
 * the non-zero entries. */
static uint32_t row_add(double *restrict x, const double *restrict a,
                        const double *const *t, const double *w, unsigned nt,
                        unsigned n, bool *bad)
{
    const double *t0 = t[0], *t1 = t[nt > 1], *t2 = t[nt > 2 ? 2 : 0],
                 *t3 = t[nt > 3 ? 3 : 0];
    double w0 = w[0], w1 = w[nt > 1], w2 = w[nt > 2 ? 2 : 0],
           w3 = w[nt > 3 ? 3 : 0];
    v2l nf = {0, 0}, cnt = {0, 0};
    const v2d zero = {0.0, 0.0};
    unsigned j = 0;
    for (; j + 2 <= n; j += 2) {
        v2d p, q, u;
        memcpy(&p, a + j, sizeof p);
        memcpy(&u, t0 + j, sizeof u);
        q = w0 * u;
        if (nt > 1)
            memcpy(&u, t1 + j, sizeof u), q = q + w1 * u;
        if (nt > 2)
            memcpy(&u, t2 + j, sizeof u), q = q + w2 * u;
        if (nt > 3)
            memcpy(&u, t3 + j, sizeof u), q = q + w3 * u;
        v2d y = (p + zero) + (q + zero);
        memcpy(x + j, &y, sizeof y);
        v2d e = y - y; /* NaN exactly when y is not finite */
        nf |= e != e;
        cnt -= y != zero; /* -1 where true */
    }
    uint32_t total = (uint32_t)(cnt[0] + cnt[1]);
    bool b = nf[0] | nf[1];
    for (; j < n; j++) {
        double q = w0 * t0[j];
        if (nt > 1)
            q = q + w1 * t1[j];
        if (nt > 2)
            q = q + w2 * t2[j];
        if (nt > 3)
            q = q + w3 * t3[j];
        double y = (a[j] + 0.0) + (q + 0.0);
        x[j] = y;
        b |= !isfinite(y);
        total += y != 0.0;
    }
    *bad |= b;
    return total;
}

/*
 * Each entry: a = Σ wa·ta, d = Σ wb·tb, each made +0.0 where zero as the
 * sums' values are, then a + d, as vv_add's image_comb adds them (1·a +
 * 1·d); zeros absent. The sums are checked finite, as vv_sum checks them.
 */
int vv_sum_add(vv_ctx *c, size_t na, const double *wa, const vv *ta, size_t nb,
               const double *wb, const vv *tb, vv *out)
{
    sum_side A, D;
    unsigned rows = 0, cols = 0;
    if (side_terms(na, wa, ta, &A, &rows, &cols) ||
        side_terms(nb, wb, tb, &D, &rows, &cols))
        return 1;
    if (rows == 0 || cols == 0) {
        *out = VV_ZERO;
        return 0;
    }
    size_t bytes = (3 + (size_t)A.n + D.n) * cols * sizeof(double);
    double *tmp = vv__alloc(c, bytes);
    vv_map *s = tmp ? vv__slab_new(c, rows, cols, false) : NULL;
    if (!s) {
        if (tmp)
            vv__free_mem(c, tmp, bytes);
        return DMM_E_NOMEM;
    }
    double *ta_row = tmp, *td_row = tmp + cols, *z = tmp + 2 * (size_t)cols;
    const double one = 1.0;
    A.pad = tmp + 3 * (size_t)cols;
    D.pad = A.pad + (size_t)A.n * cols;
    memset(z, 0, cols * sizeof *z);
    bool bad = false;
    for (unsigned i = 0; i < rows; i++) {
        const double *restrict a = side_row(&A, i, ta_row, z, cols);
        /* the delta's terms summed in the same pass when they are few */
        const double *dd = z, *const *dt = &dd, *dw = &one;
        unsigned dn = 1;
        if (D.n > 0 && D.n <= 4) {
            side_ptrs(&D, i, cols);
            dt = D.t;
            dw = D.w;
            dn = D.n;
        } else if (D.n > 4) {
            dd = side_row(&D, i, td_row, z, cols);
        }
        vv_map *r = vv__slab_row(s, i);
        r->total = row_add(vv__dnums(r), a, dt, dw, dn, cols, &bad);
    }
    vv__free_mem(c, tmp, bytes);
    if (bad) {
        vv__map_unref(c, s);
        return 1;
    }
    *out = (vv){0.0, vv__slab_finish_counted(c, s)};
    return 0;
}

/* sum_maps with dense terms among tree ones: the dense ones as trees. */
static int sum_mixed(vv_ctx *c, size_t n, const sum_term *t, vv_map **out)
{
    sum_term *u = vv__alloc(c, n * sizeof *u);
    if (!u)
        return DMM_E_NOMEM;
    int rc = 0;
    size_t made = 0;
    for (; made < n; made++) {
        u[made].w = t[made].w;
        if (!vv__is_dense(t[made].map)) {
            vv__map_ref((vv_map *)t[made].map);
            u[made].map = t[made].map;
        } else {
            vv_map *m;
            if ((rc = vv__dense_tree(c, t[made].map, &m)))
                break;
            u[made].map = m;
        }
    }
    if (!rc)
        rc = sum_maps(c, n, u, out);
    for (size_t j = 0; j < made; j++)
        vv__map_unref(c, (vv_map *)u[j].map);
    vv__free_mem(c, u, n * sizeof *u);
    return rc;
}

/* new: Σ t[k].w · t[k].map (weights finite and non-zero), NULL when zero. */
static int sum_maps(vv_ctx *c, size_t n, const sum_term *t, vv_map **out)
{
    size_t ndense = 0;
    for (size_t k = 0; k < n; k++)
        ndense += vv__is_dense(t[k].map);
    if (ndense)
        return ndense == n ? sum_dense_nodes(c, n, t, out)
                           : sum_mixed(c, n, t, out);
    size_t total = 0, ndeep = 0;
    vv_label lo = UINT32_MAX, hi = 0;
    for (size_t k = 0; k < n; k++) {
        const vv_map *m = t[k].map;
        total += m->total;
        if (m->vdepth) /* some entries have children */
            ndeep += m->total;
        if (map_first(m) < lo)
            lo = map_first(m);
        if (map_last(m) > hi)
            hi = map_last(m);
    }
    size_t range = (size_t)hi - lo + 1;
    if (n > 2 && total >= 64 && range <= 4 * total)
        return sum_dense(c, n, t, lo, range, total, ndeep, out);
    vv_map *acc = NULL; /* one term at a time */
    int rc = scale_map(c, t[0].map, t[0].w, &acc);
    for (size_t k = 1; k < n && !rc; k++) {
        if (!acc)
            rc = scale_map(c, t[k].map, t[k].w, &acc);
        else
            rc = axpy_map(c, &acc, t[k].w, t[k].map);
    }
    if (rc) {
        if (acc)
            vv__map_unref(c, acc);
        return rc;
    }
    *out = acc;
    return 0;
}

/* new: Σ w[k]·terms[k] for k < n, with the root scalar summed in order. */
static int sum_vals(vv_ctx *c, size_t n, const double *w, const vv *terms,
                    vv *out)
{
    size_t live = 0, nmaps = 0, last = 0;
    for (size_t k = 0; k < n; k++) {
        if (w[k] == 0.0 || vv_is_zero(terms[k]))
            continue;
        if (!isfinite(w[k]))
            return DMM_E_NONFINITE;
        live++;
        last = k;
        nmaps += terms[k].map != NULL;
    }
    if (live <= 1) { /* zero, or one term: a reference when w is 1 */
        if (!live) {
            *out = VV_ZERO;
            return 0;
        }
        return scale_val(c, terms[last], w[last], out);
    }
    double x = 0.0;
    for (size_t k = 0; k < n; k++)
        if (w[k] != 0.0 && !vv_is_zero(terms[k]))
            x += w[k] * terms[k].num;
    if (!isfinite(x))
        return DMM_E_NONFINITE;
    vv r = {clean(x), NULL};
    if (nmaps) {
        sum_term small[16], *t = small;
        if (nmaps > 16 && !(t = vv__alloc(c, nmaps * sizeof *t)))
            return DMM_E_NOMEM;
        size_t m = 0;
        for (size_t k = 0; k < n; k++)
            if (w[k] != 0.0 && terms[k].map)
                t[m++] = (sum_term){w[k], terms[k].map};
        int rc = sum_maps(c, m, t, &r.map);
        if (t != small)
            vv__free_mem(c, t, nmaps * sizeof *t);
        if (rc)
            return rc;
    }
    *out = r;
    return 0;
}

int vv_sum(vv_ctx *c, size_t n, const double *w, const vv *terms, vv *out)
{
    return sum_vals(c, n, w, terms, out);
}

/* ---- products
 * ---------------------------------------------------------------- */

/*
 * lincomb(row, m) is a sum: every path p where row has a scalar w gives the
 * term w·(m at p). The terms are collected in one walk of row (into a stack
 * array, moved to the heap when it fills) and summed at once by sum_vals, in
 * path order, as one vv_axpy per term would.
 */
typedef struct lin_terms {
    vv_ctx *c;
    size_t n, cap;
    double *w;
    vv *t;
    double w0[16];
    vv t0[16];
} lin_terms;

static int lin_add(lin_terms *lt, double w, vv t)
{
    if (lt->n == lt->cap) {
        size_t cap = lt->cap * 2;
        double *nw = vv__alloc(lt->c, cap * sizeof *nw);
        vv *nt = vv__alloc(lt->c, cap * sizeof *nt);
        if (!nw || !nt) {
            if (nw)
                vv__free_mem(lt->c, nw, cap * sizeof *nw);
            if (nt)
                vv__free_mem(lt->c, nt, cap * sizeof *nt);
            return DMM_E_NOMEM;
        }
        memcpy(nw, lt->w, lt->n * sizeof *nw);
        memcpy(nt, lt->t, lt->n * sizeof *nt);
        if (lt->w != lt->w0) {
            vv__free_mem(lt->c, lt->w, lt->cap * sizeof *lt->w);
            vv__free_mem(lt->c, lt->t, lt->cap * sizeof *lt->t);
        }
        lt->w = nw;
        lt->t = nt;
        lt->cap = cap;
    }
    lt->w[lt->n] = w;
    lt->t[lt->n++] = t;
    return 0;
}

static int lincomb_rec(vv row, vv m, lin_terms *lt)
{
    if (row.num != 0.0 && !vv_is_zero(m)) {
        int rc = lin_add(lt, row.num, m);
        if (rc)
            return rc;
    }
    if (!row.map || !m.map)
        return 0;
    vv_iter it;
    vv__cursor_init(&it, row.map);
    vv_label k;
    vv r, mc;
    while (vv__next(&it, &k, &r))
        if (vv__map_find(m.map, k, &mc)) {
            int rc = lincomb_rec(r, mc, lt);
            if (rc)
                return rc;
        }
    return 0;
}

int vv_lincomb(vv_ctx *c, vv row, vv m, vv *out)
{
    lin_terms lt;
    lt.c = c;
    lt.n = 0;
    lt.cap = 16;
    lt.w = lt.w0;
    lt.t = lt.t0;
    int rc = lincomb_rec(row, m, &lt);
    if (!rc)
        rc = sum_vals(c, lt.n, lt.w, lt.t, out);
    if (lt.w != lt.w0) {
        vv__free_mem(c, lt.w, lt.cap * sizeof *lt.w);
        vv__free_mem(c, lt.t, lt.cap * sizeof *lt.t);
    }
    return rc;
}

static int mask_rec(vv_ctx *c, vv mask, vv m, vv *out);

/* The masked child k: mask child v against m's child k (ud: m's map). */
static int mask_child(vv_ctx *c, vv_label k, vv v, void *m, vv *out)
{
    vv mc;
    if (!vv__map_find(m, k, &mc)) {
        *out = VV_ZERO;
        return 0;
    }
    return mask_rec(c, v, mc, out);
}

static int mask_rec(vv_ctx *c, vv mask, vv m, vv *out)
{
    vv r = VV_ZERO;
    if (mask.map && m.map) {
        int rc = map_children(c, mask.map, mask_child, m.map, &r.map);
        if (rc)
            return rc;
    }
    if (mask.num != 0.0) {
        int rc = vv_axpy(c, &r, mask.num, m);
        if (rc) {
            vv_free(c, r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

int vv_mult_mask(vv_ctx *c, vv mask, vv m, vv *out)
{
    return mask_rec(c, mask, m, out);
}

static double dot_rec(vv a, vv b)
{
    double s = a.num * b.num;
    if (!a.map || !b.map)
        return s;
    const vv_map *small = a.map->total <= b.map->total ? a.map : b.map;
    const vv_map *large = small == a.map ? b.map : a.map;
    vv_iter it;
    vv__cursor_init(&it, small);
    vv_label k;
    vv v;
    while (vv__next(&it, &k, &v)) {
        vv o;
        if (vv__map_find(large, k, &o))
            s += dot_rec(v, o);
    }
    return s;
}

int vv_dot(vv_ctx *c, vv a, vv b, double *out)
{
    (void)c;
    double s = dot_rec(a, b);
    if (!isfinite(s))
        return DMM_E_NONFINITE;
    *out = clean(s);
    return 0;
}

double vv_max_norm(vv v)
{
    double m = fabs(v.num);
    if (!v.map)
        return m;
    vv_iter it;
    vv__cursor_init(&it, v.map);
    vv_label k;
    vv x;
    while (vv__next(&it, &k, &x)) {
        double y = vv_max_norm(x);
        if (y > m)
            m = y;
    }
    return m;
}

typedef struct apply_args {
    vv_scalar_fn fn;
    void *ud;
} apply_args;

static int apply_rec(vv_ctx *c, vv a, const apply_args *f, vv *out);

static int apply_child(vv_ctx *c, vv_label k, vv v, void *f, vv *out)
{
    return apply_rec(c, v, f, out);
}

static int apply_rec(vv_ctx *c, vv a, const apply_args *f, vv *out)
{
    double x = a.num != 0.0 ? f->fn(a.num, f->ud) : 0.0;
    if (!isfinite(x))
        return DMM_E_NONFINITE;
    vv r = {clean(x), NULL};
    if (a.map) {
        int rc = map_children(c, a.map, apply_child, (void *)f, &r.map);
        if (rc)
            return rc;
    }
    *out = r;
    return 0;
}

int vv_apply(vv_ctx *c, vv a, vv_scalar_fn fn, void *ud, vv *out)
{
    apply_args f = {fn, ud};
    return apply_rec(c, a, &f, out);
}

/* ---- comparison and measurement
 * ---------------------------------------------- */

bool vv_equal(vv a, vv b)
{
    if (a.num != b.num)
        return false;
    if (a.map == b.map)
        return true;
    if (!a.map || !b.map || a.map->total != b.map->total)
        return false;
    vv_iter ia, ib;
    vv__cursor_init(&ia, a.map);
    vv__cursor_init(&ib, b.map);
    vv_label ka, kb;
    vv va, vb;
    while (vv__next(&ia, &ka, &va)) {
        if (!vv__next(&ib, &kb, &vb) || ka != kb || !vv_equal(va, vb))
            return false;
    }
    return true;
}

static bool close_num(double x, double y, double rel, double abs_tol)
{
    return fabs(x - y) <= abs_tol + rel * fmax(fabs(x), fabs(y));
}

bool vv_close(vv a, vv b, double rel, double abs_tol)
{
    if (!close_num(a.num, b.num, rel, abs_tol))
        return false;
    if (a.map == b.map)
        return true;
    vv_iter ia, ib;
    vv_iter_init(&ia, a);
    vv_iter_init(&ib, b);
    vv_label ka = 0, kb = 0;
    vv va = VV_ZERO, vb = VV_ZERO;
    bool ha = vv__next(&ia, &ka, &va), hb = vv__next(&ib, &kb, &vb);
    while (ha || hb) {
        if (ha && hb && ka == kb) {
            if (!vv_close(va, vb, rel, abs_tol))
                return false;
            ha = vv__next(&ia, &ka, &va);
            hb = vv__next(&ib, &kb, &vb);
        } else if (ha && (!hb || ka < kb)) {
            if (!vv_close(va, VV_ZERO, rel, abs_tol))
                return false;
            ha = vv__next(&ia, &ka, &va);
        } else {
            if (!vv_close(VV_ZERO, vb, rel, abs_tol))
                return false;
            hb = vv__next(&ib, &kb, &vb);
        }
    }
    return true;
}

static int leaf_rec(vv v, vv_label *path, int depth, vv_leaf_fn fn, void *ud)
{
    if (v.num != 0.0) {
        int rc = fn(path, depth, v.num, ud);
        if (rc)
            return rc;
    }
    if (!v.map)
        return 0;
    vv_iter it;
    vv__cursor_init(&it, v.map);
    vv x;
    while (vv__next(&it, &path[depth], &x)) {
        int rc = leaf_rec(x, path, depth + 1, fn, ud);
        if (rc)
            return rc;
    }
    return 0;
}

int vv_foreach_leaf(vv v, vv_leaf_fn fn, void *ud)
{
    vv_label *path = calloc((size_t)vv__depth_of(v) + 1, sizeof *path);
    if (!path)
        return DMM_E_NOMEM;
    int rc = leaf_rec(v, path, 0, fn, ud);
    free(path);
    return rc;
}

static void map_bytes(const vv_map *m, vv_stats *st)
{
    st->bytes += vv__map_node_bytes(m);
    if (m->height && !vv__is_dense(m))
        for (unsigned i = 0; i < m->n; i++)
            map_bytes(vv__kids(m)[i], st);
}

static void measure_rec(vv v, vv_stats *st)
{
    st->nodes++;
    if (v.num != 0.0)
        st->leaves++;
    if (!v.map)
        return;
    map_bytes(v.map, st);
    vv_iter it;
    vv__cursor_init(&it, v.map);
    vv_label k;
    vv x;
    while (vv__next(&it, &k, &x))
        measure_rec(x, st);
}

void vv_measure(vv v, vv_stats *st)
{
    memset(st, 0, sizeof *st);
    st->depth = vv__depth_of(v);
    measure_rec(v, st);
}

typedef struct sort_entry {
    const char *s;
    size_t len;
    vv_label label;
    vv child;
} sort_entry;

static int cmp_bytes(const void *a, const void *b)
{
    const sort_entry *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->s, y->s, n);
    if (r)
        return r;
    return x->len < y->len ? -1 : x->len > y->len;
}

void vv_children_sorted(const vv_ctx *c, vv v, vv_label *labels, vv *children)
{
    size_t n = vv_nchildren(v), i = 0;
    if (!n)
        return;
    /* Sort the caller's arrays through a permutation kept in them: fill in
     * id order, then insertion-sort small nodes or qsort a temporary. */
    sort_entry small[32], *e = n <= 32 ? small : malloc(n * sizeof *e);
    vv_iter it;
    vv_iter_init(&it, v);
    vv_label k;
    vv x;
    if (!e) { /* out of memory: fall back to an in-place insertion sort */
        while (vv__next(&it, &k, &x)) {
            labels[i] = k;
            children[i++] = x;
        }
        for (i = 1; i < n; i++) {
            vv_label kl = labels[i];
            vv kc = children[i];
            size_t kn, j = i;
            const char *ks = vv_label_str(c, kl, &kn);
            for (; j > 0; j--) {
                size_t pn;
                const char *ps = vv_label_str(c, labels[j - 1], &pn);
                sort_entry a = {ps, pn, 0, VV_ZERO}, b = {ks, kn, 0, VV_ZERO};
                if (cmp_bytes(&a, &b) <= 0)
                    break;
                labels[j] = labels[j - 1];
                children[j] = children[j - 1];
            }
            labels[j] = kl;
            children[j] = kc;
        }
        return;
    }
    while (vv__next(&it, &k, &x)) {
        e[i].s = vv_label_str(c, k, &e[i].len);
        e[i].label = k;
        e[i++].child = x;
    }
    qsort(e, n, sizeof *e, cmp_bytes);
    for (i = 0; i < n; i++) {
        labels[i] = e[i].label;
        children[i] = e[i].child;
    }
    if (e != small)
        free(e);
}
