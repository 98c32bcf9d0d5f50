// SPDX-License-Identifier: MIT
/*
 * The cost of fields (issue 14, docs/fields.md): a ring of N tanh neurons
 * embedded on a line, run (plain) without fields, (placed) with positions
 * and a field neuron but no modulation, (modulated) with an input field over
 * all N, and (identity) with one extra identity neuron per ring neuron in
 * place of the modulation. Prints ns per cycle and the two ratios issue 14
 * sets: placed / plain (target 1: unmodulated networks unchanged) and the
 * modulation's extra cost per target over an extra identity neuron's (target
 * at most 2). `bench_fields [N]`.
 *
 * `bench_fields --instructions CYCLES [N]`: instead of timing, each case
 * runs two cycles to warm up, then CYCLES cycles with callgrind collecting,
 * the counts dumped under the case's name (outside valgrind the requests do
 * nothing); tests/bench/bench-fields-instructions.sh reads them and prints
 * the same ratios in instructions, which a shared machine does not blur.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <valgrind/callgrind.h>

#include "bench_clock.h"
#include "dmm.h"

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_fields: %s: %s\n", what, why);
    exit(1);
}

static void put(vv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(vv_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp || vv_buf_append(b, tmp, (size_t)n))
        die("put", "buffer");
}

enum { PLAIN, PLACED, MODULATED, IDENTITY };

/* The ring: tanh/i/x <- 0.9 tanh/(i-1)/x + 0.1 identity/c/one. */
static void gen(vv_buf *b, int n, int kind)
{
    put(b, "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
           "{\"accum\": {\"self\": {\"single\": 1}}}}}},\n\"links\": [");
    put(b, "[\"identity/c/one\", \"identity/c/one\", 1]");
    if (kind != PLAIN)
        put(b, ", [\"identity/f/single\", \"identity/f/single\", 1]");
    for (int i = 0; i < n; i++) {
        put(b, ",\n[\"tanh/n%d/x\", \"tanh/n%d/x\", 0.9]", i, (i + n - 1) % n);
        put(b, ", [\"tanh/n%d/x\", \"identity/c/one\", 0.1]", i);
        if (kind == IDENTITY)
            put(b, ", [\"identity/m%d/x\", \"tanh/n%d/x\", 1]", i, i);
    }
    put(b, "],\n\"outputs\": {\"identity\": {\"c\": {\"one\": 1}");
    if (kind != PLAIN) {
        put(b, ", \"f\": {\"single\": {");
        for (int i = 0; i < n; i++)
            put(b, "%s\"%d\": %g", i ? ", " : "", i, 0.5 + 0.5 * (i % 7) / 7);
        put(b, "}}");
    }
    put(b, "}}");
    if (kind != PLAIN) {
        put(b, ",\n\"positions\": {");
        for (int i = 0; i < n; i++)
            put(b, "%s\"tanh/n%d\": [%d]", i ? ", " : "", i, i);
        put(b, "}");
    }
    if (kind == MODULATED)
        put(b, ",\n\"modulations\": [{\"name\": \"gate\", \"field\": "
               "\"identity/f/single\", \"target\": \"input\", \"neurons\": "
               "\"embedded\", \"mode\": \"multiply\"}]");
    put(b, "}");
}

static void step_fn(void *st, long i)
{
    (void)i;
    dmm_error err;
    if (dmm_net_step(st, &err))
        die("step", err.text);
}

/* Instructions mode: CYCLES cycles under callgrind, dumped as `name`. */
static void count(dmm_net *net, long cycles, const char *name)
{
    step_fn(net, 0);
    step_fn(net, 1);
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
    for (long i = 0; i < cycles; i++)
        step_fn(net, i);
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT(name);
}

int main(int argc, char **argv)
{
    long cycles = 0;
    if (argc >= 3 && !strcmp(argv[1], "--instructions")) {
        cycles = atol(argv[2]);
        if (cycles < 1)
            die("--instructions", "the cycle count must be at least 1");
        argv += 2;
        argc -= 2;
    }
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    if (n < 1)
        die("N", "the ring needs at least one neuron");
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
    if (!reg || dmm_registry_add_builtins(reg))
        die("world", "out of memory");
    static const char *const names[] = {"plain", "placed", "modulated",
                                        "identity"};
    double ns[4];
    for (int kind = 0; kind < 4; kind++) {
        vv_buf b = {0};
        gen(&b, n, kind);
        dmm_net *net;
        dmm_error err;
        if (dmm_net_load_text(vc, reg, b.data, b.len, names[kind], &net, &err))
            die(names[kind], err.text);
        free(b.data);
        if (cycles) {
            count(net, cycles, names[kind]);
            dmm_net_free(net);
            continue;
        }
        ns[kind] = bench_time(step_fn, net, 40e6, 5);
        printf("%-10s %5d neurons  %10.0f ns/cycle\n", names[kind], n,
               ns[kind]);
        dmm_net_free(net);
    }
    if (cycles) {
        dmm_registry_free(reg);
        vv_ctx_free(vc);
        return 0;
    }
    double unchanged = ns[PLACED] / ns[PLAIN];
    double per_mod = (ns[MODULATED] - ns[PLACED]) / n;
    double per_id = (ns[IDENTITY] - ns[PLACED]) / n;
    printf("placed / plain: %.3f (target 1: positions and an unused field "
           "cost nothing)\n",
           unchanged);
    printf("modulation per target: %.1f ns; identity neuron: %.1f ns; "
           "ratio %.2f (target <= 2)\n",
           per_mod, per_id, per_mod / per_id);
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    return 0;
}
