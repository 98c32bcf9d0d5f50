// SPDX-License-Identifier: MIT
/*
 * The clock and the timing loop the benchmarks in tests/bench share, so that
 * every ratio they print is measured the same way: the calls of an operation
 * per repetition are calibrated to a target time (which also warms caches
 * and the allocator), and the median of the repetitions is reported.
 */
#ifndef BENCH_CLOCK_H
#define BENCH_CLOCK_H

#include <stdlib.h>
#include <time.h>

/* Tells the compiler the memory p points to is read and written here, so a
 * baseline whose result is otherwise unused cannot be optimised away. */
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

/* One timed call; i is its number within the repetition. */
typedef void (*bench_fn)(void *st, long i);

enum { BENCH_MAX_REPS = 64 };

static inline double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline double bench_now_s(void)
{
    return bench_now_ns() * 1e-9;
}

/* qsort comparison of doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Calls of fn per repetition for about target_ns. */
static inline long bench_calibrate(bench_fn fn, void *st, double target_ns)
{
    long n = 1;
    for (;;) {
        double t0 = bench_now_ns();
        for (long i = 0; i < n; i++)
            fn(st, i);
        double dt = bench_now_ns() - t0;
        if (dt >= target_ns / 4 || n >= (1L << 30)) {
            n = (long)(n * (target_ns / (dt > 1 ? dt : 1)));
            return n < 1 ? 1 : n;
        }
        n *= 4;
    }
}

/* ns per call of one repetition of n calls. */
static inline double bench_rep_ns(bench_fn fn, void *st, long n)
{
    double t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        fn(st, i);
    return (bench_now_ns() - t0) / n;
}

/* Median ns per call over reps (<= BENCH_MAX_REPS) calibrated repetitions. */
static inline double bench_time(bench_fn fn, void *st, double target_ns,
                                int reps)
{
    long n = bench_calibrate(fn, st, target_ns);
    double per[BENCH_MAX_REPS];
    for (int r = 0; r < reps; r++)
        per[r] = bench_rep_ns(fn, st, n);
    qsort(per, reps, sizeof per[0], bench_cmp_double);
    return per[reps / 2];
}

/* Median ns per call of a case and of its baseline, their repetitions
 * interleaved (case, baseline, case, ...), so that a slow spell of the shared
 * machine falls on both sides of the ratio instead of on one of them. */
static inline void bench_time_pair(bench_fn fn, void *st, bench_fn base,
                                   void *bst, double target_ns, int reps,
                                   double *t_case, double *t_base)
{
    long n = bench_calibrate(fn, st, target_ns);
    long nb = bench_calibrate(base, bst, target_ns);
    double per[BENCH_MAX_REPS], per_b[BENCH_MAX_REPS];
    for (int r = 0; r < reps; r++) {
        per[r] = bench_rep_ns(fn, st, n);
        per_b[r] = bench_rep_ns(base, bst, nb);
    }
    qsort(per, reps, sizeof per[0], bench_cmp_double);
    qsort(per_b, reps, sizeof per_b[0], bench_cmp_double);
    *t_case = per[reps / 2];
    *t_base = per_b[reps / 2];
}

#endif
