// SPDX-License-Identifier: MIT
/*
 * Pictures of V-values: a sequence of values (the frames of a film, e.g. one
 * output of a network after each cycle) laid out as matrices on one common
 * grid of rows and columns, coloured, and written as PNG frames or one
 * animation (GIF or APNG); and PNG images read back as V-values. A library, so
 * that the CLI, the live view and tests share it; it reads and writes files, so
 * it lives in runtime/, and it never prints.
 */
#ifndef DMM_RENDER_H
#define DMM_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vv.h"

/*
 * Frames on a common layout. A value whose numbers all sit at depth 2 is a
 * matrix {row: {column: x}}; at depth 3 a stack of 1 or 3 channels
 * {channel: {row: {column: x}}} (3 render as RGB, labelled 0, 1, 2); at an
 * even depth 2h ≥ 4 the first h labels name the row and the last h the
 * column, so W (depth 6) is rows = type/name/input, columns =
 * type/name/output. Rows and columns are those used in any frame, in
 * natural label order (runs of digits compared as numbers: "2" before "10",
 * "update-2" before "update-10"); entries absent from a frame are 0, and
 * when every row (column) label is an integer, the rows (columns) are all
 * of 0 .. the largest, so an image keeps a row of zeros.
 */
typedef struct dmm_frames {
    size_t n;    /* frames */
    size_t rows; /* common layout */
    size_t cols;
    size_t channels; /* 1 or 3 */
    double *px;      /* owned: n × rows × cols × channels, channel fastest */
} dmm_frames;

/* Most rows (columns) a layout may have, and most numbers in all frames. */
enum { DMM_RENDER_SIDE_MAX = 4096 };
#define DMM_RENDER_VALUES_MAX ((size_t)1 << 24)

/*
 * Lay out values[0..n) (borrowed; zero values are empty frames) into out.
 * what names the values in messages (e.g. "--path identity/a/single").
 * DMM_E_INVAL, with err's path the JSON path of the offending number inside
 * frame k ("frame 3: /0/x: ..."), for: numbers at different depths (a ragged
 * matrix), a depth that is not a matrix, channels other than 1 or 3, a
 * non-finite number, or no number in any frame; DMM_E_LIMIT past the sizes
 * above. out is untouched on error.
 */
int dmm_frames_build(vv_ctx *vc, const vv *values, size_t n, const char *what,
                     dmm_frames *out, dmm_error *err);
void dmm_frames_free(dmm_frames *f);

/* How numbers become colours. */
typedef enum dmm_range_mode {
    DMM_RANGE_FIXED, /* one range over all frames (the default) */
    DMM_RANGE_FRAME, /* each frame its own range */
    DMM_RANGE_GIVEN, /* lo .. hi as given */
} dmm_range_mode;

typedef struct dmm_render_opts {
    dmm_range_mode range;
    double lo, hi;     /* DMM_RANGE_GIVEN: lo < hi */
    unsigned scale;    /* pixels per entry, 1 .. 64 (nearest neighbour) */
    unsigned delay_ms; /* between frames of an animation */
    unsigned colours;  /* GIF palette, 8 .. 256 (0: 256); fewer colours
                          posterise more and compress better */
} dmm_render_opts;

/*
 * Colours. One channel: when the range has no negative value, grey from
 * black (lo) to white (hi); when it has, a diverging map, blue (lo) through
 * white (0) to red (hi), the automatic ranges made symmetric about 0. Three
 * channels: red, green, blue, each from lo to hi. rgb gets (rows · scale) ×
 * (cols · scale) × 3 bytes of frame k.
 */
int dmm_frames_rgb(const dmm_frames *f, size_t k, const dmm_render_opts *o,
                   uint8_t *rgb);

/* Write frame k as an RGB PNG at path, through a temporary file in the same
 * folder renamed into place: the file is whole or absent. DMM_E_IO with the
 * system's reason in err. */
int dmm_frames_write_png(const dmm_frames *f, size_t k,
                         const dmm_render_opts *o, const char *path,
                         dmm_error *err);
/* Write every frame as one looping animated GIF (giflib), the same way. */
int dmm_frames_write_gif(const dmm_frames *f, const dmm_render_opts *o,
                         const char *path, dmm_error *err);
/* The same as a looping animated PNG (APNG: full colour, no palette;
 * viewers without APNG show frame 1). */
int dmm_frames_write_apng(const dmm_frames *f, const dmm_render_opts *o,
                          const char *path, dmm_error *err);

/*
 * new: the PNG at path as a V-value: a grey image (with or without alpha)
 * is a matrix {row: {column: v}}, a colour one the channels {"0": red,
 * "1": green, "2": blue} of such matrices, v = byte / 255 (alpha dropped,
 * composited on black): dmm_png_decode (dmm_png.h) of the file's bytes.
 * DMM_E_IO (unreadable, not a PNG, damaged) or DMM_E_LIMIT (too large) with
 * the file and the reason in err.
 */
int dmm_png_read(vv_ctx *vc, const char *path, vv *out, dmm_error *err);

#endif
