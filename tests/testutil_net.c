// SPDX-License-Identifier: MIT
/* Helpers shared by the engine's test programs; see testutil_net.h. */
#include <stdlib.h>
#include <string.h>

#include "testutil_net.h"

int tn_world_setup(void **state, const dmm_neuron_type *const *extra)
{
    tn_world *w = calloc(1, sizeof *w);
    if (!w || !(w->vc = vv_ctx_new(NULL)) ||
        !(w->reg = dmm_registry_new(w->vc)) ||
        dmm_registry_add_builtins(w->reg))
        return -1;
    for (; extra && *extra; extra++)
        if (dmm_registry_add(w->reg, *extra))
            return -1;
    *state = w;
    return 0;
}

int tn_world_teardown(void **state)
{
    tn_world *w = *state;
    dmm_registry_free(w->reg);
    vv_ctx_free(w->vc);
    free(w);
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
