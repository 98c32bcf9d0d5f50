// SPDX-License-Identifier: MIT
/*
 * A new neuron type as a plugin (docs/extending.md walks through it):
 * `clip`, variadic, limits every stored scalar to [-limit, limit] with a
 * parameter `limit`. Built as custom_neuron.so, it is loaded by
 *   dmm run --plugin build/examples/custom_neuron.so examples/clip.json ...
 * which calls register_types below once, before the network is loaded.
 */
#include "dmm_neuron.h"

/* ---- 1. the activation function ---------------------------------------- */

static double clip(double x, void *ud)
{
    double limit = *(const double *)ud;
    return x > limit ? limit : x < -limit ? -limit : x;
}

/* Reads f->input (borrowed) and f->params; sets f->output (new) on success
 * only. vv_apply keeps absent scalars absent, which is right: clip(0) = 0. */
static int fire_clip(dmm_fire *f)
{
    double limit = dmm_fire_param(f, 0);
    if (!(limit > 0))
        return dmm_error_set(f->err, DMM_E_INVAL, "",
                             "clip: limit must be positive, not %g", limit);
    return vv_apply(f->vc, f->input, clip, &limit, &f->output);
}

/* ---- 2. the descriptor: static const, it must outlive the registry ------ */

static const dmm_param_spec clip_params[] = {
    {"limit", 1.0, "largest |value| let through"},
    {NULL, 0, NULL},
};

static const dmm_neuron_type clip_type = {
    .name = "clip",
    .summary = "every stored scalar limited to [-limit, limit], streams kept "
               "by name",
    .inputs = NULL, /* variadic: any input names */
    .outputs = NULL,
    .outputs_doc = "same names as inputs",
    .params = clip_params,
    .stateful = false,
    .fn = fire_clip,
};

/* ---- 3. the plugin entry: `dmm run --plugin custom_neuron.so` calls it --- */

static int register_types(dmm_registry *r)
{
    return dmm_registry_add(r, &clip_type);
}

DMM_PLUGIN("clip", register_types);
