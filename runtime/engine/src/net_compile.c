// SPDX-License-Identifier: MIT
/*
 * The compiled matrix (docs/design.md "Where speed comes from"): W turned into
 * a list of active neurons in label order, each with its rows, and each row
 * whose weights all sit at depth 3 (type/name/output) into a list of (port,
 * weight) terms, a port being one output stream of a source neuron. It is kept
 * beside W and patched from the difference between the W it was built from and
 * the new W, found by pointer equality of shared subtrees, so a change of W
 * costs about the neurons it touches, not the size of W.
 */
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

/* Same node (shared through path copying)? */
static bool same(vv a, vv b)
{
    return a.map == b.map && a.num == b.num;
}

/* A neuron's rows and their terms are one block (rows[] first). */
static void neuron_free_rows(vv_ctx *vc, dmm__neuron *n)
{
    dmm__free(vc, n->rows, n->rows_bytes);
    n->rows = NULL;
    n->nrows = 0;
    n->rows_bytes = 0;
}

static void outs_free(dmm__out *o, size_t n, vv_ctx *vc)
{
    for (size_t k = 0; o && k < n; k++) {
        vv_free(vc, o[k].v);
        dmm__dense_free(vc, &o[k].d);
    }
    dmm__free(vc, o, n * sizeof *o);
}

void dmm__compiled_free(dmm__compiled *cw, vv_ctx *vc)
{
    for (size_t k = 0; cw->neu && k < cw->nalloc; k++)
        neuron_free_rows(vc, &cw->neu[k]);
    dmm__free(vc, cw->neu, cw->nalloc * sizeof *cw->neu);
    for (size_t p = 0; p < cw->nports; p++) {
        if (cw->pval[p].own)
            vv_free(vc, cw->pval[p].v);
        dmm__free(vc, cw->pval[p].buf, cw->pval[p].cap * sizeof(double));
    }
    if (cw->ports_cap) {
        dmm__free(vc, cw->ports, cw->ports_cap * sizeof *cw->ports);
        dmm__free(vc, cw->pval, cw->ports_cap * sizeof *cw->pval);
        dmm__free(vc, cw->phot, cw->ports_cap * sizeof *cw->phot);
    }
    dmm__free(vc, cw->hash, cw->hash_cap * sizeof *cw->hash);
    for (size_t g = 0; g < cw->ngrp; g++)
        for (int p = 0; p < 2; p++)
            dmm__free(vc, cw->grp[g].blk[p],
                      cw->grp[g].cap[p] * sizeof(double));
    dmm__free(vc, cw->grp, cw->grp_cap * sizeof *cw->grp);
    dmm__free(vc, cw->gdir, cw->gdir ? cw->nalloc : 0);
    dmm__free(vc, cw->held, cw->held ? cw->nalloc : 0);
    dmm__free(vc, cw->hold, cw->hold ? cw->nalloc : 0);
    dmm__free(vc, cw->pfill, cw->pfill_cap * sizeof *cw->pfill);
    dmm__free(vc, cw->prd, 2 * cw->ports_cap * sizeof *cw->prd);
    outs_free(cw->cur, cw->nalloc, vc);
    outs_free(cw->nxt, cw->nalloc, vc);
    for (size_t k = 0; cw->din && k < cw->nalloc; k++)
        dmm__dense_free(vc, &cw->din[k]);
    dmm__free(vc, cw->din, cw->nalloc * sizeof *cw->din);
    dmm__shapes_free(vc, &cw->shapes);
    dmm__bysrc_free(vc, &cw->bysrc);
    vv_free(vc, cw->par_tree);
    dmm__free(vc, cw->par, cw->nalloc * sizeof *cw->par);
    for (size_t k = 0; cw->st && k < cw->nalloc; k++)
        vv_free(vc, cw->st[k]);
    dmm__free(vc, cw->st, cw->nalloc * sizeof *cw->st);
    for (size_t k = 0; cw->dspare && k < cw->nalloc; k++)
        vv_free(vc, cw->dspare[k]);
    dmm__free(vc, cw->dspare, cw->nalloc * sizeof *cw->dspare);
    dmm__free(vc, cw->dlen, cw->nalloc);
    vv_free(vc, cw->w);
    dmm__compiled_unhint(cw, vc);
    *cw = (dmm__compiled){.w = VV_ZERO};
}

void dmm__compiled_unhint(dmm__compiled *cw, vv_ctx *vc)
{
    vv_free(vc, cw->hint_from);
    vv_free(vc, cw->hint_to);
    vv_free(vc, cw->hint_delta);
    cw->hint_from = cw->hint_to = cw->hint_delta = VV_ZERO;
}

/* ---- ports ---------------------------------------------------------------*/

static size_t port_hash(vv_label g, vv_label ng, vv_label o)
{
    uint64_t h = g * 0x9e3779b97f4a7c15u;
    h = (h ^ ng) * 0xbf58476d1ce4e5b9u;
    h = (h ^ o) * 0x94d049bb133111ebu;
    return (size_t)(h ^ (h >> 29));
}

/* Index of neuron (f, nf) in cw->neu, -1 when not active. */
static int32_t neuron_find(const dmm__compiled *cw, vv_label f, vv_label nf)
{
    size_t lo = 0, hi = cw->nneu;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const dmm__neuron *n = &cw->neu[mid];
        if (n->type < f || (n->type == f && n->name < nf))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < cw->nneu && cw->neu[lo].type == f && cw->neu[lo].name == nf)
        return (int32_t)lo;
    return -1;
}

static int hash_grow(vv_ctx *vc, dmm__compiled *cw)
{
    size_t cap = dmm__cap_for(cw->hash_cap, 2 * cw->hash_cap, 64);
    uint32_t *h = dmm__calloc(vc, cap, sizeof *h);
    if (!h)
        return DMM_E_NOMEM;
    for (size_t p = 0; p < cw->nports; p++) {
        const dmm__port *q = &cw->ports[p];
        size_t i = port_hash(q->g, q->ng, q->o) & (cap - 1);
        while (h[i])
            i = (i + 1) & (cap - 1);
        h[i] = (uint32_t)p + 1;
    }
    dmm__free(vc, cw->hash, cw->hash_cap * sizeof *cw->hash);
    cw->hash = h;
    cw->hash_cap = cap;
    return 0;
}

/* The port of (g, ng, o), added when new. */
static int port_get(vv_ctx *vc, dmm__compiled *cw, vv_label g, vv_label ng,
                    vv_label o, uint32_t *out)
{
    if (2 * (cw->nports + 1) > cw->hash_cap) {
        int rc = hash_grow(vc, cw);
        if (rc)
            return rc;
    }
    size_t i = port_hash(g, ng, o) & (cw->hash_cap - 1);
    for (; cw->hash[i]; i = (i + 1) & (cw->hash_cap - 1)) {
        const dmm__port *q = &cw->ports[cw->hash[i] - 1];
        if (q->g == g && q->ng == ng && q->o == o) {
            *out = cw->hash[i] - 1;
            return 0;
        }
    }
    if (cw->nports == cw->ports_cap) {
        size_t cap = dmm__cap_for(cw->ports_cap, cw->nports + 1, 64);
        void *src[4] = {cw->ports, cw->pval, cw->phot, cw->prd}, *dst[4];
        if (dmm__grow(vc, cw->prd ? 4 : 3, src, dst,
                      (size_t[]){sizeof *cw->ports, sizeof *cw->pval,
                                 sizeof *cw->phot, 2 * sizeof *cw->prd},
                      NULL, cw->ports_cap, cap))
            return DMM_E_NOMEM;
        cw->ports = dst[0];
        cw->pval = dst[1];
        cw->phot = dst[2];
        if (cw->prd)
            cw->prd = dst[3];
        cw->ports_cap = cap;
    }
    if (cw->nports >= UINT32_MAX - 1)
        return DMM_E_LIMIT;
    cw->ports[cw->nports] =
        (dmm__port){g, ng, o, neuron_find(cw, g, ng), false, false};
    cw->hash[i] = (uint32_t)cw->nports + 1;
    *out = (uint32_t)cw->nports++;
    return 0;
}

/* ---- rows ---------------------------------------------------------------- */

/* How many of r->port are ports it reads: its terms, or a deep row's one
 * port (the rest of its port array is the path's labels). */
static uint32_t row_ports(const dmm__row *r)
{
    return r->deep ? 1 : r->nterms;
}

/* Terms of a row whose weights are all at depth 3; false when it has any
 * other shape (then the cycle uses vv_lincomb on the row). */
static bool row_is_flat(vv row, size_t *nterms)
{
    if (row.num != 0)
        return false;
    size_t n = 0;
    vv_iter ig, in, io;
    vv_label g, ng, o;
    vv wg, wn, x;
    vv_iter_init(&ig, row);
    while (vv_iter_next(&ig, &g, &wg)) {
        if (wg.num != 0)
            return false;
        vv_iter_init(&in, wg);
        while (vv_iter_next(&in, &ng, &wn)) {
            if (wn.num != 0)
                return false;
            vv_iter_init(&io, wn);
            while (vv_iter_next(&io, &o, &x)) {
                if (x.map)
                    return false;
                n++;
            }
        }
    }
    *nterms = n;
    return n <= UINT32_MAX;
}

/* The deepest path a deep row (dmm__row.deep) takes below its port. */
enum { DEEP_MAX = 16 };

/* Is row one weight 1 at depth d > 3, a chain with no other scalar (a
 * neuron's own row of W read through Self)? Its labels into path. */
static bool row_is_deep1(vv row, vv_label path[3 + DEEP_MAX], size_t *d)
{
    size_t n = 0;
    vv v = row;
    while (v.map) {
        if (v.num != 0 || vv_nchildren(v) != 1 || n == 3 + DEEP_MAX)
            return false;
        vv_iter it;
        vv c;
        vv_iter_init(&it, v);
        vv_iter_next(&it, &path[n++], &c);
        v = c;
    }
    if (n <= 3 || v.num != 1.0)
        return false;
    *d = n;
    return true;
}

/* Room for a deep row of depth d: its weight, port and the labels below. */
static size_t deep_size(size_t d)
{
    return sizeof(double) + (sizeof(uint32_t) * (1 + (d - 3)) + 7) / 8 * 8;
}

/* Room for a fast row of n terms in its neuron's block: the weights, then
 * the port indices, padded so that the next row's weights stay aligned. */
static size_t terms_size(size_t n)
{
    return n * sizeof(double) + (n * sizeof(uint32_t) + 7) / 8 * 8;
}

/* Row r from row; a fast row of n terms takes its arrays at mem. */
static int row_build(vv_ctx *vc, dmm__compiled *cw, vv_label input, vv row,
                     bool fast, size_t n, char *mem, dmm__row *r)
{
    *r = (dmm__row){.input = input, .row = row};
    if (!fast)
        return 0;
    r->fast = true;
    if (n == 0)
        return 0;
    r->w = (double *)mem;
    r->port = (uint32_t *)(r->w + n);
    vv_iter ig, in, io;
    vv_label g, ng, o;
    vv wg, wn, x;
    size_t k = 0;
    vv_iter_init(&ig, row);
    while (vv_iter_next(&ig, &g, &wg)) {
        vv_iter_init(&in, wg);
        while (vv_iter_next(&in, &ng, &wn)) {
            vv_iter_init(&io, wn);
            while (vv_iter_next(&io, &o, &x)) {
                int rc = port_get(vc, cw, g, ng, o, &r->port[k]);
                if (rc) {
                    *r = (dmm__row){.input = input, .row = row};
                    return rc;
                }
                r->w[k++] = x.num;
            }
        }
    }
    r->nterms = (uint32_t)n;
    r->one = n == 1 && r->w[0] == 1.0;
    return 0;
}

/* Dense form for n? Then mark its ports. */
static void neuron_mark(const dmm_net *net, dmm__compiled *cw, dmm__neuron *n)
{
    const dmm_neuron_type *d = n->info->desc;
    bool ok = d->dense && !d->stateful && !n->info->n_params &&
              n->type != net->input_type &&
              !(n->type == net->self[0] && n->name == net->self[1]) &&
              (!d->inputs || n->info->n_outputs == 1);
    for (size_t j = 0; j < n->nrows; j++) {
        ok &= n->rows[j].fast;
        cw->slow_rows |= !n->rows[j].fast && !n->rows[j].deep;
        cw->deep_rows |= n->rows[j].deep != 0;
    }
    n->dense_ok = ok;
    n->scalar1 = ok && n->nrows == 1 &&
                 (!d->inputs || (n->info->n_inputs == 1 &&
                                 n->rows[0].input == n->info->in[0]));
    /* accum's dense function is its two inputs' sum (single = accum +
     * delta), so with a term each the rows and the sum are one pass. */
    n->sum2 = ok && n->nrows == 2 && n->info->n_inputs == 2 &&
              n->info->n_outputs == 1 && strcmp(d->name, "accum") == 0 &&
              n->rows[0].nterms == 1 && n->rows[1].nterms == 1;
    n->one1 = ok && !d->inputs && n->nrows == 1 && n->rows[0].one;
    if (cw->built && cw->prd) /* a patch: maybe one more reader */
        for (size_t j = 0; j < n->nrows; j++)
            for (uint32_t t = 0; t < row_ports(&n->rows[j]); t++) {
                uint32_t p = n->rows[j].port[t];
                cw->prd[2 * p] = cw->prd[2 * p + 1] = 0;
            }
    for (size_t j = 0; j < n->nrows; j++)
        for (uint32_t t = 0; t < n->rows[j].nterms; t++) {
            dmm__port *q = &cw->ports[n->rows[j].port[t]];
            if (ok)
                q->dreader = true;
            else
                q->greader = true;
        }
}

/* Is input i one that type ti never reads? *k (if not NULL) gets its
 * descriptor index, 32 when it is not among the first 32. */
static bool input_unread(const dmm_type_info *ti, vv_label i, uint32_t *k)
{
    int at = dmm_type_input_index(ti, i);
    if (k)
        *k = at >= 0 && at < 32 ? (uint32_t)at : 32;
    return dmm_type_input_unread(ti, i);
}

/* (Re)build the rows of neuron n from wn = W[type][name], and mark the
 * ports its fast rows read. */
static int neuron_build(const dmm_net *net, dmm__compiled *cw, dmm__neuron *n,
                        vv wn)
{
    int rc = 0;
    cw->rows_gen++;       /* what indexes the rows (dmm__bysrc) is stale */
    cw->pfill_ok = false; /* its ports' readers, its group may change */
    neuron_free_rows(net->vc, n);
    n->dense_ok = n->scalar1 = n->sum2 = n->one1 = false;
    size_t m = vv_nchildren(wn);
    if (m == 0) {
        neuron_mark(net, cw, n);
        return 0;
    }
    vv_iter it;
    vv_label i;
    vv row;
    size_t size = m * sizeof *n->rows, nt, d;
    vv_label path[3 + DEEP_MAX];
    vv_iter_init(&it, wn);
    while (vv_iter_next(&it, &i, &row))
        if (input_unread(n->info, i, NULL))
            continue;
        else if (row_is_flat(row, &nt))
            size += terms_size(nt);
        else if (row_is_deep1(row, path, &d))
            size += deep_size(d);
    if (size > UINT32_MAX)
        return DMM_E_LIMIT; /* about 350 million terms in one neuron */
    char *block = dmm__calloc(net->vc, 1, size);
    if (!block)
        return DMM_E_NOMEM;
    n->rows = (dmm__row *)block;
    n->rows_bytes = (uint32_t)size;
    char *mem = block + m * sizeof *n->rows;
    vv_iter_init(&it, wn);
    while (vv_iter_next(&it, &i, &row)) {
        dmm__row *r = &n->rows[n->nrows];
        uint32_t k;
        if (input_unread(n->info, i, &k)) {
            /* Never computed: no terms, no ports, not a slow row. */
            *r = (dmm__row){
                .input = i, .row = row, .fast = true, .unread = true};
            n->nrows++;
            continue;
        }
        bool fast = row_is_flat(row, &nt);
        if ((rc = row_build(net->vc, cw, i, row, fast, nt, mem, r)))
            return rc;
        if (fast)
            mem += terms_size(nt);
        else if (row_is_deep1(row, path, &d)) {
            /* read through the port of its first three labels */
            r->w = (double *)mem;
            r->port = (uint32_t *)(r->w + 1);
            r->w[0] = 1.0;
            if ((rc = port_get(net->vc, cw, path[0], path[1], path[2],
                               &r->port[0])))
                return rc;
            memcpy(r->port + 1, path + 3, (d - 3) * sizeof *path);
            r->deep = (uint8_t)(d - 3);
            cw->ports[r->port[0]].greader = true; /* as a V-value */
            mem += deep_size(d);
        }
        r->terms = fast && k < 32 && (n->info->terms >> k & 1);
        r->in_k = k;
        n->nrows++;
    }
    neuron_mark(net, cw, n);
    return 0;
}

/* ---- groups (dmm__group) ------------------------------------------------ */

/* Can neurons a and b be members of one group? */
static bool group_alike(const dmm__neuron *a, const dmm__neuron *b)
{
    if (a->info != b->info || a->sum2 != b->sum2 || a->one1 != b->one1)
        return false;
    if (!a->sum2)
        return a->one1;
    const dmm__row *ra = a->rows, *rb = b->rows;
    for (int j = 0; j < 2; j++)
        if (ra[j].input != rb[j].input || ra[j].one != rb[j].one ||
            ra[j].w[0] != rb[j].w[0])
            return false;
    return true;
}

/* Group g's direct input for row j (dmm__group.src), or -1. */
static int64_t group_src(const dmm__compiled *cw, const dmm__group *g, int j)
{
    const dmm__port *q0 = &cw->ports[cw->neu[g->k0].rows[j].port[0]];
    if (q0->src < 0)
        return -1;
    int64_t s = q0->src, n = g->k1 - g->k0;
    const dmm__group *gs = dmm__group_from(cw, (size_t)s);
    if (!gs || gs->k0 > s || s + n > gs->k1)
        return -1;
    for (int64_t i = 0; i < n; i++) {
        const dmm__port *q = &cw->ports[cw->neu[g->k0 + i].rows[j].port[0]];
        if (q->src != s + i || q->o != dmm__member_out(&cw->neu[s + i]))
            return -1;
    }
    return s;
}

/* No group reads directly (the skipped ports need prd). */
static void groups_indirect(dmm__compiled *cw)
{
    for (size_t i = 0; i < cw->ngrp; i++)
        cw->grp[i].src[0] = cw->grp[i].src[1] = -1;
}

/* The groups of a compiled list just built: each run of two or more alike
 * neurons; then their direct inputs, and the ports that only a direct
 * input reads. Out of memory: fewer groups or none direct (the per-neuron
 * path does the rest), never an error. */
static void groups_form(vv_ctx *vc, dmm__compiled *cw)
{
    for (size_t k = 0; k < cw->nneu;) {
        size_t e = k + 1;
        while (e < cw->nneu && group_alike(&cw->neu[k], &cw->neu[e]))
            e++;
        if ((cw->neu[k].sum2 || cw->neu[k].one1) && e - k >= 2 &&
            e <= INT32_MAX) {
            if (cw->ngrp == cw->grp_cap) {
                size_t cap = dmm__cap_for(cw->grp_cap, cw->ngrp + 1, 4);
                dmm__group *g =
                    dmm__grow1(vc, cw->grp, sizeof *g, cw->grp_cap, cap);
                if (!g)
                    break;
                cw->grp = g;
                cw->grp_cap = cap;
            }
            cw->grp[cw->ngrp++] = (dmm__group){.k0 = (uint32_t)k,
                                               .k1 = (uint32_t)e,
                                               .sum2 = cw->neu[k].sum2,
                                               .src = {-1, -1}};
        }
        k = e;
    }
    if (!cw->ngrp)
        return;
    cw->gdir = dmm__calloc(vc, cw->nalloc, 1);
    cw->held = cw->gdir ? dmm__calloc(vc, cw->nalloc, 1) : NULL;
    cw->hold = cw->held ? dmm__calloc(vc, cw->nalloc, 1) : NULL;
    if (!cw->hold) {
        dmm__free(vc, cw->gdir, cw->gdir ? cw->nalloc : 0);
        dmm__free(vc, cw->held, cw->held ? cw->nalloc : 0);
        cw->gdir = cw->held = NULL;
        cw->ngrp = 0;
        return;
    }
    for (size_t i = 0; i < cw->ngrp; i++) {
        dmm__group *g = &cw->grp[i];
        g->src[0] = group_src(cw, g, 0);
        g->src[1] = g->sum2 ? group_src(cw, g, 1) : -1;
    }
    /* A port is skipped when its readers are one or two direct inputs. */
    uint8_t *refs = dmm__calloc(vc, cw->nports ? cw->nports : 1, 1);
    if (!refs) {
        groups_indirect(cw);
        return;
    }
    for (size_t k = 0; k < cw->nneu; k++)
        for (size_t j = 0; j < cw->neu[k].nrows; j++) {
            const dmm__row *r = &cw->neu[k].rows[j];
            for (uint32_t t = 0; t < row_ports(r); t++)
                refs[r->port[t]] += refs[r->port[t]] < 3;
        }
    uint32_t *prd = dmm__calloc(vc, 2 * cw->ports_cap, sizeof *prd);
    if (!prd) {
        dmm__free(vc, refs, cw->nports ? cw->nports : 1);
        groups_indirect(cw);
        return;
    }
    for (size_t i = 0; i < cw->ngrp; i++) {
        const dmm__group *g = &cw->grp[i];
        if (g->src[0] < 0 || (g->sum2 && g->src[1] < 0))
            continue;
        for (uint32_t k = g->k0; k < g->k1; k++)
            for (int j = 0; j < 1 + g->sum2; j++) {
                uint32_t *r = &prd[2 * cw->neu[k].rows[j].port[0]];
                r[r[0] != 0] = k + 1; /* (a third is refused below) */
            }
    }
    for (size_t p = 0; p < cw->nports; p++)
        if (refs[p] != (prd[2 * p] != 0) + (prd[2 * p + 1] != 0))
            prd[2 * p] = prd[2 * p + 1] = 0;
    cw->prd = prd;
    dmm__free(vc, refs, cw->nports ? cw->nports : 1);
}

dmm__group *dmm__group_from(const dmm__compiled *cw, size_t k)
{
    size_t lo = 0, hi = cw->ngrp;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cw->grp[mid].k1 <= k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < cw->ngrp ? &cw->grp[lo] : NULL;
}

/* Neuron k's rows were recompiled: it leaves its group, which splits in
 * two. k gets its output record back when the group held it; the head
 * keeps the blocks (the members' outputs of Y_t may lie there); the tail
 * gets its own, the same sources (the rows of its members did not change)
 * and its part of Y_t (in the head's block, which the head's next cycle
 * does not write: the blocks alternate). No room for the tail: it leaves
 * too, its records given back. The ports of those leaving are filled from
 * the next cycle on (gdir). Between cycles only. */
static void group_leave(vv_ctx *vc, dmm__compiled *cw, size_t k)
{
    dmm__group *g = dmm__group_from(cw, k);
    if (!g || g->k0 > k)
        return;
    uint32_t k0 = g->k0, k1 = g->k1;
    bool whole = g->pwhole; /* the others stay held */
    dmm__held_release(vc, cw, g, k, k + 1);
    g->pwhole = whole;
    cw->hold[k] = 0; /* (out of groups: the down movement leaves it 0) */
    g->k1 = (uint32_t)k;
    cw->gdir[k] = 0;
    if (k + 1 >= k1)
        return;
    size_t at = (size_t)(g - cw->grp) + 1;
    if (cw->ngrp == cw->grp_cap) {
        size_t cap = dmm__cap_for(cw->grp_cap, cw->ngrp + 1, 4);
        dmm__group *ng = dmm__grow1(vc, cw->grp, sizeof *ng, cw->grp_cap, cap);
        if (!ng) {
            dmm__held_release(vc, cw, g, k + 1, k1);
            g->pwhole = whole;
            memset(cw->gdir + k, 0, k1 - k);
            memset(cw->hold + k, 0, k1 - k);
            return;
        }
        cw->grp = ng;
        cw->grp_cap = cap;
    }
    memmove(cw->grp + at + 1, cw->grp + at, (cw->ngrp - at) * sizeof *cw->grp);
    dmm__group *h = &cw->grp[at - 1], *t = &cw->grp[at];
    size_t off = (k + 1 - k0) * h->pm;
    *t = (dmm__group){.k0 = (uint32_t)k + 1,
                      .k1 = k1,
                      .sum2 = h->sum2,
                      .pfull = h->pfull,
                      .pwhole = h->pwhole,
                      .ps = h->ps,
                      .pm = h->pm,
                      .pout = h->pout ? h->pout + off : NULL};
    for (int j = 0; j < 2; j++)
        t->src[j] = h->src[j] < 0 ? -1 : h->src[j] + (int64_t)(k + 1 - k0);
    cw->ngrp++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*
 * Renumber the ports in the order of their source neurons (ports of no
 * source last), which the rows found them in otherwise: the cycle's pass
 * over the ports reads each source's output record, and split over threads
 * as the neurons are, each thread then reads the records its own neurons
 * wrote, in order, instead of any at random from the other core's cache.
 * Only the numbering changes (each row keeps its terms in label order), so
 * results do not. Skipped when out of memory: it is only faster.
 */
static void ports_by_source(vv_ctx *vc, dmm__compiled *cw)
{
    size_t n = cw->nports;
    uint64_t *key = n > 1 ? dmm__alloc(vc, n * sizeof *key) : NULL;
    dmm__port *old = key ? dmm__alloc(vc, n * sizeof *old) : NULL;
    if (!old) {
        dmm__free(vc, key, n * sizeof *key);
        return;
    }
    for (size_t p = 0; p < n; p++) {
        int32_t src = cw->ports[p].src;
        key[p] = (uint64_t)(src >= 0 ? (uint32_t)src : UINT32_MAX) << 32 | p;
    }
    qsort(key, n, sizeof *key, cmp_u64);
    memcpy(old, cw->ports, n * sizeof *old);
    uint32_t *to = (uint32_t *)old; /* reuses old's room below */
    for (size_t q = 0; q < n; q++)
        cw->ports[q] = old[(uint32_t)key[q]];
    for (size_t q = 0; q < n; q++)
        to[(uint32_t)key[q]] = (uint32_t)q;
    for (size_t i = 0; i < cw->hash_cap; i++)
        if (cw->hash[i])
            cw->hash[i] = to[cw->hash[i] - 1] + 1;
    for (size_t k = 0; k < cw->nneu; k++)
        for (size_t j = 0; j < cw->neu[k].nrows; j++) {
            const dmm__row *r = &cw->neu[k].rows[j];
            for (uint32_t t = 0; t < row_ports(r); t++)
                r->port[t] = to[r->port[t]];
        }
    dmm__free(vc, old, n * sizeof *old);
    dmm__free(vc, key, n * sizeof *key);
}

/* Build everything from w (cw empty on entry). */
static int build(const dmm_net *net, dmm__compiled *cw, vv w)
{
    size_t count = 1; /* Self, when it has no rows */
    vv_iter itf, itn;
    vv_label f, nf;
    vv wf, wn;
    vv_iter_init(&itf, w);
    while (vv_iter_next(&itf, &f, &wf))
        count += vv_nchildren(wf);
    cw->nalloc = count;
    cw->neu = dmm__calloc(net->vc, count, sizeof *cw->neu);
    cw->cur = dmm__calloc(net->vc, count, sizeof *cw->cur);
    cw->nxt = dmm__calloc(net->vc, count, sizeof *cw->nxt);
    cw->din = dmm__calloc(net->vc, count, sizeof *cw->din);
    if (!cw->neu || !cw->cur || !cw->nxt || !cw->din)
        return DMM_E_NOMEM;
    bool self_seen = false;
    /* First the neuron list, so ports can find their sources. */
    vv_iter_init(&itf, w);
    while (vv_iter_next(&itf, &f, &wf)) {
        const dmm_type_info *info = dmm_registry_find(net->reg, f);
        dmm_assert(info); /* W is valid between cycles */
        bool self_type = f == net->self[0];
        vv_iter_init(&itn, wf);
        while (vv_iter_next(&itn, &nf, &wn)) {
            if (self_type && !self_seen && nf > net->self[1]) {
                cw->neu[cw->nneu++] = (dmm__neuron){
                    .type = f, .name = net->self[1], .info = info};
                self_seen = true;
            }
            self_seen |= self_type && nf == net->self[1];
            cw->neu[cw->nneu++] =
                (dmm__neuron){.type = f, .name = nf, .info = info};
        }
        if (self_type && !self_seen) {
            cw->neu[cw->nneu++] =
                (dmm__neuron){.type = f, .name = net->self[1], .info = info};
            self_seen = true;
        }
    }
    if (!self_seen) {
        /* Self fires always: its slot goes where label order puts it. */
        size_t at = 0;
        while (at < cw->nneu && cw->neu[at].type < net->self[0])
            at++;
        memmove(cw->neu + at + 1, cw->neu + at,
                (cw->nneu - at) * sizeof *cw->neu);
        cw->neu[at] = (dmm__neuron){
            .type = net->self[0], .name = net->self[1], .info = net->self_info};
        cw->nneu++;
    }
    for (size_t k = 0; k < cw->nneu; k++) {
        const dmm__neuron *n = &cw->neu[k];
        if (n->type == net->self[0] && n->name == net->self[1])
            cw->self_k = k;
        cw->nstateful += n->info->desc->stateful;
        if (!cw->delay_info && dmm_type_is_delay(n->info)) {
            cw->delay_info = n->info;
            cw->delay_ages = dmm_delay_ages(n->info);
        }
    }
    if (cw->nstateful &&
        !(cw->st = dmm__calloc(net->vc, cw->nalloc, sizeof *cw->st)))
        return DMM_E_NOMEM;
    if (cw->delay_info &&
        (!(cw->dspare = dmm__calloc(net->vc, cw->nalloc, sizeof *cw->dspare)) ||
         !(cw->dlen = dmm__calloc(net->vc, cw->nalloc, 1))))
        return DMM_E_NOMEM;
    for (size_t k = 0; k < cw->nneu; k++) {
        vv_label tn[2] = {cw->neu[k].type, cw->neu[k].name};
        int rc = neuron_build(net, cw, &cw->neu[k], vv_get(w, tn, 2));
        if (rc)
            return rc;
    }
    ports_by_source(net->vc, cw); /* before the groups note ports */
    groups_form(net->vc, cw);
    cw->w = vv_ref(w);
    cw->built = true;
    cw->out_valid = false;
    return 0;
}

/*
 * Patch cw from its W to w, walking both in label order and skipping shared
 * subtrees. Returns 1 when the set of active neurons changed (the caller
 * rebuilds), 0 when every changed neuron was recompiled in place.
 */
static int patch(const dmm_net *net, dmm__compiled *cw, vv w)
{
    vv old = cw->w;
    vv_iter io, in;
    vv_label fo = 0, fn = 0;
    vv wo, wn;
    vv_iter_init(&io, old);
    vv_iter_init(&in, w);
    bool ho = vv_iter_next(&io, &fo, &wo), hn = vv_iter_next(&in, &fn, &wn);
    while (ho || hn) {
        if (!ho || !hn || fo != fn)
            return 1;
        if (!same(wo, wn)) {
            vv_iter jo, jn;
            vv_label no = 0, nn = 0;
            vv ro, rn;
            vv_iter_init(&jo, wo);
            vv_iter_init(&jn, wn);
            bool go = vv_iter_next(&jo, &no, &ro),
                 gn = vv_iter_next(&jn, &nn, &rn);
            while (go || gn) {
                if (!go || !gn || no != nn)
                    return 1;
                if (!same(ro, rn)) {
                    int32_t k = neuron_find(cw, fn, nn);
                    dmm_assert(k >= 0);
                    int rc = neuron_build(net, cw, &cw->neu[k], rn);
                    if (rc)
                        return rc;
                    group_leave(net->vc, cw, (size_t)k);
                }
                go = vv_iter_next(&jo, &no, &ro);
                gn = vv_iter_next(&jn, &nn, &rn);
            }
        }
        ho = vv_iter_next(&io, &fo, &wo);
        hn = vv_iter_next(&in, &fn, &wn);
    }
    return 0;
}

/* patch() when W changed only on the paths of delta (the hint): those
 * neurons only, without walking their siblings. 1: use patch() (a neuron
 * appears or goes, or delta is not of the expected form). */
static int patch_delta(const dmm_net *net, dmm__compiled *cw, vv w, vv delta)
{
    vv old = cw->w;
    vv_iter itf, itn;
    vv_label f, nf;
    vv df, dn;
    vv_iter_init(&itf, delta);
    while (vv_iter_next(&itf, &f, &df)) {
        if (df.num != 0)
            return 1;
        vv wo = vv_child(old, f), wn = vv_child(w, f);
        vv_iter_init(&itn, df);
        while (vv_iter_next(&itn, &nf, &dn)) {
            vv ro = vv_child(wo, nf), rn = vv_child(wn, nf);
            if (same(ro, rn))
                continue;
            if (vv_is_zero(ro) || vv_is_zero(rn))
                return 1;
            int32_t k = neuron_find(cw, f, nf);
            if (k < 0)
                return 1;
            int rc = neuron_build(net, cw, &cw->neu[k], rn);
            if (rc)
                return rc;
            group_leave(net->vc, cw, (size_t)k);
        }
    }
    return 0;
}

int dmm__compiled_sync(dmm_net *net, vv w)
{
    dmm__compiled *cw = &net->cw;
    if (cw->built && same(cw->w, w))
        return 0;
    int rc = 1;
    if (cw->built && same(cw->w, cw->hint_from) && same(w, cw->hint_to) &&
        !vv_is_zero(cw->hint_to))
        rc = patch_delta(net, cw, w, cw->hint_delta);
    dmm__compiled_unhint(cw, net->vc);
    if (rc == 1)
        rc = cw->built ? patch(net, cw, w) : 1;
    if (rc == 0) {
        vv_free(net->vc, cw->w);
        cw->w = vv_ref(w);
        return 0;
    }
    /* The outputs of Y_t and the states are indexed by the old list: keep
     * them in net->y and net->states. */
    int mrc = dmm__y_make(net);
    if (!mrc)
        mrc = dmm__states_make(net);
    if (mrc)
        return mrc;
    net->cw_gen++; /* the neurons are indexed anew */
    dmm__compiled_free(cw, net->vc);
    if (rc < 0)
        return rc;
    if ((rc = build(net, cw, w)))
        dmm__compiled_free(cw, net->vc);
    return rc;
}
