// SPDX-License-Identifier: MIT
/*
 * The synthesis neurons of builtin_synth.c and the parameter-as-input rule,
 * fired through their descriptors on hand-built dmm_fire records (and the
 * rule once through the engine). Expected
 * values are computed by hand in each test (in comments) or from libm on the
 * same arguments, never copied from a run. The `image` neuron reads PNG
 * files written here, through the engine (file parameters, state files).
 */
#include "testutil.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmm.h"
#include "dmm_neuron.h"
#include "dmm_rng.h"

#define PI 3.14159265358979323846

typedef struct fx {
    vv_ctx *vc;
    dmm_registry *reg;
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->vc = vv_ctx_new(NULL);
    assert_non_null(x->vc);
    x->reg = dmm_registry_new(x->vc);
    assert_non_null(x->reg);
    assert_int_equal(dmm_registry_add_builtins(x->reg), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    dmm_registry_free(x->reg);
    vv_ctx_free(x->vc);
    free(x);
    return 0;
}

static const dmm_type_info *type_of(fx *x, const char *name)
{
    const dmm_type_info *t = dmm_registry_find(x->reg, tu_label(x->vc, name));
    assert_non_null(t);
    return t;
}

/* Fire type on input and params (JSON, params "{}" for none) with the random
 * state rng (may be NULL); *out new on success. */
static int fire(fx *x, const char *type, const char *input, const char *params,
                uint64_t *rng, vv *out, dmm_error *err)
{
    vv in = tu_vv(x->vc, input), p = tu_vv(x->vc, params);
    uint64_t r0[4] = {1, 2, 3, 4};
    dmm_fire f = {.vc = x->vc,
                  .type = type_of(x, type),
                  .name = tu_label(x->vc, "n"),
                  .input = in,
                  .params = p,
                  .step = 1,
                  .rng = rng ? rng : r0,
                  .err = err};
    dmm_error_clear(err);
    int rc = f.type->desc->fn(&f);
    vv_free(x->vc, in);
    vv_free(x->vc, p);
    if (rc)
        assert_true(vv_is_zero(f.output));
    else
        tu_assert_canonical(x->vc, f.output);
    *out = f.output;
    return rc;
}

static void expect(fx *x, const char *type, const char *input,
                   const char *params, const char *want)
{
    vv got;
    dmm_error err;
    int rc = fire(x, type, input, params, NULL, &got, &err);
    if (rc)
        fail_msg("%s on %s: %s", type, input, err.text);
    vv w = tu_vv(x->vc, want);
    tu_assert_vv_close(x->vc, got, w, 1e-12);
    vv_free(x->vc, got);
    vv_free(x->vc, w);
}

static void expect_fail(fx *x, const char *type, const char *input, int code,
                        const char *words)
{
    vv got;
    dmm_error err;
    assert_int_equal(fire(x, type, input, "{}", NULL, &got, &err), code);
    if (!strstr(err.text, words))
        fail_msg("%s: \"%s\" lacks \"%s\"", type, err.text, words);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    static char buf[4][1024];
    static int k;
    va_list ap;
    va_start(ap, f);
    char *b = buf[k++ % 4];
    vsnprintf(b, sizeof buf[0], f, ap);
    va_end(ap);
    return b;
}

/* width 3, height 2: x = -1, 0, 1 along a row; y = 1 on the top row, -1 on
 * the bottom one; r = hypot, theta = atan2(y, x). */
static void test_grid(void **state)
{
    fx *x = *state;
    expect(x, "grid", "{}", "{\"width\": 3, \"height\": 2}",
           fmt("{\"x\": {\"0\": {\"0\": -1, \"2\": 1}, \"1\": {\"0\": -1, "
               "\"2\": 1}}, \"y\": {\"0\": {\"0\": 1, \"1\": 1, \"2\": 1}, "
               "\"1\": {\"0\": -1, \"1\": -1, \"2\": -1}}, \"r\": {\"0\": "
               "{\"0\": %.17g, \"1\": 1, \"2\": %.17g}, \"1\": {\"0\": %.17g, "
               "\"1\": 1, \"2\": %.17g}}, \"theta\": {\"0\": {\"0\": %.17g, "
               "\"1\": %.17g, \"2\": %.17g}, \"1\": {\"0\": %.17g, \"1\": "
               "%.17g, \"2\": %.17g}}}",
               sqrt(2), sqrt(2), sqrt(2), sqrt(2), 3 * PI / 4, PI / 2, PI / 4,
               -3 * PI / 4, -PI / 2, -PI / 4));
    /* zoom 2 from params, x0 = 0.5 from an input stream of that name: a 1 x
     * 2 grid has x = -2 + 0.5, 2 + 0.5 and y = 0 (one row). */
    vv got;
    dmm_error err;
    assert_int_equal(fire(x, "grid", "{\"x0\": 0.5}",
                          "{\"width\": 2, \"height\": 1, \"zoom\": 2}", NULL,
                          &got, &err),
                     0);
    vv w = tu_vv(x->vc, "{\"0\": {\"0\": -1.5, \"1\": 2.5}}");
    tu_assert_vv_close(x->vc, vv_child(got, tu_label(x->vc, "x")), w, 1e-12);
    vv_free(x->vc, w);
    vv_free(x->vc, got);
    assert_int_equal(
        fire(x, "grid", "{}", "{\"width\": 5000}", NULL, &got, &err),
        DMM_E_INVAL);
    assert_non_null(strstr(err.text, "width must be from 1 to 4096"));
}

/* sin(a·x + b) with a an image (absent entries 0), b a number; and with a
 * and b from params when the inputs are absent. */
static void test_sin_cos(void **state)
{
    fx *x = *state;
    const char *in = "{\"x\": {\"0\": {\"0\": 1, \"1\": 2}}, \"a\": {\"0\": "
                     "{\"0\": 0.5}}, \"b\": 0.25}";
    expect(x, "sin", in, "{}",
           fmt("{\"y\": {\"0\": {\"0\": %.17g, \"1\": %.17g}}}", sin(0.75),
               sin(0.25)));
    expect(x, "cos", in, "{}",
           fmt("{\"y\": {\"0\": {\"0\": %.17g, \"1\": %.17g}}}", cos(0.75),
               cos(0.25)));
    expect(x, "sin", "{\"x\": {\"0\": {\"0\": 1, \"1\": 2}}}",
           "{\"a\": 3, \"b\": 1}",
           fmt("{\"y\": {\"0\": {\"0\": %.17g, \"1\": %.17g}}}", sin(4.0),
               sin(7.0)));
    /* no x, no output (not sin(b)) */
    expect(x, "sin", "{\"a\": 2, \"b\": 1}", "{}", "{}");
    /* all numbers: a number out */
    expect(x, "sin", "{\"x\": 2, \"a\": 0.5}", "{}",
           fmt("{\"y\": %.17g}", sin(1.0)));
    /* broadcast to the larger image: x is 1 x 1, a is 1 x 2 */
    expect(x, "sin", "{\"x\": {\"0\": {\"0\": 1}}, \"a\": {\"0\": {\"1\": 2}}}",
           "{\"b\": 0.5}",
           fmt("{\"y\": {\"0\": {\"0\": %.17g, \"1\": %.17g}}}", sin(0.5),
               sin(0.5)));
}

static void test_mul_affine_power_clamp(void **state)
{
    fx *x = *state;
    expect(x, "mul",
           "{\"x\": {\"0\": {\"0\": 3, \"1\": 4}}, \"z\": {\"0\": "
           "{\"0\": 2, \"1\": -1}}}",
           "{}", "{\"y\": {\"0\": {\"0\": 6, \"1\": -4}}}");
    /* a number times an image */
    expect(x, "mul", "{\"x\": 2, \"z\": {\"1\": {\"0\": 5}}}", "{}",
           "{\"y\": {\"1\": {\"0\": 10}}}");
    /* 2·x + 1 (absent entry (0, 0) of a 1 x 2 image gives 1) */
    expect(x, "affine", "{\"x\": {\"0\": {\"1\": 3}}}",
           "{\"scale\": 2, \"shift\": 1}",
           "{\"y\": {\"0\": {\"0\": 1, "
           "\"1\": 7}}}");
    /* scale from a stream overrides the parameter */
    expect(x, "affine", "{\"x\": {\"0\": {\"0\": 3}}, \"scale\": -1}",
           "{\"scale\": 2}", "{\"y\": {\"0\": {\"0\": -3}}}");
    expect(x, "power", "{\"x\": {\"0\": {\"0\": 3, \"1\": -2}}}", "{}",
           "{\"y\": {\"0\": {\"0\": 9, \"1\": 4}}}");
    expect(x, "power", "{\"x\": {\"0\": {\"0\": 4}}, \"exponent\": 0.5}", "{}",
           "{\"y\": {\"0\": {\"0\": 2}}}");
    expect_fail(x, "power", "{\"x\": {\"0\": {\"0\": -4}}, \"exponent\": 0.5}",
                DMM_E_NONFINITE, "not finite");
    expect(x, "clamp", "{\"x\": {\"0\": {\"0\": -3, \"1\": 0.5, \"2\": 9}}}",
           "{}", "{\"y\": {\"0\": {\"1\": 0.5, \"2\": 1}}}");
    expect(x, "clamp", "{\"x\": {\"0\": {\"0\": -3, \"1\": 0.5}}, \"lo\": -1}",
           "{\"hi\": 0.25}", "{\"y\": {\"0\": {\"0\": -1, \"1\": 0.25}}}");
}

static void test_transpose(void **state)
{
    fx *x = *state;
    expect(x, "transpose",
           "{\"matrix\": {\"0\": {\"0\": 1, \"1\": 2, \"2\": 3}, \"1\": "
           "{\"0\": 4, \"2\": 6}}}",
           "{}",
           "{\"matrix\": {\"0\": {\"0\": 1, \"1\": 4}, \"1\": {\"0\": 2}, "
           "\"2\": {\"0\": 3, \"1\": 6}}}");
    /* channels one by one */
    expect(x, "transpose", "{\"matrix\": {\"2\": {\"0\": {\"1\": 5}}}}", "{}",
           "{\"matrix\": {\"2\": {\"1\": {\"0\": 5}}}}");
    expect(x, "transpose", "{}", "{}", "{}");
}

/* image 2 x 3 = [[1, 2, 3], [4, 5, 6]], kernel 1 x 2 = [[10, 1]], centre
 * (0, 1): out[i][j] = 10·img[i][j + 1] + 1·img[i][j]. Row 0: 10·2 + 1,
 * 10·3 + 2, 0 + 3; row 1: 54, 65, 6. */
static void test_conv2d(void **state)
{
    fx *x = *state;
    expect(x, "conv2d",
           "{\"image\": {\"0\": {\"0\": 1, \"1\": 2, \"2\": 3}, \"1\": "
           "{\"0\": 4, \"1\": 5, \"2\": 6}}, \"kernel\": {\"0\": {\"0\": 10, "
           "\"1\": 1}}}",
           "{}",
           "{\"image\": {\"0\": {\"0\": 21, \"1\": 32, \"2\": 3}, \"1\": "
           "{\"0\": 54, \"1\": 65, \"2\": 6}}}");
    /* a 3 x 1 kernel [[1], [0], [-1]] (centre row 1): out[i] = img[i + 1] -
     * img[i - 1] down a column [1, 2, 4]: 2 - 0, 4 - 1, 0 - 2 */
    expect(x, "conv2d",
           "{\"image\": {\"0\": {\"0\": 1}, \"1\": {\"0\": 2}, \"2\": {\"0\": "
           "4}}, \"kernel\": {\"0\": {\"0\": 1}, \"2\": {\"0\": -1}}}",
           "{}",
           "{\"image\": {\"0\": {\"0\": 2}, \"1\": {\"0\": 3}, \"2\": {\"0\": "
           "-2}}}");
    expect_fail(x, "conv2d", "{\"image\": 3}", DMM_E_INVAL, "must be an image");
}

/* radius 1 on [[1, 2], [3, 6]]: every window covers the whole image, mean 3;
 * on a 1 x 3 row [3, 0, 6]: (3+0)/2, (3+0+6)/3, (0+6)/2. */
static void test_blur(void **state)
{
    fx *x = *state;
    expect(x, "blur",
           "{\"image\": {\"0\": {\"0\": 1, \"1\": 2}, \"1\": {\"0\": 3, "
           "\"1\": 6}}}",
           "{}",
           "{\"image\": {\"0\": {\"0\": 3, \"1\": 3}, \"1\": {\"0\": 3, \"1\": "
           "3}}}");
    expect(x, "blur", "{\"image\": {\"0\": {\"0\": 3, \"2\": 6}}}", "{}",
           "{\"image\": {\"0\": {\"0\": 1.5, \"1\": 3, \"2\": 3}}}");
    /* radius from a stream: 0 is absent, so radius 3 from params, then a
     * stream of 0.4 rounds to 0: the identity */
    expect(x, "blur",
           "{\"image\": {\"0\": {\"0\": 3, \"2\": 6}}, \"radius\": "
           "0.4}",
           "{\"radius\": 3}", "{\"image\": {\"0\": {\"0\": 3, \"2\": 6}}}");
}

/* The noise is the network's generator's: the same state gives the same
 * image, drawn in row order as amplitude · (2u − 1). */
static void test_noise(void **state)
{
    fx *x = *state;
    uint64_t rng[4], ref[4];
    dmm_rng_seed(rng, 7);
    memcpy(ref, rng, sizeof ref);
    vv got;
    dmm_error err;
    assert_int_equal(fire(x, "noise", "{}",
                          "{\"width\": 3, \"height\": 2, \"amplitude\": 0.5}",
                          rng, &got, &err),
                     0);
    vv img = vv_child(got, tu_label(x->vc, "image"));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            double want = 0.5 * (2.0 * dmm_rng_uniform(ref) - 1.0);
            vv_label p[2] = {tu_label(x->vc, i ? "1" : "0"),
                             tu_label(x->vc, j == 0   ? "0"
                                             : j == 1 ? "1"
                                                      : "2")};
            assert_true(fabs(vv_get(img, p, 2).num - want) < 1e-15);
            assert_true(fabs(want) <= 0.5);
        }
    assert_memory_equal(rng, ref, sizeof ref); /* the state advanced */
    vv_free(x->vc, got);
}

/* Parameters arrive as input streams of fixed-input types only. */
static void test_params_as_inputs(void **state)
{
    fx *x = *state;
    assert_true(
        dmm_type_accepts_input(type_of(x, "blur"), tu_label(x->vc, "radius")));
    assert_true(dmm_type_accepts_input(type_of(x, "softmax-rows"),
                                       tu_label(x->vc, "temperature")));
    assert_true(dmm_type_accepts_input(type_of(x, "interference"),
                                       tu_label(x->vc, "scale")));
    assert_false(
        dmm_type_accepts_input(type_of(x, "blur"), tu_label(x->vc, "nope")));
    /* softmax-rows with temperature 2 on the row [1, 1 + 2 ln 3]: softmax
     * of [1/2, 1/2 + ln 3] = [1/4, 3/4]; by params and by a stream */
    const char *m =
        fmt("{\"matrix\": {\"0\": {\"0\": 1, \"1\": %.17g}}}", 1 + 2 * log(3));
    expect(x, "softmax-rows", m, "{\"temperature\": 2}",
           "{\"matrix\": {\"0\": {\"0\": 0.25, \"1\": 0.75}}}");
    const char *ms = fmt("{\"matrix\": {\"0\": {\"0\": 1, \"1\": %.17g}}, "
                         "\"temperature\": 2}",
                         1 + 2 * log(3));
    expect(x, "softmax-rows", ms, "{\"temperature\": 5}",
           "{\"matrix\": {\"0\": {\"0\": 0.25, \"1\": 0.75}}}");
    /* softmax-cols: column 0 is [1, 1 + 2 ln 3], column 1 is [1, 1] */
    const char *mc = fmt("{\"matrix\": {\"0\": {\"0\": 1, \"1\": 1}, \"1\": "
                         "{\"0\": %.17g, \"1\": 1}}}",
                         1 + 2 * log(3));
    expect(x, "softmax-cols", mc, "{\"temperature\": 2}",
           "{\"matrix\": {\"0\": {\"0\": 0.25, \"1\": 0.5}, \"1\": "
           "{\"0\": 0.75, \"1\": 0.5}}}");
    expect_fail(x, "softmax-rows", "{\"matrix\": {}, \"temperature\": -1}",
                DMM_E_INVAL, "temperature must be positive");
}

/* Through the engine: a link into a parameter's name loads, and the stream
 * overrides the file's value. blur/b's image is the row [3, 0, 6] held by
 * identity/img; radius 3 from params gives the mean 3 everywhere, a stream
 * of 0.4 (radius 0) gives the row back. */
static void run_blur(fx *x, const char *radius_link, const char *want)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
             "{\"accum\": {\"self\": {\"single\": 1}}}}}}, \"outputs\": "
             "{\"identity\": {\"img\": {\"single\": {\"0\": {\"0\": 3, \"2\": "
             "6}}}, \"r\": {\"single\": 0.4}}}, \"params\": {\"blur\": {\"b\": "
             "{\"radius\": 3}}}, \"links\": [[\"identity/img/single\", "
             "\"identity/img/single\", 1], [\"identity/r/single\", "
             "\"identity/r/single\", 1], [\"blur/b/image\", "
             "\"identity/img/single\", 1]%s]}",
             radius_link);
    dmm_net *net = NULL;
    dmm_error err;
    dmm_error_clear(&err);
    if (dmm_net_load_text(x->vc, x->reg, text, strlen(text), "<t>", &net, &err))
        fail_msg("%s", err.text);
    assert_int_equal(dmm_net_step(net, &err), 0);
    vv_label p[3] = {tu_label(x->vc, "blur"), tu_label(x->vc, "b"),
                     tu_label(x->vc, "image")};
    vv w = tu_vv(x->vc, want);
    tu_assert_vv_close(x->vc, vv_get(dmm_net_outputs(net), p, 3), w, 1e-12);
    vv_free(x->vc, w);
    dmm_net_free(net);
}

static void test_params_through_engine(void **state)
{
    fx *x = *state;
    run_blur(x, "", "{\"0\": {\"0\": 3, \"1\": 3, \"2\": 3}}");
    run_blur(x, ", [\"blur/b/radius\", \"identity/r/single\", 1]",
             "{\"0\": {\"0\": 3, \"2\": 6}}");
    /* a name that is neither input nor parameter is still refused */
    const char *bad =
        "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
        "{\"accum\": {\"self\": {\"single\": 1}}}}}}, \"links\": "
        "[[\"blur/b/radiuz\", \"accum/self/single\", 1]]}";
    dmm_net *net = NULL;
    dmm_error err;
    dmm_error_clear(&err);
    assert_int_equal(
        dmm_net_load_text(x->vc, x->reg, bad, strlen(bad), "<t>", &net, &err),
        DMM_E_INVAL);
    assert_non_null(strstr(err.text, "has no input \"radiuz\""));
    /* an old type's parameter (interference's scale) loads as a stream */
    const char *old =
        "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
        "{\"accum\": {\"self\": {\"single\": 1}}}}}}, \"links\": "
        "[[\"interference/t/scale\", \"accum/self/single\", 1]]}";
    dmm_error_clear(&err);
    assert_int_equal(
        dmm_net_load_text(x->vc, x->reg, old, strlen(old), "<t>", &net, &err),
        0);
    dmm_net_free(net);
}

static void test_bad_images(void **state)
{
    fx *x = *state;
    expect_fail(x, "sin", "{\"x\": {\"a\": {\"0\": 1}}}", DMM_E_INVAL,
                "row label \"a\"");
    expect_fail(x, "sin", "{\"x\": {\"0\": {\"01\": 1}}}", DMM_E_INVAL,
                "column label \"01\"");
    expect_fail(x, "sin", "{\"x\": {\"0\": {\"0\": 1}, \"1\": 2}}", DMM_E_INVAL,
                "row 1 has a number of its own");
    expect_fail(x, "mul", "{\"x\": {\"0\": {\"0\": {\"0\": {\"0\": 1}}}}}",
                DMM_E_INVAL, "4 levels deep");
    expect_fail(x, "transpose", "{\"matrix\": 2}", DMM_E_INVAL,
                "must be an image");
    expect_fail(x, "sin", "{\"x\": {\"0\": {\"4096\": 1}}}", DMM_E_INVAL,
                "from 0 to 4095");
}

/* ---- the image neuron: PNG files named in params ------------------------ */

/* A scratch folder with a PNG of w x h pixels (ch 1: grey, 3: RGB; byte
 * (i·w + j)·ch + c is 10·(i·w + j) + c + 1), named name. */
static void write_png(const char *dir, const char *name, unsigned w, unsigned h,
                      int ch)
{
    unsigned char *px = malloc((size_t)w * h * (size_t)ch);
    assert_non_null(px);
    for (size_t q = 0; q < (size_t)w * h; q++)
        for (int c = 0; c < ch; c++)
            px[q * (size_t)ch + (size_t)c] = (unsigned char)(10 * q + c + 1);
    png_image img = {.version = PNG_IMAGE_VERSION,
                     .width = w,
                     .height = h,
                     .format = ch == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY};
    char *path = tu_path_in(dir, name);
    assert_true(png_image_write_to_file(&img, path, 0, px, 0, NULL));
    free(path);
    free(px);
}

/* The network image/p (gain from a link of weight gain) feeding
 * blur/b (radius 1) and accumulated by accum/acc; extra goes into params. */
static char *image_net(const char *dir, const char *file_json, double gain)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
             "{\"accum\": {\"self\": {\"single\": 1}}}}}},\n"
             "\"outputs\": {\"identity\": {\"one\": {\"single\": 1}}},\n"
             "\"params\": {\"image\": {\"p\": {\"file\": %s}}},\n"
             "\"links\": [[\"identity/one/single\", \"identity/one/single\", "
             "1], [\"image/p/gain\", \"identity/one/single\", %.17g], "
             "[\"blur/b/image\", \"image/p/image\", 1], [\"accum/acc/accum\", "
             "\"accum/acc/single\", 0.5], [\"accum/acc/delta\", "
             "\"blur/b/image\", 1]]}\n",
             file_json, gain);
    return tu_write_in(dir, "net.json", text);
}

static dmm_net *load_file(fx *x, const char *path, dmm_error *err)
{
    dmm_net *net = NULL;
    dmm_error_clear(err);
    int rc = dmm_net_load_file(x->vc, x->reg, path, &net, err);
    assert_true(rc == 0 ? net != NULL : net == NULL);
    return net;
}

static vv out_at(fx *x, dmm_net *net, const char *t, const char *n,
                 const char *o)
{
    vv_label p[3] = {tu_label(x->vc, t), tu_label(x->vc, n),
                     tu_label(x->vc, o)};
    return vv_get(dmm_net_outputs(net), p, 3);
}

/* A grey and a colour PNG read at load: values byte/255 (by hand), times
 * gain, rank 2 and rank 3, one block each; the state holds the picture. */
static void test_image_read(void **state)
{
    fx *x = *state;
    char dir[] = "/tmp/dmm-image-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_png(dir, "g.png", 3, 2, 1);
    write_png(dir, "c.png", 2, 1, 3);
    dmm_error err;
    char *path = image_net(dir, "\"g.png\"", 2);
    dmm_net *net = load_file(x, path, &err);
    if (!net)
        fail_msg("%s", err.text);
    assert_int_equal(dmm_net_step(net, &err), 0);
    /* bytes 1, 11, 21 / 31, 41, 51, times gain 2 */
    char want[512];
    snprintf(want, sizeof want,
             "{\"0\": {\"0\": %.17g, \"1\": %.17g, \"2\": %.17g}, "
             "\"1\": {\"0\": %.17g, \"1\": %.17g, \"2\": %.17g}}",
             2 * (1 / 255.0), 2 * (11 / 255.0), 2 * (21 / 255.0),
             2 * (31 / 255.0), 2 * (41 / 255.0), 2 * (51 / 255.0));
    vv w = tu_vv(x->vc, want);
    vv got = out_at(x, net, "image", "p", "image");
    assert_true(vv_equal(got, w));
    int rank;
    size_t dims[3];
    assert_true(vv_dense_shape(x->vc, got, &rank, dims));
    assert_int_equal(rank, 2);
    assert_int_equal(dims[0], 2);
    assert_int_equal(dims[1], 3);
    vv_free(x->vc, w);
    dmm_net_free(net);
    free(path);
    /* RGB: channel c of pixel q is byte 10q + c + 1; gain 1 */
    path = image_net(dir, "\"./c.png\"", 1);
    net = load_file(x, path, &err);
    if (!net)
        fail_msg("%s", err.text);
    assert_int_equal(dmm_net_step(net, &err), 0);
    snprintf(want, sizeof want,
             "{\"0\": {\"0\": {\"0\": %.17g, \"1\": %.17g}}, "
             "\"1\": {\"0\": {\"0\": %.17g, \"1\": %.17g}}, "
             "\"2\": {\"0\": {\"0\": %.17g, \"1\": %.17g}}}",
             1 / 255.0, 11 / 255.0, 2 / 255.0, 12 / 255.0, 3 / 255.0,
             13 / 255.0);
    w = tu_vv(x->vc, want);
    assert_true(vv_equal(out_at(x, net, "image", "p", "image"), w));
    vv_free(x->vc, w);
    dmm_net_free(net);
    free(path);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -r %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Run, save, restore, run: the same state text as running straight on. */
static void test_image_save_restore(void **state)
{
    fx *x = *state;
    char dir[] = "/tmp/dmm-image-XXXXXX";
    assert_non_null(mkdtemp(dir));
    write_png(dir, "c.png", 5, 4, 3);
    char *path = image_net(dir, "\"c.png\"", 0.75);
    dmm_error err;
    dmm_net *a = load_file(x, path, &err), *b = load_file(x, path, &err);
    assert_non_null(a);
    assert_non_null(b);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(dmm_net_step(a, &err), 0);
        assert_int_equal(dmm_net_step(b, &err), 0);
    }
    vv_buf sb = {0};
    assert_int_equal(dmm_net_save_buf(b, &sb), 0);
    dmm_net_free(b);
    /* the picture is in the state file: the PNG is not read again */
    char *png = tu_path_in(dir, "c.png");
    assert_int_equal(unlink(png), 0);
    free(png);
    vv_ctx *vc2 = vv_ctx_new(NULL);
    dmm_registry *reg2 = dmm_registry_new(vc2);
    assert_int_equal(dmm_registry_add_builtins(reg2), 0);
    dmm_net *c = NULL;
    assert_int_equal(
        dmm_net_restore_text(vc2, reg2, sb.data, sb.len, "state", &c, &err), 0);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(dmm_net_step(a, &err), 0);
        assert_int_equal(dmm_net_step(c, &err), 0);
    }
    vv_buf ta = {0}, tc = {0};
    assert_int_equal(dmm_net_save_buf(a, &ta), 0);
    assert_int_equal(dmm_net_save_buf(c, &tc), 0);
    assert_int_equal(ta.len, tc.len);
    assert_memory_equal(ta.data, tc.data, ta.len);
    /* and it did change over the run: the accumulator moved */
    assert_null(strstr(sb.data, "\"step\": 7"));
    assert_non_null(strstr(ta.data, "\"step\": 7"));
    free(sb.data);
    free(ta.data);
    free(tc.data);
    dmm_net_free(a);
    dmm_net_free(c);
    dmm_registry_free(reg2);
    vv_ctx_free(vc2);
    free(path);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -r %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Load net.json with file parameter file_json; must fail with code, the
 * message containing text, located in net.json at the parameter. */
static void expect_bad_file(fx *x, const char *dir, const char *file_json,
                            int code, const char *text)
{
    char *path = image_net(dir, file_json, 1);
    dmm_error err;
    dmm_net *net = load_file(x, path, &err);
    assert_null(net);
    if (err.code != code || !strstr(err.text, text))
        fail_msg("%s: got %d \"%s\", wanted %d \"%s\"", file_json, err.code,
                 err.text, code, text);
    assert_string_equal(err.source, path);
    assert_string_equal(err.path, "/params/image/p/file");
    assert_int_equal(err.line, 3); /* the "params" line */
    free(path);
}

static void test_image_bad_files(void **state)
{
    fx *x = *state;
    char dir[] = "/tmp/dmm-image-XXXXXX", sub[64], cmd[256];
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof sub, "%s/in", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_png(dir, "outside.png", 2, 2, 1);
    write_png(dir, "wide.png", 5000, 1, 1);
    free(tu_write_in(sub, "text.png", "not a picture"));
    snprintf(cmd, sizeof cmd, "ln -s ../outside.png %s/link.png", sub);
    assert_int_equal(system(cmd), 0);
    char *ok = tu_path_in(dir, "outside.png");
    expect_bad_file(x, sub, "\"none.png\"", DMM_E_IO, "\"none.png\": cannot");
    expect_bad_file(x, sub, "\"text.png\"", DMM_E_INVAL, "not a PNG image");
    expect_bad_file(x, dir, "\"wide.png\"", DMM_E_LIMIT, "5000 x 1 pixels");
    expect_bad_file(x, sub, "\"../outside.png\"", DMM_E_INVAL,
                    "leads outside the network file's folder");
    expect_bad_file(x, sub, "\"a/../../outside.png\"", DMM_E_INVAL,
                    "leads outside the network file's folder");
    char abs[300];
    snprintf(abs, sizeof abs, "\"%s\"", ok);
    expect_bad_file(x, sub, abs, DMM_E_INVAL, "must be relative");
    expect_bad_file(x, sub, "\"link.png\"", DMM_E_INVAL, "symbolic link");
    expect_bad_file(x, sub, "3", DMM_E_INVAL, "is a file name");
    free(ok);
    /* a folder inside and back is inside */
    write_png(sub, "g.png", 1, 1, 1);
    assert_int_equal(mkdir(strcat(strcpy(cmd, sub), "/d"), 0700), 0);
    char *path = image_net(sub, "\"d/../g.png\"", 1);
    dmm_error err;
    dmm_net *net = load_file(x, path, &err);
    if (!net)
        fail_msg("%s", err.text);
    dmm_net_free(net);
    /* text from no file has no folder to read from */
    char *text = tu_read_file(path, NULL);
    assert_int_equal(
        dmm_net_load_text(x->vc, x->reg, text, strlen(text), NULL, &net, &err),
        DMM_E_INVAL);
    assert_non_null(strstr(err.text, "no folder"));
    free(text);
    free(path);
    /* an image neuron without its file */
    const char *none =
        "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
        "{\"accum\": {\"self\": {\"single\": 1}}}}}}, \"links\": "
        "[[\"image/q/gain\", \"accum/self/single\", 1]]}";
    assert_int_equal(
        dmm_net_load_text(x->vc, x->reg, none, strlen(none), "<t>", &net, &err),
        DMM_E_INVAL);
    assert_non_null(strstr(err.text, "neuron image/q has no file"));
    /* a link into the file parameter is no input */
    const char *in =
        "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
        "{\"accum\": {\"self\": {\"single\": 1}}}}}}, \"links\": "
        "[[\"image/q/file\", \"accum/self/single\", 1]]}";
    assert_int_equal(
        dmm_net_load_text(x->vc, x->reg, in, strlen(in), "<t>", &net, &err),
        DMM_E_INVAL);
    assert_non_null(strstr(err.text, "has no input \"file\""));
    /* a state file cannot name one either */
    const char *st = "{\"dmm-state\": 1, \"step\": 0, \"self\": "
                     "\"accum/self/single\", \"labels\": [], \"outputs\": "
                     "{\"accum\": {\"self\": {\"single\": {\"accum\": "
                     "{\"self\": {\"accum\": {\"accum\": {\"self\": "
                     "{\"single\": 1}}}}}}}}}, \"params\": {\"image\": "
                     "{\"q\": {\"file\": 1}}}, \"rng\": [\"1\", \"2\", \"3\", "
                     "\"4\"]}";
    assert_int_equal(
        dmm_net_restore_text(x->vc, x->reg, st, strlen(st), "s", &net, &err),
        DMM_E_INVAL);
    assert_non_null(strstr(err.text, "is a file name"));
    snprintf(cmd, sizeof cmd, "rm -r %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int no_file(vv_ctx *vc, size_t k, const void *d, size_t n, vv *out,
                   dmm_error *err)
{
    (void)vc, (void)k, (void)d, (void)n, (void)out, (void)err;
    return DMM_E_INVAL;
}

static int fire_nothing(dmm_fire *f)
{
    (void)f;
    return 0;
}

/* A file parameter needs a stateful type with a file function. */
static void test_file_param_rules(void **state)
{
    fx *x = *state;
    static const dmm_param_spec ps[] = {
        {"f", 0, "a file", .kind = DMM_PARAM_FILE}, {NULL, 0, NULL}};
    static const dmm_neuron_type stateless = {
        .name = "fp1", .params = ps, .fn = fire_nothing, .file = no_file};
    static const dmm_neuron_type nofn = {
        .name = "fp2", .params = ps, .stateful = true, .fn = fire_nothing};
    static const dmm_neuron_type good = {.name = "fp3",
                                         .params = ps,
                                         .stateful = true,
                                         .fn = fire_nothing,
                                         .file = no_file};
    assert_int_equal(dmm_registry_add(x->reg, &stateless), DMM_E_INVAL);
    assert_int_equal(dmm_registry_add(x->reg, &nofn), DMM_E_INVAL);
    assert_int_equal(dmm_registry_add(x->reg, &good), 0);
    vv_buf b = {0};
    assert_int_equal(dmm_registry_markdown(x->reg, &b), 0);
    assert_non_null(strstr(b.data, "| `f` | (a file name) | a file |"));
    free(b.data);
}

/* Fire type on input {in_name: v} with params JSON; *out new. */
static int fire_vv(fx *x, const char *type, const char *in_name, vv v,
                   const char *params, vv *out)
{
    vv in, p = tu_vv(x->vc, params);
    vv_label l = tu_label(x->vc, in_name);
    assert_int_equal(vv_wrap(x->vc, 0.0, l, v, &in), 0);
    uint64_t r0[4] = {1, 2, 3, 4};
    dmm_error err;
    dmm_error_clear(&err);
    dmm_fire f = {.vc = x->vc,
                  .type = type_of(x, type),
                  .name = tu_label(x->vc, "n"),
                  .input = in,
                  .params = p,
                  .step = 1,
                  .rng = r0,
                  .err = &err};
    int rc = f.type->desc->fn(&f);
    vv_free(x->vc, in);
    vv_free(x->vc, p);
    *out = f.output;
    return rc;
}

/* An image held as one block (vv_from_dense: a slab, which softmax-rows,
 * softmax-cols and the synthesis neurons read without a walk) and the same
 * image with its top level rewritten as a tree (read by the general paths)
 * give the same bits out, also with an empty row and column inside. */
static void test_forms_same_bits(void **state)
{
    fx *x = *state;
    enum { R = 40, C = 33 };
    double a[R * C];
    uint64_t seed = 7;
    for (size_t q = 0; q < R * C; q++) {
        double u = (double)(tu_rand(&seed) >> 11) / 9007199254740992.0;
        a[q] = (q / C == 2 || q % C == 3 || u < 0.2) ? 0.0 : 4 * u - 2;
    }
    size_t dims[2] = {R, C};
    vv slab, tree;
    assert_int_equal(vv_from_dense(x->vc, 2, dims, a, &slab), 0);
    vv_label l0 = tu_label(x->vc, "0");
    assert_int_equal(vv_set(x->vc, slab, &l0, 1, vv_child(slab, l0), &tree), 0);
    size_t r, c, ld;
    const double *d;
    assert_true(vv_dense_view(slab, &r, &c, &ld, &d));
    assert_false(vv_dense_view(tree, &r, &c, &ld, &d));
    assert_true(vv_equal(slab, tree));
    static const struct {
        const char *type, *in, *params;
    } cases[] = {
        {"softmax-rows", "matrix", "{\"temperature\": 0.7}"},
        {"softmax-cols", "matrix", "{\"temperature\": 0.3}"},
        {"blur", "image", "{\"radius\": 1}"},
        {"sin", "x", "{\"a\": 3, \"b\": 0.5}"},
        {"transpose", "matrix", "{}"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        vv o1, o2;
        assert_int_equal(
            fire_vv(x, cases[k].type, cases[k].in, slab, cases[k].params, &o1),
            0);
        assert_int_equal(
            fire_vv(x, cases[k].type, cases[k].in, tree, cases[k].params, &o2),
            0);
        assert_false(vv_is_zero(o1));
        char *s1 = vv_to_string(x->vc, o1), *s2 = vv_to_string(x->vc, o2);
        if (strcmp(s1, s2) || !vv_equal(o1, o2))
            fail_msg("%s: %s != %s", cases[k].type, s1, s2);
        free(s1);
        free(s2);
        vv_free(x->vc, o1);
        vv_free(x->vc, o2);
    }
    vv_free(x->vc, slab);
    vv_free(x->vc, tree);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sin_cos, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mul_affine_power_clamp, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transpose, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conv2d, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blur, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_as_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forms_same_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_save_restore, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_image_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_param_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_params_through_engine, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
