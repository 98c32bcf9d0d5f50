// SPDX-License-Identifier: MIT
/*
 * Internals of the engine, private to runtime/engine/src: the network record
 * and its parts, each with one owning file (named beside each declaration).
 * Invariant: W (Self's output) always passes dmm__check_matrix, so the cycle
 * can resolve every type and input without failing.
 */
#ifndef DMM_NET_INTERNAL_H
#define DMM_NET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uthash.h>

#include "dmm.h"

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
    bool one;    /* one term of weight 1: the dense input aliases the port */
    bool unread; /* an input the type never reads: not computed, no terms */
    bool terms;  /* fast, of an input the type takes as its terms: given to
                    it as such (dmm_fire.terms), not summed */
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
} dmm__port;

typedef struct dmm__compiled {
    bool built;
    bool out_valid;   /* cur[k] is neuron k's output in Y_t */
    bool slow_rows;   /* some row is not fast (it reads the whole Y) */
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
typedef struct dmm__failure {
    int rc;
    size_t at;
    uint64_t rng[4]; /* the worker's copy of the random state */
    bool redo;       /* some slot of this worker's gave up the dense path */
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
/* Free what d holds (not d). */
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
/* new: d's streams as one V-value {label: stream}. */
int dmm__dense_vv(vv_ctx *vc, const dmm__dense *d, vv *out);
/* Each port's value in Y_t for this cycle, on net->threads threads. */
int dmm__ports_fill(dmm_net *net, dmm__cycle_work *work);
/* Every port the rows of neuron k read, as V-values. */
int dmm__neuron_ports_vv(dmm_net *net, size_t k);
/* new: {type: {name: value}} over the compiled neurons (grouped by type):
 * their current outputs (outs) or, outs NULL, the slots' new states. */
int dmm__gather(dmm_net *net, size_t n, const dmm__neuron *neu,
                const dmm__out *outs, vv *out);

/* ---- net_threads.c ---- */
/* A piece of cycle work over items [lo, hi), run by worker `worker`
 * (0 is the calling thread). */
typedef void (*dmm__task_fn)(dmm_net *net, unsigned worker, size_t lo,
                             size_t hi, void *ud);
/* Run fn over [0, n) split into net->threads contiguous chunks, chunk k as
 * worker k (its records and scratch) on whichever thread claims it first,
 * and wait for all of them (net_threads.c). */
void dmm__parallel(dmm_net *net, size_t n, dmm__task_fn fn, void *ud);
/* How dmm__parallel runs a task function when net->threads > 1: split over
 * the threads or on the caller alone, chosen by how fast each way has been
 * lately (ADAPT, the default); SPLIT and SERIAL force one way (tests). */
typedef enum dmm__pool_mode {
    DMM__POOL_ADAPT,
    DMM__POOL_SPLIT,
    DMM__POOL_SERIAL
} dmm__pool_mode;
void dmm__pool_set_mode(dmm_net *net, dmm__pool_mode mode);
/* Calls of dmm__parallel run split and run serially since the threads were
 * set (0, 0 on one thread). */
void dmm__pool_counts(const dmm_net *net, uint64_t *split, uint64_t *serial);
/* The choice for one task function (net_threads.c; a pure state machine,
 * tested on its own): ns per item each way (0: not measured yet), calls
 * since the way not chosen was last tried and how many to wait before the
 * next try. */
#define DMM__ADAPT_FNS 8
typedef struct dmm__adapt {
    double par, ser;
    unsigned since, wait;
    bool trying;
} dmm__adapt;
/* true: run this call split over the threads; false: on the caller. */
bool dmm__adapt_choose(dmm__adapt *a);
/* What the call chosen took, per item. */
void dmm__adapt_record(dmm__adapt *a, bool par, double ns_per_item);
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
    bool watched;     /* dmm_net_outputs called since the last cycle */
    vv states;        /* {type: {name: state}} of stateful active neurons */
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
/* How many times the list of applications was built (a debug counter: it
 * stays put across cycles that change neither the compiled neurons nor the
 * fields; tests/test_fields_dense.c). 0 without fields. */
size_t dmm__fields_rebuilds(const dmm_net *net);
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
