// SPDX-License-Identifier: MIT
/*
 * Fields (docs/fields.md): the network's positions and modulations, read,
 * checked, saved and applied here. Invariant between cycles: every
 * modulation's field neuron has a row in W and every neuron it names is
 * active or embedded (dmm__fields_check), so a cycle can always read them.
 * A cycle with modulations reads every field from Y_{t-1} first
 * (dmm__fields_begin), straight from the field neuron's dense output when it
 * has one, and sets the field's value at each application: the list of what
 * applies to each compiled neuron is built once, when the compiled neurons or
 * the fields change. The cycle's hooks transform weights, inputs, parameters
 * and outputs of those neurons only (inputs and outputs multiplied on the
 * dense path, net_cycle.c): the cost is in the targets, not in W.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

enum { T_INPUT, T_OUTPUT, T_WEIGHT, T_PARAM };
enum { M_MULTIPLY, M_ADD, M_REPLACE };
enum { AT_TARGET, AT_SOURCE, AT_PRODUCT };

static const char *const target_names[] = {"input", "output", "weight", "param",
                                           NULL};
static const char *const mode_names[] = {"multiply", "add", "replace", NULL};
static const char *const by_names[] = {"position", "name", NULL};
static const char *const at_names[] = {"target", "source", "product", NULL};

typedef struct dmm__pos {
    vv_label type, name;
    double x, y;
} dmm__pos;

typedef struct dmm__mod {
    vv_label name;
    vv_label field[3];
    uint8_t target, mode, at;
    bool by_name, has_stream, embedded;
    vv_label stream, param;
    vv_label *neurons; /* type, name pairs */
    size_t nneurons;
} dmm__mod;

/* A field's value this cycle: a constant, or a lattice of rows × cols. */
typedef struct dmm__fval {
    vv v; /* a reference, held for the cycle */
    bool constant;
    double c;
    size_t rows, cols, stride;
    const double *data;
    double *buf;
    size_t bufn;
    /* Read straight from a dense stream (fval_dense): data is the stream's
     * values, entry j at data[perm[j]] (perm[j] < 0: absent; perm NULL:
     * data[j]); a zero sampled is +0, as from the V-value. */
    bool direct;
    const int32_t *perm;
    /* The decode of the stream's labels, kept while they stay the same:
     * dlab (the labels), dperm (cols entries), dbad (positions of labels
     * that are not decimal). */
    vv_label *dlab;
    size_t ndlab, dlab_cap;
    int32_t *dperm;
    size_t dcols, dperm_cap;
    uint32_t *dbad;
    size_t ndbad;
    bool dident;      /* dperm is the identity over all the labels */
    bool built_const; /* constant when the applications were built */
} dmm__fval;

typedef dmm__fapp dmm__app;

struct dmm__fields {
    dmm__pos *pos; /* sorted by (type, name) */
    size_t npos, pos_cap;
    dmm__mod *mods;
    size_t nmods, mods_cap;
    /* The cycle's */
    dmm__fval *fv;
    size_t fv_cap;
    dmm__app *apps;
    size_t napps, apps_cap;
    int32_t *first, *last; /* per compiled neuron, -1: none */
    size_t nk;
    /* apps, first and last hold while cached, gen is net->cw_gen and each
     * field read by position is constant or not as it was (fv built_const):
     * then a cycle only sets each application's s. */
    bool cached;
    uint64_t gen;
    size_t rebuilds; /* dmm__fields_rebuilds */
};

static int bad(dmm_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(dmm_error *err, const char *path, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return dmm_error_set(err, DMM_E_INVAL, path, "%s", text);
}

static int nomem(dmm_error *err)
{
    return dmm_error_set(err, DMM_E_NOMEM, "", "%s", dmm_strerror(DMM_E_NOMEM));
}

/* "type/name" (or 3 parts) of path into buf. */
static const char *path_str(const dmm_net *net, const vv_label *p, size_t n,
                            char *buf, size_t size)
{
    vv_buf b = {0};
    if (dmm_path_write(net->vc, p, n, &b) || vv_buf_append(&b, "", 1))
        snprintf(buf, size, "?");
    else
        snprintf(buf, size, "%s", b.data);
    free(b.data);
    return buf;
}

/* ---- records ------------------------------------------------------------- */

static void mod_clear(vv_ctx *vc, dmm__mod *m)
{
    dmm__free(vc, m->neurons, 2 * m->nneurons * sizeof *m->neurons);
    m->neurons = NULL;
    m->nneurons = 0;
}

static void fields_free(vv_ctx *vc, dmm__fields *f)
{
    if (!f)
        return;
    for (size_t k = 0; k < f->nmods; k++)
        mod_clear(vc, &f->mods[k]);
    dmm__free(vc, f->mods, f->mods_cap * sizeof *f->mods);
    dmm__free(vc, f->pos, f->pos_cap * sizeof *f->pos);
    for (size_t k = 0; k < f->fv_cap; k++) {
        dmm__fval *fv = &f->fv[k];
        dmm__free(vc, fv->buf, fv->bufn * sizeof(double));
        dmm__free(vc, fv->dlab, fv->dlab_cap * sizeof *fv->dlab);
        dmm__free(vc, fv->dperm, fv->dperm_cap * sizeof *fv->dperm);
        dmm__free(vc, fv->dbad, fv->dlab_cap * sizeof *fv->dbad);
    }
    dmm__free(vc, f->fv, f->fv_cap * sizeof *f->fv);
    dmm__free(vc, f->apps, f->apps_cap * sizeof *f->apps);
    dmm__free(vc, f->first, f->nk * sizeof *f->first);
    dmm__free(vc, f->last, f->nk * sizeof *f->last);
    dmm__free(vc, f, sizeof *f);
}

void dmm__fields_free(dmm_net *net)
{
    fields_free(net->vc, net->fields);
    net->fields = NULL;
    net->fmod = NULL;
    net->fapps = NULL;
}

static int pos_cmp(vv_label t1, vv_label n1, vv_label t2, vv_label n2)
{
    if (t1 != t2)
        return t1 < t2 ? -1 : 1;
    return n1 < n2 ? -1 : n1 > n2;
}

/* Index of (type, name) in f's positions, or where it would go (*found
 * false). */
static size_t pos_find(const dmm__fields *f, vv_label type, vv_label name,
                       bool *found)
{
    size_t lo = 0, hi = f ? f->npos : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = pos_cmp(f->pos[mid].type, f->pos[mid].name, type, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const double *dmm__fields_position(const dmm_net *net, vv_label type,
                                   vv_label name)
{
    bool found;
    size_t at = pos_find(net->fields, type, name, &found);
    return found ? &net->fields->pos[at].x : NULL;
}

/* Set (or, x NULL, remove) a position in f. */
static int pos_set(vv_ctx *vc, dmm__fields *f, vv_label type, vv_label name,
                   const double *xy)
{
    bool found;
    size_t at = pos_find(f, type, name, &found);
    if (!xy) {
        if (found) {
            memmove(f->pos + at, f->pos + at + 1,
                    (f->npos - at - 1) * sizeof *f->pos);
            f->npos--;
        }
        return 0;
    }
    if (!found) {
        if (f->npos == f->pos_cap) {
            size_t cap = dmm__cap_for(f->pos_cap, f->npos + 1, 8);
            dmm__pos *p =
                dmm__grow1(vc, f->pos, sizeof *f->pos, f->pos_cap, cap);
            if (!p)
                return DMM_E_NOMEM;
            f->pos = p;
            f->pos_cap = cap;
        }
        memmove(f->pos + at + 1, f->pos + at, (f->npos - at) * sizeof *f->pos);
        f->npos++;
    }
    f->pos[at] = (dmm__pos){type, name, xy[0], xy[1]};
    return 0;
}

static dmm__fields *fields_new(vv_ctx *vc)
{
    return dmm__calloc(vc, 1, sizeof(dmm__fields));
}

/* A copy of f's positions and modulations (not its cycle scratch). */
static dmm__fields *fields_clone(vv_ctx *vc, const dmm__fields *f)
{
    dmm__fields *c = fields_new(vc);
    if (!c || !f)
        return c;
    if (f->npos) {
        c->pos = dmm__alloc(vc, f->npos * sizeof *c->pos);
        if (!c->pos)
            goto fail;
        c->pos_cap = c->npos = f->npos;
        memcpy(c->pos, f->pos, f->npos * sizeof *c->pos);
    }
    if (f->nmods) {
        c->mods = dmm__calloc(vc, f->nmods, sizeof *c->mods);
        if (!c->mods)
            goto fail;
        c->mods_cap = f->nmods;
        for (size_t k = 0; k < f->nmods; k++) {
            c->mods[k] = f->mods[k];
            c->mods[k].neurons = NULL;
            c->mods[k].nneurons = 0;
            c->nmods++;
            size_t n = 2 * f->mods[k].nneurons;
            if (n) {
                c->mods[k].neurons = dmm__alloc(vc, n * sizeof(vv_label));
                if (!c->mods[k].neurons)
                    goto fail;
                memcpy(c->mods[k].neurons, f->mods[k].neurons,
                       n * sizeof(vv_label));
                c->mods[k].nneurons = f->mods[k].nneurons;
            }
        }
    }
    return c;
fail:
    fields_free(vc, c);
    return NULL;
}

/* ---- reading ------------------------------------------------------------- */

/* A neuron (2 parts) or stream (3) path at `at`, its labels interned; its
 * type must be registered in reg (not checked when reg is NULL: the syntax
 * only, as a script is checked before any network is there). */
static int read_neuron_path(vv_ctx *vc, const dmm_registry *reg,
                            const json_t *j, const char *at, size_t nparts,
                            vv_label *out, dmm_error *err)
{
    const char *what = nparts == 2 ? "type/name" : "type/name/output";
    if (!json_is_string(j))
        return bad(err, at, "expected a string \"%s\"", what);
    size_t n = 0;
    int rc = dmm_path_parse(vc, json_string_value(j), json_string_length(j),
                            out, nparts, &n, NULL, err);
    if (rc) {
        char text[sizeof err->text];
        snprintf(text, sizeof text, "%s", err ? err->text : "");
        return dmm_error_set(err, rc, at, "%s", text);
    }
    if (n != nparts)
        return bad(err, at, "expected \"%s\"", what);
    if (reg && !dmm_registry_find(reg, out[0]))
        return bad(err, at, "unknown neuron type \"%s\"",
                   vv_label_str(vc, out[0], NULL));
    return 0;
}

/* [x] or [x, y], finite numbers, into xy. */
static int read_xy(const json_t *v, const char *at, double *xy, dmm_error *err)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    bool ok = n == 1 || n == 2;
    xy[0] = xy[1] = 0;
    for (size_t q = 0; ok && q < n; q++) {
        const json_t *e = json_array_get(v, q);
        ok = json_is_number(e) && isfinite(json_number_value(e));
        if (ok)
            xy[q] = json_number_value(e);
    }
    if (!ok)
        return bad(err, at,
                   "a position must be an array of one or two finite numbers "
                   "([x] or [x, y])");
    return 0;
}

/* f NULL: the syntax only (labels interned, as when read into f). */
static int read_positions(vv_ctx *vc, const dmm_registry *reg, dmm__fields *f,
                          const json_t *j, const char *prefix, dmm_error *err)
{
    if (!json_is_object(j))
        return bad(err, prefix,
                   "positions must be an object {\"type/name\": [x, y]}");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v)
    {
        dmm__ptr p;
        snprintf(p.s, sizeof p.s, "%s", prefix);
        (void)dmm_json_pointer_push(p.s, sizeof p.s, key, strlen(key));
        vv_label tn[2];
        json_t *ks = json_string(key);
        if (!ks)
            return nomem(err);
        int rc = read_neuron_path(vc, reg, ks, p.s, 2, tn, err);
        json_decref(ks);
        double xy[2];
        if (rc || (rc = read_xy(v, p.s, xy, err)))
            return rc;
        if (f && pos_set(vc, f, tn[0], tn[1], xy))
            return nomem(err);
    }
    return 0;
}

static int pick(const json_t *j, const char *at, const char *member,
                const char *const *names, uint8_t *out, dmm_error *err)
{
    const char *s = json_is_string(j) ? json_string_value(j) : "";
    for (uint8_t k = 0; names[k]; k++)
        if (strcmp(s, names[k]) == 0) {
            *out = k;
            return 0;
        }
    char list[128] = "";
    for (size_t k = 0; names[k]; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 k ? (names[k + 1] ? ", " : " or ") : "", names[k]);
    return json_is_string(j)
               ? bad(err, at, "%s must be %s (not \"%s\")", member, list, s)
               : bad(err, at, "%s must be a string: %s", member, list);
}

static const char *const mod_members[] = {"name", "field", "target", "neurons",
                                          "mode", "by",    "stream", "param",
                                          "at",   NULL};

/* One modulation object at prefix into m (m->neurons new). Syntax only;
 * dmm__fields check does the rest against the network. */
static int read_mod(vv_ctx *vc, const dmm_registry *reg, const json_t *j,
                    const char *prefix, dmm__mod *m, dmm_error *err)
{
    *m = (dmm__mod){0};
    if (!json_is_object(j))
        return bad(err, prefix, "a modulation must be an object");
    dmm__ptr p;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v)
    {
        size_t k = 0;
        while (mod_members[k] && strcmp(mod_members[k], key))
            k++;
        if (mod_members[k])
            continue;
        snprintf(p.s, sizeof p.s, "%s", prefix);
        (void)dmm_json_pointer_push(p.s, sizeof p.s, key, strlen(key));
        return bad(err, p.s,
                   "unknown member \"%s\" (expected name, field, target, "
                   "neurons, mode, by, stream, param or at)",
                   key);
    }
    static const char *const required[] = {"name", "field", "target", "neurons",
                                           "mode"};
    for (size_t k = 0; k < 5; k++)
        if (!json_object_get(j, required[k]))
            return bad(err, prefix, "missing member \"%s\"", required[k]);
#define AT(member) (snprintf(p.s, sizeof p.s, "%s/%s", prefix, member), p.s)
    int rc;
    v = json_object_get(j, "name");
    if (!json_is_string(v) || json_string_length(v) == 0)
        return bad(err, AT("name"), "name must be a non-empty string");
    if (vv_intern(vc, json_string_value(v), json_string_length(v), &m->name))
        return bad(err, AT("name"), "not a valid name");
    if ((rc = read_neuron_path(vc, reg, json_object_get(j, "field"),
                               AT("field"), 3, m->field, err)) ||
        (rc = pick(json_object_get(j, "target"), AT("target"), "target",
                   target_names, &m->target, err)) ||
        (rc = pick(json_object_get(j, "mode"), AT("mode"), "mode", mode_names,
                   &m->mode, err)))
        return rc;
    if ((v = json_object_get(j, "by"))) {
        uint8_t by;
        if ((rc = pick(v, AT("by"), "by", by_names, &by, err)))
            return rc;
        m->by_name = by == 1;
    }
    if ((v = json_object_get(j, "at"))) {
        if (m->target != T_WEIGHT)
            return bad(err, AT("at"), "\"at\" is for target \"weight\" only");
        if ((rc = pick(v, AT("at"), "at", at_names, &m->at, err)))
            return rc;
    }
    if ((v = json_object_get(j, "stream"))) {
        if (m->target != T_INPUT && m->target != T_OUTPUT)
            return bad(err, AT("stream"),
                       "\"stream\" is for targets \"input\" and \"output\" "
                       "only");
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            vv_intern(vc, json_string_value(v), json_string_length(v),
                      &m->stream))
            return bad(err, AT("stream"), "stream must be a non-empty name");
        m->has_stream = true;
    }
    v = json_object_get(j, "param");
    if (m->target == T_PARAM && !v)
        return bad(err, prefix, "missing member \"param\" (target \"param\")");
    if (v) {
        if (m->target != T_PARAM)
            return bad(err, AT("param"),
                       "\"param\" is for target \"param\" only");
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            vv_intern(vc, json_string_value(v), json_string_length(v),
                      &m->param))
            return bad(err, AT("param"), "param must be a parameter's name");
    }
    v = json_object_get(j, "neurons");
    if (json_is_string(v) && strcmp(json_string_value(v), "embedded") == 0) {
        m->embedded = true;
        return 0;
    }
    if (!json_is_array(v))
        return bad(err, AT("neurons"),
                   "neurons must be \"embedded\" or an array of \"type/name\"");
    size_t n = json_array_size(v);
    if (n && !(m->neurons = dmm__alloc(vc, 2 * n * sizeof(vv_label))))
        return nomem(err);
    m->nneurons = n;
    for (size_t k = 0; k < n; k++) {
        snprintf(p.s, sizeof p.s, "%s/neurons/%zu", prefix, k);
        if ((rc = read_neuron_path(vc, reg, json_array_get(v, k), p.s, 2,
                                   m->neurons + 2 * k, err)))
            return rc;
    }
#undef AT
    return 0;
}

static bool has_row(vv w, const vv_label *tn)
{
    return !vv_is_zero(vv_get(w, tn, 2));
}

static bool is_self(const dmm_net *net, const vv_label *tn)
{
    return tn[0] == net->self[0] && tn[1] == net->self[1];
}

/* Does type ti declare parameter p? Else a message into err at `at`. */
static int check_param(const dmm_net *net, const dmm_type_info *ti, vv_label p,
                       const char *at, dmm_error *err)
{
    char list[256] = "";
    for (size_t q = 0; q < ti->n_params; q++) {
        if (ti->param[q] == p)
            return 0;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 q ? ", " : "", dmm__lstr(net, ti->param[q]));
    }
    return bad(err, at, "%s has no parameter \"%s\" (%s%s)",
               dmm__lstr(net, ti->name), dmm__lstr(net, p),
               ti->n_params ? "it has: " : "it has none", list);
}

/* at := the JSON Pointer of neuron tn's rows in W. */
static void w_pointer(const dmm_net *net, const vv_label *tn, char *at,
                      size_t size)
{
    dmm__ptr p = {""};
    dmm__ptr_push(net->vc, &p, tn[0]);
    dmm__ptr_push(net->vc, &p, tn[1]);
    snprintf(at, size, "%s", p.s);
}

/* Modulation m (at index k, JSON path prefix) against W w and the
 * positions of f: the bad-input cases of docs/fields.md that need the
 * network. prefix NULL: a change of W is being checked, and the path is
 * that of the rows in W whose loss breaks the modulation (the message
 * names the modulation). */
static int check_mod(const dmm_net *net, const dmm__fields *f, size_t k, vv w,
                     const char *prefix, dmm_error *err)
{
    const dmm__mod *m = &f->mods[k];
    char at[600], b1[300], b2[300];
    bool in_w = !prefix;
    if (in_w)
        prefix = "";
    for (size_t q = 0; q < k; q++)
        if (f->mods[q].name == m->name) {
            snprintf(at, sizeof at, "%s/name", prefix);
            return bad(err, at, "duplicate modulation name \"%s\"",
                       dmm__lstr(net, m->name));
        }
    if (!has_row(w, m->field)) {
        if (in_w)
            w_pointer(net, m->field, at, sizeof at);
        else
            snprintf(at, sizeof at, "%s/field", prefix);
        return bad(err, at,
                   "modulation \"%s\": field %s is not produced: %s has no "
                   "row",
                   dmm__lstr(net, m->name),
                   path_str(net, m->field, 3, b1, sizeof b1),
                   path_str(net, m->field, 2, b2, sizeof b2));
    }
    const dmm_type_info *ft = dmm_registry_find(net->reg, m->field[0]);
    if (ft && ft->out) {
        size_t q = 0;
        while (q < ft->n_outputs && ft->out[q] != m->field[2])
            q++;
        if (q == ft->n_outputs) {
            snprintf(at, sizeof at, "%s/field", prefix);
            return bad(err, at, "neuron type \"%s\" has no output \"%s\"",
                       dmm__lstr(net, m->field[0]),
                       dmm__lstr(net, m->field[2]));
        }
    }
    size_t n = m->embedded ? f->npos : m->nneurons;
    for (size_t q = 0; q < n; q++) {
        vv_label tn[2];
        if (m->embedded) {
            tn[0] = f->pos[q].type;
            tn[1] = f->pos[q].name;
            snprintf(at, sizeof at, "%s/neurons", prefix);
        } else {
            tn[0] = m->neurons[2 * q];
            tn[1] = m->neurons[2 * q + 1];
            snprintf(at, sizeof at, "%s/neurons/%zu", prefix, q);
        }
        if (is_self(net, tn)) {
            if (m->embedded)
                continue; /* an embedded Self is not a target */
            return bad(err, at,
                       "modulation \"%s\": Self (%s) cannot be a target (use "
                       "target \"weight\" to modulate connectivity)",
                       dmm__lstr(net, m->name),
                       path_str(net, tn, 2, b1, sizeof b1));
        }
        bool found;
        if (!m->embedded && !has_row(w, tn) &&
            (pos_find(f, tn[0], tn[1], &found), !found)) {
            if (in_w)
                w_pointer(net, tn, at, sizeof at);
            return bad(err, at,
                       "modulation \"%s\": neuron %s is neither active nor "
                       "embedded",
                       dmm__lstr(net, m->name),
                       path_str(net, tn, 2, b1, sizeof b1));
        }
        if (m->target == T_PARAM) {
            const dmm_type_info *ti = dmm_registry_find(net->reg, tn[0]);
            int rc;
            if (ti && (rc = check_param(net, ti, m->param, at, err)))
                return rc;
        }
    }
    return 0;
}

/* Everything of f against W w; JSON paths under prefix ("/modulations"),
 * or, prefix NULL, in W (check_mod). */
static int fields_check(const dmm_net *net, const dmm__fields *f, vv w,
                        const char *prefix, dmm_error *err)
{
    if (!f)
        return 0;
    for (size_t k = 0; k < f->nmods; k++) {
        char at[64];
        snprintf(at, sizeof at, "%s/%zu", prefix ? prefix : "", k);
        int rc = check_mod(net, f, k, w, prefix ? at : NULL, err);
        if (rc)
            return rc;
    }
    return 0;
}

int dmm__fields_check_w(const dmm_net *net, vv w, dmm_error *err)
{
    return fields_check(net, net->fields, w, NULL, err);
}

static int append_mod(vv_ctx *vc, dmm__fields *f, const dmm__mod *m)
{
    if (f->nmods == f->mods_cap) {
        size_t cap = dmm__cap_for(f->mods_cap, f->nmods + 1, 4);
        dmm__mod *p =
            dmm__grow1(vc, f->mods, sizeof *f->mods, f->mods_cap, cap);
        if (!p)
            return DMM_E_NOMEM;
        f->mods = p;
        f->mods_cap = cap;
    }
    f->mods[f->nmods++] = *m;
    return 0;
}

int dmm__fields_read(dmm_net *net, const json_t *positions, const json_t *mods,
                     vv w, dmm_error *err)
{
    if (!positions && !mods)
        return 0;
    dmm__fields *f = fields_new(net->vc);
    if (!f)
        return nomem(err);
    int rc = 0;
    if (positions)
        rc = read_positions(net->vc, net->reg, f, positions, "/positions", err);
    if (!rc && mods) {
        if (!json_is_array(mods))
            rc = bad(err, "/modulations",
                     "modulations must be an array of objects");
        for (size_t k = 0; !rc && k < json_array_size(mods); k++) {
            char at[64];
            snprintf(at, sizeof at, "/modulations/%zu", k);
            dmm__mod m;
            rc = read_mod(net->vc, net->reg, json_array_get(mods, k), at, &m,
                          err);
            if (!rc && append_mod(net->vc, f, &m))
                rc = nomem(err);
            if (rc)
                mod_clear(net->vc, &m);
        }
    }
    if (!rc)
        rc = fields_check(net, f, w, "/modulations", err);
    if (rc) {
        fields_free(net->vc, f);
        return rc;
    }
    dmm__fields_free(net);
    net->fields = f;
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

static int put_path(const dmm_net *net, const vv_label *p, size_t n, vv_buf *b)
{
    vv_buf s = {0};
    int rc = dmm_path_write(net->vc, p, n, &s);
    if (!rc)
        rc = vv_buf_json_string(b, s.data ? s.data : "", s.len);
    free(s.data);
    return rc;
}

static int put_label(const dmm_net *net, vv_label l, vv_buf *b)
{
    size_t len;
    const char *s = vv_label_str(net->vc, l, &len);
    return vv_buf_json_string(b, s, len);
}

static int write_mod(const dmm_net *net, const dmm__mod *m, vv_buf *b)
{
    int rc = vv_buf_printf(b, "{\"name\": ");
    if (!rc)
        rc = put_label(net, m->name, b);
    if (!rc)
        rc = vv_buf_printf(b, ", \"field\": ");
    if (!rc)
        rc = put_path(net, m->field, 3, b);
    if (!rc)
        rc = vv_buf_printf(b, ", \"target\": \"%s\", \"mode\": \"%s\"",
                           target_names[m->target], mode_names[m->mode]);
    if (!rc && m->by_name)
        rc = vv_buf_printf(b, ", \"by\": \"name\"");
    if (!rc && m->target == T_WEIGHT && m->at != AT_TARGET)
        rc = vv_buf_printf(b, ", \"at\": \"%s\"", at_names[m->at]);
    if (!rc && m->has_stream) {
        rc = vv_buf_printf(b, ", \"stream\": ");
        if (!rc)
            rc = put_label(net, m->stream, b);
    }
    if (!rc && m->target == T_PARAM) {
        rc = vv_buf_printf(b, ", \"param\": ");
        if (!rc)
            rc = put_label(net, m->param, b);
    }
    if (!rc)
        rc = vv_buf_printf(b, ", \"neurons\": ");
    if (!rc && m->embedded)
        rc = vv_buf_printf(b, "\"embedded\"");
    else if (!rc) {
        rc = vv_buf_append(b, "[", 1);
        for (size_t k = 0; !rc && k < m->nneurons; k++) {
            if (k)
                rc = vv_buf_append(b, ", ", 2);
            if (!rc)
                rc = put_path(net, m->neurons + 2 * k, 2, b);
        }
        if (!rc)
            rc = vv_buf_append(b, "]", 1);
    }
    if (!rc)
        rc = vv_buf_append(b, "}", 1);
    return rc;
}

int dmm__fields_write(const dmm_net *net, vv_buf *b)
{
    const dmm__fields *f = net->fields;
    if (!f)
        return 0;
    int rc = 0;
    if (f->npos) {
        rc = vv_buf_printf(b, ",\n\"positions\": {");
        for (size_t k = 0; !rc && k < f->npos; k++) {
            const dmm__pos *p = &f->pos[k];
            vv_label tn[2] = {p->type, p->name};
            if (k)
                rc = vv_buf_append(b, ", ", 2);
            if (!rc)
                rc = put_path(net, tn, 2, b);
            if (!rc)
                rc = vv_buf_append(b, ": [", 3);
            if (!rc)
                rc = vv_buf_number(b, p->x);
            if (!rc)
                rc = vv_buf_append(b, ", ", 2);
            if (!rc)
                rc = vv_buf_number(b, p->y);
            if (!rc)
                rc = vv_buf_append(b, "]", 1);
        }
        if (!rc)
            rc = vv_buf_append(b, "}", 1);
    }
    if (!rc && f->nmods) {
        rc = vv_buf_printf(b, ",\n\"modulations\": [");
        for (size_t k = 0; !rc && k < f->nmods; k++) {
            if (k)
                rc = vv_buf_append(b, ",\n  ", 4);
            if (!rc)
                rc = write_mod(net, &f->mods[k], b);
        }
        if (!rc)
            rc = vv_buf_append(b, "]", 1);
    }
    return rc;
}

/* ---- the cycle ----------------------------------------------------------- */

/*
 * Sampling (docs/fields.md, "Sampling"), in exactly the documented order so
 * that a constant lattice gives the constant bit for bit.
 */
static double entry(const dmm__fval *fv, long i, long j)
{
    if (i < 0 || j < 0 || (size_t)i >= fv->rows || (size_t)j >= fv->cols)
        return 0.0;
    return fv->data[(size_t)i * fv->stride + (size_t)j];
}

static double sample(const dmm__fval *fv, double x, double y)
{
    double fj = floor(x), fi = floor(y);
    /* far outside the lattice: every entry is 0 (and no overflow in long) */
    if (!(fj > -2 && fj < (double)fv->cols + 1 && fi > -2 &&
          fi < (double)fv->rows + 1))
        return 0.0;
    long j = (long)fj, i = (long)fi;
    double a = x - fj, b = y - fi;
    double top = entry(fv, i, j) + a * (entry(fv, i, j + 1) - entry(fv, i, j));
    double bottom = entry(fv, i + 1, j) +
                    a * (entry(fv, i + 1, j + 1) - entry(fv, i + 1, j));
    return top + b * (bottom - top);
}

/* A rank-1 value is held with rows 0 and data the vector: entry(0, j). */
static double entry_r1(const dmm__fval *fv, long j)
{
    if (j < 0 || (size_t)j >= fv->cols)
        return 0.0;
    if (!fv->perm)
        return fv->data[j];
    int32_t p = fv->perm[j];
    return p < 0 ? 0.0 : fv->data[p];
}

static double sample_at(const dmm__fval *fv, double x, double y)
{
    if (fv->constant)
        return fv->c;
    if (fv->rows)
        return sample(fv, x, y);
    double fj = floor(x);
    if (!(fj > -2 && fj < (double)fv->cols + 1))
        return 0.0;
    long j = (long)fj;
    double a = x - fj;
    double r = entry_r1(fv, j) + a * (entry_r1(fv, j + 1) - entry_r1(fv, j));
    /* A direct read may hold -0 where the V-value holds nothing (+0): the
     * same numbers, so only a zero's sign can differ; make it +0, which is
     * what the V-value's entries give (no sum of them is -0). */
    return fv->direct && r == 0.0 ? 0.0 : r;
}

/* The field of modulation m at neuron (type, name): false when the neuron
 * is outside it (read by position, and it has none). */
static bool field_at(const dmm_net *net, const dmm__mod *m, const dmm__fval *fv,
                     vv_label type, vv_label name, double *s)
{
    if (m->by_name) {
        vv_label tn[2] = {type, name};
        *s = vv_get(fv->v, tn, 2).num;
        return true;
    }
    if (fv->constant) {
        *s = fv->c;
        return true;
    }
    const double *xy = dmm__fields_position(net, type, name);
    if (!xy)
        return false;
    *s = sample_at(fv, xy[0], xy[1]);
    return true;
}

/* Compiled index of (type, name), or -1. cw->neu is in label-id order. */
static long find_k(const dmm__compiled *cw, vv_label type, vv_label name)
{
    size_t lo = 0, hi = cw->built ? cw->nneu : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = pos_cmp(cw->neu[mid].type, cw->neu[mid].name, type, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* borrowed: stream path f of Y_{t-1}. */
static int y_stream(dmm_net *net, const vv_label *f, vv *out)
{
    if (!net->ylazy) {
        *out = vv_get(net->y, f, 3);
        return 0;
    }
    long k = find_k(&net->cw, f[0], f[1]);
    *out = VV_ZERO;
    if (k < 0)
        return 0;
    dmm__out *o = dmm__out_record(net, (size_t)k);
    if (o->dense && !o->vmade) {
        int rc = dmm__dense_vv(net->vc, &o->d, &o->v);
        if (rc)
            return rc;
        o->vmade = true;
    }
    *out = vv_child(o->v, f[2]);
    return 0;
}

/* fv's decode of the labels of shape sh: where each decimal label's value
 * sits. Built when the labels differ from the last ones seen (a shape is
 * interned, but its address may be reused after it is dropped: the labels
 * are compared, not the pointer). */
static int decode_labels(vv_ctx *vc, dmm__fval *fv, const dmm__shape *sh)
{
    size_t n = sh->n;
    if (fv->ndlab == n && !memcmp(fv->dlab, sh->lab, n * sizeof *sh->lab))
        return 0;
    if (n > fv->dlab_cap) {
        vv_label *l = dmm__alloc(vc, n * sizeof *l);
        uint32_t *b = dmm__alloc(vc, n * sizeof *b);
        if (!l || !b) {
            dmm__free(vc, l, n * sizeof *l);
            dmm__free(vc, b, n * sizeof *b);
            return DMM_E_NOMEM;
        }
        dmm__free(vc, fv->dlab, fv->dlab_cap * sizeof *l);
        dmm__free(vc, fv->dbad, fv->dlab_cap * sizeof *b);
        fv->dlab = l;
        fv->dbad = b;
        fv->dlab_cap = n;
    }
    fv->ndlab = 0; /* invalid until complete */
    size_t cols = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t d = vv_label_dec(vc, sh->lab[i]);
        if (d >= 0 && (size_t)d + 1 > cols)
            cols = (size_t)d + 1;
    }
    if (cols > fv->dperm_cap) {
        int32_t *p = dmm__alloc(vc, cols * sizeof *p);
        if (!p)
            return DMM_E_NOMEM;
        dmm__free(vc, fv->dperm, fv->dperm_cap * sizeof *p);
        fv->dperm = p;
        fv->dperm_cap = cols;
    }
    memset(fv->dperm, 0xff, cols * sizeof *fv->dperm);
    fv->ndbad = 0;
    bool ident = cols == n;
    for (size_t i = 0; i < n; i++) {
        int32_t d = vv_label_dec(vc, sh->lab[i]);
        if (d < 0)
            fv->dbad[fv->ndbad++] = (uint32_t)i;
        else
            fv->dperm[d] = (int32_t)i;
        ident &= d == (int32_t)i;
    }
    memcpy(fv->dlab, sh->lab, n * sizeof *sh->lab);
    fv->ndlab = n;
    fv->dcols = cols;
    fv->dident = ident;
    return 0;
}

/*
 * fv from the field neuron's dense output in Y_{t-1}, without making its
 * V-value: 1 when there is none (or it is not a vector: fval_set reads the
 * V-value then, and says what is wrong), 0 or DMM_E_NOMEM. The same field
 * as fval_set reads from the V-value: a scalar stream is a constant, a
 * stream of zeros the constant 0, a vector a rank-1 lattice (its width
 * may exceed the V-value's by trailing zeros, which sample the same).
 */
static int fval_dense(dmm_net *net, const dmm__mod *m, dmm__fval *fv)
{
    const dmm__compiled *cw = &net->cw;
    if (m->by_name || !cw->out_valid)
        return 1;
    long k = find_k(cw, m->field[0], m->field[1]);
    if (k < 0)
        return 1;
    const dmm__out *o = dmm__out_record(net, (size_t)k);
    if (!o->dense)
        return 1;
    const dmm__dense *d = &o->d;
    uint32_t j = 0;
    while (j < d->n && d->label[j] != m->field[2])
        j++;
    const dmm__shape *sh = j < d->n ? d->shape[j] : NULL;
    const double *x = sh ? d->x[j] : NULL;
    size_t n = sh ? dmm__shape_len(sh) : 0, i = 0;
    while (i < n && x[i] == 0.0)
        i++;
    fv->v = VV_ZERO;
    fv->rows = fv->cols = 0;
    fv->perm = NULL;
    if (i == n || sh->n == 0) { /* zero, or a number */
        fv->constant = true;
        fv->c = i == n ? 0.0 : x[0];
        fv->direct = false;
        return 0;
    }
    int rc = decode_labels(net->vc, fv, sh);
    if (rc)
        return rc;
    for (size_t b = 0; b < fv->ndbad; b++)
        if (x[fv->dbad[b]] != 0.0)
            return 1; /* not a vector: fval_set's message */
    fv->constant = false;
    fv->direct = true;
    fv->cols = fv->dcols;
    fv->data = x;
    fv->perm = fv->dident ? NULL : fv->dperm;
    return 0;
}

/* fv from the field's value v (referenced), or a located error. */
static int fval_set(dmm_net *net, const dmm__mod *m, dmm__fval *fv, vv v,
                    dmm_error *err)
{
    fv->v = vv_ref(v);
    fv->constant = fv->direct = false;
    fv->perm = NULL;
    fv->rows = fv->cols = 0;
    if (m->by_name)
        return 0;
    if (!v.map) {
        fv->constant = true;
        fv->c = v.num;
        return 0;
    }
    size_t rows, cols, stride;
    const double *data;
    if (vv_dense_view(v, &rows, &cols, &stride, &data)) {
        fv->rows = rows, fv->cols = cols, fv->stride = stride, fv->data = data;
        return 0;
    }
    int rank;
    size_t dims[VV_DENSE_MAX_RANK];
    if (!vv_dense_shape(net->vc, v, &rank, dims) || rank > 2) {
        char b1[300];
        return dmm_error_set(
            err, DMM_E_INVAL, "",
            "modulation \"%s\": field %s: not a number, vector or matrix",
            dmm__lstr(net, m->name), path_str(net, m->field, 3, b1, sizeof b1));
    }
    size_t n = rank == 1 ? dims[0] : dims[0] * dims[1];
    if (n > fv->bufn) {
        double *b = dmm__alloc(net->vc, n * sizeof *b);
        if (!b)
            return nomem(err);
        dmm__free(net->vc, fv->buf, fv->bufn * sizeof *b);
        fv->buf = b;
        fv->bufn = n;
    }
    if (vv_dense_read(net->vc, v, rank, dims, fv->buf))
        return nomem(err); /* shape was checked just above */
    fv->data = fv->buf;
    if (rank == 1) {
        fv->rows = 0;
        fv->cols = dims[0];
    } else {
        fv->rows = dims[0];
        fv->cols = dims[1];
        fv->stride = dims[1];
    }
    return 0;
}

static int add_app(dmm_net *net, dmm__fields *f, long k, uint32_t mod,
                   bool outside, const double *xy)
{
    if (f->napps == f->apps_cap) {
        size_t cap = dmm__cap_for(f->apps_cap, f->napps + 1, 16);
        dmm__app *a = dmm__grow1(net->vc, f->apps, sizeof *a, f->apps_cap, cap);
        if (!a)
            return DMM_E_NOMEM;
        f->apps = a;
        f->apps_cap = cap;
    }
    const dmm__mod *m = &f->mods[mod];
    int32_t i = (int32_t)f->napps++;
    f->apps[i] = (dmm__app){
        .k = (uint32_t)k,
        .mod = mod,
        .next = -1,
        .outside = outside,
        .has_pos = xy != NULL,
        .scale = (m->target == T_INPUT || m->target == T_OUTPUT) &&
                 m->mode == M_MULTIPLY,
        .output = m->target == T_OUTPUT,
        .has_stream = m->has_stream,
        .stream = m->stream,
        .x = xy ? xy[0] : 0,
        .y = xy ? xy[1] : 0,
    };
    if (f->first[k] < 0)
        f->first[k] = i;
    else
        f->apps[f->last[k]].next = i;
    f->last[k] = i;
    return 0;
}

/* The list of applications for the compiled neurons as they are and the
 * fields' constancy this cycle (f->fv read): what applies to each neuron,
 * in the order of the modulations. */
static int apps_build(dmm_net *net, dmm__fields *f)
{
    const dmm__compiled *cw = &net->cw;
    f->cached = false;
    f->rebuilds++;
    if (f->nk < cw->nneu) {
        size_t nk = cw->nalloc > cw->nneu ? cw->nalloc : cw->nneu;
        int32_t *a = dmm__alloc(net->vc, nk * sizeof *a);
        int32_t *b = dmm__alloc(net->vc, nk * sizeof *b);
        if (!a || !b) {
            dmm__free(net->vc, a, nk * sizeof *a);
            dmm__free(net->vc, b, nk * sizeof *b);
            return DMM_E_NOMEM;
        }
        dmm__free(net->vc, f->first, f->nk * sizeof *a);
        dmm__free(net->vc, f->last, f->nk * sizeof *b);
        f->first = a;
        f->last = b;
        f->nk = nk;
    }
    memset(f->first, 0xff, f->nk * sizeof *f->first);
    memset(f->last, 0xff, f->nk * sizeof *f->last);
    f->napps = 0;
    for (size_t q = 0; q < f->nmods; q++) {
        const dmm__mod *m = &f->mods[q];
        const dmm__fval *fv = &f->fv[q];
        size_t n = m->embedded ? f->npos : m->nneurons;
        for (size_t i = 0; i < n; i++) {
            vv_label t = m->embedded ? f->pos[i].type : m->neurons[2 * i];
            vv_label nm = m->embedded ? f->pos[i].name : m->neurons[2 * i + 1];
            long k = find_k(cw, t, nm);
            if (k < 0 || (size_t)k == cw->self_k)
                continue; /* inactive (embedded, or removed this cycle) */
            const double *xy =
                m->embedded ? &f->pos[i].x : dmm__fields_position(net, t, nm);
            /* as field_at: by name or a constant field, every target is
             * inside; by position, those that have one */
            bool inside = m->by_name || fv->constant || xy;
            if (!inside && m->target != T_WEIGHT)
                continue; /* outside: unchanged */
            if (add_app(net, f, k, (uint32_t)q, !inside, xy))
                return DMM_E_NOMEM;
        }
    }
    for (size_t q = 0; q < f->nmods; q++)
        f->fv[q].built_const = f->fv[q].constant;
    f->cached = true;
    f->gen = net->cw_gen;
    return 0;
}

size_t dmm__fields_rebuilds(const dmm_net *net)
{
    return net->fields ? net->fields->rebuilds : 0;
}

void dmm__fields_end(dmm_net *net)
{
    dmm__fields *f = net->fields;
    net->fmod = NULL;
    net->fapps = NULL;
    if (!f)
        return;
    for (size_t q = 0; q < f->nmods && q < f->fv_cap; q++) {
        vv_free(net->vc, f->fv[q].v);
        f->fv[q].v = VV_ZERO;
    }
}

int dmm__fields_begin(dmm_net *net, dmm_error *err)
{
    dmm__fields *f = net->fields;
    if (!f->nmods)
        return 0;
    if (f->fv_cap < f->nmods) {
        dmm__fval *p =
            dmm__grow1(net->vc, f->fv, sizeof *p, f->fv_cap, f->nmods);
        if (!p)
            return nomem(err);
        f->fv = p;
        f->fv_cap = f->nmods;
    }
    /* The compiled list first: a rebuild makes Y_{t-1} as a tree (net->y),
     * a patch keeps its neurons and their outputs where they are, so the
     * fields read below are Y_{t-1}'s either way. */
    int rc = dmm__compiled_sync(net, dmm__w(net));
    if (rc)
        dmm_error_set(err, rc, "", "%s", dmm_strerror(rc));
    for (size_t q = 0; q < f->nmods && !rc; q++) {
        const dmm__mod *m = &f->mods[q];
        vv v;
        if ((rc = fval_dense(net, m, &f->fv[q])) < 1) {
            if (rc)
                nomem(err);
        } else if ((rc = y_stream(net, m->field, &v)))
            nomem(err);
        else
            rc = fval_set(net, m, &f->fv[q], v, err);
    }
    /* Then what applies to each compiled neuron: built when the neurons or
     * the fields changed, else only the field's value at each target. */
    bool same = !rc && f->cached && f->gen == net->cw_gen;
    for (size_t q = 0; same && q < f->nmods; q++)
        same = f->mods[q].by_name || f->fv[q].constant == f->fv[q].built_const;
    if (!rc && !same && apps_build(net, f))
        rc = nomem(err);
    const dmm__neuron *neu = net->cw.neu;
    for (size_t a = 0; !rc && a < f->napps; a++) {
        dmm__app *ap = &f->apps[a];
        if (ap->outside)
            continue;
        const dmm__mod *m = &f->mods[ap->mod];
        const dmm__fval *fv = &f->fv[ap->mod];
        if (m->by_name) {
            vv_label tn[2] = {neu[ap->k].type, neu[ap->k].name};
            ap->s = vv_get(fv->v, tn, 2).num;
        } else {
            ap->s = sample_at(fv, ap->x, ap->y);
        }
    }
    if (rc) {
        dmm__fields_end(net);
        return rc;
    }
    net->fmod = f->napps ? f->first : NULL;
    net->fapps = f->apps;
    return 0;
}

static double apply_num(int mode, double s, double p)
{
    switch (mode) {
    case M_MULTIPLY:
        return s * p;
    case M_ADD:
        return p + s;
    default:
        return s;
    }
}

/* new: stream X transformed. */
static int apply_vv(vv_ctx *vc, int mode, double s, vv x, vv *out)
{
    switch (mode) {
    case M_MULTIPLY:
        return vv_scale(vc, s, x, out);
    case M_ADD:
        return vv_add(vc, x, vv_number(s), out);
    default:
        *out = vv_number(s);
        return 0;
    }
}

/* Weight w of neuron k's row from source (g, ng) (has_src false for a
 * weight not at depth 3), through k's weight modulations in order. */
static double weight_mod(const dmm_net *net, size_t k, bool has_src, vv_label g,
                         vv_label ng, double w)
{
    const dmm__fields *f = net->fields;
    for (int32_t a = net->fmod[k]; a >= 0; a = f->apps[a].next) {
        const dmm__app *ap = &f->apps[a];
        const dmm__mod *m = &f->mods[ap->mod];
        if (m->target != T_WEIGHT)
            continue;
        bool out = false;
        double s = 1;
        if (m->at != AT_SOURCE) {
            out |= ap->outside;
            s = ap->s;
        }
        if (m->at != AT_TARGET) {
            if (!has_src)
                continue; /* no single source: unchanged */
            double sg;
            if (!field_at(net, m, &f->fv[ap->mod], g, ng, &sg))
                out = true;
            else
                s = m->at == AT_SOURCE ? sg : s * sg;
        }
        if (out) { /* outside the field: 1 (multiply) or 0 (add) */
            if (m->mode == M_REPLACE)
                continue;
            s = m->mode == M_MULTIPLY ? 1.0 : 0.0;
        }
        w = apply_num(m->mode, s, w);
    }
    return w;
}

static bool has_target(const dmm_net *net, size_t k, int target)
{
    const dmm__fields *f = net->fields;
    for (int32_t a = net->fmod[k]; a >= 0; a = f->apps[a].next)
        if (f->mods[f->apps[a].mod].target == target)
            return true;
    return false;
}

typedef struct leaf_walk {
    const dmm_net *net;
    size_t k;
    vv acc;
    int rc;
} leaf_walk;

static int leaf_mod(const vv_label *path, int depth, double x, void *ud)
{
    leaf_walk *lw = ud;
    double w = weight_mod(lw->net, lw->k, depth == 3, depth >= 2 ? path[0] : 0,
                          depth >= 2 ? path[1] : 0, x);
    vv term;
    int rc =
        vv_set(lw->net->vc, VV_ZERO, path, (size_t)depth, vv_number(w), &term);
    if (!rc) {
        rc = vv_axpy(lw->net->vc, &lw->acc, 1.0, term);
        vv_free(lw->net->vc, term);
    }
    return lw->rc = rc;
}

int dmm__fields_row(dmm_net *net, size_t k, size_t j, vv *out)
{
    if (!has_target(net, k, T_WEIGHT))
        return 1;
    const dmm__row *r = &net->cw.neu[k].rows[j];
    if (!r->fast) {
        /* Rebuild the row with each stored weight modulated, then sum as
         * usual: W itself is untouched. */
        leaf_walk lw = {net, k, VV_ZERO, 0};
        vv_foreach_leaf(r->row, leaf_mod, &lw);
        int rc = lw.rc;
        if (!rc)
            rc = vv_lincomb(net->vc, lw.acc, net->y, out);
        vv_free(net->vc, lw.acc);
        return rc;
    }
    /* As row_value (net_cycle.c), with each weight modulated: the same
     * order of sums, so an identity modulation gives the same bits. */
    const dmm__pval *pv = net->cw.pval;
    const dmm__port *ports = net->cw.ports;
    double sum = 0;
    uint32_t t = 0;
    for (; t < r->nterms; t++) {
        vv v = pv[r->port[t]].v;
        if (v.map)
            break;
        const dmm__port *p = &ports[r->port[t]];
        sum += weight_mod(net, k, true, p->g, p->ng, r->w[t]) * v.num;
    }
    if (t == r->nterms) {
        if (!isfinite(sum))
            return DMM_E_NONFINITE;
        *out = vv_number(sum == 0.0 ? 0.0 : sum);
        return 0;
    }
    vv acc = VV_ZERO;
    for (t = 0; t < r->nterms; t++) {
        const dmm__port *p = &ports[r->port[t]];
        double w = weight_mod(net, k, true, p->g, p->ng, r->w[t]);
        int rc = vv_axpy(net->vc, &acc, w, pv[r->port[t]].v);
        if (rc) {
            vv_free(net->vc, acc);
            return rc;
        }
    }
    *out = acc;
    return 0;
}

/* *io (owned) with stream l transformed by one application. */
static int stream_apply(vv_ctx *vc, vv *io, vv_label l, int mode, double s)
{
    vv x, y;
    int rc = apply_vv(vc, mode, s, vv_child(*io, l), &x);
    if (rc)
        return rc;
    rc = vv_set(vc, *io, &l, 1, x, &y);
    vv_free(vc, x);
    if (rc)
        return rc;
    vv_free(vc, *io);
    *io = y;
    return 0;
}

/* Streams of neuron k's input or output (target) through its modulations. */
static int streams_mod(dmm_net *net, size_t k, int target, vv *io)
{
    const dmm__fields *f = net->fields;
    const dmm__neuron *n = &net->cw.neu[k];
    for (int32_t a = net->fmod[k]; a >= 0; a = f->apps[a].next) {
        const dmm__app *ap = &f->apps[a];
        const dmm__mod *m = &f->mods[ap->mod];
        if (m->target != target)
            continue;
        int rc = 0;
        if (m->has_stream) {
            rc = stream_apply(net->vc, io, m->stream, m->mode, ap->s);
        } else if (target == T_INPUT) {
            for (size_t j = 0; !rc && j < n->nrows; j++)
                rc =
                    stream_apply(net->vc, io, n->rows[j].input, m->mode, ap->s);
        } else if (n->info->out) {
            for (size_t j = 0; !rc && j < n->info->n_outputs; j++)
                rc = stream_apply(net->vc, io, n->info->out[j], m->mode, ap->s);
        } else { /* variadic: the streams it emitted */
            size_t cnt = vv_nchildren(*io), i = 0;
            vv_label lab[64];
            vv_label *ls =
                cnt <= 64 ? lab : dmm__alloc(net->vc, cnt * sizeof *ls);
            if (!ls)
                return DMM_E_NOMEM;
            vv_iter it;
            vv_iter_init(&it, *io);
            vv ch;
            while (i < cnt && vv_iter_next(&it, &ls[i], &ch))
                i++;
            for (size_t j = 0; !rc && j < i; j++)
                rc = stream_apply(net->vc, io, ls[j], m->mode, ap->s);
            if (ls != lab)
                dmm__free(net->vc, ls, cnt * sizeof *ls);
        }
        if (rc)
            return rc;
    }
    return 0;
}

int dmm__fields_input(dmm_net *net, size_t k, vv *input)
{
    return has_target(net, k, T_INPUT) ? streams_mod(net, k, T_INPUT, input)
                                       : 0;
}

int dmm__fields_output(dmm_net *net, size_t k, vv *output)
{
    return has_target(net, k, T_OUTPUT) ? streams_mod(net, k, T_OUTPUT, output)
                                        : 0;
}

int dmm__fields_params(dmm_net *net, size_t k, dmm_fire *fire, vv *own_in,
                       vv *own_params)
{
    *own_in = *own_params = VV_ZERO;
    if (!has_target(net, k, T_PARAM))
        return 0;
    const dmm__fields *f = net->fields;
    const dmm_type_info *ti = fire->type;
    vv in = vv_ref(fire->input), par = vv_ref(fire->params);
    int rc = 0;
    for (int32_t a = net->fmod[k]; a >= 0 && !rc; a = f->apps[a].next) {
        const dmm__app *ap = &f->apps[a];
        const dmm__mod *m = &f->mods[ap->mod];
        if (m->target != T_PARAM)
            continue;
        size_t q = 0;
        while (q < ti->n_params && ti->param[q] != m->param)
            q++;
        dmm_assert(q < ti->n_params); /* dmm__fields_check */
        /* The file's value or default, then an input stream of the same
         * name (dmm_fire_param), then this modulation. */
        dmm_fire tmp = {.vc = net->vc, .type = ti, .input = in, .params = par};
        double p = apply_num(m->mode, ap->s, dmm_fire_param(&tmp, q));
        vv x, pv = vv_number(p);
        if ((rc = vv_set(net->vc, par, &m->param, 1, pv, &x)))
            break;
        vv_free(net->vc, par);
        par = x;
        if (ti->in && !vv_is_zero(vv_child(in, m->param))) {
            if ((rc = vv_set(net->vc, in, &m->param, 1, pv, &x)))
                break;
            vv_free(net->vc, in);
            in = x;
        }
    }
    if (rc) {
        vv_free(net->vc, in);
        vv_free(net->vc, par);
        return rc;
    }
    fire->input = *own_in = in;
    fire->params = *own_params = par;
    return 0;
}

/* ---- live changes -------------------------------------------------------- */

/* Swap in candidate c when it passes the checks against the current W;
 * else free it. Modulation `changed` of c (SIZE_MAX: none) is the one the
 * request gave: it is checked first, its errors located in the request
 * ("/modulation/..."); the others keep their place in the network. */
static int fields_commit(dmm_net *net, dmm__fields *c, size_t changed,
                         dmm_error *err)
{
    int rc = dmm__y_make(net);
    if (rc) {
        fields_free(net->vc, c);
        return nomem(err);
    }
    vv w = dmm__matrix_of(net, net->y);
    if ((changed != SIZE_MAX &&
         (rc = check_mod(net, c, changed, w, "/modulation", err))) ||
        (rc = fields_check(net, c, w, "/modulations", err))) {
        fields_free(net->vc, c);
        return rc;
    }
    dmm__fields_free(net);
    net->fields = c;
    return 0;
}

/* The name of the modulation to remove: a JSON string, or an object with
 * "name"; interned into *l. */
static int read_remove(vv_ctx *vc, const json_t *mod, vv_label *l,
                       dmm_error *err)
{
    const json_t *name =
        json_is_object(mod) ? json_object_get(mod, "name") : mod;
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        vv_intern(vc, json_string_value(name), json_string_length(name), l))
        return bad(err,
                   json_is_object(mod) ? "/modulation/name" : "/modulation",
                   "expected the modulation's name (a string, or an object "
                   "with \"name\")");
    return 0;
}

static int read_action(const char *action, bool *add, bool *remove,
                       dmm_error *err)
{
    *add = !strcmp(action, "add");
    *remove = !strcmp(action, "remove");
    if (!*add && !*remove && strcmp(action, "change"))
        return bad(err, "/action",
                   "action must be add, remove or change (not \"%s\")", action);
    return 0;
}

int dmm_net_modulate(dmm_net *net, const char *action, const char *text,
                     size_t len, dmm_error *err)
{
    dmm_error_clear(err);
    bool add, remove;
    int rc = read_action(action, &add, &remove, err);
    if (rc)
        return rc;
    json_t *mod = vv_json_load(text, len, "<modulation>", err);
    if (!mod)
        return err ? err->code : DMM_E_INVAL;
    dmm__fields *c = fields_clone(net->vc, net->fields);
    if (!c) {
        json_decref(mod);
        return nomem(err);
    }
    dmm__mod m = {0};
    size_t at = c->nmods, changed = SIZE_MAX;
    if (remove) {
        vv_label l = 0;
        rc = read_remove(net->vc, mod, &l, err);
        for (size_t k = 0; !rc && k < c->nmods; k++)
            if (c->mods[k].name == l)
                at = k;
        if (!rc && at == c->nmods)
            rc = bad(err, "/modulation", "no modulation named \"%s\"",
                     dmm__lstr(net, l));
        if (!rc) {
            mod_clear(net->vc, &c->mods[at]);
            memmove(c->mods + at, c->mods + at + 1,
                    (c->nmods - at - 1) * sizeof *c->mods);
            c->nmods--;
        }
    } else if (!(rc = read_mod(net->vc, net->reg, mod, "/modulation", &m,
                               err))) {
        for (size_t k = 0; k < c->nmods; k++)
            if (c->mods[k].name == m.name)
                at = k;
        if (!add && at == c->nmods) {
            rc = bad(err, "/modulation/name", "no modulation named \"%s\"",
                     dmm__lstr(net, m.name));
        } else if (!add) { /* change: in place, keeping its order */
            mod_clear(net->vc, &c->mods[at]);
            c->mods[at] = m;
            changed = at;
            m = (dmm__mod){0};
        } else if (at != c->nmods) {
            rc =
                bad(err, "/modulation/name", "duplicate modulation name \"%s\"",
                    dmm__lstr(net, m.name));
        } else if (append_mod(net->vc, c, &m)) {
            rc = nomem(err);
        } else {
            changed = c->nmods - 1;
            m = (dmm__mod){0};
        }
    }
    json_decref(mod);
    mod_clear(net->vc, &m);
    if (rc) {
        fields_free(net->vc, c);
        return rc;
    }
    return fields_commit(net, c, changed, err);
}

/* Neuron's position := xy (NULL: removed), checked and committed. */
static int position_set(dmm_net *net, const vv_label *tn, const double *xy,
                        dmm_error *err)
{
    dmm__fields *c = fields_clone(net->vc, net->fields);
    if (!c)
        return nomem(err);
    if (pos_set(net->vc, c, tn[0], tn[1], xy)) {
        fields_free(net->vc, c);
        return nomem(err);
    }
    return fields_commit(net, c, SIZE_MAX, err);
}

int dmm_net_position(dmm_net *net, const char *neuron, const double *xy,
                     size_t n, dmm_error *err)
{
    dmm_error_clear(err);
    vv_label tn[2];
    json_t *s = json_string(neuron);
    if (!s)
        return nomem(err);
    int rc = read_neuron_path(net->vc, net->reg, s, "/neuron", 2, tn, err);
    json_decref(s);
    if (rc)
        return rc;
    double v[2] = {0, 0};
    if (xy) {
        bool ok = n == 1 || n == 2;
        for (size_t q = 0; ok && q < n; q++)
            ok = isfinite(xy[q]), v[q] = xy[q];
        if (!ok)
            return bad(err, "/at",
                       "a position must be an array of one or two finite "
                       "numbers ([x] or [x, y])");
    }
    return position_set(net, tn, xy ? v : NULL, err);
}

/* "at": null (none) or [x] / [x, y], as the file reader reads them. */
static int read_at(const json_t *at, double *xy, bool *none, dmm_error *err)
{
    *none = json_is_null(at);
    return *none ? 0 : read_xy(at, "/at", xy, err);
}

int dmm_net_position_json(dmm_net *net, const char *neuron, const char *at,
                          size_t len, dmm_error *err)
{
    dmm_error_clear(err);
    json_t *s = json_string(neuron);
    if (!s)
        return nomem(err);
    vv_label tn[2];
    int rc = read_neuron_path(net->vc, net->reg, s, "/neuron", 2, tn, err);
    json_decref(s);
    if (rc)
        return rc;
    json_t *j = vv_json_load(at, len, "<position>", err);
    if (!j)
        return err ? err->code : DMM_E_INVAL;
    double xy[2];
    bool none;
    rc = read_at(j, xy, &none, err);
    json_decref(j);
    return rc ? rc : position_set(net, tn, none ? NULL : xy, err);
}

int dmm__fields_syntax(vv_ctx *vc, const char *what, const json_t *a,
                       const json_t *b, dmm_error *err)
{
    if (!strcmp(what, "position")) {
        vv_label tn[2];
        double xy[2];
        bool none;
        int rc = read_neuron_path(vc, NULL, a, "/neuron", 2, tn, err);
        return rc ? rc : read_at(b, xy, &none, err);
    }
    if (!strcmp(what, "fields")) {
        if (!json_is_object(a))
            return bad(err, "/fields",
                       "expected an object with \"positions\" and "
                       "\"modulations\"");
        const json_t *pos = json_object_get(a, "positions");
        const json_t *mods = json_object_get(a, "modulations");
        int rc =
            pos ? read_positions(vc, NULL, NULL, pos, "/fields/positions", err)
                : 0;
        if (!rc && mods && !json_is_array(mods))
            rc = bad(err, "/fields/modulations",
                     "modulations must be an array of objects");
        for (size_t k = 0; !rc && mods && k < json_array_size(mods); k++) {
            char at[64];
            snprintf(at, sizeof at, "/fields/modulations/%zu", k);
            dmm__mod m;
            rc = read_mod(vc, NULL, json_array_get(mods, k), at, &m, err);
            mod_clear(vc, &m);
        }
        return rc;
    }
    /* a modulate event: what is its action, a the modulation */
    bool add, remove;
    int rc = read_action(what, &add, &remove, err);
    if (rc)
        return rc;
    if (remove) {
        vv_label l;
        return read_remove(vc, a, &l, err);
    }
    dmm__mod m;
    rc = read_mod(vc, NULL, a, "/modulation", &m, err);
    mod_clear(vc, &m);
    return rc;
}

void dmm_net_fields_count(const dmm_net *net, size_t *positions,
                          size_t *modulations)
{
    *positions = net->fields ? net->fields->npos : 0;
    *modulations = net->fields ? net->fields->nmods : 0;
}

int dmm_net_fields_save(const dmm_net *net, vv_buf *b)
{
    int rc = vv_buf_append(b, "{\"dmm\": 1", 9);
    if (!rc)
        rc = dmm__fields_write(net, b);
    if (!rc)
        rc = vv_buf_append(b, "}", 1);
    return rc;
}

int dmm_net_fields_restore(dmm_net *net, const char *text, size_t len,
                           dmm_error *err)
{
    dmm_error_clear(err);
    json_t *root = vv_json_load(text, len, "<fields>", err);
    if (!root)
        return err ? err->code : DMM_E_INVAL;
    int rc = dmm__y_make(net);
    if (rc)
        nomem(err);
    else
        rc = dmm__fields_read(net, json_object_get(root, "positions"),
                              json_object_get(root, "modulations"),
                              dmm__matrix_of(net, net->y), err);
    if (!rc && !json_object_get(root, "positions") &&
        !json_object_get(root, "modulations"))
        dmm__fields_free(net);
    json_decref(root);
    return rc;
}

/* ---- kinds of field (dmm check) ------------------------------------------ */

/* The network's neurons as a graph: node k is active neuron (type, name)
 * in label order, src[off[k] .. off[k + 1]) the nodes its rows read. */
typedef struct kgraph {
    vv_label *tn; /* type, name pairs */
    size_t n;
    size_t *off, *src, nsrc, cap;
} kgraph;

static long kg_find(const kgraph *g, vv_label type, vv_label name)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = pos_cmp(g->tn[2 * mid], g->tn[2 * mid + 1], type, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int kg_edge(vv_ctx *vc, kgraph *g, size_t s)
{
    if (g->nsrc == g->cap) {
        size_t cap = dmm__cap_for(g->cap, g->nsrc + 1, 64);
        size_t *p = dmm__grow1(vc, g->src, sizeof *p, g->cap, cap);
        if (!p)
            return DMM_E_NOMEM;
        g->src = p;
        g->cap = cap;
    }
    g->src[g->nsrc++] = s;
    return 0;
}

/* Sources of node k's row r: a scalar part at the row reads all of Y, at
 * a type every neuron of it, below that the one neuron. */
static int kg_row(vv_ctx *vc, kgraph *g, vv r)
{
    int rc = 0;
    if (r.num != 0) {
        for (size_t s = 0; s < g->n && !rc; s++)
            rc = kg_edge(vc, g, s);
        return rc;
    }
    vv_iter it, in;
    vv_label t, nm;
    vv vt, vn;
    vv_iter_init(&it, r);
    while (!rc && vv_iter_next(&it, &t, &vt)) {
        if (vt.num != 0) {
            for (size_t s = 0; s < g->n && !rc; s++)
                if (g->tn[2 * s] == t)
                    rc = kg_edge(vc, g, s);
            continue;
        }
        vv_iter_init(&in, vt);
        while (!rc && vv_iter_next(&in, &nm, &vn)) {
            long s = kg_find(g, t, nm);
            if (s >= 0)
                rc = kg_edge(vc, g, (size_t)s);
        }
    }
    return rc;
}

static void kg_free(vv_ctx *vc, kgraph *g)
{
    dmm__free(vc, g->tn, (2 * g->n + 2) * sizeof *g->tn);
    dmm__free(vc, g->off, (g->n + 1) * sizeof *g->off);
    dmm__free(vc, g->src, g->cap * sizeof *g->src);
}

/* The graph of W; an input neuron's rows are not followed (it emits what
 * it is fed). */
static int kg_build(const dmm_net *net, vv w, kgraph *g)
{
    vv_ctx *vc = net->vc;
    *g = (kgraph){0};
    vv_iter i1, i2;
    vv_label f, nf;
    vv v1, v2;
    vv_iter_init(&i1, w);
    while (vv_iter_next(&i1, &f, &v1))
        g->n += vv_nchildren(v1);
    g->tn = dmm__alloc(vc, (2 * g->n + 2) * sizeof *g->tn);
    g->off = dmm__alloc(vc, (g->n + 1) * sizeof *g->off);
    if (!g->tn || !g->off) {
        dmm__free(vc, g->tn, (2 * g->n + 2) * sizeof *g->tn);
        dmm__free(vc, g->off, (g->n + 1) * sizeof *g->off);
        *g = (kgraph){0};
        return DMM_E_NOMEM;
    }
    size_t k = 0;
    vv_iter_init(&i1, w);
    while (vv_iter_next(&i1, &f, &v1)) {
        vv_iter_init(&i2, v1);
        while (vv_iter_next(&i2, &nf, &v2)) {
            g->tn[2 * k] = f;
            g->tn[2 * k + 1] = nf;
            k++;
        }
    }
    /* sorted, for kg_find (iteration order is label order, but that is
     * not this file's promise to rely on) */
    for (size_t a = 1; a < g->n; a++)
        for (size_t b = a; b > 0 && pos_cmp(g->tn[2 * b - 2], g->tn[2 * b - 1],
                                            g->tn[2 * b], g->tn[2 * b + 1]) > 0;
             b--) {
            vv_label t0 = g->tn[2 * b], t1 = g->tn[2 * b + 1];
            g->tn[2 * b] = g->tn[2 * b - 2];
            g->tn[2 * b + 1] = g->tn[2 * b - 1];
            g->tn[2 * b - 2] = t0;
            g->tn[2 * b - 1] = t1;
        }
    int rc = 0;
    for (k = 0; k < g->n && !rc; k++) {
        g->off[k] = g->nsrc;
        if (g->tn[2 * k] == net->input_type)
            continue;
        vv rows = vv_get(w, g->tn + 2 * k, 2);
        vv_iter it;
        vv_label in;
        vv r;
        vv_iter_init(&it, rows);
        while (!rc && vv_iter_next(&it, &in, &r))
            rc = kg_row(vc, g, r);
    }
    g->off[g->n] = g->nsrc;
    if (rc)
        kg_free(vc, g);
    return rc;
}

enum { KIND_EXT = 1, KIND_IND = 2 };

/* The kind bits of node n's output: a depth-first walk upstream (mark:
 * 0 unseen, 1 on the walk's stack, 2 done; stack: 2 g->n entries). An
 * input neuron reached is outside data (EXT); Self, a cycle (a neuron
 * reached again while on the stack: recurrent activity) or a neuron whose
 * rows read no active neuron is the network's own (IND). */
static int kg_kind(const dmm_net *net, const kgraph *g, size_t n, uint8_t *mark,
                   size_t *stack)
{
    memset(mark, 0, g->n);
    int bits = 0;
    size_t sp = 0;
    stack[sp++] = n;
    stack[sp++] = g->off[n];
    mark[n] = 1;
    while (sp) {
        size_t v = stack[sp - 2], e = stack[sp - 1];
        if (e == g->off[v]) { /* first visit */
            vv_label t = g->tn[2 * v], nm = g->tn[2 * v + 1];
            if (t == net->input_type)
                bits |= KIND_EXT;
            else if ((t == net->self[0] && nm == net->self[1]) ||
                     g->off[v + 1] == g->off[v])
                bits |= KIND_IND;
        }
        if (e == g->off[v + 1]) {
            mark[v] = 2;
            sp -= 2;
            continue;
        }
        stack[sp - 1] = e + 1;
        size_t u = g->src[e];
        if (mark[u] == 1)
            bits |= KIND_IND;
        else if (mark[u] == 0) {
            mark[u] = 1;
            stack[sp++] = u;
            stack[sp++] = g->off[u];
        }
    }
    return bits;
}

int dmm_net_field_kinds(const dmm_net *net, vv_buf *b)
{
    const dmm__fields *f = net->fields;
    if (!f || !f->nmods)
        return 0;
    kgraph g;
    int rc = kg_build(net, dmm_net_matrix(net), &g);
    if (rc)
        return rc;
    uint8_t *mark = dmm__alloc(net->vc, g.n + 1);
    size_t *stack = dmm__alloc(net->vc, (2 * g.n + 2) * sizeof *stack);
    static const char *const kinds[] = {"induced", "external", "induced",
                                        "mixed"};
    for (size_t q = 0; !rc && q < f->nmods; q++) {
        const dmm__mod *m = &f->mods[q];
        long n = kg_find(&g, m->field[0], m->field[1]);
        if (!mark || !stack) {
            rc = DMM_E_NOMEM;
            break;
        }
        int bits = n >= 0 ? kg_kind(net, &g, (size_t)n, mark, stack) : 0;
        if (!(rc = put_label(net, m->name, b)) &&
            !(rc = vv_buf_append(b, "\t", 1)) &&
            !(rc = put_path(net, m->field, 3, b)))
            rc = vv_buf_printf(b, "\t%s\n", kinds[bits]);
    }
    dmm__free(net->vc, mark, g.n + 1);
    dmm__free(net->vc, stack, (2 * g.n + 2) * sizeof *stack);
    kg_free(net->vc, &g);
    return rc;
}
