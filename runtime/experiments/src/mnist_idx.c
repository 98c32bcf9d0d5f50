// SPDX-License-Identifier: MIT
/*
 * IDX reader (dmm_idx.h): a whole file is read through zlib, which passes
 * uncompressed files through unchanged, then parsed from memory so that the
 * parser can be tested and fuzzed without files. A file must hold exactly
 * the bytes its header announces: short is "truncated", long is an error too.
 */
#include "dmm_idx.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

int dmm_idx_parse(const uint8_t *buf, size_t len, int dims, dmm_idx_view *out,
                  dmm_error *err)
{
    memset(out, 0, sizeof *out);
    if (dims != DMM_IDX_IMAGES && dims != DMM_IDX_LABELS)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "IDX files of %d dimensions are not supported",
                             dims);
    const char *what = dims == DMM_IDX_IMAGES ? "images" : "labels";
    size_t header = 4 + 4 * (size_t)dims;
    if (len < 4)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "file is %zu bytes long, too short for the "
                             "4-byte magic number of an IDX file",
                             len);
    uint32_t magic = be32(buf), want = 0x800u | (uint32_t)dims;
    if (magic != want)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "bad magic number 0x%08x: an IDX file of %s "
                             "starts with 0x%08x",
                             (unsigned)magic, what, (unsigned)want);
    if (len < header)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "truncated: file is %zu bytes long, shorter "
                             "than its %zu-byte header",
                             len, header);
    uint32_t count = be32(buf + 4), rows = 1, cols = 1;
    if (dims == DMM_IDX_IMAGES) {
        rows = be32(buf + 8);
        cols = be32(buf + 12);
        if (rows < 1 || rows > DMM_IDX_MAX_SIDE || cols < 1 ||
            cols > DMM_IDX_MAX_SIDE)
            return dmm_error_set(err, DMM_E_INVAL, "",
                                 "absurd image size %" PRIu32 " x %" PRIu32
                                 ": rows and columns must be 1..%d",
                                 rows, cols, DMM_IDX_MAX_SIDE);
    }
    size_t item = (size_t)rows * cols;
    if ((uint64_t)count * item > DMM_IDX_MAX_BYTES)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "absurd size: %" PRIu32 " %s of %zu bytes "
                             "would exceed the 1 GiB limit",
                             count, what, item);
    size_t need = (size_t)count * item, have = len - header;
    if (have < need)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "truncated: the header announces %" PRIu32
                             " %s (%zu bytes of data) but only %zu bytes "
                             "follow (%zu complete %s)",
                             count, what, need, have, have / item, what);
    if (have > need)
        return dmm_error_set(err, DMM_E_INVAL, "",
                             "%zu unexpected bytes after the %" PRIu32
                             " %s the header announces",
                             have - need, count, what);
    out->data = buf + header;
    out->count = count;
    out->rows = rows;
    out->cols = cols;
    return 0;
}

/* Read all of path (decompressing gzip) into a new buffer of *len bytes. */
static int read_all(const char *path, uint8_t **bytes, size_t *len,
                    dmm_error *err)
{
    *bytes = NULL;
    *len = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return dmm_error_set(err, DMM_E_IO, "", "cannot open: %s",
                             errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 16, n = 0;
    const size_t limit = (size_t)DMM_IDX_MAX_BYTES + 64;
    uint8_t *buf = malloc(cap);
    int rc = 0;
    if (!buf)
        rc = dmm_error_set(err, DMM_E_NOMEM, "", "out of memory reading");
    while (!rc) {
        if (n == cap) {
            if (cap >= limit) {
                rc = dmm_error_set(err, DMM_E_INVAL, "",
                                   "file is larger than the 1 GiB limit "
                                   "of an IDX file");
                break;
            }
            size_t ncap = cap * 2 < limit ? cap * 2 : limit;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                rc = dmm_error_set(err, DMM_E_NOMEM, "",
                                   "out of memory reading %zu bytes", ncap);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t want = cap - n < (1u << 30) ? cap - n : (1u << 30);
        int got = gzread(gz, buf + n, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            rc = dmm_error_set(err, DMM_E_IO, "", "cannot read: %s",
                               zerr == Z_ERRNO ? strerror(errno) : msg);
            break;
        }
        n += (size_t)got;
        if (got == 0 || (size_t)got < want) {
            /* End of input, or of a damaged compressed stream. */
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            if (zerr != Z_OK)
                rc = dmm_error_set(err, DMM_E_IO, "",
                                   "cannot decompress after %zu bytes: %s", n,
                                   msg);
            if (got == 0 || rc)
                break;
        }
    }
    int cz = gzclose_r(gz);
    if (!rc && cz != Z_OK)
        rc = dmm_error_set(err, DMM_E_IO, "",
                           "cannot decompress: the gzip stream is damaged "
                           "or truncated");
    if (rc) {
        free(buf);
        return rc;
    }
    *bytes = buf;
    *len = n;
    return 0;
}

int dmm_idx_load(const char *path, int dims, dmm_idx *out, dmm_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *bytes;
    size_t len;
    int rc = read_all(path, &bytes, &len, err);
    if (rc) {
        dmm_error_set_source(err, path);
        return rc;
    }
    rc = dmm_idx_parse(bytes, len, dims, &out->v, err);
    if (rc) {
        free(bytes);
        memset(out, 0, sizeof *out);
        dmm_error_set_source(err, path);
        return rc;
    }
    out->bytes = bytes;
    return 0;
}

void dmm_idx_free(dmm_idx *x)
{
    free(x->bytes);
    memset(x, 0, sizeof *x);
}

int dmm_mnist_check(const dmm_idx_view *images, const dmm_idx_view *labels,
                    const char *labels_name, dmm_error *err)
{
    int rc = 0;
    if (images->count != labels->count)
        rc = dmm_error_set(err, DMM_E_INVAL, "",
                           "%zu labels for %zu images: the counts must agree",
                           labels->count, images->count);
    for (size_t i = 0; !rc && i < labels->count; i++)
        if (labels->data[i] > 9)
            rc = dmm_error_set(err, DMM_E_INVAL, "",
                               "label %u of image %zu is not a digit 0..9",
                               labels->data[i], i);
    if (rc)
        dmm_error_set_source(err, labels_name);
    return rc;
}

/* Load DIR/NAME, else DIR/NAME.gz; the error names the uncompressed path
 * when neither exists. */
static int load_either(const char *dir, const char *name, int dims,
                       dmm_idx *out, char *used, size_t used_size,
                       dmm_error *err)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n + 4 >= sizeof path) {
        dmm_error_set(err, DMM_E_INVAL, "", "directory name too long");
        dmm_error_set_source(err, dir);
        return DMM_E_INVAL;
    }
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    else {
        char gzpath[4096 + 4];
        snprintf(gzpath, sizeof gzpath, "%s.gz", path);
        f = fopen(gzpath, "rb");
        if (f) {
            fclose(f);
            memcpy(path, gzpath, sizeof path);
        }
    }
    snprintf(used, used_size, "%s", path);
    return dmm_idx_load(path, dims, out, err);
}

int dmm_mnist_load(const char *dir, const char *prefix, dmm_mnist *out,
                   dmm_error *err)
{
    memset(out, 0, sizeof *out);
    char name[256], used[4096];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    int rc = load_either(dir, name, DMM_IDX_IMAGES, &out->images, used,
                         sizeof used, err);
    if (rc)
        return rc;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    rc = load_either(dir, name, DMM_IDX_LABELS, &out->labels, used, sizeof used,
                     err);
    if (!rc)
        rc = dmm_mnist_check(&out->images.v, &out->labels.v, used, err);
    if (rc)
        dmm_mnist_free(out);
    return rc;
}

void dmm_mnist_free(dmm_mnist *m)
{
    dmm_idx_free(&m->images);
    dmm_idx_free(&m->labels);
}
