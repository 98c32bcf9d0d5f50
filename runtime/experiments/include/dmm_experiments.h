// SPDX-License-Identifier: MIT
/*
 * The interference experiments run as DMM networks (`--engine network`,
 * docs/experiments.md "As a DMM network"): a host script around the ordinary
 * engine that feeds episodes to networks/mnist-interference.json or
 * networks/double-slit.json and reads the scores back. Same seeds, same
 * picks and the same route initialisation as the direct engine.
 */
#ifndef DMM_EXPERIMENTS_H
#define DMM_EXPERIMENTS_H

#include <stdint.h>

#include "dmm.h"
#include "dmm_interference.h"

/* What a run cost. */
typedef struct dmm_netx_stats {
    uint64_t cycles; /* dmm_net_step calls */
    size_t episodes; /* training and test episodes fed */
    size_t weights;  /* weights in W at the end */
} dmm_netx_stats;

/*
 * dmm_if_fewshot on the network in `network_file`: the same options, the
 * same random draws in the same order. test_per_class: how many of the 980
 * test images of each class to run (0 or more than 980: all), for tests.
 * model (out) receives the trained routes read back from W; pred (out, may be
 * NULL) the predicted class of each test image run, in test order (class 0's
 * first); stats may be NULL. Returns 0, DMM_E_INVAL for bad options or too
 * few images (as dmm_if_fewshot), or the engine's error, with err filled
 * (also for a network without the neurons the host feeds and reads).
 */
int dmm_fewshot_network(const char *network_file, const dmm_if_data *train,
                        const dmm_if_data *test, const dmm_if_options *opt,
                        size_t test_per_class, dmm_if_model *model,
                        dmm_if_result *res, uint8_t *pred,
                        dmm_netx_stats *stats, dmm_error *err);

/* dmm_ds_run on the network in `network_file`; pred (may be NULL) gets the
 * 200 predicted targets. */
int dmm_double_slit_network(const char *network_file, uint64_t seed,
                            unsigned variant, dmm_ds_model *model,
                            dmm_ds_result *res, uint8_t *pred,
                            dmm_netx_stats *stats, dmm_error *err);

#endif
