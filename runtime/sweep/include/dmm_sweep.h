// SPDX-License-Identifier: MIT
/*
 * Sweeps: populations of networks or experiment runs (docs/sweep.md). A
 * sweep file names a base (a network file, or an experiment and its options),
 * the members (variants x grid x seeds, or generations of an evolutionary
 * search) and what to measure. A member is a JSON object that says everything
 * about itself, so any process that loaded the same sweep file evaluates it to
 * the same result line: that is what lets members run on threads of one
 * process or on the ranks of an MPI job and print the same lines.
 *
 * The library never prints: lines go to a callback of the caller.
 */
#ifndef DMM_SWEEP_H
#define DMM_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "dmm_error.h"

typedef struct json_t json_t;
typedef struct dmm_sweep dmm_sweep;

/* Read a sweep file (or text; source names it in errors). Every error is
 * located: "file:line:column: /json/path: message". */
int dmm_sweep_load_file(const char *filename, dmm_sweep **out, dmm_error *err);
int dmm_sweep_load_text(const char *text, size_t len, const char *source,
                        const char *base_dir, dmm_sweep **out, dmm_error *err);
void dmm_sweep_free(dmm_sweep *s);

/* The members of a plain sweep, variants x grid x seeds in that nesting
 * (seeds innermost). borrowed: an array of member objects
 * {"index": i, ["variant": name,] KEY: value..., ["seed": s]}. */
const json_t *dmm_sweep_members(const dmm_sweep *s);
/* borrowed: the "evolve" object, or NULL for a plain sweep. */
const json_t *dmm_sweep_evolve_spec(const dmm_sweep *s);

/*
 * Evaluate one member (borrowed) and return its line, new (free()),
 * NUL-terminated, without a newline:
 *   {"member": M, "result": R, "seconds": s}    or
 *   {"member": M, "error": "message", "seconds": s}
 * A member that fails (bad key, a cycle that faults, an experiment that exits
 * non-zero) gives the error form; only out of memory returns NULL. exe is the
 * dmm binary that runs experiment members (spawned as `exe experiment NAME
 * --KEY VALUE...`, its one JSON line is the result without its *seconds
 * fields). Safe to call from several threads at once.
 */
char *dmm_sweep_eval(const dmm_sweep *s, const char *exe, const json_t *member);

/* Called once per finished member with its line (borrowed), on the caller's
 * thread (rank 0 under MPI). */
typedef void (*dmm_sweep_line_fn)(void *ud, const char *line);

/* Where members run. jobs: threads of this process that evaluate members
 * (rank 0 keeps one more thread to hand them out under MPI). */
typedef struct dmm_sweep_runner dmm_sweep_runner;

/* new: a runner of jobs threads (1..256). With use_mpi (and MPI built in),
 * MPI must be initialised (dmm_sweep_mpi_init) and every rank calls this;
 * then only rank 0 hands members out, and the other ranks must call
 * dmm_sweep_runner_serve instead of dmm_sweep_runner_run. */
int dmm_sweep_runner_new(const dmm_sweep *s, const char *exe, unsigned jobs,
                         int use_mpi, dmm_sweep_runner **out, dmm_error *err);
/* Evaluate members (borrowed array) on every job and rank; fn gets each line
 * as it comes back (any order). Rank 0 (or the only process) only. May be
 * called several times (generations). */
int dmm_sweep_runner_run(dmm_sweep_runner *r, const json_t *members,
                         dmm_sweep_line_fn fn, void *ud, dmm_error *err);
/* Ranks other than 0: evaluate what rank 0 sends until it says stop. */
int dmm_sweep_runner_serve(dmm_sweep_runner *r, dmm_error *err);
/* Rank 0 tells the other ranks to stop (also done by free), then frees. */
void dmm_sweep_runner_free(dmm_sweep_runner *r);
/* This process's rank and the number of ranks (0 and 1 without MPI). */
int dmm_sweep_runner_rank(const dmm_sweep_runner *r);
int dmm_sweep_runner_size(const dmm_sweep_runner *r);

/* MPI: 1 if built with MPI. dmm_sweep_mpi_init starts MPI when the process
 * was started by mpirun (1 then, else 0 and MPI is left alone);
 * dmm_sweep_mpi_finalize ends it. */
int dmm_sweep_mpi_available(void);
int dmm_sweep_mpi_init(int *argc, char ***argv);
void dmm_sweep_mpi_finalize(void);
/* This process's rank once MPI is started, else 0. */
int dmm_sweep_mpi_rank(void);

/*
 * new: the summary of lines (an array of parsed lines, borrowed), one object
 * per group, groups in order of their first member's index:
 *   {"group": G, "members": n, "failed": f,
 *    "fields": {FIELD: {"mean": m, "sd": s, "min": a, "max": b}}}
 * G is the member without "index" and "seed"; fields are the result's
 * numeric members at any depth (joined with '/'); sd is the sample standard
 * deviation (0 for one member). Members are taken in index order, so the
 * sums are the same however the lines arrived.
 */
json_t *dmm_sweep_summary(const json_t *lines);

/* new (free()): j as one line of JSON in the form member lines use (keys
 * in order, shortest round-trip numbers); NULL when out of memory. */
char *dmm_sweep_json_text(const json_t *j);

/* Order lines (array of parsed lines) by member index, in place. */
void dmm_sweep_sort_lines(json_t *lines);

/*
 * The evolutionary search (docs/sweep.md, "evolve"): generations of
 * individuals evaluated through r, each on the spec's seeds, scored by the
 * mean of a result field, the best kept and mutated. After every generation
 * the state goes to checkpoint (if not NULL), atomically; an existing
 * checkpoint of the same sweep is resumed. Every member line goes to fn, and
 * one line per generation {"generation": g, "best": {...}, ...} to gen_fn.
 * new in *best (may be NULL): the best individual with its lineage.
 */
int dmm_sweep_evolve(const dmm_sweep *s, dmm_sweep_runner *r,
                     const char *checkpoint, dmm_sweep_line_fn fn,
                     dmm_sweep_line_fn gen_fn, void *ud, json_t **best,
                     dmm_error *err);

#endif
