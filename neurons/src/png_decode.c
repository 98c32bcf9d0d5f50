// SPDX-License-Identifier: MIT
/*
 * PNG decoding through libpng's simplified API, from memory: the size is
 * read from the header and checked before any pixel is decoded, so a small
 * file claiming a huge image costs nothing; the pixels become one dense
 * block (vv_from_dense).
 */
#include <stdint.h>
#include <stdlib.h>

#include <png.h>

#include "dmm_png.h"

int dmm_png_decode(vv_ctx *vc, const void *data, size_t len, vv *out,
                   dmm_error *err)
{
    png_image img = {.version = PNG_IMAGE_VERSION};
    if (!png_image_begin_read_from_memory(&img, data, len))
        return dmm_error_set(err, DMM_E_INVAL, "", "not a PNG image (%s)",
                             img.message);
    bool colour = img.format & PNG_FORMAT_FLAG_COLOR;
    size_t w = img.width, h = img.height, ch = colour ? 3 : 1;
    if (w > DMM_PNG_SIDE_MAX || h > DMM_PNG_SIDE_MAX ||
        w * h * ch > DMM_PNG_VALUES_MAX) {
        png_image_free(&img);
        return dmm_error_set(err, DMM_E_LIMIT, "",
                             "%zu x %zu pixels%s: an image has at most %d a "
                             "side and %zu values",
                             w, h, colour ? " (RGB)" : "", DMM_PNG_SIDE_MAX,
                             DMM_PNG_VALUES_MAX);
    }
    img.format = colour ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    double *x = malloc(w * h * ch * sizeof *x);
    png_color black = {0, 0, 0};
    int rc = 0;
    if (!px || !x) {
        png_image_free(&img);
        rc = dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                           dmm_strerror(DMM_E_NOMEM));
    } else if (!png_image_finish_read(&img, &black, px, 0, NULL)) {
        rc = dmm_error_set(err, DMM_E_INVAL, "", "damaged PNG image (%s)",
                           img.message);
    } else {
        /* interleaved RGB to channel-major planes */
        for (size_t c = 0; c < ch; c++)
            for (size_t q = 0; q < w * h; q++)
                x[c * w * h + q] = px[q * ch + c] / 255.0;
        size_t dims[3] = {ch, h, w};
        vv v = VV_ZERO;
        rc = colour ? vv_from_dense(vc, 3, dims, x, &v)
                    : vv_from_dense(vc, 2, dims + 1, x, &v);
        if (rc)
            dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
        else
            *out = v;
    }
    free(px);
    free(x);
    return rc;
}
