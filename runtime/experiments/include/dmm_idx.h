// SPDX-License-Identifier: MIT
/*
 * IDX files (the MNIST format: big-endian header, then unsigned bytes), raw
 * or gzipped, and the MNIST pairs of images and labels built on them. Every
 * malformed input is an error with the file name and one sentence: a bad
 * magic number, a truncated file, trailing bytes, absurd dimensions, a label
 * that is not a digit, images and labels of different counts.
 */
#ifndef DMM_IDX_H
#define DMM_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "dmm_error.h"

enum {
    DMM_IDX_MAX_SIDE = 4096,      /* rows and columns at most this */
    DMM_IDX_MAX_BYTES = 1u << 30, /* a file's data at most 1 GiB */
    DMM_IDX_IMAGES = 3,           /* dims of an image file (0x00000803) */
    DMM_IDX_LABELS = 1,           /* dims of a label file (0x00000801) */
};

/* A view of parsed IDX data: count items of rows x cols bytes each (rows =
 * cols = 1 for labels). data is borrowed from the parsed buffer. */
typedef struct dmm_idx_view {
    const uint8_t *data;
    size_t count;
    uint32_t rows, cols;
} dmm_idx_view;

/*
 * Parse len bytes of an uncompressed IDX file of unsigned bytes with `dims`
 * dimensions (DMM_IDX_IMAGES or DMM_IDX_LABELS). out->data points into buf.
 * Returns 0, or DMM_E_INVAL (bad magic, absurd dimensions, wrong length)
 * with err filled (its source is left as it was).
 */
int dmm_idx_parse(const uint8_t *buf, size_t len, int dims, dmm_idx_view *out,
                  dmm_error *err);

/* A loaded IDX file: the view plus the buffer it points into (owned). */
typedef struct dmm_idx {
    dmm_idx_view v;
    uint8_t *bytes;
} dmm_idx;

/*
 * Read a whole IDX file, gzipped or not (zlib tells them apart), and parse
 * it as above. On success *out owns its bytes (dmm_idx_free); on error *out
 * holds nothing and err names the file. DMM_E_IO when it cannot be read or
 * decompressed, DMM_E_INVAL for bad content, DMM_E_NOMEM.
 */
int dmm_idx_load(const char *path, int dims, dmm_idx *out, dmm_error *err);
void dmm_idx_free(dmm_idx *x);

/* MNIST images with their labels (each label a digit 0..9). */
typedef struct dmm_mnist {
    dmm_idx images, labels;
} dmm_mnist;

/*
 * Load DIR/PREFIX-images-idx3-ubyte and DIR/PREFIX-labels-idx1-ubyte, each
 * with or without ".gz" (the uncompressed name is tried first). prefix is
 * "train" or "t10k" for the official files. Checks that the counts agree and
 * the labels are digits. On error *out holds nothing.
 */
int dmm_mnist_load(const char *dir, const char *prefix, dmm_mnist *out,
                   dmm_error *err);
/* Check an images/labels pair that is already loaded (counts, digits); err's
 * source is set to labels_name. */
int dmm_mnist_check(const dmm_idx_view *images, const dmm_idx_view *labels,
                    const char *labels_name, dmm_error *err);
void dmm_mnist_free(dmm_mnist *m);

#endif
