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

#include "dmm_rng.h"
#include "net_internal.h"

dmm_net *dmm__net_new(vv_ctx *vc, const dmm_registry *reg)
{
    dmm_net *net = calloc(1, sizeof *net);
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
        free(net);
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
        free(q->items);
        free(q);
    }
    vv_free(net->vc, net->y);
    vv_free(net->vc, net->states);
    vv_free(net->vc, net->params);
    free(net->slots);
    free(net->buf.lbuf);
    free(net->buf.vbuf);
    dmm__compiled_free(&net->cw, net->vc);
    dmm__pool_free(net);
    free(net);
}

int dmm__scratch_grow(dmm__scratch *sc, size_t n)
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
