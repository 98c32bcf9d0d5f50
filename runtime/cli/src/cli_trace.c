// SPDX-License-Identifier: MIT
/*
 * What `dmm run` prints of an output map: the selection (--select path
 * prefixes, `*` matching one level; Self's output left out of traces unless
 * asked) and the three formats (json, one compact line per step; pretty,
 * indented; flat, one "STEP PATH VALUE" line per stored scalar). A selection
 * is a new value built from the outputs, so the network is never touched.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int dmm__trace_init(dmm__trace *t, vv_ctx *vc, const dmm_net *net,
                    const char *const *select, size_t nselect, bool self,
                    bool drop_self, dmm__format format)
{
    memset(t, 0, sizeof *t);
    t->vc = vc;
    t->format = format;
    if (nselect > DMM__MAX_SELECT) {
        fprintf(stderr, "dmm run: at most %d --select paths\n",
                DMM__MAX_SELECT);
        return DMM_EXIT_USAGE;
    }
    vv_label self_id[3] = {DMM__NO_LABEL, DMM__NO_LABEL, DMM__NO_LABEL};
    if (net)
        dmm_net_self(net, self_id);
    t->self_type = self_id[0];
    t->self_name = self_id[1];
    /* The text is split in a scratch context, and its labels only looked
     * up in vc: printing must not change the label table a saved state
     * holds. A label never interned names nothing (DMM__NO_LABEL). */
    vv_ctx *scratch = vv_ctx_new(NULL);
    if (!scratch)
        return DMM_EXIT_INPUT;
    bool self_selected = false;
    for (size_t k = 0; k < nselect; k++) {
        dmm_error err;
        dmm_error_clear(&err);
        dmm__select *s = &t->sel[k];
        vv_label parts[DMM__MAX_SELECT_DEPTH];
        /* A selection is a prefix of subtrees: ":number" (a scalar part,
         * which has no subtree) is refused, not read as a label. */
        if (dmm_path_parse(scratch, select[k], strlen(select[k]), parts,
                           DMM__MAX_SELECT_DEPTH, &s->n, NULL, &err) < 0) {
            fprintf(stderr, "dmm run: --select \"%s\": %s\n", select[k],
                    err.text);
            vv_ctx_free(scratch);
            return DMM_EXIT_USAGE;
        }
        s->stars = 0;
        for (size_t d = 0; d < s->n; d++) {
            size_t len;
            const char *str = vv_label_str(scratch, parts[d], &len);
            if (len == 1 && str[0] == '*')
                s->stars |= 1u << d;
            else if (vv_label_find(vc, str, len, &s->path[d]) < 0)
                s->path[d] = DMM__NO_LABEL;
        }
        if (s->n >= 2 && !(s->stars & 3) && s->path[0] == t->self_type &&
            s->path[1] == t->self_name)
            self_selected = true;
    }
    vv_ctx_free(scratch);
    t->nsel = nselect;
    t->drop_self = drop_self && !self && !self_selected;
    return 0;
}

/*
 * new: the part of v (at depth d, reached through labels that the patterns
 * of alive matched so far) that some pattern selects. A pattern that ends at
 * d keeps the whole subtree; a node's own scalar is kept only that way.
 * Depth is bounded by the context's max-depth, which the outputs obey.
 */
static int filter(const dmm__trace *t, vv v, size_t d, uint64_t alive, vv *out)
{
    for (size_t k = 0; k < t->nsel; k++)
        if ((alive >> k & 1) && t->sel[k].n == d) {
            *out = vv_ref(v);
            return 0;
        }
    *out = VV_ZERO;
    size_t n = vv_nchildren(v);
    if (n == 0)
        return 0;
    vv_label *labels = malloc(n * sizeof *labels);
    vv *kids = malloc(n * sizeof *kids);
    if (!labels || !kids) {
        free(labels);
        free(kids);
        return DMM_E_NOMEM;
    }
    size_t m = 0;
    int rc = 0;
    vv_iter it;
    vv_label l;
    vv c;
    vv_iter_init(&it, v);
    while (rc == 0 && vv_iter_next(&it, &l, &c)) {
        uint64_t next = 0;
        for (size_t k = 0; k < t->nsel; k++)
            if ((alive >> k & 1) && t->sel[k].n > d &&
                (t->sel[k].path[d] == l || (t->sel[k].stars >> d & 1)))
                next |= (uint64_t)1 << k;
        if (!next)
            continue;
        vv r;
        rc = filter(t, c, d + 1, next, &r);
        if (rc == 0 && !vv_is_zero(r)) {
            labels[m] = l;
            kids[m++] = r;
        }
    }
    if (rc == 0)
        rc = vv_from_pairs(t->vc, 0.0, m, labels, kids, out);
    else
        for (size_t k = 0; k < m; k++)
            vv_free(t->vc, kids[k]);
    free(labels);
    free(kids);
    return rc;
}

int dmm__trace_select(const dmm__trace *t, vv outputs, vv *out)
{
    vv v = vv_ref(outputs);
    if (t->drop_self) {
        vv_label p[2] = {t->self_type, t->self_name};
        vv w;
        int rc = vv_set(t->vc, v, p, 2, VV_ZERO, &w);
        vv_free(t->vc, v);
        if (rc < 0)
            return rc;
        v = w;
    }
    if (t->nsel == 0) {
        *out = v;
        return 0;
    }
    int rc = filter(
        t, v, 0, (t->nsel == 64 ? ~(uint64_t)0 : ((uint64_t)1 << t->nsel) - 1),
        out);
    vv_free(t->vc, v);
    return rc;
}

typedef struct flat_ctx {
    const dmm__trace *t;
    vv_buf *b;
    uint64_t step;
} flat_ctx;

static int flat_leaf(const vv_label *path, int depth, double x, void *ud)
{
    flat_ctx *f = ud;
    int rc = vv_buf_printf(f->b, "%llu ", (unsigned long long)f->step);
    if (rc == 0)
        rc = depth ? dmm_path_write(f->t->vc, path, (size_t)depth, f->b)
                   : vv_buf_append(f->b, "/", 1);
    if (rc == 0)
        rc = vv_buf_append(f->b, " ", 1);
    if (rc == 0)
        rc = vv_buf_number(f->b, x);
    if (rc == 0)
        rc = vv_buf_append(f->b, "\n", 1);
    return rc;
}

/* Append compact JSON text s (n bytes) to b, indented by two spaces a
 * level, numbers and key order as they are. */
static int indent(const char *s, size_t n, vv_buf *b)
{
    int depth = 0, rc = 0;
    bool str = false;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char c = s[i];
        if (str) {
            rc = vv_buf_append(b, &c, 1);
            if (c == '\\' && i + 1 < n)
                rc = rc ? rc : vv_buf_append(b, &s[++i], 1);
            else if (c == '"')
                str = false;
            continue;
        }
        if (c == ' ')
            continue;
        if (c == '}' && i > 0 && s[i - 1] == '{') {
            rc = vv_buf_append(b, "}", 1);
            depth--;
            continue;
        }
        if (c == '}') {
            depth--;
            rc = vv_buf_printf(b, "\n%*s}", 2 * depth, "");
        } else if (c == '{') {
            depth++;
            rc = i + 1 < n && s[i + 1] == '}'
                     ? vv_buf_append(b, "{", 1)
                     : vv_buf_printf(b, "{\n%*s", 2 * depth, "");
        } else if (c == ',') {
            rc = vv_buf_printf(b, ",\n%*s", 2 * depth, "");
        } else if (c == ':') {
            rc = vv_buf_append(b, ": ", 2);
        } else {
            if (c == '"')
                str = true;
            rc = vv_buf_append(b, &c, 1);
        }
    }
    return rc ? rc : vv_buf_append(b, "\n", 1);
}

int dmm__trace_write(const dmm__trace *t, uint64_t step, vv outputs, vv_buf *b)
{
    vv sel;
    int rc = dmm__trace_select(t, outputs, &sel);
    if (rc < 0)
        return rc;
    switch (t->format) {
    case DMM__FORMAT_FLAT: {
        flat_ctx f = {t, b, step};
        rc = vv_foreach_leaf(sel, flat_leaf, &f);
        break;
    }
    case DMM__FORMAT_PRETTY: {
        vv_buf line = {0};
        rc = vv_buf_printf(
            &line, "{\"step\": %llu, \"outputs\": ", (unsigned long long)step);
        if (rc == 0)
            rc = vv_write(t->vc, sel, &line);
        if (rc == 0)
            rc = vv_buf_append(&line, "}", 1);
        if (rc == 0)
            rc = indent(line.data, line.len, b);
        free(line.data);
        break;
    }
    default:
        rc = vv_buf_printf(
            b, "{\"step\": %llu, \"outputs\": ", (unsigned long long)step);
        if (rc == 0)
            rc = vv_write(t->vc, sel, b);
        if (rc == 0)
            rc = vv_buf_append(b, "}\n", 2);
    }
    vv_free(t->vc, sel);
    return rc;
}
