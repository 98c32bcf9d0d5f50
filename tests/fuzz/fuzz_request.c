// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the live protocol's request parser (compiled in from
 * runtime/live/src/live_protocol.c): arbitrary bytes are parsed as one request
 * line. A request that passes is checked for the invariants the server
 * relies on and freed; an error must carry a code and a message, and its
 * reply line must be built. Everything made in the context is released.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "live_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vv_options opt = {.max_depth = 64};
    vv_ctx *vc = vv_ctx_new(&opt);
    if (!vc)
        return 0;
    dmm__live_req req;
    dmm__live_err e;
    vv_buf b = {0};
    size_t before = vv_label_count(vc);
    if (dmm__live_parse(vc, (const char *)data, size, &req, &e) == 0) {
        /* Reads intern nothing; once their labels are interned, a path
         * resolves to exactly what dmm_path_parse makes of its text. */
        if ((req.op == DMM__OP_GET || req.op == DMM__OP_SUBSCRIBE) &&
            vv_label_count(vc) != before)
            __builtin_trap();
        for (size_t i = 0; i < req.npaths; i++) {
            dmm__live_path *p = &req.paths[i];
            vv_label want[DMM__LIVE_MAX_PARTS];
            size_t n;
            bool scalar;
            dmm_error err;
            int rc = dmm_path_parse(vc, p->text, strlen(p->text), want,
                                    DMM__LIVE_MAX_PARTS, &n, &scalar, &err);
            if (rc == DMM_E_LIMIT)
                continue; /* a label too long to intern reads as nothing */
            if (rc < 0 || n != p->n || scalar != p->scalar ||
                !dmm__live_path_resolve(vc, p) ||
                memcmp(want, p->label, n * sizeof want[0]) != 0)
                __builtin_trap();
        }
        /* set: the six labels of a weight, or nine with Self's output
         * path first (the server checks that prefix). */
        if ((req.op == DMM__OP_SET &&
             (req.npaths != 1 ||
              (req.paths[0].n != 6 && req.paths[0].n != 9))) ||
            (req.op == DMM__OP_STEP &&
             (req.n < 1 || req.n > DMM__LIVE_MAX_STEP)) ||
            (req.op == DMM__OP_SUBSCRIBE &&
             (req.npaths < 1 || req.npaths > DMM__LIVE_MAX_PATHS)) ||
            (req.op == DMM__OP_LOAD && !req.doc && !req.text))
            __builtin_trap();
        dmm__live_reply_begin(&b, req.id);
        dmm__live_req_free(vc, &req);
    } else {
        if (!e.err.text[0] || req.paths || !vv_is_zero(req.value))
            __builtin_trap();
        dmm__live_reply_error(&b, req.id, &e);
        /* A reply is one line. */
        if (b.len && memchr(b.data, '\n', b.len) != b.data + b.len - 1)
            __builtin_trap();
    }
    /* What the server does with a refused request: the labels it interned
     * are rolled back, and the table is as before. */
    vv_label_rollback(vc, before);
    if (vv_label_count(vc) != before)
        __builtin_trap();
    free(b.data);
    vv_ctx_free(vc);
    return 0;
}
