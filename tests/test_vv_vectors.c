// SPDX-License-Identifier: MIT
/*
 * Every case of tests/data/vectors/vvalue-ops.json: arguments read through
 * vv_from_json (so non-canonical ones are canonicalised), the operation run
 * with the library, the result compared exactly and within rel 1e-12, and
 * checked canonical. The number of cases run must equal the file's length.
 */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPECTED_CASES 74

static vv arg_vv(vv_ctx *c, json_t *args, size_t k, size_t idx)
{
    char path[64];
    snprintf(path, sizeof path, "/%zu/args/%zu", idx, k);
    vv v = VV_ZERO;
    dmm_error err;
    dmm_error_clear(&err);
    int rc = vv_from_json(c, json_array_get(args, k), path, &v, &err);
    if (rc != 0)
        fail_msg("case %zu: vv_from_json(%s): %s %s", idx, path, err.path,
                 err.text);
    tu_assert_canonical(c, v);
    return v;
}

static int find_negative(const vv_label *path, int depth, double x, void *ud)
{
    (void)path;
    (void)depth;
    (void)ud;
    return x < 0;
}

/* {"true-channel": 1} iff right - left has no negative scalar. */
static vv less_or_equal(vv_ctx *c, vv left, vv right)
{
    vv diff = vv_ref(right);
    assert_int_equal(vv_axpy(c, &diff, -1.0, left), 0);
    int neg = vv_foreach_leaf(diff, find_negative, NULL);
    vv_free(c, diff);
    vv out = VV_ZERO;
    vv_label l = tu_label(c, neg ? "false-channel" : "true-channel");
    assert_int_equal(vv_wrap(c, 0.0, l, vv_number(1.0), &out), 0);
    return out;
}

/* Runs case idx of the file; fails the test on a mismatch. */
static void run_case(vv_ctx *c, json_t *cs, size_t idx)
{
    const char *op = json_string_value(json_object_get(cs, "op"));
    json_t *args = json_object_get(cs, "args");
    json_t *res = json_object_get(cs, "result");
    assert_non_null(op);
    assert_true(json_is_array(args));
    assert_non_null(res);
    size_t nargs = json_array_size(args);
    bool number_result = !strcmp(op, "max-norm") || !strcmp(op, "dot");
    vv got = VV_ZERO;
    double gotx = 0;

    if (!strcmp(op, "add")) {
        assert_true(nargs >= 2);
        for (size_t k = 0; k < nargs; k++) {
            vv a = arg_vv(c, args, k, idx), sum;
            assert_int_equal(vv_add(c, got, a, &sum), 0);
            vv_free(c, a);
            vv_free(c, got);
            got = sum;
        }
    } else if (!strcmp(op, "scale")) {
        assert_int_equal(nargs, 2);
        json_t *k = json_array_get(args, 0);
        assert_true(json_is_number(k));
        vv a = arg_vv(c, args, 1, idx);
        assert_int_equal(vv_scale(c, json_number_value(k), a, &got), 0);
        vv_free(c, a);
    } else if (!strcmp(op, "lincomb") || !strcmp(op, "mult-mask") ||
               !strcmp(op, "dot") || !strcmp(op, "less-or-equal")) {
        assert_int_equal(nargs, 2);
        vv a = arg_vv(c, args, 0, idx), b = arg_vv(c, args, 1, idx);
        char *sa = vv_to_string(c, a), *sb = vv_to_string(c, b);
        assert_non_null(sa);
        assert_non_null(sb);
        if (!strcmp(op, "lincomb"))
            assert_int_equal(vv_lincomb(c, a, b, &got), 0);
        else if (!strcmp(op, "mult-mask"))
            assert_int_equal(vv_mult_mask(c, a, b, &got), 0);
        else if (!strcmp(op, "dot"))
            assert_int_equal(vv_dot(c, a, b, &gotx), 0);
        else
            got = less_or_equal(c, a, b);
        /* The operands are borrowed: they must come back unchanged. */
        char *sa2 = vv_to_string(c, a), *sb2 = vv_to_string(c, b);
        assert_string_equal(sa, sa2);
        assert_string_equal(sb, sb2);
        free(sa);
        free(sb);
        free(sa2);
        free(sb2);
        vv_free(c, a);
        vv_free(c, b);
    } else if (!strcmp(op, "max-norm")) {
        assert_int_equal(nargs, 1);
        vv a = arg_vv(c, args, 0, idx);
        gotx = vv_max_norm(a);
        vv_free(c, a);
    } else {
        fail_msg("case %zu: unknown op \"%s\"", idx, op);
    }

    if (number_result) {
        assert_true(json_is_number(res));
        double want = json_number_value(res);
        if (!(gotx == want ||
              fabs(gotx - want) <= 1e-12 * fmax(fabs(gotx), fabs(want))))
            fail_msg("case %zu (%s): got %.17g, want %.17g", idx, op, gotx,
                     want);
        return;
    }
    char path[32];
    snprintf(path, sizeof path, "/%zu/result", idx);
    vv want = VV_ZERO;
    dmm_error err;
    assert_int_equal(vv_from_json(c, res, path, &want, &err), 0);
    tu_assert_canonical(c, got);
    if (!vv_close(got, want, 1e-12, 0.0))
        print_error("case %zu (%s, %s):\n", idx, op,
                    json_string_value(json_object_get(cs, "source")));
    tu_assert_vv_close(c, got, want, 1e-12);
    /* The vectors are dyadic, so any correct implementation is exact. */
    if (!vv_equal(got, want)) {
        char *g = vv_to_string(c, got), *w = vv_to_string(c, want);
        fail_msg("case %zu (%s): not exactly equal: got %s, want %s", idx, op,
                 g, w);
    }
    vv_free(c, got);
    vv_free(c, want);
}

static void test_vvalue_ops(void **state)
{
    (void)state;
    char *path = tu_path("tests/data/vectors/vvalue-ops.json");
    size_t len;
    char *text = tu_read_file(path, &len);
    if (!text)
        fail_msg("cannot read %s (set DMM_SOURCE_ROOT)", path);
    json_error_t jerr;
    json_t *cases = json_loadb(text, len, 0, &jerr);
    if (!cases)
        fail_msg("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    assert_true(json_is_array(cases));

    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    size_t run = 0, idx;
    json_t *cs;
    json_array_foreach(cases, idx, cs)
    {
        run_case(c, cs, idx);
        run++;
    }
    print_message("ran %zu vvalue-ops cases\n", run);
    assert_int_equal(run, json_array_size(cases));
    assert_int_equal(run, EXPECTED_CASES);
    vv_ctx_free(c);
    json_decref(cases);
    free(text);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vvalue_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
