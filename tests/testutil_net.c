// SPDX-License-Identifier: MIT
/* Helpers shared by the engine's test programs; see testutil_net.h. */
#include <stdlib.h>
#include <string.h>

#include "testutil_net.h"

static int world_setup(void **state, bool counted,
                       const dmm_neuron_type *const *extra)
{
    tn_world *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    vv_options opt = {.alloc = tu_alloc_fn, .alloc_ud = &w->alloc};
    w->counted = counted;
    if (!(w->vc = vv_ctx_new(counted ? &opt : NULL)) ||
        !(w->reg = dmm_registry_new(w->vc)) ||
        dmm_registry_add_builtins(w->reg))
        return -1;
    for (; extra && *extra; extra++)
        if (dmm_registry_add(w->reg, *extra))
            return -1;
    *state = w;
    return 0;
}

int tn_world_setup(void **state, const dmm_neuron_type *const *extra)
{
    return world_setup(state, false, extra);
}

int tn_world_setup_counted(void **state)
{
    return world_setup(state, true, NULL);
}

int tn_world_teardown(void **state)
{
    tn_world *w = *state;
    dmm_registry_free(w->reg);
    vv_ctx_free(w->vc);
    size_t left = w->counted ? w->alloc.bytes : 0;
    free(w);
    assert_int_equal(left, 0); /* every value was freed */
    return 0;
}

dmm_net *tn_load(tn_world *w, const char *text)
{
    dmm_net *net = NULL;
    dmm_error err;
    if (dmm_net_load_text(w->vc, w->reg, text, strlen(text), "test.json", &net,
                          &err) != 0) {
        char msg[1024];
        dmm_error_format(&err, msg, sizeof msg);
        fail_msg("load failed: %s", msg);
    }
    return net;
}

int tn_fire(tn_world *w, const char *type, vv input, vv params, vv state,
            vv *out, vv *new_state, dmm_error *err)
{
    const dmm_type_info *t = dmm_registry_find(w->reg, tu_label(w->vc, type));
    assert_non_null(t);
    uint64_t rng[4] = {1, 2, 3, 4};
    dmm_fire f = {.vc = w->vc,
                  .type = t,
                  .name = tu_label(w->vc, "n"),
                  .input = input,
                  .params = params,
                  .state = state,
                  .step = 1,
                  .rng = rng,
                  .err = err};
    dmm_error_clear(err);
    int rc = t->desc->fn(&f);
    *out = VV_ZERO;
    if (new_state)
        *new_state = VV_ZERO;
    if (rc) { /* a built-in leaves nothing behind */
        assert_true(vv_is_zero(f.output));
        assert_true(vv_is_zero(f.new_state));
        return rc;
    }
    tu_assert_canonical(w->vc, f.output);
    tu_assert_canonical(w->vc, f.new_state);
    *out = f.output;
    if (new_state)
        *new_state = f.new_state;
    else
        vv_free(w->vc, f.new_state);
    return 0;
}
