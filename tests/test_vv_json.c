// SPDX-License-Identifier: MIT
/*
 * Reading and writing V-values as JSON (spec §1): valid and non-canonical
 * input, canonical output checked by an independent validator, and a table of
 * bad inputs, each with its exact code, line, column and JSON Pointer. The
 * expected positions were worked out from the texts (columns are 1-based and
 * count characters); errors that Jansson finds keep Jansson's position.
 */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OK(x) assert_int_equal((x), 0)

static vv_ctx *ctx_new(int max_depth, size_t max_label)
{
    vv_options o = {.max_depth = max_depth, .max_label_len = max_label};
    vv_ctx *c = vv_ctx_new(&o);
    assert_non_null(c);
    return c;
}

static vv_label lab(vv_ctx *c, const char *s)
{
    return tu_label(c, s);
}

/* ---- canonical output, checked without trusting the writer's layout ---- */

/* Digits in the mantissa of a JSON number, leading zeros excluded. */
static int sig_digits(const char *s, size_t n)
{
    int d = 0;
    bool lead = true;
    for (size_t i = 0; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] < '0' || s[i] > '9')
            continue;
        if (s[i] == '0' && lead)
            continue;
        lead = false;
        d++;
    }
    return d ? d : 1;
}

/* x is printed as s (n bytes): reads back exactly, with the fewest digits.
 * Prints and returns false if not. */
static bool number_text_ok(double x, const char *s, size_t n)
{
    char buf[64];
    assert_true(n < sizeof buf);
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double y = strtod(buf, &end);
    if (*end != '\0' || y != x)
        fail_msg("number %.17g printed as \"%s\", which reads back as %.17g", x,
                 buf, y);
    int d = sig_digits(buf, n);
    for (int p = 1; p < d; p++) {
        char shorter[64];
        snprintf(shorter, sizeof shorter, "%.*e", p - 1, x);
        if (strtod(shorter, NULL) == x) {
            print_error("number %.17g printed as \"%s\": %d digits where %d "
                        "do (\"%s\")\n",
                        x, buf, d, p, shorter);
            return false;
        }
    }
    return true;
}

/*
 * Fails unless j is canonical JSON for a V-value: objects have keys in
 * strictly increasing byte order, no zero anywhere, no empty object (except
 * the root, which is zero), no ":number" alone. Recursion is bounded by the
 * test values' depth.
 */
static void check_canonical_json(const json_t *j, bool root)
{
    if (json_is_number(j)) {
        assert_true(json_number_value(j) != 0.0);
        return;
    }
    assert_true(json_is_object(j));
    size_t n = json_object_size(j);
    if (n == 0) {
        if (!root)
            fail_msg("empty object inside a canonical value");
        return;
    }
    const char *key, *prev = NULL;
    size_t klen, plen = 0;
    json_t *v;
    void *tmp;
    json_object_keylen_foreach_safe((json_t *)j, tmp, key, klen, v)
    {
        if (prev) {
            int c = memcmp(prev, key, plen < klen ? plen : klen);
            if (!(c < 0 || (c == 0 && plen < klen)))
                fail_msg("key \"%s\" after \"%s\": not in byte order", key,
                         prev);
        }
        if (klen == 7 && !memcmp(key, ":number", 7)) {
            assert_true(json_is_number(v));
            assert_true(json_number_value(v) != 0.0);
            if (n == 1)
                fail_msg("{\":number\": x} alone must print as x");
        } else {
            check_canonical_json(v, false);
        }
        prev = key;
        plen = klen;
    }
}

/* new (free()): canonical text of v, validated; *back gets it re-read. */
static char *print_checked(vv_ctx *c, vv v)
{
    char *s = vv_to_string(c, v);
    assert_non_null(s);
    json_error_t je;
    json_t *j = json_loads(
        s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL,
        &je);
    if (!j)
        fail_msg("writer produced invalid JSON \"%s\": %s", s, je.text);
    check_canonical_json(j, true);
    /* vv_to_json gives the same document. */
    json_t *j2 = vv_to_json(c, v);
    assert_non_null(j2);
    assert_true(json_equal(j, j2));
    json_decref(j);
    json_decref(j2);
    /* vv_write appends to what a buffer holds. */
    vv_buf b = {0};
    OK(vv_buf_append(&b, "x=", 2));
    OK(vv_write(c, v, &b));
    assert_true(b.len == 2 + strlen(s) && !memcmp(b.data, "x=", 2));
    assert_memory_equal(b.data + 2, s, strlen(s));
    free(b.data);
    /* Reading it back gives the same value. */
    vv back = tu_vv(c, s);
    assert_true(vv_equal(back, v));
    vv_free(c, back);
    return s;
}

/* ---- valid input --------------------------------------------------------- */

static void test_read_valid(void **state)
{
    (void)state;
    vv_ctx *c = ctx_new(0, 0);
    vv v = tu_vv(c, "3");
    assert_true(v.num == 3 && v.map == NULL);
    v = tu_vv(c, "  \n\t-2.5e1 \n");
    assert_true(v.num == -25 && v.map == NULL);
    v = tu_vv(c, "{\":number\": 3}");
    assert_true(v.num == 3 && v.map == NULL);
    v = tu_vv(c, "{}");
    assert_true(vv_is_zero(v));
    /* Explicit zeros, {} children and zero scalar parts are dropped. */
    v = tu_vv(c, "{\"a\": 0, \"b\": {}, \"c\": {\":number\": 0}, \"d\": -0.0,"
                 " \"e\": {\"f\": {\"g\": 0}}, \":number\": 0}");
    assert_true(vv_is_zero(v));
    assert_null(v.map);
    v = tu_vv(c, "123456789012345678901234567890");
    assert_true(v.num == 123456789012345678901234567890.0);

    v = tu_vv(c, "{\":number\": 3.5, \"foo\": {\":number\": 2, \"bar\": 7},"
                 " \"baz\": {\"foo\": {\"bar\": -4}}}");
    tu_assert_canonical(c, v);
    vv_label foo = lab(c, "foo"), bar = lab(c, "bar"), baz = lab(c, "baz");
    vv_label p1[] = {foo}, p2[] = {foo, bar}, p3[] = {baz, foo, bar};
    assert_true(v.num == 3.5);
    assert_true(vv_get(v, p1, 1).num == 2);
    assert_true(vv_get(v, p2, 2).num == 7 && vv_get(v, p2, 2).map == NULL);
    assert_true(vv_get(v, p3, 3).num == -4);
    assert_int_equal(vv_nchildren(v), 2);
    assert_int_equal(vv_depth(v), 3);
    vv_stats st;
    vv_measure(v, &st);
    assert_int_equal(st.leaves, 4);
    /* The same value built by hand. */
    vv inner = VV_ZERO, foo_v = VV_ZERO, bz = VV_ZERO, want = VV_ZERO;
    OK(vv_wrap(c, 2, bar, vv_number(7), &foo_v));
    OK(vv_wrap(c, 0, bar, vv_number(-4), &inner));
    OK(vv_wrap(c, 0, foo, inner, &bz));
    vv_label ls[] = {baz, foo};
    vv cs[] = {bz, foo_v};
    OK(vv_from_pairs(c, 3.5, 2, ls, cs, &want));
    assert_true(vv_equal(v, want));
    vv_free(c, want), vv_free(c, inner), vv_free(c, v);

    /* A node whose children all cancel to zero leaves only its scalar. */
    v = tu_vv(c, "{\"a\": {\":number\": 2, \"b\": 0}}");
    vv a = vv_child(v, lab(c, "a"));
    assert_true(a.num == 2 && a.map == NULL);
    char *s = print_checked(c, v);
    vv_free(c, v);
    free(s);

    /* The empty label and non-ASCII labels are labels like any other. */
    v = tu_vv(c, "{\"\": 1, \"\xe6\x97\xa5\xe6\x9c\xac\": 2}");
    assert_true(vv_child(v, lab(c, "")).num == 1);
    assert_true(vv_child(v, lab(c, "\xe6\x97\xa5\xe6\x9c\xac")).num == 2);
    s = print_checked(c, v);
    vv_free(c, v);
    free(s);
    vv_ctx_free(c);
}

/* ---- canonical output ---------------------------------------------------- */

static void test_write_numbers(void **state)
{
    (void)state;
    vv_ctx *c = ctx_new(0, 0);
    static const double xs[] = {0.1,
                                1e-300,
                                1.7976931348623157e308,
                                -2.5,
                                123456789012345680000.0,
                                5e-324,
                                0.30000000000000004,
                                1.0 / 3,
                                -1e22,
                                2.2250738585072014e-308,
                                7,
                                -1};
    vv_label la = lab(c, "a");
    int bad = 0;
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        char *s = vv_to_string(c, vv_number(xs[i]));
        assert_non_null(s);
        bad += !number_text_ok(xs[i], s, strlen(s));
        free(s);
        vv_buf b = {0};
        OK(vv_buf_number(&b, xs[i]));
        bad += !number_text_ok(xs[i], b.data, b.len);
        free(b.data);
        /* The same inside an object, and re-read exactly. */
        vv w = VV_ZERO;
        OK(vv_wrap(c, 0, la, vv_number(xs[i]), &w));
        s = print_checked(c, w);
        vv_free(c, w);
        free(s);
    }
    if (bad)
        fail_msg("%d numbers not printed in their shortest exact form", bad);
    char *s = vv_to_string(c, vv_number(0.1));
    assert_string_equal(s, "0.1");
    free(s);
    s = vv_to_string(c, vv_number(-2.5));
    assert_string_equal(s, "-2.5");
    free(s);
    s = vv_to_string(c, VV_ZERO);
    assert_string_equal(s, "{}");
    free(s);
    vv_ctx_free(c);
}

static void test_write_structure(void **state)
{
    (void)state;
    vv_ctx *c = ctx_new(0, 0);
    /* Interned in an order different from byte order. */
    static const char *const names[] = {"~x", "\xc3\xa9", "a/b", "\\",
                                        "\"", "\x01",     "B",   "a"};
    enum { N = sizeof names / sizeof *names };
    vv_label ls[N];
    vv cs[N];
    for (int i = 0; i < N; i++) {
        ls[i] = lab(c, names[i]);
        cs[i] = vv_number(i + 1);
    }
    vv v = VV_ZERO;
    OK(vv_from_pairs(c, 0.5, N, ls, cs, &v));
    char *s = print_checked(c, v);
    /* Key order by bytes, ":number" (0x3a) included: \x01 " :number B \ a
     * a/b ~x é. */
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    static const char *const order[] = {"\x01", "\"", ":number", "B", "\\", "a",
                                        "a/b",  "~x", "\xc3\xa9"};
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val)
    {
        assert_true(k < sizeof order / sizeof *order);
        assert_string_equal(key, order[k]);
        k++;
    }
    assert_int_equal(k, N + 1);
    json_decref(j);
    free(s);
    /* vv_buf_json_string escapes what JSON requires and reads back. */
    vv_buf b = {0};
    OK(vv_buf_json_string(&b, "q\"b\\c\x01\n\xc3\xa9", 9));
    json_t *str = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    assert_non_null(str);
    assert_string_equal(json_string_value(str), "q\"b\\c\x01\n\xc3\xa9");
    json_decref(str);
    free(b.data);
    vv_free(c, v);
    vv_ctx_free(c);
}

/* ---- bad input ----------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    const char *text;
    int max_depth;    /* 0: default */
    size_t max_label; /* 0: default */
    int code;
    int line, column;
    const char *path;
} bad_case;

/* Columns: count characters of the line, first is 1. */
static const bad_case bad_cases[] = {
    {"string at root", "\"hello\"", 0, 0, DMM_E_INVAL, 1, 1, ""},
    {"true at root", "true", 0, 0, DMM_E_INVAL, 1, 1, ""},
    {"null at root", "  null", 0, 0, DMM_E_INVAL, 1, 3, ""},
    {"array at root", "[1, 2]", 0, 0, DMM_E_INVAL, 1, 1, ""},
    {"array nested", "{\"a\": {\n  \"b\": [1]\n}}", 0, 0, DMM_E_INVAL, 2, 8,
     "/a/b"},
    {"string nested",
     "{\n  \"w\": {\n    \"x\": 1,\n    \"y\": \"two\"\n  }\n}", 0, 0,
     DMM_E_INVAL, 4, 10, "/w/y"},
    {"false in a member", "{\"a\": 1, \"b\": false}", 0, 0, DMM_E_INVAL, 1, 15,
     "/b"},
    {"null under escaped keys", "{\"k/l\": {\"~t\": null}}", 0, 0, DMM_E_INVAL,
     1, 16, "/k~1l/~0t"},
    {"UTF-8 keys count one column each",
     "{\"\xc3\xa9\": {\"\xc3\xbc\": \"s\"}}", 0, 0, DMM_E_INVAL, 1, 13,
     "/\xc3\xa9/\xc3\xbc"},
    {":number not a number", "{\"a\": {\":number\": \"x\"}}", 0, 0, DMM_E_INVAL,
     1, 19, "/a/:number"},
    {":number an object", "{\"a\": {\":number\": {\"b\": 1}}}", 0, 0,
     DMM_E_INVAL, 1, 19, "/a/:number"},
    /* Jansson finds these while parsing: its position, our path. */
    {"duplicate key", "{\n  \"w\": {\n    \"y\": 1,\n    \"y\": 2\n  }\n}", 0,
     0, DMM_E_INVAL, 4, 7, "/w/y"},
    {"number too big", "{\n  \"w\": {\n    \"y\": 1e400\n  }\n}", 0, 0,
     DMM_E_NONFINITE, 3, 14, "/w/y"},
    /* Depth 5 allowed: {"a":{"b":{"c":{"d":{"e":1}}}}}; the object at
     * /a/b/c/d/e makes it 6. Each level adds 6 columns. */
    {"nesting past max_depth 5",
     "{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"f\": 1}}}}}}", 5, 0,
     DMM_E_DEPTH, 1, 31, "/a/b/c/d/e"},
    /* A path names a value: the position is the value's, not the key's. */
    {"label longer than max_label_len 4", "{\"abcd\": 1, \"abcde\": 2}", 0, 4,
     DMM_E_LIMIT, 1, 22, "/abcde"},
    /* Malformed JSON: Jansson's line and column, no path. */
    {"truncated", "{\n  \"a\": 1,\n  \"b\": {\"c\": 2", 0, 0, DMM_E_PARSE, 3,
     14, ""},
    /* Jansson says column 0 here; 1:1 is where the missing value goes. */
    {"empty", "", 0, 0, DMM_E_PARSE, 1, 1, ""},
    {"trailing garbage", "{\"a\": 1} x", 0, 0, DMM_E_PARSE, 1, 10, ""},
    {"invalid UTF-8 in a key", "{\n \"a\xff\": 1}", 0, 0, DMM_E_PARSE, 2, 3,
     ""},
};

/* Returns whether the case gave exactly what it should; prints if not. */
static bool check_bad(const bad_case *bc, const char *source)
{
    vv_ctx *c = ctx_new(bc->max_depth, bc->max_label);
    vv out = vv_number(42);
    dmm_error err;
    memset(&err, 0x5a, sizeof err);
    int rc = vv_parse(c, bc->text, strlen(bc->text), source, &out, &err);
    char msg[1400] = "";
    if (rc != 0)
        dmm_error_format(&err, msg, sizeof msg);
    bool ok = rc == bc->code && err.code == bc->code && err.line == bc->line &&
              err.column == bc->column && strcmp(err.path, bc->path) == 0;
    if (!ok)
        print_error("%s:\n  want %s %d:%d \"%s\"\n   got %s (err.code %s) "
                    "%d:%d \"%s\"  [%s]\n",
                    bc->name, dmm_errname(bc->code), bc->line, bc->column,
                    bc->path, dmm_errname(rc), dmm_errname(err.code), err.line,
                    err.column, err.path, msg);
    if (rc == 0) {
        vv_free(c, out);
    } else {
        assert_true(out.num == 42 && out.map == NULL);
        assert_string_equal(err.source, source ? source : "<string>");
        assert_true(err.text[0] != '\0');
    }
    vv_ctx_free(c); /* also: nothing of the failed read is still alive */
    return ok;
}

static void test_bad_inputs(void **state)
{
    (void)state;
    size_t failed = 0, n = sizeof bad_cases / sizeof *bad_cases;
    for (size_t i = 0; i < n; i++)
        failed += !check_bad(&bad_cases[i], i % 2 ? "bad.json" : NULL);
    if (failed)
        fail_msg("%zu of %zu bad inputs were not reported as expected", failed,
                 n);
}

static void test_depth_limits(void **state)
{
    (void)state;
    /* Exactly the default limit reads; one more is DMM_E_DEPTH. Past
     * Jansson's own limit (2048) it must still be DMM_E_DEPTH. */
    static const int depths[] = {VV_DEFAULT_MAX_DEPTH, VV_DEFAULT_MAX_DEPTH + 1,
                                 5000};
    for (size_t k = 0; k < 3; k++) {
        int d = depths[k];
        size_t n = (size_t)d * 6 + 8;
        char *t = malloc(n), *p = t;
        assert_non_null(t);
        for (int i = 0; i < d; i++)
            p += sprintf(p, "{\"a\":");
        p += sprintf(p, "1");
        for (int i = 0; i < d; i++)
            *p++ = '}';
        *p = '\0';
        vv_ctx *c = ctx_new(0, 0);
        vv v = VV_ZERO;
        dmm_error err;
        int rc = vv_parse(c, t, strlen(t), NULL, &v, &err);
        if (d <= VV_DEFAULT_MAX_DEPTH) {
            assert_int_equal(rc, 0);
            assert_int_equal(vv_depth(v), d);
            vv_free(c, v);
        } else {
            if (rc != DMM_E_DEPTH)
                fail_msg("depth %d: got %s, want DEPTH", d, dmm_errname(rc));
            assert_true(vv_is_zero(v));
        }
        vv_ctx_free(c);
        free(t);
    }
}

static void test_from_json_and_locate(void **state)
{
    (void)state;
    vv_ctx *c = ctx_new(0, 0);
    const char *text = bad_cases[5].text; /* "string nested": /w/y at 4:10 */
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    vv out = vv_number(42);
    dmm_error err;
    dmm_error_clear(&err);
    assert_int_equal(vv_from_json(c, j, "/doc", &out, &err), DMM_E_INVAL);
    assert_true(out.num == 42 && out.map == NULL);
    assert_string_equal(err.path, "/doc/w/y");
    assert_int_equal(err.line, 0);
    assert_int_equal(err.column, 0);
    OK(vv_from_json(c, json_object_get(json_object_get(j, "w"), "x"), "", &out,
                    &err));
    assert_true(out.num == 1 && out.map == NULL);
    json_decref(j);

    dmm_error_clear(&err);
    dmm_error_set(&err, DMM_E_INVAL, "/w/y", "not a number");
    vv_json_locate(text, strlen(text), &err);
    assert_int_equal(err.line, 4);
    assert_int_equal(err.column, 10);
    dmm_error_set(&err, DMM_E_INVAL, "/w/x", "not a number");
    vv_json_locate(text, strlen(text), &err);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.column, 10);
    /* A path that is not in the text to its end: the deepest part that is
     * (here the object at /w, line 2 column 8). */
    dmm_error_clear(&err);
    dmm_error_set(&err, DMM_E_INVAL, "/w/z", "absent");
    vv_json_locate(text, strlen(text), &err);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 8);
    /* Escaped tokens; a key that only appears as a value is not a match. */
    const char *t2 = "{\"x\": {\"a\": 1},\n \"k/l\": {\"~t\": 2}}";
    dmm_error_set(&err, DMM_E_INVAL, "/k~1l/~0t", "here");
    vv_json_locate(t2, strlen(t2), &err);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.column, 16);
    vv_ctx_free(c);
}

/* ":number" is a node's scalar part, never a label: it cannot be interned,
 * so reading it never makes a child and writing never shows one. */
static void test_number_key_not_a_label(void **state)
{
    (void)state;
    vv_ctx *c = ctx_new(0, 0);
    vv_label l = 12345;
    size_t before = vv_label_count(c);
    assert_int_equal(vv_intern(c, ":number", 7, &l), DMM_E_INVAL);
    assert_int_equal(vv_intern_cstr(c, VV_NUMBER_KEY, &l), DMM_E_INVAL);
    assert_int_equal(l, 12345);
    assert_int_equal(vv_label_count(c), before);
    assert_int_equal(vv_label_find(c, ":number", 7, &l), DMM_E_NOTFOUND);
    /* Only those exact bytes: near misses are ordinary labels. */
    static const char *const near[] = {":numbe",  ":numbers", "number",
                                       ":Number", " :number", ":number/"};
    for (size_t k = 0; k < sizeof near / sizeof near[0]; k++)
        OK(vv_intern_cstr(c, near[k], &l));
    assert_int_equal(vv_intern(c, ":number", 6, &l), 0); /* ":numbe" */
    assert_int_equal(l, lab(c, ":numbe"));
    /* Reading: the member is the scalar and interns nothing. */
    before = vv_label_count(c);
    vv a = tu_vv(c, "{\"a\": {\":number\": 2}}");
    assert_int_equal(vv_label_count(c), before + 1);
    vv b = tu_vv(c, "{\"a\": 2}");
    assert_true(vv_equal(a, b));
    assert_int_equal(vv_nchildren(vv_child(a, lab(c, "a"))), 0);
    vv d = tu_vv(c, "{\":number\": 3, \":numbers\": {\":number\": 4, "
                    "\"x\": 5}}");
    assert_int_equal(vv_label_count(c), before + 2); /* "a" and "x" */
    assert_true(vv_child(d, lab(c, ":numbers")).num == 4);
    char *t = vv_to_string(c, d);
    assert_string_equal(t,
                        "{\":number\":3,\":numbers\":{\":number\":4,\"x\":5}}");
    vv e = tu_vv(c, t);
    assert_true(vv_equal(d, e));
    free(t);
    /* A scalar part has no parts below it. */
    const char *deeper = "{\"a\": {\":number\": {\"b\": 1}}}";
    dmm_error err;
    vv f = VV_ZERO;
    assert_int_equal(vv_parse(c, deeper, strlen(deeper), NULL, &f, &err),
                     DMM_E_INVAL);
    assert_string_equal(err.path, "/a/:number");
    vv_free(c, a);
    vv_free(c, b);
    vv_free(c, d);
    vv_free(c, e);
    vv_ctx_free(c);
}

static void test_files_and_format(void **state)
{
    (void)state;
    vv_ctx *c = ctx_new(0, 0);
    char name[] = "/tmp/test_vv_json_XXXXXX";
    int fd = mkstemp(name);
    assert_true(fd >= 0);
    const char *text = bad_cases[5].text;
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    vv out = vv_number(42);
    dmm_error err;
    assert_int_equal(vv_read_file(c, name, &out, &err), DMM_E_INVAL);
    assert_string_equal(err.source, name);
    char msg[1400], want[1400];
    int n = dmm_error_format(&err, msg, sizeof msg);
    assert_int_equal(n, (int)strlen(msg));
    snprintf(want, sizeof want, "%s:4:10: /w/y: %s", name, err.text);
    assert_string_equal(msg, want);
    /* Truncation reports the full length, like snprintf. */
    char small[8];
    assert_int_equal(dmm_error_format(&err, small, sizeof small), n);
    assert_int_equal(strlen(small), 7);

    /* A good file reads. */
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    fputs("{\"a\": {\"b\": 2}}\n", f);
    fclose(f);
    OK(vv_read_file(c, name, &out, &err));
    vv want_v = tu_vv(c, "{\"a\": {\"b\": 2}}");
    assert_true(vv_equal(out, want_v));
    vv_free(c, out), vv_free(c, want_v);
    /* An empty file is malformed JSON. */
    f = fopen(name, "w");
    assert_non_null(f);
    fclose(f);
    out = vv_number(42);
    assert_int_equal(vv_read_file(c, name, &out, &err), DMM_E_PARSE);
    assert_true(out.num == 42 && out.map == NULL);
    unlink(name);
    /* A missing file. */
    assert_int_equal(vv_read_file(c, name, &out, &err), DMM_E_IO);
    assert_int_equal(err.code, DMM_E_IO);
    assert_string_equal(err.source, name);
    assert_int_equal(err.line, 0);
    assert_true(out.num == 42 && out.map == NULL);

    /* The format from hand-filled records. */
    dmm_error e;
    dmm_error_clear(&e);
    dmm_error_set_source(&e, "networks/xor.json");
    e.line = 12;
    e.column = 9;
    dmm_error_set(&e, DMM_E_INVAL, "/matrix/accum/c", "weight must be a %s",
                  "number");
    dmm_error_format(&e, msg, sizeof msg);
    assert_string_equal(msg, "networks/xor.json:12:9: /matrix/accum/c: weight "
                             "must be a number");
    e.line = e.column = 0;
    dmm_error_format(&e, msg, sizeof msg);
    assert_string_equal(msg,
                        "networks/xor.json: /matrix/accum/c: weight must be a "
                        "number");
    char ptr[16] = "";
    OK(dmm_json_pointer_push(ptr, sizeof ptr, "a/b~c", 5));
    assert_string_equal(ptr, "/a~1b~0c");
    assert_int_equal(dmm_json_pointer_push(ptr, sizeof ptr, "0123456789", 10),
                     DMM_E_LIMIT);
    assert_string_equal(ptr + strlen(ptr) - 3, "...");
    assert_string_equal(dmm_errname(DMM_E_DEPTH), "DEPTH");
    assert_string_equal(dmm_strerror(DMM_E_NOMEM), "out of memory");
    vv_ctx_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_valid),
        cmocka_unit_test(test_write_numbers),
        cmocka_unit_test(test_write_structure),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_depth_limits),
        cmocka_unit_test(test_from_json_and_locate),
        cmocka_unit_test(test_files_and_format),
        cmocka_unit_test(test_number_key_not_a_label),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
