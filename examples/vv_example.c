// SPDX-License-Identifier: MIT
/*
 * A tour of the V-value API (docs/vvalue.md shows it line by line): parse,
 * add, scale, build a sum in place, lincomb, get and set by path, report a
 * bad input. Every `vv` it makes is freed before the context, as required.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vv.h"

/* Parse a NUL-terminated JSON text; print the error and exit on failure. */
static vv parse_or_die(vv_ctx *c, const char *text)
{
    vv v;
    dmm_error err;
    if (vv_parse(c, text, strlen(text), "<example>", &v, &err) != 0) {
        char msg[1400];
        dmm_error_format(&err, msg, sizeof msg);
        fprintf(stderr, "%s\n", msg);
        exit(1);
    }
    return v;
}

static void show(const vv_ctx *c, const char *name, vv v)
{
    char *s = vv_to_string(c, v); /* new: free() */
    printf("%-10s = %s\n", name, s ? s : "(out of memory)");
    free(s);
}

int main(void)
{
    vv_ctx *c = vv_ctx_new(NULL); /* default allocator and limits */
    if (!c)
        return 1;

    /* 3.5 + 2·(foo) + 7·(foo bar) − 4·(baz foo bar), written non-canonically */
    vv a = parse_or_die(c, "{\":number\": 3.5, \"foo\": {\":number\": 2, "
                           "\"bar\": 7}, \"baz\": {\"foo\": {\"bar\": -4}}, "
                           "\"zero\": 0}");
    vv b = parse_or_die(c, "{\"foo\": {\"bar\": -7}, \"qux\": 1}");
    show(c, "a", a); /* the stored zero is gone: canonical form */
    show(c, "b", b);

    /* a + b: the (foo bar) leaves cancel and disappear */
    vv sum;
    if (vv_add(c, a, b, &sum) != 0)
        return 1;
    show(c, "a + b", sum);

    /* 0.5·a */
    vv half;
    if (vv_scale(c, 0.5, a, &half) != 0)
        return 1;
    show(c, "0.5 a", half);

    /* acc = a + 2·b + 3·b, built in place: acc starts as a new reference to a
     * (shared), and the first vv_axpy copies only the paths it changes. */
    vv acc = vv_ref(a);
    if (vv_axpy(c, &acc, 2.0, b) != 0 || vv_axpy(c, &acc, 3.0, b) != 0)
        return 1;
    show(c, "a + 5 b", acc);
    show(c, "a", a); /* unchanged: values are immutable once shared */

    /* lincomb: the down-movement primitive (spec example) */
    vv row = parse_or_die(c, "{\"c\": 7}");
    vv m = parse_or_die(c, "{\"a\": 1, \"b\": 2, \"c\": {\"a\": 1, \"b\": 2, "
                           "\"c\": {\"x\": 1, \"y\": 3}}}");
    vv lc;
    if (vv_lincomb(c, row, m, &lc) != 0)
        return 1;
    show(c, "lincomb", lc); /* {"a":7,"b":14,"c":{"x":7,"y":21}} */

    /* paths are arrays of interned labels */
    vv_label foo, bar;
    if (vv_intern_cstr(c, "foo", &foo) != 0 ||
        vv_intern_cstr(c, "bar", &bar) != 0)
        return 1;
    vv_label path[] = {foo, bar};
    printf("%-10s = %g\n", "a[foo/bar]", vv_get(a, path, 2).num); /* borrowed */

    vv edited;
    if (vv_set(c, a, path, 2, vv_number(100), &edited) != 0)
        return 1;
    show(c, "edited", edited);
    printf("%-10s = %g, depth %d, %zu children\n", "max-norm",
           vv_max_norm(edited), vv_depth(edited), vv_nchildren(edited));

    /* bad input is reported with line, column and JSON Pointer */
    vv bad;
    dmm_error err;
    const char *text = "{\"w\": {\"x\": 1,\n        \"y\": \"two\"}}";
    if (vv_parse(c, text, strlen(text), "<bad>", &bad, &err) != 0) {
        char msg[1400];
        dmm_error_format(&err, msg, sizeof msg);
        printf("error      : %s (%s)\n", msg, dmm_errname(err.code));
    } else {
        vv_free(c, bad);
    }

    vv all[] = {a, b, sum, half, acc, row, m, lc, edited};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        vv_free(c, all[i]);
    vv_ctx_free(c);
    return 0;
}
