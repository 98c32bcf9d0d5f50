// SPDX-License-Identifier: MIT
/*
 * The count field of networks/fields/mnist-field-count.json emulated by the
 * direct engine, for selecting a schedule on validation at the direct
 * engine's speed (docs/experiments.md "A field on the learning rates"): shot
 * k (0-based) of a class trains with eta-friend times a_f (k+1)^p_f and
 * eta-stranger, eta-foe times a_n (k+1)^p_n; K = 5, one epoch, sequential
 * order, faithful scores. Prints "seed accuracy" per seed. test_network_field
 * _variants (tests/test_interference_net.c) checks the network against this
 * computation prediction by prediction; for the MNIST seeds it was checked
 * by running both (docs/experiments.md).
 *
 *   B=build-rel; cc -O2 -Iruntime/experiments/include -Ineurons/include  *
 * -Iruntime/engine/include -Ivvalue/include -I$B -o fewshot-schedule  *
 * tools/fewshot_schedule.c $B/runtime/experiments/libdmm-experiments.a  *
 * $B/neurons/libdmm-neurons.a $B/runtime/engine/libdmm-engine.a  *
 * $B/vvalue/libdmm-vvalue.a -lz -ljansson -lm
 *   ./fewshot-schedule data/mnist-validation 101 20 1 -0.25
 *
 * usage: fewshot-schedule DIR FIRST_SEED COUNT P_F P_N [A_F A_N]
 */
#include "dmm_idx.h"
#include "dmm_interference.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: fewshot-schedule DIR FIRST_SEED COUNT P_F "
                        "P_N [A_F A_N]\n");
        return 2;
    }
    dmm_error err;
    dmm_mnist tr, te;
    if (dmm_mnist_load(argv[1], "train", &tr, &err) ||
        dmm_mnist_load(argv[1], "t10k", &te, &err)) {
        fprintf(stderr, "%s\n", err.text);
        return 1;
    }
    int from = atoi(argv[2]), count = atoi(argv[3]);
    double pf = atof(argv[4]), pn = atof(argv[5]);
    double af = argc > 6 ? atof(argv[6]) : 1, an = argc > 7 ? atof(argv[7]) : 1;
    dmm_if_data train = {tr.images.v.data, tr.labels.v.data, tr.labels.v.count};
    dmm_if_data test = {te.images.v.data, te.labels.v.data, te.labels.v.count};
    static dmm_if_model m;
    size_t seq[40], tidx[4 * 980];
    for (int seed = from; seed < from + count; seed++) {
        dmm_if_options o = {.shots = 5, .seed = (uint64_t)seed, .epochs = 1};
        dmm_if_plan(&train, &test, &o, &m, seq, tidx);
        int n[4] = {0};
        dmm_if_image img;
        for (int i = 0; i < 20; i++) {
            int c = dmm_if_class_of_digit(train.labels[seq[i]]);
            double gf = af * pow(n[c] + 1, pf), gn = an * pow(n[c] + 1, pn);
            n[c]++;
            dmm_if_params pr;
            dmm_if_params_published(&pr);
            pr.eta[0] *= gf;
            pr.eta[1] *= gn;
            pr.eta[2] *= gn;
            dmm_if_preprocess(train.images + seq[i] * 784, 0, &img);
            dmm_if_classify(&img, &pr);
            dmm_if_train(&m, &img, c);
        }
        int correct = 0;
        for (int i = 0; i < 4 * 980; i++) {
            dmm_if_preprocess(test.images + tidx[i] * 784, 0, &img);
            correct += dmm_if_predict(&m, &img, 0, NULL) ==
                       dmm_if_class_of_digit(test.labels[tidx[i]]);
        }
        printf("%d %.6f\n", seed, correct / 3920.0);
    }
    dmm_mnist_free(&tr);
    dmm_mnist_free(&te);
    return 0;
}
