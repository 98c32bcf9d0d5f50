// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the state reader: arbitrary bytes go to
 * dmm_net_restore_text with a fresh context and registry; a state that
 * restores runs three cycles and is saved again. Everything is freed, so
 * the sanitizers also catch leaks and use-after-free on error paths.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dmm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vv_options opt = {.max_depth = 64};
    vv_ctx *vc = vv_ctx_new(&opt);
    if (!vc)
        return 0;
    dmm_registry *reg = dmm_registry_new(vc);
    if (reg && dmm_registry_add_builtins(reg) == 0) {
        dmm_net *net = NULL;
        dmm_error err;
        if (dmm_net_restore_text(vc, reg, (const char *)data, size, "<fuzz>",
                                 &net, &err) == 0) {
            for (int k = 0; k < 3; k++)
                if (dmm_net_step(net, &err) < 0)
                    break;
            vv_buf b = {0};
            (void)dmm_net_save_buf(net, &b);
            free(b.data);
            dmm_net_free(net);
        }
    }
    if (reg)
        dmm_registry_free(reg);
    vv_ctx_free(vc);
    return 0;
}
