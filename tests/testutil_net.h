// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the engine's test programs (tests/test_net_*.c): a world
 * of one context and one registry, and loading a network or failing the test.
 * Built only into those programs, since the V-value tests cannot link the
 * engine.
 */
#ifndef TESTUTIL_NET_H
#define TESTUTIL_NET_H

#include <stdbool.h>

#include "dmm.h"
#include "testutil.h"

typedef struct tn_world {
    vv_ctx *vc;
    dmm_registry *reg;
    bool counted;   /* the context allocates through alloc */
    tu_alloc alloc; /* counts bytes, fails on demand (single thread only) */
} tn_world;

/* A cmocka setup: *state gets a new world whose registry holds the built-ins
 * and then the types in extra (NULL-terminated, may be NULL). -1 on failure. */
int tn_world_setup(void **state, const dmm_neuron_type *const *extra);
/* The same with the context on the counting allocator w->alloc (for tests of
 * out-of-memory paths; not for threaded runs). The teardown then also checks
 * that every byte was given back. */
int tn_world_setup_counted(void **state);
/* The matching cmocka teardown. */
int tn_world_teardown(void **state);
/* new: the network in text (source "test.json"), or the test fails with the
 * formatted error. */
dmm_net *tn_load(tn_world *w, const char *text);
/* Fire the type's function once as neuron type/"n" on input, params and
 * state (borrowed, zero allowed), as the engine would. On success *out and
 * *new_state (may be NULL: freed) get new canonical values (checked); on
 * error both are zero, which the call checks (a built-in leaves nothing
 * behind), and err says why. */
int tn_fire(tn_world *w, const char *type, vv input, vv params, vv state,
            vv *out, vv *new_state, dmm_error *err);

#endif
