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
/* openat2 and O_PATH: the files of save and load stay beneath --dir. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "dmm_live.h"
#include "live_protocol.h"
#include "live_web.h"

#ifndef DMM_VERSION
#define DMM_VERSION "unknown"
#endif

enum {
    READ_CHUNK = 65536,
    MAX_QUEUED = 256,   /* requests queued per client before reads pause */
    BATCH_NS = 5000000, /* time for one batch of cycles */
    GRACE_MS = 10000,   /* a dropped or stopping client's last chance */
};

typedef struct dmm__live_server live_server;
typedef struct dmm__live_client client;

typedef struct sub {
    uint64_t id;
    uint64_t every;
    bool changes;
    bool diff;             /* patches of what changed since the last update */
    dmm__live_path *paths; /* owned */
    size_t npaths;
    vv *last;   /* changes, diff: the values of the last update made (owned),
                   NULL before */
    char *held; /* an update not sent yet: the client is behind (owned) */
    size_t held_len;
    vv *base; /* diff, held: the values held's patch starts from (owned;
                 NULL: held holds whole values) */
    struct sub *next;
} sub;

struct dmm__live_client {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    live_server *srv;
    dmm__live_ws *ws; /* a WebSocket client (u unused), or NULL */
    client *prev, *next;
    char *line; /* the line being read, up to max_message bytes */
    size_t llen, lcap;
    size_t qbytes;      /* bytes of its lines waiting in the queue */
    uint64_t last_line; /* loop ms of its last complete line, or connect */
    struct sockaddr_storage addr; /* TCP: the peer's address */
    bool has_addr;
    bool discard; /* skipping the rest of an oversized line */
    bool binary;  /* WebSocket: the message being read is binary */
    bool gone;    /* WebSocket: lws has closed it */
    bool authed;
    bool closing; /* uv_close called or about to be */
    bool ending;  /* shutdown requested: no more replies or reads */
    bool reading;
    bool has_held;   /* some subscription holds an update */
    size_t wbytes;   /* bytes handed to uv_write and not yet written */
    size_t queued;   /* requests in the server's queue */
    uint64_t end_at; /* ending: close by then (loop ms) */
    sub *subs;
    char rbuf[READ_CHUNK];
};

/* A request line waiting for the cycle boundary, where it is parsed: what
 * its parse interns can then be rolled back if it is refused. */
typedef struct pending {
    client *c;
    bool too_long;
    bool binary; /* a binary WebSocket message: not a request */
    size_t len;
    struct pending *next;
    char line[]; /* len bytes */
} pending;

/* One applied change that undo can revert. A new kind of change adds a
 * kind here and a case to do_undo and undo_free. */
enum undo_kind { UNDO_EDIT, UNDO_SET, UNDO_LOAD, UNDO_FIELDS };
typedef struct undo_entry {
    enum undo_kind kind;
    vv delta;         /* EDIT: the delta that was applied (owned) */
    vv_label path[6]; /* SET: the weight */
    double old;       /* SET: its value before */
    dmm_net *net;     /* LOAD: the network it replaced (owned) */
    char *fields;     /* FIELDS: the positions and modulations before, as
                         dmm_net_fields_save wrote them, on one line (owned) */
} undo_entry;

typedef struct write_req {
    uv_write_t w;
    client *c;
    size_t len;
    char data[];
} write_req;

struct dmm__live_server {
    uv_loop_t loop;
    vv_ctx *vc;
    const dmm_registry *reg;
    dmm_net *net;
    const dmm_serve_opts *o;
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
    dmm__live_web *web;  /* --http, or NULL */
    uv_timer_t web_stop; /* stopping: ends web once its clients are gone */
    int nws;             /* WebSocket clients not yet freed */
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
    size_t held;      /* bytes of partial lines and queued lines, all clients */
    int dirfd;        /* --dir: the one directory save and load use */
    undo_entry *hist; /* ring of o->history entries */
    size_t hist_n, hist_head;
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

/* Give back what c's partial line holds. */
static void line_release(client *c)
{
    c->srv->held -= c->lcap;
    free(c->line);
    c->line = NULL;
    c->llen = c->lcap = 0;
}

static void free_values(live_server *srv, vv **v, size_t n)
{
    if (*v)
        for (size_t i = 0; i < n; i++)
            vv_free(srv->vc, (*v)[i]);
    free(*v);
    *v = NULL;
}

static void drop_held(live_server *srv, sub *s)
{
    free(s->held);
    s->held = NULL;
    free_values(srv, &s->base, s->npaths);
}

static void free_subs(live_server *srv, client *c)
{
    while (c->subs) {
        sub *s = c->subs;
        c->subs = s->next;
        for (size_t i = 0; i < s->npaths; i++)
            free(s->paths[i].text);
        free_values(srv, &s->last, s->npaths);
        drop_held(srv, s);
        free(s->paths);
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
            srv->held -= p->len;
            free(p);
        } else {
            srv->tail = p;
            pp = &p->next;
        }
    }
    if (srv->step_client == c)
        srv->step_client = NULL;
    free_subs(srv, c);
    line_release(c);
    if (c->ws) {
        if (!c->gone) /* freed when lws says it is closed */
            dmm__live_ws_kill(c->ws);
    } else
        uv_close(&c->u.h, on_closed);
}

static size_t backlog(const client *c)
{
    return c->ws ? dmm__live_ws_backlog(c->ws) : c->wbytes;
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
    c->end_at = uv_now(&c->srv->loop) + GRACE_MS;
    c->reading = false;
    free_subs(c->srv, c);
    if (c->ws) {
        dmm__live_ws_read(c->ws, false);
        dmm__live_ws_end(c->ws);
        return;
    }
    uv_read_stop(&c->u.s);
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, &c->u.s, on_shutdown) < 0) {
        free(req);
        client_close(c);
        return;
    }
    req->data = c;
}

static void flush_held(client *c);

static void on_written(uv_write_t *w, int status)
{
    write_req *r = (write_req *)w;
    client *c = r->c;
    c->wbytes -= r->len;
    free(r);
    if (status < 0 && !c->closing)
        client_close(c);
    else
        flush_held(c);
}

static void send_raw(client *c, const char *data, size_t len)
{
    if (c->ws) {
        /* One message per line, without its newline. */
        if (len && data[len - 1] == '\n')
            len--;
        if (dmm__live_ws_send(c->ws, data, len) < 0)
            client_close(c);
        return;
    }
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
 * (it does not read) is told and dropped: the loop never waits for it. On a
 * WebSocket the largest message queued is not counted: one big message (W
 * whole for a page) is not a slow reader's sign by itself, what piles up
 * besides it is. */
static void send_line(client *c, const char *data, size_t len)
{
    if (c->closing || c->ending)
        return;
    live_server *srv = c->srv;
    size_t waiting =
        c->ws ? dmm__live_ws_backlog_but_largest(c->ws) : backlog(c);
    if (waiting > srv->o->max_backlog) {
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

/* Bytes waiting for a client past which its subscriptions' updates are
 * held rather than queued: each subscription keeps only its newest update
 * (a diff subscription's patch then covers every change since the update
 * before), sent once the client has read what waits. A slow reader sees
 * fewer updates, never older ones, and costs at most one update per
 * subscription; replies still count towards --max-backlog. */
static size_t hold_limit(const live_server *srv)
{
    size_t k = srv->o->max_backlog / 4;
    return k < 65536 ? k : 65536;
}

/* The client has read enough: send the updates it holds. */
static void flush_held(client *c)
{
    if (!c->has_held || c->closing || c->ending ||
        backlog(c) > hold_limit(c->srv))
        return;
    c->has_held = false;
    for (sub *s = c->subs; s; s = s->next) {
        if (!s->held)
            continue;
        char *m = s->held;
        size_t n = s->held_len;
        s->held = NULL;
        drop_held(c->srv, s);
        send_line(c, m, n);
        free(m);
        if (c->closing || c->ending)
            return;
    }
}

void dmm__live_client_ws_written(dmm__live_client *c)
{
    flush_held(c);
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
    dmm__live_err_set(&e, DMM__LIVE_E_INTERNAL, "", "out of memory");
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

/* Write event line b (rc: how building it went; b freed) to the log. */
static void log_write(live_server *srv, vv_buf *b, int rc)
{
    if (rc < 0 || fwrite(b->data, 1, b->len, srv->log) != b->len ||
        fflush(srv->log) != 0) {
        fprintf(stderr,
                "dmm serve: cannot write the log %s: %s; logging "
                "stops here\n",
                srv->o->log, rc < 0 ? dmm_strerror(rc) : strerror(errno));
        fclose(srv->log);
        srv->log = NULL;
    }
    free(b->data);
}

static int log_begin(live_server *srv, vv_buf *b)
{
    return vv_buf_printf(b, "{\"step\": %llu, \"op\": ",
                         (unsigned long long)dmm_net_step_count(srv->net) + 1);
}

/* A field event: op, then members as name and JSON text pairs (n of
 * them; text on one line). */
static void log_fields(live_server *srv, const char *op, size_t n,
                       const char *const *members)
{
    if (!srv->log)
        return;
    vv_buf b = {0};
    int rc = log_begin(srv, &b);
    if (!rc)
        rc = vv_buf_printf(&b, "\"%s\"", op);
    for (size_t k = 0; !rc && k < n; k++)
        rc = vv_buf_printf(&b, ", \"%s\": %s", members[2 * k],
                           members[2 * k + 1]);
    if (!rc)
        rc = vv_buf_append(&b, "}\n", 2);
    log_write(srv, &b, rc);
}

/* Append one applied event in the script format of `dmm run --script`:
 * applied just before cycle t + 1. */
static void log_event(live_server *srv, enum dmm__live_op op, vv_label name,
                      vv value)
{
    if (!srv->log)
        return;
    vv_buf b = {0};
    int rc = log_begin(srv, &b);
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
    log_write(srv, &b, rc);
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

/* Append the patch entries that turn a into b (at path, depth labels deep)
 * to out: ["REL", V] replaces the subtree at REL by V, "REL/:number" only
 * its scalar part; {} removes it. *n counts the entries. */
static int diff_write(live_server *srv, vv a, vv b, vv_label *path, int depth,
                      vv_buf *out, size_t *n)
{
    bool whole = !a.map || !b.map;
    if (a.map == b.map && a.num == b.num)
        return 0;
    if (whole || a.num != b.num) {
        int rc = vv_buf_append(out, *n ? ", [" : "[", *n ? 3 : 1);
        vv_buf rel = {0};
        if (!rc)
            rc = dmm_path_write(srv->vc, path, (size_t)depth, &rel);
        if (!rc && !whole)
            rc = vv_buf_append(&rel, depth ? "/:number" : ":number",
                               depth ? 8 : 7);
        if (!rc)
            rc = vv_buf_json_string(out, rel.data ? rel.data : "", rel.len);
        free(rel.data);
        if (!rc)
            rc = vv_buf_append(out, ", ", 2);
        if (!rc)
            rc = whole ? vv_write(srv->vc, b, out) : vv_buf_number(out, b.num);
        if (!rc)
            rc = vv_buf_append(out, "]", 1);
        ++*n;
        if (rc || whole)
            return rc;
    }
    if (a.map == b.map)
        return 0;
    if (depth >= vv_ctx_max_depth(srv->vc))
        return DMM_E_INVAL;
    /* Both children lists in label-id order: merge them. */
    vv_iter ia, ib;
    vv_iter_init(&ia, a);
    vv_iter_init(&ib, b);
    vv_label la = 0, lb = 0;
    vv ca, cb;
    bool ha = vv_iter_next(&ia, &la, &ca), hb = vv_iter_next(&ib, &lb, &cb);
    int rc = 0;
    while (!rc && (ha || hb)) {
        if (ha && (!hb || la < lb)) {
            path[depth] = la;
            rc = diff_write(srv, ca, VV_ZERO, path, depth + 1, out, n);
            ha = vv_iter_next(&ia, &la, &ca);
        } else if (hb && (!ha || lb < la)) {
            path[depth] = lb;
            rc = diff_write(srv, VV_ZERO, cb, path, depth + 1, out, n);
            hb = vv_iter_next(&ib, &lb, &cb);
        } else {
            path[depth] = la;
            rc = diff_write(srv, ca, cb, path, depth + 1, out, n);
            ha = vv_iter_next(&ia, &la, &ca);
            hb = vv_iter_next(&ib, &lb, &cb);
        }
    }
    return rc;
}

/* One update of s for c at step t from outputs y: whole values (a "cycle"
 * event), or for a diff subscription that has sent one, a "patch" event. */
static void publish_sub(live_server *srv, client *c, sub *s, vv y, uint64_t t)
{
    for (size_t i = 0; i < s->npaths; i++)
        dmm__live_path_resolve(srv->vc, &s->paths[i]);
    if (s->changes && !s->diff) {
        bool same = s->last != NULL;
        for (size_t i = 0; same && i < s->npaths; i++)
            same = vv_equal(s->last[i], path_value(y, &s->paths[i]));
        if (same)
            return;
    }
    /* A diff's patch starts from the last update sent: the one before a
     * held one, which this update replaces. */
    vv *from = s->diff ? (s->held ? s->base : s->last) : NULL;
    vv_buf *b = &srv->b;
    b->len = 0;
    int rc;
    if (from) {
        vv_label *path = malloc(
            (size_t)vv_ctx_max_depth(srv->vc) * sizeof *path + sizeof *path);
        rc = path ? vv_buf_printf(b,
                                  "{\"event\": \"patch\", \"subscription\": "
                                  "%llu, \"step\": %llu, \"patches\": {",
                                  (unsigned long long)s->id,
                                  (unsigned long long)t)
                  : DMM_E_NOMEM;
        size_t npatched = 0;
        for (size_t i = 0; !rc && i < s->npaths; i++) {
            vv now = path_value(y, &s->paths[i]);
            if (vv_equal(from[i], now))
                continue;
            if (npatched++)
                rc = vv_buf_append(b, ", ", 2);
            if (!rc)
                rc = vv_buf_json_string(b, s->paths[i].text,
                                        strlen(s->paths[i].text));
            size_t n = 0;
            if (!rc)
                rc = vv_buf_append(b, ": [", 3);
            if (!rc)
                rc = diff_write(srv, from[i], now, path, 0, b, &n);
            if (!rc)
                rc = vv_buf_append(b, "]", 1);
        }
        free(path);
        if (!rc && npatched == 0) {
            /* Nothing changed since the last update sent: a held one is
             * out of date and goes. */
            if (s->held) {
                free_values(srv, &s->last, s->npaths);
                s->last = s->base;
                s->base = NULL;
                free(s->held);
                s->held = NULL;
            }
            return;
        }
    } else {
        rc = vv_buf_printf(b,
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
    }
    if (!rc)
        rc = vv_buf_append(b, "}}\n", 3);
    /* Out of memory: this update is skipped, not faked; the next one
     * carries its changes. */
    vv *now = rc ? NULL : calloc(s->npaths, sizeof *now);
    if (!now)
        return;
    for (size_t i = 0; i < s->npaths; i++)
        now[i] = vv_ref(path_value(y, &s->paths[i]));
    if (backlog(c) > hold_limit(srv)) {
        char *m = malloc(b->len);
        if (!m) {
            free_values(srv, &now, s->npaths);
            return;
        }
        memcpy(m, b->data, b->len);
        if (!s->held && s->diff) {
            s->base = s->last; /* the last update sent */
            s->last = NULL;
        }
        free(s->held);
        s->held = m;
        s->held_len = b->len;
        c->has_held = true;
    } else {
        drop_held(srv, s);
        send_line(c, b->data, b->len);
    }
    free_values(srv, &s->last, s->npaths);
    if (s->changes || s->diff)
        s->last = now;
    else
        free_values(srv, &now, s->npaths);
}

static void publish(live_server *srv)
{
    uint64_t t = dmm_net_step_count(srv->net);
    /* Y is built only in cycles some subscription wants: with `every`
     * set for 10 updates a second, most cycles build nothing. */
    bool due = false;
    for (client *c = srv->clients; c && !due; c = c->next)
        for (sub *s = c->subs; s && !due; s = s->next)
            due = t % s->every == 0;
    if (!due)
        return;
    /* Out of memory making Y: this cycle's events are skipped, not faked;
     * the next cycle tries again. */
    if (dmm_net_outputs_build(srv->net, NULL) < 0)
        return;
    vv y = dmm_net_outputs(srv->net);
    client *next;
    for (client *c = srv->clients; c; c = next) {
        next = c->next;
        for (sub *s = c->subs; s && !c->closing && !c->ending; s = s->next) {
            if (t % s->every == 0)
                publish_sub(srv, c, s, y, t);
            if (c->closing || c->ending)
                break; /* dropped: its subscriptions are gone */
        }
    }
}

static void update_drive(live_server *srv);

static void finish_step(live_server *srv, bool fault, const char *msg)
{
    client *c = srv->step_client;
    srv->steps_left = 0;
    srv->step_client = NULL;
    if (!c)
        return;
    if (fault) {
        dmm__live_err e;
        dmm__live_err_set(&e, DMM__LIVE_E_FAULT, "", "%s", msg);
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
                finish_step(srv, true, msg);
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
            finish_step(srv, false, NULL);
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
static void engine_error(dmm__live_err *e, enum dmm__live_code code,
                         const dmm_error *err)
{
    dmm__live_err_set(e, code, err->path, "%s",
                      err->text[0] ? err->text : dmm_strerror(err->code));
}

/* ---- undo: a bounded history of applied changes ----------------------- */

static void undo_free(live_server *srv, undo_entry *u)
{
    switch (u->kind) {
    case UNDO_EDIT:
        vv_free(srv->vc, u->delta);
        break;
    case UNDO_SET:
        break;
    case UNDO_LOAD:
        dmm_net_free(u->net);
        break;
    case UNDO_FIELDS:
        free(u->fields);
        break;
    }
}

/* Remember an applied change (u's contents taken); the oldest is forgotten
 * when the history is full. */
static void undo_push(live_server *srv, undo_entry u)
{
    size_t cap = srv->o->history;
    if (!cap || !srv->hist) {
        undo_free(srv, &u);
        return;
    }
    if (srv->hist_n == cap) {
        undo_free(srv, &srv->hist[srv->hist_head]);
        srv->hist_head = (srv->hist_head + 1) % cap;
        srv->hist_n--;
    }
    srv->hist[(srv->hist_head + srv->hist_n) % cap] = u;
    srv->hist_n++;
}

/* The delta that makes the weight at path (six labels) exactly target
 * whenever a double allows it; 0 when it is already. */
static double delta_to(live_server *srv, const vv_label *path, double target,
                       double *was)
{
    double w = vv_get(dmm_net_matrix(srv->net), path, 6).num;
    double d = target - w;
    for (int k = 0; k < 4 && w + d != target; k++)
        d += target - (w + d);
    *was = w;
    return d;
}

/* W += delta through the engine's checks, logged as an edit. */
static int apply_edit(live_server *srv, vv delta, dmm__live_err *e)
{
    dmm_error err;
    int rc = dmm_net_edit(srv->net, delta, &err);
    if (rc < 0)
        engine_error(e, DMM__LIVE_E_INVALID_EDIT, &err);
    else
        log_event(srv, DMM__OP_EDIT, 0, delta);
    return rc;
}

/* One weight := target through edits. When no single delta reaches target
 * exactly (1e308 to 1, say), the weight is first taken to zero (w - w is
 * exact) and then given target, as two logged edits; if the first is
 * refused (the weight is Self's last), one delta as close as doubles allow.
 * *actual: the weight after. */
static int set_exact(live_server *srv, const vv_label *path, double target,
                     double *actual, dmm__live_err *e)
{
    double w, d = delta_to(srv, path, target, &w);
    *actual = w;
    if (d == 0)
        return 0;
    double steps[2] = {d, 0};
    int n = 1;
    if (w + d != target && w != 0) {
        steps[0] = -w;
        steps[1] = target;
        n = 2;
    }
    for (int k = 0; k < n; k++) {
        vv delta;
        int rc = vv_set(srv->vc, VV_ZERO, path, 6, vv_number(steps[k]), &delta);
        if (rc < 0)
            return dmm__live_err_set(e, DMM__LIVE_E_INTERNAL, "", "%s",
                                     dmm_strerror(rc));
        rc = apply_edit(srv, delta, e);
        vv_free(srv->vc, delta);
        if (rc < 0 && k == 0 && n == 2) {
            n = 1; /* zero refused: the closest single delta */
            steps[0] = d;
            k = -1;
            continue;
        }
        if (rc < 0) {
            /* k == 1 failed (out of memory): put the weight back. */
            if (k == 1 &&
                vv_set(srv->vc, VV_ZERO, path, 6, vv_number(w), &delta) == 0) {
                dmm__live_err ignored;
                apply_edit(srv, delta, &ignored);
                vv_free(srv->vc, delta);
            }
            return rc;
        }
    }
    *actual = vv_get(dmm_net_matrix(srv->net), path, 6).num;
    return 0;
}

/* Revert the newest change of the history; it stays when that is
 * refused. Undo is itself logged as the edit it applies, so it replays. */
static int do_undo(live_server *srv, dmm__live_err *e)
{
    if (srv->hist_n == 0)
        return dmm__live_err_set(e, DMM__LIVE_E_STATE, "",
                                 "nothing to undo (the history keeps the "
                                 "last %zu changes)",
                                 srv->o->history);
    size_t k = (srv->hist_head + srv->hist_n - 1) % srv->o->history;
    undo_entry *u = &srv->hist[k];
    vv delta = VV_ZERO;
    int rc = 0;
    switch (u->kind) {
    case UNDO_EDIT:
        rc = vv_scale(srv->vc, -1, u->delta, &delta);
        break;
    case UNDO_SET: {
        double was;
        if ((rc = set_exact(srv, u->path, u->old, &was, e)) < 0)
            return rc;
        break;
    }
    case UNDO_LOAD:
        dmm_net_free(srv->net);
        srv->net = u->net;
        u->net = NULL;
        break;
    case UNDO_FIELDS: {
        /* The whole set as it was, logged as a fields event. */
        dmm_error err;
        if (dmm_net_fields_restore(srv->net, u->fields, strlen(u->fields),
                                   &err) < 0) {
            engine_error(e, DMM__LIVE_E_INVALID_EDIT, &err);
            return -1;
        }
        log_fields(srv, "fields", 1, (const char *[]){"fields", u->fields});
        break;
    }
    }
    if (rc < 0)
        return dmm__live_err_set(e, DMM__LIVE_E_INTERNAL, "", "%s",
                                 dmm_strerror(rc));
    if (u->kind == UNDO_EDIT)
        rc = apply_edit(srv, delta, e);
    vv_free(srv->vc, delta);
    if (rc < 0)
        return rc;
    undo_free(srv, u);
    srv->hist_n--;
    return 0;
}

static int do_set(live_server *srv, const dmm__live_req *q, double *actual,
                  dmm__live_err *e)
{
    const dmm__live_path *p = &q->paths[0];
    const vv_label *wp = p->label; /* the weight's six labels in W */
    if (p->n == 9) {
        vv_label self[3];
        dmm_net_self(srv->net, self);
        if (memcmp(p->label, self, sizeof self) != 0)
            return dmm__live_err_set(
                e, DMM__LIVE_E_BAD_PATH, "/path",
                "\"%s\" has 9 labels: the first three must be Self's "
                "output path (where W is in the outputs)",
                p->text);
        wp += 3;
    }
    vv cur = vv_get(dmm_net_matrix(srv->net), wp, 6);
    /* A node with children is not one weight, but its scalar part is:
     * "P/:number" sets only that and keeps the rows below P. */
    if (!vv_is_scalar(cur) && !p->scalar)
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_PATH, "/path",
                                 "\"%s\" is not a weight (\"%s/:number\" is "
                                 "its scalar part)",
                                 p->text, p->text);
    /* The log holds the edits it makes. */
    double w = cur.num;
    int rc = set_exact(srv, wp, q->num, actual, e);
    if (rc == 0 && *actual != w) {
        undo_entry u = {.kind = UNDO_SET, .old = w};
        memcpy(u.path, wp, sizeof u.path);
        undo_push(srv, u);
    }
    return rc;
}

/* ---- files: save and load stay inside --dir ---------------------------- */

/* A file name from a client: relative, no "." or ".." part, no empty part.
 * (Symlinks that leave the directory are refused when opening.) */
static int check_name(const char *name, dmm__live_err *e)
{
    if (name[0] == '/')
        return dmm__live_err_set(e, DMM__LIVE_E_FORBIDDEN, "/file",
                                 "absolute paths are refused: give a name "
                                 "inside the server's directory");
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.'))
            return dmm__live_err_set(e, DMM__LIVE_E_FORBIDDEN, "/file",
                                     "a name with an empty, \".\" or \"..\" "
                                     "part is refused");
        p += n + (p[n] == '/');
        if (p[-1] == '/' && !*p)
            return dmm__live_err_set(e, DMM__LIVE_E_FORBIDDEN, "/file",
                                     "a name must not end in \"/\"");
    }
    return 0;
}

/* openat2 beneath dirfd: no absolute path, no "..", no symlink that leaves
 * the directory, no /proc magic link. */
static int open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
    struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC,
                           .mode = flags & O_CREAT ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    return (int)syscall(SYS_openat2, dirfd, name, &how, sizeof how);
}

static int file_error(dmm__live_err *e, const char *name, int errnum)
{
    if (errnum == EXDEV || errnum == ELOOP)
        return dmm__live_err_set(e, DMM__LIVE_E_FORBIDDEN, "/file",
                                 "%s: leaves the server's directory", name);
    return dmm__live_err_set(e, DMM__LIVE_E_IO, "/file", "%s: %s", name,
                             strerror(errnum));
}

/* Write the state to name atomically: a temporary file beside it, synced,
 * then renamed over it (a symlink named name is replaced, not followed). */
static int do_save(live_server *srv, const char *name, dmm__live_err *e)
{
    int rc = check_name(name, e);
    if (rc < 0)
        return rc;
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    char parent[4096];
    size_t pl = slash ? (size_t)(slash - name) : 0;
    if (pl >= sizeof parent)
        return dmm__live_err_set(e, DMM__LIVE_E_IO, "/file", "name too long");
    memcpy(parent, slash ? name : ".", slash ? pl : 1);
    parent[slash ? pl : 1] = '\0';
    int pfd = open_beneath(srv->dirfd, parent, O_PATH | O_DIRECTORY, 0);
    if (pfd < 0)
        return file_error(e, name, errno);
    vv_buf b = {0};
    char tmp[300];
    snprintf(tmp, sizeof tmp, ".%.200s.%ld.tmp", base, (long)getpid());
    int fd = -1, err = 0;
    if ((rc = dmm_net_save_buf(srv->net, &b)) < 0)
        err = ENOMEM;
    else if ((fd = openat(pfd, tmp,
                          O_WRONLY | O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC |
                              O_NOFOLLOW,
                          0644)) < 0)
        err = errno;
    for (size_t off = 0; fd >= 0 && !err && off < b.len;) {
        ssize_t w = write(fd, b.data + off, b.len - off);
        if (w < 0 && errno != EINTR)
            err = errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (fd >= 0 && !err && fsync(fd) < 0)
        err = errno;
    if (fd >= 0 && close(fd) < 0 && !err)
        err = errno;
    if (fd >= 0 && !err && renameat(pfd, tmp, pfd, base) < 0)
        err = errno;
    if (fd >= 0 && err)
        unlinkat(pfd, tmp, 0);
    close(pfd);
    free(b.data);
    return err ? file_error(e, name, err) : 0;
}

/* The text of a regular file inside the directory (new, NUL-terminated). */
static int read_beneath(live_server *srv, const char *name, char **text,
                        size_t *len, dmm__live_err *e)
{
    int rc = check_name(name, e);
    if (rc < 0)
        return rc;
    int fd =
        open_beneath(srv->dirfd, name, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);
    if (fd < 0)
        return file_error(e, name, errno);
    struct stat st;
    int err = 0;
    char *buf = NULL;
    size_t n = 0;
    if (fstat(fd, &st) < 0)
        err = errno;
    else if (!S_ISREG(st.st_mode))
        rc = dmm__live_err_set(e, DMM__LIVE_E_IO, "/file",
                               "%s: not a regular file", name);
    else if (st.st_size > (off_t)srv->o->max_message * 64)
        rc = dmm__live_err_set(e, DMM__LIVE_E_IO, "/file",
                               "%s: larger than %zu bytes", name,
                               srv->o->max_message * 64);
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        err = ENOMEM;
    while (!err && rc == 0 && buf && n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno != EINTR)
            err = errno;
        else if (r == 0)
            break;
        else if (r > 0)
            n += (size_t)r;
    }
    close(fd);
    if (err || rc < 0) {
        free(buf);
        return err ? file_error(e, name, err) : rc;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

static int do_load(live_server *srv, const dmm__live_req *q, dmm__live_err *e)
{
    if (srv->log)
        return dmm__live_err_set(e, DMM__LIVE_E_STATE, "",
                                 "load is refused while --log is on: a "
                                 "script cannot replace the network");
    dmm_net *net = NULL;
    dmm_error err;
    dmm_error_clear(&err);
    int rc;
    if (q->text) {
        char *text = NULL; /* set by read_beneath when it succeeds */
        size_t len = 0;
        if ((rc = read_beneath(srv, q->text, &text, &len, e)) < 0)
            return rc;
        rc = dmm_net_load_text(srv->vc, srv->reg, text, len, q->text, &net,
                               &err);
        free(text);
        if (rc < 0) {
            /* The file's contents stay on the server's side: the client
             * learns where and what kind of error, the operator the whole
             * message. */
            char msg[1024];
            dmm_error_format(&err, msg, sizeof msg);
            fprintf(stderr, "dmm serve: load refused: %s\n", msg);
            return dmm__live_err_set(e, DMM__LIVE_E_INVALID_NETWORK, "/file",
                                     "%s:%d:%d: %s: not a network this "
                                     "server can load (%s)",
                                     q->text, err.line, err.column,
                                     err.path[0] ? err.path : "/",
                                     dmm_strerror(rc));
        }
    } else if (q->doc_state) {
        rc = dmm_net_restore_text(srv->vc, srv->reg, q->doc, strlen(q->doc),
                                  "state", &net, &err);
    } else {
        rc = dmm_net_load_text(srv->vc, srv->reg, q->doc, strlen(q->doc),
                               "network", &net, &err);
    }
    if (rc < 0) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        return dmm__live_err_set(
            e, rc == DMM_E_IO ? DMM__LIVE_E_IO : DMM__LIVE_E_INVALID_NETWORK,
            "", "%s", msg);
    }
    undo_push(srv, (undo_entry){.kind = UNDO_LOAD, .net = srv->net});
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
    s->diff = q->diff;
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
    return dmm__live_err_set(e, DMM__LIVE_E_NOT_FOUND, "/subscription",
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

/* ---- the operations' handlers (rows of dmm__live_ops) ------------------
 * Each applies one parsed request at the cycle boundary and replies; a
 * refusal sends the error and returns its code. */

/* Send e as the reply to q; returns DMM_E_INVAL (the request was refused). */
static int refuse(client *c, const dmm__live_req *q, const dmm__live_err *e)
{
    send_error(c, q->id, e);
    return e->err.code < 0 ? e->err.code : DMM_E_INVAL;
}

/* Reply ok with the step and nothing else. */
static int reply_step(client *c, const dmm__live_req *q, uint64_t t)
{
    live_server *srv = c->srv;
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = append_step(srv, t);
    send_reply(c, q->id, rc);
    return 0;
}

/* Clients holding a slot: not refused, dropped or timed out. */
static int open_clients(const live_server *srv)
{
    int n = 0;
    for (const client *c = srv->clients; c; c = c->next)
        n += !c->closing && !c->ending;
    return n;
}

int dmm__live_handle_hello(live_server *srv, client *c, dmm__live_req *q)
{
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = vv_buf_printf(&srv->b,
                           ", \"server\": \"dmm\", \"version\": \"%s\", "
                           "\"protocol\": 1",
                           DMM_VERSION);
    send_reply(c, q->id, rc);
    return 0;
}

/* `"self": {"path": ..., "rows": R}`: Self's output (W) and its rows
 * (type/name/input) holding a weight, counted in O(rows), so that pages
 * asking twice a second cost the engine next to nothing. */
static int append_self(live_server *srv)
{
    vv w = dmm_net_matrix(srv->net);
    size_t rows = 0;
    vv_iter i1, i2, i3;
    vv_label l;
    vv a, b, c;
    vv_iter_init(&i1, w);
    while (vv_iter_next(&i1, &l, &a)) {
        vv_iter_init(&i2, a);
        while (vv_iter_next(&i2, &l, &b)) {
            vv_iter_init(&i3, b);
            while (vv_iter_next(&i3, &l, &c))
                rows += !vv_is_zero(c);
        }
    }
    vv_label self[3];
    dmm_net_self(srv->net, self);
    vv_buf p = {0};
    int rc = dmm_path_write(srv->vc, self, 3, &p);
    if (!rc)
        rc = vv_buf_append(&srv->b, ", \"self\": {\"path\": ", 19);
    if (!rc)
        rc = vv_buf_json_string(&srv->b, p.data ? p.data : "", p.len);
    free(p.data);
    if (!rc)
        rc = vv_buf_printf(&srv->b, ", \"rows\": %zu}", rows);
    return rc;
}

int dmm__live_handle_status(live_server *srv, client *c, dmm__live_req *q)
{
    dmm_net *net = srv->net;
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = append_step(srv, dmm_net_step_count(net));
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
                           dmm_net_active_count(net), dmm_net_weight_count(net),
                           open_clients(srv), (unsigned long long)srv->dropped,
                           vv_label_count(srv->vc));
    size_t npos, nmods;
    dmm_net_fields_count(net, &npos, &nmods);
    if (!rc)
        rc = vv_buf_printf(
            &srv->b, ", \"positions\": %zu, \"modulations\": %zu", npos, nmods);
    if (!rc)
        rc = append_self(srv);
    send_reply(c, q->id, rc);
    return 0;
}

static int set_running(live_server *srv, client *c, dmm__live_req *q,
                       bool running)
{
    srv->running = running;
    update_drive(srv);
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = append_step(srv, dmm_net_step_count(srv->net));
    if (!rc)
        rc = vv_buf_printf(&srv->b, ", \"running\": %s",
                           srv->running ? "true" : "false");
    send_reply(c, q->id, rc);
    return 0;
}

int dmm__live_handle_pause(live_server *srv, client *c, dmm__live_req *q)
{
    return set_running(srv, c, q, false);
}

int dmm__live_handle_resume(live_server *srv, client *c, dmm__live_req *q)
{
    return set_running(srv, c, q, true);
}

int dmm__live_handle_step(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    if (srv->running) {
        dmm__live_err_set(&e, DMM__LIVE_E_STATE, "",
                          "step runs cycles of a paused network; send "
                          "pause first");
        return refuse(c, q, &e);
    }
    srv->steps_left = q->n;
    srv->step_client = c;
    memcpy(srv->step_id, q->id, sizeof srv->step_id);
    update_drive(srv);
    return 0; /* the reply comes when the cycles have run */
}

int dmm__live_handle_rate(live_server *srv, client *c, dmm__live_req *q)
{
    srv->rate = q->num;
    update_drive(srv);
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = vv_buf_append(&srv->b, ", \"rate\": ", 10);
    if (!rc)
        rc = srv->rate > 0 ? vv_buf_number(&srv->b, srv->rate)
                           : vv_buf_append(&srv->b, "\"max\"", 5);
    send_reply(c, q->id, rc);
    return 0;
}

int dmm__live_handle_get(live_server *srv, client *c, dmm__live_req *q)
{
    dmm_net *net = srv->net;
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = append_step(srv, dmm_net_step_count(net));
    dmm__live_path_resolve(srv->vc, &q->paths[0]);
    if (!rc)
        rc = dmm_net_outputs_build(net, NULL);
    if (!rc)
        rc = append_value(srv, "value",
                          path_value(dmm_net_outputs(net), &q->paths[0]));
    send_reply(c, q->id, rc);
    return 0;
}

int dmm__live_handle_edit(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    dmm_error err;
    uint64_t t = dmm_net_step_count(srv->net);
    if (dmm_net_edit(srv->net, q->value, &err) < 0) {
        engine_error(&e, DMM__LIVE_E_INVALID_EDIT, &err);
        char *path = e.err.path;
        size_t n = strlen(path);
        if (path[0] == '/' && n + 7 <= sizeof e.err.path) {
            memmove(path + 6, path, n + 1);
            memcpy(path, "/delta", 6);
        }
        return refuse(c, q, &e);
    }
    log_event(srv, DMM__OP_EDIT, 0, q->value);
    undo_push(srv, (undo_entry){.kind = UNDO_EDIT, .delta = q->value});
    q->value = VV_ZERO; /* taken by the history */
    return reply_step(c, q, t + 1);
}

int dmm__live_handle_set(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    double actual = 0;
    uint64_t t = dmm_net_step_count(srv->net);
    if (do_set(srv, q, &actual, &e) < 0)
        return refuse(c, q, &e);
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = append_step(srv, t + 1);
    if (!rc)
        rc = vv_buf_append(&srv->b, ", \"value\": ", 11);
    if (!rc)
        rc = vv_buf_number(&srv->b, actual);
    send_reply(c, q->id, rc);
    return 0;
}

int dmm__live_handle_feed(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    dmm_error err;
    dmm_net *net = srv->net;
    uint64_t t = dmm_net_step_count(net);
    /* An input neuron emits one map per cycle; a second feed before the
     * cycle would be emitted later than the step the reply and the log
     * name, so it is refused (as a script refuses it). */
    if (dmm_net_queue_len(net, q->name) > 0) {
        dmm__live_err_set(&e, DMM__LIVE_E_CONFLICT, "/neuron",
                          "input/%s already has a map for step %llu; "
                          "feed again after that cycle",
                          vv_label_str(srv->vc, q->name, NULL),
                          (unsigned long long)t + 1);
        return refuse(c, q, &e);
    }
    if (dmm_net_feed(net, q->name, q->value, &err) < 0) {
        engine_error(&e, DMM__LIVE_E_INVALID_EDIT, &err);
        return refuse(c, q, &e);
    }
    log_event(srv, DMM__OP_FEED, q->name, q->value);
    return reply_step(c, q, t + 1);
}

/* modulate and position: through the engine's checks (a refusal changes
 * nothing), logged as the script event of the same name, undone by putting
 * back the whole set of positions and modulations as it was. */
static int fields_request(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    dmm_error err;
    dmm_net *net = srv->net;
    uint64_t t = dmm_net_step_count(net);
    bool mod = q->op == DMM__OP_MODULATE;
    vv_buf before = {0};
    if (dmm_net_fields_save(net, &before) < 0 ||
        vv_buf_append(&before, "", 1) < 0) {
        free(before.data);
        send_oom(c, q->id);
        return DMM_E_NOMEM;
    }
    size_t len = strlen(q->doc);
    int rc = mod ? dmm_net_modulate(net, q->text, q->doc, len, &err)
                 : dmm_net_position_json(net, q->text, q->doc, len, &err);
    if (rc < 0) {
        free(before.data);
        engine_error(&e, DMM__LIVE_E_INVALID_EDIT, &err);
        return refuse(c, q, &e);
    }
    for (char *p = before.data; *p; p++)
        if (*p == '\n') /* separators only: strings escape theirs */
            *p = ' ';
    vv_buf name = {0};
    if (vv_buf_json_string(&name, q->text, strlen(q->text)) < 0 ||
        vv_buf_append(&name, "", 1) < 0) {
        free(name.data);
        name.data = NULL;
    }
    const char *ev[4] = {mod ? "action" : "neuron", name.data ? name.data : "",
                         mod ? "modulation" : "at", q->doc};
    log_fields(srv, mod ? "modulate" : "position", 2, ev);
    free(name.data);
    undo_push(srv, (undo_entry){.kind = UNDO_FIELDS, .fields = before.data});
    return reply_step(c, q, t + 1);
}

int dmm__live_handle_modulate(live_server *srv, client *c, dmm__live_req *q)
{
    return fields_request(srv, c, q);
}

int dmm__live_handle_position(live_server *srv, client *c, dmm__live_req *q)
{
    return fields_request(srv, c, q);
}

int dmm__live_handle_subscribe(live_server *srv, client *c, dmm__live_req *q)
{
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = do_subscribe(srv, c, q);
    if (!rc)
        rc = append_step(srv, dmm_net_step_count(srv->net));
    send_reply(c, q->id, rc);
    /* A diff subscription starts with the whole values now; patches follow
     * from the next cycle on. */
    sub *s = c->subs;
    while (s && s->next)
        s = s->next;
    if (!rc && q->diff && s && !c->closing && !c->ending &&
        dmm_net_outputs_build(srv->net, NULL) == 0)
        publish_sub(srv, c, s, dmm_net_outputs(srv->net),
                    dmm_net_step_count(srv->net));
    return 0;
}

int dmm__live_handle_unsubscribe(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    if (do_unsubscribe(srv, c, q->n, &e) < 0)
        return refuse(c, q, &e);
    send_reply(c, q->id, dmm__live_reply_begin(&srv->b, q->id));
    return 0;
}

int dmm__live_handle_snapshot(live_server *srv, client *c, dmm__live_req *q)
{
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = do_snapshot(srv);
    send_reply(c, q->id, rc);
    return 0;
}

int dmm__live_handle_save(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    if (do_save(srv, q->text, &e) < 0)
        return refuse(c, q, &e);
    int rc = dmm__live_reply_begin(&srv->b, q->id);
    if (!rc)
        rc = append_step(srv, dmm_net_step_count(srv->net));
    if (!rc)
        rc = vv_buf_append(&srv->b, ", \"file\": ", 10);
    if (!rc)
        rc = vv_buf_json_string(&srv->b, q->text, strlen(q->text));
    send_reply(c, q->id, rc);
    return 0;
}

int dmm__live_handle_load(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    if (do_load(srv, q, &e) < 0)
        return refuse(c, q, &e);
    return reply_step(c, q, dmm_net_step_count(srv->net));
}

int dmm__live_handle_undo(live_server *srv, client *c, dmm__live_req *q)
{
    dmm__live_err e;
    if (do_undo(srv, &e) < 0)
        return refuse(c, q, &e);
    return reply_step(c, q, dmm_net_step_count(srv->net));
}

int dmm__live_handle_shutdown(live_server *srv, client *c, dmm__live_req *q)
{
    reply_step(c, q, dmm_net_step_count(srv->net));
    begin_stop(srv);
    return 0;
}

/* Apply one request at the cycle boundary and reply; < 0 when refused. */
static int process(live_server *srv, client *c, dmm__live_req *q)
{
    srv->b.len = 0;
    if (!c->authed) {
        if (q->op != DMM__OP_HELLO || !token_ok(srv->o->token, q->text)) {
            dmm__live_err e;
            dmm__live_err_set(&e, DMM__LIVE_E_UNAUTHORIZED, "",
                              q->op == DMM__OP_HELLO
                                  ? "wrong token"
                                  : "the first request must be hello with "
                                    "the server's token");
            refuse(c, q, &e);
            client_end(c);
            return DMM_E_INVAL;
        }
        c->authed = true;
    }
    return dmm__live_ops[q->op].handle(srv, c, q);
}

/* The cycle boundary: parse and apply the queued requests in arrival
 * order. A step in progress holds the queue until its cycles have run. A
 * request that is refused, at its parse or when applied, leaves no trace:
 * the labels its parse interned are rolled back once it is freed (nothing
 * else runs between the parse and the rollback, and a refused request is
 * in no value, log or history). */
static void drain(live_server *srv)
{
    while (srv->head && !srv->steps_left && !srv->stopping) {
        pending *p = srv->head;
        srv->head = p->next;
        if (!srv->head)
            srv->tail = NULL;
        client *c = p->c;
        c->queued--;
        c->qbytes -= p->len;
        srv->held -= p->len;
        size_t mark = vv_label_count(srv->vc);
        dmm__live_req req;
        dmm__live_err err;
        int rc;
        memset(&req, 0, sizeof req);
        req.value = VV_ZERO;
        if (p->binary)
            rc = dmm__live_err_set(&err, DMM__LIVE_E_MALFORMED, "",
                                   "a binary message is not a request: "
                                   "send JSON as text");
        else if (p->too_long)
            rc = dmm__live_err_set(&err, DMM__LIVE_E_TOO_LONG, "",
                                   "request longer than %zu bytes; it was "
                                   "skipped up to its newline",
                                   srv->o->max_message);
        else
            rc = dmm__live_parse(srv->vc, p->line, p->len, &req, &err);
        srv->b.len = 0;
        if (rc < 0 && !c->authed) {
            /* Without the token nothing else is served. */
            dmm__live_err_set(&err, DMM__LIVE_E_UNAUTHORIZED, "",
                              "the first request must be hello with the "
                              "server's token");
            send_error(c, req.id, &err);
            client_end(c);
        } else if (rc < 0) {
            send_error(c, req.id, &err);
        } else {
            rc = process(srv, c, &req);
        }
        dmm__live_req_free(srv->vc, &req);
        if (rc < 0)
            vv_label_rollback(srv->vc, mark);
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
            c->queued < MAX_QUEUED / 2 && srv->held < srv->o->max_buffered)
            resume_read(c);
}

/* ---- reading ------------------------------------------------------------ */

static void enqueue(client *c, const char *line, size_t len, bool too_long)
{
    live_server *srv = c->srv;
    pending *p = malloc(sizeof *p + len);
    if (!p) {
        client_close(c);
        return;
    }
    p->c = c;
    p->too_long = too_long;
    p->binary = false;
    p->len = len;
    p->next = NULL;
    if (len)
        memcpy(p->line, line, len);
    if (srv->tail)
        srv->tail->next = p;
    else
        srv->head = p;
    srv->tail = p;
    c->queued++;
    c->qbytes += len;
    srv->held += len;
}

/* Room for n more bytes of c's partial line. The buffer grows as the line
 * does; what all partial lines hold together is bounded by --max-buffered,
 * and a client that would go past it is told (busy) and closed. */
static bool line_reserve(client *c, size_t n)
{
    live_server *srv = c->srv;
    size_t need = c->llen + n;
    if (need <= c->lcap)
        return true;
    size_t cap = c->lcap ? c->lcap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > srv->o->max_message)
        cap = srv->o->max_message;
    char *line = NULL;
    if (srv->held + (cap - c->lcap) <= srv->o->max_buffered)
        line = realloc(c->line, cap);
    if (!line) {
        dmm__live_err e;
        dmm__live_err_set(&e, DMM__LIVE_E_BUSY, "",
                          "the server holds %zu bytes of unfinished lines "
                          "(--max-buffered); closing",
                          srv->held);
        send_error(c, "", &e);
        client_end(c);
        return false;
    }
    srv->held += cap - c->lcap;
    c->line = line;
    c->lcap = cap;
    return true;
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
    c->last_line = uv_now(&c->srv->loop);
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
            line_release(c);
            c->discard = nl == NULL;
            enqueue(c, NULL, 0, true);
            c->last_line = uv_now(&c->srv->loop);
        } else if (nl && c->llen == 0) {
            take_line(c, p, n);
        } else {
            if (!line_reserve(c, n))
                return;
            memcpy(c->line + c->llen, p, n);
            c->llen += n;
            if (nl) {
                take_line(c, c->line, c->llen);
                line_release(c);
            }
        }
        p += n + (nl != NULL);
    }
    /* Reads pause while the client has many requests queued or the server
     * holds --max-buffered bytes of lines; on_check resumes them. */
    if (!c->closing && c->reading &&
        (c->queued >= MAX_QUEUED || srv->held >= srv->o->max_buffered)) {
        uv_read_stop(&c->u.s);
        c->reading = false;
    }
}

static void resume_read(client *c)
{
    if (c->ws) {
        dmm__live_ws_read(c->ws, true);
        c->reading = true;
        return;
    }
    if (uv_read_start(&c->u.s, on_alloc, on_read) == 0)
        c->reading = true;
    else
        client_close(c);
}

/* Same host (the port aside)? */
static bool same_host(const struct sockaddr_storage *a,
                      const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                       &((const struct sockaddr_in6 *)b)->sin6_addr,
                       sizeof(struct in6_addr));
    return false;
}

static void admit(client *c);

static void on_connection(uv_stream_t *server, int status)
{
    live_server *srv = server->data;
    if (status < 0 || srv->stopping)
        return;
    client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = srv;
    int rc = srv->is_pipe ? uv_pipe_init(&srv->loop, &c->u.pipe, 0)
                          : uv_tcp_init(&srv->loop, &c->u.tcp);
    if (rc < 0) {
        free(c);
        return;
    }
    c->u.h.data = c;
    if (uv_accept(server, &c->u.s) < 0) {
        uv_close(&c->u.h, on_closed);
        return;
    }
    int len = sizeof c->addr;
    c->has_addr =
        !srv->is_pipe &&
        uv_tcp_getpeername(&c->u.tcp, (struct sockaddr *)&c->addr, &len) == 0;
    admit(c);
}

/* A new client (socket or WebSocket) joins the list, and is served, or
 * told there is no slot for it and closed. */
static void admit(client *c)
{
    live_server *srv = c->srv;
    c->next = srv->clients;
    if (c->next)
        c->next->prev = c;
    srv->clients = c;
    srv->nclients++;
    c->authed = srv->o->token == NULL;
    c->last_line = uv_now(&srv->loop);
    /* Clients on their way out (refused, dropped, timed out) hold no
     * slot. */
    int same = 0, open = 0;
    for (client *o = c->next; o; o = o->next) {
        bool live = !o->closing && !o->ending;
        open += live;
        same +=
            live && c->has_addr && o->has_addr && same_host(&o->addr, &c->addr);
    }
    dmm__live_err e;
    if (open >= srv->o->max_clients) {
        dmm__live_err_set(&e, DMM__LIVE_E_TOO_MANY_CLIENTS, "",
                          "the server takes at most %d clients",
                          srv->o->max_clients);
    } else if (same >= srv->o->max_per_address) {
        dmm__live_err_set(&e, DMM__LIVE_E_TOO_MANY_CLIENTS, "",
                          "the server takes at most %d clients from one "
                          "address",
                          srv->o->max_per_address);
    } else {
        resume_read(c);
        return;
    }
    send_error(c, "", &e);
    client_end(c);
}

/* ---- WebSocket clients (the transport is live_web.c) ------------------ */

client *dmm__live_client_ws_open(live_server *srv, dmm__live_ws *ws)
{
    if (srv->stopping)
        return NULL;
    client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = srv;
    c->ws = ws;
    c->has_addr = dmm__live_ws_peer(ws, &c->addr);
    srv->nws++;
    admit(c);
    return c;
}

/* A message arrives in parts; it is one request, kept whole up to
 * --max-message bytes and refused (too-long) past that without being
 * kept. A binary message is refused: requests are JSON text. */
void dmm__live_client_ws_data(client *c, const char *data, size_t len,
                              bool first, bool final, bool binary)
{
    live_server *srv = c->srv;
    if (c->closing || c->ending)
        return;
    if (first) {
        line_release(c);
        c->discard = false;
        c->binary = binary;
    }
    if (!c->discard && !c->binary) {
        if (c->llen + len > srv->o->max_message) {
            line_release(c);
            c->discard = true;
        } else if (len) {
            if (!line_reserve(c, len))
                return;
            memcpy(c->line + c->llen, data, len);
            c->llen += len;
        }
    }
    if (!final)
        return;
    c->last_line = uv_now(&srv->loop);
    if (c->discard || c->binary) {
        enqueue(c, NULL, 0, c->discard);
        if (!c->discard && srv->tail && srv->tail->c == c)
            srv->tail->binary = true;
    } else {
        enqueue(c, c->line ? c->line : "", c->llen, false);
    }
    line_release(c);
    c->discard = c->binary = false;
    if (!c->closing && c->reading &&
        (c->queued >= MAX_QUEUED || srv->held >= srv->o->max_buffered)) {
        dmm__live_ws_read(c->ws, false);
        c->reading = false;
    }
}

void dmm__live_client_ws_gone(client *c)
{
    live_server *srv = c->srv;
    c->gone = true;
    client_close(c);
    srv->nws--;
    free(c->line);
    free(c);
}

/* ---- start and stop ----------------------------------------------------- */

static void on_reaper(uv_timer_t *h)
{
    live_server *srv = h->data;
    uint64_t now = uv_now(&srv->loop);
    client *next;
    for (client *c = srv->clients; c; c = next) {
        next = c->next;
        if (c->ending && now >= c->end_at) {
            client_close(c);
        } else if (!c->ending && !c->closing && srv->o->idle_timeout_ms &&
                   !c->subs && c->queued == 0 && srv->step_client != c &&
                   now - c->last_line >= srv->o->idle_timeout_ms) {
            /* Nothing sent, only part of a line, or nothing more asked: its
             * slot goes back to the others. */
            char note[160];
            int n = snprintf(note, sizeof note,
                             "{\"event\": \"idle\", \"message\": \"no "
                             "request for %llu ms; closing\"}\n",
                             (unsigned long long)srv->o->idle_timeout_ms);
            send_line(c, note, (size_t)n);
            client_end(c);
        }
    }
}

/* Stopping: once no WebSocket client is left (each had its grace time to
 * read what was queued for it), the lws context goes, and with it the last
 * handles that keep the loop running. */
static void on_web_stop(uv_timer_t *h)
{
    live_server *srv = h->data;
    if (srv->nws > 0)
        return;
    dmm__live_web_stop(srv->web);
    uv_close((uv_handle_t *)h, NULL);
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
    if (srv->web)
        uv_timer_start(&srv->web_stop, on_web_stop, 0, 20);
    else
        uv_close((uv_handle_t *)&srv->web_stop, NULL);
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

int dmm_live_hostport(const char *spec, char *host, size_t size, int *port,
                      dmm_error *err)
{
    const char *colon = strrchr(spec, ':');
    char *endp = NULL;
    long p = colon && colon[1] >= '0' && colon[1] <= '9'
                 ? strtol(colon + 1, &endp, 10)
                 : -1;
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    if (p < 0 || *endp || p > 65535 || hl == 0 || hl >= size)
        return dmm_error_set(err, DMM_E_INVAL, "", "%s: expected HOST:PORT",
                             spec);
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
        memcpy(host, spec + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        memcpy(host, spec, hl);
        host[hl] = '\0';
    }
    *port = (int)p;
    return 0;
}

static int bind_listener(live_server *srv, FILE *announce)
{
    const dmm_serve_opts *o = srv->o;
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
        char host[256];
        int port;
        dmm_error e;
        if (dmm_live_hostport(spec, host, sizeof host, &port, &e) < 0)
            return dmm_error_set(srv->err, DMM_E_INVAL, "", "--listen %s",
                                 e.text);
        struct sockaddr_storage ss;
        bool v4 = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0;
        if (!v4 && uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
            return dmm_error_set(srv->err, DMM_E_INVAL, "",
                                 "--listen %s: \"%s\" is not a numeric IPv4 "
                                 "or IPv6 address",
                                 spec, host);
        bool loopback =
            v4 ? (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) ==
                     127
               : !memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr,
                         &in6addr_loopback, sizeof(struct in6_addr));
        if (!loopback && !o->token)
            return dmm_error_set(srv->err, DMM_E_INVAL, "",
                                 "--listen %s: a server reachable from other "
                                 "machines needs a token (--token-file FILE "
                                 "or DMM_TOKEN)",
                                 spec);
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

int dmm_live_serve(vv_ctx *vc, const dmm_registry *reg, dmm_net *net,
                   const dmm_serve_opts *o, FILE *announce, dmm_error *err)
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
    srv->dirfd = -1;
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
    uv_timer_init(&srv->loop, &srv->web_stop);
    srv->web_stop.data = srv;
    srv->timer.data = srv->idle.data = srv->check.data = srv;
    srv->reaper.data = srv->sigint.data = srv->sigterm.data = srv;
    signal(SIGPIPE, SIG_IGN);

    const char *dir = o->dir ? o->dir : ".";
    if (o->history && !(srv->hist = calloc(o->history, sizeof *srv->hist))) {
        rc = dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
    } else if ((srv->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = dmm_error_set(err, DMM_E_IO, "", "--dir %s: %s", dir,
                           strerror(errno));
    } else if (o->log && !(srv->log = fopen(o->log, "w"))) {
        rc = dmm_error_set(err, DMM_E_IO, "", "cannot open the log %s: %s",
                           o->log, strerror(errno));
    } else {
        /* Signals are caught before the address is announced: a client
         * that stops the server at once still gets a clean stop. */
        uv_signal_start(&srv->sigint, on_signal, SIGINT);
        uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
        rc = bind_listener(srv, announce);
    }
    if (rc == 0 && o->http)
        rc = dmm__live_web_start(srv, &srv->loop, o->http, o->token != NULL,
                                 announce, &srv->web, err);
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
    dmm__live_web_free(srv->web);
    uv_loop_close(&srv->loop);
    while (srv->head) {
        pending *p = srv->head;
        srv->head = p->next;
        free(p);
    }
    if (srv->log)
        fclose(srv->log);
    for (size_t k = 0; k < srv->hist_n; k++)
        undo_free(srv, &srv->hist[(srv->hist_head + k) % o->history]);
    free(srv->hist);
    if (srv->dirfd >= 0)
        close(srv->dirfd);
    free(srv->b.data);
    dmm_net_free(srv->net);
    free(srv);
    return rc;
}
