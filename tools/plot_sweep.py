#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Draw a dmm sweep (dmm sweep FILE --plot OUT.png writes DATA and runs this):
#   plot_sweep.py DATA.json OUT.png
# DATA is {"lines": [member lines], "summary": [summary groups]}. With groups:
# each group's members as dots and its mean +- sd as a bar, for the first
# numeric result field (accuracy, score or period when present). Without
# (an evolutionary search): the field over member index, best so far on top.
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

data = json.load(open(sys.argv[1]))
lines, summary = data["lines"], data["summary"]

def leaves(obj, prefix=""):
    for k, v in obj.items():
        p = prefix + "/" + k if prefix else k
        if isinstance(v, dict):
            yield from leaves(v, p)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield p, v

def field_of(lines):
    for pref in ("accuracy", "score", "period"):
        if any(pref in dict(leaves(l.get("result", {}))) for l in lines):
            return pref
    for l in lines:
        for p, _ in leaves(l.get("result", {})):
            return p
    return None

field = field_of(lines)
fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(summary) + 3), 4.5))
if summary and field:
    labels = []
    for i, g in enumerate(summary):
        key = json.dumps(g["group"], sort_keys=False)
        labels.append(", ".join("%s=%s" % (k.split("/")[-1], v)
                                for k, v in g["group"].items()) or "all")
        vals = [dict(leaves(l["result"])).get(field) for l in lines
                if "result" in l and json.dumps(
                    {k: v for k, v in l["member"].items()
                     if k not in ("index", "seed")}) == key]
        vals = [v for v in vals if v is not None]
        st = g["fields"].get(field)
        if st:
            ax.bar(i, st["mean"], yerr=st["sd"], color="#9ecae1", capsize=3)
        ax.plot([i] * len(vals), vals, "k.", ms=3)
    ax.set_xticks(range(len(summary)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(field + " (bar: mean ± sd, dots: members)")
elif field:
    pts = sorted((l["member"]["index"], dict(leaves(l["result"])).get(field))
                 for l in lines if "result" in l)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], ".", ms=3)
    ax.set_xlabel("member index (generation order)")
    ax.set_ylabel(field)
ax.set_title("dmm sweep: %d members" % len(lines))
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
