// SPDX-License-Identifier: MIT
/*
 * Where members run: threads of this process, and with MPI the ranks of the
 * job. Members differ in cost, so they are handed out one at a time to
 * whoever is free (dynamic assignment), never split up front.
 *
 * Threads pull the next member of the current batch from a counter under the
 * runner's mutex and leave their lines on a list that the caller's thread
 * delivers. Under MPI, rank 0's main thread is the dispatcher (the only
 * thread that calls MPI, so MPI_THREAD_FUNNELED is enough): it takes members
 * from the same counter for the other ranks, which ask for work with their
 * last line (tag READY) and get a member as JSON text (WORK) or STOP. A rank
 * that asks when the batch is used up waits, unanswered, for the next batch
 * (the evolutionary search runs one batch per generation) or for STOP.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sweep_internal.h"

#ifdef DMM_HAVE_MPI
#include <mpi.h>
#endif

enum { TAG_READY = 1, TAG_WORK = 2, TAG_STOP = 3, MAX_JOBS = 256 };

struct dmm_sweep_runner {
    const dmm_sweep *s;
    char *exe;
    unsigned jobs;
    int mpi, rank, size;
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t work; /* a batch, or stop */
    pthread_cond_t done; /* a line */
    const json_t *batch; /* borrowed, while a run lasts */
    size_t next, n;
    char **lines; /* finished, not delivered yet */
    size_t nlines, caplines;
    int stop;
    char *waiting; /* [size]: rank r asked for work and was not answered */
};

static char *eval_or_oom(const dmm_sweep *s, const char *exe, const json_t *m)
{
    char *line = dmm_sweep_eval(s, exe, m);
    if (!line) /* out of memory: still a line, so the sweep goes on */
        line = strdup("{\"member\": null, \"error\": \"out of memory\", "
                      "\"seconds\": 0}");
    return line;
}

static void *worker(void *arg)
{
    dmm_sweep_runner *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && (!r->batch || r->next >= r->n))
            pthread_cond_wait(&r->work, &r->mu);
        if (r->stop)
            break;
        const json_t *m = json_array_get(r->batch, r->next++);
        pthread_mutex_unlock(&r->mu);
        char *line = eval_or_oom(r->s, r->exe, m);
        pthread_mutex_lock(&r->mu);
        if (r->nlines == r->caplines) {
            size_t cap = r->caplines ? r->caplines * 2 : 64;
            char **nl = realloc(r->lines, cap * sizeof *nl);
            if (!nl)
                abort(); /* cannot report, cannot drop a member silently */
            r->lines = nl;
            r->caplines = cap;
        }
        r->lines[r->nlines++] = line;
        pthread_cond_signal(&r->done);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int dmm_sweep_mpi_available(void)
{
#ifdef DMM_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

/* Started by mpirun (Open MPI, or a PMI launcher)? */
static int under_mpirun(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") ||
           getenv("PMIX_RANK");
}

int dmm_sweep_mpi_init(int *argc, char ***argv)
{
    if (!under_mpirun())
        return 0;
#ifdef DMM_HAVE_MPI
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) !=
        MPI_SUCCESS)
        return -1;
    if (provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        return -1;
    }
    return 1;
#else
    (void)argc;
    (void)argv;
    return -2;
#endif
}

void dmm_sweep_mpi_finalize(void)
{
#ifdef DMM_HAVE_MPI
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Finalize();
#endif
}

int dmm_sweep_mpi_rank(void)
{
#ifdef DMM_HAVE_MPI
    int init = 0, fin = 0, rank = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
#else
    return 0;
#endif
}

int dmm_sweep_runner_new(const dmm_sweep *s, const char *exe, unsigned jobs,
                         int use_mpi, dmm_sweep_runner **out, dmm_error *err)
{
    *out = NULL;
    if (jobs < 1 || jobs > MAX_JOBS)
        return dmm_error_set(err, DMM_E_INVAL, "", "jobs must be 1 to %d",
                             MAX_JOBS);
    dmm_sweep_runner *r = calloc(1, sizeof *r);
    if (!r || !(r->exe = strdup(exe))) {
        free(r);
        return dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
    }
    r->s = s;
    r->jobs = jobs;
    r->size = 1;
#ifdef DMM_HAVE_MPI
    if (use_mpi) {
        r->mpi = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &r->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &r->size);
        if (!(r->waiting = calloc((size_t)r->size, 1))) {
            free(r->exe);
            free(r);
            return dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
        }
    }
#else
    if (use_mpi) {
        free(r->exe);
        free(r);
        return dmm_error_set(err, DMM_E_STATE, "", "built without MPI");
    }
#endif
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->work, NULL);
    pthread_cond_init(&r->done, NULL);
    if (r->rank == 0) {
        if (!(r->threads = calloc(jobs, sizeof *r->threads))) {
            dmm_sweep_runner_free(r);
            return dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
        }
        for (; r->nthreads < jobs; r->nthreads++)
            if (pthread_create(&r->threads[r->nthreads], NULL, worker, r)) {
                dmm_sweep_runner_free(r);
                return dmm_error_set(err, DMM_E_NOMEM, "",
                                     "cannot start a thread");
            }
    }
    *out = r;
    return 0;
}

int dmm_sweep_runner_rank(const dmm_sweep_runner *r)
{
    return r->rank;
}
int dmm_sweep_runner_size(const dmm_sweep_runner *r)
{
    return r->size;
}

/* Deliver the lines the threads left; mu held, released around fn. */
static size_t deliver(dmm_sweep_runner *r, dmm_sweep_line_fn fn, void *ud)
{
    size_t k = 0;
    while (r->nlines) {
        char **lines = r->lines;
        size_t n = r->nlines;
        r->lines = NULL;
        r->nlines = r->caplines = 0;
        pthread_mutex_unlock(&r->mu);
        for (size_t i = 0; i < n; i++) {
            fn(ud, lines[i]);
            free(lines[i]);
        }
        free(lines);
        k += n;
        pthread_mutex_lock(&r->mu);
    }
    return k;
}

#ifdef DMM_HAVE_MPI
/* Rank 0: send the next member to rank dst, or leave it waiting; mu held. */
static int hand_out(dmm_sweep_runner *r, int dst)
{
    if (!r->batch || r->next >= r->n) {
        r->waiting[dst] = 1;
        return 0;
    }
    const json_t *m = json_array_get(r->batch, r->next++);
    char *text = json_dumps(m, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!text)
        return DMM_E_NOMEM;
    r->waiting[dst] = 0;
    MPI_Send(text, (int)strlen(text), MPI_CHAR, dst, TAG_WORK, MPI_COMM_WORLD);
    free(text);
    return 1;
}

/* Receive a READY from src (any if MPI_ANY_SOURCE); new in *line (NULL
 * when it carried none). Returns the sender. */
static int recv_ready(int src, char **line)
{
    MPI_Status st;
    int count;
    MPI_Probe(src, TAG_READY, MPI_COMM_WORLD, &st);
    MPI_Get_count(&st, MPI_CHAR, &count);
    char *buf = malloc((size_t)count + 1);
    if (!buf)
        abort();
    MPI_Recv(buf, count, MPI_CHAR, st.MPI_SOURCE, TAG_READY, MPI_COMM_WORLD,
             MPI_STATUS_IGNORE);
    buf[count] = '\0';
    if (count == 0) {
        free(buf);
        buf = NULL;
    }
    *line = buf;
    return st.MPI_SOURCE;
}
#endif

int dmm_sweep_runner_run(dmm_sweep_runner *r, const json_t *members,
                         dmm_sweep_line_fn fn, void *ud, dmm_error *err)
{
    if (r->rank != 0)
        return dmm_error_set(err, DMM_E_STATE, "",
                             "only rank 0 hands out members");
    size_t n = json_array_size(members), got = 0;
    pthread_mutex_lock(&r->mu);
    r->batch = members;
    r->next = 0;
    r->n = n;
    pthread_cond_broadcast(&r->work);
#ifdef DMM_HAVE_MPI
    if (r->mpi) {
        for (int q = 1; q < r->size; q++)
            if (r->waiting[q] && hand_out(r, q) < 0)
                abort();
        while (got < n) {
            got += deliver(r, fn, ud);
            if (got >= n)
                break;
            int flag = 0;
            pthread_mutex_unlock(&r->mu);
            MPI_Iprobe(MPI_ANY_SOURCE, TAG_READY, MPI_COMM_WORLD, &flag,
                       MPI_STATUS_IGNORE);
            if (flag) {
                char *line;
                int src = recv_ready(MPI_ANY_SOURCE, &line);
                if (line) {
                    fn(ud, line);
                    free(line);
                    got++;
                }
                pthread_mutex_lock(&r->mu);
                if (hand_out(r, src) < 0)
                    abort();
                continue;
            }
            /* Nothing from the ranks: wait a little for our own threads. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 500000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_mutex_lock(&r->mu);
            if (!r->nlines)
                pthread_cond_timedwait(&r->done, &r->mu, &ts);
        }
        r->batch = NULL;
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
#endif
    while (got < n) {
        got += deliver(r, fn, ud);
        if (got < n && !r->nlines)
            pthread_cond_wait(&r->done, &r->mu);
    }
    r->batch = NULL;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int dmm_sweep_runner_serve(dmm_sweep_runner *r, dmm_error *err)
{
#ifdef DMM_HAVE_MPI
    if (!r->mpi || r->rank == 0)
        return dmm_error_set(err, DMM_E_STATE, "", "rank 0 does not serve");
    char *line = NULL;
    for (;;) {
        MPI_Send(line ? line : "", line ? (int)strlen(line) : 0, MPI_CHAR, 0,
                 TAG_READY, MPI_COMM_WORLD);
        free(line);
        line = NULL;
        MPI_Status st;
        int count;
        MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        MPI_Get_count(&st, MPI_CHAR, &count);
        char *text = malloc((size_t)count + 1);
        if (!text)
            abort();
        MPI_Recv(text, count, MPI_CHAR, 0, st.MPI_TAG, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        text[count] = '\0';
        if (st.MPI_TAG == TAG_STOP) {
            free(text);
            return 0;
        }
        json_error_t je;
        json_t *m = json_loads(text, 0, &je);
        free(text);
        line = m ? eval_or_oom(r->s, r->exe, m)
                 : strdup("{\"member\": null, \"error\": \"unreadable member "
                          "from rank 0\", \"seconds\": 0}");
        json_decref(m);
    }
#else
    return dmm_error_set(err, DMM_E_STATE, "", "built without MPI");
#endif
}

void dmm_sweep_runner_free(dmm_sweep_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->work);
    pthread_mutex_unlock(&r->mu);
    for (unsigned i = 0; i < r->nthreads; i++)
        pthread_join(r->threads[i], NULL);
#ifdef DMM_HAVE_MPI
    /* Every other rank is either waiting for work or has not asked yet:
     * take its first READY if needed, then tell it to stop. */
    if (r->mpi && r->rank == 0)
        for (int q = 1; q < r->size; q++) {
            if (!r->waiting[q]) {
                char *line;
                recv_ready(q, &line);
                free(line);
            }
            MPI_Send("", 0, MPI_CHAR, q, TAG_STOP, MPI_COMM_WORLD);
        }
#endif
    for (size_t i = 0; i < r->nlines; i++)
        free(r->lines[i]);
    free(r->lines);
    free(r->threads);
    free(r->waiting);
    free(r->exe);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->done);
    free(r);
}
