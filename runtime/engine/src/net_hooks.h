// SPDX-License-Identifier: MIT
/*
 * The engine's switches and counters for tests and benches (not API): they
 * turn a fast path off so its twin can be compared with it, and count how
 * often a path ran. Reached through engine_private_dep; net_internal.h
 * includes this file, so the engine and its tests share one declaration.
 */
#ifndef DMM_NET_HOOKS_H
#define DMM_NET_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmm.h"

/* ---- groups (net_cycle.c) ---- */
/* Fire groups as groups (on, the default) or every member per neuron. */
void dmm__groups_set(dmm_net *net, bool on);
/* Member firings so far that were a group's (direct: of a direct one). */
size_t dmm__groups_fired(const dmm_net *net, bool direct);

/* ---- delay lines (net_cycle.c) ---- */
/* Fire delay lines by the engine (on, the default) or by their function. */
void dmm__delay_set(dmm_net *net, bool on);
/* Delay line firings so far that were the engine's. */
size_t dmm__delay_fired(const dmm_net *net);

/* ---- threads (net_threads.c) ---- */
/* How dmm__parallel runs a task function when net->threads > 1: split over
 * the threads (SPLIT, the default), on the caller alone (SERIAL), or chosen
 * by how fast each way has been lately (ADAPT; it misjudged on the quiet
 * machine, docs/performance.md). */
typedef enum dmm__pool_mode {
    DMM__POOL_ADAPT,
    DMM__POOL_SPLIT,
    DMM__POOL_SERIAL
} dmm__pool_mode;
void dmm__pool_set_mode(dmm_net *net, dmm__pool_mode mode);
/* Calls of dmm__parallel run split and run serially since the threads were
 * set (0, 0 on one thread). */
void dmm__pool_counts(const dmm_net *net, uint64_t *split, uint64_t *serial);
/* The ADAPT choice for one task function (a pure state machine, tested on
 * its own): ns per item each way (0: not measured yet), calls since the way
 * not chosen was last tried and how many to wait before the next try. */
typedef struct dmm__adapt {
    double par, ser;
    unsigned since, wait;
    bool trying;
} dmm__adapt;
/* true: run this call split over the threads; false: on the caller. */
bool dmm__adapt_choose(dmm__adapt *a);
/* What the call chosen took, per item. */
void dmm__adapt_record(dmm__adapt *a, bool par, double ns_per_item);

/* ---- fields (net_fields.c) ---- */
/* How many times the list of modulation applications was built (it stays
 * put across cycles that change neither the compiled neurons nor the
 * fields; tests/test_fields_dense.c). 0 without fields. */
size_t dmm__fields_rebuilds(const dmm_net *net);

#endif
