#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write networks/wave-rings.json (docs/sweep.md, "A wave of period 5 by
evolution"): networks/wave.json's self-modifying wave with more update
neurons. Plain python3, no packages.

    python3 tools/gen_wave_rings.py [--out networks/wave-rings.json] [--rings 2,3,4,5]

As in wave.json, each identity neuron holds (on a self-loop) a delta of W that
moves Self's link into `delta` from itself to its successor; here the
successors form rings of the given lengths (ring2-1 -> ring2-2 -> ring2-1,
ring3-1 -> ring3-2 -> ring3-3 -> ring3-1, ...). Every cycle Self adds
sum_k a_k (link to succ(k) - link to k), a_k = W[accum][self][delta][identity]
[k][single], so the row a is rotated along each ring: it repeats with the
least common multiple of the lengths of the rings on which it is not
constant. W_0 links ring2-1 alone, as wave.json links update-1: period 2.
"""
import argparse
import json


def names(rings):
    return [["ring%d-%d" % (n, i + 1) for i in range(n)] for n in rings]


def network(rings):
    ring_names = names(rings)
    matrix = {"accum": {"self": {"accum": {"accum": {"self": {"single": 1}}},
                                 "delta": {"identity": {ring_names[0][0]:
                                                        {"single": 1}}}}},
              "identity": {}}
    outputs = {"identity": {}}
    for ring in ring_names:
        for i, k in enumerate(ring):
            succ = ring[(i + 1) % len(ring)]
            matrix["identity"][k] = {
                "single": {"identity": {k: {"single": 1}}}}
            outputs["identity"][k] = {"single": {"accum": {"self": {
                "delta": {"identity": {k: {"single": -1},
                                       succ: {"single": 1}}}}}}}
    return {"dmm": 1, "matrix": matrix, "outputs": outputs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="networks/wave-rings.json")
    ap.add_argument("--rings", default="2,3,4,5",
                    help="ring lengths, each at least 2 (default 2,3,4,5)")
    a = ap.parse_args()
    rings = [int(x) for x in a.rings.split(",")]
    if any(n < 2 for n in rings):
        ap.error("--rings: each ring needs at least 2 neurons")
    with open(a.out, "w") as f:
        json.dump(network(rings), f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
