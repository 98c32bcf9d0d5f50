#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the few-shot MNIST interference network with a field on its learning
rates (docs/experiments.md, "A field on the learning rates"): copies of
networks/mnist-interference.json with extra neurons that make one field per
class and modulations that multiply that class's eta-* parameters by it.
Plain python3, no packages.

    python3 tools/gen_mnist_fields.py [--out-dir networks/fields]

Variants (file mnist-field-NAME.json):
  neutral       the field is the constant 1 (identity/one): law 1 of
                docs/fields.md says every prediction equals the plain network's
  count         n = the number of training images of the class so far, this
                one included (accum/n-digit-c counts input/control's
                digit-c): shot k (0-based) learns with eta-friend times
                k+1 and eta-stranger, eta-foe times (k+1)^-0.25
                (power/n-digit-c); the design selected on validation
  count-anneal  all three rates times (k+1)^-0.5 (power/f-, n-digit-c):
                a schedule decaying eta over the shots
  energy-K      the class's own score so far in this episode (max energy,
                interference/digit-c/score), field 2 sigmoid(K score)
                (identity/m-digit-c): 1 at the start of each episode, below
                1 (K < 0, annealing: learn less of what it already knows) or
                above (K > 0) as the image's energy grows
The energy fields multiply all three rates when annealing, only eta-friend
when amplifying (a foe's rate doubled, -1.6, would make 1 + eta negative).
"""
import argparse
import json
import os

DIGITS = [0, 1, 2, 4]
ETAS = ["eta-friend", "eta-stranger", "eta-foe"]
HERE = os.path.dirname(os.path.abspath(__file__))


def targets():
    return ["digit-%d" % d for d in DIGITS]


def one(doc):
    """identity/one: the constant 1 on output v (a self-loop of weight 1)."""
    doc["matrix"].setdefault("identity", {})["one"] = {
        "v": {"identity": {"one": {"v": 1}}}}
    doc["outputs"].setdefault("identity", {})["one"] = {"v": 1}


def modulate(doc, field_of, params):
    doc["modulations"] = [
        {"name": "%s-%s" % (t, p), "field": field_of(t), "target": "param",
         "param": p, "neurons": ["interference/" + t], "mode": "multiply"}
        for t in targets() for p in params]


def neutral(doc):
    one(doc)
    modulate(doc, lambda t: "identity/one/v", ETAS)


def count(doc, pf, pn):
    """eta-friend times n^pf, eta-stranger and eta-foe times n^pn, n the
    class's training images so far (this one included)."""
    one(doc)
    m = doc["matrix"]
    mods = []
    for t in targets():
        n = "accum/n-%s/single" % t
        m.setdefault("accum", {})["n-" + t] = {
            "accum": {"accum": {"n-" + t: {"single": 1}}},
            "delta": {"input": {"control": {t: 1}}}}
        for p, params, tag in ((pf, ETAS[:1], "f"), (pn, ETAS[1:], "n")):
            if p == 0:
                continue
            field = n
            if p != 1:
                m.setdefault("power", {})["%s-%s" % (tag, t)] = {
                    "x": {"accum": {"n-" + t: {"single": 1}}},
                    "exponent": {"identity": {"one": {"v": p}}}}
                field = "power/%s-%s/y" % (tag, t)
            mods += [(t, q, field) for q in params]
    doc["modulations"] = [
        {"name": "%s-%s" % (t, q), "field": field, "target": "param",
         "param": q, "neurons": ["interference/" + t], "mode": "multiply"}
        for t, q, field in mods]


def energy(doc, kappa):
    m = doc["matrix"]
    for t in targets():
        m.setdefault("sigmoid", {})["e-" + t] = {
            "x": {"interference": {t: {"score": kappa}}}}
        m.setdefault("identity", {})["m-" + t] = {
            "m": {"sigmoid": {"e-" + t: {"x": 2}}}}
    modulate(doc, lambda t: "identity/m-%s/m" % t,
             ETAS if kappa < 0 else ETAS[:1])


def write(doc, path):
    """One neuron (type/name) per line, as gen_interference_networks."""
    lines = ["{", '"dmm": 1,']
    for k in ("params", "outputs", "modulations"):
        lines.append("%s: %s," % (json.dumps(k), json.dumps(doc[k])))
    lines.append('"matrix": {')
    types = list(doc["matrix"].items())
    for i, (f, byname) in enumerate(types):
        lines.append(" %s: {" % json.dumps(f))
        names = list(byname.items())
        for j, (nf, rows) in enumerate(names):
            lines.append("  %s: %s%s" % (
                json.dumps(nf), json.dumps(rows, separators=(",", ":")),
                "," if j + 1 < len(names) else ""))
        lines.append(" }" + ("," if i + 1 < len(types) else ""))
    lines += ["}", "}"]
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
    json.load(open(path))  # it must read back


VARIANTS = {
    "neutral": neutral,
    "count": lambda d: count(d, 1, -0.25),
    "count-anneal": lambda d: count(d, -0.5, -0.5),
    "energy-anneal": lambda d: energy(d, -0.003),
    "energy-amplify": lambda d: energy(d, 0.003),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir",
                    default=os.path.join(HERE, "..", "networks", "fields"))
    ap.add_argument("--base", default=os.path.join(
        HERE, "..", "networks", "mnist-interference.json"))
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    for name, make in VARIANTS.items():
        doc = json.load(open(a.base))
        make(doc)
        write(doc, os.path.join(a.out_dir, "mnist-field-%s.json" % name))


if __name__ == "__main__":
    main()
