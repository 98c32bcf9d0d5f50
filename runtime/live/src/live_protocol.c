// SPDX-License-Identifier: MIT
/*
 * Parsing and checking of live protocol requests (docs/protocol.md). Pure:
 * a line in, a dmm__live_req or an error out; no network is read or changed
 * here (that is the server's job at the cycle boundary). One parser per
 * operation, reached through the operations' table at the end. Every field is
 * checked for presence, type and range, and unknown fields are refused, so a
 * typo never passes as a default.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_script.h"
#include "live_protocol.h"

const char *dmm__live_op_name(enum dmm__live_op op)
{
    return (size_t)op < DMM__OP_COUNT ? dmm__live_ops[op].name : "?";
}

const char *dmm__live_code_name(enum dmm__live_code code)
{
    switch (code) {
#define CODE_NAME(id, wire, meaning)                                           \
    case DMM__LIVE_E_##id:                                                     \
        return wire;
        DMM__LIVE_ERRORS(CODE_NAME)
#undef CODE_NAME
    }
    return "internal";
}

static bool field_allowed(enum dmm__live_op op, const char *key)
{
    if (!strcmp(key, "id") || !strcmp(key, "op"))
        return true;
    const char *f = dmm__live_ops[op].fields;
    size_t n = strlen(key);
    while (*f) {
        const char *end = strchr(f, ' ');
        size_t m = end ? (size_t)(end - f) : strlen(f);
        if (m == n && !memcmp(f, key, n))
            return true;
        f += m + (end != NULL);
    }
    return false;
}

/* "/name" for a member's JSON Pointer. */
static void member_path(char *buf, size_t size, const char *key)
{
    buf[0] = '\0';
    dmm_json_pointer_push(buf, size, key, strlen(key));
}

/* The id: an integer that a double holds exactly, or a short string. */
static int read_id(json_t *id, dmm__live_req *req, dmm__live_err *e)
{
    if (json_is_number(id)) {
        double v = json_number_value(id);
        if (v == floor(v) && fabs(v) <= VV_MAX_EXACT_INT) {
            snprintf(req->id, sizeof req->id, "%.0f", v);
            return 0;
        }
    } else if (json_is_string(id) && json_string_length(id) <= 64) {
        vv_buf b = {0};
        int rc = vv_buf_json_string(&b, json_string_value(id),
                                    json_string_length(id));
        if (rc == 0 && b.len < sizeof req->id) {
            memcpy(req->id, b.data, b.len);
            req->id[b.len] = '\0';
            free(b.data);
            return 0;
        }
        free(b.data);
    }
    return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/id",
                             "must be an integer or a string of at most 64 "
                             "bytes");
}

/* A counting field: an integer in [lo, hi]. */
static int read_count(json_t *j, const char *key, uint64_t lo, uint64_t hi,
                      uint64_t *out, dmm__live_err *e)
{
    char path[64];
    member_path(path, sizeof path, key);
    double v = json_is_number(j) ? json_number_value(j) : -1;
    if (!(v >= (double)lo && v <= (double)hi && v == floor(v)))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, path,
                                 "must be an integer from %llu to %llu",
                                 (unsigned long long)lo,
                                 (unsigned long long)hi);
    *out = (uint64_t)v;
    return 0;
}

static int read_string(json_t *j, const char *key, const char **out,
                       dmm__live_err *e)
{
    char path[64];
    *out = NULL; /* set on every path: the callers' strings are never read
                    uninitialised, as a release build cannot otherwise see */
    member_path(path, sizeof path, key);
    if (!json_is_string(j))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, path,
                                 "must be a string");
    if (strlen(json_string_value(j)) != json_string_length(j))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, path,
                                 "must not contain a NUL character");
    *out = json_string_value(j);
    return 0;
}

/* Parse a path string into p (text copied): labels interned when intern,
 * otherwise only looked up (p->missing when some are not there). */
static int read_path(vv_ctx *vc, json_t *j, const char *jpath, bool intern,
                     dmm__live_path *p, dmm__live_err *e)
{
    if (!json_is_string(j))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, jpath,
                                 "a path must be a string of labels joined "
                                 "by '/'");
    const char *s = json_string_value(j);
    size_t len = json_string_length(j);
    dmm_error err;
    dmm_error_clear(&err);
    int rc;
    if (intern) {
        rc = dmm_path_parse(vc, s, len, p->label, DMM__LIVE_MAX_PARTS, &p->n,
                            &p->scalar, &err);
    } else {
        /* Counted first: a label interned during the lookup is found by the
         * next dmm__live_path_resolve. */
        p->seen = vv_label_count(vc);
        rc = dmm_path_lookup(vc, s, len, p->label, DMM__LIVE_MAX_PARTS, &p->n,
                             &p->scalar, &err);
        p->missing = rc == DMM_E_NOTFOUND;
        if (p->missing)
            rc = 0;
    }
    if (rc < 0) {
        if (rc == DMM_E_NOMEM)
            return dmm__live_err_set(e, DMM__LIVE_E_INTERNAL, jpath,
                                     "out of memory");
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_PATH, jpath, "%s",
                                 err.text);
    }
    p->text = malloc(len + 1);
    if (!p->text)
        return dmm__live_err_set(e, DMM__LIVE_E_INTERNAL, jpath,
                                 "out of memory");
    memcpy(p->text, s, len + 1);
    return 0;
}

static int alloc_paths(dmm__live_req *req, size_t n, dmm__live_err *e)
{
    req->paths = calloc(n, sizeof *req->paths);
    if (!req->paths)
        return dmm__live_err_set(e, DMM__LIVE_E_INTERNAL, "", "out of memory");
    req->npaths = n;
    return 0;
}

static int read_value(vv_ctx *vc, json_t *j, const char *key, vv *out,
                      dmm__live_err *e)
{
    char path[64];
    member_path(path, sizeof path, key);
    dmm_error err;
    dmm_error_clear(&err);
    int rc = vv_from_json(vc, j, path, out, &err);
    if (rc < 0)
        return dmm__live_err_set(
            e, rc == DMM_E_NOMEM ? DMM__LIVE_E_INTERNAL : DMM__LIVE_E_BAD_VALUE,
            err.path, "%s", err.text);
    return 0;
}

/* ---- the operations' parsers (j: an object whose fields are all allowed)
 * ----------------------------------------------------------------------- */

#define PARSER(name)                                                           \
    static int parse_##name(vv_ctx *vc, json_t *j, dmm__live_req *req,         \
                            dmm__live_err *e)

/* Ops that take no field. */
#define parse_status   parse_none
#define parse_pause    parse_none
#define parse_resume   parse_none
#define parse_snapshot parse_none
#define parse_undo     parse_none
#define parse_shutdown parse_none
PARSER(none)
{
    (void)vc, (void)j, (void)req, (void)e;
    return 0;
}

static int keep_string(const char *s, char **out, dmm__live_err *e)
{
    *out = strdup(s);
    return *out ? 0
                : dmm__live_err_set(e, DMM__LIVE_E_INTERNAL, "",
                                    "out of memory");
}

PARSER(hello)
{
    (void)vc;
    json_t *f;
    const char *s;
    int rc;
    if (!(f = json_object_get(j, "token")))
        return 0;
    if ((rc = read_string(f, "token", &s, e)) < 0)
        return rc;
    return keep_string(s, &req->text, e);
}

PARSER(step)
{
    (void)vc;
    json_t *f;
    req->n = 1;
    if ((f = json_object_get(j, "n")))
        return read_count(f, "n", 1, DMM__LIVE_MAX_STEP, &req->n, e);
    return 0;
}

PARSER(rate)
{
    (void)vc;
    json_t *f;
    if (!(f = json_object_get(j, "hz")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/hz",
                                 "missing field");
    if (json_is_string(f) && !strcmp(json_string_value(f), "max")) {
        req->num = 0;
        return 0;
    }
    if (!json_is_number(f) || !(json_number_value(f) > 0) ||
        json_number_value(f) > 1e9)
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/hz",
                                 "must be a number of cycles per second "
                                 "(above 0, at most 1e9) or \"max\"");
    req->num = json_number_value(f);
    return 0;
}

/* get and set: one path; set interns it (it may create the weight). */
static int read_one_path(vv_ctx *vc, json_t *j, dmm__live_req *req, bool intern,
                         dmm__live_err *e)
{
    json_t *f;
    int rc;
    if (!(f = json_object_get(j, "path")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/path",
                                 "missing field");
    if ((rc = alloc_paths(req, 1, e)) < 0)
        return rc;
    return read_path(vc, f, "/path", intern, &req->paths[0], e);
}

PARSER(get)
{
    return read_one_path(vc, j, req, false, e);
}

PARSER(set)
{
    json_t *f;
    int rc = read_one_path(vc, j, req, true, e);
    if (rc < 0)
        return rc;
    /* Six labels, or nine: Self's output path first, so that the string
     * that gets a weight from the outputs also sets it (the server checks
     * the prefix; only it knows Self). */
    if (req->paths[0].n != 6 && req->paths[0].n != 9)
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_PATH, "/path",
                                 "\"%s\" has %zu labels%s; a weight is "
                                 "type/name/input/type/name/output, after "
                                 "Self's output path or alone",
                                 req->paths[0].text, req->paths[0].n,
                                 req->paths[0].scalar ? " before \":number\""
                                                      : "");
    if (!(f = json_object_get(j, "value")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/value",
                                 "missing field");
    if (!json_is_number(f))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_VALUE, "/value",
                                 "a weight must be a number");
    req->num = json_number_value(f);
    if (!isfinite(req->num))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_VALUE, "/value",
                                 "a weight must be finite");
    return 0;
}

PARSER(edit)
{
    json_t *f;
    if (!(f = json_object_get(j, "delta")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/delta",
                                 "missing field");
    return read_value(vc, f, "delta", &req->value, e);
}

PARSER(feed)
{
    json_t *f;
    const char *s;
    int rc = 0;
    if (!(f = json_object_get(j, "neuron")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/neuron",
                                 "missing field");
    if ((rc = read_string(f, "neuron", &s, e)) < 0)
        return rc;
    dmm_error err;
    dmm_error_clear(&err);
    if ((rc = dmm_feed_neuron(vc, s, strlen(s), "/neuron", &req->name, &err)) <
        0)
        return dmm__live_err_set(e,
                                 rc == DMM_E_NOMEM ? DMM__LIVE_E_INTERNAL
                                                   : DMM__LIVE_E_BAD_REQUEST,
                                 "/neuron", "%s", err.text);
    if (!(f = json_object_get(j, "outputs")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/outputs",
                                 "missing field");
    return read_value(vc, f, "outputs", &req->value, e);
}

PARSER(subscribe)
{
    json_t *f;
    int rc = 0;
    req->n = 1;
    if ((f = json_object_get(j, "every")) &&
        (rc = read_count(f, "every", 1, UINT32_MAX, &req->n, e)) < 0)
        return rc;
    if ((f = json_object_get(j, "changes"))) {
        if (!json_is_boolean(f))
            return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/changes",
                                     "must be true or false");
        req->flag = json_is_true(f);
    }
    if ((f = json_object_get(j, "diff"))) {
        if (!json_is_boolean(f))
            return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/diff",
                                     "must be true or false");
        req->diff = json_is_true(f);
    }
    if (!(f = json_object_get(j, "paths")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/paths",
                                 "missing field");
    size_t n = json_array_size(f);
    if (!json_is_array(f) || n == 0 || n > DMM__LIVE_MAX_PATHS)
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/paths",
                                 "must be an array of 1 to %d paths",
                                 DMM__LIVE_MAX_PATHS);
    if ((rc = alloc_paths(req, n, e)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char jp[32];
        snprintf(jp, sizeof jp, "/paths/%zu", i);
        if ((rc = read_path(vc, json_array_get(f, i), jp, false, &req->paths[i],
                            e)) < 0)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(req->paths[k].text, req->paths[i].text))
                return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, jp,
                                         "\"%s\" is already in paths",
                                         req->paths[i].text);
    }
    return 0;
}

PARSER(unsubscribe)
{
    (void)vc;
    json_t *f;
    req->n = 0; /* all */
    if ((f = json_object_get(j, "subscription")))
        return read_count(f, "subscription", 1, UINT32_MAX, &req->n, e);
    return 0;
}

PARSER(save)
{
    (void)vc;
    json_t *f;
    const char *s;
    int rc;
    if (!(f = json_object_get(j, "file")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/file",
                                 "missing field");
    if ((rc = read_string(f, "file", &s, e)) < 0)
        return rc;
    if (!*s)
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/file",
                                 "must not be empty");
    return keep_string(s, &req->text, e);
}

PARSER(load)
{
    (void)vc;
    const char *s;
    int rc;
    json_t *net = json_object_get(j, "network");
    json_t *st = json_object_get(j, "state");
    json_t *file = json_object_get(j, "file");
    if ((net != NULL) + (st != NULL) + (file != NULL) != 1)
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "",
                                 "give exactly one of \"network\", "
                                 "\"state\" or \"file\"");
    if (file) {
        if ((rc = read_string(file, "file", &s, e)) < 0)
            return rc;
        req->text = strdup(s);
    } else {
        json_t *d = net ? net : st;
        if (!json_is_object(d))
            return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST,
                                     net ? "/network" : "/state",
                                     "must be a JSON object");
        req->doc_state = st != NULL;
        req->doc = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(17));
    }
    return req->text || req->doc ? 0
                                 : dmm__live_err_set(e, DMM__LIVE_E_INTERNAL,
                                                     "", "out of memory");
}

/* A member as compact JSON text in req->doc (numbers kept exactly). */
static int keep_json(json_t *f, dmm__live_req *req, dmm__live_err *e)
{
    req->doc =
        json_dumps(f, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    return req->doc ? 0
                    : dmm__live_err_set(e, DMM__LIVE_E_INTERNAL, "",
                                        "out of memory");
}

/* modulate and position: the shape of the request only; the engine checks
 * the modulation or position against the network when it is applied (and
 * interns its labels then, so a refused one leaves none). */
PARSER(modulate)
{
    (void)vc;
    json_t *f;
    const char *s;
    int rc;
    if (!(f = json_object_get(j, "action")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/action",
                                 "missing field");
    if ((rc = read_string(f, "action", &s, e)) < 0)
        return rc;
    if (strcmp(s, "add") && strcmp(s, "remove") && strcmp(s, "change"))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/action",
                                 "must be \"add\", \"remove\" or \"change\"");
    if ((rc = keep_string(s, &req->text, e)) < 0)
        return rc;
    if (!(f = json_object_get(j, "modulation")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/modulation",
                                 "missing field");
    return keep_json(f, req, e);
}

PARSER(position)
{
    (void)vc;
    json_t *f;
    const char *s;
    int rc;
    if (!(f = json_object_get(j, "neuron")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/neuron",
                                 "missing field");
    if ((rc = read_string(f, "neuron", &s, e)) < 0 ||
        (rc = keep_string(s, &req->text, e)) < 0)
        return rc;
    if (!(f = json_object_get(j, "at")))
        return dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/at",
                                 "missing field ([x], [x, y], or null to "
                                 "remove the position)");
    return keep_json(f, req, e);
}

int dmm__live_parse(vv_ctx *vc, const char *line, size_t len,
                    dmm__live_req *req, dmm__live_err *e)
{
    memset(req, 0, sizeof *req);
    req->value = VV_ZERO;
    dmm_error jerr;
    dmm_error_clear(&jerr);
    json_t *j = vv_json_load(line, len, "<request>", &jerr);
    if (!j)
        return dmm__live_err_set(e, DMM__LIVE_E_MALFORMED, jerr.path,
                                 "invalid JSON at column %d: %s", jerr.column,
                                 jerr.text);
    int rc;
    if (!json_is_object(j)) {
        rc = dmm__live_err_set(e, DMM__LIVE_E_MALFORMED, "",
                               "a request must be a JSON object");
        goto done;
    }
    json_t *id = json_object_get(j, "id");
    if (id && (rc = read_id(id, req, e)) < 0)
        goto done;
    json_t *op = json_object_get(j, "op");
    if (!op) {
        rc = dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, "/op",
                               "missing field");
        goto done;
    }
    const char *name = json_is_string(op) ? json_string_value(op) : NULL;
    size_t k = 0;
    while (name && k < DMM__OP_COUNT && strcmp(dmm__live_ops[k].name, name))
        k++;
    if (!name || k == DMM__OP_COUNT) {
        rc = dmm__live_err_set(e, DMM__LIVE_E_UNKNOWN_OP, "/op",
                               name ? "unknown op \"%.64s\"" : "%s",
                               name ? name : "op must be a string");
        goto done;
    }
    req->op = (enum dmm__live_op)k;
    const char *key;
    json_t *val;
    json_object_foreach(j, key, val)
    {
        if (!field_allowed(req->op, key)) {
            char path[128];
            member_path(path, sizeof path, key);
            rc = dmm__live_err_set(e, DMM__LIVE_E_BAD_REQUEST, path,
                                   "unknown field for op \"%s\"", name);
            goto done;
        }
    }
    rc = dmm__live_ops[req->op].parse(vc, j, req, e);
done:
    json_decref(j);
    if (rc < 0) {
        char id_keep[sizeof req->id];
        memcpy(id_keep, req->id, sizeof id_keep);
        dmm__live_req_free(vc, req);
        memcpy(req->id, id_keep, sizeof id_keep);
    }
    return rc;
}

void dmm__live_req_free(vv_ctx *vc, dmm__live_req *req)
{
    for (size_t i = 0; i < req->npaths; i++)
        free(req->paths[i].text);
    free(req->paths);
    vv_free(vc, req->value);
    free(req->text);
    free(req->doc);
    memset(req, 0, sizeof *req);
    req->value = VV_ZERO;
}

bool dmm__live_path_resolve(vv_ctx *vc, dmm__live_path *p)
{
    if (!p->missing)
        return true;
    size_t count = vv_label_count(vc);
    if (count == p->seen)
        return false; /* no label added since: still not there */
    size_t n;
    dmm_error err;
    dmm_error_clear(&err);
    /* The text was well formed when parsed, so only found or not found. */
    int rc = dmm_path_lookup(vc, p->text, strlen(p->text), p->label,
                             DMM__LIVE_MAX_PARTS, &n, &p->scalar, &err);
    if (rc == 0)
        p->missing = false;
    else if (rc == DMM_E_NOTFOUND)
        p->seen = count; /* out of memory: try again next time */
    return !p->missing;
}

int dmm__live_reply_begin(vv_buf *b, const char *id)
{
    if (id && id[0])
        return vv_buf_printf(b, "{\"id\": %s, \"ok\": true", id);
    return vv_buf_append(b, "{\"ok\": true", 11);
}

int dmm__live_reply_error(vv_buf *b, const char *id, const dmm__live_err *e)
{
    int rc = id && id[0] ? vv_buf_printf(b, "{\"id\": %s, ", id)
                         : vv_buf_append(b, "{", 1);
    if (!rc)
        rc = vv_buf_printf(b,
                           "\"ok\": false, \"error\": {\"code\": \"%s\", "
                           "\"message\": ",
                           dmm__live_code_name(e->code));
    if (!rc)
        rc = vv_buf_json_string(b, e->err.text, strlen(e->err.text));
    if (!rc)
        rc = vv_buf_append(b, ", \"path\": ", 10);
    if (!rc)
        rc = vv_buf_json_string(b, e->err.path, strlen(e->err.path));
    if (!rc)
        rc = vv_buf_append(b, "}}\n", 3);
    return rc;
}

/* The operations: one row each, from DMM__LIVE_OPS. */
const dmm__live_op_desc dmm__live_ops[DMM__OP_COUNT] = {
#define OP_ROW(id, name, fields)                                               \
    [DMM__OP_##id] = {#name, fields, parse_##name, dmm__live_handle_##name},
    DMM__LIVE_OPS(OP_ROW)
#undef OP_ROW
};
