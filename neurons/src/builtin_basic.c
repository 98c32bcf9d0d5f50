// SPDX-License-Identifier: MIT
/*
 * The built-in neuron types of spec dmm.md §3 that are not leaf-wise
 * activations: accumulators, routing, comparison, products, host I/O, lists and
 * gating. All are stateless pure functions of the input (input/feed aside).
 * Every function sets f->output only on success; on error it stays zero and
 * nothing is leaked.
 */
#include <math.h>
#include <string.h>

#include "builtins.h"

/* f->output = {label: child}; takes child (also on error). Zero child gives
 * zero, as canonical form requires. */
static int emit1(dmm_fire *f, vv_label label, vv child)
{
    int rc = vv_from_pairs(f->vc, 0.0, 1, &label, &child, &f->output);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/*
 * accum + delta for a delta of a few scalars, one path at a time: vv_set
 * copies the path from the root to each changed node and shares the rest,
 * where vv_add's merge visits every sibling on the paths. This is Self's
 * sum when a neuron edits a few weights of W every cycle: its cost is then
 * the edit's, not the width of W. Each scalar is summed as vv_add sums it
 * (a + b, a zero dropped). 1 when the delta is not small or a sum is not
 * finite: the caller uses vv_add (which reports the error); or an error
 * (out of memory, too deep).
 */
enum { SMALL_LEAVES = 8, SMALL_DEPTH = 8 };

typedef struct small_delta {
    size_t n;
    int depth[SMALL_LEAVES];
    double x[SMALL_LEAVES];
    vv_label path[SMALL_LEAVES][SMALL_DEPTH];
} small_delta;

static int small_leaf(const vv_label *path, int depth, double x, void *ud)
{
    small_delta *d = ud;
    if (d->n == SMALL_LEAVES || depth > SMALL_DEPTH)
        return 1;
    memcpy(d->path[d->n], path, (size_t)depth * sizeof *path);
    d->depth[d->n] = depth;
    d->x[d->n++] = x;
    return 0;
}

static int add_small(vv_ctx *c, vv acc, vv delta, vv *out)
{
    small_delta d;
    d.n = 0;
    if (vv_foreach_leaf(delta, small_leaf, &d))
        return 1;
    vv r = vv_ref(acc);
    for (size_t k = 0; k < d.n; k++) {
        vv node = vv_get(r, d.path[k], (size_t)d.depth[k]);
        double s = node.num + d.x[k];
        vv nr;
        int rc = isfinite(s) ? vv_set(c, r, d.path[k], (size_t)d.depth[k],
                                      (vv){s, node.map}, &nr)
                             : 1;
        if (rc) {
            vv_free(c, r);
            return rc;
        }
        vv_free(c, r);
        r = nr;
    }
    *out = r;
    return 0;
}

static int fire_accum(dmm_fire *f)
{
    vv sum, a = dmm_fire_in(f, 0), b = dmm_fire_in(f, 1);
    int rc = vv_is_zero(a) || vv_is_zero(b) ? 1 : add_small(f->vc, a, b, &sum);
    if (rc == 1)
        rc = vv_add(f->vc, a, b, &sum);
    return rc ? dmm__fire_fail(f, rc) : emit1(f, f->type->out[0], sum);
}

/* identity and output: the input map itself, shared, not copied. */
static int fire_identity(dmm_fire *f)
{
    f->output = vv_ref(f->input);
    return 0;
}

/* Dense forms (dmm_dense_fn). accum: a + b leaf by leaf, as vv_add sums
 * them (one side absent: the other); identity: the input. */
static int dense_accum(const double *const *in, size_t nin, double *out,
                       size_t len)
{
    const double *a = in[0], *b = in[1];
    if (!a || !b) {
        memcpy(out, a ? a : b, len * sizeof *out);
        return 0;
    }
    /* Finite sums only; tested without a branch per value (an exponent of
     * all ones plus one carries into bit 63), so the loop vectorizes. */
    uint64_t bad = 0;
    for (size_t i = 0; i < len; i++) {
        out[i] = a[i] + b[i];
        uint64_t bits;
        memcpy(&bits, &out[i], sizeof bits);
        bad |= (bits & UINT64_C(0x7ff0000000000000)) + (UINT64_C(1) << 52);
    }
    return bad >> 63 ? DMM_E_NONFINITE : 0;
}

static int dense_identity(const double *const *in, size_t nin, double *out,
                          size_t len)
{
    memcpy(out, in[0], len * sizeof *out);
    return 0;
}

static int fire_max_norm(dmm_fire *f)
{
    f->output = vv_number(vv_max_norm(f->input));
    return 0;
}

/*
 * right − left has a negative scalar at path p exactly when right(p) < left(p)
 * (absent meaning 0): for finite doubles the sign of a rounded difference is
 * the sign of the exact one. Comparing instead of subtracting allocates
 * nothing and cannot overflow to infinity. Each side's leaves are visited and
 * compared with the other side at the same path; paths in neither are 0 − 0.
 */
typedef struct le_walk {
    vv other;
    bool this_is_left;
} le_walk;

static int le_leaf(const vv_label *path, int depth, double x, void *ud)
{
    const le_walk *w = ud;
    double y = vv_get(w->other, path, (size_t)depth).num;
    double left = w->this_is_left ? x : y, right = w->this_is_left ? y : x;
    return right < left; /* non-zero stops the walk: found a negative */
}

static int fire_less_or_equal(dmm_fire *f)
{
    vv left = dmm_fire_in(f, 0), right = dmm_fire_in(f, 1);
    le_walk wl = {right, true}, wr = {left, false};
    bool le = !vv_foreach_leaf(left, le_leaf, &wl) &&
              !vv_foreach_leaf(right, le_leaf, &wr);
    return emit1(f, f->type->out[le ? 0 : 1], vv_number(1.0));
}

static int fire_mult_mask(dmm_fire *f)
{
    vv r;
    int rc = vv_mult_mask(f->vc, dmm_fire_in(f, 0), dmm_fire_in(f, 1), &r);
    return rc ? dmm__fire_fail(f, rc) : emit1(f, f->type->out[0], r);
}

static int fire_lin_comb(dmm_fire *f)
{
    vv r;
    int rc = vv_lincomb(f->vc, dmm_fire_in(f, 0), dmm_fire_in(f, 1), &r);
    return rc ? dmm__fire_fail(f, rc) : emit1(f, f->type->out[0], r);
}

static int fire_dot(dmm_fire *f)
{
    double d;
    int rc = vv_dot(f->vc, dmm_fire_in(f, 0), dmm_fire_in(f, 1), &d);
    return rc ? dmm__fire_fail(f, rc) : emit1(f, f->type->out[0], vv_number(d));
}

/* The engine puts the map queued for this neuron in f->feed (zero if none). */
static int fire_input(dmm_fire *f)
{
    f->output = vv_ref(f->feed);
    return 0;
}

/* {self: {this: signal, rest: old}} or {self: old}; a zero old leaves rest
 * out (canonical), so the first element of a list has no rest. */
static int fire_cons(dmm_fire *f)
{
    vv old = dmm_fire_in(f, 0), signal = dmm_fire_in(f, 1);
    if (vv_is_zero(signal))
        return emit1(f, f->type->out[0], vv_ref(old));
    const dmm__builtin_labels *bl = dmm__builtin_labels_of(f->type);
    vv_label labels[2] = {bl->this_, bl->rest};
    vv kids[2] = {vv_ref(signal), vv_ref(old)};
    vv cell;
    int rc = vv_from_pairs(f->vc, 0.0, 2, labels, kids, &cell);
    return rc ? dmm__fire_fail(f, rc) : emit1(f, f->type->out[0], cell);
}

/* The fuzzy conditional: main scaled by the gate input's scalar part (the
 * gate's children, if any, are ignored). */
static int fire_gate(dmm_fire *f)
{
    vv r;
    double g = dmm_fire_in(f, 1).num;
    int rc = vv_scale(f->vc, g, dmm_fire_in(f, 0), &r);
    return rc ? dmm__fire_fail(f, rc) : emit1(f, f->type->out[0], r);
}

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

const dmm_neuron_type dmm__builtin_basic[] = {
    {.name = "accum",
     .summary = "single = accum + delta; Self's type, an accumulator when "
                "its own single feeds its accum input with weight 1",
     .inputs = NAMES("accum", "delta"),
     .outputs = NAMES("single"),
     .fn = fire_accum,
     .dense = dense_accum},
    {.name = "identity",
     .summary = "output = input: the input map itself, every name kept",
     .outputs_doc = "same names as inputs",
     .fn = fire_identity,
     .dense = dense_identity},
    {.name = "max-norm",
     .summary = "the largest |scalar| anywhere in the whole input, output as "
                "a bare number (0, that is {}, for a zero input)",
     .outputs_doc = "none: the output is the bare number",
     .fn = fire_max_norm},
    {.name = "less-or-equal",
     .summary = "{true-channel: 1} if right - left has no negative scalar "
                "anywhere, else {false-channel: 1}",
     .inputs = NAMES("left", "right"),
     .outputs = NAMES("true-channel", "false-channel"),
     .fn = fire_less_or_equal},
    {.name = "mult-mask",
     .summary = "single = mask ⊙ main: each scalar w of mask at path p scales "
                "main's subtree at p, kept at p",
     .inputs = NAMES("mask", "main"),
     .outputs = NAMES("single"),
     .fn = fire_mult_mask},
    {.name = "lin-comb",
     .summary = "single = lincomb(mask, main): the sum over mask's scalars w "
                "at paths p of w · (main's subtree at p), added at the root",
     .inputs = NAMES("mask", "main"),
     .outputs = NAMES("single"),
     .fn = fire_lin_comb},
    {.name = "dot",
     .summary = "dot = x · y, the sum over paths present in both of the "
                "products of their scalars",
     .inputs = NAMES("x", "y"),
     .outputs = NAMES("dot"),
     .fn = fire_dot},
    {.name = "input",
     .summary = "emits the output map the host queued for it this cycle (feed "
                "file, live protocol, C API), else {}; its inputs are ignored",
     .outputs_doc = "whatever names the queued map has",
     .fn = fire_input},
    {.name = "output",
     .summary = "identity; the host observes its input every cycle",
     .outputs_doc = "same names as inputs",
     .fn = fire_identity,
     .dense = dense_identity},
    {.name = "cons",
     .summary = "if signal is non-zero, {self: {this: signal, rest: self}} "
                "(rest absent when self is {}), else {self: self}: list "
                "building",
     .inputs = NAMES("self", "signal"),
     .outputs = NAMES("self"),
     .fn = fire_cons},
    {.name = "gate",
     .summary = "single = g · main where g is the scalar part of the gate "
                "input (the fuzzy conditional; 0 when gate has none)",
     .inputs = NAMES("main", "gate"),
     .outputs = NAMES("single"),
     .fn = fire_gate},
    {.name = NULL},
};
