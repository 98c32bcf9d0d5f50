// SPDX-License-Identifier: MIT
/*
 * The mathematics of the `mean-field` neuron (spec interference.md §4): the
 * self-consistent magnetisation μ = tanh(K·μ + h) of a mean-field Ising pool,
 * its critical field h_c(K) and spontaneous value m*(K). Pure functions of
 * doubles, exposed for tests and plots; the neuron adds inputs and state.
 */
#ifndef DMM_MEANFIELD_H
#define DMM_MEANFIELD_H

#include <stdbool.h>

/*
 * h_c(K) = sqrt(K(K − 1)) − atanh(sqrt(1 − 1/K)) for K > 1: for |h| < h_c
 * the equation has two stable roots; at |h| = h_c one of them merges with the
 * unstable root and disappears. 0 for K <= 1 (and for NaN). Accurate to a few
 * ulps also for K just above 1, where the two terms nearly cancel.
 */
double dmm_meanfield_hc(double k);

/* m*(K): the positive stable root at h = 0, 0 for K <= 1. */
double dmm_meanfield_mstar(double k);

/*
 * The stable root of μ = tanh(k·μ + h) that the relaxation μ ← tanh(k·μ + h)
 * reaches from mu0, for finite k and h (any finite mu0). *bistable (may be
 * NULL) is set when two stable roots exist. With one stable root that root is
 * returned whatever mu0 is; with two, the one on mu0's side of the unstable
 * root, and the upper one when mu0 is exactly the unstable root and h >= 0
 * (the lower one for h < 0). The roots are found by bracketing on the monotone
 * pieces of tanh(k·μ + h) − μ, split where its slope is 0, that is at
 * k·μ + h = ±atanh(sqrt(1 − 1/k)), so the solver converges also where plain
 * iteration crawls: at |h| near h_c and k near 1.
 */
double dmm_meanfield_solve(double k, double h, double mu0, bool *bistable);

#endif
