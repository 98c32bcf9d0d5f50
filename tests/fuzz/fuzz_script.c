// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the script reader of `dmm run --script` (compiled in
 * from runtime/engine/src/net_script.c): arbitrary bytes are parsed and
 * validated as JSON Lines of events; a script that passes is freed, an error is
 * formatted. Everything made in the context must be released.
 */
#include <stddef.h>
#include <stdint.h>

#include "dmm_script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vv_options opt = {.max_depth = 64};
    vv_ctx *vc = vv_ctx_new(&opt);
    if (!vc)
        return 0;
    dmm_script s;
    dmm_error err;
    dmm_error_clear(&err);
    if (dmm_script_parse(vc, (const char *)data, size, "<fuzz>", &s, &err) ==
        0) {
        for (size_t i = 1; i < s.n; i++)
            if (s.ev[i - 1].step > s.ev[i].step)
                __builtin_trap(); /* events must come out sorted */
        dmm_script_free(vc, &s);
    } else {
        char buf[2048];
        dmm_error_format(&err, buf, sizeof buf);
    }
    vv_ctx_free(vc);
    return 0;
}
