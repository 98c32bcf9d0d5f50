// SPDX-License-Identifier: MIT
/*
 * Benchmark of the V-value core against plain-C or Jansson baselines timed in
 * the same run. Each case is timed as the median of REPS repetitions of a
 * calibrated loop (CLOCK_MONOTONIC); results are checked once so a wrong
 * answer cannot pass as a fast one. Prints a table and PASS/FAIL for the two
 * targets; always exits 0 unless a result is wrong (a benchmark, not a gate).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "vv.h"

#define REPS      9         /* repetitions per case; the median is reported */
#define TARGET_NS 20000000. /* aim for ~20 ms per repetition */

static volatile double sink;

/* Median ns per call of fn (bench_clock.h, this program's constants). */
static double time_op(bench_fn fn, void *st)
{
    return bench_time(fn, st, TARGET_NS, REPS);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_vv: %s failed: %s\n", what,
            rc ? dmm_strerror(rc) : "wrong result");
    exit(1);
}

#define CHECK(what, call)                                                      \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != 0)                                                          \
            die(what, rc_);                                                    \
    } while (0)

/* ---- fixtures ------------------------------------------------------------ */

static vv_ctx *ctx;

static vv_label label(const char *fmt, long k)
{
    char s[32];
    vv_label l;
    snprintf(s, sizeof s, fmt, k);
    CHECK("vv_intern", vv_intern_cstr(ctx, s, &l));
    return l;
}

/* new: a flat node {key(k): x[k]} for k < n with labels ls. */
static vv flat(size_t n, const vv_label *ls, const double *x)
{
    vv *ch = malloc(n * sizeof *ch);
    for (size_t k = 0; k < n; k++)
        ch[k] = vv_number(x[k]);
    vv out;
    CHECK("vv_from_pairs", vv_from_pairs(ctx, 0, n, ls, ch, &out));
    free(ch);
    return out;
}

static double *rnd_array(size_t n, unsigned seed)
{
    double *x = malloc(n * sizeof *x);
    for (size_t k = 0; k < n; k++) { /* small LCG: non-zero, full precision */
        seed = seed * 1103515245u + 12345u;
        x[k] = 1.0 + (seed >> 8) / 16777216.0;
    }
    return x;
}

/* ---- results --------------------------------------------------------------*/

typedef struct row {
    const char *name;
    double ns, leaves, base_ns;
    const char *base_name;
} row;

static row rows[16];
static int nrows;

static void report(const char *name, double ns, double leaves,
                   const char *base_name, double base_ns)
{
    rows[nrows++] = (row){strdup(name), ns, leaves, base_ns, base_name};
    printf("%-34s %12.0f ns/op %8.2f ns/leaf | baseline %-28s %12.0f ns/op "
           "ratio %6.2f\n",
           name, ns, ns / leaves, base_name, base_ns, ns / base_ns);
    fflush(stdout);
}

/* ---- (1), (2): add, axpy, scale on 1000 leaves --------------------------- */

#define N1 1000

typedef struct arith {
    vv a, b, acc;
    double *xa, *xb, *xacc;
} arith;

static void op_add(void *p, long i)
{
    arith *s = p;
    vv out;
    if (vv_add(ctx, s->a, s->b, &out) != 0)
        die("vv_add", -1);
    vv_free(ctx, out);
}

static void base_add(void *p, long i)
{
    arith *s = p;
    double *c = malloc(N1 * sizeof *c);
    for (int k = 0; k < N1; k++)
        c[k] = s->xa[k] + s->xb[k];
    KEEP(c);
    free(c);
}

static void op_axpy(void *p, long i)
{
    arith *s = p;
    if (vv_axpy(ctx, &s->acc, (i & 1) ? -1.0 : 1.0, s->b) != 0)
        die("vv_axpy", -1);
}

static void base_axpy(void *p, long i)
{
    arith *s = p;
    double w = (i & 1) ? -1.0 : 1.0;
    for (int k = 0; k < N1; k++)
        s->xacc[k] += w * s->xb[k];
    KEEP(s->xacc);
}

static void op_scale(void *p, long i)
{
    arith *s = p;
    vv out;
    if (vv_scale(ctx, 1.5, s->a, &out) != 0)
        die("vv_scale", -1);
    vv_free(ctx, out);
}

static void base_scale(void *p, long i)
{
    arith *s = p;
    double *c = malloc(N1 * sizeof *c);
    for (int k = 0; k < N1; k++)
        c[k] = 1.5 * s->xa[k];
    KEEP(c);
    free(c);
}

static double add_ratio; /* for the PASS/FAIL line */

static void bench_arith(void)
{
    vv_label ls[N1];
    for (int k = 0; k < N1; k++)
        ls[k] = label("k%04ld", k);
    arith s = {.xa = rnd_array(N1, 1), .xb = rnd_array(N1, 2)};
    s.xacc = malloc(N1 * sizeof *s.xacc);
    memcpy(s.xacc, s.xa, N1 * sizeof *s.xacc);
    s.a = flat(N1, ls, s.xa);
    s.b = flat(N1, ls, s.xb);
    s.acc = flat(N1, ls, s.xa); /* uniquely owned: updated in place */

    vv sum; /* check once */
    CHECK("vv_add", vv_add(ctx, s.a, s.b, &sum));
    if (vv_nchildren(sum) != N1 ||
        vv_child(sum, ls[7]).num != s.xa[7] + s.xb[7])
        die("vv_add", 0);
    vv_free(ctx, sum);

    CHECK("vv_axpy", vv_axpy(ctx, &s.acc, 1.0, s.b));
    if (vv_child(s.acc, ls[3]).num != s.xa[3] + s.xb[3])
        die("vv_axpy", 0);
    CHECK("vv_axpy", vv_axpy(ctx, &s.acc, -1.0, s.b));

    double ns = time_op(op_add, &s), base = time_op(base_add, &s);
    add_ratio = ns / base;
    report("add 1000+1000 (vv_add)", ns, N1, "malloc c; c=a+b", base);
    report("axpy 1000 in place (vv_axpy)", time_op(op_axpy, &s), N1, "a += b",
           time_op(base_axpy, &s));
    report("scale 1000 (vv_scale)", time_op(op_scale, &s), N1,
           "malloc c; c=k*a", time_op(base_scale, &s));
    vv_free(ctx, s.a);
    vv_free(ctx, s.b);
    vv_free(ctx, s.acc);
    free(s.xa);
    free(s.xb);
    free(s.xacc);
}

/* ---- (3): sum of 100 terms of 100 leaves ----------------------------------
 */

#define NT    100
#define NL    100
#define NKEYS 1000

typedef struct sum3 {
    vv terms[NT];
    double w[NT];
    int idx[NT][NL];
    double val[NT][NL];
} sum3;

static void op_sum(void *p, long i)
{
    sum3 *s = p;
    vv out;
    if (vv_sum(ctx, NT, s->w, s->terms, &out) != 0)
        die("vv_sum", -1);
    vv_free(ctx, out);
}

static void base_sum(void *p, long i)
{
    sum3 *s = p;
    double *acc = calloc(NKEYS, sizeof *acc);
    for (int t = 0; t < NT; t++)
        for (int k = 0; k < NL; k++)
            acc[s->idx[t][k]] += s->w[t] * s->val[t][k];
    KEEP(acc);
    free(acc);
}

static void bench_sum(void)
{
    static sum3 s;
    vv_label ls[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        ls[k] = label("k%04ld", k);
    double check = 0;
    for (int t = 0; t < NT; t++) {
        vv_label tl[NL];
        double *x = rnd_array(NL, 100 + t);
        s.w[t] = 1.0 / (t + 1);
        for (int k = 0; k < NL; k++) { /* each key is in ~10 terms */
            s.idx[t][k] = (t * 10 + k) % NKEYS;
            s.val[t][k] = x[k];
            tl[k] = ls[s.idx[t][k]];
            if (s.idx[t][k] == 500)
                check += s.w[t] * x[k];
        }
        s.terms[t] = flat(NL, tl, x);
        free(x);
    }
    vv out;
    CHECK("vv_sum", vv_sum(ctx, NT, s.w, s.terms, &out));
    if (fabs(vv_child(out, ls[500]).num - check) > 1e-12 * check)
        die("vv_sum", 0);
    vv_free(ctx, out);
    report("sum 100 terms x 100 leaves", time_op(op_sum, &s), NT * NL,
           "dense acc[idx] += w*x", time_op(base_sum, &s));
    for (int t = 0; t < NT; t++)
        vv_free(ctx, s.terms[t]);
}

/* ---- (4): JSON read and write of ~1 MB ----------------------------------- */

typedef struct json4 {
    char *text;
    size_t len;
    vv v;
    json_t *j;
    vv_buf out;
    char *jout;
    size_t jcap;
} json4;

static void op_parse(void *p, long i)
{
    json4 *s = p;
    vv v;
    if (vv_parse(ctx, s->text, s->len, NULL, &v, NULL) != 0)
        die("vv_parse", -1);
    vv_free(ctx, v);
}

static void base_parse(void *p, long i)
{
    json4 *s = p;
    json_t *j = json_loadb(s->text, s->len, 0, NULL);
    if (!j)
        die("json_loadb", -1);
    json_decref(j);
}

static void op_write(void *p, long i)
{
    json4 *s = p;
    s->out.len = 0; /* reuse the buffer, as the baseline does */
    if (vv_write(ctx, s->v, &s->out) != 0)
        die("vv_write", -1);
    KEEP(s->out.data);
}

static void base_write(void *p, long i)
{
    json4 *s = p;
    size_t n =
        json_dumpb(s->j, s->jout, s->jcap, JSON_COMPACT | JSON_SORT_KEYS);
    if (n == 0 || n > s->jcap)
        die("json_dumpb", -1);
    KEEP(s->jout);
}

static void bench_json(void)
{
    enum { OUTER = 1000, INNER = 50 };
    json4 s = {0};
    vv_buf b = {0};
    unsigned seed = 7;
    vv_buf_append(&b, "{", 1);
    for (int o = 0; o < OUTER; o++) {
        vv_buf_printf(&b, "%s\"node%04d\":{", o ? "," : "", o);
        for (int k = 0; k < INNER; k++) {
            seed = seed * 1103515245u + 12345u;
            double x = (seed >> 4) / 268435456.0 - 0.5;
            vv_buf_printf(&b, "%s\"leaf%02d\":%.17g", k ? "," : "", k, x);
        }
        vv_buf_append(&b, "}", 1);
    }
    if (vv_buf_append(&b, "}", 1) != 0)
        die("vv_buf", -1);
    s.text = b.data;
    s.len = b.len;

    dmm_error err;
    CHECK("vv_parse", vv_parse(ctx, s.text, s.len, NULL, &s.v, &err));
    vv_stats st;
    vv_measure(s.v, &st);
    if (st.leaves != OUTER * INNER || st.depth != 2)
        die("vv_parse", 0);
    s.j = json_loadb(s.text, s.len, 0, NULL);
    s.jcap = 2 * s.len + 4096;
    s.jout = malloc(s.jcap);

    char name[64];
    snprintf(name, sizeof name, "parse %.2f MB (vv_parse)", s.len / 1e6);
    report(name, time_op(op_parse, &s), OUTER * INNER, "json_loadb",
           time_op(base_parse, &s));
    snprintf(name, sizeof name, "write %.2f MB (vv_write)", s.len / 1e6);
    report(name, time_op(op_write, &s), OUTER * INNER,
           "json_dumpb sorted %.17g", time_op(base_write, &s));

    vv back; /* the written text reads back to the same value */
    CHECK("vv_parse", vv_parse(ctx, s.out.data, s.out.len, NULL, &back, &err));
    if (!vv_equal(back, s.v))
        die("vv_write round trip", 0);
    vv_free(ctx, back);
    vv_free(ctx, s.v);
    json_decref(s.j);
    free(s.jout);
    free(s.out.data);
    free(s.text);
}

/* ---- (5): 1-leaf delta into 100 000 leaves, persistent ------------------- */

#define NBIG   100000
#define NDELTA 64

typedef struct delta5 {
    vv big;
    vv delta[NDELTA];
    double *x;
} delta5;

static void op_delta(void *p, long i)
{
    delta5 *s = p;
    vv out;
    if (vv_add(ctx, s->big, s->delta[i % NDELTA], &out) != 0)
        die("vv_add", -1);
    vv_free(ctx, out); /* s->big stays referenced throughout */
}

static void base_delta(void *p, long i)
{
    delta5 *s = p; /* the naive persistent update: copy, then change one */
    double *c = malloc(NBIG * sizeof *c);
    memcpy(c, s->x, NBIG * sizeof *c);
    c[(i % NDELTA) * 1531] += 1.0;
    KEEP(c);
    free(c);
}

static double delta_ns[2];

static void bench_delta(void)
{
    static delta5 s;
    s.x = rnd_array(NBIG, 3);
    vv one = vv_number(1.0);

    /* flat: one node with 100 000 children */
    vv_label *ls = malloc(NBIG * sizeof *ls);
    for (long k = 0; k < NBIG; k++)
        ls[k] = label("k%05ld", k);
    s.big = flat(NBIG, ls, s.x);
    for (int d = 0; d < NDELTA; d++)
        CHECK("vv_wrap", vv_wrap(ctx, 0, ls[d * 1531], one, &s.delta[d]));
    vv out;
    CHECK("vv_add", vv_add(ctx, s.big, s.delta[5], &out));
    if (vv_child(out, ls[5 * 1531]).num != s.x[5 * 1531] + 1.0 ||
        vv_child(s.big, ls[5 * 1531]).num != s.x[5 * 1531] ||
        vv_nchildren(out) != NBIG)
        die("vv_add delta", 0);
    vv_free(ctx, out);
    double base = time_op(base_delta, &s);
    delta_ns[0] = time_op(op_delta, &s);
    report("1-leaf delta into 100k flat", delta_ns[0], 1,
           "malloc+memcpy 100k, +1", base);
    vv_free(ctx, s.big);
    for (int d = 0; d < NDELTA; d++)
        vv_free(ctx, s.delta[d]);

    /* two levels: 1000 children of 100 leaves each */
    vv_label inner[100];
    for (int k = 0; k < 100; k++)
        inner[k] = ls[k];
    vv *mid = malloc(1000 * sizeof *mid);
    for (int o = 0; o < 1000; o++)
        mid[o] = flat(100, inner, s.x + o * 100);
    CHECK("vv_from_pairs", vv_from_pairs(ctx, 0, 1000, ls, mid, &s.big));
    free(mid);
    for (int d = 0; d < NDELTA; d++) {
        vv leaf;
        long at = d * 1531;
        CHECK("vv_wrap", vv_wrap(ctx, 0, inner[at % 100], one, &leaf));
        CHECK("vv_wrap", vv_wrap(ctx, 0, ls[at / 100], leaf, &s.delta[d]));
        vv_free(ctx, leaf);
    }
    vv_label path[2] = {ls[(5 * 1531) / 100], inner[(5 * 1531) % 100]};
    CHECK("vv_add", vv_add(ctx, s.big, s.delta[5], &out));
    if (vv_get(out, path, 2).num != s.x[5 * 1531] + 1.0)
        die("vv_add delta", 0);
    vv_free(ctx, out);
    delta_ns[1] = time_op(op_delta, &s);
    report("1-leaf delta into 1000x100", delta_ns[1], 1,
           "malloc+memcpy 100k, +1", base);
    vv_free(ctx, s.big);
    for (int d = 0; d < NDELTA; d++)
        vv_free(ctx, s.delta[d]);
    free(ls);
    free(s.x);
}

/* ---- (6): lincomb of a 10-leaf row against a 6-level W ------------------- */

enum { NTYPES = 10, NNAMES = 100, NINPUTS = 2, NSRC = 5, NROW = 10 };
#define NSLOTS (NTYPES * NNAMES) /* source outputs, one per neuron */

typedef struct lin6 {
    vv w, row;
    /* dense form of the same rows: NROW selected rows of NSRC (slot, w) */
    int slot[NROW][NSRC];
    double wt[NROW][NSRC], rw[NROW];
} lin6;

static void op_lincomb(void *p, long i)
{
    lin6 *s = p;
    vv out;
    if (vv_lincomb(ctx, s->row, s->w, &out) != 0)
        die("vv_lincomb", -1);
    vv_free(ctx, out);
}

static void base_lincomb(void *p, long i)
{
    lin6 *s = p;
    double *acc = calloc(NSLOTS, sizeof *acc);
    for (int r = 0; r < NROW; r++)
        for (int k = 0; k < NSRC; k++)
            acc[s->slot[r][k]] += s->rw[r] * s->wt[r][k];
    KEEP(acc);
    free(acc);
}

/* Slot of source k of row (f, n, i): a fixed pseudo-random neuron. */
static int src_slot(int f, int n, int i, int k)
{
    return (
        int)(((unsigned)(f * 7919 + n * 104729 + i * 1299709 + k * 15485863) *
              2654435761u) %
             NSLOTS);
}

static void bench_lincomb(void)
{
    static lin6 s;
    vv_label ty[NTYPES], nm[NNAMES], in[NINPUTS], single;
    for (int k = 0; k < NTYPES; k++)
        ty[k] = label("type%ld", k);
    for (int k = 0; k < NNAMES; k++)
        nm[k] = label("n%03ld", k);
    for (int k = 0; k < NINPUTS; k++)
        in[k] = label("in%ld", k);
    single = label("single", 0);

    /* W[f][n][i][g][ng][single] = weight, built leaf by leaf with axpy */
    s.w = VV_ZERO;
    size_t leaves = 0;
    for (int f = 0; f < NTYPES; f++)
        for (int n = 0; n < NNAMES; n++)
            for (int i = 0; i < NINPUTS; i++)
                for (int k = 0; k < NSRC; k++) {
                    int sl = src_slot(f, n, i, k);
                    vv_label path[6] = {ty[f],           nm[n],
                                        in[i],           ty[sl / NNAMES],
                                        nm[sl % NNAMES], single};
                    vv leaf = vv_number(0.25 + k), t;
                    for (int d = 5; d >= 0; d--) {
                        CHECK("vv_wrap", vv_wrap(ctx, 0, path[d], leaf, &t));
                        vv_free(ctx, leaf);
                        leaf = t;
                    }
                    CHECK("vv_axpy", vv_axpy(ctx, &s.w, 1.0, leaf));
                    vv_free(ctx, leaf);
                    leaves++;
                }
    vv_stats st;
    vv_measure(s.w, &st);
    if (st.depth != 6)
        die("building W", 0);

    /* the row: 10 leaves at depth 3, each selecting one row of W */
    vv_label rl[NROW];
    vv rv[NROW];
    for (int r = 0; r < NROW; r++) {
        int f = r % NTYPES, n = (r * 37) % NNAMES, i = r % NINPUTS;
        vv t1, t2;
        s.rw[r] = 0.5 + r;
        CHECK("vv_wrap", vv_wrap(ctx, 0, in[i], vv_number(s.rw[r]), &t1));
        CHECK("vv_wrap", vv_wrap(ctx, 0, nm[n], t1, &t2));
        rl[r] = ty[f];
        rv[r] = t2;
        vv_free(ctx, t1);
        for (int k = 0; k < NSRC; k++) {
            s.slot[r][k] = src_slot(f, n, i, k);
            s.wt[r][k] = 0.25 + k;
        }
    }
    CHECK("vv_from_pairs", vv_from_pairs(ctx, 0, NROW, rl, rv, &s.row));

    vv out; /* check one output against the dense form */
    CHECK("vv_lincomb", vv_lincomb(ctx, s.row, s.w, &out));
    double want = 0;
    int probe = s.slot[3][2];
    for (int r = 0; r < NROW; r++)
        for (int k = 0; k < NSRC; k++)
            if (s.slot[r][k] == probe)
                want += s.rw[r] * s.wt[r][k];
    vv_label pp[3] = {ty[probe / NNAMES], nm[probe % NNAMES], single};
    if (fabs(vv_get(out, pp, 3).num - want) > 1e-12 * want)
        die("vv_lincomb", 0);
    vv_free(ctx, out);

    char name[64];
    snprintf(name, sizeof name, "lincomb row(10) x W(%zu leaves)", leaves);
    report(name, time_op(op_lincomb, &s), NROW * NSRC, "dense gather 10x5",
           time_op(base_lincomb, &s));
    vv_free(ctx, s.w);
    vv_free(ctx, s.row);
}

int main(void)
{
    ctx = vv_ctx_new(NULL);
    if (!ctx)
        die("vv_ctx_new", DMM_E_NOMEM);
    printf("bench_vv: median of %d repetitions of ~%.0f ms each; ns/leaf "
           "divides by the leaves of the operands named in each case\n\n",
           REPS, TARGET_NS / 1e6);
    bench_arith();
    bench_sum();
    bench_json();
    bench_delta();
    bench_lincomb();

    printf("\n| case | vv ns/op | vv ns/leaf | baseline | baseline ns/op | "
           "ratio |\n|---|---:|---:|---|---:|---:|\n");
    for (int r = 0; r < nrows; r++)
        printf("| %s | %.0f | %.2f | %s | %.0f | %.2f |\n", rows[r].name,
               rows[r].ns, rows[r].ns / rows[r].leaves, rows[r].base_name,
               rows[r].base_ns, rows[r].ns / rows[r].base_ns);
    printf("\n%s: add 1000+1000 within 5x of baseline (ratio %.2f)\n",
           add_ratio <= 5.0 ? "PASS" : "FAIL", add_ratio);
    double worst = delta_ns[0] > delta_ns[1] ? delta_ns[0] : delta_ns[1];
    printf("%s: 1-leaf delta into 100k leaves < 2 us (flat %.0f ns, "
           "1000x100 %.0f ns)\n",
           worst < 2000.0 ? "PASS" : "FAIL", delta_ns[0], delta_ns[1]);
    sink = add_ratio;
    for (int r = 0; r < nrows; r++)
        free((char *)rows[r].name);
    vv_ctx_free(ctx);
    return 0;
}
