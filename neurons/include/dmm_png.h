// SPDX-License-Identifier: MIT
/*
 * PNG images as V-values (libpng): what the `image` neuron reads from its
 * file and `dmm render --image` feeds. Decoding only, from bytes in memory;
 * reading files is the caller's business (runtime/).
 */
#ifndef DMM_PNG_H
#define DMM_PNG_H

#include <stddef.h>

#include "vv.h"

/* Largest side, and most values (pixels × channels), of a decoded image:
 * the sizes the synthesis neurons take. */
enum { DMM_PNG_SIDE_MAX = 4096 };
#define DMM_PNG_VALUES_MAX ((size_t)1 << 22)

/*
 * new: the PNG in data (len bytes, borrowed) as a V-value: a grey image
 * (with or without alpha) is a matrix {row: {column: v}}, a colour one the
 * channels {"0": red, "1": green, "2": blue} of such matrices (rank 2 and
 * 3 dense blocks), v = byte / 255, alpha dropped (composited on black).
 * DMM_E_INVAL when data is not a PNG or is damaged, DMM_E_LIMIT past the
 * sizes above (checked before the pixels are decoded), DMM_E_NOMEM; err's
 * text says why in one sentence (its path is left ""). *out untouched on
 * error.
 */
int dmm_png_decode(vv_ctx *vc, const void *data, size_t len, vv *out,
                   dmm_error *err);

#endif
