// SPDX-License-Identifier: MIT
/*
 * Benchmark of the live server (issue 5): `dmm serve` (env DMM_EXE) on a
 * small network at --rate R, its achieved cycles per second with no clients
 * and with NCLIENTS clients that each keep setting a weight and are
 * subscribed, and the latency of every reply. Prints achieved / requested
 * rates, the latency median and p99, and a PASS/FAIL line for "the rate
 * with the clients is at least 0.95 x the rate without". Exits non-zero only
 * when something is wrong (a reply missing or an error reply).
 * `bench_serve [RATE...]` (numbers or "max"; default 100 1000 max).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_child.h"
#include "bench_clock.h"

enum {
    NCLIENTS = 50,
    EDIT_EVERY_MS = 20, /* each client sends one set this often */
    MAX_SAMPLES = 1 << 20,
    BUF = 1 << 16,
};

static double seconds = 3; /* each measuring window (env DMM_BENCH_SECONDS) */

static void die(const char *what)
{
    fprintf(stderr, "bench_serve: %s%s%s\n", what, errno ? ": " : "",
            errno ? strerror(errno) : "");
    exit(1);
}

typedef struct conn {
    int fd;
    char buf[BUF];
    size_t len;
    double sent_at; /* the outstanding request's time, 0 when none */
    double next;    /* when to send the next set */
    unsigned k;
} conn;

static void conn_open(conn *c, const char *addr)
{
    const char *why;
    if ((c->fd = bench_connect(addr, &why)) < 0)
        die(why);
    c->len = 0;
    c->sent_at = 0;
}

static void conn_send(conn *c, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(c->fd, s, n);
        if (w <= 0)
            die("cannot write to the server");
        s += w;
        n -= (size_t)w;
    }
}

/* new (free()): the next complete line already read, or NULL. */
static char *conn_take(conn *c)
{
    char *nl = memchr(c->buf, '\n', c->len);
    if (!nl)
        return NULL;
    size_t n = (size_t)(nl - c->buf);
    char *line = malloc(n + 1);
    memcpy(line, c->buf, n);
    line[n] = '\0';
    memmove(c->buf, nl + 1, c->len - n - 1);
    c->len -= n + 1;
    return line;
}

/* Read what is there (fd readable). False at EOF. */
static bool conn_fill(conn *c)
{
    if (c->len == sizeof c->buf)
        die("a line longer than the benchmark's buffer");
    ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    if (r <= 0)
        return false;
    c->len += (size_t)r;
    return true;
}

/* Blocking: the next reply line (events skipped), as JSON (new). */
static json_t *conn_reply(conn *c)
{
    for (;;) {
        char *line;
        while ((line = conn_take(c))) {
            json_t *j = json_loads(line, 0, NULL);
            free(line);
            if (j && json_object_get(j, "ok"))
                return j;
            json_decref(j);
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 30000) != 1 || !conn_fill(c))
            die("no reply from the server");
    }
}

static json_t *rpc(conn *c, const char *req)
{
    conn_send(c, req);
    conn_send(c, "\n");
    json_t *r = conn_reply(c);
    if (!json_is_true(json_object_get(r, "ok")))
        die("the server refused a request of the benchmark");
    return r;
}

typedef struct server {
    pid_t pid;
    char addr[256];
} server;

static void server_start(server *s, const char *net, const char *rate)
{
    const char *exe = getenv("DMM_EXE");
    if (!exe)
        die("set DMM_EXE to the dmm binary (meson sets it)");
    char *argv[] = {(char *)exe,  "serve",         (char *)net, "--rate",
                    (char *)rate, "--max-clients", "100",       NULL};
    int out = bench_spawn_reading(&s->pid, exe, argv);
    if (out < 0)
        die("cannot start dmm serve");
    if (bench_read_line(out, s->addr, sizeof s->addr))
        die("dmm serve printed no address");
    close(out);
}

static void server_stop(server *s, conn *ctl)
{
    json_decref(rpc(ctl, "{\"op\": \"shutdown\"}"));
    close(ctl->fd);
    int st;
    waitpid(s->pid, &st, 0);
}

/* The step count and the time it was read at. */
static double step_now(conn *ctl, double *at)
{
    json_t *r = rpc(ctl, "{\"op\": \"status\"}");
    *at = bench_now_s();
    double t = json_number_value(json_object_get(r, "step"));
    json_decref(r);
    return t;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Cycles per second over one window with no client but ctl. */
static double rate_alone(conn *ctl)
{
    double a0, a1;
    double t0 = step_now(ctl, &a0);
    sleep_s(seconds);
    double t1 = step_now(ctl, &a1);
    return (t1 - t0) / (a1 - a0);
}

typedef struct load_result {
    double rate;
    size_t replies, missing, errors, events;
    double median_ms, p99_ms, max_ms;
} load_result;

/* NCLIENTS clients, each subscribed (every `every` cycles) and sending a set
 * every EDIT_EVERY_MS, one at a time, for a window; the rate is measured by
 * ctl over the middle of it. */
static load_result rate_loaded(conn *ctl, const char *addr, unsigned every)
{
    static conn cs[NCLIENTS];
    static double lat[MAX_SAMPLES];
    load_result res = {0};
    size_t nlat = 0;
    char req[512];
    for (int i = 0; i < NCLIENTS; i++) {
        conn_open(&cs[i], addr);
        snprintf(req, sizeof req,
                 "{\"op\": \"subscribe\", \"paths\": [\"accum/sum/single\"], "
                 "\"every\": %u}",
                 every);
        json_decref(rpc(&cs[i], req));
        cs[i].next =
            bench_now_s() + (double)i * EDIT_EVERY_MS / 1000.0 / NCLIENTS;
        cs[i].k = 0;
    }
    struct pollfd pf[NCLIENTS];
    double start = bench_now_s(), a0 = 0, a1 = 0, t0 = 0, t1 = 0;
    bool measuring = false;
    const double warm = 0.5, end = start + seconds + 2 * warm;
    for (;;) {
        double t = bench_now_s();
        if (!measuring && t >= start + warm) {
            t0 = step_now(ctl, &a0);
            measuring = true;
            t = bench_now_s();
        } else if (measuring && t1 == 0 && t >= end - warm) {
            t1 = step_now(ctl, &a1);
            t = bench_now_s();
        }
        bool sending = t < end, outstanding = false;
        double wake = t + 0.05;
        for (int i = 0; i < NCLIENTS; i++) {
            conn *c = &cs[i];
            if (sending && c->sent_at == 0 && t >= c->next) {
                /* Values that keep the sum finite and change W each time. */
                snprintf(req, sizeof req,
                         "{\"id\": %u, \"op\": \"set\", \"path\": "
                         "\"accum/sum/delta/identity/const/single\", "
                         "\"value\": %g}",
                         c->k, (c->k % 2 ? 0.5 : -0.5) / (1 + i));
                c->k++;
                c->sent_at = bench_now_s();
                conn_send(c, req);
                conn_send(c, "\n");
                c->next += EDIT_EVERY_MS / 1000.0;
                if (c->next < t)
                    c->next = t; /* fell behind: no burst to catch up */
            }
            outstanding |= c->sent_at != 0;
            if (sending && c->sent_at == 0 && c->next < wake)
                wake = c->next;
            pf[i] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
        }
        if (!sending && !outstanding)
            break;
        if (!sending && t > end + 30) {
            for (int i = 0; i < NCLIENTS; i++)
                res.missing += cs[i].sent_at != 0;
            break;
        }
        int ms = (int)((wake - t) * 1000);
        if (poll(pf, NCLIENTS, ms < 0 ? 0 : ms) < 0 && errno != EINTR)
            die("poll");
        for (int i = 0; i < NCLIENTS; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            conn *c = &cs[i];
            if (!conn_fill(c))
                die("the server closed a client's connection");
            char *line;
            while ((line = conn_take(c))) {
                double got = bench_now_s();
                if (strstr(line, "\"ok\"")) {
                    if (!strstr(line, "\"ok\": true"))
                        res.errors++;
                    if (c->sent_at != 0 && nlat < MAX_SAMPLES)
                        lat[nlat++] = got - c->sent_at;
                    c->sent_at = 0;
                    res.replies++;
                } else if (strstr(line, "\"event\": \"cycle\"")) {
                    res.events++;
                } else {
                    fprintf(stderr, "bench_serve: unexpected line: %s\n", line);
                    res.errors++;
                }
                free(line);
            }
        }
    }
    res.rate = t1 > t0 ? (t1 - t0) / (a1 - a0) : 0;
    qsort(lat, nlat, sizeof lat[0], bench_cmp_double);
    if (nlat) {
        res.median_ms = lat[nlat / 2] * 1e3;
        res.p99_ms = lat[(size_t)((double)nlat * 0.99)] * 1e3;
        res.max_ms = lat[nlat - 1] * 1e3;
    }
    for (int i = 0; i < NCLIENTS; i++)
        close(cs[i].fd);
    return res;
}

static int bench_rate(const char *net, const char *rate)
{
    server s;
    server_start(&s, net, rate);
    conn ctl;
    conn_open(&ctl, s.addr);
    sleep_s(0.3);
    double alone = rate_alone(&ctl);
    bool max = !strcmp(rate, "max");
    double hz = max ? alone : atof(rate);
    /* A push about every 10 ms per client, every cycle at 100 Hz. */
    unsigned every = hz / 100 > 1 ? (unsigned)(hz / 100) : 1;
    load_result r = rate_loaded(&ctl, s.addr, every);
    server_stop(&s, &ctl);
    printf("rate %-5s  alone %10.1f cycles/s", rate, alone);
    if (!max)
        printf(" (%.3f x requested)", alone / hz);
    printf("\n            %d clients %10.1f cycles/s", NCLIENTS, r.rate);
    if (!max)
        printf(" (%.3f x requested)", r.rate / hz);
    printf(", %.3f x alone\n", r.rate / alone);
    printf("            %zu set replies (one per client every %d ms), "
           "latency median %.3f ms, p99 %.3f ms, max %.3f ms; %zu events "
           "(every %u cycles); missing %zu, errors %zu\n",
           r.replies, EDIT_EVERY_MS, r.median_ms, r.p99_ms, r.max_ms, r.events,
           every, r.missing, r.errors);
    if (!max)
        printf("%s rate %s: with %d clients >= 0.95 x alone (%.3f)\n",
               r.rate >= 0.95 * alone ? "PASS" : "FAIL", rate, NCLIENTS,
               r.rate / alone);
    printf("%s rate %s: every reply arrived, none an error\n",
           r.missing == 0 && r.errors == 0 ? "PASS" : "FAIL", rate);
    fflush(stdout);
    return r.missing == 0 && r.errors == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    const char *root = getenv("DMM_SOURCE_ROOT");
    const char *secs = getenv("DMM_BENCH_SECONDS");
    if (secs && atof(secs) > 0)
        seconds = atof(secs);
    char net[1024];
    snprintf(net, sizeof net, "%s/networks/accumulator.json",
             root ? root : ".");
    printf("dmm serve %s; windows of %.1f s\n", net, seconds);
    static const char *const dflt[] = {"100", "1000", "max"};
    int fails = 0;
    if (argc > 1)
        for (int i = 1; i < argc; i++)
            fails += bench_rate(net, argv[i]);
    else
        for (size_t i = 0; i < 3; i++)
            fails += bench_rate(net, dflt[i]);
    return fails ? 1 : 0;
}
