// SPDX-License-Identifier: MIT
/*
 * Internals shared by the registry and the built-in types: the descriptor
 * tables, and the few labels built-ins use that are neither input, output nor
 * parameter names ("this", "rest" of cons). Those are interned once per
 * registry by dmm_registry_add_builtins and reached from f->type in O(1).
 */
#ifndef DMM_BUILTINS_H
#define DMM_BUILTINS_H

#include "dmm_neuron.h"

/* Tables terminated by an entry with name == NULL, registered in order. */
extern const dmm_neuron_type dmm__builtin_basic[];
extern const dmm_neuron_type dmm__builtin_activation[];
extern const dmm_neuron_type dmm__builtin_meanfield[];
extern const dmm_neuron_type dmm__builtin_attention[];
extern const dmm_neuron_type dmm__builtin_interference[];
extern const dmm_neuron_type dmm__builtin_learner[];
extern const dmm_neuron_type dmm__builtin_synth[];

/* The delay line's longest memory: its outputs are the ages "0" .. "63". */
enum { DMM__DELAY_MAX = DMM_DELAY_MAX };

typedef struct dmm__builtin_labels {
    vv_label this_; /* cons: the newest element */
    vv_label rest;  /* cons: the list before it */
    /* delay, interference: age labels "0" .. "63" (interned after every
     * built-in table, so the tables' own labels keep their ids) */
    vv_label age[DMM__DELAY_MAX];
    vv_label count; /* interference: state key, cycles with arrivals */
    /* learner: state keys (the image taken this cycle, the age of the one
     * held, the episode) and the episode's (its table, one past its last
     * age, the routes' masses by age) */
    vv_label next, age_now, episode, table, horizon, masses;
} dmm__builtin_labels;

/*
 * borrowed: the labels of the registry t was registered in. t must come from
 * a registry (dmm_registry_find/at) after dmm_registry_add_builtins (asserted).
 * Why not intern at fire time: neurons fire in parallel and interning takes a
 * lock; the public dmm_type_info has no field for them, so the registry's
 * record that embeds t carries them.
 */
const dmm__builtin_labels *dmm__builtin_labels_of(const dmm_type_info *t);

/* Record a failed V-value operation in f->err (type and neuron named) and
 * return rc. f->output is left zero by every built-in on error. */
int dmm__fire_fail(dmm_fire *f, int rc);
/* The same with a printf-style reason instead of dmm_strerror(rc):
 * "neuron type/name: <reason>". Returns rc. */
int dmm__fire_failf(dmm_fire *f, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The error of dmm__fire_number (below), said in f->err. */
int dmm__fire_not_number(dmm_fire *f, vv v, const char *kind, vv_label name);
/* v as a number into *out: 0 when v is a bare number (or absent), else an
 * error naming it "<kind><name>" (kind "input ", "state " ...). Inline: it
 * reads a neuron's scalars every cycle. */
static inline int dmm__fire_number(dmm_fire *f, vv v, const char *kind,
                                   vv_label name, double *out)
{
    if (!vv_is_scalar(v))
        return dmm__fire_not_number(f, v, kind, name);
    *out = v.num;
    return 0;
}
/* *out (new) = the map of the n pairs (l[i], v[i]), distinct labels, which
 * it sorts by label first (vv_from_pairs' fastest case) and takes the values
 * of; failures said in f->err. */
int dmm__fire_map(dmm_fire *f, size_t n, vv_label *l, vv *v, vv *out);

/*
 * The interference targets, `interference` and `learner`
 * (builtin_interference.c, builtin_learner.c): both declare these outputs
 * and parameters (defined in builtin_interference.c), indexed as below, and
 * keep their episode's sums in their state under the outputs' names (and
 * `count`).
 */
extern const char *const dmm__target_outputs[];
extern const dmm_param_spec dmm__target_params[];
/* The entries of dmm__target_params, for a type that adds its own after. */
/* clang-format off */
#define DMM__TARGET_PARAM_SPECS                                                \
    {"friend", 0.7, "similarity from which a source is a friend"},             \
    {"foe", -0.7, "similarity up to which a source is a foe"},                 \
    {"eta-friend", 1, "learning rate of friends"},                             \
    {"eta-stranger", -0.5, "learning rate of strangers"},                      \
    {"eta-foe", -0.8, "learning rate of foes"},                                \
    {"scale", 1000, "energy multiplier"}
/* clang-format on */
enum {
    DMM__TGT_FRIEND,
    DMM__TGT_FOE,
    DMM__TGT_ETA_FRIEND,
    DMM__TGT_ETA_STRANGER,
    DMM__TGT_ETA_FOE,
    DMM__TGT_SCALE
};
enum {
    DMM__TGT_ENERGY,
    DMM__TGT_SCORE,
    DMM__TGT_PEAK,
    DMM__TGT_TOTAL,
    DMM__TGT_DELTA
};
typedef struct dmm__target_sums {
    double score; /* max(0, J) since the reset */
    double peak;  /* max J over the cycles with arrivals */
    double total; /* Σ J */
    double count; /* cycles with arrivals */
} dmm__target_sums;
/* An energy j into s (arrived: whether anything arrived at its age);
 * DMM_E_NONFINITE, said in f->err, when j or the total is not finite. */
int dmm__target_add(dmm_fire *f, dmm__target_sums *s, double j, bool arrived);
/* The output {energy: j, score, peak, total, delta} (new, in *out), taking
 * *delta (zero after, also on failure). */
int dmm__target_output(dmm_fire *f, const dmm__target_sums *s, double j,
                       vv *delta, vv *out);
/* This cycle's energy j: dmm__target_add, then dmm__target_output (*delta
 * zero after either way). */
int dmm__target_emit(dmm_fire *f, dmm__target_sums *s, double j, bool arrived,
                     vv *delta, vv *out);

/*
 * Route rows of the interference targets (builtin_interference.c), shared by
 * `interference` and `learner`. learn(ud, ng, gain, add) says whether the
 * rows of source ng change, and how: reachable routes P·gain + add[age]
 * (add borrowed), then each row renormalised. routes is the neuron's own row
 * of W read through Self, in_l and bl_l its reachable and blocked inputs.
 * *matched counts the rows changed. Out (new): the six-level delta
 * {type: {name: {in: ..., blocked: ...}}} for Self.
 */
typedef bool (*dmm__route_learn_fn)(void *ud, vv_label ng, double *gain,
                                    vv *add);
int dmm__routes_commit(dmm_fire *f, vv_label in_l, vv_label bl_l, vv routes,
                       dmm__route_learn_fn learn, void *ud, size_t *matched,
                       vv *out);

#endif
