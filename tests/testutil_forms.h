// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the tests that run every network on both forms of the
 * built-in types (tests/test_net_dense.c, tests/test_fields_dense.c): a world
 * with a registry of the built-ins as registered (dense forms on) and one of
 * copies without dense form (the general path only), and a generator of
 * random ring networks whose file-specific parts (stream values, extra rows,
 * outputs, sections) come from hooks. Built only into those programs.
 */
#ifndef TESTUTIL_FORMS_H
#define TESTUTIL_FORMS_H

#include <stdbool.h>

#include "dmm.h"
#include "testutil.h"
#include "testutil_net.h"

typedef struct tf_world {
    vv_ctx *vc;
    dmm_registry *dense, *general;
    dmm_neuron_type *copies; /* the general registry's types */
} tf_world;

/* A cmocka setup: *state gets a new tf_world. -1 on failure. */
int tf_setup(void **state);
/* The matching cmocka teardown. */
int tf_teardown(void **state);

/* new: the network in text (source "test.json") on reg, or the test fails
 * with the formatted error and the text. */
dmm_net *tf_load(const tf_world *w, const dmm_registry *reg, const char *text);
/* new (free()): the network's saved state, NUL-terminated. */
char *tf_state_of(dmm_net *net);
/* Applies the edit in json to net, or fails the test. */
void tf_edit(const tf_world *w, dmm_net *net, const char *json);
/* Fails unless a and b save to the same state. */
void tf_assert_same_state(dmm_net *a, dmm_net *b);
/* Loads text on both registries, runs good cycles on each, then one that
 * must fail with code: fails the test unless both fail with the same error
 * text, containing needle, and the dense network's state is that of before
 * the cycle and the general one's. */
void tf_check_same_failure(const tf_world *w, const char *text, int good,
                           int code, const char *needle);
/* Fails unless a's and b's outputs (Y) print the same. */
void tf_assert_same_outputs(const tf_world *w, dmm_net *a, dmm_net *b);
/* One cycle of a, then one of b; fails unless both succeed. */
void tf_step_both(dmm_net *a, dmm_net *b);

/* ---- out of memory ---- */
/* One run of tf_fail_each_allocation: the network and its twin, both
 * loaded in the counted world and warmed by the same good cycles, and what
 * op did under the failing allocation. */
typedef struct tf_oom {
    dmm_net *net, *twin;
    tu_alloc *alloc; /* the world's counting allocator */
    dmm_error err;   /* for op */
    int rc;          /* op's result */
    void *ud;
} tf_oom;

/* Loads text twice (net and twin) in w (from tn_world_setup_counted), runs
 * warm cycles of both, then op(net) with its k-th allocation failing, for
 * k = 1, 2, ... until op needs fewer than k allocations; a failing op must
 * return DMM_E_NOMEM. check (after the allocator fails no more) judges each
 * run. Returns how many runs op failed in. */
int tf_fail_each_allocation(tn_world *w, const char *text, int warm,
                            int (*op)(tf_oom *o), void (*check)(tf_oom *o),
                            void *ud);

/* ---- random networks ---- */
/* The generator's state: set it to the seed before a network. */
extern uint64_t tf_seed;
/* The next number in [0, n) of a 64-bit LCG on tf_seed. */
uint32_t tf_rnd(uint32_t n);
/* A multiple of 1/4 in [-1, 1], so that sums and products meet exact
 * zeros. */
double tf_rnd_x(void);
/* One of the first n (1..7) of -1, -0.5, 0.5, 1, 0.3, -0.7, 2. */
double tf_rnd_w(uint32_t n);

/* The ring's neuron types: neuron uk is of type tf_types[k % TF_NT]. */
enum { TF_NT = 7 };
extern const char *const tf_types[TF_NT];
const char *tf_type_of(int k);
/* uk's input stream number which (0 or 1) and its output stream which. */
const char *tf_in_of(int k, int which);
const char *tf_out_of(int k, int which);

/* What tf_random_net makes besides the ring. Every hook writes to b (and may
 * draw from tf_rnd); NULL hooks write nothing. */
typedef struct tf_net_shape {
    int m;             /* ring neurons u0 .. u(m-1) */
    uint32_t nweights; /* weights from tf_rnd_w(nweights) */
    bool other_rows;   /* sometimes a row of another shape (.../kN) */
    /* a term's weight drawn before its source's stream, not after (the
     * order test_fields_dense's seeds were chosen with: the order its
     * compiler evaluated the arguments of one call in) */
    bool weight_first;
    void (*stream)(vv_buf *b);   /* a stream value of a ring output */
    void (*links)(vv_buf *b);    /* rows after the ring's, each ", [...]" */
    void (*outputs)(vv_buf *b);  /* identity outputs before the ring's,
                                    each "\"name\": {...}, " */
    void (*sections)(vv_buf *b); /* after "outputs": ", \"key\": ..." */
} tf_net_shape;

/* new (free()): a random network of the shape, drawn from tf_seed: Self's
 * row, each ring neuron with one or two input streams of one to three
 * terms from random ring outputs, some accumulators with their own row, and
 * initial outputs of every ring stream. */
char *tf_random_net(const tf_net_shape *shape);

#endif
