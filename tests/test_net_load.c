// SPDX-License-Identifier: MIT
/*
 * Loading network descriptions. Bad input is data-driven: each directory
 * tests/data/load-invalid/<case>/ holds network.json and expected.txt, the
 * whole message dmm_error_format gives when the file is loaded with source
 * "network.json" (its path relative to the case directory). Valid loads
 * check what the network holds afterwards.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"
#include "testutil_net.h"

typedef tn_world fixture;

/* A type with a parameter, to check "params". */
static int fire_scaled(dmm_fire *f)
{
    return vv_scale(f->vc, dmm_fire_param(f, 0), f->input, &f->output);
}

static const dmm_param_spec scaled_params[] = {{"gain", 1.0, "the factor"},
                                               {NULL, 0, NULL}};
static const dmm_neuron_type scaled_type = {
    .name = "scaled",
    .summary = "gain times the input",
    .outputs_doc = "same names as inputs",
    .params = scaled_params,
    .fn = fire_scaled,
};

static int setup(void **state)
{
    static const dmm_neuron_type *const extra[] = {&scaled_type, NULL};
    return tn_world_setup(state, extra);
}

static int teardown(void **state)
{
    return tn_world_teardown(state);
}

/* ---- the load-invalid suite ---------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_invalid_cases(void **state)
{
    fixture *fx = *state;
    char *dir = tu_path("tests/data/load-invalid");
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    assert_true(n >= 15);

    int failures = 0;
    for (size_t k = 0; k < n; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/network.json", dir, names[k]);
        size_t len;
        char *text = tu_read_file(path, &len);
        snprintf(path, sizeof path, "%s/%s/expected.txt", dir, names[k]);
        char *want = tu_read_file(path, NULL);
        if (!text || !want) {
            print_error("%s: missing network.json or expected.txt\n", names[k]);
            failures++;
        } else {
            want[strcspn(want, "\n")] = '\0';
            dmm_net *net = NULL;
            dmm_error err;
            int rc = dmm_net_load_text(fx->vc, fx->reg, text, len,
                                       "network.json", &net, &err);
            char got[2048];
            dmm_error_format(&err, got, sizeof got);
            if (rc == 0 || net != NULL) {
                print_error("%s: loaded, expected an error\n", names[k]);
                failures++;
                dmm_net_free(net);
            } else if (err.code != rc || strcmp(got, want) != 0) {
                print_error("%s:\n  got:  %s\n  want: %s\n", names[k], got,
                            want);
                failures++;
            }
        }
        free(text);
        free(want);
        free(names[k]);
    }
    free(dir);
    assert_int_equal(failures, 0);
}

/* ---- valid loads ----------------------------------------------------------
 */

#define SELF_ROW                                                               \
    "\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "                \
    "{\"single\": 1}}}}}"

static void test_minimal(void **state)
{
    fixture *fx = *state;
    dmm_net *net = tn_load(fx, "{\"dmm\": 1, \"matrix\": {" SELF_ROW "}}");
    vv want = tu_vv(fx->vc, "{" SELF_ROW "}");
    assert_true(vv_equal(dmm_net_matrix(net), want));
    assert_int_equal(dmm_net_step_count(net), 0);
    assert_int_equal(dmm_net_active_count(net), 1);
    assert_int_equal(dmm_net_weight_count(net), 1);
    /* Y_0 is Self's output only: {accum: {self: {single: W}}}. */
    vv y =
        tu_vv(fx->vc, "{\"accum\": {\"self\": {\"single\": {" SELF_ROW "}}}}");
    assert_true(vv_equal(dmm_net_outputs(net), y));
    /* An accumulator fed only by itself keeps W. */
    dmm_error err;
    assert_int_equal(dmm_net_step(net, &err), 0);
    assert_int_equal(dmm_net_step(net, &err), 0);
    assert_true(vv_equal(dmm_net_matrix(net), want));
    assert_int_equal(dmm_net_step_count(net), 2);
    vv_free(fx->vc, want);
    vv_free(fx->vc, y);
    dmm_net_free(net);
}

static void test_links_outputs_params(void **state)
{
    fixture *fx = *state;
    /* Links use '/' between levels and '\' to escape '/' or '\' inside a
     * label; a from path may select deeper than the output. */
    const char *text =
        "{\"dmm\": 1, \"seed\": 42,\n"
        " \"matrix\": {" SELF_ROW "},\n"
        " \"links\": [[\"identity/a\\\\/b/x\", \"identity/k/single/deep\", "
        "0.5],\n"
        "            [\"identity/a\\\\/b/x\", \"identity/k/single/deep\", "
        "0.25],\n"
        "            [\"scaled/s\\\\\\\\t/in\", \"identity/k/single\", 2]],\n"
        " \"outputs\": {\"identity\": {\"k\": {\"single\": {\"deep\": 4}}}},\n"
        " \"params\": {\"scaled\": {\"s\\\\t\": {\"gain\": 3}}}}";
    dmm_net *net = tn_load(fx, text);
    vv want = tu_vv(fx->vc,
                    "{" SELF_ROW ", \"identity\": {\"a/b\": {\"x\": "
                    "{\"identity\": {\"k\": {\"single\": {\"deep\": 0.75}}}}}},"
                    " \"scaled\": {\"s\\\\t\": {\"in\": {\"identity\": "
                    "{\"k\": {\"single\": 2}}}}}}");
    tu_assert_vv_close(fx->vc, dmm_net_matrix(net), want, 0);
    assert_int_equal(dmm_net_active_count(net), 3);
    assert_int_equal(dmm_net_weight_count(net), 3);

    dmm_error err;
    assert_int_equal(dmm_net_step(net, &err), 0);
    /* identity/k is inactive (no row), so its output of Y_0 is used once
     * and gone from Y_1. */
    vv y1 =
        tu_vv(fx->vc, "{\"identity\": {\"a/b\": {\"x\": 3}}, "
                      "\"scaled\": {\"s\\\\t\": {\"in\": {\"deep\": 24}}}}");
    vv rest;
    vv_label self[3];
    dmm_net_self(net, self);
    assert_int_equal(
        vv_set(fx->vc, dmm_net_outputs(net), self, 3, VV_ZERO, &rest), 0);
    tu_assert_vv_close(fx->vc, rest, y1, 0);
    vv_free(fx->vc, rest);
    vv_free(fx->vc, y1);
    vv_free(fx->vc, want);
    dmm_net_free(net);
}

static void test_self_elsewhere(void **state)
{
    fixture *fx = *state;
    /* Self as an identity neuron that feeds itself: W stays as it is. */
    const char *text =
        "{\"dmm\": 1, \"self\": \"identity/w/m\",\n"
        " \"matrix\": {\"identity\": {\"w\": {\"m\": {\"identity\": "
        "{\"w\": {\"m\": 1}}}}}}}";
    dmm_net *net = tn_load(fx, text);
    vv_label self[3];
    dmm_net_self(net, self);
    assert_int_equal(self[0], tu_label(fx->vc, "identity"));
    assert_int_equal(self[1], tu_label(fx->vc, "w"));
    assert_int_equal(self[2], tu_label(fx->vc, "m"));
    vv w0 = vv_ref(dmm_net_matrix(net));
    dmm_error err;
    assert_int_equal(dmm_net_step(net, &err), 0);
    assert_true(vv_equal(dmm_net_matrix(net), w0));
    assert_false(vv_is_zero(w0));
    vv_free(fx->vc, w0);
    dmm_net_free(net);
}

static void test_load_file(void **state)
{
    fixture *fx = *state;
    dmm_net *net = NULL;
    dmm_error err;
    assert_int_equal(
        dmm_net_load_file(fx->vc, fx->reg, "/nonexistent/x.json", &net, &err),
        DMM_E_IO);
    assert_null(net);
    char msg[1024];
    dmm_error_format(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, "/nonexistent/x.json"));
    /* A file's name is the source of its messages. */
    char *path = tu_path("tests/data/load-invalid/dmm-version-2/network.json");
    assert_int_equal(dmm_net_load_file(fx->vc, fx->reg, path, &net, &err),
                     DMM_E_INVAL);
    assert_string_equal(err.source, path);
    assert_string_equal(err.path, "/dmm");
    assert_int_equal(err.line, 2);
    free(path);
    /* A directory given as a network says so, not just "read error". */
    path = tu_path("tests/data");
    assert_int_equal(dmm_net_load_file(fx->vc, fx->reg, path, &net, &err),
                     DMM_E_IO);
    assert_non_null(strstr(err.text, "directory"));
    free(path);
}

static void test_paths(void **state)
{
    fixture *fx = *state;
    vv_label p[4];
    size_t n;
    dmm_error err;
    const char *s = "a\\/b/c\\\\/d";
    assert_int_equal(dmm_path_parse(fx->vc, s, strlen(s), p, 4, &n, NULL, &err),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(p[0], tu_label(fx->vc, "a/b"));
    assert_int_equal(p[1], tu_label(fx->vc, "c\\"));
    assert_int_equal(p[2], tu_label(fx->vc, "d"));
    vv_buf b = {0};
    assert_int_equal(dmm_path_write(fx->vc, p, n, &b), 0);
    assert_int_equal(b.len, strlen(s));
    assert_memory_equal(b.data, s, b.len);
    free(b.data);
    assert_int_equal(dmm_path_parse(fx->vc, "a//b", 4, p, 4, &n, NULL, &err),
                     DMM_E_INVAL);
    assert_int_equal(dmm_path_parse(fx->vc, "a/b\\", 4, p, 4, &n, NULL, &err),
                     DMM_E_INVAL);
    assert_int_equal(dmm_path_parse(fx->vc, "a/b\\c", 5, p, 4, &n, NULL, &err),
                     DMM_E_INVAL);
    assert_int_equal(dmm_path_parse(fx->vc, "a/b/c", 5, p, 2, &n, NULL, &err),
                     DMM_E_INVAL);
    assert_int_equal(dmm_path_parse(fx->vc, "", 0, p, 2, &n, NULL, &err),
                     DMM_E_INVAL);
    /* A last ":number" is the scalar part of the node before it, where the
     * reader takes one; it is never a label. */
    bool scalar = false;
    size_t labels = vv_label_count(fx->vc);
    s = "a\\/b/:number";
    assert_int_equal(
        dmm_path_parse(fx->vc, s, strlen(s), p, 4, &n, &scalar, &err), 0);
    assert_int_equal(n, 1);
    assert_true(scalar);
    assert_int_equal(p[0], tu_label(fx->vc, "a/b"));
    assert_int_equal(vv_label_count(fx->vc), labels);
    assert_int_equal(dmm_path_parse(fx->vc, "a/b", 3, p, 4, &n, &scalar, &err),
                     0);
    assert_false(scalar);
    /* ":number" counts against no limit: it is not a label. */
    assert_int_equal(
        dmm_path_parse(fx->vc, "a/b/:number", 11, p, 2, &n, &scalar, &err), 0);
    assert_int_equal(n, 2);
    assert_true(scalar);
    /* Refused where the path names a neuron, an input or an output, and
     * anywhere but last. */
    assert_int_equal(
        dmm_path_parse(fx->vc, "a/b/:number", 11, p, 4, &n, NULL, &err),
        DMM_E_INVAL);
    assert_string_equal(err.text, "\":number\" (a scalar part) cannot end "
                                  "path \"a/b/:number\": it must name a "
                                  "neuron, an input or an output");
    assert_int_equal(dmm_path_parse(fx->vc, "a/:number/new-label", 19, p, 4, &n,
                                    &scalar, &err),
                     DMM_E_INVAL);
    assert_string_equal(err.text, "\":number\" in the middle of path "
                                  "\"a/:number/new-label\" (it names a node's "
                                  "scalar part, which has no parts below it)");
    assert_int_equal(
        dmm_path_parse(fx->vc, ":number", 7, p, 4, &n, &scalar, &err),
        DMM_E_INVAL);
    assert_string_equal(err.text, "\":number\" at the start of path "
                                  "\":number\" (it names the scalar part of "
                                  "the node named before it)");
    assert_int_equal(vv_label_count(fx->vc), labels);
    vv_label l;
    assert_int_equal(vv_label_find(fx->vc, ":number", 7, &l), DMM_E_NOTFOUND);
}

/* A link's weight sits at to/from in W, a scalar part: a from path ending in
 * ":number" is the same place as without it, as in "matrix", where
 * {"m": {":number": 1}} is {"m": 1}. Loading, running and W agree with the
 * matrix spelling, and no label ":number" appears (issue 18). */
static void test_links_scalar_part(void **state)
{
    fixture *fx = *state;
    const char *by_links =
        "{\"dmm\": 1, \"matrix\": {" SELF_ROW "},\n"
        " \"outputs\": {\"identity\": {\"c\": {\"v\": {\"a\": 3, \"b\": "
        "{\":number\": 2, \"x\": -5}}}}},\n"
        " \"links\": [[\"identity/c/v\", \"identity/c/v\", 1],\n"
        "  [\"max-norm/m/in\", \"identity/c/v\", 1],\n"
        "  [\"output/o/x\", \"max-norm/m/:number\", 1],\n"
        "  [\"output/o/y\", \"identity/c/v/b/:number\", 0.5],\n"
        "  [\"output/o/y\", \"identity/c/v/b\", 0.25],\n"
        "  [\"output/o/z\", \"max-norm/:number\", 2]]}";
    const char *by_matrix =
        "{\"dmm\": 1, \"matrix\": {" SELF_ROW ",\n"
        "  \"identity\": {\"c\": {\"v\": {\"identity\": {\"c\": {\"v\": "
        "1}}}}},\n"
        "  \"max-norm\": {\"m\": {\"in\": {\"identity\": {\"c\": {\"v\": "
        "1}}}}},\n"
        "  \"output\": {\"o\": {\"x\": {\"max-norm\": {\"m\": {\":number\": "
        "1}}},\n"
        "    \"y\": {\"identity\": {\"c\": {\"v\": {\"b\": 0.75}}}},\n"
        "    \"z\": {\"max-norm\": {\":number\": 2}}}}},\n"
        " \"outputs\": {\"identity\": {\"c\": {\"v\": {\"a\": 3, \"b\": "
        "{\":number\": 2, \"x\": -5}}}}}}";
    dmm_net *a = tn_load(fx, by_links);
    dmm_net *b = tn_load(fx, by_matrix);
    assert_true(vv_equal(dmm_net_matrix(a), dmm_net_matrix(b)));
    dmm_error err;
    for (int k = 0; k < 4; k++) {
        assert_int_equal(dmm_net_step(a, &err), 0);
        assert_int_equal(dmm_net_step(b, &err), 0);
        char *ta = vv_to_string(fx->vc, dmm_net_outputs(a));
        char *tb = vv_to_string(fx->vc, dmm_net_outputs(b));
        assert_string_equal(ta, tb);
        /* Written and read back, the outputs are the same value. */
        vv back = tu_vv(fx->vc, ta);
        assert_true(vv_equal(back, dmm_net_outputs(a)));
        vv_free(fx->vc, back);
        free(ta);
        free(tb);
    }
    /* From step 2 on, output/o/x holds the max-norm of identity/c/v. */
    vv_label ox[3] = {tu_label(fx->vc, "output"), tu_label(fx->vc, "o"),
                      tu_label(fx->vc, "x")};
    assert_true(vv_get(dmm_net_outputs(a), ox, 3).num == 5);
    vv_label l;
    assert_int_equal(vv_label_find(fx->vc, ":number", 7, &l), DMM_E_NOTFOUND);
    dmm_net_free(a);
    dmm_net_free(b);
}

/* The complete example of docs/network-format.md, kept in step by hand. */
static void test_doc_example(void **state)
{
    fixture *fx = *state;
    dmm_net *net = tn_load(
        fx,
        "{\"dmm\": 1, \"seed\": 42,\n"
        " \"matrix\": {\"accum\": {\n"
        "  \"self\": {\"accum\": {\"accum\": {\"self\": {\"single\": 1}}}},\n"
        "  \"count\": {\"accum\": {\"accum\": {\"count\": {\"single\": "
        "1}}}}}},\n"
        " \"links\": [[\"accum/count/delta\", \"input/keys/signal\", 1],\n"
        "  [\"input/keys/dummy\", \"accum/self/single\", 1],\n"
        "  [\"output/show/x\", \"accum/count/single\", 0.5],\n"
        "  [\"tanh/squash/x\", \"accum/count/single\", 0.1]],\n"
        " \"outputs\": {\"accum\": {\"count\": {\"single\": {\"start\": "
        "1}}}}}");
    vv key = tu_vv(fx->vc, "{\"signal\": {\"h\": 1}}");
    dmm_error err;
    assert_int_equal(dmm_net_feed(net, tu_label(fx->vc, "keys"), key, &err), 0);
    assert_int_equal(dmm_net_step(net, &err), 0);
    vv y1 = tu_vv(fx->vc, "{\"input\": {\"keys\": {\"signal\": {\"h\": 1}}},"
                          " \"output\": {\"show\": {\"x\": {\"start\": 0.5}}},"
                          " \"accum\": {\"count\": {\"single\": {\"start\": "
                          "1}}}}");
    vv_label self[3];
    dmm_net_self(net, self);
    vv rest;
    assert_int_equal(
        vv_set(fx->vc, dmm_net_outputs(net), self, 3, VV_ZERO, &rest), 0);
    vv_label tanh_l = tu_label(fx->vc, "tanh");
    vv squash = vv_child(rest, tanh_l);
    vv no_tanh;
    assert_int_equal(vv_set(fx->vc, rest, &tanh_l, 1, VV_ZERO, &no_tanh), 0);
    tu_assert_vv_close(fx->vc, no_tanh, y1, 0);
    vv want_squash = tu_vv(fx->vc, "{\"squash\": {\"x\": {\"start\": "
                                   "0.0996679946249558}}}");
    tu_assert_vv_close(fx->vc, squash, want_squash, 1e-12);
    assert_int_equal(dmm_net_step(net, &err), 0);
    vv count = tu_vv(fx->vc, "{\"single\": {\"h\": 1, \"start\": 1}}");
    vv_label cp[2] = {tu_label(fx->vc, "accum"), tu_label(fx->vc, "count")};
    tu_assert_vv_close(fx->vc, vv_get(dmm_net_outputs(net), cp, 2), count, 0);
    vv_free(fx->vc, count);
    vv_free(fx->vc, want_squash);
    vv_free(fx->vc, no_tanh);
    vv_free(fx->vc, rest);
    vv_free(fx->vc, y1);
    vv_free(fx->vc, key);
    dmm_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_cases),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_links_outputs_params),
        cmocka_unit_test(test_self_elsewhere),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_links_scalar_part),
        cmocka_unit_test(test_doc_example),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
