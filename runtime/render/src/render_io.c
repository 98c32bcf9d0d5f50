// SPDX-License-Identifier: MIT
/*
 * Picture files: frames written as PNG (libpng's simplified API) and as one
 * animated GIF (giflib), each through a temporary file renamed into place so
 * a reader never sees half a picture (and animated PNG, at the end of this
 * file); and PNG files read as V-values. A GIF
 * holds at most 256 colours (or the fewer asked for, which compress better):
 * the film's colours are counted and, while there are too many, each channel
 * loses its lowest bit (a posterisation that leaves grey films, which have
 * at most 256 colours, exact at 256).
 */
#include <errno.h>
#include <gif_lib.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dmm_png.h"
#include "dmm_render.h"

/* A temporary file beside path: fd open, *tmp (malloc'd) its name. */
static int open_temp(const char *path, char **tmp, int *fd, dmm_error *err)
{
    size_t n = strlen(path);
    *tmp = malloc(n + 16);
    if (!*tmp)
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s: %s", path,
                             dmm_strerror(DMM_E_NOMEM));
    memcpy(*tmp, path, n);
    memcpy(*tmp + n, ".tmp-XXXXXX", 12);
    *fd = mkstemp(*tmp);
    if (*fd >= 0)
        fchmod(*fd, 0644); /* mkstemp makes 0600; pictures are to share */
    if (*fd < 0) {
        int e = errno;
        free(*tmp);
        *tmp = NULL;
        return dmm_error_set(err, DMM_E_IO, "", "%s: cannot create: %s", path,
                             strerror(e));
    }
    return 0;
}

/* Rename tmp to path (ok) or remove it; frees tmp. */
static int finish_temp(char *tmp, const char *path, bool ok, dmm_error *err)
{
    int rc = 0;
    if (ok && rename(tmp, path) != 0)
        rc = dmm_error_set(err, DMM_E_IO, "", "%s: cannot write: %s", path,
                           strerror(errno));
    if (!ok || rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* The end of a write through stdio: close fp (fd when fdopen failed), then
 * rename tmp onto path when everything went well, else remove it and say
 * why (what names the format). */
static int close_temp(FILE *fp, int fd, bool ok, const char *why, char *tmp,
                      const char *path, const char *what, dmm_error *err)
{
    if (fp) {
        if (fclose(fp) != 0 && ok) {
            ok = false;
            why = strerror(errno);
        }
    } else
        close(fd);
    if (!ok) {
        dmm_error_set(err, DMM_E_IO, "", "%s: cannot write the %s: %s", path,
                      what, why && why[0] ? why : "unknown error");
        finish_temp(tmp, path, false, NULL);
        return DMM_E_IO;
    }
    return finish_temp(tmp, path, true, err);
}

static size_t frame_bytes(const dmm_frames *f, const dmm_render_opts *o)
{
    size_t s = o->scale ? o->scale : 1;
    return f->rows * s * f->cols * s * 3;
}

/* Pictures are refused above this many pixels a frame (192 MiB of RGB). */
#define PIXELS_MAX ((size_t)1 << 26)

static int check_pixels(const dmm_frames *f, const dmm_render_opts *o,
                        const char *path, dmm_error *err)
{
    size_t s = o->scale ? o->scale : 1;
    if (s > 64 || f->rows * f->cols > PIXELS_MAX / (s * s))
        return dmm_error_set(err, DMM_E_LIMIT, "",
                             "%s: %zu x %zu entries at scale %zu are more "
                             "than the %zu pixels a frame may have",
                             path, f->rows, f->cols, s, PIXELS_MAX);
    return 0;
}

int dmm_frames_write_png(const dmm_frames *f, size_t k,
                         const dmm_render_opts *o, const char *path,
                         dmm_error *err)
{
    size_t s = o->scale ? o->scale : 1;
    int rc = check_pixels(f, o, path, err);
    if (rc)
        return rc;
    uint8_t *rgb = malloc(frame_bytes(f, o));
    if (!rgb)
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s: %s", path,
                             dmm_strerror(DMM_E_NOMEM));
    dmm_frames_rgb(f, k, o, rgb);
    char *tmp;
    int fd;
    rc = open_temp(path, &tmp, &fd, err);
    if (rc) {
        free(rgb);
        return rc;
    }
    FILE *fp = fdopen(fd, "wb");
    png_image img = {.version = PNG_IMAGE_VERSION,
                     .width = (png_uint_32)(f->cols * s),
                     .height = (png_uint_32)(f->rows * s),
                     .format = PNG_FORMAT_RGB};
    bool ok = fp && png_image_write_to_stdio(&img, fp, 0, rgb, 0, NULL);
    const char *why = fp ? img.message : strerror(errno);
    free(rgb);
    return close_temp(fp, fd, ok, why, tmp, path, "PNG", err);
}

/* ---- GIF ----------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t colour_key(const uint8_t *p, int shift)
{
    return (uint32_t)(p[0] >> shift) << 16 | (uint32_t)(p[1] >> shift) << 8 |
           (uint32_t)(p[2] >> shift);
}

/* The palette (≤ max ≤ 256 sorted keys at *shift) of npx RGB pixels. */
static int make_palette(const uint8_t *rgb, size_t npx, size_t max,
                        uint32_t *pal, size_t *npal, int *shift)
{
    uint8_t *seen = malloc((size_t)1 << 21); /* one bit per 24-bit colour */
    if (!seen)
        return DMM_E_NOMEM;
    for (int s = 0; s < 8; s++) {
        memset(seen, 0, (size_t)1 << 21);
        size_t n = 0;
        for (size_t q = 0; q < npx && n <= max; q++) {
            uint32_t c = colour_key(rgb + 3 * q, s);
            if (!(seen[c >> 3] & (1u << (c & 7)))) {
                seen[c >> 3] |= (uint8_t)(1u << (c & 7));
                if (n < max)
                    pal[n] = c;
                n++;
            }
        }
        if (n <= max) {
            qsort(pal, n, sizeof *pal, cmp_u32);
            *npal = n;
            *shift = s;
            free(seen);
            return 0;
        }
    }
    free(seen); /* max < 8 colours: not reached, the options forbid it */
    return DMM_E_INVAL;
}

static int gif_fail(int code, const char *path, dmm_error *err)
{
    return dmm_error_set(err, DMM_E_IO, "", "%s: cannot write the GIF: %s",
                         path, GifErrorString(code));
}

/* Write the film to an open GIF; giflib's error code or 0. */
static int gif_put(GifFileType *g, const dmm_frames *f,
                   const dmm_render_opts *o, const uint8_t *rgb,
                   const uint32_t *pal, size_t npal, int shift)
{
    size_t s = o->scale ? o->scale : 1;
    int w = (int)(f->cols * s), h = (int)(f->rows * s);
    GifColorType colours[256] = {{0, 0, 0}};
    int half = shift ? 1 << (shift - 1) : 0;
    for (size_t c = 0; c < npal; c++) {
        colours[c].Red = (GifByteType)(((pal[c] >> 16 & 0xff) << shift) | half);
        colours[c].Green =
            (GifByteType)(((pal[c] >> 8 & 0xff) << shift) | half);
        colours[c].Blue = (GifByteType)(((pal[c] & 0xff) << shift) | half);
    }
    ColorMapObject *map = GifMakeMapObject(256, colours);
    if (!map)
        return E_GIF_ERR_NOT_ENOUGH_MEM;
    EGifSetGifVersion(g, true);
    int rc = EGifPutScreenDesc(g, w, h, 8, 0, map) == GIF_ERROR;
    GifFreeMapObject(map);
    /* loop for ever (the Netscape application extension) */
    if (!rc)
        rc =
            EGifPutExtensionLeader(g, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
            EGifPutExtensionBlock(g, 11, "NETSCAPE2.0") == GIF_ERROR ||
            EGifPutExtensionBlock(g, 3, "\x01\x00\x00") == GIF_ERROR ||
            EGifPutExtensionTrailer(g) == GIF_ERROR;
    GifByteType *line = malloc((size_t)w);
    if (!line)
        return E_GIF_ERR_NOT_ENOUGH_MEM;
    size_t per = frame_bytes(f, o);
    for (size_t k = 0; k < f->n && !rc; k++) {
        GraphicsControlBlock gcb = {
            .DisposalMode = DISPOSE_DO_NOT,
            .UserInputFlag = false,
            .DelayTime = (int)((o->delay_ms + 5) / 10),
            .TransparentColor = NO_TRANSPARENT_COLOR,
        };
        GifByteType ext[4];
        size_t len = EGifGCBToExtension(&gcb, ext);
        rc = EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, (int)len, ext) ==
                 GIF_ERROR ||
             EGifPutImageDesc(g, 0, 0, w, h, false, NULL) == GIF_ERROR;
        for (int i = 0; i < h && !rc; i++) {
            for (int j = 0; j < w; j++) {
                uint32_t c =
                    colour_key(rgb + k * per + ((size_t)i * w + j) * 3, shift);
                const uint32_t *p = bsearch(&c, pal, npal, sizeof c, cmp_u32);
                line[j] = (GifByteType)(p - pal);
            }
            rc = EGifPutLine(g, line, w) == GIF_ERROR;
        }
    }
    free(line);
    return rc ? (g->Error ? g->Error : E_GIF_ERR_WRITE_FAILED) : 0;
}

int dmm_frames_write_gif(const dmm_frames *f, const dmm_render_opts *o,
                         const char *path, dmm_error *err)
{
    size_t per = frame_bytes(f, o);
    size_t s = o->scale ? o->scale : 1;
    if (f->cols * s > 65535 || f->rows * s > 65535)
        return dmm_error_set(err, DMM_E_LIMIT, "",
                             "%s: a GIF is at most 65535 pixels a side", path);
    int lim = check_pixels(f, o, path, err);
    if (lim)
        return lim;
    if (per / 3 > PIXELS_MAX / f->n) /* a GIF's frames are kept together */
        return dmm_error_set(err, DMM_E_LIMIT, "",
                             "%s: %zu frames of %zu pixels are more than the "
                             "%zu pixels a GIF may have",
                             path, f->n, per / 3, PIXELS_MAX);
    uint8_t *rgb = malloc(per * f->n);
    uint32_t pal[256];
    size_t npal = 0;
    int shift = 0;
    if (!rgb) {
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s: %s", path,
                             dmm_strerror(DMM_E_NOMEM));
    }
    for (size_t k = 0; k < f->n; k++)
        dmm_frames_rgb(f, k, o, rgb + k * per);
    size_t max = o->colours >= 8 && o->colours <= 256 ? o->colours : 256;
    if (make_palette(rgb, per / 3 * f->n, max, pal, &npal, &shift)) {
        free(rgb);
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s: %s", path,
                             dmm_strerror(DMM_E_NOMEM));
    }
    char *tmp;
    int fd, rc = open_temp(path, &tmp, &fd, err);
    if (rc) {
        free(rgb);
        return rc;
    }
    int ge = 0;
    GifFileType *g = EGifOpenFileHandle(fd, &ge);
    if (!g) {
        close(fd);
        free(rgb);
        finish_temp(tmp, path, false, NULL);
        return gif_fail(ge, path, err);
    }
    int put = gif_put(g, f, o, rgb, pal, npal, shift);
    free(rgb);
    int close_rc = EGifCloseFile(g, &ge) == GIF_ERROR ? ge : 0; /* closes fd */
    if (put || close_rc) {
        finish_temp(tmp, path, false, NULL);
        return gif_fail(put ? put : close_rc, path, err);
    }
    return finish_temp(tmp, path, true, err);
}

/* ---- reading PNG ---------------------------------------------------------
 */

int dmm_png_read(vv_ctx *vc, const char *path, vv *out, dmm_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return dmm_error_set(err, DMM_E_IO, "", "%s: cannot read the PNG: %s",
                             path, strerror(errno));
    /* the whole file, at most a byte over the largest a PNG of the largest
     * image could need, which is far beyond any real one */
    size_t cap = (size_t)64 << 20, len = 0;
    uint8_t *data = malloc(cap);
    if (data)
        len = fread(data, 1, cap, fp);
    bool bad = !data || ferror(fp) || len == cap;
    fclose(fp);
    if (bad) {
        free(data);
        return dmm_error_set(err, DMM_E_IO, "", "%s: cannot read the PNG: %s",
                             path,
                             !data       ? dmm_strerror(DMM_E_NOMEM)
                             : len < cap ? "read error"
                                         : "larger than 64 MiB");
    }
    dmm_error e;
    dmm_error_clear(&e);
    int rc = dmm_png_decode(vc, data, len, out, &e);
    free(data);
    if (rc)
        dmm_error_set(err, rc == DMM_E_INVAL ? DMM_E_IO : rc, "",
                      "%s: cannot read the PNG: %s", path, e.text);
    return rc == DMM_E_INVAL ? DMM_E_IO : rc;
}

/* ---- animated PNG ----------------------------------------------------------
 *
 * APNG (the Mozilla extension, read by every current browser) is a PNG whose
 * default image is frame 1, with three more chunks: acTL (frame count, loop
 * count) after IHDR, an fcTL (frame size, offset, delay) before each frame,
 * and fdAT (a sequence number, then IDAT's payload) for the frames after the
 * first. Debian's libpng has no APNG support, so each frame is compressed by
 * libpng to a PNG in memory and its IDAT payloads are rewrapped here; the
 * chunk layout is the only thing written by hand, CRCs by zlib.
 */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* One chunk: head (hn bytes) then data (n bytes) as its payload. */
static bool put_chunk(FILE *fp, const char *type, const uint8_t *head,
                      size_t hn, const uint8_t *data, size_t n)
{
    uint8_t b[8];
    put32(b, (uint32_t)(hn + n));
    memcpy(b + 4, type, 4);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (hn)
        crc = crc32(crc, head, (uInt)hn);
    if (n)
        crc = crc32(crc, data, (uInt)n);
    uint8_t c[4];
    put32(c, (uint32_t)crc);
    return fwrite(b, 1, 8, fp) == 8 && (!hn || fwrite(head, 1, hn, fp) == hn) &&
           (!n || fwrite(data, 1, n, fp) == n) && fwrite(c, 1, 4, fp) == 4;
}

/* Frame k as a PNG in memory (malloc'd); NULL with why (64 bytes, libpng's
 * message is in the png_image on this stack frame) on failure. */
static uint8_t *encode_frame(const dmm_frames *f, size_t k,
                             const dmm_render_opts *o, uint8_t *rgb,
                             size_t *len, char *why)
{
    size_t s = o->scale ? o->scale : 1;
    png_image img = {.version = PNG_IMAGE_VERSION,
                     .width = (png_uint_32)(f->cols * s),
                     .height = (png_uint_32)(f->rows * s),
                     .format = PNG_FORMAT_RGB};
    dmm_frames_rgb(f, k, o, rgb);
    *len = 0;
    snprintf(why, 64, "out of memory");
    if (!png_image_write_to_memory(&img, NULL, len, 0, rgb, 0, NULL)) {
        snprintf(why, 64, "%s", img.message);
        return NULL;
    }
    uint8_t *mem = malloc(*len);
    if (mem && !png_image_write_to_memory(&img, mem, len, 0, rgb, 0, NULL)) {
        snprintf(why, 64, "%s", img.message);
        free(mem);
        return NULL;
    }
    return mem;
}

/* Write the chunks of one encoded frame: IHDR and IDAT for frame 0 (after
 * acTL), fcTL and fdAT for the others. false on a write error or a PNG that
 * is not what libpng writes. */
static bool put_frame(FILE *fp, const uint8_t *png, size_t len, size_t k,
                      size_t nframes, const dmm_render_opts *o, uint32_t *seq)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len < 8 || memcmp(png, sig, 8))
        return false;
    if (k == 0 && fwrite(sig, 1, 8, fp) != 8)
        return false;
    bool ctl = false;
    for (size_t at = 8; at + 12 <= len;) {
        uint32_t n = get32(png + at);
        const char *type = (const char *)png + at + 4;
        const uint8_t *data = png + at + 8;
        if (n > len - at - 12)
            return false;
        if (!memcmp(type, "IHDR", 4)) {
            if (n != 13)
                return false;
            if (k == 0) {
                uint8_t ac[8];
                put32(ac, (uint32_t)nframes);
                put32(ac + 4, 0); /* loop for ever */
                if (!put_chunk(fp, "IHDR", NULL, 0, data, n) ||
                    !put_chunk(fp, "acTL", NULL, 0, ac, 8))
                    return false;
            }
            uint8_t fc[26] = {0};
            put32(fc, (*seq)++);
            memcpy(fc + 4, data, 8); /* width, height */
            unsigned ms = o->delay_ms;
            fc[20] = (uint8_t)(ms >> 8);
            fc[21] = (uint8_t)ms;
            fc[22] = 1000 >> 8; /* delay = ms / 1000 s */
            fc[23] = 1000 & 0xff;
            /* dispose 0 (none), blend 0 (source): each frame is whole */
            if (!put_chunk(fp, "fcTL", NULL, 0, fc, 26))
                return false;
            ctl = true;
        } else if (!memcmp(type, "IDAT", 4)) {
            if (!ctl)
                return false;
            uint8_t sq[4];
            put32(sq, *seq);
            if (k == 0 ? !put_chunk(fp, "IDAT", NULL, 0, data, n)
                       : !put_chunk(fp, "fdAT", sq, 4, data, n))
                return false;
            if (k)
                (*seq)++;
        }
        at += 12 + (size_t)n;
    }
    return ctl;
}

int dmm_frames_write_apng(const dmm_frames *f, const dmm_render_opts *o,
                          const char *path, dmm_error *err)
{
    int rc = check_pixels(f, o, path, err);
    if (rc)
        return rc;
    uint8_t *rgb = malloc(frame_bytes(f, o));
    if (!rgb)
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s: %s", path,
                             dmm_strerror(DMM_E_NOMEM));
    char *tmp;
    int fd;
    rc = open_temp(path, &tmp, &fd, err);
    if (rc) {
        free(rgb);
        return rc;
    }
    FILE *fp = fdopen(fd, "wb");
    const char *why = fp ? "" : strerror(errno);
    char png_why[64];
    bool ok = fp != NULL;
    uint32_t seq = 0;
    for (size_t k = 0; k < f->n && ok; k++) {
        size_t len;
        uint8_t *png = encode_frame(f, k, o, rgb, &len, png_why);
        if (!png)
            why = png_why;
        ok = png && put_frame(fp, png, len, k, f->n, o, &seq);
        if (png && !ok)
            why = ferror(fp) ? strerror(errno) : "unexpected PNG from libpng";
        free(png);
    }
    ok = ok && put_chunk(fp, "IEND", NULL, 0, NULL, 0);
    if (!ok && fp && ferror(fp))
        why = strerror(errno);
    free(rgb);
    return close_temp(fp, fd, ok, why, tmp, path, "APNG", err);
}
