#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Draw the PNG of `dmm plot`: one panel per --select path, from the lines
# "K STEP PATH VALUE" the command writes (K: the index of the --select).
# A selection whose values are indexed by numbers in their last two labels
# (".../ROW/COL", a matrix) is drawn as an image strip: the matrix at a few
# steps side by side; anything else as time series, one line per path.
# Usage: plot_trace.py DATA OUT.png TITLE SELECT...
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_LINES = 16   # series per panel; the rest are named in the legend title
STRIP = 8        # frames in an image strip


def read(path, nsel):
    sel = [dict() for _ in range(nsel)]  # path -> {step: value}
    steps = set()
    with open(path) as f:
        for line in f:
            k, step, p, v = line.split(" ", 3)
            step = int(step)
            steps.add(step)
            sel[int(k)].setdefault(p, {})[step] = float(v)
    return sel, sorted(steps)


def matrix_index(p, prefix):
    """(base, row, col) when p ends in two number labels, else None."""
    parts = p.split("/")
    if len(parts) < 2 or not (parts[-1].isdigit() and parts[-2].isdigit()):
        return None
    return "/".join(parts[:-2]), int(parts[-2]), int(parts[-1])


def series(ax, name, series_map, steps):
    paths = sorted(series_map)
    for p in paths[:MAX_LINES]:
        pts = series_map[p]
        # a value absent at a step is 0 there (V-values do not store zeros)
        ys = [pts.get(t, 0.0) for t in steps]
        label = p[len(name) + 1:] if p.startswith(name + "/") else p
        ax.plot(steps, ys, label=label or p, linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.set_title(name, fontsize=10)
    ax.grid(alpha=0.3)
    extra = len(paths) - MAX_LINES
    ax.legend(fontsize=7, loc="best",
              title=("+ %d more" % extra) if extra > 0 else None)


def strip(fig, spec, name, series_map, steps):
    cells = {}
    for p, pts in series_map.items():
        base, r, c = matrix_index(p, name)
        cells[(r, c)] = pts
    rows = 1 + max(r for r, _ in cells)
    cols = 1 + max(c for _, c in cells)
    picks = sorted(set(np.linspace(0, len(steps) - 1,
                                   min(STRIP, len(steps))).round().astype(int)))
    frames = []
    for i in picks:
        m = np.zeros((rows, cols))
        for (r, c), pts in cells.items():
            m[r, c] = pts.get(steps[i], 0.0)
        frames.append((steps[i], m))
    lo = min(m.min() for _, m in frames)
    hi = max(m.max() for _, m in frames)
    sub = spec.subgridspec(1, len(frames) + 1,
                           width_ratios=[1] * len(frames) + [0.08])
    for j, (t, m) in enumerate(frames):
        ax = fig.add_subplot(sub[0, j])
        im = ax.imshow(m, vmin=lo, vmax=hi, cmap="viridis",
                       interpolation="nearest")
        ax.set_title("step %d" % t, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if j == 0:
            ax.set_ylabel("%s\n(%d x %d)" % (name, rows, cols), fontsize=8)
    fig.colorbar(im, cax=fig.add_subplot(sub[0, -1]))


def main():
    data, out, title = sys.argv[1:4]
    names = sys.argv[4:]
    sel, steps = read(data, len(names))
    fig = plt.figure(figsize=(10, 3.2 * len(names) + 0.6),
                     constrained_layout=True)
    fig.suptitle(title, fontsize=12)
    gs = fig.add_gridspec(len(names), 1)
    for k, name in enumerate(names):
        m = sel[k]
        idx = [matrix_index(p, name) for p in m]
        if m and all(idx) and len(m) > 1 and len({i[0] for i in idx}) == 1:
            strip(fig, gs[k, 0], name, m, steps)
        else:
            ax = fig.add_subplot(gs[k, 0])
            if m:
                series(ax, name, m, steps)
            else:
                ax.set_title("%s: nothing selected" % name, fontsize=10)
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
