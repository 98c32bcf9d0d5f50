// SPDX-License-Identifier: MIT
/*
 * `dmm serve --http` over loopback: the page and its files over HTTP, the
 * protocol over WebSocket at /ws spoken by a real client (libwebsockets'
 * client on its own loop), and the refusals: a cross-origin upgrade (403),
 * no token, bad frames, an oversized message, a reader too slow. The built
 * binary (env DMM_EXE) is spawned; plain HTTP requests are written on a
 * socket to see the exact status line. Timeouts only guard against hangs.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

extern char **environ;

enum { GUARD_MS = 60000 };

typedef struct server {
    pid_t pid;
    char addr[256]; /* the protocol's HOST:PORT */
    char url[256];  /* http://HOST:PORT/ */
    int port;       /* of url */
} server;

static pid_t live_pid;

static const char *exe(void)
{
    const char *e = getenv("DMM_EXE");
    assert_non_null(e);
    return e;
}

static void read_line(int fd, char *out, size_t size)
{
    size_t k = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_true(poll(&p, 1, GUARD_MS) == 1);
        char ch;
        assert_true(read(fd, &ch, 1) == 1);
        if (ch == '\n')
            break;
        assert_true(k + 1 < size);
        out[k++] = ch;
    }
    out[k] = '\0';
}

/* Spawn `dmm serve NET --http 127.0.0.1:0 ARGS...` and read both lines. */
static void server_start(server *s, const char *net, const char *const *args)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    char *path = tu_path(net);
    const char *argv[32] = {exe(), "serve", path, "--http", "127.0.0.1:0"};
    size_t n = 5;
    for (size_t i = 0; args && args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    assert_int_equal(
        posix_spawn(&s->pid, exe(), &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    free(path);
    live_pid = s->pid;
    close(pfd[1]);
    read_line(pfd[0], s->addr, sizeof s->addr);
    read_line(pfd[0], s->url, sizeof s->url);
    close(pfd[0]);
    assert_true(strncmp(s->url, "http://127.0.0.1:", 17) == 0);
    s->port = atoi(s->url + 17);
    assert_true(s->port > 0);
    assert_string_equal(s->url + strlen(s->url) - 1, "/");
}

static int server_wait(server *s)
{
    int st = 0;
    for (int ms = 0; ms < GUARD_MS; ms += 10) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            live_pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("dmm serve did not exit");
    return -1;
}

static int tcp_connect(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* new (free()): everything the server answers to one raw HTTP request
 * (it closes or the guard passes). */
static char *http_raw(const server *s, const char *req)
{
    int fd = tcp_connect("127.0.0.1", s->port);
    assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 3000) != 1)
            break; /* keep-alive: what came is the answer */
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static char *upgrade_request(const server *s, const char *path,
                             const char *origin)
{
    static char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                     path, s->port);
    if (origin)
        n +=
            snprintf(req + n, sizeof req - (size_t)n, "Origin: %s\r\n", origin);
    snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    return req;
}

/* ---- a WebSocket client: libwebsockets on its own (poll) loop ---------- */

typedef struct wsc {
    struct lws_context *ctx;
    struct lws *wsi;
    bool open, closed;
    char *rx; /* the message being received */
    size_t rxlen;
    char *msgs[4096]; /* received, not yet taken */
    size_t head, tail;
    char *out; /* to send */
    size_t outlen;
    bool out_binary;
    bool stop_reading;
} wsc;

static int on_client(struct lws *wsi, enum lws_callback_reasons reason,
                     void *user, void *in, size_t len)
{
    wsc *w = lws_get_opaque_user_data(wsi);
    if (!w)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        w->open = true;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        w->rx = realloc(w->rx, w->rxlen + len + 1);
        memcpy(w->rx + w->rxlen, in, len);
        w->rxlen += len;
        if (lws_is_final_fragment(wsi) &&
            lws_remaining_packet_payload(wsi) == 0) {
            w->rx[w->rxlen] = '\0';
            assert_true(w->tail - w->head < 4096);
            w->msgs[w->tail++ % 4096] = w->rx;
            w->rx = NULL;
            w->rxlen = 0;
        }
        if (w->stop_reading)
            lws_rx_flow_control(wsi, 0);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (w->out) {
            unsigned char *buf = malloc(LWS_PRE + w->outlen);
            memcpy(buf + LWS_PRE, w->out, w->outlen);
            int n =
                lws_write(wsi, buf + LWS_PRE, w->outlen,
                          w->out_binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
            assert_true(n >= 0);
            free(buf);
            free(w->out);
            w->out = NULL;
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        w->closed = true;
        w->wsi = NULL;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols client_protocols[] = {
    {"dmm-test", on_client, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Connect to /ws with the page's own Origin. */
static void ws_open(wsc *w, const server *s)
{
    memset(w, 0, sizeof *w);
    lws_set_log_level(getenv("WS_DEBUG") ? 0x7ff : 0, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = client_protocols;
    info.uid = info.gid = -1;
    w->ctx = lws_create_context(&info);
    assert_non_null(w->ctx);
    char origin[64], host[64];
    /* lws's client writes "Origin: http://" + this. */
    snprintf(origin, sizeof origin, "127.0.0.1:%d", s->port);
    snprintf(host, sizeof host, "127.0.0.1:%d", s->port);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = w->ctx;
    ci.address = "127.0.0.1";
    ci.port = s->port;
    ci.path = "/ws";
    ci.host = host;
    ci.origin = origin;
    ci.opaque_user_data = w;
    ci.pwsi = &w->wsi;
    assert_non_null(lws_client_connect_via_info(&ci));
    for (int ms = 0; !w->open && !w->closed && ms < GUARD_MS; ms += 10)
        lws_service(w->ctx, 10);
    assert_true(w->open);
}

static void ws_close(wsc *w)
{
    lws_context_destroy(w->ctx);
    while (w->head < w->tail)
        free(w->msgs[w->head++ % 4096]);
    free(w->rx);
    free(w->out);
}

static void ws_send_frame(wsc *w, const char *data, size_t len, bool binary)
{
    assert_non_null(w->wsi);
    w->out = malloc(len + 1);
    memcpy(w->out, data, len);
    w->outlen = len;
    w->out_binary = binary;
    lws_callback_on_writable(w->wsi);
    for (int ms = 0; w->out && !w->closed && ms < GUARD_MS; ms += 10)
        lws_service(w->ctx, 10);
    assert_null(w->out);
}

static void ws_send(wsc *w, const char *text)
{
    ws_send_frame(w, text, strlen(text), false);
}

/* new: the next message as JSON, or NULL when the server closed. */
static json_t *ws_json(wsc *w)
{
    for (int ms = 0; w->head == w->tail && !w->closed && ms < GUARD_MS;
         ms += 10)
        lws_service(w->ctx, 10);
    if (w->head == w->tail)
        return NULL;
    char *m = w->msgs[w->head++ % 4096];
    json_error_t je;
    json_t *j = json_loads(m, 0, &je);
    if (!j)
        fail_msg("not JSON from the server: %s", m);
    /* One message is one JSON value: no newline framing inside. */
    assert_null(strchr(m, '\n'));
    free(m);
    return j;
}

/* new: the next reply (skipping events). */
static json_t *ws_reply(wsc *w)
{
    for (;;) {
        json_t *j = ws_json(w);
        if (!j)
            fail_msg("the server closed the WebSocket");
        if (json_object_get(j, "ok"))
            return j;
        json_decref(j);
    }
}

static json_t *ws_rpc(wsc *w, const char *req)
{
    ws_send(w, req);
    return ws_reply(w);
}

static void assert_ok(json_t *r)
{
    if (!json_is_true(json_object_get(r, "ok")))
        fail_msg("expected ok: %s", json_dumps(r, 0));
}

static void assert_error(json_t *r, const char *code)
{
    json_t *e = json_object_get(r, "error");
    if (!json_is_false(json_object_get(r, "ok")) || !e ||
        strcmp(json_string_value(json_object_get(e, "code")), code) != 0)
        fail_msg("expected error %s: %s", code, json_dumps(r, 0));
}

static double num_at(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* The protocol's own socket: one request line, one reply line. */
static json_t *tcp_rpc(const server *s, const char *req)
{
    char host[256];
    snprintf(host, sizeof host, "%s", s->addr);
    char *colon = strrchr(host, ':');
    *colon = '\0';
    int fd = tcp_connect(host, atoi(colon + 1));
    assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    assert_true(write(fd, "\n", 1) == 1);
    char line[65536];
    read_line(fd, line, sizeof line);
    close(fd);
    json_t *j = json_loads(line, 0, NULL);
    assert_non_null(j);
    return j;
}

static void shutdown_ws(server *s, wsc *w)
{
    json_t *r = ws_rpc(w, "{\"id\": 999, \"op\": \"shutdown\"}");
    assert_ok(r);
    json_decref(r);
    ws_close(w);
    assert_int_equal(server_wait(s), 0);
}

/* ---- the page over HTTP ------------------------------------------------- */

static void test_http(void **state)
{
    server s;
    server_start(&s, "networks/accumulator.json", NULL);
    char *r = http_raw(&s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 ", 13) == 0);
    assert_non_null(strstr(r, "content-type: text/html"));
    assert_non_null(strstr(r, "content-security-policy: default-src 'self'"));
    assert_non_null(strstr(r, "<script src=\"app.js\""));
    free(r);
    r = http_raw(&s, "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 200 ", 13) == 0);
    assert_non_null(strstr(r, "content-type: text/javascript"));
    free(r);
    r = http_raw(&s, "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_null(strstr(r, "root:"));
    free(r);
    r = http_raw(&s, "GET /nothing.html HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 404 ", 13) == 0);
    free(r);
    r = http_raw(&s, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     "\r\n{}");
    assert_null(strstr(r, " 200 "));
    free(r);
    /* Garbage is not HTTP: no 200, and the server goes on. */
    r = http_raw(&s, "\x01\x02 nonsense\r\n\r\n");
    assert_null(strstr(r, " 200 "));
    free(r);
    json_t *st = tcp_rpc(&s, "{\"op\": \"status\"}");
    assert_ok(st);
    json_decref(st);
    st = tcp_rpc(&s, "{\"op\": \"shutdown\"}");
    json_decref(st);
    assert_int_equal(server_wait(&s), 0);
}

/* ---- who may open /ws --------------------------------------------------- */

static void test_origin(void **state)
{
    server s;
    server_start(&s, "networks/accumulator.json", NULL);
    char own[64];
    snprintf(own, sizeof own, "http://127.0.0.1:%d", s.port);
    const char *refused[] = {"http://evil.example", "null",
                             "http://127.0.0.1:1", "https://127.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        char *r = http_raw(&s, upgrade_request(&s, "/ws", refused[i]));
        if (strstr(r, " 403 ") == NULL)
            fail_msg("origin %s: expected 403, got %.60s", refused[i], r);
        free(r);
    }
    char *r = http_raw(&s, upgrade_request(&s, "/ws", own));
    assert_non_null(strstr(r, " 101 "));
    free(r);
    char localhost[64];
    snprintf(localhost, sizeof localhost, "http://localhost:%d", s.port);
    r = http_raw(&s, upgrade_request(&s, "/ws", localhost));
    assert_non_null(strstr(r, " 101 "));
    free(r);
    /* Only /ws upgrades. */
    r = http_raw(&s, upgrade_request(&s, "/other", own));
    assert_null(strstr(r, " 101 "));
    free(r);
    json_t *st = tcp_rpc(&s, "{\"op\": \"shutdown\"}");
    json_decref(st);
    assert_int_equal(server_wait(&s), 0);

    /* A non-loopback --http without a token is refused at start. */
    char *net = tu_path("networks/accumulator.json");
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const char *argv[] = {exe(), "serve", net, "--http", "0.0.0.0:0", NULL};
    assert_int_equal(
        posix_spawn(&pid, exe(), &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int wst;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 1);
    free(net);
}

/* ---- the protocol over /ws ---------------------------------------------- */

static void test_ws_protocol(void **state)
{
    server s;
    server_start(&s, "networks/accumulator.json",
                 (const char *[]){"--paused", NULL});
    wsc a, b;
    ws_open(&a, &s);
    ws_open(&b, &s);
    json_t *r = ws_rpc(&a, "{\"id\": 1, \"op\": \"hello\"}");
    assert_ok(r);
    assert_string_equal(json_string_value(json_object_get(r, "server")), "dmm");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);
    r = ws_rpc(&a, "{\"id\": 2, \"op\": \"status\"}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 0);
    assert_true(json_is_false(json_object_get(r, "running")));
    assert_true(num_at(r, "clients") >= 2);
    json_decref(r);

    /* Two pages subscribed see the same cycles. */
    const char *sub = "{\"id\": 3, \"op\": \"subscribe\", \"paths\": "
                      "[\"accum/sum/single\"]}";
    r = ws_rpc(&a, sub);
    assert_ok(r);
    json_decref(r);
    r = ws_rpc(&b, sub);
    assert_ok(r);
    json_decref(r);
    ws_send(&a, "{\"id\": 4, \"op\": \"step\", \"n\": 2}");
    for (int k = 1; k <= 2; k++) {
        json_t *ea = ws_json(&a), *eb = ws_json(&b);
        assert_string_equal(json_string_value(json_object_get(ea, "event")),
                            "cycle");
        assert_int_equal(num_at(ea, "step"), k);
        json_t *va =
            json_object_get(json_object_get(ea, "values"), "accum/sum/single");
        json_t *vb =
            json_object_get(json_object_get(eb, "values"), "accum/sum/single");
        assert_true(json_equal(va, vb));
        assert_true(json_number_value(json_object_get(va, "apples")) == k);
        json_decref(ea);
        json_decref(eb);
    }
    r = ws_reply(&a);
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 2);
    json_decref(r);

    /* set over /ws is seen by get over the socket protocol. */
    r = ws_rpc(&a, "{\"id\": 5, \"op\": \"set\", \"path\": "
                   "\"accum/sum/delta/identity/const/single\", \"value\": "
                   "0.25}");
    assert_ok(r);
    assert_true(num_at(r, "value") == 0.25);
    json_decref(r);
    r = tcp_rpc(&s, "{\"id\": 6, \"op\": \"get\", \"path\": "
                    "\"accum/self/single/accum/sum/delta/identity/const/"
                    "single\"}");
    assert_ok(r);
    assert_true(json_number_value(json_object_get(r, "value")) == 0.25);
    json_decref(r);
    r = ws_rpc(&b, "{\"id\": 7, \"op\": \"get\", \"path\": "
                   "\"accum/self/single/accum/sum/delta/identity/const/"
                   "single\"}");
    assert_true(json_number_value(json_object_get(r, "value")) == 0.25);
    json_decref(r);
    ws_close(&b);
    shutdown_ws(&s, &a);
}

static void test_ws_bad_frames(void **state)
{
    server s;
    server_start(&s, "networks/accumulator.json",
                 (const char *[]){"--paused", "--max-message", "1024", NULL});
    wsc w;
    ws_open(&w, &s);
    json_t *r = ws_rpc(&w, "{\"id\": 1, \"op\": \"status\"");
    assert_error(r, "malformed");
    json_decref(r);
    r = ws_rpc(&w, "{\"id\": 2, \"op\": \"jump\"}");
    assert_error(r, "unknown-op");
    json_decref(r);
    r = ws_rpc(&w, "");
    assert_error(r, "malformed");
    json_decref(r);
    /* Two requests in one message are not two requests. */
    r = ws_rpc(&w, "{\"op\": \"status\"}\n{\"op\": \"status\"}");
    assert_error(r, "malformed");
    json_decref(r);
    ws_send_frame(&w, "{\"op\": \"status\"}", 16, true);
    r = ws_reply(&w);
    assert_error(r, "malformed");
    json_decref(r);
    /* Longer than --max-message: refused, and the connection goes on. */
    char big[5000];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"id\": 3, \"op\": \"status\"", 24);
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    r = ws_rpc(&w, big);
    assert_error(r, "too-long");
    json_decref(r);
    r = ws_rpc(&w, "{\"id\": 4, \"op\": \"status\"}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 0);
    json_decref(r);
    /* Text that is not UTF-8 breaks the WebSocket rules: closed. */
    ws_send_frame(&w, "{\"op\": \"\xff\xfe\"}", 13, false);
    json_t *j = ws_json(&w);
    assert_null(j);
    assert_true(w.closed);
    ws_close(&w);
    /* and the server is as it was */
    r = tcp_rpc(&s, "{\"op\": \"status\"}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 0);
    json_decref(r);
    r = tcp_rpc(&s, "{\"op\": \"shutdown\"}");
    json_decref(r);
    assert_int_equal(server_wait(&s), 0);
}

static void test_ws_token(void **state)
{
    server s;
    server_start(&s, "networks/accumulator.json",
                 (const char *[]){"--paused", "--token", "s3cret", NULL});
    wsc w;
    ws_open(&w, &s);
    json_t *r = ws_rpc(&w, "{\"id\": 1, \"op\": \"status\"}");
    assert_error(r, "unauthorized");
    json_decref(r);
    assert_null(ws_json(&w)); /* closed */
    ws_close(&w);
    ws_open(&w, &s);
    r = ws_rpc(&w, "{\"id\": 2, \"op\": \"hello\", \"token\": \"wrong\"}");
    assert_error(r, "unauthorized");
    json_decref(r);
    ws_close(&w);
    ws_open(&w, &s);
    r = ws_rpc(&w, "{\"id\": 3, \"op\": \"hello\", \"token\": \"s3cret\"}");
    assert_ok(r);
    json_decref(r);
    r = ws_rpc(&w, "{\"id\": 4, \"op\": \"status\"}");
    assert_ok(r);
    json_decref(r);
    shutdown_ws(&s, &w);
}

/* ---- diff subscriptions ------------------------------------------------ */

/* Prune objects left empty by removals: {} is zero, and zero is absent. */
static void prune(json_t *j)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(j, tmp, k, v)
    {
        if (!json_is_object(v))
            continue;
        prune(v);
        if (json_object_size(v) == 0)
            json_object_del(j, k);
    }
}

/* Apply one patch entry ["REL", V] to *root (docs/protocol.md): V replaces
 * the subtree at REL, {} removes it, a last ":number" sets the scalar part
 * (the test's labels need no escapes). */
static void apply_patch(json_t **root, const char *rel, json_t *v)
{
    if (!*rel) {
        json_decref(*root);
        *root = json_deep_copy(v);
        return;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", rel);
    assert_null(strchr(buf, '\\'));
    json_t *node = *root;
    char *part = buf, *slash;
    while ((slash = strchr(part, '/'))) {
        *slash = '\0';
        json_t *next = json_object_get(node, part);
        if (json_is_number(next)) {
            json_t *o = json_object();
            json_object_set(o, ":number", next);
            json_object_set_new(node, part, o);
            next = o;
        } else if (!next) {
            next = json_object();
            json_object_set_new(node, part, next);
        }
        node = next;
        part = slash + 1;
    }
    if (json_is_object(v) && json_object_size(v) == 0 &&
        strcmp(part, ":number") != 0)
        json_object_del(node, part);
    else
        json_object_set_new(node, part, json_deep_copy(v));
}

/* A diff subscription: W whole at once, then patches holding only what
 * changed; patched, the page's copy equals W as `get` reads it. */
static void test_ws_diff(void **state)
{
    server s;
    server_start(&s, "networks/wave.json", (const char *[]){"--paused", NULL});
    wsc w;
    ws_open(&w, &s);
    const char *W = "accum/self/single";
    json_t *r = ws_rpc(&w, "{\"id\": 1, \"op\": \"subscribe\", \"paths\": "
                           "[\"accum/self/single\"], \"diff\": \"yes\"}");
    assert_error(r, "bad-request");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "error"), "path")),
        "/diff");
    json_decref(r);
    r = ws_rpc(&w, "{\"id\": 2, \"op\": \"subscribe\", \"paths\": "
                   "[\"accum/self/single\"], \"diff\": true}");
    assert_ok(r);
    json_int_t sub = json_integer_value(json_object_get(r, "subscription"));
    json_decref(r);
    /* First: the whole of W now (step 0). */
    json_t *e = ws_json(&w);
    assert_string_equal(json_string_value(json_object_get(e, "event")),
                        "cycle");
    assert_int_equal(num_at(e, "step"), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "subscription")),
                     sub);
    json_t *mine =
        json_deep_copy(json_object_get(json_object_get(e, "values"), W));
    json_decref(e);
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            r = ws_rpc(&w, "{\"id\": 3, \"op\": \"set\", \"path\": "
                           "\"identity/update-2/single/identity/update-2/"
                           "single\", \"value\": 0.5}");
            assert_ok(r);
            json_decref(r);
        }
        ws_send(&w, "{\"id\": 4, \"op\": \"step\", \"n\": 3}");
        for (int k = 1; k <= 3; k++) {
            e = ws_json(&w);
            assert_string_equal(json_string_value(json_object_get(e, "event")),
                                "patch");
            assert_int_equal(num_at(e, "step"), 3 * round + k);
            json_t *list = json_object_get(json_object_get(e, "patches"), W);
            assert_true(json_is_array(list));
            /* The wave moves Self's delta from one update neuron to the
             * next: two entries (and the set weight, once), never the
             * unchanged rows. */
            size_t n = json_array_size(list);
            if (n < 2 || n > 2u + (unsigned)round)
                fail_msg("step %d: %s", 3 * round + k, json_dumps(list, 0));
            bool set_seen = false;
            size_t i;
            json_t *ent;
            json_array_foreach(list, i, ent)
            {
                const char *rel = json_string_value(json_array_get(ent, 0));
                assert_non_null(rel);
                assert_null(strstr(rel, "update-3/single/identity"));
                set_seen |= !strcmp(rel, "identity/update-2/single/identity/"
                                         "update-2/single");
                apply_patch(&mine, rel, json_array_get(ent, 1));
            }
            assert_true(set_seen == (round == 1 && k == 1));
            json_decref(e);
        }
        r = ws_reply(&w);
        assert_ok(r);
        json_decref(r);
        r = ws_rpc(&w, "{\"id\": 5, \"op\": \"get\", \"path\": "
                       "\"accum/self/single\"}");
        assert_ok(r);
        prune(mine);
        json_t *got = json_object_get(r, "value");
        if (!json_equal(mine, got))
            fail_msg("patched %s, W is %s", json_dumps(mine, JSON_SORT_KEYS),
                     json_dumps(got, JSON_SORT_KEYS));
        json_decref(r);
    }
    /* A last ":number": the scalar part of a node with children. */
    const char *reqs[2] = {
        "{\"id\": 6, \"op\": \"edit\", \"delta\": {\"identity\": "
        "{\"update-3\": {\"single\": {\"identity\": {\"update-3\": "
        "{\"single\": {\"x\": 2}}}}}}}}",
        "{\"id\": 7, \"op\": \"set\", \"path\": \"identity/update-3/single/"
        "identity/update-3/single/:number\", \"value\": 3}"};
    bool scalar_seen = false;
    for (int k = 0; k < 2; k++) {
        r = ws_rpc(&w, reqs[k]);
        assert_ok(r);
        json_decref(r);
        ws_send(&w, "{\"id\": 8, \"op\": \"step\"}");
        e = ws_json(&w);
        assert_int_equal(num_at(e, "step"), 7 + k);
        json_t *list = json_object_get(json_object_get(e, "patches"), W);
        size_t i;
        json_t *ent;
        json_array_foreach(list, i, ent)
        {
            const char *rel = json_string_value(json_array_get(ent, 0));
            const char *tail = strrchr(rel, '/');
            if (tail && !strcmp(tail, "/:number")) {
                scalar_seen = true;
                assert_true(json_number_value(json_array_get(ent, 1)) == 3);
            }
            apply_patch(&mine, rel, json_array_get(ent, 1));
        }
        json_decref(e);
        r = ws_reply(&w);
        assert_ok(r);
        json_decref(r);
    }
    assert_true(scalar_seen);
    r = ws_rpc(&w, "{\"id\": 9, \"op\": \"get\", \"path\": "
                   "\"accum/self/single\"}");
    prune(mine);
    if (!json_equal(mine, json_object_get(r, "value")))
        fail_msg("patched %s, W is %s", json_dumps(mine, JSON_SORT_KEYS),
                 json_dumps(json_object_get(r, "value"), JSON_SORT_KEYS));
    json_decref(r);
    ws_close(&w);
    json_decref(mine);
    json_t *st = tcp_rpc(&s, "{\"op\": \"shutdown\"}");
    json_decref(st);
    assert_int_equal(server_wait(&s), 0);
}

/* A page that stops reading costs at most one update per subscription:
 * newer updates replace the one it has not read, so it sees fewer, never
 * older ones, and is not dropped for them (the engine never waits for it).
 * Replies still count: once more than --max-backlog bytes of them wait, it
 * is dropped, as a slow socket client is. */
static void test_ws_slow_reader(void **state)
{
    server s;
    server_start(
        &s, "networks/accumulator.json",
        (const char *[]){"--rate", "max", "--max-backlog", "16384", NULL});
    wsc w;
    ws_open(&w, &s);
    ws_send(&w, "{\"id\": 1, \"op\": \"subscribe\", \"paths\": "
                "[\"accum/self/single\", \"accum/sum/single\"], \"diff\": "
                "true}");
    w.stop_reading = true;
    int fd = lws_get_socket_fd(w.wsi);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    json_t *r = tcp_rpc(&s, "{\"op\": \"status\"}");
    double t0 = num_at(r, "step"), t = t0;
    json_decref(r);
    for (int k = 0; t < t0 + 20000; k++) {
        assert_true(k < 100000);
        lws_service(w.ctx, 1);
        r = tcp_rpc(&s, "{\"op\": \"status\"}");
        assert_int_equal(num_at(r, "dropped"), 0);
        t = num_at(r, "step");
        json_decref(r);
    }
    /* It reads again: patches in order, far fewer than the cycles, up to
     * one at least as new as the step seen before. */
    w.stop_reading = false;
    lws_rx_flow_control(w.wsi, 1);
    double last = -1;
    int events = 0;
    while (last < t) {
        json_t *j = ws_json(&w);
        assert_non_null(j);
        if (json_object_get(j, "event")) {
            double step = num_at(j, "step");
            assert_true(step > last);
            last = step;
            events++;
        }
        json_decref(j);
    }
    assert_true(events < (t - t0) / 2);
    /* Replies it does not read: dropped. */
    w.stop_reading = true;
    lws_rx_flow_control(w.wsi, 0);
    double dropped = 0;
    for (int k = 0; dropped < 1; k++) {
        assert_true(k < 100000);
        ws_send(&w, "{\"op\": \"snapshot\"}");
        if (k % 20)
            continue;
        r = tcp_rpc(&s, "{\"op\": \"status\"}");
        dropped = num_at(r, "dropped");
        json_decref(r);
    }
    r = tcp_rpc(&s, "{\"op\": \"status\"}");
    double t1 = num_at(r, "step");
    json_decref(r);
    for (;;) { /* cycles go on */
        r = tcp_rpc(&s, "{\"op\": \"status\"}");
        double now = num_at(r, "step");
        json_decref(r);
        if (now > t1)
            break;
    }
    ws_close(&w);
    r = tcp_rpc(&s, "{\"op\": \"shutdown\"}");
    json_decref(r);
    assert_int_equal(server_wait(&s), 0);
}

static int kill_left(void **state)
{
    if (live_pid) {
        kill(live_pid, SIGKILL);
        waitpid(live_pid, NULL, 0);
        live_pid = 0;
    }
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_http, kill_left),
        cmocka_unit_test_teardown(test_origin, kill_left),
        cmocka_unit_test_teardown(test_ws_protocol, kill_left),
        cmocka_unit_test_teardown(test_ws_bad_frames, kill_left),
        cmocka_unit_test_teardown(test_ws_token, kill_left),
        cmocka_unit_test_teardown(test_ws_diff, kill_left),
        cmocka_unit_test_teardown(test_ws_slow_reader, kill_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
