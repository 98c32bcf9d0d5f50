// SPDX-License-Identifier: MIT
/*
 * Benchmark of images in the V-value library (dense levels, vv_dense.c) and
 * of the matmul neuron, against baselines timed in the same run:
 *   - a linear combination of four 256x256 image streams (vv_lincomb, the
 *     down movement's primitive) against a plain C loop over the doubles
 *     (target: within 3x); the same images held as trees, for comparison;
 *   - matmul of two 256x256 images through the neuron against calling
 *     cblas_dgemm on the arrays directly (target: within 1.5x); the exact
 *     sparse product (labels that are no numbers), for comparison.
 * Results are checked once, so a wrong answer cannot pass as a fast one.
 * Prints a table and PASS/FAIL per target, with the page faults a call
 * takes (a fresh 512 KiB block is 128 of them); exits 0 unless a result is
 * wrong. `bench_dense --instructions N` instead runs each operation N times
 * under callgrind's collection (valgrind --tool=callgrind
 * --collect-atstart=no), one dump per operation, for counts the load of a
 * shared machine does not move.
 */
#include <cblas.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <valgrind/callgrind.h>

#include "bench_clock.h"
#include "dmm_neuron.h"
#include "vv.h"

#define REPS      9
#define TARGET_NS 20000000.
#define SIDE      256
#define NSTREAMS  4

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_dense: %s failed: %s\n", what,
            rc ? dmm_strerror(rc) : "wrong result");
    exit(1);
}
#define CHECK(what, call)                                                      \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != 0)                                                          \
            die(what, rc_);                                                    \
    } while (0)

static double time_op(bench_fn fn, void *st)
{
    return bench_time(fn, st, TARGET_NS, REPS);
}

static vv_label label(vv_ctx *c, const char *s)
{
    vv_label l;
    CHECK("vv_intern", vv_intern_cstr(c, s, &l));
    return l;
}

/* Pixels in (0, 1], none zero, so every image is full. */
static double *image(unsigned seed)
{
    double *x = malloc(SIDE * SIDE * sizeof *x);
    uint64_t s = seed * 0x9e3779b97f4a7c15u + 1;
    for (size_t i = 0; i < SIDE * SIDE; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        x[i] = ((double)(s >> 11) + 1.0) / 9007199254740992.0;
    }
    return x;
}

/* ---- lincomb of image streams -------------------------------------------- */

typedef struct lin_case {
    vv_ctx *c;
    vv row, m; /* {"s0": w0, …}, {"s0": image0, …} */
    const double *x[NSTREAMS];
    double w[NSTREAMS];
    double *out;
} lin_case;

static void run_lincomb(void *st, long i)
{
    lin_case *lc = st;
    vv r;
    CHECK("vv_lincomb", vv_lincomb(lc->c, lc->row, lc->m, &r));
    KEEP(r.map);
    vv_free(lc->c, r);
}

/* The baseline: the same sum in the same order over the arrays. */
static void run_loop(void *st, long i)
{
    lin_case *lc = st;
    const double *x0 = lc->x[0], *x1 = lc->x[1], *x2 = lc->x[2], *x3 = lc->x[3];
    double w0 = lc->w[0], w1 = lc->w[1], w2 = lc->w[2], w3 = lc->w[3];
    double *o = lc->out;
    for (size_t k = 0; k < SIDE * SIDE; k++)
        o[k] = w0 * x0[k] + w1 * x1[k] + w2 * x2[k] + w3 * x3[k];
    KEEP(o);
}

/* A context whose "1" is interned before "0": no dense level can exist in
 * it, so its images are B+-trees (the representation before dense levels). */
static vv_ctx *tree_ctx(void)
{
    vv_ctx *c = vv_ctx_new(NULL);
    label(c, "1");
    label(c, "0");
    return c;
}

static void lin_setup(lin_case *lc, vv_ctx *c, double **imgs)
{
    lc->c = c;
    vv_label names[NSTREAMS];
    vv kids[NSTREAMS], ws[NSTREAMS];
    size_t dims[2] = {SIDE, SIDE};
    for (int k = 0; k < NSTREAMS; k++) {
        char s[8];
        snprintf(s, sizeof s, "s%d", k);
        names[k] = label(c, s);
        CHECK("vv_from_dense", vv_from_dense(c, 2, dims, imgs[k], &kids[k]));
        lc->x[k] = imgs[k];
        lc->w[k] = 0.5 + k * 0.25;
        ws[k] = vv_number(lc->w[k]);
    }
    CHECK("vv_from_pairs",
          vv_from_pairs(c, 0.0, NSTREAMS, names, kids, &lc->m));
    CHECK("vv_from_pairs",
          vv_from_pairs(c, 0.0, NSTREAMS, names, ws, &lc->row));
    lc->out = malloc(SIDE * SIDE * sizeof *lc->out);
    /* check once: the sum is the loop's, bit for bit (left to right) */
    run_loop(lc, 0);
    vv r, want;
    CHECK("vv_lincomb", vv_lincomb(c, lc->row, lc->m, &r));
    CHECK("vv_from_dense", vv_from_dense(c, 2, dims, lc->out, &want));
    if (!vv_equal(r, want))
        die("lincomb check", 0);
    vv_free(c, r);
    vv_free(c, want);
}

/* ---- matmul -------------------------------------------------------------- */

typedef struct mm_case {
    vv_ctx *c;
    const dmm_type_info *t;
    vv input; /* {"left": L, "right": R} */
    const double *a, *b;
    double *p;
} mm_case;

static void run_matmul(void *st, long i)
{
    mm_case *mc = st;
    dmm_error err;
    uint64_t rng[4] = {1, 2, 3, 4};
    dmm_fire f = {.vc = mc->c,
                  .type = mc->t,
                  .name = mc->t->name,
                  .input = mc->input,
                  .step = 1,
                  .rng = rng,
                  .err = &err};
    CHECK("matmul", mc->t->desc->fn(&f));
    KEEP(f.output.map);
    vv_free(mc->c, f.output);
}

static void run_dgemm(void *st, long i)
{
    mm_case *mc = st;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, SIDE, SIDE, SIDE,
                1.0, mc->a, SIDE, mc->b, SIDE, 0.0, mc->p, SIDE);
    KEEP(mc->p);
}

/* new: the image as {prefix+i: {prefix+j: x}} (no decimal labels). */
static vv named_image(vv_ctx *c, const double *x)
{
    vv_label lab[SIDE];
    for (int i = 0; i < SIDE; i++) {
        char s[16];
        snprintf(s, sizeof s, "r%d", i);
        lab[i] = label(c, s);
    }
    vv rows[SIDE], kids[SIDE];
    for (int i = 0; i < SIDE; i++) {
        for (int j = 0; j < SIDE; j++)
            kids[j] = vv_number(x[i * SIDE + j]);
        CHECK("vv_from_pairs",
              vv_from_pairs(c, 0.0, SIDE, lab, kids, &rows[i]));
    }
    vv m;
    CHECK("vv_from_pairs", vv_from_pairs(c, 0.0, SIDE, lab, rows, &m));
    return m;
}

static void mm_setup(mm_case *mc, vv_ctx *c, const dmm_registry *reg,
                     const double *a, const double *b, bool named)
{
    mc->c = c;
    mc->t = dmm_registry_find(reg, label(c, "matmul"));
    mc->a = a;
    mc->b = b;
    mc->p = malloc(SIDE * SIDE * sizeof *mc->p);
    size_t dims[2] = {SIDE, SIDE};
    vv lr[2];
    if (named) {
        lr[0] = named_image(c, a);
        lr[1] = named_image(c, b);
    } else {
        CHECK("vv_from_dense", vv_from_dense(c, 2, dims, a, &lr[0]));
        CHECK("vv_from_dense", vv_from_dense(c, 2, dims, b, &lr[1]));
    }
    vv_label k[2] = {label(c, "left"), label(c, "right")};
    CHECK("vv_from_pairs", vv_from_pairs(c, 0.0, 2, k, lr, &mc->input));
    if (named)
        return;
    /* check once: the neuron's product is dgemm's */
    run_dgemm(mc, 0);
    dmm_error err;
    uint64_t rng[4] = {1, 2, 3, 4};
    dmm_fire f = {
        .vc = c, .type = mc->t, .input = mc->input, .rng = rng, .err = &err};
    CHECK("matmul", mc->t->desc->fn(&f));
    vv want, prod;
    CHECK("vv_from_dense", vv_from_dense(c, 2, dims, mc->p, &want));
    prod = vv_child(f.output, label(c, "product"));
    if (!vv_equal(prod, want))
        die("matmul check", 0);
    vv_free(c, want);
    vv_free(c, f.output);
}

/* Minor page faults per call of fn, over 20 calls after a warm one. */
static double faults(bench_fn fn, void *st)
{
    struct rusage a, b;
    fn(st, 0);
    getrusage(RUSAGE_SELF, &a);
    for (long i = 0; i < 20; i++)
        fn(st, i);
    getrusage(RUSAGE_SELF, &b);
    return (double)(b.ru_minflt - a.ru_minflt) / 20;
}

/* --instructions: fn run n times with callgrind collecting, dumped as what. */
static void count(const char *what, bench_fn fn, void *st, long n)
{
    fn(st, 0);
    fn(st, 1);
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
    for (long i = 0; i < n; i++)
        fn(st, i);
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT(what);
}

static void row(const char *name, double ns, double base_ns, double target,
                bench_fn fn, void *st, bench_fn base, void *bst)
{
    double ratio = ns / base_ns;
    printf("%-44s %10.1f us %10.1f us %7.2fx", name, ns / 1e3, base_ns / 1e3,
           ratio);
    printf("  faults %.0f / %.0f", faults(fn, st), faults(base, bst));
    if (target > 0)
        printf("  %s (target <= %.1fx)", ratio <= target ? "PASS" : "FAIL",
               target);
    printf("\n");
}

int main(int argc, char **argv)
{
    long icount =
        argc == 3 && !strcmp(argv[1], "--instructions") ? atol(argv[2]) : 0;
    double *imgs[NSTREAMS];
    for (int k = 0; k < NSTREAMS; k++)
        imgs[k] = image((unsigned)k + 1);
    printf("%-44s %13s %13s %8s  %s\n", "case (256x256 images)", "time",
           "baseline", "ratio", "page faults a call (case / baseline)");

    vv_ctx *c = vv_ctx_new(NULL);
    lin_case lc;
    lin_setup(&lc, c, imgs);
    vv_ctx *ct = tree_ctx();
    lin_case lt;
    lin_setup(&lt, ct, imgs);
    dmm_registry *reg = dmm_registry_new(c);
    if (!reg || dmm_registry_add_builtins(reg))
        die("registry", DMM_E_NOMEM);
    mm_case mc, ms;
    mm_setup(&mc, c, reg, imgs[0], imgs[1], false);
    mm_setup(&ms, c, reg, imgs[0], imgs[1], true);

    /* Twice: with glibc's default malloc, which gives a freed 512 KB image
     * back to the kernel (each new image then costs ~130 page faults, which
     * the baselines writing into one buffer never pay), and with memory kept
     * (mallopt; MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ do the
     * same for the dmm command, docs/performance.md). */
    if (icount > 0) {
        count("loop", run_loop, &lc, icount);
        count("lincomb", run_lincomb, &lc, icount);
        count("dgemm", run_dgemm, &mc, icount);
        count("matmul", run_matmul, &mc, icount);
    }
    for (int pass = 0; pass < 2 && !icount; pass++) {
        if (pass) {
            mallopt(M_MMAP_THRESHOLD, 64 << 20);
            mallopt(M_TRIM_THRESHOLD, 256 << 20);
        }
        printf("%s\n", pass ? "-- memory kept (M_MMAP_THRESHOLD 64 MiB, "
                              "M_TRIM_THRESHOLD 256 MiB)"
                            : "-- glibc malloc defaults");
        double t_loop, t_lin, t_dgemm, t_mm;
        bench_time_pair(run_lincomb, &lc, run_loop, &lc, TARGET_NS, REPS,
                        &t_lin, &t_loop);
        row("lincomb of 4 streams (dense) / C loop", t_lin, t_loop, 3.0,
            run_lincomb, &lc, run_loop, &lc);
        double t_lin_tree = time_op(run_lincomb, &lt);
        row("lincomb of 4 streams (trees) / C loop", t_lin_tree, t_loop, 0,
            run_lincomb, &lt, run_loop, &lc);
        bench_time_pair(run_matmul, &mc, run_dgemm, &mc, TARGET_NS, REPS, &t_mm,
                        &t_dgemm);
        row("matmul neuron (dense) / cblas_dgemm", t_mm, t_dgemm, 1.5,
            run_matmul, &mc, run_dgemm, &mc);
        double t_sparse = bench_time(run_matmul, &ms, TARGET_NS, 3);
        row("matmul neuron (labels r0..r255) / dgemm", t_sparse, t_dgemm, 0,
            run_matmul, &ms, run_dgemm, &mc);
    }

    vv_free(c, lc.row), vv_free(c, lc.m), vv_free(ct, lt.row);
    vv_free(ct, lt.m), vv_free(c, mc.input), vv_free(c, ms.input);
    free(lc.out), free(lt.out), free(mc.p), free(ms.p);
    dmm_registry_free(reg);
    vv_ctx_free(ct);
    vv_ctx_free(c);
    for (int k = 0; k < NSTREAMS; k++)
        free(imgs[k]);
    return 0;
}
