// SPDX-License-Identifier: MIT
/*
 * The render library (frames on a common layout, colours, PNG and GIF files,
 * PNG reading) and `dmm render` as a user runs it: bad requests refused with
 * located messages and no file written, and every command of
 * docs/gallery.md run at a few steps, its frames checked to exist, to change
 * over time and not to be blank.
 */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "dmm_render.h"

typedef struct fx {
    vv_ctx *vc;
    char dir[64];
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->vc = vv_ctx_new(NULL);
    assert_non_null(x->vc);
    snprintf(x->dir, sizeof x->dir, "/tmp/dmm-test-render-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
    assert_int_equal(system(cmd), 0);
    vv_ctx_free(x->vc);
    free(x);
    return 0;
}

/* Lay out the JSON values; returns the code, err filled. */
static int build(fx *x, const char *const *json, size_t n, dmm_frames *out,
                 dmm_error *err)
{
    vv v[8];
    for (size_t k = 0; k < n; k++)
        v[k] = tu_vv(x->vc, json[k]);
    dmm_error_clear(err);
    int rc = dmm_frames_build(x->vc, v, n, "--path t/n/o", out, err);
    for (size_t k = 0; k < n; k++)
        vv_free(x->vc, v[k]);
    return rc;
}

static double px(const dmm_frames *f, size_t k, size_t i, size_t j, size_t c)
{
    return f->px[((k * f->rows + i) * f->cols + j) * f->channels + c];
}

/* Rows and columns are the union over frames, in natural order ("10" after
 * "2"); absent entries are 0. */
static void test_layout(void **state)
{
    fx *x = *state;
    const char *v[] = {"{\"0\": {\"0\": 1, \"1\": 2}, \"2\": {\"1\": -1}}",
                       "{\"10\": {\"2\": 3}}", "{}"};
    dmm_frames f;
    dmm_error err;
    assert_int_equal(build(x, v, 3, &f, &err), 0);
    assert_int_equal(f.n, 3);
    assert_int_equal(f.rows, 11); /* 0 .. 10: integers fill the gaps */
    assert_int_equal(f.cols, 3);  /* 0, 1, 2 */
    assert_int_equal(f.channels, 1);
    assert_true(px(&f, 0, 0, 0, 0) == 1 && px(&f, 0, 0, 1, 0) == 2);
    assert_true(px(&f, 0, 2, 1, 0) == -1 && px(&f, 0, 10, 2, 0) == 0);
    assert_true(px(&f, 1, 10, 2, 0) == 3 && px(&f, 1, 0, 0, 0) == 0);
    for (size_t i = 0; i < 11; i++)
        for (size_t j = 0; j < 3; j++)
            assert_true(px(&f, 2, i, j, 0) == 0);
    dmm_frames_free(&f);
}

/* W (depth 6): rows type/name/input, columns type/name/output; channels. */
static void test_layout_w_and_rgb(void **state)
{
    fx *x = *state;
    const char *w[] = {
        "{\"accum\": {\"self\": {\"accum\": {\"accum\": {\"self\": "
        "{\"single\": "
        "1}}}, \"delta\": {\"identity\": {\"u\": {\"single\": 2}}}}}}"};
    dmm_frames f;
    dmm_error err;
    assert_int_equal(build(x, w, 1, &f, &err), 0);
    assert_int_equal(f.rows, 2); /* accum/self/accum, accum/self/delta */
    assert_int_equal(f.cols, 2); /* accum/self/single, identity/u/single */
    assert_true(px(&f, 0, 0, 0, 0) == 1 && px(&f, 0, 1, 1, 0) == 2);
    assert_true(px(&f, 0, 0, 1, 0) == 0 && px(&f, 0, 1, 0, 0) == 0);
    dmm_frames_free(&f);
    /* natural order: u-2 before u-10 */
    const char *nat[] = {"{\"a\": {\"u-10\": 1, \"u-2\": 2}}"};
    assert_int_equal(build(x, nat, 1, &f, &err), 0);
    assert_true(px(&f, 0, 0, 0, 0) == 2 && px(&f, 0, 0, 1, 0) == 1);
    dmm_frames_free(&f);
    const char *rgb[] = {"{\"0\": {\"0\": {\"0\": 1}}, \"2\": {\"0\": {\"1\": "
                         "0.5}}, \"1\": {\"0\": {\"0\": 0.25}}}"};
    assert_int_equal(build(x, rgb, 1, &f, &err), 0);
    assert_int_equal(f.channels, 3);
    assert_int_equal(f.rows, 1);
    assert_int_equal(f.cols, 2);
    assert_true(px(&f, 0, 0, 0, 0) == 1 && px(&f, 0, 0, 0, 1) == 0.25);
    assert_true(px(&f, 0, 0, 1, 2) == 0.5 && px(&f, 0, 0, 1, 0) == 0);
    dmm_frames_free(&f);
}

static void expect_bad(fx *x, const char *const *v, size_t n, const char *path,
                       const char *words)
{
    dmm_frames f = {.px = NULL};
    dmm_error err;
    assert_int_equal(build(x, v, n, &f, &err), DMM_E_INVAL);
    assert_null(f.px);
    if (!strstr(err.text, words) || strcmp(err.path, path) != 0)
        fail_msg("got \"%s: %s\", want \"%s: ...%s...\"", err.path, err.text,
                 path, words);
    assert_non_null(strstr(err.text, "--path t/n/o"));
}

static void test_bad_values(void **state)
{
    fx *x = *state;
    const char *ragged[] = {"{\"0\": {\"0\": 1}}",
                            "{\"0\": {\"0\": 1, \"1\": {\"x\": 2}}}"};
    expect_bad(x, ragged, 2, "frame 2: /0/1/x", "ragged matrix");
    const char *vec[] = {"{\"a\": 1}"};
    expect_bad(x, vec, 1, "frame 1: /a", "not a matrix");
    const char *deep5[] = {"{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": 1}}}}}"};
    expect_bad(x, deep5, 1, "frame 1: /a/b/c/d/e", "5 levels deep");
    const char *zero[] = {"{}", "{}"};
    expect_bad(x, zero, 2, "", "no matrix in any of the 2 frames");
    const char *two[] = {"{\"0\": {\"0\": {\"0\": 1}}, \"1\": {\"0\": {\"0\": "
                         "1}}}"};
    expect_bad(x, two, 1, "", "it has 2");
    /* a non-finite number (the engine never makes one; a host might) */
    vv nan = vv_number(NAN);
    dmm_frames f;
    dmm_error err;
    dmm_error_clear(&err);
    assert_int_equal(dmm_frames_build(x->vc, &nan, 1, "v", &f, &err),
                     DMM_E_INVAL);
    assert_non_null(strstr(err.text, "not finite"));
}

/* Grey: 0 black, the largest white; signed: blue, white at 0, red; each
 * entry a scale × scale block. */
static void test_colours(void **state)
{
    fx *x = *state;
    const char *grey[] = {"{\"0\": {\"1\": 2, \"2\": 1}}"};
    dmm_frames f;
    dmm_error err;
    assert_int_equal(build(x, grey, 1, &f, &err), 0);
    dmm_render_opts o = {.range = DMM_RANGE_FIXED, .scale = 2};
    uint8_t rgb[2 * 6 * 3];
    dmm_frames_rgb(&f, 0, &o, rgb);
    /* columns 0 (absent: 0), 1 (2: white), 2 (1: mid grey), 2 pixels each */
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 6; c++) {
            int want = c < 2 ? 0 : c < 4 ? 255 : 128;
            for (int q = 0; q < 3; q++)
                assert_int_equal(rgb[(r * 6 + c) * 3 + q], want);
        }
    dmm_frames_free(&f);
    const char *sgn[] = {"{\"0\": {\"0\": -2, \"1\": 1, \"2\": 2}}"};
    assert_int_equal(build(x, sgn, 1, &f, &err), 0);
    o.scale = 1;
    uint8_t d[3 * 3];
    dmm_frames_rgb(&f, 0, &o, d);
    assert_true(d[2] > d[0] && d[2] > 150); /* -2: blue */
    assert_true(d[6] > d[8] && d[6] > 150); /* 2: red */
    /* 1 is half way from white to red: a pink lighter than the red */
    assert_true(d[3] > d[6] && d[4] > d[7]);
    /* a given range: -2 .. 2 */
    o.range = DMM_RANGE_GIVEN;
    o.lo = -4;
    o.hi = 4;
    uint8_t e[3 * 3];
    dmm_frames_rgb(&f, 0, &o, e);
    assert_true(e[6] > d[6] - 100 && e[7] > d[7]); /* 2 of 4: paler */
    dmm_frames_free(&f);
}

/* Files in dir (not . and ..). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A frame written as PNG reads back as three equal channels of byte/255. */
static void test_png_round_trip(void **state)
{
    fx *x = *state;
    const char *v[] = {"{\"0\": {\"0\": 1, \"1\": 3}, \"1\": {\"1\": 2}}"};
    dmm_frames f;
    dmm_error err;
    assert_int_equal(build(x, v, 1, &f, &err), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/a.png", x->dir);
    dmm_render_opts o = {
        .range = DMM_RANGE_GIVEN, .lo = 0, .hi = 3, .scale = 1};
    assert_int_equal(dmm_frames_write_png(&f, 0, &o, path, &err), 0);
    assert_int_equal(count_files(x->dir), 1); /* no temporary left */
    vv got;
    assert_int_equal(dmm_png_read(x->vc, path, &got, &err), 0);
    char want[1024];
    double b1 = round(255.0 / 3) / 255, b2 = round(510.0 / 3) / 255;
    const char *m = "{\"0\": {\"0\": %.17g, \"1\": 1}, \"1\": {\"1\": %.17g}}";
    char one[200];
    snprintf(one, sizeof one, m, b1, b2);
    snprintf(want, sizeof want, "{\"0\": %s, \"1\": %s, \"2\": %s}", one, one,
             one);
    vv w = tu_vv(x->vc, want);
    tu_assert_vv_close(x->vc, got, w, 1e-12);
    vv_free(x->vc, w);
    vv_free(x->vc, got);
    /* a file that is not a PNG */
    snprintf(path, sizeof path, "%s/not.png", x->dir);
    FILE *fp = fopen(path, "w");
    fputs("hello", fp);
    fclose(fp);
    assert_int_equal(dmm_png_read(x->vc, path, &got, &err), DMM_E_IO);
    assert_non_null(strstr(err.text, "not.png: cannot read the PNG"));
    /* a folder that does not exist: an error, nothing written */
    snprintf(path, sizeof path, "%s/none/a.png", x->dir);
    assert_int_equal(dmm_frames_write_png(&f, 0, &o, path, &err), DMM_E_IO);
    assert_non_null(strstr(err.text, "cannot create"));
    dmm_frames_free(&f);
    /* absurd sizes are refused before any pixel is touched (px is NULL) */
    dmm_frames big = {.n = 2, .rows = 4096, .cols = 4096, .channels = 1};
    dmm_render_opts o3 = {.range = DMM_RANGE_FRAME, .scale = 3};
    snprintf(path, sizeof path, "%s/big.png", x->dir);
    assert_int_equal(dmm_frames_write_png(&big, 0, &o3, path, &err),
                     DMM_E_LIMIT);
    assert_non_null(strstr(err.text, "pixels a frame may have"));
    assert_int_equal(dmm_frames_write_apng(&big, &o3, path, &err), DMM_E_LIMIT);
    snprintf(path, sizeof path, "%s/big.gif", x->dir);
    o3.scale = 2; /* one frame fits, two do not */
    assert_int_equal(dmm_frames_write_gif(&big, &o3, path, &err), DMM_E_LIMIT);
    assert_non_null(strstr(err.text, "pixels a GIF may have"));
    assert_int_equal(count_files(x->dir), 2); /* a.png and not.png */
}

/* An animated GIF: header, looping extension, one image per frame. */
static void test_gif(void **state)
{
    fx *x = *state;
    const char *v[] = {"{\"0\": {\"0\": 1}}", "{\"0\": {\"1\": -1}}",
                       "{\"1\": {\"0\": 0.5}}"};
    dmm_frames f;
    dmm_error err;
    assert_int_equal(build(x, v, 3, &f, &err), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/a.gif", x->dir);
    dmm_render_opts o = {.range = DMM_RANGE_FIXED, .scale = 3, .delay_ms = 100};
    assert_int_equal(dmm_frames_write_gif(&f, &o, path, &err), 0);
    size_t len;
    char *data = tu_read_file(path, &len);
    assert_non_null(data);
    assert_memory_equal(data, "GIF89a", 6);
    assert_int_equal(data[6] | data[7] << 8, 6); /* width 2 × 3 */
    int images = 0;
    bool loop = false;
    for (size_t k = 0; k + 11 < len; k++) {
        loop |= !memcmp(data + k, "NETSCAPE2.0", 11);
        /* a graphic control block then an image descriptor */
        images += data[k] == 0x21 && (unsigned char)data[k + 1] == 0xf9 &&
                  data[k + 2] == 4 && data[k + 7] == 0 && data[k + 8] == 0x2c;
    }
    assert_true(loop);
    assert_int_equal(images, 3);
    free(data);
    assert_int_equal(count_files(x->dir), 1);
    dmm_frames_free(&f);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* An animated PNG: IHDR, acTL (3 frames, loop for ever), then per frame an
 * fcTL and its data (IDAT for the first, fdAT after), sequence numbers 0, 1,
 * 2, ... across fcTL and fdAT, every CRC right; and libpng reads it as
 * frame 1. */
static void test_apng(void **state)
{
    fx *x = *state;
    const char *v[] = {"{\"0\": {\"0\": 1}}", "{\"0\": {\"1\": -1}}",
                       "{\"1\": {\"0\": 0.5}}"};
    dmm_frames f;
    dmm_error err;
    assert_int_equal(build(x, v, 3, &f, &err), 0);
    char path[128], first[128];
    snprintf(path, sizeof path, "%s/a.png", x->dir);
    snprintf(first, sizeof first, "%s/first.png", x->dir);
    dmm_render_opts o = {.range = DMM_RANGE_FIXED, .scale = 2, .delay_ms = 250};
    assert_int_equal(dmm_frames_write_apng(&f, &o, path, &err), 0);
    assert_int_equal(dmm_frames_write_png(&f, 0, &o, first, &err), 0);
    size_t len;
    unsigned char *d = (unsigned char *)tu_read_file(path, &len);
    assert_non_null(d);
    assert_memory_equal(d, "\x89PNG\r\n\x1a\n", 8);
    char order[64] = "";
    uint32_t seq = 0;
    int frames_seen = 0;
    for (size_t at = 8; at < len;) {
        assert_true(at + 12 <= len);
        uint32_t n = be32(d + at);
        assert_true(n <= len - at - 12);
        const unsigned char *t = d + at + 4, *p = d + at + 8;
        char c = !memcmp(t, "IHDR", 4)   ? 'H'
                 : !memcmp(t, "acTL", 4) ? 'a'
                 : !memcmp(t, "fcTL", 4) ? 'f'
                 : !memcmp(t, "IDAT", 4) ? 'I'
                 : !memcmp(t, "fdAT", 4) ? 'd'
                 : !memcmp(t, "IEND", 4) ? 'E'
                                         : '?';
        size_t k = strlen(order);
        /* a run of data chunks counts once */
        if (!(k && (c == 'I' || c == 'd') && order[k - 1] == c) &&
            k + 1 < sizeof order) {
            order[k] = c;
            order[k + 1] = '\0';
        }
        uint32_t crc = (uint32_t)crc32(0L, t, 4 + n);
        assert_int_equal(be32(p + n), crc);
        if (c == 'a') {
            assert_int_equal(be32(p), 3);
            assert_int_equal(be32(p + 4), 0);
        }
        if (c == 'f') {
            assert_int_equal(be32(p), seq++);
            assert_int_equal(be32(p + 4), 4); /* 2 columns × scale 2 */
            assert_int_equal(be32(p + 8), 4);
            assert_int_equal(p[20] << 8 | p[21], 250);
            assert_int_equal(p[22] << 8 | p[23], 1000);
            frames_seen++;
        }
        if (c == 'd')
            assert_int_equal(be32(p), seq++);
        at += 12 + n;
    }
    assert_string_equal(order, "HafIfdfdE");
    assert_int_equal(frames_seen, 3);
    free(d);
    vv a, b;
    assert_int_equal(dmm_png_read(x->vc, path, &a, &err), 0);
    assert_int_equal(dmm_png_read(x->vc, first, &b, &err), 0);
    assert_true(vv_equal(a, b));
    vv_free(x->vc, a);
    vv_free(x->vc, b);
    dmm_frames_free(&f);
}

/* ---- the command -------------------------------------------------------- */

/* Run a shell command line; its exit status. stderr into x->dir/err. */
static int run(fx *x, const char *args)
{
    const char *exe = getenv("DMM_EXE");
    assert_non_null(exe);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>'%s/err' >/dev/null",
             tu_source_root(), exe, args, x->dir);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void expect_stderr(fx *x, const char *words)
{
    char p[128];
    snprintf(p, sizeof p, "%s/err", x->dir);
    char *s = tu_read_file(p, NULL);
    assert_non_null(s);
    if (!strstr(s, words))
        fail_msg("stderr \"%s\" lacks \"%s\"", s, words);
    free(s);
}

static void test_cli_bad_requests(void **state)
{
    fx *x = *state;
    char a[1024];
    const char *net = "networks/visual/synth.json";
    snprintf(a, sizeof a, "render %s --path grid/nope/x --steps 2 --out %s/o",
             net, x->dir);
    assert_int_equal(run(x, a), 1);
    expect_stderr(x, "networks/visual/synth.json: --path grid/nope/x: the "
                     "network has no neuron grid/nope");
    /* a number is not a matrix; the error names the frame and the file */
    snprintf(a, sizeof a,
             "render %s --path accum/t/single --steps 3 --out %s/o", net,
             x->dir);
    assert_int_equal(run(x, a), 1);
    expect_stderr(x, "networks/visual/synth.json: frame 1: /: --path "
                     "accum/t/single: not a matrix");
    /* an output that never appears */
    snprintf(a, sizeof a, "render %s --path mul/m/nothing --steps 2 --out %s/o",
             net, x->dir);
    assert_int_equal(run(x, a), 1);
    expect_stderr(x, "no matrix in any of the 2 frames");
    assert_int_equal(count_files(x->dir), 1); /* err only: no o/ */
    snprintf(a, sizeof a,
             "render %s --path mul/m/y --steps 2 --animate %s/a.jpg", net,
             x->dir);
    assert_int_equal(run(x, a), 2);
    expect_stderr(x, "must end in .gif (GIF) or .png");
    snprintf(a, sizeof a, "render %s --path mul/m/y --steps 2", net);
    assert_int_equal(run(x, a), 2);
    expect_stderr(x, "nothing to write");
    snprintf(a, sizeof a,
             "render %s --path mul/m/y --steps 2 --range 3:1 "
             "--out %s/o",
             net, x->dir);
    assert_int_equal(run(x, a), 2);
    expect_stderr(x, "--range");
    snprintf(a, sizeof a,
             "render %s --path image/photo/image --steps 2 "
             "--image input/photo=%s/none.png --out %s/o",
             "networks/visual/image.json", x->dir, x->dir);
    assert_int_equal(run(x, a), 1);
    expect_stderr(x, "none.png: cannot read the PNG");
    assert_int_equal(count_files(x->dir), 1);
}

/* The picture through --image (an input neuron fed every cycle) and through
 * the image neuron of networks/visual/image.json: the same frame, and the
 * same pixels as the PNG (rendered at --range 0:1, byte/255 comes back as
 * the same byte). */
static void test_cli_image(void **state)
{
    fx *x = *state;
    const char *feed =
        "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": {\"accum\": "
        "{\"accum\": {\"self\": {\"single\": 1}}}}}}, \"outputs\": "
        "{\"identity\": {\"one\": {\"single\": 1}}}, \"links\": "
        "[[\"identity/one/single\", \"identity/one/single\", 1], "
        "[\"input/photo/x\", \"identity/one/single\", 1]]}";
    char *net = tu_write_in(x->dir, "feed.json", feed);
    char a[1024], p1[256], p2[256];
    snprintf(a, sizeof a,
             "render %s --path input/photo/image --steps 1 --range 0:1 "
             "--image input/photo=networks/visual/picture.png --out %s/a",
             net, x->dir);
    assert_int_equal(run(x, a), 0);
    snprintf(a, sizeof a,
             "render networks/visual/image.json --path image/photo/image "
             "--steps 1 --range 0:1 --out %s/b",
             x->dir);
    assert_int_equal(run(x, a), 0);
    snprintf(p1, sizeof p1, "%s/a/frame-000001.png", x->dir);
    snprintf(p2, sizeof p2, "%s/b/frame-000001.png", x->dir);
    char *pic = tu_path("networks/visual/picture.png");
    vv va, vb, vp;
    dmm_error err;
    assert_int_equal(dmm_png_read(x->vc, p1, &va, &err), 0);
    assert_int_equal(dmm_png_read(x->vc, p2, &vb, &err), 0);
    assert_int_equal(dmm_png_read(x->vc, pic, &vp, &err), 0);
    assert_true(vv_equal(va, vp));
    assert_true(vv_equal(vb, vp));
    vv_free(x->vc, va);
    vv_free(x->vc, vb);
    vv_free(x->vc, vp);
    free(pic);
    free(net);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* The number at (0, 0) of a grey frame as render wrote it, in 0 .. 1 (it
 * reads back as three equal channels). */
static double grey00(fx *x, const char *path)
{
    vv v;
    dmm_error err;
    dmm_error_clear(&err);
    if (dmm_png_read(x->vc, path, &v, &err))
        fail_msg("%s", err.text);
    vv_label z = tu_label(x->vc, "0"), p[3] = {z, z, z};
    double g = vv_get(v, p, 3).num;
    vv_free(x->vc, v);
    return g;
}

/*
 * --script applies the events as `dmm run --script` does: before the cycle
 * of their step, the skipped cycles included. A feed at step t reaches the
 * input neuron in cycle t and identity/show one cycle later, so with --skip 1
 * the frames of cycles 2, 3, 4 show the values fed at steps 1, 2, 3. A bad
 * event is refused with its line, and nothing is written.
 */
static void test_cli_script(void **state)
{
    fx *x = *state;
    char net[128], script[128], bad[128], a[1024], p[256];
    snprintf(net, sizeof net, "%s/net.json", x->dir);
    snprintf(script, sizeof script, "%s/s.jsonl", x->dir);
    snprintf(bad, sizeof bad, "%s/bad.jsonl", x->dir);
    write_text(net, "{\"dmm\": 1, \"matrix\": {\"accum\": {\"self\": "
                    "{\"accum\": {\"accum\": {\"self\": {\"single\": 1}}}}}},"
                    "\"links\": [[\"input/in/x\", \"accum/self/single\", 1],"
                    "[\"identity/show/m\", \"input/in/m\", 1]]}");
    char text[1024] = "";
    for (int t = 1; t <= 3; t++)
        snprintf(text + strlen(text), sizeof text - strlen(text),
                 "{\"step\": %d, \"op\": \"feed\", \"neuron\": \"input/in\", "
                 "\"outputs\": {\"m\": {\"0\": {\"0\": %d, \"1\": 4}}}}\n",
                 t, t);
    write_text(script, text);
    snprintf(a, sizeof a,
             "render %s --script %s --path identity/show/m --skip 1 --steps 3 "
             "--range 0:4 --out %s/o",
             net, script, x->dir);
    assert_int_equal(run(x, a), 0);
    for (int t = 2; t <= 4; t++) {
        snprintf(p, sizeof p, "%s/o/frame-%06d.png", x->dir, t);
        double want = round((t - 1) / 4.0 * 255) / 255;
        if (fabs(grey00(x, p) - want) > 1e-12)
            fail_msg("frame %d: %g, want %g", t, grey00(x, p), want);
    }
    /* without the script nothing is fed: no frame has a matrix */
    snprintf(a, sizeof a,
             "render %s --path identity/show/m --steps 3 --out %s/none", net,
             x->dir);
    assert_int_equal(run(x, a), 1);
    expect_stderr(x, "no matrix in any of the 3 frames");
    /* a feed to a neuron that is not an input, at step 2 (line 2) */
    write_text(bad, "{\"step\": 1, \"op\": \"feed\", \"neuron\": \"input/in\", "
                    "\"outputs\": {\"m\": {\"0\": {\"0\": 1}}}}\n"
                    "{\"step\": 2, \"op\": \"feed\", \"neuron\": "
                    "\"identity/show\", \"outputs\": {\"m\": 1}}\n");
    snprintf(a, sizeof a,
             "render %s --script %s --path identity/show/m --steps 3 --out "
             "%s/b",
             net, bad, x->dir);
    int rc = run(x, a);
    expect_stderr(x, "bad.jsonl:2");
    assert_int_equal(rc, 1);
    snprintf(a, sizeof a,
             "render %s --script %s/missing.jsonl --path identity/show/m "
             "--steps 3 --out %s/b",
             net, x->dir, x->dir);
    assert_int_equal(run(x, a), 1);
    expect_stderr(x, "missing.jsonl");
    /* net.json, s.jsonl, bad.jsonl, o/, err: neither none/ nor b/ */
    assert_int_equal(count_files(x->dir), 5);
}

/* ---- the gallery -------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The PNG at path as a value (new); fails the test if unreadable. */
static vv read_png(fx *x, const char *path)
{
    vv v;
    dmm_error err;
    dmm_error_clear(&err);
    if (dmm_png_read(x->vc, path, &v, &err))
        fail_msg("%s", err.text);
    return v;
}

typedef struct leaf_range {
    double lo, hi;
    size_t n;
} leaf_range;

static int leaf_range_fn(const vv_label *path, int depth, double v, void *ud)
{
    leaf_range *r = ud;
    r->lo = r->n ? fmin(r->lo, v) : v;
    r->hi = r->n ? fmax(r->hi, v) : v;
    r->n++;
    return 0;
}

/* True if the PNG at path (read as v) has one colour: zeros are absent from
 * v, so it is blank when it has no leaf, or one value at every pixel. */
static bool blank(const char *path, vv v)
{
    size_t len;
    unsigned char *d = (unsigned char *)tu_read_file(path, &len);
    assert_non_null(d);
    assert_true(len > 24);
    size_t w = (size_t)d[16] << 24 | d[17] << 16 | d[18] << 8 | d[19];
    size_t h = (size_t)d[20] << 24 | d[21] << 16 | d[22] << 8 | d[23];
    free(d);
    leaf_range r = {0};
    vv_foreach_leaf(v, leaf_range_fn, &r);
    return r.n == 0 || (r.lo == r.hi && r.n == 3 * w * h);
}

/*
 * Every "build/runtime/dmm render ..." line of the page doc (at least min of
 * them), run with --steps 6 and its --out/--animate moved into the scratch
 * folder: six frames, the first and last different, none blank (one
 * colour), and the GIF written when asked for.
 */
static void run_doc_renders(fx *x, const char *doc_name, int min)
{
    char *doc_path = tu_path(doc_name);
    char *doc = tu_read_file(doc_path, NULL);
    assert_non_null(doc);
    free(doc_path);
    const char *prefix = "build/runtime/dmm render ";
    int cmds = 0;
    for (char *line = strtok(doc, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, prefix, strlen(prefix)))
            continue;
        char args[2048] = "render", out[256], gif[256] = "";
        snprintf(out, sizeof out, "%s/g%d", x->dir, cmds);
        char *save, *copy = strdup(line + strlen(prefix));
        bool have_out = false;
        for (char *t = strtok_r(copy, " ", &save); t;
             t = strtok_r(NULL, " ", &save)) {
            size_t n = strlen(args);
            if (!strcmp(t, "--steps")) {
                strtok_r(NULL, " ", &save);
                snprintf(args + n, sizeof args - n, " --steps 6");
            } else if (!strcmp(t, "--out")) {
                strtok_r(NULL, " ", &save);
                snprintf(args + n, sizeof args - n, " --out %s", out);
                have_out = true;
            } else if (!strcmp(t, "--animate")) {
                strtok_r(NULL, " ", &save);
                snprintf(gif, sizeof gif, "%s/g%d.gif", x->dir, cmds);
                snprintf(args + n, sizeof args - n, " --animate %s", gif);
            } else
                snprintf(args + n, sizeof args - n, " %s", t);
        }
        free(copy);
        if (!have_out) { /* the test looks at the frames */
            size_t n = strlen(args);
            snprintf(args + n, sizeof args - n, " --out %s", out);
        }
        if (run(x, args) != 0)
            fail_msg("gallery command failed: %s", line);
        char p[2048]; /* out and a frame name, each under 256 */
        vv frames[6];
        assert_int_equal(count_files(out), 6);
        DIR *d = opendir(out);
        struct dirent *e;
        char names[6][256];
        int nn = 0;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && nn < 6)
                snprintf(names[nn++], sizeof names[0], "%s", e->d_name);
        closedir(d);
        qsort(names, 6, sizeof names[0], cmp_name);
        for (int k = 0; k < 6; k++) {
            if (strncmp(names[k], "frame-", 6))
                fail_msg("%s: unexpected file %s", line, names[k]);
            snprintf(p, sizeof p, "%s/%s", out, names[k]);
            frames[k] = read_png(x, p);
            if (blank(p, frames[k]))
                fail_msg("%s: frame %s is blank", line, names[k]);
        }
        if (vv_equal(frames[0], frames[5]))
            fail_msg("%s: frames 1 and 6 are the same", line);
        for (int k = 0; k < 6; k++)
            vv_free(x->vc, frames[k]);
        if (gif[0]) {
            char *g = tu_read_file(gif, NULL);
            assert_non_null(g);
            assert_memory_equal(g, "GIF89a", 6);
            free(g);
        }
        cmds++;
    }
    free(doc);
    if (cmds < min)
        fail_msg("%s: %d render commands, expected at least %d", doc_name, cmds,
                 min);
}

static void test_gallery(void **state)
{
    run_doc_renders(*state, "docs/gallery.md", 5);
}

/* The explorations of docs/fields.md: an induced field (excitable), an
 * external one fed by --script (bifurcation), a field over the mean-field
 * neurons' h (hysteresis-map). */
static void test_fields_explorations(void **state)
{
    run_doc_renders(*state, "docs/fields.md", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_w_and_rgb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_colours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gif, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apng, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gallery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_explorations, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
