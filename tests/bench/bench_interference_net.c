// SPDX-License-Identifier: MIT
/*
 * The interference experiment as a DMM network (--engine network) against
 * the same experiment in C (dmm_if_fewshot): K = 5, seed 1, train and test
 * on the real MNIST files, both timed in this run; the results must agree
 * prediction by prediction. Data from $DMM_MNIST_DIR, else
 * ../shared/data/mnist beside the source tree; skipped (77) without it.
 *   bench_interference_net [--network FILE] [PER]
 *   bench_interference_net [--network FILE] --instructions PER
 * PER test digits of each class (980) through FILE (default
 * networks/mnist-learners.json; networks/mnist-interference.json is the
 * delay-line form). The second runs each engine once with callgrind
 * collecting, dumping "native" and "network" (run it under
 * valgrind --tool=callgrind --collect-atstart=no).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <valgrind/callgrind.h>

#include "bench_clock.h"
#include "dmm_experiments.h"
#include "dmm_idx.h"
#include "dmm_interference.h"

int main(int argc, char **argv)
{
    bool count = false;
    size_t per = DMM_IF_TEST_PER_CLASS;
    const char *file = NULL, *per_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--instructions"))
            count = true;
        else if (!strcmp(argv[i], "--network") && i + 1 < argc)
            file = argv[++i];
        else if (!per_arg)
            per_arg = argv[i];
        else
            per_arg = ""; /* a second PER: refused below */
    }
    if (per_arg)
        per = (size_t)strtoul(per_arg, NULL, 10);
    if (per < 1 || per > DMM_IF_TEST_PER_CLASS) {
        fprintf(stderr,
                "usage: bench_interference_net [--network FILE] "
                "[--instructions] [PER]: PER must be 1..%d\n",
                DMM_IF_TEST_PER_CLASS);
        return 2;
    }
    char dir[4096], net[4096];
    const char *env = getenv("DMM_MNIST_DIR");
    const char *root = getenv("DMM_SOURCE_ROOT");
    if (!root || !*root)
        root = ".";
    if (env && *env)
        snprintf(dir, sizeof dir, "%s", env);
    else
        snprintf(dir, sizeof dir, "%s/../shared/data/mnist", root);
    if (file)
        snprintf(net, sizeof net, "%s", file);
    else
        snprintf(net, sizeof net, "%s/networks/mnist-learners.json", root);
    dmm_mnist tr, te;
    dmm_error err;
    if (dmm_mnist_load(dir, "train", &tr, &err) ||
        dmm_mnist_load(dir, "t10k", &te, &err)) {
        printf("bench_interference_net: skipped, no MNIST in %s (%s)\n", dir,
               err.text);
        return 77;
    }
    dmm_if_data train = {tr.images.v.data, tr.labels.v.data, tr.images.v.count};
    dmm_if_data test = {te.images.v.data, te.labels.v.data, te.images.v.count};
    dmm_if_model *md = malloc(sizeof *md), *mn = malloc(sizeof *mn);
    uint8_t *pred = malloc(DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS);
    dmm_if_options o = {.shots = 5, .seed = 1, .epochs = 1};
    dmm_if_result rd, rn;
    dmm_netx_stats st;
    if (count) {
        CALLGRIND_ZERO_STATS;
        CALLGRIND_TOGGLE_COLLECT;
    }
    double t0 = bench_now_s();
    int rc = dmm_if_fewshot(&train, &test, &o, md, &rd);
    double t1 = bench_now_s();
    if (count) {
        CALLGRIND_TOGGLE_COLLECT;
        CALLGRIND_DUMP_STATS_AT("native");
        CALLGRIND_TOGGLE_COLLECT;
    }
    double t2 = bench_now_s();
    if (!rc)
        rc = dmm_fewshot_network(net, &train, &test, &o, per, mn, &rn, pred,
                                 &st, &err);
    double t3 = bench_now_s();
    if (count) {
        CALLGRIND_TOGGLE_COLLECT;
        CALLGRIND_DUMP_STATS_AT("network");
    }
    if (rc) {
        printf("bench_interference_net: run failed: %s\n", err.text);
        return 1;
    }
    /* The routes trained both ways agree up to rounding (Self adds
     * new - old to old): the largest relative difference. */
    double worst = 0;
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (int s = 0; s < DMM_IF_SOURCES; s++)
            for (int d = 0; d < DMM_IF_TIMES; d++) {
                double a = mn->p[c][s][d], b = md->p[c][s][d];
                double r = (a > b ? a - b : b - a) / b;
                worst = r > worst ? r : worst;
            }
    /* Each network prediction against the native model's on the same
     * image (the confusion matrices below could agree by chance). */
    size_t te_idx[DMM_IF_CLASSES * DMM_IF_TEST_PER_CLASS], differ = 0;
    if (dmm_if_pick(te.labels.v.data, te.labels.v.count, 0,
                    DMM_IF_TEST_PER_CLASS, 0, NULL, te_idx)) {
        printf("bench_interference_net: too few test digits of a class\n");
        return 1;
    }
    dmm_if_image img;
    for (int c = 0; c < DMM_IF_CLASSES; c++)
        for (size_t i = 0; i < per; i++) {
            size_t at = te_idx[c * DMM_IF_TEST_PER_CLASS + i];
            dmm_if_preprocess(te.images.v.data + at * DMM_IF_PIXELS, 0, &img);
            differ += dmm_if_predict(md, &img, 0, NULL) != pred[c * per + i];
        }
    printf("bench_interference_net: K=5 seed 1, %zu test digits a class "
           "through the network (%llu cycles)\n",
           per, (unsigned long long)st.cycles);
    printf("  native (all 980 a class) %.4f s, accuracy %.4f\n", t1 - t0,
           (double)rd.correct / (double)rd.total);
    printf("  network %.4f s, accuracy %.4f on its %zu digits; routes differ "
           "by %.3g at most\n",
           t3 - t2, (double)rn.correct / (double)rn.total, rn.total, worst);
    if (differ) {
        printf("  %zu of %zu predictions DIFFER\n", differ, rn.total);
        return 1;
    }
    if (per == DMM_IF_TEST_PER_CLASS) {
        bool same = rn.correct == rd.correct && rn.total == rd.total &&
                    !memcmp(rn.confusion, rd.confusion, sizeof rn.confusion);
        double ratio = (t3 - t2) / (t1 - t0);
        printf("  network / native = %.1f (target <= 5: %s); confusion "
               "matrices %s\n",
               ratio, ratio <= 5 ? "PASS" : "FAIL",
               same ? "identical" : "DIFFER");
        if (!same)
            return 1;
    }
    free(md);
    free(mn);
    free(pred);
    dmm_mnist_free(&tr);
    dmm_mnist_free(&te);
    return 0;
}
