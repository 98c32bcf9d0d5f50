// SPDX-License-Identifier: MIT
/*
 * The host script of `--engine network` (dmm_experiments.h): it loads the
 * experiment's network, writes the seed's routes into W in one edit, feeds
 * each episode through the `input` neurons and steps the ordinary engine;
 * the learning itself happens inside the network (interference or learner
 * neurons writing Self's delta). Episode timing is in docs/experiments.md.
 */
#include "dmm_experiments.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MNIST, horizon H (25): image emitted at cycle E, delay lines hold it from
 * E+1, the interference neurons see duration t at E+2+t, t = 0..H-1 (a
 * learner takes the image at E+1 and counts it age 0 at E+2: the same); the
 * output neurons show the score one cycle later, at E+H+2. Episodes follow
 * each other every H cycles, so the next episode's reset (at its own t = 0)
 * is the cycle after t = H-1 and applies a training episode's update, which
 * is in W two cycles later: before anything arrives when every distance is
 * at least 2. A geometry with a shorter one gets a closing reset at E+H+2
 * and a period of H + 2 - (shortest distance) instead. Double slit:
 * emissions at E..E+39, window t = 0..H-1 (59) at E+2..E+H+1, a reset at
 * E+H+2 ends it; late arrivals drain until E+H+40 (the period).
 * Learners that take a whole episode at once (whole-episode 1) show its sums
 * from the cycle the image is age 0 (E+2) until it is replaced, made again
 * when a training update lands: their training episodes are 3 cycles apart
 * and their test images one a cycle (schedule). */
enum { DS_DRAIN = DMM_DS_EMIT };

/* ---- the host ------------------------------------------------------------ */

enum { MAX_SRC = DMM_IF_SOURCES, MAX_TGT = DMM_IF_CLASSES, MAX_T = 64 };
_Static_assert((int)DMM_IF_TIMES_MAX <= (int)MAX_T &&
                   (int)DMM_DS_TIMES_MAX <= (int)MAX_T,
               "a horizon longer than the ages the host names");

/* The target types the host knows, in the order it looks for them: the
 * first one W has neurons of holds the routes and takes the parameters. Both
 * keep the routes at W[<type>][<target>][in|blocked][delay][s<i>][<age>]. */
static const char *const target_types[] = {"interference", "learner"};
enum { NTYPES = sizeof target_types / sizeof target_types[0] };

typedef struct host {
    vv_ctx *vc;
    dmm_registry *reg;
    dmm_net *net;
    dmm_error *err;
    int nsrc, ntgt, ntimes;
    int ttype; /* index in target_types of W's target type; -1: none */
    vv_label input, control, feed, reset, target, in, blocked, delay, output,
        score, peak, total, read;
    vv_label src[MAX_SRC], tgt[MAX_TGT], comp[DMM_IF_DIM], age[MAX_T];
    uint8_t dist[MAX_TGT][MAX_SRC]; /* the geometry's, [target][source] */
    uint64_t cycles;
} host;

static void host_close(host *h)
{
    dmm_net_free(h->net);
    dmm_registry_free(h->reg);
    if (h->vc)
        vv_ctx_free(h->vc);
}

static int intern(host *h, const char *s, vv_label *out)
{
    int rc = vv_intern_cstr(h->vc, s, out);
    if (rc)
        dmm_error_set(h->err, rc, "", "cannot intern \"%s\"", s);
    return rc;
}

/* Refuse file: what is missing at the JSON path, and what the host does
 * with it. */
static int missing(host *h, const char *file, const char *path,
                   const char *what)
{
    dmm_error_set(h->err, DMM_E_INVAL, path,
                  "%s (the contract of `dmm experiment --network`, "
                  "docs/experiments.md)",
                  what);
    dmm_error_set_source(h->err, file);
    return DMM_E_INVAL;
}

/* Every target has an input on output/<read>; why (may be NULL) says what
 * the host does with it beyond reading the score there. */
static int check_outputs(host *h, const char *file, const char *const *targets,
                         const char *read, const char *why)
{
    vv w = dmm_net_matrix(h->net);
    vv_label rl;
    int rc = intern(h, read, &rl);
    if (rc)
        return rc;
    for (int c = 0; c < h->ntgt; c++) {
        vv_label o[3] = {h->output, rl, h->tgt[c]};
        if (vv_is_zero(vv_get(w, o, 3))) {
            char path[256], what[256];
            snprintf(path, sizeof path, "/matrix/output/%s/%s", read,
                     targets[c]);
            snprintf(what, sizeof what,
                     "nothing feeds input %s of output/%s: the host reads "
                     "the %s of %s there%s%s",
                     targets[c], read, why ? read : "score", targets[c],
                     why ? "; " : "", why ? why : "");
            return missing(h, file, path, what);
        }
    }
    return 0;
}

/*
 * The contract a network must follow for the host to run it: an input
 * neuron input/<feed> (the samples), input/control (reset and training
 * signals) and an output neuron output/<read> with one input per target (the
 * scores the host reads). How the network learns is its own business.
 */
static int check_contract(host *h, const char *file, const char *feed,
                          const char *const *targets, const char *read)
{
    vv w = dmm_net_matrix(h->net);
    char path[256], what[256];
    vv_label pf[2] = {h->input, h->feed}, pc[2] = {h->input, h->control};
    if (vv_is_zero(vv_get(w, pf, 2))) {
        snprintf(path, sizeof path, "/matrix/input/%s", feed);
        snprintf(what, sizeof what,
                 "no neuron input/%s: the host feeds each sample to it", feed);
        return missing(h, file, path, what);
    }
    if (vv_is_zero(vv_get(w, pc, 2)))
        return missing(h, file, "/matrix/input/control",
                       "no neuron input/control: the host feeds it {reset: 1} "
                       "at each episode's start and {<target>: 1} on a "
                       "training episode");
    return check_outputs(h, file, targets, read, NULL);
}

/* W's target type, or every type the host knows ("a|b") when W has none;
 * for messages. */
static const char *target_name(const host *h, char *buf, size_t size)
{
    if (h->ttype >= 0)
        return target_types[h->ttype];
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < NTYPES && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", k ? "|" : "",
                              target_types[k]);
    return buf;
}

/* 1 when W has the route layout the host writes the seed's routes into:
 * W[<target type>][target][in][delay][source] for every target and source. */
static int has_route_layout(const host *h)
{
    vv w = dmm_net_matrix(h->net);
    if (h->ttype < 0)
        return 0;
    for (int c = 0; c < h->ntgt; c++)
        for (int s = 0; s < h->nsrc; s++) {
            vv_label p[5] = {h->target, h->tgt[c], h->in, h->delay, h->src[s]};
            if (vv_is_zero(vv_get(w, p, 5)))
                return 0;
        }
    return 1;
}

/* Set params.<type>.<neuron>.<key[k]> = val[k] (k < n) in root for every
 * neuron of W's type `type` (none: root unchanged); 0, or DMM_E_NOMEM. */
static int json_set_params(host *h, json_t *root, vv_label type,
                           const char *const *key, const double *val, int n)
{
    if (vv_nchildren(vv_child(dmm_net_matrix(h->net), type)) == 0)
        return 0;
    json_t *params = json_object_get(root, "params");
    if (!params && !json_object_set_new(root, "params", json_object()))
        params = json_object_get(root, "params");
    const char *tn = vv_label_str(h->vc, type, NULL);
    json_t *types = params ? json_object_get(params, tn) : NULL;
    if (params && !types && !json_object_set_new(params, tn, json_object()))
        types = json_object_get(params, tn);
    vv_iter it;
    vv_label name;
    vv row;
    vv_iter_init(&it, vv_child(dmm_net_matrix(h->net), type));
    while (types && vv_iter_next(&it, &name, &row)) {
        const char *nm = vv_label_str(h->vc, name, NULL);
        json_t *np = json_object_get(types, nm);
        if (!np && !json_object_set_new(types, nm, json_object()))
            np = json_object_get(types, nm);
        for (int k = 0; np && k < n; k++)
            if (json_object_set_new(np, key[k], json_real(val[k])))
                np = NULL;
        if (!np)
            types = NULL;
    }
    return types ? 0 : DMM_E_NOMEM;
}

/*
 * Write the thresholds and learning rates p (may be NULL) into the params
 * of every neuron of W's target type (target_types) in file, and, when
 * delay > 0, that length into the params of every `delay` neuron with a row
 * (a learner network has none: its horizon is the routes the host writes
 * into W): the file is read again with jansson, its
 * "params" extended and the network loaded anew from that text (the loaded
 * network has no way to change a parameter). A parameter of exactly 0 is
 * refused: V-values store no zeros, so it would read as the default.
 */
static int host_set_params(host *h, const char *file, const dmm_if_params *p,
                           int delay)
{
    static const char *const key[5] = {"friend", "foe", "eta-friend",
                                       "eta-stranger", "eta-foe"};
    static const char *const len_key[1] = {"length"};
    double val[5] = {0}, len = delay;
    if (p) {
        double v[5] = {p->friend_sim, p->foe_sim, p->eta[0], p->eta[1],
                       p->eta[2]};
        memcpy(val, v, sizeof val);
    }
    for (int k = 0; p && k < 5; k++)
        if (val[k] == 0 || !isfinite(val[k]))
            return dmm_error_set(
                h->err, DMM_E_INVAL, "",
                "%s = %g cannot be given to the network engine: a neuron "
                "parameter of 0 reads as its default (V-values store no "
                "zeros); use a tiny value such as 1e-9, or --engine direct",
                key[k], val[k]);
    if (p && h->ttype < 0) {
        char types[64], path[80], what[160];
        target_name(h, types, sizeof types);
        snprintf(path, sizeof path, "/matrix/%s", target_types[0]);
        snprintf(what, sizeof what,
                 "no neuron of type %s to take the thresholds and learning "
                 "rates given",
                 types);
        return missing(h, file, path, what);
    }
    json_error_t je;
    json_t *root = json_load_file(file, 0, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        dmm_error_set(h->err, DMM_E_IO, "", "cannot read it again: %s",
                      je.text);
        dmm_error_set_source(h->err, file);
        return DMM_E_IO;
    }
    int rc = p ? json_set_params(h, root, h->target, key, val, 5) : 0;
    if (!rc && delay > 0)
        rc = json_set_params(h, root, h->delay, len_key, &len, 1);
    char *text = rc ? NULL : json_dumps(root, JSON_COMPACT);
    rc = DMM_E_NOMEM;
    json_decref(root);
    if (!text) {
        dmm_error_set(h->err, rc, "", "out of memory");
        return rc;
    }
    dmm_net *net = NULL;
    rc = dmm_net_load_text(h->vc, h->reg, text, strlen(text), file, &net,
                           h->err);
    free(text);
    if (rc)
        return rc;
    dmm_net_free(h->net);
    h->net = net;
    return 0;
}

/* 1 when every neuron of W's target type takes a whole episode at once
 * (its whole-episode parameter is not 0; the top says the timing). */
static int whole_episodes(host *h)
{
    vv_label wl;
    if (h->ttype < 0 || vv_intern_cstr(h->vc, "whole-episode", &wl))
        return 0;
    vv params = vv_child(dmm_net_params(h->net), h->target);
    vv_iter it;
    vv_label name;
    vv row;
    vv_iter_init(&it, vv_child(dmm_net_matrix(h->net), h->target));
    while (vv_iter_next(&it, &name, &row)) {
        vv_label p[2] = {name, wl};
        if (vv_get(params, p, 2).num == 0)
            return 0;
    }
    return 1;
}

/* Load the network and check that it has the neurons the host talks to;
 * read names the output neuron whose inputs give the scores. */
static int host_open(host *h, const char *file, const char *feed,
                     const char *const *targets, const char *read)
{
    int rc = DMM_E_NOMEM;
    h->ttype = -1;
    h->vc = vv_ctx_new(NULL);
    if (!h->vc || !(h->reg = dmm_registry_new(h->vc))) {
        dmm_error_set(h->err, rc, "", "out of memory");
        return rc;
    }
    if ((rc = dmm_registry_add_builtins(h->reg))) {
        dmm_error_set(h->err, rc, "", "cannot register the neuron types");
        return rc;
    }
    if ((rc = dmm_net_load_file(h->vc, h->reg, file, &h->net, h->err)))
        return rc;
    char s[32];
    struct {
        const char *s;
        vv_label *l;
    } names[] = {{"input", &h->input},     {"control", &h->control},
                 {feed, &h->feed},         {read, &h->read},
                 {"reset", &h->reset},     {"in", &h->in},
                 {"blocked", &h->blocked}, {"delay", &h->delay},
                 {"output", &h->output},   {"score", &h->score},
                 {"peak", &h->peak},       {"total", &h->total}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if ((rc = intern(h, names[k].s, names[k].l)))
            return rc;
    for (int i = 0; i < h->nsrc; i++) {
        snprintf(s, sizeof s, "s%d", i);
        if ((rc = intern(h, s, &h->src[i])))
            return rc;
    }
    for (int i = 0; i < DMM_IF_DIM; i++) {
        snprintf(s, sizeof s, "%d", i);
        if ((rc = intern(h, s, &h->comp[i])))
            return rc;
    }
    for (int i = 0; i < MAX_T; i++) {
        snprintf(s, sizeof s, "%d", i);
        if ((rc = intern(h, s, &h->age[i])))
            return rc;
    }
    for (int c = 0; c < h->ntgt; c++)
        if ((rc = intern(h, targets[c], &h->tgt[c])))
            return rc;
    for (int k = 0; k < NTYPES && h->ttype < 0; k++) {
        if ((rc = intern(h, target_types[k], &h->target)))
            return rc;
        if (vv_nchildren(vv_child(dmm_net_matrix(h->net), h->target)) > 0)
            h->ttype = k;
    }
    return check_contract(h, file, feed, targets, read);
}

static int step(host *h)
{
    h->cycles++;
    return dmm_net_step(h->net, h->err);
}

/* Queue map (taken) for input/name. */
static int feed(host *h, vv_label name, vv map)
{
    int rc = dmm_net_feed(h->net, name, map, h->err);
    vv_free(h->vc, map);
    return rc;
}

/* {reset: 1} and, when learn >= 0, {target learn: 1}. */
static int feed_control(host *h, int learn)
{
    vv_label l[2] = {h->reset, 0};
    vv v[2] = {vv_number(1), vv_number(1)};
    size_t n = 1;
    if (learn >= 0)
        l[n++] = h->tgt[learn];
    vv map;
    int rc = vv_from_pairs(h->vc, 0, n, l, v, &map);
    if (rc) {
        dmm_error_set(h->err, rc, "", "out of memory");
        return rc;
    }
    return feed(h, h->control, map);
}

/* One source vector [1, x...] (the scalar part carries the route mass). */
static int source_vec(host *h, const double *x, int dim, vv *out)
{
    vv kid[DMM_IF_DIM];
    for (int k = 0; k < dim; k++)
        kid[k] = vv_number(x[k]);
    return vv_from_pairs(h->vc, 1.0, (size_t)dim, h->comp, kid, out);
}

/* Feed {s_i: [1, x_i]} for n sources; x[i] has dim components. */
static int feed_sources(host *h, int n, const double *x, int dim)
{
    vv kid[MAX_SRC];
    for (int i = 0; i < n; i++) {
        int rc = source_vec(h, x + (size_t)i * dim, dim, &kid[i]);
        if (rc) {
            for (int k = 0; k < i; k++)
                vv_free(h->vc, kid[k]);
            dmm_error_set(h->err, rc, "", "out of memory");
            return rc;
        }
    }
    vv map;
    int rc = vv_from_pairs(h->vc, 0, (size_t)n, h->src, kid, &map);
    if (rc) {
        dmm_error_set(h->err, rc, "", "out of memory");
        return rc;
    }
    return feed(h, h->feed, map);
}

/* The path of route (target c, source s, age d) in W on the reachable
 * (`in`) or the blocked side. */
static void route_path(const host *h, int c, int s, int d, int reach,
                       vv_label p[6])
{
    p[0] = h->target;
    p[1] = h->tgt[c];
    p[2] = reach ? h->in : h->blocked;
    p[3] = h->delay;
    p[4] = h->src[s];
    p[5] = h->age[d];
}

/* The map of n pairs (l, v) (the values taken) into *out; 0 or a code. */
static int pairs(host *h, size_t n, vv_label *l, vv *v, vv *out)
{
    return vv_from_pairs(h->vc, 0, n, l, v, out);
}

/* The delta that takes every route of W (any age, either side) to
 * want(c, s, d) on the side of the geometry, 0 elsewhere; sub != 0: take
 * them to 0 (the removal). *exact: whether W + delta gives want exactly.
 * Made a level at a time, each of W's rows read once. */
static int routes_delta(host *h, const double *p, int sub, vv *out, int *exact)
{
    vv w = dmm_net_matrix(h->net);
    vv tgt_v[MAX_TGT];
    vv_label tgt_l[MAX_TGT];
    size_t ntgt = 0;
    int rc = 0;
    *exact = 1;
    for (int c = 0; c < h->ntgt && !rc; c++) {
        vv side_v[2];
        vv_label side_l[2];
        size_t nside = 0;
        for (int reach = 0; reach < 2 && !rc; reach++) {
            vv_label at[4] = {h->target, h->tgt[c], reach ? h->in : h->blocked,
                              h->delay};
            vv rows = vv_get(w, at, 4), src_v[MAX_SRC], age_v[MAX_T], side;
            vv_label src_l[MAX_SRC], age_l[MAX_T];
            size_t nsrc = 0;
            for (int s = 0; s < h->nsrc && !rc; s++) {
                vv row = vv_child(rows, h->src[s]);
                size_t nage = 0;
                for (int d = 0; d < MAX_T; d++) {
                    double have = vv_child(row, h->age[d]).num, want = 0;
                    if (!sub && d < h->ntimes && (d >= h->dist[c][s]) == reach)
                        want = p[((size_t)c * h->nsrc + s) * h->ntimes + d];
                    double x = want - have;
                    if (x == 0)
                        continue;
                    if (have + x != want)
                        *exact = 0;
                    age_l[nage] = h->age[d];
                    age_v[nage++] = vv_number(x);
                }
                if (nage && !(rc = pairs(h, nage, age_l, age_v, &src_v[nsrc])))
                    src_l[nsrc++] = h->src[s];
            }
            if (!rc && nsrc && !(rc = pairs(h, nsrc, src_l, src_v, &side)) &&
                !(rc = pairs(h, 1, &h->delay, &side, &side_v[nside])))
                side_l[nside++] = at[2];
            else if (rc)
                for (size_t k = 0; k < nsrc; k++)
                    vv_free(h->vc, src_v[k]);
        }
        if (!rc && nside &&
            !(rc = pairs(h, nside, side_l, side_v, &tgt_v[ntgt])))
            tgt_l[ntgt++] = h->tgt[c];
        else if (rc)
            for (size_t k = 0; k < nside; k++)
                vv_free(h->vc, side_v[k]);
    }
    vv by_target = VV_ZERO, delta = VV_ZERO;
    if (!rc && ntgt && !(rc = pairs(h, ntgt, tgt_l, tgt_v, &by_target)))
        rc = pairs(h, 1, &h->target, &by_target, &delta);
    else if (rc)
        for (size_t k = 0; k < ntgt; k++)
            vv_free(h->vc, tgt_v[k]);
    if (rc) {
        vv_free(h->vc, delta);
        return dmm_error_set(h->err, rc, "", "out of memory");
    }
    *out = delta;
    return 0;
}

/*
 * Set every route to p[(c * nsrc + s) * ntimes + d] (the side by the
 * geometry's distance) and remove any other route of the targets, in one
 * edit when W + (p - W) gives p exactly (the bundled file's uniform routes
 * 1/25 differ from the seed's by less than a factor 2, so the published
 * runs take this way), else in two: every route to 0, then p.
 */
static int set_routes(host *h, const double *p)
{
    vv delta;
    int exact, rc = routes_delta(h, p, 0, &delta, &exact);
    if (!rc && !exact) {
        vv_free(h->vc, delta);
        if (!(rc = routes_delta(h, p, 1, &delta, &exact))) {
            rc = dmm_net_edit(h->net, delta, h->err);
            vv_free(h->vc, delta);
            if (!rc)
                rc = routes_delta(h, p, 0, &delta, &exact);
        }
    }
    if (rc)
        return rc;
    rc = dmm_net_edit(h->net, delta, h->err);
    vv_free(h->vc, delta);
    return rc;
}

/* Read the routes back from W into p (same layout as set_routes). */
static void get_routes(const host *h, double *p)
{
    vv w = dmm_net_matrix(h->net);
    for (int c = 0; c < h->ntgt; c++)
        for (int s = 0; s < h->nsrc; s++)
            for (int d = 0; d < h->ntimes; d++) {
                vv_label path[6];
                route_path(h, c, s, d, d >= h->dist[c][s], path);
                p[((size_t)c * h->nsrc + s) * h->ntimes + d] =
                    vv_get(w, path, 6).num;
            }
}

/* What output/<which> shows for each target. */
static int read_outputs(host *h, vv_label which, double *out)
{
    int rc = dmm_net_outputs_build(h->net, h->err);
    if (rc)
        return rc;
    vv y = dmm_net_outputs(h->net);
    for (int c = 0; c < h->ntgt; c++) {
        vv_label p[3] = {h->output, which, h->tgt[c]};
        out[c] = vv_get(y, p, 3).num;
    }
    return 0;
}

/* ---- MNIST few-shot ------------------------------------------------------ */

static const char *const mnist_targets[] = {"digit-0", "digit-1", "digit-2",
                                            "digit-4"};

/* What the host does for an episode, each at a cycle of its own: feed its
 * image, feed its control ({reset, <class>}), feed a reset that closes it,
 * read its scores after the cycle. */
enum { AT_IMAGE, AT_CONTROL, AT_CLOSE, AT_READ, AT_KINDS };
#define NEVER UINT64_MAX /* an event an episode does not have */

/* One episode: an image and, for training, its class (-1 for a test); the
 * cycle of each event (schedule). */
typedef struct episode {
    size_t at;
    int learn;
    uint64_t when[AT_KINDS];
} episode;

/* The cursor k of event `what` moved past the episodes without one and
 * those whose one came before cycle. */
static size_t next_at(const episode *ep, size_t nep, size_t k, int what,
                      uint64_t cycle)
{
    while (k < nep && (ep[k].when[what] == NEVER || ep[k].when[what] < cycle))
        k++;
    return k;
}

/*
 * The host's schedule (see the top). Episodes H cycles apart as a delay
 * line unfolds them (H + 2 - the shortest distance with a closing reset
 * when that is below 2), image at k P, control at k P + 1, scores read
 * after k P + H + 2. Learners that take whole episodes: training episodes
 * 3 apart (image and control together, the reset at E+1, the update of
 * the one before in W and the episode made again at E+3), a closing reset
 * after the last, whose update is in W two cycles later; then the test
 * images one a cycle, no reset between them (an image replaces the
 * episode), each read three cycles after it is fed. Returns the cycles.
 */
static uint64_t schedule(episode *ep, size_t nep, size_t nseq, int whole,
                         uint64_t H, int dmin)
{
    uint64_t last = 0;
    uint64_t P = H + (dmin < 2 ? 2 - (uint64_t)dmin : 0);
    for (size_t k = 0; k < nep; k++) {
        uint64_t *w = ep[k].when;
        if (!whole) {
            w[AT_IMAGE] = k * P;
            w[AT_CONTROL] = k * P + 1;
            w[AT_CLOSE] = P > H ? k * P + H + 1 : NEVER;
            w[AT_READ] = k * P + H + 2;
        } else if (k < nseq) {
            w[AT_IMAGE] = w[AT_CONTROL] = 3 * k;
            w[AT_CLOSE] = k + 1 == nseq ? 3 * nseq : NEVER;
            w[AT_READ] = NEVER;
        } else {
            w[AT_IMAGE] = 3 * nseq + 1 + (k - nseq);
            w[AT_CONTROL] = w[AT_CLOSE] = NEVER;
            w[AT_READ] = w[AT_IMAGE] + 3;
        }
        if (ep[k].learn >= 0)
            w[AT_READ] = NEVER; /* a training episode shows nothing */
        for (int a = 0; a < AT_KINDS; a++)
            last = w[a] != NEVER && w[a] > last ? w[a] : last;
    }
    return last + 1;
}

/* Tell the caller's progress function that episode k of n starts. */
static void tell_progress(dmm_if_progress_fn fn, void *ud, size_t k, size_t n)
{
    if (fn)
        fn(ud, k, n);
}

/* The routes of the geometry: with geom given, the layout must be there
 * and the delay lines (if any) get the horizon as their length. */
static int host_geometry(host *h, const char *file, const dmm_if_params *p,
                         int geom_given, int routes)
{
    if (geom_given && !routes) {
        char types[64], path[80], what[256];
        const char *t = target_name(h, types, sizeof types);
        snprintf(path, sizeof path, "/matrix/%s",
                 target_types[h->ttype < 0 ? 0 : h->ttype]);
        snprintf(what, sizeof what,
                 "no route layout W[%s][<target>][in][delay][s<i>] for every "
                 "target and source: --geometry, --distance and --horizon "
                 "set the routes the host writes there",
                 t);
        return missing(h, file, path, what);
    }
    if (p || geom_given)
        return host_set_params(h, file, p, geom_given ? h->ntimes : 0);
    return 0;
}

int dmm_fewshot_network_run(const char *network_file, const dmm_if_data *train,
                            const dmm_if_data *test, const dmm_if_options *opt,
                            size_t test_per_class, dmm_if_model *model,
                            dmm_if_result *res, dmm_netx_out *out,
                            dmm_error *err)
{
    dmm_netx_out none = {0};
    if (!out)
        out = &none;
    memset(res, 0, sizeof *res);
    if (opt->shots < 1 || opt->shots > train->n || opt->epochs < 1) {
        dmm_error_set(err, DMM_E_INVAL, "", "shots or epochs out of range");
        return DMM_E_INVAL;
    }
    size_t nseq = DMM_IF_CLASSES * opt->shots * (size_t)opt->epochs;
    size_t ntest = DMM_IF_CLASSES * (size_t)DMM_IF_TEST_PER_CLASS;
    size_t per = test_per_class && test_per_class < DMM_IF_TEST_PER_CLASS
                     ? test_per_class
                     : DMM_IF_TEST_PER_CLASS;
    size_t nep = nseq + DMM_IF_CLASSES * per;
    size_t *tr = malloc(nseq * sizeof *tr);
    size_t *te = malloc(ntest * sizeof *te);
    episode *ep = malloc(nep * sizeof *ep);
    double *routes = NULL;
    host h = {.err = err, .nsrc = DMM_IF_SOURCES, .ntgt = DMM_IF_CLASSES};
    int rc = DMM_E_NOMEM;
    if (!tr || !te || !ep) {
        dmm_error_set(err, rc, "", "out of memory");
        goto done;
    }

    /* The direct engine's draws, in its order: init, picks, shuffles. */
    if ((rc = dmm_if_plan(train, test, opt, model, tr, te))) {
        dmm_error_set(err, rc, "", "too few images of a class");
        goto done;
    }
    const dmm_if_geometry *g = &model->geom;
    h.ntimes = g->times;
    int dmin = INT_MAX;
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        memcpy(h.dist[c], g->dist[c], sizeof g->dist[c]);
        int n = dmm_if_geometry_nearest(g, c);
        dmin = n < dmin ? n : dmin;
    }
    size_t k = 0;
    for (; k < nseq; k++)
        ep[k] = (episode){.at = tr[k],
                          .learn = dmm_if_class_of_digit(train->labels[tr[k]])};
    for (size_t i = 0; i < ntest; i++)
        if (i % DMM_IF_TEST_PER_CLASS < per)
            ep[k++] = (episode){.at = te[i], .learn = -1};

    const char *read = opt->variant & DMM_IF_FIX_SCORE ? "peak" : "score";
    if ((rc = host_open(&h, network_file, "image", mnist_targets, read)))
        goto done;
    /* --ties peak reads output/peak too (when the scores are not already
     * the peaks), so the network must show it. */
    int peak_ties = opt->ties == DMM_IF_TIES_PEAK && h.read != h.peak;
    if (peak_ties &&
        (rc = check_outputs(&h, network_file, mnist_targets, "peak",
                            "--ties peak breaks a tie "
                            "of the scores by it")))
        goto done;
    out->routes = has_route_layout(&h);
    if ((rc = host_geometry(&h, network_file, opt->params, !!opt->geometry,
                            out->routes)))
        goto done;
    size_t nroutes = (size_t)DMM_IF_CLASSES * DMM_IF_SOURCES * h.ntimes;
    if (!(routes = malloc(nroutes * sizeof *routes))) {
        rc = dmm_error_set(err, DMM_E_NOMEM, "", "out of memory");
        goto done;
    }
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            memcpy(routes + ((size_t)c * DMM_IF_SOURCES + s) * h.ntimes,
                   model->p[c][s], (size_t)h.ntimes * sizeof *routes);
    if (out->routes && (rc = set_routes(&h, routes)))
        goto done;

    /* Feed, step, read, as the schedule says: the cycles of each kind
     * increase with the episode, so one cursor a kind. */
    uint64_t ncycles =
        schedule(ep, nep, nseq, whole_episodes(&h), (uint64_t)h.ntimes, dmin);
    size_t kimg = 0, kctl = 0, kclose = 0, kread = 0;
    dmm_if_image img;
    size_t tested = 0;
    for (uint64_t cyc = 0; cyc < ncycles && !rc; cyc++) {
        kctl = next_at(ep, nep, kctl, AT_CONTROL, cyc);
        kclose = next_at(ep, nep, kclose, AT_CLOSE, cyc);
        kread = next_at(ep, nep, kread, AT_READ, cyc);
        if (kimg < nep && ep[kimg].when[AT_IMAGE] == cyc) {
            const episode *e = &ep[kimg];
            const dmm_if_data *d = e->learn >= 0 ? train : test;
            tell_progress(opt->progress, opt->progress_ud, kimg++, nep);
            dmm_if_preprocess(d->images + e->at * DMM_IF_PIXELS, opt->variant,
                              &img);
            rc = feed_sources(&h, DMM_IF_SOURCES, &img.f[0][0], DMM_IF_DIM);
        }
        if (!rc && kctl < nep && ep[kctl].when[AT_CONTROL] == cyc)
            rc = feed_control(&h, ep[kctl].learn);
        else if (!rc && kclose < nep && ep[kclose].when[AT_CLOSE] == cyc)
            rc = feed_control(&h, -1);
        if (!rc)
            rc = step(&h);
        if (rc || kread == nep || ep[kread].when[AT_READ] != cyc)
            continue;
        const episode *e = &ep[kread];
        double score[DMM_IF_CLASSES], peak[DMM_IF_CLASSES];
        if ((rc = read_outputs(&h, h.read, score)))
            continue;
        /* The peak energies break a tie of the top scores (--ties peak):
         * output/peak, which the network keeps beside output/score. */
        if (peak_ties && (rc = read_outputs(&h, h.peak, peak)))
            continue;
        int p = dmm_if_argmax_ties(score, peak_ties ? peak : score, opt->ties);
        int truth = dmm_if_class_of_digit(test->labels[e->at]);
        if (out->pred)
            out->pred[tested] = (uint8_t)p;
        if (out->truth)
            out->truth[tested] = (uint8_t)truth;
        if (out->scores)
            memcpy(out->scores + tested * DMM_IF_CLASSES, score, sizeof score);
        tested++;
        res->confusion[truth][p]++;
        res->correct += p == truth;
        res->total++;
    }
    if (!rc)
        tell_progress(opt->progress, opt->progress_ud, nep, nep);
    if (!rc && out->routes) {
        get_routes(&h, routes);
        for (int c = 0; c < DMM_IF_CLASSES; c++)
            for (int s = 0; s < DMM_IF_SOURCES; s++)
                memcpy(model->p[c][s],
                       routes + ((size_t)c * DMM_IF_SOURCES + s) * h.ntimes,
                       (size_t)h.ntimes * sizeof *routes);
    }
    out->stats = (dmm_netx_stats){h.cycles, nep,
                                  h.net ? dmm_net_weight_count(h.net) : 0};
done:
    host_close(&h);
    free(routes);
    free(tr);
    free(te);
    free(ep);
    return rc;
}

int dmm_fewshot_network(const char *network_file, const dmm_if_data *train,
                        const dmm_if_data *test, const dmm_if_options *opt,
                        size_t test_per_class, dmm_if_model *model,
                        dmm_if_result *res, uint8_t *pred,
                        dmm_netx_stats *stats, dmm_error *err)
{
    dmm_netx_out out = {.pred = pred};
    int rc = dmm_fewshot_network_run(network_file, train, test, opt,
                                     test_per_class, model, res, &out, err);
    if (stats)
        *stats = out.stats;
    return rc;
}

/* ---- double slit --------------------------------------------------------- */

static const char *const ds_targets[] = {"minus-2", "plus-2"};

int dmm_double_slit_network_run(const char *network_file,
                                const dmm_ds_options *opt, dmm_ds_model *model,
                                dmm_ds_result *res, dmm_netx_out *out,
                                dmm_error *err)
{
    enum { NEP = 2 * DMM_DS_SHOTS + DMM_DS_TRIALS };
    dmm_netx_out none = {0};
    if (!out)
        out = &none;
    unsigned variant = opt->variant;
    memset(res, 0, sizeof *res);
    host h = {.err = err, .nsrc = DMM_DS_SOURCES, .ntgt = DMM_DS_TARGETS};
    dmm_ds_signal *sig = malloc(NEP * sizeof *sig);
    int learn[NEP], truth[NEP];
    double p[DMM_DS_TARGETS][DMM_DS_SOURCES][DMM_DS_TIMES_MAX];
    int rc = DMM_E_NOMEM;
    if (!sig) {
        dmm_error_set(err, rc, "", "out of memory");
        goto done;
    }
    /* dmm_ds_run's draws in its order. */
    dmm_if_rng rng;
    dmm_if_rng_seed(&rng, opt->seed);
    dmm_ds_model_init_geom(model, opt->geometry, &rng);
    int H = model->geom.times;
    h.ntimes = H;
    int k = 0;
    for (int phase = 1; phase >= 0; phase--)
        for (int i = 0; i < DMM_DS_SHOTS; i++, k++) {
            dmm_ds_signal_make(&sig[k], phase, variant, &rng);
            learn[k] = truth[k] = dmm_ds_target_of(phase);
        }
    for (int i = 0; i < DMM_DS_TRIALS; i++, k++) {
        truth[k] = (int)dmm_if_rng_below(&rng, 2);
        learn[k] = -1;
        dmm_ds_signal_make(&sig[k], truth[k] == 1, variant, &rng);
    }
    /* Packed [target][source][d < H], as set_routes takes them. */
    for (int g = 0; g < DMM_DS_TARGETS; g++)
        for (int s = 0; s < DMM_DS_SOURCES; s++) {
            h.dist[g][s] = model->geom.dist[s][g];
            memcpy(&p[0][0][0] + ((size_t)g * DMM_DS_SOURCES + s) * H,
                   model->p[s][g], (size_t)H * sizeof(double));
        }
    if ((rc = host_open(&h, network_file, "signal", ds_targets, "total")))
        goto done;
    out->routes = has_route_layout(&h);
    if ((rc = host_geometry(&h, network_file, opt->params, !!opt->geometry,
                            out->routes)))
        goto done;
    if (out->routes && (rc = set_routes(&h, &p[0][0][0])))
        goto done;

    /* Window t = 0..H-1 at cycles 2..H+1 of the period, closed by a reset
     * at H+1 (read after H+2); the period lets the last emissions drain. */
    int period = H + DS_DRAIN, end = H + 1, read = H + 2;
    int tested = 0;
    for (k = 0; k < NEP && !rc; k++) {
        tell_progress(opt->progress, opt->progress_ud, (size_t)k, NEP);
        for (int j = 0; j < period && !rc; j++) {
            if (j < DMM_DS_EMIT) {
                double x[DMM_DS_SOURCES][2];
                for (int s = 0; s < DMM_DS_SOURCES; s++)
                    memcpy(x[s], sig[k].x[s][j], sizeof x[s]);
                rc = feed_sources(&h, DMM_DS_SOURCES, &x[0][0], 2);
            }
            if (!rc && (j == 1 || j == end))
                rc = feed_control(&h, j == 1 ? learn[k] : -1);
            if (!rc)
                rc = step(&h);
            if (rc || j != read || learn[k] >= 0)
                continue;
            double total[DMM_DS_TARGETS], mean[DMM_DS_TARGETS];
            if ((rc = read_outputs(&h, h.read, total)))
                continue;
            int best = 0;
            for (int g = 0; g < DMM_DS_TARGETS; g++) {
                mean[g] = total[g] / H;
                if (mean[g] > mean[best])
                    best = g;
            }
            if (out->pred)
                out->pred[tested] = (uint8_t)best;
            if (out->truth)
                out->truth[tested] = (uint8_t)truth[k];
            if (out->scores)
                memcpy(out->scores + (size_t)tested * DMM_DS_TARGETS, mean,
                       sizeof mean);
            tested++;
            res->confusion[truth[k]][best]++;
            res->correct += best == truth[k];
            res->total++;
        }
    }
    if (!rc && out->routes) {
        get_routes(&h, &p[0][0][0]);
        for (int g = 0; g < DMM_DS_TARGETS; g++)
            for (int s = 0; s < DMM_DS_SOURCES; s++)
                memcpy(model->p[s][g],
                       &p[0][0][0] + ((size_t)g * DMM_DS_SOURCES + s) * H,
                       (size_t)H * sizeof(double));
    }
    out->stats = (dmm_netx_stats){(uint64_t)h.cycles, NEP,
                                  h.net ? dmm_net_weight_count(h.net) : 0};
done:
    host_close(&h);
    free(sig);
    return rc;
}

int dmm_double_slit_network(const char *network_file, uint64_t seed,
                            unsigned variant, dmm_ds_model *model,
                            dmm_ds_result *res, uint8_t *pred,
                            dmm_netx_stats *stats, dmm_error *err)
{
    dmm_ds_options o = {.seed = seed, .variant = variant};
    dmm_netx_out out = {.pred = pred};
    int rc =
        dmm_double_slit_network_run(network_file, &o, model, res, &out, err);
    if (stats)
        *stats = out.stats;
    return rc;
}
