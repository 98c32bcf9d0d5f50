// SPDX-License-Identifier: MIT
/*
 * Internals of the engine shared by net_load.c, net_cycle.c and net_state.c:
 * the network record, the input queues, and the checks that keep W valid.
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
} dmm__slot;

struct dmm_net {
    vv_ctx *vc;
    const dmm_registry *reg;
    vv y;      /* Y_t, Self included: Y[self][self_name][self_out] is W_t */
    vv states; /* {type: {name: state}} of stateful active neurons */
    vv params; /* {type: {name: {param: x}}} */
    vv_label self[3]; /* Self's type, name and output */
    const dmm_type_info *self_info;
    vv_label input_type; /* the label "input", interned at load */
    uint64_t t;          /* cycles run */
    uint64_t rng[4];     /* xoshiro256** state */
    dmm__queue *queues;  /* uthash by name */
    dmm__slot *slots;    /* scratch for the cycle */
    size_t nslots, slots_cap;
    vv_label *lbuf; /* scratch labels and values */
    vv *vbuf;
    size_t buf_cap;
};

/* new: an empty network (Y = 0) with Self set to accum/self/single; NULL on
 * out of memory. */
dmm_net *dmm__net_new(vv_ctx *vc, const dmm_registry *reg);
/* Seed the random state with splitmix64 (as xoshiro's authors recommend). */
void dmm__rng_seed(uint64_t rng[4], uint64_t seed);

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
/* Check a {type: {name: V}} map (outputs, params, states): types registered,
 * no scalar above depth 2. what names the member in messages. */
int dmm__check_neuron_map(const dmm_net *net, vv m, const char *prefix,
                          const char *what, dmm_error *err);
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

/* Largest file the loaders read. */
#define DMM__MAX_FILE_SIZE ((size_t)256 << 20)
/* new (free()): the whole file, NUL-terminated. */
int dmm__read_file(const char *filename, char **text, size_t *len,
                   dmm_error *err);

/* Check that root is a JSON object (what names the document: "a network
 * description") and that each member is one of members (NULL-terminated). */
int dmm__check_members(const json_t *root, const char *what,
                       const char *const *members, dmm_error *err);

/* Builds a network from a document's root: the part in which loading a
 * network and restoring a state differ. */
typedef int (*dmm__root_fn)(vv_ctx *vc, const dmm_registry *reg,
                            const json_t *root, dmm_net **out, dmm_error *err);
/* The frame they share: the size limit (what names the document in its
 * message), the strict parse, and the error's source and position. */
int dmm__doc_text(vv_ctx *vc, const dmm_registry *reg, const char *text,
                  size_t len, const char *source, const char *what,
                  dmm__root_fn fn, dmm_net **out, dmm_error *err);
int dmm__doc_file(vv_ctx *vc, const dmm_registry *reg, const char *filename,
                  const char *what, dmm__root_fn fn, dmm_net **out,
                  dmm_error *err);

#endif
