// SPDX-License-Identifier: MIT
/*
 * Parsing and checking of live protocol requests (docs/protocol.md). Pure:
 * a line in, a dmm__live_req or an error out; no network is read or changed
 * here (that is the server's job at the cycle boundary). Every field is
 * checked for presence, type and range, and unknown fields are refused, so a
 * typo never passes as a default.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "live_protocol.h"

static const char *const op_names[] = {
    [DMM__OP_HELLO] = "hello",
    [DMM__OP_STATUS] = "status",
    [DMM__OP_PAUSE] = "pause",
    [DMM__OP_RESUME] = "resume",
    [DMM__OP_STEP] = "step",
    [DMM__OP_RATE] = "rate",
    [DMM__OP_GET] = "get",
    [DMM__OP_EDIT] = "edit",
    [DMM__OP_SET] = "set",
    [DMM__OP_FEED] = "feed",
    [DMM__OP_SUBSCRIBE] = "subscribe",
    [DMM__OP_UNSUBSCRIBE] = "unsubscribe",
    [DMM__OP_SNAPSHOT] = "snapshot",
    [DMM__OP_SAVE] = "save",
    [DMM__OP_LOAD] = "load",
    [DMM__OP_SHUTDOWN] = "shutdown",
};
#define N_OPS (sizeof op_names / sizeof op_names[0])

/* The fields each op takes besides "id" and "op", space-separated. */
static const char *const op_fields[] = {
    [DMM__OP_HELLO] = "token",
    [DMM__OP_STATUS] = "",
    [DMM__OP_PAUSE] = "",
    [DMM__OP_RESUME] = "",
    [DMM__OP_STEP] = "n",
    [DMM__OP_RATE] = "hz",
    [DMM__OP_GET] = "path",
    [DMM__OP_EDIT] = "delta",
    [DMM__OP_SET] = "path value",
    [DMM__OP_FEED] = "neuron outputs",
    [DMM__OP_SUBSCRIBE] = "paths every changes",
    [DMM__OP_UNSUBSCRIBE] = "subscription",
    [DMM__OP_SNAPSHOT] = "",
    [DMM__OP_SAVE] = "file",
    [DMM__OP_LOAD] = "network state file",
    [DMM__OP_SHUTDOWN] = "",
};

const char *dmm__live_op_name(enum dmm__live_op op)
{
    return (size_t)op < N_OPS ? op_names[op] : "?";
}

int dmm__live_err_set(dmm__live_err *e, const char *code, const char *path,
                      const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    va_start(ap, fmt);
    int n = vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof e->message)
        memcpy(e->message + sizeof e->message - 4, "...", 4);
    return DMM_E_INVAL;
}

static bool field_allowed(enum dmm__live_op op, const char *key)
{
    if (!strcmp(key, "id") || !strcmp(key, "op"))
        return true;
    const char *f = op_fields[op];
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
        if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
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
    return dmm__live_err_set(e, "bad-request", "/id",
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
        return dmm__live_err_set(
            e, "bad-request", path, "must be an integer from %llu to %llu",
            (unsigned long long)lo, (unsigned long long)hi);
    *out = (uint64_t)v;
    return 0;
}

static int read_string(json_t *j, const char *key, const char **out,
                       dmm__live_err *e)
{
    char path[64];
    member_path(path, sizeof path, key);
    if (!json_is_string(j))
        return dmm__live_err_set(e, "bad-request", path, "must be a string");
    if (strlen(json_string_value(j)) != json_string_length(j))
        return dmm__live_err_set(e, "bad-request", path,
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
        return dmm__live_err_set(e, "bad-request", jpath,
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
            return dmm__live_err_set(e, "internal", jpath, "out of memory");
        return dmm__live_err_set(e, "bad-path", jpath, "%s", err.text);
    }
    p->text = malloc(len + 1);
    if (!p->text)
        return dmm__live_err_set(e, "internal", jpath, "out of memory");
    memcpy(p->text, s, len + 1);
    return 0;
}

static int alloc_paths(dmm__live_req *req, size_t n, dmm__live_err *e)
{
    req->paths = calloc(n, sizeof *req->paths);
    if (!req->paths)
        return dmm__live_err_set(e, "internal", "", "out of memory");
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
        return dmm__live_err_set(e,
                                 rc == DMM_E_NOMEM ? "internal" : "bad-value",
                                 err.path, "%s", err.text);
    return 0;
}

/* The op-specific part; j is an object whose fields are all allowed. */
static int parse_op(vv_ctx *vc, json_t *j, dmm__live_req *req, dmm__live_err *e)
{
    json_t *f;
    const char *s;
    int rc = 0;
    switch (req->op) {
    case DMM__OP_STATUS:
    case DMM__OP_PAUSE:
    case DMM__OP_RESUME:
    case DMM__OP_SNAPSHOT:
    case DMM__OP_SHUTDOWN:
        return 0;
    case DMM__OP_HELLO:
        if (!(f = json_object_get(j, "token")))
            return 0;
        if ((rc = read_string(f, "token", &s, e)) < 0)
            return rc;
        req->text = strdup(s);
        return req->text
                   ? 0
                   : dmm__live_err_set(e, "internal", "", "out of memory");
    case DMM__OP_STEP:
        req->n = 1;
        if ((f = json_object_get(j, "n")))
            return read_count(f, "n", 1, DMM__LIVE_MAX_STEP, &req->n, e);
        return 0;
    case DMM__OP_RATE:
        if (!(f = json_object_get(j, "hz")))
            return dmm__live_err_set(e, "bad-request", "/hz", "missing field");
        if (json_is_string(f) && !strcmp(json_string_value(f), "max")) {
            req->num = 0;
            return 0;
        }
        if (!json_is_number(f) || !(json_number_value(f) > 0) ||
            json_number_value(f) > 1e9)
            return dmm__live_err_set(e, "bad-request", "/hz",
                                     "must be a number of cycles per second "
                                     "(above 0, at most 1e9) or \"max\"");
        req->num = json_number_value(f);
        return 0;
    case DMM__OP_GET:
    case DMM__OP_SET:
        if (!(f = json_object_get(j, "path")))
            return dmm__live_err_set(e, "bad-request", "/path",
                                     "missing field");
        if ((rc = alloc_paths(req, 1, e)) < 0 ||
            (rc = read_path(vc, f, "/path", req->op == DMM__OP_SET,
                            &req->paths[0], e)) < 0)
            return rc;
        if (req->op == DMM__OP_GET)
            return 0;
        if (req->paths[0].n != 6)
            return dmm__live_err_set(
                e, "bad-path", "/path",
                "\"%s\" has %zu labels%s; a weight is "
                "type/name/input/type/name/output",
                req->paths[0].text, req->paths[0].n,
                req->paths[0].scalar ? " before \":number\"" : "");
        if (!(f = json_object_get(j, "value")))
            return dmm__live_err_set(e, "bad-request", "/value",
                                     "missing field");
        if (!json_is_number(f))
            return dmm__live_err_set(e, "bad-value", "/value",
                                     "a weight must be a number");
        req->num = json_number_value(f);
        if (!isfinite(req->num))
            return dmm__live_err_set(e, "bad-value", "/value",
                                     "a weight must be finite");
        return 0;
    case DMM__OP_EDIT:
        if (!(f = json_object_get(j, "delta")))
            return dmm__live_err_set(e, "bad-request", "/delta",
                                     "missing field");
        return read_value(vc, f, "delta", &req->value, e);
    case DMM__OP_FEED: {
        if (!(f = json_object_get(j, "neuron")))
            return dmm__live_err_set(e, "bad-request", "/neuron",
                                     "missing field");
        if ((rc = read_string(f, "neuron", &s, e)) < 0)
            return rc;
        dmm_error err;
        dmm_error_clear(&err);
        if ((rc = dmm__feed_neuron(vc, s, strlen(s), "/neuron", &req->name,
                                   &err)) < 0)
            return dmm__live_err_set(
                e, rc == DMM_E_NOMEM ? "internal" : "bad-request", "/neuron",
                "%s", err.text);
        if (!(f = json_object_get(j, "outputs")))
            return dmm__live_err_set(e, "bad-request", "/outputs",
                                     "missing field");
        return read_value(vc, f, "outputs", &req->value, e);
    }
    case DMM__OP_SUBSCRIBE: {
        req->n = 1;
        if ((f = json_object_get(j, "every")) &&
            (rc = read_count(f, "every", 1, UINT32_MAX, &req->n, e)) < 0)
            return rc;
        if ((f = json_object_get(j, "changes"))) {
            if (!json_is_boolean(f))
                return dmm__live_err_set(e, "bad-request", "/changes",
                                         "must be true or false");
            req->flag = json_is_true(f);
        }
        if (!(f = json_object_get(j, "paths")))
            return dmm__live_err_set(e, "bad-request", "/paths",
                                     "missing field");
        size_t n = json_array_size(f);
        if (!json_is_array(f) || n == 0 || n > DMM__LIVE_MAX_PATHS)
            return dmm__live_err_set(e, "bad-request", "/paths",
                                     "must be an array of 1 to %d paths",
                                     DMM__LIVE_MAX_PATHS);
        if ((rc = alloc_paths(req, n, e)) < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            char jp[32];
            snprintf(jp, sizeof jp, "/paths/%zu", i);
            if ((rc = read_path(vc, json_array_get(f, i), jp, false,
                                &req->paths[i], e)) < 0)
                return rc;
            for (size_t k = 0; k < i; k++)
                if (!strcmp(req->paths[k].text, req->paths[i].text))
                    return dmm__live_err_set(e, "bad-request", jp,
                                             "\"%s\" is already in paths",
                                             req->paths[i].text);
        }
        return 0;
    }
    case DMM__OP_UNSUBSCRIBE:
        req->n = 0; /* all */
        if ((f = json_object_get(j, "subscription")))
            return read_count(f, "subscription", 1, UINT32_MAX, &req->n, e);
        return 0;
    case DMM__OP_SAVE:
        if (!(f = json_object_get(j, "file")))
            return dmm__live_err_set(e, "bad-request", "/file",
                                     "missing field");
        if ((rc = read_string(f, "file", &s, e)) < 0)
            return rc;
        if (!*s)
            return dmm__live_err_set(e, "bad-request", "/file",
                                     "must not be empty");
        req->text = strdup(s);
        return req->text
                   ? 0
                   : dmm__live_err_set(e, "internal", "", "out of memory");
    case DMM__OP_LOAD: {
        json_t *net = json_object_get(j, "network");
        json_t *st = json_object_get(j, "state");
        json_t *file = json_object_get(j, "file");
        if ((net != NULL) + (st != NULL) + (file != NULL) != 1)
            return dmm__live_err_set(e, "bad-request", "",
                                     "give exactly one of \"network\", "
                                     "\"state\" or \"file\"");
        if (file) {
            if ((rc = read_string(file, "file", &s, e)) < 0)
                return rc;
            req->text = strdup(s);
        } else {
            json_t *d = net ? net : st;
            if (!json_is_object(d))
                return dmm__live_err_set(e, "bad-request",
                                         net ? "/network" : "/state",
                                         "must be a JSON object");
            req->doc_state = st != NULL;
            req->doc = json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(17));
        }
        return req->text || req->doc
                   ? 0
                   : dmm__live_err_set(e, "internal", "", "out of memory");
    }
    }
    return dmm__live_err_set(e, "unknown-op", "/op", "unknown op");
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
        return dmm__live_err_set(e, "malformed", jerr.path,
                                 "invalid JSON at column %d: %s", jerr.column,
                                 jerr.text);
    int rc;
    if (!json_is_object(j)) {
        rc = dmm__live_err_set(e, "malformed", "",
                               "a request must be a JSON object");
        goto done;
    }
    json_t *id = json_object_get(j, "id");
    if (id && (rc = read_id(id, req, e)) < 0)
        goto done;
    json_t *op = json_object_get(j, "op");
    if (!op) {
        rc = dmm__live_err_set(e, "bad-request", "/op", "missing field");
        goto done;
    }
    const char *name = json_is_string(op) ? json_string_value(op) : NULL;
    size_t k = 0;
    while (name && k < N_OPS && strcmp(op_names[k], name) != 0)
        k++;
    if (!name || k == N_OPS) {
        rc = dmm__live_err_set(e, "unknown-op", "/op",
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
            rc = dmm__live_err_set(e, "bad-request", path,
                                   "unknown field for op \"%s\"", name);
            goto done;
        }
    }
    rc = parse_op(vc, j, req, e);
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
                           e->code);
    if (!rc)
        rc = vv_buf_json_string(b, e->message, strlen(e->message));
    if (!rc)
        rc = vv_buf_append(b, ", \"path\": ", 10);
    if (!rc)
        rc = vv_buf_json_string(b, e->path, strlen(e->path));
    if (!rc)
        rc = vv_buf_append(b, "}}\n", 3);
    return rc;
}
