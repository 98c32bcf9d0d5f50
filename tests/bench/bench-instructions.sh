#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per cycle of each bench_net case and of its baseline, counted
# by callgrind: deterministic, so a change can be judged on a shared, noisy
# machine where the timed ratios move by tens of percent.
#   tests/bench/bench-instructions.sh [BUILD_DIR [CYCLES [case...]]]
# BUILD_DIR defaults to build-rel (a release build), CYCLES to 20; cases as
# for bench_net (name prefixes; default: all but rnn-10000-100, threads, soak
# and load-1M). Prints a Markdown table; with CG_CACHE=1 (callgrind-lib.sh)
# also the first-level data cache misses a cycle, engine and baseline.
set -euo pipefail
B=${1:-build-rel}
N=${2:-20}
shift $(($# < 2 ? $# : 2))
. "$(dirname "${BASH_SOURCE[0]}")/callgrind-lib.sh"
counts=$(cg_counts bench-instructions "$B" bench_net --instructions "$N" "$@")
awk -v n="$N" -v cache="${CG_CACHE:-0}" '
    { key = $1; ir[key, $2] = $3 / n; dm[key, $2] = ($4 + $5) / n
      if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
    END {
        printf "| case | engine instructions/cycle | baseline instructions/cycle | ratio | engine - baseline |"
        printf cache == 1 ? " engine D1 misses/cycle | baseline D1 misses/cycle |\n" : "\n"
        printf "|---|---:|---:|---:|---:|%s\n", cache == 1 ? "---:|---:|" : ""
        for (i = 1; i <= k; i++) {
            c = order[i]; e = ir[c, "engine"]; b = ir[c, "baseline"]
            printf "| %s | %.0f | %.0f | %.2f | %.0f |", c, e, b, b ? e / b : 0, e - b
            if (cache == 1)
                printf " %.0f | %.0f |", dm[c, "engine"], dm[c, "baseline"]
            printf "\n"
        }
    }' <<<"$counts"
