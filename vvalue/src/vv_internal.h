// SPDX-License-Identifier: MIT
/*
 * Internals of the V-value library shared between its files: the context, the
 * allocator wrappers and the children map. A map is a persistent B+-tree
 * keyed by label id: small maps (the common case) are a single leaf, a
 * sorted array of up to VV__LEAF_MAX entries; wide maps get interior levels so
 * that changing one child copies O(log n) entries, not the whole node.
 */
#ifndef VV_INTERNAL_H
#define VV_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "vv.h"

/* Leaf capacities: a leaf of scalars (12 bytes an entry) holds up to 128; a
 * leaf with a map array (20 bytes an entry, and a reference to take for
 * each map when it is copied) up to 64, so that a path copy stays ~1.5 KB. */
#define VV__LEAF_MAX     128
#define VV__MAP_LEAF_MAX 64
#define VV__FANOUT       64
#define VV__MAX_HEIGHT   8
#define VV__LABEL_PAGE   4096
#define VV__LABEL_PAGES  16384 /* at most 64 Mi labels */

/* Dense levels (vv_dense.c): a node of VV__DENSE_H height holds the children
 * "0" .. "n-1" by position. Levels narrower than VV__DENSE_MIN stay leaves;
 * n is 16 bits, so a dense level is at most VV__DENSE_MAX wide. */
#define VV__DENSE_H   0xFF
#define VV__DENSE_MIN 16
#define VV__DENSE_MAX 65535
#define VV__DEC_PAGE  4096
#define VV__DEC_PAGES 16 /* VV__DEC_PAGE · VV__DEC_PAGES > VV__DENSE_MAX */
#define VV__NO_LABEL  UINT32_MAX

struct vv__label_entry;

/* Freed blocks of at least VV__CACHE_MIN bytes the default allocator keeps
 * for the next allocation of the same size (vv_ctx.c), at most
 * VV__CACHE_SLOTS of them and VV__CACHE_BYTES in all. */
#define VV__CACHE_MIN   ((size_t)64 << 10)
#define VV__CACHE_SLOTS 8
#define VV__CACHE_BYTES ((size_t)64 << 20)

/* Freed blocks of at most VV__SMALL_MAX bytes, a multiple of 8, the default
 * allocator keeps in a list per size for the next allocation of that size
 * (vv_ctx.c), VV__SMALL_BYTES in all. */
#define VV__SMALL_MAX     256
#define VV__SMALL_CLASSES (VV__SMALL_MAX / 8)
#define VV__SMALL_BYTES   ((size_t)64 << 10)

typedef struct vv__block_cache {
    pthread_mutex_t lock;
    unsigned n;   /* blocks held, oldest first */
    size_t bytes; /* their sizes summed */
    void *p[VV__CACHE_SLOTS];
    size_t size[VV__CACHE_SLOTS];
    /* The small blocks: a spin lock (held for one push or pop), the bytes
     * held, and per size 8·(i+1) a list chained through each block's first
     * eight bytes. */
    int small_lock;
    size_t small_bytes;
    void *small[VV__SMALL_CLASSES];
} vv__block_cache;

struct vv_ctx {
    vv_alloc_fn alloc;
    void *alloc_ud; /* the default allocator's: its vv__block_cache */
    vv__block_cache cache;
    int max_depth;
    size_t max_label_len;
    size_t bytes;                    /* atomic */
    pthread_mutex_t lock;            /* guards interning */
    struct vv__label_entry *by_name; /* uthash head */
    size_t nlabels;
    struct vv__label_entry **pages[VV__LABEL_PAGES];
    /* dec[i / VV__DEC_PAGE][i % VV__DEC_PAGE]: the id of the decimal label
     * "i", VV__NO_LABEL while not interned. dec_mono (atomic): the labels
     * "0" .. "dec_mono-1" are interned with increasing ids, so a dense level
     * of that width iterates in label-id order like any other map. */
    vv_label *dec[VV__DEC_PAGES];
    uint32_t dec_mono;
};

/*
 * A node of the B+-tree, struct-of-arrays. After the header: `key[cap]`
 * (label ids, ascending), padded to 8 bytes, then
 *   interior: `kid[cap]` (vv_map *; key[i] is the smallest key below kid[i]);
 *   leaf:     `num[cap]` (the children's scalar parts), then, only when the
 *             `maps` flag is set, `map[cap]` (the children's maps, NULL for
 *             a bare scalar).
 * A leaf whose children are all scalars has no map array at all, so it merges
 * and scales as one loop over doubles and is freed without a look at its
 * entries. Invariants: n >= 1; total = entries below; vdepth = max vv_depth
 * of the values below (a leaf with vdepth 0 holds only scalars, whether or
 * not it has a map array). A map with refs == 1 may be changed in place by
 * its owner.
 */
struct vv_map {
    uint32_t refs; /* atomic */
    uint32_t total;
    uint16_t n;
    uint16_t cap;
    uint8_t height; /* 0: leaf */
    uint8_t maps;   /* leaf: 1 when it has the map array */
    uint16_t vdepth;
};

/*
 * A dense node (height == VV__DENSE_H) is the whole children map of a value
 * whose labels are decimal integers below n = m->n (n <= the context's
 * dec_mono), held by position: after the header, the context (for the label
 * ids), `num[n]` and, when `maps` is set, `map[n]`. Entry i is the child
 * labelled "i"; it is absent when num[i] == 0 and map[i] == NULL (absent
 * entries are the only zeros stored anywhere, and no function shows them).
 * total = entries present (>= 1); cap = n; vdepth as for a leaf. A dense
 * node is never a kid of an interior node, so a tree iterator meets one only
 * at the bottom of its stack. It is immutable once built.
 *
 * A slab (an image): a dense node of rows whose rows are dense nodes of
 * numbers embedded in the same allocation, one after the other at a fixed
 * stride, so that the pixels are one block with a row pitch (vv_dense_view)
 * and an image is one allocation, not one per row. An embedded row keeps no
 * count of its own: `back` is its byte offset from the slab, whose count
 * every reference to the row takes (vv__map_owner). An absent row's memory
 * is there, all +0.0, with map[i] NULL.
 */
typedef struct vv__dense_hdr {
    struct vv_map m;
    vv_ctx *c;
    uint32_t slab; /* bytes of embedded rows after the arrays (a slab) */
    uint32_t back; /* an embedded row: its offset from the slab; else 0 */
} vv__dense_hdr;
static inline bool vv__is_dense(const vv_map *m)
{
    return m->height == VV__DENSE_H;
}
static inline vv_ctx *vv__dctx(const vv_map *m)
{
    return ((const vv__dense_hdr *)m)->c;
}
static inline double *vv__dnums(const vv_map *m)
{
    return (double *)((char *)m + sizeof(vv__dense_hdr));
}
/* The node that holds m's reference count: m, or the slab m is a row of. */
static inline vv_map *vv__map_owner(vv_map *m)
{
    if (m->height == VV__DENSE_H && ((const vv__dense_hdr *)m)->back)
        return (vv_map *)((char *)m - ((const vv__dense_hdr *)m)->back);
    return m;
}
static inline vv_map **vv__dmaps(const vv_map *m)
{
    return m->maps ? (vv_map **)(vv__dnums(m) + m->cap) : NULL;
}
static inline vv vv__dense_val(const vv_map *m, unsigned i)
{
    vv_map **maps = vv__dmaps(m);
    return (vv){vv__dnums(m)[i], maps ? maps[i] : NULL};
}
static inline bool vv__dense_has(const vv_map *m, unsigned i)
{
    vv_map **maps = vv__dmaps(m);
    return vv__dnums(m)[i] != 0.0 || (maps && maps[i]);
}
/* The id of decimal label "i", for i below the context's dec_mono. */
static inline vv_label vv__dec_id(const vv_ctx *c, uint32_t i)
{
    const vv_label *pg =
        __atomic_load_n(&c->dec[i / VV__DEC_PAGE], __ATOMIC_ACQUIRE);
    return pg[i % VV__DEC_PAGE];
}
static inline uint32_t vv__dec_mono(const vv_ctx *c)
{
    return __atomic_load_n(&c->dec_mono, __ATOMIC_ACQUIRE);
}
/* The number of a decimal label ("0", "1", … without leading zeros, below
 * VV__DENSE_MAX), -1 for any other label. Lock-free. */
int32_t vv__label_dec(const vv_ctx *c, vv_label l);
/* The same for len bytes of text. */
int32_t vv__parse_dec(const char *s, size_t len);
/* Intern "0" .. "n-1" (those missing, in increasing order), so that dense
 * levels up to n wide become possible; 0 or DMM_E_NOMEM. n <= VV__DENSE_MAX.
 * Dense levels are possible up to vv__dec_mono(c) afterwards, which is less
 * than n only when some of these labels were interned out of order before. */
int vv__dec_reserve(vv_ctx *c, uint32_t n);

/* vv_dense.c */
size_t vv__dense_bytes(unsigned n, bool maps);
/* A new slab of n rows w wide (n, w <= dec_mono), all zero and all rows
 * linked (map[i] set); NULL on no memory or when it would pass 4 GiB.
 * zero false leaves the rows' doubles unset, for a caller that writes
 * every one of them (a pass less over an image). */
vv_map *vv__slab_new(vv_ctx *c, unsigned n, unsigned w, bool zero);
/* Bytes from one row of slab s to the next. */
static inline size_t vv__slab_pitch(const vv_map *s)
{
    return ((const vv__dense_hdr *)s)->slab / s->n;
}
/* Row i of slab s, linked or not (its doubles: vv__dnums). */
static inline vv_map *vv__slab_row(const vv_map *s, unsigned i)
{
    return (vv_map *)((char *)s + sizeof(vv__dense_hdr) +
                      (size_t)s->cap * (sizeof(double) + sizeof(vv_map *)) +
                      i * vv__slab_pitch(s));
}
/* Count what is present in every row (an empty row is unlinked) and in the
 * slab: the slab, or NULL (freed) when nothing is present. */
vv_map *vv__slab_finish(vv_ctx *c, vv_map *s);
/* The same when the caller has set each row's total (its entries that are
 * not 0.0) already, as it wrote them. */
vv_map *vv__slab_finish_counted(vv_ctx *c, vv_map *s);
/* True when m is a dense node of dense scalar rows (a slab or not): the
 * shape the image paths of vv_ops.c work on. */
bool vv__dense_image(const vv_map *m);
/* A new dense node of width n (n <= dec_mono) with zeroed entries and
 * total 0; the caller fills it and calls vv__dense_finish. NULL on no memory */
vv_map *vv__dense_new(vv_ctx *c, unsigned n, bool maps);
/* Count the entries present and set the depth: the node, or NULL (freed)
 * when nothing is present. */
vv_map *vv__dense_finish(vv_ctx *c, vv_map *d);
/* The entry for label key (borrowed); false when absent. */
bool vv__dense_find(const vv_map *d, vv_label key, vv *out);
/* new: the same children as a B+-tree (children gain a reference). */
int vv__dense_tree(vv_ctx *c, const vv_map *d, vv_map **out);
/* *mp dense: replaced by its tree form (the dense node's reference is
 * released); unchanged on error. Other maps are left alone. */
int vv__undense(vv_ctx *c, vv_map **mp);
/* new: a dense node for the n children (labels in any order, not yet
 * checked) when the rule in vv_dense.c says so; *out NULL and 0 when not.
 * Takes nothing: children gain references only in the node made. */
int vv__dense_try(vv_ctx *c, size_t n, const vv_label *labels,
                  const vv *children, vv_map **out);

static inline size_t vv__map_arr_off(unsigned cap)
{
    return sizeof(struct vv_map) +
           (((size_t)cap * sizeof(vv_label) + 7) & ~(size_t)7);
}
static inline vv_label *vv__keys(const vv_map *m)
{
    return (vv_label *)(m + 1);
}
/* leaf: the scalar parts */
static inline double *vv__nums(const vv_map *m)
{
    return (double *)((char *)m + vv__map_arr_off(m->cap));
}
/* leaf: the child maps, NULL when the leaf has no map array */
static inline vv_map **vv__maps(const vv_map *m)
{
    return m->maps ? (vv_map **)((char *)m + vv__map_arr_off(m->cap) +
                                 (size_t)m->cap * sizeof(double))
                   : NULL;
}
/* interior: the kids */
static inline vv_map **vv__kids(const vv_map *m)
{
    return (vv_map **)((char *)m + vv__map_arr_off(m->cap));
}
/* leaf: entry i as a (borrowed) value */
static inline vv vv__leaf_val(const vv_map *m, unsigned i)
{
    vv_map **maps = vv__maps(m);
    return (vv){vv__nums(m)[i], maps ? maps[i] : NULL};
}
static inline int vv__depth_of(vv v)
{
    return v.map ? 1 + v.map->vdepth : 0;
}

/* allocator wrappers (count bytes in the context) */
void *vv__alloc(vv_ctx *c, size_t n);
void vv__free_mem(vv_ctx *c, void *p, size_t n);

/* map lifetime */
static inline void vv__map_ref(vv_map *m)
{
    __atomic_fetch_add(&vv__map_owner(m)->refs, 1, __ATOMIC_RELAXED);
}
static inline bool vv__map_unique(const vv_map *m)
{
    return __atomic_load_n(&vv__map_owner((vv_map *)m)->refs,
                           __ATOMIC_ACQUIRE) == 1;
}
void vv__map_unref(vv_ctx *c, vv_map *m);
size_t vv__map_node_bytes(const vv_map *m);

/* The value at key (borrowed) in *out; false (and *out zero) when absent. */
bool vv__map_find(const vv_map *m, vv_label key, vv *out);

/*
 * In-order builder: push (key, value) pairs with strictly increasing keys and
 * non-zero values; it fills leaves and interior levels bottom-up. `hint` is
 * the expected number of entries (sizes the first leaf exactly); set `maps`
 * when the values are expected to have children, so that new leaves get
 * their map array at once instead of on the first such value.
 */
typedef struct vv__builder {
    vv_ctx *c;
    vv_map *lvl[VV__MAX_HEIGHT];
    int top;
    uint32_t hint;
    uint32_t pushed;
    bool maps;
} vv__builder;
void vv__build_init(vv__builder *b, vv_ctx *c, size_t hint);
/* takes v (also on error) */
int vv__build_push(vv__builder *b, vv_label key, vv v);
/* new: the map, NULL when nothing was pushed */
int vv__build_finish(vv__builder *b, vv_map **out);
void vv__build_abort(vv__builder *b);

/*
 * Point writes. slot_begin makes the path to key unique in *mp (copying
 * shared nodes), inserts a zero value when key is absent, and points the slot
 * at the entry: s->num at its scalar part, s->map at its map. With `maps`
 * false the entry's leaf may have no map array; s->map then points at
 * s->none, which must stay NULL (the caller promised not to give the entry
 * children). The caller changes the entry (keeping ownership rules) and must
 * then call slot_end, which drops the entry if it became zero and refreshes
 * the cached totals and depths on the path. *mp may be NULL (an empty map).
 */
typedef struct vv__slot {
    double *num;
    vv_map **map;
    vv_map *none;
} vv__slot;
int vv__slot_begin(vv_ctx *c, vv_map **mp, vv_label key, bool maps,
                   vv__slot *s);
void vv__slot_end(vv_ctx *c, vv_map **mp, vv_label key);

/* A cursor over a map's entries in key order (same as vv_iter). */
static inline void vv__cursor_init(vv_iter *it, const vv_map *m)
{
    vv_iter_init(it, (vv){0.0, (vv_map *)m});
}

/* Inlined fast paths of vv_iter_next and vv__build_push for the merge loops:
 * the top of a live iterator's stack is always a leaf. */
static inline bool vv__next(vv_iter *it, vv_label *k, vv *v)
{
    if (it->top >= 0) {
        const vv_map *m = (const vv_map *)it->stack[it->top];
        unsigned p = it->pos[it->top];
        if (p < m->n && !m->height) { /* dense nodes: vv_iter_next */
            *k = vv__keys(m)[p];
            *v = vv__leaf_val(m, p);
            it->pos[it->top] = p + 1;
            return true;
        }
    }
    return vv_iter_next(it, k, v);
}

/* Skip exhausted leaves: the leaf under the iterator's next entry (its index
 * in *pos), or NULL at the end. */
const vv_map *vv__iter_settle(vv_iter *it, unsigned *pos);
static inline const vv_map *vv__leaf_at(vv_iter *it, unsigned *pos)
{
    if (it->top >= 0) {
        const vv_map *m = (const vv_map *)it->stack[it->top];
        assert(!vv__is_dense(m) && "dense nodes take their own paths");
        if (it->pos[it->top] < m->n) {
            *pos = it->pos[it->top];
            return m;
        }
    }
    return vv__iter_settle(it, pos);
}
/* True when every node on the iterator's path (root to leaf) has refs == 1:
 * the leaf on top belongs to the iterated map alone. */
static inline bool vv__iter_path_unique(const vv_iter *it)
{
    for (int L = 0; L <= it->top; L++)
        if (!vv__map_unique((const vv_map *)it->stack[L]))
            return false;
    return true;
}

/* A new, empty leaf with room for cap entries and a map array when maps is
 * set (NULL when out of memory). */
vv_map *vv__leaf_new(vv_ctx *c, unsigned cap, bool maps);
/* Append a whole leaf (taken) after everything pushed so far; a partial leaf
 * the builder holds is closed first (leaves need not be full). */
int vv__build_push_leaf(vv__builder *b, vv_map *leaf);

static inline int vv__push(vv__builder *b, vv_label k, vv v)
{
    vv_map *l = b->lvl[0];
    if (l && l->n < l->cap && (l->maps || !v.map)) {
        vv__keys(l)[l->n] = k;
        vv__nums(l)[l->n] = v.num;
        if (l->maps)
            vv__maps(l)[l->n] = v.map;
        l->n++;
        l->total++;
        if (v.map && v.map->vdepth + 1u > l->vdepth)
            l->vdepth = (uint16_t)(v.map->vdepth + 1u);
        b->pushed++;
        return 0;
    }
    return vv__build_push(b, k, v);
}

#endif
