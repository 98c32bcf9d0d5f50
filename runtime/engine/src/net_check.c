// SPDX-License-Identifier: MIT
/*
 * The checks that keep a network valid: the matrix (every type registered,
 * every input accepted, no scalar above depth 3), the output, parameter and
 * state maps, and what an edit adds to them (finite weights, Self's row
 * kept). Loading, restoring, edits and a cycle's new W all pass here,
 * so what one refuses the others refuse with the same message. Every error
 * names a JSON Pointer.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

/* Same node as in the valid matrix (shared through path copying)? */
static bool shared(vv a, vv b)
{
    return a.map && a.map == b.map && a.num == b.num;
}

/* The children of the valid side, looked up in increasing label order by
 * walking beside w's children (cheaper than a lookup per sibling, which a
 * one-weight self-edit among thousands of neurons pays every cycle). */
typedef struct seek {
    vv_iter it;
    bool has;
    vv_label l;
    vv v;
} seek;

static void seek_init(seek *s, vv m)
{
    vv_iter_init(&s->it, m);
    s->has = vv_iter_next(&s->it, &s->l, &s->v);
}

static vv seek_get(seek *s, vv_label l)
{
    while (s->has && s->l < l)
        s->has = vv_iter_next(&s->it, &s->l, &s->v);
    return s->has && s->l == l ? s->v : VV_ZERO;
}

int dmm__check_matrix(const dmm_net *net, vv w, vv valid, const char *prefix,
                      dmm_error *err)
{
    static const char deep[] =
        "a weight must be at least three levels deep (type/name/input)";
    dmm__ptr p;
    snprintf(p.s, sizeof p.s, "%s", prefix);
    if (w.num != 0)
        return dmm_error_set(err, DMM_E_INVAL, p.s, "%s", deep);
    vv_iter itf, itn, iti, itg;
    vv_label f, nf, i, g;
    vv wf, wn, row, wg;
    seek sf, sn, si;
    seek_init(&sf, valid);
    vv_iter_init(&itf, w);
    while (vv_iter_next(&itf, &f, &wf)) {
        vv vf = seek_get(&sf, f);
        if (shared(wf, vf))
            continue;
        size_t mf = dmm__ptr_push(net->vc, &p, f);
        const dmm_type_info *info = dmm_registry_find(net->reg, f);
        if (!info)
            return dmm_error_set(err, DMM_E_INVAL, p.s,
                                 "unknown neuron type \"%s\"",
                                 dmm__lstr(net, f));
        if (wf.num != 0)
            return dmm_error_set(err, DMM_E_INVAL, p.s, "%s", deep);
        seek_init(&sn, vf);
        vv_iter_init(&itn, wf);
        while (vv_iter_next(&itn, &nf, &wn)) {
            vv vn = seek_get(&sn, nf);
            if (shared(wn, vn))
                continue;
            size_t mn = dmm__ptr_push(net->vc, &p, nf);
            if (wn.num != 0)
                return dmm_error_set(err, DMM_E_INVAL, p.s, "%s", deep);
            seek_init(&si, vn);
            vv_iter_init(&iti, wn);
            while (vv_iter_next(&iti, &i, &row)) {
                if (shared(row, seek_get(&si, i)))
                    continue;
                size_t mi = dmm__ptr_push(net->vc, &p, i);
                if (!dmm_type_accepts_input(info, i))
                    return dmm_error_set(err, DMM_E_INVAL, p.s,
                                         "neuron type \"%s\" has no input "
                                         "\"%s\"",
                                         dmm__lstr(net, f), dmm__lstr(net, i));
                /* A scalar at the row's root selects all of Y: allowed. */
                vv_iter_init(&itg, row);
                while (vv_iter_next(&itg, &g, &wg)) {
                    if (!dmm_registry_find(net->reg, g)) {
                        dmm__ptr_push(net->vc, &p, g);
                        return dmm_error_set(err, DMM_E_INVAL, p.s,
                                             "unknown neuron type \"%s\"",
                                             dmm__lstr(net, g));
                    }
                }
                dmm__ptr_pop(&p, mi);
            }
            dmm__ptr_pop(&p, mn);
        }
        dmm__ptr_pop(&p, mf);
    }
    return 0;
}

/* Every scalar of w that w does not share with valid is finite: an edit's
 * sum that overflowed is refused, not stored. Depth is bounded by the
 * context's maximum nesting. */
static int check_finite(const dmm_net *net, vv w, vv valid, dmm__ptr *p,
                        dmm_error *err)
{
    if (shared(w, valid))
        return 0;
    if (!isfinite(w.num))
        return dmm_error_set(err, DMM_E_INVAL, p->s,
                             "the weight would be %g: the sum overflows a "
                             "double",
                             w.num);
    vv_iter it;
    vv_label l;
    vv c;
    seek sv;
    seek_init(&sv, valid);
    vv_iter_init(&it, w);
    while (vv_iter_next(&it, &l, &c)) {
        size_t mark = dmm__ptr_push(net->vc, p, l);
        int rc = check_finite(net, c, seek_get(&sv, l), p, err);
        if (rc)
            return rc;
        dmm__ptr_pop(p, mark);
    }
    return 0;
}

int dmm__check_edit(const dmm_net *net, vv w, vv valid, dmm_error *err)
{
    int rc = dmm__check_matrix(net, w, valid, "", err);
    if (rc)
        return rc;
    dmm__ptr p = {""};
    if ((rc = check_finite(net, w, valid, &p, err)))
        return rc;
    if (vv_is_zero(vv_get(w, net->self, 2))) {
        dmm__ptr_push(net->vc, &p, net->self[0]);
        dmm__ptr_push(net->vc, &p, net->self[1]);
        return dmm_error_set(err, DMM_E_INVAL, p.s,
                             "the edit would remove Self's row (a network "
                             "without it does not load either)");
    }
    return 0;
}

/*
 * dmm__check_matrix for w = valid + delta: every node of w that is not
 * valid's lies on a path of delta, so only those paths are walked (with a
 * lookup per node), never the siblings they pass: a k-weight change costs
 * about k paths, not the width of W. The first error found is the one the
 * full walk would find first (both go in label order, and every bad node is
 * on a delta path).
 */
int dmm__check_matrix_delta(const dmm_net *net, vv w, vv valid, vv delta,
                            const char *prefix, dmm_error *err)
{
    static const char deep[] =
        "a weight must be at least three levels deep (type/name/input)";
    dmm__ptr p;
    snprintf(p.s, sizeof p.s, "%s", prefix);
    if (w.num != 0)
        return dmm_error_set(err, DMM_E_INVAL, p.s, "%s", deep);
    vv_iter itf, itn, iti, itg;
    vv_label f, nf, i, g;
    vv df, dn, di, dg;
    vv_iter_init(&itf, delta);
    while (vv_iter_next(&itf, &f, &df)) {
        vv wf = vv_child(w, f), vf = vv_child(valid, f);
        if (vv_is_zero(wf) || shared(wf, vf))
            continue;
        size_t mf = dmm__ptr_push(net->vc, &p, f);
        const dmm_type_info *info = dmm_registry_find(net->reg, f);
        if (!info)
            return dmm_error_set(err, DMM_E_INVAL, p.s,
                                 "unknown neuron type \"%s\"",
                                 dmm__lstr(net, f));
        if (wf.num != 0)
            return dmm_error_set(err, DMM_E_INVAL, p.s, "%s", deep);
        vv_iter_init(&itn, df);
        while (vv_iter_next(&itn, &nf, &dn)) {
            vv wn = vv_child(wf, nf), vn = vv_child(vf, nf);
            if (vv_is_zero(wn) || shared(wn, vn))
                continue;
            size_t mn = dmm__ptr_push(net->vc, &p, nf);
            if (wn.num != 0)
                return dmm_error_set(err, DMM_E_INVAL, p.s, "%s", deep);
            vv_iter_init(&iti, dn);
            while (vv_iter_next(&iti, &i, &di)) {
                vv row = vv_child(wn, i);
                if (vv_is_zero(row) || shared(row, vv_child(vn, i)))
                    continue;
                size_t mi = dmm__ptr_push(net->vc, &p, i);
                if (!dmm_type_accepts_input(info, i))
                    return dmm_error_set(err, DMM_E_INVAL, p.s,
                                         "neuron type \"%s\" has no input "
                                         "\"%s\"",
                                         dmm__lstr(net, f), dmm__lstr(net, i));
                /* The row's other sources are valid's. */
                vv_iter_init(&itg, di);
                while (vv_iter_next(&itg, &g, &dg)) {
                    if (!vv_is_zero(vv_child(row, g)) &&
                        !dmm_registry_find(net->reg, g)) {
                        dmm__ptr_push(net->vc, &p, g);
                        return dmm_error_set(err, DMM_E_INVAL, p.s,
                                             "unknown neuron type \"%s\"",
                                             dmm__lstr(net, g));
                    }
                }
                dmm__ptr_pop(&p, mi);
            }
            dmm__ptr_pop(&p, mn);
        }
        dmm__ptr_pop(&p, mf);
    }
    return 0;
}

int dmm__check_neuron_map(const dmm_net *net, vv m, const char *prefix,
                          const char *what, dmm_error *err)
{
    dmm__ptr p;
    snprintf(p.s, sizeof p.s, "%s", prefix);
    if (m.num != 0)
        return dmm_error_set(err, DMM_E_INVAL, p.s,
                             "%s must be at least two levels deep "
                             "(type/name)",
                             what);
    vv_iter it;
    vv_label f;
    vv mf;
    vv_iter_init(&it, m);
    while (vv_iter_next(&it, &f, &mf)) {
        size_t mark = dmm__ptr_push(net->vc, &p, f);
        if (!dmm_registry_find(net->reg, f))
            return dmm_error_set(err, DMM_E_INVAL, p.s,
                                 "unknown neuron type \"%s\"",
                                 dmm__lstr(net, f));
        if (mf.num != 0)
            return dmm_error_set(err, DMM_E_INVAL, p.s,
                                 "%s must be at least two levels deep "
                                 "(type/name)",
                                 what);
        dmm__ptr_pop(&p, mark);
    }
    return 0;
}

/* "parameter "length" must be a whole number from 1 to 64, not 2.5". */
static int param_refused(dmm_error *err, const char *path,
                         const dmm_param_spec *ps, double x)
{
    char range[96] = "";
    if (ps->min != ps->max)
        snprintf(range, sizeof range, " from %.17g to %.17g", ps->min, ps->max);
    return dmm_error_set(err, DMM_E_INVAL, path,
                         "parameter \"%s\" must be a%s number%s, not %.17g",
                         ps->name, ps->integer ? " whole" : " finite", range,
                         x);
}

int dmm__check_params(const dmm_net *net, vv m, const char *prefix,
                      dmm_error *err)
{
    int rc = dmm__check_neuron_map(net, m, prefix, "params", err);
    if (rc)
        return rc;
    dmm__ptr p;
    snprintf(p.s, sizeof p.s, "%s", prefix);
    vv_iter itf, itn, itp;
    vv_label f, nf, pl;
    vv mf, mn, x;
    vv_iter_init(&itf, m);
    while (vv_iter_next(&itf, &f, &mf)) {
        const dmm_type_info *info = dmm_registry_find(net->reg, f);
        size_t mark_f = dmm__ptr_push(net->vc, &p, f);
        vv_iter_init(&itn, mf);
        while (vv_iter_next(&itn, &nf, &mn)) {
            size_t mark_n = dmm__ptr_push(net->vc, &p, nf);
            if (mn.num != 0)
                return dmm_error_set(err, DMM_E_INVAL, p.s,
                                     "parameters must be an object "
                                     "{name: number}");
            vv_iter_init(&itp, mn);
            while (vv_iter_next(&itp, &pl, &x)) {
                size_t mark_p = dmm__ptr_push(net->vc, &p, pl);
                size_t k = 0;
                while (k < info->n_params && info->param[k] != pl)
                    k++;
                if (k == info->n_params)
                    return dmm_error_set(err, DMM_E_INVAL, p.s,
                                         "neuron type \"%s\" has no "
                                         "parameter \"%s\"",
                                         dmm__lstr(net, f), dmm__lstr(net, pl));
                if (!vv_is_scalar(x))
                    return dmm_error_set(err, DMM_E_INVAL, p.s,
                                         "a parameter must be a number");
                const dmm_param_spec *ps = &info->desc->params[k];
                if (ps->kind == DMM_PARAM_FILE)
                    return dmm_error_set(err, DMM_E_INVAL, p.s,
                                         "parameter \"%s\" is a file name, "
                                         "read when a network file is "
                                         "loaded (a state file keeps what "
                                         "it read in the neuron's state)",
                                         ps->name);
                if (!dmm_param_allows(ps, x.num))
                    return param_refused(err, p.s, ps, x.num);
                dmm__ptr_pop(&p, mark_p);
            }
            dmm__ptr_pop(&p, mark_n);
        }
        dmm__ptr_pop(&p, mark_f);
    }
    return 0;
}
