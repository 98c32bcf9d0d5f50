// SPDX-License-Identifier: MIT
/*
 * Helpers shared by every cmocka test program: a failing allocator, file and
 * source-tree access, and V-value assertions. Including this header is enough
 * to use cmocka. Test code only: these helpers fail the running test on error.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "vv.h"

/*
 * Allocator for vv_options.alloc (ud = a tu_alloc). Counts every call that
 * asks for memory (n > 0: allocations and reallocations) from 1; call number
 * fail_at returns NULL, later calls succeed again. fail_at <= 0 never fails.
 * bytes is the live total, trusting the old sizes the caller passes, so it is
 * back to 0 when everything was freed. Thread-safe (the counters are
 * updated atomically), so a threaded cycle can run on it; with several
 * threads which call is number fail_at depends on their timing.
 */
typedef struct tu_alloc {
    long fail_at;
    long count;
    size_t bytes;
} tu_alloc;
void *tu_alloc_fn(void *ud, void *p, size_t old, size_t n);

/* Append printf-style text to a vv_buf, or fail the test. */
#define tu_put(b, ...) assert_int_equal(vv_buf_printf((b), __VA_ARGS__), 0)

/* new (free()): the whole file, NUL-terminated; *len (may be NULL) gets its
 * size. NULL on error. */
char *tu_read_file(const char *path, size_t *len);
/* The repository root: env DMM_SOURCE_ROOT, or "." (borrowed). */
const char *tu_source_root(void);
/* new (free()): tu_source_root() + "/" + rel. */
char *tu_path(const char *rel);

/* ---- running the dmm binary (the CLI tests) ---- */
/* What a finished process left: its exit code (128 + signal when killed)
 * and its whole stdout and stderr (new, released by tu_proc_free). */
typedef struct tu_proc {
    int code;
    char *out;
    char *err;
} tu_proc;
void tu_proc_free(tu_proc *p);
/* new (free()): dir + "/" + name. */
char *tu_path_in(const char *dir, const char *name);
/* new (free()): writes text to dir/name and returns the path; fails the
 * test on error. */
char *tu_write_in(const char *dir, const char *name, const char *text);
/* Run exe with args (NULL-terminated, without the program name), stdin the
 * file in (NULL: /dev/null), stdout and stderr through files in dir, and
 * wait; fails the test if it cannot be started. */
void tu_run_in(const char *exe, const char *dir, tu_proc *p, const char *in,
               const char *const *args);
/* Fails unless p exited with code, printing its output when not. */
void tu_expect_code(const tu_proc *p, int code);

/* The label for s, interned in c; fails the test on error. */
vv_label tu_label(vv_ctx *c, const char *s);
/* new: json parsed by vv_parse; fails the test (with the error) on error. */
vv tu_vv(vv_ctx *c, const char *json);
/* Fails the test, printing both as JSON, unless vv_close(got, want, rel, 0). */
void tu_assert_vv_close(vv_ctx *c, vv got, vv want, double rel);
/* Fails the test unless v is canonical: no stored zero or non-finite
 * scalar, no empty child map (checked through the public API). */
void tu_assert_canonical(vv_ctx *c, vv v);

/* The next number of a splitmix64 sequence whose state is *s. */
uint64_t tu_rand(uint64_t *s);
/*
 * new (free()): the text of a random network written with "links" (issue
 * 18), the same for the same seed: three identity neurons with outputs, and
 * max-norm, tanh and output neurons; sources at, below and above an output,
 * every other one ending in ":number" (none when plain, which is then the
 * same network); with probability 1/2 a neuron identity/w that adds a
 * constant delta, with weights at scalar parts, to W every cycle. With
 * input, an active input neuron input/in whose "signal" some links read.
 */
char *tu_random_links_net(uint64_t seed, bool plain, bool input);

#endif
