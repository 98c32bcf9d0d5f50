// SPDX-License-Identifier: MIT
/*
 * `dmm serve` and `dmm ctl` over real loopback sockets (TCP and Unix): the
 * built binary (env DMM_EXE) is spawned and spoken to line by line. Covers
 * every operation, each kind of bad request (state unchanged, connection
 * still usable), many clients at once, a client leaving mid-line, a slow
 * subscriber, the token, signals, log replay identity and the examples of
 * docs/protocol.md. Timeouts are failure guards only, never measurements.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

extern char **environ;

enum { GUARD_MS = 60000 }; /* generous: only to fail instead of hanging */

typedef struct server {
    pid_t pid;
    char addr[256]; /* HOST:PORT or a socket path */
    bool unix_sock;
} server;

typedef struct peer {
    int fd;
    char buf[1 << 16];
    size_t len;
} peer;

static const char *exe(void)
{
    const char *e = getenv("DMM_EXE");
    assert_non_null(e);
    return e;
}

static char tmpdir[256];

/* Servers not yet waited for: killed when a test fails half-way. */
static pid_t live_pids[16];

static void track(pid_t pid, bool on)
{
    for (size_t i = 0; i < 16; i++)
        if (on ? live_pids[i] == 0 : live_pids[i] == pid) {
            live_pids[i] = on ? pid : 0;
            return;
        }
}

static void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmpdir, name);
}

/* Spawn dmm with argv (NULL-terminated, argv[0] "dmm") and read the first
 * line of its stdout (the address). */
static void server_start(server *s, const char *const *args)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    const char *argv[32] = {exe()};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    assert_int_equal(
        posix_spawn(&s->pid, exe(), &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    track(s->pid, true);
    close(pfd[1]);
    size_t k = 0;
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        assert_true(poll(&p, 1, GUARD_MS) == 1);
        char ch;
        ssize_t r = read(pfd[0], &ch, 1);
        assert_true(r == 1);
        if (ch == '\n')
            break;
        assert_true(k + 1 < sizeof s->addr);
        s->addr[k++] = ch;
    }
    s->addr[k] = '\0';
    s->unix_sock = s->addr[0] == '/';
    close(pfd[0]);
}

/* Wait for the server to exit; returns its exit status. */
static int server_wait(server *s)
{
    int st = 0;
    for (int ms = 0; ms < GUARD_MS; ms += 10) {
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid)
            track(s->pid, false);
        if (r == s->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    track(s->pid, false);
    fail_msg("dmm serve did not exit");
    return -1;
}

static void peer_open(peer *p, const server *s)
{
    p->len = 0;
    if (s->unix_sock) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        assert_true(strlen(s->addr) < sizeof sa.sun_path);
        memcpy(sa.sun_path, s->addr, strlen(s->addr) + 1);
        p->fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_true(p->fd >= 0);
        assert_int_equal(connect(p->fd, (struct sockaddr *)&sa, sizeof sa), 0);
        return;
    }
    char host[256];
    snprintf(host, sizeof host, "%s", s->addr);
    char *colon = strrchr(host, ':');
    assert_non_null(colon);
    *colon = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    assert_int_equal(getaddrinfo(host, colon + 1, &hints, &ai), 0);
    p->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    assert_true(p->fd >= 0);
    assert_int_equal(connect(p->fd, ai->ai_addr, ai->ai_addrlen), 0);
    freeaddrinfo(ai);
}

static void peer_close(peer *p)
{
    close(p->fd);
    p->fd = -1;
}

static void peer_send(peer *p, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(p->fd, s, n);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

/* new (free()): the next line, or NULL at EOF. */
static char *peer_line(peer *p)
{
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl) {
            size_t n = (size_t)(nl - p->buf);
            char *line = malloc(n + 1);
            memcpy(line, p->buf, n);
            line[n] = '\0';
            memmove(p->buf, nl + 1, p->len - n - 1);
            p->len -= n + 1;
            return line;
        }
        if (p->len == sizeof p->buf)
            fail_msg("line longer than the test's buffer");
        struct pollfd pf = {.fd = p->fd, .events = POLLIN};
        if (poll(&pf, 1, GUARD_MS) != 1)
            fail_msg("no line from the server in %d ms", GUARD_MS);
        ssize_t r = read(p->fd, p->buf + p->len, sizeof p->buf - p->len);
        if (r <= 0)
            return NULL;
        p->len += (size_t)r;
    }
}

static json_t *peer_json(peer *p)
{
    char *line = peer_line(p);
    if (!line)
        return NULL;
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    if (!j)
        fail_msg("not JSON from the server: %s (%s)", line, je.text);
    free(line);
    return j;
}

/* The next reply (a line with "ok"), skipping events. */
static json_t *peer_reply(peer *p)
{
    for (;;) {
        json_t *j = peer_json(p);
        if (!j)
            fail_msg("the server closed the connection");
        if (json_object_get(j, "ok"))
            return j;
        json_decref(j);
    }
}

/* Send a request line and return its reply (new). */
static json_t *rpc(peer *p, const char *req)
{
    peer_send(p, req);
    peer_send(p, "\n");
    return peer_reply(p);
}

static void assert_ok(json_t *r)
{
    if (!json_is_true(json_object_get(r, "ok"))) {
        char *s = json_dumps(r, 0);
        fail_msg("expected ok: %s", s);
    }
}

/* The reply is an error with this code. */
static void assert_error(json_t *r, const char *code)
{
    json_t *e = json_object_get(r, "error");
    if (!json_is_false(json_object_get(r, "ok")) || !e ||
        strcmp(json_string_value(json_object_get(e, "code")), code) != 0) {
        char *s = json_dumps(r, 0);
        fail_msg("expected error %s: %s", code, s);
    }
    assert_true(json_string_length(json_object_get(e, "message")) > 0);
}

static double num_at(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

/* Canonical text of a state document. Without labels, its label table is
 * left out: a context's label table also holds labels that requests which
 * changed nothing interned (a refused edit's delta is read, and so its labels
 * interned, before the engine refuses it), which is not part of the network's
 * state. */
static char *canonical_state(json_t *st, bool labels)
{
    json_t *c = json_deep_copy(st);
    if (!labels)
        json_object_del(c, "labels");
    char *s =
        json_dumps(c, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(c);
    return s;
}

static char *snapshot_text(peer *p, bool labels)
{
    json_t *r = rpc(p, "{\"id\": 99, \"op\": \"snapshot\"}");
    assert_ok(r);
    char *s = canonical_state(json_object_get(r, "state"), labels);
    json_decref(r);
    return s;
}

static char *net_path(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "networks/%s", name);
    return tu_path(rel);
}

/* Run dmm with args, stdout to out_file (may be NULL); exit status. */
static int run_dmm(const char *const *args, const char *out_file)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_file)
        posix_spawn_file_actions_addopen(&fa, 1, out_file,
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const char *argv[32] = {exe()};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid;
    assert_int_equal(
        posix_spawn(&pid, exe(), &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void shutdown_server(server *s, peer *p)
{
    json_t *r = rpc(p, "{\"id\": 1000, \"op\": \"shutdown\"}");
    assert_ok(r);
    json_decref(r);
    peer_close(p);
    assert_int_equal(server_wait(s), 0);
}

/* ---- every operation ---------------------------------------------------- */

static void test_operations(void **state)
{
    char *net = net_path("accumulator.json");
    char save[300];
    tmp_path(save, sizeof save, "ops-save.json");
    server s;
    server_start(
        &s, (const char *[]){"serve", net, "--paused", "--dir", tmpdir, NULL});
    peer p;
    peer_open(&p, &s);
    json_t *r = rpc(&p, "{\"id\": 1, \"op\": \"hello\"}");
    assert_ok(r);
    assert_int_equal(num_at(r, "id"), 1);
    assert_string_equal(json_string_value(json_object_get(r, "server")), "dmm");
    json_decref(r);

    r = rpc(&p, "{\"id\": 2, \"op\": \"status\"}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 0);
    assert_true(json_is_false(json_object_get(r, "running")));
    assert_int_equal(num_at(r, "active"), 3);
    assert_int_equal(num_at(r, "weights"), 4);
    json_decref(r);

    r = rpc(&p, "{\"id\": 3, \"op\": \"step\", \"n\": 3}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 3);
    json_decref(r);

    r = rpc(&p, "{\"id\": 4, \"op\": \"get\", \"path\": "
                "\"accum/sum/single\"}");
    assert_ok(r);
    json_t *v = json_object_get(r, "value");
    assert_int_equal(num_at(v, "apples"), 3);
    assert_true(num_at(v, "pears") == 1.5);
    json_decref(r);

    /* W itself is the output accum/self/single: a row is a path into it. */
    r = rpc(&p, "{\"id\": 5, \"op\": \"get\", \"path\": "
                "\"accum/self/single/accum/sum/delta\"}");
    assert_ok(r);
    json_t *row = json_pack("{s{s{s:i}}}", "identity", "const", "single", 1);
    assert_true(json_equal(json_object_get(r, "value"), row));
    json_decref(row);
    json_decref(r);

    r = rpc(&p, "{\"id\": 6, \"op\": \"set\", \"path\": "
                "\"accum/sum/delta/identity/const/single\", \"value\": 0.5}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 4);
    assert_true(num_at(r, "value") == 0.5);
    json_decref(r);

    r = rpc(&p, "{\"id\": 7, \"op\": \"edit\", \"delta\": {\"accum\": "
                "{\"sum\": {\"delta\": {\"identity\": {\"const\": "
                "{\"single\": 0.25}}}}}}}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 4);
    json_decref(r);

    r = rpc(&p, "{\"id\": 8, \"op\": \"subscribe\", \"paths\": "
                "[\"accum/sum/single\"], \"every\": 1}");
    assert_ok(r);
    double sub = num_at(r, "subscription");
    json_decref(r);

    peer_send(&p, "{\"id\": 9, \"op\": \"step\"}\n");
    /* The cycle event comes before the step's reply. */
    json_t *ev = peer_json(&p);
    assert_string_equal(json_string_value(json_object_get(ev, "event")),
                        "cycle");
    assert_true(num_at(ev, "subscription") == sub);
    assert_int_equal(num_at(ev, "step"), 4);
    v = json_object_get(json_object_get(ev, "values"), "accum/sum/single");
    assert_true(num_at(v, "apples") == 3.75); /* 3 + 0.75 */
    json_decref(ev);
    r = peer_reply(&p);
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 4);
    json_decref(r);

    r = rpc(&p, "{\"id\": 10, \"op\": \"unsubscribe\", \"subscription\": 1}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"id\": 11, \"op\": \"unsubscribe\", \"subscription\": 1}");
    assert_error(r, "not-found");
    json_decref(r);

    r = rpc(&p, "{\"id\": 12, \"op\": \"feed\", \"neuron\": \"input/x\", "
                "\"outputs\": {\"a\": 1}}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 5);
    json_decref(r);
    r = rpc(&p, "{\"id\": 13, \"op\": \"feed\", \"neuron\": \"input/x\", "
                "\"outputs\": {\"a\": 2}}");
    assert_error(r, "conflict");
    json_decref(r);

    r = rpc(&p, "{\"id\": \"r\", \"op\": \"rate\", \"hz\": 100}");
    assert_ok(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "r");
    assert_true(num_at(r, "rate") == 100);
    json_decref(r);
    r = rpc(&p, "{\"id\": 14, \"op\": \"resume\"}");
    assert_ok(r);
    assert_true(json_is_true(json_object_get(r, "running")));
    json_decref(r);
    r = rpc(&p, "{\"id\": 15, \"op\": \"step\"}");
    assert_error(r, "state");
    json_decref(r);
    r = rpc(&p, "{\"id\": 16, \"op\": \"pause\"}");
    assert_ok(r);
    assert_true(json_is_false(json_object_get(r, "running")));
    json_decref(r);

    r = rpc(&p, "{\"id\": 17, \"op\": \"snapshot\"}");
    assert_ok(r);
    json_t *st = json_object_get(r, "state");
    assert_int_equal(num_at(st, "dmm-state"), 1);
    double t = num_at(st, "step");
    assert_true(t >= 4);
    assert_non_null(json_object_get(st, "outputs"));
    char *snap = canonical_state(st, false);
    json_decref(r);

    char req[600];
    snprintf(req, sizeof req,
             "{\"id\": 18, \"op\": \"save\", \"file\": "
             "\"%s\"}",
             "ops-save.json"); /* inside --dir */
    r = rpc(&p, req);
    assert_ok(r);
    assert_true(num_at(r, "step") == t);
    json_decref(r);
    json_t *saved = json_load_file(save, 0, NULL);
    assert_non_null(saved);
    char *saved_text = canonical_state(saved, false);
    assert_string_equal(saved_text, snap);
    json_decref(saved);
    free(saved_text);
    free(snap);

    /* load: a new network replaces the running one. */
    r = rpc(&p, "{\"id\": 19, \"op\": \"load\", \"network\": {\"dmm\": 1, "
                "\"matrix\": {\"accum\": {\"self\": {\"accum\": {\"accum\": "
                "{\"self\": {\"single\": 1}}}}}}}}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 0);
    json_decref(r);
    r = rpc(&p, "{\"id\": 20, \"op\": \"status\"}");
    assert_int_equal(num_at(r, "active"), 1);
    json_decref(r);
    /* A bad network is refused and the running one stays. */
    r = rpc(&p, "{\"id\": 21, \"op\": \"load\", \"network\": {\"dmm\": 2}}");
    assert_error(r, "invalid-network");
    json_decref(r);
    r = rpc(&p, "{\"id\": 22, \"op\": \"status\"}");
    assert_int_equal(num_at(r, "active"), 1);
    json_decref(r);

    shutdown_server(&s, &p);
    free(net);
}

/* ---- bad requests ------------------------------------------------------- */

static void test_bad_requests(void **state)
{
    char *net = net_path("accumulator.json");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", "--max-message",
                                      "256", NULL});
    peer p;
    peer_open(&p, &s);
    char *before = snapshot_text(&p, false);
    static const struct {
        const char *line;
        const char *code;
        const char *path;
    } cases[] = {
        {"{\"id\": 1, \"op\": \"status\"", "malformed", NULL},
        {"[1, 2]", "malformed", ""},
        {"{\"id\": 1, \"op\": \"status\", \"op\": \"pause\"}", "malformed",
         NULL},
        {"{\"id\": 2, \"op\": \"fly\"}", "unknown-op", "/op"},
        {"{\"id\": 3, \"op\": 7}", "unknown-op", "/op"},
        {"{\"id\": 4}", "bad-request", "/op"},
        {"{\"id\": 5, \"op\": \"status\", \"verbose\": true}", "bad-request",
         "/verbose"},
        {"{\"id\": [1], \"op\": \"status\"}", "bad-request", "/id"},
        {"{\"id\": 6, \"op\": \"step\", \"n\": 0}", "bad-request", "/n"},
        {"{\"id\": 7, \"op\": \"step\", \"n\": 2.5}", "bad-request", "/n"},
        {"{\"id\": 8, \"op\": \"rate\", \"hz\": -1}", "bad-request", "/hz"},
        {"{\"id\": 9, \"op\": \"get\", \"path\": \"accum//single\"}",
         "bad-path", "/path"},
        {"{\"id\": 10, \"op\": \"set\", \"path\": \"accum/sum/delta\", "
         "\"value\": 1}",
         "bad-path", "/path"},
        {"{\"id\": 11, \"op\": \"set\", \"path\": "
         "\"accum/sum/delta/identity/const/sin\\\\gle\", \"value\": 1}",
         "bad-path", "/path"},
        {"{\"id\": 12, \"op\": \"set\", \"path\": "
         "\"accum/sum/delta/identity/const/single\", \"value\": \"big\"}",
         "bad-value", "/value"},
        {"{\"id\": 13, \"op\": \"edit\", \"delta\": {\"accum\": {\"sum\": "
         "\"x\"}}}",
         "bad-value", "/delta/accum/sum"},
        {"{\"id\": 14, \"op\": \"edit\", \"delta\": {\"no-such-type\": "
         "{\"a\": {\"x\": {\"accum\": {\"sum\": {\"single\": 1}}}}}}}",
         "invalid-edit", NULL},
        {"{\"id\": 15, \"op\": \"edit\", \"delta\": {\"accum\": {\"sum\": "
         "{\"no-such-input\": {\"identity\": {\"const\": {\"single\": "
         "1}}}}}}}",
         "invalid-edit", NULL},
        {"{\"id\": 16, \"op\": \"feed\", \"neuron\": \"accum/sum\", "
         "\"outputs\": {}}",
         "bad-request", "/neuron"},
        {"{\"id\": 17, \"op\": \"save\", \"file\": "
         "\"nonexistent-dir/x/y.json\"}",
         "io", "/file"},
        {"{\"id\": 18, \"op\": \"subscribe\", \"paths\": []}", "bad-request",
         "/paths"},
        {"{\"id\": 19, \"op\": \"set\", \"path\": "
         "\"no-such-type/a/b/identity/const/single\", \"value\": 1}",
         "invalid-edit", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *r = rpc(&p, cases[i].line);
        assert_error(r, cases[i].code);
        json_t *e = json_object_get(r, "error");
        if (cases[i].path)
            assert_string_equal(json_string_value(json_object_get(e, "path")),
                                cases[i].path);
        json_t *id = json_object_get(r, "id");
        if (i >= 3 && i != 7)
            assert_true(json_is_integer(id));
        json_decref(r);
        char *after = snapshot_text(&p, false);
        assert_string_equal(after, before); /* nothing changed */
        free(after);
    }

    /* An oversized line is refused, the rest of it is skipped, and the
     * connection goes on. */
    char big[5000];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"id\": 50, \"op\": \"status\"", 25);
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    json_t *r = rpc(&p, big);
    assert_error(r, "too-long");
    json_decref(r);
    r = rpc(&p, "{\"id\": 51, \"op\": \"status\"}");
    assert_ok(r);
    assert_int_equal(num_at(r, "id"), 51);
    assert_int_equal(num_at(r, "step"), 0);
    json_decref(r);
    char *after = snapshot_text(&p, false);
    assert_string_equal(after, before);
    free(after);
    free(before);
    shutdown_server(&s, &p);
    free(net);
}

/* ---- many clients, leaving mid-line, slow subscribers ------------------- */

enum { NCLIENTS = 60 };

static void test_many_clients(void **state)
{
    char *net = net_path("accumulator.json");
    char sock[300];
    tmp_path(sock, sizeof sock, "many.sock");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--socket", sock, "--rate",
                                      "max", NULL});
    struct stat sb;
    assert_int_equal(stat(sock, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    static peer ps[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        peer_open(&ps[i], &s);
    /* Every client subscribes, edits (a zero-sum pair keeps W valid),
     * sets a weight of its own and reads it back. */
    char req[512];
    for (int i = 0; i < NCLIENTS; i++) {
        snprintf(req, sizeof req,
                 "{\"id\": %d, \"op\": \"subscribe\", \"paths\": "
                 "[\"accum/sum/single\"]}\n"
                 "{\"id\": %d, \"op\": \"edit\", \"delta\": {\"accum\": "
                 "{\"sum\": {\"delta\": {\"identity\": {\"const\": "
                 "{\"single\": 0.001}}}}}}}\n"
                 "{\"id\": %d, \"op\": \"set\", \"path\": "
                 "\"accum/c%d/delta/identity/const/single\", \"value\": %d}\n"
                 "{\"id\": %d, \"op\": \"get\", \"path\": "
                 "\"accum/self/single/accum/c%d/delta/identity/const/"
                 "single\"}\n",
                 4 * i, 4 * i + 1, 4 * i + 2, i, i + 1, 4 * i + 3, i);
        peer_send(&ps[i], req);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        int got = 0, events = 0;
        while (got < 4 || events < 1) {
            json_t *j = peer_json(&ps[i]);
            assert_non_null(j);
            if (json_object_get(j, "event")) {
                events++;
            } else {
                assert_ok(j);
                assert_int_equal(num_at(j, "id"), 4 * i + got);
                if (got == 3)
                    assert_int_equal(num_at(j, "value"), i + 1);
                got++;
            }
            json_decref(j);
        }
    }
    json_t *r = rpc(&ps[0], "{\"id\": 1, \"op\": \"status\"}");
    assert_int_equal(num_at(r, "clients"), NCLIENTS);
    assert_true(json_is_true(json_object_get(r, "running")));
    double t0 = num_at(r, "step");
    json_decref(r);
    /* The network keeps running while all of them are served. */
    for (;;) {
        r = rpc(&ps[NCLIENTS - 1], "{\"id\": 2, \"op\": \"status\"}");
        double t = num_at(r, "step");
        json_decref(r);
        if (t > t0)
            break;
    }
    for (int i = 1; i < NCLIENTS; i++)
        peer_close(&ps[i]);
    shutdown_server(&s, &ps[0]);
    assert_int_equal(stat(sock, &sb), -1); /* removed on exit */
    free(net);
}

static void test_disconnect_mid_line(void **state)
{
    char *net = net_path("accumulator.json");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", NULL});
    peer p;
    peer_open(&p, &s);
    const char *get = "{\"id\": 3, \"op\": \"get\", \"path\": "
                      "\"accum/self/single/accum/sum\"}";
    json_t *before = rpc(&p, get);
    assert_ok(before);
    for (int k = 0; k < 5; k++) {
        peer q;
        peer_open(&q, &s);
        peer_send(&q, "{\"id\": 1, \"op\": \"set\", \"path\": \"accum/su");
        peer_close(&q);
    }
    peer q;
    peer_open(&q, &s);
    /* A request, then half of one, then gone: the whole one is answered
     * (the reply may or may not reach a closed socket), nothing else. */
    peer_send(&q, "{\"id\": 1, \"op\": \"status\"}\n{\"id\": 2, \"op\": "
                  "\"edit\", \"delta\": {\"accum\": ");
    peer_close(&q);
    json_t *r = rpc(&p, get);
    assert_ok(r);
    assert_true(json_equal(json_object_get(r, "value"),
                           json_object_get(before, "value")));
    json_decref(before);
    json_decref(r);
    shutdown_server(&s, &p);
    free(net);
}

/* A subscriber that stops reading costs at most one update per
 * subscription: newer updates replace the one it has not read (it sees
 * fewer, never older ones) and it is not dropped for them; the loop goes
 * on. Replies still count: once more than --max-backlog bytes of them wait,
 * it is dropped. */
static void test_slow_subscriber(void **state)
{
    char *net = net_path("accumulator.json");
    char sock[300];
    tmp_path(sock, sizeof sock, "slow.sock");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--socket", sock, "--rate",
                                      "max", "--max-backlog", "16384", NULL});
    peer slow, p;
    peer_open(&slow, &s);
    int small = 4096;
    setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    peer_send(&slow, "{\"id\": 1, \"op\": \"subscribe\", \"paths\": "
                     "[\"accum/self/single\", \"accum/sum/single\"]}\n");
    peer_open(&p, &s);
    json_t *r = rpc(&p, "{\"id\": 2, \"op\": \"status\"}");
    double t0 = num_at(r, "step");
    json_decref(r);
    /* Many more cycles than its buffers hold updates of, unread. */
    double t = t0;
    for (int k = 0; t < t0 + 20000; k++) {
        assert_true(k < 100000);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        r = rpc(&p, "{\"id\": 3, \"op\": \"status\"}");
        double now = num_at(r, "step");
        assert_true(now >= t);
        t = now;
        assert_int_equal(num_at(r, "dropped"), 0);
        assert_int_equal(num_at(r, "clients"), 2);
        json_decref(r);
    }
    /* It reads now: updates in order, far fewer than the cycles, and one
     * at least as new as the step seen before reading. */
    double last = -1;
    int events = 0;
    while (last < t) {
        json_t *j = peer_json(&slow);
        assert_non_null(j);
        if (json_object_get(j, "event")) {
            assert_string_equal(json_string_value(json_object_get(j, "event")),
                                "cycle");
            double step = num_at(j, "step");
            assert_true(step > last);
            last = step;
            events++;
        }
        json_decref(j);
    }
    assert_true(events < (t - t0) / 2);
    /* Now unread replies: dropped past --max-backlog. */
    double dropped = 0;
    for (int k = 0; dropped < 1; k++) {
        assert_true(k < 100000);
        peer_send(&slow, "{\"op\": \"snapshot\"}\n");
        if (k % 20)
            continue;
        r = rpc(&p, "{\"id\": 4, \"op\": \"status\"}");
        dropped = num_at(r, "dropped");
        json_decref(r);
    }
    r = rpc(&p, "{\"id\": 5, \"op\": \"status\"}");
    assert_int_equal(num_at(r, "clients"), 1); /* the slow one is gone */
    double t1 = num_at(r, "step");
    json_decref(r);
    for (;;) { /* and cycles still run */
        r = rpc(&p, "{\"id\": 6, \"op\": \"status\"}");
        double now = num_at(r, "step");
        json_decref(r);
        if (now > t1)
            break;
    }
    /* What the slow one gets last: the notice, then EOF. */
    char *line, *prev = NULL;
    while ((line = peer_line(&slow)) != NULL) {
        free(prev);
        prev = line;
    }
    assert_non_null(prev);
    assert_non_null(strstr(prev, "\"event\": \"dropped\""));
    free(prev);
    peer_close(&slow);
    shutdown_server(&s, &p);
    free(net);
}

/* ---- token, signals, socket paths --------------------------------------- */

static void test_token(void **state)
{
    char *net = net_path("accumulator.json");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", "--token",
                                      "s3cret", NULL});
    peer p;
    peer_open(&p, &s);
    json_t *r = rpc(&p, "{\"id\": 1, \"op\": \"status\"}");
    assert_error(r, "unauthorized");
    json_decref(r);
    assert_null(peer_line(&p)); /* closed */
    peer_close(&p);

    peer_open(&p, &s);
    r = rpc(&p, "{\"id\": 1, \"op\": \"hello\", \"token\": \"s3cre\"}");
    assert_error(r, "unauthorized");
    json_decref(r);
    assert_null(peer_line(&p));
    peer_close(&p);

    peer_open(&p, &s);
    r = rpc(&p, "{\"op\": \"hello\"}");
    assert_error(r, "unauthorized");
    json_decref(r);
    peer_close(&p);

    peer_open(&p, &s);
    r = rpc(&p, "{\"id\": 1, \"op\": \"hello\", \"token\": \"s3cret\"}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"id\": 2, \"op\": \"status\"}");
    assert_ok(r);
    json_decref(r);
    shutdown_server(&s, &p);
    free(net);
}

static void test_sigterm_saves(void **state)
{
    char *net = net_path("accumulator.json");
    char out[300];
    tmp_path(out, sizeof out, "on-exit.json");
    unlink(out);
    server s;
    server_start(&s, (const char *[]){"serve", net, "--rate", "max",
                                      "--save-on-exit", out, NULL});
    peer p;
    peer_open(&p, &s);
    json_t *r;
    do { /* some cycles ran */
        r = rpc(&p, "{\"id\": 1, \"op\": \"status\"}");
        double t = num_at(r, "step");
        json_decref(r);
        if (t >= 5)
            break;
    } while (1);
    kill(s.pid, SIGTERM);
    assert_null(peer_line(&p)); /* the client is closed cleanly */
    peer_close(&p);
    assert_int_equal(server_wait(&s), 0);
    json_t *st = json_load_file(out, 0, NULL);
    assert_non_null(st);
    assert_true(num_at(st, "step") >= 5);
    json_decref(st);
    /* The state file resumes. */
    assert_int_equal(
        run_dmm((const char *[]){"run", "--resume", out, "--steps", "1", NULL},
                "/dev/null"),
        0);

    /* SIGINT without --save-on-exit: a clean exit too. */
    server_start(&s, (const char *[]){"serve", net, NULL});
    kill(s.pid, SIGINT);
    assert_int_equal(server_wait(&s), 0);
    free(net);
}

static void test_socket_path_limits(void **state)
{
    char *net = net_path("accumulator.json");
    char longp[400];
    memset(longp, 'a', sizeof longp);
    memcpy(longp, "/tmp/", 5);
    longp[sizeof longp - 1] = '\0';
    char err[300];
    tmp_path(err, sizeof err, "long.out");
    assert_int_equal(
        run_dmm((const char *[]){"serve", net, "--socket", longp, NULL}, err),
        1);
    assert_int_equal(
        run_dmm((const char *[]){"serve", net, "--listen", "localhost", NULL},
                err),
        1);
    assert_int_equal(
        run_dmm((const char *[]){"serve", net, "--rate", "fast", NULL}, err),
        2);
    free(net);
}

/* ---- reads do not intern ------------------------------------------------ */

static size_t label_count(peer *p)
{
    json_t *r = rpc(p, "{\"op\": \"status\"}");
    assert_ok(r);
    size_t n = (size_t)num_at(r, "labels");
    json_decref(r);
    r = rpc(p, "{\"op\": \"snapshot\"}");
    assert_ok(r);
    json_t *labels = json_object_get(json_object_get(r, "state"), "labels");
    assert_int_equal(json_array_size(labels), n);
    json_decref(r);
    return n;
}

/* get and subscribe of made-up paths leave the label table (and so the
 * state's "labels") as it was; a subscription to a path that does not exist
 * yet sees the value once an edit creates it. */
static void test_reads_do_not_intern(void **state)
{
    char *net = net_path("accumulator.json");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", NULL});
    peer p, q;
    peer_open(&p, &s);
    peer_open(&q, &s);
    size_t n0 = label_count(&p);
    for (int k = 0; k < 300; k++) {
        char req[256];
        snprintf(req, sizeof req,
                 k % 2 ? "{\"op\": \"get\", \"path\": "
                         "\"accum/sum/single/made-up-%d\"}"
                       : "{\"op\": \"subscribe\", \"paths\": "
                         "[\"fresh-%d/x\", \"accum/sum/single\"]}",
                 k);
        json_t *r = rpc(&q, req);
        assert_ok(r);
        if (k % 2)
            assert_int_equal(json_object_size(json_object_get(r, "value")), 0);
        json_decref(r);
    }
    assert_int_equal(label_count(&p), n0);

    /* A row of W (the output accum/self/single) that no label names yet. */
    const char *row = "accum/self/single/accum/sum/delta/identity/kiwi/single";
    char req[512];
    snprintf(req, sizeof req,
             "{\"op\": \"subscribe\", \"paths\": [\"%s\"], \"changes\": "
             "true}",
             row);
    json_t *r = rpc(&p, req);
    assert_ok(r);
    double sub = num_at(r, "subscription");
    json_decref(r);
    r = rpc(&p, "{\"op\": \"step\", \"n\": 2}");
    assert_ok(r);
    json_decref(r);
    /* The first cycle sent zero (a change from nothing sent), the second
     * nothing (no change). */
    r = rpc(&p, "{\"op\": \"set\", \"path\": "
                "\"accum/sum/delta/identity/kiwi/single\", \"value\": 0.25}");
    assert_ok(r);
    json_decref(r);
    /* set interns the one new label. */
    assert_int_equal(label_count(&p), n0 + 1);
    peer_send(&p, "{\"op\": \"step\", \"n\": 2}\n");
    double seen = -1;
    int events = 0;
    for (;;) {
        json_t *j = peer_json(&p);
        assert_non_null(j);
        if (json_object_get(j, "ok")) {
            assert_ok(j);
            json_decref(j);
            break;
        }
        if (json_object_get(j, "subscription") &&
            num_at(j, "subscription") == sub) {
            json_t *v = json_object_get(json_object_get(j, "values"), row);
            assert_non_null(v);
            seen = json_is_number(v) ? json_number_value(v) : -1;
            events++;
        }
        json_decref(j);
    }
    assert_int_equal(events, 1);
    assert_true(seen == 0.25);
    snprintf(req, sizeof req, "{\"op\": \"get\", \"path\": \"%s\"}", row);
    r = rpc(&p, req);
    assert_ok(r);
    assert_true(num_at(r, "value") == 0.25);
    json_decref(r);
    assert_int_equal(label_count(&p), n0 + 1);
    peer_close(&q);
    shutdown_server(&s, &p);
    free(net);
}

/* ---- log replay --------------------------------------------------------- */

/* Replay LOG with dmm run for the snapshot's step count and compare. */
static void assert_replays(const char *net, const char *log, const char *snap)
{
    json_t *st = json_loads(snap, 0, NULL);
    char steps[32], out[300];
    snprintf(steps, sizeof steps, "%.0f", num_at(st, "step"));
    json_decref(st);
    tmp_path(out, sizeof out, "replayed.json");
    assert_int_equal(
        run_dmm((const char *[]){"run", net, "--script", log, "--steps", steps,
                                 "--save", out, NULL},
                "/dev/null"),
        0);
    json_t *rs = json_load_file(out, 0, NULL);
    assert_non_null(rs);
    /* The whole state, label table too: reads do not intern, and every
     * request of these sessions that interned a label was applied and
     * logged (or, as a refused feed, only used labels an applied one used
     * first), so the replay interns the same labels in the same order. */
    char *replayed = canonical_state(rs, true);
    json_decref(rs);
    assert_string_equal(replayed, snap);
    free(replayed);
}

static void test_log_replay(void **state)
{
    char *net = net_path("reader-accum.json");
    char log[300];
    tmp_path(log, sizeof log, "session.jsonl");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--rate", "max", "--log",
                                      log, NULL});
    peer p;
    peer_open(&p, &s);
    /* Edits and feeds while it runs, at whatever cycles they land on. */
    for (int k = 0; k < 40; k++) {
        char req[512];
        if (k % 3 == 0)
            snprintf(req, sizeof req,
                     "{\"id\": %d, \"op\": \"set\", \"path\": "
                     "\"accum/the-reader-accum/delta/input/the-reader/"
                     "signal\", \"value\": %.17g}",
                     k, 0.1 * k + 1.0 / 3);
        else if (k % 3 == 1)
            snprintf(req, sizeof req,
                     "{\"id\": %d, \"op\": \"feed\", \"neuron\": "
                     "\"input/the-reader\", \"outputs\": {\"signal\": "
                     "{\"n\": %d, \"x\": 0.7}}}",
                     k, k);
        else
            snprintf(req, sizeof req,
                     "{\"id\": %d, \"op\": \"edit\", \"delta\": {\"accum\": "
                     "{\"the-reader-accum\": {\"accum\": {\"accum\": "
                     "{\"the-reader-accum\": {\"single\": -0.01}}}}}}}",
                     k);
        json_t *r = rpc(&p, req);
        /* A feed may meet the previous one still queued: that is refused
         * and not logged, and the session goes on. */
        if (!json_is_true(json_object_get(r, "ok")))
            assert_error(r, "conflict");
        json_decref(r);
        /* Reads of paths that name nothing: not logged, and they must not
         * show in the state (its label table is compared too). */
        snprintf(req, sizeof req,
                 k % 2 ? "{\"op\": \"get\", \"path\": "
                         "\"accum/the-reader-accum/single/made-up-%d\"}"
                       : "{\"op\": \"subscribe\", \"paths\": "
                         "[\"input/the-reader/signal/none-%d\"], \"every\": "
                         "1000}",
                 k);
        r = rpc(&p, req);
        assert_ok(r);
        json_decref(r);
    }
    json_t *r = rpc(&p, "{\"id\": 100, \"op\": \"pause\"}");
    json_decref(r);
    /* The last edit lands before the next cycle: run it. */
    r = rpc(&p, "{\"id\": 101, \"op\": \"step\", \"n\": 2}");
    assert_ok(r);
    json_decref(r);
    char *snap = snapshot_text(&p, true);
    shutdown_server(&s, &p);
    assert_replays(net, log, snap);
    free(snap);

    /* A paused session driven by step: the same. */
    server_start(
        &s, (const char *[]){"serve", net, "--paused", "--log", log, NULL});
    peer_open(&p, &s);
    static const char *const reqs[] = {
        "{\"op\": \"feed\", \"neuron\": \"input/the-reader\", \"outputs\": "
        "{\"signal\": {\"a\": 1}}}",
        "{\"op\": \"step\", \"n\": 2}",
        "{\"op\": \"set\", \"path\": "
        "\"accum/the-reader-accum/delta/input/the-reader/signal\", "
        "\"value\": 0.1}",
        "{\"op\": \"feed\", \"neuron\": \"input/the-reader\", \"outputs\": "
        "{\"signal\": {\"a\": 0.3}}}",
        "{\"op\": \"step\", \"n\": 3}",
        "{\"op\": \"set\", \"path\": "
        "\"accum/the-reader-accum/delta/input/the-reader/signal\", "
        "\"value\": 0.7}",
        "{\"op\": \"step\"}",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        r = rpc(&p, reqs[i]);
        assert_ok(r);
        json_decref(r);
    }
    snap = snapshot_text(&p, true);
    shutdown_server(&s, &p);
    assert_replays(net, log, snap);
    free(snap);
    /* load is refused while logging: a script cannot replace a network. */
    server_start(
        &s, (const char *[]){"serve", net, "--paused", "--log", log, NULL});
    peer_open(&p, &s);
    r = rpc(&p, "{\"op\": \"load\", \"network\": {\"dmm\": 1, \"matrix\": "
                "{\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "
                "{\"single\": 1}}}}}}}}");
    assert_error(r, "state");
    json_decref(r);
    shutdown_server(&s, &p);
    free(net);
}

/* ---- ":number" in paths (issue 18) --------------------------------------- */

static void write_tmp(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* get and subscribe of P/:number read the scalar part at P alone; set of
 * P/:number writes the scalar part of a node that has children; ":number"
 * anywhere else, or ending a feed's neuron, is refused and interns nothing. */
static double weight_at(peer *p, const char *path);

/* One string names a weight for get and set: Self's output path and the
 * six labels. The six alone still set it; a nine-part path that does not
 * start at Self's output is refused and changes nothing. */
static void test_set_by_get_path(void **state)
{
    char *net = net_path("accumulator.json");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", NULL});
    peer p;
    peer_open(&p, &s);
    static const char w[] =
        "accum/self/single/accum/sum/delta/identity/const/single";
    json_t *r = rpc(&p, "{\"op\": \"set\", \"path\": "
                        "\"accum/self/single/accum/sum/delta/identity/const/"
                        "single\", \"value\": 0.25}");
    assert_ok(r);
    json_decref(r);
    assert_true(weight_at(&p, w) == 0.25);
    r = rpc(&p, "{\"op\": \"set\", \"path\": "
                "\"accum/sum/delta/identity/const/single\", \"value\": 2}");
    assert_ok(r);
    json_decref(r);
    assert_true(weight_at(&p, w) == 2);
    char *before = snapshot_text(&p, false);
    r = rpc(&p, "{\"op\": \"set\", \"path\": "
                "\"accum/sum/single/accum/sum/delta/identity/const/single\", "
                "\"value\": 3}");
    assert_error(r, "bad-path");
    json_decref(r);
    char *after = snapshot_text(&p, false);
    assert_string_equal(before, after);
    free(before);
    free(after);
    shutdown_server(&s, &p);
    free(net);
}

static void test_scalar_paths(void **state)
{
    char net[300];
    tmp_path(net, sizeof net, "scalar.json");
    write_tmp(net,
              "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
              "{\"accum\": {\"self\": {\"single\": 1}}}}}},\n"
              " \"outputs\": {\"identity\": {\"c\": {\"v\": {\":number\": 2, "
              "\"a\": 3}}}},\n"
              " \"links\": [[\"identity/c/v\", \"identity/c/v/:number\", 1],\n"
              "  [\"output/o/x\", \"identity/c/v\", 0.5],\n"
              "  [\"output/o/x\", \"identity/c/v/a\", 0.25],\n"
              "  [\"input/in/dummy\", \"identity/c/v/:number\", 1]]}\n");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", NULL});
    peer p;
    peer_open(&p, &s);
    size_t n0 = label_count(&p);
    json_t *r =
        rpc(&p, "{\"op\": \"get\", \"path\": \"identity/c/v/:number\"}");
    assert_ok(r);
    assert_true(json_number_value(json_object_get(r, "value")) == 2);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"get\", \"path\": \"identity/c/v\"}");
    assert_ok(r);
    json_t *want = json_pack("{s:i,s:i}", ":number", 2, "a", 3);
    assert_true(json_equal(json_object_get(r, "value"), want));
    json_decref(want);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"get\", \"path\": \"identity/c/v/a/:number\"}");
    assert_ok(r);
    assert_true(json_number_value(json_object_get(r, "value")) == 3);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"get\", \"path\": \"identity/c/nothing/:number\"}");
    assert_ok(r);
    assert_int_equal(json_object_size(json_object_get(r, "value")), 0);
    json_decref(r);
    /* A subscription sends the scalar part every cycle. */
    r = rpc(&p, "{\"op\": \"subscribe\", \"paths\": "
                "[\"output/o/x/:number\"]}");
    assert_ok(r);
    json_decref(r);
    peer_send(&p, "{\"op\": \"step\", \"n\": 2}\n");
    int events = 0;
    for (;;) {
        json_t *j = peer_json(&p);
        assert_non_null(j);
        if (json_object_get(j, "ok")) {
            assert_ok(j);
            json_decref(j);
            break;
        }
        /* output/o/x is 0.5·{":number": 2, "a": 3} + 0.25·3 (the row's
         * leaf at a selects the number 3, added at the root). */
        json_t *v =
            json_object_get(json_object_get(j, "values"), "output/o/x/:number");
        assert_true(json_is_number(v));
        assert_true(json_number_value(v) == 1.75);
        events++;
        json_decref(j);
    }
    assert_int_equal(events, 2);
    r = rpc(&p, "{\"op\": \"get\", \"path\": \"output/o/x\"}");
    want = json_pack("{s:f,s:f}", ":number", 1.75, "a", 1.5);
    assert_true(json_equal(json_object_get(r, "value"), want));
    json_decref(want);
    json_decref(r);

    /* The node output/o/x/identity/c/v has a weight and one below it. */
    const char *row = "output/o/x/identity/c/v";
    char req[512];
    snprintf(req, sizeof req,
             "{\"op\": \"set\", \"path\": \"%s\", \"value\": 1}", row);
    r = rpc(&p, req);
    assert_error(r, "bad-path");
    json_decref(r);
    snprintf(req, sizeof req,
             "{\"op\": \"set\", \"path\": \"%s/:number\", \"value\": 1}", row);
    r = rpc(&p, req);
    assert_ok(r);
    assert_true(num_at(r, "value") == 1);
    json_decref(r);
    snprintf(req, sizeof req,
             "{\"op\": \"get\", \"path\": \"accum/self/single/%s\"}", row);
    r = rpc(&p, req);
    want = json_pack("{s:i,s:f}", ":number", 1, "a", 0.25);
    assert_true(json_equal(json_object_get(r, "value"), want));
    json_decref(want);
    json_decref(r);

    static const char *const refused[][2] = {
        {"{\"op\": \"get\", \"path\": \"identity/:number/c\"}", "bad-path"},
        {"{\"op\": \"get\", \"path\": \":number\"}", "bad-path"},
        {"{\"op\": \"subscribe\", \"paths\": [\"identity/c/v/:number/a\"]}",
         "bad-path"},
        {"{\"op\": \"set\", \"path\": \"output/o/x/identity/c/v/a/:number\", "
         "\"value\": 1}",
         "bad-path"},
        {"{\"op\": \"set\", \"path\": \"output/o/x/identity/c/:number\", "
         "\"value\": 1}",
         "bad-path"},
        {"{\"op\": \"feed\", \"neuron\": \"input/in/:number\", \"outputs\": "
         "{}}",
         "bad-request"},
        {"{\"op\": \"feed\", \"neuron\": \"input/fresh/:number\", "
         "\"outputs\": {}}",
         "bad-request"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        r = rpc(&p, refused[i][0]);
        assert_error(r, refused[i][1]);
        json_decref(r);
    }
    assert_int_equal(label_count(&p), n0);
    shutdown_server(&s, &p);
}

/* One random request of a live session on a tu_random_links_net network:
 * set and get with and without ":number", edits whose weights sit at scalar
 * parts, feeds (one per cycle: a second is refused). Every request that
 * interns a new label is applied and logged, so a replay interns the same
 * labels in the same order. */
static void random_request(peer *p, uint64_t *r, bool *fed)
{
    static const char *const to[] = {"identity/n0/x",  "identity/n1/y",
                                     "output/o0/x",    "output/o1/x",
                                     "max-norm/m0/in", "tanh/t0/x"};
    static const char *const from[] = {"identity/n0/x", "identity/n1/x",
                                       "identity/n2/y", "tanh/t1/x",
                                       "output/o0/x",   "input/in/signal"};
    char req[1024];
    unsigned a = (unsigned)(tu_rand(r) % 6), b = (unsigned)(tu_rand(r) % 6);
    const char *sc = tu_rand(r) % 2 ? "/:number" : "";
    double w = (double)(1 + tu_rand(r) % 9) / 7;
    switch (tu_rand(r) % 5) {
    case 0:
        snprintf(req, sizeof req,
                 "{\"op\": \"set\", \"path\": \"%s/%s%s\", \"value\": %.17g}",
                 to[a], from[b], sc, w);
        break;
    case 1:
        snprintf(req, sizeof req,
                 "{\"op\": \"edit\", \"delta\": {\"output\": {\"o%u\": {\"x\": "
                 "{\"max-norm\": {\"m%u\": {\":number\": %.17g}}, "
                 "\"identity\": {\"n%u\": {\"x\": {\":number\": %.17g, "
                 "\"a\": %.17g}}}}}}}}",
                 a % 2, b % 2, w, a % 3, -w / 3, w / 5);
        break;
    case 2:
        if (*fed)
            return;
        *fed = true;
        snprintf(req, sizeof req,
                 "{\"op\": \"feed\", \"neuron\": \"input/in\", \"outputs\": "
                 "{\"signal\": {\":number\": %.17g, \"x\": {\"a\": %.17g}}}}",
                 w, -w / 3);
        break;
    case 3:
        snprintf(req, sizeof req, "{\"op\": \"get\", \"path\": \"%s%s\"}",
                 from[b], sc);
        break;
    default:
        snprintf(req, sizeof req,
                 "{\"op\": \"get\", \"path\": \"accum/self/single/%s/%s%s\"}",
                 to[a], from[b], sc);
        break;
    }
    json_t *j = rpc(p, req);
    /* Only a set on a node with children and without ":number" is refused
     * (its labels exist: the node is in W). */
    if (!json_is_true(json_object_get(j, "ok")))
        assert_error(j, "bad-path");
    json_decref(j);
}

/* Random requests and cycles until `cycles` more cycles have run; the last
 * request is always a step, so no edit waits for the next cycle. */
static void random_session(peer *p, uint64_t *r, int cycles)
{
    while (cycles > 0) {
        bool fed = false;
        for (int i = (int)(tu_rand(r) % 5); i > 0; i--)
            random_request(p, r, &fed);
        int k = 1 + (int)(tu_rand(r) % (uint64_t)cycles);
        char req[64];
        snprintf(req, sizeof req, "{\"op\": \"step\", \"n\": %d}", k);
        json_t *j = rpc(p, req);
        assert_ok(j);
        json_decref(j);
        cycles -= k;
    }
}

/* Random networks written with links, some reading scalar parts, run live
 * with random requests and --log: N cycles, save, M cycles, snapshot. The
 * log replayed from the network for N + M cycles, and from the save for M
 * cycles, gives that snapshot byte for byte, label table included. */
static void test_random_links_replay(void **state)
{
    char net[300], log[300], save[300], out[300], sock[300];
    tmp_path(sock, sizeof sock, "random.sock");
    tmp_path(net, sizeof net, "random.json");
    tmp_path(log, sizeof log, "random.jsonl");
    tmp_path(save, sizeof save, "random-save.json");
    tmp_path(out, sizeof out, "random-resumed.json");
    for (uint64_t seed = 1; seed <= 24; seed++) {
        char *text = tu_random_links_net(seed, false, true);
        write_tmp(net, text);
        uint64_t r = seed * 0x9e3779b97f4a7c15u;
        int n = 1 + (int)(tu_rand(&r) % 5), m = 1 + (int)(tu_rand(&r) % 5);
        server s;
        /* A Unix socket: many small round trips, no TCP delayed acks. */
        server_start(&s,
                     (const char *[]){"serve", net, "--paused", "--log", log,
                                      "--socket", sock, "--dir", tmpdir, NULL});
        peer p;
        peer_open(&p, &s);
        random_session(&p, &r, n);
        char req[600];
        /* save names a file inside --dir (tmpdir), as the server wants. */
        snprintf(req, sizeof req,
                 "{\"op\": \"save\", \"file\": \"random-save.json\"}");
        json_t *j = rpc(&p, req);
        assert_ok(j);
        json_decref(j);
        random_session(&p, &r, m);
        char *snap = snapshot_text(&p, true);
        shutdown_server(&s, &p);
        assert_replays(net, log, snap);

        char steps[16];
        snprintf(steps, sizeof steps, "%d", m);
        assert_int_equal(
            run_dmm((const char *[]){"run", "--resume", save, "--script", log,
                                     "--steps", steps, "--save", out, NULL},
                    "/dev/null"),
            0);
        json_t *rs = json_load_file(out, 0, NULL);
        assert_non_null(rs);
        char *resumed = canonical_state(rs, true);
        json_decref(rs);
        if (strcmp(resumed, snap) != 0)
            fail_msg("seed %llu: resumed from the save:\n%s\nlive:\n%s\n"
                     "network:\n%s",
                     (unsigned long long)seed, resumed, snap, text);
        free(resumed);
        free(snap);
        free(text);
    }
}

/* ---- dmm ctl and the documented examples -------------------------------- */

static char *slurp(const char *path)
{
    char *s = tu_read_file(path, NULL);
    assert_non_null(s);
    return s;
}

static void test_ctl(void **state)
{
    char *net = net_path("accumulator.json");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", NULL});
    char out[300];
    tmp_path(out, sizeof out, "ctl.out");
    assert_int_equal(run_dmm((const char *[]){"ctl", "--connect", s.addr, "set",
                                              "accum/sum/delta/identity/"
                                              "const/single",
                                              "-0.5", NULL},
                             out),
                     0);
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "step", "2", NULL},
                out),
        0);
    assert_int_equal(run_dmm((const char *[]){"ctl", "--connect", s.addr, "get",
                                              "accum/sum/single", NULL},
                             out),
                     0);
    char *got = slurp(out);
    assert_string_equal(got, "{\"apples\":-1,\"pears\":-0.5}\n");
    free(got);
    assert_int_equal(run_dmm((const char *[]){"ctl", "--connect", s.addr,
                                              "{\"id\": 4, \"op\": "
                                              "\"status\"}",
                                              NULL},
                             out),
                     0);
    got = slurp(out);
    assert_non_null(strstr(got, "\"id\": 4, \"ok\": true, \"step\": 2,"));
    free(got);
    assert_int_equal(run_dmm((const char *[]){"ctl", "--connect", s.addr, "get",
                                              "a//b", NULL},
                             out),
                     1);
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "resume", NULL},
                out),
        0);
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "watch", "--count",
                                 "2", "accum/sum/single", NULL},
                out),
        0);
    got = slurp(out);
    int lines = 0;
    for (char *c = got; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 2);
    assert_non_null(strstr(got, " accum/sum/single {\"apples\":"));
    free(got);
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "shutdown", NULL},
                out),
        0);
    assert_int_equal(server_wait(&s), 0);
    free(net);
}

/* Every expected member equals the actual one; "..." matches anything. */
static bool subset(json_t *want, json_t *got)
{
    if (json_is_string(want) && !strcmp(json_string_value(want), "..."))
        return got != NULL;
    if (!json_is_object(want))
        return got && json_equal(want, got);
    if (!json_is_object(got))
        return false;
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        if (!subset(v, json_object_get(got, k)))
            return false;
    }
    return true;
}

/* docs/protocol.md: each "> " line is sent, in order, to one paused server
 * running networks/accumulator.json; each "< " line must match the next
 * line received (its members; "..." for any value). */
static void test_protocol_doc(void **state)
{
    char *doc_path = tu_path("docs/protocol.md");
    char *doc = slurp(doc_path);
    char *net = net_path("accumulator.json");
    char save[300];
    /* The doc saves to "state.json", inside --dir. */
    snprintf(save, sizeof save, "state.json");
    server s;
    server_start(
        &s, (const char *[]){"serve", net, "--paused", "--dir", tmpdir, NULL});
    peer p;
    peer_open(&p, &s);
    int sent = 0, checked = 0, lineno = 0;
    for (char *line = strtok(doc, "\n"); line; line = strtok(NULL, "\n")) {
        lineno++;
        if (!strncmp(line, "> {", 3)) {
            /* The doc saves to "state.json": keep it in the temp dir. */
            char *at = strstr(line, "\"state.json\"");
            char buf[4096];
            if (at)
                snprintf(buf, sizeof buf, "%.*s\"%s\"%s", (int)(at - line - 2),
                         line + 2, save, at + 12);
            else
                snprintf(buf, sizeof buf, "%s", line + 2);
            peer_send(&p, buf);
            peer_send(&p, "\n");
            sent++;
        } else if (!strncmp(line, "< {", 3)) {
            char *at = strstr(line, "\"state.json\"");
            char buf[4096];
            if (at)
                snprintf(buf, sizeof buf, "%.*s\"%s\"%s", (int)(at - line - 2),
                         line + 2, save, at + 12);
            else
                snprintf(buf, sizeof buf, "%s", line + 2);
            json_error_t je;
            json_t *want = json_loads(buf, 0, &je);
            if (!want)
                fail_msg("docs/protocol.md: bad example %s: %s", line, je.text);
            json_t *got = peer_json(&p);
            if (!subset(want, got)) {
                char *g = json_dumps(got, 0);
                fail_msg("docs/protocol.md example:\n  want %s\n  got  %s",
                         line + 2, g);
            }
            json_decref(want);
            json_decref(got);
            checked++;
        }
    }
    assert_true(sent >= 16 && checked >= sent);
    if (s.pid) /* the doc ends with shutdown */
        assert_int_equal(server_wait(&s), 0);
    peer_close(&p);
    tmp_path(save, sizeof save, "state.json");
    unlink(save);
    free(doc);
    free(doc_path);
    free(net);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dmm-live-test-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* ---- issue 12: what a client can and cannot do --------------------------- */

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* save and load stay inside --dir; a file that could not be used is never
 * echoed; save is atomic. */
static void test_files_stay_in_dir(void **state)
{
    char *net = net_path("accumulator.json");
    char dir[300], outside[300], link[400], secret[300];
    tmp_path(dir, sizeof dir, "srvdir");
    tmp_path(outside, sizeof outside, "outside.json");
    tmp_path(secret, sizeof secret, "secret.txt");
    mkdir(dir, 0700);
    write_text(secret, "TOPSECRET-CONTENTS\n");
    snprintf(link, sizeof link, "%s/escape", dir);
    assert_int_equal(symlink(tmpdir, link), 0);
    char notjson[400];
    snprintf(notjson, sizeof notjson, "%s/notjson.json", dir);
    write_text(notjson, "PRIVATE-BYTES are not JSON\n");
    server s;
    server_start(
        &s, (const char *[]){"serve", net, "--paused", "--dir", dir, NULL});
    peer p;
    peer_open(&p, &s);
    char *before = snapshot_text(&p, true);
    char req[600];
    static const char *const refused[] = {
        "/etc/passwd",         "../outside.json",   "a/../../outside.json",
        "escape/outside.json", "escape/secret.txt", "./x.json",
        "a//b.json",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        for (int op = 0; op < 2; op++) {
            snprintf(req, sizeof req,
                     "{\"id\": 1, \"op\": \"%s\", \"file\": \"%s\"}",
                     op ? "load" : "save", refused[i]);
            json_t *r = rpc(&p, req);
            assert_error(r, "forbidden");
            char *t = json_dumps(r, 0);
            assert_null(strstr(t, "TOPSECRET"));
            free(t);
            json_decref(r);
        }
    }
    struct stat sb;
    assert_int_not_equal(stat(outside, &sb), 0); /* nothing written */
    /* A file inside that is not a network: where, not what. */
    json_t *r = rpc(&p, "{\"id\": 2, \"op\": \"load\", \"file\": "
                        "\"notjson.json\"}");
    assert_error(r, "invalid-network");
    char *t = json_dumps(r, 0);
    assert_null(strstr(t, "PRIVATE"));
    free(t);
    json_decref(r);
    r = rpc(&p, "{\"id\": 3, \"op\": \"load\", \"file\": \"missing.json\"}");
    assert_error(r, "io");
    json_decref(r);
    char *after = snapshot_text(&p, true);
    assert_string_equal(after, before);
    free(after);
    /* Saved inside, atomically: no temporary file is left beside it, and
     * a symlink named like the target is replaced, not followed. */
    char target[400];
    snprintf(target, sizeof target, "%s/snap.json", dir);
    assert_int_equal(symlink(secret, target), 0);
    r = rpc(&p, "{\"id\": 4, \"op\": \"save\", \"file\": \"snap.json\"}");
    assert_ok(r);
    json_decref(r);
    assert_int_equal(lstat(target, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    FILE *fp = fopen(secret, "r");
    char buf[64] = "";
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_string_equal(buf, "TOPSECRET-CONTENTS\n");
    r = rpc(&p, "{\"id\": 5, \"op\": \"load\", \"file\": \"snap.json\"}");
    assert_error(r, "invalid-network"); /* a state, not a network */
    json_decref(r);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 3", dir);
    assert_int_equal(system(cmd), 0); /* escape, notjson, snap: no temp */
    shutdown_server(&s, &p);
    free(before);
    free(net);
}

/* A token from a file or the environment; no token, no outside address. */
static void test_token_sources(void **state)
{
    char *net = net_path("accumulator.json");
    assert_int_not_equal(
        run_dmm((const char *[]){"serve", net, "--listen", "0.0.0.0:0", NULL},
                "/dev/null"),
        0);
    char tf[300];
    tmp_path(tf, sizeof tf, "token.txt");
    write_text(tf, "from-a-file\n");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", "--token-file",
                                      tf, NULL});
    peer p;
    peer_open(&p, &s);
    json_t *r = rpc(&p, "{\"op\": \"hello\", \"token\": \"from-a-file\"}");
    assert_ok(r);
    json_decref(r);
    /* dmm ctl reads the same file, and without a token is refused. */
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "--token-file", tf,
                                 "status", NULL},
                "/dev/null"),
        0);
    assert_int_not_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "status", NULL},
                "/dev/null"),
        0);
    shutdown_server(&s, &p);
    setenv("DMM_TOKEN", "from-env", 1);
    server_start(&s, (const char *[]){"serve", net, "--paused", "--listen",
                                      "0.0.0.0:0", NULL});
    unsetenv("DMM_TOKEN");
    char *colon = strrchr(s.addr, ':');
    char addr[256];
    snprintf(addr, sizeof addr, "127.0.0.1%.200s", colon);
    snprintf(s.addr, sizeof s.addr, "%s", addr);
    peer_open(&p, &s);
    r = rpc(&p, "{\"op\": \"status\"}");
    assert_error(r, "unauthorized");
    json_decref(r);
    peer_close(&p);
    peer_open(&p, &s);
    r = rpc(&p, "{\"op\": \"hello\", \"token\": \"from-env\"}");
    assert_ok(r);
    json_decref(r);
    shutdown_server(&s, &p);
    free(net);
}

static double weight_at(peer *p, const char *path)
{
    char req[512];
    snprintf(req, sizeof req, "{\"op\": \"get\", \"path\": \"%s\"}", path);
    json_t *r = rpc(p, req);
    assert_ok(r);
    json_t *v = json_object_get(r, "value");
    double x = json_is_number(v) ? json_number_value(v) : 0;
    json_decref(r);
    return x;
}

/* An edit that would break the network is refused before it applies; undo
 * reverts edit, set and load, and is logged so the log replays. */
static void test_edits_and_undo(void **state)
{
    char *net = net_path("accumulator.json");
    char log[300];
    tmp_path(log, sizeof log, "undo-log.jsonl");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", "--log", log,
                                      "--history", "2", NULL});
    peer p;
    peer_open(&p, &s);
    char *before = snapshot_text(&p, false);
    /* Removing Self's row: the same network is refused at load time. */
    json_t *r =
        rpc(&p, "{\"op\": \"set\", \"path\": "
                "\"accum/self/accum/accum/self/single\", \"value\": 0}");
    assert_error(r, "invalid-edit");
    json_decref(r);
    r = rpc(&p, "{\"op\": \"edit\", \"delta\": {\"accum\": {\"self\": "
                "{\"accum\": {\"accum\": {\"self\": {\"single\": -1}}}}}}}");
    assert_error(r, "invalid-edit");
    json_decref(r);
    /* A weight that overflows. */
    r = rpc(&p, "{\"op\": \"set\", \"path\": "
                "\"accum/sum/delta/identity/const/single\", \"value\": 1e308}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p,
            "{\"op\": \"edit\", \"delta\": {\"accum\": {\"sum\": {\"delta\": "
            "{\"identity\": {\"const\": {\"single\": 1e308}}}}}}}");
    assert_error(r, "invalid-edit");
    json_decref(r);
    r = rpc(&p, "{\"op\": \"undo\"}");
    assert_ok(r);
    json_decref(r);
    /* The same state (the labels the set interned stay: it was applied). */
    char *now = snapshot_text(&p, false);
    assert_string_equal(now, before);
    free(now);
    r = rpc(&p, "{\"op\": \"undo\"}");
    assert_error(r, "state"); /* nothing left */
    json_decref(r);

    /* edit, set, set: the history keeps 2, undo reverts them newest first
     * and exactly. */
    const char *w = "accum/self/single/accum/sum/delta/identity/const/single";
    double w0 = weight_at(&p, w);
    r = rpc(&p,
            "{\"op\": \"edit\", \"delta\": {\"accum\": {\"sum\": {\"delta\": "
            "{\"identity\": {\"const\": {\"single\": 0.1}}}}}}}");
    assert_ok(r);
    json_decref(r);
    double w1 = weight_at(&p, w);
    r = rpc(&p, "{\"op\": \"set\", \"path\": "
                "\"accum/sum/delta/identity/const/single\", \"value\": 0.3}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"step\", \"n\": 3}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"set\", \"path\": "
                "\"accum/sum/delta/identity/const/single\", \"value\": 7}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"undo\"}");
    assert_ok(r);
    json_decref(r);
    assert_true(weight_at(&p, w) == 0.3);
    r = rpc(&p, "{\"op\": \"undo\"}");
    assert_ok(r);
    json_decref(r);
    assert_true(weight_at(&p, w) == w1);
    r = rpc(&p, "{\"op\": \"undo\"}");
    assert_error(r, "state"); /* --history 2: the edit is forgotten */
    json_decref(r);
    assert_true(w1 != w0);
    r = rpc(&p, "{\"op\": \"step\"}"); /* the log's last events apply */
    assert_ok(r);
    json_decref(r);
    char *snap = snapshot_text(&p, true);
    assert_replays(net, log, snap);
    free(snap);
    shutdown_server(&s, &p);

    /* undo of a load brings the replaced network back. */
    server_start(&s, (const char *[]){"serve", net, "--paused", NULL});
    peer_open(&p, &s);
    r = rpc(&p, "{\"op\": \"step\", \"n\": 2}");
    json_decref(r);
    char *old = snapshot_text(&p, true);
    r = rpc(&p, "{\"op\": \"load\", \"network\": {\"dmm\": 1, \"matrix\": "
                "{\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "
                "{\"single\": 1}}}}}}}}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"undo\"}");
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 2);
    json_decref(r);
    now = snapshot_text(&p, true);
    assert_string_equal(now, old);
    free(now);
    free(old);
    shutdown_server(&s, &p);
    /* dmm ctl undo */
    free(before);
    free(net);
}

/* A refused request leaves the label table (and so the state file and the
 * memory) exactly as it was. */
static void test_refusals_leave_no_trace(void **state)
{
    char *net = net_path("accumulator.json");
    server s;
    server_start(&s, (const char *[]){"serve", net, "--paused", NULL});
    peer p;
    peer_open(&p, &s);
    char *before = snapshot_text(&p, true);
    size_t n0 = label_count(&p);
    char label[1100];
    memset(label, 'q', 1000);
    for (int k = 0; k < 300; k++) {
        snprintf(label + 1000, 100, "-%d", k);
        char req[1400];
        const char *fmt[] = {
            "{\"op\": \"edit\", \"delta\": {\"no-such-type\": {\"%s\": {\"x\": "
            "{\"accum\": {\"sum\": {\"single\": 1}}}}}}}",
            "{\"op\": \"set\", \"path\": \"%s/a/b/identity/const/single\", "
            "\"value\": 1}",
            "{\"op\": \"edit\", \"delta\": {\"accum\": {\"sum\": {\"%s\": "
            "1}}}}",
            "{\"op\": \"load\", \"network\": {\"dmm\": 1, \"matrix\": "
            "{\"accum\": {\"%s\": 1}}}}",
            "{\"op\": \"edit\", \"delta\": {\"%s\": \"not a value\"}}",
        };
        snprintf(req, sizeof req, fmt[k % 5], label);
        json_t *r = rpc(&p, req);
        assert_false(json_is_true(json_object_get(r, "ok")));
        json_decref(r);
    }
    assert_int_equal(label_count(&p), n0);
    char *after = snapshot_text(&p, true);
    assert_string_equal(after, before);
    free(after);
    free(before);
    shutdown_server(&s, &p);
    free(net);
}

/* Idle connections time out; one address cannot take every slot; partial
 * lines are bounded in total. */
static void test_no_lockout(void **state)
{
    char *net = net_path("accumulator.json");
    server s;
    server_start(&s,
                 (const char *[]){"serve", net, "--paused", "--max-clients",
                                  "4", "--idle-timeout", "1", "--max-message",
                                  "65536", "--max-buffered", "100000", NULL});
    peer idle[3], busy;
    for (int i = 0; i < 3; i++)
        peer_open(&idle[i], &s);
    peer_send(&idle[1], "{\"op\": \"sta"); /* part of a line */
    /* The fourth from the same address is refused: a quarter stays free. */
    peer_open(&busy, &s);
    json_t *r = peer_json(&busy);
    assert_error(r, "too-many-clients");
    json_decref(r);
    peer_close(&busy);
    /* From another loopback address it is taken. */
    peer other;
    other.len = 0;
    other.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
    assert_int_equal(bind(other.fd, (struct sockaddr *)&src, sizeof src), 0);
    struct sockaddr_in dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)atoi(strrchr(s.addr, ':') + 1));
    assert_int_equal(connect(other.fd, (struct sockaddr *)&dst, sizeof dst), 0);
    r = rpc(&other, "{\"op\": \"status\"}");
    assert_ok(r);
    json_decref(r);
    /* The idle ones (nothing sent, part of a line) are closed after the
     * timeout with an event; so is the one that asked nothing more. */
    for (int i = 0; i < 3; i++) {
        json_t *j = peer_json(&idle[i]);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "event")),
                            "idle");
        json_decref(j);
        assert_null(peer_line(&idle[i]));
        peer_close(&idle[i]);
    }
    peer_close(&other);
    /* Partial lines: the server holds at most --max-buffered bytes of them
     * in all; the client that would pass it is told and closed. */
    peer a, b;
    peer_open(&a, &s);
    peer_open(&b, &s);
    char *chunk = malloc(60001);
    memset(chunk, ' ', 60000);
    chunk[0] = '{';
    chunk[60000] = '\0';
    peer_send(&a, chunk);
    struct timespec ts = {0, 200000000};
    nanosleep(&ts, NULL);
    peer_send(&b, chunk);
    r = peer_json(&b);
    assert_error(r, "busy");
    json_decref(r);
    peer_close(&b);
    peer_send(&a, "\"op\": \"status\"}\n");
    r = peer_reply(&a);
    assert_ok(r);
    json_decref(r);
    free(chunk);
    shutdown_server(&s, &a);
    free(net);
}

/* ---- fields live (docs/fields.md "Live changes") ------------------------ */

/* The "modulations" member of a snapshot's state, as canonical text. */
static char *fields_of(peer *p)
{
    json_t *r = rpc(p, "{\"id\": 98, \"op\": \"snapshot\"}");
    assert_ok(r);
    json_t *st = json_object_get(r, "state");
    json_t *f = json_pack(
        "{sOsO}", "positions",
        json_object_get(st, "positions") ? json_object_get(st, "positions")
                                         : json_null(),
        "modulations",
        json_object_get(st, "modulations") ? json_object_get(st, "modulations")
                                           : json_null());
    char *text =
        json_dumps(f, JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(f);
    json_decref(r);
    return text;
}

/* A refused request: its code and path, and the network (state, label
 * table too) exactly as it was. */
static void assert_refused(peer *p, const char *req, const char *code,
                           const char *path)
{
    char *before = snapshot_text(p, true);
    json_t *r = rpc(p, req);
    assert_error(r, code);
    json_t *e = json_object_get(r, "error");
    if (path && strcmp(json_string_value(json_object_get(e, "path")), path))
        fail_msg("%s: path %s, expected %s", req,
                 json_string_value(json_object_get(e, "path")), path);
    json_decref(r);
    char *after = snapshot_text(p, true);
    assert_string_equal(after, before);
    free(before);
    free(after);
}

static const char fields_net[] =
    "{\"dmm\": 1, \"matrix\": {"
    "\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": {\"single\": "
    "1}}}}},"
    "\"tanh\": {\"a\": {\"single\": {\"tanh\": {\"b\": {\"single\": 0.9}}, "
    "\"identity\": {\"drive\": {\"single\": 1}}}},"
    "\"b\": {\"single\": {\"tanh\": {\"a\": {\"single\": 0.8}}}}},"
    "\"identity\": {\"field\": {\"single\": {\"identity\": {\"field\": "
    "{\"single\": 1}}}}, \"drive\": {\"single\": {\"identity\": {\"drive\": "
    "{\"single\": 1}}}}}},"
    "\"outputs\": {\"identity\": {\"field\": {\"single\": {\"0\": 0.5, \"1\": "
    "2}}, \"drive\": {\"single\": 0.25}}},"
    "\"positions\": {\"tanh/a\": [0]}}\n";

/* modulate and position over a real connection: every bad input of the
 * issue refused with a located, coded error and nothing changed; good ones
 * applied before the next cycle, shown by status and snapshot, undone by
 * undo, and the --log replaying the session to the same state, bit for
 * bit. An edit that removes a field's neuron is refused at the edit. The
 * dmm ctl words send the same requests. */
static void test_fields_live(void **state)
{
    (void)state;
    char net[300], log[300];
    tmp_path(net, sizeof net, "fields-net.json");
    tmp_path(log, sizeof log, "fields-session.jsonl");
    write_tmp(net, fields_net);
    server s;
    server_start(
        &s, (const char *[]){"serve", net, "--paused", "--log", log, NULL});
    peer p;
    peer_open(&p, &s);
    char *none = fields_of(&p);

    static const char gate[] =
        "{\"name\": \"gate\", \"field\": \"identity/field/single\", "
        "\"target\": \"input\", \"neurons\": \"embedded\", \"mode\": "
        "\"multiply\"}";
    static const struct {
        const char *req, *code, *path;
    } bad[] = {
        /* a modulation naming no neuron */
        {"{\"op\": \"modulate\", \"action\": \"add\", \"modulation\": "
         "{\"name\": \"m\", \"field\": \"identity/field/single\", "
         "\"target\": \"input\", \"neurons\": [\"tanh/zz\"], \"mode\": "
         "\"add\"}}",
         "invalid-edit", "/modulation/neurons/0"},
        /* a field path not produced */
        {"{\"op\": \"modulate\", \"action\": \"add\", \"modulation\": "
         "{\"name\": \"m\", \"field\": \"identity/nope/single\", "
         "\"target\": \"input\", \"neurons\": \"embedded\", \"mode\": "
         "\"add\"}}",
         "invalid-edit", "/modulation/field"},
        /* a parameter name the type lacks */
        {"{\"op\": \"modulate\", \"action\": \"add\", \"modulation\": "
         "{\"name\": \"m\", \"field\": \"identity/field/single\", "
         "\"target\": \"param\", \"param\": \"gian\", \"neurons\": "
         "[\"tanh/a\"], \"mode\": \"replace\"}}",
         "invalid-edit", "/modulation/neurons/0"},
        /* an unknown mode */
        {"{\"op\": \"modulate\", \"action\": \"add\", \"modulation\": "
         "{\"name\": \"m\", \"field\": \"identity/field/single\", "
         "\"target\": \"input\", \"neurons\": \"embedded\", \"mode\": "
         "\"divide\"}}",
         "invalid-edit", "/modulation/mode"},
        /* an unknown action, a missing modulation, no such name */
        {"{\"op\": \"modulate\", \"action\": \"swap\", \"modulation\": {}}",
         "bad-request", "/action"},
        {"{\"op\": \"modulate\", \"action\": \"add\"}", "bad-request",
         "/modulation"},
        {"{\"op\": \"modulate\", \"action\": \"remove\", \"modulation\": "
         "\"nobody\"}",
         "invalid-edit", "/modulation"},
        /* positions that are not numbers, of a type that does not exist */
        {"{\"op\": \"position\", \"neuron\": \"tanh/b\", \"at\": [\"x\"]}",
         "invalid-edit", "/at"},
        {"{\"op\": \"position\", \"neuron\": \"tanh/b\", \"at\": [1, 2, 3]}",
         "invalid-edit", "/at"},
        {"{\"op\": \"position\", \"neuron\": \"nosuch/b\", \"at\": [1]}",
         "invalid-edit", "/neuron"},
        {"{\"op\": \"position\", \"neuron\": \"tanh/b\"}", "bad-request",
         "/at"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_refused(&p, bad[k].req, bad[k].code, bad[k].path);

    /* add, then the network runs with it: tanh/a's input 0.25 (drive;
     * b is 0 at first) is multiplied by the field at x = 0, 0.5. */
    char req[1024];
    snprintf(req, sizeof req,
             "{\"id\": 1, \"op\": \"modulate\", \"action\": \"add\", "
             "\"modulation\": %s}",
             gate);
    json_t *r = rpc(&p, req);
    assert_ok(r);
    assert_int_equal(num_at(r, "step"), 1);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"step\"}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"get\", \"path\": \"tanh/a/single\"}");
    assert_ok(r);
    /* (the engine's tanh, not libm's: the same to an ulp) */
    if (fabs(num_at(r, "value") - tanh(0.5 * 0.25)) > 1e-16)
        fail_msg("tanh/a/single is %.17g, expected tanh(0.5 * 0.25)",
                 num_at(r, "value"));
    json_decref(r);
    r = rpc(&p, "{\"op\": \"status\"}");
    assert_int_equal(num_at(r, "modulations"), 1);
    assert_int_equal(num_at(r, "positions"), 1);
    json_decref(r);
    char *with_gate = fields_of(&p);
    assert_non_null(strstr(with_gate, "\"name\":\"gate\""));

    /* the field's neuron cannot go while the modulation reads it */
    assert_refused(&p,
                   "{\"op\": \"edit\", \"delta\": {\"identity\": {\"field\": "
                   "{\"single\": {\"identity\": {\"field\": {\"single\": "
                   "-1}}}}}}}",
                   "invalid-edit", "/delta/identity/field");

    /* position, change, undo each, with cycles between */
    r = rpc(&p, "{\"op\": \"position\", \"neuron\": \"tanh/b\", \"at\": "
                "[1]}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"step\", \"n\": 2}");
    json_decref(r);
    r = rpc(&p, "{\"op\": \"modulate\", \"action\": \"change\", "
                "\"modulation\": {\"name\": \"gate\", \"field\": "
                "\"identity/field/single\", \"target\": \"output\", "
                "\"neurons\": [\"tanh/b\"], \"mode\": \"add\"}}");
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"step\"}");
    json_decref(r);
    r = rpc(&p, "{\"op\": \"undo\"}"); /* the change */
    assert_ok(r);
    json_decref(r);
    r = rpc(&p, "{\"op\": \"step\"}");
    json_decref(r);
    r = rpc(&p, "{\"op\": \"undo\"}"); /* the position */
    assert_ok(r);
    json_decref(r);
    char *now = fields_of(&p);
    assert_string_equal(now, with_gate);
    free(now);
    r = rpc(&p, "{\"op\": \"modulate\", \"action\": \"remove\", "
                "\"modulation\": \"gate\"}");
    assert_ok(r);
    json_decref(r);
    now = fields_of(&p);
    assert_string_equal(now, none);
    free(now);
    r = rpc(&p, "{\"op\": \"step\"}");
    json_decref(r);
    r = rpc(&p, "{\"op\": \"undo\"}"); /* the remove */
    assert_ok(r);
    json_decref(r);
    now = fields_of(&p);
    assert_string_equal(now, with_gate);
    free(now);

    /* the dmm ctl words */
    char out[300];
    tmp_path(out, sizeof out, "fields-ctl.out");
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "position",
                                 "tanh/b", "1.5", "2", NULL},
                out),
        0);
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "modulate", "add",
                                 "{\"name\": \"out\", \"field\": "
                                 "\"identity/field/single\", "
                                 "\"target\": \"output\", "
                                 "\"neurons\": \"embedded\", "
                                 "\"mode\": \"add\"}",
                                 NULL},
                out),
        0);
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "step", "3", NULL},
                out),
        0);
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "modulate",
                                 "remove", "gate", NULL},
                out),
        0);
    assert_int_equal(
        run_dmm((const char *[]){"ctl", "--connect", s.addr, "position",
                                 "tanh/a", "none", NULL},
                out),
        0);
    assert_int_equal(run_dmm((const char *[]){"ctl", "--connect", s.addr,
                                              "position", "tanh/a", "x", NULL},
                             out),
                     2);
    now = fields_of(&p);
    assert_non_null(strstr(now, "\"tanh/b\":[1.5,2]"));
    assert_null(strstr(now, "tanh/a"));
    assert_null(strstr(now, "\"gate\""));
    free(now);
    r = rpc(&p, "{\"op\": \"step\", \"n\": 2}");
    json_decref(r);

    /* the log replays it all, to the same state bit for bit */
    char *snap = snapshot_text(&p, true);
    shutdown_server(&s, &p);
    assert_replays(net, log, snap);
    free(snap);
    free(with_gate);
    free(none);
}

static int kill_left(void **state)
{
    for (size_t i = 0; i < 16; i++)
        if (live_pids[i]) {
            kill(live_pids[i], SIGKILL);
            waitpid(live_pids[i], NULL, 0);
            live_pids[i] = 0;
        }
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_operations, kill_left),
        cmocka_unit_test_teardown(test_bad_requests, kill_left),
        cmocka_unit_test_teardown(test_many_clients, kill_left),
        cmocka_unit_test_teardown(test_disconnect_mid_line, kill_left),
        cmocka_unit_test_teardown(test_slow_subscriber, kill_left),
        cmocka_unit_test_teardown(test_token, kill_left),
        cmocka_unit_test_teardown(test_sigterm_saves, kill_left),
        cmocka_unit_test_teardown(test_socket_path_limits, kill_left),
        cmocka_unit_test_teardown(test_reads_do_not_intern, kill_left),
        cmocka_unit_test_teardown(test_log_replay, kill_left),
        cmocka_unit_test_teardown(test_scalar_paths, kill_left),
        cmocka_unit_test_teardown(test_random_links_replay, kill_left),
        cmocka_unit_test_teardown(test_ctl, kill_left),
        cmocka_unit_test_teardown(test_protocol_doc, kill_left),
        cmocka_unit_test_teardown(test_files_stay_in_dir, kill_left),
        cmocka_unit_test_teardown(test_token_sources, kill_left),
        cmocka_unit_test_teardown(test_set_by_get_path, kill_left),
        cmocka_unit_test_teardown(test_edits_and_undo, kill_left),
        cmocka_unit_test_teardown(test_refusals_leave_no_trace, kill_left),
        cmocka_unit_test_teardown(test_no_lockout, kill_left),
        cmocka_unit_test_teardown(test_fields_live, kill_left),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
