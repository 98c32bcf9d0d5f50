#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Draw the report of the MNIST field (docs/experiments.md, "A field on the
# learning rates"): the accuracy of each seed under each variant of a dmm
# sweep (lines join a seed's runs), and each variant's gain over "plain"
# seed by seed.
#   dmm sweep networks/fields/mnist-field-report.sweep.json --jobs 2 > r.jsonl
#   tools/plot_fields_mnist.py docs/img/fields-mnist.png r.jsonl [more.jsonl]
import json, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

acc = {}  # variant -> seed -> accuracy
for path in sys.argv[2:]:
    for line in open(path):
        d = json.loads(line)
        if "member" in d and "result" in d:
            m = d["member"]
            acc.setdefault(m["variant"], {})[m["seed"]] = d["result"]["accuracy"]
order = ["plain"] + [v for v in acc if v != "plain"]
seeds = sorted(set.intersection(*(set(acc[v]) for v in order)))

fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.8),
                             gridspec_kw={"width_ratios": [1.1, 1]})
for s in seeds:
    a1.plot(range(len(order)), [acc[v][s] for v in order], color="0.75",
            lw=0.8, zorder=1)
for i, v in enumerate(order):
    ys = [acc[v][s] for s in seeds]
    a1.scatter([i] * len(ys), ys, s=14, zorder=2)
    m, sd = statistics.mean(ys), statistics.stdev(ys)
    a1.errorbar(i + 0.12, m, yerr=sd, fmt="o", color="k", capsize=4, zorder=3)
    a1.annotate("%.3f ± %.3f" % (m, sd), (i + 0.18, m), fontsize=8,
                va="center")
a1.set_xticks(range(len(order)))
a1.set_xticklabels(order, fontsize=9)
a1.set_xlim(-0.4, len(order) - 0.2)
a1.set_ylabel("test accuracy (3920 digits)")
a1.set_title("K=5, seeds %d..%d, each seed's runs joined" % (seeds[0], seeds[-1]),
             fontsize=10)
a1.grid(axis="y", alpha=0.3)

width = 0.8 / max(1, len(order) - 1)
for j, v in enumerate(order[1:]):
    d = [acc[v][s] - acc["plain"][s] for s in seeds]
    xs = [k + (j - (len(order) - 2) / 2) * width for k in range(len(seeds))]
    a2.bar(xs, d, width=width, label="%s − plain: mean %+.3f, better on %d/%d"
           % (v, statistics.mean(d), sum(x > 0 for x in d), len(d)))
a2.axhline(0, color="k", lw=0.8)
a2.set_xticks(range(len(seeds)))
a2.set_xticklabels([str(s) for s in seeds], fontsize=7)
a2.set_xlabel("seed")
a2.set_ylabel("accuracy minus plain's, same seed")
a2.legend(fontsize=8, loc="upper right")
a2.grid(axis="y", alpha=0.3)
fig.tight_layout()
fig.savefig(sys.argv[1], dpi=110)
