// SPDX-License-Identifier: MIT
/*
 * The neuron registry: validated descriptors with their names interned once,
 * found by name label in O(1) (uthash keyed by the label id) and listed in
 * registration order. Registration is not synchronised with lookups: register
 * everything before the registry is shared; lookups are read-only after that.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uthash exits on out-of-memory by default; a library must report it. The
 * hook sets a flag local to dmm_registry_add, the one place that adds. */
#define HASH_NONFATAL_OOM        1
#define uthash_nonfatal_oom(elt) (hash_oom = true)
#include <uthash.h>

#include "builtins.h"
#include "dmm_neuron.h"

#define REC_MAGIC 0x646d6d74u /* "dmmt": f->type came from a registry */

typedef struct type_rec {
    dmm_type_info info; /* first member: the public record, see below */
    unsigned magic;
    const dmm_registry *reg;
    UT_hash_handle hh;
    vv_label labels[]; /* in[n_inputs], out[n_outputs], param[n_params] */
} type_rec;

struct dmm_registry {
    vv_ctx *vc;
    type_rec *by_name; /* uthash head, key info.name */
    type_rec **order;  /* registration order */
    size_t n, cap;
    bool have_builtin_labels;
    dmm__builtin_labels builtin;
};

/* info is the first member, so the public pointer converts back (C11 6.7.2.1
 * p15); only records made here are ever handed out. */
static const type_rec *rec_of(const dmm_type_info *t)
{
    const type_rec *rec = (const type_rec *)t;
    dmm_assert(rec->magic == REC_MAGIC);
    return rec;
}

dmm_registry *dmm_registry_new(vv_ctx *vc)
{
    dmm_assert(vc);
    dmm_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->vc = vc;
    return r;
}

void dmm_registry_free(dmm_registry *r)
{
    if (!r)
        return;
    HASH_CLEAR(hh, r->by_name);
    for (size_t i = 0; i < r->n; i++)
        free(r->order[i]);
    free(r->order);
    free(r);
}

/* Length of a NULL-terminated name list (0 for NULL). */
static size_t count_names(const char *const *names)
{
    size_t n = 0;
    while (names && names[n])
        n++;
    return n;
}

static size_t count_params(const dmm_param_spec *p)
{
    size_t n = 0;
    while (p && p[n].name)
        n++;
    return n;
}

/* Intern n names into out; DMM_E_INVAL when two are the same. Lists are
 * short (a handful of names), so the quadratic check is the simple one. */
static int intern_list(vv_ctx *vc, size_t n, const char *const *names,
                       size_t stride, vv_label *out)
{
    for (size_t k = 0; k < n; k++) {
        const char *s =
            *(const char *const *)((const char *)names + k * stride);
        int rc = vv_intern_cstr(vc, s, &out[k]);
        if (rc)
            return rc;
        for (size_t j = 0; j < k; j++)
            if (out[j] == out[k])
                return DMM_E_INVAL;
    }
    return 0;
}

/* The bits of the inputs named in names, each one of the first 32 of the
 * ni declared inputs; DMM_E_INVAL for any other name. */
static int input_mask(const dmm_neuron_type *t, const char *const *names,
                      size_t ni, uint32_t *out)
{
    *out = 0;
    for (size_t j = 0; names && names[j]; j++) {
        size_t k = 0;
        while (k < ni && k < 32 && strcmp(t->inputs[k], names[j]) != 0)
            k++;
        if (k == ni || k == 32)
            return DMM_E_INVAL;
        *out |= UINT32_C(1) << k;
    }
    return 0;
}

int dmm_registry_add(dmm_registry *r, const dmm_neuron_type *t)
{
    if (!t || !t->name || !t->name[0] || !t->fn)
        return DMM_E_INVAL;
    vv_label name;
    int rc = vv_intern_cstr(r->vc, t->name, &name);
    if (rc)
        return rc;
    if (dmm_registry_find(r, name))
        return DMM_E_INVAL;

    size_t ni = count_names(t->inputs), no = count_names(t->outputs);
    size_t np = count_params(t->params);
    type_rec *rec = calloc(1, sizeof *rec + (ni + no + np) * sizeof(vv_label));
    if (!rec)
        return DMM_E_NOMEM;
    vv_label *in = rec->labels, *out = in + ni, *param = out + no;
    if ((rc = intern_list(r->vc, ni, t->inputs, sizeof(char *), in)) ||
        (rc = intern_list(r->vc, no, t->outputs, sizeof(char *), out)) ||
        (rc = intern_list(r->vc, np, np ? &t->params[0].name : NULL,
                          sizeof(dmm_param_spec), param))) {
        free(rec);
        return rc;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        type_rec **order = realloc(r->order, cap * sizeof *order);
        if (!order) {
            free(rec);
            return DMM_E_NOMEM;
        }
        r->order = order;
        r->cap = cap;
    }
    uint32_t unread = 0, terms = 0;
    for (size_t k = 0; k < np; k++)
        if (t->params[k].kind == DMM_PARAM_FILE && (!t->stateful || !t->file))
            rc = DMM_E_INVAL; /* nowhere to put what the file holds */
    if (rc || (rc = input_mask(t, t->unread, ni, &unread)) ||
        (rc = input_mask(t, t->terms, ni, &terms))) {
        free(rec);
        return rc;
    }
    rec->magic = REC_MAGIC;
    rec->reg = r;
    rec->info = (dmm_type_info){
        .desc = t,
        .name = name,
        .n_inputs = ni,
        .n_outputs = no,
        .in = t->inputs ? in : NULL,
        .out = t->outputs ? out : NULL,
        .n_params = np,
        .param = param,
        .unread = unread,
        .terms = terms,
    };
    bool hash_oom = false;
    HASH_ADD(hh, r->by_name, info.name, sizeof(vv_label), rec);
    if (hash_oom) { /* uthash rolled the insertion back */
        free(rec);
        return DMM_E_NOMEM;
    }
    r->order[r->n++] = rec;
    return 0;
}

int dmm_registry_add_builtins(dmm_registry *r)
{
    int rc;
    if (!r->have_builtin_labels) {
        if ((rc = vv_intern_cstr(r->vc, "this", &r->builtin.this_)) ||
            (rc = vv_intern_cstr(r->vc, "rest", &r->builtin.rest)))
            return rc;
        r->have_builtin_labels = true;
    }
    const dmm_neuron_type *tables[] = {
        dmm__builtin_basic,        dmm__builtin_activation,
        dmm__builtin_meanfield,    dmm__builtin_attention,
        dmm__builtin_interference, dmm__builtin_learner,
        dmm__builtin_synth};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        for (const dmm_neuron_type *t = tables[i]; t->name; t++)
            if ((rc = dmm_registry_add(r, t)))
                return rc;
    for (int a = 0; a < DMM__DELAY_MAX; a++) {
        char s[8];
        snprintf(s, sizeof s, "%d", a);
        if ((rc = vv_intern_cstr(r->vc, s, &r->builtin.age[a])))
            return rc;
    }
    struct {
        const char *s;
        vv_label *l;
    } keys[] = {{"count", &r->builtin.count},  {"next", &r->builtin.next},
                {"age", &r->builtin.age_now},  {"episode", &r->builtin.episode},
                {"table", &r->builtin.table},  {"horizon", &r->builtin.horizon},
                {"masses", &r->builtin.masses}};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if ((rc = vv_intern_cstr(r->vc, keys[k].s, keys[k].l)))
            return rc;
    return 0;
}

const dmm__builtin_labels *dmm__builtin_labels_of(const dmm_type_info *t)
{
    const dmm_registry *r = rec_of(t)->reg;
    dmm_assert(r->have_builtin_labels);
    return &r->builtin;
}

const dmm_type_info *dmm_registry_find(const dmm_registry *r, vv_label name)
{
    type_rec *rec = NULL;
    HASH_FIND(hh, r->by_name, &name, sizeof name, rec);
    return rec ? &rec->info : NULL;
}

size_t dmm_registry_count(const dmm_registry *r)
{
    return r->n;
}

const dmm_type_info *dmm_registry_at(const dmm_registry *r, size_t i)
{
    return i < r->n ? &r->order[i]->info : NULL;
}

vv_ctx *dmm_registry_vctx(const dmm_registry *r)
{
    return r->vc;
}

int dmm_type_input_index(const dmm_type_info *t, vv_label label)
{
    for (size_t k = 0; t->in && k < t->n_inputs; k++)
        if (t->in[k] == label)
            return (int)k;
    return -1;
}

bool dmm_type_input_unread(const dmm_type_info *t, vv_label label)
{
    int k = dmm_type_input_index(t, label);
    return k >= 0 && k < 32 && (t->unread >> k & 1);
}

bool dmm_type_accepts_input(const dmm_type_info *t, vv_label label)
{
    if (!t->in || dmm_type_input_index(t, label) >= 0)
        return true;
    for (size_t k = 0; k < t->n_params; k++)
        if (t->param[k] == label)
            return t->desc->params[k].kind == DMM_PARAM_NUMBER;
    return false;
}

double dmm_fire_param(const dmm_fire *f, size_t k)
{
    dmm_assert(k < f->type->n_params);
    if (f->type->desc->params[k].kind != DMM_PARAM_NUMBER)
        return 0.0; /* its contents are in the state */
    /* A fixed-input type takes each parameter as an input stream of the same
     * name too (dmm_type_accepts_input): its scalar part, when non-zero,
     * overrides the file's value for this firing. Variadic types cannot:
     * every input name is data to them. */
    if (f->type->in) {
        vv s = vv_child(f->input, f->type->param[k]);
        if (s.num != 0.0)
            return s.num;
    }
    /* Canonical values store no zeros, so a parameter set to 0 at the root of
     * its subtree reads as absent and takes the default: give defaults that
     * make 0 unnecessary, or 0 as the default. */
    vv v = vv_child(f->params, f->type->param[k]);
    return vv_is_zero(v) ? f->type->desc->params[k].default_value : v.num;
}

int dmm__fire_fail(dmm_fire *f, int rc)
{
    const char *type = vv_label_str(f->vc, f->type->name, NULL);
    const char *name = vv_label_str(f->vc, f->name, NULL);
    dmm_error_set(f->err, rc, "", "neuron %s/%s: %s", type, name,
                  dmm_strerror(rc));
    return rc;
}

int dmm__fire_failf(dmm_fire *f, int rc, const char *fmt, ...)
{
    char why[sizeof f->err->text];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof why) /* cut: say so, as dmm_error_set does */
        memcpy(why + sizeof why - 4, "...", 4);
    const char *type = vv_label_str(f->vc, f->type->name, NULL);
    const char *name = vv_label_str(f->vc, f->name, NULL);
    dmm_error_set(f->err, rc, "", "neuron %s/%s: %s", type, name, why);
    return rc;
}

int dmm__fire_not_number(dmm_fire *f, vv v, const char *kind, vv_label name)
{
    return dmm__fire_failf(f, DMM_E_INVAL,
                           "%s%s must be a bare number, got a map with %zu "
                           "children",
                           kind, vv_label_str(f->vc, name, NULL),
                           vv_nchildren(v));
}

int dmm__fire_map(dmm_fire *f, size_t n, vv_label *l, vv *v, vv *out)
{
    /* insertion: the callers' few pairs come nearly sorted */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && l[k - 1] > l[k]; k--) {
            vv_label tl = l[k];
            vv tv = v[k];
            l[k] = l[k - 1];
            v[k] = v[k - 1];
            l[k - 1] = tl;
            v[k - 1] = tv;
        }
    int rc = vv_from_pairs(f->vc, 0, n, l, v, out);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/* ---- the catalogue as Markdown ------------------------------------------ */

/* Text for a table cell or a list item: '|' escaped, newlines flattened. */
static int put_text(vv_buf *b, const char *s)
{
    int rc = 0;
    for (; s && *s && !rc; s++) {
        if (*s == '|')
            rc = vv_buf_append(b, "\\|", 2);
        else if (*s == '\n' || *s == '\r')
            rc = vv_buf_append(b, " ", 1);
        else
            rc = vv_buf_append(b, s, 1);
    }
    return rc;
}

/* `a`, `b` — or the variadic wording, or "none" for an empty fixed list. */
static int put_names(vv_buf *b, const char *const *names, const char *variadic)
{
    if (!names)
        return put_text(b, variadic);
    if (!names[0])
        return vv_buf_append(b, "none", 4);
    for (size_t k = 0; names[k]; k++) {
        int rc = vv_buf_printf(b, "%s`", k ? ", " : "");
        if (!rc)
            rc = put_text(b, names[k]);
        if (!rc)
            rc = vv_buf_append(b, "`", 1);
        if (rc)
            return rc;
    }
    return 0;
}

static int put_outputs(vv_buf *b, const dmm_neuron_type *t)
{
    return put_names(b, t->outputs,
                     t->outputs_doc ? t->outputs_doc : "any names");
}

static int put_type_section(vv_buf *b, const dmm_neuron_type *t)
{
    int rc;
    if ((rc = vv_buf_printf(b, "\n## `%s`\n\n", t->name)) ||
        (rc = put_text(b, t->summary)) ||
        (rc = vv_buf_append(b, "\n\n- Inputs: ", 12)) ||
        (rc = put_names(b, t->inputs, "any names")) ||
        (rc = vv_buf_append(b, "\n- Outputs: ", 12)) ||
        (rc = put_outputs(b, t)) ||
        (rc = vv_buf_printf(b, "\n- State: %s\n",
                            t->stateful ? "kept between firings" : "none")))
        return rc;
    if (!t->params || !t->params[0].name)
        return vv_buf_append(b, "- Parameters: none\n", 19);
    if ((rc = vv_buf_printf(b, "\n| parameter | default | summary |\n"
                               "|---|---|---|\n")))
        return rc;
    for (const dmm_param_spec *p = t->params; p->name; p++) {
        bool file = p->kind == DMM_PARAM_FILE;
        if ((rc = vv_buf_append(b, "| `", 3)) || (rc = put_text(b, p->name)) ||
            (rc = vv_buf_append(b, "` | ", 4)) ||
            (rc = file ? vv_buf_printf(b, "(a file name)")
                       : vv_buf_number(b, p->default_value)) ||
            (rc = vv_buf_append(b, " | ", 3)) ||
            (rc = put_text(b, p->summary)) ||
            (rc = vv_buf_append(b, " |\n", 3)))
            return rc;
    }
    return 0;
}

int dmm_registry_markdown(const dmm_registry *r, vv_buf *b)
{
    int rc = vv_buf_printf(
        b, "# Neuron types\n\n"
           "Generated by `dmm neurons --markdown` from the registry's "
           "descriptors; do not edit by hand. Semantics: spec dmm.md §3.\n\n"
           "Parameters: the file's `params` give a neuron's value, else the "
           "default below. A type with fixed inputs also takes each "
           "parameter as an input stream of the same name: when the "
           "stream's number (its scalar part) is non-zero it overrides the "
           "parameter for that cycle, so one neuron can modulate another's "
           "activation (a 0 reads as absent, as in `params`). Variadic "
           "types (`delay`) cannot: every input name is data to them. A "
           "parameter whose default is \"(a file name)\" is a string "
           "instead, a file beside the network file (docs/network-format.md, "
           "\"Files\"), read when the network is loaded; it is no input "
           "stream.\n\n"
           "| type | inputs | outputs | state | summary |\n"
           "|---|---|---|---|---|\n");
    for (size_t i = 0; i < r->n && !rc; i++) {
        const dmm_neuron_type *t = r->order[i]->info.desc;
        if ((rc = vv_buf_printf(b, "| `%s` | ", t->name)) ||
            (rc = put_names(b, t->inputs, "any")) ||
            (rc = vv_buf_append(b, " | ", 3)) || (rc = put_outputs(b, t)) ||
            (rc = vv_buf_printf(b, " | %s | ", t->stateful ? "yes" : "no")) ||
            (rc = put_text(b, t->summary)) ||
            (rc = vv_buf_append(b, " |\n", 3)))
            break;
    }
    for (size_t i = 0; i < r->n && !rc; i++)
        rc = put_type_section(b, r->order[i]->info.desc);
    return rc;
}

bool dmm_param_allows(const dmm_param_spec *p, double x)
{
    if (!isfinite(x))
        return false;
    if (p->min != p->max && (x < p->min || x > p->max))
        return false;
    return !p->integer || x == floor(x);
}
