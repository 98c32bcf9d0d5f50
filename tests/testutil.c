// SPDX-License-Identifier: MIT
/*
 * Shared test helpers (see testutil.h). They use only public headers, so they
 * check the libraries from the outside.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
