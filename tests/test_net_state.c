// SPDX-License-Identifier: MIT
/*
 * Save and restore: a restored network continues bit-identically (canonical
 * JSON compared with strcmp, on weights whose sums depend on the order of
 * terms), state files are written atomically, and bad ones are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmm.h"
#include "dmm_rng.h"
#include "testutil.h"

/* A stateful neuron that uses the network's random state: it counts its
 * firings and emits a uniform draw in [0, 1) scaled by its input's norm
 * (dmm_rng.h, the generator a neuron's f->rng is for). */
static int fire_noisy(dmm_fire *f)
{
    double u = dmm_rng_uniform(f->rng);
    vv_ctx *vc = f->vc;
    vv_label n, r;
    int rc;
    if ((rc = vv_intern_cstr(vc, "n", &n)) ||
        (rc = vv_intern_cstr(vc, "r", &r)))
        return rc;
    double count = f->state.num + 1;
    vv ch[2] = {vv_number(count), vv_number(u * (1 + vv_max_norm(f->input)))};
    vv_label lb[2] = {n, r};
    if ((rc = vv_from_pairs(vc, 0, 2, lb, ch, &f->output)))
        return rc;
    f->new_state = vv_number(count);
    return 0;
}

static const dmm_neuron_type noisy_type = {
    .name = "noisy",
    .summary = "counts firings; a random draw",
    .outputs_doc = "n, r",
    .stateful = true,
    .fn = fire_noisy,
};

typedef struct world {
    vv_ctx *vc;
    dmm_registry *reg;
} world;

static void world_new(world *w)
{
    w->vc = vv_ctx_new(NULL);
    assert_non_null(w->vc);
    w->reg = dmm_registry_new(w->vc);
    assert_non_null(w->reg);
    assert_int_equal(dmm_registry_add_builtins(w->reg), 0);
    assert_int_equal(dmm_registry_add(w->reg, &noisy_type), 0);
}

static void world_free(world *w)
{
    dmm_registry_free(w->reg);
    vv_ctx_free(w->vc);
}

/* Non-dyadic weights: rounding depends on the order of the terms. */
static const char net_text[] =
    "{\"dmm\": 1, \"seed\": 7,\n"
    " \"matrix\": {\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "
    "{\"single\": 1}}}}}},\n"
    " \"links\": [\n"
    "  [\"tanh/t1/a\", \"tanh/t2/a\", 0.3], [\"tanh/t1/a\", \"tanh/t1/a\", "
    "0.1],\n"
    "  [\"tanh/t1/a\", \"tanh/t3/b\", 0.7], [\"tanh/t1/a\", "
    "\"input/in/v\", 0.11],\n"
    "  [\"tanh/t2/a\", \"tanh/t1/a\", 0.3], [\"tanh/t2/a\", \"tanh/t3/b\", "
    "-0.9],\n"
    "  [\"tanh/t2/a\", \"noisy/z/r\", 0.13],\n"
    "  [\"tanh/t3/b\", \"tanh/t1/a\", 0.37], [\"tanh/t3/b\", \"tanh/t2\", "
    "0.21],\n"
    "  [\"noisy/z/x\", \"tanh/t3/b\", 1],\n"
    "  [\"input/in/dummy\", \"tanh/nothing\", 1]],\n"
    " \"outputs\": {\"tanh\": {\"t1\": {\"a\": {\"p\": 0.5, \"q\": -0.2}},"
    " \"t3\": {\"b\": {\"p\": 0.1, \"q\": 0.3, \"r\": 0.6}}}}}";

static dmm_net *load(world *w)
{
    dmm_net *net = NULL;
    dmm_error err;
    if (dmm_net_load_text(w->vc, w->reg, net_text, strlen(net_text), "net",
                          &net, &err)) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("%s", msg);
    }
    return net;
}

static void feed_all(world *w, dmm_net *net, int n)
{
    vv_label in = tu_label(w->vc, "in");
    for (int k = 0; k < n; k++) {
        char json[128];
        snprintf(json, sizeof json, "{\"v\": {\"p\": %.17g, \"q\": %.17g}}",
                 0.1 * k, 1.0 / (k + 3));
        vv v = tu_vv(w->vc, json);
        dmm_error err;
        assert_int_equal(dmm_net_feed(net, in, v, &err), 0);
        vv_free(w->vc, v);
    }
}

static void steps(dmm_net *net, int n, char **texts)
{
    for (int k = 0; k < n; k++) {
        dmm_error err;
        if (dmm_net_step(net, &err)) {
            char msg[1024];
            dmm_error_format(&err, msg, sizeof msg);
            fail_msg("%s", msg);
        }
        if (texts) {
            texts[k] = vv_to_string(dmm_net_vctx(net), dmm_net_outputs(net));
            assert_non_null(texts[k]);
        }
    }
}

enum { N = 7, M = 9 };

static void test_bit_identity(void **state)
{
    world a, b;
    world_new(&a);
    dmm_net *net = load(&a);
    feed_all(&a, net, N + 3); /* some are still queued when saving */
    steps(net, N, NULL);
    vv_buf saved = {0};
    assert_int_equal(dmm_net_save_buf(net, &saved), 0);
    assert_int_equal(vv_buf_append(&saved, "", 1), 0);
    char *straight[M], *resumed[M];
    steps(net, M, straight);

    world_new(&b);
    dmm_net *net2 = NULL;
    dmm_error err;
    if (dmm_net_restore_text(b.vc, b.reg, saved.data, saved.len - 1, "state",
                             &net2, &err)) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("%s", msg);
    }
    assert_int_equal(dmm_net_step_count(net2), N);
    assert_int_equal(dmm_net_queue_len(net2, tu_label(b.vc, "in")), 3);
    /* Saving the restored network gives the same document. */
    vv_buf again = {0};
    assert_int_equal(dmm_net_save_buf(net2, &again), 0);
    assert_int_equal(again.len, saved.len - 1);
    assert_memory_equal(again.data, saved.data, again.len);
    free(again.data);

    steps(net2, M, resumed);
    for (int k = 0; k < M; k++) {
        if (strcmp(straight[k], resumed[k]) != 0)
            fail_msg("step %d differs:\n straight %s\n resumed  %s", N + k + 1,
                     straight[k], resumed[k]);
        free(straight[k]);
        free(resumed[k]);
    }
    assert_int_equal(dmm_net_step_count(net2), N + M);
    free(saved.data);
    dmm_net_free(net);
    dmm_net_free(net2);
    world_free(&a);
    world_free(&b);
}

/* The same network with a different seed draws differently: the rng really
 * is part of the state compared above. */
static void test_seed_matters(void **state)
{
    world a;
    world_new(&a);
    dmm_net *n1 = load(&a);
    char *t1[3];
    steps(n1, 3, t1);
    const char *other = strstr(net_text, "\"seed\": 7");
    assert_non_null(other);
    char *text2 = strdup(net_text);
    text2[other - net_text + 8] = '8';
    dmm_net *n2 = NULL;
    dmm_error err;
    assert_int_equal(
        dmm_net_load_text(a.vc, a.reg, text2, strlen(text2), "net", &n2, &err),
        0);
    char *t2[3];
    steps(n2, 3, t2);
    assert_true(strcmp(t1[2], t2[2]) != 0);
    for (int k = 0; k < 3; k++) {
        free(t1[k]);
        free(t2[k]);
    }
    free(text2);
    dmm_net_free(n1);
    dmm_net_free(n2);
    world_free(&a);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/dmm-test-state-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void test_atomic_file(void **state)
{
    world a;
    world_new(&a);
    dmm_net *net = load(&a);
    steps(net, 3, NULL);
    char *dir = make_tmpdir();
    char file[512], tmp[520];
    snprintf(file, sizeof file, "%s/state.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    dmm_error err;
    assert_int_equal(dmm_net_save_file(net, file, &err), 0);
    assert_int_equal(access(tmp, F_OK), -1);
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    size_t len;
    char *text = tu_read_file(file, &len);
    assert_non_null(text);
    assert_int_equal(len, b.len);
    assert_memory_equal(text, b.data, len);
    free(text);

    /* Restore from the file and compare the next step. */
    dmm_net *net2 = NULL;
    assert_int_equal(dmm_net_restore_file(a.vc, a.reg, file, &net2, &err), 0);
    steps(net, 1, NULL);
    steps(net2, 1, NULL);
    assert_true(vv_equal(dmm_net_outputs(net), dmm_net_outputs(net2)));
    dmm_net_free(net2);

    /* A directory that does not exist: an I/O error, nothing written. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/state.json", dir);
    assert_int_equal(dmm_net_save_file(net, bad, &err), DMM_E_IO);
    assert_string_equal(err.source, bad);
    /* The rename fails (the target is a directory): the temporary file is
     * removed and the target is untouched. */
    char sub[600], subtmp[610];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(subtmp, sizeof subtmp, "%s.tmp", sub);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(dmm_net_save_file(net, sub, &err), DMM_E_IO);
    assert_int_equal(access(subtmp, F_OK), -1);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    rmdir(sub);
    unlink(file);
    rmdir(dir);
    free(dir);
    free(b.data);
    dmm_net_free(net);
    world_free(&a);
}

/* Restoring text must fail with code and path. */
static void expect_bad(world *w, const char *text, int code,
                       const char *path_prefix)
{
    dmm_net *net = NULL;
    dmm_error err;
    int rc = dmm_net_restore_text(w->vc, w->reg, text, strlen(text),
                                  "state.json", &net, &err);
    char msg[1024];
    dmm_error_format(&err, msg, sizeof msg);
    print_message("%s\n", msg);
    assert_int_equal(rc, code);
    assert_null(net);
    assert_string_equal(err.source, "state.json");
    assert_true(strncmp(err.path, path_prefix, strlen(path_prefix)) == 0);
    assert_true(err.text[0] != '\0');
}

static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    size_t n = strlen(s) - strlen(from) + strlen(to);
    char *r = malloc(n + 1);
    size_t k = (size_t)(at - s);
    memcpy(r, s, k);
    strcpy(r + k, to);
    strcat(r, at + strlen(from));
    return r;
}

static void test_corrupt(void **state)
{
    world a;
    world_new(&a);
    dmm_net *net = load(&a);
    feed_all(&a, net, 2);
    steps(net, 1, NULL);
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    dmm_net_free(net);

    world c;
    world_new(&c);
    /* Cut in half: malformed JSON with a position. */
    char *half = strndup(b.data, b.len / 2);
    dmm_net *out = NULL;
    dmm_error err;
    assert_int_equal(dmm_net_restore_text(c.vc, c.reg, half, strlen(half),
                                          "state.json", &out, &err),
                     DMM_E_PARSE);
    assert_true(err.line > 0);
    free(half);

    char *t = replace(b.data, "\"rng\": [\"", "\"rng\": [\"x");
    expect_bad(&c, t, DMM_E_INVAL, "/rng");
    free(t);
    t = replace(b.data, "\"dmm-state\": 1", "\"dmm-state\": 2");
    expect_bad(&c, t, DMM_E_INVAL, "/dmm-state");
    free(t);
    t = replace(b.data, "\"tanh\":", "\"tahn\":");
    expect_bad(&c, t, DMM_E_INVAL, "/outputs/");
    free(t);
    t = replace(b.data, "\"input/in\"", "\"identity/in\"");
    expect_bad(&c, t, DMM_E_INVAL, "/queues/");
    free(t);
    t = replace(b.data, "\"step\": 1", "\"step\": -1");
    expect_bad(&c, t, DMM_E_INVAL, "/step");
    free(t);
    t = replace(b.data, "\"queues\"", "\"queue\"");
    expect_bad(&c, t, DMM_E_INVAL, "/queue");
    free(t);
    /* ":number" is a scalar part, never a label nor a neuron's name. */
    t = replace(b.data, "\"labels\": [", "\"labels\": [\":number\", ");
    expect_bad(&c, t, DMM_E_INVAL, "/labels/0");
    free(t);
    t = replace(b.data, "\"input/in\"", "\"input/in/:number\"");
    expect_bad(&c, t, DMM_E_INVAL, "/queues/input~1in~1:number");
    free(t);
    expect_bad(&c, "[]", DMM_E_INVAL, "");
    free(b.data);
    world_free(&c);

    /* A registry without the noisy type cannot take this state. */
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = dmm_registry_new(vc);
    assert_int_equal(dmm_registry_add_builtins(reg), 0);
    world d = {vc, reg};
    net = load(&a);
    b = (vv_buf){0};
    steps(net, 2, NULL);
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    expect_bad(&d, b.data, DMM_E_INVAL, "/outputs/");
    free(b.data);
    dmm_net_free(net);
    world_free(&d);
    world_free(&a);
}

/* ---- issue 18: random networks written with links ---------------------- */

static dmm_net *load_text(world *w, const char *text)
{
    dmm_net *net = NULL;
    dmm_error err;
    if (dmm_net_load_text(w->vc, w->reg, text, strlen(text), "random", &net,
                          &err)) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("%s\n%s", msg, text);
    }
    return net;
}

/* Queue k maps for input/in, some of them with a scalar part. */
static void feed_signal(world *w, dmm_net *net, int k, uint64_t seed)
{
    vv_label in = tu_label(w->vc, "in");
    for (int i = 0; i < k; i++) {
        char json[160];
        snprintf(json, sizeof json,
                 "{\"signal\": {\":number\": %.17g, \"x\": {\"a\": %.17g}}}",
                 (double)(seed % 7) / 3 - i * 0.1, 1.0 / (i + 3));
        vv v = tu_vv(w->vc, json);
        dmm_error err;
        assert_int_equal(dmm_net_feed(net, in, v, &err), 0);
        vv_free(w->vc, v);
    }
}

static char *save_text(dmm_net *net)
{
    vv_buf b = {0};
    assert_int_equal(dmm_net_save_buf(net, &b), 0);
    assert_int_equal(vv_buf_append(&b, "", 1), 0);
    return b.data;
}

/* N+M cycles straight and N cycles, save, restore in a fresh context, M
 * cycles give the same state file byte for byte, for networks whose links
 * read scalar parts ("max-norm/m0/:number"); the same network written
 * without any ":number" runs the same; and ":number" is never a label. */
static void test_random_links_resume(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        uint64_t r = seed * 0x2545f4914f6cdd1du;
        int n = 1 + (int)(tu_rand(&r) % 6), m = 1 + (int)(tu_rand(&r) % 6);
        char *text = tu_random_links_net(seed, false, true);
        char *plain_text = tu_random_links_net(seed, true, true);
        world a, b;
        world_new(&a);
        dmm_net *net = load_text(&a, text);
        dmm_net *plain = load_text(&a, plain_text);
        assert_true(vv_equal(dmm_net_matrix(net), dmm_net_matrix(plain)));
        /* Some maps are still queued when saving. */
        feed_signal(&a, net, n + 2, seed);
        feed_signal(&a, plain, n + 2, seed);
        steps(net, n, NULL);
        char *saved = save_text(net);
        steps(net, m, NULL);
        steps(plain, n + m, NULL);
        char *straight = save_text(net);
        char *same = save_text(plain);
        if (strcmp(straight, same) != 0)
            fail_msg("seed %llu: with and without \":number\" differ:\n%s\n%s",
                     (unsigned long long)seed, straight, same);

        world_new(&b);
        dmm_net *net2 = NULL;
        dmm_error err;
        if (dmm_net_restore_text(b.vc, b.reg, saved, strlen(saved), "state",
                                 &net2, &err)) {
            char msg[1024];
            dmm_error_format(&err, msg, sizeof msg);
            fail_msg("seed %llu: %s", (unsigned long long)seed, msg);
        }
        steps(net2, m, NULL);
        char *resumed = save_text(net2);
        if (strcmp(straight, resumed) != 0)
            fail_msg("seed %llu, %d + %d cycles: straight and resumed "
                     "differ:\n%s\n%s\nnetwork:\n%s",
                     (unsigned long long)seed, n, m, straight, resumed, text);
        vv_label l;
        assert_int_equal(vv_label_find(a.vc, ":number", 7, &l), DMM_E_NOTFOUND);
        assert_int_equal(vv_label_find(b.vc, ":number", 7, &l), DMM_E_NOTFOUND);
        free(resumed);
        free(same);
        free(straight);
        free(saved);
        dmm_net_free(net2);
        dmm_net_free(plain);
        dmm_net_free(net);
        world_free(&b);
        world_free(&a);
        free(plain_text);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_identity),
        cmocka_unit_test(test_seed_matters),
        cmocka_unit_test(test_atomic_file),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_random_links_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
