// SPDX-License-Identifier: MIT
/*
 * Embedding dmm (docs/embedding.md): load a network, run cycles, read an
 * output by its path, edit a weight, and free everything. Built in the tree
 * as an example, and outside it against an installed libdmm:
 *   cc embed.c $(pkg-config --cflags --libs dmm) -o embed
 *   ./embed networks/accumulator.json
 * It prints the accumulator after 3 cycles, then after 3 more at half the
 * weight, and exits 1 on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmm.h"

/* Print the value at the text path of Y_t (borrowed from the network). */
static int print_at(dmm_net *net, const char *path)
{
    vv_ctx *vc = dmm_net_vctx(net);
    vv_label p[8];
    size_t n;
    dmm_error err;
    if (dmm_net_outputs_build(net, &err) < 0 ||
        dmm_path_parse(vc, path, strlen(path), p, 8, &n, NULL, &err) < 0) {
        fprintf(stderr, "embed: %s\n", err.text);
        return -1;
    }
    char *s = vv_to_string(vc, vv_get(dmm_net_outputs(net), p, n));
    if (!s)
        return -1;
    printf("step %llu: %s = %s\n", (unsigned long long)dmm_net_step_count(net),
           path, s);
    free(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: embed NET.json\n");
        return 2;
    }
    /* One context (labels, allocator) and one registry of neuron types;
     * both outlive every network made with them. */
    vv_ctx *vc = vv_ctx_new(NULL);
    dmm_registry *reg = vc ? dmm_registry_new(vc) : NULL;
    if (!reg || dmm_registry_add_builtins(reg) < 0)
        return 1;
    dmm_error err;
    dmm_net *net = NULL;
    int rc = dmm_net_load_file(vc, reg, argv[1], &net, &err);
    for (int k = 0; rc == 0 && k < 3; k++)
        rc = dmm_net_step(net, &err);
    if (rc == 0)
        rc = print_at(net, "accum/sum/single");
    /* Halve the weight that feeds the accumulator: an edit is a W delta. */
    static const char edit[] = "{\"accum\": {\"sum\": {\"delta\": "
                               "{\"identity\": {\"const\": {\"single\": "
                               "-0.5}}}}}}";
    vv delta = VV_ZERO;
    if (rc == 0)
        rc = vv_parse(vc, edit, sizeof edit - 1, "edit", &delta, &err);
    if (rc == 0)
        rc = dmm_net_edit(net, delta, &err);
    vv_free(vc, delta);
    for (int k = 0; rc == 0 && k < 3; k++)
        rc = dmm_net_step(net, &err);
    if (rc == 0)
        rc = print_at(net, "accum/sum/single");
    if (rc < 0 && rc != -1) {
        char buf[1024];
        dmm_error_format(&err, buf, sizeof buf);
        fprintf(stderr, "embed: %s\n", buf);
    }
    dmm_net_free(net);
    dmm_registry_free(reg);
    vv_ctx_free(vc);
    return rc == 0 ? 0 : 1;
}
