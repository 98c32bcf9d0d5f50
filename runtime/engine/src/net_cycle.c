// SPDX-License-Identifier: MIT
/*
 * The two-stroke cycle (spec dmm.md §2), edits and feeds. A cycle computes
 * every new value beside the old ones and swaps them in only when all of it
 * succeeded, so a failed cycle leaves Y, W, states, queues, rng and t as they
 * were. Between cycles W is always valid (dmm__check_matrix).
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

static int grow_scratch(dmm__scratch *sc, size_t n)
{
    if (n <= sc->cap)
        return 0;
    size_t cap = sc->cap ? sc->cap : 16;
    while (cap < n)
        cap *= 2;
    vv_label *l = realloc(sc->lbuf, cap * sizeof *l);
    if (!l)
        return DMM_E_NOMEM;
    sc->lbuf = l;
    vv *v = realloc(sc->vbuf, cap * sizeof *v);
    if (!v)
        return DMM_E_NOMEM;
    sc->vbuf = v;
    sc->cap = cap;
    return 0;
}

/* vv_free without the call for values that own nothing (most slots of a
 * dense network). */
static inline void vfree(vv_ctx *vc, vv v)
{
    if (v.map)
        vv_free(vc, v);
}

static void slots_clear(dmm_net *net)
{
    for (size_t k = 0; k < net->nslots; k++) {
        vfree(net->vc, net->slots[k].input);
        vfree(net->vc, net->slots[k].output);
        vfree(net->vc, net->slots[k].new_state);
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

/* {type: {name: value}} over the compiled neurons (grouped by type): their
 * current outputs (outs) or, outs NULL, the slots' new states. */
static int gather(dmm_net *net, size_t n, const dmm__neuron *neu,
                  const dmm__out *outs, vv *out)
{
    int rc = grow_scratch(&net->buf, 2 * n);
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

/* The first failure of each worker; the cycle reports the lowest index, the
 * one a single thread would have stopped at. */
typedef struct failure {
    int rc;
    size_t at;
    uint64_t rng[4]; /* the worker's copy of the random state */
    bool redo;       /* some slot of this worker's gave up the dense path */
    dmm_error err;
} failure;

typedef struct cycle_work {
    failure *fail; /* one per worker */
} cycle_work;

/* Each worker records one failure at most: its error is cleared here, once
 * per movement, not per neuron (a dmm_error is over a kilobyte). */
static void work_reset(cycle_work *w, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        w->fail[k].rc = 0;
        w->fail[k].redo = false;
        dmm_error_clear(&w->fail[k].err);
    }
}

static void record(failure *f, int rc, size_t k)
{
    f->rc = rc;
    f->at = k;
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

void dmm__shapes_free(dmm__shapes *sh)
{
    for (size_t b = 0; b < sh->cap; b++)
        for (dmm__shape *s = sh->tab[b], *nx; s; s = nx) {
            nx = s->next;
            free(s);
        }
    free(sh->tab);
    *sh = (dmm__shapes){0};
}

/* borrowed: the interned shape of lab[0..n) (sorted), NULL on no memory. */
static const dmm__shape *shape_intern(dmm__shapes *sh, const vv_label *lab,
                                      uint32_t n)
{
    uint64_t h = shape_hash(lab, n);
    if (sh->cap) {
        for (dmm__shape *s = sh->tab[h & (sh->cap - 1)]; s; s = s->next)
            if (s->hash == h && s->n == n &&
                (n == 0 || memcmp(s->lab, lab, n * sizeof *lab) == 0))
                return s;
    }
    if (sh->count + 1 > sh->cap) {
        size_t cap = sh->cap ? 2 * sh->cap : 64;
        dmm__shape **tab = calloc(cap, sizeof *tab);
        if (!tab)
            return NULL;
        for (size_t b = 0; b < sh->cap; b++)
            for (dmm__shape *s = sh->tab[b], *nx; s; s = nx) {
                nx = s->next;
                s->next = tab[s->hash & (cap - 1)];
                tab[s->hash & (cap - 1)] = s;
            }
        free(sh->tab);
        sh->tab = tab;
        sh->cap = cap;
    }
    dmm__shape *s = malloc(sizeof *s + n * sizeof *lab);
    if (!s)
        return NULL;
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
static void shapes_collect(dmm__compiled *cw)
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
                free(s);
            }
        }
    sh->count = live;
    sh->gc_at = 2 * live + 64;
}

/* p (with room for n entries of size sz, inline when it is the struct's
 * own one-entry room) grown to cap entries, the n kept. */
static void *grow_array(void *p, bool inl, size_t n, size_t cap, size_t sz)
{
    if (!inl)
        return realloc(p, cap * sz);
    void *q = malloc(cap * sz);
    if (q && n)
        memcpy(q, p, n * sz);
    return q;
}

static int dense_grow(dmm__dense *d, uint32_t n, size_t len)
{
    if (n > d->cap) {
        if (d->cap == 0 && n == 1) {
            d->label = &d->label1;
            d->shape = &d->shape1;
            d->x = &d->x1;
            d->cap = 1;
        } else {
            uint32_t cap = d->cap > 1 ? d->cap : 2;
            while (cap < n)
                cap *= 2;
            vv_label *l = grow_array(d->label, d->label == &d->label1, d->cap,
                                     cap, sizeof *l);
            const dmm__shape **s =
                l ? grow_array((void *)d->shape, d->shape == &d->shape1, d->cap,
                               cap, sizeof *s)
                  : NULL;
            const double **x = s ? grow_array((void *)d->x, d->x == &d->x1,
                                              d->cap, cap, sizeof *x)
                                 : NULL;
            if (!x) { /* give back what grew; the old arrays still hold */
                if (s && d->shape == &d->shape1)
                    free((void *)s);
                else if (s)
                    d->shape = s;
                if (l && d->label == &d->label1)
                    free(l);
                else if (l)
                    d->label = l;
                return DMM_E_NOMEM;
            }
            d->label = l;
            d->shape = s;
            d->x = x;
            d->cap = cap;
        }
    }
    if (len > d->bufcap) {
        if (d->bufcap == 0 && len <= 2) {
            d->buf = d->buf1;
            d->bufcap = 2;
            return 0;
        }
        size_t cap = d->bufcap > 2 ? d->bufcap : 4;
        while (cap < len)
            cap *= 2;
        double *b = grow_array(d->buf, d->buf == d->buf1, 0, cap, sizeof *b);
        if (!b)
            return DMM_E_NOMEM;
        d->buf = b;
        d->bufcap = cap;
    }
    return 0;
}

static inline int dense_reserve(dmm__dense *d, uint32_t n, size_t len)
{
    if (n <= d->cap && len <= d->bufcap)
        return 0;
    return dense_grow(d, n, len);
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
    vv_label *lab = malloc(s->n * sizeof *lab);
    vv *kid = malloc(s->n * sizeof *kid);
    if (!lab || !kid) {
        free(lab);
        free(kid);
        return DMM_E_NOMEM;
    }
    size_t m = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (x[i] != 0.0) {
            lab[m] = s->lab[i];
            kid[m++] = vv_number(x[i]);
        }
    int rc = vv_from_pairs(vc, 0.0, m, lab, kid, out);
    free(lab);
    free(kid);
    return rc;
}

/* new: a neuron's dense output as its output map. */
static int dense_vv(vv_ctx *vc, const dmm__dense *d, vv *out)
{
    if (d->n == 0) {
        *out = VV_ZERO;
        return 0;
    }
    vv *kid = calloc(d->n, sizeof *kid);
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
    free(kid);
    return rc;
}

/* A port's value from a V-value v (borrowed from Y_t): a bare number is
 * dense at once; a flat map is converted when a dense row reads it. */
static int pval_set_vv(dmm__compiled *cw, const dmm__port *q, dmm__pval *pv,
                       vv v, dmm__scratch *sc, bool *defer)
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
        assert(cw->shapes.scalar);
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
    int rc = grow_scratch(sc, n);
    if (rc)
        return rc;
    if (n > pv->cap) {
        double *b = realloc(pv->buf, n * sizeof *b);
        if (!b)
            return DMM_E_NOMEM;
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
    const dmm__shape *s = shape_intern(&cw->shapes, sc->lbuf, (uint32_t)n);
    if (!s)
        return DMM_E_NOMEM;
    pv->dense = true;
    pv->shape = s;
    pv->x = pv->buf;
    return 0;
}

static int port_vv(dmm_net *net, uint32_t p);

/* The shape of ports that hold a V-value only (never interned). */
static const dmm__shape not_dense;

static void phot_set(dmm__compiled *cw, size_t p)
{
    const dmm__pval *pv = &cw->pval[p];
    dmm__phot *h = &cw->phot[p];
    h->shape = pv->dense ? pv->shape : &not_dense;
    h->num = !pv->dense || (pv->shape && pv->shape->n) ? NAN
             : pv->shape                               ? pv->x[0]
                                                       : 0.0;
}

/* Ports [lo, hi): their values in Y_t, as V-values too for the ports that
 * general neurons read. Flat maps to convert are left to ports_fill. */
static void ports_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                       void *ud)
{
    failure *f = &((cycle_work *)ud)->fail[worker];
    dmm__compiled *cw = &net->cw;
    dmm__scratch *sc = dmm__scratch_of(net, worker);
    for (size_t p = lo; p < hi; p++) {
        const dmm__port *q = &cw->ports[p];
        dmm__pval *pv = &cw->pval[p];
        if (pv->own)
            vfree(net->vc, pv->v);
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
            continue;
        }
        if (!cw->out_valid) {
            vv_label path[3] = {q->g, q->ng, q->o};
            rc = pval_set_vv(cw, q, pv, vv_get(net->y, path, 3), sc, &f->redo);
        } else if (q->src < 0) {
            rc = pval_set_vv(cw, q, pv, VV_ZERO, sc, &f->redo);
        } else if (!cw->cur[q->src].dense) {
            rc = pval_set_vv(cw, q, pv, vv_child(cw->cur[q->src].v, q->o), sc,
                             &f->redo);
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
        if (rc) {
            record(f, rc, p);
            return;
        }
    }
}

/* Each port's value in Y_t for this cycle, on net->threads threads; the
 * flat maps of general neurons that dense rows read are converted here, on
 * the calling thread (the shapes they intern). */
static int ports_fill(dmm_net *net, cycle_work *work)
{
    dmm__compiled *cw = &net->cw;
    if (!cw->shapes.scalar &&
        !(cw->shapes.scalar = shape_intern(&cw->shapes, NULL, 0)))
        return DMM_E_NOMEM;
    work_reset(work, net->threads);
    dmm__parallel(net, cw->nports, ports_task, work);
    bool conv = false;
    for (unsigned k = 0; k < net->threads; k++) {
        if (work->fail[k].rc)
            return work->fail[k].rc;
        conv |= work->fail[k].redo;
    }
    for (size_t p = 0; conv && p < cw->nports; p++) {
        dmm__pval *pv = &cw->pval[p];
        if (!pv->conv)
            continue;
        pv->conv = false;
        int rc = pval_set_vv(cw, &cw->ports[p], pv, pv->v, &net->s0, NULL);
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
static int neuron_ports_vv(dmm_net *net, size_t k)
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
            int rc = dense_vv(net->vc, &o->d, &o->v);
            if (rc)
                return rc;
            o->vmade = true;
        }
    }
    vv y;
    int rc = gather(net, cw->nneu, cw->neu, cw->cur, &y);
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

/* Non-finite test without a branch per value, so that loops using it
 * vectorize: OR this over the values, and bit 63 is set iff one of them is
 * an infinity or NaN (an exponent of all ones plus one carries into it). */
static inline uint64_t nonfinite_bits(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return (b & UINT64_C(0x7ff0000000000000)) + (UINT64_C(1) << 52);
}

#ifndef NDEBUG
static bool all_finite(const double *x, size_t m)
{
    uint64_t bad = 0;
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
 * the sums (checking every port against that shape).
 */
static int dense_input(dmm_net *net, size_t k)
{
    const dmm__compiled *cw = &net->cw;
    const dmm__neuron *n = &cw->neu[k];
    dmm__dense *d = &cw->din[k];
    const dmm__pval *pval = cw->pval;
    const dmm__phot *phot = cw->phot;
    size_t len = 0;
    if (n->nrows > UINT32_MAX || dense_reserve(d, (uint32_t)n->nrows, 0))
        return DMM_E_NOMEM;
    for (size_t j = 0; j < n->nrows; j++) {
        const dmm__row *r = &n->rows[j];
        const dmm__shape *s = NULL;
        for (uint32_t t = 0; t < r->nterms && !s; t++) {
            s = phot[r->port[t]].shape;
            if (s == &not_dense)
                return GIVE_UP;
        }
        d->shape[j] = s;
        d->label[j] = r->input;
        if (s && !r->one)
            len += dmm__shape_len(s);
    }
    if (dense_reserve(d, (uint32_t)n->nrows, len))
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
        if (r->one) {
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
        if (dense_reserve(o, in->n, len))
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
            assert(all_finite(buf, m)); /* dmm_dense_fn's contract */
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
    if (dense_reserve(o, 1, m))
        return DMM_E_NOMEM;
    o->n = 1;
    o->label[0] = ti->out[0];
    o->shape[0] = s;
    o->x[0] = s ? o->buf : NULL;
    if (s && fn(x, nin, o->buf, m))
        return GIVE_UP;
    assert(!s || all_finite(o->buf, m)); /* dmm_dense_fn's contract */
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
    if (dense_reserve(o, 1, 1))
        return GIVE_UP;
    const dmm_type_info *ti = n->info;
    o->n = 1;
    o->label[0] = ti->desc->inputs ? ti->out[0] : r->input;
    o->shape[0] = cw->shapes.scalar;
    double in = sum; /* sum's address never taken: kept in a register */
    const double *x = &in;
    if (ti->desc->dense(&x, 1, o->buf, 1))
        return GIVE_UP;
    assert(all_finite(o->buf, 1)); /* dmm_dense_fn's contract */
    o->x[0] = o->buf;
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
static int row_value(dmm_net *net, const dmm__row *r, vv *out)
{
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
    vv acc = VV_ZERO;
    for (t = 0; t < r->nterms; t++) {
        int rc = vv_axpy(net->vc, &acc, r->w[t], pv[r->port[t]].v);
        if (rc) {
            vv_free(net->vc, acc);
            return rc;
        }
    }
    *out = acc;
    return 0;
}

/* X[f][nf] for compiled neuron k, into slot k. */
static int neuron_input(dmm_net *net, size_t k, dmm__scratch *sc,
                        dmm_error *err)
{
    const dmm__neuron *n = &net->cw.neu[k];
    dmm__slot *s = &net->slots[k];
    int rc = grow_scratch(sc, n->nrows);
    if (rc)
        return neuron_fail(net, s, rc, dmm_strerror(rc), err);
    for (size_t j = 0; j < n->nrows; j++) {
        sc->lbuf[j] = n->rows[j].input;
        if ((rc = row_value(net, &n->rows[j], &sc->vbuf[j]))) {
            char what[600];
            snprintf(what, sizeof what, "%s in input \"%s\"", dmm_strerror(rc),
                     vv_label_str(net->vc, n->rows[j].input, NULL));
            for (size_t q = 0; q < j; q++)
                vv_free(net->vc, sc->vbuf[q]);
            return neuron_fail(net, s, rc, what, err);
        }
    }
    if ((rc = vv_from_pairs(net->vc, 0, n->nrows, sc->lbuf, sc->vbuf,
                            &s->input)))
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

/* The failure a single thread would have met first, copied to err. */
static int work_failure(const cycle_work *w, unsigned n, dmm_error *err)
{
    const failure *first = NULL;
    for (unsigned k = 0; k < n; k++)
        if (w->fail[k].rc && (!first || w->fail[k].at < first->at))
            first = &w->fail[k];
    if (!first)
        return 0;
    if (err)
        *err = first->err;
    return first->rc;
}

static void down_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                      void *ud)
{
    cycle_work *cw = ud;
    dmm__scratch *sc = dmm__scratch_of(net, worker);
    const dmm__neuron *neu = net->cw.neu;
    for (size_t k = lo; k < hi; k++)
        net->slots[k] = (dmm__slot){.type = neu[k].type,
                                    .name = neu[k].name,
                                    .info = neu[k].info,
                                    .input = VV_ZERO,
                                    .output = VV_ZERO,
                                    .new_state = VV_ZERO};
    for (size_t k = lo; k < hi; k++) {
        dmm__slot *s = &net->slots[k];
        if (neu[k].dense_ok) {
            /* A dense neuron's input depends on Y_{t-1} only, so it fires
             * here, its input still in cache. Any failure (no memory
             * included): the general path, in redo_slots. */
            if (neu[k].scalar1 && !scalar1_fire(net, k))
                s->dense = true;
            else if (dense_input(net, k) || dense_fire(net, k))
                s->redo = cw->fail[worker].redo = true;
            else
                s->dense = true;
            continue;
        }
        int rc = neuron_input(net, k, sc, &cw->fail[worker].err);
        if (rc) {
            record(&cw->fail[worker], rc, k);
            return;
        }
    }
}

/* The index of the first failure so far (n: none). */
static size_t first_failure(const cycle_work *w, unsigned nw, size_t n)
{
    size_t at = n;
    for (unsigned k = 0; k < nw; k++)
        if (w->fail[k].rc && w->fail[k].at < at)
            at = w->fail[k].at;
    return at;
}

static int fire_slot(dmm_net *net, size_t k, uint64_t *rng, dmm_error *err);

/* Slots the dense path gave up on, below the first failure, take the
 * general path here, on the calling thread (their ports need V-values);
 * fire says whether to fire them too (up movement). A failure among them is
 * recorded in worker 0's record when it comes first. */
static void redo_slots(dmm_net *net, cycle_work *work, bool fire, uint64_t *rng)
{
    unsigned nw = net->threads;
    bool any = false;
    for (unsigned k = 0; k < nw; k++) {
        any |= work->fail[k].redo;
        work->fail[k].redo = false;
    }
    if (!any)
        return;
    size_t stop = first_failure(work, nw, net->nslots);
    for (size_t k = 0; k < stop; k++) {
        dmm__slot *s = &net->slots[k];
        if (!s->redo)
            continue;
        s->redo = s->dense = false;
        dmm_error *e = &work->fail[0].err;
        dmm_error mine;
        error_reset(&mine);
        int rc = neuron_ports_vv(net, k);
        if (rc)
            rc = neuron_fail(net, s, rc, dmm_strerror(rc), &mine);
        else if (!(rc = neuron_input(net, k, &net->s0, &mine)) && fire)
            rc = fire_slot(net, k, rng, &mine);
        if (rc) {
            *e = mine;
            record(&work->fail[0], rc, k);
            return;
        }
    }
}

/* Down movement: a slot with its input for every active neuron, plus Self. */
static int down_movement(dmm_net *net, cycle_work *work, dmm_error *err)
{
    int rc = dmm__compiled_sync(net, dmm__w(net));
    if (!rc && net->cw.slow_rows)
        rc = dmm__y_make(net); /* those rows read the whole Y */
    if (rc)
        return dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    const dmm__compiled *cw = &net->cw;
    if (net->slots_cap < cw->nneu) {
        dmm__slot *sl = realloc(net->slots, cw->nneu * sizeof *sl);
        if (!sl)
            return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                                 dmm_strerror(DMM_E_NOMEM));
        net->slots = sl;
        net->slots_cap = cw->nneu;
    }
    if ((rc = ports_fill(net, work)))
        return dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    net->nslots = cw->nneu; /* each worker clears its slots first */
    work_reset(work, net->threads);
    dmm__parallel(net, cw->nneu, down_task, work);
    redo_slots(net, work, false, NULL);
    return work_failure(work, net->threads, err);
}

/* Fire slot k with the random state rng. */
static int fire_slot(dmm_net *net, size_t k, uint64_t *rng, dmm_error *err)
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
        .params = vv_get(net->params, tn, 2),
        .state = vv_get(net->states, tn, 2),
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
    int rc = s->info->desc->fn(&fire);
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

/* Fire the general slots of [lo, hi) with rng, stopping at the first
 * failure (dense ones fired in the down movement). */
static void up_range(dmm_net *net, size_t lo, size_t hi, uint64_t *rng,
                     failure *f)
{
    for (size_t k = lo; k < hi; k++) {
        dmm__slot *s = &net->slots[k];
        if (s->dense)
            continue; /* fired in the down movement */
        int rc = fire_slot(net, k, rng, &f->err);
        if (rc) {
            record(f, rc, k);
            return;
        }
    }
}

static void up_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                    void *ud)
{
    cycle_work *cw = ud;
    up_range(net, lo, hi, cw->fail[worker].rng, &cw->fail[worker]);
}

/*
 * Up movement: fire every slot; rng is the cycle's working copy. On several
 * threads each worker fires with its own copy of rng; if any neuron drew
 * from it, the draws would depend on the split, so the general firings are
 * redone on one thread in label order (neurons that draw are then as
 * deterministic as on one thread, only not parallel; dense firings draw
 * nothing and are kept).
 */
static int up_movement(dmm_net *net, cycle_work *work, uint64_t *rng,
                       dmm_error *err)
{
    unsigned n = net->threads;
    work_reset(work, n);
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
        work_reset(work, n);
        for (size_t k = 0; k < net->nslots; k++) {
            dmm__slot *s = &net->slots[k];
            vv_free(net->vc, s->output);
            vv_free(net->vc, s->new_state);
            s->output = s->new_state = VV_ZERO;
            s->redo = false;
        }
    }
    up_range(net, 0, net->nslots, rng, &work->fail[0]);
    redo_slots(net, work, true, rng);
    return work_failure(work, n, err);
}

/* Slot s's output into o (nxt): moved, o owns it from here. */
static inline void out_move(vv_ctx *vc, dmm__out *o, dmm__slot *s)
{
    vfree(vc, o->v);
    o->vmade = false;
    o->dense = s->dense;
    o->v = s->output;
    s->output = VV_ZERO;
}

/* The commit over slots [lo, hi): cw->cur is Y_t+1 (its outputs moved
 * already when the host watched), cw->nxt Y_t. Each slot touches its own
 * output records and its own input neuron's queue only. */
static void commit_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                        void *ud)
{
    (void)worker;
    (void)ud;
    dmm__compiled *cw = &net->cw;
    vv_ctx *vc = net->vc;
    bool move = !net->watched;
    for (size_t k = lo; k < hi; k++) {
        dmm__slot *s = &net->slots[k];
        if (move)
            out_move(vc, &cw->cur[k], s);
        vfree(vc, cw->nxt[k].v);
        cw->nxt[k].v = VV_ZERO;
        if (s->dense)
            continue; /* it owns nothing, it has no queue */
        dmm__queue *q = s->queue;
        if (q) {
            vv_free(vc, q->items[q->head++]);
            if (q->head == q->len)
                q->head = q->len = 0;
        }
        vfree(vc, s->input);
        vfree(vc, s->output);
        vfree(vc, s->new_state);
    }
}

/* Before the commit: the hint for the next sync (dmm__compiled): when
 * Self is `accum` (output `single` = accum + delta, vv_add sharing every
 * subtree delta does not touch) and its `accum` input is W_{t-1} itself. */
static void self_hint(dmm_net *net)
{
    dmm__compiled *cw = &net->cw;
    dmm__compiled_unhint(cw, net->vc);
    if (!net->self_sums)
        return;
    const dmm_type_info *ti = net->self_info;
    vv in = net->slots[cw->self_k].input;
    vv xa = vv_child(in, ti->in[net->self_accum_in]);
    vv xd = vv_child(in, ti->in[net->self_delta_in]);
    vv w_old = cw->w;
    /* Self's output: moved to nxt already when the host watched Y. */
    vv out =
        net->watched ? cw->nxt[cw->self_k].v : net->slots[cw->self_k].output;
    vv w_new = vv_child(out, net->self[2]);
    if (vv_is_zero(xa) || xa.map != w_old.map || xa.num != w_old.num ||
        vv_is_zero(w_new))
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
    vv states = VV_ZERO;
    if (net->work_n != net->threads) {
        failure *f = realloc(net->work, net->threads * sizeof *f);
        if (!f)
            return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                                 dmm_strerror(DMM_E_NOMEM));
        net->work = f;
        net->work_n = net->threads;
    }
    cycle_work work = {net->work};
    int rc = down_movement(net, &work, err);
    if (!rc)
        rc = up_movement(net, &work, rng, err);
    dmm__compiled *cw = &net->cw;
    if (!rc && cw->nstateful &&
        (rc = gather(net, cw->nneu, cw->neu, NULL, &states)))
        dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    if (!rc) {
        vv w_old = dmm__w(net);
        vv w_new = vv_child(net->slots[cw->self_k].output, net->self[2]);
        if ((w_new.map != w_old.map || w_new.num != w_old.num) &&
            (rc = dmm__check_matrix(net, w_new, w_old, "", err)) && err) {
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
        for (size_t k = 0; !rc && k < net->nslots; k++) {
            dmm__slot *s = &net->slots[k];
            dmm__out *o = &cw->nxt[k];
            out_move(net->vc, o, s);
            if (s->dense && !(rc = dense_vv(net->vc, &o->d, &o->v)))
                o->vmade = true;
        }
        if (!rc)
            rc = gather(net, cw->nneu, cw->neu, cw->nxt, &y);
        if (rc)
            dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    }
    if (rc) {
        vv_free(net->vc, states);
        slots_clear(net);
        return rc;
    }
    /* Commit: the outputs move (unless moved above), input neurons pop
     * what they emitted, Y_t's outputs are dropped and the slots freed: one
     * pass, split over the threads. */
    self_hint(net);
    dmm__out *t = cw->cur;
    cw->cur = cw->nxt;
    cw->nxt = t;
    dmm__parallel(net, net->nslots, commit_task, NULL);
    net->nslots = 0;
    cw->out_valid = true;
    shapes_collect(cw);
    vv_free(net->vc, net->y);
    vv_free(net->vc, net->states);
    net->y = y;
    net->ylazy = !net->watched;
    net->watched = false;
    net->states = states;
    memcpy(net->rng, rng, sizeof rng);
    net->t++;
    return 0;
}

/* ---- edits, feeds, inspection ------------------------------------------- */

int dmm_net_edit(dmm_net *net, vv delta, dmm_error *err)
{
    dmm_error_clear(err);
    vv w;
    int rc = dmm__y_make(net);
    if (!rc)
        rc = vv_add(net->vc, dmm__matrix_of(net, net->y), delta, &w);
    if (rc)
        return dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    vv y = VV_ZERO;
    if (!(rc = dmm__check_matrix(net, w, dmm__matrix_of(net, net->y), "",
                                 err)) &&
        (rc = vv_set(net->vc, net->y, net->self, 3, w, &y)))
        dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    vv_free(net->vc, w);
    if (rc)
        return rc;
    vv_free(net->vc, net->y);
    net->y = y;
    net->cw.out_valid = false; /* Self's output changed: ports read net->y */
    return 0;
}

dmm__queue *dmm__queue_find(const dmm_net *net, vv_label name)
{
    dmm__queue *q;
    HASH_FIND(hh, net->queues, &name, sizeof name, q);
    return q;
}

int dmm__queue_push(dmm_net *net, vv_label name, vv v)
{
    dmm__queue *q = dmm__queue_find(net, name);
    if (!q) {
        if (!(q = calloc(1, sizeof *q))) {
            vv_free(net->vc, v);
            return DMM_E_NOMEM;
        }
        q->name = name;
        HASH_ADD(hh, net->queues, name, sizeof q->name, q);
    }
    if (q->len == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 4;
        vv *items = realloc(q->items, cap * sizeof *items);
        if (!items) {
            vv_free(net->vc, v);
            return DMM_E_NOMEM;
        }
        q->items = items;
        q->cap = cap;
    }
    q->items[q->len++] = v;
    return 0;
}

int dmm_net_feed(dmm_net *net, vv_label name, vv outputs, dmm_error *err)
{
    dmm_error_clear(err);
    int rc = dmm__queue_push(net, name, vv_ref(outputs));
    if (rc)
        return dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    return 0;
}

uint64_t dmm_net_step_count(const dmm_net *net)
{
    return net->t;
}

/* Making Y changes no observable state: only the cache of the tree. */
vv dmm_net_outputs(const dmm_net *net)
{
    dmm_net *m = (dmm_net *)net;
    m->watched = true;
    if (net->ylazy && dmm__y_make(m))
        abort(); /* out of memory making Y: this call cannot report it */
    return net->y;
}

int dmm_net_outputs_build(dmm_net *net, dmm_error *err)
{
    dmm_error_clear(err);
    net->watched = true;
    int rc = dmm__y_make(net);
    if (rc)
        return dmm_error_set(err, rc, "", "making Y_%llu: %s",
                             (unsigned long long)net->t, dmm_strerror(rc));
    return 0;
}

vv dmm_net_matrix(const dmm_net *net)
{
    return dmm__w(net);
}

size_t dmm_net_active_count(const dmm_net *net)
{
    vv w = dmm__w(net);
    size_t n = 0;
    vv_iter it;
    vv_label f;
    vv wf;
    vv_iter_init(&it, w);
    while (vv_iter_next(&it, &f, &wf))
        n += vv_nchildren(wf);
    return n + vv_is_zero(vv_get(w, net->self, 2));
}

size_t dmm_net_weight_count(const dmm_net *net)
{
    vv_stats st;
    vv_measure(dmm__w(net), &st);
    return st.leaves;
}

void dmm_net_self(const dmm_net *net, vv_label *out)
{
    memcpy(out, net->self, sizeof net->self);
}

vv dmm_net_params(const dmm_net *net)
{
    return net->params;
}

vv_ctx *dmm_net_vctx(const dmm_net *net)
{
    return net->vc;
}

const dmm_registry *dmm_net_registry(const dmm_net *net)
{
    return net->reg;
}

size_t dmm_net_queue_len(const dmm_net *net, vv_label name)
{
    dmm__queue *q = dmm__queue_find(net, name);
    return q ? q->len - q->head : 0;
}
