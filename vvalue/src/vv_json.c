// SPDX-License-Identifier: MIT
/*
 * V-values as JSON text (spec dmm.md §1). Reading goes through Jansson and is
 * strict; its errors carry a JSON Pointer, and vv_json_locate turns a pointer
 * back into a line and column by rescanning the text, because Jansson keeps
 * no positions for values it has parsed. Writing is canonical: keys in byte
 * order, the shortest number text that reads back to the same double.
 */
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "vv_internal.h"

/* ---- output buffer ----------------------------------------------------------
 */

static int buf_reserve(vv_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return DMM_E_NOMEM;
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d)
        return DMM_E_NOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int vv_buf_append(vv_buf *b, const char *s, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int vv_buf_printf(vv_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return DMM_E_INVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int vv_buf_json_string(vv_buf *b, const char *s, size_t n)
{
    int rc = buf_reserve(b, n + 2);
    if (rc)
        return rc;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            rc = vv_buf_append(b, e, 2);
        } else if (ch < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", ch);
            rc = vv_buf_append(b, e, 6);
        } else {
            rc = vv_buf_append(b, (const char *)&s[i], 1);
        }
    }
    return rc ? rc : vv_buf_append(b, "\"", 1);
}

int vv_buf_number(vv_buf *b, double x)
{
    char tmp[40];
    /* 15 digits suffice for every double whose shortest form has at most 15
     * (15-digit decimals are sparser than doubles); subnormals have fewer
     * significant bits, so their shortest form is searched from 1 digit. */
    for (int prec = fabs(x) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x)
            break;
    }
    return vv_buf_append(b, tmp, strlen(tmp));
}

/* ---- writing
 * ------------------------------------------------------------------ */

static const char number_key[] = VV_NUMBER_KEY;

static int write_rec(const vv_ctx *c, vv v, vv_buf *b)
{
    if (!v.map)
        return v.num == 0.0 ? vv_buf_append(b, "{}", 2)
                            : vv_buf_number(b, v.num);
    size_t n = v.map->total;
    vv_label *labels = malloc(n * sizeof *labels);
    vv *kids = malloc(n * sizeof *kids);
    int rc = labels && kids ? 0 : DMM_E_NOMEM;
    if (!rc) {
        vv_children_sorted(c, v, labels, kids);
        rc = vv_buf_append(b, "{", 1);
    }
    bool pending = v.num != 0.0, first = true;
    for (size_t i = 0; i <= n && !rc; i++) {
        size_t len = 0;
        const char *name = i < n ? vv_label_str(c, labels[i], &len) : NULL;
        if (pending && (!name || strcmp(number_key, name) < 0)) {
            rc = first ? 0 : vv_buf_append(b, ",", 1);
            if (!rc)
                rc = vv_buf_append(b, "\":number\":", 10);
            if (!rc)
                rc = vv_buf_number(b, v.num);
            pending = first = false;
        }
        if (!name || rc)
            break;
        /* Never interned (vv_intern), so the member is never ambiguous. */
        assert(strcmp(name, number_key) != 0);
        if (!first)
            rc = vv_buf_append(b, ",", 1);
        first = false;
        if (!rc)
            rc = vv_buf_json_string(b, name, len);
        if (!rc)
            rc = vv_buf_append(b, ":", 1);
        if (!rc)
            rc = write_rec(c, kids[i], b);
    }
    if (!rc)
        rc = vv_buf_append(b, "}", 1);
    free(labels);
    free(kids);
    return rc;
}

int vv_write(const vv_ctx *c, vv v, vv_buf *b)
{
    return write_rec(c, v, b);
}

char *vv_to_string(const vv_ctx *c, vv v)
{
    vv_buf b = {0};
    if (write_rec(c, v, &b)) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

json_t *vv_to_json(const vv_ctx *c, vv v)
{
    if (!v.map)
        return v.num == 0.0 ? json_object() : json_real(v.num);
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (v.num != 0.0 && json_object_set_new(o, number_key, json_real(v.num)))
        goto fail;
    vv_iter it;
    vv_iter_init(&it, v);
    vv_label k;
    vv x;
    while (vv_iter_next(&it, &k, &x)) {
        size_t len;
        const char *name = vv_label_str(c, k, &len);
        json_t *j = vv_to_json(c, x);
        if (!j || json_object_setn_new(o, name, len, j))
            goto fail;
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* ---- reading
 * ------------------------------------------------------------------ */

typedef struct reader {
    vv_ctx *c;
    dmm_error *err;
    char path[sizeof(((dmm_error *)0)->path)];
} reader;

static const char *kind_of(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_STRING:
        return "a string";
    case JSON_ARRAY:
        return "an array";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    default:
        return "this";
    }
}

static int read_number(reader *r, const json_t *j, double *x)
{
    *x = json_is_real(j) ? json_real_value(j) : (double)json_integer_value(j);
    if (!isfinite(*x))
        return dmm_error_set(r->err, DMM_E_NONFINITE, r->path,
                             "number out of range");
    return 0;
}

static int read_rec(reader *r, const json_t *j, int level, vv *out)
{
    if (json_is_number(j)) {
        double x;
        int rc = read_number(r, j, &x);
        if (!rc)
            *out = vv_number(x == 0.0 ? 0.0 : x);
        return rc;
    }
    if (!json_is_object(j))
        return dmm_error_set(r->err, DMM_E_INVAL, r->path,
                             "%s is not a V-value (expected a number or an "
                             "object)",
                             kind_of(j));
    if (level > r->c->max_depth)
        return dmm_error_set(r->err, DMM_E_DEPTH, r->path,
                             "nesting deeper than %d levels", r->c->max_depth);
    size_t n = json_object_size(j), m = 0, mark = strlen(r->path);
    vv_label *labels = vv__alloc(r->c, n * sizeof *labels + 1);
    vv *kids = vv__alloc(r->c, n * sizeof *kids + 1);
    int rc = labels && kids
                 ? 0
                 : dmm_error_set(r->err, DMM_E_NOMEM, r->path, "out of memory");
    double num = 0.0;
    const char *key;
    json_t *val;
    if (!rc && n >= VV__DENSE_MIN / 2) {
        /* Decimal keys (an image's rows and columns): intern "0" .. "max"
         * in increasing order before the keys themselves, which come in
         * byte order ("0", "1", "10", "100", …), so that the level can be
         * held dense (vv_dense.c). */
        int32_t max = -1;
        size_t dec = 0;
        json_object_foreach((json_t *)j, key, val)
        {
            int32_t i = vv__parse_dec(key, strlen(key));
            if (i > max)
                max = i;
            dec += i >= 0;
        }
        if (dec == n && 2 * n >= (size_t)max + 1 &&
            (rc = vv__dec_reserve(r->c, (uint32_t)max + 1)))
            dmm_error_set(r->err, rc, r->path, "%s", dmm_strerror(rc));
    }
    json_object_foreach((json_t *)j, key, val)
    {
        if (rc)
            break;
        size_t klen = strlen(key);
        dmm_json_pointer_push(r->path, sizeof r->path, key, klen);
        if (strcmp(key, number_key) == 0) {
            if (!json_is_number(val))
                rc = dmm_error_set(r->err, DMM_E_INVAL, r->path,
                                   "\":number\" must be a number, not %s",
                                   kind_of(val));
            else
                rc = read_number(r, val, &num);
        } else {
            rc = vv_intern(r->c, key, klen, &labels[m]);
            if (rc == DMM_E_LIMIT)
                dmm_error_set(r->err, rc, r->path,
                              "label longer than %zu bytes",
                              r->c->max_label_len);
            else if (rc)
                dmm_error_set(r->err, rc, r->path, "%s", dmm_strerror(rc));
            if (!rc)
                rc = read_rec(r, val, level + 1, &kids[m]);
            if (!rc)
                m++;
        }
        r->path[mark] = '\0';
    }
    if (!rc) {
        rc = vv_from_pairs(r->c, num, m, labels, kids, out);
        if (rc)
            dmm_error_set(r->err, rc, r->path, "%s", dmm_strerror(rc));
    } else {
        for (size_t i = 0; i < m; i++)
            vv_free(r->c, kids[i]);
    }
    if (labels)
        vv__free_mem(r->c, labels, n * sizeof *labels + 1);
    if (kids)
        vv__free_mem(r->c, kids, n * sizeof *kids + 1);
    return rc;
}

int vv_from_json(vv_ctx *c, const json_t *j, const char *path, vv *out,
                 dmm_error *err)
{
    reader r = {c, err, ""};
    snprintf(r.path, sizeof r.path, "%s", path ? path : "");
    vv v;
    int rc = read_rec(&r, j, 1, &v);
    if (!rc)
        *out = v;
    return rc;
}

static void path_at(const char *text, size_t len, size_t pos, dmm_error *err);

json_t *vv_json_load(const char *text, size_t len, const char *source,
                     dmm_error *err)
{
    dmm_error_clear(err);
    dmm_error_set_source(err, source ? source : "<string>");
    json_error_t je;
    json_t *j = json_loadb(text, len,
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY |
                               JSON_DECODE_INT_AS_REAL,
                           &je);
    if (j)
        return j;
    enum json_error_code jc = json_error_code(&je);
    int code = DMM_E_PARSE;
    switch (jc) {
    case json_error_duplicate_key: /* well-formed, but not a V-value */
        code = DMM_E_INVAL;
        break;
    case json_error_numeric_overflow:
        code = DMM_E_NONFINITE;
        break;
    case json_error_stack_overflow:
        code = DMM_E_DEPTH;
        break;
    case json_error_out_of_memory:
        code = DMM_E_NOMEM;
        break;
    default:
        break;
    }
    dmm_error_set(err, code, "", "%s", je.text);
    if (err && (code == DMM_E_INVAL || code == DMM_E_NONFINITE))
        path_at(text, len, (size_t)je.position, err);
    if (err) {
        err->line = je.line > 0 ? je.line : 0;
        err->column = je.line > 0 ? (je.column > 0 ? je.column : 1) : 0;
    }
    return NULL;
}

int vv_parse(vv_ctx *c, const char *text, size_t len, const char *source,
             vv *out, dmm_error *err)
{
    dmm_error local;
    if (!err)
        err = &local;
    json_t *j = vv_json_load(text, len, source, err);
    if (!j)
        return err->code;
    int rc = vv_from_json(c, j, "", out, err);
    json_decref(j);
    if (rc)
        vv_json_locate(text, len, err);
    return rc;
}

int vv_read_file(vv_ctx *c, const char *filename, vv *out, dmm_error *err)
{
    dmm_error_clear(err);
    dmm_error_set_source(err, filename);
    FILE *f = fopen(filename, "rb");
    if (!f)
        return dmm_error_set(err, DMM_E_IO, "", "cannot open: %s",
                             strerror(errno));
    vv_buf b = {0};
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = vv_buf_append(&b, chunk, n);
    if (!rc && ferror(f))
        rc = dmm_error_set(err, DMM_E_IO, "", "cannot read: %s",
                           strerror(errno));
    else if (rc)
        dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    fclose(f);
    if (!rc)
        rc = vv_parse(c, b.data ? b.data : "", b.len, filename, out, err);
    free(b.data);
    return rc;
}

/* ---- locating a JSON Pointer in text ----------------------------------------
 */

typedef struct scan {
    const char *p, *end;
    int line, col;
} scan;

static void adv(scan *s)
{
    if (*s->p == '\n') {
        s->line++;
        s->col = 1;
    } else if (((unsigned char)*s->p & 0xC0) != 0x80) {
        s->col++;
    }
    s->p++;
}

/* strchr would match a NUL byte in the text against the set's terminator. */
static bool is_delim(char ch)
{
    return ch != '\0' && strchr(",:]} \t\r\n", ch) != NULL;
}

static void skip_ws(scan *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        adv(s);
}

static void put_utf8(vv_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    vv_buf_append(b, u, n);
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v = v * 16 + (unsigned)(ch >= '0' && ch <= '9'   ? ch - '0'
                                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                         : 0);
    }
    return v;
}

/* Read a string literal at s->p (decoded into out when non-NULL). */
static bool read_string(scan *s, vv_buf *out)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    adv(s);
    while (s->p < s->end && *s->p != '"') {
        if (*s->p != '\\') {
            if (out)
                vv_buf_append(out, s->p, 1);
            adv(s);
            continue;
        }
        adv(s);
        if (s->p >= s->end)
            return false;
        char e = *s->p;
        if (e == 'u' && s->end - s->p >= 5) {
            unsigned cp = hex4(s->p + 1);
            for (int i = 0; i < 5; i++)
                adv(s);
            if (cp >= 0xD800 && cp < 0xDC00 && s->end - s->p >= 6 &&
                s->p[0] == '\\' && s->p[1] == 'u') {
                unsigned lo = hex4(s->p + 2);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                for (int i = 0; i < 6; i++)
                    adv(s);
            }
            if (out)
                put_utf8(out, cp);
            continue;
        }
        char d = e == 'b'   ? '\b'
                 : e == 'f' ? '\f'
                 : e == 'n' ? '\n'
                 : e == 'r' ? '\r'
                 : e == 't' ? '\t'
                            : e;
        if (out)
            vv_buf_append(out, &d, 1);
        adv(s);
    }
    if (s->p >= s->end)
        return false;
    adv(s);
    return true;
}

/* Skip one value of any kind; iterative over nesting. */
static bool skip_value(scan *s)
{
    int depth = 0;
    do {
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        char ch = *s->p;
        if (ch == '"') {
            if (!read_string(s, NULL))
                return false;
        } else if (ch == '{' || ch == '[') {
            depth++;
            adv(s);
        } else if (ch == '}' || ch == ']') {
            depth--;
            adv(s);
        } else if (ch == ',' || ch == ':') {
            adv(s);
        } else {
            do /* a literal, or a stray byte: always move on */
                adv(s);
            while (s->p < s->end && !is_delim(*s->p));
        }
    } while (depth > 0);
    return true;
}

/* Move s to the value named by one pointer token inside the current one. */
static bool enter(scan *s, const char *tok, size_t tlen)
{
    skip_ws(s);
    if (s->p >= s->end)
        return false;
    if (*s->p == '{') {
        adv(s);
        for (;;) {
            skip_ws(s);
            vv_buf key = {0};
            bool ok = read_string(s, &key);
            bool match = ok && key.len == tlen &&
                         (tlen == 0 || memcmp(key.data, tok, tlen) == 0);
            free(key.data);
            if (!ok)
                return false;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return false;
            adv(s);
            skip_ws(s);
            if (match)
                return true;
            if (!skip_value(s))
                return false;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ',')
                return false;
            adv(s);
        }
    }
    if (*s->p == '[') {
        char *endp;
        char num[32];
        if (tlen == 0 || tlen >= sizeof num)
            return false;
        memcpy(num, tok, tlen);
        num[tlen] = '\0';
        long idx = strtol(num, &endp, 10);
        if (*endp || idx < 0)
            return false;
        adv(s);
        for (long i = 0; i < idx; i++) {
            if (!skip_value(s))
                return false;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ',')
                return false;
            adv(s);
        }
        skip_ws(s);
        return s->p < s->end && *s->p != ']';
    }
    return false;
}

void vv_json_locate(const char *text, size_t len, dmm_error *err)
{
    if (!err || !text)
        return;
    scan s = {text, text + len, 1, 1};
    const char *p = err->path;
    char tok[sizeof err->path];
    while (*p == '/') {
        p++;
        size_t n = 0;
        while (*p && *p != '/') {
            if (p[0] == '~' && p[1] == '1') {
                tok[n++] = '/';
                p += 2;
            } else if (p[0] == '~' && p[1] == '0') {
                tok[n++] = '~';
                p += 2;
            } else {
                tok[n++] = *p++;
            }
        }
        scan before = s;
        if (!enter(&s, tok, n)) {
            s = before; /* point at the deepest part that exists (a path */
            break;      /* cut with "..." or made by the loader) */
        }
    }
    skip_ws(&s);
    err->line = s.line;
    err->column = s.col;
}

/* The JSON Pointer of the value being read at byte pos, for errors that
 * Jansson finds while parsing (a duplicate key, a number out of range). */
static void path_at(const char *text, size_t len, size_t pos, dmm_error *err)
{
    enum { MAXF = 256 };
    struct frame {
        bool object;
        long index;
        vv_buf key;
    } f[MAXF];
    int top = -1;
    scan s = {text, text + (pos < len ? pos : len), 1, 1};
    bool want_key = false;
    while (s.p < s.end) {
        char ch = *s.p;
        if ((ch == '{' || ch == '[') && top + 1 < MAXF) {
            top++;
            f[top] = (struct frame){ch == '{', 0, {0}};
            want_key = ch == '{';
            adv(&s);
        } else if ((ch == '}' || ch == ']') && top >= 0) {
            free(f[top--].key.data);
            want_key = false;
            adv(&s);
        } else if (ch == '"') {
            if (top >= 0 && f[top].object && want_key) {
                f[top].key.len = 0;
                read_string(&s, &f[top].key);
                want_key = false;
            } else {
                read_string(&s, NULL);
            }
        } else if (ch == ',' && top >= 0) {
            if (f[top].object)
                want_key = true;
            else
                f[top].index++;
            adv(&s);
        } else if (ch != '\0' && strchr(" \t\r\n:", ch)) {
            adv(&s);
        } else {
            do
                adv(&s);
            while (s.p < s.end && !is_delim(*s.p));
        }
    }
    err->path[0] = '\0';
    for (int i = 0; i <= top; i++) {
        char idx[24];
        if (f[i].object)
            dmm_json_pointer_push(err->path, sizeof err->path,
                                  f[i].key.data ? f[i].key.data : "",
                                  f[i].key.len);
        else
            dmm_json_pointer_push(
                err->path, sizeof err->path, idx,
                (size_t)snprintf(idx, sizeof idx, "%ld", f[i].index));
        free(f[i].key.data);
    }
}
