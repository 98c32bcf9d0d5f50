// SPDX-License-Identifier: MIT
/*
 * `dmm experiment`: the paper's experiments run from the command line
 * (docs/experiments.md). Each prints one JSON object on stdout. With --plot
 * the numbers behind the picture go to a JSON file that
 * tools/plot_experiment.py turns into a PNG with Debian's matplotlib.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "dmm_experiments.h"
#include "dmm_idx.h"
#include "dmm_interference.h"
#include "dmm_meanfield.h"

#define CMD "experiment"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Options shared by both experiments, as given on the command line. */
typedef struct xopts {
    const char *name;
    const char *data;
    const char *plot;
    const char *network_file; /* --network */
    const char *predictions;  /* --predictions FILE */
    uint64_t steps;           /* hysteresis: --steps */
    dmm_if_options o;
    int network;
    int noise_per_step; /* double-slit: --noise per-step */
    /* --friend, --foe, --eta-friend, --eta-stranger, --eta-foe: given[k]
     * says which; the others keep the experiment's published values. */
    double learn[5];
    int given[5];
    dmm_if_params params; /* filled by learn_params */
    /* --geometry, --distance (mnist-fewshot), --horizon: *_given say which
     * were given; geom and ds_geom are filled by geometry_of. */
    int targets, metric, horizon;
    int geom_given;
    dmm_if_geometry geom;
    dmm_ds_geometry ds_geom;
} xopts;

static const char *const geometry_w[] = {"corners", "sides", NULL};
static const char *const distance_w[] = {"manhattan", "euclidean", "chebyshev",
                                         NULL};
/* --ties, in DMM_IF_TIES_* order. */
static const char *const ties_w[] = {"first", "peak", NULL};

/* The learning options, in dmm_if_params order. */
static const char *const learn_opt[5] = {"--friend", "--foe", "--eta-friend",
                                         "--eta-stranger", "--eta-foe"};

static int parse_double(const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    if (!s || !*s)
        return dmm__usage_error(CMD, "%s needs a number", opt);
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return dmm__usage_error(CMD, "%s must be a finite number, not \"%s\"",
                                opt, s);
    *out = v;
    return 0;
}

/* The experiment's published thresholds and learning rates with the given
 * options over them into x->params; NULL when none was given (the library
 * then uses the published values itself). */
static const dmm_if_params *learn_params(xopts *x, int fewshot)
{
    int any = 0;
    for (int k = 0; k < 5; k++)
        any |= x->given[k];
    if (fewshot)
        dmm_if_params_published(&x->params);
    else
        dmm_ds_params_published(&x->params);
    double *dst[5] = {&x->params.friend_sim, &x->params.foe_sim,
                      &x->params.eta[0], &x->params.eta[1], &x->params.eta[2]};
    for (int k = 0; k < 5; k++)
        if (x->given[k])
            *dst[k] = x->learn[k];
    return any ? &x->params : NULL;
}

/* x with the fewest digits that read back as x (15 or 17). */
static void print_num(double x)
{
    char b[32];
    snprintf(b, sizeof b, "%.15g", x);
    if (strtod(b, NULL) != x)
        snprintf(b, sizeof b, "%.17g", x);
    fputs(b, stdout);
}

/* The thresholds and learning rates as JSON members, after a comma. */
static void print_params(const dmm_if_params *p)
{
    static const char *const key[5] = {"friend", "foe", "eta_friend",
                                       "eta_stranger", "eta_foe"};
    double v[5] = {p->friend_sim, p->foe_sim, p->eta[0], p->eta[1], p->eta[2]};
    for (int k = 0; k < 5; k++) {
        printf(", \"%s\": ", key[k]);
        print_num(v[k]);
    }
}

static int parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return dmm__usage_error(CMD, "%s needs a number", opt);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return dmm__usage_error(CMD,
                                "%s must be an integer in %" PRIu64 "..%" PRIu64
                                ", not \"%s\"",
                                opt, lo, hi, s);
    *out = v;
    return 0;
}

/* Index of s in the NULL-terminated words, or a usage error. */
static int parse_word(const char *opt, const char *s, const char *const *words,
                      int *out)
{
    for (int i = 0; words[i]; i++)
        if (s && !strcmp(s, words[i])) {
            *out = i;
            return 0;
        }
    char list[128] = "";
    for (int i = 0; words[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 i ? "|" : "", words[i]);
    return dmm__usage_error(CMD, "%s must be %s, not \"%s\"", opt, list,
                            s ? s : "(nothing)");
}

/* --horizon H: 1..64 for both experiments and both engines. */
static int parse_horizon(const char *opt, const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = s && *s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || errno || *end)
        return dmm__usage_error(CMD, "%s needs a whole number of time steps",
                                opt);
    if (v < 1 || v > DMM_IF_TIMES_MAX)
        return dmm__usage_error(
            CMD,
            "%s must be 1..%d, not %s: %d is the longest delay line of "
            "the network form (--engine network) and the length of the "
            "route table's rows in both engines",
            opt, DMM_IF_TIMES_MAX, s, DMM_IF_TIMES_MAX);
    *out = (int)v;
    return 0;
}

static int learn_index(const char *a)
{
    for (int k = 0; k < 5; k++)
        if (!strcmp(a, learn_opt[k]))
            return k;
    return -1;
}

static int parse_args(int argc, char **argv, xopts *x)
{
    static const char *const init_w[] = {"random", "uniform", NULL};
    static const char *const pick_w[] = {"random", "first", NULL};
    static const char *const order_w[] = {"sequential", "mixed", NULL};
    static const char *const engine_w[] = {"direct", "network", NULL};
    static const char *const variant_w[] = {"faithful", "corrected", NULL};
    int fewshot = !strcmp(x->name, "mnist-fewshot");
    int hyst = !strcmp(x->name, "hysteresis");
    x->o = (dmm_if_options){.shots = 5, .seed = 1, .epochs = 1};
    x->steps = 5000;
    x->horizon = fewshot ? DMM_IF_TIMES : DMM_DS_TIMES;
    int network_given = 0, engine_given = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        int w, rc = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            dmm__print_help(stdout, CMD);
            return -1; /* help shown: exit 0 */
        }
        int takes_value = 1;
        if (hyst && !strcmp(a, "--steps"))
            rc = parse_u64(a, v, 1, UINT64_C(100000000), &x->steps);
        else if (hyst && !strcmp(a, "--network")) {
            if (!v)
                rc = dmm__usage_error(CMD, "--network needs a file name");
            x->network_file = v;
        } else if (hyst && strcmp(a, "--plot")) {
            takes_value = 0;
            rc = dmm__usage_error(CMD, "unknown option \"%s\" for %s", a,
                                  x->name);
        } else if (!strcmp(a, "--seed"))
            rc = parse_u64(a, v, 0, UINT64_MAX, &x->o.seed);
        else if (!strcmp(a, "--variant")) {
            rc = parse_word(a, v, variant_w, &w);
            x->o.variant = w ? DMM_IF_CORRECTED : DMM_IF_FAITHFUL;
        } else if (!strcmp(a, "--engine")) {
            rc = parse_word(a, v, engine_w, &x->network);
            engine_given = 1;
        } else if (!strcmp(a, "--plot")) {
            if (!v)
                rc = dmm__usage_error(CMD, "--plot needs a file name");
            x->plot = v;
        } else if (!strcmp(a, "--network")) {
            if (!v)
                rc = dmm__usage_error(CMD, "--network needs a file name");
            x->network_file = v;
            network_given = 1;
        } else if (!strcmp(a, "--predictions")) {
            if (!v)
                rc = dmm__usage_error(CMD, "--predictions needs a file name");
            x->predictions = v;
        } else if (!fewshot && !strcmp(a, "--noise")) {
            static const char *const noise_w[] = {"per-sample", "per-step",
                                                  NULL};
            rc = parse_word(a, v, noise_w, &x->noise_per_step);
        } else if (fewshot && !strcmp(a, "--data")) {
            if (!v)
                rc = dmm__usage_error(CMD, "--data needs a directory");
            x->data = v;
        } else if (fewshot && !strcmp(a, "--shots")) {
            rc = parse_u64(a, v, 1, 5000, &n);
            x->o.shots = (size_t)n;
        } else if (fewshot && !strcmp(a, "--epochs")) {
            rc = parse_u64(a, v, 1, 1000, &n);
            x->o.epochs = (int)n;
        } else if (fewshot && !strcmp(a, "--init"))
            rc = parse_word(a, v, init_w, &x->o.init_uniform);
        else if (fewshot && !strcmp(a, "--pick"))
            rc = parse_word(a, v, pick_w, &x->o.pick_first);
        else if (fewshot && !strcmp(a, "--order"))
            rc = parse_word(a, v, order_w, &x->o.order_mixed);
        else if (!strcmp(a, "--horizon")) {
            rc = parse_horizon(a, v, &x->horizon);
            x->geom_given = 1;
        } else if (!fewshot && !strcmp(a, "--ties"))
            rc = dmm__usage_error(
                CMD,
                "--ties is for mnist-fewshot: the double slit's scores are "
                "time-means of energies that are never floored, so they do "
                "not tie");
        else if (fewshot && !strcmp(a, "--ties"))
            rc = parse_word(a, v, ties_w, &x->o.ties);
        else if (!fewshot &&
                 (!strcmp(a, "--geometry") || !strcmp(a, "--distance")))
            rc = dmm__usage_error(
                CMD,
                "%s is for mnist-fewshot: the double slit's sources (-1, "
                "+1) and targets (-2, +2) sit on a line, where every "
                "distance is the same; --horizon applies to it",
                a);
        else if (fewshot && !strcmp(a, "--geometry")) {
            rc = parse_word(a, v, geometry_w, &x->targets);
            x->geom_given = 1;
        } else if (fewshot && !strcmp(a, "--distance")) {
            rc = parse_word(a, v, distance_w, &x->metric);
            x->geom_given = 1;
        } else if (learn_index(a) >= 0) {
            int k = learn_index(a);
            rc = parse_double(a, v, &x->learn[k]);
            x->given[k] = 1;
        } else {
            takes_value = 0;
            rc = dmm__unknown_option(CMD, a);
        }
        if (rc)
            return rc;
        i += takes_value;
    }
    if (fewshot && !x->data)
        return dmm__usage_error(CMD, "mnist-fewshot needs --data DIR (get "
                                     "the files with tools/fetch-mnist.sh)");
    if (!hyst && network_given) {
        /* --network FILE runs the network engine on that file. */
        if (engine_given && !x->network)
            return dmm__usage_error(CMD, "--network FILE needs --engine "
                                         "network (the default with it)");
        x->network = 1;
    }
    x->o.params = learn_params(x, fewshot);
    /* The geometry, handed to the library only when an option was given,
     * so that a run without them takes the published path bit for bit. */
    if ((fewshot &&
         dmm_if_geometry_make(&x->geom, x->targets, x->metric, x->horizon)) ||
        (!fewshot && !hyst && dmm_ds_geometry_make(&x->ds_geom, x->horizon)))
        return dmm__usage_error(CMD, "bad geometry"); /* parsed above */
    x->o.geometry = fewshot && x->geom_given ? &x->geom : NULL;
    /* A neuron parameter of 0 reads as its default (V-values store no
     * zeros), so the network form cannot run one. */
    for (int k = 0; k < 5 && x->network; k++)
        if (x->given[k] && x->learn[k] == 0)
            return dmm__usage_error(
                CMD,
                "%s 0 cannot be run with --engine network: a neuron "
                "parameter of 0 reads as its default (V-values store no "
                "zeros); give a tiny value such as 1e-9, or use --engine "
                "direct",
                learn_opt[k]);
    return 0;
}

/* ---- Plotting ---------------------------------------------------------- */

/* A plotting script (tools/<name>): $DMM_PLOT_SCRIPT for the experiments'
 * tools/plot_experiment.py, else found from the working directory or from
 * the executable's build folder. */
static int find_script(const char *name, char *out, size_t size)
{
    const char *env = getenv("DMM_PLOT_SCRIPT");
    if (env && *env && !strcmp(name, "plot_experiment.py")) {
        snprintf(out, size, "%s", env);
        return access(out, R_OK) == 0;
    }
    char rel[64];
    snprintf(rel, sizeof rel, "tools/%s", name);
    return dmm__data_file(rel, out, size);
}

/* Run tools/plot_experiment.py (kind != NULL: its first argument) or the
 * script named by tool on a data file; 0 or an exit code. */
static int run_script(const char *tool, const char *kind, const char *data_path,
                      const char *png)
{
    char script[PATH_MAX + 64];
    if (!find_script(tool, script, sizeof script)) {
        fprintf(stderr, "dmm experiment: cannot find tools/%s%s\n", tool,
                kind ? " (set DMM_PLOT_SCRIPT)" : "");
        return DMM_EXIT_INPUT;
    }
    char *args[5] = {script};
    int na = 1;
    if (kind)
        args[na++] = (char *)kind;
    args[na++] = (char *)data_path;
    args[na++] = (char *)png;
    args[na] = NULL;
    return dmm__run_python(CMD, args);
}

/* Open a temporary data file for the plot; path receives its name. */
static FILE *open_plot_data(char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/dmm-plot-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
    }
    return f;
}

/* Close the data file at path, draw it with tools/<tool> (kind: its first
 * argument, or NULL) into png, and remove it; 0 or an exit code. */
static int finish_plot(FILE *f, const char *path, const char *tool,
                       const char *kind, const char *png)
{
    int bad = ferror(f);
    int rc = DMM_EXIT_INPUT;
    if (fclose(f) != 0 || bad)
        fprintf(stderr, "dmm experiment: cannot write plot data\n");
    else
        rc = run_script(tool, kind, path, png);
    unlink(path);
    return rc;
}

static void put_array(FILE *f, const double *v, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? ", " : "", v[i]);
    fputc(']', f);
}

/* ---- mnist-fewshot ----------------------------------------------------- */

static const char *variant_name(unsigned v)
{
    return v & DMM_IF_CORRECTED ? "corrected" : "faithful";
}

static int plot_fewshot(const xopts *x, const dmm_if_data *train,
                        const dmm_if_data *test, const dmm_if_model *model)
{
    static const size_t shots[] = {1, 2, 3, 5, 7, 10, 15, 20};
    enum { NSHOTS = sizeof shots / sizeof shots[0], NSEEDS = 5 };
    char path[4096];
    FILE *f = open_plot_data(path, sizeof path);
    if (!f) {
        fprintf(stderr, "dmm experiment: cannot create plot data: %s\n",
                strerror(errno));
        return DMM_EXIT_INPUT;
    }
    fprintf(f,
            "{\"seed\": %" PRIu64 ", \"epochs\": %d, \"variant\": \"%s\", "
            "\"geometry\": \"%s\", "
            "\"pick\": \"%s\", \"order\": \"%s\",\n \"shots\": [",
            x->o.seed, x->o.epochs, variant_name(x->o.variant),
            geometry_w[x->targets], x->o.pick_first ? "first" : "random",
            x->o.order_mixed ? "mixed" : "sequential");
    for (size_t k = 0; k < NSHOTS; k++)
        fprintf(f, "%s%zu", k ? ", " : "", shots[k]);
    fprintf(f, "],\n \"accuracy\": [");
    /* Accuracy over shots: NSEEDS seeds from the given one. */
    for (size_t k = 0; k < NSHOTS; k++) {
        double acc[NSEEDS];
        for (int s = 0; s < NSEEDS; s++) {
            dmm_if_options o = x->o;
            dmm_if_model m;
            dmm_if_result r;
            o.shots = shots[k];
            o.seed = x->o.seed + (uint64_t)s;
            if (dmm_if_fewshot(train, test, &o, &m, &r) == 0)
                acc[s] = (double)r.correct / (double)r.total;
            else
                acc[s] = 0.0;
        }
        fprintf(f, "%s", k ? ", " : "");
        put_array(f, acc, NSEEDS);
    }
    /* The first test digit of our classes, its energies for each target. */
    size_t at = 0;
    while (at < test->n && dmm_if_class_of_digit(test->labels[at]) < 0)
        at++;
    dmm_if_image img;
    double J[DMM_IF_CLASSES][DMM_IF_TIMES_MAX], score[DMM_IF_CLASSES];
    dmm_if_preprocess(test->images + at * DMM_IF_PIXELS, x->o.variant, &img);
    if (x->o.params)
        dmm_if_classify(&img, x->o.params);
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        dmm_if_energy(model, &img, c, J[c]);
    int pred = dmm_if_predict_ties(model, &img, x->o.variant, x->o.ties, score);
    fprintf(f,
            "],\n \"digit\": {\"index\": %zu, \"label\": %d, "
            "\"predicted\": %d, \"pixels\": [",
            at, test->labels[at], dmm_if_digit_of_class(pred));
    for (int i = 0; i < DMM_IF_PIXELS; i++)
        fprintf(f, "%s%d", i ? "," : "", test->images[at * DMM_IF_PIXELS + i]);
    fprintf(f, "],\n  \"energy\": [");
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        fprintf(f, "%s", c ? ", " : "");
        put_array(f, J[c], (size_t)model->geom.times);
    }
    fprintf(f, "]},\n \"reachable\": [");
    for (int c = 0; c < DMM_IF_CLASSES; c++) {
        double mass[DMM_IF_SOURCES];
        dmm_if_reachable(model, c, mass);
        fprintf(f, "%s", c ? ", " : "");
        put_array(f, mass, DMM_IF_SOURCES);
    }
    fprintf(f, "]}\n");
    return finish_plot(f, path, "plot_experiment.py", "mnist-fewshot", x->plot);
}

static int load_set(const char *dir, const char *prefix, dmm_mnist *m)
{
    dmm_error err;
    dmm_error_clear(&err);
    if (dmm_mnist_load(dir, prefix, m, &err)) {
        dmm__print_error(&err);
        return DMM_EXIT_INPUT;
    }
    if (m->images.v.rows != DMM_IF_SIDE || m->images.v.cols != DMM_IF_SIDE) {
        fprintf(stderr,
                "%s/%s-images-idx3-ubyte: images are %" PRIu32 " x %" PRIu32
                ", MNIST's are 28 x 28\n",
                dir, prefix, m->images.v.rows, m->images.v.cols);
        dmm_mnist_free(m);
        return DMM_EXIT_INPUT;
    }
    return 0;
}

/* ---- progress and predictions ------------------------------------------ */

/* The library's progress callback drawing dmm__progress. */
typedef struct xprogress {
    dmm__progress bar;
    int begun;
} xprogress;

static void progress_cb(void *ud, uint64_t done, uint64_t total)
{
    xprogress *p = ud;
    if (!p->begun) {
        dmm__progress_begin(&p->bar, total, "episodes");
        p->begun = 1;
    }
    dmm__progress_tick(&p->bar, done);
}

static void progress_done(xprogress *p)
{
    if (p->begun)
        dmm__progress_end(&p->bar);
}

/* The bundled network `bundled`, or --network FILE, into path. */
static int network_path(const xopts *x, const char *bundled, char *path,
                        size_t size)
{
    if (x->network_file) {
        snprintf(path, size, "%s", x->network_file);
        return 0;
    }
    if (!dmm__data_file(bundled, path, size)) {
        fprintf(stderr, "dmm experiment: cannot find %s\n", bundled);
        return DMM_EXIT_INPUT;
    }
    return 0;
}

/* Scores are written with 6 digits: the two engines compute them in another
 * order and differ in the last bits, and the file should not. */
static void put_score(FILE *f, double v)
{
    fprintf(f, ",%.6g", v == 0 ? 0.0 : v);
}

/*
 * --predictions for mnist-fewshot: one CSV line per test image, in test
 * order (the first 980 of each class, class 0's first): its index in the
 * test file, its digit, the predicted digit and the four class scores.
 */
static int write_fewshot_predictions(const char *file, const dmm_if_data *test,
                                     const uint8_t *pred, const double *scores)
{
    size_t idx[DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS];
    if (dmm_if_pick(test->labels, test->n, 0, DMM_IF_TEST_PER_CLASS, 0, NULL,
                    idx))
        return DMM_EXIT_INPUT; /* the run itself would have failed */
    FILE *f = fopen(file, "w");
    if (!f) {
        fprintf(stderr, "dmm experiment: %s: %s\n", file, strerror(errno));
        return DMM_EXIT_INPUT;
    }
    fputs("index,label,predicted,score_0,score_1,score_2,score_4\n", f);
    for (size_t i = 0; i < DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS; i++) {
        fprintf(f, "%zu,%d,%d", idx[i], test->labels[idx[i]],
                dmm_if_digit_of_class(pred[i]));
        for (int c = 0; c < DMM_IF_CLASSES; c++)
            put_score(f, scores[i * DMM_IF_CLASSES + c]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "dmm experiment: cannot write %s\n", file);
        return DMM_EXIT_INPUT;
    }
    return 0;
}

/* The direct engine's predictions and scores of the test images from the
 * trained model (the same as dmm_if_fewshot made). */
static void fewshot_direct_predictions(const xopts *x, const dmm_if_data *test,
                                       const dmm_if_model *model, uint8_t *pred,
                                       double *scores)
{
    size_t idx[DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS];
    if (dmm_if_pick(test->labels, test->n, 0, DMM_IF_TEST_PER_CLASS, 0, NULL,
                    idx))
        return;
    dmm_if_image img;
    for (size_t i = 0; i < DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS; i++) {
        dmm_if_preprocess(test->images + idx[i] * DMM_IF_PIXELS, x->o.variant,
                          &img);
        if (x->o.params)
            dmm_if_classify(&img, x->o.params);
        pred[i] = (uint8_t)dmm_if_predict_ties(
            model, &img, x->o.variant, x->o.ties, scores + i * DMM_IF_CLASSES);
    }
}

/* --predictions for double-slit: trial, class, predicted class and the
 * time-mean energy of each target. */
static int write_ds_predictions(const char *file, const uint8_t *truth,
                                const uint8_t *pred, const double *mean)
{
    static const char *const cls[2] = {"out-of-phase", "in-phase"};
    FILE *f = fopen(file, "w");
    if (!f) {
        fprintf(stderr, "dmm experiment: %s: %s\n", file, strerror(errno));
        return DMM_EXIT_INPUT;
    }
    fputs("trial,class,predicted,mean_J_minus_2,mean_J_plus_2\n", f);
    for (int i = 0; i < DMM_DS_TRIALS; i++) {
        fprintf(f, "%d,%s,%s", i, cls[truth[i]], cls[pred[i]]);
        for (int g = 0; g < DMM_DS_TARGETS; g++)
            put_score(f, mean[i * DMM_DS_TARGETS + g]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "dmm experiment: cannot write %s\n", file);
        return DMM_EXIT_INPUT;
    }
    return 0;
}

/* The bundled network of mnist-fewshot --engine network: learner targets,
 * no delay lines (networks/mnist-interference.json is the delay-line form,
 * run with --network). */
static const char fewshot_network[] = "networks/mnist-learners.json";

/* --engine network: fewshot_network or --network FILE run by the engine
 * (experiment_network.c); DMM_EXIT_INPUT after printing its error. */
static int run_fewshot_network(const xopts *x, const dmm_if_data *train,
                               const dmm_if_data *test, const dmm_if_options *o,
                               dmm_if_model *model, dmm_if_result *res,
                               dmm_netx_out *out)
{
    char path[PATH_MAX];
    dmm_error err;
    dmm_error_clear(&err);
    if (network_path(x, fewshot_network, path, sizeof path))
        return DMM_EXIT_INPUT;
    if (dmm_fewshot_network_run(path, train, test, o, 0, model, res, out,
                                &err)) {
        dmm__print_error(&err);
        return DMM_EXIT_INPUT;
    }
    return 0;
}

static int run_fewshot(const xopts *x)
{
    dmm_mnist tr, te;
    double t0 = now_seconds();
    int rc = load_set(x->data, "train", &tr);
    if (rc)
        return rc;
    rc = load_set(x->data, "t10k", &te);
    if (rc) {
        dmm_mnist_free(&tr);
        return rc;
    }
    double t1 = now_seconds();
    dmm_if_data train = {tr.images.v.data, tr.labels.v.data, tr.images.v.count};
    dmm_if_data test = {te.images.v.data, te.labels.v.data, te.images.v.count};
    dmm_if_model *model = malloc(sizeof *model);
    dmm_if_result res;
    enum { NTEST = DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS };
    uint8_t *pred = x->predictions ? malloc(NTEST) : NULL;
    double *scores =
        x->predictions ? malloc(NTEST * DMM_IF_CLASSES * sizeof *scores) : NULL;
    dmm_netx_out out = {.pred = pred, .scores = scores};
    xprogress prog = {0};
    dmm_if_options o = x->o;
    o.progress = progress_cb;
    o.progress_ud = &prog;
    int e = !model || (x->predictions && (!pred || !scores)) ? DMM_E_NOMEM
            : x->network
                ? run_fewshot_network(x, &train, &test, &o, model, &res, &out)
                : dmm_if_fewshot(&train, &test, &o, model, &res);
    progress_done(&prog);
    double t2 = now_seconds();
    if (!e && !x->network && pred)
        fewshot_direct_predictions(x, &test, model, pred, scores);
    if (e == DMM_EXIT_INPUT) {
        rc = e; /* the network engine said why */
    } else if (e) {
        fprintf(stderr,
                "dmm experiment: mnist-fewshot: %s (the training split "
                "holds too few images of a class for --shots %zu, or the "
                "test file fewer than %d of each class)\n",
                dmm_strerror(e), x->o.shots, DMM_IF_TEST_PER_CLASS);
        rc = DMM_EXIT_INPUT;
    } else {
        printf("{\"experiment\": \"mnist-fewshot\", \"engine\": \"%s\", "
               "\"shots\": %zu, \"seed\": %" PRIu64 ", \"init\": \"%s\", "
               "\"pick\": \"%s\", \"order\": \"%s\", \"epochs\": %d, "
               "\"variant\": \"%s\"",
               x->network ? "network" : "direct", x->o.shots, x->o.seed,
               x->o.init_uniform ? "uniform" : "random",
               x->o.pick_first ? "first" : "random",
               x->o.order_mixed ? "mixed" : "sequential", x->o.epochs,
               variant_name(x->o.variant));
        printf(", \"geometry\": \"%s\", \"distance\": \"%s\", "
               "\"horizon\": %d",
               geometry_w[x->targets], distance_w[x->metric], x->horizon);
        printf(", \"ties\": \"%s\"", ties_w[x->o.ties]);
        print_params(&x->params);
        printf(", \"accuracy\": %.6f, \"correct\": %zu, \"total\": %zu, "
               "\"per_class\": {",
               (double)res.correct / (double)res.total, res.correct, res.total);
        for (int c = 0; c < DMM_IF_CLASSES; c++) {
            size_t n = 0;
            for (int p = 0; p < DMM_IF_CLASSES; p++)
                n += res.confusion[c][p];
            printf("%s\"%d\": %.6f", c ? ", " : "", dmm_if_digit_of_class(c),
                   n ? (double)res.confusion[c][c] / (double)n : 0.0);
        }
        printf("}");
        if (x->network)
            printf(", \"network\": \"%s\", \"routes\": \"%s\"",
                   x->network_file ? x->network_file : fewshot_network,
                   out.routes ? "seed" : "file");
        printf(", \"elapsed_seconds\": %.6f, \"load_seconds\": %.6f}\n",
               t2 - t1, t1 - t0);
        if (fflush(stdout) != 0)
            rc = DMM_EXIT_INPUT;
        if (!rc && pred)
            rc = write_fewshot_predictions(x->predictions, &test, pred, scores);
        if (!rc && x->plot && x->network && !out.routes) {
            fprintf(stderr,
                    "dmm experiment: --plot draws the learned routes, "
                    "and %s has none where the host reads them "
                    "(docs/experiments.md, the contract)\n",
                    x->network_file);
            rc = DMM_EXIT_INPUT;
        }
        if (!rc && x->plot)
            rc = plot_fewshot(x, &train, &test, model);
    }
    free(pred);
    free(scores);
    free(model);
    dmm_mnist_free(&tr);
    dmm_mnist_free(&te);
    return rc;
}

/* ---- double-slit ------------------------------------------------------- */

static int plot_double_slit(const xopts *x, const dmm_ds_model *m)
{
    char path[4096];
    FILE *f = open_plot_data(path, sizeof path);
    if (!f) {
        fprintf(stderr, "dmm experiment: cannot create plot data: %s\n",
                strerror(errno));
        return DMM_EXIT_INPUT;
    }
    /* One fresh sample of each class from a separate stream of the seed. */
    dmm_if_rng rng;
    dmm_if_rng_seed(&rng, x->o.seed ^ 0x5eedf00du);
    fprintf(f, "{\"seed\": %" PRIu64 ", \"variant\": \"%s\",\n \"routes\": [",
            x->o.seed, variant_name(x->o.variant));
    for (int s = 0; s < DMM_DS_SOURCES; s++)
        for (int g = 0; g < DMM_DS_TARGETS; g++) {
            fprintf(f, "%s", s || g ? ", " : "");
            put_array(f, m->p[s][g], (size_t)m->geom.times);
        }
    fprintf(f, "],\n \"energy\": {");
    for (int phase = 1; phase >= 0; phase--) {
        dmm_ds_signal sig;
        double J[DMM_DS_TARGETS][DMM_DS_TIMES_MAX];
        dmm_ds_signal_make(&sig, phase, x->o.variant, &rng);
        dmm_ds_energy_params(m, &sig, x->o.params, J);
        fprintf(f, "%s\"%s\": [", phase ? "" : ", ",
                phase ? "in-phase" : "out-of-phase");
        put_array(f, J[0], (size_t)m->geom.times);
        fprintf(f, ", ");
        put_array(f, J[1], (size_t)m->geom.times);
        fprintf(f, "]");
    }
    fprintf(f, "}}\n");
    return finish_plot(f, path, "plot_experiment.py", "double-slit", x->plot);
}

static int run_double_slit(const xopts *xo)
{
    /* --noise per-step: the published code's reading, a new phase noise at
     * every time step, through the library's flag. */
    xopts xv = *xo;
    if (xv.noise_per_step)
        xv.o.variant |= DMM_DS_NOISE_PER_STEP;
    const xopts *x = &xv;
    dmm_ds_model m;
    dmm_ds_result res;
    dmm_ds_trials *tr = malloc(sizeof *tr);
    dmm_netx_out out = {0};
    xprogress prog = {0};
    if (!tr) {
        fprintf(stderr, "dmm experiment: out of memory\n");
        return DMM_EXIT_INPUT;
    }
    double t0 = now_seconds();
    if (x->network) {
        char path[PATH_MAX];
        dmm_error err;
        dmm_error_clear(&err);
        if (network_path(x, "networks/double-slit.json", path, sizeof path)) {
            free(tr);
            return DMM_EXIT_INPUT;
        }
        dmm_ds_options o = {.seed = x->o.seed,
                            .variant = x->o.variant,
                            .params = x->o.params,
                            .geometry = x->geom_given ? &x->ds_geom : NULL,
                            .progress = progress_cb,
                            .progress_ud = &prog};
        out = (dmm_netx_out){
            .pred = tr->pred, .truth = tr->truth, .scores = &tr->mean_J[0][0]};
        int rc = dmm_double_slit_network_run(path, &o, &m, &res, &out, &err);
        progress_done(&prog);
        if (rc) {
            dmm__print_error(&err);
            free(tr);
            return DMM_EXIT_INPUT;
        }
    } else {
        dmm_ds_run_geom(x->o.seed, x->o.variant, x->o.params,
                        x->geom_given ? &x->ds_geom : NULL, &m, &res, tr);
    }
    double t1 = now_seconds();
    printf("{\"experiment\": \"double-slit\", \"engine\": \"%s\", "
           "\"seed\": %" PRIu64 ", \"variant\": \"%s\", \"noise\": \"%s\"",
           x->network ? "network" : "direct", x->o.seed,
           variant_name(x->o.variant),
           x->noise_per_step ? "per-step" : "per-sample");
    printf(", \"horizon\": %d", x->horizon);
    print_params(&x->params);
    printf(", \"accuracy\": %.6f, "
           "\"correct\": %zu, \"total\": %zu, \"confusion\": "
           "[[%zu, %zu], [%zu, %zu]], \"elapsed_seconds\": %.6f}\n",
           (double)res.correct / (double)res.total, res.correct, res.total,
           res.confusion[0][0], res.confusion[0][1], res.confusion[1][0],
           res.confusion[1][1], t1 - t0);
    int rc = fflush(stdout) != 0 ? DMM_EXIT_INPUT : 0;
    if (!rc && x->predictions)
        rc = write_ds_predictions(x->predictions, tr->truth, tr->pred,
                                  &tr->mean_J[0][0]);
    free(tr);
    if (!rc && x->network && !out.routes && x->plot) {
        fprintf(stderr,
                "dmm experiment: --plot draws the learned routes, and "
                "%s has none where the host reads them\n",
                x->network_file);
        rc = DMM_EXIT_INPUT;
    }
    return !rc && x->plot ? plot_double_slit(x, &m) : rc;
}

/* ---- hysteresis --------------------------------------------------------- */

/* One mean-field neuron of the hysteresis network, followed cycle by cycle:
 * a jump is a cycle in which mu changes sign. */
enum { MAX_TRACKED = 8, MAX_JUMPS = 16 };
typedef struct mf_track {
    vv_label name;
    double k, h, mu; /* the last cycle's */
    size_t njumps;
    struct {
        uint64_t step;
        double h_before, h;
    } jump[MAX_JUMPS];
} mf_track;

/* Follow the mean-field neurons of Y_t; write them as a trace line to plot
 * (may be NULL) in the form tools/plot_hysteresis.py reads. */
static int track_step(vv_ctx *vc, vv y, uint64_t t, vv_label mf,
                      const vv_label out[3], mf_track *tr, size_t *ntr,
                      FILE *plot)
{
    vv_iter it;
    vv_label name;
    vv o;
    vv_iter_init(&it, vv_child(y, mf));
    if (plot)
        fputs("{\"outputs\": {\"mean-field\": {", plot);
    int first = 1;
    while (vv_iter_next(&it, &name, &o)) {
        double mu = vv_child(o, out[0]).num, h = vv_child(o, out[1]).num;
        double k = vv_child(o, out[2]).num;
        mf_track *m = NULL;
        for (size_t i = 0; i < *ntr && !m; i++)
            if (tr[i].name == name)
                m = &tr[i];
        if (!m) {
            if (*ntr == MAX_TRACKED) {
                fprintf(stderr,
                        "dmm experiment: more than %d mean-field "
                        "neurons\n",
                        MAX_TRACKED);
                return DMM_EXIT_INPUT;
            }
            m = &tr[(*ntr)++];
            *m = (mf_track){.name = name, .mu = mu, .h = h};
        } else if ((mu > 0) != (m->mu > 0) && m->njumps < MAX_JUMPS) {
            m->jump[m->njumps].step = t;
            m->jump[m->njumps].h_before = m->h;
            m->jump[m->njumps++].h = h;
        }
        m->k = k;
        m->h = h;
        m->mu = mu;
        if (plot) {
            fprintf(plot,
                    "%s\"%s\": {\"mu\": %.17g, \"h\": %.17g, \"k\": %.17g}",
                    first ? "" : ", ", vv_label_str(vc, name, NULL), mu, h, k);
            first = 0;
        }
    }
    if (plot)
        fputs("}}}\n", plot);
    return 0;
}

/* Run the hysteresis network (spec interference.md §4: a slow sweep of the
 * field through mean-field neurons) and report where mu jumps against h_c. */
static int run_hysteresis(const xopts *x)
{
    char path[PATH_MAX];
    const char *file = x->network_file;
    if (!file) {
        if (!dmm__data_file("networks/hysteresis.json", path, sizeof path)) {
            fprintf(stderr,
                    "dmm experiment: cannot find networks/hysteresis.json "
                    "(give --network FILE)\n");
            return DMM_EXIT_INPUT;
        }
        file = path;
    }
    double t0 = now_seconds();
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
    if (!reg || dmm_registry_add_builtins(reg)) {
        fprintf(stderr, "dmm experiment: out of memory\n");
        dmm_registry_free(reg);
        vv_ctx_free(vc);
        return DMM_EXIT_INPUT;
    }
    dmm_net *net = NULL;
    dmm_error err;
    int status = DMM_EXIT_OK;
    char plot_path[PATH_MAX];
    FILE *plot = NULL;
    vv_label mf, out[3];
    mf_track tr[MAX_TRACKED];
    size_t ntr = 0;
    if (vv_intern(vc, "mean-field", 10, &mf) ||
        vv_intern(vc, "mu", 2, &out[0]) || vv_intern(vc, "h", 1, &out[1]) ||
        vv_intern(vc, "k", 1, &out[2])) {
        fprintf(stderr, "dmm experiment: out of memory\n");
        status = DMM_EXIT_INPUT;
        goto done;
    }
    if (dmm_net_load_file(vc, reg, file, &net, &err)) {
        dmm__print_error(&err);
        status = DMM_EXIT_INPUT;
        goto done;
    }
    if (x->plot && !(plot = open_plot_data(plot_path, sizeof plot_path))) {
        fprintf(stderr, "dmm experiment: cannot write plot data\n");
        status = DMM_EXIT_INPUT;
        goto done;
    }
    dmm__progress bar;
    dmm__progress_begin(&bar, x->steps, "cycles");
    for (uint64_t t = 1; t <= x->steps && status == DMM_EXIT_OK; t++) {
        dmm__progress_tick(&bar, t - 1);
        int rc = dmm_net_step(net, &err);
        if (!rc)
            rc = dmm_net_outputs_build(net, &err);
        if (rc) {
            dmm__print_error(&err);
            status = rc == DMM_E_NONFINITE ? DMM_EXIT_FAULT : DMM_EXIT_INPUT;
            break;
        }
        status =
            track_step(vc, dmm_net_outputs(net), t, mf, out, tr, &ntr, plot);
    }
    dmm__progress_end(&bar);
    if (status != DMM_EXIT_OK)
        goto done;
    if (ntr == 0) {
        fprintf(stderr, "dmm experiment: %s has no mean-field neuron\n", file);
        status = DMM_EXIT_INPUT;
        goto done;
    }
    printf("{\"experiment\": \"hysteresis\", \"network\": \"%s\", \"steps\": "
           "%" PRIu64 ", \"neurons\": [",
           file, x->steps);
    for (size_t i = 0; i < ntr; i++) {
        double hc = dmm_meanfield_hc(tr[i].k);
        printf(
            "%s{\"name\": \"%s\", \"K\": %.17g, \"h_c\": %.17g, \"jumps\": [",
            i ? ", " : "", vv_label_str(vc, tr[i].name, NULL), tr[i].k, hc);
        for (size_t j = 0; j < tr[i].njumps; j++)
            printf("%s{\"step\": %" PRIu64 ", \"h\": %.17g, \"h_before\": "
                   "%.17g, \"beyond_h_c\": %.17g}",
                   j ? ", " : "", tr[i].jump[j].step, tr[i].jump[j].h,
                   tr[i].jump[j].h_before, fabs(tr[i].jump[j].h) - hc);
        printf("]}");
    }
    printf("], \"elapsed_seconds\": %.6f}\n", now_seconds() - t0);
    if (fflush(stdout) != 0)
        status = DMM_EXIT_INPUT;
    if (plot && status == DMM_EXIT_OK) {
        status =
            finish_plot(plot, plot_path, "plot_hysteresis.py", NULL, x->plot);
        plot = NULL;
    }
done:
    if (plot) {
        fclose(plot);
        unlink(plot_path);
    }
    dmm_net_free(net);
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    return status;
}

int dmm__cmd_experiment(int argc, char **argv)
{
    if (argc < 2)
        return dmm__usage_error(CMD, "which experiment? mnist-fewshot, "
                                     "double-slit or hysteresis");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        dmm__print_help(stdout, CMD);
        return DMM_EXIT_OK;
    }
    xopts x = {.name = argv[1]};
    if (strcmp(x.name, "mnist-fewshot") && strcmp(x.name, "double-slit") &&
        strcmp(x.name, "hysteresis"))
        return dmm__usage_error(CMD,
                                "unknown experiment \"%s\" (mnist-fewshot, "
                                "double-slit or hysteresis)",
                                x.name);
    int rc = parse_args(argc, argv, &x);
    if (rc)
        return rc < 0 ? DMM_EXIT_OK : rc;
    if (!strcmp(x.name, "hysteresis"))
        return run_hysteresis(&x);
    return strcmp(x.name, "mnist-fewshot") ? run_double_slit(&x)
                                           : run_fewshot(&x);
}
