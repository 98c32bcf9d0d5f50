// SPDX-License-Identifier: MIT
/*
 * The cycle's worker threads: started once by dmm_net_set_threads and kept
 * until the network is freed, woken for each piece of work and waited for.
 * Work is split into contiguous chunks by index, chunk k writing only its
 * own items and worker k's records, so what a cycle computes does not depend
 * on the thread count. Chunk k is worker k's (the caller is worker 0), so
 * that each piece of work over the neurons finds their records in the cache
 * of the thread that wrote them in the piece before; when chunks went to
 * whichever thread came first, a worker late by a little swapped them, and
 * the records came from the other core's cache. A thread done with its own
 * chunk runs those not yet started, so when a worker is not running (other
 * processes hold the processors) the caller runs its chunk instead of
 * waiting for it.
 *
 * A worker that another process has taken the processor from in the middle
 * of its chunk cannot be helped: the caller waits until it runs again,
 * which on an oversubscribed machine is a scheduler time slice (ms), several
 * times a cycle. So each piece of work (each task function) is timed, per
 * item, both ways: split over the threads and on the caller alone, and
 * runs the way that has been faster lately (struct dmm__adapt), trying the
 * other way now and then to see whether the machine has changed. On a
 * quiet machine the split wins and the serial tries are rare; on a busy one
 * the cycle runs on the caller, as fast as on one thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "net_internal.h"

#define MAX_THREADS 64

struct dmm__pool {
    unsigned n; /* workers, the calling thread included */
    pthread_t *tid;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    /* Work is handed off by bumping gen (under mu, so a worker about to
     * sleep sees it or is woken) and waited for on pending. Both sides spin
     * a while before sleeping: waking a sleeping thread costs tens of
     * microseconds (more on a virtual machine), several times a cycle. */
    _Atomic uint64_t gen;
    _Atomic unsigned pending; /* chunks not yet finished */
    _Atomic uint64_t taken;   /* bit k: chunk k started */
    unsigned sleepers;        /* workers waiting on go (under mu) */
    unsigned spins; /* SPINS, or 0 with more threads than processors */
    bool stop;
    /* set while the caller runs pieces alone: workers stop polling and
     * sleep, so that they take no processor time from it (on a busy
     * machine the processes share the processors, and a polling worker
     * is time the caller does not get) */
    _Atomic bool hold;
    dmm_net *net;
    dmm__task_fn fn;
    void *ud;
    size_t items;
    unsigned cap;          /* entries of tid, scratch and arg */
    dmm__scratch *scratch; /* [0] unused (net->s0) */
    struct worker_arg *arg;
    /* how each task function has been running (the calling thread's) */
    dmm__adapt adapt[DMM__ADAPT_FNS];
    dmm__task_fn adapt_fn[DMM__ADAPT_FNS];
    dmm__pool_mode mode;
    uint64_t nsplit, nserial; /* calls run each way (dmm__pool_counts) */
};

typedef struct worker_arg {
    struct dmm__pool *pool;
    unsigned k;
} worker_arg;

static void chunk(struct dmm__pool *p, unsigned k)
{
    size_t lo = p->items * k / p->n, hi = p->items * (k + 1) / p->n;
    if (lo < hi)
        p->fn(p->net, k, lo, hi, p->ud);
}

/* Run chunk k unless another thread has started it; true when this was
 * the last chunk to finish. */
static bool try_chunk(struct dmm__pool *p, unsigned k)
{
    uint64_t bit = (uint64_t)1 << k;
    if (atomic_load(&p->taken) & bit || atomic_fetch_or(&p->taken, bit) & bit)
        return false;
    chunk(p, k);
    return atomic_fetch_sub(&p->pending, 1) == 1;
}

/* Worker `home`'s chunk, then any not started; true when this thread
 * finished the last. A thread late for one call may run chunks of the
 * next: fn, ud and items are written before taken is reset, so it runs
 * that call's chunks. */
static bool claim_chunks(struct dmm__pool *p, unsigned home)
{
    bool last = try_chunk(p, home);
    for (unsigned k = 0; k < p->n; k++)
        if (k != home)
            last |= try_chunk(p, k);
    return last;
}

/* Polls before sleeping: about a few hundred microseconds. */
#define SPINS (1u << 14)

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void *worker_main(void *arg)
{
    worker_arg a = *(worker_arg *)arg;
    struct dmm__pool *p = a.pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = seen;
        for (unsigned i = 0;
             i < p->spins && g == seen &&
             !atomic_load_explicit(&p->hold, memory_order_relaxed);
             i++) {
            cpu_relax();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) { /* sleep until work or stop (pool_stop) */
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (!p->stop && (g = atomic_load(&p->gen)) == seen)
                pthread_cond_wait(&p->go, &p->mu);
            p->sleepers--;
            bool stop = p->stop;
            pthread_mutex_unlock(&p->mu);
            if (stop)
                break;
        }
        seen = g;
        if (claim_chunks(p, a.k)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* ---- serial or split: the choice per task function ----------------------
 *
 * Costs are wall-clock nanoseconds per item, the last few calls averaged
 * (a quarter of the new one each time) so that one preempted call does not
 * swing the choice. The way not chosen is tried again after `wait` calls,
 * a wait that doubles (to ADAPT_MAX_WAIT) while the tries confirm the
 * choice and starts again from ADAPT_MIN_WAIT when one changes it: on a
 * quiet machine the serial tries cost a fraction of a percent. */
#define ADAPT_MIN_WAIT 8
#define ADAPT_MAX_WAIT 512

static bool adapt_par_better(const dmm__adapt *a)
{
    return a->par <= a->ser;
}

bool dmm__adapt_choose(dmm__adapt *a)
{
    if (a->par == 0)
        return true; /* measure both ways first */
    if (a->ser == 0)
        return false;
    bool best = adapt_par_better(a);
    if (a->since < a->wait) {
        a->since++;
        return best;
    }
    a->since = 0;
    a->trying = true;
    return !best;
}

void dmm__adapt_record(dmm__adapt *a, bool par, double ns_per_item)
{
    double *c = par ? &a->par : &a->ser;
    bool was = adapt_par_better(a);
    if (a->trying || *c == 0)
        *c = ns_per_item; /* a try is news: taken as it is */
    else
        *c += (ns_per_item - *c) / 4;
    if (a->trying) {
        a->trying = false;
        if (adapt_par_better(a) == was)
            a->wait = a->wait ? (a->wait < ADAPT_MAX_WAIT ? 2 * a->wait
                                                          : ADAPT_MAX_WAIT)
                              : ADAPT_MIN_WAIT;
        else
            a->wait = ADAPT_MIN_WAIT;
    }
    if (!a->wait)
        a->wait = ADAPT_MIN_WAIT;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* fn's record (the last one, shared, when there are more task functions
 * than records: its choice is then only less apt). */
static dmm__adapt *adapt_of(struct dmm__pool *p, dmm__task_fn fn)
{
    for (unsigned i = 0; i < DMM__ADAPT_FNS; i++) {
        if (p->adapt_fn[i] == fn)
            return &p->adapt[i];
        if (!p->adapt_fn[i]) {
            p->adapt_fn[i] = fn;
            return &p->adapt[i];
        }
    }
    return &p->adapt[DMM__ADAPT_FNS - 1];
}

static void run_split(struct dmm__pool *p, dmm_net *net, size_t n,
                      dmm__task_fn fn, void *ud);

/* A piece run alone expected to take this long (ns) sends the workers to
 * sleep at once (struct dmm__pool's hold). */
#define HOLD_NS 100e3

void dmm__parallel(dmm_net *net, size_t n, dmm__task_fn fn, void *ud)
{
    struct dmm__pool *p = net->pool;
    if (!p || n < 2) {
        if (n)
            fn(net, 0, 0, n, ud);
        return;
    }
    dmm__adapt *a = adapt_of(p, fn);
    bool par = p->mode == DMM__POOL_SPLIT ||
               (p->mode == DMM__POOL_ADAPT && dmm__adapt_choose(a));
    double t0 = now_ns();
    if (par) {
        atomic_store_explicit(&p->hold, false, memory_order_relaxed);
        run_split(p, net, n, fn, ud);
    } else {
        /* Only for a piece long enough that they would poll through most
         * of it: after a short one the next piece is soon, and finds them
         * polling rather than asleep. */
        if (a->ser * (double)n >= HOLD_NS)
            atomic_store_explicit(&p->hold, true, memory_order_relaxed);
        fn(net, 0, 0, n, ud);
    }
    if (p->mode == DMM__POOL_ADAPT)
        dmm__adapt_record(a, par, (now_ns() - t0) / (double)n);
    if (par)
        p->nsplit++;
    else
        p->nserial++;
}

/* fn over [0, n) in p->n chunks on the workers and the caller. */
static void run_split(struct dmm__pool *p, dmm_net *net, size_t n,
                      dmm__task_fn fn, void *ud)
{
    pthread_mutex_lock(&p->mu);
    p->net = net;
    p->fn = fn;
    p->ud = ud;
    p->items = n;
    atomic_store(&p->pending, p->n);
    atomic_store(&p->taken, 0);
    atomic_fetch_add(&p->gen, 1);
    if (p->sleepers)
        pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    claim_chunks(p, 0);
    for (unsigned i = 0; i < p->spins && atomic_load(&p->pending); i++)
        cpu_relax();
    if (!atomic_load(&p->pending))
        return;
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending))
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void dmm__pool_set_mode(dmm_net *net, dmm__pool_mode mode)
{
    if (net->pool)
        net->pool->mode = mode;
}

void dmm__pool_counts(const dmm_net *net, uint64_t *split, uint64_t *serial)
{
    *split = net->pool ? net->pool->nsplit : 0;
    *serial = net->pool ? net->pool->nserial : 0;
}

dmm__scratch *dmm__scratch_of(dmm_net *net, unsigned worker)
{
    return worker == 0 ? &net->s0 : &net->pool->scratch[worker];
}

/* Free the pool's record and arrays (p may be NULL or partly made). */
static void pool_release(vv_ctx *vc, struct dmm__pool *p)
{
    if (!p)
        return;
    dmm__free(vc, p->tid, p->cap * sizeof *p->tid);
    dmm__free(vc, p->scratch, p->cap * sizeof *p->scratch);
    dmm__free(vc, p->arg, p->cap * sizeof *p->arg);
    dmm__free(vc, p, sizeof *p);
}

static void pool_stop(dmm_net *net)
{
    struct dmm__pool *p = net->pool;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (unsigned k = 1; k < p->n; k++)
        pthread_join(p->tid[k], NULL);
    for (unsigned k = 1; k < p->n; k++)
        dmm__scratch_free(net->vc, &p->scratch[k]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pool_release(net->vc, p);
    net->pool = NULL;
    net->threads = 1;
}

void dmm__pool_free(dmm_net *net)
{
    pool_stop(net);
    dmm__scratch_free(net->vc, &net->s0);
    dmm__free(net->vc, net->fail, net->nfail * sizeof *net->fail);
    net->fail = NULL;
    net->nfail = 0;
}

int dmm_net_set_threads(dmm_net *net, unsigned n, dmm_error *err)
{
    dmm_error_clear(err);
    if (n < 1 || n > MAX_THREADS)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "threads must be from 1 to %d, not %u",
                             MAX_THREADS, n);
    if (n == net->threads)
        return 0;
    pool_stop(net);
    if (n == 1)
        return 0;
    struct dmm__pool *p = dmm__calloc(net->vc, 1, sizeof *p);
    if (p) {
        p->cap = n;
        p->tid = dmm__calloc(net->vc, n, sizeof *p->tid);
        p->scratch = dmm__calloc(net->vc, n, sizeof *p->scratch);
        p->arg = dmm__calloc(net->vc, n, sizeof *p->arg);
    }
    if (!p || !p->tid || !p->scratch || !p->arg) {
        pool_release(net->vc, p);
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                             dmm_strerror(DMM_E_NOMEM));
    }
    p->n = 1;
    /* Always split by default: the timed choice (DMM__POOL_ADAPT) ran 84 %
     * of the pieces alone on a quiet machine (1.09x against the plain
     * CSR's 1.92x), so it stays an option until that is understood. */
    p->mode = DMM__POOL_SPLIT;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->spins = cpus > 0 && n <= (unsigned long)cpus ? SPINS : 0;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    net->pool = p;
    for (unsigned k = 1; k < n; k++) {
        worker_arg *a = &p->arg[k];
        *a = (worker_arg){p, k};
        if (pthread_create(&p->tid[k], NULL, worker_main, a)) {
            pool_stop(net);
            return dmm_error_set(err, DMM_E_NOMEM, "",
                                 "cannot start worker thread %u of %u", k, n);
        }
        p->n = k + 1;
    }
    net->threads = n;
    return 0;
}

unsigned dmm_net_threads(const dmm_net *net)
{
    return net->threads;
}
