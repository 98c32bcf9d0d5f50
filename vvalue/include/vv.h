// SPDX-License-Identifier: MIT
/*
 * V-values: finite prefix trees with numeric leaves (spec dmm.md §1).
 * A vv is a small struct passed by value: the node's scalar part inline and a
 * pointer to its children, an immutable, reference-counted map from interned
 * labels to vv. A bare scalar needs no heap memory; zero is {0, NULL}.
 * Invariants (canonical form, kept by every function here): no stored zero
 * scalars, no empty child maps, no NaN or infinity anywhere.
 *
 * Ownership words used below, as in Jansson:
 *   new      - the caller owns the returned reference and releases it with
 * vv_free; borrowed - valid while the value it came from is alive; do not free;
 *   takes    - the function consumes the caller's reference.
 * A `vv` argument without a word is borrowed. Functions that return int
 * return 0 or a negative DMM_E_* code; on error, outputs are left as they were.
 *
 * Threads: values may be read and shared across threads (reference counts are
 * atomic). A vv_ctx may be used from several threads at once; interning takes
 * a lock, everything else is lock-free.
 */
#ifndef VV_H
#define VV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmm_error.h"

/* An interned label: an index into its context's symbol table. Labels are
 * compared and hashed as integers; only output sorts them by their bytes. */
typedef uint32_t vv_label;

typedef struct vv_ctx vv_ctx;
typedef struct vv_map vv_map; /* opaque: children of a node */

typedef struct vv {
    double num;  /* the scalar part; 0 when there is none */
    vv_map *map; /* the children; NULL when there are none */
} vv;

#define VV_ZERO ((vv){0.0, NULL})

static inline vv vv_number(double x)
{
    return (vv){x, NULL};
}
static inline bool vv_is_zero(vv v)
{
    return v.map == NULL && v.num == 0.0;
}
/* True when v has no children (zero counts as a scalar). */
static inline bool vv_is_scalar(vv v)
{
    return v.map == NULL;
}

/* ---- context: labels, allocator, limits -------------------------------- */

/*
 * The allocator, in Lua's style: alloc(ud, NULL, 0, n) allocates,
 * alloc(ud, p, old, 0) frees and returns NULL, otherwise reallocates.
 * Returning NULL for n > 0 is an out-of-memory failure that every function
 * reports as DMM_E_NOMEM, leaving its inputs intact. Must be thread-safe when
 * the context is used from several threads.
 */
typedef void *(*vv_alloc_fn)(void *ud, void *ptr, size_t old_size,
                             size_t new_size);

typedef struct vv_options {
    vv_alloc_fn alloc; /* NULL: malloc/realloc/free */
    void *alloc_ud;
    int max_depth; /* deepest nesting; 0: VV_DEFAULT_MAX_DEPTH; at most 65534 */
    size_t max_label_len; /* bytes; 0: VV_DEFAULT_MAX_LABEL */
} vv_options;

#define VV_DEFAULT_MAX_DEPTH 1000
#define VV_DEFAULT_MAX_LABEL 4096

/* New context, or NULL when out of memory. opt may be NULL for defaults. */
vv_ctx *vv_ctx_new(const vv_options *opt);
/* Free the context. Every value made in it must have been freed before. */
void vv_ctx_free(vv_ctx *c);
int vv_ctx_max_depth(const vv_ctx *c);
/* Bytes currently allocated through the context's allocator. */
size_t vv_ctx_bytes(const vv_ctx *c);
/*
 * The context's allocator, for the layers built on V-values (the engine),
 * so that every byte they take is counted and can fail on demand like the
 * library's own. Lua's contract: (c, NULL, 0, n) allocates n bytes,
 * (c, p, old, 0) frees p and returns NULL, otherwise p is resized from old
 * to n bytes. old must be the size p was last given. NULL for n > 0 is out
 * of memory, p left as it was. Thread-safe when the allocator is (see
 * vv_options.alloc).
 */
void *vv_ctx_realloc(vv_ctx *c, void *p, size_t old, size_t n);

/*
 * The text ":number" is not a label: in JSON it is the member that holds a
 * node's scalar part ({":number": 2} is the scalar 2), and in a path written
 * as text it names the scalar part of the node before it. It is never
 * interned, so no V-value has a child under it and every text form of a
 * value reads back as that value.
 */
#define VV_NUMBER_KEY ":number"
/* The largest integer a JSON number read as a double holds exactly and
 * unambiguously: 2^53 itself is also what 2^53 + 1 rounds to. Counts, seeds
 * and ids read from JSON are refused above it instead of rounded. */
#define VV_MAX_EXACT_INT 9007199254740991.0

/* Intern len bytes of s (any bytes but NUL; UTF-8 is the convention).
 * DMM_E_LIMIT when longer than max_label_len or the table is full;
 * DMM_E_INVAL for a NUL inside or for the reserved VV_NUMBER_KEY. */
int vv_intern(vv_ctx *c, const char *s, size_t len, vv_label *out);
/* Same for a NUL-terminated string. */
int vv_intern_cstr(vv_ctx *c, const char *s, vv_label *out);
/* The label's bytes, NUL-terminated (borrowed, lives as long as c). len may
 * be NULL. */
const char *vv_label_str(const vv_ctx *c, vv_label l, size_t *len);
/* The number the label spells in canonical decimal ("0", "17": no sign, no
 * leading zero) when below VV_DENSE_MAX_DIM, else -1: its index in a dense
 * level. O(1): kept with the label when it is interned. */
int32_t vv_label_dec(const vv_ctx *c, vv_label l);
/* Find without interning: 0, or DMM_E_NOTFOUND. */
int vv_label_find(vv_ctx *c, const char *s, size_t len, vv_label *out);
/* Number of labels interned so far; labels are 0 .. count-1 in intern order. */
size_t vv_label_count(const vv_ctx *c);
/* Forget the labels interned since vv_label_count was mark, so that input
 * which was refused leaves no trace. The caller guarantees that nothing
 * (no value, path or other thread) holds any of them; labels below mark are
 * untouched. The memory of their entries is returned. */
void vv_label_rollback(vv_ctx *c, size_t mark);

/* ---- references --------------------------------------------------------- */

/* A new reference to the same value (O(1): the children are shared). */
vv vv_ref(vv v);
/* Release a reference. Iterative, so values of any depth are freed safely. */
void vv_free(vv_ctx *c, vv v);

/* ---- construction and structure ----------------------------------------- */

/* new: {label: child} (+ num as scalar part). child is borrowed. DMM_E_DEPTH
 * when the result would be deeper than the limit. */
int vv_wrap(vv_ctx *c, double num, vv_label label, vv child, vv *out);
/*
 * In place, v becomes {path[0]: {path[1]: ... {path[n-1]: child}}}, its
 * inner numbers 0 and its own (v.num, the caller's) kept, what vv_wrap n
 * times would make, when v already is such a chain: n nested maps of one
 * entry each, every node held once (v by the caller, each inner node by
 * its parent), the last one able to hold child (a map there when child
 * has one). Its labels are written over and the last entry's child
 * replaced: child (borrowed, not within v) gets a new reference, the old
 * child's is dropped. *below (may be NULL) gets v's child at path[0]
 * (borrowed). Returns false with v unchanged when v is not such a chain,
 * child is zero or the result would be deeper than the limit.
 */
bool vv_rewrap(vv_ctx *c, vv v, const vv_label *path, size_t n, vv child,
               vv *below);
/*
 * new: a node with scalar part num and the given children, in any order.
 * Takes every children[k] (also on error); duplicate labels are added
 * together; zero children are dropped.
 */
int vv_from_pairs(vv_ctx *c, double num, size_t n, const vv_label *labels,
                  vv *children, vv *out);

/* borrowed: the child at label, zero when absent. O(log n). */
vv vv_child(vv v, vv_label label);
/* borrowed: the subtree at path (n labels), zero when absent. */
vv vv_get(vv v, const vv_label *path, size_t n);
/* new: v with the subtree at path replaced by sub (borrowed). Copies only the
 * path; intermediate nodes are created as needed. */
int vv_set(vv_ctx *c, vv v, const vv_label *path, size_t n, vv sub, vv *out);

/* Number of children of the root. */
size_t vv_nchildren(vv v);
/* Depth: 0 for a scalar, 1 + the deepest child otherwise. O(1). */
int vv_depth(vv v);

/* Iteration over a node's children in label-id order (not byte order).
 * The iterator borrows v; do not free v while iterating. */
typedef struct vv_iter {
    const void *stack[8];
    unsigned pos[8];
    int top;
} vv_iter;
void vv_iter_init(vv_iter *it, vv v);
/* Next child: label and borrowed child; false at the end. */
bool vv_iter_next(vv_iter *it, vv_label *label, vv *child);

/*
 * The children of a small map held as one node (most maps: up to a leaf's
 * entries, not a dense level): their count, labels in label-id order (as
 * vv_iter gives them), scalar parts, and child maps (NULL when every child
 * is a number), borrowed from v, valid while v is. A caller walks them as
 * arrays, without an iterator, in loops run for every value of a cycle.
 * vv_leaf_view is true when v is such a map; false (nothing set) for zero, a
 * scalar, a wide map or a dense level: iterate those. O(1).
 */
typedef struct vv_leaf {
    size_t n;
    const vv_label *label;
    const double *num;
    vv_map *const *map;
} vv_leaf;
bool vv_leaf_view(vv v, vv_leaf *out);
/* The next children an iterator has held together in one node (the rest of
 * a leaf of a wide map's tree), as vv_leaf_view gives them: a wide map
 * walked as a few arrays. False at the end, and at once for a dense level
 * (iterate that). Mixed with vv_iter_next, each child comes once. */
bool vv_iter_leaf(vv_iter *it, vv_leaf *out);
/* borrowed: child i (< n) of a view. */
static inline vv vv_leaf_child(const vv_leaf *l, size_t i)
{
    return (vv){l->num[i], l->map ? l->map[i] : NULL};
}

/*
 * The children of a level held as an array (a dense level, docs/vvalue.md:
 * the decimal labels "0" .. "n-1" by position): child "i" is
 * vv_dense_level_child(l, i) for i < n, zero standing for an absent child,
 * and v has no other; map is NULL when no child is a map. Borrowed, valid
 * while v is. False (nothing set) for any other value or form: use
 * vv_leaf_view, vv_child or iterate. O(1). With vv_leaf_view, the loops run
 * for every value of a cycle read a small map of either form without an
 * iterator.
 */
typedef struct vv_dense_level {
    size_t n;
    const double *num;
    vv_map *const *map;
} vv_dense_level;
bool vv_dense_level_view(vv v, vv_dense_level *out);
/* borrowed: child "i" (i < n) of a view, zero when absent. */
static inline vv vv_dense_level_child(const vv_dense_level *l, size_t i)
{
    return (vv){l->num[i], l->map ? l->map[i] : NULL};
}
/* The labels "0" .. "n-1" into out, interned where they were not yet: the
 * labels of a dense level. DMM_E_LIMIT beyond VV_DENSE_MAX_DIM, DMM_E_NOMEM. */
int vv_dec_labels(vv_ctx *c, uint32_t n, vv_label *out);

/* Children of the root sorted by label bytes, as needed for output.
 * labels/children are arrays of vv_nchildren(v) entries filled with borrowed
 * children. */
void vv_children_sorted(const vv_ctx *c, vv v, vv_label *labels, vv *children);

/* ---- vector-space operations -------------------------------------------- */

/* new: a + b. */
int vv_add(vv_ctx *c, vv a, vv b, vv *out);
/* new: k·a (k = 0 gives zero). */
int vv_scale(vv_ctx *c, double k, vv a, vv *out);
/*
 * *acc += w·b. acc is owned by the caller and updated in place where its
 * nodes are not shared, copying only shared paths otherwise; this is how a sum
 * of many terms is built without a new tree per term. On error *acc is still
 * canonical and finite, but an unshared *acc may hold part of the update:
 * a caller that needs the old value keeps a reference to it (vv_ref), which
 * makes the update copy instead, leaving that reference untouched.
 */
int vv_axpy(vv_ctx *c, vv *acc, double w, vv b);
/* new: Σ w[k]·terms[k] for k < n (terms borrowed). A single weight-1 term is
 * a reference to it, not a copy. */
int vv_sum(vv_ctx *c, size_t n, const double *w, const vv *terms, vv *out);
/* new: vv_add(vv_sum(na, wa, ta), vv_sum(nb, wb, tb)), the same value bit
 * for bit, in one pass over the entries and without the two sums as values
 * of their own, when every term that counts (weight and value not zero) is
 * an image held as one block of one size (vv_dense_view), at most 16 a
 * side; an accumulator adding images. 1 (nothing made) for other terms and
 * when a sum is not finite: take the two steps then (they report the
 * error). DMM_E_NOMEM. */
int vv_sum_add(vv_ctx *c, size_t na, const double *wa, const vv *ta, size_t nb,
               const double *wb, const vv *tb, vv *out);

/* Largest |scalar| anywhere, 0 for zero. */
double vv_max_norm(vv v);
/* Σ over paths present in both of the products of their scalars. */
int vv_dot(vv_ctx *c, vv a, vv b, double *out);

/* A function applied to every stored scalar by vv_apply. Absent scalars stay
 * absent (the function is assumed to map 0 to 0 where it matters). */
typedef double (*vv_scalar_fn)(double x, void *ud);
/* new: fn applied leaf-wise; DMM_E_NONFINITE if fn returns NaN or ±Inf. */
int vv_apply(vv_ctx *c, vv a, vv_scalar_fn fn, void *ud, vv *out);

/* new: mask ⊙ m: for every path p where mask has a scalar w, w·(m at p) at p.
 */
int vv_mult_mask(vv_ctx *c, vv mask, vv m, vv *out);
/* new: lincomb(row, m): Σ over paths p where row has a scalar w of
 * w·(m at p), added at the root (the down-movement primitive). */
int vv_lincomb(vv_ctx *c, vv row, vv m, vv *out);

/* ---- dense blocks: images and matrices ---------------------------------- */

/*
 * A block of rank r (1, 2 or 3) with dims[0] × … × dims[r-1] doubles in
 * row-major order is the value {"0": {"0": x00, "1": x01, …}, "1": …}: the
 * labels are decimal integers, dims[0] the outermost. Zeros are absent
 * entries, as everywhere. The library holds wide, mostly full levels of such
 * values as arrays (docs/vvalue.md); these functions move blocks in and out
 * without the caller walking nested maps. Values are the same whatever the
 * form: every function gives the same result for both.
 */
#define VV_DENSE_MAX_RANK 3
#define VV_DENSE_MAX_DIM  65535
/* new: the value of a block. DMM_E_INVAL for a rank outside 1..3 or a dim
 * outside 1..VV_DENSE_MAX_DIM, DMM_E_LIMIT when the block is too large,
 * DMM_E_NONFINITE for a NaN or infinity in data, DMM_E_NOMEM. Interns the
 * labels "0" .. "max dim - 1". */
int vv_from_dense(vv_ctx *c, int rank, const size_t *dims, const double *data,
                  vv *out);
/* True when v is a non-zero block: no scalar part except at depth r = *rank
 * (1..3), where every scalar is, and only decimal labels. dims[0 .. r) get
 * the smallest block that holds it (1 + the largest label at each level).
 * O(rows) for dense levels, O(entries) for trees. */
bool vv_dense_shape(const vv_ctx *c, vv v, int *rank, size_t *dims);
/* A view of an image held as one block (a slab, docs/vvalue.md): true when
 * v is one, and then entry (i, j) of v is (*data)[i·stride + j] for i < rows,
 * j < cols, 0.0 standing for an absent entry, and v has no entry outside;
 * rows and cols may exceed vv_dense_shape's dims by rows or columns of
 * zeros. The data is borrowed from v (read-only, alive while v is). False
 * (nothing set) for other values and forms: use vv_dense_read then. */
bool vv_dense_view(vv v, size_t *rows, size_t *cols, size_t *stride,
                   const double **data);
/* Fill data (dims[0] × … × dims[rank-1] doubles) with v as a block, 0.0
 * where absent; zero fills it with zeros. DMM_E_INVAL (data then
 * unspecified) when v is not a block of this rank that fits in dims. */
int vv_dense_read(const vv_ctx *c, vv v, int rank, const size_t *dims,
                  double *data);

/* ---- comparison and measurement ----------------------------------------- */

/* Exact structural equality of canonical values. */
bool vv_equal(vv a, vv b);
/* Equality within tolerance: every scalar, compared path by path (absent
 * meaning 0), satisfies |x - y| <= abs_tol + rel_tol·max(|x|, |y|). */
bool vv_close(vv a, vv b, double rel_tol, double abs_tol);

/* Called for each stored scalar with its path (borrowed, depth labels) in
 * label-id order; return non-zero to stop (that value is returned). */
typedef int (*vv_leaf_fn)(const vv_label *path, int depth, double x, void *ud);
int vv_foreach_leaf(vv v, vv_leaf_fn fn, void *ud);

typedef struct vv_stats {
    size_t leaves; /* stored scalars */
    size_t nodes;  /* nodes, the root included (zero counts 1) */
    size_t bytes;  /* heap bytes of the maps reached (shared ones each time) */
    int depth;
} vv_stats;
void vv_measure(vv v, vv_stats *st);

/* ---- JSON --------------------------------------------------------------- */

/*
 * Text form (spec §1): a number is a scalar, an object a node whose member
 * ":number" is its scalar part, {} is zero. Reading is strict: strings,
 * booleans, null, arrays, duplicate keys, numbers out of double range and
 * nesting past the limit are errors, reported with line, column and JSON
 * Pointer path in err.
 */
typedef struct json_t json_t;

/* new: from a parsed Jansson value. path is the JSON Pointer of j inside its
 * document ("" for the root), used in error messages; err gets path and text
 * but no position (see vv_json_locate). */
int vv_from_json(vv_ctx *c, const json_t *j, const char *path, vv *out,
                 dmm_error *err);
/*
 * new (release with json_decref): parse a JSON document with the project's
 * strictness: duplicate keys rejected, every number a double, any value at
 * the root. NULL on error, with err filled: code (PARSE, INVAL for a duplicate
 * key, NONFINITE for a number out of range, DEPTH, NOMEM), source, line,
 * column, and the JSON path where the error concerns one value.
 */
json_t *vv_json_load(const char *text, size_t len, const char *source,
                     dmm_error *err);
/* new: parse text (len bytes). source names it in err ("<string>" if NULL). */
int vv_parse(vv_ctx *c, const char *text, size_t len, const char *source,
             vv *out, dmm_error *err);
/* new: read a file. */
int vv_read_file(vv_ctx *c, const char *filename, vv *out, dmm_error *err);
/* Fill err->line and err->column from err->path by scanning text: how errors
 * found after parsing get a position. A path that cannot be followed to its
 * end (cut with "...", or naming something the text does not hold) gets the
 * position of its deepest part that can. */
void vv_json_locate(const char *text, size_t len, dmm_error *err);

/* A growable byte buffer for output. Free data with free(). */
typedef struct vv_buf {
    char *data;
    size_t len;
    size_t cap;
} vv_buf;
int vv_buf_append(vv_buf *b, const char *s, size_t n);
int vv_buf_printf(vv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append a JSON string literal (quoted and escaped). */
int vv_buf_json_string(vv_buf *b, const char *s, size_t n);
/* Append a number in its shortest form that reads back to the same double. */
int vv_buf_number(vv_buf *b, double x);

/* Append canonical JSON: keys in byte order, a scalar-only node as a bare
 * number, zero as {}. */
int vv_write(const vv_ctx *c, vv v, vv_buf *b);
/* new (free()): canonical JSON, NUL-terminated; NULL when out of memory. */
char *vv_to_string(const vv_ctx *c, vv v);
/* new: a Jansson value (for embedding in larger documents); NULL on OOM. */
json_t *vv_to_json(const vv_ctx *c, vv v);

#endif
