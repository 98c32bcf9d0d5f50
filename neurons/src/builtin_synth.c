// SPDX-License-Identifier: MIT
/*
 * Image synthesis as neurons (issue 11): coordinate grids, unit generators
 * sin and cos of a·x + b, element-wise mul, affine, power and clamp,
 * transpose, 2-D convolution, blur, seeded noise and PNG images read from
 * a file. An image is a matrix
 * {row: {col: x}} with decimal labels "0".."n-1"; a rank-3 value
 * {channel: {row: {col: x}}} is a stack of images (RGB when 3 channels).
 * Each firing reads its inputs into dense arrays ("fields"), absent entries
 * being 0, and writes the result back through the ordinary vv API, so the
 * internal representation of V-values is not assumed.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"
#include "dmm_png.h"
#include "dmm_rng.h"

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_NAMES   ((const char *const[]){NULL})

/* Largest side and channel count of a field, and largest number of values:
 * bounds that keep every index product inside size_t and memory sane. */
enum { SIDE_MAX = 4096, CHAN_MAX = 16 };
#define FIELD_MAX ((size_t)1 << 22)

/* A dense value: a bare number (rank 0, s) or c × r × w doubles (rank 2 has
 * c == 1), entry (k, i, j) at x[(k·r + i)·w + j]. */
typedef struct field {
    int rank;
    size_t c, r, w;
    double s;
    double *x; /* owned; NULL for rank 0 */
} field;

static size_t field_len(const field *fl)
{
    return fl->c * fl->r * fl->w;
}

static const char *in_name(const dmm_fire *f, size_t k)
{
    return f->type->desc->inputs[k];
}

/* A decimal label "0", "1", ... below max; false otherwise. */
static bool decimal_label(const dmm_fire *f, vv_label l, size_t max,
                          size_t *out)
{
    size_t len;
    const char *s = vv_label_str(f->vc, l, &len);
    if (len == 0 || len > 9 || (len > 1 && s[0] == '0'))
        return false;
    size_t v = 0;
    for (size_t k = 0; k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return false;
        v = v * 10 + (size_t)(s[k] - '0');
    }
    *out = v;
    return v < max;
}

/*
 * Walk a matrix node m (rows of numbers) that is channel ch of input k,
 * checking its shape; with fill, store its entries into fl, else grow fl's
 * row and column counts to cover its labels.
 */
static int walk_matrix(dmm_fire *f, size_t k, vv m, size_t ch, field *fl,
                       bool fill)
{
    const char *what = "an image is a map row -> column -> number with "
                       "labels 0, 1, 2, ...";
    vv_iter it, jt;
    vv_label rl, cl;
    vv row, e;
    if (m.num != 0.0)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "input %s has a number beside its rows; %s",
                               in_name(f, k), what);
    vv_iter_init(&it, m);
    while (vv_iter_next(&it, &rl, &row)) {
        size_t i, j;
        if (!decimal_label(f, rl, SIDE_MAX, &i))
            return dmm__fire_failf(
                f, DMM_E_INVAL,
                "input %s: row label \"%s\" is not an integer from 0 to %d; "
                "%s",
                in_name(f, k), vv_label_str(f->vc, rl, NULL), SIDE_MAX - 1,
                what);
        if (row.num != 0.0)
            return dmm__fire_failf(f, DMM_E_INVAL,
                                   "input %s: row %zu has a number of its "
                                   "own; %s",
                                   in_name(f, k), i, what);
        vv_iter_init(&jt, row);
        while (vv_iter_next(&jt, &cl, &e)) {
            if (!decimal_label(f, cl, SIDE_MAX, &j))
                return dmm__fire_failf(
                    f, DMM_E_INVAL,
                    "input %s: column label \"%s\" in row %zu is not an "
                    "integer from 0 to %d; %s",
                    in_name(f, k), vv_label_str(f->vc, cl, NULL), i,
                    SIDE_MAX - 1, what);
            if (!vv_is_scalar(e))
                return dmm__fire_failf(f, DMM_E_INVAL,
                                       "input %s: entry %zu/%zu is a map, "
                                       "not a number; %s",
                                       in_name(f, k), i, j, what);
            if (fill)
                fl->x[(ch * fl->r + i) * fl->w + j] = e.num;
            else {
                fl->r = i + 1 > fl->r ? i + 1 : fl->r;
                fl->w = j + 1 > fl->w ? j + 1 : fl->w;
            }
        }
    }
    return 0;
}

/* v (depth 2 or 3) when it is a block (vv_dense_shape) within the limits:
 * fl's shape set as the walk below would set it and the values read into
 * fl->x (NULL when out of memory); false, fl untouched, for anything else
 * (the walk then reads it, or says what is wrong). */
static bool field_read_block(const vv_ctx *vc, vv v, int depth, field *fl)
{
    int rank;
    size_t d[3];
    if (!vv_dense_shape(vc, v, &rank, d) || rank != depth)
        return false;
    size_t c = rank == 3 ? d[0] : 1, r = d[rank - 2], w = d[rank - 1];
    if (c > CHAN_MAX || r > SIDE_MAX || w > SIDE_MAX || c * r > FIELD_MAX ||
        w > FIELD_MAX / (c * r))
        return false;
    fl->c = c, fl->r = r, fl->w = w;
    fl->x = malloc(c * r * w * sizeof *fl->x);
    if (fl->x) {
        int rc = vv_dense_read(vc, v, rank, d, fl->x);
        dmm_assert(rc == 0); /* vv_dense_shape said it is such a block */
        (void)rc;
    }
    return true;
}

/* Read value v, input k, as a field: a bare number, an image (depth 2) or a
 * stack of images (depth 3). fl is zeroed first; field_free releases it. */
static int field_read(dmm_fire *f, size_t k, vv v, field *fl)
{
    *fl = (field){.rank = 0, .c = 1, .r = 1, .w = 1, .s = v.num};
    if (vv_is_scalar(v))
        return 0;
    int depth = vv_depth(v);
    if (depth != 2 && depth != 3)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "input %s is %d levels deep: a number, an "
                               "image (row -> column -> number) or channels "
                               "of images were expected",
                               in_name(f, k), depth);
    fl->rank = depth;
    fl->r = fl->w = 0;
    fl->s = 0;
    if (field_read_block(f->vc, v, depth,
                         fl)) /* the common case, without a walk */
        return fl->x ? 0 : dmm__fire_fail(f, DMM_E_NOMEM);
    vv_iter it;
    vv_label cl;
    vv ch;
    int rc;
    for (int pass = 0; pass < 2; pass++) {
        if (depth == 2) {
            if ((rc = walk_matrix(f, k, v, 0, fl, pass)))
                return rc;
        } else {
            if (v.num != 0.0)
                return dmm__fire_failf(f, DMM_E_INVAL,
                                       "input %s has a number beside its "
                                       "channels",
                                       in_name(f, k));
            if (!pass)
                fl->c = 0;
            vv_iter_init(&it, v);
            while (vv_iter_next(&it, &cl, &ch)) {
                size_t c;
                if (!decimal_label(f, cl, CHAN_MAX, &c))
                    return dmm__fire_failf(f, DMM_E_INVAL,
                                           "input %s: channel label \"%s\" "
                                           "is not an integer from 0 to %d",
                                           in_name(f, k),
                                           vv_label_str(f->vc, cl, NULL),
                                           CHAN_MAX - 1);
                if (vv_depth(ch) != 2)
                    return dmm__fire_failf(f, DMM_E_INVAL,
                                           "input %s: channel %zu is not an "
                                           "image (row -> column -> number)",
                                           in_name(f, k), c);
                if (!pass)
                    fl->c = c + 1 > fl->c ? c + 1 : fl->c;
                else if ((rc = walk_matrix(f, k, ch, c, fl, true)))
                    return rc;
                if (!pass && (rc = walk_matrix(f, k, ch, c, fl, false)))
                    return rc;
            }
        }
        if (!pass) {
            size_t n = fl->c * fl->r;
            if (fl->w > FIELD_MAX / n)
                return dmm__fire_failf(f, DMM_E_LIMIT,
                                       "input %s: %zu x %zu x %zu values are "
                                       "more than the %zu a field holds",
                                       in_name(f, k), fl->c, fl->r, fl->w,
                                       FIELD_MAX);
            fl->x = calloc(n * fl->w, sizeof *fl->x);
            if (!fl->x)
                return dmm__fire_fail(f, DMM_E_NOMEM);
        }
    }
    return 0;
}

static void field_free(field *fl)
{
    free(fl->x);
    fl->x = NULL;
}

/* A new field of the given shape, zero-filled. */
static int field_alloc(dmm_fire *f, field *fl, int rank, size_t c, size_t r,
                       size_t w)
{
    *fl = (field){.rank = rank, .c = c, .r = r, .w = w};
    if (rank == 0)
        return 0;
    fl->x = calloc(c * r * w, sizeof *fl->x);
    return fl->x ? 0 : dmm__fire_fail(f, DMM_E_NOMEM);
}

/* Entry (k, i, j) of fl broadcast to a larger shape: a number everywhere,
 * one channel for every channel, 0 outside fl. */
static double field_at(const field *fl, size_t k, size_t i, size_t j)
{
    if (fl->rank == 0)
        return fl->s;
    if (fl->c == 1)
        k = 0;
    if (k >= fl->c || i >= fl->r || j >= fl->w)
        return 0.0;
    return fl->x[(k * fl->r + i) * fl->w + j];
}

/* new: fl as a V-value, one dense block (zeros are absent entries). */
static int field_to_vv(dmm_fire *f, const field *fl, vv *out)
{
    if (fl->rank == 0) {
        *out = vv_number(fl->s);
        return 0;
    }
    size_t dims[3] = {fl->c, fl->r, fl->w};
    int rc = fl->rank == 2 ? vv_from_dense(f->vc, 2, dims + 1, fl->x, out)
                           : vv_from_dense(f->vc, 3, dims, fl->x, out);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/* f->output = {outputs[o]: fields[o]} for n outputs. */
static int emit_fields(dmm_fire *f, const field *out, size_t n)
{
    vv v[4];
    for (size_t o = 0; o < n; o++) {
        for (size_t q = 0; q < field_len(&out[o]) && out[o].rank; q++)
            if (!isfinite(out[o].x[q]))
                return dmm__fire_failf(f, DMM_E_NONFINITE,
                                       "output %s is not finite at %zu",
                                       f->type->desc->outputs[o], q);
        if (out[o].rank == 0 && !isfinite(out[o].s))
            return dmm__fire_failf(f, DMM_E_NONFINITE,
                                   "output %s is not finite",
                                   f->type->desc->outputs[o]);
        int rc = field_to_vv(f, &out[o], &v[o]);
        if (rc) {
            for (size_t q = 0; q < o; q++)
                vv_free(f->vc, v[q]);
            return rc;
        }
    }
    int rc = vv_from_pairs(f->vc, 0.0, n, f->type->out, v, &f->output);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/* Parameter index of the parameter named like input k, or -1. */
static long param_of_input(const dmm_fire *f, size_t k)
{
    for (size_t p = 0; p < f->type->n_params; p++)
        if (f->type->param[p] == f->type->in[k])
            return (long)p;
    return -1;
}

/* ---- element-wise unit generators -------------------------------------- */

enum { EW_MAX_IN = 3 };
typedef double (*ew_fn)(const double *v);

static double ew_sin(const double *v)
{
    return sin(v[1] * v[0] + v[2]);
}
static double ew_cos(const double *v)
{
    return cos(v[1] * v[0] + v[2]);
}
static double ew_mul(const double *v)
{
    return v[0] * v[1];
}
static double ew_affine(const double *v)
{
    return v[1] * v[0] + v[2];
}
static double ew_power(const double *v)
{
    return pow(v[0], v[1]);
}
static double ew_clamp(const double *v)
{
    return fmin(fmax(v[0], v[1]), v[2]);
}

/*
 * out(p) = op(in_0(p), in_1(p), ...) over the broadcast shape of the inputs:
 * numbers apply everywhere, one-channel images to every channel, and the
 * shape is the largest of the inputs' (absent entries are 0). An absent
 * input with a parameter of the same name takes the parameter's value. An
 * absent (zero) x gives an absent output, never a bare sin(b): a pipeline's
 * first cycles, before the image arrives, then emit nothing rather than a
 * number that a matrix neuron downstream would refuse.
 */
static int fire_elementwise(dmm_fire *f, ew_fn op)
{
    size_t n = f->type->n_inputs;
    field in[EW_MAX_IN] = {{0}};
    field out = {0};
    int rank = 0, rc = 0;
    size_t c = 1, r = 1, w = 1;
    if (vv_is_zero(dmm_fire_in(f, 0)))
        return 0; /* no signal in, none out (as sigmoid's {} gives {}) */
    for (size_t k = 0; k < n; k++) {
        vv v = dmm_fire_in(f, k);
        long p = param_of_input(f, k);
        if (vv_is_zero(v) && p >= 0)
            v = vv_number(dmm_fire_param(f, (size_t)p));
        if ((rc = field_read(f, k, v, &in[k])))
            goto done;
        if (in[k].rank) {
            rank = in[k].rank > rank ? in[k].rank : rank;
            c = in[k].c > c ? in[k].c : c;
            r = in[k].r > r ? in[k].r : r;
            w = in[k].w > w ? in[k].w : w;
        }
    }
    if (rank && (c * r > FIELD_MAX || w > FIELD_MAX / (c * r))) {
        rc = dmm__fire_failf(f, DMM_E_LIMIT, "the broadcast shape is too big");
        goto done;
    }
    if ((rc = field_alloc(f, &out, rank, c, r, w)))
        goto done;
    double v[EW_MAX_IN];
    if (!rank) {
        for (size_t k = 0; k < n; k++)
            v[k] = in[k].s;
        out.s = op(v);
    } else
        for (size_t ch = 0; ch < c; ch++)
            for (size_t i = 0; i < r; i++)
                for (size_t j = 0; j < w; j++) {
                    for (size_t k = 0; k < n; k++)
                        v[k] = field_at(&in[k], ch, i, j);
                    out.x[(ch * r + i) * w + j] = op(v);
                }
    rc = emit_fields(f, &out, 1);
done:
    for (size_t k = 0; k < n; k++)
        field_free(&in[k]);
    field_free(&out);
    return rc;
}

static int fire_sin(dmm_fire *f)
{
    return fire_elementwise(f, ew_sin);
}
static int fire_cos(dmm_fire *f)
{
    return fire_elementwise(f, ew_cos);
}
static int fire_mul(dmm_fire *f)
{
    return fire_elementwise(f, ew_mul);
}
static int fire_affine(dmm_fire *f)
{
    return fire_elementwise(f, ew_affine);
}
static int fire_power(dmm_fire *f)
{
    return fire_elementwise(f, ew_power);
}
static int fire_clamp(dmm_fire *f)
{
    return fire_elementwise(f, ew_clamp);
}

/* ---- sources ------------------------------------------------------------ */

/* A side length parameter, rounded, checked to be 1 .. SIDE_MAX. */
static int side_param(dmm_fire *f, size_t p, size_t *out)
{
    double x = round(dmm_fire_param(f, p));
    if (!(x >= 1 && x <= SIDE_MAX))
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "%s must be from 1 to %d, got %g",
                               f->type->desc->params[p].name, SIDE_MAX, x);
    *out = (size_t)x;
    return 0;
}

/* -1 at the first index, 1 at the last, 0 when there is one. */
static double ramp(size_t i, size_t n)
{
    return n > 1 ? -1.0 + 2.0 * (double)i / (double)(n - 1) : 0.0;
}

enum { G_WIDTH, G_HEIGHT, G_ZOOM, G_X0, G_Y0 };

/* x grows to the right, y upwards (row 0 is the top), both over [-1, 1]
 * times zoom, shifted by x0, y0; r and theta are their polar form. */
static int fire_grid(dmm_fire *f)
{
    size_t w = 0, h = 0;
    int rc;
    if ((rc = side_param(f, G_WIDTH, &w)) || (rc = side_param(f, G_HEIGHT, &h)))
        return rc;
    if (w > FIELD_MAX / h)
        return dmm__fire_failf(f, DMM_E_LIMIT, "a %zu x %zu grid is too big", h,
                               w);
    double zoom = dmm_fire_param(f, G_ZOOM);
    double x0 = dmm_fire_param(f, G_X0), y0 = dmm_fire_param(f, G_Y0);
    field out[4] = {{0}};
    for (int o = 0; o < 4 && !rc; o++)
        rc = field_alloc(f, &out[o], 2, 1, h, w);
    for (size_t i = 0; i < h && !rc; i++)
        for (size_t j = 0; j < w; j++) {
            double x = zoom * ramp(j, w) + x0, y = -zoom * ramp(i, h) + y0;
            size_t q = i * w + j;
            out[0].x[q] = x;
            out[1].x[q] = y;
            out[2].x[q] = hypot(x, y);
            out[3].x[q] = atan2(y, x);
        }
    if (!rc)
        rc = emit_fields(f, out, 4);
    for (int o = 0; o < 4; o++)
        field_free(&out[o]);
    return rc;
}

enum { N_WIDTH, N_HEIGHT, N_AMPLITUDE };

/* Uniform noise in [-amplitude, amplitude), drawn row by row from the
 * network's random state, so a seed gives the same frames every run. */
static int fire_noise(dmm_fire *f)
{
    size_t w = 0, h = 0;
    int rc;
    if ((rc = side_param(f, N_WIDTH, &w)) || (rc = side_param(f, N_HEIGHT, &h)))
        return rc;
    if (w > FIELD_MAX / h)
        return dmm__fire_failf(f, DMM_E_LIMIT, "a %zu x %zu image is too big",
                               h, w);
    double amp = dmm_fire_param(f, N_AMPLITUDE);
    field out;
    if ((rc = field_alloc(f, &out, 2, 1, h, w)))
        return rc;
    for (size_t q = 0; q < h * w; q++)
        out.x[q] = amp * (2.0 * dmm_rng_uniform(f->rng) - 1.0);
    rc = emit_fields(f, &out, 1);
    field_free(&out);
    return rc;
}

enum { IM_FILE, IM_GAIN };

/* The file parameter's bytes as the image (dmm_file_fn). */
static int image_file(vv_ctx *vc, size_t k, const void *data, size_t len,
                      vv *out, dmm_error *err)
{
    (void)k;
    return dmm_png_decode(vc, data, len, out, err);
}

/* The image decoded at load, kept as the state {file: image} and emitted
 * (times gain) every firing: no decoding and, at gain 1, no copy. */
static int fire_image(dmm_fire *f)
{
    f->new_state = vv_ref(f->state);
    vv img = vv_child(f->state, f->type->param[IM_FILE]);
    if (vv_is_zero(img))
        return 0; /* no file given, or a black picture */
    double gain = dmm_fire_param(f, IM_GAIN);
    vv y = VV_ZERO;
    int rc = 0;
    if (gain == 1.0)
        y = vv_ref(img);
    else
        rc = vv_scale(f->vc, gain, img, &y);
    if (!rc) {
        rc = vv_wrap(f->vc, 0.0, f->type->out[0], y, &f->output);
        vv_free(f->vc, y);
    }
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/* ---- geometry and filters ----------------------------------------------- */

/* An image input (rank 2 or 3) read into fl; a bare number is refused, and
 * an absent input gives a 0-row field (which makes an absent output). */
static int image_input(dmm_fire *f, size_t k, field *fl)
{
    vv v = dmm_fire_in(f, k);
    int rc = field_read(f, k, v, fl);
    if (!rc && fl->rank == 0 && fl->s != 0.0)
        rc = dmm__fire_failf(f, DMM_E_INVAL,
                             "input %s must be an image (row -> column -> "
                             "number), got a bare number",
                             in_name(f, k));
    return rc;
}

static int fire_transpose(dmm_fire *f)
{
    field in, out = {0};
    int rc = image_input(f, 0, &in);
    if (rc || in.rank == 0)
        goto done;
    if ((rc = field_alloc(f, &out, in.rank, in.c, in.w, in.r)))
        goto done;
    for (size_t k = 0; k < in.c; k++)
        for (size_t i = 0; i < in.r; i++)
            for (size_t j = 0; j < in.w; j++)
                out.x[(k * in.w + j) * in.r + i] =
                    in.x[(k * in.r + i) * in.w + j];
    rc = emit_fields(f, &out, 1);
done:
    field_free(&in);
    field_free(&out);
    return rc;
}

/*
 * out[i][j] = Σ_{u,v} kernel[u][v] · image[i + cu − u][j + cv − v], the
 * kernel's centre (cu, cv) = (rows / 2, cols / 2): a true convolution (the
 * kernel flipped), same size as the image, zero outside it. Channels of a
 * stacked image are convolved one by one with the same kernel.
 */
static int fire_conv2d(dmm_fire *f)
{
    field in, ker = {0}, out = {0};
    int rc = image_input(f, 0, &in);
    if (rc || in.rank == 0)
        goto done;
    if ((rc = field_read(f, 1, dmm_fire_in(f, 1), &ker)))
        goto done;
    if (ker.rank == 3) {
        rc = dmm__fire_failf(f, DMM_E_INVAL,
                             "input kernel must be one matrix, not channels");
        goto done;
    }
    if (ker.rank == 0) { /* a bare number: a 1 x 1 kernel */
        ker.x = malloc(sizeof *ker.x);
        if (!ker.x) {
            rc = dmm__fire_fail(f, DMM_E_NOMEM);
            goto done;
        }
        ker.x[0] = ker.s;
    }
    if ((rc = field_alloc(f, &out, in.rank, in.c, in.r, in.w)))
        goto done;
    long cu = (long)ker.r / 2, cv = (long)ker.w / 2;
    for (size_t k = 0; k < in.c; k++)
        for (long i = 0; i < (long)in.r; i++)
            for (long j = 0; j < (long)in.w; j++) {
                double s = 0.0;
                for (long u = 0; u < (long)ker.r; u++) {
                    long si = i + cu - u;
                    if (si < 0 || si >= (long)in.r)
                        continue;
                    for (long v = 0; v < (long)ker.w; v++) {
                        long sj = j + cv - v;
                        if (sj >= 0 && sj < (long)in.w)
                            s += ker.x[u * (long)ker.w + v] *
                                 in.x[((long)k * (long)in.r + si) * (long)in.w +
                                      sj];
                    }
                }
                out.x[((long)k * (long)in.r + i) * (long)in.w + j] = s;
            }
    rc = emit_fields(f, &out, 1);
done:
    field_free(&in);
    field_free(&ker);
    field_free(&out);
    return rc;
}

enum { B_RADIUS };

/* Box blur: the mean of the (2·radius + 1)² window clipped to the image, so
 * edges are not darkened. */
static int fire_blur(dmm_fire *f)
{
    field in, out = {0};
    double rad = round(dmm_fire_param(f, B_RADIUS));
    if (!(rad >= 0 && rad <= 64))
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "radius must be from 0 to 64, got %g", rad);
    long rr = (long)rad;
    int rc = image_input(f, 0, &in);
    if (rc || in.rank == 0)
        goto done;
    if ((rc = field_alloc(f, &out, in.rank, in.c, in.r, in.w)))
        goto done;
    for (size_t k = 0; k < in.c; k++)
        for (long i = 0; i < (long)in.r; i++)
            for (long j = 0; j < (long)in.w; j++) {
                double s = 0.0;
                long cnt = 0;
                for (long u = i - rr; u <= i + rr; u++)
                    for (long v = j - rr; v <= j + rr; v++)
                        if (u >= 0 && u < (long)in.r && v >= 0 &&
                            v < (long)in.w) {
                            s += in.x[((long)k * (long)in.r + u) * (long)in.w +
                                      v];
                            cnt++;
                        }
                out.x[((long)k * (long)in.r + i) * (long)in.w + j] =
                    s / (double)cnt;
            }
    rc = emit_fields(f, &out, 1);
done:
    field_free(&in);
    field_free(&out);
    return rc;
}

/* ---- descriptors -------------------------------------------------------- */

static const dmm_param_spec sin_params[] = {
    {"a", 1,
     "frequency when input a is absent (0 cannot be given: it reads "
     "as absent)"},
    {"b", 0, "phase when input b is absent"},
    {NULL, 0, NULL},
};
static const dmm_param_spec affine_params[] = {
    {"scale", 1, "factor when input scale is absent"},
    {"shift", 0, "offset when input shift is absent"},
    {NULL, 0, NULL},
};
static const dmm_param_spec power_params[] = {
    {"exponent", 2, "exponent when input exponent is absent"},
    {NULL, 0, NULL},
};
static const dmm_param_spec clamp_params[] = {
    {"lo", 0, "lower bound when input lo is absent"},
    {"hi", 1, "upper bound when input hi is absent"},
    {NULL, 0, NULL},
};
static const dmm_param_spec grid_params[] = {
    {"width", 32, "columns, 1 to 4096"},
    {"height", 32, "rows, 1 to 4096"},
    {"zoom", 1, "half-width of the ramps (0 reads as absent)"},
    {"x0", 0, "added to x"},
    {"y0", 0, "added to y"},
    {NULL, 0, NULL},
};
static const dmm_param_spec noise_params[] = {
    {"width", 32, "columns, 1 to 4096"},
    {"height", 32, "rows, 1 to 4096"},
    {"amplitude", 1, "values are uniform in [-amplitude, amplitude)"},
    {NULL, 0, NULL},
};
static const dmm_param_spec image_params[] = {
    {"file", 0,
     "the PNG file, relative to the network file's folder and inside it; "
     "read once, when the network is loaded",
     .kind = DMM_PARAM_FILE},
    {"gain", 1, "factor on every value (0 reads as absent)"},
    {NULL, 0, NULL},
};
static const dmm_param_spec blur_params[] = {
    {"radius", 1, "window half-size in pixels, rounded, 0 to 64"},
    {NULL, 0, NULL},
};

#define BROADCAST                                                              \
    " Inputs are numbers, images {row: {col: x}} (labels 0, 1, ...) or "       \
    "channels of images, broadcast to the largest shape (absent entries 0); "  \
    "an absent x gives no output"

const dmm_neuron_type dmm__builtin_synth[] = {
    {.name = "grid",
     .summary = "coordinate ramps of height x width pixels: x from -zoom to "
                "zoom left to right plus x0, y from zoom to -zoom top to "
                "bottom plus y0, r = sqrt(x^2 + y^2) and theta = atan2(y, x); "
                "no data inputs: every parameter may arrive as an input "
                "stream of its name (it fires when it has a row)",
     .inputs = NO_NAMES,
     .outputs = NAMES("x", "y", "r", "theta"),
     .params = grid_params,
     .fn = fire_grid},
    {.name = "sin",
     .summary = "y = sin(a*x + b) element-wise; a and b are streams (numbers "
                "or images) or, when absent, parameters." BROADCAST,
     .inputs = NAMES("x", "a", "b"),
     .outputs = NAMES("y"),
     .params = sin_params,
     .fn = fire_sin},
    {.name = "cos",
     .summary = "y = cos(a*x + b) element-wise, as sin." BROADCAST,
     .inputs = NAMES("x", "a", "b"),
     .outputs = NAMES("y"),
     .params = sin_params,
     .fn = fire_cos},
    {.name = "mul",
     .summary = "y = x * z element-wise (absent z is 0)." BROADCAST,
     .inputs = NAMES("x", "z"),
     .outputs = NAMES("y"),
     .fn = fire_mul},
    {.name = "affine",
     .summary = "y = scale*x + shift element-wise." BROADCAST,
     .inputs = NAMES("x", "scale", "shift"),
     .outputs = NAMES("y"),
     .params = affine_params,
     .fn = fire_affine},
    {.name = "power",
     .summary = "y = x^exponent element-wise; a negative x with a "
                "non-integer exponent, or 0 to a negative one, is a numeric "
                "fault (clamp first)." BROADCAST,
     .inputs = NAMES("x", "exponent"),
     .outputs = NAMES("y"),
     .params = power_params,
     .fn = fire_power},
    {.name = "clamp",
     .summary = "y = min(max(x, lo), hi) element-wise." BROADCAST,
     .inputs = NAMES("x", "lo", "hi"),
     .outputs = NAMES("y"),
     .params = clamp_params,
     .fn = fire_clamp},
    {.name = "transpose",
     .summary = "matrix[j][i] = matrix[i][j] for an image with labels 0, 1, "
                "...; channels of images are transposed one by one",
     .inputs = NAMES("matrix"),
     .outputs = NAMES("matrix"),
     .fn = fire_transpose},
    {.name = "conv2d",
     .summary = "image convolved with kernel (a matrix, centre at "
                "(rows/2, cols/2), flipped as in true convolution): same "
                "size as the image, zero outside it; channels one by one",
     .inputs = NAMES("image", "kernel"),
     .outputs = NAMES("image"),
     .fn = fire_conv2d},
    {.name = "blur",
     .summary = "box blur: each pixel the mean of the (2*radius+1)^2 window "
                "clipped to the image; channels one by one",
     .inputs = NAMES("image"),
     .outputs = NAMES("image"),
     .params = blur_params,
     .fn = fire_blur},
    {.name = "noise",
     .summary = "seeded noise: a height x width image uniform in "
                "[-amplitude, amplitude), new every cycle, drawn from the "
                "network's random state (the file's seed); fires when it has "
                "a row, e.g. on its amplitude input",
     .inputs = NO_NAMES,
     .outputs = NAMES("image"),
     .params = noise_params,
     .fn = fire_noise},
    {.name = "image",
     .summary = "a PNG picture read from the file named in its params "
                "(\"file\"), when the network is loaded: a grey one is an "
                "image {row: {col: v}}, a colour one the channels {\"0\": "
                "red, \"1\": green, \"2\": blue} of images, v = byte/255 "
                "(alpha dropped), times gain; emitted every cycle, kept as "
                "the state (so a state file holds the picture, not the file "
                "name); fires when it has a row, e.g. on its gain input",
     .inputs = NO_NAMES,
     .outputs = NAMES("image"),
     .params = image_params,
     .stateful = true,
     .fn = fire_image,
     .file = image_file},
    {.name = NULL},
};
