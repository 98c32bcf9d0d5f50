// SPDX-License-Identifier: MIT
/*
 * The two-stroke cycle (spec dmm.md §2): down movement, up movement, commit.
 * A cycle computes every new value beside the old ones and swaps them in
 * only when all of it succeeded, so a failed cycle leaves Y, W, states,
 * queues, rng and t as they were. Between cycles W is always valid
 * (dmm__check_matrix). The per-worker failure records are this file's.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

/*
 * How one cycle runs.
 *
 * Down movement: W is compiled (net_compile.c) into the active neurons in
 * label order, Self included, each with its rows; the compiled form is
 * patched when W changes. Each row gives X[f][nf][i] = lincomb(row, Y_{t-1}):
 * a row of depth-3 weights over scalar streams is a dot product over doubles
 * (the CSR fast path), any other row is summed as V-values, always in label
 * order, so the result depends only on the label table, which a state file
 * preserves. Each neuron's inputs are assembled into X[f][nf] in its slot.
 *
 * Up movement: each slot fires its type's function with X[f][nf], its
 * parameters, its state and, for `input` neurons, the head of its queue
 * (peeked, popped only at commit). Y_t is gathered from the slots' outputs:
 * inactive neurons have no slot and so vanish from Y_t. Self's output in Y_t
 * is W_t; when it differs from W_{t-1} it is checked before the commit.
 *
 * Both movements run over contiguous ranges of slots on net->threads
 * threads (net_threads.c); each slot is written by one thread only and a
 * failure is reported for the lowest slot that failed, as on one thread.
 */

static void slots_clear(dmm_net *net)
{
    const uint8_t *hold = net->cw.hold;
    for (size_t k = 0; k < net->nslots; k++) {
        if (hold && hold[k])
            continue; /* its group's: the slot was not written */
        dmm__vfree(net->vc, net->slots[k].input);
        dmm__vfree(net->vc, net->slots[k].output);
        dmm__vfree(net->vc, net->slots[k].new_state);
    }
    net->nslots = 0;
}

/* "type/name: " + what, path "", code rc. */
static int neuron_fail(dmm_net *net, const dmm__slot *s, int rc,
                       const char *what, dmm_error *err)
{
    vv_buf b = {0};
    vv_label tn[2] = {s->type, s->name};
    if (dmm_path_write(net->vc, tn, 2, &b) || vv_buf_append(&b, "", 1)) {
        free(b.data);
        return dmm_error_set(err, rc, "", "%s", what);
    }
    /* Built-ins say "neuron type/name: ..." already: keep only the what. */
    const char *w = what;
    size_t n = strlen(b.data);
    if (strncmp(w, "neuron ", 7) == 0 && strncmp(w + 7, b.data, n) == 0 &&
        strncmp(w + 7 + n, ": ", 2) == 0)
        w += 7 + n + 2;
    dmm_error_set(err, rc, "", "%s: %s", b.data, w);
    free(b.data);
    return rc;
}

void dmm__work_reset(dmm__cycle_work *w, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        w->fail[k].rc = 0;
        w->fail[k].todo = (dmm__few){0};
        dmm_error_clear(&w->fail[k].err);
    }
}

/* Non-finite test without a branch per value, so that loops using it
 * vectorize: OR this over the values, and bit 63 is set iff one of them is
 * an infinity or NaN (an exponent of all ones plus one carries into it). */
static inline uint64_t nonfinite_bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return (b & UINT64_C(0x7ff0000000000000)) + (UINT64_C(1) << 52);
}

/* The vector loops below are unrolled 4 times (#pragma GCC unroll, which
 * clang accepts too): their own counting and branch were about a fifth of
 * sum2_loop's and all_finite's instructions (accum-100-100: 123 k -> 102
 * k a cycle). */

#ifndef NDEBUG
static bool all_finite(const double *x, size_t m)
{
    uint64_t bad = 0;
#pragma GCC unroll 4
    for (size_t i = 0; i < m; i++)
        bad |= nonfinite_bits(x[i]);
    return !(bad >> 63);
}
#endif

/* Give up on the dense path for this neuron this cycle. */
#define GIVE_UP 1

/*
 * Neuron k's rows as dense streams into din[k]: 0, GIVE_UP, or DMM_E_NOMEM.
 * First the shape of each row from its first port that is not zero, then
 * the sums (checking every port against that shape). own: every stream in
 * din's buffer, none aliasing a port (1·x is x), so that it can be scaled.
 */
static inline int dense_input(dmm_net *net, size_t k, bool own)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__neuron *n = &cw->neu[k];
    dmm__dense *d = &cw->din[k];
    const dmm__pval *pval = cw->pval;
    const dmm__phot *phot = cw->phot;
    size_t len = 0;
    if (n->nrows > UINT32_MAX ||
        dmm__dense_reserve(net->vc, d, (uint32_t)n->nrows, 0))
        return DMM_E_NOMEM;
    for (size_t j = 0; j < n->nrows; j++) {
        const dmm__row *r = &n->rows[j];
        const dmm__shape *s = NULL;
        for (uint32_t t = 0; t < r->nterms && !s; t++) {
            s = phot[r->port[t]].shape;
            if (s == &dmm__not_dense)
                return GIVE_UP;
        }
        d->shape[j] = s;
        d->label[j] = r->input;
        if (s && (own || !r->one))
            len += dmm__shape_len(s);
    }
    if (dmm__dense_reserve(net->vc, d, (uint32_t)n->nrows, len))
        return DMM_E_NOMEM;
    d->n = (uint32_t)n->nrows;
    double *buf = d->buf;
    for (size_t j = 0; j < n->nrows; j++) {
        const dmm__row *r = &n->rows[j];
        const dmm__shape *s = d->shape[j];
        if (!s) {
            d->x[j] = NULL;
            continue;
        }
        if (r->one && !own) {
            d->x[j] = pval[r->port[0]].x;
            continue;
        }
        d->x[j] = buf;
        if (s->n == 0) {
            double sum = 0;
            for (uint32_t t = 0; t < r->nterms; t++) {
                const dmm__phot *h = &phot[r->port[t]];
                if (h->shape == s)
                    sum += r->w[t] * h->num;
                else if (h->shape)
                    return GIVE_UP;
            }
            if (!isfinite(sum))
                return GIVE_UP;
            *buf++ = sum;
            continue;
        }
        size_t m = s->n;
        bool first = true; /* w·x, not 0 + w·x: they differ in -0 only */
        uint32_t last = r->nterms;
        while (last > 0 && phot[r->port[last - 1]].shape != s)
            last--; /* the last term of shape s: it checks the sums */
        uint64_t bad = 0;
        for (uint32_t t = 0; t < r->nterms; t++) {
            const dmm__shape *ps = phot[r->port[t]].shape;
            if (ps != s) {
                if (ps)
                    return GIVE_UP;
                continue;
            }
            const double w = r->w[t], *x = pval[r->port[t]].x;
            if (first && t + 1 == last)
                for (size_t i = 0; i < m; i++) {
                    buf[i] = w * x[i];
                    bad |= nonfinite_bits(buf[i]);
                }
            else if (first)
                for (size_t i = 0; i < m; i++)
                    buf[i] = w * x[i];
            else if (t + 1 == last)
                for (size_t i = 0; i < m; i++) {
                    buf[i] += w * x[i];
                    bad |= nonfinite_bits(buf[i]);
                }
            else
                for (size_t i = 0; i < m; i++)
                    buf[i] += w * x[i];
            first = false;
        }
        if (bad >> 63) /* once non-finite, a sum stays so */
            return GIVE_UP;
        buf += m;
    }
    return 0;
}

/* Fire neuron k's dense form from din[k] into nxt[k]: 0, GIVE_UP or
 * DMM_E_NOMEM. */
static int dense_fire(dmm_net *net, size_t k)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__neuron *n = &cw->neu[k];
    const dmm_type_info *ti = n->info;
    dmm_dense_fn fn = ti->desc->dense;
    const dmm__dense *in = &cw->din[k];
    dmm__dense *o = &cw->nxt[k].d;
    if (!ti->desc->inputs) { /* stream by stream, names kept */
        size_t len = 0;
        for (uint32_t j = 0; j < in->n; j++)
            if (in->shape[j])
                len += dmm__shape_len(in->shape[j]);
        if (dmm__dense_reserve(net->vc, o, in->n, len))
            return DMM_E_NOMEM;
        o->n = in->n;
        double *buf = o->buf;
        for (uint32_t j = 0; j < in->n; j++) {
            o->label[j] = in->label[j];
            o->shape[j] = in->shape[j];
            o->x[j] = NULL;
            if (!in->shape[j])
                continue;
            size_t m = dmm__shape_len(in->shape[j]);
            const double *x = in->x[j];
            if (fn(&x, 1, buf, m))
                return GIVE_UP;
            /* dmm_dense_fn's contract; checked in debug builds only, as it
             * is a pass over the output in the hot loop */
            assert(all_finite(buf, m));
            o->x[j] = buf;
            buf += m;
        }
        return 0;
    }
    enum { MAX_IN = 8 };
    size_t nin = ti->n_inputs;
    if (nin > MAX_IN || ti->n_outputs != 1)
        return GIVE_UP;
    const double *x[MAX_IN] = {0};
    const dmm__shape *s = NULL;
    for (uint32_t j = 0; j < in->n; j++) {
        if (!in->shape[j])
            continue;
        if (s && in->shape[j] != s)
            return GIVE_UP;
        s = in->shape[j];
        for (size_t q = 0; q < nin; q++)
            if (ti->in[q] == in->label[j])
                x[q] = in->x[j];
    }
    size_t m = s ? dmm__shape_len(s) : 0;
    if (dmm__dense_reserve(net->vc, o, 1, m))
        return DMM_E_NOMEM;
    o->n = 1;
    o->label[0] = ti->out[0];
    o->shape[0] = s;
    o->x[0] = s ? o->buf : NULL;
    if (s && fn(x, nin, o->buf, m))
        return GIVE_UP;
    assert(!s || all_finite(o->buf, m)); /* as above: debug builds only */
    return 0;
}

/*
 * The common case first: a neuron with one row whose ports hold bare
 * numbers (or zero) this cycle, and one input and one output stream: a dot
 * product over the packed numbers, as the CSR baseline does, and one call.
 * A port of another shape has NaN there, which makes the sum NaN. The sum
 * adds w·0 for zero ports, which dense_input skips: that changes only the
 * sign of a zero sum; and the output is a number even when every port is
 * zero, where dense_input gives no stream: 0.0 and no stream are the same
 * absent leaf. 0, or GIVE_UP to try dense_input and dense_fire instead
 * (which give up in turn on whatever made this one give up).
 */
static int scalar1_fire(dmm_net *net, size_t k)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__neuron *n = &cw->neu[k];
    const dmm__row *r = &n->rows[0];
    const dmm__phot *phot = cw->phot;
    double sum = 0;
    for (uint32_t t = 0; t < r->nterms; t++)
        sum += r->w[t] * phot[r->port[t]].num;
    if (!isfinite(sum))
        return GIVE_UP; /* a port of another shape (NaN) or too large */
    dmm__dense *o = &cw->nxt[k].d;
    if (dmm__dense_reserve(net->vc, o, 1, 1))
        return GIVE_UP;
    const dmm_type_info *ti = n->info;
    o->n = 1;
    o->label[0] = ti->desc->inputs ? ti->out[0] : r->input;
    o->shape[0] = cw->shapes.scalar;
    double in = sum; /* sum's address never taken: kept in a register */
    const double *x = &in;
    if (ti->desc->dense(&x, 1, o->buf, 1))
        return GIVE_UP;
    assert(all_finite(o->buf, 1)); /* as above: debug builds only */
    o->x[0] = o->buf;
    return 0;
}

/* out[i] = wa·a[i] + wd·d[i] (a weight of 1 multiplies nothing), and
 * whether every sum is finite; restrict lets the loop vectorize. */
static bool sum2_loop(double *restrict out, const double *restrict a, double wa,
                      bool a1, const double *restrict d, double wd, bool d1,
                      size_t m)
{
    uint64_t bad = 0;
    if (a1 && d1) {
#pragma GCC unroll 4
        for (size_t i = 0; i < m; i++) {
            out[i] = a[i] + d[i];
            bad |= nonfinite_bits(out[i]);
        }
    } else if (a1) {
#pragma GCC unroll 4
        for (size_t i = 0; i < m; i++) {
            out[i] = a[i] + wd * d[i];
            bad |= nonfinite_bits(out[i]);
        }
    } else if (d1) {
#pragma GCC unroll 4
        for (size_t i = 0; i < m; i++) {
            out[i] = wa * a[i] + d[i];
            bad |= nonfinite_bits(out[i]);
        }
    } else {
#pragma GCC unroll 4
        for (size_t i = 0; i < m; i++) {
            out[i] = wa * a[i] + wd * d[i];
            bad |= nonfinite_bits(out[i]);
        }
    }
    return !(bad >> 63);
}

/*
 * An `accum` (sum2) whose two rows are a term each: its output wa·a + wd·d
 * in one pass over the ports, where dense_input writes w·x to a buffer and
 * the dense function adds the buffers in a second pass. Each product is
 * rounded, then the sum, as there (C11 does not contract them into a fused
 * multiply-add), so the bits are the same; a weight of 1 is no product
 * there either (the row aliases its port). 0, or GIVE_UP (a zero port,
 * shapes that differ, a sum that is not finite) to take the two passes,
 * which give up in turn where they must.
 */
static int sum2_fire(dmm_net *net, size_t k)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__neuron *n = &cw->neu[k];
    const dmm__row *ra = &n->rows[0], *rd = &n->rows[1];
    const dmm__phot *ha = &cw->phot[ra->port[0]], *hd = &cw->phot[rd->port[0]];
    const dmm__shape *s = ha->shape;
    if (!s || s == &dmm__not_dense || hd->shape != s)
        return GIVE_UP;
    size_t m = dmm__shape_len(s);
    dmm__dense *o = &cw->nxt[k].d;
    if (dmm__dense_reserve(net->vc, o, 1, m))
        return GIVE_UP;
    const double *a = cw->pval[ra->port[0]].x, *d = cw->pval[rd->port[0]].x;
    if (!sum2_loop(o->buf, a, ra->w[0], ra->one, d, rd->w[0], rd->one, m))
        return GIVE_UP;
    o->n = 1;
    o->label[0] = n->info->out[0];
    o->shape[0] = s;
    o->x[0] = o->buf;
    return 0;
}

/*
 * A neuron that keeps its streams' names (no declared inputs) with one row
 * of one term of weight 1 (one1): its function on the port's values, as
 * dense_fire does after dense_input has aliased the port, without those
 * two passes over the rows. 0 or GIVE_UP (a port with a V-value only, or
 * the function refusing), to take them.
 */
static int one1_fire(dmm_net *net, size_t k)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__neuron *n = &cw->neu[k];
    const dmm__row *r = &n->rows[0];
    const dmm__shape *s = cw->phot[r->port[0]].shape;
    if (s == &dmm__not_dense)
        return GIVE_UP;
    size_t m = s ? dmm__shape_len(s) : 0;
    dmm__dense *o = &cw->nxt[k].d;
    if (dmm__dense_reserve(net->vc, o, 1, m))
        return GIVE_UP;
    o->n = 1;
    o->label[0] = r->input;
    o->shape[0] = s;
    o->x[0] = NULL;
    if (!s)
        return 0;
    const double *x = cw->pval[r->port[0]].x;
    if (n->info->desc->dense(&x, 1, o->buf, m))
        return GIVE_UP;
    assert(all_finite(o->buf, m)); /* as in dense_fire: debug builds only */
    o->x[0] = o->buf;
    return 0;
}

/* ---- fields: modulated inputs and outputs on the dense path ----------- */

/* x (m values of stream l) through the applications from a on that scale
 * the output (else the input), in their order, as the general path's
 * vv_scale does leaf by leaf (s·x; a zero stays a zero: absent); false when
 * a product is not finite (the general path then says so). */
static bool fields_scale(const dmm__fapp *fa, int32_t a, bool output,
                         vv_label l, double *x, size_t m)
{
    uint64_t bad = 0;
    bool any = false;
    for (; a >= 0; a = fa[a].next) {
        const dmm__fapp *p = &fa[a];
        if (p->output != output || (p->has_stream && p->stream != l))
            continue;
        const double s = p->s;
        for (size_t i = 0; i < m; i++)
            x[i] = s * x[i];
        any = true;
    }
    if (!any)
        return true;
    for (size_t i = 0; i < m; i++)
        bad |= nonfinite_bits(x[i]);
    return !(bad >> 63);
}

/* Is output stream l one the general path modulates: every stream of a
 * type without declared outputs, else the declared ones. */
static bool fields_out_declared(const dmm_type_info *ti, vv_label l)
{
    if (!ti->out)
        return true;
    for (size_t q = 0; q < ti->n_outputs; q++)
        if (ti->out[q] == l)
            return true;
    return false;
}

/* scalar1_fire with k's modulations from a (all scale) applied: the sum
 * scaled before the call, the output after it. A copy, not one body with a
 * constant a: the shared always-inline body measured 143 instead of 130
 * instructions a modulated target (bench-fields-instructions.sh). */
static int scalar1_mod_fire(dmm_net *net, size_t k, int32_t a)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__fapp *fa = net->fapps;
    const dmm__neuron *n = &cw->neu[k];
    const dmm__row *r = &n->rows[0];
    const dmm__phot *phot = cw->phot;
    double sum = 0;
    for (uint32_t t = 0; t < r->nterms; t++)
        sum += r->w[t] * phot[r->port[t]].num;
    if (!isfinite(sum))
        return GIVE_UP;
    double in = sum;
    if (!fields_scale(fa, a, false, r->input, &in, 1))
        return GIVE_UP;
    dmm__dense *o = &cw->nxt[k].d;
    if (dmm__dense_reserve(net->vc, o, 1, 1))
        return GIVE_UP;
    const dmm_type_info *ti = n->info;
    o->n = 1;
    o->label[0] = ti->desc->inputs ? ti->out[0] : r->input;
    o->shape[0] = cw->shapes.scalar;
    const double *x = &in;
    if (ti->desc->dense(&x, 1, o->buf, 1))
        return GIVE_UP;
    if (fields_out_declared(ti, o->label[0]) &&
        !fields_scale(fa, a, true, o->label[0], o->buf, 1))
        return GIVE_UP;
    o->x[0] = o->buf;
    return 0;
}

/* Neuron k (dense_ok) with modulations from a on the dense path: 0 or
 * GIVE_UP (some modulation is not a scale, or any reason the unmodulated
 * dense path gives up for). The inputs are scaled in din, the outputs in
 * nxt, in the order the general path applies them. */
static int dense_mod_fire(dmm_net *net, size_t k, int32_t a)
{
    const dmm__fapp *fa = net->fapps;
    for (int32_t b = a; b >= 0; b = fa[b].next)
        if (!fa[b].scale)
            return GIVE_UP;
    const dmm__compiled *cw = &net->cw;
    const dmm__neuron *n = &cw->neu[k];
    if (n->scalar1 && !scalar1_mod_fire(net, k, a))
        return 0;
    if (dense_input(net, k, true))
        return GIVE_UP;
    const dmm__dense *in = &cw->din[k];
    for (uint32_t j = 0; j < in->n; j++)
        if (in->shape[j] &&
            !fields_scale(fa, a, false, in->label[j], (double *)in->x[j],
                          dmm__shape_len(in->shape[j])))
            return GIVE_UP;
    if (dense_fire(net, k))
        return GIVE_UP;
    const dmm__dense *o = &cw->nxt[k].d;
    for (uint32_t j = 0; j < o->n; j++)
        if (o->shape[j] && fields_out_declared(n->info, o->label[j]) &&
            !fields_scale(fa, a, true, o->label[j], (double *)o->x[j],
                          dmm__shape_len(o->shape[j])))
            return GIVE_UP;
    return 0;
}

/*
 * One input of a neuron from its compiled row. A fast row whose ports all
 * hold scalars this cycle is a dot product over doubles; summed left to right
 * from zero in label order it gives the same bits as vv_lincomb's chain of
 * axpys (0 + a is a, a final non-finite sum means some partial sum was).
 * Otherwise the terms are added with vv_axpy in the same order, or, for a row
 * of another shape, the row goes to vv_lincomb against Y.
 */
static int row_value(dmm_net *net, const dmm__row *r, dmm__scratch *sc, vv *out)
{
    if (r->deep) { /* 1·(Y at the path): that part of its port's value */
        vv v = net->cw.pval[r->port[0]].v;
        *out = vv_ref(vv_get(v, (const vv_label *)(r->port + 1), r->deep));
        return 0;
    }
    if (!r->fast)
        return vv_lincomb(net->vc, r->row, net->y, out);
    const dmm__pval *pv = net->cw.pval;
    double sum = 0;
    uint32_t t = 0;
    for (; t < r->nterms; t++) {
        vv v = pv[r->port[t]].v;
        if (v.map)
            break;
        sum += r->w[t] * v.num;
    }
    if (t == r->nterms) {
        if (!isfinite(sum))
            return DMM_E_NONFINITE;
        *out = vv_number(sum == 0.0 ? 0.0 : sum);
        return 0;
    }
    /* The terms that are not zero, summed at once: vv_sum builds the result
     * once, where a chain of vv_axpy copies a path of the partial sum per
     * term; it adds in the same order, so the bits are the same. */
    int rc = dmm__scratch_terms(net->vc, sc, r->nterms);
    if (rc)
        return rc;
    size_t m = 0;
    for (t = 0; t < r->nterms; t++) {
        vv v = pv[r->port[t]].v;
        if (v.map || v.num != 0.0) {
            sc->wbuf[m] = r->w[t];
            sc->tbuf[m++] = v;
        }
    }
    return vv_sum(net->vc, m, sc->wbuf, sc->tbuf, out);
}

/* X[f][nf] for compiled neuron k, into slot k. */
static int neuron_input(dmm_net *net, size_t k, dmm__scratch *sc,
                        dmm_error *err)
{
    const dmm__neuron *n = &net->cw.neu[k];
    dmm__slot *s = &net->slots[k];
    int rc = dmm__scratch_grow(net->vc, sc, n->nrows);
    if (rc)
        return neuron_fail(net, s, rc, dmm_strerror(rc), err);
    bool fon = dmm__fields_on(net, k);
    size_t m = 0; /* the rows computed: not unread, not given as terms */
    for (size_t j = 0; j < n->nrows; j++) {
        const dmm__row *r = &n->rows[j];
        if (r->unread || (r->terms && !fon))
            continue;
        sc->lbuf[m] = r->input;
        if (!fon || /* fields: weights modulated */
            (rc = dmm__fields_row(net, k, j, &sc->vbuf[m])) == 1)
            rc = row_value(net, r, sc, &sc->vbuf[m]);
        if (rc) {
            char what[600];
            snprintf(what, sizeof what, "%s in input \"%s\"", dmm_strerror(rc),
                     vv_label_str(net->vc, r->input, NULL));
            for (size_t q = 0; q < m; q++)
                vv_free(net->vc, sc->vbuf[q]);
            return neuron_fail(net, s, rc, what, err);
        }
        if (vv_is_zero(sc->vbuf[m]))
            continue; /* dropped by vv_from_pairs all the same */
        m++;
    }
    if ((rc = m ? vv_from_pairs(net->vc, 0, m, sc->lbuf, sc->vbuf, &s->input)
                : 0) ||
        (dmm__fields_on(net, k) && /* fields: inputs modulated */
         (rc = dmm__fields_input(net, k, &s->input))))
        return neuron_fail(net, s, rc, dmm_strerror(rc), err);
    return 0;
}

/* What a neuron function may read of its fresh error record: the same as
 * after dmm_error_clear, without writing all of it for every firing. */
static void error_reset(dmm_error *e)
{
    e->code = e->line = e->column = 0;
    e->source[0] = e->path[0] = e->text[0] = '\0';
}

/* The dmm__failure a single thread would have met first, copied to err. */
static int work_failure(const dmm__cycle_work *w, unsigned n, dmm_error *err)
{
    const dmm__failure *first = NULL;
    for (unsigned k = 0; k < n; k++)
        if (w->fail[k].rc && (!first || w->fail[k].at < first->at))
            first = &w->fail[k];
    if (!first)
        return 0;
    if (err)
        *err = first->err;
    return first->rc;
}

static void delay_fire(dmm_net *net, size_t k);
static int general_down(dmm_net *net, size_t k, const int32_t *fmod,
                        dmm__scratch *sc, dmm__failure *f);

/* Is every input of n zero this cycle, all its rows fast and all their
 * ports zero (or unread)? Then its input map is zero without being made:
 * neuron_input would find each row's sum zero and leave it. */
static bool rows_zero(const dmm_net *net, const dmm__neuron *n)
{
    const dmm__pval *pv = net->cw.pval;
    for (size_t j = 0; j < n->nrows; j++) {
        const dmm__row *r = &n->rows[j];
        if (r->unread)
            continue;
        if (!r->fast)
            return false;
        for (uint32_t t = 0; t < r->nterms; t++) {
            vv v = pv[r->port[t]].v;
            if (v.map || v.num != 0.0)
                return false;
        }
    }
    return true;
}
static void params_sync(dmm_net *net);

/* Neuron k on the per-neuron path of the down movement: 0, or a failure
 * recorded in f (the caller stops). */
static inline int down_one(dmm_net *net, size_t k, const int32_t *fmod,
                           dmm__scratch *sc, dmm__failure *f)
{
    const dmm__neuron *n = &net->cw.neu[k];
    dmm__slot *s = &net->slots[k];
    if (n->dense_ok) {
        /* A dense neuron's input depends on Y_{t-1} only, so it fires
         * here, its input still in cache. Any dmm__failure (no memory
         * included): the general path, in redo_slots. */
        int32_t a = fmod ? fmod[k] : -1;
        if (a >= 0) /* fields: modulated on the dense path if it can */
            s->dense = !dense_mod_fire(net, k, a);
        else if ((n->scalar1 && !scalar1_fire(net, k)) ||
                 (n->sum2 && !sum2_fire(net, k)) ||
                 (n->one1 && !one1_fire(net, k)))
            s->dense = true;
        else
            s->dense = !(dense_input(net, k, false) || dense_fire(net, k));
        if (!s->dense) {
            s->redo = true;
            dmm__few_add(&f->todo, k);
        }
        return 0;
    }
    return general_down(net, k, fmod, sc, f);
}

/* ---- groups (dmm__group): members fired as one array ------------------- */

/* Room in g's block being written for n members of m values: false when
 * out of memory (then per neuron). */
static bool group_block(dmm_net *net, dmm__group *g, size_t n, size_t m)
{
    int w = !g->pb; /* Y_t's outputs are in blk[pb], never in this one */
    if (m > SIZE_MAX / sizeof(double) / n)
        return false;
    if (g->cap[w] < n * m) {
        double *b = dmm__alloc(net->vc, n * m * sizeof *b);
        if (!b)
            return false;
        dmm__free(net->vc, g->blk[w], g->cap[w] * sizeof *b);
        g->blk[w] = b;
        g->cap[w] = n * m;
    }
    g->out = g->blk[w];
    g->m = m;
    return true;
}

/*
 * Before the ports are filled, on the calling thread: which groups are
 * direct this cycle, reading their inputs from the blocks of their source
 * groups (all of whose members' outputs of Y_t are there, in one shape)
 * instead of from ports, which are then not filled (gdir). Not with
 * modulations, nor when Y_t is not in the outputs (out_valid).
 */
static void groups_direct(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    cw->ndirect = 0;
    for (size_t i = 0; i < cw->ngrp; i++) {
        dmm__group *g = &cw->grp[i];
        size_t n = g->k1 - g->k0;
        g->s = NULL;
        g->direct = false;
        atomic_store_explicit(&g->miss, false, memory_order_relaxed);
        atomic_store_explicit(&g->fired, 0, memory_order_relaxed);
        if (!n)
            continue;
        bool ok = !net->fmod && cw->out_valid && !net->groups_off;
        const dmm__shape *s = NULL;
        size_t m = 0;
        for (int j = 0; ok && j < 1 + g->sum2; j++) {
            int64_t src = g->src[j];
            const dmm__group *gs =
                src < 0 ? NULL : dmm__group_from(cw, (size_t)src);
            ok = gs && gs->k0 <= src && src + (int64_t)n <= gs->k1 &&
                 gs->pfull && (j == 0 || gs->ps == s);
            if (ok) {
                s = gs->ps;
                m = gs->pm;
                g->in[j] = gs->pout + (size_t)(src - gs->k0) * m;
            }
        }
        if (ok && (g->sum2 || s->n > 0) && group_block(net, g, n, m)) {
            g->s = s;
            g->direct = true;
        }
        if (cw->gdir[g->k0] != g->direct) { /* (uniform over a group) */
            memset(cw->gdir + g->k0, g->direct, n);
            cw->pfill_ok = false; /* other ports skipped */
        }
        cw->ndirect += g->direct;
    }
}

/*
 * After the ports are filled, on the calling thread: the other groups'
 * shape this cycle, the first their members' first ports hold that the
 * group path takes (not zero, not a V-value only, not a bare number for
 * one1, where the per-neuron path tries scalar1 first), and their block.
 * None, or no memory: s NULL, per neuron.
 */
static void groups_prepare(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    for (size_t i = 0; i < cw->ngrp; i++) {
        dmm__group *g = &cw->grp[i];
        if (g->direct || g->k0 >= g->k1 || net->fmod || net->groups_off)
            continue;
        const dmm__shape *s = NULL;
        for (size_t k = g->k0; k < g->k1 && !s; k++) {
            s = cw->phot[cw->neu[k].rows[0].port[0]].shape;
            if (s == &dmm__not_dense || (s && !g->sum2 && s->n == 0))
                s = NULL;
        }
        if (s && group_block(net, g, g->k1 - g->k0, dmm__shape_len(s)))
            g->s = s;
    }
}

void dmm__groups_set(dmm_net *net, bool on)
{
    net->groups_off = !on;
}

size_t dmm__groups_fired(const dmm_net *net, bool direct)
{
    return direct ? net->grp_direct : net->grp_fired;
}

/* At the commit: where each group's outputs of Y_t are, and whether the
 * commit passes it by (quiet). */
static void groups_commit(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    for (size_t i = 0; i < cw->ngrp; i++) {
        dmm__group *g = &cw->grp[i];
        g->pfull =
            g->s && !atomic_load_explicit(&g->miss, memory_order_relaxed);
        g->quiet = g->pwhole && g->whole;
        g->pwhole = g->whole;
        size_t n = atomic_load_explicit(&g->fired, memory_order_relaxed);
        net->grp_fired += n;
        net->grp_direct += g->direct ? n : 0;
        g->ps = g->s;
        g->pm = g->m;
        g->pout = g->out;
        g->pb = !g->pb;
    }
}

/*
 * Members from a (below b) of group g fired into the group's block. Direct:
 * all of [a, b), their inputs the source groups' blocks. Else the run from
 * a whose ports are all the group's shape, up to *c: when their inputs also
 * lie side by side (member k's at (k - a)·m from member a's, as the outputs
 * of a group are), one loop, else one a member. One sum2_loop, or one call
 * of the type's function, over (*c - a)·m values: the arithmetic the
 * per-neuron path does member by member (elementwise, so the same bits).
 * Each member's output is then its slot of the block, which makes the
 * inputs of their readers side by side the next cycle; the group holds it
 * (the caller sets hold): no slot or record is written. 0: [a, *c) fired;
 * 1: [a, *c) (at least a) takes the per-neuron path, nothing it depends on
 * changed.
 */
static int group_fire(dmm_net *net, dmm__group *g, size_t a, size_t b,
                      size_t *c)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__shape *s = g->s;
    *c = a + 1;
    if (!s)
        return 1;
    const size_t m = g->m;
    const dmm__neuron *neu = cw->neu;
    const dmm__phot *phot = cw->phot;
    const dmm__pval *pval = cw->pval;
    const dmm__row *r0 = neu[a].rows;
    double *const out0 = g->out + (a - g->k0) * m;
    int rc = 0;
    size_t e = b;
    if (g->sum2) {
        const double wa = r0[0].w[0], wd = r0[1].w[0];
        const bool a1 = r0[0].one, d1 = r0[1].one;
        const double *x0, *d0;
        bool side = true;
        if (g->direct) {
            x0 = g->in[0] + (a - g->k0) * m;
            d0 = g->in[1] + (a - g->k0) * m;
        } else {
            x0 = pval[r0[0].port[0]].x;
            d0 = pval[r0[1].port[0]].x;
            for (size_t k = a, i = 0; k < b; k++, i += m) {
                const dmm__row *r = neu[k].rows;
                uint32_t pa = r[0].port[0], pd = r[1].port[0];
                if (phot[pa].shape != s || phot[pd].shape != s) {
                    e = k;
                    break;
                }
                side &= pval[pa].x == x0 + i && pval[pd].x == d0 + i;
            }
        }
        if (e == a)
            return 1;
        if (side)
            rc = !sum2_loop(out0, x0, wa, a1, d0, wd, d1, (e - a) * m);
        for (size_t k = a, i = 0; !rc && !side && k < e; k++, i += m) {
            const dmm__row *r = neu[k].rows;
            rc = !sum2_loop(out0 + i, pval[r[0].port[0]].x, wa, a1,
                            pval[r[1].port[0]].x, wd, d1, m);
        }
    } else {
        dmm_dense_fn fn = neu[a].info->desc->dense;
        const double *x0;
        bool side = true;
        if (g->direct) {
            x0 = g->in[0] + (a - g->k0) * m;
        } else {
            x0 = pval[r0[0].port[0]].x;
            for (size_t k = a, i = 0; k < b; k++, i += m) {
                uint32_t p = neu[k].rows[0].port[0];
                if (phot[p].shape != s) {
                    e = k;
                    break;
                }
                side &= pval[p].x == x0 + i;
            }
        }
        if (e == a)
            return 1;
        /* Side by side: slices of whole members up to 1024 values (8 KiB,
         * in L1; glibc's memcpy, which identity is, copies 80 KB with `rep
         * movsb`, which callgrind counts a byte an instruction). */
        const size_t per = m >= 1024 ? 1 : 1024 / m;
        for (size_t k = a; !rc && side && k < e; k += per) {
            size_t i = (k - a) * m, n = (e - k < per ? e - k : per) * m;
            const double *x = x0 + i;
            rc = fn(&x, 1, out0 + i, n) != 0;
        }
        for (size_t k = a, i = 0; !rc && !side && k < e; k++, i += m) {
            const double *x = pval[neu[k].rows[0].port[0]].x;
            rc = fn(&x, 1, out0 + i, m) != 0;
        }
        assert(rc || all_finite(out0, (e - a) * m)); /* as in dense_fire */
    }
    *c = e;
    if (rc)
        return 1;
    atomic_fetch_add_explicit(&g->fired, e - a, memory_order_relaxed);
    return 0;
}

/*
 * After the down movement, on the calling thread: which groups hold every
 * member (whole), and the members of direct groups that the group path
 * gave up on (a sum not finite, the function refusing: the per-neuron
 * dense path would give up on them too) take the general path in
 * redo_slots, once the ports their groups skipped are filled (other
 * threads' groups may share them). 0 or DMM_E_NOMEM.
 */
static int groups_redo(dmm_net *net, dmm__cycle_work *work)
{
    dmm__compiled *cw = &net->cw;
    bool any = false;
    cw->holding = false;
    for (size_t i = 0; i < cw->ngrp; i++) {
        dmm__group *g = &cw->grp[i];
        bool miss = atomic_load_explicit(&g->miss, memory_order_relaxed);
        g->whole = g->s && !miss;
        any |= g->direct && miss;
        cw->holding |=
            atomic_load_explicit(&g->fired, memory_order_relaxed) > 0;
    }
    if (!any)
        return 0;
    int rc = dmm__ports_unskip(net);
    if (rc)
        return rc;
    for (size_t i = 0; i < cw->ngrp; i++) {
        const dmm__group *g = &cw->grp[i];
        for (size_t k = g->k0; g->direct && k < g->k1; k++)
            if (!cw->hold[k]) /* its slot written, dense false */
                net->slots[k].redo = true;
    }
    /* rare (a sum not finite): every slot is visited, in order */
    dmm__few_all(&work->fail[0].todo, net->nslots);
    return 0;
}

/* Slots [a, b) empty, for their neurons to fire per neuron. */
static void slots_init(dmm_net *net, size_t a, size_t b)
{
    const dmm__neuron *neu = net->cw.neu;
    for (size_t k = a; k < b; k++)
        net->slots[k] = (dmm__slot){.type = neu[k].type,
                                    .name = neu[k].name,
                                    .info = neu[k].info,
                                    .input = VV_ZERO,
                                    .output = VV_ZERO,
                                    .new_state = VV_ZERO};
}

static void down_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                      void *ud)
{
    dmm__cycle_work *cw = ud;
    dmm__failure *f = &cw->fail[worker];
    dmm__scratch *sc = dmm__scratch_of(net, worker);
    /* fields: read once, not reloaded per neuron through net; the loop
     * without modulations tests nothing per neuron */
    const int32_t *fmod = net->fmod;
    uint8_t *hold = net->cw.hold;
    dmm__few *todo = &cw->fail[worker].todo;
    todo->lo = lo;
    todo->hi = hi;
    /* Groups (not with modulations): their part of [lo, hi) at once, the
     * neurons between them one by one. Every member's hold is written: 1
     * when its group fired it (its slot is not), else 0; a neuron outside
     * the groups keeps its 0. */
    if (fmod && hold)
        memset(hold + lo, 0, hi - lo);
    dmm__group *g = fmod ? NULL : dmm__group_from(&net->cw, lo);
    /* (no groups: grp is NULL, and NULL + 0 is undefined in C) */
    dmm__group *gend = g ? net->cw.grp + net->cw.ngrp : NULL;
    for (size_t k = lo; k < hi;) {
        while (g && g->k1 <= k) /* (a group split may leave one empty) */
            g = g + 1 < gend ? g + 1 : NULL;
        size_t e = hi;
        if (g && g->k0 <= k && !g->s) {
            e = g->k1 < hi ? g->k1 : hi; /* not fired as a group */
            memset(hold + k, 0, e - k);
        } else if (g && g->k0 <= k) {
            e = g->k1 < hi ? g->k1 : hi;
            size_t c;
            if (!group_fire(net, g, k, e, &c)) {
                memset(hold + k, 1, c - k);
                k = c; /* fired */
                continue;
            }
            atomic_store_explicit(&g->miss, true, memory_order_relaxed);
            if (g->direct) {
                slots_init(net, k, e);
                memset(hold + k, 0, e - k);
                k = e; /* left to groups_redo */
                continue;
            }
            e = c; /* these per neuron, then the group again */
            memset(hold + k, 0, e - k);
        } else if (g && g->k0 < hi) {
            e = g->k0;
        }
        slots_init(net, k, e);
        for (; k < e; k++)
            if (down_one(net, k, fmod, sc, f)) {
                /* the rest is not run: empty, for slots_clear */
                slots_init(net, k + 1, hi);
                if (hold)
                    memset(hold + k + 1, 0, hi - k - 1);
                return;
            }
    }
}

/*
 * An `accum` (dense_ok, so its rows are fast) whose ports hold images as
 * blocks, which the dense path gives up on: its output single = Σ accum
 * row + Σ delta row made at once by vv_sum_add, one pass over the pixels
 * into a new block, where the general path makes each row's sum as a value
 * and then their sum (three blocks written). The same bits: vv_sum_add sums
 * as vv_sum and vv_add do, and fire_accum's vv_add gives the same value
 * (its small-delta path, for a delta of at most 8 leaves, the same sums in
 * another form). 0, or 1 to take the general path (other values, a
 * non-finite sum: the error reported there), the slot untouched. Never for
 * Self, whose input the commit reads, nor with modulations (fields).
 */
static int accum_blocks(dmm_net *net, size_t k, dmm__scratch *sc)
{
    const dmm__neuron *n = &net->cw.neu[k];
    const dmm_type_info *ti = n->info;
    /* self[0] is the label "accum", interned at load: no string compared
     * in the cycle (Self itself never comes here: it is not dense_ok) */
    if (n->type != net->self[0] || n->nrows != 2 || ti->n_inputs != 2 ||
        ti->n_outputs != 1 || dmm__fields_on(net, k))
        return 1;
    const dmm__row *ra = &n->rows[0], *rd = &n->rows[1];
    if (ra->input != ti->in[0]) {
        const dmm__row *t = ra;
        ra = rd;
        rd = t;
    }
    if (ra->input != ti->in[0] || rd->input != ti->in[1] || !ra->fast ||
        !rd->fast || ra->unread || rd->unread ||
        dmm__scratch_terms(net->vc, sc, ra->nterms + (size_t)rd->nterms))
        return 1;
    const dmm__pval *pv = net->cw.pval;
    for (uint32_t t = 0; t < ra->nterms; t++) {
        sc->wbuf[t] = ra->w[t];
        sc->tbuf[t] = pv[ra->port[t]].v;
    }
    for (uint32_t t = 0; t < rd->nterms; t++) {
        sc->wbuf[ra->nterms + t] = rd->w[t];
        sc->tbuf[ra->nterms + t] = pv[rd->port[t]].v;
    }
    vv sum;
    if (vv_sum_add(net->vc, ra->nterms, sc->wbuf, sc->tbuf, rd->nterms,
                   sc->wbuf + ra->nterms, sc->tbuf + ra->nterms, &sum))
        return 1;
    dmm__slot *s = &net->slots[k];
    if (vv_from_pairs(net->vc, 0.0, 1, &ti->out[0], &sum, &s->output))
        return 1; /* sum freed by vv_from_pairs */
    s->fired = true;
    return 0;
}

/* The index of the first dmm__failure so far (n: none). */
static size_t first_failure(const dmm__cycle_work *w, unsigned nw, size_t n)
{
    size_t at = n;
    for (unsigned k = 0; k < nw; k++)
        if (w->fail[k].rc && w->fail[k].at < at)
            at = w->fail[k].at;
    return at;
}

static int fire_slot(dmm_net *net, size_t k, uint64_t *rng, dmm__scratch *sc,
                     dmm_error *err);

/* Slots the dense path gave up on, below the first dmm__failure, take the
 * general path here, on the calling thread (their ports need V-values);
 * fire says whether to fire them too (up movement). A dmm__failure among them
 * is recorded in worker 0's record when it comes first. */
static void redo_slots(dmm_net *net, dmm__cycle_work *work, bool fire,
                       uint64_t *rng)
{
    unsigned nw = net->threads;
    size_t stop = first_failure(work, nw, net->nslots);
    const uint8_t *hold = net->cw.hold;
    for (dmm__few_iter it = dmm__few_begin(work, nw, stop);
         dmm__few_next(&it);) {
        size_t k = it.i;
        dmm__slot *s = &net->slots[k];
        if ((hold && hold[k]) || !s->redo)
            continue; /* (a slot its group holds is not written) */
        s->redo = s->dense = false;
        dmm_error *e = &work->fail[0].err;
        dmm_error mine;
        error_reset(&mine);
        int rc = dmm__neuron_ports_vv(net, k);
        if (rc)
            rc = neuron_fail(net, s, rc, dmm_strerror(rc), &mine);
        else if (!accum_blocks(net, k, &net->s0))
            continue; /* fired */
        else if (!(rc = neuron_input(net, k, &net->s0, &mine)) && fire)
            rc = fire_slot(net, k, rng, &net->s0, &mine);
        if (rc) {
            *e = mine;
            dmm__fail_record(&work->fail[0], rc, k);
            return;
        }
    }
}

/* Down movement: a slot with its input for every active neuron, plus Self. */
static int down_movement(dmm_net *net, dmm__cycle_work *work, dmm_error *err)
{
    int rc = dmm__compiled_sync(net, dmm__w(net));
    if (!rc && (net->cw.slow_rows || (net->cw.deep_rows && net->fields)))
        rc = dmm__y_make(net); /* those rows read the whole Y */
    if (rc)
        return dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    const dmm__compiled *cw = &net->cw;
    if (net->slots_cap < cw->nneu) {
        dmm__slot *sl = dmm__grow1(net->vc, net->slots, sizeof *sl,
                                   net->slots_cap, cw->nneu);
        if (!sl)
            return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                                 dmm_strerror(DMM_E_NOMEM));
        net->slots = sl;
        net->slots_cap = cw->nneu;
    }
    groups_direct(net);
    if ((rc = dmm__ports_fill(net, work)))
        return dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    groups_prepare(net);
    if (cw->delay_info) /* delay lines read theirs in the down movement */
        params_sync(net);
    net->nslots = cw->nneu; /* each worker clears its slots first */
    dmm__work_reset(work, net->threads);
    dmm__parallel(net, cw->nneu, down_task, work);
    if ((rc = groups_redo(net, work)))
        return dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    redo_slots(net, work, false, NULL);
    return work_failure(work, net->threads, err);
}

/* The rows of neuron k given as terms (dmm__row.terms), into t (one entry
 * per input, zeroed by the caller) with their arrays in sc: each row's terms
 * whose port is not zero, in order. */
static int terms_fill(dmm_net *net, size_t k, dmm__scratch *sc, dmm_terms *t)
{
    const dmm__neuron *n = &net->cw.neu[k];
    const dmm__pval *pv = net->cw.pval;
    size_t total = 0;
    for (size_t j = 0; j < n->nrows; j++)
        if (n->rows[j].terms)
            total += n->rows[j].nterms;
    int rc = dmm__scratch_terms(net->vc, sc, total);
    if (rc)
        return rc;
    size_t m = 0;
    for (size_t j = 0; j < n->nrows; j++) {
        const dmm__row *r = &n->rows[j];
        if (!r->terms)
            continue;
        dmm_terms *e = &t[r->in_k];
        *e = (dmm_terms){.given = true, .w = sc->wbuf + m, .v = sc->tbuf + m};
        const uint32_t *hit;
        size_t nh;
        if (dmm__bysrc_hits(net, k, j, &hit, &nh)) {
            /* the terms of the ports filled (net_ports.c), in order */
            for (size_t i = 0; i < nh; i++) {
                vv v = pv[r->port[hit[i]]].v;
                if (v.map || v.num != 0.0) {
                    sc->wbuf[m] = r->w[hit[i]];
                    sc->tbuf[m++] = v;
                    e->n++;
                }
            }
            continue;
        }
        for (uint32_t q = 0; q < r->nterms; q++) {
            vv v = pv[r->port[q]].v;
            if (v.map || v.num != 0.0) {
                sc->wbuf[m] = r->w[q];
                sc->tbuf[m++] = v;
                e->n++;
            }
        }
    }
    return 0;
}

/* ---- parameters and states found once (dmm__compiled.par, st) ---- */

/* Delay line n's length from its parameters par (borrowed), as the type's
 * function reads it; 0 when it is not an integer 1 .. DMM_DELAY_MAX. */
static int delay_len(const dmm__neuron *n, vv par)
{
    vv l = vv_child(par, n->info->param[0]); /* length (dmm_fire_param) */
    return dmm_delay_length(
        vv_is_zero(l) ? n->info->desc->params[0].default_value : l.num);
}

/* Before the up movement: par[k] for every neuron, looked up again only
 * when net->params is another tree. Out of memory: no cache (lookups). */
static void params_sync(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    if (cw->par_ok && cw->par_tree.map == net->params.map &&
        cw->par_tree.num == net->params.num)
        return;
    if (!net->params.map && !cw->par_tree.map)
        return; /* none, as last time */
    vv_free(net->vc, cw->par_tree);
    cw->par_tree = VV_ZERO;
    cw->par_ok = false;
    if (!net->params.map)
        return; /* no parameters: nothing to look up, no memory taken */
    if (!cw->par &&
        !(cw->par = dmm__calloc(net->vc, cw->nalloc, sizeof *cw->par)))
        return;
    for (size_t k = 0; k < cw->nneu; k++) {
        vv_label tn[2] = {cw->neu[k].type, cw->neu[k].name};
        cw->par[k] = vv_get(net->params, tn, 2);
        if (cw->neu[k].info == cw->delay_info)
            cw->dlen[k] = (uint8_t)delay_len(&cw->neu[k], cw->par[k]);
    }
    cw->par_tree = vv_ref(net->params);
    cw->par_ok = true;
}

/* Neuron k's state (borrowed). */
static vv state_of(const dmm_net *net, size_t k, const vv_label tn[2])
{
    const dmm__compiled *cw = &net->cw;
    if (cw->st_ok)
        return cw->st[k];
    return vv_get(net->states, tn, 2);
}

/* General neuron k in the down movement: its input; a delay line's (zero,
 * the usual cycle when nothing came in, seen without making it), then
 * delay_fire, unless modulated or the path is off. Not inlined in the loop
 * over the neurons, which dense networks run (inlined, it cost rnn-1000-10
 * an instruction a neuron). */
static __attribute__((noinline)) int general_down(dmm_net *net, size_t k,
                                                  const int32_t *fmod,
                                                  dmm__scratch *sc,
                                                  dmm__failure *f)
{
    const dmm__neuron *n = &net->cw.neu[k];
    bool dl = n->info == net->cw.delay_info && !(fmod && fmod[k] >= 0) &&
              !net->delay_off;
    int rc = dl && rows_zero(net, n) ? 0 : neuron_input(net, k, sc, &f->err);
    if (rc)
        dmm__fail_record(f, rc, k);
    else if (dl)
        delay_fire(net, k);
    return rc;
}

/*
 * A delay line (the built-in `delay`, cw.delay_info) fires in the down
 * movement, its input just made: its state and output are those of
 * dmm_delay_step on its length, input and state, which is what the type's
 * function calls, without the general firing around it (a dmm_fire, its
 * parameter found by name, its labels found through the registry) and
 * without waiting for the up movement (a delay line reads no other
 * neuron's new output). Its slot is then `fired`, and the commit takes its
 * output and state as any general neuron's. Whatever the type's function
 * would report — a length that is not 1 .. DMM_DELAY_MAX, a state that is
 * not {age: X}, no memory — leaves the slot to the up movement, which fires
 * it by the function and says why; so does a modulation (the caller).
 */
static void delay_fire(dmm_net *net, size_t k)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__neuron *n = &cw->neu[k];
    dmm__slot *s = &net->slots[k];
    vv_label tn[2] = {n->type, n->name};
    int len =
        cw->par_ok ? cw->dlen[k] : delay_len(n, vv_get(net->params, tn, 2));
    if (!len)
        return;
    if (!dmm_delay_step_reuse(net->vc, cw->delay_ages, len, s->input,
                              state_of(net, k, tn), &cw->dspare[k], &s->output,
                              &s->new_state)) {
        s->fired = true;
        atomic_fetch_add_explicit(&net->delay_fired, 1, memory_order_relaxed);
    }
}

void dmm__delay_set(dmm_net *net, bool on)
{
    net->delay_off = !on;
}

size_t dmm__delay_fired(const dmm_net *net)
{
    return atomic_load_explicit(&net->delay_fired, memory_order_relaxed);
}

/* Fire slot k with the random state rng; sc is the firing thread's. */
static int fire_slot(dmm_net *net, size_t k, uint64_t *rng, dmm__scratch *sc,
                     dmm_error *err)
{
    dmm__slot *s = &net->slots[k];
    vv_label tn[2] = {s->type, s->name};
    dmm_error ferr;
    error_reset(&ferr);
    dmm_fire fire = {
        .vc = net->vc,
        .type = s->info,
        .name = s->name,
        .input = s->input,
        .params = net->cw.par_ok ? net->cw.par[k] : vv_get(net->params, tn, 2),
        .state = state_of(net, k, tn),
        .feed = VV_ZERO,
        .step = net->t + 1,
        .rng = rng,
        .output = VV_ZERO,
        .new_state = VV_ZERO,
        .err = &ferr,
    };
    s->queue = NULL;
    if (s->type == net->input_type) {
        dmm__queue *q = dmm__queue_find(net, s->name);
        if (q && q->head < q->len) {
            fire.feed = q->items[q->head];
            s->queue = q;
        }
    }
    vv fin = VV_ZERO, fpar = VV_ZERO; /* fields: parameters modulated */
    int rc = dmm__fields_on(net, k)
                 ? dmm__fields_params(net, k, &fire, &fin, &fpar)
                 : 0;
    dmm_terms terms[32];
    if (!rc && s->info->terms && !dmm__fields_on(net, k)) {
        memset(terms, 0, sizeof terms);
        if (!(rc = terms_fill(net, k, sc, terms)))
            fire.terms = terms;
    }
    if (!rc)
        rc = s->info->desc->fn(&fire);
    dmm__vfree(net->vc, fin);
    dmm__vfree(net->vc, fpar);
    if (!rc && dmm__fields_on(net, k)) /* fields: outputs modulated */
        rc = dmm__fields_output(net, k, &fire.output);
    if (rc) {
        vv_free(net->vc, fire.output);
        vv_free(net->vc, fire.new_state);
        return neuron_fail(net, s, rc,
                           ferr.text[0] ? ferr.text : dmm_strerror(rc), err);
    }
    s->output = fire.output;
    if (s->info->desc->stateful)
        s->new_state = fire.new_state;
    else
        vv_free(net->vc, fire.new_state);
    return 0;
}

/* Fire slot k unless it was fired in the down movement: 0, or the
 * dmm__failure recorded in f. */
static inline __attribute__((always_inline)) int
up_one(dmm_net *net, size_t k, uint64_t *rng, dmm__scratch *sc, dmm__failure *f)
{
    dmm__slot *s = &net->slots[k];
    if (s->dense || s->fired)
        return 0; /* fired in the down movement */
    int rc = fire_slot(net, k, rng, sc, &f->err);
    if (rc)
        dmm__fail_record(f, rc, k);
    return rc;
}

/* Fire the general slots of [lo, hi) with rng, stopping at the first
 * dmm__failure (dense ones and the groups' members fired in the down
 * movement: a group that holds all of its members is passed by at once). */
static void up_range(dmm_net *net, size_t lo, size_t hi, uint64_t *rng,
                     dmm__scratch *sc, dmm__failure *f)
{
    const dmm__compiled *cw = &net->cw;
    if (!cw->holding) { /* none held: the loop tests nothing more per slot */
        for (size_t k = lo; k < hi; k++)
            if (up_one(net, k, rng, sc, f))
                return;
        return;
    }
    const dmm__group *g = dmm__group_from(cw, lo), *gend = cw->grp + cw->ngrp;
    for (size_t k = lo; k < hi; k++) {
        while (g && g->k1 <= k)
            g = g + 1 < gend ? g + 1 : NULL;
        if (g && g->k0 <= k && (g->whole || cw->hold[k])) {
            if (g->whole)
                k = g->k1 - 1;
            continue; /* its slot is not written */
        }
        if (up_one(net, k, rng, sc, f))
            return;
    }
}

static void up_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                    void *ud)
{
    dmm__cycle_work *cw = ud;
    up_range(net, lo, hi, cw->fail[worker].rng, dmm__scratch_of(net, worker),
             &cw->fail[worker]);
}

/*
 * Up movement: fire every slot; rng is the cycle's working copy. On several
 * threads each worker fires with its own copy of rng; if any neuron drew
 * from it, the draws would depend on the split, so the general firings are
 * redone on one thread in label order (neurons that draw are then as
 * deterministic as on one thread, only not parallel; dense firings draw
 * nothing and are kept).
 */
static int up_movement(dmm_net *net, dmm__cycle_work *work, uint64_t *rng,
                       dmm_error *err)
{
    unsigned n = net->threads;
    params_sync(net);
    dmm__work_reset(work, n);
    if (n > 1) {
        for (unsigned k = 0; k < n; k++)
            memcpy(work->fail[k].rng, rng, sizeof work->fail[k].rng);
        dmm__parallel(net, net->nslots, up_task, work);
        bool drew = false;
        for (unsigned k = 0; k < n; k++)
            drew |= memcmp(work->fail[k].rng, rng, 4 * sizeof *rng) != 0;
        if (!drew) {
            redo_slots(net, work, true, rng);
            return work_failure(work, n, err);
        }
        dmm__work_reset(work, n);
        for (size_t k = 0; k < net->nslots; k++) {
            dmm__slot *s = &net->slots[k];
            if ((net->cw.hold && net->cw.hold[k]) || s->fired)
                continue; /* drew nothing: kept, as dense firings are */
            vv_free(net->vc, s->output);
            vv_free(net->vc, s->new_state);
            s->output = s->new_state = VV_ZERO;
            s->redo = false;
        }
    }
    up_range(net, 0, net->nslots, rng, &net->s0, &work->fail[0]);
    redo_slots(net, work, true, rng);
    return work_failure(work, n, err);
}

/* Slot s's output into o (nxt): moved, o owns it from here. */
static inline void out_move(vv_ctx *vc, dmm__out *o, dmm__slot *s)
{
    dmm__vfree(vc, o->v);
    o->vmade = false;
    o->dense = s->dense;
    o->v = s->output;
    s->output = VV_ZERO;
}

/* The commit of slot k (see commit_task); vc, slots and the output
 * records are net's, read once by the caller (not reloaded per slot
 * through net, which the stores may alias). */
static inline __attribute__((always_inline)) void
commit_one(vv_ctx *vc, dmm__slot *slots, dmm__out *cur, dmm__out *nxt, size_t k,
           bool move)
{
    dmm__slot *s = &slots[k];
    if (move)
        out_move(vc, &cur[k], s);
    dmm__vfree(vc, nxt[k].v);
    nxt[k].v = VV_ZERO;
    if (s->dense)
        return; /* it owns nothing, it has no queue */
    dmm__queue *q = s->queue;
    if (q) {
        vv_free(vc, q->items[q->head++]);
        if (q->head == q->len)
            q->head = q->len = 0;
    }
    dmm__vfree(vc, s->input);
    dmm__vfree(vc, s->output);
    dmm__vfree(vc, s->new_state);
}

/* Before the commit: each stateful neuron's new state moves from its slot
 * to cw->st, the one it replaces dropped. A delay line's output that the
 * commit would drop (cw->cur: Y_t-1's, the swap not made yet) is kept in
 * cw->dspare instead, for its step after next to write over: by then no
 * port, state or Y of the network reaches it, and the step reuses it only
 * if no one else holds it (vv_rewrap). */
static void states_move(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    const uint8_t *hold = cw->hold;
    const dmm_type_info *dl = net->delay_off ? NULL : cw->delay_info;
    for (size_t k = 0; k < net->nslots; k++) {
        if ((hold && hold[k]) || !cw->neu[k].info->desc->stateful)
            continue; /* (a held slot is not written; no state) */
        dmm__slot *s = &net->slots[k];
        vv old = cw->st[k];
        cw->st[k] = s->new_state;
        s->new_state = VV_ZERO;
        dmm__vfree(net->vc, old);
        if (cw->neu[k].info == dl && cw->cur[k].v.map) {
            dmm__vfree(net->vc, cw->dspare[k]);
            cw->dspare[k] = cw->cur[k].v;
            cw->cur[k].v = VV_ZERO;
        }
    }
}

/* The commit over slots [lo, hi): cw->cur is Y_t+1 (its outputs moved
 * already when the host watched), cw->nxt Y_t. Each slot touches its own
 * output records and its own input neuron's queue only. A member its group
 * holds now has neither slot nor record to commit, only its record of Y_t
 * to empty (a held one owns nothing: a quiet group is passed by). */
static void commit_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                        void *ud)
{
    (void)worker;
    (void)ud;
    dmm__compiled *cw = &net->cw;
    vv_ctx *vc = net->vc;
    dmm__slot *slots = net->slots;
    dmm__out *cur = cw->cur, *nxt = cw->nxt;
    bool move = !net->watched;
    if (!cw->holding) { /* none held: the loop tests nothing more per slot */
        for (size_t k = lo; k < hi; k++)
            commit_one(vc, slots, cur, nxt, k, move);
        return;
    }
    const dmm__group *g = dmm__group_from(cw, lo), *gend = cw->grp + cw->ngrp;
    for (size_t k = lo; k < hi; k++) {
        while (g && g->k1 <= k)
            g = g + 1 < gend ? g + 1 : NULL;
        if (g && g->k0 <= k && g->quiet) {
            k = g->k1 - 1;
            continue;
        }
        if (g && g->k0 <= k && cw->hold[k]) {
            dmm__vfree(vc, nxt[k].v);
            nxt[k].v = VV_ZERO;
            continue;
        }
        commit_one(vc, slots, cur, nxt, k, move);
    }
}

/* Before the outputs of this cycle are read as records (the host watches
 * Y): the members their group holds get their slots and records (nxt) as
 * the per-neuron dense path leaves them, and are no longer held. */
static void groups_unhold(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    for (size_t i = 0; i < cw->ngrp; i++) {
        dmm__group *g = &cw->grp[i];
        for (size_t k = g->k0; g->s && k < g->k1; k++) {
            if (!cw->hold[k])
                continue;
            slots_init(net, k, k + 1);
            net->slots[k].dense = true;
            dmm__member_record(net->vc, &cw->nxt[k].d,
                               dmm__member_out(&cw->neu[k]), g->s,
                               g->out + (k - g->k0) * g->m);
            cw->hold[k] = 0;
        }
        g->whole = false;
    }
    cw->holding = false;
}

/* Before the commit: the hint for the next sync (dmm__compiled): when
 * Self is `accum` (output `single` = accum + delta, vv_add sharing every
 * subtree delta does not touch) and its `accum` input is W_{t-1} itself. */
/* Is W_t = w_old + delta, Self being `accum` with its `accum` input exactly
 * w_old? Then *delta is Self's `delta` input (borrowed from its slot). */
static bool self_sum_of(const dmm_net *net, vv w_old, vv *delta)
{
    if (!net->self_sums)
        return false;
    const dmm_type_info *ti = net->self_info;
    vv in = net->slots[net->cw.self_k].input;
    vv xa = vv_child(in, ti->in[net->self_accum_in]);
    *delta = vv_child(in, ti->in[net->self_delta_in]);
    return !vv_is_zero(xa) && xa.map == w_old.map && xa.num == w_old.num;
}

static void self_hint(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    dmm__compiled_unhint(cw, net->vc);
    vv w_old = cw->w, xd;
    /* Self's output: moved to nxt already when the host watched Y. */
    vv out =
        net->watched ? cw->nxt[cw->self_k].v : net->slots[cw->self_k].output;
    vv w_new = vv_child(out, net->self[2]);
    if (!self_sum_of(net, w_old, &xd) || vv_is_zero(w_new))
        return;
    cw->hint_from = vv_ref(w_old);
    cw->hint_to = vv_ref(w_new);
    cw->hint_delta = vv_ref(xd);
}

int dmm_net_step(dmm_net *net, dmm_error *err)
{
    dmm_error_clear(err);
    uint64_t rng[4];
    memcpy(rng, net->rng, sizeof rng);
    if (net->nfail != net->threads) {
        dmm__failure *f = dmm__calloc(net->vc, net->threads, sizeof *f);
        if (!f)
            return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                                 dmm_strerror(DMM_E_NOMEM));
        dmm__free(net->vc, net->fail, net->nfail * sizeof *f);
        net->fail = f;
        net->nfail = net->threads;
    }
    dmm__cycle_work work = {net->fail};
    int rc = net->fields ? dmm__fields_begin(net, err) : 0; /* fields */
    if (!rc)
        rc = down_movement(net, &work, err);
    if (!rc)
        rc = up_movement(net, &work, rng, err);
    dmm__compiled *cw = &net->cw;
    if (!rc) {
        vv w_old = dmm__w(net);
        vv w_new = vv_child(net->slots[cw->self_k].output, net->self[2]);
        vv xd;
        if (w_new.map != w_old.map || w_new.num != w_old.num)
            rc = self_sum_of(net, w_old, &xd)
                     ? dmm__check_matrix_delta(net, w_new, w_old, xd, "", err)
                     : dmm__check_matrix(net, w_new, w_old, "", err);
        if (!rc && net->fields &&
            (w_new.map != w_old.map || w_new.num != w_old.num)) /* fields */
            rc = dmm__fields_check_w(net, w_new, err);
        if (rc && err) {
            dmm_error e = *err;
            dmm_error_set(err, rc, e.path,
                          "the matrix made by cycle %llu is not valid: %s",
                          (unsigned long long)(net->t + 1), e.text);
        }
    }
    /* Y_t+1 is the slots' outputs, general ones as V-values, dense ones in
     * nxt. The tree is made here when the host asked for Y since the last
     * cycle (it probably will again, and here running out of memory can
     * still leave the network as it was), else when asked for; then the
     * outputs move to nxt in a pass of their own, which may fail. Else they
     * move in the commit's pass, which cannot. */
    vv y = VV_ZERO;
    if (!rc && net->watched) {
        groups_unhold(net);
        for (size_t k = 0; !rc && k < net->nslots; k++) {
            dmm__slot *s = &net->slots[k];
            dmm__out *o = &cw->nxt[k];
            out_move(net->vc, o, s);
            if (s->dense && !(rc = dmm__dense_vv(net->vc, &o->d, &o->v)))
                o->vmade = true;
        }
        if (!rc)
            rc = dmm__gather(net, cw->nneu, cw->neu, cw->nxt, NULL, &y);
        if (rc)
            dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    }
    dmm__fields_end(net); /* fields */
    if (rc) {
        slots_clear(net);
        return rc;
    }
    /* Commit: the outputs move (unless moved above), input neurons pop
     * what they emitted, Y_t's outputs are dropped and the slots freed: one
     * pass, split over the threads. */
    self_hint(net);
    groups_commit(net);
    if (cw->st)
        states_move(net);
    dmm__out *t = cw->cur;
    cw->cur = cw->nxt;
    cw->nxt = t;
    dmm__parallel(net, net->nslots, commit_task, NULL);
    uint8_t *h = cw->held; /* what the groups hold is Y_t's now */
    cw->held = cw->hold;
    cw->hold = h;
    net->nslots = 0;
    cw->out_valid = true;
    dmm__shapes_collect(net->vc, cw);
    vv_free(net->vc, net->y);
    net->y = y;
    net->ylazy = !net->watched;
    net->watched = false;
    /* The new states are in cw->st (commit_one): net->states is made from
     * them when asked for (dmm__states_make). */
    vv_free(net->vc, net->states);
    net->states = VV_ZERO;
    net->stlazy = cw->st_ok = cw->st != NULL;
    memcpy(net->rng, rng, sizeof rng);
    net->t++;
    return 0;
}
