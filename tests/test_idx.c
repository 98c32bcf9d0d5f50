// SPDX-License-Identifier: MIT
/*
 * The IDX reader (dmm_idx.h) on small files this program writes itself, raw
 * and gzipped: good images and labels, and each bad input the reader must
 * name (bad magic, truncation, trailing bytes, absurd sizes, count mismatch,
 * non-digit labels, damaged gzip, a missing file).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dmm_idx.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/dmm-idx-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Write bytes to dir/name, gzipped when gz; returns the path (static). */
static const char *write_file(const char *name, const uint8_t *b, size_t n,
                              int gz)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (n)
            assert_int_equal(gzwrite(f, b, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(b, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
    }
    return path;
}

/* An image file of count rows x cols images, pixel i = i mod 251. */
static size_t make_images(uint8_t *b, uint32_t count, uint32_t rows,
                          uint32_t cols)
{
    put32(b, 0x803);
    put32(b + 4, count);
    put32(b + 8, rows);
    put32(b + 12, cols);
    size_t n = (size_t)count * rows * cols;
    for (size_t i = 0; i < n; i++)
        b[16 + i] = (uint8_t)(i % 251);
    return 16 + n;
}

static size_t make_labels(uint8_t *b, uint32_t count)
{
    put32(b, 0x801);
    put32(b + 4, count);
    for (uint32_t i = 0; i < count; i++)
        b[8 + i] = (uint8_t)(i % 10);
    return 8 + count;
}

static void expect_error(const char *path, int dims, int code,
                         const char *words)
{
    dmm_idx x;
    dmm_error err;
    dmm_error_clear(&err);
    assert_int_equal(dmm_idx_load(path, dims, &x, &err), code);
    assert_null(x.bytes);
    if (!strstr(err.text, words) || !strstr(err.source, path))
        fail_msg("%s: message \"%s\" (source \"%s\") lacks \"%s\"", path,
                 err.text, err.source, words);
}

static void test_good_files(void **state)
{
    (void)state;
    uint8_t b[16 + 3 * 4 * 5];
    size_t n = make_images(b, 3, 4, 5);
    for (int gz = 0; gz < 2; gz++) {
        const char *p = write_file(gz ? "im.gz" : "im", b, n, gz);
        dmm_idx x;
        dmm_error err;
        assert_int_equal(dmm_idx_load(p, DMM_IDX_IMAGES, &x, &err), 0);
        assert_int_equal(x.v.count, 3);
        assert_int_equal(x.v.rows, 4);
        assert_int_equal(x.v.cols, 5);
        assert_memory_equal(x.v.data, b + 16, 60);
        dmm_idx_free(&x);
    }
    uint8_t l[8 + 7];
    n = make_labels(l, 7);
    const char *p = write_file("lab.gz", l, n, 1);
    dmm_idx x;
    assert_int_equal(dmm_idx_load(p, DMM_IDX_LABELS, &x, NULL), 0);
    assert_int_equal(x.v.count, 7);
    assert_int_equal(x.v.data[6], 6);
    dmm_idx_free(&x);
    /* An empty set is well formed. */
    n = make_labels(l, 0);
    p = write_file("empty", l, n, 0);
    assert_int_equal(dmm_idx_load(p, DMM_IDX_LABELS, &x, NULL), 0);
    assert_int_equal(x.v.count, 0);
    dmm_idx_free(&x);
}

static void test_bad_files(void **state)
{
    (void)state;
    static uint8_t b[16 + 2 * 28 * 28 + 8];
    size_t n = make_images(b, 2, 28, 28);
    for (int gz = 0; gz < 2; gz++) {
        /* Labels read as images, and a wrong magic altogether. */
        uint8_t l[8 + 4];
        size_t ln = make_labels(l, 4);
        expect_error(write_file("a", l, ln, gz), DMM_IDX_IMAGES, DMM_E_INVAL,
                     "bad magic number 0x00000801");
        b[2] = 0x09;
        expect_error(write_file("b", b, n, gz), DMM_IDX_IMAGES, DMM_E_INVAL,
                     "bad magic number 0x00000903");
        b[2] = 0x08;
        /* Truncated data, truncated header, too short for a magic. */
        expect_error(write_file("c", b, n - 1, gz), DMM_IDX_IMAGES, DMM_E_INVAL,
                     "truncated");
        expect_error(write_file("d", b, 10, gz), DMM_IDX_IMAGES, DMM_E_INVAL,
                     "truncated");
        expect_error(write_file("e", b, 2, gz), DMM_IDX_IMAGES, DMM_E_INVAL,
                     "too short");
        /* Trailing bytes. */
        expect_error(write_file("f", b, n + 3, gz), DMM_IDX_IMAGES, DMM_E_INVAL,
                     "3 unexpected bytes");
    }
    /* Absurd dimensions: 0 rows, 5000 columns, 2^31 images of 28 x 28. */
    uint8_t h[16];
    make_images(h, 0, 0, 5);
    expect_error(write_file("g", h, 16, 0), DMM_IDX_IMAGES, DMM_E_INVAL,
                 "absurd image size 0 x 5");
    make_images(h, 0, 5, 5000);
    expect_error(write_file("h", h, 16, 0), DMM_IDX_IMAGES, DMM_E_INVAL,
                 "absurd image size 5 x 5000");
    put32(h, 0x803);
    put32(h + 4, 0x80000000u);
    put32(h + 8, 28);
    put32(h + 12, 28);
    expect_error(write_file("i", h, 16, 0), DMM_IDX_IMAGES, DMM_E_INVAL,
                 "1 GiB");
    /* A damaged gzip stream: cut the compressed file in half. */
    const char *p = write_file("j.gz", b, n, 1);
    size_t zlen;
    char *z = tu_read_file(p, &zlen);
    assert_non_null(z);
    p = write_file("k.gz", (const uint8_t *)z, zlen / 2, 0);
    expect_error(p, DMM_IDX_IMAGES, DMM_E_IO, "decompress");
    free(z);
    /* No such file. */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nothing", dir);
    expect_error(missing, DMM_IDX_IMAGES, DMM_E_IO, "cannot open");
}

static void test_mnist_pairs(void **state)
{
    (void)state;
    static uint8_t b[16 + 5 * 28 * 28];
    uint8_t l[8 + 6];
    write_file("train-images-idx3-ubyte.gz", b, make_images(b, 5, 28, 28), 1);
    write_file("train-labels-idx1-ubyte", l, make_labels(l, 5), 0);
    dmm_mnist m;
    dmm_error err;
    assert_int_equal(dmm_mnist_load(dir, "train", &m, &err), 0);
    assert_int_equal(m.images.v.count, 5);
    assert_int_equal(m.labels.v.data[4], 4);
    dmm_mnist_free(&m);

    /* Six labels for five images. */
    write_file("train-labels-idx1-ubyte", l, make_labels(l, 6), 0);
    dmm_error_clear(&err);
    assert_int_equal(dmm_mnist_load(dir, "train", &m, &err), DMM_E_INVAL);
    assert_non_null(strstr(err.text, "6 labels for 5 images"));
    assert_non_null(strstr(err.source, "train-labels-idx1-ubyte"));
    assert_null(m.images.bytes);

    /* A label that is no digit. */
    make_labels(l, 5);
    l[8 + 2] = 12;
    write_file("train-labels-idx1-ubyte", l, 13, 0);
    assert_int_equal(dmm_mnist_load(dir, "train", &m, &err), DMM_E_INVAL);
    assert_non_null(strstr(err.text, "label 12 of image 2"));

    /* Missing pair. */
    assert_int_equal(dmm_mnist_load(dir, "t10k", &m, &err), DMM_E_IO);
    assert_non_null(strstr(err.source, "t10k-images-idx3-ubyte"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_files),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_mnist_pairs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
