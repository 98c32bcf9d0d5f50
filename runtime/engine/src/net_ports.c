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
                const dmm__out *outs, vv *out)
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
            vv v = outs ? outs[j].v : net->slots[j].new_state;
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
 * Y_t then lives in the neurons' outputs (cw.cur) and the tree net->y is made
 * only when asked for (dmm_net_outputs, save, edit, a row of another shape,
 * a rebuild of the compiled matrix): net->ylazy says it is not made yet.
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
        if (cw->cur[k].dense)
            for (uint32_t j = 0; j < cw->cur[k].d.n; j++)
                if (cw->cur[k].d.shape[j])
                    ((dmm__shape *)cw->cur[k].d.shape[j])->mark = true;
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

/* Port p's value in Y_t, as a V-value too when general neurons read it. A
 * flat map to convert is left to ports_fill (*defer set), or converted now
 * when defer is NULL (on the calling thread: it interns). Inlined in both
 * its callers: a call per port costs rnn-1000-10 37 k instructions a cycle. */
static inline __attribute__((always_inline)) int
port_fill(dmm_net *net, size_t p, dmm__scratch *sc, bool *defer)
{
    dmm__compiled *cw = &net->cw;
    const dmm__port *q = &cw->ports[p];
    dmm__pval *pv = &cw->pval[p];
    if (pv->own)
        dmm__vfree(net->vc, pv->v);
    pv->own = pv->conv = false;
    int rc = 0;
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
        rc = pval_set_vv(net->vc, cw, q, pv, vv_child(cw->cur[q->src].v, q->o),
                         sc, defer);
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

/* Ports [lo, hi): their values in Y_t (port_fill), but, when skip, those
 * that only direct groups read (dmm__group). A constant skip in each call:
 * the loop without groups tests nothing more per port. */
static inline __attribute__((always_inline)) void
ports_range(dmm_net *net, size_t lo, size_t hi, dmm__scratch *sc,
            dmm__failure *f, bool skip)
{
    dmm__compiled *cw = &net->cw;
    for (size_t p = lo; p < hi; p++) {
        if (skip && dmm__port_skipped(cw, p))
            continue;
        int rc = port_fill(net, p, sc, &f->redo);
        if (rc) {
            dmm__fail_record(f, rc, p);
            return;
        }
    }
}

static void ports_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                       void *ud)
{
    dmm__failure *f = &((dmm__cycle_work *)ud)->fail[worker];
    dmm__scratch *sc = dmm__scratch_of(net, worker);
    if (net->cw.ndirect)
        ports_range(net, lo, hi, sc, f, true);
    else
        ports_range(net, lo, hi, sc, f, false);
}

int dmm__ports_unskip(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    for (size_t p = 0; p < cw->nports; p++)
        if (dmm__port_skipped(cw, p)) {
            int rc = port_fill(net, p, &net->s0, NULL);
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
    dmm__work_reset(work, net->threads);
    dmm__parallel(net, cw->nports, ports_task, work);
    bool conv = false;
    for (unsigned k = 0; k < net->threads; k++) {
        if (work->fail[k].rc)
            return work->fail[k].rc;
        conv |= work->fail[k].redo;
    }
    if (!conv)
        return 0;
    /* (a pointer walk: the index form cost an instruction a port more) */
    for (dmm__pval *pv = cw->pval, *end = pv + cw->nports; pv < end; pv++) {
        if (!pv->conv)
            continue;
        size_t p = (size_t)(pv - cw->pval);
        pv->conv = false;
        int rc =
            pval_set_vv(net->vc, cw, &cw->ports[p], pv, pv->v, &net->s0, NULL);
        if (rc)
            return rc;
        phot_set(cw, p);
    }
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
    int rc = dmm__gather(net, cw->nneu, cw->neu, cw->cur, &y);
    if (rc)
        return rc;
    net->y = y;
    net->ylazy = false;
    return 0;
}

vv dmm__w(const dmm_net *net)
{
    if (net->ylazy)
        return vv_child(net->cw.cur[net->cw.self_k].v, net->self[2]);
    return dmm__matrix_of(net, net->y);
}
