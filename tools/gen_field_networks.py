#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the field explorations of docs/fields.md ("Explorations") as DMM
networks under networks/fields/. Plain python3, no packages.

    python3 tools/gen_field_networks.py [--out-dir networks/fields]

- excitable.json: an induced field. A 32 x 32 grid of sigmoid cells, each
  embedded at its pixel; their activity, gathered into an image, is blurred
  by conv2d (excitation) and integrated by a leaky identity (fatigue); both
  images are added to the cells' inputs by position, so the medium is
  excitable and a broken wave front curls into a spiral.
- bifurcation.json + bifurcation.script.jsonl: an external field. A 16 x 32
  grid of tanh cells, coupled to their four neighbours, with their inputs
  multiplied by a gain field: a grid neuron's x ramp (0.5 wide) whose offset
  x0 the script feeds every cycle, up from 0.6 to 1.4 and back. The pitchfork
  of tanh(g u) at g = 1 sweeps across the population.
- hysteresis-map.json: a field over space added to the mean-field neurons'
  h. A 16 x 16 grid of mean-field neurons (K = 2, h_c = 0.533) share one
  slow sinusoid h(t) = 0.8 sin(2 pi t / 120) and each gets 0.3 - 0.6 r added
  by position (r the distance from the centre): the up and down jumps happen
  at different radii, so the hysteresis loop is a disc that grows late and
  shrinks late.

Every cell's one stream is named by its column, so an identity neuron whose
input streams are named by the rows gathers the cells into an image (the
"rows" neurons below) without any neuron that moves labels.
"""
import argparse
import json
import math
import os


def row(src, weight=1):
    """A row term: {"type": {"name": {"output": weight}}} from "t/n/o" (or
    "t/n" for a whole output map, or deeper for part of one)."""
    parts = src.split("/")
    v = weight
    for p in reversed(parts):
        v = {p: v}
    return v


def merge(a, b):
    for k, v in b.items():
        if k in a and isinstance(a[k], dict) and isinstance(v, dict):
            merge(a[k], v)
        elif k in a:
            a[k] += v
        else:
            a[k] = v
    return a


class Net:
    def __init__(self):
        self.matrix = {"accum": {"self": {"accum": row("accum/self/single")}}}
        self.outputs = {}
        self.params = {}
        self.positions = {}
        self.modulations = []

    def link(self, to, src, weight=1):
        t, n, i = to.split("/")
        merge(self.matrix, {t: {n: {i: row(src, weight)}}})

    def out(self, neuron, value):
        t, n = neuron.split("/")
        self.outputs.setdefault(t, {})[n] = value

    def const(self, name, value):
        """identity/NAME holding {"v": value} for ever (its own loop)."""
        self.link("identity/%s/v" % name, "identity/%s/v" % name)
        self.out("identity/" + name, {"v": value})

    def param(self, neuron, name, value):
        t, n = neuron.split("/")
        self.params.setdefault(t, {}).setdefault(n, {})[name] = value

    def gather(self, cells, rows, cols, view):
        """identity/rows-VIEW: stream i gathers the cells of row i (each a
        map {column: value}); identity/VIEW/image is the whole image."""
        for i in range(rows):
            for j in range(cols):
                self.link("identity/rows-%s/%d" % (view, i), cells(i, j))
        self.link("identity/%s/image" % view, "identity/rows-" + view)

    def write(self, path):
        net = {"dmm": 1, "matrix": self.matrix}
        if self.outputs:
            net["outputs"] = self.outputs
        if self.params:
            net["params"] = self.params
        net["positions"] = self.positions
        net["modulations"] = self.modulations
        with open(path, "w") as f:
            f.write("{\"dmm\": 1,\n \"matrix\": {\n")
            types = list(self.matrix.items())
            for ti, (t, neurons) in enumerate(types):
                f.write("  %s: {\n" % json.dumps(t))
                items = list(neurons.items())
                for ni, (n, rows) in enumerate(items):
                    f.write("   %s: %s%s\n" % (json.dumps(n),
                                              json.dumps(rows, sort_keys=True),
                                              "," if ni + 1 < len(items) else ""))
                f.write("  }%s\n" % ("," if ti + 1 < len(types) else ""))
            f.write(" },\n")
            for key in ("outputs", "params"):
                if key in net:
                    f.write(" %s: %s,\n" % (json.dumps(key),
                                            json.dumps(net[key], sort_keys=True)))
            f.write(" \"positions\": {\n")
            pos = list(self.positions.items())
            for k, (n, xy) in enumerate(pos):
                f.write("  %s: %s%s" % (json.dumps(n), json.dumps(xy),
                                        ",\n" if k + 1 < len(pos) else "\n"))
            f.write(" },\n \"modulations\": [\n")
            for k, m in enumerate(self.modulations):
                f.write("  %s%s\n" % (json.dumps(m),
                                      "," if k + 1 < len(self.modulations) else ""))
            f.write(" ]\n}\n")


def excitable(out_dir):
    n = 32
    gain = 8.0          # every input term is scaled by it: sigmoid(8 x)
    threshold = 0.75    # x = u - threshold + ...: about two active neighbours
    decay = 0.9         # of the fatigue per cycle
    net = Net()
    cell = lambda i, j: "sigmoid/c%d-%d" % (i, j)
    net.const("one", 1)
    # the 3 x 3 excitation kernel: 0.5 per neighbour, times the gain
    k = {str(i): {str(j): 0.0 if (i, j) == (1, 1) else 0.5 * gain
                  for j in range(3)} for i in range(3)}
    k["1"].pop("1")
    net.const("kernel", k)
    for i in range(n):
        for j in range(n):
            c = cell(i, j)
            net.link("%s/%d" % (c, j), "%s/%d" % (c, j), gain)   # memory
            net.link("%s/%d" % (c, j), "identity/one/v", -threshold * gain)
            net.positions[c] = [j, i]
    # activity image, its excitation and its fatigue
    net.gather(cell, n, n, "activity")
    net.link("conv2d/excite/image", "identity/rows-activity")
    net.link("conv2d/excite/kernel", "identity/kernel/v")
    net.link("identity/fatigue/image", "identity/fatigue/image", decay)
    net.link("identity/fatigue/image", "identity/rows-activity", -gain)
    net.modulations = [
        {"name": "excite", "field": "conv2d/excite/image", "target": "input",
         "neurons": "embedded", "mode": "add"},
        {"name": "fatigue", "field": "identity/fatigue/image",
         "target": "input", "neurons": "embedded", "mode": "add"}]
    # a broken front: cells of the middle row's left half fire, the three
    # rows above them are tired, so the front can only run downwards and
    # its free end curls
    half, mid = n // 2, n // 2
    for j in range(half):
        net.out(cell(mid, j), {str(j): 1})
    net.out("identity/rows-activity", {str(mid): {str(j): 1 for j in range(half)}})
    net.out("identity/fatigue",
            {"image": {str(i): {str(j): -3 * gain for j in range(half)}
                       for i in range(mid - 3, mid)}})
    net.write(os.path.join(out_dir, "excitable.json"))


def bifurcation(out_dir):
    rows, cols = 16, 32
    steps = 160
    net = Net()
    cell = lambda i, j: "tanh/u%d-%d" % (i, j)
    net.const("one", 1)
    # the gain field: x ramp of the grid, x0 fed by the script
    net.link("input/sweep/dummy", "identity/one/v")
    net.link("grid/gain/x0", "input/sweep/x0")
    net.param("grid/gain", "width", cols)
    net.param("grid/gain", "height", rows)
    net.param("grid/gain", "zoom", 0.25)
    # small noise breaks the symmetry u -> -u
    net.link("noise/kick/amplitude", "identity/one/v", 0.004)
    net.param("noise/kick", "width", cols)
    net.param("noise/kick", "height", rows)
    for i in range(rows):
        for j in range(cols):
            c, s = cell(i, j), str(j)
            net.link("%s/%s" % (c, s), "%s/%s" % (c, s), 0.5)
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                ii, jj = i + di, j + dj
                if 0 <= ii < rows and 0 <= jj < cols:
                    net.link("%s/%s" % (c, s), "%s/%d" % (cell(ii, jj), jj),
                             0.125)
            net.link("%s/%s" % (c, s), "noise/kick/image/%d/%d" % (i, j))
            net.positions[c] = [j, i]
    net.gather(cell, rows, cols, "population")
    net.modulations = [
        {"name": "gain", "field": "grid/gain/x", "target": "input",
         "neurons": "embedded", "mode": "multiply"}]
    net.write(os.path.join(out_dir, "bifurcation.json"))
    with open(os.path.join(out_dir, "bifurcation.script.jsonl"), "w") as f:
        for t in range(1, steps + 1):
            # a triangle 0.6 -> 1.4 -> 0.6 over the run
            x = 1 - abs(2.0 * (t - 1) / (steps - 1) - 1)
            f.write(json.dumps({"step": t, "op": "feed",
                                "neuron": "input/sweep",
                                "outputs": {"x0": round(0.6 + 0.8 * x, 6)}}) + "\n")


def hysteresis_map(out_dir):
    n = 16
    period = 120
    net = Net()
    cell = lambda i, j: "mean-field/m%d-%d" % (i, j)
    relay = lambda i, j: "identity/mu%d-%d" % (i, j)
    w = 2 * math.pi / period
    # the oscillator of networks/hysteresis.json, faster: sin, cos rotate
    net.link("accum/sin/accum", "accum/sin/single", math.cos(w))
    net.link("accum/sin/accum", "accum/cos/single", math.sin(w))
    net.link("accum/cos/accum", "accum/sin/single", -math.sin(w))
    net.link("accum/cos/accum", "accum/cos/single", math.cos(w))
    net.out("accum/cos", {"single": 1})
    net.const("n", 4)
    net.const("j", 0.5)  # K = 4 * 0.5 = 2
    # the spatial offset 0.3 - 0.6 r, r from the centre (0) to a corner (1.41)
    net.link("grid/space/zoom", "identity/one/v")
    net.const("one", 1)
    net.param("grid/space", "width", n)
    net.param("grid/space", "height", n)
    net.link("affine/offset/x", "grid/space/r")
    net.param("affine/offset", "scale", -0.6)
    net.param("affine/offset", "shift", 0.3)
    for i in range(n):
        for j in range(n):
            c = cell(i, j)
            net.link(c + "/field", "accum/sin/single", 0.8)
            net.link(c + "/neighbours", "identity/n/v")
            net.link(c + "/coupling", "identity/j/v")
            net.link("%s/%d" % (relay(i, j), j), c + "/mu")
            net.positions[c] = [j, i]
    net.gather(relay, n, n, "mu")
    net.modulations = [
        {"name": "offset", "field": "affine/offset/y", "target": "input",
         "stream": "field", "neurons": "embedded", "mode": "add"}]
    net.write(os.path.join(out_dir, "hysteresis-map.json"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default="networks/fields")
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    excitable(a.out_dir)
    bifurcation(a.out_dir)
    hysteresis_map(a.out_dir)


if __name__ == "__main__":
    main()
