// SPDX-License-Identifier: MIT
/*
 * A new neuron type next to the built-ins (docs/extending.md walks through
 * it): `clip`, variadic, limits every stored scalar to [-limit, limit] with a
 * parameter `limit`. It is registered, then fired once by hand the way the
 * engine fires it, and its output is checked; the program exits 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- 3. register and fire ----------------------------------------------- */

static vv parse(vv_ctx *c, const char *json)
{
    vv v = VV_ZERO;
    dmm_error err;
    if (vv_parse(c, json, strlen(json), "<example>", &v, &err))
        fprintf(stderr, "%s\n", err.text);
    return v;
}

int main(void)
{
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
    if (!reg || dmm_registry_add_builtins(reg) ||
        dmm_registry_add(reg, &clip_type)) {
        fprintf(stderr, "registration failed\n");
        return 1;
    }
    printf("%zu types registered, the last one `%s`\n", dmm_registry_count(reg),
           dmm_registry_at(reg, dmm_registry_count(reg) - 1)->desc->name);

    /* What the engine does at load time: resolve the type once by label. */
    vv_label name, neuron;
    vv_intern_cstr(vc, "clip", &name);
    vv_intern_cstr(vc, "my-clip", &neuron);
    const dmm_type_info *t = dmm_registry_find(reg, name);

    /* What it does each cycle: fill a dmm_fire and call the function. */
    dmm_error err;
    dmm_error_clear(&err);
    dmm_fire f = {
        .vc = vc,
        .type = t,
        .name = neuron,
        .input = parse(vc, "{\"s\": {\"a\": 5, \"b\": -0.5}, \"t\": -3}"),
        .params = parse(vc, "{\"limit\": 2}"),
        .err = &err,
    };
    int rc = t->desc->fn(&f);
    vv want = parse(vc, "{\"s\": {\"a\": 2, \"b\": -0.5}, \"t\": -2}");
    char *s = vv_to_string(vc, f.output);
    printf("clip(limit 2) -> %s\n", rc ? err.text : s ? s : "?");
    bool ok = rc == 0 && vv_equal(f.output, want);

    free(s);
    vv_free(vc, want);
    vv_free(vc, f.output); /* the function's new reference is ours */
    vv_free(vc, f.input);
    vv_free(vc, f.params);
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    return ok ? 0 : 1;
}
