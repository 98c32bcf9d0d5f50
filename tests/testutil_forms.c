// SPDX-License-Identifier: MIT
/* Helpers of the tests on both forms of the built-ins; see testutil_forms.h. */
#include <stdlib.h>
#include <string.h>

#include "testutil_forms.h"

int tf_setup(void **state)
{
    tf_world *w = calloc(1, sizeof *w);
    if (!w || !(w->vc = vv_ctx_new(NULL)) ||
        !(w->dense = dmm_registry_new(w->vc)) ||
        dmm_registry_add_builtins(w->dense) ||
        !(w->general = dmm_registry_new(w->vc)))
        return -1;
    size_t n = dmm_registry_count(w->dense);
    if (!(w->copies = calloc(n, sizeof *w->copies)))
        return -1;
    for (size_t k = 0; k < n; k++) {
        w->copies[k] = *dmm_registry_at(w->dense, k)->desc;
        w->copies[k].dense = NULL;
        if (dmm_registry_add(w->general, &w->copies[k]))
            return -1;
    }
    *state = w;
    return 0;
}

int tf_teardown(void **state)
{
    tf_world *w = *state;
    dmm_registry_free(w->dense);
    dmm_registry_free(w->general);
    free(w->copies);
    vv_ctx_free(w->vc);
    free(w);
    return 0;
}

dmm_net *tf_load(const tf_world *w, const dmm_registry *reg, const char *text)
{
    dmm_net *net = NULL;
    dmm_error err;
    if (dmm_net_load_text(w->vc, reg, text, strlen(text), "test.json", &net,
                          &err)) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("load failed: %s\n%s", msg, text);
    }
    return net;
}

char *tf_state_of(dmm_net *net)
{
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

void tf_edit(const tf_world *w, dmm_net *net, const char *json)
{
    vv d = tu_vv(w->vc, json);
    dmm_error err;
    assert_int_equal(dmm_net_edit(net, d, &err), 0);
    vv_free(w->vc, d);
}

void tf_check_same_failure(const tf_world *w, const char *text, int good,
                           int code, const char *needle)
{
    dmm_net *g = tf_load(w, w->general, text), *d = tf_load(w, w->dense, text);
    dmm_error eg, ed;
    for (int t = 0; t < good; t++) {
        assert_int_equal(dmm_net_step(g, &eg), 0);
        assert_int_equal(dmm_net_step(d, &ed), 0);
    }
    char *before = tf_state_of(d);
    assert_int_equal(dmm_net_step(g, &eg), code);
    assert_int_equal(dmm_net_step(d, &ed), code);
    assert_string_equal(eg.text, ed.text);
    assert_non_null(strstr(ed.text, needle));
    char *after = tf_state_of(d), *gs = tf_state_of(g);
    assert_string_equal(before, after);
    assert_string_equal(gs, after);
    free(before);
    free(after);
    free(gs);
    dmm_net_free(g);
    dmm_net_free(d);
}

void tf_assert_same_state(dmm_net *a, dmm_net *b)
{
    char *sa = tf_state_of(a), *sb = tf_state_of(b);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
}

void tf_assert_same_outputs(const tf_world *w, dmm_net *a, dmm_net *b)
{
    char *ya = vv_to_string(w->vc, dmm_net_outputs(a));
    char *yb = vv_to_string(w->vc, dmm_net_outputs(b));
    assert_string_equal(ya, yb);
    free(ya);
    free(yb);
}

void tf_step_both(dmm_net *a, dmm_net *b)
{
    dmm_error err;
    assert_int_equal(dmm_net_step(a, &err), 0);
    assert_int_equal(dmm_net_step(b, &err), 0);
}

int tf_fail_each_allocation(tn_world *w, const char *text, int warm,
                            int (*op)(tf_oom *o), void (*check)(tf_oom *o),
                            void *ud)
{
    tu_alloc *a = &w->alloc;
    int failures = 0;
    bool hit = true;
    for (long k = 1; hit; k++) {
        tf_oom o = {.net = tn_load(w, text),
                    .twin = tn_load(w, text),
                    .alloc = a,
                    .ud = ud};
        for (int t = 0; t < warm; t++)
            tf_step_both(o.net, o.twin);
        a->fail_at = a->count + k;
        o.rc = op(&o);
        hit = a->count >= a->fail_at;
        a->fail_at = 0;
        if (o.rc) {
            assert_int_equal(o.rc, DMM_E_NOMEM);
            failures++;
        }
        check(&o);
        dmm_net_free(o.net);
        dmm_net_free(o.twin);
    }
    return failures;
}

uint64_t tf_seed;

uint32_t tf_rnd(uint32_t n)
{
    tf_seed = tf_seed * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(tf_seed >> 33) % n;
}

double tf_rnd_x(void)
{
    return ((double)tf_rnd(9) - 4) / 4;
}

double tf_rnd_w(uint32_t n)
{
    static const double w[] = {-1, -0.5, 0.5, 1, 0.3, -0.7, 2};
    return w[tf_rnd(n)];
}

const char *const tf_types[TF_NT] = {"identity", "tanh",    "relu", "sigmoid",
                                     "accum",    "softmax", "dot"};

const char *tf_type_of(int k)
{
    return tf_types[k % TF_NT];
}

const char *tf_in_of(int k, int which)
{
    switch (k % TF_NT) {
    case 4:
        return which ? "delta" : "accum";
    case 6:
        return which ? "y" : "x";
    default:
        return which ? "b" : "a";
    }
}

const char *tf_out_of(int k, int which)
{
    switch (k % TF_NT) {
    case 4:
        return "single";
    case 6:
        return "dot";
    default:
        return which ? "b" : "a";
    }
}

/* One term of uk's input stream r from a random ring output. The draws are
 * made in a fixed order (the source, its stream, [another shape,] the
 * weight; or the weight before the stream), which the seeds of the tests
 * depend on. */
static void ring_term(vv_buf *b, const tf_net_shape *g, int k, int r)
{
    int j = (int)tf_rnd((uint32_t)g->m);
    double wt = g->weight_first ? tf_rnd_w(g->nweights) : 0;
    const char *out = tf_out_of(j, (int)tf_rnd(2));
    tu_put(b, ", [\"%s/u%d/%s\", \"%s/u%d/%s", tf_type_of(k), k, tf_in_of(k, r),
           tf_type_of(j), j, out);
    if (g->other_rows && tf_rnd(12) == 0)
        tu_put(b, "/k%u", tf_rnd(3)); /* a row of another shape */
    if (!g->weight_first)
        wt = tf_rnd_w(g->nweights);
    tu_put(b, "\", %.17g]", wt);
}

char *tf_random_net(const tf_net_shape *g)
{
    vv_buf b = {0};
    tu_put(&b, "{\"dmm\": 1, \"matrix\": {}, \"seed\": 3, \"links\": ["
               "[\"accum/self/accum\", \"accum/self/single\", 1]");
    for (int k = 0; k < g->m; k++) {
        int rows = 1 + (int)tf_rnd(2);
        for (int r = 0; r < rows; r++) {
            int terms = 1 + (int)tf_rnd(3);
            for (int t = 0; t < terms; t++)
                ring_term(&b, g, k, r);
        }
        if (k % TF_NT == 4 && tf_rnd(2)) /* an accumulator */
            tu_put(&b, ", [\"accum/u%d/accum\", \"accum/u%d/single\", 1]", k,
                   k);
    }
    if (g->links)
        g->links(&b);
    tu_put(&b, "], \"outputs\": {");
    for (int f = 0; f < TF_NT; f++) {
        tu_put(&b, "%s\"%s\": {", f ? ", " : "", tf_types[f]);
        if (f == 0 && g->outputs)
            g->outputs(&b);
        for (int k = f; k < g->m; k += TF_NT) {
            tu_put(&b, "%s\"u%d\": {", k == f ? "" : ", ", k);
            int nout = f == 4 || f == 6 ? 1 : 2;
            for (int s = 0; s < nout; s++) {
                tu_put(&b, "%s\"%s\": ", s ? ", " : "", tf_out_of(k, s));
                g->stream(&b);
            }
            tu_put(&b, "}");
        }
        tu_put(&b, "}");
    }
    tu_put(&b, "}");
    if (g->sections)
        g->sections(&b);
    tu_put(&b, "}");
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}
