// SPDX-License-Identifier: MIT
/*
 * Out of memory, every allocation point: each operation is run with the
 * context's allocator (tu_alloc) failing its 1st, 2nd, 3rd ... allocation
 * until it succeeds. Every failing run must return DMM_E_NOMEM (NULL for
 * pointer results), leave its inputs and outputs as they were and free what
 * it had allocated; the successful run must give the unfailed result.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(x)     assert_int_equal((x), 0)
#define MAX_TRIES 200000

/* Inputs: a wide node (more than one B+-tree leaf), nesting and overlap. */
static char *doc_a, *doc_b;

static char *make_doc(int n, int mul, const char *tail)
{
    size_t cap = (size_t)n * 24 + strlen(tail) + 64;
    char *s = malloc(cap), *p = s;
    assert_non_null(s);
    p += sprintf(p, "{\":number\": 1, \"w\": {");
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s\"k%d\": %d", i ? ", " : "", i, (i + 1) * mul);
    sprintf(p, "}, %s}", tail);
    return s;
}

typedef struct env {
    tu_alloc a;
    vv_ctx *c;
    vv A, B, row, mask; /* borrowed by every operation */
    vv acc;             /* axpy's accumulator, made by prep */
    vv kids[3];         /* from_pairs' children, made by prep */
    vv_label kl[3];
    vv_label path[3];
    char *s; /* to_string's result */
    vv_label new_label;
    size_t nlabels;
} env;

typedef struct oom_op {
    const char *name;
    bool takes;                  /* run consumes prep's values, even on error */
    void (*prep)(env *);         /* unarmed: make per-run values */
    int (*run)(env *, vv *out);  /* armed */
    void (*after_fail)(env *);   /* unarmed: check and release prep's values */
    void (*after_ok)(env *, vv); /* unarmed: check a result that is no vv */
} oom_op;

static vv parse_unarmed(env *e, const char *text)
{
    long saved = e->a.fail_at;
    e->a.fail_at = 0;
    vv v = tu_vv(e->c, text);
    e->a.fail_at = saved;
    return v;
}

/* ---- the operations ---- */

static int run_parse(env *e, vv *out)
{
    dmm_error err;
    int rc = vv_parse(e->c, doc_a, strlen(doc_a), "a.json", out, &err);
    if (rc != 0)
        assert_int_equal(err.code, rc);
    return rc;
}
static int run_add(env *e, vv *out)
{
    return vv_add(e->c, e->A, e->B, out);
}
static int run_scale(env *e, vv *out)
{
    return vv_scale(e->c, -0.5, e->A, out);
}
static void prep_acc_shared(env *e)
{
    e->acc = vv_ref(e->A);
}
static void prep_acc_unique(env *e)
{
    e->acc = parse_unarmed(e, doc_a);
}
static int run_axpy(env *e, vv *out)
{
    int rc = vv_axpy(e->c, &e->acc, 3.0, e->B);
    if (rc == 0) {
        *out = e->acc;
        e->acc = VV_ZERO;
    }
    return rc;
}
static void fail_axpy(env *e)
{
    /* "On error *acc is unchanged." */
    if (!vv_equal(e->acc, e->A)) {
        char *s = vv_to_string(e->c, e->acc);
        fail_msg("vv_axpy failed and changed *acc: now %.300s...", s);
    }
}
static int run_set(env *e, vv *out)
{
    return vv_set(e->c, e->A, e->path, 3, e->B, out);
}
static int run_wrap(env *e, vv *out)
{
    return vv_wrap(e->c, 2.0, e->path[2], e->A, out);
}
static void prep_kids(env *e)
{
    vv p = parse_unarmed(e, "{\"p\": {\"q\": 1}}");
    e->kids[0] = p;
    e->kids[1] = vv_ref(e->A);
    e->kids[2] = parse_unarmed(e, "{\"p\": {\"q\": -1, \"r\": 4}}");
}
static int run_from_pairs(env *e, vv *out)
{
    return vv_from_pairs(e->c, 1.5, 3, e->kl, e->kids, out);
}
static int run_lincomb(env *e, vv *out)
{
    return vv_lincomb(e->c, e->row, e->A, out);
}
static int run_mult_mask(env *e, vv *out)
{
    return vv_mult_mask(e->c, e->mask, e->A, out);
}
static int run_sum(env *e, vv *out)
{
    double w[3] = {1, -2, 0.5};
    vv t[3] = {e->A, e->B, e->A};
    return vv_sum(e->c, 3, w, t, out);
}
/* A row of 20 leaves: lincomb collects more terms than its stack holds. */
static void prep_wide_row(env *e)
{
    char doc[512], *p = doc;
    p += sprintf(p, "{\"w\": {");
    for (int i = 0; i < 20; i++)
        p += sprintf(p, "%s\"k%d\": %d", i ? ", " : "", i * 7, i + 1);
    sprintf(p, "}}");
    e->acc = parse_unarmed(e, doc);
}
static int run_lincomb_wide(env *e, vv *out)
{
    int rc = vv_lincomb(e->c, e->acc, e->A, out);
    if (rc == 0) {
        vv_free(e->c, e->acc);
        e->acc = VV_ZERO;
    }
    return rc;
}
/* Wide terms over one range of labels, one with a nested entry: the dense
 * scratch path of vv_sum. */
static int run_sum_dense(env *e, vv *out)
{
    vv_label wl = e->kl[1]; /* "w" */
    double w[4] = {1, -2, 0.5, 3};
    vv t[4] = {vv_child(e->A, wl), vv_child(e->B, wl), vv_child(e->mask, wl),
               vv_child(e->A, wl)};
    return vv_sum(e->c, 4, w, t, out);
}
static double twice(double x, void *ud)
{
    (void)ud;
    return 2 * x;
}
static int run_apply(env *e, vv *out)
{
    return vv_apply(e->c, e->B, twice, NULL, out);
}
static int run_to_string(env *e, vv *out)
{
    (void)out;
    e->s = vv_to_string(e->c, e->A);
    return e->s ? 0 : DMM_E_NOMEM;
}
static void ok_to_string(env *e, vv out)
{
    (void)out;
    char *want = vv_to_string(e->c, e->A);
    assert_string_equal(e->s, want);
    free(want);
    free(e->s);
    e->s = NULL;
}
static int run_intern(env *e, vv *out)
{
    (void)out;
    char name[32];
    snprintf(name, sizeof name, "fresh-%zu", e->nlabels);
    return vv_intern_cstr(e->c, name, &e->new_label);
}
static void fail_intern(env *e)
{
    char name[32];
    vv_label l;
    snprintf(name, sizeof name, "fresh-%zu", e->nlabels);
    assert_int_equal(vv_label_count(e->c), e->nlabels);
    assert_int_equal(vv_label_find(e->c, name, strlen(name), &l),
                     DMM_E_NOTFOUND);
}
static void ok_intern(env *e, vv out)
{
    (void)out;
    char name[32];
    snprintf(name, sizeof name, "fresh-%zu", e->nlabels);
    assert_int_equal(vv_label_count(e->c), e->nlabels + 1);
    assert_string_equal(vv_label_str(e->c, e->new_label, NULL), name);
}

static const oom_op ops[] = {
    {"vv_parse", false, NULL, run_parse, NULL, NULL},
    {"vv_add", false, NULL, run_add, NULL, NULL},
    {"vv_scale", false, NULL, run_scale, NULL, NULL},
    {"vv_axpy (shared acc)", false, prep_acc_shared, run_axpy, fail_axpy, NULL},
    {"vv_axpy (unique acc)", false, prep_acc_unique, run_axpy, fail_axpy, NULL},
    {"vv_set", false, NULL, run_set, NULL, NULL},
    {"vv_wrap", false, NULL, run_wrap, NULL, NULL},
    {"vv_from_pairs", true, prep_kids, run_from_pairs, NULL, NULL},
    {"vv_lincomb", false, NULL, run_lincomb, NULL, NULL},
    {"vv_lincomb (20 terms)", false, prep_wide_row, run_lincomb_wide, NULL,
     NULL},
    {"vv_mult_mask", false, NULL, run_mult_mask, NULL, NULL},
    {"vv_sum", false, NULL, run_sum, NULL, NULL},
    {"vv_sum (dense)", false, NULL, run_sum_dense, NULL, NULL},
    {"vv_apply", false, NULL, run_apply, NULL, NULL},
    {"vv_to_string", false, NULL, run_to_string, NULL, ok_to_string},
    {"vv_intern", false, NULL, run_intern, fail_intern, ok_intern},
};

static void env_init(env *e)
{
    memset(e, 0, sizeof *e);
    vv_options o = {.alloc = tu_alloc_fn, .alloc_ud = &e->a};
    e->c = vv_ctx_new(&o);
    assert_non_null(e->c);
    e->A = tu_vv(e->c, doc_a);
    e->B = tu_vv(e->c, doc_b);
    e->row = tu_vv(e->c, "{\"w\": {\"k3\": 2, \"k150\": -1}, \"y\": 1, "
                         "\":number\": 0.5}");
    e->mask = tu_vv(e->c, "{\"w\": {\"k3\": 2, \"k199\": {\"z\": 1}}, \"y\": "
                          "{\"p\": 3}}");
    e->kl[0] = tu_label(e->c, "p");
    e->kl[1] = tu_label(e->c, "w");
    e->kl[2] = tu_label(e->c, "p"); /* a duplicate: added to kids[0] */
    e->path[0] = tu_label(e->c, "y");
    e->path[1] = tu_label(e->c, "p");
    e->path[2] = tu_label(e->c, "new");
    e->nlabels = vv_label_count(e->c);
}

static void env_free(env *e)
{
    vv_free(e->c, e->A), vv_free(e->c, e->B);
    vv_free(e->c, e->row), vv_free(e->c, e->mask);
    vv_ctx_free(e->c);
    assert_int_equal(e->a.bytes, 0);
}

static long run_oom(env *e, const oom_op *op)
{
    vv *inputs[] = {&e->A, &e->B, &e->row, &e->mask};
    char *snap[4];
    for (int i = 0; i < 4; i++)
        assert_non_null(snap[i] = vv_to_string(e->c, *inputs[i]));
    /* The unfailed result. */
    if (op->prep)
        op->prep(e);
    vv want = VV_ZERO;
    OK(op->run(e, &want));
    if (op->after_ok) {
        op->after_ok(e, want);
        if (op->run == run_intern)
            e->nlabels++;
    }
    size_t bytes0 = vv_ctx_bytes(e->c);
    long fails = 0, k;
    for (k = 1; k < MAX_TRIES; k++) {
        if (op->prep)
            op->prep(e);
        size_t bytes1 = vv_ctx_bytes(e->c), abytes1 = e->a.bytes;
        vv out = vv_number(42);
        e->a.count = 0;
        e->a.fail_at = k;
        int rc = op->run(e, &out);
        bool injected = e->a.count >= k;
        e->a.fail_at = 0;
        if (rc == 0) {
            if (op->after_ok) {
                op->after_ok(e, out);
            } else {
                tu_assert_canonical(e->c, out);
                if (!vv_equal(out, want))
                    fail_msg("%s: wrong result after a failed allocation %ld",
                             op->name, k);
                vv_free(e->c, out);
            }
            if (!injected)
                break;
            continue; /* a failure was absorbed; keep going */
        }
        fails++;
        if (rc != DMM_E_NOMEM)
            fail_msg("%s, allocation %ld failing: got %s, want NOMEM", op->name,
                     k, dmm_errname(rc));
        if (!injected)
            fail_msg("%s: NOMEM without a failed allocation", op->name);
        assert_true(out.num == 42 && out.map == NULL);
        if (op->after_fail)
            op->after_fail(e);
        /* All it allocated is freed; what it took is released too. */
        size_t want_bytes = op->takes ? bytes0 : bytes1;
        if (vv_ctx_bytes(e->c) != want_bytes)
            fail_msg("%s, allocation %ld failing: vv_ctx_bytes %zu, want %zu "
                     "(leak)",
                     op->name, k, vv_ctx_bytes(e->c), want_bytes);
        assert_int_equal(e->a.bytes - abytes1, vv_ctx_bytes(e->c) - bytes1);
        vv_free(e->c, e->acc); /* what prep made and run left */
        e->acc = VV_ZERO;
        for (int i = 0; i < 4; i++) {
            char *now = vv_to_string(e->c, *inputs[i]);
            if (strcmp(now, snap[i]))
                fail_msg("%s changed an input when failing: %s", op->name, now);
            free(now);
        }
    }
    assert_true(k < MAX_TRIES);
    /* Nothing of the runs is left (a new label stays: interning is for
     * good). */
    if (op->run != run_intern)
        assert_int_equal(vv_ctx_bytes(e->c), bytes0);
    if (op->run != run_to_string && op->run != run_intern)
        vv_free(e->c, want);
    else if (op->run == run_intern)
        e->nlabels++;
    for (int i = 0; i < 4; i++)
        free(snap[i]);
    print_message("%-22s %ld failing allocation points\n", op->name, fails);
    return fails;
}

static void test_each_operation(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        env e;
        env_init(&e);
        long fails = run_oom(&e, &ops[i]);
        /* Every one of these allocates on this input (to_string may use
         * malloc instead of the context's allocator, see vv.h). */
        if (ops[i].run != run_to_string && fails == 0)
            fail_msg("%s never used the context's allocator", ops[i].name);
        env_free(&e);
    }
}

/* vv_parse in a fresh context: labels are interned as it reads. */
static void test_parse_fresh_context(void **state)
{
    (void)state;
    long k, fails = 0;
    for (k = 1; k < MAX_TRIES; k++) {
        tu_alloc a = {0};
        vv_options o = {.alloc = tu_alloc_fn, .alloc_ud = &a};
        vv_ctx *c = vv_ctx_new(&o);
        assert_non_null(c);
        a.count = 0;
        a.fail_at = k;
        vv v = vv_number(42);
        dmm_error err;
        int rc = vv_parse(c, doc_b, strlen(doc_b), NULL, &v, &err);
        bool injected = a.count >= k;
        a.fail_at = 0;
        if (rc == 0) {
            vv want = tu_vv(c, doc_b);
            assert_true(vv_equal(v, want));
            vv_free(c, want);
            vv_free(c, v);
        } else {
            fails++;
            assert_int_equal(rc, DMM_E_NOMEM);
            assert_true(v.num == 42 && v.map == NULL);
        }
        vv_ctx_free(c);
        assert_int_equal(a.bytes, 0);
        if (rc == 0 && !injected)
            break;
    }
    assert_true(fails > 0);
    print_message("vv_parse (fresh ctx)   %ld failing allocation points\n",
                  fails);
}

static void test_ctx_new_and_intern_growth(void **state)
{
    (void)state;
    long k;
    for (k = 1; k < 1000; k++) {
        tu_alloc a = {.fail_at = k};
        vv_options o = {.alloc = tu_alloc_fn, .alloc_ud = &a};
        vv_ctx *c = vv_ctx_new(&o);
        bool injected = a.count >= k;
        if (!c) {
            assert_true(injected);
            assert_int_equal(a.bytes, 0);
            continue;
        }
        a.fail_at = 0;
        vv_ctx_free(c);
        assert_int_equal(a.bytes, 0);
        if (!injected)
            break;
    }
    assert_true(k < 1000);
    /* Interning thousands of labels grows the table; each growth step can
     * fail and must leave the table as it was. */
    tu_alloc a = {0};
    vv_options o = {.alloc = tu_alloc_fn, .alloc_ud = &a};
    vv_ctx *c = vv_ctx_new(&o);
    assert_non_null(c);
    long fails = 0;
    for (int i = 0; i < 6000; i++) {
        char name[32];
        snprintf(name, sizeof name, "label-%d", i);
        for (k = 1;; k++) {
            vv_label l;
            a.count = 0;
            a.fail_at = k;
            int rc = vv_intern_cstr(c, name, &l);
            bool injected = a.count >= k;
            a.fail_at = 0;
            if (rc == 0 && !injected) {
                assert_int_equal(l, (vv_label)i);
                break;
            }
            if (rc == 0)
                continue;
            fails++;
            assert_int_equal(rc, DMM_E_NOMEM);
            assert_int_equal(vv_label_count(c), (size_t)i);
            assert_int_equal(vv_label_find(c, name, strlen(name), &l),
                             DMM_E_NOTFOUND);
        }
    }
    for (int i = 0; i < 6000; i++) {
        char name[32];
        snprintf(name, sizeof name, "label-%d", i);
        assert_string_equal(vv_label_str(c, (vv_label)i, NULL), name);
    }
    vv_ctx_free(c);
    assert_int_equal(a.bytes, 0);
    print_message("vv_intern (6000)       %ld failing allocation points\n",
                  fails);
}

/* Jansson's own allocations (reading text, building json_t) fail too: no
 * crash, no leak, no success with a wrong value. */
static tu_alloc jansson_alloc;

static void *j_malloc(size_t n)
{
    size_t *p = tu_alloc_fn(&jansson_alloc, NULL, 0, n + sizeof(size_t) * 2);
    if (!p)
        return NULL;
    p[0] = n + sizeof(size_t) * 2;
    return p + 2;
}
static void j_free(void *q)
{
    if (!q)
        return;
    size_t *p = (size_t *)q - 2;
    tu_alloc_fn(&jansson_alloc, p, p[0], 0);
}

static void test_jansson_failures(void **state)
{
    (void)state;
    vv_ctx *c = vv_ctx_new(NULL);
    assert_non_null(c);
    vv want = tu_vv(c, doc_b);
    long k, fails = 0, wrong = 0;
    for (k = 1; k < MAX_TRIES; k++) {
        vv v = vv_number(42);
        dmm_error err;
        jansson_alloc.count = 0;
        jansson_alloc.fail_at = k;
        int rc = vv_parse(c, doc_b, strlen(doc_b), NULL, &v, &err);
        bool injected = jansson_alloc.count >= k;
        jansson_alloc.fail_at = 0;
        if (rc == 0) {
            assert_true(vv_equal(v, want));
            vv_free(c, v);
            if (!injected)
                break;
            continue;
        }
        fails++;
        /* Jansson 2.14 often reports its own allocation failures as syntax
         * errors (or with no text), so NOMEM cannot be asked for here: only
         * a clean failure. */
        wrong += rc != DMM_E_NOMEM;
        assert_true(rc < 0);
        assert_true(v.num == 42 && v.map == NULL);
    }
    print_message("vv_parse, Jansson failing: %ld points, %ld reported as "
                  "something else than NOMEM\n",
                  fails, wrong);
    assert_true(fails > 0);
    for (k = 1; k < MAX_TRIES; k++) {
        jansson_alloc.count = 0;
        jansson_alloc.fail_at = k;
        json_t *j = vv_to_json(c, want);
        bool injected = jansson_alloc.count >= k;
        jansson_alloc.fail_at = 0;
        if (j) {
            json_decref(j);
            if (!injected)
                break;
        }
    }
    assert_true(k > 1);
    vv_free(c, want);
    vv_ctx_free(c);
    assert_int_equal(jansson_alloc.bytes, 0);
}

int main(void)
{
    json_set_alloc_funcs(j_malloc, j_free);
    doc_a = make_doc(200, 1,
                     "\"y\": {\"p\": {\"q\": 1, \"r\": {\"s\": 2}}, \"t\": 3}");
    doc_b = make_doc(150, -1,
                     "\"y\": {\"p\": {\"q\": 5}, \"u\": 4}, \"z\": {\"a\": "
                     "{\"b\": {\"c\": 1}}}");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_operation),
        cmocka_unit_test(test_parse_fresh_context),
        cmocka_unit_test(test_ctx_new_and_intern_growth),
        cmocka_unit_test(test_jansson_failures),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(doc_a);
    free(doc_b);
    return rc;
}
