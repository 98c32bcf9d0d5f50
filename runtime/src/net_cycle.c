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

static int grow_bufs(dmm_net *net, size_t n)
{
    if (n <= net->buf_cap)
        return 0;
    size_t cap = net->buf_cap ? net->buf_cap : 16;
    while (cap < n)
        cap *= 2;
    vv_label *l = realloc(net->lbuf, cap * sizeof *l);
    if (!l)
        return DMM_E_NOMEM;
    net->lbuf = l;
    vv *v = realloc(net->vbuf, cap * sizeof *v);
    if (!v)
        return DMM_E_NOMEM;
    net->vbuf = v;
    net->buf_cap = cap;
    return 0;
}

static void slots_clear(dmm_net *net)
{
    for (size_t k = 0; k < net->nslots; k++) {
        vv_free(net->vc, net->slots[k].input);
        vv_free(net->vc, net->slots[k].output);
        vv_free(net->vc, net->slots[k].new_state);
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
    const vv *pv = net->cw.pv;
    double sum = 0;
    uint32_t t = 0;
    for (; t < r->nterms; t++) {
        vv v = pv[r->port[t]];
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
        int rc = vv_axpy(net->vc, &acc, r->w[t], pv[r->port[t]]);
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

/* The first failure of each worker; the cycle reports the lowest index, the
 * one a single thread would have stopped at. */
typedef struct failure {
    int rc;
    size_t at;
    uint64_t rng[4]; /* the worker's copy of the random state */
    dmm_error err;
} failure;

typedef struct cycle_work {
    failure *fail; /* one per worker */
} cycle_work;

static void down_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                      void *ud)
{
    cycle_work *cw = ud;
    dmm__scratch *sc = dmm__scratch_of(net, worker);
    for (size_t k = lo; k < hi; k++) {
        int rc = neuron_input(net, k, sc, &cw->fail[worker].err);
        if (rc) {
            cw->fail[worker].rc = rc;
            cw->fail[worker].at = k;
            return;
        }
    }
}

/* Each worker records one failure at most: its error is cleared here, once
 * per movement, not per neuron (a dmm_error is over a kilobyte). */
static void work_reset(cycle_work *w, unsigned n)
{
    for (unsigned k = 0; k < n; k++) {
        w->fail[k].rc = 0;
        dmm_error_clear(&w->fail[k].err);
    }
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

/* Down movement: a slot with its input for every active neuron, plus Self. */
static int down_movement(dmm_net *net, cycle_work *work, dmm_error *err)
{
    int rc = dmm__compiled_sync(net, dmm__matrix_of(net, net->y));
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
    for (size_t k = 0; k < cw->nneu; k++)
        net->slots[k] = (dmm__slot){.type = cw->neu[k].type,
                                    .name = cw->neu[k].name,
                                    .info = cw->neu[k].info,
                                    .input = VV_ZERO,
                                    .output = VV_ZERO,
                                    .new_state = VV_ZERO};
    net->nslots = cw->nneu;
    dmm__compiled_ports(net);
    work_reset(work, net->threads);
    dmm__parallel(net, cw->nneu, down_task, work);
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

static void up_task(dmm_net *net, unsigned worker, size_t lo, size_t hi,
                    void *ud)
{
    cycle_work *cw = ud;
    for (size_t k = lo; k < hi; k++) {
        int rc = fire_slot(net, k, cw->fail[worker].rng, &cw->fail[worker].err);
        if (rc) {
            cw->fail[worker].rc = rc;
            cw->fail[worker].at = k;
            return;
        }
    }
}

/*
 * Up movement: fire every slot; rng is the cycle's working copy. On several
 * threads each worker fires with its own copy of rng; if any neuron drew
 * from it, the draws would depend on the split, so the up movement is
 * redone on one thread in label order (neurons that draw are then as
 * deterministic as on one thread, only not parallel).
 */
static int up_movement(dmm_net *net, cycle_work *work, uint64_t *rng,
                       dmm_error *err)
{
    unsigned n = net->threads;
    if (n > 1) {
        work_reset(work, n);
        for (unsigned k = 0; k < n; k++)
            memcpy(work->fail[k].rng, rng, sizeof work->fail[k].rng);
        dmm__parallel(net, net->nslots, up_task, work);
        bool drew = false;
        for (unsigned k = 0; k < n; k++)
            drew |= memcmp(work->fail[k].rng, rng, 4 * sizeof *rng) != 0;
        if (!drew)
            return work_failure(work, n, err);
        for (size_t k = 0; k < net->nslots; k++) {
            dmm__slot *s = &net->slots[k];
            vv_free(net->vc, s->output);
            vv_free(net->vc, s->new_state);
            s->output = s->new_state = VV_ZERO;
        }
    }
    for (size_t k = 0; k < net->nslots; k++) {
        int rc = fire_slot(net, k, rng, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* {type: {name: slot value}} from the slots, which are grouped by type.
 * state picks new_state instead of output. */
static int gather(dmm_net *net, bool state, vv *out)
{
    size_t n = net->nslots;
    int rc = grow_bufs(net, 2 * n);
    if (rc)
        return rc;
    vv_label *names = net->lbuf, *types = net->lbuf + n;
    vv *vals = net->vbuf, *tvals = net->vbuf + n;
    size_t ntypes = 0;
    for (size_t k = 0; k < n && !rc;) {
        size_t j = k, m = 0;
        for (; j < n && net->slots[j].type == net->slots[k].type; j++) {
            vv v = state ? net->slots[j].new_state : net->slots[j].output;
            names[m] = net->slots[j].name;
            vals[m++] = vv_ref(v);
        }
        types[ntypes] = net->slots[k].type;
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

int dmm_net_step(dmm_net *net, dmm_error *err)
{
    dmm_error_clear(err);
    uint64_t rng[4];
    memcpy(rng, net->rng, sizeof rng);
    vv y = VV_ZERO, states = VV_ZERO;
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
    if (!rc &&
        ((rc = gather(net, false, &y)) || (rc = gather(net, true, &states))))
        dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    if (!rc) {
        vv w_old = dmm__matrix_of(net, net->y);
        vv w_new = dmm__matrix_of(net, y);
        if ((w_new.map != w_old.map || w_new.num != w_old.num) &&
            (rc = dmm__check_matrix(net, w_new, w_old, "", err)) && err) {
            dmm_error e = *err;
            dmm_error_set(err, rc, e.path,
                          "the matrix made by cycle %llu is not valid: %s",
                          (unsigned long long)(net->t + 1), e.text);
        }
    }
    if (rc) {
        vv_free(net->vc, y);
        vv_free(net->vc, states);
        slots_clear(net);
        return rc;
    }
    /* Commit. */
    for (size_t k = 0; k < net->nslots; k++) {
        dmm__queue *q = net->slots[k].queue;
        if (!q)
            continue;
        vv_free(net->vc, q->items[q->head++]);
        if (q->head == q->len)
            q->head = q->len = 0;
    }
    /* Each neuron's output stays alive in y: the ports of the next cycle
     * read it from there. */
    for (size_t k = 0; k < net->nslots; k++)
        net->cw.yout[k] = net->slots[k].output;
    net->cw.yout_valid = true;
    slots_clear(net);
    vv_free(net->vc, net->y);
    vv_free(net->vc, net->states);
    net->y = y;
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
    int rc = vv_add(net->vc, dmm__matrix_of(net, net->y), delta, &w);
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
    net->cw.yout_valid = false; /* Self's output changed */
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

vv dmm_net_outputs(const dmm_net *net)
{
    return net->y;
}

vv dmm_net_matrix(const dmm_net *net)
{
    return dmm__matrix_of(net, net->y);
}

size_t dmm_net_active_count(const dmm_net *net)
{
    vv w = dmm__matrix_of(net, net->y);
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
    vv_measure(dmm__matrix_of(net, net->y), &st);
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
