// SPDX-License-Identifier: MIT
/*
 * Dense ports against the general path: every network runs twice, once with
 * the built-in types as registered (dense forms on) and once with a registry
 * whose copies of them have no dense form, and the two states must agree bit
 * for bit after every cycle. Random networks mix scalar and map streams of
 * several shapes, general sources (dot, softmax, input), rows of other
 * shapes, exact zeros, self-edits and edits; failures (NaN in either
 * movement) must give the same error and leave the network as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil_net.h"

typedef struct world {
    vv_ctx *vc;
    dmm_registry *dense, *general;
    dmm_neuron_type *copies;
} world;

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
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

static int teardown(void **state)
{
    world *w = *state;
    dmm_registry_free(w->dense);
    dmm_registry_free(w->general);
    free(w->copies);
    vv_ctx_free(w->vc);
    free(w);
    return 0;
}

static dmm_net *load(const world *w, const dmm_registry *reg, const char *text)
{
    dmm_net *net = NULL;
    dmm_error err;
    if (dmm_net_load_text(w->vc, reg, text, strlen(text), "test.json", &net,
                          &err)) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("load failed: %s", msg);
    }
    return net;
}

static uint64_t seed_state;

static uint32_t rnd(uint32_t n)
{
    seed_state = seed_state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(seed_state >> 33) % n;
}

/* Multiples of 1/4 and simple weights, so that sums meet exact zeros. */
static double rnd_x(void)
{
    return ((double)rnd(9) - 4) / 4;
}
static double rnd_w(void)
{
    static const double w[] = {-1, -0.5, 0.5, 1, 0.3, -0.7};
    return w[rnd(6)];
}

#define M  28
#define NT 7
static const char *const types[NT] = {"identity", "tanh",    "relu", "sigmoid",
                                      "accum",    "softmax", "dot"};

static const char *type_of(int k)
{
    return types[k % NT];
}
static const char *in_of(int k, int which)
{
    switch (k % NT) {
    case 4:
        return which ? "delta" : "accum";
    case 6:
        return which ? "y" : "x";
    default:
        return which ? "b" : "a";
    }
}
static const char *out_of(int k, int which)
{
    switch (k % NT) {
    case 4:
        return "single";
    case 6:
        return "dot";
    default:
        return which ? "b" : "a";
    }
}

/* A stream value: a number, one of four flat shapes, or absent (NULL). */
static void stream(vv_buf *b)
{
    static const char *const shapes[][3] = {{"k0", "k1", NULL},
                                            {"k0", "k1", "k2"},
                                            {"k1", NULL, NULL},
                                            {"k2", "k0", NULL}};
    uint32_t s = rnd(6);
    if (s == 5) {
        tu_put(b, "%.17g", rnd_x());
        return;
    }
    if (s == 4) {
        tu_put(b, "0");
        return;
    }
    tu_put(b, "{");
    for (int i = 0; i < 3 && shapes[s][i]; i++)
        tu_put(b, "%s\"%s\": %.17g", i ? ", " : "", shapes[s][i], rnd_x());
    tu_put(b, "}");
}

static char *random_net(void)
{
    vv_buf b = {0};
    tu_put(&b, "{\"dmm\": 1, \"matrix\": {}, \"seed\": 3, \"links\": ["
               "[\"accum/self/accum\", \"accum/self/single\", 1]");
    for (int k = 0; k < M; k++) {
        int rows = 1 + (int)rnd(2);
        for (int r = 0; r < rows; r++) {
            int terms = 1 + (int)rnd(3);
            for (int t = 0; t < terms; t++) {
                int j = (int)rnd(M);
                tu_put(&b, ", [\"%s/u%d/%s\", \"%s/u%d/%s", type_of(k), k,
                       in_of(k, r), type_of(j), j, out_of(j, (int)rnd(2)));
                if (rnd(12) == 0)
                    tu_put(&b, "/k%u", rnd(3)); /* a row of another shape */
                tu_put(&b, "\", %.17g]", rnd_w());
            }
        }
        if (k % NT == 4 && rnd(2)) /* an accumulator */
            tu_put(&b, ", [\"accum/u%d/accum\", \"accum/u%d/single\", 1]", k,
                   k);
    }
    /* Twin sources whose difference is exactly zero every cycle. */
    tu_put(&b, ", [\"identity/z1/a\", \"identity/z1/a\", 1]"
               ", [\"identity/z2/a\", \"identity/z2/a\", 1]");
    const char *zt[] = {"tanh", "sigmoid", "relu", "identity"};
    for (int k = 0; k < 4; k++)
        tu_put(&b,
               ", [\"%s/zz/a\", \"identity/z1/a\", 1]"
               ", [\"%s/zz/a\", \"identity/z2/a\", -1]",
               zt[k], zt[k]);
    tu_put(&b, ", [\"accum/za/accum\", \"accum/za/single\", 1]"
               ", [\"accum/za/delta\", \"identity/z1/a\", 0.5]"
               ", [\"accum/za/delta\", \"identity/z2/a\", -0.5]"
               ", [\"tanh/fed/a\", \"input/in/a\", 1]"
               ", [\"identity/u0/b\", \"input/in/a\", -0.5]");
    /* Self-edits: one weight grows, one term appears in cycle 1. */
    tu_put(&b, ", [\"identity/ed/d\", \"identity/ed/d\", 1]"
               ", [\"accum/self/delta\", \"identity/ed/d\", 1]");
    tu_put(&b, "], \"outputs\": {");
    for (int f = 0; f < NT; f++) {
        tu_put(&b, "%s\"%s\": {", f ? ", " : "", types[f]);
        if (f == 0)
            tu_put(&b, "\"z1\": {\"a\": {\"k0\": 0.25, \"k1\": -1}}, "
                       "\"z2\": {\"a\": {\"k0\": 0.25, \"k1\": -1}}, "
                       "\"ed\": {\"d\": {\"tanh\": {\"u1\": {\"a\": "
                       "{\"identity\": {\"u0\": {\"a\": 0.01}, \"u7\": "
                       "{\"b\": 0.5}}}}}}}, ");
        for (int k = f; k < M; k += NT) {
            tu_put(&b, "%s\"u%d\": {", k == f ? "" : ", ", k);
            int nout = f == 4 || f == 6 ? 1 : 2;
            for (int s = 0; s < nout; s++) {
                tu_put(&b, "%s\"%s\": ", s ? ", " : "", out_of(k, s));
                stream(&b);
            }
            tu_put(&b, "}");
        }
        tu_put(&b, "}");
    }
    tu_put(&b, "}}");
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

/* Self's row, which every network needs. */
#define SELF "[\"accum/self/accum\", \"accum/self/single\", 1],"

static char *state_of(dmm_net *net)
{
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

static void feed(const world *w, dmm_net *net, int t)
{
    static const char *const items[] = {
        "{\"a\": {\"k0\": 0.5, \"k1\": -0.25}}", "{\"a\": 0.75}",
        "{\"a\": {\"k0\": 0.5, \"k1\": 0.25, \"k2\": 1}}"};
    if (t % 4 == 3)
        return;
    vv v = tu_vv(w->vc, items[t % 3]);
    dmm_error err;
    assert_int_equal(dmm_net_feed(net, tu_label(w->vc, "in"), v, &err), 0);
    vv_free(w->vc, v);
}

static void edit(const world *w, dmm_net *net, const char *json)
{
    vv d = tu_vv(w->vc, json);
    dmm_error err;
    assert_int_equal(dmm_net_edit(net, d, &err), 0);
    vv_free(w->vc, d);
}

/* Dense (1 and 2 threads) and general runs of random networks agree after
 * every cycle; edits in the middle add a row, a neuron, and remove one. */
static void test_dense_equals_general(void **state)
{
    world *w = *state;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        seed_state = seed;
        char *text = random_net();
        dmm_net *nets[3] = {load(w, w->general, text), load(w, w->dense, text),
                            load(w, w->dense, text)};
        free(text);
        dmm_error err;
        assert_int_equal(dmm_net_set_threads(nets[2], 2, &err), 0);
        for (int t = 0; t < 30; t++) {
            int rcs[3];
            char *st[3];
            for (int k = 0; k < 3; k++) {
                feed(w, nets[k], t);
                if (t == 8)
                    edit(w, nets[k],
                         "{\"tanh\": {\"u1\": {\"b\": {\"accum\": "
                         "{\"u4\": {\"single\": 0.5}}}}}}");
                if (t == 14)
                    edit(w, nets[k],
                         "{\"relu\": {\"new\": {\"a\": "
                         "{\"identity\": {\"z1\": {\"a\": -1}}}}}}");
                if (t == 20)
                    edit(w, nets[k],
                         "{\"relu\": {\"new\": {\"a\": "
                         "{\"identity\": {\"z1\": {\"a\": 1}}}}}}");
                rcs[k] = dmm_net_step(nets[k], &err);
                if (t % 3 == 0) /* else Y stays lazy between cycles */
                    st[k] = state_of(nets[k]);
                else
                    st[k] = NULL;
            }
            assert_int_equal(rcs[0], rcs[1]);
            assert_int_equal(rcs[0], rcs[2]);
            if (st[0]) {
                assert_string_equal(st[0], st[1]);
                assert_string_equal(st[0], st[2]);
            }
            if (t % 5 == 4) {
                char *y0 = vv_to_string(w->vc, dmm_net_outputs(nets[0]));
                char *y1 = vv_to_string(w->vc, dmm_net_outputs(nets[1]));
                assert_string_equal(y0, y1);
                free(y0);
                free(y1);
            }
            for (int k = 0; k < 3; k++)
                free(st[k]);
        }
        for (int k = 0; k < 3; k++)
            dmm_net_free(nets[k]);
    }
}

/* The same failure, with the same error, on both paths, and the network as
 * it was: a row that overflows (down movement) and an accumulator whose sum
 * overflows (up movement). */
static void check_failure(const world *w, const char *text, const char *who)
{
    dmm_net *g = load(w, w->general, text), *d = load(w, w->dense, text);
    dmm_error eg, ed;
    /* One good cycle first, so that the dense net's Y is lazy. */
    assert_int_equal(dmm_net_step(g, &eg), 0);
    assert_int_equal(dmm_net_step(d, &ed), 0);
    char *before = state_of(d);
    assert_int_equal(dmm_net_step(g, &eg), DMM_E_NONFINITE);
    assert_int_equal(dmm_net_step(d, &ed), DMM_E_NONFINITE);
    assert_string_equal(eg.text, ed.text);
    assert_non_null(strstr(ed.text, who));
    char *after = state_of(d);
    assert_string_equal(before, after);
    char *gs = state_of(g);
    assert_string_equal(gs, after);
    free(before);
    free(after);
    free(gs);
    dmm_net_free(g);
    dmm_net_free(d);
}

static void test_nan_rollback(void **state)
{
    world *w = *state;
    check_failure(w,
                  "{\"dmm\": 1, \"matrix\": {}, \"links\": [" SELF
                  "[\"identity/x/a\", \"identity/x/a\", 1e10],"
                  "[\"tanh/t/a\", \"identity/x/a\", 1e300]],"
                  "\"outputs\": {\"identity\": {\"x\": {\"a\": {\"k0\": 1, "
                  "\"k1\": 2}}}}}",
                  "tanh/t");
    check_failure(w,
                  "{\"dmm\": 1, \"matrix\": {}, \"links\": [" SELF
                  "[\"identity/x/a\", \"identity/x/a\", 1],"
                  "[\"accum/c/accum\", \"accum/c/single\", 1],"
                  "[\"accum/c/delta\", \"identity/x/a\", 1]],"
                  "\"outputs\": {\"identity\": {\"x\": {\"a\": {\"k0\": "
                  "1e308, \"k1\": 2}}}}}",
                  "accum/c");
}

/* Zeros in dense arrays vanish from Y: a stream that cancels exactly is
 * absent, sigmoid of an absent leaf stays absent. */
static void test_zeros_vanish(void **state)
{
    world *w = *state;
    const char *text =
        "{\"dmm\": 1, \"matrix\": {}, \"links\": [" SELF
        "[\"identity/p/a\", \"identity/p/a\", 1],"
        "[\"identity/q/a\", \"identity/q/a\", 1],"
        "[\"sigmoid/s/a\", \"identity/p/a\", 1],"
        "[\"sigmoid/s/a\", \"identity/q/a\", -1],"
        "[\"sigmoid/s/b\", \"identity/p/a\", 1]],"
        "\"outputs\": {\"identity\": {\"p\": {\"a\": {\"k0\": 1, \"k1\": 2}},"
        "\"q\": {\"a\": {\"k0\": 1, \"k1\": 3}}}}}";
    dmm_net *d = load(w, w->dense, text);
    dmm_error err;
    assert_int_equal(dmm_net_step(d, &err), 0);
    assert_int_equal(dmm_net_step(d, &err), 0);
    vv_label path[3] = {tu_label(w->vc, "sigmoid"), tu_label(w->vc, "s"),
                        tu_label(w->vc, "a")};
    char *s = vv_to_string(w->vc, vv_get(dmm_net_outputs(d), path, 3));
    assert_string_equal(s, "{\"k1\":0.2689414213699951}");
    free(s);
    dmm_net_free(d);
}

/* Y's tree made lazily (a save, or dmm_net_outputs_build, after cycles
 * nobody read) under an allocator that fails each allocation in turn: the
 * call reports DMM_E_NOMEM, the network is as it was (the next save and the
 * next cycle are those of a twin that never failed), and nothing leaks. */
static void test_lazy_y_out_of_memory(void **state)
{
    (void)state;
    const char *text =
        "{\"dmm\": 1, \"matrix\": {}, \"links\": [" SELF
        "[\"identity/p/a\", \"identity/p/a\", 1],"
        "[\"tanh/t/a\", \"identity/p/a\", 0.5],"
        "[\"tanh/t/x\", \"tanh/t/x\", 0.9],"
        "[\"accum/c/accum\", \"accum/c/single\", 1],"
        "[\"accum/c/delta\", \"identity/p/a\", 0.25]],"
        "\"outputs\": {\"identity\": {\"p\": {\"a\": {\"k0\": 1, \"k1\": "
        "-2}}}, \"tanh\": {\"t\": {\"x\": 0.5}}}}";
    tu_alloc a = {0};
    vv_options opt = {.alloc = tu_alloc_fn, .alloc_ud = &a};
    vv_ctx *vc = vv_ctx_new(&opt);
    dmm_registry *reg = dmm_registry_new(vc);
    assert_non_null(reg);
    assert_int_equal(dmm_registry_add_builtins(reg), 0);
    world w = {.vc = vc, .dense = reg};
    dmm_error err;
    for (int op = 0; op < 2; op++) {
        bool hit = true;
        int failures = 0;
        for (long k = 1; hit; k++) {
            dmm_net *net = load(&w, reg, text), *twin = load(&w, reg, text);
            for (int t = 0; t < 3; t++) {
                assert_int_equal(dmm_net_step(net, &err), 0);
                assert_int_equal(dmm_net_step(twin, &err), 0);
            }
            vv_buf b = {0};
            a.fail_at = a.count + k;
            int rc = op == 0 ? dmm_net_save_buf(net, &b)
                             : dmm_net_outputs_build(net, &err);
            hit = a.count >= a.fail_at;
            a.fail_at = 0;
            free(b.data);
            if (rc) {
                assert_int_equal(rc, DMM_E_NOMEM);
                if (op == 1)
                    assert_int_equal(err.code, DMM_E_NOMEM);
                failures++;
            } else if (op == 1) {
                /* Built: reading Y allocates nothing more. */
                long before = a.count;
                vv y = dmm_net_outputs(net);
                assert_int_equal(a.count, before);
                assert_true(vv_equal(y, dmm_net_outputs(twin)));
            }
            char *got = state_of(net), *want = state_of(twin);
            assert_string_equal(got, want);
            free(got);
            free(want);
            assert_int_equal(dmm_net_step(net, &err), 0);
            assert_int_equal(dmm_net_step(twin, &err), 0);
            got = state_of(net);
            want = state_of(twin);
            assert_string_equal(got, want);
            free(got);
            free(want);
            dmm_net_free(net);
            dmm_net_free(twin);
        }
        assert_true(failures >= 3); /* the tree's nodes, type maps, Y */
    }
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    assert_int_equal(a.bytes, 0);
}

/* ---- accumulators over images (vv_sum_add) ----------------------------- */

/* new: v (an image) with both levels rewritten as trees: each pixel set to
 * itself (vv_set writes the tree form on its path). The same value. */
static vv tree_of(vv_ctx *c, vv v)
{
    vv acc = vv_ref(v), row, x;
    vv_iter ir, ip;
    vv_label path[2];
    vv_iter_init(&ir, v);
    while (vv_iter_next(&ir, &path[0], &row)) {
        vv_iter_init(&ip, row);
        while (vv_iter_next(&ip, &path[1], &x)) {
            vv r;
            assert_int_equal(vv_set(c, acc, path, 2, x, &r), 0);
            vv_free(c, acc);
            acc = r;
        }
    }
    assert_true(vv_equal(acc, v));
    return acc;
}

/* A random image fed as {x: image}: 20 x 24 (dense when read), now and
 * then 17 x 19 (shorter rows and fewer), pixels small multiples of 1/4 or
 * zero, so that the sums meet exact zeros. */
static vv rnd_image(vv_ctx *c, bool tree)
{
    size_t dims[2] = {20, 24};
    if (rnd(4) == 0)
        dims[0] = 17, dims[1] = 19;
    double x[20 * 24];
    for (size_t k = 0; k < dims[0] * dims[1]; k++)
        x[k] = rnd(3) == 0 ? 0.0 : ((double)rnd(13) - 6) / 4;
    vv img, out;
    assert_int_equal(vv_from_dense(c, 2, dims, x, &img), 0);
    if (tree) {
        vv t = tree_of(c, img);
        vv_free(c, img);
        img = t;
    }
    assert_int_equal(vv_wrap(c, 0.0, tu_label(c, "x"), img, &out), 0);
    vv_free(c, img);
    return out;
}

/*
 * Accumulators over images fed to input neurons: acc = acc + (a - b/2) and
 * acc2 = acc2/2 + (a + b + acc/4), and a watcher w = acc. The dense
 * registry (one pass, vv_sum_add), the general one (two row sums, then
 * vv_add) and the dense one fed the same images as trees (the general path)
 * agree after every cycle, bit for bit; the watcher reads acc of the cycle
 * before (its output block is not written in place while w reads it), and
 * a snapshot of Y held across cycles does not change.
 */
static void test_accum_images(void **state)
{
    world *w = *state;
    vv_ctx *c = w->vc;
    const char *text =
        "{\"dmm\": 1, \"matrix\": {}, \"links\": [" SELF
        "[\"accum/acc/accum\", \"accum/acc/single\", 1],"
        "[\"accum/acc/delta\", \"input/a/x\", 1],"
        "[\"accum/acc/delta\", \"input/b/x\", -0.5],"
        "[\"accum/acc2/accum\", \"accum/acc2/single\", 0.5],"
        "[\"accum/acc2/delta\", \"input/a/x\", 1],"
        "[\"accum/acc2/delta\", \"input/b/x\", 1],"
        "[\"accum/acc2/delta\", \"accum/acc/single\", 0.25],"
        "[\"identity/w/single\", \"accum/acc/single\", 1],"
        "[\"identity/one/single\", \"identity/one/single\", 1],"
        "[\"input/a/tick\", \"identity/one/single\", 1],"
        "[\"input/b/tick\", \"identity/one/single\", 1]],"
        "\"outputs\": {\"identity\": {\"one\": {\"single\": 1}}}}";
    dmm_net *nets[4] = {load(w, w->general, text), load(w, w->dense, text),
                        load(w, w->dense, text), load(w, w->dense, text)};
    dmm_error err;
    assert_int_equal(dmm_net_set_threads(nets[3], 2, &err), 0);
    seed_state = 99;
    vv held = VV_ZERO;
    char *held_text = NULL;
    vv_label acc[3] = {tu_label(c, "accum"), tu_label(c, "acc"),
                       tu_label(c, "single")};
    vv_label wat[3] = {tu_label(c, "identity"), tu_label(c, "w"),
                       tu_label(c, "single")};
    vv prev = VV_ZERO;
    int images = 0;
    for (int t = 0; t < 40; t++) {
        vv fa = rnd_image(c, false), fb = rnd_image(c, false);
        vv ta = tree_of(c, fa), tb = tree_of(c, fb);
        bool skip_b = t % 7 == 5;
        for (int k = 0; k < 4; k++) {
            assert_int_equal(
                dmm_net_feed(nets[k], tu_label(c, "a"), k == 2 ? ta : fa, &err),
                0);
            if (!skip_b)
                assert_int_equal(dmm_net_feed(nets[k], tu_label(c, "b"),
                                              k == 2 ? tb : fb, &err),
                                 0);
            assert_int_equal(dmm_net_step(nets[k], &err), 0);
        }
        vv_free(c, fa), vv_free(c, fb), vv_free(c, ta), vv_free(c, tb);
        char *st[4];
        for (int k = 0; k < 4; k++)
            st[k] = state_of(nets[k]);
        for (int k = 1; k < 4; k++)
            assert_string_equal(st[0], st[k]);
        for (int k = 0; k < 4; k++)
            free(st[k]);
        /* the watcher has acc of the cycle before */
        vv y = dmm_net_outputs(nets[1]);
        assert_true(vv_equal(vv_get(y, wat, 3), prev));
        vv_free(c, prev);
        prev = vv_ref(vv_get(y, acc, 3));
        int rank;
        size_t dims[3];
        images += vv_dense_shape(c, prev, &rank, dims) && rank == 2;
        if (t == 10) {
            held = vv_ref(y);
            held_text = vv_to_string(c, held);
        }
    }
    assert_true(images >= 30);
    char *now = vv_to_string(c, held);
    assert_string_equal(held_text, now);
    free(now);
    free(held_text);
    vv_free(c, held);
    vv_free(c, prev);
    for (int k = 0; k < 4; k++)
        dmm_net_free(nets[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_equals_general),
        cmocka_unit_test(test_nan_rollback),
        cmocka_unit_test(test_zeros_vanish),
        cmocka_unit_test(test_lazy_y_out_of_memory),
        cmocka_unit_test(test_accum_images),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
