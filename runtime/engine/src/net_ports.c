// SPDX-License-Identifier: MIT
/*
 * Dense ports and Y: the interned shapes, streams held as arrays, each port's
 * value in Y_{t-1} for the cycle being computed, and Y's tree, made from the
 * neurons' outputs only when someone asks for it (dmm__y_make). The cycle
 * (net_cycle.c) reads ports; it never builds them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

int dmm__gather(dmm_net *net, size_t n, const dmm__neuron *neu,
                const dmm__out *outs, const vv *of, vv *out)
{
    int rc = dmm__scratch_grow(net->vc, &net->buf, 2 * n);
    if (rc)
        return rc;
    vv_label *names = net->buf.lbuf, *types = net->buf.lbuf + n;
    vv *vals = net->buf.vbuf, *tvals = net->buf.vbuf + n;
    size_t ntypes = 0;
    for (size_t k = 0; k < n && !rc;) {
        size_t j = k, m = 0;
        for (; j < n && neu[j].type == neu[k].type; j++) {
            vv v = outs ? outs[j].v : of[j];
            names[m] = neu[j].name;
            vals[m++] = vv_ref(v);
        }
        types[ntypes] = neu[k].type;
        rc = vv_from_pairs(net->vc, 0, m, names, vals, &tvals[ntypes]);
        if (!rc)
            ntypes++;
        k = j;
    }
    if (rc) {
        for (size_t k = 0; k < ntypes; k++)
            vv_free(net->vc, tvals[k]);
        return rc;
    }
    return vv_from_pairs(net->vc, 0, ntypes, types, tvals, out);
}

/* ---- dense ports ----------------------------------------------------------
 *
 * Most streams in a running network are a bare number or a flat map of
 * numbers (`{x: 0.3}`, `{single: {k0: 1, …}}`). Building each as a V-value,
 * every cycle, for every neuron (its input map, its output map, its place in
 * Y's tree) costs far more than the arithmetic. So a port's value is kept in
 * dense form when it can be: a shape (sorted labels, interned per network, so
 * equal shapes are one pointer; the empty shape is a bare number) and an
 * array of doubles. A neuron whose type has a dense form (dmm_neuron_type's
 * `dense`) and whose rows are all fast gets each row as an axpy over arrays
 * when every port in the row is dense with one shape (or zero), and fires on
 * arrays. Anything else — a port holding a deeper V-value, two shapes in one
 * row, a non-finite sum, an error in the dense function — makes that neuron
 * take the general path for this cycle, which gives the same bits (and the
 * exact error): each leaf is summed in term order from zero as vv_lincomb
 * sums it, and a 0.0 in an array stands for an absent leaf (adding w·0
 * changes no partial sum but the sign of a zero, and zeros are dropped when
 * a stream becomes a V-value).
 *
 * Y_t then lives in the neurons' outputs (cw.cur, or their groups' blocks
 * for the members a group holds: cw.held) and the tree net->y is made only
 * when asked for (dmm_net_outputs, save, edit, a row of another shape, a
 * rebuild of the compiled matrix): net->ylazy says it is not made yet.
 */

static uint64_t shape_hash(const vv_label *lab, uint32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15u ^ n;
    for (uint32_t k = 0; k < n; k++)
        h = (h ^ lab[k]) * 0xbf58476d1ce4e5b9u;
    return h ^ (h >> 31);
}

static size_t shape_bytes(uint32_t n)
{
    return sizeof(dmm__shape) + n * sizeof(vv_label);
}

void dmm__shapes_free(vv_ctx *vc, dmm__shapes *sh)
{
    for (size_t b = 0; b < sh->cap; b++)
        for (dmm__shape *s = sh->tab[b], *nx; s; s = nx) {
            nx = s->next;
            dmm__free(vc, s, shape_bytes(s->n));
        }
    dmm__free(vc, sh->tab, sh->cap * sizeof *sh->tab);
    *sh = (dmm__shapes){0};
}

/* borrowed: the interned shape of lab[0..n) (sorted), NULL on no memory. */
static const dmm__shape *shape_intern(vv_ctx *vc, dmm__shapes *sh,
                                      const vv_label *lab, uint32_t n)
{
    uint64_t h = shape_hash(lab, n);
    if (sh->cap) {
        for (dmm__shape *s = sh->tab[h & (sh->cap - 1)]; s; s = s->next)
            if (s->hash == h && s->n == n &&
                (n == 0 || memcmp(s->lab, lab, n * sizeof *lab) == 0))
                return s;
    }
    dmm__shape *s = dmm__alloc(vc, shape_bytes(n));
    if (!s)
        return NULL;
    if (sh->count + 1 > sh->cap) {
        size_t cap = dmm__cap_for(sh->cap, sh->cap + 1, 64);
        dmm__shape **tab = dmm__calloc(vc, cap, sizeof *tab);
        if (!tab) {
            dmm__free(vc, s, shape_bytes(n));
            return NULL;
        }
        for (size_t b = 0; b < sh->cap; b++)
            for (dmm__shape *t = sh->tab[b], *nx; t; t = nx) {
                nx = t->next;
                t->next = tab[t->hash & (cap - 1)];
                tab[t->hash & (cap - 1)] = t;
            }
        dmm__free(vc, sh->tab, sh->cap * sizeof *sh->tab);
        sh->tab = tab;
        sh->cap = cap;
    }
    s->hash = h;
    s->n = n;
    s->mark = false;
    if (n)
        memcpy(s->lab, lab, n * sizeof *lab);
    s->next = sh->tab[h & (sh->cap - 1)];
    sh->tab[h & (sh->cap - 1)] = s;
    sh->count++;
    return s;
}

/* Free the shapes no current output uses, once the table has doubled. */
void dmm__shapes_collect(vv_ctx *vc, dmm__compiled *cw)
{
    dmm__shapes *sh = &cw->shapes;
    if (sh->count <= sh->gc_at)
        return;
    for (size_t k = 0; k < cw->nneu; k++)
        if (cw->cur[k].dense && !(cw->held && cw->held[k]))
            for (uint32_t j = 0; j < cw->cur[k].d.n; j++)
                if (cw->cur[k].d.shape[j])
                    ((dmm__shape *)cw->cur[k].d.shape[j])->mark = true;
    /* the held members' shape (their records, not written, are passed by) */
    for (size_t i = 0; i < cw->ngrp; i++)
        if (cw->grp[i].ps)
            ((dmm__shape *)cw->grp[i].ps)->mark = true;
    size_t live = 0;
    for (size_t b = 0; b < sh->cap; b++)
        for (dmm__shape **pp = &sh->tab[b]; *pp;) {
            dmm__shape *s = *pp;
            if (s->mark || s == sh->scalar) {
                s->mark = false;
                live++;
                pp = &s->next;
            } else {
                *pp = s->next;
                dmm__free(vc, s, shape_bytes(s->n));
            }
        }
    sh->count = live;
    sh->gc_at = 2 * live + 64;
}

void dmm__dense_free(vv_ctx *vc, dmm__dense *d)
{
    if (d->cap > 1) {
        dmm__free(vc, d->label, d->cap * sizeof *d->label);
        dmm__free(vc, (void *)d->shape, d->cap * sizeof *d->shape);
        dmm__free(vc, (void *)d->x, d->cap * sizeof *d->x);
    }
    if (d->buf != d->buf1 && d->bufcap)
        dmm__free(vc, d->buf, d->bufcap * sizeof *d->buf);
    *d = (dmm__dense){0};
}

int dmm__dense_grow(vv_ctx *vc, dmm__dense *d, uint32_t n, size_t len)
{
    if (n > d->cap) {
        if (d->cap == 0 && n == 1) {
            d->label = &d->label1;
            d->shape = &d->shape1;
            d->x = &d->x1;
            d->cap = 1;
        } else {
            size_t cap = dmm__cap_for(d->cap, n, 2);
            void *src[3] = {d->label, (void *)d->shape, (void *)d->x}, *dst[3];
            const void *inl[3] = {&d->label1, &d->shape1, &d->x1};
            if (cap > UINT32_MAX ||
                dmm__grow(vc, 3, src, dst,
                          (size_t[]){sizeof *d->label, sizeof *d->shape,
                                     sizeof *d->x},
                          inl, d->cap, cap))
                return DMM_E_NOMEM;
            d->label = dst[0];
            d->shape = dst[1];
            d->x = dst[2];
            d->cap = (uint32_t)cap;
        }
    }
    if (len > d->bufcap) {
        if (d->bufcap == 0 && len <= 2) {
            d->buf = d->buf1;
            d->bufcap = 2;
            return 0;
        }
        /* The values are rewritten after a grow: none are kept. */
        size_t cap = dmm__cap_for(d->bufcap, len, 4);
        double *dst = dmm__calloc(vc, cap, sizeof *dst);
        if (!dst)
            return DMM_E_NOMEM;
        if (d->buf != d->buf1 && d->bufcap)
            dmm__free(vc, d->buf, d->bufcap * sizeof *d->buf);
        d->buf = dst;
        d->bufcap = cap;
    }
    return 0;
}

void dmm__dense_lend(vv_ctx *vc, dmm__dense *d, double *x)
{
    if (d->cap == 0) { /* as dmm__dense_grow does for one stream */
        d->label = &d->label1;
        d->shape = &d->shape1;
        d->x = &d->x1;
        d->cap = 1;
    }
    if (d->buf != d->buf1 && d->bufcap)
        dmm__free(vc, d->buf, d->bufcap * sizeof *d->buf);
    d->buf = x;
    d->bufcap = 0;
}

void dmm__member_record(vv_ctx *vc, dmm__dense *d, vv_label l,
                        const dmm__shape *s, double *x)
{
    dmm__dense_lend(vc, d, x);
    d->n = 1;
    d->label[0] = l;
    d->shape[0] = s;
    d->x[0] = x;
}

void dmm__held_release(vv_ctx *vc, dmm__compiled *cw, dmm__group *g, size_t a,
                       size_t b)
{
    g->pwhole = false;
    for (size_t k = a; k < b; k++) {
        if (!cw->held[k])
            continue;
        dmm__out *o = &cw->cur[k];
        dmm__vfree(vc, o->v); /* (none: a held record owns no value) */
        o->v = VV_ZERO;
        o->dense = true;
        o->vmade = false;
        dmm__member_record(vc, &o->d, dmm__member_out(&cw->neu[k]), g->ps,
                           g->pout + (k - g->k0) * g->pm);
        cw->held[k] = 0;
    }
}

dmm__out *dmm__out_record(dmm_net *net, size_t k)
{
    dmm__compiled *cw = &net->cw;
    if (cw->held && cw->held[k])
        dmm__held_release(net->vc, cw, dmm__group_from(cw, k), k, k + 1);
    return &cw->cur[k];
}

/* new: a dense stream as a V-value, its zeros dropped. */
static int stream_vv(vv_ctx *vc, const dmm__shape *s, const double *x, vv *out)
{
    if (!s) {
        *out = VV_ZERO;
        return 0;
    }
    if (s->n == 0) {
        *out = x[0] == 0.0 ? VV_ZERO : vv_number(x[0]);
        return 0;
    }
    vv_label *lab = dmm__alloc(vc, s->n * sizeof *lab);
    vv *kid = lab ? dmm__alloc(vc, s->n * sizeof *kid) : NULL;
    if (!kid) {
        dmm__free(vc, lab, s->n * sizeof *lab);
        return DMM_E_NOMEM;
    }
    size_t m = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (x[i] != 0.0) {
            lab[m] = s->lab[i];
            kid[m++] = vv_number(x[i]);
        }
    int rc = vv_from_pairs(vc, 0.0, m, lab, kid, out);
    dmm__free(vc, lab, s->n * sizeof *lab);
    dmm__free(vc, kid, s->n * sizeof *kid);
    return rc;
}

/* new: a neuron's dense output as its output map. */
int dmm__dense_vv(vv_ctx *vc, const dmm__dense *d, vv *out)
{
    if (d->n == 0) {
        *out = VV_ZERO;
        return 0;
    }
    vv *kid = dmm__calloc(vc, d->n, sizeof *kid);
    if (!kid)
        return DMM_E_NOMEM;
    int rc = 0;
    uint32_t j = 0;
    for (; j < d->n && !rc; j++)
        rc = stream_vv(vc, d->shape[j], d->x[j], &kid[j]);
    if (rc) {
        for (uint32_t q = 0; q < j; q++)
            vv_free(vc, kid[q]);
    } else {
        rc = vv_from_pairs(vc, 0.0, d->n, d->label, kid, out);
    }
    dmm__free(vc, kid, d->n * sizeof *kid);
    return rc;
}

/* A port's value from a V-value v (borrowed from Y_t): a bare number is
 * dense at once; a flat map is converted when a dense row reads it. */
static int pval_set_vv(vv_ctx *vc, dmm__compiled *cw, const dmm__port *q,
                       dmm__pval *pv, vv v, dmm__scratch *sc, bool *defer)
{
    pv->v = v;
    pv->vv_ok = true;
    pv->dense = false;
    pv->shape = NULL;
    pv->x = NULL;
    if (vv_is_zero(v)) {
        pv->dense = true;
        return 0;
    }
    if (!v.map) {
        dmm_assert(cw->shapes.scalar);
        pv->dense = true;
        pv->shape = cw->shapes.scalar;
        pv->x = &pv->v.num;
        return 0;
    }
    if (!q->dreader || v.num != 0.0)
        return 0;
    if (defer) { /* interning is for one thread: later, in ports_fill */
        pv->conv = *defer = true;
        return 0;
    }
    size_t n = vv_nchildren(v);
    if (n > UINT32_MAX)
        return 0;
    int rc = dmm__scratch_grow(vc, sc, n);
    if (rc)
        return rc;
    if (n > pv->cap) {
        double *b = dmm__calloc(vc, n, sizeof *b);
        if (!b)
            return DMM_E_NOMEM;
        dmm__free(vc, pv->buf, pv->cap * sizeof *b);
        pv->buf = b;
        pv->cap = n;
    }
    vv_iter it;
    vv_label l;
    vv c;
    size_t k = 0;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &c)) {
        if (c.map)
            return 0; /* not flat: the V-value only */
        sc->lbuf[k] = l;
        pv->buf[k++] = c.num;
    }
    const dmm__shape *s = shape_intern(vc, &cw->shapes, sc->lbuf, (uint32_t)n);
    if (!s)
        return DMM_E_NOMEM;
    pv->dense = true;
    pv->shape = s;
    pv->x = pv->buf;
    return 0;
}

static int port_vv(dmm_net *net, uint32_t p);

/* The shape of ports that hold a V-value only (never interned). */
const dmm__shape dmm__not_dense;

static void phot_set(dmm__compiled *cw, size_t p)
{
    const dmm__pval *pv = &cw->pval[p];
    dmm__phot *h = &cw->phot[p];
    h->shape = pv->dense ? pv->shape : &dmm__not_dense;
    h->num = !pv->dense || (pv->shape && pv->shape->n) ? NAN
             : pv->shape                               ? pv->x[0]
                                                       : 0.0;
}

/*
 * The output of the source neuron of the last port read, held as arrays
 * when it is one node (vv_leaf_view): the ports of one source mostly come
 * one after the other, and a neuron with many outputs (a delay line's ages)
 * often has few of them present, so a port reads its stream with a short
 * scan instead of a map search per port.
 */
typedef struct out_cache {
    int32_t src;
    bool leaf;
    vv_leaf lf;
    vv v;
} out_cache;

/* borrowed: output q->o of q's source (general, its output a V-value). */
static vv out_child(out_cache *c, const dmm__compiled *cw, const dmm__port *q)
{
    if (c->src != q->src) {
        c->src = q->src;
        c->v = cw->cur[q->src].v;
        c->leaf = vv_leaf_view(c->v, &c->lf) && c->lf.n <= 16;
    }
    if (!c->leaf)
        return vv_child(c->v, q->o);
    for (size_t i = 0; i < c->lf.n; i++)
        if (c->lf.label[i] == q->o)
            return vv_leaf_child(&c->lf, i);
    return VV_ZERO;
}

/* Does pv hold zero as pval_set_vv leaves it (and phot_set for it)? */
static bool pval_is_zero(const dmm__pval *pv)
{
    return pv->vv_ok && pv->dense && !pv->shape && !pv->own && !pv->conv &&
           vv_is_zero(pv->v);
}

/* Port p's value in Y_t, as a V-value too when general neurons read it. A
 * flat map to convert is left to ports_fill (*defer set), or converted now
 * when defer is NULL (on the calling thread: it interns). Inlined in both
 * its callers: a call per port costs rnn-1000-10 37 k instructions a cycle.
 * cache: the last source read (out_cache). grouped (a constant: W has
 * groups): a source's output may be held by its group (cw->held). */
static inline __attribute__((always_inline)) int
port_fill(dmm_net *net, size_t p, dmm__scratch *sc, bool *defer,
          out_cache *cache, bool grouped)
{
    dmm__compiled *cw = &net->cw;
    const dmm__port *q = &cw->ports[p];
    dmm__pval *pv = &cw->pval[p];
    if (pv->own)
        dmm__vfree(net->vc, pv->v);
    pv->own = pv->conv = false;
    int rc = 0;
    if (grouped && cw->out_valid && q->src >= 0 && cw->held[q->src]) {
        /* a member of a group that holds its output: its slot of the
         * block, the stream the member's record would have */
        const dmm__group *g = dmm__group_from(cw, (size_t)q->src);
        bool mine = q->o == dmm__member_out(&cw->neu[q->src]);
        const dmm__shape *sh = mine ? g->ps : NULL;
        pv->v = VV_ZERO;
        pv->vv_ok = !sh;
        pv->dense = true;
        pv->shape = sh;
        pv->x = sh ? g->pout + (size_t)(q->src - g->k0) * g->pm : NULL;
        if (q->greader && !pv->vv_ok)
            rc = port_vv(net, (uint32_t)p);
        phot_set(cw, p);
        return rc;
    }
    const dmm__out *so = q->src >= 0 ? &cw->cur[q->src] : NULL;
    if (cw->out_valid && so && so->dense && so->d.n == 1 &&
        so->d.label[0] == q->o && !q->greader) {
        /* The common case: the one stream of a dense neuron. */
        const dmm__shape *sh = so->d.shape[0];
        const double *x = so->d.x[0];
        pv->v = VV_ZERO;
        pv->vv_ok = !sh;
        pv->dense = true;
        pv->shape = sh;
        pv->x = sh ? x : NULL;
        cw->phot[p] = (dmm__phot){sh, !sh ? 0.0 : sh->n ? NAN : x[0]};
        return 0;
    }
    if (!cw->out_valid) {
        vv_label path[3] = {q->g, q->ng, q->o};
        rc =
            pval_set_vv(net->vc, cw, q, pv, vv_get(net->y, path, 3), sc, defer);
    } else if (q->src < 0) {
        rc = pval_set_vv(net->vc, cw, q, pv, VV_ZERO, sc, defer);
    } else if (!cw->cur[q->src].dense) {
        vv v = out_child(cache, cw, q);
        if (vv_is_zero(v) && pval_is_zero(pv))
            return 0; /* zero in Y_t as in Y_{t-1}: nothing to write */
        rc = pval_set_vv(net->vc, cw, q, pv, v, sc, defer);
    } else {
        const dmm__dense *d = &cw->cur[q->src].d;
        size_t a = 0, b = d->n;
        while (a < b) {
            size_t mid = (a + b) / 2;
            if (d->label[mid] < q->o)
                a = mid + 1;
            else
                b = mid;
        }
        pv->v = VV_ZERO;
        pv->vv_ok = pv->dense = true;
        pv->shape = NULL;
        pv->x = NULL;
        if (a < d->n && d->label[a] == q->o && d->shape[a]) {
            pv->vv_ok = false;
            pv->shape = d->shape[a];
            pv->x = d->x[a];
        }
    }
    if (!rc && q->greader && !pv->vv_ok)
        rc = port_vv(net, (uint32_t)p);
    phot_set(cw, p);
    return rc;
}

/* Port p filled (port_fill); a port to convert goes to f's todo list.
 * Non-zero: a failure recorded. */
static inline __attribute__((always_inline)) int
port_at(dmm_net *net, size_t p, dmm__scratch *sc, dmm__failure *f,
        out_cache *cache, bool grouped)
{
    bool conv = false;
    int rc = port_fill(net, p, sc, &conv, cache, grouped);
    if (conv)
        dmm__few_add(&f->todo, p);
    if (rc)
        dmm__fail_record(f, rc, p);
    return rc;
}

/* The ports list[lo..hi) (list NULL: ports lo..hi-1): their values in Y_t
 * (port_fill). A constant grouped in each call: the loop without groups
 * tests nothing more per port. Ports to convert go to f's todo list. */
static inline __attribute__((always_inline)) void
ports_range(dmm_net *net, const uint32_t *list, size_t lo, size_t hi,
            dmm__scratch *sc, dmm__failure *f, bool grouped)
{
    dmm__compiled *cw = &net->cw;
    out_cache cache = {.src = -1};
    /* the todo list holds port numbers: through a list, any of them */
    f->todo.lo = list ? 0 : lo;
    f->todo.hi = list ? cw->nports : hi;
    /* a loop of each kind: one loop choosing its port cost rnn-1000-10 6
     * to 30 instructions a port */
    if (list) {
        for (size_t i = lo; i < hi; i++)
            if (port_at(net, list[i], sc, f, &cache, grouped))
                return;
        return;
    }
    for (size_t p = lo; p < hi; p++)
        if (port_at(net, p, sc, f, &cache, grouped))
            return;
}

/* ---- ports by source -------------------------------------------------------
 *
 * A neuron of a general type with many outputs read (a delay line's ages,
 * an input neuron's sources) often has few of them present in a cycle.
 * Looking each port up in its output costs the number of ports; these are
 * filled from the other side instead: each such source's present outputs
 * are found among its ports (sorted by label), and the ports it filled the
 * cycle before are set back to zero first, so the work is proportional to
 * the outputs that are there. Every other port keeps the per-port way.
 */
enum { BYSRC_MIN = 8 }; /* ports a source needs to be filled this way */

void dmm__bysrc_free(vv_ctx *vc, dmm__bysrc *b)
{
    dmm__free(vc, b->at, (b->nneu + 1) * sizeof *b->at);
    dmm__free(vc, b->nlive, b->nneu * sizeof *b->nlive);
    dmm__free(vc, b->port, b->n * sizeof *b->port);
    dmm__free(vc, b->label, b->n * sizeof *b->label);
    dmm__free(vc, b->live, b->n * sizeof *b->live);
    if (b->other)
        dmm__free(vc, b->other, (b->nports_all - b->n) * sizeof *b->other);
    if (b->srcs)
        dmm__free(vc, b->srcs, b->nsrcs * sizeof *b->srcs);
    if (b->nrows) {
        dmm__free(vc, b->rk, b->nrows * sizeof *b->rk);
        dmm__free(vc, b->rj, b->nrows * sizeof *b->rj);
        dmm__free(vc, b->hat, b->nrows * sizeof *b->hat);
        dmm__free(vc, b->nhit, b->nrows * sizeof *b->nhit);
        dmm__free(vc, b->hits, b->nhits * sizeof *b->hits);
        dmm__free(vc, b->rfirst, b->nneu * sizeof *b->rfirst);
        dmm__free(vc, b->rev_at, (b->nports + 1) * sizeof *b->rev_at);
        dmm__free(vc, b->rev, b->nrev * sizeof *b->rev);
    }
    *b = (dmm__bysrc){0};
}

/* Does row r read sparse ports only (and is it given as terms)? */
static bool row_all_sparse(const dmm__compiled *cw, const dmm__row *r)
{
    if (!r->terms || r->nterms == 0)
        return false;
    for (uint32_t t = 0; t < r->nterms; t++)
        if (!cw->ports[r->port[t]].sparse)
            return false;
    return true;
}

/* The rows given as terms over sparse ports, and for each port the terms
 * that read it (b's port index built, b->nports set). 0 or DMM_E_NOMEM. */
static int bysrc_rows(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    dmm__bysrc *b = &cw->bysrc;
    vv_ctx *vc = net->vc;
    size_t nrows = 0, nhits = 0;
    for (size_t k = 0; k < cw->nneu; k++)
        for (size_t j = 0; j < cw->neu[k].nrows; j++)
            if (row_all_sparse(cw, &cw->neu[k].rows[j])) {
                nrows++;
                nhits += cw->neu[k].rows[j].nterms;
            }
    if (nrows == 0 || nhits > UINT32_MAX)
        return 0;
    b->nrows = nrows;
    b->nhits = b->nrev = nhits;
    b->rk = dmm__calloc(vc, nrows, sizeof *b->rk);
    b->rj = dmm__calloc(vc, nrows, sizeof *b->rj);
    b->hat = dmm__calloc(vc, nrows, sizeof *b->hat);
    b->nhit = dmm__calloc(vc, nrows, sizeof *b->nhit);
    b->hits = dmm__calloc(vc, nhits, sizeof *b->hits);
    b->rfirst = dmm__calloc(vc, b->nneu, sizeof *b->rfirst);
    b->rev_at = dmm__calloc(vc, b->nports + 1, sizeof *b->rev_at);
    b->rev = dmm__calloc(vc, nhits, sizeof *b->rev);
    if (!b->rk || !b->rj || !b->hat || !b->nhit || !b->hits || !b->rfirst ||
        !b->rev_at || !b->rev)
        return DMM_E_NOMEM;
    size_t rid = 0, h = 0;
    for (size_t k = 0; k < cw->nneu; k++) {
        b->rfirst[k] = -1;
        for (size_t j = 0; j < cw->neu[k].nrows; j++) {
            const dmm__row *r = &cw->neu[k].rows[j];
            if (!row_all_sparse(cw, r))
                continue;
            if (b->rfirst[k] < 0)
                b->rfirst[k] = (int32_t)rid;
            b->rk[rid] = (uint32_t)k;
            b->rj[rid] = (uint32_t)j;
            b->hat[rid] = (uint32_t)h;
            h += r->nterms;
            for (uint32_t t = 0; t < r->nterms; t++)
                b->rev_at[r->port[t] + 1]++;
            rid++;
        }
    }
    for (size_t p = 0; p < b->nports; p++)
        b->rev_at[p + 1] += b->rev_at[p];
    /* rev in row order, term order within a row; rev_at[p] moves from
     * p's start to its end while filling */
    for (rid = 0; rid < nrows; rid++) {
        const dmm__row *r = &cw->neu[b->rk[rid]].rows[b->rj[rid]];
        for (uint32_t t = 0; t < r->nterms; t++) {
            uint32_t p = r->port[t];
            b->rev[b->rev_at[p]++] = (dmm__bysrc_rev){(uint32_t)rid, t};
        }
    }
    for (size_t p = b->nports; p > 0; p--) /* back to the starts */
        b->rev_at[p] = b->rev_at[p - 1];
    b->rev_at[0] = 0;
    return 0;
}

/* One port and its label, to sort a source's ports by. */
typedef struct bysrc_ent {
    vv_label o;
    uint32_t p;
} bysrc_ent;

static int bysrc_cmp(const void *a, const void *b)
{
    vv_label x = ((const bysrc_ent *)a)->o, y = ((const bysrc_ent *)b)->o;
    return (x > y) - (x < y);
}

/* Index the ports by source anew (ports were added or the neurons listed
 * anew), every port's sparse flag set; the live lists empty. 0 or
 * DMM_E_NOMEM (then no port is sparse and the index is empty). */
static int bysrc_build(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    dmm__bysrc *b = &cw->bysrc;
    vv_ctx *vc = net->vc;
    dmm__bysrc_free(vc, b);
    cw->pfill_ok = false; /* made from the others' list */
    for (size_t p = 0; p < cw->nports; p++)
        cw->ports[p].sparse = false;
    size_t nn = cw->nneu;
    uint32_t *at = dmm__calloc(vc, nn + 1, sizeof *at);
    uint32_t *nlive = dmm__calloc(vc, nn, sizeof *nlive);
    if (!at || !nlive) {
        dmm__free(vc, at, (nn + 1) * sizeof *at);
        dmm__free(vc, nlive, nn * sizeof *nlive);
        return DMM_E_NOMEM;
    }
    for (size_t p = 0; p < cw->nports; p++) /* counted in nlive first */
        if (cw->ports[p].src >= 0)
            nlive[cw->ports[p].src]++;
    size_t n = 0;
    for (size_t k = 0; k < nn; k++) {
        at[k] = (uint32_t)n;
        if (nlive[k] >= BYSRC_MIN && !cw->neu[k].dense_ok)
            n += nlive[k];
        nlive[k] = 0;
    }
    at[nn] = (uint32_t)n;
    *b = (dmm__bysrc){.nneu = nn, .n = n, .at = at, .nlive = nlive};
    b->port = dmm__calloc(vc, n, sizeof *b->port);
    b->label = dmm__calloc(vc, n, sizeof *b->label);
    b->live = dmm__calloc(vc, n, sizeof *b->live);
    bysrc_ent *e = dmm__calloc(vc, n, sizeof *e);
    if (!b->port || !b->label || !b->live || !e) {
        dmm__free(vc, e, n * sizeof *e);
        dmm__bysrc_free(vc, b);
        return DMM_E_NOMEM;
    }
    for (size_t p = 0; p < cw->nports; p++) {
        int32_t k = cw->ports[p].src;
        if (k < 0 || at[k] == at[k + 1])
            continue;
        e[at[k] + nlive[k]++] = (bysrc_ent){cw->ports[p].o, (uint32_t)p};
        cw->ports[p].sparse = true;
    }
    for (size_t k = 0; k < nn; k++) {
        qsort(e + at[k], at[k + 1] - at[k], sizeof *e, bysrc_cmp);
        nlive[k] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        b->port[i] = e[i].p;
        b->label[i] = e[i].o;
    }
    dmm__free(vc, e, n * sizeof *e);
    b->nports_all = cw->nports;
    for (size_t k = 0; k < nn; k++)
        b->nsrcs += at[k] != at[k + 1];
    if (n == 0) { /* nothing sparse: the per-port way, no memory kept */
        dmm__bysrc_free(vc, b);
        *b = (dmm__bysrc){
            .nneu = nn, .nports = cw->nports, .rows_gen = cw->rows_gen};
        return 0;
    }
    b->other = dmm__calloc(vc, cw->nports - n, sizeof *b->other);
    b->srcs = dmm__calloc(vc, b->nsrcs, sizeof *b->srcs);
    if (!b->other || !b->srcs) {
        dmm__bysrc_free(vc, b);
        for (size_t p = 0; p < cw->nports; p++)
            cw->ports[p].sparse = false;
        return DMM_E_NOMEM;
    }
    for (size_t p = 0; p < cw->nports; p++)
        if (!cw->ports[p].sparse)
            b->other[b->nother++] = (uint32_t)p;
    for (size_t k = 0, x = 0; k < nn; k++)
        if (at[k] != at[k + 1])
            b->srcs[x++] = (uint32_t)k;
    b->nports = cw->nports;
    b->rows_gen = cw->rows_gen;
    int rc = bysrc_rows(net);
    if (rc) {
        dmm__bysrc_free(vc, b);
        for (size_t p = 0; p < cw->nports; p++)
            cw->ports[p].sparse = false;
    }
    return rc;
}

bool dmm__bysrc_hits(const dmm_net *net, size_t k, size_t j, const uint32_t **q,
                     size_t *n)
{
    const dmm__bysrc *b = &net->cw.bysrc;
    if (!b->hits_ok || b->rfirst[k] < 0)
        return false;
    for (size_t rid = (size_t)b->rfirst[k]; rid < b->nrows && b->rk[rid] == k;
         rid++)
        if (b->rj[rid] == j) {
            *q = b->hits + b->hat[rid];
            *n = b->nhit[rid];
            return true;
        }
    return false;
}

/* Each row's non-zero terms from the ports filled (b->on, fill done):
 * every term reading a live port, in term order. */
static void bysrc_hits_fill(dmm__bysrc *b)
{
    for (size_t rid = 0; rid < b->nrows; rid++)
        b->nhit[rid] = 0;
    for (size_t x = 0; x < b->nsrcs; x++) {
        uint32_t k = b->srcs[x], g0 = b->at[k];
        for (uint32_t i = 0; i < b->nlive[k]; i++) {
            uint32_t p = b->live[g0 + i];
            for (uint32_t e = b->rev_at[p]; e < b->rev_at[p + 1]; e++) {
                dmm__bysrc_rev r = b->rev[e];
                uint32_t *h = b->hits + b->hat[r.rid];
                uint32_t m = b->nhit[r.rid]++;
                /* the sources come in label order, as the terms do: an
                 * insertion only to be sure */
                while (m > 0 && h[m - 1] > r.q) {
                    h[m] = h[m - 1];
                    m--;
                }
                h[m] = r.q;
            }
        }
    }
    b->hits_ok = true;
}

/* Port p to zero, as pval_set_vv and phot_set leave it. */
static void pval_zero(dmm_net *net, size_t p)
{
    dmm__pval *pv = &net->cw.pval[p];
    if (pv->own)
        dmm__vfree(net->vc, pv->v);
    pv->v = VV_ZERO;
    pv->own = pv->conv = false;
    pv->vv_ok = pv->dense = true;
    pv->shape = NULL;
    pv->x = NULL;
    net->cw.phot[p] = (dmm__phot){NULL, 0.0};
}

/* Source k's port of output o (its group is port[g0..g1)), -1: none. */
static int64_t bysrc_find(const dmm__bysrc *b, uint32_t g0, uint32_t g1,
                          vv_label o)
{
    uint32_t end = g1;
    while (g0 < g1) {
        uint32_t mid = g0 + (g1 - g0) / 2;
        if (b->label[mid] < o)
            g0 = mid + 1;
        else
            g1 = mid;
    }
    return g0 < end && b->label[g0] == o ? (int64_t)g0 : -1;
}

/* Port b->port[i] of source k to c (not zero), into k's live list. */
static int bysrc_set(dmm_net *net, size_t k, uint32_t i, vv c)
{
    dmm__compiled *cw = &net->cw;
    dmm__bysrc *b = &cw->bysrc;
    uint32_t p = b->port[i];
    const dmm__port *q = &cw->ports[p];
    dmm__pval *pv = &cw->pval[p];
    int rc = pval_set_vv(net->vc, cw, q, pv, c, &net->s0, NULL);
    if (!rc && q->greader && !pv->vv_ok)
        rc = port_vv(net, p);
    phot_set(cw, p);
    b->live[b->at[k] + b->nlive[k]++] = p;
    return rc;
}

/* The sparse ports of source k from its output in Y_t. */
static int bysrc_source(dmm_net *net, size_t k)
{
    dmm__compiled *cw = &net->cw;
    dmm__bysrc *b = &cw->bysrc;
    uint32_t g0 = b->at[k], g1 = b->at[k + 1];
    for (uint32_t i = 0; i < b->nlive[k]; i++)
        pval_zero(net, b->live[g0 + i]);
    b->nlive[k] = 0;
    vv v = cw->cur[k].v;
    if (!v.map)
        return 0; /* a number has no outputs */
    vv_leaf lf;
    int rc = 0;
    if (vv_leaf_view(v, &lf)) {
        for (size_t j = 0; j < lf.n && !rc; j++) {
            int64_t i = bysrc_find(b, g0, g1, lf.label[j]);
            if (i >= 0)
                rc = bysrc_set(net, k, (uint32_t)i, vv_leaf_child(&lf, j));
        }
        return rc;
    }
    if (vv_nchildren(v) <= 2 * (size_t)(g1 - g0)) {
        vv_iter it;
        vv_label l;
        vv c;
        vv_iter_init(&it, v);
        while (!rc && vv_iter_next(&it, &l, &c)) {
            int64_t i = bysrc_find(b, g0, g1, l);
            if (i >= 0)
                rc = bysrc_set(net, k, (uint32_t)i, c);
        }
        return rc;
    }
    for (uint32_t i = g0; i < g1 && !rc; i++) { /* few ports read of many */
        vv c = vv_child(v, b->label[i]);
        if (!vv_is_zero(c))
            rc = bysrc_set(net, k, i, c);
    }
    return rc;
}

/* The sparse ports, on the calling thread (after ports_task). On a
 * failure the index is dropped: the next cycle fills every port. */
static int bysrc_fill(dmm_net *net)
{
    dmm__bysrc *b = &net->cw.bysrc;
    for (size_t x = 0; x < b->nsrcs; x++) {
        int rc = bysrc_source(net, b->srcs[x]);
        if (rc) {
            dmm__bysrc_free(net->vc, b);
            for (size_t p = 0; p < net->cw.nports; p++)
                net->cw.ports[p].sparse = false;
            return rc;
        }
    }
    if (b->nrows)
        bysrc_hits_fill(b);
    return 0;
}

/* The live lists from the ports' values, after ports_task filled them all. */
static void bysrc_relive(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    dmm__bysrc *b = &cw->bysrc;
    for (size_t x = 0; x < b->nsrcs; x++) {
        uint32_t k = b->srcs[x];
        b->nlive[k] = 0;
        for (uint32_t i = b->at[k]; i < b->at[k + 1]; i++)
            if (!pval_is_zero(&cw->pval[b->port[i]]))
                b->live[b->at[k] + b->nlive[k]++] = b->port[i];
    }
}

static void ports_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                       void *ud)
{
    dmm__failure *f = &((dmm__cycle_work *)ud)->fail[worker];
    dmm__scratch *sc = dmm__scratch_of(net, worker);
    const dmm__compiled *cw = &net->cw;
    const uint32_t *other = cw->bysrc.on ? cw->bysrc.other : NULL;
    if (!cw->held)
        ports_range(net, other, lo, hi, sc, f, false);
    else
        ports_range(net, cw->ndirect ? cw->pfill : other, lo, hi, sc, f, true);
}

/* The ports to fill in a cycle with direct groups (cw->pfill): those of
 * this cycle's pass (the others' list when bysrc.on) that are not
 * skipped. 0 or DMM_E_NOMEM. */
static int pfill_make(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    const dmm__bysrc *b = &cw->bysrc;
    size_t n = b->on ? b->nother : cw->nports;
    if (n > cw->pfill_cap) {
        uint32_t *l = dmm__alloc(net->vc, n * sizeof *l);
        if (!l)
            return DMM_E_NOMEM;
        dmm__free(net->vc, cw->pfill, cw->pfill_cap * sizeof *l);
        cw->pfill = l;
        cw->pfill_cap = n;
    }
    cw->npfill = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = b->on ? b->other[i] : (uint32_t)i;
        if (!dmm__port_skipped(cw, p))
            cw->pfill[cw->npfill++] = p;
    }
    cw->pfill_ok = true;
    cw->pfill_on = b->on;
    return 0;
}

int dmm__ports_unskip(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    for (size_t p = 0; p < cw->nports; p++)
        if (dmm__port_skipped(cw, p)) {
            out_cache cache = {.src = -1};
            int rc = port_fill(net, p, &net->s0, NULL, &cache, true);
            if (rc)
                return rc;
        }
    return 0;
}

/* Each port's value in Y_t for this cycle, on net->threads threads; the
 * flat maps of general neurons that dense rows read are converted here, on
 * the calling thread (the shapes they intern). */
int dmm__ports_fill(dmm_net *net, dmm__cycle_work *work)
{
    dmm__compiled *cw = &net->cw;
    if (!cw->shapes.scalar &&
        !(cw->shapes.scalar = shape_intern(net->vc, &cw->shapes, NULL, 0)))
        return DMM_E_NOMEM;
    dmm__bysrc *b = &cw->bysrc;
    /* Rows rebuilt (an edit, a self-edit) matter only to an index that
     * has sparse ports: a network without them (most) does not walk its
     * ports and neurons again for each edit. */
    bool fresh = b->nports != cw->nports || b->nneu != cw->nneu ||
                 (b->n && b->rows_gen != cw->rows_gen);
    b->hits_ok = false;
    int brc = fresh ? bysrc_build(net) : 0;
    if (brc)
        return brc;
    /* A fresh index, or ports read from the tree: every port this time. */
    b->on = cw->out_valid && !fresh && b->n > 0;
    if (cw->ndirect && (!cw->pfill_ok || cw->pfill_on != b->on) &&
        (brc = pfill_make(net)))
        return brc;
    dmm__work_reset(work, net->threads);
    dmm__parallel(net,
                  cw->ndirect ? cw->npfill
                  : b->on     ? b->nother
                              : cw->nports,
                  ports_task, work);
    for (unsigned k = 0; k < net->threads; k++)
        if (work->fail[k].rc)
            return work->fail[k].rc;
    for (dmm__few_iter it = dmm__few_begin(work, net->threads, cw->nports);
         dmm__few_next(&it);) {
        size_t p = it.i;
        dmm__pval *pv = &cw->pval[p];
        if (!pv->conv)
            continue;
        pv->conv = false;
        int rc =
            pval_set_vv(net->vc, cw, &cw->ports[p], pv, pv->v, &net->s0, NULL);
        if (rc)
            return rc;
        phot_set(cw, p);
    }
    if (b->on)
        return bysrc_fill(net);
    if (b->n)
        bysrc_relive(net);
    return 0;
}

/* Port p as a V-value. */
static int port_vv(dmm_net *net, uint32_t p)
{
    dmm__pval *pv = &net->cw.pval[p];
    if (pv->vv_ok)
        return 0;
    int rc = stream_vv(net->vc, pv->shape, pv->x, &pv->v);
    if (rc)
        return rc;
    pv->own = true;
    pv->vv_ok = true;
    return 0;
}

/* Every port the rows of neuron k read, as V-values. */
int dmm__neuron_ports_vv(dmm_net *net, size_t k)
{
    const dmm__neuron *n = &net->cw.neu[k];
    for (size_t j = 0; j < n->nrows; j++)
        for (uint32_t t = 0; t < n->rows[j].nterms; t++) {
            int rc = port_vv(net, n->rows[j].port[t]);
            if (rc)
                return rc;
        }
    return 0;
}

int dmm__y_make(dmm_net *net)
{
    if (!net->ylazy)
        return 0;
    dmm__compiled *cw = &net->cw;
    for (size_t i = 0; cw->held && i < cw->ngrp; i++)
        dmm__held_release(net->vc, cw, &cw->grp[i], cw->grp[i].k0,
                          cw->grp[i].k1);
    for (size_t k = 0; k < cw->nneu; k++) {
        dmm__out *o = &cw->cur[k];
        if (o->dense && !o->vmade) {
            int rc = dmm__dense_vv(net->vc, &o->d, &o->v);
            if (rc)
                return rc;
            o->vmade = true;
        }
    }
    vv y;
    int rc = dmm__gather(net, cw->nneu, cw->neu, cw->cur, NULL, &y);
    if (rc)
        return rc;
    net->y = y;
    net->ylazy = false;
    return 0;
}

int dmm__states_make(dmm_net *net)
{
    if (!net->stlazy)
        return 0;
    const dmm__compiled *cw = &net->cw;
    vv s;
    int rc = dmm__gather(net, cw->nneu, cw->neu, NULL, cw->st, &s);
    if (rc)
        return rc;
    net->states = s;
    net->stlazy = false;
    return 0;
}

vv dmm__w(const dmm_net *net)
{
    if (net->ylazy)
        return vv_child(net->cw.cur[net->cw.self_k].v, net->self[2]);
    return dmm__matrix_of(net, net->y);
}
