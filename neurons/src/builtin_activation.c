// SPDX-License-Identifier: MIT
/*
 * Built-in activation functions (spec dmm.md §3, second paragraph). All are
 * variadic and keep the input's stream names. relu, tanh and sigmoid apply to
 * every stored scalar (vv_apply): absent scalars stay absent, so sigmoid of
 * {} is {}, not 0.5 anywhere. softmax works per stream on its root's children.
 */
#include <math.h>
#include <stdlib.h>

#include "builtins.h"

static double relu(double x, void *ud)
{
    return x > 0.0 ? x : 0.0;
}

static double tanh_fn(double x, void *ud)
{
    return tanh(x);
}

static double sigmoid(double x, void *ud)
{
    return 1.0 / (1.0 + exp(-x));
}

static int fire_apply(dmm_fire *f, vv_scalar_fn fn)
{
    vv r;
    int rc = vv_apply(f->vc, f->input, fn, NULL, &r);
    if (rc)
        return dmm__fire_fail(f, rc);
    f->output = r;
    return 0;
}

static int fire_relu(dmm_fire *f)
{
    return fire_apply(f, relu);
}

static int fire_tanh(dmm_fire *f)
{
    return fire_apply(f, tanh_fn);
}

static int fire_sigmoid(dmm_fire *f)
{
    return fire_apply(f, sigmoid);
}

/* Dense forms (dmm_dense_fn): the same function on every non-zero value, 0
 * (an absent leaf) staying 0, as vv_apply does. */
static int dense_relu(const double *const *in, size_t nin, double *out,
                      size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = in[0][i] != 0.0 ? relu(in[0][i], NULL) : 0.0;
    return 0;
}

static int dense_tanh(const double *const *in, size_t nin, double *out,
                      size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = in[0][i] != 0.0 ? tanh(in[0][i]) : 0.0;
    return 0;
}

static int dense_sigmoid(const double *const *in, size_t nin, double *out,
                         size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = in[0][i] != 0.0 ? sigmoid(in[0][i], NULL) : 0.0;
    return 0;
}

/*
 * new: softmax over the children of s's root, by each child's scalar part
 * (its own children ignored): {l_k: exp(x_k − m) / Σ_j exp(x_j − m)} with m
 * the largest x. Subtracting m keeps every exponent ≤ 0, so nothing overflows
 * and the sum is ≥ 1. A result that underflows to 0 is dropped (canonical).
 * No children gives zero.
 */
static int softmax_stream(vv_ctx *c, vv s, vv *out)
{
    size_t n = vv_nchildren(s);
    if (n == 0) {
        *out = VV_ZERO;
        return 0;
    }
    vv_label *labels = malloc(n * sizeof *labels);
    vv *kids = malloc(n * sizeof *kids);
    if (!labels || !kids) {
        free(labels);
        free(kids);
        return DMM_E_NOMEM;
    }
    vv_iter it;
    vv_label l;
    vv child;
    size_t k = 0;
    double m = -INFINITY, sum = 0.0;
    vv_iter_init(&it, s);
    while (vv_iter_next(&it, &l, &child)) {
        dmm_assert(k < n);
        labels[k] = l;
        kids[k] = vv_number(child.num); /* a bare number owns no memory */
        if (child.num > m)
            m = child.num;
        k++;
    }
    for (k = 0; k < n; k++) {
        kids[k].num = exp(kids[k].num - m);
        sum += kids[k].num;
    }
    for (k = 0; k < n; k++)
        kids[k].num /= sum;
    int rc = vv_from_pairs(c, 0.0, n, labels, kids, out);
    free(labels);
    free(kids);
    return rc;
}

static int fire_softmax(dmm_fire *f)
{
    size_t n = vv_nchildren(f->input);
    if (n == 0) {
        f->output = VV_ZERO;
        return 0;
    }
    vv_label *labels = malloc(n * sizeof *labels);
    vv *streams = calloc(n, sizeof *streams);
    int rc = 0;
    if (!labels || !streams) {
        rc = DMM_E_NOMEM;
        goto done;
    }
    vv_iter it;
    vv_label l;
    vv s;
    size_t k = 0;
    vv_iter_init(&it, f->input);
    while (!rc && vv_iter_next(&it, &l, &s)) {
        dmm_assert(k < n);
        labels[k] = l;
        rc = softmax_stream(f->vc, s, &streams[k++]);
    }
    if (rc) {
        for (size_t j = 0; j < k; j++)
            vv_free(f->vc, streams[j]);
        goto done;
    }
    rc = vv_from_pairs(f->vc, 0.0, n, labels, streams, &f->output);
done:
    free(labels);
    free(streams);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

const dmm_neuron_type dmm__builtin_activation[] = {
    {.name = "relu",
     .summary = "max(0, x) applied to every stored scalar, streams kept by "
                "name (absent scalars stay absent)",
     .outputs_doc = "same names as inputs",
     .fn = fire_relu,
     .dense = dense_relu},
    {.name = "tanh",
     .summary = "tanh(x) applied to every stored scalar, streams kept by name "
                "(absent scalars stay absent)",
     .outputs_doc = "same names as inputs",
     .fn = fire_tanh,
     .dense = dense_tanh},
    {.name = "sigmoid",
     .summary = "1 / (1 + exp(-x)) applied to every stored scalar, streams "
                "kept by name; absent scalars stay absent, so {} gives {}, "
                "not 0.5",
     .outputs_doc = "same names as inputs",
     .fn = fire_sigmoid,
     .dense = dense_sigmoid},
    {.name = "softmax",
     .summary = "per input stream: softmax over the children of the stream's "
                "root by each child's scalar part (deeper parts and the "
                "root's own scalar ignored), exp(x - max) / sum; a stream "
                "without children gives {}",
     .outputs_doc = "same names as inputs; each stream's children keep their "
                    "labels",
     .fn = fire_softmax},
    {.name = NULL},
};
