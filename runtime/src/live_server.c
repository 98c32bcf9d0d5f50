// SPDX-License-Identifier: MIT
/*
 * The live server: a single-threaded libuv loop that owns the network.
 * Read callbacks only cut lines and parse them into requests, which join one
 * queue in arrival order; the queue is applied at the cycle boundary (a check
 * handle after each poll, never inside a cycle), so a live edit goes through
 * dmm_net_edit exactly as a scripted one and the --log replays bit for bit.
 * Cycles run from a timer (a rate) or an idle handle (as fast as possible,
 * in batches bounded by time so clients are served between them).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "live_protocol.h"
#include "live_server.h"

#ifndef DMM_VERSION
#define DMM_VERSION "unknown"
#endif

enum {
    READ_CHUNK = 65536,
    MAX_QUEUED = 256,   /* requests queued per client before reads pause */
    BATCH_NS = 5000000, /* time for one batch of cycles */
    GRACE_MS = 10000,   /* a dropped or stopping client's last chance */
};

typedef struct live_server live_server;

typedef struct sub {
    uint64_t id;
    uint64_t every;
    bool changes;
    dmm__live_path *paths; /* owned */
    size_t npaths;
    vv *last; /* changes: the values sent last (owned), NULL before */
    struct sub *next;
} sub;

typedef struct client {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    live_server *srv;
    struct client *prev, *next;
    char *line; /* the line being read, up to max_message bytes */
    size_t llen;
    bool discard; /* skipping the rest of an oversized line */
    bool authed;
    bool closing; /* uv_close called or about to be */
    bool ending;  /* shutdown requested: no more replies or reads */
    bool reading;
    size_t wbytes;   /* bytes handed to uv_write and not yet written */
    size_t queued;   /* requests in the server's queue */
    uint64_t end_at; /* ending: close by then (loop ms) */
    sub *subs;
    char rbuf[READ_CHUNK];
} client;

typedef struct pending {
    client *c;
    bool bad;
    dmm__live_req req;
    dmm__live_err err;
    struct pending *next;
} pending;

typedef struct write_req {
    uv_write_t w;
    client *c;
    size_t len;
    char data[];
} write_req;

struct live_server {
    uv_loop_t loop;
    vv_ctx *vc;
    const dmm_registry *reg;
    dmm_net *net;
    const dmm__serve_opts *o;
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener;
    bool is_pipe;
    uv_timer_t timer;  /* cycles at a rate */
    uv_idle_t idle;    /* cycles as fast as possible, and steps */
    uv_check_t check;  /* the cycle boundary: apply the queue */
    uv_timer_t reaper; /* closes clients past their grace time */
    uv_signal_t sigint, sigterm;
    client *clients;
    int nclients;
    pending *head, *tail;
    double rate; /* 0: max */
    bool running;
    uint64_t pace_t0, pace_done;
    uint64_t steps_left;
    client *step_client;
    char step_id[80];
    uint64_t next_sub;
    uint64_t dropped;
    FILE *log;
    bool stopping;
    int result;
    dmm_error *err;
    vv_buf b;
};

static void drain(live_server *srv);
static void begin_stop(live_server *srv);
static void resume_read(client *c);

/* ---- sending ------------------------------------------------------------ */

static void on_closed(uv_handle_t *h)
{
    client *c = h->data;
    free(c->line);
    free(c);
}

static void free_subs(live_server *srv, client *c)
{
    while (c->subs) {
        sub *s = c->subs;
        c->subs = s->next;
        for (size_t i = 0; i < s->npaths; i++) {
            free(s->paths[i].text);
            if (s->last)
                vv_free(srv->vc, s->last[i]);
        }
        free(s->paths);
        free(s->last);
        free(s);
    }
}

/* Forget everything about c and close its handle (freed in on_closed). */
static void client_close(client *c)
{
    if (c->closing)
        return;
    live_server *srv = c->srv;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nclients--;
    pending **pp = &srv->head;
    srv->tail = NULL;
    while (*pp) {
        pending *p = *pp;
        if (p->c == c) {
            *pp = p->next;
            dmm__live_req_free(srv->vc, &p->req);
            free(p);
        } else {
            srv->tail = p;
            pp = &p->next;
        }
    }
    if (srv->step_client == c)
        srv->step_client = NULL;
    free_subs(srv, c);
    uv_close(&c->u.h, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    client *c = req->data;
    free(req);
    client_close(c);
}

/* Stop reading and close c once what was queued for it is written (or
 * after the grace time, if it never reads). */
static void client_end(client *c)
{
    if (c->closing || c->ending)
        return;
    c->ending = true;
    c->end_at = uv_now(c->u.h.loop) + GRACE_MS;
    uv_read_stop(&c->u.s);
    c->reading = false;
    free_subs(c->srv, c);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, &c->u.s, on_shutdown) < 0) {
        free(req);
        client_close(c);
        return;
    }
    req->data = c;
}

static void on_written(uv_write_t *w, int status)
{
    write_req *r = (write_req *)w;
    client *c = r->c;
    c->wbytes -= r->len;
    free(r);
    if (status < 0 && !c->closing)
        client_close(c);
}

static void send_raw(client *c, const char *data, size_t len)
{
    write_req *r = malloc(sizeof *r + len);
    if (!r) {
        client_close(c);
        return;
    }
    r->c = c;
    r->len = len;
    memcpy(r->data, data, len);
    uv_buf_t buf = uv_buf_init(r->data, (unsigned)len);
    if (uv_write(&r->w, &c->u.s, &buf, 1, on_written) < 0) {
        free(r);
        client_close(c);
        return;
    }
    c->wbytes += len;
}

/* Queue one line for c. A client with more than max_backlog bytes waiting
 * (it does not read) is told and dropped: the loop never waits for it. */
static void send_line(client *c, const char *data, size_t len)
{
    if (c->closing || c->ending)
        return;
    live_server *srv = c->srv;
    if (c->wbytes > srv->o->max_backlog) {
        char note[256];
        int n = snprintf(note, sizeof note,
                         "{\"event\": \"dropped\", \"message\": \"more than "
                         "%zu bytes waiting to be read; closing\"}\n",
                         srv->o->max_backlog);
        send_raw(c, note, (size_t)n);
        srv->dropped++;
        client_end(c);
        return;
    }
    send_raw(c, data, len);
}

static void send_error(client *c, const char *id, const dmm__live_err *e)
{
    live_server *srv = c->srv;
    srv->b.len = 0;
    if (dmm__live_reply_error(&srv->b, id, e) == 0)
        send_line(c, srv->b.data, srv->b.len);
}

static void send_oom(client *c, const char *id)
{
    dmm__live_err e;
    dmm__live_err_set(&e, "internal", "", "out of memory");
    send_error(c, id, &e);
}

/* srv->b holds a reply begun with dmm__live_reply_begin plus members: close
 * it and send it. rc: the result of building it. */
static void send_reply(client *c, const char *id, int rc)
{
    live_server *srv = c->srv;
    if (rc == 0)
        rc = vv_buf_append(&srv->b, "}\n", 2);
    if (rc < 0)
        send_oom(c, id);
    else
        send_line(c, srv->b.data, srv->b.len);
}

static void broadcast(live_server *srv, const char *line, size_t len)
{
    client *next;
    for (client *c = srv->clients; c; c = next) {
        next = c->next;
        if (c->authed)
            send_line(c, line, len);
    }
}

/* ---- the log ------------------------------------------------------------ */

/* Append one applied event in the script format of `dmm run --script`:
 * applied just before cycle t + 1. */
static void log_event(live_server *srv, enum dmm__live_op op, vv_label name,
                      vv value)
{
    if (!srv->log)
        return;
    vv_buf b = {0};
    int rc =
        vv_buf_printf(&b, "{\"step\": %llu, \"op\": ",
                      (unsigned long long)dmm_net_step_count(srv->net) + 1);
    if (!rc && op == DMM__OP_FEED) {
        rc = vv_buf_append(&b, "\"feed\", \"neuron\": ", 18);
        vv_buf nb = {0};
        if (!rc && !(rc = vv_buf_append(&nb, "input/", 6)) &&
            !(rc = dmm_path_write(srv->vc, &name, 1, &nb)))
            rc = vv_buf_json_string(&b, nb.data, nb.len);
        free(nb.data);
        if (!rc)
            rc = vv_buf_append(&b, ", \"outputs\": ", 13);
    } else if (!rc) {
        rc = vv_buf_append(&b, "\"edit\", \"delta\": ", 17);
    }
    if (!rc)
        rc = vv_write(srv->vc, value, &b);
    if (!rc)
        rc = vv_buf_append(&b, "}\n", 2);
    if (rc < 0 || fwrite(b.data, 1, b.len, srv->log) != b.len ||
        fflush(srv->log) != 0) {
        fprintf(stderr,
                "dmm serve: cannot write the log %s: %s; logging "
                "stops here\n",
                srv->o->log, rc < 0 ? dmm_strerror(rc) : strerror(errno));
        fclose(srv->log);
        srv->log = NULL;
    }
    free(b.data);
}

/* ---- cycles ------------------------------------------------------------- */

/* borrowed: the value at a resolved path, only its scalar part when the
 * path ends in ":number"; zero at a missing one (a label never interned is
 * in no value). */
static vv path_value(vv v, const dmm__live_path *p)
{
    if (p->missing)
        return VV_ZERO;
    vv at = vv_get(v, p->label, p->n);
    return p->scalar ? vv_number(at.num) : at;
}

static void publish(live_server *srv)
{
    uint64_t t = dmm_net_step_count(srv->net);
    /* Out of memory making Y: this cycle's events are skipped, not faked;
     * the next cycle tries again. */
    if (dmm_net_outputs_build(srv->net, NULL) < 0)
        return;
    vv y = dmm_net_outputs(srv->net);
    client *next;
    for (client *c = srv->clients; c; c = next) {
        next = c->next;
        for (sub *s = c->subs; s && !c->closing && !c->ending; s = s->next) {
            if (t % s->every)
                continue;
            for (size_t i = 0; i < s->npaths; i++)
                dmm__live_path_resolve(srv->vc, &s->paths[i]);
            if (s->changes) {
                bool same = s->last != NULL;
                for (size_t i = 0; same && i < s->npaths; i++)
                    same = vv_equal(s->last[i], path_value(y, &s->paths[i]));
                if (same)
                    continue;
                if (!s->last && !(s->last = calloc(s->npaths, sizeof(vv))))
                    continue;
                for (size_t i = 0; i < s->npaths; i++) {
                    vv_free(srv->vc, s->last[i]);
                    s->last[i] = vv_ref(path_value(y, &s->paths[i]));
                }
            }
            vv_buf *b = &srv->b;
            b->len = 0;
            int rc =
                vv_buf_printf(b,
                              "{\"event\": \"cycle\", \"subscription\": "
                              "%llu, \"step\": %llu, \"values\": {",
                              (unsigned long long)s->id, (unsigned long long)t);
            for (size_t i = 0; !rc && i < s->npaths; i++) {
                if (i)
                    rc = vv_buf_append(b, ", ", 2);
                if (!rc)
                    rc = vv_buf_json_string(b, s->paths[i].text,
                                            strlen(s->paths[i].text));
                if (!rc)
                    rc = vv_buf_append(b, ": ", 2);
                if (!rc)
                    rc = vv_write(srv->vc, path_value(y, &s->paths[i]), b);
            }
            if (!rc)
                rc = vv_buf_append(b, "}}\n", 3);
            if (!rc)
                send_line(c, b->data, b->len);
            if (c->closing || c->ending)
                break; /* dropped: its subscriptions are gone */
        }
    }
}

static void update_drive(live_server *srv);

static void finish_step(live_server *srv, const char *code, const char *msg)
{
    client *c = srv->step_client;
    srv->steps_left = 0;
    srv->step_client = NULL;
    if (!c)
        return;
    if (code) {
        dmm__live_err e;
        dmm__live_err_set(&e, code, "", "%s", msg);
        send_error(c, srv->step_id, &e);
        return;
    }
    srv->b.len = 0;
    int rc = dmm__live_reply_begin(&srv->b, srv->step_id);
    if (!rc)
        rc = vv_buf_printf(&srv->b, ", \"step\": %llu",
                           (unsigned long long)dmm_net_step_count(srv->net));
    send_reply(c, srv->step_id, rc);
}

/* Run up to max cycles, for at most BATCH_NS. A failed cycle leaves the
 * network as it was; the server pauses and tells every client. */
static uint64_t run_cycles(live_server *srv, uint64_t max)
{
    uint64_t start = uv_hrtime(), done = 0;
    dmm_error err;
    while (done < max && !srv->stopping) {
        if (dmm_net_step(srv->net, &err) < 0) {
            char msg[1024];
            dmm_error_format(&err, msg, sizeof msg);
            srv->running = false;
            if (srv->steps_left)
                finish_step(srv, "fault", msg);
            srv->b.len = 0;
            int rc = vv_buf_printf(
                &srv->b,
                "{\"event\": \"fault\", \"step\": %llu, "
                "\"message\": ",
                (unsigned long long)dmm_net_step_count(srv->net) + 1);
            if (!rc)
                rc = vv_buf_json_string(&srv->b, msg, strlen(msg));
            if (!rc)
                rc = vv_buf_append(&srv->b, "}\n", 2);
            if (!rc)
                broadcast(srv, srv->b.data, srv->b.len);
            fprintf(stderr, "dmm serve: paused: %s\n", msg);
            update_drive(srv);
            break;
        }
        done++;
        publish(srv);
        if (uv_hrtime() - start > BATCH_NS)
            break;
    }
    return done;
}

static void on_idle(uv_idle_t *h)
{
    live_server *srv = h->data;
    if (srv->steps_left) {
        srv->steps_left -= run_cycles(srv, srv->steps_left);
        if (srv->steps_left == 0 && srv->step_client) {
            finish_step(srv, NULL, NULL);
        }
        if (srv->steps_left == 0) {
            update_drive(srv);
            drain(srv);
        }
        return;
    }
    run_cycles(srv, UINT64_MAX);
}

static void on_timer(uv_timer_t *h)
{
    live_server *srv = h->data;
    uint64_t now = uv_now(&srv->loop);
    uint64_t due = (uint64_t)((double)(now - srv->pace_t0) * srv->rate / 1e3);
    if (due <= srv->pace_done)
        return;
    uint64_t n = due - srv->pace_done;
    if ((double)n > srv->rate + 1) {
        /* More than a second behind: do not try to catch up. */
        srv->pace_t0 = now;
        srv->pace_done = 0;
        n = 1;
    }
    srv->pace_done += run_cycles(srv, n);
}

/* Start the handle that runs cycles now: the idle handle while stepping or
 * at rate max, the timer at a rate, neither when paused. */
static void update_drive(live_server *srv)
{
    bool fast = !srv->stopping &&
                (srv->steps_left > 0 || (srv->running && srv->rate == 0));
    bool paced =
        !srv->stopping && !srv->steps_left && srv->running && srv->rate > 0;
    if (fast)
        uv_idle_start(&srv->idle, on_idle);
    else
        uv_idle_stop(&srv->idle);
    if (paced) {
        uint64_t ms = (uint64_t)(1000.0 / srv->rate);
        if (ms < 1)
            ms = 1;
        if (!uv_is_active((uv_handle_t *)&srv->timer) ||
            uv_timer_get_repeat(&srv->timer) != ms) {
            srv->pace_t0 = uv_now(&srv->loop);
            srv->pace_done = 0;
            uv_timer_start(&srv->timer, on_timer, ms, ms);
        }
    } else {
        uv_timer_stop(&srv->timer);
    }
}

/* ---- requests ----------------------------------------------------------- */

static int append_value(live_server *srv, const char *name, vv v)
{
    int rc = vv_buf_printf(&srv->b, ", \"%s\": ", name);
    return rc ? rc : vv_write(srv->vc, v, &srv->b);
}

static int append_step(live_server *srv, uint64_t t)
{
    return vv_buf_printf(&srv->b, ", \"step\": %llu", (unsigned long long)t);
}

/* An engine error as a protocol error with code. */
static void engine_error(dmm__live_err *e, const char *code,
                         const dmm_error *err)
{
    dmm__live_err_set(e, code, err->path, "%s",
                      err->text[0] ? err->text : dmm_strerror(err->code));
}

static int do_set(live_server *srv, const dmm__live_req *q, double *actual,
                  dmm__live_err *e)
{
    const dmm__live_path *p = &q->paths[0];
    vv cur = vv_get(dmm_net_matrix(srv->net), p->label, 6);
    double w = cur.num, target = q->num;
    /* A node with children is not one weight, but its scalar part is:
     * "P/:number" sets only that and keeps the rows below P. */
    if (!vv_is_scalar(cur) && !p->scalar)
        return dmm__live_err_set(e, "bad-path", "/path",
                                 "\"%s\" is not a weight (\"%s/:number\" is "
                                 "its scalar part)",
                                 p->text, p->text);
    /* delta = target - w, corrected so that w + delta is target exactly
     * whenever a double allows it; the log holds this very delta. */
    double d = target - w;
    for (int k = 0; k < 4 && w + d != target; k++)
        d += target - (w + d);
    *actual = w + d;
    if (d == 0)
        return 0;
    vv delta;
    int rc = vv_set(srv->vc, VV_ZERO, p->label, 6, vv_number(d), &delta);
    if (rc < 0)
        return dmm__live_err_set(e, "internal", "", "%s", dmm_strerror(rc));
    dmm_error err;
    rc = dmm_net_edit(srv->net, delta, &err);
    if (rc < 0)
        engine_error(e, "invalid-edit", &err);
    else
        log_event(srv, DMM__OP_EDIT, 0, delta);
    vv_free(srv->vc, delta);
    return rc;
}

static int do_load(live_server *srv, const dmm__live_req *q, dmm__live_err *e)
{
    if (srv->log)
        return dmm__live_err_set(e, "state", "",
                                 "load is refused while --log is on: a "
                                 "script cannot replace the network");
    dmm_net *net = NULL;
    dmm_error err;
    dmm_error_clear(&err);
    int rc;
    if (q->text)
        rc = dmm_net_load_file(srv->vc, srv->reg, q->text, &net, &err);
    else if (q->doc_state)
        rc = dmm_net_restore_text(srv->vc, srv->reg, q->doc, strlen(q->doc),
                                  "state", &net, &err);
    else
        rc = dmm_net_load_text(srv->vc, srv->reg, q->doc, strlen(q->doc),
                               "network", &net, &err);
    if (rc < 0) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        return dmm__live_err_set(e, rc == DMM_E_IO ? "io" : "invalid-network",
                                 "", "%s", msg);
    }
    dmm_net_free(srv->net);
    srv->net = net;
    return 0;
}

static int do_snapshot(live_server *srv)
{
    vv_buf st = {0};
    int rc = dmm_net_save_buf(srv->net, &st);
    /* The state document's line breaks are whitespace between members (a
     * string never holds a raw one): one reply is one line. */
    for (size_t i = 0; !rc && i < st.len; i++)
        if (st.data[i] == '\n' || st.data[i] == '\r')
            st.data[i] = ' ';
    while (!rc && st.len && st.data[st.len - 1] == ' ')
        st.len--;
    if (!rc)
        rc = vv_buf_append(&srv->b, ", \"state\": ", 11);
    if (!rc)
        rc = vv_buf_append(&srv->b, st.data, st.len);
    free(st.data);
    return rc;
}

static int do_subscribe(live_server *srv, client *c, dmm__live_req *q)
{
    sub *s = calloc(1, sizeof *s);
    if (!s)
        return DMM_E_NOMEM;
    s->id = ++srv->next_sub;
    s->every = q->n;
    s->changes = q->flag;
    s->paths = q->paths;
    s->npaths = q->npaths;
    q->paths = NULL;
    q->npaths = 0;
    sub **tail = &c->subs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = s;
    return vv_buf_printf(&srv->b, ", \"subscription\": %llu",
                         (unsigned long long)s->id);
}

static int do_unsubscribe(live_server *srv, client *c, uint64_t id,
                          dmm__live_err *e)
{
    if (id == 0) {
        free_subs(srv, c);
        return 0;
    }
    for (sub **pp = &c->subs; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            sub *s = *pp;
            *pp = s->next;
            s->next = NULL;
            sub *keep = c->subs;
            c->subs = s;
            free_subs(srv, c);
            c->subs = keep;
            return 0;
        }
    }
    return dmm__live_err_set(e, "not-found", "/subscription",
                             "no subscription %llu on this connection",
                             (unsigned long long)id);
}

static bool token_ok(const char *want, const char *got)
{
    if (!got)
        return false;
    size_t n = strlen(want), m = strlen(got);
    unsigned char diff = n != m;
    for (size_t i = 0; i < m; i++)
        diff |= (unsigned char)(got[i] ^ want[i % (n ? n : 1)]);
    return diff == 0;
}

/* Apply one request at the cycle boundary and reply. */
static void process(live_server *srv, client *c, dmm__live_req *q)
{
    const char *id = q->id;
    dmm__live_err e;
    dmm_net *net = srv->net;
    uint64_t t = dmm_net_step_count(net);
    dmm_error err;
    int rc = 0;
    srv->b.len = 0;

    if (!c->authed) {
        if (q->op != DMM__OP_HELLO || !token_ok(srv->o->token, q->text)) {
            dmm__live_err_set(&e, "unauthorized", "",
                              q->op == DMM__OP_HELLO
                                  ? "wrong token"
                                  : "the first request must be hello with "
                                    "the server's token");
            send_error(c, id, &e);
            client_end(c);
            return;
        }
        c->authed = true;
    }
    switch (q->op) {
    case DMM__OP_HELLO:
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = vv_buf_printf(&srv->b,
                               ", \"server\": \"dmm\", \"version\": \"%s\", "
                               "\"protocol\": 1",
                               DMM_VERSION);
        break;
    case DMM__OP_STATUS:
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, t);
        if (!rc)
            rc = vv_buf_printf(&srv->b, ", \"running\": %s, \"rate\": ",
                               srv->running ? "true" : "false");
        if (!rc)
            rc = srv->rate > 0 ? vv_buf_number(&srv->b, srv->rate)
                               : vv_buf_append(&srv->b, "\"max\"", 5);
        if (!rc)
            rc = vv_buf_printf(&srv->b,
                               ", \"active\": %zu, \"weights\": %zu, "
                               "\"clients\": %d, \"dropped\": %llu, "
                               "\"labels\": %zu",
                               dmm_net_active_count(net),
                               dmm_net_weight_count(net), srv->nclients,
                               (unsigned long long)srv->dropped,
                               vv_label_count(srv->vc));
        break;
    case DMM__OP_PAUSE:
    case DMM__OP_RESUME:
        srv->running = q->op == DMM__OP_RESUME;
        update_drive(srv);
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, t);
        if (!rc)
            rc = vv_buf_printf(&srv->b, ", \"running\": %s",
                               srv->running ? "true" : "false");
        break;
    case DMM__OP_STEP:
        if (srv->running) {
            dmm__live_err_set(&e, "state", "",
                              "step runs cycles of a paused network; send "
                              "pause first");
            send_error(c, id, &e);
            return;
        }
        srv->steps_left = q->n;
        srv->step_client = c;
        memcpy(srv->step_id, q->id, sizeof srv->step_id);
        update_drive(srv);
        return; /* the reply comes when the cycles have run */
    case DMM__OP_RATE:
        srv->rate = q->num;
        update_drive(srv);
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = vv_buf_append(&srv->b, ", \"rate\": ", 10);
        if (!rc)
            rc = srv->rate > 0 ? vv_buf_number(&srv->b, srv->rate)
                               : vv_buf_append(&srv->b, "\"max\"", 5);
        break;
    case DMM__OP_GET:
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, t);
        dmm__live_path_resolve(srv->vc, &q->paths[0]);
        if (!rc)
            rc = dmm_net_outputs_build(net, NULL);
        if (!rc)
            rc = append_value(srv, "value",
                              path_value(dmm_net_outputs(net), &q->paths[0]));
        break;
    case DMM__OP_EDIT:
        if ((rc = dmm_net_edit(net, q->value, &err)) < 0) {
            engine_error(&e, "invalid-edit", &err);
            size_t n = strlen(e.path);
            if (e.path[0] == '/' && n + 7 <= sizeof e.path) {
                memmove(e.path + 6, e.path, n + 1);
                memcpy(e.path, "/delta", 6);
            }
            send_error(c, id, &e);
            return;
        }
        log_event(srv, DMM__OP_EDIT, 0, q->value);
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, t + 1);
        break;
    case DMM__OP_SET: {
        double actual = 0;
        if (do_set(srv, q, &actual, &e) < 0) {
            send_error(c, id, &e);
            return;
        }
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, t + 1);
        if (!rc)
            rc = vv_buf_append(&srv->b, ", \"value\": ", 11);
        if (!rc)
            rc = vv_buf_number(&srv->b, actual);
        break;
    }
    case DMM__OP_FEED:
        /* An input neuron emits one map per cycle; a second feed before
         * the cycle would be emitted later than the step the reply and the
         * log name, so it is refused (as a script refuses it). */
        if (dmm_net_queue_len(net, q->name) > 0) {
            dmm__live_err_set(&e, "conflict", "/neuron",
                              "input/%s already has a map for step %llu; "
                              "feed again after that cycle",
                              vv_label_str(srv->vc, q->name, NULL),
                              (unsigned long long)t + 1);
            send_error(c, id, &e);
            return;
        }
        if ((rc = dmm_net_feed(net, q->name, q->value, &err)) < 0) {
            engine_error(&e, "invalid-edit", &err);
            send_error(c, id, &e);
            return;
        }
        log_event(srv, DMM__OP_FEED, q->name, q->value);
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, t + 1);
        break;
    case DMM__OP_SUBSCRIBE:
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = do_subscribe(srv, c, q);
        if (!rc)
            rc = append_step(srv, t);
        break;
    case DMM__OP_UNSUBSCRIBE:
        if (do_unsubscribe(srv, c, q->n, &e) < 0) {
            send_error(c, id, &e);
            return;
        }
        rc = dmm__live_reply_begin(&srv->b, id);
        break;
    case DMM__OP_SNAPSHOT:
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = do_snapshot(srv);
        break;
    case DMM__OP_SAVE:
        if (dmm_net_save_file(net, q->text, &err) < 0) {
            char msg[1024];
            dmm_error_format(&err, msg, sizeof msg);
            dmm__live_err_set(&e, "io", "/file", "%s", msg);
            send_error(c, id, &e);
            return;
        }
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, t);
        if (!rc)
            rc = vv_buf_append(&srv->b, ", \"file\": ", 10);
        if (!rc)
            rc = vv_buf_json_string(&srv->b, q->text, strlen(q->text));
        break;
    case DMM__OP_LOAD:
        if (do_load(srv, q, &e) < 0) {
            send_error(c, id, &e);
            return;
        }
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, dmm_net_step_count(srv->net));
        break;
    case DMM__OP_SHUTDOWN:
        rc = dmm__live_reply_begin(&srv->b, id);
        if (!rc)
            rc = append_step(srv, t);
        send_reply(c, id, rc);
        begin_stop(srv);
        return;
    }
    send_reply(c, id, rc);
}

/* The cycle boundary: apply the queued requests in arrival order. A step
 * in progress holds the queue until its cycles have run. */
static void drain(live_server *srv)
{
    while (srv->head && !srv->steps_left && !srv->stopping) {
        pending *p = srv->head;
        srv->head = p->next;
        if (!srv->head)
            srv->tail = NULL;
        client *c = p->c;
        c->queued--;
        if (p->bad && !c->authed) {
            /* Without the token nothing else is served. */
            dmm__live_err e;
            dmm__live_err_set(&e, "unauthorized", "",
                              "the first request must be hello with the "
                              "server's token");
            send_error(c, p->req.id, &e);
            client_end(c);
        } else if (p->bad) {
            send_error(c, p->req.id, &p->err);
        } else {
            process(srv, c, &p->req);
        }
        dmm__live_req_free(srv->vc, &p->req);
        free(p);
    }
}

static void on_check(uv_check_t *h)
{
    live_server *srv = h->data;
    drain(srv);
    /* Resume reading from clients whose requests have been served. */
    for (client *c = srv->clients; c; c = c->next)
        if (!c->reading && !c->ending && !c->closing &&
            c->queued < MAX_QUEUED / 2)
            resume_read(c);
}

/* ---- reading ------------------------------------------------------------ */

static void enqueue(client *c, const char *line, size_t len, bool too_long)
{
    live_server *srv = c->srv;
    pending *p = calloc(1, sizeof *p);
    if (!p) {
        client_close(c);
        return;
    }
    p->c = c;
    if (too_long) {
        p->bad = true;
        p->req.value = VV_ZERO;
        dmm__live_err_set(&p->err, "too-long", "",
                          "request longer than %zu bytes; it was skipped "
                          "up to its newline",
                          srv->o->max_message);
    } else if (dmm__live_parse(srv->vc, line, len, &p->req, &p->err) < 0) {
        p->bad = true;
    }
    if (srv->tail)
        srv->tail->next = p;
    else
        srv->head = p;
    srv->tail = p;
    c->queued++;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    client *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

/* One complete line (without its newline) of at most max_message bytes. */
static void take_line(client *c, const char *s, size_t n)
{
    if (n && s[n - 1] == '\r')
        n--;
    size_t b = 0;
    while (b < n && (s[b] == ' ' || s[b] == '\t'))
        b++;
    if (b < n)
        enqueue(c, s, n, false);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    client *c = st->data;
    live_server *srv = c->srv;
    if (nread < 0) {
        /* EOF or error: a half-sent line is dropped with the client. */
        client_close(c);
        return;
    }
    const char *p = buf->base, *end = buf->base + nread;
    size_t max = srv->o->max_message;
    while (p < end && !c->closing) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (c->discard) {
            if (nl)
                c->discard = false;
        } else if (c->llen + n > max) {
            /* Refused without being kept: skip to its newline. */
            c->llen = 0;
            c->discard = nl == NULL;
            enqueue(c, NULL, 0, true);
        } else if (nl && c->llen == 0) {
            take_line(c, p, n);
        } else {
            memcpy(c->line + c->llen, p, n);
            c->llen += n;
            if (nl) {
                take_line(c, c->line, c->llen);
                c->llen = 0;
            }
        }
        p += n + (nl != NULL);
    }
    if (!c->closing && c->queued >= MAX_QUEUED && c->reading) {
        uv_read_stop(&c->u.s);
        c->reading = false;
    }
}

static void resume_read(client *c)
{
    if (uv_read_start(&c->u.s, on_alloc, on_read) == 0)
        c->reading = true;
    else
        client_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    live_server *srv = server->data;
    if (status < 0 || srv->stopping)
        return;
    client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = srv;
    c->line = malloc(srv->o->max_message ? srv->o->max_message : 1);
    int rc = c->line ? 0 : UV_ENOMEM;
    if (!rc)
        rc = srv->is_pipe ? uv_pipe_init(&srv->loop, &c->u.pipe, 0)
                          : uv_tcp_init(&srv->loop, &c->u.tcp);
    if (rc < 0) {
        free(c->line);
        free(c);
        return;
    }
    c->u.h.data = c;
    if (uv_accept(server, &c->u.s) < 0) {
        uv_close(&c->u.h, on_closed);
        return;
    }
    c->next = srv->clients;
    if (c->next)
        c->next->prev = c;
    srv->clients = c;
    srv->nclients++;
    c->authed = srv->o->token == NULL;
    if (srv->nclients > srv->o->max_clients) {
        dmm__live_err e;
        dmm__live_err_set(&e, "too-many-clients", "",
                          "the server takes at most %d clients",
                          srv->o->max_clients);
        send_error(c, "", &e);
        client_end(c);
        return;
    }
    resume_read(c);
}

/* ---- start and stop ----------------------------------------------------- */

static void on_reaper(uv_timer_t *h)
{
    live_server *srv = h->data;
    uint64_t now = uv_now(&srv->loop);
    client *next;
    for (client *c = srv->clients; c; c = next) {
        next = c->next;
        if (c->ending && now >= c->end_at)
            client_close(c);
    }
}

static void begin_stop(live_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    update_drive(srv);
    if (srv->o->save_on_exit &&
        dmm_net_save_file(srv->net, srv->o->save_on_exit, srv->err) < 0)
        srv->result = srv->err->code;
    client *next;
    for (client *c = srv->clients; c; c = next) {
        next = c->next;
        client_end(c);
    }
    uv_close(&srv->listener.h, NULL);
    uv_close((uv_handle_t *)&srv->timer, NULL);
    uv_close((uv_handle_t *)&srv->idle, NULL);
    uv_close((uv_handle_t *)&srv->check, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    /* The reaper (unreferenced) closes clients that never read; the loop
     * ends when the last one is gone. */
}

static void on_signal(uv_signal_t *h, int signum)
{
    begin_stop(h->data);
}

static int setup_err(dmm_error *err, const char *what, const char *where,
                     int uvrc)
{
    return dmm_error_set(err, DMM_E_IO, "", "%s %s: %s", what, where,
                         uv_strerror(uvrc));
}

static int bind_listener(live_server *srv, FILE *announce)
{
    const dmm__serve_opts *o = srv->o;
    int rc;
    if (o->socket) {
        struct sockaddr_un sa;
        if (strlen(o->socket) >= sizeof sa.sun_path)
            return dmm_error_set(srv->err, DMM_E_INVAL, "",
                                 "--socket %s: path longer than the system's "
                                 "limit of %zu bytes",
                                 o->socket, sizeof sa.sun_path - 1);
        srv->is_pipe = true;
        if ((rc = uv_pipe_init(&srv->loop, &srv->listener.pipe, 0)) < 0)
            return setup_err(srv->err, "cannot listen on", o->socket, rc);
        srv->listener.h.data = srv;
        /* Created 0600 from the start: no moment where others may connect. */
        mode_t old = umask(0177);
        rc = uv_pipe_bind(&srv->listener.pipe, o->socket);
        umask(old);
        if (rc == 0 && chmod(o->socket, 0600) < 0)
            rc = uv_translate_sys_error(errno);
        if (rc < 0)
            return setup_err(srv->err, "cannot listen on", o->socket, rc);
    } else {
        const char *spec = o->listen ? o->listen : "127.0.0.1:0";
        const char *colon = strrchr(spec, ':');
        char host[256];
        char *endp = NULL;
        long port = colon ? strtol(colon + 1, &endp, 10) : -1;
        size_t hl = colon ? (size_t)(colon - spec) : 0;
        if (!colon || !colon[1] || *endp || port < 0 || port > 65535 ||
            hl == 0 || hl >= sizeof host)
            return dmm_error_set(srv->err, DMM_E_INVAL, "",
                                 "--listen %s: expected HOST:PORT", spec);
        if (spec[0] == '[' && spec[hl - 1] == ']') {
            memcpy(host, spec + 1, hl - 2);
            host[hl - 2] = '\0';
        } else {
            memcpy(host, spec, hl);
            host[hl] = '\0';
        }
        struct sockaddr_storage ss;
        if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
            uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0)
            return dmm_error_set(srv->err, DMM_E_INVAL, "",
                                 "--listen %s: \"%s\" is not a numeric IPv4 "
                                 "or IPv6 address",
                                 spec, host);
        if ((rc = uv_tcp_init(&srv->loop, &srv->listener.tcp)) < 0)
            return setup_err(srv->err, "cannot listen on", spec, rc);
        srv->listener.h.data = srv;
        if ((rc = uv_tcp_bind(&srv->listener.tcp, (struct sockaddr *)&ss, 0)) <
            0)
            return setup_err(srv->err, "cannot listen on", spec, rc);
    }
    if ((rc = uv_listen(&srv->listener.s, 128, on_connection)) < 0)
        return setup_err(srv->err, "cannot listen on",
                         o->socket ? o->socket : o->listen, rc);
    if (o->socket) {
        fprintf(announce, "%s\n", o->socket);
    } else {
        struct sockaddr_storage ss;
        int len = sizeof ss;
        char ip[64];
        uv_tcp_getsockname(&srv->listener.tcp, (struct sockaddr *)&ss, &len);
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof ip);
            fprintf(announce, "[%s]:%d\n", ip, ntohs(a->sin6_port));
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof ip);
            fprintf(announce, "%s:%d\n", ip, ntohs(a->sin_port));
        }
    }
    fflush(announce);
    return 0;
}

/* After the loop: only the server's own handles are left (every client
 * is closed before the loop ends). */
static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int dmm__serve(vv_ctx *vc, const dmm_registry *reg, dmm_net *net,
               const dmm__serve_opts *o, FILE *announce, dmm_error *err)
{
    live_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        dmm_net_free(net);
        return dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
    }
    dmm_error_clear(err);
    srv->vc = vc;
    srv->reg = reg;
    srv->net = net;
    srv->o = o;
    srv->err = err;
    srv->rate = o->rate;
    srv->running = !o->paused;
    int rc = uv_loop_init(&srv->loop);
    if (rc < 0) {
        dmm_net_free(net);
        free(srv);
        return setup_err(err, "cannot start", "the event loop", rc);
    }
    uv_timer_init(&srv->loop, &srv->timer);
    uv_idle_init(&srv->loop, &srv->idle);
    uv_check_init(&srv->loop, &srv->check);
    uv_timer_init(&srv->loop, &srv->reaper);
    uv_signal_init(&srv->loop, &srv->sigint);
    uv_signal_init(&srv->loop, &srv->sigterm);
    srv->timer.data = srv->idle.data = srv->check.data = srv;
    srv->reaper.data = srv->sigint.data = srv->sigterm.data = srv;
    signal(SIGPIPE, SIG_IGN);

    if (o->log && !(srv->log = fopen(o->log, "w"))) {
        rc = dmm_error_set(err, DMM_E_IO, "", "cannot open the log %s: %s",
                           o->log, strerror(errno));
    } else {
        /* Signals are caught before the address is announced: a client
         * that stops the server at once still gets a clean stop. */
        uv_signal_start(&srv->sigint, on_signal, SIGINT);
        uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
        rc = bind_listener(srv, announce);
    }
    if (rc == 0) {
        uv_check_start(&srv->check, on_check);
        uv_timer_start(&srv->reaper, on_reaper, 500, 500);
        uv_unref((uv_handle_t *)&srv->reaper);
        update_drive(srv);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        rc = srv->result;
        if (o->socket)
            unlink(o->socket);
    }
    /* Setup failed, or every client is gone: close what is left. */
    uv_walk(&srv->loop, close_any, srv);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
    while (srv->head) {
        pending *p = srv->head;
        srv->head = p->next;
        dmm__live_req_free(vc, &p->req);
        free(p);
    }
    if (srv->log)
        fclose(srv->log);
    free(srv->b.data);
    dmm_net_free(srv->net);
    free(srv);
    return rc;
}
