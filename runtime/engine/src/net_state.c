// SPDX-License-Identifier: MIT
/*
 * Saving and restoring the whole state of a network as one JSON document.
 * The label table is saved in id order and interned first on restore, so a
 * restored network sums in the same order and continues bit-identically.
 * A restored network passes the same checks as a loaded one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "net_internal.h"

/* ---- save --------------------------------------------------------------- */

static int put_path(const dmm_net *net, const vv_label *path, size_t n,
                    vv_buf *b)
{
    vv_buf s = {0};
    int rc = dmm_path_write(net->vc, path, n, &s);
    if (!rc)
        rc = vv_buf_json_string(b, s.data ? s.data : "", s.len);
    free(s.data);
    return rc;
}

int dmm_net_save_buf(const dmm_net *net, vv_buf *b)
{
    int rc = vv_buf_printf(
        b, "{\"dmm-state\": 1,\n\"step\": %" PRIu64 ",\n\"self\": ", net->t);
    if (!rc)
        rc = put_path(net, net->self, 3, b);
    if (!rc)
        rc = vv_buf_printf(b, ",\n\"labels\": [");
    size_t nl = vv_label_count(net->vc);
    for (size_t k = 0; k < nl && !rc; k++) {
        size_t len;
        const char *s = vv_label_str(net->vc, (vv_label)k, &len);
        if (k > 0)
            rc = vv_buf_append(b, ",", 1);
        if (!rc)
            rc = vv_buf_json_string(b, s, len);
    }
    if (!rc)
        rc = vv_buf_printf(b, "],\n\"outputs\": ");
    if (!rc)
        rc = dmm__y_make((dmm_net *)net); /* a cache: Y is not changed */
    if (!rc)
        rc = vv_write(net->vc, net->y, b);
    if (!rc)
        rc = vv_buf_printf(b, ",\n\"states\": ");
    if (!rc)
        rc = dmm__states_make((dmm_net *)net); /* a cache as Y is */
    if (!rc)
        rc = vv_write(net->vc, net->states, b);
    if (!rc)
        rc = vv_buf_printf(b, ",\n\"params\": ");
    if (!rc)
        rc = vv_write(net->vc, net->params, b);
    if (!rc)
        rc = vv_buf_printf(b, ",\n\"queues\": {");
    bool first = true;
    for (const dmm__queue *q = net->queues; q && !rc; q = q->hh.next) {
        if (q->head == q->len)
            continue;
        vv_label key[2] = {net->input_type, q->name};
        if (!first)
            rc = vv_buf_append(b, ",\n", 2);
        first = false;
        if (!rc)
            rc = put_path(net, key, 2, b);
        if (!rc)
            rc = vv_buf_append(b, ": [", 3);
        for (size_t k = q->head; k < q->len && !rc; k++) {
            if (k > q->head)
                rc = vv_buf_append(b, ", ", 2);
            if (!rc)
                rc = vv_write(net->vc, q->items[k], b);
        }
        if (!rc)
            rc = vv_buf_append(b, "]", 1);
    }
    if (!rc)
        rc = vv_buf_append(b, "}", 1);
    if (!rc)
        rc = dmm__fields_write(net, b); /* fields (net_fields.c) */
    if (!rc)
        rc = vv_buf_printf(b,
                           ",\n\"rng\": [\"%" PRIu64 "\", \"%" PRIu64
                           "\", \"%" PRIu64 "\", \"%" PRIu64 "\"]}\n",
                           net->rng[0], net->rng[1], net->rng[2], net->rng[3]);
    return rc;
}

static int io_fail(dmm_error *err, const char *filename, const char *what)
{
    int rc = dmm_error_set(err, DMM_E_IO, "", "%s: %s", what, strerror(errno));
    dmm_error_set_source(err, filename);
    return rc;
}

/* Make a rename durable: best effort, as not every file system allows it. */
static void sync_dir(const char *filename)
{
    const char *slash = strrchr(filename, '/');
    char *dir =
        slash ? strndup(filename, (size_t)(slash - filename + 1)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int dmm_net_save_file(const dmm_net *net, const char *filename, dmm_error *err)
{
    dmm_error_clear(err);
    vv_buf b = {0};
    int rc = dmm_net_save_buf(net, &b);
    size_t n = strlen(filename);
    char *tmp = rc ? NULL : dmm__alloc(net->vc, n + 5);
    if (!tmp) {
        free(b.data);
        rc = rc ? rc : DMM_E_NOMEM;
        return dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    }
    memcpy(tmp, filename, n);
    memcpy(tmp + n, ".tmp", 5);
    /* Write beside the target, flush, then rename over it: a reader sees
     * the old file or the new one, never a part. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = io_fail(err, filename, "cannot create the temporary file");
        goto done;
    }
    for (size_t off = 0; off < b.len;) {
        ssize_t w = write(fd, b.data + off, b.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = io_fail(err, filename, "write error");
            break;
        }
        off += (size_t)w;
    }
    if (!rc && fsync(fd) != 0)
        rc = io_fail(err, filename, "cannot flush");
    if (close(fd) != 0 && !rc)
        rc = io_fail(err, filename, "cannot close");
    if (!rc && rename(tmp, filename) != 0)
        rc = io_fail(err, filename, "cannot rename the temporary file");
    if (rc)
        unlink(tmp);
    else
        sync_dir(filename);
done:
    dmm__free(net->vc, tmp, n + 5);
    free(b.data);
    return rc;
}

/* ---- restore ------------------------------------------------------------ */

static const dmm__doc_kind state_doc = {
    "a state file",
    {"dmm-state", "step", "self", "labels", "outputs", "states", "params",
     "queues", "rng", "positions", "modulations", NULL},
    "not a dmm state file (no \"dmm-state\")",
    "state"};

static int bad(dmm_error *err, const char *path, const char *text)
{
    return dmm_error_set(err, DMM_E_INVAL, path, "%s", text);
}

static int read_u64(const json_t *j, uint64_t *out)
{
    const char *s = json_is_string(j) ? json_string_value(j) : NULL;
    if (!s || !*s || json_string_length(j) > 20)
        return DMM_E_INVAL;
    uint64_t x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return DMM_E_INVAL;
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return DMM_E_INVAL;
        x = 10 * x + d;
    }
    *out = x;
    return 0;
}

static int read_vv(dmm_net *net, const json_t *root, const char *key,
                   bool required, vv *out, dmm_error *err)
{
    const json_t *j = json_object_get(root, key);
    char path[64];
    snprintf(path, sizeof path, "/%s", key);
    if (!j) {
        if (!required)
            return 0;
        return dmm_error_set(err, DMM_E_INVAL, "", "missing member \"%s\"",
                             key);
    }
    return vv_from_json(net->vc, j, path, out, err);
}

static int read_queues(dmm_net *net, const json_t *qs, dmm_error *err)
{
    if (!json_is_object(qs))
        return bad(err, "/queues", "queues must be an object");
    const char *key;
    json_t *items;
    json_object_foreach((json_t *)qs, key, items)
    {
        char path[600] = "/queues";
        (void)dmm_json_pointer_push(path, sizeof path, key, strlen(key));
        vv_label tn[2];
        size_t n;
        int rc =
            dmm_path_parse(net->vc, key, strlen(key), tn, 2, &n, NULL, err);
        if (rc == DMM_E_NOMEM)
            return rc;
        if (rc || n != 2 || tn[0] != net->input_type)
            return bad(err, path, "a queue is named \"input/NAME\"");
        if (!json_is_array(items))
            return bad(err, path, "a queue must be an array of output maps");
        for (size_t k = 0; k < json_array_size(items); k++) {
            char ip[620];
            snprintf(ip, sizeof ip, "%s/%zu", path, k);
            vv v;
            if ((rc = vv_from_json(net->vc, json_array_get(items, k), ip, &v,
                                   err)) ||
                (rc = dmm__queue_push(net, tn[1], v)))
                return rc == DMM_E_NOMEM
                           ? dmm_error_set(err, rc, ip, "%s", dmm_strerror(rc))
                           : rc;
        }
    }
    return 0;
}

static int restore_root(vv_ctx *vc, const dmm_registry *reg, const json_t *root,
                        const char *source, dmm_net **out, dmm_error *err)
{
    (void)source; /* a state file names no other file */
    int rc = dmm__check_header(root, &state_doc, err);
    if (rc)
        return rc;
    const json_t *j;

    /* Labels first, so that they get the ids they had when saved. */
    j = json_object_get(root, "labels");
    if (!json_is_array(j))
        return bad(err, "/labels", "labels must be an array of strings");
    for (size_t k = 0; k < json_array_size(j); k++) {
        const json_t *s = json_array_get(j, k);
        char path[64];
        snprintf(path, sizeof path, "/labels/%zu", k);
        vv_label l;
        if (!json_is_string(s))
            return bad(err, path, "a label must be a string");
        int rc = vv_intern(vc, json_string_value(s), json_string_length(s), &l);
        if (rc && json_string_length(s) == sizeof VV_NUMBER_KEY - 1 &&
            !memcmp(json_string_value(s), VV_NUMBER_KEY, json_string_length(s)))
            return bad(err, path,
                       "\":number\" is a node's scalar part, not a label");
        if (rc)
            return dmm_error_set(err, rc, path, "bad label: %s",
                                 dmm_strerror(rc));
    }

    dmm_net *net = dmm__net_new(vc, reg);
    if (!net)
        return dmm_error_set(err, DMM_E_NOMEM, "", "%s",
                             dmm_strerror(DMM_E_NOMEM));
    rc = 0;
    size_t n = 0;
    if (!json_is_string(j = json_object_get(root, "self")) ||
        (rc = dmm_path_parse(vc, json_string_value(j), json_string_length(j),
                             net->self, 3, &n, NULL, err)) ||
        n != 3) {
        if (rc != DMM_E_NOMEM) /* out of memory is not a bad file */
            rc = bad(err, "/self", "self must be \"type/name/output\"");
        goto fail;
    }
    if (!dmm__self_resolve(net)) {
        rc = bad(err, "/self", "unknown neuron type");
        goto fail;
    }
    j = json_object_get(root, "step");
    double t = json_is_number(j) ? json_number_value(j) : -1;
    if (!(t >= 0 && t <= VV_MAX_EXACT_INT && t == floor(t))) {
        rc = bad(err, "/step", "step must be a non-negative integer");
        goto fail;
    }
    net->t = (uint64_t)t;

    if ((rc = read_vv(net, root, "outputs", true, &net->y, err)) ||
        (rc = dmm__check_neuron_map(net, net->y, "/outputs", "outputs", err)))
        goto fail;
    {
        char path[600] = "/outputs";
        for (int k = 0; k < 3; k++) {
            size_t len;
            const char *s = vv_label_str(vc, net->self[k], &len);
            (void)dmm_json_pointer_push(path, sizeof path, s, len);
        }
        if ((rc = dmm__check_matrix(net, dmm__matrix_of(net, net->y), VV_ZERO,
                                    path, err)))
            goto fail;
    }
    if ((rc = read_vv(net, root, "states", false, &net->states, err)) ||
        (rc = dmm__check_neuron_map(net, net->states, "/states", "states",
                                    err)) ||
        (rc = read_vv(net, root, "params", false, &net->params, err)) ||
        (rc = dmm__check_params(net, net->params, "/params", err)))
        goto fail;
    if ((j = json_object_get(root, "queues")) &&
        (rc = read_queues(net, j, err)))
        goto fail;
    if ((rc = dmm__fields_read(net, json_object_get(root, "positions"),
                               json_object_get(root, "modulations"),
                               dmm__matrix_of(net, net->y), err)))
        goto fail; /* fields (net_fields.c) */

    j = json_object_get(root, "rng");
    uint64_t any = 0;
    for (size_t k = 0; k < 4; k++) {
        if (!json_is_array(j) || json_array_size(j) != 4 ||
            read_u64(json_array_get(j, k), &net->rng[k])) {
            rc = bad(err, "/rng", "rng must be four decimal strings (uint64)");
            goto fail;
        }
        any |= net->rng[k];
    }
    if (!any) {
        rc = bad(err, "/rng", "an all-zero random state is not valid");
        goto fail;
    }
    *out = net;
    return 0;
fail:
    dmm_net_free(net);
    return rc;
}

int dmm_net_restore_text(vv_ctx *vc, const dmm_registry *reg, const char *text,
                         size_t len, const char *source, dmm_net **out,
                         dmm_error *err)
{
    return dmm__doc_text(vc, reg, text, len, source, "state", restore_root, out,
                         err);
}

int dmm_net_restore_file(vv_ctx *vc, const dmm_registry *reg,
                         const char *filename, dmm_net **out, dmm_error *err)
{
    return dmm__doc_file(vc, reg, filename, "state", restore_root, out, err);
}
