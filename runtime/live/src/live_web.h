// SPDX-License-Identifier: MIT
/*
 * The browser view's transport (live_web.c): libwebsockets on the server's
 * own libuv loop serves the page at "/" and the protocol at "/ws", one
 * request or reply per text message. live_web.c owns the lws context, the
 * page's bytes and each WebSocket's send queue; live_server.c owns the
 * client behind each WebSocket, exactly as it owns a socket client.
 */
#ifndef DMM_LIVE_WEB_H
#define DMM_LIVE_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <uv.h>

#include "dmm.h"

typedef struct dmm__live_server dmm__live_server;
typedef struct dmm__live_client dmm__live_client;
typedef struct dmm__live_web dmm__live_web; /* the lws context */
typedef struct dmm__live_ws dmm__live_ws;   /* one WebSocket connection */

/* ---- live_web.c, called by live_server.c ------------------------------- */

/*
 * Listen on spec ("HOST:PORT", port 0 picks one) for HTTP on loop, and print
 * "http://HOST:PORT/" as one line of announce. A non-loopback address needs
 * has_token. *out: new (dmm__live_web_free), set even when starting failed
 * (lws may have handles on the loop to close). Returns 0 or a DMM_E_* code
 * with err filled.
 */
int dmm__live_web_start(dmm__live_server *srv, uv_loop_t *loop,
                        const char *spec, bool has_token, FILE *announce,
                        dmm__live_web **out, dmm_error *err);
/* Close every connection and stop listening (each client still open gets
 * dmm__live_client_ws_gone); lws's handles close as the loop runs on. */
void dmm__live_web_stop(dmm__live_web *w);
/* After the loop has run out: free what is left of w (may be NULL). */
void dmm__live_web_free(dmm__live_web *w);

/* Queue one text message (copied) to be sent; 0, or DMM_E_NOMEM. */
int dmm__live_ws_send(dmm__live_ws *ws, const char *data, size_t len);
/* Bytes queued and not yet handed to the socket. */
size_t dmm__live_ws_backlog(const dmm__live_ws *ws);
/* The same, less the largest message queued: one big message (W whole for
 * a page) is not a slow reader's sign by itself. O(messages queued). */
size_t dmm__live_ws_backlog_but_largest(const dmm__live_ws *ws);
/* Close once the queue is sent. */
void dmm__live_ws_end(dmm__live_ws *ws);
/* Close now, without sending what is queued. */
void dmm__live_ws_kill(dmm__live_ws *ws);
/* Stop or restart reading messages. */
void dmm__live_ws_read(dmm__live_ws *ws, bool on);
/* The peer's address; false when unknown. */
bool dmm__live_ws_peer(const dmm__live_ws *ws, struct sockaddr_storage *addr);

/* ---- live_server.c, called by live_web.c ------------------------------- */

/* A WebSocket was opened on /ws: the client that owns it (borrowed until
 * dmm__live_client_ws_gone), or NULL when none could be made (closed). */
dmm__live_client *dmm__live_client_ws_open(dmm__live_server *srv,
                                           dmm__live_ws *ws);
/* Part of a message: first and final say where it starts and ends. */
void dmm__live_client_ws_data(dmm__live_client *c, const char *data, size_t len,
                              bool first, bool final, bool binary);
/* Everything queued for c has been handed to the socket. */
void dmm__live_client_ws_written(dmm__live_client *c);
/* The connection is closed: c is forgotten and freed. */
void dmm__live_client_ws_gone(dmm__live_client *c);

/* ---- pure helpers (live_web.c), also reached by the fuzz target ------- */

/* One file of the page, embedded at build time (live_web_assets.c, made by
 * runtime/live/web/embed.py from runtime/live/web/). */
typedef struct dmm__live_asset {
    const char *uri; /* "/index.html", ... */
    const char *mime;
    const unsigned char *data;
    size_t len;
} dmm__live_asset;
extern const dmm__live_asset dmm__live_assets[];
extern const size_t dmm__live_nassets;

/* The page's files: body and type of the file at uri ("/" is the page),
 * NULL when there is none. */
const unsigned char *dmm__live_web_asset(const char *uri, size_t *len,
                                         const char **mime);

/*
 * Whether a WebSocket upgrade with this Origin header may proceed. allowed
 * lists the page's own origins ("http://127.0.0.1:8080", ...), n of them;
 * when wildcard (the server listens on every address), the page's origin is
 * "http://" + host (the Host header). Case is ignored in the scheme and host.
 */
bool dmm__live_web_origin_ok(const char *const *allowed, size_t n,
                             bool wildcard, const char *origin,
                             const char *host);

#endif
