// SPDX-License-Identifier: MIT
/*
 * Benchmark of the browser view under load (issue 15): `dmm serve NET --http
 * 127.0.0.1:0 --rate max` (env DMM_EXE) on a network of 1000 neurons and
 * about 10^5 weights whose W changes every cycle (networks/wave.json's three
 * update neurons move Self's delta row, a drift neuron adds to one weight;
 * 995 identity neurons each read 100 others). The engine's cycle rate is
 * measured in ROUNDS rounds of a window with no page then a window with
 * NPAGES pages, and a last window with none; each window with pages is
 * compared with the mean of the two without around it, and the median of
 * the rounds is reported (drift on a shared machine shows as their spread).
 * Each page is a real WebSocket client (libwebsockets' client on loopback)
 * doing what the page does: a diff subscription to W with `every` set for
 * 10 updates per second at the rate measured first, and `status` twice a
 * second. Prints the rates and their ratio (target: the rate drops by at
 * most 10%), the updates per second each page receives (target: about 10),
 * and, robust to other load on the machine, the server's CPU time per cycle
 * (its main thread, where the engine and the pages are served, from /proc)
 * with and without the pages and their ratio; PASS/FAIL lines judge the
 * CPU-time ratio and the updates per second.
 * Usage: bench_web [SECONDS per window, default 4].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
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
#include <unistd.h>

#include "bench_child.h"
#include "bench_clock.h"

enum {
    NEURONS = 1000, /* with the wave's four and drift */
    FANIN = 100,    /* weights per filler neuron */
    NPAGES = 2,
    UPDATES_PER_S = 10,
    ROUNDS = 3,
};

static pid_t server_pid; /* killed if the benchmark dies */

static void die(const char *what)
{
    if (server_pid > 0)
        kill(server_pid, SIGKILL);
    fprintf(stderr, "bench_web: %s%s%s\n", what, errno ? ": " : "",
            errno ? strerror(errno) : "");
    exit(1);
}

/* ---- the network ---------------------------------------------------------
 */

static json_t *obj_at(json_t *o, const char *k)
{
    json_t *c = json_object_get(o, k);
    if (!c) {
        c = json_object();
        json_object_set_new(o, k, c);
    }
    return c;
}

/* networks/wave.json plus identity neurons n0 ... reading FANIN others at
 * 1/FANIN each, all starting at 1 (so they stay at 1: real sums, no
 * growth). Returns the number of weights. */
static size_t write_network(const char *path)
{
    const char *root = getenv("DMM_SOURCE_ROOT");
    char wave[4096];
    snprintf(wave, sizeof wave, "%s/networks/wave.json", root ? root : ".");
    json_error_t je;
    json_t *net = json_load_file(wave, 0, &je);
    if (!net)
        die("cannot read networks/wave.json (set DMM_SOURCE_ROOT)");
    json_t *rows = obj_at(obj_at(net, "matrix"), "identity");
    json_t *outs = obj_at(obj_at(net, "outputs"), "identity");
    /* drift: a constant fragment Self adds every cycle, so W changes at
     * every multiple of any `every` (the wave alone repeats every third). */
    json_t *self_delta = obj_at(
        obj_at(obj_at(obj_at(obj_at(net, "matrix"), "accum"), "self"), "delta"),
        "identity");
    json_object_set_new(obj_at(self_delta, "drift"), "single", json_real(1));
    json_object_set_new(
        obj_at(obj_at(obj_at(rows, "drift"), "single"), "identity"), "drift",
        json_pack("{s:f}", "single", 1.0));
    json_object_set_new(obj_at(outs, "drift"), "single",
                        json_pack("{s:{s:{s:{s:{s:{s:f}}}}}}", "identity", "n0",
                                  "single", "identity", "n1", "single", 1e-6));
    size_t nw = 7, nf = NEURONS - 5;
    for (size_t i = 0; i < nf; i++) {
        char name[32], from[32];
        snprintf(name, sizeof name, "n%zu", i);
        json_t *in = obj_at(obj_at(obj_at(rows, name), "single"), "identity");
        for (size_t k = 0; k < FANIN; k++) {
            snprintf(from, sizeof from, "n%zu", (i * 37 + k * 11 + 1) % nf);
            json_object_set_new(obj_at(in, from), "single",
                                json_real(1.0 / FANIN));
        }
        nw += json_object_size(in);
        json_object_set_new(obj_at(outs, name), "single", json_real(1));
    }
    if (json_dump_file(net, path, JSON_COMPACT) != 0)
        die("cannot write the network");
    json_decref(net);
    return nw;
}

/* ---- the server ----------------------------------------------------------
 */

typedef struct server {
    pid_t pid;
    char addr[256]; /* the protocol's HOST:PORT */
    int http_port;
    int fd; /* a protocol connection for status */
    char buf[1 << 16];
    size_t len;
} server;

static void server_start(server *s, const char *net)
{
    const char *exe = getenv("DMM_EXE");
    if (!exe)
        die("set DMM_EXE to the dmm binary (meson sets it)");
    char *argv[] = {(char *)exe,   "serve",  (char *)net, "--http",
                    "127.0.0.1:0", "--rate", "max",       NULL};
    int out = bench_spawn_reading(&s->pid, exe, argv);
    if (out < 0)
        die("cannot start dmm serve");
    server_pid = s->pid;
    char url[256];
    if (bench_read_line(out, s->addr, sizeof s->addr) ||
        bench_read_line(out, url, sizeof url))
        die("dmm serve printed no address");
    close(out);
    if (strncmp(url, "http://127.0.0.1:", 17) != 0)
        die("dmm serve printed no http:// line");
    s->http_port = atoi(url + 17);
    const char *why;
    if ((s->fd = bench_connect(s->addr, &why)) < 0)
        die(why);
    s->len = 0;
}

/* One request on the protocol connection: its reply (new). */
static json_t *rpc(server *s, const char *req)
{
    size_t n = strlen(req);
    if (write(s->fd, req, n) != (ssize_t)n || write(s->fd, "\n", 1) != 1)
        die("cannot write to the server");
    for (;;) {
        char *nl = memchr(s->buf, '\n', s->len);
        if (nl) {
            *nl = '\0';
            json_t *j = json_loads(s->buf, 0, NULL);
            size_t used = (size_t)(nl - s->buf) + 1;
            memmove(s->buf, nl + 1, s->len - used);
            s->len -= used;
            if (!j || !json_is_true(json_object_get(j, "ok")))
                die("the server refused a request of the benchmark");
            return j;
        }
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        ssize_t r;
        if (poll(&p, 1, 60000) != 1 ||
            (r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len)) <= 0)
            die("no reply from the server");
        s->len += (size_t)r;
    }
}

/* The server's main thread (the loop: the engine and every client) CPU
 * seconds so far, from /proc. */
static double server_cpu(const server *s)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)s->pid,
             (int)s->pid);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, sizeof buf, f))
        die("cannot read the server's /proc stat");
    fclose(f);
    /* Fields after the command name, which ends at the last ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        die("cannot parse the server's /proc stat");
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

typedef struct sample {
    double t, step, cpu;
} sample;

static sample take(server *s)
{
    sample x;
    json_t *r = rpc(s, "{\"op\": \"status\"}");
    x.t = bench_now_s();
    x.cpu = server_cpu(s);
    x.step = json_number_value(json_object_get(r, "step"));
    json_decref(r);
    return x;
}

/* ---- the pages: WebSocket clients ---------------------------------------
 */

typedef struct page {
    struct lws *wsi;
    bool open, closed, full; /* full: W whole has arrived */
    char *rx;
    size_t rxlen;
    long updates;  /* patch events since counting began */
    long statuses; /* status replies */
    char out[256]; /* a request to send, "" when none */
    double next_status;
} page;

static int on_page(struct lws *wsi, enum lws_callback_reasons reason,
                   void *user, void *in, size_t len)
{
    page *p = lws_get_opaque_user_data(wsi);
    (void)user;
    if (!p)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        p->open = true;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        p->rx = realloc(p->rx, p->rxlen + len + 1);
        if (!p->rx)
            die("out of memory");
        memcpy(p->rx + p->rxlen, in, len);
        p->rxlen += len;
        if (lws_is_final_fragment(wsi) &&
            lws_remaining_packet_payload(wsi) == 0) {
            p->rx[p->rxlen] = '\0';
            if (getenv("WS_DEBUG"))
                fprintf(stderr, "page %p: %.200s\n", (void *)p, p->rx);
            /* Parsed as the page does (JSON.parse of every message). */
            json_t *j = json_loadb(p->rx, p->rxlen, 0, NULL);
            if (!j)
                die("not JSON from the server");
            const char *ev = json_string_value(json_object_get(j, "event"));
            if (ev && !strcmp(ev, "cycle"))
                p->full = true;
            else if (ev && !strcmp(ev, "patch"))
                p->updates++;
            else if (ev)
                die("an unexpected event (dropped?)");
            else
                p->statuses++;
            json_decref(j);
            p->rxlen = 0;
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (p->out[0] && getenv("WS_DEBUG"))
            fprintf(stderr, "page %p sends %s\n", (void *)p, p->out);
        if (p->out[0]) {
            unsigned char buf[LWS_PRE + sizeof p->out];
            size_t n = strlen(p->out);
            memcpy(buf + LWS_PRE, p->out, n);
            if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT) < 0)
                die("cannot write to the WebSocket");
            p->out[0] = '\0';
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        p->closed = true;
        p->wsi = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"dmm-bench", on_page, 0, 1 << 20, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void page_send(struct lws_context *ctx, page *p, const char *req)
{
    while (p->out[0] && !p->closed)
        lws_service(ctx, 0);
    snprintf(p->out, sizeof p->out, "%s", req);
    lws_callback_on_writable(p->wsi);
}

static void page_open(struct lws_context *ctx, page *p, int port)
{
    memset(p, 0, sizeof *p);
    char origin[64];
    snprintf(origin, sizeof origin, "127.0.0.1:%d", port);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = ctx;
    ci.address = "127.0.0.1";
    ci.port = port;
    ci.path = "/ws";
    ci.host = origin;
    ci.origin = origin;
    ci.opaque_user_data = p;
    ci.pwsi = &p->wsi;
    if (!lws_client_connect_via_info(&ci))
        die("cannot open a WebSocket");
    double end = bench_now_s() + 30;
    while (!p->open && !p->closed && bench_now_s() < end)
        lws_service(ctx, 0);
    if (!p->open)
        die("the WebSocket did not open");
}

/* Serve the pages for s seconds: each sends status twice a second. */
static void pages_run(struct lws_context *ctx, page *pages, double s)
{
    double end = bench_now_s() + s;
    while (bench_now_s() < end) {
        lws_service(ctx, 0);
        double now = bench_now_s();
        for (int i = 0; i < NPAGES; i++) {
            if (pages[i].closed)
                die("the server closed a page's WebSocket");
            if (now >= pages[i].next_status) {
                pages[i].next_status = now + 0.5;
                page_send(ctx, &pages[i], "{\"op\": \"status\"}");
            }
        }
    }
}

/* ---- the measurement -----------------------------------------------------
 */

typedef struct window {
    double rate;    /* cycles per second */
    double cpu_cyc; /* server main-thread CPU seconds per cycle */
} window;

static window measure(sample a, sample b)
{
    window w;
    w.rate = (b.step - a.step) / (b.t - a.t);
    w.cpu_cyc = (b.cpu - a.cpu) / (b.step - a.step);
    return w;
}

/* NPAGES pages open, subscribe as the page does (diff, every), receive W
 * whole, then are measured for secs seconds; ups gets each page's patch
 * events per second. The pages close after. */
static window pages_window(server *s, long every, double secs, double *ups)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.uid = info.gid = -1;
    struct lws_context *ctx = lws_create_context(&info);
    if (!ctx)
        die("cannot create the lws context");
    page pages[NPAGES];
    char sub[256];
    snprintf(sub, sizeof sub,
             "{\"op\": \"subscribe\", \"paths\": [\"accum/self/single\"], "
             "\"every\": %ld, \"diff\": true}",
             every);
    for (int i = 0; i < NPAGES; i++) {
        page_open(ctx, &pages[i], s->http_port);
        page_send(ctx, &pages[i], "{\"op\": \"hello\"}");
        if (!getenv("BENCH_NOSUB"))
            page_send(ctx, &pages[i], sub);
        else
            pages[i].full = true;
    }
    double end = bench_now_s() + 60;
    for (int i = 0; i < NPAGES; i++)
        while (!pages[i].full && bench_now_s() < end)
            pages_run(ctx, pages, 0.01);
    for (int i = 0; i < NPAGES; i++)
        if (!pages[i].full)
            die("a page never received W whole");
    pages_run(ctx, pages, 1); /* past the whole W */
    for (int i = 0; i < NPAGES; i++)
        pages[i].updates = 0;
    sample a = take(s);
    pages_run(ctx, pages, secs);
    sample b = take(s);
    for (int i = 0; i < NPAGES; i++)
        ups[i] = pages[i].updates / (b.t - a.t);
    lws_context_destroy(ctx);
    for (int i = 0; i < NPAGES; i++)
        free(pages[i].rx);
    return measure(a, b);
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 4;
    if (!(secs > 0))
        die("usage: bench_web [SECONDS per window]");
    signal(SIGPIPE, SIG_IGN);
    char net[] = "/tmp/dmm-bench-web-XXXXXX.json";
    int nfd = mkstemps(net, 5);
    if (nfd < 0)
        die("mkstemps");
    close(nfd);
    size_t nw = write_network(net);
    server s;
    server_start(&s, net);
    json_t *st = rpc(&s, "{\"op\": \"status\"}");
    printf("network: %d neurons, %zu weights (status: %lld active, %lld "
           "weights); dmm serve --http --rate max; %g s windows\n",
           NEURONS, nw,
           (long long)json_integer_value(json_object_get(st, "active")),
           (long long)json_integer_value(json_object_get(st, "weights")), secs);
    json_decref(st);
    sleep_s(1); /* warm up */

    /* ROUNDS rounds of a window with no page then one with NPAGES pages,
     * and a last window with none: each window with pages is compared with
     * the two without around it, and the medians are reported. */
    lws_set_log_level(getenv("WS_DEBUG") ? LLL_ERR | LLL_WARN : 0, NULL);
    window none[ROUNDS + 1], with[ROUNDS];
    double ups[ROUNDS][NPAGES];
    long every[ROUNDS];
    for (int round = 0; round <= ROUNDS; round++) {
        sample a = take(&s);
        sleep_s(secs);
        none[round] = measure(a, take(&s));
        if (round == ROUNDS)
            break;
        /* As the page subscribes: every = rate / 10, at the rate it saw
         * last (the page re-subscribes as the rate moves). */
        every[round] = (long)(none[round].rate / UPDATES_PER_S + 0.5);
        if (every[round] < 1)
            every[round] = 1;
        with[round] = pages_window(&s, every[round], secs, ups[round]);
        sleep_s(0.5);
    }
    double r_wall[ROUNDS], r_cpu[ROUNDS], u_min[ROUNDS], d_min[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        printf("no page:   %8.1f cycles/s, %6.1f us CPU/cycle\n", none[k].rate,
               none[k].cpu_cyc * 1e6);
        printf("%d pages:   %8.1f cycles/s, %6.1f us CPU/cycle (every %ld; "
               "updates/s per page:",
               NPAGES, with[k].rate, with[k].cpu_cyc * 1e6, every[k]);
        u_min[k] = 1e300;
        for (int i = 0; i < NPAGES; i++) {
            printf(" %.1f", ups[k][i]);
            if (ups[k][i] < u_min[k])
                u_min[k] = ups[k][i];
        }
        /* Every due cycle changed W: each should have brought a patch. */
        d_min[k] = u_min[k] / (with[k].rate / (double)every[k]);
        printf("; %.2f of due cycles)\n", d_min[k]);
        r_wall[k] = with[k].rate / ((none[k].rate + none[k + 1].rate) / 2);
        r_cpu[k] =
            (none[k].cpu_cyc + none[k + 1].cpu_cyc) / 2 / with[k].cpu_cyc;
    }
    printf("no page:   %8.1f cycles/s, %6.1f us CPU/cycle\n", none[ROUNDS].rate,
           none[ROUNDS].cpu_cyc * 1e6);
    qsort(r_wall, ROUNDS, sizeof(double), bench_cmp_double);
    qsort(r_cpu, ROUNDS, sizeof(double), bench_cmp_double);
    qsort(u_min, ROUNDS, sizeof(double), bench_cmp_double);
    qsort(d_min, ROUNDS, sizeof(double), bench_cmp_double);
    double ratio = r_wall[ROUNDS / 2], cpu_ratio = r_cpu[ROUNDS / 2];
    printf("rate with %d pages / without: median %.3f of %d rounds "
           "(%.3f..%.3f; wall clock)\n",
           NPAGES, ratio, ROUNDS, r_wall[0], r_wall[ROUNDS - 1]);
    printf("CPU per cycle without / with %d pages: median %.3f (%.3f..%.3f; "
           "the rate ratio if the engine had a core to itself)\n",
           NPAGES, cpu_ratio, r_cpu[0], r_cpu[ROUNDS - 1]);
    printf("updates/s received by the slowest page: median %.1f (%.2f of "
           "due cycles)\n",
           u_min[ROUNDS / 2], d_min[ROUNDS / 2]);
    printf("%s: rate drops at most 10%% (CPU-time figure %.3f >= 0.90)\n",
           cpu_ratio >= 0.90 ? "PASS" : "FAIL", cpu_ratio);
    printf("%s: each page receives about %d updates/s\n",
           u_min[ROUNDS / 2] >= UPDATES_PER_S * 0.9 ? "PASS" : "FAIL",
           UPDATES_PER_S);

    json_decref(rpc(&s, "{\"op\": \"shutdown\"}"));
    close(s.fd);
    int wst;
    waitpid(s.pid, &wst, 0);
    unlink(net);
    return 0;
}
