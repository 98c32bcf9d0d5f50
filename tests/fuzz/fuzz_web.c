// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the parts of the HTTP/WebSocket request path that
 * dmm writes (runtime/live/src/live_web.c; lws parses HTTP and frames): the
 * input is cut at its first two newlines into a URI, an Origin and a Host
 * header. The URI is looked up among the page's files (only those, never a
 * file on disk); the upgrade's origin check must accept exactly the page's
 * own origins (any case) or, when listening everywhere, "http://" + Host;
 * the rest is one WebSocket message, parsed as the server parses it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "live_protocol.h"
#include "live_web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *part(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n + (nl != NULL);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *uri = part(&p, end), *origin = part(&p, end), *host = part(&p, end);

    size_t len;
    const char *mime;
    const unsigned char *body = dmm__live_web_asset(uri, &len, &mime);
    bool known = !strcmp(uri, "/");
    for (size_t i = 0; i < dmm__live_nassets; i++)
        known |= !strcmp(uri, dmm__live_assets[i].uri);
    if ((body != NULL) != known || (body && (!mime || !len)))
        __builtin_trap();

    static const char *const allowed[] = {"http://127.0.0.1:8080",
                                          "http://localhost:8080"};
    for (int wildcard = 0; wildcard < 2; wildcard++) {
        bool ok = dmm__live_web_origin_ok(allowed, 2, wildcard, origin, host);
        bool want = !strcasecmp(origin, allowed[0]) ||
                    !strcasecmp(origin, allowed[1]) ||
                    (wildcard && *host && !strncasecmp(origin, "http://", 7) &&
                     !strcasecmp(origin + 7, host));
        if (ok != want)
            __builtin_trap();
    }

    vv_options opt = {.max_depth = 64};
    vv_ctx *vc = vv_ctx_new(&opt);
    if (vc) {
        dmm__live_req req;
        dmm__live_err e;
        if (dmm__live_parse(vc, (const char *)p, (size_t)(end - p), &req, &e) ==
            0)
            dmm__live_req_free(vc, &req);
        else if (!e.err.text[0])
            __builtin_trap();
        vv_ctx_free(vc);
    }
    free(uri);
    free(origin);
    free(host);
    return 0;
}
