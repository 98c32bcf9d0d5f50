// SPDX-License-Identifier: MIT
/*
 * Internals of the engine, private to runtime/engine/src: the network record
 * and its parts, each with one owning file (named beside each declaration).
 * Invariant: W (Self's output) always passes dmm__check_matrix, so the cycle
 * can resolve every type and input without failing.
 */
#ifndef DMM_NET_INTERNAL_H
#define DMM_NET_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uthash.h>

#include "dmm.h"
#include "net_hooks.h"

/*
 * Memory (net.c). Every byte the engine takes goes through its context's
 * allocator (vv_ctx_realloc), so it is counted in vv_ctx_bytes and fails on
 * demand in the tests like a value's; a failure is DMM_E_NOMEM with the
 * network as it was. A free names the size that was allocated. Workers
 * allocate too (their scratch, dense buffers), through the same allocator,
 * which must then be thread-safe (vv_options.alloc).
 */
static inline void *dmm__alloc(vv_ctx *vc, size_t n)
{
    return vv_ctx_realloc(vc, NULL, 0, n ? n : 1);
}
/* (Zero bytes are allocated and freed as one.) n entries of sz bytes, zeroed;
 * NULL when out of memory or n·sz overflows. */
void *dmm__calloc(vv_ctx *vc, size_t n, size_t sz);
static inline void dmm__free(vv_ctx *vc, void *p, size_t n)
{
    if (p)
        vv_ctx_realloc(vc, p, n ? n : 1, 0);
}
/* The capacity after growing cap to hold n: doubled, from min when below. */
size_t dmm__cap_for(size_t cap, size_t n, size_t min);
/*
 * The one way the engine grows an array: k parallel arrays src[j], each of
 * old entries of sz[j] bytes, sharing one capacity, are moved to new blocks
 * of cap entries (returned in dst[j]) with their entries kept and the rest
 * zeroed; src[j] is freed unless it is inl[j] (room inside the owning
 * record; inl may be NULL). All or nothing: DMM_E_NOMEM frees nothing and
 * leaves every src[j] as it was.
 */
int dmm__grow(vv_ctx *vc, size_t k, void *const src[], void *dst[],
              const size_t sz[], const void *const inl[], size_t old,
              size_t cap);
/* One array: the new block, or NULL (p kept) when out of memory. */
static inline void *dmm__grow1(vv_ctx *vc, void *p, size_t sz, size_t old,
                               size_t cap)
{
    void *q;
    return dmm__grow(vc, 1, &p, &q, &sz, NULL, old, cap) ? NULL : q;
}

/* The FIFO of output maps queued for one `input` neuron; items[head..len)
 * are pending, each a reference owned by the queue. */
typedef struct dmm__queue {
    vv_label name;
    vv *items;
    size_t head, len, cap;
    UT_hash_handle hh;
} dmm__queue;

/* One neuron fired in a cycle (scratch, reused between cycles). */
typedef struct dmm__slot {
    vv_label type, name;
    const dmm_type_info *info;
    vv input;          /* new: X[type][name] */
    vv output;         /* new */
    vv new_state;      /* new: stateful types only */
    dmm__queue *queue; /* `input` neurons with something queued, else NULL */
    bool dense;        /* this cycle's input and output are dense */
    bool redo;         /* the dense attempt gave up: take the general path */
    bool fired;        /* output made in the down movement (accum_blocks) */
} dmm__slot;

/*
 * Dense ports (net_ports.c). A shape is a sorted array of labels, interned
 * per network so that equal shapes are one pointer; n == 0 is the shape of a
 * bare scalar (one value). A stream in dense form is a shape and its values;
 * a value may be 0.0, which stands for an absent leaf (dropped when the
 * stream is turned into a V-value).
 */
typedef struct dmm__shape {
    struct dmm__shape *next; /* hash chain */
    uint64_t hash;
    uint32_t n;
    bool mark;
    vv_label lab[];
} dmm__shape;

static inline size_t dmm__shape_len(const dmm__shape *s)
{
    return s->n ? s->n : 1;
}

typedef struct dmm__shapes {
    dmm__shape **tab;
    size_t cap, count, gc_at;
    const dmm__shape *scalar; /* n == 0, interned once */
} dmm__shapes;

/* Streams in dense form: stream k is label[k], shape[k] (NULL: zero) and
 * x[k], into buf or, for a neuron's inputs, aliasing a port's values. */
typedef struct dmm__dense {
    uint32_t n, cap;
    vv_label *label;
    const dmm__shape **shape;
    const double **x;
    double *buf;
    size_t bufcap;
    /* Room for one stream of up to two values, which most neurons need: the
     * arrays above point here until they grow (the struct never moves). */
    vv_label label1;
    const dmm__shape *shape1;
    const double *x1;
    double buf1[2];
} dmm__dense;

/* One neuron's output in Y: a V-value, or dense streams (with the V-value
 * made only when asked for). */
typedef struct dmm__out {
    vv v; /* owned: the output, or (dense) its V-value once made */
    bool dense, vmade;
    dmm__dense d;
} dmm__out;

/* What a dense row reads of a port, packed (the dot products gather these
 * at random): its shape (NULL: zero; dmm__not_dense: a V-value only) and,
 * for the scalar shape, the number. */
typedef struct dmm__phot {
    const dmm__shape *shape;
    double num;
} dmm__phot;

/* One port's value in Y_{t-1} for the cycle being computed. */
typedef struct dmm__pval {
    vv v;                    /* when vv_ok; owned when own */
    const dmm__shape *shape; /* dense form when dense; NULL there: zero */
    const double *x;
    bool vv_ok, dense, own;
    bool conv;   /* a flat map left to convert on the calling thread */
    double *buf; /* conversion of a flat map */
    size_t cap;
} dmm__pval;

/*
 * The compiled matrix (net_compile.c). A row whose weights all sit at depth 3
 * is "fast": its terms are (port, weight) pairs in label order, a port being
 * the stream Y[g][ng][o] of a source neuron. Other rows keep only the row and
 * are summed with vv_lincomb.
 */
typedef struct dmm__row {
    vv_label input;
    bool fast;
    bool one;     /* one term of weight 1: the dense input aliases the port */
    bool unread;  /* an input the type never reads: not computed, no terms */
    bool terms;   /* fast, of an input the type takes as its terms: given to
                     it as such (dmm_fire.terms), not summed */
    uint8_t deep; /* not fast, one weight 1 at depth 3 + deep (a chain):
                     the part at that path of port[0]'s value, the path's
                     labels after port[0] (net_compile.c); 0: not so */
    uint32_t nterms;
    uint32_t in_k;  /* terms: the input's descriptor index */
    vv row;         /* borrowed from the compiled W */
    double *w;      /* nterms weights (one block with port) */
    uint32_t *port; /* nterms port indices */
} dmm__row;

typedef struct dmm__neuron {
    vv_label type, name;
    const dmm_type_info *info;
    dmm__row *rows; /* label order of the input */
    size_t nrows;
    bool dense_ok; /* has a dense form, is not Self or input, rows all fast */
    bool scalar1;  /* dense_ok, one row, one input and one output: tried
                      first as a dot product and one call (net_cycle.c) */
    bool sum2;     /* dense_ok `accum` with both rows of one term: tried
                      first as one pass w_a·a + w_d·d (net_cycle.c) */
    bool one1;     /* dense_ok, names kept, one row aliasing one port: its
                      function called on the port (net_cycle.c) */
    uint32_t rows_bytes; /* the block rows begins (rows and their terms);
                            in the padding, so the record stays 40 bytes */
} dmm__neuron;

typedef struct dmm__port {
    vv_label g, ng, o;
    int32_t src;  /* index of neuron (g, ng) in the compiled list, -1: none */
    bool greader; /* read by a fast row of a neuron without dense form */
    bool dreader; /* read by a neuron with dense form */
    bool sparse;  /* filled by its source's present outputs (net_ports.c) */
} dmm__port;

/* The ports filled from their source's present outputs (net_ports.c,
 * "ports by source"): for each source neuron without dense form and with
 * many ports, its ports sorted by output label, and those it filled with
 * something not zero the last cycle (the others hold zero). */
typedef struct dmm__bysrc_rev {
    uint32_t rid, q; /* a row given as terms (below), its term q */
} dmm__bysrc_rev;

typedef struct dmm__bysrc {
    size_t nports;     /* ports indexed (cw->nports then); 0: none */
    uint64_t rows_gen; /* cw->rows_gen then */
    bool on;           /* this cycle: ports_task leaves the sparse ports */
    bool hits_ok;      /* this cycle: hits holds each row's non-zero terms */
    size_t nports_all; /* cw->nports when other was made */
    uint32_t *other;   /* the ports not sparse, nother of them */
    size_t nother;
    uint32_t *srcs; /* the sources whose ports are sparse, nsrcs of them */
    size_t nsrcs;
    /* The rows given as terms (dmm__row.terms) whose ports are all sparse:
     * row rid is rows[rj[rid]] of neuron rk[rid] (by neuron, then row);
     * rfirst[k] its first, -1 when none. Each cycle, hits[hat[rid] ..
     * hat[rid] + nhit[rid]) are the row's terms whose port is not zero, in
     * term order, found from the ports filled (rev_at/rev: per port, the
     * terms that read it). Empty when no row qualifies. */
    size_t nrows, nrev;
    uint32_t *rk, *rj, *hat, *nhit, *hits;
    int32_t *rfirst;
    uint32_t *rev_at; /* nports + 1 offsets into rev */
    dmm__bysrc_rev *rev;
    size_t nhits;
    size_t nneu;    /* entries of at and nlive */
    size_t n;       /* entries of port, label and live */
    uint32_t *at;   /* nneu + 1 offsets into port, label and live */
    uint32_t *port; /* each source's ports, by output label */
    vv_label *label;
    uint32_t *live;  /* per source: its ports holding a value, nlive[k] */
    uint32_t *nlive; /* of them */
} dmm__bysrc;
/* Free what b holds, leaving it empty (net_ports.c). */
void dmm__bysrc_free(vv_ctx *vc, dmm__bysrc *b);
/* When this cycle's non-zero terms of row j of neuron k are known without
 * reading each port (net_ports.c): true, *q and *n the term indices. */
bool dmm__bysrc_hits(const dmm_net *net, size_t k, size_t j, const uint32_t **q,
                     size_t *n);

/*
 * A group (net_compile.c, fired in net_cycle.c): a run of consecutive
 * compiled neurons of one type and one row structure that the down movement
 * fires as one array, structure-of-arrays: every member's output goes to its
 * slot of one block (member i at i·m), so when the members' inputs lie side
 * by side too (the outputs of another group, or the group's own previous
 * ones) the whole group is one loop over the values and no record per
 * member is read but its ports' shapes. Formed when W is compiled: members
 * all `sum2` with the same weights and one flags, or all `one1`, same type;
 * a member whose rows are recompiled (a live edit, a self-edit) leaves its
 * group (split in two). A cycle where the members' inputs are not one shape
 * side by side, a non-finite sum, the function refusing, or modulations
 * (fields): the members take the per-neuron path, which gives the same
 * bits (the arithmetic is elementwise) and reports the errors.
 *
 * The group is the record of the members it fired: their slots and output
 * records are not written (dmm__compiled.hold, held). A port of a neuron
 * outside the group reads the member's slot of the block (net_ports.c);
 * what reads records as a whole (Y's tree, the fields, the watched commit,
 * a member leaving its group) gives the members their records back first
 * (dmm__held_release). So a group fired whole costs no work per member in
 * the cycle's passes over the neurons.
 */
typedef struct dmm__group {
    uint32_t k0, k1; /* members [k0, k1) */
    bool sum2;       /* the members are sum2 (else one1) */
    /* Direct inputs (set when formed): member k0 + i's row j reads the
     * output of neuron src[j] + i, the sources being the members of one
     * group; -1: row j is not. When the source groups' outputs of Y_t are
     * all in their blocks (pfull), the group reads them there and its ports
     * are not filled (dmm__compiled.prd). */
    int64_t src[2];
    /* This cycle (set on the calling thread before the down movement): the
     * members' shape, m its length, out the block written, in[j] row j's
     * input for member k0 when direct; s NULL: per neuron. */
    const dmm__shape *s;
    size_t m;
    double *out;
    const double *in[2];
    bool direct;
    atomic_bool miss;    /* some members took the per-neuron path */
    atomic_size_t fired; /* members fired by the group path (a count) */
    bool whole;          /* after the down movement: every member held (hold) */
    bool quiet; /* at the commit: every member held before and now, so the
                   commit passes the group by */
    /* Y_t (set at the commit): every member's output is its slot of pout,
     * of shape ps (pm values each); pwhole: and every member is held */
    bool pfull, pwhole;
    const dmm__shape *ps;
    size_t pm;
    double *pout;
    /* The outputs, lent to the members' dmm__dense (bufcap 0): a cycle
     * writes blk[!pb], the commit flips pb, so Y_t's, which the cycle
     * reads, stay. */
    double *blk[2];
    size_t cap[2];
    int pb;
} dmm__group;

typedef struct dmm__compiled {
    bool built;
    bool out_valid;   /* cur[k] is neuron k's output in Y_t */
    bool slow_rows;   /* some row is not fast (it reads the whole Y) */
    bool deep_rows;   /* some row is deep (dmm__row.deep): read through its
                         port, or with fields through the whole Y */
    size_t self_k;    /* Self's index in neu */
    size_t nstateful; /* neurons of stateful types */
    vv w;             /* the W compiled (a reference) */
    dmm__neuron *neu; /* active neurons in label order, Self included */
    size_t nneu;
    size_t nalloc; /* entries allocated in neu, cur, nxt and din */
    dmm__port *ports;
    size_t nports, ports_cap;
    uint32_t *hash; /* open addressing: port index + 1, 0 empty */
    size_t hash_cap;
    dmm__pval *pval; /* per port: its value in Y_{t-1} this cycle */
    dmm__phot *phot; /* per port: the same for dense rows */
    dmm__out *cur;   /* per neuron: its output in Y_t */
    dmm__out *nxt;   /* per neuron: its output being computed */
    dmm__dense *din; /* per neuron: its dense input this cycle */
    dmm__shapes shapes;
    dmm__bysrc bysrc; /* net_ports.c */
    /* Each neuron's parameters as fire_slot reads them, found once instead
     * of looked up per firing (net_cycle.c): par[k] borrowed from par_tree,
     * a reference to what was net->params then, so valid while that is
     * still the same tree (the reference keeps the address from being
     * reused). */
    vv *par; /* nalloc entries, or NULL */
    vv par_tree;
    bool par_ok;
    /* Each neuron's state (net_cycle.c): st[k] owns a reference (zero for
     * none), nalloc entries made with the list when some type is stateful
     * (else NULL); st_ok when a cycle has put them there, which is then
     * what net->states holds or, net->stlazy, will hold when made. Before
     * the first cycle (a loaded or restored network) and after a rebuild
     * the states are net->states' only. */
    vv *st;
    bool st_ok;
    /* The built-in `delay` type among the compiled neurons' types (NULL:
     * none) and its age labels: its neurons fire in the down movement by
     * dmm_delay_step, not by the general path (net_cycle.c). */
    const dmm_type_info *delay_info;
    const vv_label *delay_ages;
    /* Per neuron when delay_info (else NULL): a delay line's output of
     * the cycle before last, kept by the commit instead of freed for its
     * next step to write over (dmm_delay_step_reuse); owned, zero for none. */
    vv *dspare;
    /* Per neuron when delay_info (else NULL): a delay line's length from
     * par[k], set with par (valid while par_ok), 0 when it is not 1 ..
     * DMM_DELAY_MAX (the type's function says why). */
    uint8_t *dlen;
    uint64_t rows_gen; /* bumped whenever a neuron's rows are rebuilt */
    dmm__group *grp;   /* by k0; they do not overlap */
    size_t ngrp, grp_cap;
    uint8_t *gdir; /* per neuron: 1 when its group is direct this cycle */
    /* With groups (else NULL), per port (ports_cap of them) its readers
     * plus one, prd[2p] and prd[2p + 1], when it has at most two and each
     * reads it as a direct input of its group, else 0 (none): then it is
     * not filled in a cycle where their groups are direct (net_ports.c).
     * Beside the ports, not in them: most networks have no groups. */
    uint32_t *prd;
    size_t ndirect; /* groups direct this cycle (0: no port is skipped) */
    /* With groups (else NULL), per neuron: 1 when its group holds its
     * output, i.e. the output is its slot of the group's block and its
     * output record (cur, nxt) and slot are not written. held for Y_t (the
     * slot of pout; the record then owns no value), hold for the cycle
     * being computed (of out; the slot not written either); swapped at
     * the commit. A neuron outside every group has 0 in both. */
    uint8_t *held, *hold;
    bool holding; /* after the down movement: some member is held (hold) */
    /* With direct groups this cycle: the ports to fill, those not skipped,
     * in order (through bysrc.other when pfill_on), so that the pass over
     * the ports costs the ports filled. Made again when what decides a
     * skip changes (pfill_ok cleared: a neuron's rows, a group's gdir, the
     * ports by source). */
    uint32_t *pfill;
    size_t npfill, pfill_cap;
    bool pfill_ok, pfill_on;
    /* Set by a cycle whose Self is `accum` with its `accum` input exactly
     * the W it started from (hint_from): then W_t (hint_to) differs from it
     * only on the paths of Self's `delta` input (hint_delta), and the next
     * sync patches along those paths instead of walking all of W. Zero
     * when there is none; references. */
    vv hint_from, hint_to, hint_delta;
} dmm__compiled;

/* ---- net_compile.c ---- */
/* Bring net->cw up to date with w (patch or rebuild; a rebuild first makes
 * net->y). On error cw is empty and the next call rebuilds. */
int dmm__compiled_sync(dmm_net *net, vv w);
void dmm__compiled_free(dmm__compiled *cw, vv_ctx *vc);
/* Drop cw's self-edit hint. */
void dmm__compiled_unhint(dmm__compiled *cw, vv_ctx *vc);
/* The first group of cw with k1 > k (NULL: none). */
dmm__group *dmm__group_from(const dmm__compiled *cw, size_t k);
/* The label of the one stream a group member outputs. */
static inline vv_label dmm__member_out(const dmm__neuron *n)
{
    return n->sum2 ? n->info->out[0] : n->rows[0].input;
}

/* Per-thread scratch of the cycle. */
typedef struct dmm__scratch {
    vv_label *lbuf;
    vv *vbuf;
    size_t cap;
    double *wbuf; /* a row's weighted terms for vv_sum (net_cycle.c) */
    vv *tbuf;
    size_t tcap;
} dmm__scratch;
/* Room for n labels and n values in sc (net.c). */
int dmm__scratch_grow(vv_ctx *vc, dmm__scratch *sc, size_t n);
/* Room for n weights and n terms in sc (net.c). */
int dmm__scratch_terms(vv_ctx *vc, dmm__scratch *sc, size_t n);
/* Free what sc holds, leaving it empty. */
void dmm__scratch_free(vv_ctx *vc, dmm__scratch *sc);

/* vv_free without the call for values that own nothing (most slots of a
 * dense network). */
static inline void dmm__vfree(vv_ctx *vc, vv v)
{
    if (v.map)
        vv_free(vc, v);
}

/* ---- the cycle's failure records (net_cycle.c) ---- */
/* The first failure of each worker in one movement; the cycle reports the
 * lowest index, the one a single thread would have stopped at. The network
 * keeps one per worker (net->fail), grown by the cycle. */
/*
 * The items of one chunk that a pass on the calling thread must visit after
 * the parallel one (slots that gave up the dense path, ports to convert), so
 * that the pass costs what they number and not what the network does: a
 * one-weight self-edit makes one such slot among thousands. Past DMM__FEW
 * the chunk's whole range is visited, each item's own flag tested.
 */
#define DMM__FEW 16
typedef struct dmm__few {
    size_t lo, hi; /* the chunk's range, set by its task */
    size_t n;      /* items added; at[] holds the first DMM__FEW */
    size_t at[DMM__FEW];
} dmm__few;

static inline void dmm__few_add(dmm__few *f, size_t i)
{
    if (f->n < DMM__FEW)
        f->at[f->n] = i;
    f->n++;
}

/* Every item below n is to be visited (an item added out of the chunk). */
static inline void dmm__few_all(dmm__few *f, size_t n)
{
    f->lo = 0;
    f->hi = n;
    f->n = DMM__FEW + 1;
}

typedef struct dmm__failure {
    int rc;
    size_t at;
    uint64_t rng[4]; /* the worker's copy of the random state */
    dmm__few todo;   /* this chunk's items for the pass after it */
    dmm_error err;
} dmm__failure;

typedef struct dmm__cycle_work {
    dmm__failure *fail; /* one per worker */
} dmm__cycle_work;

/* Each worker records one failure at most: its error is cleared here, once
 * per movement, not per neuron (a dmm_error is over a kilobyte). */
void dmm__work_reset(dmm__cycle_work *w, unsigned n);

static inline void dmm__fail_record(dmm__failure *f, int rc, size_t k)
{
    f->rc = rc;
    f->at = k;
}

/* Walks the chunks' todo lists (in index order unless dmm__few_all), items
 * from stop on left out: for (dmm__few_iter it =
 * dmm__few_begin(w, n, stop); dmm__few_next(&it);) uses it.i. Consumes the
 * lists. */
typedef struct dmm__few_iter {
    dmm__failure *fail;
    unsigned nw, w;
    size_t j, stop, i;
} dmm__few_iter;

static inline dmm__few_iter dmm__few_begin(dmm__cycle_work *w, unsigned nw,
                                           size_t stop)
{
    return (dmm__few_iter){.fail = w->fail, .nw = nw, .stop = stop};
}

static inline bool dmm__few_next(dmm__few_iter *it)
{
    for (; it->w < it->nw; it->w++, it->j = 0) {
        dmm__few *f = &it->fail[it->w].todo;
        bool listed = f->n <= DMM__FEW;
        size_t end = listed ? f->n : f->hi - f->lo;
        while (it->j < end) {
            size_t i = listed ? f->at[it->j] : f->lo + it->j;
            it->j++;
            if (i < it->stop) {
                it->i = i;
                return true;
            }
        }
        f->n = 0;
    }
    return false;
}

/* ---- dense ports and Y (net_ports.c) ---- */
/* Make net->y from the neurons' outputs when it is not made (ylazy). */
int dmm__y_make(dmm_net *net);
/* borrowed: W_t, whether or not net->y is made. */
vv dmm__w(const dmm_net *net);
/* Drop every interned shape (dmm__compiled_free). */
void dmm__shapes_free(vv_ctx *vc, dmm__shapes *sh);
/* Drop the shapes no output uses any more (after a commit). */
void dmm__shapes_collect(vv_ctx *vc, dmm__compiled *cw);
/* The shape of a port that holds a V-value only (phot). */
extern const dmm__shape dmm__not_dense;
/* Free what d holds (not d). A buffer lent by a group (bufcap 0, buf not
 * buf1) is not d's to free. */
void dmm__dense_free(vv_ctx *vc, dmm__dense *d);
/* Room in d for n streams and len values, the streams kept. */
int dmm__dense_grow(vv_ctx *vc, dmm__dense *d, uint32_t n, size_t len);
static inline int dmm__dense_reserve(vv_ctx *vc, dmm__dense *d, uint32_t n,
                                     size_t len)
{
    if (n <= d->cap && len <= d->bufcap)
        return 0;
    return dmm__dense_grow(vc, d, n, len);
}
/* Give d the group's buffer x (lent: bufcap 0) for its values, freeing its
 * own, with room for one stream (inside d: this cannot fail). */
void dmm__dense_lend(vv_ctx *vc, dmm__dense *d, double *x);
/* d as a group member's output: one stream l of shape s, its values x in
 * the group's block (lent), as the per-neuron dense path leaves it. */
void dmm__member_record(vv_ctx *vc, dmm__dense *d, vv_label l,
                        const dmm__shape *s, double *x);
/* The members [a, b) of g whose output of Y_t it holds (held) get their
 * records back (cur: the slot of pout lent), so that they can be read as
 * records; g is then no longer held whole. Between movements only. */
void dmm__held_release(vv_ctx *vc, dmm__compiled *cw, dmm__group *g, size_t a,
                       size_t b);
/* Neuron k's output record of Y_t (cw.cur[k]), given back by its group
 * first when the group holds it. Between movements only. */
dmm__out *dmm__out_record(dmm_net *net, size_t k);
/* new: d's streams as one V-value {label: stream}. */
int dmm__dense_vv(vv_ctx *vc, const dmm__dense *d, vv *out);
/* Each port's value in Y_t for this cycle, on net->threads threads, but
 * those only direct groups read (dmm__compiled.prd). */
int dmm__ports_fill(dmm_net *net, dmm__cycle_work *work);
/* Is port q left unfilled this cycle (its readers' groups direct)? */
static inline bool dmm__port_skipped(const dmm__compiled *cw, size_t p)
{
    const uint32_t *r = &cw->prd[2 * p];
    return r[0] && cw->gdir[r[0] - 1] && (!r[1] || cw->gdir[r[1] - 1]);
}
/* The ports left unfilled, filled after all, on the calling thread: for
 * the members of a direct group that take the per-neuron path. */
int dmm__ports_unskip(dmm_net *net);
/* Every port the rows of neuron k read, as V-values. */
int dmm__neuron_ports_vv(dmm_net *net, size_t k);
/* new: {type: {name: value}} over the compiled neurons (grouped by type):
 * their current outputs (outs) or, outs NULL, of[k]. */
int dmm__gather(dmm_net *net, size_t n, const dmm__neuron *neu,
                const dmm__out *outs, const vv *vals, vv *out);
/* Make net->states from the neurons' states when it is not made
 * (stlazy). */
int dmm__states_make(dmm_net *net);

/* ---- net_threads.c ---- */
/* A piece of cycle work over items [lo, hi), run by worker `worker`
 * (0 is the calling thread). */
typedef void (*dmm__task_fn)(dmm_net *net, unsigned worker, size_t lo,
                             size_t hi, void *ud);
/* Run fn over [0, n) split into net->threads contiguous chunks, chunk k as
 * worker k (its records and scratch) on whichever thread claims it first,
 * and wait for all of them (net_threads.c). */
void dmm__parallel(dmm_net *net, size_t n, dmm__task_fn fn, void *ud);
/* Task functions that ADAPT keeps a choice for (net_hooks.h). */
#define DMM__ADAPT_FNS 8
/* Worker k's scratch (worker 0's lives in the pool too). */
dmm__scratch *dmm__scratch_of(dmm_net *net, unsigned worker);
/* Stop and free the workers (dmm_net_free). */
void dmm__pool_free(dmm_net *net);

struct dmm__pool;
typedef struct dmm__fields dmm__fields;

/* One modulation applying to compiled neuron k (net_fields.c): the list is
 * built when the compiled neurons or the fields change, not per cycle; a
 * cycle sets s only. Chained per neuron by next (-1: the last). */
typedef struct dmm__fapp {
    uint32_t k, mod;
    int32_t next;
    bool outside;    /* k has no position in a lattice field (weights) */
    bool has_pos;    /* x, y: k's position, copied from the fields */
    bool scale;      /* input or output, multiply: the dense path applies it
                        (net_cycle.c) */
    bool output;     /* scale: of the output (else of the input) */
    bool has_stream; /* scale: of that stream only (else of every one) */
    vv_label stream;
    double s; /* the field at k this cycle */
    double x, y;
} dmm__fapp;

struct dmm_net {
    vv_ctx *vc;
    const dmm_registry *reg;
    vv y; /* Y_t, Self included: Y[self][self_name][self_out] is W_t;
             when ylazy, zero, and Y_t is in cw.cur */
    bool ylazy;
    bool watched; /* dmm_net_outputs called since the last cycle */
    vv states;    /* {type: {name: state}} of stateful active neurons;
                     when stlazy, zero, and the states are in cw.st */
    bool stlazy;
    vv params;        /* {type: {name: {param: x}}} */
    vv_label self[3]; /* Self's type, name and output */
    const dmm_type_info *self_info;
    /* Self is `accum` with output `single`: its inputs `accum` and `delta`
     * by index into self_info->in (the self-edit hint, net_cycle.c), else
     * self_sums is false. Resolved with self_info by dmm__self_resolve. */
    bool self_sums;
    size_t self_accum_in, self_delta_in;
    vv_label input_type; /* the label "input", interned at load */
    uint64_t t;          /* cycles run */
    uint64_t rng[4];     /* xoshiro256** state */
    dmm__queue *queues;  /* uthash by name */
    dmm__slot *slots;    /* scratch for the cycle */
    size_t nslots, slots_cap;
    dmm__scratch buf; /* labels and values for building Y's tree */
    dmm__compiled cw;
    dmm__scratch s0;        /* the calling thread's scratch */
    unsigned threads;       /* 1: the cycle runs on the caller's thread */
    struct dmm__pool *pool; /* workers when threads > 1 */
    dmm__failure *fail;     /* per worker (net_cycle.c) */
    unsigned nfail;
    dmm__fields *fields; /* positions and modulations; NULL: none */
    int32_t *fmod; /* during a cycle with modulations applying: per compiled
                      neuron, its first application or -1; else NULL */
    const dmm__fapp *fapps; /* with fmod: the applications it indexes */
    uint64_t cw_gen;        /* bumped whenever cw's neuron list is rebuilt (the
                               fields' cached applications index it) */
    bool groups_off; /* every group per neuron (dmm__groups_set, tests) */
    bool delay_off;  /* delay lines by their function (dmm__delay_set) */
    atomic_size_t delay_fired;    /* dmm__delay_fired */
    size_t grp_fired, grp_direct; /* dmm__groups_fired */
};

/* ---- net.c ---- */
/* new: an empty network (Y = 0) with Self set to accum/self/single; NULL on
 * out of memory. */
dmm_net *dmm__net_new(vv_ctx *vc, const dmm_registry *reg);
/* Resolve Self's type from net->self (self_info and the self-edit hint's
 * inputs) once, when Self is set; false when the type is not registered. */
bool dmm__self_resolve(dmm_net *net);

/* ---- net_check.c ---- */
/* A JSON Pointer being built while walking a value. */
typedef struct dmm__ptr {
    char s[512];
} dmm__ptr;

static inline size_t dmm__ptr_push(const vv_ctx *vc, dmm__ptr *p, vv_label l)
{
    size_t mark = strlen(p->s);
    size_t len;
    const char *str = vv_label_str(vc, l, &len);
    (void)dmm_json_pointer_push(p->s, sizeof p->s, str, len);
    return mark;
}

static inline void dmm__ptr_pop(dmm__ptr *p, size_t mark)
{
    p->s[mark] = '\0';
}

static inline const char *dmm__lstr(const dmm_net *net, vv_label l)
{
    return vv_label_str(net->vc, l, NULL);
}

/*
 * Check that w is a valid matrix: no scalar above depth 3, every neuron type
 * registered, every input name accepted by its type, every source type of a
 * row registered. prefix is the JSON Pointer of w in its document; the error
 * path extends it. DMM_E_INVAL (or DMM_E_LIMIT for an overlong path).
 * valid is a matrix already known to be valid (zero if none): subtrees that w
 * shares with it are skipped, so checking W + delta costs about the size of
 * the paths the delta changed, not the size of W.
 */
int dmm__check_matrix(const dmm_net *net, vv w, vv valid, const char *prefix,
                      dmm_error *err);
/* The same for w = valid + delta (valid already valid), walking only the
 * paths of delta: the self-edit's check, O(|delta|) and not O(|W|). */
int dmm__check_matrix_delta(const dmm_net *net, vv w, vv valid, vv delta,
                            const char *prefix, dmm_error *err);
/* Check a {type: {name: V}} map (outputs, params, states): types registered,
 * no scalar above depth 2. what names the member in messages. */
int dmm__check_neuron_map(const dmm_net *net, vv m, const char *prefix,
                          const char *what, dmm_error *err);
/* An edit's result w (valid: W before it): dmm__check_matrix, plus every
 * changed weight finite and Self's row still there, so an edit cannot make a
 * network that would be refused at load time. DMM_E_INVAL. */
int dmm__check_edit(const dmm_net *net, vv w, vv valid, dmm_error *err);
/* Check params: as above, and each neuron's parameters are names its type
 * declares, each a number. */
int dmm__check_params(const dmm_net *net, vv m, const char *prefix,
                      dmm_error *err);

/* Self's path in Y: {self type, self name, self output}. */
static inline vv dmm__matrix_of(const dmm_net *net, vv y)
{
    return vv_get(y, net->self, 3);
}

/* The queue of an input neuron, NULL when it has none. */
dmm__queue *dmm__queue_find(const dmm_net *net, vv_label name);
/* Append a reference to v (taken) to name's queue. */
int dmm__queue_push(dmm_net *net, vv_label name, vv v);

/* ---- net_fields.c ---- */
/* Positions and modulations (docs/fields.md). The members "positions" and
 * "modulations" of a document (either may be NULL) into net->fields,
 * checked against W w; DMM_E_INVAL with a located message, net unchanged. */
int dmm__fields_read(dmm_net *net, const json_t *positions, const json_t *mods,
                     vv w, dmm_error *err);
/* Append the members ",\n\"positions\": …" and ",\n\"modulations\": …" (when
 * any) to a document being written. */
int dmm__fields_write(const dmm_net *net, vv_buf *b);
void dmm__fields_free(dmm_net *net);
/* The syntax of a script's field event, with no network yet: its labels
 * interned in the order the engine interns them when it applies the event
 * (so a replayed session has the same label table as the live one).
 * what: "position" (a: the neuron string, b: "at"), "fields" (a: the
 * document of dmm_net_fields_save), or a modulate action (a: the
 * modulation, or for "remove" its name). DMM_E_INVAL located as the
 * engine locates it. */
int dmm__fields_syntax(vv_ctx *vc, const char *what, const json_t *a,
                       const json_t *b, dmm_error *err);
/* borrowed: {x, y} of neuron (type, name), NULL when it is not embedded. */
const double *dmm__fields_position(const dmm_net *net, vv_label type,
                                   vv_label name);
/* Would W = w keep every field produced and every named target active or
 * embedded (law 4)? DMM_E_INVAL naming the modulation, located at the rows
 * in W whose loss breaks it (an edit's path prefix goes before it). */
int dmm__fields_check_w(const dmm_net *net, vv w, dmm_error *err);
/* The cycle (net->fields non-NULL): begin reads every field from Y_{t-1},
 * syncs the compiled W and lists what applies to which neuron (net->fmod);
 * end drops that, whatever happened in between. */
int dmm__fields_begin(dmm_net *net, dmm_error *err);
void dmm__fields_end(dmm_net *net);
/* Does a modulation apply to compiled neuron k this cycle? (Such a neuron
 * takes the general path unless every one is a `scale`, dmm__fapp.) */
static inline bool dmm__fields_on(const dmm_net *net, size_t k)
{
    return net->fmod && net->fmod[k] >= 0;
}
/* Row j of neuron k with its weights modulated (new, as row_value), or 1
 * when no weight modulation applies to k. */
int dmm__fields_row(dmm_net *net, size_t k, size_t j, vv *out);
/* Neuron k's input or output (owned, replaced) through its modulations. */
int dmm__fields_input(dmm_net *net, size_t k, vv *input);
int dmm__fields_output(dmm_net *net, size_t k, vv *output);
/* fire's input and params with k's parameter modulations applied; the
 * replacements are new in *own_in and *own_params (zero when none), to be
 * freed after the firing. */
int dmm__fields_params(dmm_net *net, size_t k, dmm_fire *fire, vv *own_in,
                       vv *own_params);

/* ---- net_read.c ---- */
/* Largest file the loaders read. */
#define DMM__MAX_FILE_SIZE ((size_t)256 << 20)
/* new (dmm__free(vc, text, len + 1)): the whole file, NUL-terminated. */
int dmm__read_file(vv_ctx *vc, const char *filename, char **text, size_t *len,
                   dmm_error *err);

/* A kind of document: what names it in messages ("a network description"),
 * its members (NULL-terminated; the first is its version, which must be 1),
 * the message when the version member is missing, and the version's name. */
typedef struct dmm__doc_kind {
    const char *what;
    const char *members[12];
    const char *missing;
    const char *version;
} dmm__doc_kind;
/* Check that root is a JSON object of that kind: each member known, the
 * version present and 1. */
int dmm__check_header(const json_t *root, const dmm__doc_kind *kind,
                      dmm_error *err);

/* Builds a network from a document's root: the part in which loading a
 * network and restoring a state differ. source names the document (a file
 * name, or "<...>" for text from no file), as in dmm__doc_text. */
typedef int (*dmm__root_fn)(vv_ctx *vc, const dmm_registry *reg,
                            const json_t *root, const char *source,
                            dmm_net **out, dmm_error *err);
/* The frame they share: the size limit (what names the document in its
 * message), the strict parse, and the error's source and position. */
int dmm__doc_text(vv_ctx *vc, const dmm_registry *reg, const char *text,
                  size_t len, const char *source, const char *what,
                  dmm__root_fn fn, dmm_net **out, dmm_error *err);
int dmm__doc_file(vv_ctx *vc, const dmm_registry *reg, const char *filename,
                  const char *what, dmm__root_fn fn, dmm_net **out,
                  dmm_error *err);

#endif
