// SPDX-License-Identifier: MIT
/*
 * What the files of runtime/sweep share: the loaded sweep (sweep_file.c owns
 * it), member evaluation (sweep_eval.c), the runner (sweep_run.c), the
 * summary (sweep_summary.c) and the search (sweep_evolve.c).
 */
#ifndef DMM_SWEEP_INTERNAL_H
#define DMM_SWEEP_INTERNAL_H

#include <jansson.h>

#include "dmm_sweep.h"
#include "vv.h"

enum { DMM__SWEEP_NETWORK = 0, DMM__SWEEP_EXPERIMENT = 1 };
enum { DMM__MEASURE_PATHS, DMM__MEASURE_SCORE, DMM__MEASURE_PERIOD };

/* sweep_file.c owns it; immutable once loaded, so threads share it. */
struct dmm_sweep {
    json_t *doc;    /* the whole file, parsed */
    int kind;       /* DMM__SWEEP_NETWORK or _EXPERIMENT */
    char *network;  /* network base: the file, resolved against the sweep's
                       folder */
    char *net_text; /* its text, read once */
    size_t net_len;
    const char *experiment; /* experiment base: its name (in doc) */
    const json_t *options;  /* its options (in doc), may be NULL */
    const json_t *variants; /* array (in doc), may be NULL */
    int measure;            /* DMM__MEASURE_* */
    uint64_t steps;
    const json_t *paths;  /* measure paths: array of strings; score and
                             period: one string */
    json_t *members;      /* new: the plain members */
    const json_t *evolve; /* in doc, may be NULL */
    json_t *evolve_seeds; /* new: the seeds each individual runs on */
    char source[256];
};

/* Is key one a member may set for this base (network: "seed", "params/...",
 * "w/..."; experiment: an option word)? */
int dmm__sweep_key_ok(const dmm_sweep *s, const char *key);

/* The value of result at the '/'-joined field path, as a double; 0 if it is
 * not there or not a number. */
int dmm__sweep_field(const json_t *result, const char *field, double *out);

/* Append j as JSON to b: keys in the object's order, numbers in their
 * shortest round-trip form (vv_buf_number), ", " and ": " separators, so
 * every rank writes a value with the same bytes. Depth at most 64. */
int dmm__sweep_write(vv_buf *b, const json_t *j);

/* The monotonic clock in seconds. */
double dmm__sweep_now(void);

#endif
