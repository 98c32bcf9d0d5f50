// SPDX-License-Identifier: MIT
/*
 * Frames on a common layout (dmm_frames_build) and their colours. A layout
 * is the sorted set of row keys and of column keys (each key h labels) used
 * by any frame; every number of every frame is then put at (row, column)
 * found by binary search. Each input is checked first (one depth for every
 * number, finite numbers), so a bad value is refused with its path before
 * anything is allocated for pixels.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_render.h"

enum { KEY_MAX = 4 }; /* labels in a row or column key: depth ≤ 8 */

/* A key: up to KEY_MAX labels with their strings (borrowed from vc's label
 * table, which lives as long as vc), so comparison needs no context. */
typedef struct key {
    const char *s[KEY_MAX];
    size_t len[KEY_MAX];
    int n;
} key;

/* Label order: natural, runs of digits compared as numbers ("update-2"
 * before "update-10", "2" before "10"), the rest by bytes. */
static int cmp_str(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i = 0, j = 0;
    while (i < na && j < nb) {
        bool da = a[i] >= '0' && a[i] <= '9', db = b[j] >= '0' && b[j] <= '9';
        if (da && db) {
            size_t i0 = i, j0 = j;
            while (i0 < na && a[i0] == '0')
                i0++;
            while (j0 < nb && b[j0] == '0')
                j0++;
            size_t i1 = i0, j1 = j0;
            while (i1 < na && a[i1] >= '0' && a[i1] <= '9')
                i1++;
            while (j1 < nb && b[j1] >= '0' && b[j1] <= '9')
                j1++;
            if (i1 - i0 != j1 - j0)
                return i1 - i0 < j1 - j0 ? -1 : 1;
            int c = memcmp(a + i0, b + j0, i1 - i0);
            if (c)
                return c;
            if (i1 - i != j1 - j) /* "02" after "2" */
                return i1 - i < j1 - j ? -1 : 1;
            i = i1;
            j = j1;
        } else {
            if (a[i] != b[j])
                return (unsigned char)a[i] < (unsigned char)b[j] ? -1 : 1;
            i++;
            j++;
        }
    }
    return (na - i > nb - j) - (na - i < nb - j);
}

static int cmp_key(const void *pa, const void *pb)
{
    const key *a = pa, *b = pb;
    for (int k = 0; k < a->n; k++) {
        int c = cmp_str(a->s[k], a->len[k], b->s[k], b->len[k]);
        if (c)
            return c;
    }
    return 0;
}

typedef struct keyset {
    key *k;
    size_t n, cap;
} keyset;

static int keyset_push(keyset *s, const key *k)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        key *p = realloc(s->k, cap * sizeof *p);
        if (!p)
            return DMM_E_NOMEM;
        s->k = p;
        s->cap = cap;
    }
    s->k[s->n++] = *k;
    return 0;
}

static void keyset_close(keyset *s)
{
    if (!s->n)
        return;
    qsort(s->k, s->n, sizeof *s->k, cmp_key);
    size_t w = 1;
    for (size_t r = 1; r < s->n; r++)
        if (cmp_key(&s->k[r], &s->k[w - 1]))
            s->k[w++] = s->k[r];
    s->n = w;
}

static size_t keyset_index(const keyset *s, const key *k)
{
    const key *p = bsearch(k, s->k, s->n, sizeof *k, cmp_key);
    return (size_t)(p - s->k); /* every key was added in the first pass */
}

/* State of one walk over the numbers of all frames. */
typedef struct walk {
    vv_ctx *vc;
    const char *what;
    dmm_error *err;
    size_t frame;
    int depth; /* 0 until the first number */
    size_t first_frame;
    int pass; /* 0: check and collect keys, 1: fill */
    keyset rows, cols, chans;
    dmm_frames *out;
    int rc;
} walk;

/* "/a/b" for a path, into buf. */
static void path_text(vv_ctx *vc, const vv_label *path, int depth, char *buf,
                      size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int k = 0; k < depth && at + 1 < size; k++)
        at += (size_t)snprintf(buf + at, size - at, "/%s",
                               vv_label_str(vc, path[k], NULL));
    if (depth == 0)
        snprintf(buf, size, "/");
}

static int bad(walk *w, const vv_label *path, int depth, const char *why)
{
    char p[400], at[480];
    path_text(w->vc, path, depth, p, sizeof p);
    snprintf(at, sizeof at, "frame %zu: %s", w->frame + 1, p);
    return dmm_error_set(w->err, DMM_E_INVAL, at, "%s: %s", w->what, why);
}

static key make_key(vv_ctx *vc, const vv_label *l, int n)
{
    key k = {.n = n};
    for (int q = 0; q < n; q++)
        k.s[q] = vv_label_str(vc, l[q], &k.len[q]);
    return k;
}

static int on_leaf(const vv_label *path, int depth, double x, void *ud)
{
    walk *w = ud;
    if (w->pass == 0) {
        char why[200];
        if (!isfinite(x)) {
            snprintf(why, sizeof why, "the number %g is not finite", x);
            return bad(w, path, depth, why);
        }
        if (w->depth == 0) {
            if (depth == 1 || depth == 0 || depth > 2 * KEY_MAX ||
                (depth % 2 && depth != 3)) {
                snprintf(why, sizeof why,
                         "not a matrix: its numbers sit %d levels deep, a "
                         "matrix has them at depth 2 (3 for channels of "
                         "images, 6 for W, any even depth up to %d)",
                         depth, 2 * KEY_MAX);
                return bad(w, path, depth, why);
            }
            w->depth = depth;
            w->first_frame = w->frame;
        } else if (depth != w->depth) {
            snprintf(why, sizeof why,
                     "a ragged matrix: this number is %d levels deep, the "
                     "first one (frame %zu) %d",
                     depth, w->first_frame + 1, w->depth);
            return bad(w, path, depth, why);
        }
    }
    int h = depth == 3 ? 1 : depth / 2;
    const vv_label *rl = depth == 3 ? path + 1 : path;
    key rk = make_key(w->vc, rl, h), ck = make_key(w->vc, rl + h, h);
    key chk = depth == 3 ? make_key(w->vc, path, 1) : (key){.n = 0};
    if (w->pass == 0) {
        int rc;
        if ((rc = keyset_push(&w->rows, &rk)) ||
            (rc = keyset_push(&w->cols, &ck)) ||
            (depth == 3 && (rc = keyset_push(&w->chans, &chk))))
            return dmm_error_set(w->err, rc, "", "%s: %s", w->what,
                                 dmm_strerror(rc));
        return 0;
    }
    dmm_frames *o = w->out;
    size_t i = keyset_index(&w->rows, &rk), j = keyset_index(&w->cols, &ck);
    size_t c = depth == 3 ? keyset_index(&w->chans, &chk) : 0;
    o->px[((w->frame * o->rows + i) * o->cols + j) * o->channels + c] = x;
    return 0;
}

/* The integer of a one-label key "0", "17", ...; false if it is not one. */
static bool key_integer(const key *k, size_t *out)
{
    if (k->n != 1 || k->len[0] == 0 || k->len[0] > 9 ||
        (k->len[0] > 1 && k->s[0][0] == '0'))
        return false;
    size_t v = 0;
    for (size_t q = 0; q < k->len[0]; q++) {
        if (k->s[0][q] < '0' || k->s[0][q] > '9')
            return false;
        v = v * 10 + (size_t)(k->s[0][q] - '0');
    }
    *out = v;
    return true;
}

/*
 * An image's rows (columns) are 0 .. n-1 even when some are absent from
 * every frame: canonical form drops a row of zeros, and the picture must not
 * lose it. So a closed set of integer labels becomes 0 .. its largest.
 */
static int fill_integers(vv_ctx *vc, keyset *s, const char *what,
                         dmm_error *err)
{
    size_t max = 0, v;
    for (size_t q = 0; q < s->n; q++) {
        if (!key_integer(&s->k[q], &v))
            return 0;
        max = v > max ? v : max;
    }
    if (!s->n || max + 1 == s->n)
        return 0;
    if (max >= DMM_RENDER_SIDE_MAX)
        return dmm_error_set(err, DMM_E_LIMIT, "",
                             "%s: label %zu is past the %d rows or columns a "
                             "picture has",
                             what, max, DMM_RENDER_SIDE_MAX);
    keyset all = {0};
    for (size_t q = 0; q <= max; q++) {
        char t[24];
        vv_label l;
        snprintf(t, sizeof t, "%zu", q);
        key k;
        int rc = vv_intern_cstr(vc, t, &l);
        if (!rc) {
            k = make_key(vc, &l, 1);
            rc = keyset_push(&all, &k);
        }
        if (rc) {
            free(all.k);
            return dmm_error_set(err, rc, "", "%s: %s", what, dmm_strerror(rc));
        }
    }
    free(s->k);
    *s = all;
    return 0;
}

int dmm_frames_build(vv_ctx *vc, const vv *values, size_t n, const char *what,
                     dmm_frames *out, dmm_error *err)
{
    walk w = {.vc = vc, .what = what, .err = err};
    int rc = 0;
    for (w.frame = 0; w.frame < n && !rc; w.frame++)
        rc = vv_foreach_leaf(values[w.frame], on_leaf, &w);
    if (rc)
        goto done;
    if (w.depth == 0) {
        rc = dmm_error_set(err, DMM_E_INVAL, "",
                           "%s: no matrix in any of the %zu frames (the "
                           "value is absent or zero)",
                           what, n);
        goto done;
    }
    keyset_close(&w.rows);
    keyset_close(&w.cols);
    keyset_close(&w.chans);
    if ((rc = fill_integers(vc, &w.rows, what, err)) ||
        (rc = fill_integers(vc, &w.cols, what, err)))
        goto done;
    size_t ch = w.depth == 3 ? w.chans.n : 1;
    if (w.depth == 3) {
        static const char *const rgb[3] = {"0", "1", "2"};
        bool ok = ch == 1 || ch == 3;
        for (size_t k = 0; ok && ch == 3 && k < 3; k++)
            ok = w.chans.k[k].len[0] == 1 && w.chans.k[k].s[0][0] == rgb[k][0];
        if (!ok) {
            rc = dmm_error_set(err, DMM_E_INVAL, "",
                               "%s: a value 3 levels deep is a stack of "
                               "images and renders with 1 channel or 3 "
                               "(labelled 0, 1, 2: red, green, blue); it has "
                               "%zu",
                               what, ch);
            goto done;
        }
    }
    if (w.rows.n > DMM_RENDER_SIDE_MAX || w.cols.n > DMM_RENDER_SIDE_MAX ||
        n * ch > DMM_RENDER_VALUES_MAX / (w.rows.n * w.cols.n)) {
        rc = dmm_error_set(err, DMM_E_LIMIT, "",
                           "%s: %zu frames of %zu x %zu x %zu are more than "
                           "a film holds (%d a side, %zu numbers)",
                           what, n, w.rows.n, w.cols.n, ch, DMM_RENDER_SIDE_MAX,
                           DMM_RENDER_VALUES_MAX);
        goto done;
    }
    dmm_frames f = {.n = n, .rows = w.rows.n, .cols = w.cols.n, .channels = ch};
    f.px = calloc(n * f.rows * f.cols * ch, sizeof *f.px);
    if (!f.px) {
        rc = dmm_error_set(err, DMM_E_NOMEM, "", "%s: %s", what,
                           dmm_strerror(DMM_E_NOMEM));
        goto done;
    }
    w.pass = 1;
    w.out = &f;
    for (w.frame = 0; w.frame < n; w.frame++)
        vv_foreach_leaf(values[w.frame], on_leaf, &w);
    *out = f;
done:
    free(w.rows.k);
    free(w.cols.k);
    free(w.chans.k);
    return rc;
}

void dmm_frames_free(dmm_frames *f)
{
    free(f->px);
    f->px = NULL;
}

/* ---- colours -------------------------------------------------------------
 */

static void frame_minmax(const dmm_frames *f, size_t k0, size_t k1, double *lo,
                         double *hi)
{
    size_t per = f->rows * f->cols * f->channels;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t q = k0 * per; q < k1 * per; q++) {
        *lo = fmin(*lo, f->px[q]);
        *hi = fmax(*hi, f->px[q]);
    }
}

static uint8_t byte_of(double t)
{
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return (uint8_t)lround(t * 255.0);
}

int dmm_frames_rgb(const dmm_frames *f, size_t k, const dmm_render_opts *o,
                   uint8_t *rgb)
{
    double lo = o->lo, hi = o->hi;
    if (o->range == DMM_RANGE_FIXED)
        frame_minmax(f, 0, f->n, &lo, &hi);
    else if (o->range == DMM_RANGE_FRAME)
        frame_minmax(f, k, k + 1, &lo, &hi);
    bool diverging = f->channels == 1 && lo < 0;
    if (diverging && o->range != DMM_RANGE_GIVEN) {
        double m = fmax(-lo, hi);
        lo = -m;
        hi = m;
    }
    if (!diverging && f->channels == 1 && o->range != DMM_RANGE_GIVEN)
        lo = 0; /* grey: black is 0, so a constant image is not black */
    unsigned s = o->scale ? o->scale : 1;
    size_t wpx = f->cols * s;
    const double *px = f->px + k * f->rows * f->cols * f->channels;
    for (size_t i = 0; i < f->rows; i++)
        for (size_t j = 0; j < f->cols; j++) {
            uint8_t c[3];
            const double *v = px + (i * f->cols + j) * f->channels;
            if (f->channels == 3) {
                for (int q = 0; q < 3; q++)
                    c[q] = byte_of(hi > lo ? (v[q] - lo) / (hi - lo) : 0.5);
            } else if (!diverging) {
                c[0] = c[1] = c[2] =
                    byte_of(hi > lo ? (v[0] - lo) / (hi - lo) : 0.0);
            } else {
                /* blue (0.23, 0.30, 0.75) .. white .. red (0.71, 0.02,
                 * 0.15), each half linear in its own range */
                static const double blue[3] = {0.23, 0.30, 0.75},
                                    red[3] = {0.71, 0.02, 0.15};
                double t = v[0] < 0 ? (lo < 0 ? v[0] / lo : 0)
                                    : (hi > 0 ? v[0] / hi : 0);
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                const double *end = v[0] < 0 ? blue : red;
                for (int q = 0; q < 3; q++)
                    c[q] = byte_of(1.0 + t * (end[q] - 1.0));
            }
            for (unsigned a = 0; a < s; a++)
                for (unsigned b = 0; b < s; b++)
                    memcpy(rgb + ((i * s + a) * wpx + j * s + b) * 3, c, 3);
        }
    return 0;
}
