// SPDX-License-Identifier: MIT
/*
 * The children map: a persistent B+-tree of label id -> vv.
 *
 * Why a tree and not one sorted array: a network matrix has nodes with
 * thousands of children (every neuron of a type sits under one node), and Self
 * adds small deltas to it every cycle. With one array, changing one weight
 * copies the whole node; here it copies one leaf and its interior ancestors,
 * O(128 + 64 · height) entries. Small maps are a single leaf, so the common
 * case is a flat sorted array scanned in order, which is what merges want.
 *
 * Sharing: nodes are reference-counted and immutable while shared. A writer
 * that owns the only reference (refs == 1) may change a node in place; the
 * slot functions below copy shared nodes on the way down ("path copying").
 * Leaves are not kept at a minimum fill: a removal never merges nodes, so the
 * tree stays valid and shallow enough (height grows only when a root splits).
 *
 * Leaves are struct-of-arrays (see vv_internal.h): a leaf of bare scalars,
 * the usual bottom of a value, is keys and doubles only; the map array is
 * added the first time an entry with children is written into the leaf.
 */
#include <stdlib.h>

#include "vv_internal.h"

static size_t node_bytes(unsigned height, unsigned cap, bool maps)
{
    size_t per = height ? sizeof(vv_map *)
                        : sizeof(double) + (maps ? sizeof(vv_map *) : 0);
    return vv__map_arr_off(cap) + (size_t)cap * per;
}

size_t vv__map_node_bytes(const vv_map *m)
{
    if (vv__is_dense(m)) /* a slab's rows are counted with the slab */
        return ((const vv__dense_hdr *)m)->back
                   ? 0
                   : vv__dense_bytes(m->cap, m->maps) +
                         ((const vv__dense_hdr *)m)->slab;
    return node_bytes(m->height, m->cap, m->maps);
}

static vv_map *node_new(vv_ctx *c, unsigned height, unsigned cap, bool maps)
{
    vv_map *m = vv__alloc(c, node_bytes(height, cap, maps));
    if (!m)
        return NULL;
    m->refs = 1;
    m->total = 0;
    m->n = 0;
    m->cap = (uint16_t)cap;
    m->height = (uint8_t)height;
    m->maps = !height && maps;
    m->vdepth = 0;
    return m;
}

static unsigned leaf_max(bool maps)
{
    return maps ? VV__MAP_LEAF_MAX : VV__LEAF_MAX;
}

/* The most entries a node takes by insertion. A leaf given a map array
 * after it filled (own, for a write of a value with children) may hold more
 * until its next insertion splits it. */
static unsigned node_max(const vv_map *m)
{
    return m->height ? VV__FANOUT : leaf_max(m->maps);
}

/* Release the node's memory only (its children are not touched). */
static void node_dealloc(vv_ctx *c, vv_map *m)
{
    vv__free_mem(c, m, vv__map_node_bytes(m));
}

/*
 * Freeing is iterative so that a value of any depth (a long `cons` list, say)
 * cannot overflow the stack: dead nodes are chained through their first eight
 * bytes (refs and total, no longer needed) while their children are visited.
 */
/* The link of a dead node: the next dead node, kept in its first bytes. */
static void dead_link_set(vv_map *m, vv_map *next)
{
    uintptr_t link = (uintptr_t)next;
    memcpy((void *)m, &link, sizeof link);
}

static vv_map *dead_link_get(const vv_map *m)
{
    uintptr_t link;
    memcpy(&link, (const void *)m, sizeof link);
    return (vv_map *)link;
}

void vv__map_unref(vv_ctx *c, vv_map *m)
{
    m = vv__map_owner(m);
    if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    vv_map *pending = m;
    dead_link_set(m, NULL);
    while (pending) {
        vv_map *d = pending;
        pending = dead_link_get(d);
        /* a leaf of scalars (vdepth 0) has no maps to release */
        /* (a dense node being filled has no vdepth yet: its maps flag) */
        vv_map **ks = vv__is_dense(d) ? vv__dmaps(d)
                      : d->height     ? vv__kids(d)
                      : d->vdepth     ? vv__maps(d)
                                      : NULL;
        unsigned n = ks ? d->n : 0;
        for (unsigned i = 0; i < n; i++) {
            vv_map *k = ks[i] ? vv__map_owner(ks[i]) : NULL;
            if (k == d) /* a row of the slab being freed */
                continue;
            if (k && __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0) {
                dead_link_set(k, pending);
                pending = k;
            }
        }
        node_dealloc(c, d);
    }
}

/* First index i with keys[i] >= key. */
static inline unsigned lower_bound(const vv_label *keys, unsigned n,
                                   vv_label key)
{
    unsigned lo = 0;
    while (n > 0) {
        unsigned half = n / 2;
        if (keys[lo + half] < key) {
            lo += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    return lo;
}

/* The kid of an interior node whose range holds key. */
static inline unsigned kid_index(const vv_map *m, vv_label key)
{
    const vv_label *keys = vv__keys(m);
    unsigned lo = 0, n = m->n;
    while (n > 0) { /* first index with keys[i] > key */
        unsigned half = n / 2;
        if (keys[lo + half] <= key) {
            lo += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    return lo ? lo - 1 : 0;
}

bool vv__map_find(const vv_map *m, vv_label key, vv *out)
{
    if (vv__is_dense(m))
        return vv__dense_find(m, key, out);
    while (m->height)
        m = vv__kids(m)[kid_index(m, key)];
    unsigned i = lower_bound(vv__keys(m), m->n, key);
    if (i < m->n && vv__keys(m)[i] == key) {
        *out = vv__leaf_val(m, i);
        return true;
    }
    *out = VV_ZERO;
    return false;
}

/* Recompute the cached depth and total of a node from its entries. */
static void node_refresh(vv_map *m)
{
    unsigned d = 0;
    if (m->height) {
        uint32_t total = 0;
        for (unsigned i = 0; i < m->n; i++) {
            vv_map *k = vv__kids(m)[i];
            total += k->total;
            if (k->vdepth > d)
                d = k->vdepth;
        }
        m->total = total;
    } else {
        vv_map **maps = vv__maps(m);
        for (unsigned i = 0; maps && i < m->n; i++)
            if (maps[i] && maps[i]->vdepth + 1u > d)
                d = maps[i]->vdepth + 1u;
        m->total = m->n;
    }
    m->vdepth = (uint16_t)d;
}

/* ---- iteration ----------------------------------------------------------- */

static void iter_descend(vv_iter *it, const vv_map *m)
{
    for (;;) {
        it->top++;
        assert(it->top < VV__MAX_HEIGHT);
        it->stack[it->top] = m;
        it->pos[it->top] = 0;
        if (!m->height || vv__is_dense(m))
            return;
        m = vv__kids(m)[0];
    }
}

void vv_iter_init(vv_iter *it, vv v)
{
    it->top = -1;
    if (v.map)
        iter_descend(it, v.map);
}

const vv_map *vv__iter_settle(vv_iter *it, unsigned *pos)
{
    while (it->top >= 0) {
        const vv_map *m = it->stack[it->top];
        unsigned p = it->pos[it->top];
        if (!m->height || vv__is_dense(m)) {
            if (p < m->n) {
                *pos = p;
                return m;
            }
            it->top--;
            continue;
        }
        if (++p < m->n) {
            it->pos[it->top] = p;
            iter_descend(it, vv__kids(m)[p]);
        } else {
            it->top--;
        }
    }
    return NULL;
}

bool vv_iter_next(vv_iter *it, vv_label *label, vv *child)
{
    unsigned p;
    const vv_map *m = vv__iter_settle(it, &p);
    if (!m)
        return false;
    if (vv__is_dense(m)) { /* the only node on the stack: skip absent ones */
        while (p < m->n && !vv__dense_has(m, p))
            p++;
        it->pos[it->top] = p + 1;
        if (p == m->n) {
            it->top--;
            return false;
        }
        *label = vv__dec_id(vv__dctx(m), p);
        *child = vv__dense_val(m, p);
        return true;
    }
    *label = vv__keys(m)[p];
    *child = vv__leaf_val(m, p);
    it->pos[it->top] = p + 1;
    return true;
}

bool vv_iter_leaf(vv_iter *it, vv_leaf *out)
{
    unsigned p;
    const vv_map *m = vv__iter_settle(it, &p);
    if (!m || vv__is_dense(m))
        return false;
    vv_map **maps = vv__maps(m);
    out->n = m->n - p;
    out->label = vv__keys(m) + p;
    out->num = vv__nums(m) + p;
    out->map = maps ? maps + p : NULL;
    it->pos[it->top] = m->n;
    return true;
}

bool vv_leaf_view(vv v, vv_leaf *out)
{
    const vv_map *m = v.map;
    if (!m || m->height != 0)
        return false; /* zero, a scalar, an interior node or a dense level */
    out->n = m->n;
    out->label = vv__keys(m);
    out->num = vv__nums(m);
    out->map = vv__maps(m);
    return true;
}

bool vv_dense_level_view(vv v, vv_dense_level *out)
{
    const vv_map *m = v.map;
    if (!m || !vv__is_dense(m))
        return false;
    out->n = m->n;
    out->num = vv__dnums(m);
    out->map = vv__dmaps(m);
    return true;
}

int vv_dec_labels(vv_ctx *c, uint32_t n, vv_label *out)
{
    if (n > VV_DENSE_MAX_DIM)
        return DMM_E_LIMIT;
    int rc = vv__dec_reserve(c, n);
    for (uint32_t i = 0; !rc && i < n; i++)
        out[i] = vv__dec_id(c, i);
    return rc;
}

/* ---- in-order building --------------------------------------------------- */

vv_map *vv__leaf_new(vv_ctx *c, unsigned cap, bool maps)
{
    return node_new(c, 0, cap, maps);
}

void vv__build_init(vv__builder *b, vv_ctx *c, size_t hint)
{
    memset(b, 0, sizeof *b);
    b->c = c;
    b->hint = hint > UINT32_MAX ? UINT32_MAX : (uint32_t)hint;
}

/* Copy the first n entries of leaf m into the leaf r from index 0 (moved or
 * shared: reference counts untouched). r gets NULL maps where m has none. */
static void leaf_copy(vv_map *r, const vv_map *m, unsigned from, unsigned n)
{
    memcpy(vv__keys(r), vv__keys(m) + from, n * sizeof(vv_label));
    memcpy(vv__nums(r), vv__nums(m) + from, n * sizeof(double));
    vv_map **rm = vv__maps(r), **mm = vv__maps(m);
    if (rm && mm)
        memcpy(rm, mm + from, n * sizeof(vv_map *));
    else if (rm)
        memset(rm, 0, n * sizeof(vv_map *));
    else
        assert(!m->vdepth); /* dropping a map array needs all maps NULL */
}

/* Copy m's entries into a new node r of capacity cap (and, for a leaf, with
 * a map array when maps is set); references are not touched. */
static vv_map *node_copy(vv_ctx *c, const vv_map *m, unsigned cap, bool maps)
{
    assert(cap >= m->n);
    vv_map *r = node_new(c, m->height, cap, maps);
    if (!r)
        return NULL;
    r->total = m->total;
    r->n = m->n;
    r->vdepth = m->vdepth;
    if (m->height) {
        memcpy(vv__keys(r), vv__keys(m), m->n * sizeof(vv_label));
        memcpy(vv__kids(r), vv__kids(m), m->n * sizeof(vv_map *));
    } else {
        leaf_copy(r, m, 0, m->n);
    }
    return r;
}

/* Move a uniquely owned node into a new allocation of another capacity
 * (entries are moved, reference counts untouched). */
static vv_map *node_resize(vv_ctx *c, vv_map *m, unsigned cap, bool maps)
{
    vv_map *r = node_copy(c, m, cap, maps);
    if (r)
        node_dealloc(c, m);
    return r;
}

/* Append kid (taken) to the interior node being filled at level L. */
static int push_kid(vv__builder *b, int L, vv_map *kid)
{
    assert(L < VV__MAX_HEIGHT);
    vv_map *p = b->lvl[L];
    if (p && p->n == p->cap) {
        b->lvl[L] = NULL;
        int rc = push_kid(b, L + 1, p);
        if (rc) {
            vv__map_unref(b->c, kid);
            return rc;
        }
        p = NULL;
    }
    if (!p) {
        p = node_new(b->c, (unsigned)L, VV__FANOUT, false);
        if (!p) {
            vv__map_unref(b->c, kid);
            return DMM_E_NOMEM;
        }
        b->lvl[L] = p;
        if (L > b->top)
            b->top = L;
    }
    vv__keys(p)[p->n] = vv__keys(kid)[0];
    vv__kids(p)[p->n++] = kid;
    p->total += kid->total;
    if (kid->vdepth > p->vdepth)
        p->vdepth = kid->vdepth;
    return 0;
}

int vv__build_push(vv__builder *b, vv_label key, vv v)
{
    vv_map *leaf = b->lvl[0];
    if (leaf) {
        bool maps = leaf->maps || v.map;
        unsigned max = leaf_max(maps);
        if (leaf->n >= max) { /* full for this value: close the leaf */
            b->lvl[0] = NULL;
            int rc = push_kid(b, 1, leaf);
            if (rc) {
                vv_free(b->c, v);
                return rc;
            }
            leaf = NULL;
        } else if (leaf->n == leaf->cap || maps != leaf->maps) {
            /* grow, or add the map array for the first value with children */
            unsigned cap = leaf->n == leaf->cap ? leaf->cap * 2u : leaf->cap;
            vv_map *r = node_resize(b->c, leaf, cap < max ? cap : max, maps);
            if (!r) {
                vv_free(b->c, v);
                return DMM_E_NOMEM;
            }
            b->lvl[0] = leaf = r;
        }
    }
    if (!leaf) {
        uint32_t left = b->hint > b->pushed ? b->hint - b->pushed : 4;
        unsigned max = leaf_max(b->maps || v.map);
        leaf = node_new(b->c, 0, left < max ? left : max, b->maps || v.map);
        if (!leaf) {
            vv_free(b->c, v);
            return DMM_E_NOMEM;
        }
        b->lvl[0] = leaf;
    }
    assert(leaf->n == 0 || vv__keys(leaf)[leaf->n - 1] < key);
    vv__keys(leaf)[leaf->n] = key;
    vv__nums(leaf)[leaf->n] = v.num;
    if (leaf->maps)
        vv__maps(leaf)[leaf->n] = v.map;
    leaf->n++;
    leaf->total++;
    unsigned d = (unsigned)vv__depth_of(v);
    if (d > leaf->vdepth)
        leaf->vdepth = (uint16_t)d;
    b->pushed++;
    return 0;
}

int vv__build_push_leaf(vv__builder *b, vv_map *leaf)
{
    /* The first leaf of a builder becomes its current leaf, so that a
     * one-leaf map needs no interior node. Not a leaf that is still shared
     * (taken from a map being consumed): later pushes may change or resize
     * the current leaf. */
    if (!b->pushed && b->top == 0 && !b->lvl[0] && vv__map_unique(leaf)) {
        b->lvl[0] = leaf;
        b->pushed = leaf->n;
        return 0;
    }
    if (b->lvl[0]) {
        vv_map *part = b->lvl[0];
        b->lvl[0] = NULL;
        if (b->top == 0)
            b->top = 1;
        int rc = push_kid(b, 1, part);
        if (rc) {
            vv__map_unref(b->c, leaf);
            return rc;
        }
    }
    b->pushed += leaf->n;
    if (b->top == 0)
        b->top = 1;
    return push_kid(b, 1, leaf);
}

void vv__build_abort(vv__builder *b)
{
    for (int L = 0; L < VV__MAX_HEIGHT; L++) {
        if (b->lvl[L])
            vv__map_unref(b->c, b->lvl[L]);
        b->lvl[L] = NULL;
    }
}

int vv__build_finish(vv__builder *b, vv_map **out)
{
    for (int L = 0; L < b->top; L++) {
        vv_map *m = b->lvl[L];
        if (!m)
            continue;
        b->lvl[L] = NULL;
        int rc = push_kid(b, L + 1, m);
        if (rc) {
            vv__build_abort(b);
            return rc;
        }
    }
    vv_map *root = b->lvl[b->top];
    b->lvl[b->top] = NULL;
    while (root && root->height && root->n == 1) {
        vv_map *k = vv__kids(root)[0];
        node_dealloc(b->c, root);
        root = k;
    }
    /* A leaf sized from an overestimated hint gives its slack back, and one
     * that was given a map array it did not need drops it. */
    if (root && !root->height &&
        (root->n * 4u < root->cap * 3u || (root->maps && !root->vdepth))) {
        vv_map *r = node_resize(b->c, root, root->n, root->vdepth);
        if (r)
            root = r;
    }
    *out = root;
    return 0;
}

/* ---- point writes with path copying -------------------------------------- */

/*
 * Make *mp uniquely owned with room for at least `cap` entries and, for a
 * leaf, a map array when maps is set: a shared node is copied (its children
 * gain a reference), an unshared one that is too small or lacks the map
 * array is moved to a new allocation.
 */
static int own(vv_ctx *c, vv_map **mp, unsigned cap, bool maps)
{
    vv_map *m = *mp;
    if (cap < m->n)
        cap = m->n;
    maps = !m->height && (maps || m->maps);
    if (vv__map_unique(m)) {
        if (m->cap >= cap && m->maps == maps)
            return 0;
        vv_map *r = node_resize(c, m, cap > m->cap ? cap : m->cap, maps);
        if (!r)
            return DMM_E_NOMEM;
        *mp = r;
        return 0;
    }
    vv_map *r = node_copy(c, m, cap, maps);
    if (!r)
        return DMM_E_NOMEM;
    vv_map **ks = r->height ? vv__kids(r) : vv__maps(r);
    for (unsigned i = 0; ks && i < r->n; i++)
        if (ks[i])
            vv__map_ref(ks[i]);
    vv__map_unref(c, m);
    *mp = r;
    return 0;
}

/* Growth policy for a node that is about to take one more entry. */
static unsigned grown_cap(const vv_map *m)
{
    unsigned max = node_max(m);
    unsigned cap = m->n + 1 + m->n / 2;
    cap = cap < max ? cap : max;
    return cap > m->n ? cap : m->n + 1u; /* a full half of a split: one over */
}

/* Split the full, uniquely owned kid i of the uniquely owned interior node p
 * (which has room) into two halves. */
static int split_kid(vv_ctx *c, vv_map *p, unsigned i)
{
    vv_map *k = vv__kids(p)[i];
    vv_map *r = node_new(c, k->height, node_max(k), k->maps);
    if (!r)
        return DMM_E_NOMEM;
    unsigned half = k->n / 2, moved = k->n - half;
    assert(moved <= r->cap);
    if (k->height) {
        memcpy(vv__keys(r), vv__keys(k) + half, moved * sizeof(vv_label));
        memcpy(vv__kids(r), vv__kids(k) + half, moved * sizeof(vv_map *));
    } else {
        leaf_copy(r, k, half, moved);
    }
    r->n = (uint16_t)moved;
    k->n = (uint16_t)half;
    node_refresh(k);
    node_refresh(r);
    memmove(vv__keys(p) + i + 2, vv__keys(p) + i + 1,
            (p->n - i - 1) * sizeof(vv_label));
    memmove(vv__kids(p) + i + 2, vv__kids(p) + i + 1,
            (p->n - i - 1) * sizeof(vv_map *));
    vv__keys(p)[i + 1] = vv__keys(r)[0];
    vv__kids(p)[i + 1] = r;
    p->n++;
    return 0;
}

/* Point s at entry i of leaf m. */
static void slot_at(vv_map *m, unsigned i, vv__slot *s)
{
    s->num = &vv__nums(m)[i];
    s->none = NULL;
    s->map = m->maps ? &vv__maps(m)[i] : &s->none;
}

/* The key exists: make its path unique and return its slot. */
static int update_path(vv_ctx *c, vv_map **mp, vv_label key, bool maps,
                       vv__slot *s)
{
    for (;;) {
        int rc = own(c, mp, 0, maps);
        if (rc)
            return rc;
        vv_map *m = *mp;
        if (!m->height) {
            unsigned i = lower_bound(vv__keys(m), m->n, key);
            assert(i < m->n && vv__keys(m)[i] == key);
            slot_at(m, i, s);
            return 0;
        }
        mp = &vv__kids(m)[kid_index(m, key)];
    }
}

/* The key is absent and *mp is not full: insert a zero entry, splitting
 * full kids before descending into them (so a parent always has room). */
static int insert_path(vv_ctx *c, vv_map **mp, vv_label key, bool maps,
                       vv__slot *s)
{
    int rc = own(c, mp, grown_cap(*mp), maps);
    if (rc)
        return rc;
    vv_map *m = *mp;
    if (!m->height) {
        unsigned i = lower_bound(vv__keys(m), m->n, key), after = m->n - i;
        memmove(vv__keys(m) + i + 1, vv__keys(m) + i, after * sizeof(vv_label));
        memmove(vv__nums(m) + i + 1, vv__nums(m) + i, after * sizeof(double));
        vv__keys(m)[i] = key;
        vv__nums(m)[i] = 0.0;
        if (m->maps) {
            memmove(vv__maps(m) + i + 1, vv__maps(m) + i,
                    after * sizeof(vv_map *));
            vv__maps(m)[i] = NULL;
        }
        m->n++;
        m->total++;
        slot_at(m, i, s);
        return 0;
    }
    unsigned i = kid_index(m, key);
    vv_map **kp = &vv__kids(m)[i];
    if ((*kp)->n >= node_max(*kp)) {
        rc = own(c, kp, 0, false);
        if (!rc)
            rc = split_kid(c, m, i);
        if (rc)
            return rc;
        if (key >= vv__keys(m)[i + 1])
            i++;
        kp = &vv__kids(m)[i];
    }
    rc = insert_path(c, kp, key, maps, s);
    if (rc)
        return rc;
    if (key < vv__keys(m)[i])
        vv__keys(m)[i] = key;
    m->total++;
    return 0;
}

int vv__slot_begin(vv_ctx *c, vv_map **mp, vv_label key, bool maps, vv__slot *s)
{
    if (*mp && vv__is_dense(*mp)) { /* point writes go to the tree form */
        int rc = vv__undense(c, mp);
        if (rc)
            return rc;
    }
    if (!*mp) {
        vv_map *m = node_new(c, 0, 1, maps);
        if (!m)
            return DMM_E_NOMEM;
        vv__keys(m)[0] = key;
        vv__nums(m)[0] = 0.0;
        if (maps)
            vv__maps(m)[0] = NULL;
        m->n = 1;
        m->total = 1;
        *mp = m;
        slot_at(m, 0, s);
        return 0;
    }
    vv found;
    if (vv__map_find(*mp, key, &found))
        return update_path(c, mp, key, maps, s);
    if ((*mp)->n >= node_max(*mp)) { /* grow a level: the root splits */
        vv_map *root = node_new(c, (*mp)->height + 1u, VV__FANOUT, false);
        if (!root)
            return DMM_E_NOMEM;
        vv__keys(root)[0] = vv__keys(*mp)[0];
        vv__kids(root)[0] = *mp;
        root->n = 1;
        node_refresh(root);
        *mp = root;
        int rc = insert_path(c, mp, key, maps, s);
        if (rc && (*mp)->n == 1) { /* undo the new level */
            vv_map *k = vv__kids(*mp)[0];
            node_dealloc(c, *mp);
            *mp = k;
        }
        return rc;
    }
    return insert_path(c, mp, key, maps, s);
}

/* After a write into entry i of leaf m: drop the entry if it became zero and
 * update the cached depth (a full rescan only when the depth may drop). */
static void leaf_end(vv_map *m, unsigned i)
{
    vv_map **maps = vv__maps(m);
    vv_map *e = maps ? maps[i] : NULL;
    if (!e && vv__nums(m)[i] == 0.0) {
        unsigned after = m->n - i - 1;
        memmove(vv__keys(m) + i, vv__keys(m) + i + 1, after * sizeof(vv_label));
        memmove(vv__nums(m) + i, vv__nums(m) + i + 1, after * sizeof(double));
        if (maps)
            memmove(maps + i, maps + i + 1, after * sizeof(vv_map *));
        m->n--;
        m->total = m->n;
    }
    if (e && e->vdepth + 1u >= m->vdepth)
        m->vdepth = (uint16_t)(e->vdepth + 1u);
    else if (m->vdepth)
        node_refresh(m);
}

/* Drop the entry at key if its value became zero; refresh the cached totals
 * and depths along the path. Sets *empty when m has no entries left. */
static void end_path(vv_ctx *c, vv_map *m, vv_label key, bool *empty)
{
    if (!m->height) {
        unsigned i = lower_bound(vv__keys(m), m->n, key);
        if (i < m->n && vv__keys(m)[i] == key)
            leaf_end(m, i);
        *empty = m->n == 0;
        return;
    }
    unsigned i = kid_index(m, key);
    vv_map *k = vv__kids(m)[i];
    bool kid_empty = false;
    end_path(c, k, key, &kid_empty);
    if (kid_empty) {
        node_dealloc(c, k);
        memmove(vv__keys(m) + i, vv__keys(m) + i + 1,
                (m->n - i - 1) * sizeof(vv_label));
        memmove(vv__kids(m) + i, vv__kids(m) + i + 1,
                (m->n - i - 1) * sizeof(vv_map *));
        m->n--;
    } else {
        vv__keys(m)[i] = vv__keys(k)[0];
    }
    node_refresh(m);
    *empty = m->n == 0;
}

void vv__slot_end(vv_ctx *c, vv_map **mp, vv_label key)
{
    if (!*mp)
        return;
    bool empty = false;
    end_path(c, *mp, key, &empty);
    if (empty) {
        node_dealloc(c, *mp);
        *mp = NULL;
        return;
    }
    while ((*mp)->height && (*mp)->n == 1) {
        vv_map *k = vv__kids(*mp)[0];
        node_dealloc(c, *mp);
        *mp = k;
    }
}
