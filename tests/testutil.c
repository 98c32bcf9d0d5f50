// SPDX-License-Identifier: MIT
/*
 * Shared test helpers (see testutil.h). They use only public headers, so they
 * check the libraries from the outside.
 */
#include "testutil.h"

#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

void *tu_alloc_fn(void *ud, void *p, size_t old, size_t n)
{
    tu_alloc *a = ud;
    if (n == 0) {
        if (p) {
            __atomic_fetch_sub(&a->bytes, old, __ATOMIC_RELAXED);
            free(p);
        }
        return NULL;
    }
    long count = __atomic_add_fetch(&a->count, 1, __ATOMIC_RELAXED);
    long fail_at = __atomic_load_n(&a->fail_at, __ATOMIC_RELAXED);
    if (fail_at > 0 && count == fail_at)
        return NULL;
    void *q = realloc(p, n);
    if (q) {
        if (p)
            __atomic_fetch_sub(&a->bytes, old, __ATOMIC_RELAXED);
        __atomic_fetch_add(&a->bytes, n, __ATOMIC_RELAXED);
    }
    return q;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        } else {
            buf = nb;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

const char *tu_source_root(void)
{
    const char *r = getenv("DMM_SOURCE_ROOT");
    return r && *r ? r : ".";
}

char *tu_path(const char *rel)
{
    const char *root = tu_source_root();
    size_t n = strlen(root) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", root, rel);
    return p;
}

vv_label tu_label(vv_ctx *c, const char *s)
{
    vv_label l;
    int rc = vv_intern_cstr(c, s, &l);
    if (rc != 0)
        fail_msg("vv_intern_cstr(\"%s\"): %s", s, dmm_strerror(rc));
    return l;
}

vv tu_vv(vv_ctx *c, const char *json)
{
    vv v = VV_ZERO;
    dmm_error err;
    dmm_error_clear(&err);
    int rc = vv_parse(c, json, strlen(json), NULL, &v, &err);
    if (rc != 0) {
        char msg[1400];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("vv_parse(%s): %s (%s)", json, msg, dmm_errname(rc));
    }
    return v;
}

void tu_assert_vv_close(vv_ctx *c, vv got, vv want, double rel)
{
    if (vv_close(got, want, rel, 0.0))
        return;
    char *g = vv_to_string(c, got), *w = vv_to_string(c, want);
    print_error("V-values differ (rel %g)\n   got: %s\n  want: %s\n", rel,
                g ? g : "(out of memory)", w ? w : "(out of memory)");
    free(g);
    free(w);
    fail();
}

/* Recursion is bounded by the value's depth, which tests keep modest. */
static void check_canonical(vv_ctx *c, vv root, vv v, int depth)
{
    if (!isfinite(v.num)) {
        char *s = vv_to_string(c, root);
        fail_msg("non-finite scalar stored in %s", s ? s : "?");
    }
    if (v.map == NULL)
        return;
    size_t n = vv_nchildren(v), seen = 0;
    if (n == 0)
        fail_msg("empty child map stored (depth %d)", depth);
    vv_iter it;
    vv_label l;
    vv ch;
    vv_iter_init(&it, v);
    while (vv_iter_next(&it, &l, &ch)) {
        seen++;
        if (vv_is_zero(ch)) {
            char *s = vv_to_string(c, root);
            fail_msg("zero child \"%s\" stored in %s", vv_label_str(c, l, NULL),
                     s ? s : "?");
        }
        check_canonical(c, root, ch, depth + 1);
    }
    if (seen != n)
        fail_msg("vv_iter visited %zu children, vv_nchildren says %zu", seen,
                 n);
}

void tu_assert_canonical(vv_ctx *c, vv v)
{
    check_canonical(c, v, v, 0);
}

/* ---- random networks written with links ---------------------------------- */

uint64_t tu_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static unsigned pick(uint64_t *s, unsigned n)
{
    return (unsigned)(tu_rand(s) % n);
}

/* Weights whose sums round differently in different orders. */
static double weight(uint64_t *s)
{
    static const double w[] = {0.3,   -0.7, 1.0 / 3, 0.45,
                               -0.25, 0.9,  -0.11,   1.1};
    return w[pick(s, sizeof w / sizeof w[0])];
}

/* ":number" half the time (left out when plain). */
static const char *scalar(uint64_t *s, bool plain)
{
    bool on = pick(s, 2);
    return on && !plain ? "/:number" : "";
}

static void put_source(vv_buf *b, uint64_t *s, bool plain, bool input)
{
    unsigned kind = pick(s, input ? 8 : 7);
    const char *io = pick(s, 2) ? "x" : "y";
    switch (kind) {
    case 0: /* an output */
        tu_put(b, "identity/n%u/%s", pick(s, 3), io);
        break;
    case 1: /* part of an output */
        tu_put(b, "identity/n%u/x/%s", pick(s, 3), pick(s, 2) ? "a" : "b");
        break;
    case 2: /* all outputs of a neuron */
        tu_put(b, "identity/n%u", pick(s, 3));
        break;
    case 3: /* an output map that is a bare number */
        tu_put(b, "max-norm/m%u", pick(s, 2));
        break;
    case 4:
        tu_put(b, "tanh/t%u/%s", pick(s, 2), io);
        break;
    case 5: /* every neuron of a type */
        tu_put(b, "%s", pick(s, 2) ? "max-norm" : "tanh");
        break;
    case 6:
        tu_put(b, "output/o%u/x", pick(s, 2));
        break;
    default:
        tu_put(b, "input/in/signal");
        break;
    }
    tu_put(b, "%s", scalar(s, plain));
}

static void put_target(vv_buf *b, uint64_t *s)
{
    switch (pick(s, 4)) {
    case 0:
        tu_put(b, "identity/n%u/%s", pick(s, 3), pick(s, 2) ? "x" : "y");
        break;
    case 1:
        tu_put(b, "max-norm/m%u/in", pick(s, 2));
        break;
    case 2:
        tu_put(b, "tanh/t%u/%s", pick(s, 2), pick(s, 2) ? "x" : "y");
        break;
    default:
        tu_put(b, "output/o%u/x", pick(s, 2));
        break;
    }
}

char *tu_random_links_net(uint64_t seed, bool plain, bool input)
{
    uint64_t s = seed;
    vv_buf b = {0};
    tu_put(&b,
           "{\"dmm\": 1, \"seed\": %llu,\n"
           " \"matrix\": {\"accum\": {\"self\": {\"accum\": {\"accum\": "
           "{\"self\": {\"single\": 1}}}}}},\n"
           " \"outputs\": {\"identity\": {",
           (unsigned long long)seed);
    for (unsigned k = 0; k < 3; k++) {
        double w[4]; /* drawn in order: arguments are evaluated in any */
        for (int i = 0; i < 4; i++)
            w[i] = weight(&s);
        tu_put(&b,
               "%s\"n%u\": {\"x\": {\"a\": %.17g, \"b\": {\":number\": %.17g, "
               "\"c\": %.17g}}, \"y\": %.17g}",
               k ? ", " : "", k, w[0], w[1], w[2], w[3]);
    }
    /* A neuron that edits W: its output is a delta of W, kept by its own
     * row, whose weights sit at scalar parts too. */
    bool editor = pick(&s, 2);
    if (editor) {
        unsigned o = pick(&s, 2), m = pick(&s, 2), i = pick(&s, 3);
        tu_put(&b,
               ", \"w\": {\"x\": {\"output\": {\"o%u\": {\"x\": {"
               "\"max-norm\": {\"m%u\": {\":number\": 0.01}}, \"identity\": "
               "{\"n%u\": {\"x\": {\":number\": -0.02, \"a\": 0.03}}}}}}}}",
               o, m, i);
    }
    tu_put(&b, "}},\n \"links\": [");
    /* Identity neurons that keep their outputs, so values live on. */
    for (unsigned k = 0; k < 3; k++)
        if (pick(&s, 2))
            tu_put(&b, "[\"identity/n%u/x\", \"identity/n%u/x%s\", 1],\n  ", k,
                   k, scalar(&s, plain));
    unsigned n = 6 + pick(&s, 9);
    for (unsigned k = 0; k < n; k++) {
        tu_put(&b, "%s[\"", k ? ",\n  " : "");
        put_target(&b, &s);
        tu_put(&b, "\", \"");
        put_source(&b, &s, plain, input);
        tu_put(&b, "\", %.17g]", weight(&s));
    }
    if (editor)
        tu_put(&b,
               ",\n  [\"identity/w/x\", \"identity/w/x%s\", 1],\n"
               "  [\"accum/self/delta\", \"identity/w/x\", 1]",
               scalar(&s, plain));
    if (input)
        tu_put(&b,
               ",\n  [\"input/in/dummy\", "
               "\"accum/self/single/accum/self%s\", 1]",
               scalar(&s, plain));
    tu_put(&b, "]}\n");
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

/* ---- running the dmm binary --------------------------------------------- */

void tu_proc_free(tu_proc *p)
{
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

char *tu_path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

char *tu_write_in(const char *dir, const char *name, const char *text)
{
    char *p = tu_path_in(dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return p;
}

void tu_run_in(const char *exe, const char *dir, tu_proc *p, const char *in,
               const char *const *args)
{
    size_t n = 0;
    while (args[n])
        n++;
    char **argv = calloc(n + 2, sizeof *argv);
    assert_non_null(argv);
    argv[0] = (char *)exe;
    for (size_t i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    char *out = tu_path_in(dir, "stdout.txt");
    char *err = tu_path_in(dir, "stderr.txt");
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY,
                                     0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    assert_int_equal(rc, 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    p->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    p->out = tu_read_file(out, NULL);
    p->err = tu_read_file(err, NULL);
    assert_non_null(p->out);
    assert_non_null(p->err);
    free(out);
    free(err);
}

void tu_expect_code(const tu_proc *p, int code)
{
    if (p->code != code)
        print_error("exit code %d, expected %d; stdout:\n%s\nstderr:\n%s\n",
                    p->code, code, p->out, p->err);
    assert_int_equal(p->code, code);
}
