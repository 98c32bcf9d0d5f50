#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Plot the hysteresis loop mu(h) of every mean-field neuron in a dmm trace.

Reads the JSON lines of `dmm run NET --steps N --trace` (a file, or - for
stdin), takes the outputs mu, h and k of each mean-field neuron per cycle, and
draws one panel per neuron: the path the neuron took (jumps included), the
equilibrium curve h = atanh(mu) - K*mu (stable branches solid, the unstable
middle dashed) and the critical fields +-h_c(K).

    build/runtime/dmm run networks/hysteresis.json --steps 5000 --trace \
        | /usr/bin/python3 tools/plot_hysteresis.py - docs/img/hysteresis.png

Needs Debian's python3-matplotlib (apt-get install python3-matplotlib).
"""
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def h_c(k):
    if k <= 1:
        return 0.0
    s = math.sqrt(1 - 1 / k)
    return k * s - math.atanh(s)


def read_trace(stream):
    """{neuron name: (list of h, list of mu, K)} in cycle order."""
    runs = {}
    for n, line in enumerate(stream, 1):
        line = line.strip()
        if not line:
            continue
        try:
            outputs = json.loads(line)["outputs"]
        except (ValueError, KeyError) as e:
            sys.exit(f"line {n}: not a dmm trace line ({e})")
        for name, out in outputs.get("mean-field", {}).items():
            if not isinstance(out, dict):
                continue
            hs, mus, _ = runs.setdefault(name, ([], [], [None]))
            hs.append(out.get("h", 0.0))
            mus.append(out.get("mu", 0.0))
            runs[name][2][0] = out.get("k", 0.0)
    return {name: (hs, mus, k[0]) for name, (hs, mus, k) in runs.items()}


def plot(runs, png):
    names = sorted(runs, key=lambda name: runs[name][2])
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 4.6),
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        hs, mus, k = runs[name]
        hc = h_c(k)
        # equilibrium curve, parametrised by mu: h = atanh(mu) - K mu
        grid = [math.tanh(x / 100) for x in range(-400, 401)]
        curve = [(math.atanh(m) - k * m, m) for m in grid]
        mu_turn = math.sqrt(1 - 1 / k) if k > 1 else 0.0
        lo = [(h, m) for h, m in curve if m <= -mu_turn]
        mid = [(h, m) for h, m in curve if -mu_turn <= m <= mu_turn]
        hi = [(h, m) for h, m in curve if m >= mu_turn]
        for part, style in ((lo, "-"), (hi, "-"), (mid, "--")):
            if part:
                ax.plot(*zip(*part), style, color="0.7", lw=1.2, zorder=1)
        # the path the neuron took, cycle by cycle
        ax.plot(hs, mus, color="C0" if k < 1.75 else "C3", lw=2, zorder=2,
                label=f"neuron mean-field/{name}")
        # arrows on the jumps
        for i in range(1, len(mus)):
            if (mus[i] > 0) != (mus[i - 1] > 0):
                ax.annotate("", xy=(hs[i], mus[i] * 0.93),
                            xytext=(hs[i], mus[i - 1] * 0.93),
                            arrowprops=dict(arrowstyle="->", lw=1.8),
                            zorder=3)
        for x in (-hc, hc):
            ax.axvline(x, color="k", ls=":", lw=1)
        for x, sign in ((-hc, "−"), (hc, "+")):
            ax.text(x, 1.13, f"{sign}h_c = {x:.4f}", ha="center",
                    va="bottom", fontsize=9,
                    bbox=dict(fc="white", ec="none", pad=1))
        ax.set_title(f"K = {k:g}: jumps at h = ±h_c(K)")
        ax.set_xlabel("field h = β·B")
        ax.set_ylabel("μ")
        ax.set_xlim(min(hs) - 0.05, max(hs) + 0.05)
        ax.set_ylim(-1.12, 1.3)
        ax.grid(alpha=0.3)
        ax.plot([], [], "-", color="0.7", label="stable roots")
        ax.plot([], [], "--", color="0.7", label="unstable root")
        ax.legend(loc="center left", fontsize=8)
    fig.suptitle("Mean-field neuron μ = tanh(K·μ + h): hysteresis under a "
                 "slow sweep of h (networks/hysteresis.json)", fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_hysteresis.py TRACE.jsonl|- OUT.png")
    src = sys.argv[1]
    with (sys.stdin if src == "-" else open(src)) as f:
        runs = read_trace(f)
    if not runs:
        sys.exit(f"{src}: no mean-field neuron outputs in the trace")
    plot(runs, sys.argv[2])


if __name__ == "__main__":
    main()
