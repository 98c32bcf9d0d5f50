// SPDX-License-Identifier: MIT
/*
 * `dmm ctl`: a small blocking client of the live protocol. Turns readable
 * shortcuts (set PATH VALUE, get PATH, watch PATH...) into request lines,
 * or passes a raw JSON request through, and prints the reply. Events that
 * arrive while waiting for a reply are skipped, except in watch.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "dmm_live.h"

#ifdef DMM_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

typedef struct conn {
    int fd;
    char buf[65536];
    size_t len, pos;
    char *line; /* the last line read (owned) */
    size_t cap;
} conn;

static int ctl_fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "dmm ctl: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return DMM_EXIT_INPUT;
}

static int connect_to(const char *hostport, const char *path, int *fd)
{
    if (path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof sa.sun_path)
            return ctl_fail("--socket %s: path too long%s", path, "");
        memcpy(sa.sun_path, path, strlen(path) + 1);
        *fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (*fd < 0 || connect(*fd, (struct sockaddr *)&sa, sizeof sa) < 0)
            return ctl_fail("cannot connect to %s: %s", path, strerror(errno));
        return 0;
    }
    char host[256], service[16];
    int port;
    dmm_error err;
    if (dmm_live_hostport(hostport, host, sizeof host, &port, &err) < 0)
        return ctl_fail("--connect %s%s", err.text, "");
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int g = getaddrinfo(host, service, &hints, &ai);
    if (g != 0)
        return ctl_fail("--connect %s: %s", hostport, gai_strerror(g));
    int rc = -1;
    for (struct addrinfo *p = ai; p && rc < 0; p = p->ai_next) {
        *fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
        if (*fd < 0)
            continue;
        rc = connect(*fd, p->ai_addr, p->ai_addrlen);
        if (rc < 0)
            close(*fd);
    }
    int e = errno;
    freeaddrinfo(ai);
    if (rc < 0)
        return ctl_fail("cannot connect to %s: %s", hostport, strerror(e));
    return 0;
}

static int send_all(conn *c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(c->fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one line into c->line (NUL-terminated, no newline); -1 at EOF. */
static int read_line(conn *c)
{
    size_t n = 0;
    for (;;) {
        if (c->pos == c->len) {
            ssize_t r = read(c->fd, c->buf, sizeof c->buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            c->len = (size_t)r;
            c->pos = 0;
        }
        char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
        size_t k = nl ? (size_t)(nl - (c->buf + c->pos)) : c->len - c->pos;
        if (n + k + 1 > c->cap) {
            size_t cap = (n + k + 1) * 2;
            char *p = realloc(c->line, cap);
            if (!p)
                return -1;
            c->line = p;
            c->cap = cap;
        }
        memcpy(c->line + n, c->buf + c->pos, k);
        n += k;
        c->pos += k + (nl != NULL);
        if (nl) {
            c->line[n] = '\0';
            return 0;
        }
    }
}

/* Wait for the reply with id; *out: the parsed reply (new). */
static int await_reply(conn *c, json_int_t id, json_t **out)
{
    for (;;) {
        if (read_line(c) < 0) {
            fprintf(stderr, "dmm ctl: the server closed the connection\n");
            return -1;
        }
        json_t *j = json_loads(c->line, 0, NULL);
        json_t *jid = j ? json_object_get(j, "id") : NULL;
        json_t *ok = j ? json_object_get(j, "ok") : NULL;
        if (ok &&
            (!jid || (json_is_integer(jid) && json_integer_value(jid) == id))) {
            *out = j;
            return 0;
        }
        json_decref(j);
    }
}

/* Print an error reply on stderr; returns the exit code. */
static int reply_status(json_t *r)
{
    if (json_is_true(json_object_get(r, "ok")))
        return DMM_EXIT_OK;
    json_t *e = json_object_get(r, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *path = json_string_value(json_object_get(e, "path"));
    fprintf(stderr, "dmm ctl: %s: %s%s%s%s\n", code ? code : "error",
            msg ? msg : "", path && *path ? " (at " : "",
            path && *path ? path : "", path && *path ? ")" : "");
    return DMM_EXIT_INPUT;
}

/* Send request r (taken) with the given id and wait for its reply. */
static int call(conn *c, json_t *r, json_int_t id, json_t **reply)
{
    json_object_set_new(r, "id", json_integer(id));
    char *s = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(r);
    if (!s)
        return -1;
    size_t n = strlen(s);
    int rc = send_all(c, s, n) < 0 || send_all(c, "\n", 1) < 0 ? -1 : 0;
    free(s);
    if (rc < 0) {
        fprintf(stderr, "dmm ctl: cannot send: %s\n", strerror(errno));
        return -1;
    }
    return await_reply(c, id, reply);
}

/* A JSON argument (a V-value, a delta). NULL with a message on error. */
static json_t *json_arg(const char *what, const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j)
        fprintf(stderr, "dmm ctl: %s: invalid JSON: %s\n", what, je.text);
    return j;
}

static json_t *make_request(const char *op, int argc, char **argv,
                            const char *cmd)
{
    json_t *r = json_object();
    json_object_set_new(r, "op", json_string(op));
    char *end;
    if (!strcmp(op, "get") && argc == 1) {
        json_object_set_new(r, "path", json_string(argv[0]));
    } else if (!strcmp(op, "set") && argc == 2) {
        double v = strtod(argv[1], &end);
        if (end == argv[1] || *end || !isfinite(v)) {
            fprintf(stderr, "dmm ctl: set: \"%s\" is not a number\n", argv[1]);
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, "path", json_string(argv[0]));
        json_object_set_new(r, "value", json_real(v));
    } else if (!strcmp(op, "edit") && argc == 1) {
        json_t *d = json_arg("edit", argv[0]);
        if (!d) {
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, "delta", d);
    } else if (!strcmp(op, "feed") && argc == 2) {
        json_t *d = json_arg("feed", argv[1]);
        if (!d) {
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, "neuron", json_string(argv[0]));
        json_object_set_new(r, "outputs", d);
    } else if (!strcmp(op, "modulate") && argc == 2 &&
               (!strcmp(argv[0], "add") || !strcmp(argv[0], "change") ||
                !strcmp(argv[0], "remove"))) {
        /* remove NAME takes the bare name; add and change a JSON object */
        json_t *m = !strcmp(argv[0], "remove") && argv[1][0] != '{'
                        ? json_string(argv[1])
                        : json_arg("modulate", argv[1]);
        if (!m) {
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, "action", json_string(argv[0]));
        json_object_set_new(r, "modulation", m);
    } else if (!strcmp(op, "position") &&
               (argc == 2 || argc == 3)) { /* NEURON X [Y] | NEURON none */
        json_t *at = json_array();
        bool none = argc == 2 && !strcmp(argv[1], "none");
        for (int k = 1; !none && k < argc; k++) {
            double v = strtod(argv[k], &end);
            if (end == argv[k] || *end || !isfinite(v)) {
                fprintf(stderr,
                        "dmm ctl: position: \"%s\" is not a number (give "
                        "X [Y], or none to remove the position)\n",
                        argv[k]);
                json_decref(at);
                json_decref(r);
                return NULL;
            }
            json_array_append_new(at, json_real(v));
        }
        json_object_set_new(r, "neuron", json_string(argv[0]));
        json_object_set_new(r, "at",
                            none ? (json_decref(at), json_null()) : at);
    } else if (!strcmp(op, "step") && argc <= 1) {
        uint64_t n = 1;
        if (argc == 1 && !dmm__parse_count(argv[0], 1, 1000000, &n)) {
            fprintf(stderr, "dmm ctl: step: expected 1 to 1000000 cycles\n");
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, "n", json_integer((json_int_t)n));
    } else if (!strcmp(op, "rate") && argc == 1) {
        double v = strtod(argv[0], &end);
        json_object_set_new(r, "hz",
                            !strcmp(argv[0], "max") || end == argv[0] || *end
                                ? json_string(argv[0])
                                : json_real(v));
    } else if (!strcmp(op, "save") && argc == 1) {
        json_object_set_new(r, "file", json_string(argv[0]));
    } else if (!strcmp(op, "load") && argc == 1) {
        json_error_t je;
        json_t *d = json_load_file(argv[0], JSON_REJECT_DUPLICATES, &je);
        if (!d) {
            fprintf(stderr, "dmm ctl: load: %s:%d:%d: %s\n", argv[0], je.line,
                    je.column, je.text);
            json_decref(r);
            return NULL;
        }
        json_object_set_new(
            r, json_object_get(d, "dmm-state") ? "state" : "network", d);
    } else if ((!strcmp(op, "status") || !strcmp(op, "pause") ||
                !strcmp(op, "resume") || !strcmp(op, "snapshot") ||
                !strcmp(op, "undo") || !strcmp(op, "shutdown")) &&
               argc == 0) {
    } else {
        json_decref(r);
        dmm__usage_error(cmd,
                         "\"%s\" with %d argument%s: see the shortcuts "
                         "in 'dmm help ctl'",
                         op, argc, argc == 1 ? "" : "s");
        return NULL;
    }
    return r;
}

/* Print a V-value from a reply in canonical form (as dmm run prints it). */
static void print_value(vv_ctx *vc, json_t *v)
{
    vv x;
    char *s = NULL;
    dmm_error err;
    if (vc && vv_from_json(vc, v, "", &x, &err) == 0) {
        s = vv_to_string(vc, x);
        vv_free(vc, x);
    }
    if (!s)
        s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                              JSON_REAL_PRECISION(17));
    fputs(s ? s : "?", stdout);
    free(s);
}

/* The reply to get PATH: its value, or an error when nothing is stored
 * under PATH (a mistyped path would otherwise print {} and succeed). */
static int print_get_reply(vv_ctx *vc, const char *path, json_t *reply)
{
    json_t *v = json_object_get(reply, "value");
    if (!v || (json_is_object(v) && json_object_size(v) == 0) ||
        (json_is_number(v) && json_number_value(v) == 0)) {
        fprintf(stderr,
                "dmm ctl: get: nothing is stored under \"%s\" (no such "
                "neuron or output, or its value is zero)\n",
                path);
        return DMM_EXIT_INPUT;
    }
    print_value(vc, v);
    putchar('\n');
    return DMM_EXIT_OK;
}

/* watch PATH...: subscribe to changes and print "STEP PATH VALUE" lines. */
static int watch(conn *c, vv_ctx *vc, int argc, char **argv, uint64_t every,
                 uint64_t count)
{
    json_t *r = json_object(), *paths = json_array(), *reply = NULL;
    for (int i = 0; i < argc; i++)
        json_array_append_new(paths, json_string(argv[i]));
    json_object_set_new(r, "op", json_string("subscribe"));
    json_object_set_new(r, "paths", paths);
    json_object_set_new(r, "every", json_integer((json_int_t)every));
    json_object_set_new(r, "changes", json_true());
    if (call(c, r, 2, &reply) < 0)
        return DMM_EXIT_INPUT;
    int status = reply_status(reply);
    json_decref(reply);
    if (status)
        return status;
    for (uint64_t seen = 0; !count || seen < count;) {
        if (read_line(c) < 0)
            return DMM_EXIT_OK; /* the server went away */
        json_t *j = json_loads(c->line, 0, NULL);
        const char *ev = json_string_value(json_object_get(j, "event"));
        if (ev && !strcmp(ev, "cycle")) {
            json_t *values = json_object_get(j, "values");
            long long t =
                (long long)json_integer_value(json_object_get(j, "step"));
            for (int i = 0; i < argc; i++) {
                printf("%lld %s ", t, argv[i]);
                print_value(vc, json_object_get(values, argv[i]));
                putchar('\n');
            }
            fflush(stdout);
            seen++;
        } else if (ev) {
            printf("%s\n", c->line);
            fflush(stdout);
        }
        json_decref(j);
    }
    return DMM_EXIT_OK;
}

static int run_ctl(const char *hostport, const char *path, const char *token,
                   uint64_t every, uint64_t count, int argc, char **argv)
{
    const char *cmd = "ctl";
    const char *op = argv[0];
    int nargs = argc - 1;
    char **args = argv + 1;
    json_t *req = NULL;
    if (!strcmp(op, "watch")) {
        if (nargs < 1)
            return dmm__usage_error(cmd, "watch needs at least one PATH");
    } else if (op[0] == '{') {
        if (nargs)
            return dmm__usage_error(cmd, "a raw JSON request takes no "
                                         "arguments");
        if (!(req = json_arg("request", op)))
            return DMM_EXIT_INPUT;
    } else if (!(req = make_request(op, nargs, args, cmd))) {
        return DMM_EXIT_USAGE;
    }

    conn c = {.fd = -1};
    if (connect_to(hostport, path, &c.fd)) {
        json_decref(req);
        return DMM_EXIT_INPUT;
    }
    vv_ctx *vc = vv_ctx_new(NULL);
    int status = DMM_EXIT_OK;
    json_t *reply = NULL;
    if (token) {
        json_t *h = json_object();
        json_object_set_new(h, "op", json_string("hello"));
        json_object_set_new(h, "token", json_string(token));
        if (call(&c, h, 0, &reply) < 0)
            status = DMM_EXIT_INPUT;
        else
            status = reply_status(reply);
        json_decref(reply);
        reply = NULL;
    }
    if (status == DMM_EXIT_OK && !req) {
        status = watch(&c, vc, nargs, args, every, count);
    } else if (status == DMM_EXIT_OK) {
        json_t *rid = json_object_get(req, "id");
        json_int_t id = json_is_integer(rid) ? json_integer_value(rid) : 1;
        if (!json_is_object(req)) {
            fprintf(stderr, "dmm ctl: a raw request must be a JSON object\n");
            status = DMM_EXIT_INPUT;
            json_decref(req);
        } else if (call(&c, req, id, &reply) < 0) {
            status = DMM_EXIT_INPUT;
        } else {
            status = reply_status(reply);
            if (status == DMM_EXIT_OK && !strcmp(op, "get")) {
                status = print_get_reply(vc, args[0], reply);
            } else if (status == DMM_EXIT_OK) {
                printf("%s\n", c.line);
            }
        }
        req = NULL;
    }
    json_decref(req);
    json_decref(reply);
    free(c.line);
    close(c.fd);
    if (vc)
        vv_ctx_free(vc);
    if (fflush(stdout) != 0 && status == DMM_EXIT_OK)
        status = DMM_EXIT_INPUT;
    return status;
}

/* ---- interactive mode ----------------------------------------------------
 *
 * `dmm ctl --connect ADDR` without OP reads commands from stdin, one per
 * line, in the words of the command line (quotes group words: set 'a b' 1),
 * sends each at once and prints replies and pushed events as they arrive:
 * one poll loop over stdin and the socket, so a watch keeps printing while
 * the user types. On a terminal, libedit gives line editing and history.
 */

typedef struct pending {
    json_int_t id;
    char *op;   /* owned */
    char *path; /* owned, for get; NULL otherwise */
} pending;

typedef struct session {
    conn *c;
    vv_ctx *vc;
    pending *pend;
    size_t npend, cap;
    json_int_t next_id;
    char *acc; /* bytes of the socket not yet ending a line */
    size_t alen;
    char *in; /* the same for stdin when it is not a terminal */
    size_t ilen;
    bool tty, eof, quit, failed;
} session;

#ifdef DMM_HAVE_LIBEDIT
static session *tty_session; /* the readline callback has no user data */
#endif

/* Split line into words (new array of new strings, *n of them): spaces
 * separate, '...' quotes literally, "..." with \" and \\ escapes. -1 on an
 * unterminated quote. */
static int split_words(const char *line, char ***out, int *n)
{
    size_t len = strlen(line);
    char **w = calloc(len / 2 + 2, sizeof *w);
    char *buf = malloc(len + 1);
    int k = 0;
    if (!w || !buf) {
        free(w);
        free(buf);
        return -1;
    }
    const char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p)
            break;
        size_t b = 0;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r') {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                while (*p && *p != q) {
                    if (q == '"' && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
                        p++;
                    buf[b++] = *p++;
                }
                if (*p != q) {
                    for (int i = 0; i < k; i++)
                        free(w[i]);
                    free(w);
                    free(buf);
                    return -1;
                }
                p++;
            } else {
                buf[b++] = *p++;
            }
        }
        buf[b] = '\0';
        w[k++] = strdup(buf);
    }
    free(buf);
    *out = w;
    *n = k;
    return 0;
}

/* Print text (a line without newline) to f without breaking the line being
 * edited on a terminal. */
static void say(const session *s, FILE *f, const char *text)
{
#ifdef DMM_HAVE_LIBEDIT
    if (s->tty) {
        fprintf(stdout, "\r\033[K");
        fflush(stdout);
    }
#endif
    fprintf(f, "%s\n", text);
    fflush(f);
#ifdef DMM_HAVE_LIBEDIT
    if (s->tty)
        rl_forced_update_display();
#endif
}

/* Send request r (taken) and remember what to do with its reply. */
static void send_request(session *s, json_t *r, const char *op,
                         const char *path)
{
    json_int_t id = s->next_id++;
    char *op_copy = strdup(op), *path_copy = path ? strdup(path) : NULL;
    json_t *rid = json_object_get(r, "id");
    if (json_is_integer(rid))
        id = json_integer_value(rid);
    else
        json_object_set_new(r, "id", json_integer(id));
    char *text = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(r);
    if (s->npend == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        pending *p = realloc(s->pend, cap * sizeof *p);
        if (!p) {
            free(text);
            free(op_copy);
            free(path_copy);
            s->failed = true;
            return;
        }
        s->pend = p;
        s->cap = cap;
    }
    if (!text || send_all(s->c, text, strlen(text)) < 0 ||
        send_all(s->c, "\n", 1) < 0) {
        fprintf(stderr, "dmm ctl: cannot send: %s\n", strerror(errno));
        free(text);
        free(op_copy);
        free(path_copy);
        s->quit = s->failed = true;
        return;
    }
    free(text);
    s->pend[s->npend++] = (pending){id, op_copy, path_copy};
}

static void help_interactive(const session *s)
{
    say(s, stdout,
        "commands, as on the command line: status | pause | resume | "
        "snapshot | shutdown | step [N] | rate HZ|max | get PATH | set PATH "
        "VALUE | edit DELTA | feed input/NAME OUTPUTS | save FILE | load FILE "
        "| watch PATH... [--every K] | {raw JSON}; help; quit");
}

/* One command line typed or piped in. */
static void run_line(session *s, const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (!*line || *line == '#' || s->eof) /* nothing after quit */
        return;
    if (*line == '{') {
        json_t *r = json_arg("request", line);
        if (r && json_is_object(r)) {
            const char *op = json_string_value(json_object_get(r, "op"));
            send_request(s, r, op ? op : "raw", NULL);
        } else {
            json_decref(r);
            s->failed = true;
        }
        return;
    }
    char **w;
    int n;
    if (split_words(line, &w, &n) < 0) {
        say(s, stderr, "dmm ctl: unterminated quote");
        s->failed = true;
        return;
    }
    if (n == 0) {
        free(w);
        return;
    }
    const char *op = w[0];
    if (!strcmp(op, "quit") || !strcmp(op, "exit")) {
        s->eof = true; /* as at the end of the input: the replies due still
                          print */
    } else if (!strcmp(op, "help")) {
        help_interactive(s);
    } else if (!strcmp(op, "watch")) {
        json_t *r = json_object(), *paths = json_array();
        uint64_t every = 1;
        bool ok = true;
        for (int i = 1; i < n; i++) {
            const char *v;
            int m = dmm__opt_value(n, w, &i, "--every", &v);
            if (m < 0 || (m > 0 && !dmm__parse_count(v, 1, UINT32_MAX, &every)))
                ok = false;
            else if (m == 0)
                json_array_append_new(paths, json_string(w[i]));
        }
        if (!ok || json_array_size(paths) == 0) {
            say(s, stderr, "dmm ctl: watch PATH... [--every K]");
            json_decref(paths);
            json_decref(r);
            s->failed = true;
        } else {
            json_object_set_new(r, "op", json_string("subscribe"));
            json_object_set_new(r, "paths", paths);
            json_object_set_new(r, "every", json_integer((json_int_t)every));
            json_object_set_new(r, "changes", json_true());
            send_request(s, r, "watch", NULL);
        }
    } else {
        json_t *r = make_request(op, n - 1, w + 1, "ctl");
        if (r)
            send_request(s, r, op, n > 1 ? w[1] : NULL);
        else
            s->failed = true;
    }
    for (int i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

/* One line from the server: a reply to a pending request, or an event. */
static void server_line(session *s, const char *line)
{
    json_t *j = json_loads(line, 0, NULL);
    json_t *jid = j ? json_object_get(j, "id") : NULL;
    if (j && json_object_get(j, "ok")) {
        size_t k = 0;
        while (k < s->npend && !(json_is_integer(jid) &&
                                 s->pend[k].id == json_integer_value(jid)))
            k++;
        pending p = k < s->npend ? s->pend[k] : (pending){0, NULL, NULL};
        if (k < s->npend)
            s->pend[k] = s->pend[--s->npend];
        bool quiet = p.op && !strcmp(p.op, "watch");
#ifdef DMM_HAVE_LIBEDIT
        if (s->tty) {
            fprintf(stdout, "\r\033[K");
            fflush(stdout);
        }
#endif
        if (reply_status(j) != DMM_EXIT_OK) {
            s->failed = true;
        } else if (p.op && !strcmp(p.op, "get")) {
            if (print_get_reply(s->vc, p.path ? p.path : "", j) != 0)
                s->failed = true;
        } else if (!quiet) {
            printf("%s\n", line);
        }
        fflush(stdout);
#ifdef DMM_HAVE_LIBEDIT
        if (s->tty)
            rl_forced_update_display();
#endif
        free(p.op);
        free(p.path);
    } else {
        const char *ev = json_string_value(json_object_get(j, "event"));
        json_t *values = json_object_get(j, "values");
        if (ev && !strcmp(ev, "cycle") && json_is_object(values)) {
            long long t =
                (long long)json_integer_value(json_object_get(j, "step"));
            const char *key;
            json_t *v;
            json_object_foreach(values, key, v)
            {
                char *val = NULL;
                vv x;
                dmm_error err;
                if (s->vc && vv_from_json(s->vc, v, "", &x, &err) == 0) {
                    val = vv_to_string(s->vc, x);
                    vv_free(s->vc, x);
                }
                size_t need = strlen(key) + (val ? strlen(val) : 1) + 32;
                char *text = malloc(need);
                if (text) {
                    snprintf(text, need, "%lld %s %s", t, key, val ? val : "?");
                    say(s, stdout, text);
                }
                free(text);
                free(val);
            }
        } else {
            say(s, stdout, line);
        }
    }
    json_decref(j);
}

/* Append n bytes to *buf (*len) and hand each complete line to fn. */
static void take_lines(session *s, char **buf, size_t *len, const char *data,
                       size_t n, void (*fn)(session *, const char *))
{
    char *b = realloc(*buf, *len + n + 1);
    if (!b) {
        s->quit = s->failed = true;
        return;
    }
    memcpy(b + *len, data, n);
    *len += n;
    *buf = b;
    size_t start = 0;
    for (size_t i = 0; i < *len && !s->quit; i++)
        if (b[i] == '\n') {
            b[i] = '\0';
            fn(s, b + start);
            start = i + 1;
        }
    memmove(b, b + start, *len - start);
    *len -= start;
}

#ifdef DMM_HAVE_LIBEDIT
static void on_tty_line(char *line)
{
    session *s = tty_session;
    if (!line) {
        s->eof = true;
        return;
    }
    if (*line)
        add_history(line);
    run_line(s, line);
    free(line);
}
#endif

static int ctl_interactive(const char *hostport, const char *path,
                           const char *token)
{
    conn c = {.fd = -1};
    if (connect_to(hostport, path, &c.fd))
        return DMM_EXIT_INPUT;
    session s = {.c = &c, .vc = vv_ctx_new(NULL), .next_id = 1};
    int status = DMM_EXIT_OK;
    if (token) {
        json_t *h = json_object(), *reply = NULL;
        json_object_set_new(h, "op", json_string("hello"));
        json_object_set_new(h, "token", json_string(token));
        status =
            call(&c, h, 0, &reply) < 0 ? DMM_EXIT_INPUT : reply_status(reply);
        json_decref(reply);
        /* bytes after the hello reply are in c's buffer: keep them */
        if (status == DMM_EXIT_OK && c.pos < c.len)
            take_lines(&s, &s.acc, &s.alen, c.buf + c.pos, c.len - c.pos,
                       server_line);
    }
#ifdef DMM_HAVE_LIBEDIT
    s.tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (s.tty) {
        tty_session = &s;
        using_history();
        rl_callback_handler_install("dmm> ", on_tty_line);
    }
#endif
    char chunk[65536];
    /* After the input ends, wait for the replies still due. */
    while (status == DMM_EXIT_OK && !s.quit && !(s.eof && s.npend == 0)) {
        struct pollfd fds[2] = {
            {.fd = c.fd, .events = POLLIN},
            {.fd = s.eof ? -1 : STDIN_FILENO, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents) {
            ssize_t r = read(c.fd, chunk, sizeof chunk);
            if (r <= 0) {
                say(&s, stderr, "dmm ctl: the server closed the connection");
                s.failed = true;
                break;
            }
            take_lines(&s, &s.acc, &s.alen, chunk, (size_t)r, server_line);
        }
        if (fds[1].revents) {
#ifdef DMM_HAVE_LIBEDIT
            if (s.tty) {
                rl_callback_read_char();
                continue;
            }
#endif
            ssize_t r = read(STDIN_FILENO, chunk, sizeof chunk);
            if (r <= 0) {
                s.eof = true;
                if (s.ilen) /* a last line without newline */
                    take_lines(&s, &s.in, &s.ilen, "\n", 1, run_line);
            } else {
                take_lines(&s, &s.in, &s.ilen, chunk, (size_t)r, run_line);
            }
        }
    }
#ifdef DMM_HAVE_LIBEDIT
    if (s.tty) {
        rl_callback_handler_remove();
        putchar('\n');
    }
#endif
    for (size_t k = 0; k < s.npend; k++) {
        free(s.pend[k].op);
        free(s.pend[k].path);
    }
    free(s.pend);
    free(s.acc);
    free(s.in);
    free(c.line);
    close(c.fd);
    if (s.vc)
        vv_ctx_free(s.vc);
    fflush(stdout);
    return status != DMM_EXIT_OK ? status
           : s.failed            ? DMM_EXIT_INPUT
                                 : DMM_EXIT_OK;
}

int dmm__cmd_ctl(int argc, char **argv)
{
    const char *cmd = "ctl";
    const char *hostport = NULL, *path = NULL, *token = NULL;
    const char *token_file = NULL;
    uint64_t every = 1, count = 0;
    /* Options may come before or after OP; anything else is positional
     * (so "set PATH -0.5" keeps its negative value). */
    char **pos = calloc((size_t)argc, sizeof *pos);
    int npos = 0;
    if (!pos)
        return DMM_EXIT_INPUT;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int m = 0, bad = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            free(pos);
            dmm__print_help(stdout, cmd);
            return DMM_EXIT_OK;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--connect", &v))) {
            hostport = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--socket", &v))) {
            path = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--token", &v))) {
            token = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--token-file", &v))) {
            token_file = v;
        } else if ((m = dmm__opt_value(argc, argv, &i, "--every", &v))) {
            bad = m > 0 && !dmm__parse_count(v, 1, UINT32_MAX, &every);
        } else if ((m = dmm__opt_value(argc, argv, &i, "--count", &v))) {
            bad = m > 0 && !dmm__parse_count(v, 1, UINT64_MAX, &count);
        } else {
            pos[npos++] = argv[i];
        }
        if (m < 0 || bad) {
            free(pos);
            return dmm__usage_error(cmd, "%s needs a%s value", argv[i],
                                    bad ? " positive integer" : "");
        }
    }
    if (token && token_file) {
        free(pos);
        return dmm__usage_error(cmd, "give --token or --token-file, not both");
    }
    char *file_token = NULL;
    if (token_file &&
        !(token = file_token = dmm__read_token_file(cmd, token_file))) {
        free(pos);
        return DMM_EXIT_INPUT;
    }
    if (!token && getenv("DMM_TOKEN") && *getenv("DMM_TOKEN"))
        token = getenv("DMM_TOKEN");
    if (!hostport == !path) {
        free(file_token);
        free(pos);
        return dmm__usage_error(cmd, "give --connect HOST:PORT or --socket "
                                     "PATH");
    }
    if (npos == 0) {
        free(file_token);
        free(pos);
        return ctl_interactive(hostport, path, token);
    }
    int status = run_ctl(hostport, path, token, every, count, npos, pos);
    free(file_token);
    free(pos);
    return status;
}
