// SPDX-License-Identifier: MIT
/*
 * The network reference vectors (spec/vectors/{wave,reader-accum,char-count}
 * .json): load "network", apply each "script" event just before its cycle,
 * run, and compare Y_t with every "expect" entry (relative tolerance 1e-12).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"
#include "testutil.h"

/* new (free()): the vector file, from tests/data/vectors or the spec. */
static char *read_vector(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/vectors/%s", name);
    char *path = tu_path(rel);
    char *text = tu_read_file(path, NULL);
    free(path);
    if (text)
        return text;
    const char *spec = getenv("DMM_SHARED_SPEC");
    char buf[1024];
    if (spec)
        snprintf(buf, sizeof buf, "%s/vectors/%s", spec, name);
    else
        snprintf(buf, sizeof buf, "%s/../shared/spec/vectors/%s",
                 tu_source_root(), name);
    text = tu_read_file(buf, NULL);
    if (!text)
        fail_msg("cannot read vector file %s", name);
    return text;
}

static vv from_json(vv_ctx *vc, const json_t *j, const char *what)
{
    vv v;
    dmm_error err;
    if (vv_from_json(vc, j, "", &v, &err) != 0)
        fail_msg("%s: %s: %s", what, err.path, err.text);
    return v;
}

static void fail_err(const char *what, const dmm_error *err)
{
    char msg[2048];
    dmm_error_format(err, msg, sizeof msg);
    fail_msg("%s: %s", what, msg);
}

static void apply_event(vv_ctx *vc, dmm_net *net, const json_t *ev)
{
    const char *op = json_string_value(json_object_get(ev, "op"));
    dmm_error err;
    assert_non_null(op);
    if (strcmp(op, "edit") == 0) {
        vv delta = from_json(vc, json_object_get(ev, "delta"), "delta");
        if (dmm_net_edit(net, delta, &err) != 0)
            fail_err("edit", &err);
        vv_free(vc, delta);
    } else if (strcmp(op, "feed") == 0) {
        const json_t *n = json_object_get(ev, "neuron");
        vv_label tn[2];
        size_t k;
        assert_true(json_is_string(n));
        if (dmm_path_parse(vc, json_string_value(n), json_string_length(n), tn,
                           2, &k, NULL, &err) != 0)
            fail_err("feed neuron", &err);
        assert_int_equal(k, 2);
        assert_int_equal(tn[0], tu_label(vc, "input"));
        vv outputs = from_json(vc, json_object_get(ev, "outputs"), "feed");
        if (dmm_net_feed(net, tn[1], outputs, &err) != 0)
            fail_err("feed", &err);
        vv_free(vc, outputs);
    } else {
        fail_msg("unknown script op %s", op);
    }
}

static void run_vector(const char *name)
{
    char *text = read_vector(name);
    json_error_t je;
    json_t *doc = json_loads(text, JSON_DECODE_INT_AS_REAL, &je);
    free(text);
    if (!doc)
        fail_msg("%s:%d:%d: %s", name, je.line, je.column, je.text);

    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = dmm_registry_new(vc);
    assert_non_null(reg);
    assert_int_equal(dmm_registry_add_builtins(reg), 0);
    char *net_text = json_dumps(json_object_get(doc, "network"), JSON_COMPACT);
    assert_non_null(net_text);
    dmm_net *net = NULL;
    dmm_error err;
    if (dmm_net_load_text(vc, reg, net_text, strlen(net_text), name, &net,
                          &err) != 0)
        fail_err("load", &err);
    free(net_text);

    const json_t *script = json_object_get(doc, "script");
    const json_t *expect = json_object_get(doc, "expect");
    int steps = (int)json_number_value(json_object_get(doc, "steps"));
    assert_true(steps > 0);
    size_t checked = 0;
    for (int t = 1; t <= steps; t++) {
        for (size_t k = 0; k < json_array_size(script); k++) {
            const json_t *ev = json_array_get(script, k);
            if (json_number_value(json_object_get(ev, "step")) == t)
                apply_event(vc, net, ev);
        }
        if (dmm_net_step(net, &err) != 0)
            fail_err("step", &err);
        assert_int_equal(dmm_net_step_count(net), t);
        for (size_t k = 0; k < json_array_size(expect); k++) {
            const json_t *ex = json_array_get(expect, k);
            if (json_number_value(json_object_get(ex, "step")) != t)
                continue;
            vv want = from_json(vc, json_object_get(ex, "outputs"), "expect");
            tu_assert_canonical(vc, dmm_net_outputs(net));
            if (!vv_close(dmm_net_outputs(net), want, 1e-12, 0))
                print_error("%s: Y_%d differs\n", name, t);
            tu_assert_vv_close(vc, dmm_net_outputs(net), want, 1e-12);
            vv_free(vc, want);
            checked++;
        }
    }
    assert_int_equal(checked, json_array_size(expect));
    dmm_net_free(net);
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    json_decref(doc);
}

static void test_wave(void **state)
{
    run_vector("wave.json");
}

static void test_reader_accum(void **state)
{
    run_vector("reader-accum.json");
}

static void test_char_count(void **state)
{
    run_vector("char-count.json");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wave),
        cmocka_unit_test(test_reader_accum),
        cmocka_unit_test(test_char_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
