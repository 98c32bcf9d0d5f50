// SPDX-License-Identifier: MIT
/*
 * Induced interference training as neurons (spec interference.md §3,
 * docs/experiments.md "As a DMM network"): `delay`, a delay line whose output
 * "a" is {a: its input of a cycles ago}, and `interference`, a target that
 * takes its arrivals {age: {source: P·[1, f]}} through W, computes the energy
 * J(t), keeps its maximum and sum over an episode, and writes the update rule's
 * change of its own routes into Self's `delta`, reading them through Self.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builtins.h"

#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Arrival vectors are decoded into dense arrays of at most this many
 * components (MNIST has 10, the double slit 2). */
enum { DIM_MAX = 64 };

/* Age index of label l among age[] (a registry's age labels), -1 when l is
 * not an age label. */
static int age_index(const vv_label *age, vv_label l)
{
    /* The ages are normally interned one after the other. */
    if (l >= age[0] && l - age[0] < DMM__DELAY_MAX && age[l - age[0]] == l)
        return (int)(l - age[0]);
    for (int a = 0; a < DMM__DELAY_MAX; a++)
        if (age[a] == l)
            return a;
    return -1;
}

static int age_of(const dmm__builtin_labels *bl, vv_label l)
{
    return age_index(bl->age, l);
}

/* A scalar input: a bare number, 0 when absent; a map is an error. */
static int scalar_input(dmm_fire *f, size_t k, double *out)
{
    return dmm__fire_number(f, dmm_fire_in(f, k), "input ", f->type->in[k],
                            out);
}

/* ---- delay ---------------------------------------------------------------
 *
 * State {a: X_(t-a)} for the ages a < length whose input was not zero; the
 * input of this cycle is age 0. Output "a" is {a: X_(t-a)}: the age is kept
 * inside the value too, so that a neuron summing several ages through W still
 * sees them apart. The ages are labels interned once by the registry.
 */
bool dmm_type_is_delay(const dmm_type_info *t)
{
    return t->desc == &dmm__builtin_interference[0];
}

const vv_label *dmm_delay_ages(const dmm_type_info *t)
{
    dmm_assert(dmm_type_is_delay(t));
    return dmm__builtin_labels_of(t)->age;
}

/* State entry (l: x): kept one age older in lab/kid (borrowed; n of them)
 * unless it falls off the end; false when l is not an age. */
static bool delay_age(const vv_label *age, int n_age, vv_label l, vv x,
                      vv_label *lab, vv *kid, size_t *n)
{
    int a = age_index(age, l);
    if (a < 0)
        return false;
    if (a + 1 < n_age) {
        lab[*n] = age[a + 1];
        kid[(*n)++] = x;
    }
    return true;
}

int dmm_delay_step(vv_ctx *vc, const vv_label *age, int n_age, vv input,
                   vv state, vv *output, vv *new_state)
{
    vv none = VV_ZERO;
    return dmm_delay_step_reuse(vc, age, n_age, input, state, &none, output,
                                new_state);
}

/* The state {l: x} and output {l: {l: x}} (new) of a step that keeps one
 * age, written over spare (taken) when it fits. */
static int delay_one(vv_ctx *vc, vv_label l, vv x, vv spare, vv *output,
                     vv *new_state)
{
    vv_label path[2] = {l, l};
    vv st, out;
    if (vv_rewrap(vc, spare, path, 2, x, &st)) {
        *output = spare;
        *new_state = vv_ref(st);
        return 0;
    }
    vv_free(vc, spare);
    int rc = vv_wrap(vc, 0.0, l, x, &st);
    if (rc)
        return rc;
    if ((rc = vv_wrap(vc, 0.0, l, st, &out))) {
        vv_free(vc, st);
        return rc;
    }
    *output = out;
    *new_state = st;
    return 0;
}

/* The state's ages one older (at most n_age - 1 of them: labels are
 * distinct) after the input at age 0, at most DMM__DELAY_MAX, into lab and
 * kid (borrowed; *n of them). 1 when state is not a map of ages. */
static int delay_gather(const vv_label *age, int n_age, vv input, vv state,
                        vv_label *lab, vv *kid, size_t *n)
{
    if (state.num != 0)
        return 1;
    if (!vv_is_zero(input)) {
        lab[*n] = age[0];
        kid[(*n)++] = input;
    }
    vv_leaf lf;
    if (vv_leaf_view(state, &lf)) { /* one node: read as arrays */
        for (size_t i = 0; i < lf.n; i++)
            if (!delay_age(age, n_age, lf.label[i], vv_leaf_child(&lf, i), lab,
                           kid, n))
                return 1;
    } else {
        vv_iter it;
        vv_label l;
        vv x;
        vv_iter_init(&it, state);
        while (vv_iter_next(&it, &l, &x))
            if (!delay_age(age, n_age, l, x, lab, kid, n))
                return 1;
    }
    return 0;
}

/* The state {a: X_a} and outputs {a: {a: X_a}} (new) of n > 1 ages. */
static int delay_many(vv_ctx *vc, size_t n, const vv_label *lab, vv *kid,
                      vv *output, vv *new_state)
{
    int rc;
    vv out[DMM__DELAY_MAX];
    size_t made = 0;
    for (rc = 0; made < n && !rc; made++)
        rc = vv_wrap(vc, 0.0, lab[made], kid[made], &out[made]);
    if (rc) {
        for (size_t k = 0; k + 1 < made; k++)
            vv_free(vc, out[k]);
        return rc;
    }
    for (size_t k = 0; k < n; k++)
        kid[k] = vv_ref(kid[k]); /* vv_from_pairs takes them */
    vv st;
    if ((rc = vv_from_pairs(vc, 0.0, n, lab, kid, &st))) {
        for (size_t k = 0; k < n; k++)
            vv_free(vc, out[k]);
        return rc;
    }
    if ((rc = vv_from_pairs(vc, 0.0, n, lab, out, output))) {
        vv_free(vc, st);
        return rc;
    }
    *new_state = st;
    return 0;
}

int dmm_delay_step_reuse(vv_ctx *vc, const vv_label *age, int n_age, vv input,
                         vv state, vv *spare, vv *output, vv *new_state)
{
    vv sp = *spare;
    *spare = *output = *new_state = VV_ZERO;
    vv_label lab[DMM__DELAY_MAX];
    vv kid[DMM__DELAY_MAX]; /* borrowed */
    size_t n = 0;
    int rc = delay_gather(age, n_age, input, state, lab, kid, &n);
    /* One age (the common case: one input a line long): {a: X} is the
     * state and the output's one child. */
    if (!rc && n == 1)
        return delay_one(vc, lab[0], kid[0], sp, output, new_state);
    vv_free(vc, sp);
    if (rc || n == 0)
        return rc;
    return delay_many(vc, n, lab, kid, output, new_state);
}

int dmm_delay_length(double len)
{
    return len >= 1 && len <= DMM__DELAY_MAX && len == floor(len) ? (int)len
                                                                  : 0;
}

/* delay: its length checked, then dmm_delay_step, which the engine calls
 * itself for the neurons it runs; the errors are said here. */
static int fire_delay(dmm_fire *f)
{
    const dmm__builtin_labels *bl = dmm__builtin_labels_of(f->type);
    double len = dmm_fire_param(f, 0);
    int n_age = dmm_delay_length(len);
    if (!n_age)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "length must be an integer from 1 to %d, not %g",
                               DMM__DELAY_MAX, len);
    int rc = dmm_delay_step(f->vc, bl->age, n_age, f->input, f->state,
                            &f->output, &f->new_state);
    if (rc != 1)
        return rc ? dmm__fire_fail(f, rc) : 0;
    if (f->state.num != 0)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "state must be {age: input}, not a number");
    vv_iter it;
    vv_label l;
    vv x;
    vv_iter_init(&it, f->state);
    while (vv_iter_next(&it, &l, &x))
        if (age_of(bl, l) < 0)
            return dmm__fire_failf(
                f, DMM_E_INVAL, "state key \"%s\" is not an age 0..%d",
                vv_label_str(f->vc, l, NULL), DMM__DELAY_MAX - 1);
    dmm_assert(!"dmm_delay_step refused a state of ages");
    return DMM_E_INVAL;
}

/* ---- interference --------------------------------------------------------
 *
 * Descriptor indexes of the inputs, outputs and parameters. */
enum { IN_IN, IN_BLOCKED, IN_TARGET, IN_ROUTES, IN_RESET, IN_LEARN };
enum {
    OUT_ENERGY = DMM__TGT_ENERGY,
    OUT_SCORE = DMM__TGT_SCORE,
    OUT_PEAK = DMM__TGT_PEAK,
    OUT_TOTAL = DMM__TGT_TOTAL,
    OUT_DELTA = DMM__TGT_DELTA
};

/* Component labels of the dense arrays: the target's first, then any
 * others met in arrivals (their target component is 0). */
typedef struct comps {
    vv_label l[DIM_MAX];
    int n;
    /* A direct-mapped cache of the lookups: entry l % COMP_CACHE holds
     * 1 + the index of the label it last found, 0 when empty. */
    uint8_t hit[64];
} comps;

enum { COMP_CACHE = 64 };

static int comp_index(comps *c, vv_label l)
{
    unsigned h = l % COMP_CACHE;
    if (c->hit[h] && c->l[c->hit[h] - 1] == l)
        return c->hit[h] - 1;
    int k = 0;
    while (k < c->n && c->l[k] != l)
        k++;
    if (k == c->n) {
        if (c->n == DIM_MAX)
            return -1;
        c->l[c->n++] = l;
    }
    c->hit[h] = (uint8_t)(k + 1);
    return k;
}

/* The sums of one firing's energy. */
typedef struct energy_work {
    dmm_fire *f;
    comps comp;
    double v[DIM_MAX];
    double fr_mass, fr_sum[DIM_MAX], rest[DIM_MAX];
    size_t n_friend, n_arr;
    double th_friend, th_foe, eta[3];
    /* The labels of the last arrival whose components all had an index,
     * and those indexes: arrivals mostly share their labels. */
    size_t seq_n;
    vv_label seq_lab[DIM_MAX];
    uint8_t seq_idx[DIM_MAX];
    bool seq_ident; /* seq_idx[i] == i for every i < seq_n */
} energy_work;

static const char *lstr(const dmm_fire *f, vv_label l)
{
    return vv_label_str(f->vc, l, NULL);
}

/*
 * One arrival r = P·[1, f] (scalar part P, the route mass; children P·f):
 * its class by f·v against the thresholds, its part of the energy sums, and
 * its eta·P in *eta_mass.
 */
static int arrival(energy_work *w, vv_label age, vv_label src, double k_w, vv r,
                   double *eta_mass)
{
    dmm_fire *f = w->f;
    double m = k_w * r.num;
    /* The mass may be negative: the double slit's additive update can
     * take a route below 0, and the direct engine goes on with it. */
    if (m == 0)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "arrival %s/%s has no scalar part (the route "
                               "mass: every source vector must carry the "
                               "scalar 1)",
                               lstr(f, age), lstr(f, src));
    /* x[k] for the components known so far; one found now is set below.
     * q[k] = x[k] / m, the normalised component, from k = done on (the
     * usual path computes the first ones as it goes), and sim the
     * similarity summed in component order. */
    double x[DIM_MAX], q[DIM_MAX], sim = 0;
    const double *v = w->v;
    int nc = w->comp.n, done = 0;
    vv_leaf lf;
    bool flat = vv_leaf_view(r, &lf) && !lf.map;
    if (flat && lf.n == w->seq_n && w->seq_ident &&
        memcmp(lf.label, w->seq_lab, lf.n * sizeof *lf.label) == 0) {
        /* The labels of the last arrival, child i being component i (the
         * usual case: the target's labels are the vector's): x is the
         * weighted children in order, a zero product stored as +0 as
         * below, then the components this arrival lacks; the quotients
         * and the similarity in the same pass, in the same order. */
        const double *num = lf.num;
        int n = (int)lf.n;
        for (int i = 0; i < n; i++) {
            double xi = k_w * num[i];
            xi = xi != 0 ? xi : 0.0;
            double qi = xi / m;
            x[i] = xi;
            q[i] = qi;
            sim += qi * v[i];
        }
        for (int k = n; k < nc; k++)
            x[k] = 0.0;
        done = n;
    } else if (flat) {
        for (int k = 0; k < w->comp.n; k++)
            x[k] = 0.0;
        /* The common arrival: a flat vector held as one node, read as
         * arrays (the same children, in the same order, as below). */
        if (lf.n == w->seq_n &&
            memcmp(lf.label, w->seq_lab, lf.n * sizeof *lf.label) == 0) {
            /* the labels of the last: each has its index already */
            for (size_t i = 0; i < lf.n; i++)
                if (k_w * lf.num[i] != 0)
                    x[w->seq_idx[i]] = k_w * lf.num[i];
        } else {
            bool all = lf.n <= DIM_MAX;
            for (size_t i = 0; i < lf.n; i++) {
                if (k_w * lf.num[i] == 0) {
                    all = false;
                    continue;
                }
                int k = comp_index(&w->comp, lf.label[i]);
                if (k < 0)
                    return dmm__fire_failf(f, DMM_E_INVAL,
                                           "arrival %s/%s: more than %d vector "
                                           "components in all",
                                           lstr(f, age), lstr(f, src), DIM_MAX);
                x[k] = k_w * lf.num[i];
                if (all)
                    w->seq_idx[i] = (uint8_t)k;
            }
            w->seq_n = all ? lf.n : 0;
            w->seq_ident = all;
            for (size_t i = 0; all && i < lf.n; i++)
                w->seq_ident = w->seq_ident && w->seq_idx[i] == i;
            if (all)
                memcpy(w->seq_lab, lf.label, lf.n * sizeof *lf.label);
        }
    } else {
        for (int k = 0; k < w->comp.n; k++)
            x[k] = 0.0;
        vv_iter it;
        vv_label l;
        vv c;
        vv_iter_init(&it, r);
        while (vv_iter_next(&it, &l, &c)) {
            if (!c.map && k_w * c.num == 0)
                continue; /* absent from the weighted arrival */
            int k = comp_index(&w->comp, l);
            if (k < 0)
                return dmm__fire_failf(f, DMM_E_INVAL,
                                       "arrival %s/%s: more than %d vector "
                                       "components in all",
                                       lstr(f, age), lstr(f, src), DIM_MAX);
            if (c.map)
                return dmm__fire_failf(f, DMM_E_INVAL,
                                       "arrival %s/%s must be a flat vector "
                                       "{component: number}",
                                       lstr(f, age), lstr(f, src));
            x[k] = k_w * c.num;
        }
    }
    nc = w->comp.n; /* (a component may have been found above) */
    for (int k = done; k < nc; k++) {
        q[k] = x[k] / m;
        sim += q[k] * v[k];
    }
    int kind = sim >= w->th_friend ? 0 : sim <= w->th_foe ? 2 : 1;
    if (kind == 0) {
        w->fr_mass += m;
        double *fr = w->fr_sum;
        for (int k = 0; k < nc; k++)
            fr[k] += q[k];
        w->n_friend++;
    } else {
        double *rest = w->rest;
        for (int k = 0; k < nc; k++)
            rest[k] += x[k];
    }
    w->n_arr++;
    *eta_mass = m * w->eta[kind];
    return 0;
}

/* One arrival k_w·r at (age, src) into the sums; when grad is not NULL,
 * its eta·P added at (*grad)[source][age]. */
static int take(energy_work *w, vv_label age, vv_label src, double k_w, vv r,
                vv *grad)
{
    dmm_fire *f = w->f;
    double em = 0;
    int rc = arrival(w, age, src, k_w, r, &em);
    if (rc || !grad || em == 0)
        return rc;
    vv_label path[2] = {src, age};
    vv next;
    double sum = vv_get(*grad, path, 2).num + em;
    if ((rc = vv_set(f->vc, *grad, path, 2, vv_number(sum), &next)))
        return dmm__fire_fail(f, rc);
    vv_free(f->vc, *grad);
    *grad = next;
    return 0;
}

/* Walk the arrivals {age: {source: r}}; when grad is not NULL, add each
 * arrival's eta·P at (*grad)[source][age]. */
static int energy(energy_work *w, vv in, vv *grad)
{
    dmm_fire *f = w->f;
    if (in.num != 0)
        return dmm__fire_failf(f, DMM_E_INVAL,
                               "input in must be {age: {source: vector}}, "
                               "not a number");
    vv_iter ia, is;
    vv_label age, src;
    vv byage, r;
    vv_iter_init(&ia, in);
    while (vv_iter_next(&ia, &age, &byage)) {
        if (byage.num != 0 || !byage.map)
            return dmm__fire_failf(f, DMM_E_INVAL,
                                   "input in at age %s must be {source: "
                                   "vector}",
                                   lstr(f, age));
        vv_iter_init(&is, byage);
        while (vv_iter_next(&is, &src, &r)) {
            int rc = take(w, age, src, 1.0, r, grad);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* An arrival of a term: keyed (age, src), the term's weight and vector. */
typedef struct term_arrival {
    vv_label age, src;
    double w;
    vv r;
} term_arrival;

enum { TERM_ARRIVALS_MAX = 512 };

/* x into a[0..*m), kept sorted; false when full or a duplicate. Inlined
 * (with terms_age) in the loop over the terms, run for every arrival. */
static inline __attribute__((always_inline)) bool
terms_push(term_arrival *a, size_t *m, term_arrival x)
{
    if (*m == TERM_ARRIVALS_MAX)
        return false;
    size_t j = (*m)++;
    /* insertion: the terms come nearly in this order already */
    while (j > 0 && (a[j - 1].age > x.age ||
                     (a[j - 1].age == x.age && a[j - 1].src > x.src))) {
        a[j] = a[j - 1];
        j--;
    }
    if (j > 0 && a[j - 1].age == x.age && a[j - 1].src == x.src)
        return false;
    a[j] = x;
    return true;
}

/* The arrivals {source: r} of one age of a term, into a. */
static inline __attribute__((always_inline)) bool
terms_age(term_arrival *a, size_t *m, vv_label age, vv byage, double w)
{
    if (byage.num != 0 || !byage.map)
        return false;
    vv_leaf lf;
    if (vv_leaf_view(byage, &lf)) { /* one node: read as arrays */
        for (size_t i = 0; i < lf.n; i++)
            if (!terms_push(
                    a, m,
                    (term_arrival){age, lf.label[i], w, vv_leaf_child(&lf, i)}))
                return false;
        return true;
    }
    vv_iter is;
    vv_label src;
    vv r;
    vv_iter_init(&is, byage);
    while (vv_iter_next(&is, &src, &r))
        if (!terms_push(a, m, (term_arrival){age, src, w, r}))
            return false;
    return true;
}

/*
 * The arrivals of input in given as its terms (dmm_terms), each term
 * {age: {source: r}}, sorted by age then source label, the order in which
 * energy() walks their sum. False when they are not all of that form, or
 * some (age, source) comes in two terms, or there are too many: then the
 * caller takes their sum, which is the input all the same.
 */
static bool terms_arrivals(const dmm_terms *t, term_arrival *a, size_t *n)
{
    size_t m = 0;
    for (size_t i = 0; i < t->n; i++) {
        vv v = t->v[i];
        if (v.num != 0)
            return false;
        vv_leaf lf;
        if (vv_leaf_view(v, &lf)) {
            for (size_t j = 0; j < lf.n; j++)
                if (!terms_age(a, &m, lf.label[j], vv_leaf_child(&lf, j),
                               t->w[i]))
                    return false;
            continue;
        }
        vv_iter ia;
        vv_label age;
        vv byage;
        vv_iter_init(&ia, v);
        while (vv_iter_next(&ia, &age, &byage))
            if (!terms_age(a, &m, age, byage, t->w[i]))
                return false;
    }
    *n = m;
    return true;
}

/* energy() over input in given as its terms: each arrival weighed by its
 * term (the bits of the sum, whose leaves are those products), or, when
 * terms_arrivals refuses, over their sum. */
static int energy_terms(energy_work *w, const dmm_terms *t, vv *grad)
{
    dmm_fire *f = w->f;
    term_arrival a[TERM_ARRIVALS_MAX];
    size_t n;
    if (!terms_arrivals(t, a, &n)) {
        vv in;
        int rc = vv_sum(f->vc, t->n, t->w, t->v, &in);
        if (rc)
            return dmm__fire_fail(f, rc);
        rc = energy(w, in, grad);
        vv_free(f->vc, in);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = take(w, a[i].age, a[i].src, a[i].w, a[i].r, grad);
        if (rc)
            return rc;
    }
    return 0;
}

/* J = scale · (friends' mass + rest · a), a the mean of the friends'
 * vectors, or v when no friend arrived. */
static double energy_value(const energy_work *w, double scale)
{
    double dot = 0;
    for (int k = 0; k < w->comp.n; k++) {
        double a = w->n_friend ? w->fr_sum[k] / (double)w->n_friend : w->v[k];
        dot += w->rest[k] * a;
    }
    return scale * (w->fr_mass + dot);
}

/*
 * The update of one route row: new[d] = (P[d]·gain + add[d]) / S for the
 * reachable routes, P[d] / S for the blocked ones, S the sum of the
 * numerators in age order (so a row of the spec's P[s][c][.] is renormalised
 * over all its durations). The interference neuron adds eta·P of each
 * arrival (gain 1), the learner multiplies by 1 + eta as the direct engine
 * does (add zero). Out: {age: new - old} for the reachable and the blocked
 * row.
 */
static int row_update(dmm_fire *f, vv reach, vv blocked, double gain, vv pend,
                      vv *d_in, vv *d_bl)
{
    const dmm__builtin_labels *bl = dmm__builtin_labels_of(f->type);
    double p[DMM__DELAY_MAX] = {0}, add[DMM__DELAY_MAX] = {0};
    signed char where[DMM__DELAY_MAX] = {0}; /* 1 reachable, 2 blocked */
    vv rows[2] = {reach, blocked};
    vv_iter it;
    vv_label l;
    vv x;
    for (int side = 0; side < 2; side++) {
        vv_iter_init(&it, rows[side]);
        while (vv_iter_next(&it, &l, &x)) {
            int a = age_of(bl, l);
            if (a < 0)
                return dmm__fire_failf(f, DMM_E_INVAL,
                                       "route from output \"%s\": not an age "
                                       "0..%d",
                                       lstr(f, l), DMM__DELAY_MAX - 1);
            if (x.map || where[a])
                return dmm__fire_failf(
                    f, DMM_E_INVAL,
                    "route of age %s must be one number in in or blocked",
                    lstr(f, l));
            p[a] = x.num;
            where[a] = (signed char)(side + 1);
        }
    }
    vv_iter_init(&it, pend);
    while (vv_iter_next(&it, &l, &x)) {
        int a = age_of(bl, l);
        if (a < 0 || where[a] != 1)
            return dmm__fire_failf(f, DMM_E_INVAL,
                                   "arrival at age %s has no reachable route "
                                   "to learn",
                                   lstr(f, l));
        add[a] = x.num;
    }
    double val[DMM__DELAY_MAX], sum = 0;
    for (int a = 0; a < DMM__DELAY_MAX; a++) {
        val[a] = where[a] == 1 ? p[a] * gain + add[a] : p[a];
        sum += val[a];
    }
    if (sum == 0 || !isfinite(sum))
        return dmm__fire_failf(f, DMM_E_NONFINITE,
                               "a route row sums to %g after the update and "
                               "cannot be renormalised",
                               sum);
    vv_label lab[2][DMM__DELAY_MAX];
    vv kid[2][DMM__DELAY_MAX];
    size_t n[2] = {0, 0};
    for (int a = 0; a < DMM__DELAY_MAX; a++) {
        if (!where[a])
            continue;
        int side = where[a] - 1;
        lab[side][n[side]] = bl->age[a];
        kid[side][n[side]++] = vv_number(val[a] / sum - p[a]);
    }
    int rc = vv_from_pairs(f->vc, 0, n[0], lab[0], kid[0], d_in);
    if (!rc && (rc = vv_from_pairs(f->vc, 0, n[1], lab[1], kid[1], d_bl)))
        vv_free(f->vc, *d_in);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/*
 * Two maps keyed alike ({label: a}, {label: b}), built from pairs pushed in
 * label order: a delta's reachable and blocked sides. One allocation: the
 * values first (8-aligned), then the labels.
 */
typedef struct twin {
    size_t n;
    vv *a, *b;
    vv_label *l;
} twin;

static int twin_open(dmm_fire *f, twin *t, size_t cap)
{
    cap = cap ? cap : 1;
    *t = (twin){0};
    if (!(t->a = malloc(cap * (2 * sizeof(vv) + sizeof(vv_label)))))
        return dmm__fire_fail(f, DMM_E_NOMEM);
    t->b = t->a + cap;
    t->l = (vv_label *)(t->b + cap);
    return 0;
}

/* The pairs pushed so far, freed (after an error). */
static void twin_drop(vv_ctx *vc, twin *t)
{
    for (size_t i = 0; i < t->n; i++) {
        vv_free(vc, t->a[i]);
        vv_free(vc, t->b[i]);
    }
    free(t->a);
}

/* The two maps (new, in *a and *b), taking the pairs. */
static int twin_close(dmm_fire *f, twin *t, vv *a, vv *b)
{
    int rc = vv_from_pairs(f->vc, 0, t->n, t->l, t->a, a);
    if (rc)
        for (size_t i = 0; i < t->n; i++)
            vv_free(f->vc, t->b[i]);
    else if ((rc = vv_from_pairs(f->vc, 0, t->n, t->l, t->b, b)))
        vv_free(f->vc, *a);
    free(t->a);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/*
 * The changes of the rows of one source type g ({ng: row} in byname), as
 * {ng: change} on the reachable side (*d_in) and the blocked side (*d_bl),
 * made once from the rows in label order (one vv_set per row would copy the
 * growing map each time).
 */
static int rows_commit(dmm_fire *f, vv_label g, vv byname, vv blocked_all,
                       dmm__route_learn_fn learn, void *ud, size_t *matched,
                       vv *d_in, vv *d_bl)
{
    twin t;
    int rc = twin_open(f, &t, vv_nchildren(byname));
    vv_iter in;
    vv_label ng;
    vv row;
    vv_iter_init(&in, byname);
    while (!rc && vv_iter_next(&in, &ng, &row)) {
        double gain = 1;
        vv pend = VV_ZERO;
        if (!learn(ud, ng, &gain, &pend))
            continue;
        ++*matched;
        vv_label gn[2] = {g, ng};
        if (!(rc = row_update(f, row, vv_get(blocked_all, gn, 2), gain, pend,
                              &t.a[t.n], &t.b[t.n])))
            t.l[t.n++] = ng;
        else
            twin_drop(f->vc, &t); /* said by row_update */
    }
    return rc ? rc : twin_close(f, &t, d_in, d_bl);
}

int dmm__routes_commit(dmm_fire *f, vv_label in_l, vv_label bl_l, vv routes,
                       dmm__route_learn_fn learn, void *ud, size_t *matched,
                       vv *out)
{
    vv reach_all = vv_child(routes, in_l);
    vv blocked_all = vv_child(routes, bl_l);
    *matched = 0;
    twin t;
    int rc = twin_open(f, &t, vv_nchildren(reach_all));
    vv_iter ig;
    vv_label g;
    vv byname;
    vv_iter_init(&ig, reach_all);
    while (!rc && vv_iter_next(&ig, &g, &byname))
        if (!(rc = rows_commit(f, g, byname, blocked_all, learn, ud, matched,
                               &t.a[t.n], &t.b[t.n])))
            t.l[t.n++] = g;
        else
            twin_drop(f->vc, &t); /* said by rows_commit */
    if (rc)
        return rc;
    /* {in: {g: ...}, blocked: {g: ...}} */
    vv side[2];
    vv_label sl[2] = {in_l, bl_l};
    vv acc;
    if ((rc = twin_close(f, &t, &side[0], &side[1])) ||
        (rc = dmm__fire_map(f, 2, sl, side, &acc)))
        return rc;
    vv_label path[2] = {f->type->name, f->name};
    rc = vv_set(f->vc, VV_ZERO, path, 2, acc, out);
    vv_free(f->vc, acc);
    return rc ? dmm__fire_fail(f, rc) : 0;
}

/* The interference neuron's rows: the additions pending for source ng. */
static bool pending_of(void *ud, vv_label ng, double *gain, vv *add)
{
    (void)gain;
    *add = vv_child(*(const vv *)ud, ng);
    return !vv_is_zero(*add);
}

/*
 * The change of this neuron's routes for the pending update. routes is
 * W[type][name] read through Self: its `in` row holds the reachable routes
 * {g: {ng: {age: P}}}, its `blocked` row those shorter than the distance. The
 * source key of an arrival is the name ng of the neuron it came through.
 * Out (new): the six-level delta {type: {name: {in: ..., blocked: ...}}}.
 */
static int commit(dmm_fire *f, vv routes, vv pending, vv *out)
{
    size_t matched;
    int rc = dmm__routes_commit(f, f->type->in[IN_IN], f->type->in[IN_BLOCKED],
                                routes, pending_of, &pending, &matched, out);
    if (rc || matched == vv_nchildren(pending))
        return rc;
    vv_free(f->vc, *out);
    *out = VV_ZERO;
    return dmm__fire_failf(f, DMM_E_INVAL,
                           "%zu sources arrived while learning but %zu "
                           "have a route row in input in as read through "
                           "input routes (link routes to Self's output at "
                           "this neuron's own row)",
                           vv_nchildren(pending), matched);
}

int dmm__target_add(dmm_fire *f, dmm__target_sums *s, double j, bool arrived)
{
    if (!isfinite(j))
        return dmm__fire_failf(f, DMM_E_NONFINITE, "the energy is not finite");
    s->score = fmax(s->score, j);
    if (arrived) {
        s->peak = s->count > 0 ? fmax(s->peak, j) : j;
        s->count++;
    }
    s->total += j;
    if (!isfinite(s->total))
        return dmm__fire_failf(f, DMM_E_NONFINITE, "the total is not finite");
    return 0;
}

int dmm__target_output(dmm_fire *f, const dmm__target_sums *s, double j,
                       vv *delta, vv *out)
{
    const vv_label *o = f->type->out;
    vv_label ol[5] = {o[DMM__TGT_ENERGY], o[DMM__TGT_SCORE], o[DMM__TGT_PEAK],
                      o[DMM__TGT_TOTAL], o[DMM__TGT_DELTA]};
    vv ov[5] = {vv_number(j), vv_number(s->score), vv_number(s->peak),
                vv_number(s->total), *delta};
    *delta = VV_ZERO;
    return dmm__fire_map(f, 5, ol, ov, out);
}

int dmm__target_emit(dmm_fire *f, dmm__target_sums *s, double j, bool arrived,
                     vv *delta, vv *out)
{
    int rc = dmm__target_add(f, s, j, arrived);
    if (rc) {
        vv_free(f->vc, *delta);
        *delta = VV_ZERO;
        return rc;
    }
    return dmm__target_output(f, s, j, delta, out);
}

static int fire_interference(dmm_fire *f)
{
    const dmm__builtin_labels *bl = dmm__builtin_labels_of(f->type);
    const vv_label *out_l = f->type->out;
    vv_label learn_l = f->type->in[IN_LEARN];
    double reset = 0, learn = 0;
    int rc;
    if ((rc = scalar_input(f, IN_RESET, &reset)) ||
        (rc = scalar_input(f, IN_LEARN, &learn)))
        return rc;

    energy_work w = {.f = f};
    w.th_friend = dmm_fire_param(f, DMM__TGT_FRIEND);
    w.th_foe = dmm_fire_param(f, DMM__TGT_FOE);
    w.eta[0] = dmm_fire_param(f, DMM__TGT_ETA_FRIEND);
    w.eta[1] = dmm_fire_param(f, DMM__TGT_ETA_STRANGER);
    w.eta[2] = dmm_fire_param(f, DMM__TGT_ETA_FOE);
    double scale = dmm_fire_param(f, DMM__TGT_SCALE);

    vv target = dmm_fire_in(f, IN_TARGET);
    vv_iter it;
    vv_label l;
    vv c;
    vv_iter_init(&it, target);
    while (vv_iter_next(&it, &l, &c)) {
        int k = comp_index(&w.comp, l);
        if (k < 0 || c.map)
            return dmm__fire_failf(f, DMM_E_INVAL,
                                   "input target must be a flat vector of at "
                                   "most %d components",
                                   DIM_MAX);
        w.v[k] = c.num;
    }

    /* The episode so far; a reset first applies the pending update. */
    dmm__target_sums e = {vv_child(f->state, out_l[OUT_SCORE]).num,
                          vv_child(f->state, out_l[OUT_PEAK]).num,
                          vv_child(f->state, out_l[OUT_TOTAL]).num,
                          vv_child(f->state, bl->count).num};
    bool learning = vv_child(f->state, learn_l).num != 0;
    vv pending = vv_ref(vv_child(f->state, out_l[OUT_DELTA]));
    vv delta = VV_ZERO;
    if (reset != 0) {
        if (!vv_is_zero(pending) &&
            (rc = commit(f, dmm_fire_in(f, IN_ROUTES), pending, &delta))) {
            vv_free(f->vc, pending);
            return rc;
        }
        e = (dmm__target_sums){0};
        learning = false;
        vv_free(f->vc, pending);
        pending = VV_ZERO;
    }
    learning |= learn > 0;

    const dmm_terms *tin = f->terms ? &f->terms[IN_IN] : NULL;
    vv output;
    if ((rc = tin && tin->given
                  ? energy_terms(&w, tin, learning ? &pending : NULL)
                  : energy(&w, dmm_fire_in(f, IN_IN),
                           learning ? &pending : NULL)) ||
        (rc = dmm__target_emit(f, &e, energy_value(&w, scale), w.n_arr > 0,
                               &delta, &output))) {
        vv_free(f->vc, pending);
        vv_free(f->vc, delta);
        return rc;
    }
    vv_label sl[6] = {out_l[OUT_SCORE], out_l[OUT_PEAK], out_l[OUT_TOTAL],
                      bl->count,        learn_l,         out_l[OUT_DELTA]};
    vv sv[6] = {vv_number(e.score),          vv_number(e.peak),
                vv_number(e.total),          vv_number(e.count),
                vv_number(learning ? 1 : 0), pending};
    if ((rc = dmm__fire_map(f, 6, sl, sv, &f->new_state))) {
        vv_free(f->vc, output);
        return rc;
    }
    f->output = output;
    return 0;
}

const char *const dmm__target_outputs[] = {"energy", "score", "peak",
                                           "total",  "delta", NULL};

const dmm_param_spec dmm__target_params[] = {DMM__TARGET_PARAM_SPECS,
                                             {NULL, 0, NULL}};

const dmm_neuron_type dmm__builtin_interference[] = {
    {.name = "delay",
     .summary = "delay line: output a (an age \"0\" .. length-1) is {a: the "
                "input map of a cycles ago}, absent when that input was {}; "
                "the age is kept inside the value so that ages summed through "
                "W stay apart (spec interference.md §3)",
     .outputs_doc = "the ages `0` .. length−1",
     .params =
         (const dmm_param_spec[]){{"length", 1,
                                   "how many cycles it remembers, 1 to 64", 1,
                                   DMM__DELAY_MAX, true},
                                  {NULL, 0, NULL}},
     .stateful = true,
     .fn = fire_delay},
    {.name = "interference",
     .summary =
         "induced interference target (spec interference.md §1-3): in holds "
         "arrivals {age: {source: P·[1, f]}} (scalar part = the route mass "
         "P); friends have f·target >= friend, foes <= foe; energy J = scale "
         "· (friends' P + (others' P f) · a), a = friends' mean f or target; "
         "score = max(0, J since reset), peak = max J over cycles with "
         "arrivals, total = sum of J. reset (a number) starts an episode; "
         "learn > 0 makes it a training one, adding eta·P of each arrival; "
         "the next reset emits on delta the change of its routes (read on "
         "routes: its own row of W through Self), each row (P + added) / sum "
         "over in and blocked",
     .inputs = NAMES("in", "blocked", "target", "routes", "reset", "learn"),
     .outputs = dmm__target_outputs,
     .params = dmm__target_params,
     .stateful = true,
     .fn = fire_interference,
     /* blocked is W's, for the update to read through routes */
     .unread = NAMES("blocked"),
     .terms = NAMES("in")},
    {.name = NULL},
};
