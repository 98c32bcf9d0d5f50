// SPDX-License-Identifier: MIT
/*
 * The live protocol's request parser (runtime/live/src/live_protocol.c): every
 * op's fields into a dmm__live_req, each kind of bad request into its error
 * code and JSON path, the id kept for the error reply, and the reply
 * builders' exact text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_protocol.h"
#include "testutil.h"

typedef struct fixture {
    vv_ctx *vc;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->vc = vv_ctx_new(NULL);
    *state = f;
    return f->vc ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vv_ctx_free(f->vc);
    free(f);
    return 0;
}

static void parse_ok(fixture *f, const char *line, dmm__live_req *req)
{
    dmm__live_err e = {0};
    int rc = dmm__live_parse(f->vc, line, strlen(line), req, &e);
    if (rc != 0)
        fail_msg("%s: %s: %s (at %s)", line, dmm__live_code_name(e.code),
                 e.err.text, e.err.path);
}

static void parse_bad(fixture *f, const char *line, const char *code,
                      const char *path, const char *id)
{
    dmm__live_req req;
    dmm__live_err e = {0};
    int rc = dmm__live_parse(f->vc, line, strlen(line), &req, &e);
    if (rc == 0)
        fail_msg("accepted: %s", line);
    assert_string_equal(dmm__live_code_name(e.code), code);
    assert_true(e.err.text[0] != '\0');
    if (path)
        assert_string_equal(e.err.path, path);
    assert_string_equal(req.id, id);
    assert_null(req.paths);
    assert_true(vv_is_zero(req.value));
}

static void test_every_op(void **state)
{
    fixture *f = *state;
    dmm__live_req q;
    parse_ok(f, "{\"id\": 7, \"op\": \"hello\", \"token\": \"t\"}", &q);
    assert_int_equal(q.op, DMM__OP_HELLO);
    assert_string_equal(q.id, "7");
    assert_string_equal(q.text, "t");
    dmm__live_req_free(f->vc, &q);

    static const struct {
        const char *name;
        enum dmm__live_op op;
    } bare[] = {{"status", DMM__OP_STATUS},     {"pause", DMM__OP_PAUSE},
                {"resume", DMM__OP_RESUME},     {"snapshot", DMM__OP_SNAPSHOT},
                {"shutdown", DMM__OP_SHUTDOWN}, {"hello", DMM__OP_HELLO}};
    for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++) {
        char line[128];
        snprintf(line, sizeof line, "{\"op\": \"%s\"}", bare[i].name);
        parse_ok(f, line, &q);
        assert_int_equal(q.op, bare[i].op);
        assert_string_equal(q.id, "");
        assert_string_equal(dmm__live_op_name(q.op), bare[i].name);
        dmm__live_req_free(f->vc, &q);
    }

    parse_ok(f, "{\"op\": \"step\", \"n\": 3}", &q);
    assert_int_equal(q.n, 3);
    dmm__live_req_free(f->vc, &q);
    parse_ok(f, "{\"op\": \"step\"}", &q);
    assert_int_equal(q.n, 1);
    dmm__live_req_free(f->vc, &q);

    parse_ok(f, "{\"op\": \"rate\", \"hz\": 2.5}", &q);
    assert_true(q.num == 2.5);
    dmm__live_req_free(f->vc, &q);
    parse_ok(f, "{\"op\": \"rate\", \"hz\": \"max\"}", &q);
    assert_true(q.num == 0);
    dmm__live_req_free(f->vc, &q);

    parse_ok(f,
             "{\"id\": \"a\\\"b\", \"op\": \"get\", \"path\": "
             "\"accum/a\\\\/b/single\"}",
             &q);
    assert_string_equal(q.id, "\"a\\\"b\"");
    assert_int_equal(q.npaths, 1);
    assert_int_equal(q.paths[0].n, 3);
    /* A read: the labels were never interned, so nothing is there. */
    assert_true(q.paths[0].missing);
    assert_int_equal(vv_label_count(f->vc), 0);
    vv_label l;
    assert_int_equal(vv_intern_cstr(f->vc, "a/b", &l), 0);
    assert_int_equal(vv_intern_cstr(f->vc, "single", &l), 0);
    assert_int_equal(vv_intern_cstr(f->vc, "accum", &l), 0);
    assert_true(dmm__live_path_resolve(f->vc, &q.paths[0]));
    assert_string_equal(vv_label_str(f->vc, q.paths[0].label[1], NULL), "a/b");
    assert_int_equal(q.paths[0].label[0], l);
    dmm__live_req_free(f->vc, &q);

    parse_ok(f,
             "{\"op\": \"set\", \"path\": "
             "\"accum/c/delta/identity/one/single\", \"value\": -0.5}",
             &q);
    assert_int_equal(q.op, DMM__OP_SET);
    assert_int_equal(q.paths[0].n, 6);
    assert_true(q.num == -0.5);
    dmm__live_req_free(f->vc, &q);

    parse_ok(f,
             "{\"op\": \"edit\", \"delta\": {\"accum\": {\"c\": "
             "{\"delta\": {\"identity\": {\"one\": {\"single\": 2}}}}}}}",
             &q);
    vv want = tu_vv(f->vc, "{\"accum\": {\"c\": {\"delta\": {\"identity\": "
                           "{\"one\": {\"single\": 2}}}}}}");
    tu_assert_vv_close(f->vc, q.value, want, 0);
    vv_free(f->vc, want);
    dmm__live_req_free(f->vc, &q);

    parse_ok(f,
             "{\"op\": \"feed\", \"neuron\": \"input/in\", \"outputs\": "
             "{\"x\": 1}}",
             &q);
    assert_string_equal(vv_label_str(f->vc, q.name, NULL), "in");
    dmm__live_req_free(f->vc, &q);
    /* The neuron is read by the path scanner: escapes as everywhere. */
    parse_ok(f,
             "{\"op\": \"feed\", \"neuron\": \"input/a\\\\/b\", \"outputs\": "
             "{\"x\": 1}}",
             &q);
    assert_string_equal(vv_label_str(f->vc, q.name, NULL), "a/b");
    dmm__live_req_free(f->vc, &q);

    /* A last ":number" is the scalar part at the path before it. */
    parse_ok(f, "{\"op\": \"get\", \"path\": \"a/b/:number\"}", &q);
    assert_int_equal(q.paths[0].n, 2);
    assert_true(q.paths[0].scalar);
    assert_string_equal(q.paths[0].text, "a/b/:number");
    dmm__live_req_free(f->vc, &q);
    parse_ok(f, "{\"op\": \"get\", \"path\": \"a/b\"}", &q);
    assert_false(q.paths[0].scalar);
    dmm__live_req_free(f->vc, &q);
    parse_ok(f,
             "{\"op\": \"set\", \"path\": \"a/b/c/d/e/f/:number\", "
             "\"value\": 2}",
             &q);
    assert_int_equal(q.paths[0].n, 6);
    assert_true(q.paths[0].scalar);
    dmm__live_req_free(f->vc, &q);

    parse_ok(f,
             "{\"op\": \"subscribe\", \"paths\": [\"a/b\", \"c\"], "
             "\"every\": 5, \"changes\": true}",
             &q);
    assert_int_equal(q.npaths, 2);
    assert_string_equal(q.paths[1].text, "c");
    assert_int_equal(q.n, 5);
    assert_true(q.flag);
    dmm__live_req_free(f->vc, &q);

    parse_ok(f, "{\"op\": \"unsubscribe\", \"subscription\": 4}", &q);
    assert_int_equal(q.n, 4);
    dmm__live_req_free(f->vc, &q);
    parse_ok(f, "{\"op\": \"save\", \"file\": \"s.json\"}", &q);
    assert_string_equal(q.text, "s.json");
    dmm__live_req_free(f->vc, &q);
    parse_ok(f, "{\"op\": \"load\", \"network\": {\"dmm\": 1}}", &q);
    assert_non_null(q.doc);
    assert_false(q.doc_state);
    dmm__live_req_free(f->vc, &q);
    parse_ok(f, "{\"op\": \"load\", \"state\": {\"dmm-state\": 1}}", &q);
    assert_true(q.doc_state);
    dmm__live_req_free(f->vc, &q);
}

static void test_bad_requests(void **state)
{
    fixture *f = *state;
    parse_bad(f, "{\"op\": ", "malformed", NULL, "");
    parse_bad(f, "", "malformed", NULL, "");
    parse_bad(f, "\"status\"", "malformed", "", "");
    parse_bad(f, "{\"id\": 1, \"op\": \"x\"}", "unknown-op", "/op", "1");
    parse_bad(f, "{\"id\": 2, \"op\": null}", "unknown-op", "/op", "2");
    parse_bad(f, "{\"id\": 3}", "bad-request", "/op", "3");
    parse_bad(f, "{\"id\": 1.5, \"op\": \"status\"}", "bad-request", "/id", "");
    parse_bad(f, "{\"id\": 4, \"op\": \"pause\", \"n\": 1}", "bad-request",
              "/n", "4");
    parse_bad(f, "{\"op\": \"step\", \"n\": 1000001}", "bad-request", "/n", "");
    parse_bad(f, "{\"op\": \"step\", \"n\": \"3\"}", "bad-request", "/n", "");
    parse_bad(f, "{\"op\": \"rate\"}", "bad-request", "/hz", "");
    parse_bad(f, "{\"op\": \"rate\", \"hz\": 0}", "bad-request", "/hz", "");
    parse_bad(f, "{\"op\": \"get\"}", "bad-request", "/path", "");
    parse_bad(f, "{\"op\": \"get\", \"path\": 3}", "bad-request", "/path", "");
    parse_bad(f, "{\"op\": \"get\", \"path\": \"\"}", "bad-path", "/path", "");
    parse_bad(f, "{\"op\": \"get\", \"path\": \"a\\\\x\"}", "bad-path", "/path",
              "");
    parse_bad(f, "{\"op\": \"set\", \"path\": \"a/b/c/d/e\", \"value\": 1}",
              "bad-path", "/path", "");
    parse_bad(f, "{\"op\": \"set\", \"path\": \"a/b/c/d/e/f\"}", "bad-request",
              "/value", "");
    parse_bad(f, "{\"op\": \"set\", \"path\": \"a/b/c/d/e/f\", \"value\": {}}",
              "bad-value", "/value", "");
    parse_bad(f,
              "{\"op\": \"set\", \"path\": \"a/b/c/d/e/f\", \"value\": 1e999}",
              "malformed", NULL, "");
    parse_bad(
        f, "{\"op\": \"set\", \"path\": \"a/b/c/d/e/:number\", \"value\": 1}",
        "bad-path", "/path", "");
    parse_bad(f, "{\"op\": \"get\", \"path\": \"a/:number/b\"}", "bad-path",
              "/path", "");
    parse_bad(f, "{\"op\": \"subscribe\", \"paths\": [\"a\", \":number\"]}",
              "bad-path", "/paths/1", "");
    parse_bad(f, "{\"op\": \"edit\"}", "bad-request", "/delta", "");
    parse_bad(f, "{\"op\": \"edit\", \"delta\": {\"a\": [1]}}", "bad-value",
              "/delta/a", "");
    parse_bad(f, "{\"op\": \"feed\", \"neuron\": \"input\", \"outputs\": {}}",
              "bad-request", "/neuron", "");
    parse_bad(f,
              "{\"op\": \"feed\", \"neuron\": \"input/a/b\", \"outputs\": {}}",
              "bad-request", "/neuron", "");
    parse_bad(f, "{\"op\": \"feed\", \"neuron\": \"input/a\"}", "bad-request",
              "/outputs", "");
    /* A neuron has no scalar part; and nothing of a refused feed is
     * interned. */
    size_t labels = vv_label_count(f->vc);
    parse_bad(f,
              "{\"op\": \"feed\", \"neuron\": \"input/fresh/:number\", "
              "\"outputs\": {}}",
              "bad-request", "/neuron", "");
    parse_bad(f,
              "{\"op\": \"feed\", \"neuron\": \"input/:number\", "
              "\"outputs\": {}}",
              "bad-request", "/neuron", "");
    parse_bad(f,
              "{\"op\": \"feed\", \"neuron\": \"fresh/name\", "
              "\"outputs\": {}}",
              "bad-request", "/neuron", "");
    parse_bad(f,
              "{\"op\": \"feed\", \"neuron\": \"input/fresh\\\\q\", "
              "\"outputs\": {}}",
              "bad-request", "/neuron", "");
    assert_int_equal(vv_label_count(f->vc), labels);
    parse_bad(f, "{\"op\": \"subscribe\", \"paths\": \"a\"}", "bad-request",
              "/paths", "");
    parse_bad(f, "{\"op\": \"subscribe\", \"paths\": [\"a\", \"a\"]}",
              "bad-request", "/paths/1", "");
    parse_bad(f, "{\"op\": \"subscribe\", \"paths\": [\"a\"], \"changes\": 1}",
              "bad-request", "/changes", "");
    parse_bad(f, "{\"op\": \"subscribe\", \"paths\": [\"a\"], \"every\": 0}",
              "bad-request", "/every", "");
    parse_bad(f, "{\"op\": \"save\", \"file\": \"\"}", "bad-request", "/file",
              "");
    parse_bad(f, "{\"op\": \"save\", \"file\": \"a\\u0000b\"}", "malformed",
              NULL, "");
    parse_bad(f, "{\"op\": \"load\"}", "bad-request", "", "");
    parse_bad(f, "{\"op\": \"load\", \"network\": {}, \"file\": \"x\"}",
              "bad-request", "", "");
    parse_bad(f, "{\"op\": \"load\", \"network\": 1}", "bad-request",
              "/network", "");
    parse_bad(f, "{\"op\": \"status\", \"op\": \"pause\"}", "malformed", NULL,
              "");
}

/* dmm_path_lookup reads the text exactly as dmm_path_parse does, and
 * never interns; both read ":number" alike. */
static void test_path_lookup(void **state)
{
    static const char *const good[] = {
        "a",
        "a/b/c",
        "a\\/b/c",
        "x\\\\/y",
        "\\/\\//\\\\",
        "é/ü",
        "a/:number",
        "a\\/b/c/:number",
        ":numbers/a",
        "a/:Number/number",
        "1/2/3/4/5/6/7/8/:number",
    };
    static const char *const bad[] = {
        "",
        "/",
        "a/",
        "/a",
        "a//b",
        "a\\",
        "a\\x/b",
        "1/2/3/4/5/6/7/8/9", /* more than max = 8 parts */
        ":number",
        ":number/a",
        "a/:number/b",
        "a/:number/",
        "a/:number/:number",
        "a\\:number",
    };
    vv_ctx *vc = vv_ctx_new(NULL), *other = vv_ctx_new(NULL);
    assert_non_null(vc);
    assert_non_null(other);
    dmm_error err;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *s = good[i];
        vv_label a[8], b[8];
        size_t na = 0, nb = 0;
        bool sa = false, sb = false;
        bool ends = strlen(s) >= 8 && !strcmp(s + strlen(s) - 8, "/:number");
        /* Unknown labels: not found, counted, nothing interned. */
        assert_int_equal(
            dmm_path_lookup(other, s, strlen(s), b, 8, &nb, &sb, &err),
            DMM_E_NOTFOUND);
        assert_int_equal(vv_label_count(other), 0);
        assert_true(sb == ends);
        assert_int_equal(dmm_path_parse(vc, s, strlen(s), a, 8, &na, &sa, &err),
                         0);
        assert_int_equal(nb, na);
        assert_true(sa == ends);
        size_t count = vv_label_count(vc);
        sb = !ends;
        assert_int_equal(
            dmm_path_lookup(vc, s, strlen(s), b, 8, &nb, &sb, &err), 0);
        assert_int_equal(nb, na);
        assert_true(sb == ends);
        assert_memory_equal(a, b, na * sizeof a[0]);
        assert_int_equal(vv_label_count(vc), count);
        /* ":number" is the scalar part, never a label. */
        for (size_t k = 0; k < na; k++)
            assert_string_not_equal(vv_label_str(vc, a[k], NULL), ":number");
        /* A reader that names a neuron, an input or an output refuses it. */
        dmm_error_clear(&err);
        assert_int_equal(
            dmm_path_parse(vc, s, strlen(s), a, 8, &na, NULL, &err),
            ends ? DMM_E_INVAL : 0);
        assert_int_equal(
            dmm_path_lookup(vc, s, strlen(s), b, 8, &nb, NULL, &err),
            ends ? DMM_E_INVAL : 0);
        if (ends)
            assert_non_null(strstr(err.text, "cannot end path"));
        assert_int_equal(vv_label_count(vc), count);
    }
    /* Some labels known, one not: not found. */
    vv_label b[8];
    size_t nb;
    bool sb;
    assert_int_equal(dmm_path_lookup(vc, "a/zzz", 5, b, 8, &nb, &sb, &err),
                     DMM_E_NOTFOUND);
    assert_int_equal(nb, 2);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *s = bad[i];
        size_t count = vv_label_count(vc);
        dmm_error_clear(&err);
        assert_int_equal(
            dmm_path_lookup(vc, s, strlen(s), b, 8, &nb, &sb, &err),
            DMM_E_INVAL);
        assert_true(err.text[0] != '\0');
        assert_int_equal(vv_label_count(vc), count);
        /* Parsing checks the whole text before it interns a part. */
        assert_int_equal(dmm_path_parse(vc, s, strlen(s), b, 8, &nb, &sb, &err),
                         DMM_E_INVAL);
        assert_int_equal(vv_label_count(vc), count);
    }
    /* A NUL byte inside the text is refused by both. */
    assert_int_equal(dmm_path_lookup(vc, "a\0b", 3, b, 8, &nb, &sb, &err),
                     DMM_E_INVAL);
    assert_int_equal(dmm_path_parse(vc, "a\0b", 3, b, 8, &nb, &sb, &err),
                     DMM_E_INVAL);
    assert_int_equal(vv_label_find(vc, ":number", 7, &b[0]), DMM_E_NOTFOUND);
    vv_ctx_free(other);
    vv_ctx_free(vc);
}

/* get and subscribe only look their paths up; set interns (it may create a
 * weight). A missing path is resolved once its labels exist. */
static void test_read_paths_do_not_intern(void **state)
{
    fixture *f = *state;
    dmm__live_req q;
    for (int k = 0; k < 200; k++) {
        char line[256];
        snprintf(line, sizeof line,
                 k % 2 ? "{\"op\": \"get\", \"path\": \"made/up-%d\"}"
                       : "{\"op\": \"subscribe\", \"paths\": "
                         "[\"made/up-%d\", \"x\"]}",
                 k);
        parse_ok(f, line, &q);
        for (size_t i = 0; i < q.npaths; i++) {
            assert_true(q.paths[i].missing);
            assert_false(dmm__live_path_resolve(f->vc, &q.paths[i]));
        }
        dmm__live_req_free(f->vc, &q);
    }
    assert_int_equal(vv_label_count(f->vc), 0);

    parse_ok(f, "{\"op\": \"get\", \"path\": \"made/up-7\"}", &q);
    vv_label l;
    assert_int_equal(vv_intern_cstr(f->vc, "made", &l), 0);
    /* One label of two: still missing. */
    assert_false(dmm__live_path_resolve(f->vc, &q.paths[0]));
    assert_true(q.paths[0].missing);
    assert_int_equal(vv_intern_cstr(f->vc, "up-7", &l), 0);
    assert_true(dmm__live_path_resolve(f->vc, &q.paths[0]));
    assert_false(q.paths[0].missing);
    assert_int_equal(q.paths[0].label[1], l);
    dmm__live_req_free(f->vc, &q);
    /* Known labels: resolved at once. */
    parse_ok(f, "{\"op\": \"subscribe\", \"paths\": [\"up-7/made\"]}", &q);
    assert_false(q.paths[0].missing);
    dmm__live_req_free(f->vc, &q);

    size_t count = vv_label_count(f->vc);
    parse_ok(f,
             "{\"op\": \"set\", \"path\": \"accum/c/delta/identity/one/"
             "single\", \"value\": 1}",
             &q);
    assert_false(q.paths[0].missing);
    assert_int_equal(vv_label_count(f->vc), count + 6);
    dmm__live_req_free(f->vc, &q);
    /* Bad paths are still refused without interning anything. */
    parse_bad(f, "{\"op\": \"get\", \"path\": \"fresh//x\"}", "bad-path",
              "/path", "");
    parse_bad(f, "{\"op\": \"subscribe\", \"paths\": [\"ok\", \"fresh\\\\q\"]}",
              "bad-path", "/paths/1", "");
    assert_int_equal(vv_label_count(f->vc), count + 6);
}

static void test_replies(void **state)
{
    vv_buf b = {0};
    dmm__live_err e;
    dmm__live_err_set(&e, DMM__LIVE_E_BAD_PATH, "/path", "a \"quoted\" %s",
                      "word");
    assert_int_equal(dmm__live_reply_error(&b, "7", &e), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    assert_string_equal(b.data, "{\"id\": 7, \"ok\": false, \"error\": "
                                "{\"code\": \"bad-path\", \"message\": \"a "
                                "\\\"quoted\\\" word\", \"path\": "
                                "\"/path\"}}\n");
    b.len = 0;
    assert_int_equal(dmm__live_reply_begin(&b, ""), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    assert_string_equal(b.data, "{\"ok\": true");
    free(b.data);

    /* A message longer than the field ends in "...", never cut silently. */
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dmm__live_err_set(&e, DMM__LIVE_E_IO, "", "%s", big);
    assert_string_equal(e.err.text + strlen(e.err.text) - 3, "...");

    /* Every wire code has its name, and the names are distinct. */
    static const char *const names[] = {
#define NAME(id, wire, meaning) wire,
        DMM__LIVE_ERRORS(NAME)
#undef NAME
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_string_equal(dmm__live_code_name((enum dmm__live_code)i),
                            names[i]);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(names[k], names[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test(test_path_lookup),
        cmocka_unit_test_setup_teardown(test_read_paths_do_not_intern, setup,
                                        teardown),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
