// SPDX-License-Identifier: MIT
/*
 * One member evaluated to one line. A network member is the base network's
 * document with the member's keys written into it (seed, params, weights)
 * and its variant's retypes, loaded into a context of its own, edited with
 * the variant's delta, run for the measure's cycles and read at its paths.
 * An experiment member is the running dmm binary itself, spawned as
 * `dmm experiment NAME --KEY VALUE...`: every option dmm experiment has is
 * then a sweep key, without a second copy of its parser. Nothing here
 * depends on which thread or rank evaluates, so a member's line is the same
 * everywhere apart from "seconds".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dmm.h"
#include "sweep_internal.h"

extern char **environ;

enum { MAX_WRITE_DEPTH = 64, MAX_CHILD_OUTPUT = 1 << 24 };

double dmm__sweep_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int write_at(vv_buf *b, const json_t *j, int depth)
{
    if (depth > MAX_WRITE_DEPTH)
        return vv_buf_append(b, "null", 4);
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        int first = 1, rc = vv_buf_append(b, "{", 1);
        json_object_foreach((json_t *)j, k, v)
        {
            if (!first)
                rc |= vv_buf_append(b, ", ", 2);
            first = 0;
            rc |= vv_buf_json_string(b, k, strlen(k));
            rc |= vv_buf_append(b, ": ", 2);
            rc |= write_at(b, v, depth + 1);
        }
        return rc | vv_buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        int rc = vv_buf_append(b, "[", 1);
        json_array_foreach(j, i, v)
        {
            if (i)
                rc |= vv_buf_append(b, ", ", 2);
            rc |= write_at(b, v, depth + 1);
        }
        return rc | vv_buf_append(b, "]", 1);
    }
    case JSON_STRING:
        return vv_buf_json_string(b, json_string_value(j),
                                  json_string_length(j));
    case JSON_INTEGER:
        return vv_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    case JSON_REAL:
        return vv_buf_number(b, json_real_value(j));
    case JSON_TRUE:
        return vv_buf_append(b, "true", 4);
    case JSON_FALSE:
        return vv_buf_append(b, "false", 5);
    default:
        return vv_buf_append(b, "null", 4);
    }
}

int dmm__sweep_write(vv_buf *b, const json_t *j)
{
    return write_at(b, j, 0);
}

char *dmm_sweep_json_text(const json_t *j)
{
    vv_buf b = {0};
    if (write_at(&b, j, 0) || vv_buf_append(&b, "", 1)) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* A failed member's reason, printf-style, into msg (size bytes). */
typedef struct why {
    char msg[600];
} why;

static int fail(why *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(why *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- network members --------------------------------------------------- */

/* Split a key's path into labels (a backslash escapes '/' or itself), into
 * parts[] (each a new string in one buffer, *store, free()). */
static int split_path(const char *s, char **parts, size_t max, size_t *n,
                      char **store)
{
    char *buf = malloc(strlen(s) + 1), *o = buf;
    if (!buf)
        return -1;
    *store = buf;
    *n = 0;
    parts[(*n)++] = o;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && (p[1] == '/' || p[1] == '\\')) {
            *o++ = *++p;
        } else if (*p == '/') {
            *o++ = '\0';
            if (*n == max)
                return -1;
            parts[(*n)++] = o;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    for (size_t i = 0; i < *n; i++)
        if (!*parts[i])
            return -1;
    return 0;
}

/* The object at doc[parts[0]]...[parts[n-1]], made when missing; NULL if
 * something on the way is not an object. */
static json_t *dig(json_t *doc, char **parts, size_t n)
{
    json_t *o = doc;
    for (size_t i = 0; i < n && o; i++) {
        json_t *c = json_object_get(o, parts[i]);
        if (!c) {
            c = json_object();
            if (json_object_set_new(o, parts[i], c))
                return NULL;
        }
        o = json_is_object(c) ? c : NULL;
    }
    return o;
}

/* Write one key = value into the network document. */
static int set_key(json_t *doc, const char *key, const json_t *value, why *w)
{
    if (!strcmp(key, "seed"))
        return json_object_set(doc, "seed", (json_t *)value)
                   ? fail(w, "out of memory")
                   : 0;
    char *parts[8], *store = NULL;
    size_t n;
    int rc = 0;
    if (split_path(key, parts, 8, &n, &store)) {
        free(store);
        return fail(w, "key \"%s\": bad path", key);
    }
    double x = json_number_value(value);
    if (n == 4 && !strcmp(parts[0], "params")) {
        json_t *o = dig(doc, parts, 3); /* "params"/type/name */
        if (!o || json_object_set_new(o, parts[3], json_real(x)))
            rc = fail(w, "key \"%s\": params is not an object there", key);
    } else if (n == 7 && !strcmp(parts[0], "w")) {
        parts[0] = "matrix";
        json_t *o = dig(doc, parts, 6);
        json_t *old = o ? json_object_get(o, parts[6]) : NULL;
        if (!o)
            rc = fail(w,
                      "key \"%s\": the matrix has a number above that "
                      "weight",
                      key);
        else if (json_is_object(old)
                     ? json_object_set_new(old, ":number", json_real(x))
                     : json_object_set_new(o, parts[6], json_real(x)))
            rc = fail(w, "out of memory");
    } else {
        rc = fail(w, "key \"%s\" is not seed, params/... or w/...", key);
    }
    free(store);
    return rc;
}

/* Rename the member t/n of obj[t][n] (obj may be NULL) to nt/n. */
static int move_neuron(json_t *obj, const char *t, const char *n,
                       const char *nt, why *w)
{
    json_t *g = obj ? json_object_get(obj, t) : NULL;
    json_t *v = g ? json_object_get(g, n) : NULL;
    if (!v)
        return 0;
    json_incref(v);
    json_object_del(g, n);
    if (json_object_size(g) == 0)
        json_object_del(obj, t);
    json_t *d = json_object_get(obj, nt);
    if (!d) {
        d = json_object();
        json_object_set_new(obj, nt, d);
    }
    if (!json_is_object(d) || json_object_get(d, n)) {
        json_decref(v);
        return fail(w, "retype: %s/%s already exists", nt, n);
    }
    return json_object_set_new(d, n, v) ? fail(w, "out of memory") : 0;
}

/* Retype neuron t/n as nt everywhere the document names it. */
static int retype(json_t *doc, const char *key, const char *nt, why *w)
{
    char t[256], prefix[600], repl[600];
    const char *sl = strchr(key, '/');
    snprintf(t, sizeof t, "%.*s", (int)(sl - key), key);
    const char *n = sl + 1;
    json_t *m = json_object_get(doc, "matrix");
    if (move_neuron(m, t, n, nt, w) ||
        move_neuron(json_object_get(doc, "outputs"), t, n, nt, w) ||
        move_neuron(json_object_get(doc, "params"), t, n, nt, w))
        return -1;
    /* rows: matrix[f][nf][i] names its sources at [t][n] */
    const char *f, *nf, *i;
    json_t *fv, *nfv, *row;
    if (json_is_object(m))
        json_object_foreach(m, f, fv)
        {
            if (json_is_object(fv))
                json_object_foreach(fv, nf, nfv)
                {
                    if (json_is_object(nfv))
                        json_object_foreach(nfv, i, row)
                        {
                            if (json_is_object(row) &&
                                move_neuron(row, t, n, nt, w))
                                return -1;
                        }
                }
        }
    /* paths in "self" and "links" */
    snprintf(prefix, sizeof prefix, "%s/%s/", t, n);
    snprintf(repl, sizeof repl, "%s/%s/", nt, n);
    size_t plen = strlen(prefix);
    json_t *self = json_object_get(doc, "self");
    if (json_is_string(self) &&
        !strncmp(json_string_value(self), prefix, plen)) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s%s", repl, json_string_value(self) + plen);
        json_object_set_new(doc, "self", json_string(buf));
    }
    json_t *links = json_object_get(doc, "links"), *l;
    size_t li;
    if (json_is_array(links))
        json_array_foreach(links, li, l)
        {
            for (size_t k = 0; k < 2 && json_is_array(l); k++) {
                json_t *p = json_array_get(l, k);
                if (json_is_string(p) &&
                    !strncmp(json_string_value(p), prefix, plen)) {
                    char buf[1024];
                    snprintf(buf, sizeof buf, "%s%s", repl,
                             json_string_value(p) + plen);
                    json_array_set_new(l, k, json_string(buf));
                }
            }
        }
    return 0;
}

/* The value at a text path of Y (zero when nothing is stored there). */
static int read_path(dmm_net *net, const char *path, vv *out, why *w)
{
    vv_label labels[64];
    size_t n;
    bool scalar; /* a last ":number": only the scalar part, as live get */
    dmm_error e;
    dmm_error_clear(&e);
    int rc = dmm_path_lookup(dmm_net_vctx(net), path, strlen(path), labels, 64,
                             &n, &scalar, &e);
    if (rc == DMM_E_NOTFOUND) {
        *out = VV_ZERO;
        return 0;
    }
    if (rc)
        return fail(w, "measure path \"%s\": %s", path, e.text);
    if ((rc = dmm_net_outputs_build(net, &e)))
        return fail(w, "measure path \"%s\": %s", path, e.text);
    vv at = vv_get(dmm_net_outputs(net), labels, n);
    *out = scalar ? vv_number(at.num) : at;
    return 0;
}

static json_t *eval_network(const dmm_sweep *s, const json_t *member, why *w)
{
    json_t *doc = NULL, *result = NULL;
    char *text = NULL, **hist = NULL;
    vv_ctx *vc = NULL;
    dmm_registry *reg = NULL;
    dmm_net *net = NULL;
    dmm_error e;
    dmm_error_clear(&e);
    const json_t *variant = NULL;
    const json_t *vname = json_object_get(member, "variant");
    if (vname) {
        size_t i;
        json_t *v;
        json_array_foreach(s->variants, i, v)
        {
            if (json_equal(json_object_get(v, "name"), (json_t *)vname))
                variant = v;
        }
        if (!variant) {
            fail(w, "no variant named %s", json_string_value(vname));
            goto done;
        }
    }
    doc = vv_json_load(s->net_text, s->net_len, s->network, &e);
    if (!doc) {
        fail(w, "%s", e.text);
        goto done;
    }
    const char *k;
    json_t *v;
    const json_t *rt = variant ? json_object_get(variant, "retype") : NULL;
    if (rt)
        json_object_foreach((json_t *)rt, k, v)
        {
            if (retype(doc, k, json_string_value(v), w))
                goto done;
        }
    const json_t *vp = variant ? json_object_get(variant, "params") : NULL;
    if (vp)
        json_object_foreach((json_t *)vp, k, v)
        {
            if (set_key(doc, k, v, w))
                goto done;
        }
    json_object_foreach((json_t *)member, k, v)
    {
        if (strcmp(k, "index") && strcmp(k, "variant") && strcmp(k, "id") &&
            set_key(doc, k, v, w))
            goto done;
    }
    text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    vc = vv_ctx_new(NULL);
    reg = vc ? dmm_registry_new(vc) : NULL;
    if (!text || !reg || dmm_registry_add_builtins(reg)) {
        fail(w, "out of memory");
        goto done;
    }
    char errtext[1200];
    if (dmm_net_load_text(vc, reg, text, strlen(text), s->network, &net, &e)) {
        dmm_error_format(&e, errtext, sizeof errtext);
        fail(w, "the member's network: %s", errtext);
        goto done;
    }
    const json_t *delta = variant ? json_object_get(variant, "delta") : NULL;
    if (delta) {
        vv d = VV_ZERO;
        int bad = vv_from_json(vc, delta, "/delta", &d, &e);
        if (!bad) {
            bad = dmm_net_edit(net, d, &e);
            vv_free(vc, d);
        }
        if (bad) {
            fail(w, "variant %s: delta: %s: %s", json_string_value(vname),
                 e.path, e.text);
            goto done;
        }
    }
    const char *period_path =
        s->measure == DMM__MEASURE_PERIOD ? json_string_value(s->paths) : NULL;
    if (period_path && !(hist = calloc(s->steps + 1, sizeof *hist))) {
        fail(w, "out of memory");
        goto done;
    }
    for (uint64_t t = 1; t <= s->steps; t++) {
        if (dmm_net_step(net, &e)) {
            fail(w, "cycle %" PRIu64 ": %s: %s", t, e.path, e.text);
            goto done;
        }
        if (period_path) {
            vv x;
            if (dmm_net_outputs_build(net, &e) ||
                read_path(net, period_path, &x, w)) {
                if (!w->msg[0])
                    fail(w, "out of memory");
                goto done;
            }
            if (!(hist[t] = vv_to_string(vc, x))) {
                fail(w, "out of memory");
                goto done;
            }
        }
    }
    if (dmm_net_outputs_build(net, &e)) {
        fail(w, "out of memory");
        goto done;
    }
    result = json_object();
    if (!result)
        goto oom;
    if (s->measure == DMM__MEASURE_PATHS) {
        size_t i;
        json_t *p;
        json_array_foreach(s->paths, i, p)
        {
            vv x;
            if (read_path(net, json_string_value(p), &x, w))
                goto done;
            json_t *j = vv_to_json(vc, x);
            if (!j || json_object_set_new(result, json_string_value(p), j))
                goto oom;
        }
    } else if (s->measure == DMM__MEASURE_SCORE) {
        vv x;
        if (read_path(net, json_string_value(s->paths), &x, w))
            goto done;
        if (json_object_set_new(result, "score", json_real(x.num)))
            goto oom;
    } else {
        /* The smallest p that repeats over the second half of the run. */
        uint64_t half = s->steps / 2, found = 0;
        for (uint64_t p = 1; p <= half && !found; p++) {
            int ok = 1;
            for (uint64_t t = half + 1; t <= s->steps && ok; t++)
                ok = t > p && !strcmp(hist[t], hist[t - p]);
            if (ok)
                found = p;
        }
        if (json_object_set_new(result, "period",
                                json_integer((json_int_t)found)))
            goto oom;
    }
    goto done;
oom:
    fail(w, "out of memory");
done:
    if (w->msg[0]) {
        json_decref(result);
        result = NULL;
    }
    if (hist) {
        for (uint64_t t = 0; t <= s->steps; t++)
            free(hist[t]);
        free(hist);
    }
    dmm_net_free(net);
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    free(text);
    json_decref(doc);
    return result;
}

/* ---- experiment members ------------------------------------------------ */

/* argv of the child: exe experiment NAME --key value ... (strings in store). */
typedef struct args {
    char **v;
    size_t n, cap;
} args;

static int args_push(args *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        char **nv = realloc(a->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        a->v = nv;
        a->cap = cap;
    }
    if (!(a->v[a->n] = strdup(s)))
        return -1;
    a->v[++a->n] = NULL;
    return 0;
}

static void args_free(args *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
}

static int push_option(args *a, const char *k, const json_t *v)
{
    char opt[300], val[64];
    snprintf(opt, sizeof opt, "--%s", k);
    if (json_is_string(v))
        return args_push(a, opt) || args_push(a, json_string_value(v));
    double x = json_number_value(v);
    if (x == floor(x) && fabs(x) < 9007199254740992.0)
        snprintf(val, sizeof val, "%.0f", x);
    else {
        vv_buf b = {0};
        if (vv_buf_number(&b, x))
            return -1;
        snprintf(val, sizeof val, "%s", b.data);
        free(b.data);
    }
    return args_push(a, opt) || args_push(a, val);
}

/* Is k set by a later layer (variant params, then the member)? */
static int overridden(const json_t *later1, const json_t *later2, const char *k)
{
    return (later1 && json_object_get(later1, k)) ||
           (later2 && json_object_get(later2, k));
}

static json_t *eval_experiment(const dmm_sweep *s, const char *exe,
                               const json_t *member, why *w)
{
    args a = {0};
    json_t *result = NULL;
    const json_t *variant = NULL,
                 *vname =
                     s->variants ? json_object_get(member, "variant") : NULL;
    if (vname) {
        size_t i;
        json_t *v;
        json_array_foreach(s->variants, i, v)
        {
            if (json_equal(json_object_get(v, "name"), (json_t *)vname))
                variant = v;
        }
        if (!variant) {
            fail(w, "no variant named %s", json_string_value(vname));
            return NULL;
        }
    }
    const json_t *vp = variant ? json_object_get(variant, "params") : NULL;
    json_t *own = json_object(); /* the member's keys that are options */
    const char *k;
    json_t *v;
    if (!own || args_push(&a, exe) || args_push(&a, "experiment") ||
        args_push(&a, s->experiment))
        goto oom;
    json_object_foreach((json_t *)member, k, v)
    {
        if (strcmp(k, "index") && strcmp(k, "id") &&
            (strcmp(k, "variant") || !s->variants))
            json_object_set(own, k, v);
    }
    if (s->options)
        json_object_foreach((json_t *)s->options, k, v)
        {
            if (!overridden(vp, own, k) && push_option(&a, k, v))
                goto oom;
        }
    if (vp)
        json_object_foreach((json_t *)vp, k, v)
        {
            if (!overridden(NULL, own, k) && push_option(&a, k, v))
                goto oom;
        }
    json_object_foreach(own, k, v)
    {
        if (push_option(&a, k, v))
            goto oom;
    }

    int out[2] = {-1, -1};
    const char *tmp = getenv("TMPDIR");
    char errbuf[4096];
    snprintf(errbuf, sizeof errbuf, "%s/dmm-sweep-err-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    int errfd = mkostemp(errbuf, O_CLOEXEC);
    if (errfd >= 0)
        unlink(errbuf);
    if (errfd < 0 || pipe2(out, O_CLOEXEC)) {
        fail(w, "cannot make a pipe for the experiment: %s", strerror(errno));
        if (errfd >= 0)
            close(errfd);
        goto done;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errfd, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, a.v, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc) {
        close(out[0]);
        close(errfd);
        fail(w, "cannot run %s: %s", exe, strerror(rc));
        goto done;
    }
    vv_buf b = {0};
    char chunk[65536];
    ssize_t got;
    int toolong = 0;
    while ((got = read(out[0], chunk, sizeof chunk)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (b.len + (size_t)got > MAX_CHILD_OUTPUT)
            toolong = 1;
        else if (vv_buf_append(&b, chunk, (size_t)got))
            toolong = 1;
    }
    close(out[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    char emsg[400] = "";
    if (lseek(errfd, 0, SEEK_SET) == 0) {
        ssize_t n = read(errfd, emsg, sizeof emsg - 1);
        emsg[n > 0 ? n : 0] = '\0';
        emsg[strcspn(emsg, "\n")] = '\0';
    }
    close(errfd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (WIFEXITED(st))
            fail(w, "dmm experiment exited with %d: %s", WEXITSTATUS(st), emsg);
        else
            fail(w, "dmm experiment died of signal %d", WTERMSIG(st));
    } else if (toolong || !b.data) {
        fail(w, "dmm experiment printed %s", toolong ? "too much" : "nothing");
    } else {
        /* its last line */
        while (b.len && b.data[b.len - 1] == '\n')
            b.data[--b.len] = '\0';
        char *line = strrchr(b.data, '\n');
        line = line ? line + 1 : b.data;
        json_error_t je;
        result = json_loads(line, 0, &je);
        if (!json_is_object(result)) {
            json_decref(result);
            result = NULL;
            fail(w, "dmm experiment printed no JSON object");
        } else {
            /* timings differ run to run: not part of the result */
            void *tmpit;
            json_object_foreach_safe(result, tmpit, k, v)
            {
                size_t kl = strlen(k);
                if (kl >= 7 && !strcmp(k + kl - 7, "seconds"))
                    json_object_del(result, k);
            }
        }
    }
    free(b.data);
    goto done;
oom:
    fail(w, "out of memory");
done:
    json_decref(own);
    args_free(&a);
    return result;
}

char *dmm_sweep_eval(const dmm_sweep *s, const char *exe, const json_t *member)
{
    why w = {""};
    double t0 = dmm__sweep_now();
    json_t *result = s->kind == DMM__SWEEP_NETWORK
                         ? eval_network(s, member, &w)
                         : eval_experiment(s, exe, member, &w);
    double secs = dmm__sweep_now() - t0;
    vv_buf b = {0};
    int rc =
        vv_buf_append(&b, "{\"member\": ", 11) | dmm__sweep_write(&b, member);
    if (result) {
        rc |= vv_buf_append(&b, ", \"result\": ", 12) |
              dmm__sweep_write(&b, result);
    } else {
        if (!w.msg[0])
            snprintf(w.msg, sizeof w.msg, "failed");
        rc |= vv_buf_append(&b, ", \"error\": ", 11) |
              vv_buf_json_string(&b, w.msg, strlen(w.msg));
    }
    rc |= vv_buf_printf(&b, ", \"seconds\": %.3f}", secs);
    json_decref(result);
    if (rc) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
