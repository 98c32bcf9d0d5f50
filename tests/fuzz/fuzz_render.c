// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the render library's readers of outside input: bytes
 * starting with the PNG signature go to dmm_png_read (through a temporary
 * file, as the CLI reads them); anything else is parsed as a JSON V-value
 * and laid out by dmm_frames_build, as two frames (the value and {}), then
 * coloured. A layout that succeeds must hold only finite numbers.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmm_render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void png_case(vv_ctx *vc, const uint8_t *data, size_t size)
{
    char path[] = "/tmp/dmm-fuzz-png-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return;
    if (write(fd, data, size) == (ssize_t)size) {
        vv v;
        dmm_error err;
        dmm_error_clear(&err);
        if (dmm_png_read(vc, path, &v, &err) == 0)
            vv_free(vc, v);
    }
    close(fd);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vv_options opt = {.max_depth = 64};
    vv_ctx *vc = vv_ctx_new(&opt);
    if (!vc)
        return 0;
    if (size >= 8 && !memcmp(data, "\x89PNG", 4)) {
        png_case(vc, data, size);
        vv_ctx_free(vc);
        return 0;
    }
    vv v[2] = {VV_ZERO, VV_ZERO};
    dmm_error err;
    dmm_error_clear(&err);
    if (vv_parse(vc, (const char *)data, size, "<fuzz>", &v[0], &err) == 0) {
        dmm_frames f;
        if (dmm_frames_build(vc, v, 2, "fuzz", &f, &err) == 0) {
            size_t n = f.n * f.rows * f.cols * f.channels;
            for (size_t k = 0; k < n; k++)
                if (!isfinite(f.px[k]))
                    __builtin_trap();
            dmm_render_opts o = {.range = DMM_RANGE_FIXED, .scale = 1};
            size_t bytes = f.rows * f.cols * 3;
            if (bytes <= ((size_t)1 << 24)) {
                uint8_t *rgb = malloc(bytes);
                if (rgb)
                    dmm_frames_rgb(&f, 0, &o, rgb);
                free(rgb);
            }
            dmm_frames_free(&f);
        } else {
            char buf[2048];
            dmm_error_format(&err, buf, sizeof buf);
        }
        vv_free(vc, v[0]);
    }
    vv_ctx_free(vc);
    return 0;
}
