// SPDX-License-Identifier: MIT
/*
 * The live protocol's vocabularies (docs/protocol.md), each one list: the
 * operations (DMM__LIVE_OPS, which generates the op ids and the
 * {name, fields, parse, handle} table) and the wire error codes
 * (DMM__LIVE_ERRORS). A request line is parsed and checked into a
 * dmm__live_req without touching any network; the server applies it.
 */
#ifndef DMM_LIVE_PROTOCOL_H
#define DMM_LIVE_PROTOCOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "dmm.h"

/* X(ID, name, "fields"): every operation, with the fields it takes besides
 * "id" and "op" (space-separated). Its parser is parse_<name> in
 * live_protocol.c and its handler dmm__live_handle_<name> in live_server.c;
 * adding an operation is adding a row here and writing those two. */
#define DMM__LIVE_OPS(X)                                                       \
    X(HELLO, hello, "token")                                                   \
    X(STATUS, status, "")                                                      \
    X(PAUSE, pause, "")                                                        \
    X(RESUME, resume, "")                                                      \
    X(STEP, step, "n")                                                         \
    X(RATE, rate, "hz")                                                        \
    X(GET, get, "path")                                                        \
    X(EDIT, edit, "delta")                                                     \
    X(SET, set, "path value")                                                  \
    X(FEED, feed, "neuron outputs")                                            \
    X(SUBSCRIBE, subscribe, "paths every changes diff")                        \
    X(UNSUBSCRIBE, unsubscribe, "subscription")                                \
    X(SNAPSHOT, snapshot, "")                                                  \
    X(SAVE, save, "file")                                                      \
    X(LOAD, load, "network state file")                                        \
    X(MODULATE, modulate, "action modulation")                                 \
    X(POSITION, position, "neuron at")                                         \
    X(UNDO, undo, "")                                                          \
    X(SHUTDOWN, shutdown, "")

enum dmm__live_op {
#define DMM__LIVE_OP_ENUM(id, name, fields) DMM__OP_##id,
    DMM__LIVE_OPS(DMM__LIVE_OP_ENUM)
#undef DMM__LIVE_OP_ENUM
        DMM__OP_COUNT
};

/* X(ID, "wire-code", meaning): the codes of error replies. */
#define DMM__LIVE_ERRORS(X)                                                    \
    X(MALFORMED, "malformed", "not JSON, not an object, a duplicate key")      \
    X(TOO_LONG, "too-long", "the line is longer than --max-message")           \
    X(UNKNOWN_OP, "unknown-op", "op is missing or not a known name")           \
    X(BAD_REQUEST, "bad-request", "a field is missing, unknown or wrong")      \
    X(BAD_PATH, "bad-path", "a malformed path")                                \
    X(BAD_VALUE, "bad-value", "a value that is not a V-value or weight")       \
    X(INVALID_EDIT, "invalid-edit", "the network would not be valid")          \
    X(INVALID_NETWORK, "invalid-network", "load: it does not load")            \
    X(CONFLICT, "conflict", "a second feed before the next cycle")             \
    X(STATE, "state", "not possible now")                                      \
    X(NOT_FOUND, "not-found", "no such subscription")                          \
    X(FORBIDDEN, "forbidden", "a file outside the server's directory")         \
    X(IO, "io", "a file could not be read or written")                         \
    X(UNAUTHORIZED, "unauthorized", "no hello with the right token first")     \
    X(TOO_MANY_CLIENTS, "too-many-clients", "no connection slot left")         \
    X(BUSY, "busy", "the server holds too many unfinished lines")              \
    X(FAULT, "fault", "a cycle produced NaN or infinity")                      \
    X(INTERNAL, "internal", "out of memory")

enum dmm__live_code {
#define DMM__LIVE_CODE_ENUM(id, wire, meaning) DMM__LIVE_E_##id,
    DMM__LIVE_ERRORS(DMM__LIVE_CODE_ENUM)
#undef DMM__LIVE_CODE_ENUM
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
    bool scalar;  /* ends in ":number": the scalar part of the node there */
    bool missing; /* some label is not interned: label[] is not valid */
    size_t seen;  /* missing: vv_label_count when last looked up */
} dmm__live_path;

typedef struct dmm__live_req {
    enum dmm__live_op op;
    char id[80]; /* the id as JSON text, "" when the request has none */
    uint64_t n;  /* step: cycles; subscribe: every; unsubscribe: id */
    double num;  /* set: value; rate: cycles per second, 0 = max */
    bool flag;   /* subscribe: changes only */
    bool diff;   /* subscribe: patches of what changed, not whole values */
    dmm__live_path *paths; /* get, set: one; subscribe: npaths (owned) */
    size_t npaths;
    vv value;       /* edit: delta; feed: outputs (owned) */
    vv_label name;  /* feed: the input neuron's name */
    char *text;     /* hello: token; save, load: file; modulate: action;
                       position: neuron (owned, may be NULL) */
    char *doc;      /* load: the network or state; modulate: the
                       modulation; position: "at" (JSON text, owned) */
    bool doc_state; /* load: doc is a state document */
} dmm__live_req;

/* A protocol error: a wire code, and the message and the JSON path into the
 * request in err (err.text, err.path; err.code is DMM_E_INVAL or the engine's
 * code). */
typedef struct dmm__live_err {
    enum dmm__live_code code;
    dmm_error err;
} dmm__live_err;

/* Fill e with a wire code, a path and a printf-style message (formatted and
 * marked "..." when cut by dmm_error_set); evaluates to DMM_E_INVAL. */
#define dmm__live_err_set(e, wire, path, ...)                                  \
    ((e)->code = (wire),                                                       \
     dmm_error_set(&(e)->err, DMM_E_INVAL, (path), __VA_ARGS__))

/* The server and a connection, as the handlers see them (live_server.c). */
typedef struct dmm__live_server dmm__live_server;
typedef struct dmm__live_client dmm__live_client;

/* One operation: its parser fills the op's fields of req from the request
 * object j (every member already known to be one of fields); its handler
 * applies req at the cycle boundary and replies. A handler returns 0 when
 * the request was served (or is being served: step), or a negative code
 * when it was refused, so the server can undo whatever the refused request
 * left behind (the labels its parse interned). */
typedef struct dmm__live_op_desc {
    const char *name;
    const char *fields;
    int (*parse)(vv_ctx *vc, json_t *j, dmm__live_req *req, dmm__live_err *e);
    int (*handle)(dmm__live_server *srv, dmm__live_client *c,
                  dmm__live_req *req);
} dmm__live_op_desc;

#define DMM__LIVE_HANDLER_DECL(id, name, fields)                               \
    int dmm__live_handle_##name(dmm__live_server *srv, dmm__live_client *c,    \
                                dmm__live_req *req);
DMM__LIVE_OPS(DMM__LIVE_HANDLER_DECL)
#undef DMM__LIVE_HANDLER_DECL

/* The table, indexed by enum dmm__live_op (DMM__OP_COUNT rows). */
extern const dmm__live_op_desc dmm__live_ops[DMM__OP_COUNT];

/*
 * Parse one request line (len bytes, no newline). On success *req owns what
 * it holds (release with dmm__live_req_free). On error nothing is kept,
 * e is filled, and req->id still holds the request's id when it could be
 * read, so the error reply can name it. Labels of the paths of set, of
 * feed's neuron and of edit and feed values are interned in vc (the server
 * rolls them back when the request is refused); the paths of get and
 * subscribe are only looked up. Returns 0 or a negative DMM_E_* code.
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
/* The code as written in replies (static). */
const char *dmm__live_code_name(enum dmm__live_code code);

/* Append an error reply line {"id": .., "ok": false, "error": {...}}\n. */
int dmm__live_reply_error(vv_buf *b, const char *id, const dmm__live_err *e);
/* Append the start of a success reply: {"id": .., "ok": true (no brace
 * closed; the caller adds members and "}\n"). */
int dmm__live_reply_begin(vv_buf *b, const char *id);

#endif
