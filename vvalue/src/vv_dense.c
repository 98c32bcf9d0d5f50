// SPDX-License-Identifier: MIT
/*
 * Dense levels: the children map of a node whose labels are the decimal
 * integers "0" .. "n-1", held by position as an array of doubles (and of
 * child maps when some child has children), not as a B+-tree of (label,
 * value) pairs. An image {"0": {"0": x00, …}, …} is a dense node of rows,
 * each row a dense node of pixels: every row's pixels are one run of doubles.
 *
 * The value does not change: a dense node is another way to hold the same
 * children. Absent children (zero pixels) are 0.0 in the array and are never
 * shown: iteration skips them, `total` counts the present ones, equality and
 * output see the same children as the tree form. Iteration is in label-id
 * order like every map, which is position order because a dense node is
 * only made up to the context's dec_mono: the width up to which "0", "1", …
 * were interned with increasing ids (vv__dec_reserve interns them so).
 *
 * The rule: a level is made dense when all its labels are decimal, it is at
 * least VV__DENSE_MIN wide (1 + the largest label) and at least half full.
 * Levels are made dense by vv_from_dense, by reading JSON (vv_from_pairs)
 * and by arithmetic on dense operands (vv_ops.c); anything else that would
 * change a dense node in place (a point write, vv_set) turns it into the
 * tree form first. Either form gives the same bits in every operation.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "vv_internal.h"

size_t vv__dense_bytes(unsigned n, bool maps)
{
    return sizeof(vv__dense_hdr) +
           (size_t)n * (sizeof(double) + (maps ? sizeof(vv_map *) : 0));
}

vv_map *vv__dense_new(vv_ctx *c, unsigned n, bool maps)
{
    assert(n >= 1 && n <= VV__DENSE_MAX && n <= vv__dec_mono(c));
    size_t bytes = vv__dense_bytes(n, maps);
    vv_map *d = vv__alloc(c, bytes);
    if (!d)
        return NULL;
    memset(d, 0, bytes);
    d->refs = 1;
    d->n = d->cap = (uint16_t)n;
    d->height = VV__DENSE_H;
    d->maps = maps;
    ((vv__dense_hdr *)d)->c = c;
    return d;
}

vv_map *vv__slab_new(vv_ctx *c, unsigned n, unsigned w, bool zero)
{
    assert(n >= 1 && w >= 1 && n <= vv__dec_mono(c) && w <= vv__dec_mono(c));
    size_t head = vv__dense_bytes(n, true), pitch = vv__dense_bytes(w, false);
    if ((size_t)n * pitch > UINT32_MAX - head)
        return NULL;
    vv_map *s = vv__alloc(c, head + n * pitch);
    if (!s)
        return NULL;
    memset(s, 0, zero ? head + n * pitch : head);
    s->refs = 1;
    s->n = s->cap = (uint16_t)n;
    s->height = VV__DENSE_H;
    s->maps = 1;
    ((vv__dense_hdr *)s)->c = c;
    ((vv__dense_hdr *)s)->slab = (uint32_t)(n * pitch);
    vv_map **maps = vv__dmaps(s);
    for (unsigned i = 0; i < n; i++) {
        vv_map *r = vv__slab_row(s, i);
        if (!zero)
            memset(r, 0, sizeof(vv__dense_hdr));
        r->n = r->cap = (uint16_t)w;
        r->height = VV__DENSE_H;
        ((vv__dense_hdr *)r)->c = c;
        ((vv__dense_hdr *)r)->back = (uint32_t)((char *)r - (char *)s);
        maps[i] = r;
    }
    return s;
}

vv_map *vv__slab_finish(vv_ctx *c, vv_map *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        vv_map *r = vv__slab_row(s, i);
        const double *x = vv__dnums(r);
        uint32_t total = 0;
        for (unsigned j = 0; j < r->n; j++)
            total += x[j] != 0.0;
        r->total = total;
    }
    return vv__slab_finish_counted(c, s);
}

vv_map *vv__slab_finish_counted(vv_ctx *c, vv_map *s)
{
    vv_map **maps = vv__dmaps(s);
    for (unsigned i = 0; i < s->n; i++) {
        vv_map *r = vv__slab_row(s, i);
        maps[i] = r->total ? r : NULL;
    }
    return vv__dense_finish(c, s);
}

bool vv__dense_image(const vv_map *m)
{
    if (!vv__is_dense(m) || !m->maps || m->vdepth != 1)
        return false;
    vv_map **maps = vv__dmaps(m);
    for (unsigned i = 0; i < m->n; i++)
        if (maps[i] && !vv__is_dense(maps[i]))
            return false;
    return true;
}

vv_map *vv__dense_finish(vv_ctx *c, vv_map *d)
{
    const double *x = vv__dnums(d);
    vv_map **maps = vv__dmaps(d);
    uint32_t total = 0;
    unsigned depth = 0;
    for (unsigned i = 0; i < d->n; i++)
        total += x[i] != 0.0;
    for (unsigned i = 0; maps && i < d->n; i++)
        if (maps[i]) {
            total += x[i] == 0.0;
            if (maps[i]->vdepth + 1u > depth)
                depth = maps[i]->vdepth + 1u;
        }
    d->total = total;
    d->vdepth = (uint16_t)depth;
    if (!total) {
        vv__map_unref(c, d);
        return NULL;
    }
    return d;
}

bool vv__dense_find(const vv_map *d, vv_label key, vv *out)
{
    int32_t i = vv__label_dec(vv__dctx(d), key);
    if (i >= 0 && i < d->n && vv__dense_has(d, (unsigned)i)) {
        *out = vv__dense_val(d, (unsigned)i);
        return true;
    }
    *out = VV_ZERO;
    return false;
}

int vv__dense_tree(vv_ctx *c, const vv_map *d, vv_map **out)
{
    vv__builder b;
    vv__build_init(&b, c, d->total);
    b.maps = d->vdepth > 0;
    for (unsigned i = 0; i < d->n; i++) {
        if (!vv__dense_has(d, i))
            continue;
        int rc = vv__push(&b, vv__dec_id(c, i), vv_ref(vv__dense_val(d, i)));
        if (rc) {
            vv__build_abort(&b);
            return rc;
        }
    }
    return vv__build_finish(&b, out);
}

int vv__undense(vv_ctx *c, vv_map **mp)
{
    if (!*mp || !vv__is_dense(*mp))
        return 0;
    vv_map *t;
    int rc = vv__dense_tree(c, *mp, &t);
    if (rc)
        return rc;
    vv__map_unref(c, *mp);
    *mp = t;
    return 0;
}

/* Whether a level `width` wide with `present` children is held dense. */
static bool dense_worth(const vv_ctx *c, size_t width, size_t present)
{
    return width >= VV__DENSE_MIN && width <= vv__dec_mono(c) &&
           2 * present >= width;
}

int vv__dense_try(vv_ctx *c, size_t n, const vv_label *labels,
                  const vv *children, vv_map **out)
{
    *out = NULL;
    if (n < VV__DENSE_MIN / 2)
        return 0;
    size_t width = 0, present = 0;
    bool maps = false;
    for (size_t k = 0; k < n; k++) {
        if (vv_is_zero(children[k]))
            continue;
        int32_t i = vv__label_dec(c, labels[k]);
        if (i < 0)
            return 0;
        if ((size_t)i + 1 > width)
            width = (size_t)i + 1;
        present++;
        maps |= children[k].map != NULL;
    }
    if (!dense_worth(c, width, present))
        return 0;
    vv_map *d = vv__dense_new(c, (unsigned)width, maps);
    if (!d)
        return DMM_E_NOMEM;
    double *x = vv__dnums(d);
    vv_map **dm = vv__dmaps(d);
    for (size_t k = 0; k < n; k++) {
        if (vv_is_zero(children[k]))
            continue;
        unsigned i = (unsigned)vv__label_dec(c, labels[k]);
        if (vv__dense_has(d, i)) { /* a duplicate: the sum is the tree's job */
            vv__map_unref(c, d);
            return 0;
        }
        x[i] = children[k].num;
        if (dm)
            dm[i] = vv_ref(children[k]).map;
    }
    *out = vv__dense_finish(c, d);
    return 0;
}

/* ---- blocks: the public face --------------------------------------------- */

static size_t prod(int rank, const size_t *dims)
{
    size_t p = 1;
    for (int k = 0; k < rank; k++)
        p *= dims[k];
    return p;
}

/* new: the level of a block whose rows are `rows` (rank - 1 deeper). */
static int block_rec(vv_ctx *c, int rank, const size_t *dims, const double *x,
                     vv *out)
{
    size_t n = dims[0];
    if (rank == 1) {
        size_t present = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(x[i]))
                return DMM_E_NONFINITE;
            present += x[i] != 0.0;
        }
        if (!present) {
            *out = VV_ZERO;
            return 0;
        }
        size_t width = n;
        while (x[width - 1] == 0.0)
            width--;
        if (dense_worth(c, width, present)) {
            vv_map *d = vv__dense_new(c, (unsigned)width, false);
            if (!d)
                return DMM_E_NOMEM;
            double *dx = vv__dnums(d);
            for (size_t i = 0; i < width; i++)
                dx[i] = x[i] == 0.0 ? 0.0 : x[i]; /* no negative zero */
            *out = (vv){0.0, vv__dense_finish(c, d)};
            return 0;
        }
        /* a tree: through vv_from_pairs, which sorts the labels when "i"
         * was interned before "i-1" */
        vv *kids = vv__alloc(c, present * sizeof *kids);
        vv_label *labels = vv__alloc(c, present * sizeof *labels);
        int rc = kids && labels ? 0 : DMM_E_NOMEM;
        if (!rc) {
            size_t m = 0;
            for (size_t i = 0; i < width; i++)
                if (x[i] != 0.0) {
                    labels[m] = vv__dec_id(c, (uint32_t)i);
                    kids[m++] = vv_number(x[i]);
                }
            rc = vv_from_pairs(c, 0.0, m, labels, kids, out);
        }
        if (kids)
            vv__free_mem(c, kids, present * sizeof *kids);
        if (labels)
            vv__free_mem(c, labels, present * sizeof *labels);
        return rc;
    }
    size_t stride = prod(rank - 1, dims + 1);
    if (rank == 2) { /* an image: one slab when wide and full enough */
        /* Each row counted and checked in one pass, then its last entry
         * found from the end; the counts of the first ROW_COUNTS rows are
         * kept for the slab's rows (vv__slab_finish would count again). */
        enum { ROW_COUNTS = 512 };
        uint32_t counted[ROW_COUNTS];
        size_t h = 0, w = 0, present = 0;
        for (size_t i = 0; i < n; i++) {
            const double *xr = x + i * stride;
            size_t count = 0;
            bool bad = false;
            for (size_t j = 0; j < stride; j++) {
                count += xr[j] != 0.0;
                bad |= !(fabs(xr[j]) <= DBL_MAX); /* NaN or infinite */
            }
            if (bad)
                return DMM_E_NONFINITE;
            if (i < ROW_COUNTS)
                counted[i] = (uint32_t)count;
            if (!count)
                continue;
            size_t last = stride;
            while (xr[last - 1] == 0.0)
                last--;
            present += count;
            h = i + 1;
            w = last > w ? last : w;
        }
        if (!present) {
            *out = VV_ZERO;
            return 0;
        }
        if (w >= VV__DENSE_MIN && w <= vv__dec_mono(c) &&
            h <= vv__dec_mono(c) && 2 * present >= h * w) {
            vv_map *sl = vv__slab_new(c, (unsigned)h, (unsigned)w, false);
            if (sl) {
                for (size_t i = 0; i < h; i++) {
                    vv_map *row = vv__slab_row(sl, (unsigned)i);
                    double *r = vv__dnums(row);
                    for (size_t j = 0; j < w; j++) {
                        double y = x[i * stride + j];
                        r[j] = y == 0.0 ? 0.0 : y;
                    }
                    if (h <= ROW_COUNTS) /* its entries all lie below w */
                        row->total = counted[i];
                }
                *out =
                    (vv){0.0, h <= ROW_COUNTS ? vv__slab_finish_counted(c, sl)
                                              : vv__slab_finish(c, sl)};
                return 0;
            }
            if ((size_t)h * vv__dense_bytes((unsigned)w, false) <
                UINT32_MAX / 2)
                return DMM_E_NOMEM; /* else too big for a slab: rows */
        }
    }
    vv *rows = vv__alloc(c, n * sizeof *rows);
    vv_label *labels = vv__alloc(c, n * sizeof *labels);
    int rc = rows && labels ? 0 : DMM_E_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        vv r;
        rc = block_rec(c, rank - 1, dims + 1, x + i * stride, &r);
        if (!rc && !vv_is_zero(r)) {
            labels[m] = vv__dec_id(c, (uint32_t)i);
            rows[m++] = r;
        }
    }
    if (!rc) {
        rc = vv_from_pairs(c, 0.0, m, labels, rows, out); /* takes rows */
    } else {
        for (size_t i = 0; i < m; i++)
            vv_free(c, rows[i]);
    }
    if (rows)
        vv__free_mem(c, rows, n * sizeof *rows);
    if (labels)
        vv__free_mem(c, labels, n * sizeof *labels);
    return rc;
}

int vv_from_dense(vv_ctx *c, int rank, const size_t *dims, const double *data,
                  vv *out)
{
    if (rank < 1 || rank > VV_DENSE_MAX_RANK)
        return DMM_E_INVAL;
    size_t wide = 0, total = 1;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 1 || dims[k] > VV_DENSE_MAX_DIM)
            return DMM_E_INVAL;
        if (dims[k] > wide)
            wide = dims[k];
        if (total > SIZE_MAX / sizeof(double) / dims[k])
            return DMM_E_LIMIT;
        total *= dims[k];
    }
    /* Where "i" was interned before "i-1" (vv__dec_mono(c) < wide), the
     * levels too wide for the increasing run are made as trees. */
    int rc = vv__dec_reserve(c, (uint32_t)wide);
    if (rc)
        return rc;
    return block_rec(c, rank, dims, data, out);
}

bool vv_dense_view(vv v, size_t *rows, size_t *cols, size_t *stride,
                   const double **data)
{
    const vv_map *s = v.map;
    if (v.num != 0.0 || !s || !vv__is_dense(s) ||
        !((const vv__dense_hdr *)s)->slab)
        return false;
    const double *x = vv__dnums(s);
    for (unsigned i = 0; i < s->n; i++)
        if (x[i] != 0.0) /* a row with a number of its own */
            return false;
    const vv_map *r = vv__slab_row(s, 0);
    *rows = s->n;
    *cols = r->n;
    *stride = vv__slab_pitch(s) / sizeof(double);
    *data = vv__dnums(r);
    return true;
}

/* Shape check of one level: v's children are at `level` of a rank-`rank`
 * block; dims[level] grows to hold them. */
static bool shape_rec(const vv_ctx *c, vv v, int level, int rank, size_t *dims)
{
    const vv_map *m = v.map;
    if (vv__is_dense(m)) {
        const double *x = vv__dnums(m);
        vv_map **mm = vv__dmaps(m);
        if (level == rank - 1 && mm)
            return false;
        unsigned last = m->n;
        if (level == rank - 1) { /* numbers only: the last one present */
            while (last > 0 && x[last - 1] == 0.0)
                last--;
        } else {
            last = 0;
            for (unsigned i = 0; i < m->n; i++) {
                if (!vv__dense_has(m, i))
                    continue;
                last = i + 1;
                if (x[i] != 0.0 || !mm || !mm[i] ||
                    !shape_rec(c, vv__dense_val(m, i), level + 1, rank, dims))
                    return false;
            }
        }
        if (last > dims[level])
            dims[level] = last;
        return true;
    }
    vv_iter it;
    vv_label l;
    vv x;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &x)) {
        long i = vv__label_dec(c, l);
        if (i < 0)
            return false;
        if ((size_t)i + 1 > dims[level])
            dims[level] = (size_t)i + 1;
        if (level == rank - 1 ? x.map != NULL
                              : x.num != 0.0 || !x.map ||
                                    !shape_rec(c, x, level + 1, rank, dims))
            return false;
    }
    return true;
}

bool vv_dense_shape(const vv_ctx *c, vv v, int *rank, size_t *dims)
{
    int r = vv__depth_of(v);
    if (v.num != 0.0 || r < 1 || r > VV_DENSE_MAX_RANK)
        return false;
    size_t d[VV_DENSE_MAX_RANK] = {0};
    if (!shape_rec(c, v, 0, r, d))
        return false;
    *rank = r;
    memcpy(dims, d, (size_t)r * sizeof *d);
    return true;
}

/* Scatter one level of v into x (zeroed), strides from dims. */
static bool read_rec(const vv_ctx *c, vv v, int rank, const size_t *dims,
                     double *x)
{
    const vv_map *m = v.map;
    if (!m)
        return v.num == 0.0;
    if (v.num != 0.0)
        return false;
    size_t stride = prod(rank - 1, dims + 1);
    if (vv__is_dense(m)) {
        vv_map **mm = vv__dmaps(m);
        const double *dx = vv__dnums(m);
        if (rank == 1 && !mm) { /* a row: one copy (absent entries are +0) */
            size_t n = m->n < dims[0] ? m->n : dims[0];
            memcpy(x, dx, n * sizeof *x);
            for (size_t i = n; i < m->n; i++)
                if (dx[i] != 0.0)
                    return false;
            return true;
        }
        for (unsigned i = 0; i < m->n; i++) {
            if (!vv__dense_has(m, i))
                continue;
            if (i >= dims[0])
                return false;
            if (rank == 1) {
                if (mm && mm[i])
                    return false;
                x[i] = dx[i];
            } else if (!read_rec(c, vv__dense_val(m, i), rank - 1, dims + 1,
                                 x + i * stride)) {
                return false;
            }
        }
        return true;
    }
    vv_iter it;
    vv_label l;
    vv y;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &y)) {
        long i = vv__label_dec(c, l);
        if (i < 0 || (size_t)i >= dims[0])
            return false;
        if (rank == 1) {
            if (y.map)
                return false;
            x[i] = y.num;
        } else if (!y.map || !read_rec(c, y, rank - 1, dims + 1,
                                       x + (size_t)i * stride)) {
            return false;
        }
    }
    return true;
}

int vv_dense_read(const vv_ctx *c, vv v, int rank, const size_t *dims,
                  double *data)
{
    if (rank < 1 || rank > VV_DENSE_MAX_RANK)
        return DMM_E_INVAL;
    memset(data, 0, prod(rank, dims) * sizeof *data);
    if (vv_depth(v) > rank || !read_rec(c, v, rank, dims, data))
        return DMM_E_INVAL;
    return 0;
}
