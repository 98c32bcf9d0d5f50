#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the interference experiments as DMM networks (docs/experiments.md,
"As a DMM network"): networks/mnist-learners.json, mnist-interference.json
and double-slit.json. Plain python3, no packages.

    python3 tools/gen_interference_networks.py [--out-dir networks]

Routes start uniform (every duration 1/25, or 1/60 for the double slit);
`dmm experiment ... --engine network` replaces them with the seed's routes in
one edit before the first cycle.

The learner variant keeps the delay-line network's route layout,
W[<kind>][<target>][in|blocked][delay][s<i>][<age>], so the host writes and
reads the routes at the same paths; in it no delay neuron has a row (the
learner holds the image and reads those rows as its routes).
"""
import argparse
import json
import os

# MNIST: 9 x 9 sources, targets outside the corners (spec interference.md §1).
GRID = 9
TIMES = 25
DIGITS = [0, 1, 2, 4]
CORNERS = [(-5, -5), (5, -5), (5, 5), (-5, 5)]


def mnist_dist(s, c):
    y, x = s // GRID - 4, s % GRID - 4
    return abs(y - CORNERS[c][0]) + abs(x - CORNERS[c][1])


def const_target(vector):
    """identity/target holding the target vector on output v forever."""
    return ({"v": {"identity": {"target": {"v": 1}}}}, {"v": vector})


def route_rows(sources, dist_of, times, p0):
    """The in (reachable) and blocked rows of one target."""
    reach, blocked = {}, {}
    for name, dist in ((n, dist_of(n)) for n in sources):
        reach[name] = {str(d): p0 for d in range(dist, times)}
        if dist > 0:
            blocked[name] = {str(d): p0 for d in range(0, dist)}
    return {"delay": reach}, {"delay": blocked}


def network(sources, targets, dist, times, vector, params, feed,
            kind="interference"):
    """sources: names; targets: names; dist(source, target index); kind:
    the target type, `interference` (fed by delay lines) or `learner`."""
    row, out = const_target(vector)
    m = {
        "identity": {"target": row},
        "input": {
            feed: {"tick": {"identity": {"target": {"v": 1}}}},
            "control": {"tick": {"identity": {"target": {"v": 1}}}},
        },
        "delay": {s: {s: {"input": {feed: {s: 1}}}} for s in sources},
        kind: {},
        "accum": {
            "self": {
                "accum": {"accum": {"self": {"single": 1}}},
                "delta": {kind: {t: {"delta": 1} for t in targets}},
            }
        },
        "output": {
            o: {t: {kind: {t: {o: 1}}} for t in targets}
            for o in ("score", "peak", "total")
        },
    }
    if kind == "learner":
        del m["delay"]  # the learner holds the image: no lines to feed
    for c, t in enumerate(targets):
        reach, blocked = route_rows(
            sources, lambda s: dist(sources.index(s), c), times, 1.0 / times
        )
        rows = {}
        if kind == "learner":
            # A depth-2 leaf: all of input/<feed>'s outputs, {s<i>: [1, f]}.
            rows["image"] = {"input": {feed: 1}}
        rows.update({
            "in": reach,
            "blocked": blocked,
            "target": {"identity": {"target": {"v": 1}}},
            "routes": {"accum": {"self": {"single": {kind: {t: 1}}}}},
            "reset": {"input": {"control": {"reset": 1}}},
            "learn": {"input": {"control": {t: 1}}},
        })
        m[kind][t] = rows
    p = {}
    if kind != "learner":  # its horizon is the routes the host writes
        p["delay"] = {s: {"length": times} for s in sources}
    if params:
        p[kind] = {t: dict(params) for t in targets}
    return {"dmm": 1, "matrix": m, "outputs": {"identity": {"target": out}},
            "params": p}


def write(doc, path):
    """One neuron input (type/name/input) per line."""
    lines = ["{", '"dmm": 1,']
    if doc["params"]:
        lines.append('"params": ' + json.dumps(doc["params"]) + ",")
    lines += ['"outputs": ' + json.dumps(doc["outputs"]) + ",", '"matrix": {']
    types = list(doc["matrix"].items())
    for i, (f, byname) in enumerate(types):
        lines.append(" %s: {" % json.dumps(f))
        names = list(byname.items())
        for j, (nf, rows) in enumerate(names):
            inner = ",\n   ".join(
                "%s: %s" % (json.dumps(k), json.dumps(v, separators=(",", ":")))
                for k, v in rows.items())
            lines.append("  %s: {\n   %s\n  }%s" % (
                json.dumps(nf), inner, "," if j + 1 < len(names) else ""))
        lines.append(" }" + ("," if i + 1 < len(types) else ""))
    lines += ["}", "}"]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
    json.load(open(path))  # it must read back


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "networks"))
    a = ap.parse_args()

    sources = ["s%d" % s for s in range(GRID * GRID)]
    targets = ["digit-%d" % d for d in DIGITS]
    third = 1.0 / 3.0
    mnist = network(sources, targets, mnist_dist, TIMES,
                    {str(k): third for k in range(1, 10)}, None, "image")
    write(mnist, os.path.join(a.out_dir, "mnist-interference.json"))
    # Each learner takes an episode's every age at once (whole-episode):
    # a test image every cycle instead of every 25, the same sums.
    learners = network(sources, targets, mnist_dist, TIMES,
                       {str(k): third for k in range(1, 10)},
                       {"whole-episode": 1}, "image", "learner")
    write(learners, os.path.join(a.out_dir, "mnist-learners.json"))

    # Double slit (spec §2): sources at -1, +1; targets at -2 (out of
    # phase), +2 (in phase); 60 durations; target vector [0, 1].
    spos, tpos = [-1, 1], [-2, 2]
    ds = network(["s0", "s1"], ["minus-2", "plus-2"],
                 lambda s, g: abs(tpos[g] - spos[s]), 60, {"1": 1},
                 {"friend": 0.8, "foe": -0.8, "eta-friend": 0.1,
                  "eta-stranger": -0.01, "eta-foe": -0.1}, "signal")
    write(ds, os.path.join(a.out_dir, "double-slit.json"))


if __name__ == "__main__":
    main()
