// SPDX-License-Identifier: MIT
/*
 * Induced interference training (Tang, arXiv 2008.11111; spec
 * interference.md §1, §2) as plain computation: MNIST preprocessing into 81
 * source vectors, friend/stranger/foe classes, the corner geometry, the route
 * table P[s][c][d], energy, score, update and prediction, and the double-slit
 * experiment. No files, no printing, no allocation, no hidden state: every
 * random draw comes from a dmm_if_rng the caller owns.
 */
#ifndef DMM_INTERFERENCE_H
#define DMM_INTERFERENCE_H

#include <stddef.h>
#include <stdint.h>

/* ---- Sizes ------------------------------------------------------------- */

enum {
    DMM_IF_SIDE = 28,    /* MNIST images are 28 x 28 */
    DMM_IF_PIXELS = 784, /* DMM_IF_SIDE squared */
    DMM_IF_GRID = 9,     /* 9 x 9 patches of 3 x 3 after the 27 x 27 crop */
    DMM_IF_SOURCES = 81, /* source s = 9 * patch row + patch column */
    DMM_IF_DIM = 10,     /* [rest, 9 patch values] */
    DMM_IF_CLASSES = 4,  /* digits 0, 1, 2, 4 */
    DMM_IF_TIMES = 25,   /* the published horizon: t, d = 0..24 */
    DMM_IF_SCALE = 1000, /* energy multiplier */
    /* The longest horizon a route table holds (`--horizon`): the longest
     * delay line of the network form, so both engines take the same. */
    DMM_IF_TIMES_MAX = 64,
};

/*
 * Variant flags. 0 (DMM_IF_FAITHFUL) reproduces the published code with its
 * QUIRKs; each flag corrects one of them.
 * - FIX_REST: the rest-state test looks at the raw patch (all 9 pixels 0)
 *   instead of the sum after centring, and a rest patch is [1, 0, ..., 0].
 * - FIX_SCORE: the score of a class is the maximum of J_c(t) over the times
 *   that some source can reach (t >= 2), without the floor at 0, so an image
 *   whose energies are all negative is no longer predicted as class 0.
 * - FIX_NOISE: double slit, the second source's phase noise is U(-1,1)*pi/12
 *   like the first one's, instead of U(-1,1) + pi/12.
 */
enum {
    DMM_IF_FAITHFUL = 0,
    DMM_IF_FIX_REST = 1u << 0,
    DMM_IF_FIX_SCORE = 1u << 1,
    DMM_IF_FIX_NOISE = 1u << 2,
    DMM_IF_CORRECTED = DMM_IF_FIX_REST | DMM_IF_FIX_SCORE | DMM_IF_FIX_NOISE,
};

/* ---- Random numbers ---------------------------------------------------- */

/* xoshiro256**, seeded through splitmix64; caller-owned, no global state. */
typedef struct dmm_if_rng {
    uint64_t s[4];
} dmm_if_rng;

void dmm_if_rng_seed(dmm_if_rng *r, uint64_t seed);
uint64_t dmm_if_rng_next(dmm_if_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double dmm_if_rng_uniform(dmm_if_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t dmm_if_rng_below(dmm_if_rng *r, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void dmm_if_shuffle(size_t *idx, size_t n, dmm_if_rng *r);

/* ---- Sources: preprocessing and classes -------------------------------- */

enum { DMM_IF_FRIEND = 0, DMM_IF_STRANGER = 1, DMM_IF_FOE = 2 };

/* Thresholds and learning rates of spec §1: the published values, which
 * dmm_if_preprocess, dmm_if_kind and dmm_if_eta use. */
#define DMM_IF_FRIEND_SIM   0.7
#define DMM_IF_FOE_SIM      (-0.7)
#define DMM_IF_ETA_FRIEND   1.0
#define DMM_IF_ETA_STRANGER (-0.5)
#define DMM_IF_ETA_FOE      (-0.8)

/*
 * Thresholds and learning rates as run-time values, for runs that change
 * them (`dmm experiment --friend, --eta-foe, ...`). A source is a friend when
 * sim >= friend_sim, a foe when sim <= foe_sim, else a stranger; eta is
 * indexed by that class (DMM_IF_FRIEND, _STRANGER, _FOE). Any values are
 * taken, 0 included; foe_sim > friend_sim makes the friend test win.
 */
typedef struct dmm_if_params {
    double friend_sim, foe_sim;
    double eta[3];
} dmm_if_params;

/* The published values of spec §1 (MNIST) into p. */
void dmm_if_params_published(dmm_if_params *p);

/* One preprocessed image: the 81 source vectors with their classes. */
typedef struct dmm_if_image {
    double f[DMM_IF_SOURCES][DMM_IF_DIM]; /* unit vectors (rest: see flags) */
    double sim[DMM_IF_SOURCES];           /* f[s] . v */
    double eta[DMM_IF_SOURCES];           /* learning rate of its class */
    uint8_t kind[DMM_IF_SOURCES];         /* DMM_IF_FRIEND / STRANGER / FOE */
} dmm_if_image;

/* The target vector v = [0, 1, ..., 1] / 3 (unit norm) into v. */
void dmm_if_target(double v[DMM_IF_DIM]);
/* The class of a similarity with v (DMM_IF_FRIEND, _STRANGER or _FOE). */
int dmm_if_kind(double sim);
/* The learning rate eta of a class. */
double dmm_if_eta(int kind);
/*
 * Preprocess a 28 x 28 row-major image of uint8 pixels (spec §1 steps 1-3):
 * crop to 27 x 27, centre on the crop's mean, cut into 3 x 3 patches, turn
 * each into a 10-vector, classify it against v. `variant`: DMM_IF_FIX_REST
 * changes the rest test (see above); other flags are ignored.
 */
void dmm_if_preprocess(const uint8_t pixels[DMM_IF_PIXELS], unsigned variant,
                       dmm_if_image *out);
/* Re-classify every source of img from its sim under p (kind and eta);
 * with the published values this changes nothing. */
void dmm_if_classify(dmm_if_image *img, const dmm_if_params *p);

/* ---- Geometry ---------------------------------------------------------- */

/*
 * Source s sits at (s/9 - 4, s%9 - 4); targets outside the corners: class 0
 * at (-5,-5), 1 at (+5,-5), 2 at (+5,+5), 3 at (-5,+5). Manhattan distance,
 * 2..18. s in [0, 81), c in [0, 4). (The published geometry.)
 */
int dmm_if_dist(int s, int c);
/* Class id 0..3 of a digit (0, 1, 2, 4), -1 for any other digit. */
int dmm_if_class_of_digit(int digit);
/* The digit of a class id 0..3. */
int dmm_if_digit_of_class(int c);

/*
 * Where the targets sit and how far a signal travels, as run-time values
 * (`dmm experiment --geometry, --distance, --horizon`; docs/experiments.md).
 * Positions are (row, column) with the grid's centre patch at (0, 0).
 * - DMM_IF_AT_CORNERS (published): diagonally outside the corners, class 0
 *   at (-5,-5), 1 at (+5,-5), 2 at (+5,+5), 3 at (-5,+5).
 * - DMM_IF_AT_SIDES: outside the middle of each side, class 0 at (0,-5)
 *   (left), 1 at (+5,0) (bottom), 2 at (0,+5) (right), 3 at (-5,0) (top).
 * Distances, in time steps: DMM_IF_MANHATTAN |dy| + |dx| (published: a
 * signal moves along grid lines), DMM_IF_EUCLIDEAN ceil(sqrt(dy^2 + dx^2))
 * (a straight line, whole steps), DMM_IF_CHEBYSHEV max(|dy|, |dx|) (one
 * step may be diagonal). times: the horizon, t and d = 0..times-1.
 */
enum { DMM_IF_AT_CORNERS = 0, DMM_IF_AT_SIDES = 1 };
enum { DMM_IF_MANHATTAN = 0, DMM_IF_EUCLIDEAN = 1, DMM_IF_CHEBYSHEV = 2 };

typedef struct dmm_if_geometry {
    int targets; /* DMM_IF_AT_* */
    int metric;  /* DMM_IF_MANHATTAN, _EUCLIDEAN, _CHEBYSHEV */
    int times;   /* 1..DMM_IF_TIMES_MAX */
    uint8_t dist[DMM_IF_CLASSES][DMM_IF_SOURCES]; /* [c][s], from the above */
} dmm_if_geometry;

/* Fill g; 0, or DMM_E_INVAL for an unknown targets or metric, or times
 * outside 1..DMM_IF_TIMES_MAX (g untouched then). */
int dmm_if_geometry_make(dmm_if_geometry *g, int targets, int metric,
                         int times);
/* Corners, Manhattan, 25: the published geometry, the one dmm_if_dist
 * gives. */
void dmm_if_geometry_published(dmm_if_geometry *g);
/* The shortest distance from any source to target c (the first time
 * anything reaches c): 2 for every corner under Manhattan. */
int dmm_if_geometry_nearest(const dmm_if_geometry *g, int c);

/* ---- Route table ------------------------------------------------------- */

/*
 * The route probabilities. p[c][s][d] is the spec's P[s][c][d]: stored with
 * the class first so that one class's training touches one block and each
 * (s, c) row over d is contiguous. Each row sums to 1 (up to rounding) over
 * d < geom.times; the entries from geom.times on are 0. geom is the
 * geometry the model was made for, which every function below follows.
 */
typedef struct dmm_if_model {
    double p[DMM_IF_CLASSES][DMM_IF_SOURCES][DMM_IF_TIMES_MAX];
    dmm_if_geometry geom;
} dmm_if_model;

static inline double dmm_if_route(const dmm_if_model *m, int s, int c, int d)
{
    return m->p[c][s][d];
}

/* Every entry 9 + U[0,1) in (c, s, d) order from r, rows normalised; the
 * published geometry. */
void dmm_if_model_init_random(dmm_if_model *m, dmm_if_rng *r);
/* Every entry 1/25; the published geometry. */
void dmm_if_model_init_uniform(dmm_if_model *m);
/* Either of the two for geometry g (borrowed, copied; NULL: published):
 * r != NULL random from r, r == NULL every entry 1/g->times. */
void dmm_if_model_init(dmm_if_model *m, const dmm_if_geometry *g,
                       dmm_if_rng *r);

/* ---- Energy, score, training, prediction ------------------------------- */

/*
 * J[t] = J_c(t) of spec §1 for t = 0..m->geom.times-1 (J has room for that
 * many; 0 where no source reaches c):
 * 1000 * (sum over friends in A of P + (sum over others in A of P f_s) . a),
 * a = mean of the friends' vectors in A, or v when there is none.
 */
void dmm_if_energy(const dmm_if_model *m, const dmm_if_image *img, int c,
                   double *J);
/*
 * The four class scores. Faithful: max over t of J_c(t), never below 0.
 * DMM_IF_FIX_SCORE: max over the t from which some source reaches c (t >= 2
 * for the corners), may be negative; 0 when the horizon ends before.
 */
void dmm_if_scores(const dmm_if_model *m, const dmm_if_image *img,
                   unsigned variant, double score[DMM_IF_CLASSES]);
/* argmax of score, the first class winning ties (so all-zero gives 0). */
int dmm_if_argmax(const double score[DMM_IF_CLASSES]);
/* dmm_if_argmax of dmm_if_scores; score may be NULL. */
int dmm_if_predict(const dmm_if_model *m, const dmm_if_image *img,
                   unsigned variant, double score[DMM_IF_CLASSES]);

/*
 * Tie rules (`dmm experiment mnist-fewshot --ties`, docs/experiments.md):
 * which class a prediction gives when several share the highest score.
 * - DMM_IF_TIES_FIRST (published): the first of them, so an image whose
 *   faithful scores are all 0 (every energy below 0: the floor) goes to
 *   class 0, whatever its energies were.
 * - DMM_IF_TIES_PEAK: the one of them with the highest peak energy, the
 *   maximum of J_c(t) over the times from the first arrival at c, not
 *   floored at 0 (the score of DMM_IF_FIX_SCORE); the first of them when
 *   those tie as well. The floor is what makes faithful scores tie: it
 *   throws away how far below 0 each class stayed, and the peak is that
 *   same energy before the floor. With DMM_IF_FIX_SCORE the score is the
 *   peak, so the two rules agree.
 */
enum { DMM_IF_TIES_FIRST = 0, DMM_IF_TIES_PEAK = 1 };

/*
 * dmm_if_scores and, into peak (may be NULL), each class's peak energy: the
 * maximum of J_c(t) over t from dmm_if_geometry_nearest(c) on, 0 when the
 * horizon ends before (what dmm_if_scores gives with DMM_IF_FIX_SCORE). One
 * computation of the energies for both.
 */
void dmm_if_scores_peaks(const dmm_if_model *m, const dmm_if_image *img,
                         unsigned variant, double score[DMM_IF_CLASSES],
                         double peak[DMM_IF_CLASSES]);
/* The argmax of score with tie rule ties (DMM_IF_TIES_*); peak is read
 * only for DMM_IF_TIES_PEAK and only when the highest score is shared. */
int dmm_if_argmax_ties(const double score[DMM_IF_CLASSES],
                       const double peak[DMM_IF_CLASSES], int ties);
/* dmm_if_argmax_ties of dmm_if_scores_peaks; score may be NULL.
 * DMM_IF_TIES_FIRST is dmm_if_predict. */
int dmm_if_predict_ties(const dmm_if_model *m, const dmm_if_image *img,
                        unsigned variant, int ties,
                        double score[DMM_IF_CLASSES]);
/*
 * Train on one image of class c: for every source s and duration
 * d >= dist(s, c) multiply P[s][c][d] by 1 + eta_s, then renormalise each
 * row (s, c) over d. Only class c's rows change. (dist and the durations
 * are the model's geometry.)
 */
void dmm_if_train(dmm_if_model *m, const dmm_if_image *img, int c);
/* Reachable mass of class c per source: sum over d >= dist(s,c) of P. */
void dmm_if_reachable(const dmm_if_model *m, int c,
                      double mass[DMM_IF_SOURCES]);

/* ---- The few-shot protocol (spec §1, Table 1) -------------------------- */

enum {
    DMM_IF_SPLIT_BEGIN = 5000, /* training split: training images 5000.. */
    DMM_IF_TEST_PER_CLASS = 980,
};

/*
 * Choose k images of each class among labels[begin..n) (labels are digits).
 * out receives 4*k indices into labels, class 0's first, each class's in the
 * order chosen. random != 0: k distinct indices drawn uniformly from r;
 * random == 0: the first k of each class in file order (r unused, may be
 * NULL). Returns 0, or DMM_E_INVAL when a class has fewer than k images.
 */
int dmm_if_pick(const uint8_t *labels, size_t n, size_t begin, size_t k,
                int random, dmm_if_rng *r, size_t *out);

/* Progress of a long run: done of total steps (episodes); ud is the
 * caller's. Called from the running thread; it must not call back into the
 * run. */
typedef void (*dmm_if_progress_fn)(void *ud, uint64_t done, uint64_t total);

typedef struct dmm_if_options {
    size_t shots;     /* K images per class */
    uint64_t seed;    /* seeds the one rng: init, then picks, then orders */
    int init_uniform; /* 1: every route 1/25; 0: 9 + U[0,1) */
    int pick_first;   /* 1: first K of each class; 0: random */
    int order_mixed;  /* 1: shuffle the 4K images each epoch; 0: class order */
    int epochs;       /* passes over the chosen images, >= 1 */
    unsigned variant; /* DMM_IF_* flags */
    /* borrowed, may be NULL: thresholds and learning rates (NULL: the
     * published values, bit for bit the published runs). */
    const dmm_if_params *params;
    /* borrowed, may be NULL: where the targets sit, the distances and the
     * horizon (NULL: the published geometry, bit for bit). */
    const dmm_if_geometry *geometry;
    int ties; /* DMM_IF_TIES_*: 0 (first) is the published rule */
    dmm_if_progress_fn progress; /* may be NULL: told after each image */
    void *progress_ud;
} dmm_if_options;

/* Images as the IDX reader gives them: n row-major 28 x 28 images. */
typedef struct dmm_if_data {
    const uint8_t *images; /* n * 784 bytes */
    const uint8_t *labels; /* n digits */
    size_t n;
} dmm_if_data;

typedef struct dmm_if_result {
    size_t correct, total;
    size_t confusion[DMM_IF_CLASSES][DMM_IF_CLASSES]; /* [true][predicted] */
} dmm_if_result;

/*
 * The protocol's random draws, in the one order every engine must make them:
 * the model's start (opt->init_uniform, else random from the seed), the K
 * picks of each class, then for mixed order one shuffle per epoch. seq
 * (out, opt->epochs * 4K entries) gets the training images in the order
 * they are trained; test_idx (out, 4 * 980 entries) the test images, the
 * first 980 of each class in file order. Returns 0, or DMM_E_INVAL (an option
 * out of range, too few images of a class).
 */
int dmm_if_plan(const dmm_if_data *train, const dmm_if_data *test,
                const dmm_if_options *opt, dmm_if_model *model, size_t *seq,
                size_t *test_idx);

/*
 * The whole experiment: pick and train on `train` (the training file; the
 * split starts at DMM_IF_SPLIT_BEGIN), test on the first 980 images of each
 * class of `test`. model (out) holds the trained routes. Returns 0, or
 * DMM_E_INVAL when an option is out of range or a file holds too few images
 * of a class, DMM_E_NOMEM when scratch memory cannot be had.
 */
int dmm_if_fewshot(const dmm_if_data *train, const dmm_if_data *test,
                   const dmm_if_options *opt, dmm_if_model *model,
                   dmm_if_result *res);

/* ---- Double slit (spec §2) --------------------------------------------- */

enum {
    DMM_DS_SOURCES = 2,    /* at -1 and +1 */
    DMM_DS_TARGETS = 2,    /* at -2 (out of phase) and +2 (in phase) */
    DMM_DS_TIMES = 60,     /* the published horizon: t, durations 0..59 */
    DMM_DS_TIMES_MAX = 64, /* the longest (`--horizon`), as for MNIST */
    DMM_DS_EMIT = 40,      /* each source emits at tau = 0..39 */
    DMM_DS_PERIOD = 8,     /* omega = 2 pi / 8 */
    DMM_DS_SHOTS = 5,      /* training samples per class */
    DMM_DS_TRIALS = 200,   /* test trials */
};
#define DMM_DS_FRIEND_SIM   0.8
#define DMM_DS_FOE_SIM      (-0.8)
#define DMM_DS_ETA_FRIEND   0.1
#define DMM_DS_ETA_STRANGER (-0.01)
#define DMM_DS_ETA_FOE      (-0.1)

/* The published values of spec §2 (thresholds ±0.8, eta 0.1 / -0.01 / -0.1)
 * into p. */
void dmm_ds_params_published(dmm_if_params *p);

/* One sample: x[source][tau] = [sin w, cos w]; target vector is [0, 1]. */
typedef struct dmm_ds_signal {
    double x[DMM_DS_SOURCES][DMM_DS_EMIT][2];
} dmm_ds_signal;

/* The double slit's run-time geometry: the horizon (t and durations
 * 0..times-1, 1..DMM_DS_TIMES_MAX) and dist[source][target]. */
typedef struct dmm_ds_geometry {
    int times;
    uint8_t dist[DMM_DS_SOURCES][DMM_DS_TARGETS];
} dmm_ds_geometry;

/* The published geometry (sources at -1, +1, targets at -2, +2, 60 steps)
 * with horizon times; 0, or DMM_E_INVAL for times out of range. */
int dmm_ds_geometry_make(dmm_ds_geometry *g, int times);

/* p[source][target][duration], each row summing to 1 over d < geom.times,
 * 0 from there on. */
typedef struct dmm_ds_model {
    double p[DMM_DS_SOURCES][DMM_DS_TARGETS][DMM_DS_TIMES_MAX];
    dmm_ds_geometry geom;
} dmm_ds_model;

/* Target of a class: in phase -> 1 (at +2), out of phase -> 0 (at -2). */
static inline int dmm_ds_target_of(int in_phase)
{
    return in_phase ? 1 : 0;
}
/* |target position - source position|: 1 or 3. */
int dmm_ds_dist(int source, int target);
/*
 * Double-slit reading flag, outside DMM_IF_CORRECTED: redraw the phase noise
 * at every tau instead of once per sample and source. Not the default; kept
 * to compare the two readings of spec §2 (docs/experiments.md).
 */
enum { DMM_DS_NOISE_PER_STEP = 1u << 8 };
/*
 * Draw a sample: two uniforms u1 then u2 from r, one phase noise per source
 * for the whole sample (with DMM_DS_NOISE_PER_STEP: a new pair for each tau).
 * w1 = omega tau + (1 - 2 u1) pi/12; w2 = omega tau + theta + (1 - 2 u2)
 * + pi/12 (faithful) or + (1 - 2 u2) pi/12 (DMM_IF_FIX_NOISE); theta = 0 in
 * phase, pi out of phase.
 */
void dmm_ds_signal_make(dmm_ds_signal *sig, int in_phase, unsigned variant,
                        dmm_if_rng *r);
/* 9 + U[0,1) per entry in (source, target, duration) order, rows normalised;
 * r == NULL: every entry 1/60. The published geometry. */
void dmm_ds_model_init(dmm_ds_model *m, dmm_if_rng *r);
/* The same for geometry g (borrowed, copied; NULL: published); r == NULL:
 * every entry 1/g->times. */
void dmm_ds_model_init_geom(dmm_ds_model *m, const dmm_ds_geometry *g,
                            dmm_if_rng *r);
/*
 * J[target][t] for t = 0..m->geom.times-1: the routes (source, tau)
 * arriving at t are those with tau < 40 and t - tau >= dist; the same energy
 * as spec §1 with 1000 * P[source][target][t - tau] per arrival and target
 * vector [0, 1].
 */
void dmm_ds_energy(const dmm_ds_model *m, const dmm_ds_signal *sig,
                   double J[DMM_DS_TARGETS][DMM_DS_TIMES_MAX]);
/*
 * Train toward `target`: dW[s][target][d] accumulates P * eta over every
 * arrival with duration d, then P + dW is renormalised per row.
 */
void dmm_ds_train(dmm_ds_model *m, const dmm_ds_signal *sig, int target);
/* argmax over targets of the mean over t < m->geom.times of J (first wins
 * ties); mean_J may be NULL. */
int dmm_ds_predict(const dmm_ds_model *m, const dmm_ds_signal *sig,
                   double mean_J[DMM_DS_TARGETS]);

typedef struct dmm_ds_result {
    size_t correct, total;
    size_t confusion[DMM_DS_TARGETS][DMM_DS_TARGETS]; /* [true][predicted] */
} dmm_ds_result;

/*
 * The published protocol from one seed: init from the rng, 5 in-phase then 5
 * out-of-phase training samples, then 200 trials each of a class drawn from
 * the rng (in phase with probability 1/2) and a fresh sample.
 */
void dmm_ds_run(uint64_t seed, unsigned variant, dmm_ds_model *model,
                dmm_ds_result *res);

/* The same four with run-time thresholds and learning rates (borrowed; NULL:
 * the published values, as the functions above). */
void dmm_ds_energy_params(const dmm_ds_model *m, const dmm_ds_signal *sig,
                          const dmm_if_params *p,
                          double J[DMM_DS_TARGETS][DMM_DS_TIMES_MAX]);
void dmm_ds_train_params(dmm_ds_model *m, const dmm_ds_signal *sig, int target,
                         const dmm_if_params *p);
int dmm_ds_predict_params(const dmm_ds_model *m, const dmm_ds_signal *sig,
                          const dmm_if_params *p,
                          double mean_J[DMM_DS_TARGETS]);
/* The test trials of a run, one entry per trial in order. */
typedef struct dmm_ds_trials {
    uint8_t truth[DMM_DS_TRIALS]; /* target of the trial's class */
    uint8_t pred[DMM_DS_TRIALS];
    double mean_J[DMM_DS_TRIALS][DMM_DS_TARGETS];
} dmm_ds_trials;
/* trials (out, may be NULL) receives every test trial. */
void dmm_ds_run_params(uint64_t seed, unsigned variant, const dmm_if_params *p,
                       dmm_ds_model *model, dmm_ds_result *res,
                       dmm_ds_trials *trials);
/* The same in geometry g (borrowed; NULL: published, as above). */
void dmm_ds_run_geom(uint64_t seed, unsigned variant, const dmm_if_params *p,
                     const dmm_ds_geometry *g, dmm_ds_model *model,
                     dmm_ds_result *res, dmm_ds_trials *trials);

#endif
