// SPDX-License-Identifier: MIT
/*
 * The two-stroke cycle (spec dmm.md §2), edits and feeds. A cycle computes
 * every new value beside the old ones and swaps them in only when all of it
 * succeeded, so a failed cycle leaves Y, W, states, queues, rng and t as they
 * were. Between cycles W is always valid (dmm__check_matrix).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

/*
 * How one cycle runs.
 *
 * Down movement: W is walked in label-id order (type, name, input); each row
 * gives X[f][nf][i] = lincomb(row, Y_{t-1}), and the inputs of one neuron are
 * assembled into X[f][nf]. Each neuron met this way is active and gets a slot.
 * Self gets a slot even without rows. Terms are summed in label-id order, so
 * the result depends only on the label table, which a state file preserves.
 *
 * Up movement: each slot fires its type's function with X[f][nf], its
 * parameters, its state and, for `input` neurons, the head of its queue
 * (peeked, popped only at commit). Y_t is gathered from the slots' outputs:
 * inactive neurons have no slot and so vanish from Y_t. Self's output in Y_t
 * is W_t; when it differs from W_{t-1} it is checked before the commit.
 *
 * The compiled form of W (DESIGN-NOTES.md) goes in down_movement: per active
 * input a list of (source slot, weight) patched from Self's delta, instead of
 * walking W's six levels every cycle.
 */

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

/* A new zeroed slot at index at (shifting the rest), or NULL on OOM. */
static dmm__slot *slot_insert(dmm_net *net, size_t at)
{
    if (net->nslots == net->slots_cap) {
        size_t cap = net->slots_cap ? 2 * net->slots_cap : 16;
        dmm__slot *s = realloc(net->slots, cap * sizeof *s);
        if (!s)
            return NULL;
        net->slots = s;
        net->slots_cap = cap;
    }
    memmove(net->slots + at + 1, net->slots + at,
            (net->nslots - at) * sizeof *net->slots);
    net->nslots++;
    dmm__slot *s = &net->slots[at];
    *s = (dmm__slot){.input = VV_ZERO, .output = VV_ZERO, .new_state = VV_ZERO};
    return s;
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

/* X[f][nf] for one neuron whose rows are wn. */
static int neuron_input(dmm_net *net, vv wn, dmm__slot *s, dmm_error *err)
{
    size_t n = vv_nchildren(wn);
    int rc = grow_bufs(net, n);
    if (rc)
        return neuron_fail(net, s, rc, dmm_strerror(rc), err);
    vv_iter it;
    vv row;
    size_t k = 0;
    vv_iter_init(&it, wn);
    while (vv_iter_next(&it, &net->lbuf[k], &row)) {
        if ((rc = vv_lincomb(net->vc, row, net->y, &net->vbuf[k]))) {
            char what[600];
            snprintf(what, sizeof what, "%s in input \"%s\"", dmm_strerror(rc),
                     vv_label_str(net->vc, net->lbuf[k], NULL));
            for (size_t j = 0; j < k; j++)
                vv_free(net->vc, net->vbuf[j]);
            return neuron_fail(net, s, rc, what, err);
        }
        k++;
    }
    assert(k == n);
    if ((rc = vv_from_pairs(net->vc, 0, n, net->lbuf, net->vbuf, &s->input)))
        return neuron_fail(net, s, rc, dmm_strerror(rc), err);
    return 0;
}

/* Down movement: a slot with its input for every active neuron, plus Self. */
static int down_movement(dmm_net *net, dmm_error *err)
{
    vv w = dmm__matrix_of(net, net->y);
    bool self_seen = false;
    vv_iter itf, itn;
    vv_label f, nf;
    vv wf, wn;
    vv_iter_init(&itf, w);
    while (vv_iter_next(&itf, &f, &wf)) {
        const dmm_type_info *info = dmm_registry_find(net->reg, f);
        assert(info); /* W is valid between cycles */
        vv_iter_init(&itn, wf);
        while (vv_iter_next(&itn, &nf, &wn)) {
            dmm__slot *s = slot_insert(net, net->nslots);
            if (!s)
                return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                                     dmm_strerror(DMM_E_NOMEM));
            s->type = f;
            s->name = nf;
            s->info = info;
            self_seen |= f == net->self[0] && nf == net->self[1];
            int rc = neuron_input(net, wn, s, err);
            if (rc)
                return rc;
        }
    }
    if (!self_seen) {
        /* Self fires always: its slot goes where label order puts it. */
        size_t at = 0;
        while (at < net->nslots && (net->slots[at].type < net->self[0] ||
                                    (net->slots[at].type == net->self[0] &&
                                     net->slots[at].name < net->self[1])))
            at++;
        dmm__slot *s = slot_insert(net, at);
        if (!s)
            return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                                 dmm_strerror(DMM_E_NOMEM));
        s->type = net->self[0];
        s->name = net->self[1];
        s->info = net->self_info;
    }
    return 0;
}

/* Up movement: fire every slot; rng is the cycle's working copy. */
static int up_movement(dmm_net *net, uint64_t *rng, dmm_error *err)
{
    for (size_t k = 0; k < net->nslots; k++) {
        dmm__slot *s = &net->slots[k];
        vv_label tn[2] = {s->type, s->name};
        dmm_error ferr;
        dmm_error_clear(&ferr);
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
            return neuron_fail(
                net, s, rc, ferr.text[0] ? ferr.text : dmm_strerror(rc), err);
        }
        s->output = fire.output;
        if (s->info->desc->stateful)
            s->new_state = fire.new_state;
        else
            vv_free(net->vc, fire.new_state);
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
    int rc = down_movement(net, err);
    if (!rc)
        rc = up_movement(net, rng, err);
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
