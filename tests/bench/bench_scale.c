// SPDX-License-Identifier: MIT
/*
 * The communication one network would need if its neurons were split over
 * P ranks (docs/scale.md): a measured simulation, not a run on MPI. Each
 * network is loaded and run two cycles, so that every output has its real
 * size; then, for P = 2, 8 and 64 and two partitions of the active neurons
 * (contiguous blocks in label order, and round robin), it counts what each
 * down movement must move between ranks: every stream Y[g][ng][o] that a row
 * of a neuron on another rank reads is sent once to that rank, as its
 * numbers (8 bytes each) plus an 8-byte header. Rows that read deeper than
 * an output (part of it) or shallower (a whole neuron or type) are counted
 * as reading the whole output or outputs they touch, an upper bound.
 *
 *   bench_scale NET.json...        (bench_net --emit CASE FILE makes them)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"

typedef struct neuron {
    vv_label type, name;
} neuron;

typedef struct net_view {
    neuron *neu; /* active neurons, label order (W's rows, plus Self) */
    size_t n;
    /* reads: (target neuron, source neuron, output, numbers moved) */
    struct read {
        size_t to, from;
        vv_label out;
        size_t numbers;
    } * reads;
    size_t nreads, cap;
    size_t first; /* reads of the neuron being walked start here */
} net_view;

static void die(const char *what)
{
    fprintf(stderr, "bench_scale: %s\n", what);
    exit(1);
}

/* Stored numbers in v (1 for a bare scalar, 0 for zero). */
static size_t numbers(vv v)
{
    size_t k = v.num != 0;
    vv_iter it;
    vv_label l;
    vv c;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &c))
        k += numbers(c);
    return k;
}

static size_t find(const net_view *w, vv_label t, vv_label n)
{
    for (size_t k = 0; k < w->n; k++)
        if (w->neu[k].type == t && w->neu[k].name == n)
            return k;
    return SIZE_MAX;
}

static void add_read(net_view *w, size_t to, size_t from, vv_label out,
                     size_t nums)
{
    /* One read per (target, source output): a row's several weights on one
     * output, or two inputs reading it, need it sent once. */
    for (size_t k = w->first; k < w->nreads; k++)
        if (w->reads[k].to == to && w->reads[k].from == from &&
            w->reads[k].out == out)
            return;
    if (w->nreads == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 1024;
        w->reads = realloc(w->reads, w->cap * sizeof *w->reads);
        if (!w->reads)
            die("out of memory");
    }
    w->reads[w->nreads++] = (struct read){to, from, out, nums};
}

/* The reads of row (neuron `to`): each source output it touches. */
static void row_reads(net_view *w, size_t to, vv row, vv y)
{
    vv_iter ig, in, io;
    vv_label g, ng, o;
    vv rg, rn, ro;
    vv_iter_init(&ig, row);
    while (vv_iter_next(&ig, &g, &rg)) {
        vv_iter_init(&in, rg);
        while (vv_iter_next(&in, &ng, &rn)) {
            size_t from = find(w, g, ng);
            if (from == SIZE_MAX)
                continue; /* reads an inactive neuron: nothing to send */
            vv yo = vv_child(vv_child(y, g), ng);
            if (rn.num != 0) { /* the whole neuron's output map */
                vv_iter io2;
                vv c;
                vv_iter_init(&io2, yo);
                while (vv_iter_next(&io2, &o, &c))
                    add_read(w, to, from, o, numbers(c));
            }
            vv_iter_init(&io, rn);
            while (vv_iter_next(&io, &o, &ro))
                add_read(w, to, from, o, numbers(vv_child(yo, o)));
        }
    }
}

static void view_make(dmm_net *net, net_view *w)
{
    memset(w, 0, sizeof *w);
    vv m = dmm_net_matrix(net);
    dmm_error err;
    if (dmm_net_outputs_build(net, &err))
        die(err.text);
    vv y = dmm_net_outputs(net);
    size_t cap = 0;
    vv_iter it, in;
    vv_label t, n;
    vv mt, mn;
    vv_iter_init(&it, m);
    while (vv_iter_next(&it, &t, &mt)) {
        vv_iter_init(&in, mt);
        while (vv_iter_next(&in, &n, &mn)) {
            if (w->n == cap) {
                cap = cap ? 2 * cap : 256;
                w->neu = realloc(w->neu, cap * sizeof *w->neu);
                if (!w->neu)
                    die("out of memory");
            }
            w->neu[w->n++] = (neuron){t, n};
        }
    }
    size_t k = 0;
    vv_iter_init(&it, m);
    while (vv_iter_next(&it, &t, &mt)) {
        vv_iter_init(&in, mt);
        while (vv_iter_next(&in, &n, &mn)) {
            vv_iter ii;
            vv_label input;
            vv row;
            w->first = w->nreads;
            vv_iter_init(&ii, mn);
            while (vv_iter_next(&ii, &input, &row))
                row_reads(w, k, row, y);
            k++;
        }
    }
}

typedef struct trip {
    size_t from;
    vv_label out;
    unsigned rank, src; /* receiving and sending rank */
    size_t nums;
} trip;

static int trip_cmp(const void *pa, const void *pb)
{
    const trip *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->from != b->from)
        return a->from < b->from ? -1 : 1;
    return a->out < b->out ? -1 : a->out > b->out;
}

typedef struct traffic {
    double bytes;    /* per cycle, all ranks */
    double max_send; /* the busiest rank's bytes sent */
    size_t pairs;    /* (sender, receiver) pairs that talk */
    double remote;   /* share of the reads that cross ranks */
} traffic;

static traffic simulate(const net_view *w, unsigned p, bool blocks)
{
    traffic tr = {0};
    double *send = calloc(p, sizeof *send);
    bool *talk = calloc((size_t)p * p, sizeof *talk);
    if (!send || !talk)
        die("out of memory");
    size_t per = (w->n + p - 1) / p, nremote = 0;
    /* A stream read by several neurons of one rank is sent there once:
     * the (rank, source, output) triples of the remote reads, sorted, are
     * counted once each. */
    trip *tp = malloc((w->nreads ? w->nreads : 1) * sizeof *tp);
    if (!tp)
        die("out of memory");
    size_t nt = 0;
    for (size_t k = 0; k < w->nreads; k++) {
        const struct read *r = &w->reads[k];
        unsigned rt = (unsigned)(blocks ? r->to / per : r->to % p);
        unsigned rf = (unsigned)(blocks ? r->from / per : r->from % p);
        if (rt == rf)
            continue;
        nremote++;
        tp[nt++] = (trip){r->from, r->out, rt, rf, r->numbers};
        talk[(size_t)rf * p + rt] = true;
    }
    qsort(tp, nt, sizeof *tp, trip_cmp);
    for (size_t i = 0; i < nt; i++) {
        if (i && !trip_cmp(&tp[i - 1], &tp[i]))
            continue;
        double b = 8.0 * (double)tp[i].nums + 8.0;
        tr.bytes += b;
        send[tp[i].src] += b;
    }
    for (unsigned r = 0; r < p; r++)
        if (send[r] > tr.max_send)
            tr.max_send = send[r];
    for (size_t i = 0; i < (size_t)p * p; i++)
        tr.pairs += talk[i];
    tr.remote = w->nreads ? (double)nremote / (double)w->nreads : 0;
    free(tp);
    free(send);
    free(talk);
    return tr;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: bench_scale NET.json...");
    printf("| network | neurons | reads | ranks | partition | bytes/cycle | "
           "busiest rank sends | rank pairs | reads across ranks |\n"
           "|---|---:|---:|---:|---|---:|---:|---:|---:|\n");
    for (int a = 1; a < argc; a++) {
        vv_ctx *vc = vv_ctx_new(NULL);
        dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
        if (!reg || dmm_registry_add_builtins(reg))
            die("out of memory");
        dmm_net *net;
        dmm_error err;
        if (dmm_net_load_file(vc, reg, argv[a], &net, &err) ||
            dmm_net_step(net, &err) || dmm_net_step(net, &err))
            die(err.text);
        net_view w;
        view_make(net, &w);
        const char *name = strrchr(argv[a], '/');
        name = name ? name + 1 : argv[a];
        static const unsigned ranks[] = {2, 8, 64};
        for (int r = 0; r < 3; r++)
            for (int b = 1; b >= 0; b--) {
                traffic t = simulate(&w, ranks[r], b);
                printf("| %s | %zu | %zu | %u | %s | %.0f | %.0f | %zu | "
                       "%.1f%% |\n",
                       name, w.n, w.nreads, ranks[r],
                       b ? "blocks" : "round robin", t.bytes, t.max_send,
                       t.pairs, 100 * t.remote);
            }
        free(w.neu);
        free(w.reads);
        dmm_net_free(net);
        dmm_registry_free(reg);
        vv_ctx_free(vc);
    }
    return 0;
}
