// SPDX-License-Identifier: MIT
/*
 * The one random generator of dmm: xoshiro256** (Blackman and Vigna), its
 * four words of state owned by the caller (a network's state, an
 * experiment's), seeded through splitmix64 as its authors recommend. No
 * global state, so runs are reproducible from their seed.
 */
#ifndef DMM_RNG_H
#define DMM_RNG_H

#include <stdint.h>

/* Fill s from seed (any value, 0 included). */
void dmm_rng_seed(uint64_t s[4], uint64_t seed);
/* The next 64 random bits; advances s. */
uint64_t dmm_rng_next(uint64_t s[4]);
/* A double uniform in [0, 1), from the top 53 bits. */
double dmm_rng_uniform(uint64_t s[4]);
/* Uniform in [0, n), n > 0, without modulo bias. */
uint64_t dmm_rng_below(uint64_t s[4], uint64_t n);

#endif
