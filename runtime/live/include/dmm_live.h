// SPDX-License-Identifier: MIT
/*
 * The live server behind `dmm serve`: one libuv loop that owns the network,
 * runs its cycles at a rate, and serves the NDJSON protocol of
 * docs/protocol.md over TCP or a Unix socket.
 */
#ifndef DMM_LIVE_SERVER_H
#define DMM_LIVE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dmm.h"

typedef struct dmm_serve_opts {
    const char *listen;       /* "HOST:PORT" (TCP), when socket is NULL */
    const char *socket;       /* a Unix socket path, or NULL */
    const char *http;         /* "HOST:PORT": the browser view and the
                                 protocol over WebSocket (/ws), or NULL */
    double rate;              /* cycles per second; 0: as fast as possible */
    bool paused;              /* start paused */
    const char *log;          /* JSON Lines log of applied edits and feeds */
    const char *token;        /* required in hello, or NULL (then --listen
                                 must be a loopback address) */
    const char *dir;          /* save and load stay inside it; NULL: "." */
    const char *save_on_exit; /* state file written when stopping, or NULL */
    int max_clients;
    size_t max_message;       /* longest request line, bytes */
    size_t max_backlog;       /* bytes waiting to be sent to one client */
    size_t max_buffered;      /* bytes of unfinished and queued lines, in all */
    int max_per_address;      /* TCP connections from one host */
    uint64_t idle_timeout_ms; /* close a client with nothing asked; 0: never */
    size_t history;           /* changes that undo can revert */
} dmm_serve_opts;

/*
 * Split "HOST:PORT" or "[IPV6]:PORT" into host (NUL-terminated, brackets
 * removed, at most size - 1 bytes) and a port from 0 to 65535. Returns 0, or
 * DMM_E_INVAL with err saying "SPEC: expected HOST:PORT". Used by the server
 * (--listen) and its client (dmm ctl --connect) alike.
 */
int dmm_live_hostport(const char *spec, char *host, size_t size, int *port,
                      dmm_error *err);

/*
 * Serve net (taken; freed on return) until a shutdown request or SIGINT /
 * SIGTERM. The listening address is printed as the first line of announce
 * (HOST:PORT, or the socket path); with o->http, "http://HOST:PORT/" is the
 * second. Returns 0, or a negative DMM_E_* code with
 * err filled (setup failed, or the state could not be saved on exit).
 */
int dmm_live_serve(vv_ctx *vc, const dmm_registry *reg, dmm_net *net,
                   const dmm_serve_opts *o, FILE *announce, dmm_error *err);

#endif
