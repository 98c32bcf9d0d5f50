// SPDX-License-Identifier: MIT
/*
 * Script files for `dmm run --script`: JSON Lines, one edit or feed event per
 * line. Every line is parsed and checked before a run starts, so a run never
 * stops half-way on a malformed event. Steps are absolute cycle numbers; the
 * events come out sorted by (step, line), which keeps file order within a
 * step.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm_script.h"
#include "net_internal.h"

/* Fill err for a script line; returns code. */
static int line_error(dmm_error *err, const char *source, int line, int code,
                      const char *path, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int line_error(dmm_error *err, const char *source, int line, int code,
                      const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dmm_error_set(err, code, path, "%s", msg);
    dmm_error_set_source(err, source);
    if (err) {
        err->line = line;
        err->column = 0;
    }
    return code;
}

/* An error found inside an event's value (path already set): put it on the
 * script line. */
static int at_line(dmm_error *err, const char *source, int line, int code)
{
    dmm_error_set_source(err, source);
    if (err) {
        err->line = line;
        err->column = 0;
    }
    return code;
}

/* The member name of event j, or NULL with a "missing field" error. */
static json_t *required(json_t *j, const char *name, dmm_error *err,
                        const char *src, int line)
{
    json_t *v = json_object_get(j, name);
    if (!v) {
        char path[64];
        snprintf(path, sizeof path, "/%s", name);
        line_error(err, src, line, DMM_E_INVAL, path, "missing field");
    }
    return v;
}

int dmm_feed_neuron(vv_ctx *vc, const char *s, size_t len, const char *path,
                    vv_label *name, dmm_error *err)
{
    static const char input[] = "input/";
    vv_label l[2];
    size_t n = 0;
    /* The whole text first, only looked up: a bad one interns nothing. */
    int rc = dmm_path_lookup(vc, s, len, l, 2, &n, NULL, err);
    if (rc == DMM_E_NOTFOUND)
        rc = 0;
    if (!rc && n != 2)
        rc = dmm_error_set(err, DMM_E_INVAL, "", "\"%.*s\": expected TYPE/NAME",
                           (int)len, s);
    /* "input" has no character to escape, so this is its only spelling. */
    if (!rc && (len < sizeof input - 1 || memcmp(s, input, sizeof input - 1)))
        rc = dmm_error_set(err, DMM_E_INVAL, "",
                           "\"%.*s\" is not an input neuron (feed takes "
                           "\"input/NAME\")",
                           (int)len, s);
    if (!rc)
        rc = dmm_path_parse(vc, s + sizeof input - 1, len - (sizeof input - 1),
                            name, 1, &n, NULL, err);
    if (rc && err) {
        char text[sizeof err->text];
        snprintf(text, sizeof text, "%s", err->text);
        dmm_error_set(err, rc, path, "%s", text);
    }
    return rc;
}

static int push_event(vv_ctx *vc, dmm_script *s, size_t *cap,
                      const dmm_event *ev)
{
    if (s->n == *cap) {
        size_t ncap = *cap ? 2 * *cap : 16;
        dmm_event *p =
            vv_ctx_realloc(vc, s->ev, *cap * sizeof *p, ncap * sizeof *p);
        if (!p)
            return DMM_E_NOMEM;
        s->ev = p;
        *cap = ncap;
    }
    s->ev[s->n++] = *ev;
    return 0;
}

/* Each op's name and the fields it takes besides step and op. */
static const struct {
    const char *name, *fields[3];
} ops[] = {
    [DMM_EV_EDIT] = {"edit", {"delta"}},
    [DMM_EV_FEED] = {"feed", {"neuron", "outputs"}},
    [DMM_EV_MODULATE] = {"modulate", {"action", "modulation"}},
    [DMM_EV_POSITION] = {"position", {"neuron", "at"}},
    [DMM_EV_FIELDS] = {"fields", {"fields"}},
};
enum { NOPS = sizeof ops / sizeof ops[0] };

static bool field_allowed(const char *key, enum dmm_event_op op)
{
    if (!strcmp(key, "step") || !strcmp(key, "op"))
        return true;
    for (size_t k = 0; k < 3 && ops[op].fields[k]; k++)
        if (!strcmp(key, ops[op].fields[k]))
            return true;
    return false;
}

static void event_free(vv_ctx *vc, dmm_event *ev)
{
    vv_free(vc, ev->value);
    free(ev->neuron);
    free(ev->json);
    ev->value = VV_ZERO;
    ev->neuron = ev->json = NULL;
}

/* The field events' members: checked as the engine will check them
 * (labels interned in its order), kept as text for dmm_event_apply_fields. */
static int parse_fields_event(vv_ctx *vc, const char *src, int line, json_t *j,
                              dmm_event *ev, dmm_error *err)
{
    int rc = DMM_E_INVAL;
    json_t *a = NULL, *b = NULL;
    const char *what = "fields";
    if (ev->op == DMM_EV_MODULATE) {
        json_t *action = required(j, "action", err, src, line);
        if (!action)
            return rc;
        if (!json_is_string(action) || json_string_length(action) >= 8) {
            return line_error(err, src, line, rc, "/action",
                              "action must be add, remove or change");
        }
        snprintf(ev->action, sizeof ev->action, "%s",
                 json_string_value(action));
        what = ev->action;
        a = required(j, "modulation", err, src, line);
    } else if (ev->op == DMM_EV_POSITION) {
        what = "position";
        a = required(j, "neuron", err, src, line);
        b = a ? required(j, "at", err, src, line) : NULL;
        if (a && !b)
            return rc;
        if (a && !json_is_string(a))
            return line_error(err, src, line, rc, "/neuron",
                              "must be a string \"type/name\"");
    } else {
        a = required(j, "fields", err, src, line);
    }
    if (!a)
        return rc;
    if ((rc = dmm__fields_syntax(vc, what, a, b, err)) < 0)
        return at_line(err, src, line, rc);
    ev->json = json_dumps(b ? b : a, JSON_COMPACT | JSON_ENCODE_ANY |
                                         JSON_REAL_PRECISION(17));
    if (ev->op == DMM_EV_POSITION)
        ev->neuron = strdup(json_string_value(a));
    if (!ev->json || (ev->op == DMM_EV_POSITION && !ev->neuron)) {
        event_free(vc, ev);
        return line_error(err, src, line, DMM_E_NOMEM, "", "out of memory");
    }
    return 0;
}

int dmm_event_apply_fields(dmm_net *net, const dmm_event *ev, dmm_error *err)
{
    size_t len = strlen(ev->json);
    switch (ev->op) {
    case DMM_EV_MODULATE:
        return dmm_net_modulate(net, ev->action, ev->json, len, err);
    case DMM_EV_POSITION:
        return dmm_net_position_json(net, ev->neuron, ev->json, len, err);
    case DMM_EV_FIELDS:
        return dmm_net_fields_restore(net, ev->json, len, err);
    default:
        return dmm_error_set(err, DMM_E_INVAL, "/op", "not a field event");
    }
}

/* Parse one non-blank line into *ev (value owned on success). */
static int parse_line(vv_ctx *vc, const char *src, int line, const char *text,
                      size_t len, dmm_event *ev, dmm_error *err)
{
    dmm_error jerr;
    json_t *j = vv_json_load(text, len, src, &jerr);
    if (!j) {
        line_error(err, src, line, jerr.code, jerr.path, "invalid JSON: %s",
                   jerr.text);
        if (err)
            err->column = jerr.column;
        return jerr.code;
    }
    int rc = DMM_E_INVAL;
    if (!json_is_object(j)) {
        line_error(err, src, line, rc, "", "an event must be a JSON object");
        goto done;
    }
    json_t *op = required(j, "op", err, src, line);
    if (!op)
        goto done;
    size_t k = 0;
    while (json_is_string(op) && k < NOPS &&
           strcmp(json_string_value(op), ops[k].name))
        k++;
    if (!json_is_string(op) || k == NOPS) {
        line_error(err, src, line, rc, "/op",
                   "%s%s%s (expected edit, feed, modulate, position or "
                   "fields)",
                   json_is_string(op) ? "unknown op \"" : "must be a string",
                   json_is_string(op) ? json_string_value(op) : "",
                   json_is_string(op) ? "\"" : "");
        goto done;
    }
    ev->op = (enum dmm_event_op)k;
    json_t *step = required(j, "step", err, src, line);
    if (!step)
        goto done;
    /* JSON has one kind of number: 3 and 3.0 are the same cycle. */
    double sv = json_is_number(step) ? json_number_value(step) : 0;
    if (!(sv >= 1 && sv <= VV_MAX_EXACT_INT && sv == floor(sv))) {
        line_error(err, src, line, rc, "/step",
                   "must be a positive integer (a cycle number)");
        goto done;
    }
    ev->step = (uint64_t)sv;
    ev->line = line;

    const char *key;
    json_t *val;
    json_object_foreach(j, key, val)
    {
        if (!field_allowed(key, ev->op)) {
            char path[512] = "";
            dmm_json_pointer_push(path, sizeof path, key, strlen(key));
            line_error(err, src, line, rc, path, "unknown field for op \"%s\"",
                       ops[ev->op].name);
            goto done;
        }
    }

    if (ev->op >= DMM_EV_MODULATE) {
        rc = parse_fields_event(vc, src, line, j, ev, err);
        goto done;
    }

    if (ev->op == DMM_EV_EDIT) {
        json_t *delta = required(j, "delta", err, src, line);
        if (delta &&
            (rc = vv_from_json(vc, delta, "/delta", &ev->value, err)) < 0)
            at_line(err, src, line, rc);
        goto done;
    }

    json_t *neuron = required(j, "neuron", err, src, line);
    if (!neuron)
        goto done;
    if (!json_is_string(neuron)) {
        line_error(err, src, line, rc, "/neuron",
                   "must be a string \"input/NAME\"");
        goto done;
    }
    rc = dmm_feed_neuron(vc, json_string_value(neuron),
                         json_string_length(neuron), "/neuron", &ev->name, err);
    if (rc < 0) {
        at_line(err, src, line, rc);
        goto done;
    }
    json_t *outputs = required(j, "outputs", err, src, line);
    if (!outputs)
        rc = DMM_E_INVAL;
    else if ((rc = vv_from_json(vc, outputs, "/outputs", &ev->value, err)) < 0)
        at_line(err, src, line, rc);
done:
    json_decref(j);
    return rc;
}

static int cmp_step_line(const void *a, const void *b)
{
    const dmm_event *x = a, *y = b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* Feeds ordered by (step, name, line): duplicates become neighbours. */
static int cmp_feed(const void *a, const void *b)
{
    const dmm_event *x = *(const dmm_event *const *)a;
    const dmm_event *y = *(const dmm_event *const *)b;
    if (x->step != y->step)
        return x->step < y->step ? -1 : 1;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* An input neuron emits one queued map per cycle, so two feeds for the same
 * neuron at the same step would silently shift the second to a later cycle:
 * refuse them. */
static int check_duplicate_feeds(vv_ctx *vc, const dmm_script *s,
                                 dmm_error *err)
{
    size_t nf = 0;
    for (size_t i = 0; i < s->n; i++)
        nf += s->ev[i].op == DMM_EV_FEED;
    if (nf < 2)
        return 0;
    const dmm_event **f = vv_ctx_realloc(vc, NULL, 0, nf * sizeof *f);
    if (!f)
        return dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->ev[i].op == DMM_EV_FEED)
            f[k++] = &s->ev[i];
    qsort(f, nf, sizeof *f, cmp_feed);
    int rc = 0;
    for (size_t i = 1; i < nf; i++) {
        if (f[i]->step == f[i - 1]->step && f[i]->name == f[i - 1]->name) {
            rc = line_error(err, s->source, f[i]->line, DMM_E_INVAL, "/neuron",
                            "input/%s is already fed at step %llu (line %d)",
                            vv_label_str(vc, f[i]->name, NULL),
                            (unsigned long long)f[i]->step, f[i - 1]->line);
            break;
        }
    }
    vv_ctx_realloc(vc, f, nf * sizeof *f, 0);
    return rc;
}

int dmm_script_parse(vv_ctx *vc, const char *text, size_t len,
                     const char *source, dmm_script *out, dmm_error *err)
{
    dmm_script s = {.ev = NULL, .n = 0};
    snprintf(s.source, sizeof s.source, "%s", source ? source : "<script>");
    size_t cap = 0;
    int line = 0, rc = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl != NULL);
        line++;
        size_t m = n;
        if (m > 0 && start[m - 1] == '\r')
            m--;
        size_t b = 0;
        while (b < m && (start[b] == ' ' || start[b] == '\t'))
            b++;
        if (b == m)
            continue;
        dmm_event ev = {.value = VV_ZERO};
        rc = parse_line(vc, s.source, line, start, m, &ev, err);
        if (rc < 0)
            goto fail;
        rc = push_event(vc, &s, &cap, &ev);
        if (rc < 0) {
            event_free(vc, &ev);
            line_error(err, s.source, line, rc, "", "out of memory");
            goto fail;
        }
    }
    if (s.n > 0 && s.n < cap) { /* exactly n events: dmm_script_free's size */
        dmm_event *p =
            vv_ctx_realloc(vc, s.ev, cap * sizeof *p, s.n * sizeof *p);
        if (!p) {
            rc = line_error(err, s.source, line, DMM_E_NOMEM, "",
                            "out of memory");
            goto fail;
        }
        s.ev = p;
        cap = s.n;
    }
    if (s.n > 1)
        qsort(s.ev, s.n, sizeof *s.ev, cmp_step_line);
    rc = check_duplicate_feeds(vc, &s, err);
    if (rc < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    for (size_t i = 0; i < s.n; i++)
        event_free(vc, &s.ev[i]);
    if (s.ev)
        vv_ctx_realloc(vc, s.ev, cap * sizeof *s.ev, 0);
    return rc;
}

int dmm_script_load(vv_ctx *vc, const char *filename, dmm_script *out,
                    dmm_error *err)
{
    FILE *f = fopen(filename, "rb");
    if (!f) {
        int e = errno;
        dmm_error_set(err, DMM_E_IO, "", "cannot open: %s", strerror(e));
        dmm_error_set_source(err, filename);
        return DMM_E_IO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? 2 * cap : 65536;
            char *p = vv_ctx_realloc(vc, buf, cap, ncap);
            if (!p) {
                rc = dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
                break;
            }
            buf = p;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = dmm_error_set(err, DMM_E_IO, "", "cannot read: %s",
                                   strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == 0)
        rc = dmm_script_parse(vc, buf, len, filename, out, err);
    else
        dmm_error_set_source(err, filename);
    if (buf)
        vv_ctx_realloc(vc, buf, cap, 0);
    return rc;
}

void dmm_script_free(vv_ctx *vc, dmm_script *s)
{
    for (size_t i = 0; i < s->n; i++)
        event_free(vc, &s->ev[i]);
    if (s->ev)
        vv_ctx_realloc(vc, s->ev, s->n * sizeof *s->ev, 0);
    s->ev = NULL;
    s->n = 0;
}
