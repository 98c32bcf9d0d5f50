// SPDX-License-Identifier: MIT
/*
 * The network record (struct dmm_net): made, freed, edited and fed here, and
 * read through the accessors of dmm.h. Its parts have owners of their own:
 * the compiled matrix (net_compile.c), dense ports and Y (net_ports.c), the
 * cycle's slots and failure records (net_cycle.c), the workers
 * (net_threads.c).
 */
#include <stdlib.h>
#include <string.h>

/* uthash (the input queues): out of memory sets `oom` instead of exit(). */
#define HASH_NONFATAL_OOM        1
#define uthash_nonfatal_oom(obj) (oom = true)

#include "dmm_rng.h"
#include "net_internal.h"

/* ... and its tables go through the context like everything else here
 * (every use of the table macros has `net` in scope). */
#undef uthash_malloc
#undef uthash_free
#define uthash_malloc(sz)    dmm__alloc(net->vc, sz)
#define uthash_free(ptr, sz) dmm__free(net->vc, ptr, sz)

dmm_net *dmm__net_new(vv_ctx *vc, const dmm_registry *reg)
{
    dmm_net *net = dmm__calloc(vc, 1, sizeof *net);
    if (!net)
        return NULL;
    net->vc = vc;
    net->reg = reg;
    net->y = VV_ZERO;
    net->states = VV_ZERO;
    net->params = VV_ZERO;
    net->cw.w = VV_ZERO;
    net->threads = 1;
    if (vv_intern_cstr(vc, "accum", &net->self[0]) ||
        vv_intern_cstr(vc, "self", &net->self[1]) ||
        vv_intern_cstr(vc, "single", &net->self[2]) ||
        vv_intern_cstr(vc, "input", &net->input_type)) {
        dmm__free(vc, net, sizeof *net);
        return NULL;
    }
    dmm__self_resolve(net);
    dmm_rng_seed(net->rng, 0);
    return net;
}

static bool label_is(const dmm_net *net, vv_label l, const char *s)
{
    return strcmp(vv_label_str(net->vc, l, NULL), s) == 0;
}

bool dmm__self_resolve(dmm_net *net)
{
    const dmm_type_info *ti = dmm_registry_find(net->reg, net->self[0]);
    net->self_info = ti;
    net->self_sums = false;
    if (!ti || strcmp(ti->desc->name, "accum") != 0 || ti->n_inputs != 2 ||
        !label_is(net, net->self[2], "single"))
        return ti != NULL;
    bool accum = false, delta = false;
    for (size_t q = 0; q < 2; q++) {
        if (label_is(net, ti->in[q], "accum"))
            accum = true, net->self_accum_in = q;
        else if (label_is(net, ti->in[q], "delta"))
            delta = true, net->self_delta_in = q;
    }
    net->self_sums = accum && delta;
    return true;
}

void dmm_net_free(dmm_net *net)
{
    if (!net)
        return;
    dmm__queue *q, *tmp;
    HASH_ITER(hh, net->queues, q, tmp)
    {
        HASH_DEL(net->queues, q);
        for (size_t k = q->head; k < q->len; k++)
            vv_free(net->vc, q->items[k]);
        dmm__free(net->vc, q->items, q->cap * sizeof *q->items);
        dmm__free(net->vc, q, sizeof *q);
    }
    vv_free(net->vc, net->y);
    vv_free(net->vc, net->states);
    vv_free(net->vc, net->params);
    dmm__free(net->vc, net->slots, net->slots_cap * sizeof *net->slots);
    dmm__scratch_free(net->vc, &net->buf);
    dmm__compiled_free(&net->cw, net->vc);
    dmm__pool_free(net);
    dmm__fields_free(net); /* fields */
    dmm__free(net->vc, net, sizeof *net);
}

/* ---- memory ---------------------------------------------------------------*/

void *dmm__calloc(vv_ctx *vc, size_t n, size_t sz)
{
    if (sz && n > SIZE_MAX / sz)
        return NULL;
    void *p = dmm__alloc(vc, n * sz);
    if (p)
        memset(p, 0, n * sz);
    return p;
}

size_t dmm__cap_for(size_t cap, size_t n, size_t min)
{
    if (cap < min)
        cap = min;
    while (cap < n && cap <= SIZE_MAX / 2)
        cap *= 2;
    return cap < n ? n : cap;
}

int dmm__grow(vv_ctx *vc, size_t k, void *const src[], void *dst[],
              const size_t sz[], const void *const inl[], size_t old,
              size_t cap)
{
    dmm_assert(old <= cap);
    for (size_t j = 0; j < k; j++) {
        dst[j] = sz[j] && cap > SIZE_MAX / sz[j] ? NULL
                                                 : dmm__alloc(vc, cap * sz[j]);
        if (!dst[j]) {
            while (j--)
                dmm__free(vc, dst[j], cap * sz[j]);
            return DMM_E_NOMEM;
        }
    }
    for (size_t j = 0; j < k; j++) {
        if (old)
            memcpy(dst[j], src[j], old * sz[j]);
        memset((char *)dst[j] + old * sz[j], 0, (cap - old) * sz[j]);
        if (!inl || src[j] != inl[j])
            dmm__free(vc, src[j], old * sz[j]);
    }
    return 0;
}

int dmm__scratch_grow(vv_ctx *vc, dmm__scratch *sc, size_t n)
{
    if (n <= sc->cap)
        return 0;
    size_t cap = dmm__cap_for(sc->cap, n, 16);
    void *src[2] = {sc->lbuf, sc->vbuf}, *dst[2];
    if (dmm__grow(vc, 2, src, dst,
                  (size_t[]){sizeof *sc->lbuf, sizeof *sc->vbuf}, NULL, sc->cap,
                  cap))
        return DMM_E_NOMEM;
    sc->lbuf = dst[0];
    sc->vbuf = dst[1];
    sc->cap = cap;
    return 0;
}

int dmm__scratch_terms(vv_ctx *vc, dmm__scratch *sc, size_t n)
{
    if (n <= sc->tcap)
        return 0;
    size_t cap = dmm__cap_for(sc->tcap, n, 16);
    void *src[2] = {sc->wbuf, sc->tbuf}, *dst[2];
    if (dmm__grow(vc, 2, src, dst,
                  (size_t[]){sizeof *sc->wbuf, sizeof *sc->tbuf}, NULL,
                  sc->tcap, cap))
        return DMM_E_NOMEM;
    sc->wbuf = dst[0];
    sc->tbuf = dst[1];
    sc->tcap = cap;
    return 0;
}

void dmm__scratch_free(vv_ctx *vc, dmm__scratch *sc)
{
    if (sc->cap) {
        dmm__free(vc, sc->lbuf, sc->cap * sizeof *sc->lbuf);
        dmm__free(vc, sc->vbuf, sc->cap * sizeof *sc->vbuf);
    }
    if (sc->tcap) {
        dmm__free(vc, sc->wbuf, sc->tcap * sizeof *sc->wbuf);
        dmm__free(vc, sc->tbuf, sc->tcap * sizeof *sc->tbuf);
    }
    *sc = (dmm__scratch){0};
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
    if (!(rc = dmm__check_edit(net, w, dmm__matrix_of(net, net->y), err)) &&
        !(rc = net->fields ? dmm__fields_check_w(net, w, err)
                           : 0) && /* fields */
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
    dmm__queue *q = dmm__queue_find(net, name), *fresh = NULL;
    if (!q && !(q = fresh = dmm__calloc(net->vc, 1, sizeof *q))) {
        vv_free(net->vc, v);
        return DMM_E_NOMEM;
    }
    if (q->len == q->cap && q->head > 0) { /* reuse the popped room */
        memmove(q->items, q->items + q->head,
                (q->len - q->head) * sizeof *q->items);
        q->len -= q->head;
        q->head = 0;
    }
    if (q->len == q->cap) {
        size_t cap = dmm__cap_for(q->cap, q->len + 1, 4);
        vv *items = dmm__grow1(net->vc, q->items, sizeof *items, q->cap, cap);
        if (!items) {
            dmm__free(net->vc, fresh, sizeof *fresh);
            vv_free(net->vc, v);
            return DMM_E_NOMEM;
        }
        q->items = items;
        q->cap = cap;
    }
    if (fresh) {
        bool oom = false;
        fresh->name = name;
        HASH_ADD(hh, net->queues, name, sizeof fresh->name, fresh);
        if (oom) {
            dmm__free(net->vc, fresh->items, fresh->cap * sizeof *fresh->items);
            dmm__free(net->vc, fresh, sizeof *fresh);
            vv_free(net->vc, v);
            return DMM_E_NOMEM;
        }
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
