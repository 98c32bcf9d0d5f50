// SPDX-License-Identifier: MIT
/*
 * The live protocol's requests (docs/protocol.md): one JSON object per line,
 * parsed and checked into a dmm__live_req without touching any network, so
 * the server's I/O callbacks only parse and enqueue. Errors carry the
 * protocol's error code (a short string), a message and a JSON path.
 */
#ifndef DMM_LIVE_PROTOCOL_H
#define DMM_LIVE_PROTOCOL_H

#include <stdbool.h>
#include <stdint.h>

#include "dmm.h"

enum dmm__live_op {
    DMM__OP_HELLO,
    DMM__OP_STATUS,
    DMM__OP_PAUSE,
    DMM__OP_RESUME,
    DMM__OP_STEP,
    DMM__OP_RATE,
    DMM__OP_GET,
    DMM__OP_EDIT,
    DMM__OP_SET,
    DMM__OP_FEED,
    DMM__OP_SUBSCRIBE,
    DMM__OP_UNSUBSCRIBE,
    DMM__OP_SNAPSHOT,
    DMM__OP_SAVE,
    DMM__OP_LOAD,
    DMM__OP_SHUTDOWN,
};

/* Limits of one request. */
enum {
    DMM__LIVE_MAX_PARTS = 64,    /* labels in one path */
    DMM__LIVE_MAX_PATHS = 64,    /* paths in one subscription */
    DMM__LIVE_MAX_STEP = 1000000 /* cycles in one step request */
};

/* A path as the client wrote it and as labels. The paths of get and
 * subscribe are only looked up (a read must not grow the label table): when
 * a label was never interned the path is missing, reads as zero, and is
 * looked up again once the table has grown (dmm__live_path_resolve). */
typedef struct dmm__live_path {
    char *text; /* owned, NUL-terminated */
    size_t n;
    vv_label label[DMM__LIVE_MAX_PARTS];
    bool scalar; /* ends in ":number": the scalar part of the node at label[] */
    bool missing; /* some label is not interned: label[] is not valid */
    size_t seen;  /* missing: vv_label_count when last looked up */
} dmm__live_path;

typedef struct dmm__live_req {
    enum dmm__live_op op;
    char id[80]; /* the id as JSON text, "" when the request has none */
    uint64_t n;  /* step: cycles; subscribe: every; unsubscribe: id */
    double num;  /* set: value; rate: cycles per second, 0 = max */
    bool flag;   /* subscribe: changes only */
    dmm__live_path *paths; /* get, set: one; subscribe: npaths (owned) */
    size_t npaths;
    vv value;       /* edit: delta; feed: outputs (owned) */
    vv_label name;  /* feed: the input neuron's name */
    char *text;     /* hello: token; save, load: file (owned, may be NULL) */
    char *doc;      /* load: the network or state as JSON text (owned) */
    bool doc_state; /* load: doc is a state document */
} dmm__live_req;

/* A protocol error: code is a static string ("malformed", "unknown-op",
 * "bad-request", "bad-path", "bad-value", ...; docs/protocol.md). */
typedef struct dmm__live_err {
    const char *code;
    char message[512];
    char path[512];
} dmm__live_err;

/*
 * Parse one request line (len bytes, no newline). On success *req owns what
 * it holds (release with dmm__live_req_free). On error nothing is kept,
 * e is filled, and req->id still holds the request's id when it could be
 * read, so the error reply can name it. Labels of the paths of set, of
 * feed's neuron and of edit and feed values are interned in vc; the paths
 * of get and subscribe are only looked up. Returns 0 or a negative DMM_E_*
 * code.
 */
int dmm__live_parse(vv_ctx *vc, const char *line, size_t len,
                    dmm__live_req *req, dmm__live_err *e);
void dmm__live_req_free(vv_ctx *vc, dmm__live_req *req);

/* True when p's labels are all interned (label[] valid). A missing path is
 * looked up again only when vc has interned labels since the last try, so
 * this is cheap to call every cycle. */
bool dmm__live_path_resolve(vv_ctx *vc, dmm__live_path *p);

/* The op's name as written in requests (static). */
const char *dmm__live_op_name(enum dmm__live_op op);

/* Fill e; returns DMM_E_INVAL. */
int dmm__live_err_set(dmm__live_err *e, const char *code, const char *path,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Append an error reply line {"id": .., "ok": false, "error": {...}}\n. */
int dmm__live_reply_error(vv_buf *b, const char *id, const dmm__live_err *e);
/* Append the start of a success reply: {"id": .., "ok": true (no brace
 * closed; the caller adds members and "}\n"). */
int dmm__live_reply_begin(vv_buf *b, const char *id);

#endif
