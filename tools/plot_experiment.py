#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Draw the PNG of `dmm experiment ... --plot FILE.png` from the JSON data the
# command writes. Run by the command with Debian's /usr/bin/python3 and
# python3-matplotlib. Usage: plot_experiment.py KIND DATA.json OUT.png,
# KIND = mnist-fewshot | double-slit.
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DIGITS = [0, 1, 2, 4]
COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red"]


def fewshot(d, out):
    fig = plt.figure(figsize=(14, 8.2), constrained_layout=True)
    gs = fig.add_gridspec(2, 8)
    fig.suptitle(
        "MNIST few-shot, induced interference (%s, pick %s, %s order, "
        "%d epoch%s)"
        % (d["variant"], d["pick"], d["order"], d["epochs"],
           "" if d["epochs"] == 1 else "s"), fontsize=13)

    # Accuracy over shots: each seed a dot, the mean a line.
    ax = fig.add_subplot(gs[0, 0:3])
    shots = np.array(d["shots"])
    acc = np.array(d["accuracy"]) * 100
    for i in range(acc.shape[1]):
        ax.plot(shots, acc[:, i], "o", color="0.6", ms=4,
                label="one seed" if i == 0 else None)
    ax.plot(shots, acc.mean(axis=1), "-o", color="tab:blue", lw=2,
            label="mean of %d seeds" % acc.shape[1])
    ax.axhline(25, color="0.5", ls=":", label="chance (4 classes)")
    ax.set_xticks(shots)
    ax.set_xlabel("training images per class (K)")
    ax.set_ylabel("test accuracy (%), 3920 digits")
    ax.set_title("Accuracy over shots (seeds %d..%d)"
                 % (d["seed"], d["seed"] + acc.shape[1] - 1))
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)

    # The test digit and its energies.
    dg = d["digit"]
    ax = fig.add_subplot(gs[0, 3])
    ax.imshow(np.array(dg["pixels"]).reshape(28, 28), cmap="gray_r")
    ax.set_title("test image %d\nlabel %d, predicted %d"
                 % (dg["index"], dg["label"], dg["predicted"]), fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax = fig.add_subplot(gs[0, 4:8])
    J = np.array(dg["energy"])
    for c in range(4):
        ax.plot(range(J.shape[1]), J[c], "-o", ms=3, color=COLOURS[c],
                label="target %d (max %.1f)" % (DIGITS[c], J[c].max()))
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xlabel("time t")
    ax.set_ylabel("energy $J_c(t)$")
    ax.set_title("Energy of the test image at each target")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)

    # Reachable mass per source for each target, on one colour scale.
    R = np.array(d["reachable"]).reshape(4, 9, 9)
    vmax = R.max()
    # where the targets sit (--geometry; files without the key: corners)
    where = {"corners": ["top left corner", "bottom left corner",
                         "bottom right corner", "top right corner"],
             "sides": ["left side", "bottom side", "right side", "top side"]}
    place = where.get(d.get("geometry", "corners"), where["corners"])
    for c in range(4):
        ax = fig.add_subplot(gs[1, 2 * c:2 * c + 2])
        im = ax.imshow(R[c], cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title("target %d (%s)\nreachable route mass"
                     % (DIGITS[c], place[c]), fontsize=10)
        ax.set_xticks(range(9))
        ax.set_yticks(range(9))
        ax.tick_params(labelsize=7)
        ax.set_xlabel("patch column")
        if c == 0:
            ax.set_ylabel("patch row")
    fig.colorbar(im, ax=fig.axes[-4:], shrink=0.8,
                 label="sum of P[s][c][d] over d >= dist(s,c)")
    fig.savefig(out, dpi=90)


def double_slit(d, out):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), constrained_layout=True)
    fig.suptitle("Double slit (%s variant, seed %d)" % (d["variant"],
                                                        d["seed"]),
                 fontsize=13)
    R = np.array(d["routes"]).reshape(2, 2, -1)
    ax = axes[0]
    names = ["target -2 (out of phase)", "target +2 (in phase)"]
    for s in range(2):
        for g in range(2):
            ax.plot(R[s, g], ls="-" if s == 0 else "--", color=COLOURS[g],
                    label="source %+d -> %s" % (2 * s - 1, names[g]))
    ax.set_xlabel("travel duration d")
    ax.set_ylabel("route probability P")
    ax.set_title("Learned route probabilities")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for ax, key in zip(axes[1:], ["in-phase", "out-of-phase"]):
        J = np.array(d["energy"][key])
        for g in range(2):
            ax.plot(J[g], color=COLOURS[g],
                    label="%s, mean %.1f" % (names[g], J[g].mean()))
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xlabel("time t")
        ax.set_ylabel("energy J(t)")
        ax.set_title("A fresh %s sample" % key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(out, dpi=90)


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: plot_experiment.py KIND DATA.json OUT.png")
    kind, data, out = sys.argv[1:]
    with open(data) as f:
        d = json.load(f)
    {"mnist-fewshot": fewshot, "double-slit": double_slit}[kind](d, out)


if __name__ == "__main__":
    main()
