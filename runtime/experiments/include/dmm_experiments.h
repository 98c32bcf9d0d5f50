// SPDX-License-Identifier: MIT
/*
 * The interference experiments run as DMM networks (`--engine network`,
 * docs/experiments.md "As a DMM network"): a host script around the ordinary
 * engine that feeds episodes to networks/mnist-learners.json (or the
 * delay-line form, mnist-interference.json) or networks/double-slit.json
 * and reads the scores back. Same seeds, same
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
 * What a network run gives back besides its result. Every pointer is the
 * caller's and may be NULL.
 */
typedef struct dmm_netx_out {
    uint8_t *pred;  /* out: the predicted target of each test sample run,
                       in test order */
    uint8_t *truth; /* out: the true target of each (MNIST: the class) */
    double *scores; /* out: the scores read for each test sample, one per
                       target (MNIST: output/score or output/peak; double
                       slit: output/total / 60, the time-mean) */
    dmm_netx_stats stats;
    /* 1 when the network has the route layout (docs/experiments.md, "The
     * contract"): the seed's routes were written into W and the trained ones
     * read back into model. 0: the network kept its own weights and model
     * holds the routes the direct engine would have started from. */
    int routes;
} dmm_netx_out;

/*
 * dmm_if_fewshot on any network that follows the contract of
 * docs/experiments.md: input/image, input/control, output/score (output/peak
 * for DMM_IF_FIX_SCORE) with an input per class digit-0, digit-1, digit-2,
 * digit-4; opt->ties DMM_IF_TIES_PEAK also reads output/peak, which must then
 * have those inputs too, and breaks a tie of the scores by it. opt->params,
 * when given, is written into the params of every `interference` neuron
 * (DMM_E_INVAL for a value of exactly 0, which a parameter cannot hold);
 * opt->geometry, when given, decides which routes the host writes into the
 * route layout (`in` at d >= dist, `blocked` below, none from the horizon on)
 * and the delay lines' length, and needs that layout (DMM_E_INVAL without it);
 * opt->progress is told after each episode. test_per_class as below. A network
 * that breaks the contract is refused with DMM_E_INVAL and err naming the file,
 * the JSON path and what is missing.
 */
int dmm_fewshot_network_run(const char *network_file, const dmm_if_data *train,
                            const dmm_if_data *test, const dmm_if_options *opt,
                            size_t test_per_class, dmm_if_model *model,
                            dmm_if_result *res, dmm_netx_out *out,
                            dmm_error *err);

/* The double slit's options for a network run. */
typedef struct dmm_ds_options {
    uint64_t seed;
    unsigned variant;
    const dmm_if_params *params; /* borrowed, may be NULL (published) */
    /* borrowed, may be NULL (published): the horizon */
    const dmm_ds_geometry *geometry;
    dmm_if_progress_fn progress; /* may be NULL */
    void *progress_ud;
} dmm_ds_options;

/* dmm_ds_run_params on any network that follows the double slit's contract
 * (input/signal, input/control, output/total with inputs minus-2 and
 * plus-2); out as above (200 predictions and 2 scores each). */
int dmm_double_slit_network_run(const char *network_file,
                                const dmm_ds_options *opt, dmm_ds_model *model,
                                dmm_ds_result *res, dmm_netx_out *out,
                                dmm_error *err);

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
