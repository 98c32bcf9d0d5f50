#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per cycle of each bench_net case and of its baseline, counted
# by callgrind: deterministic, so a change can be judged on a shared, noisy
# machine where the timed ratios move by tens of percent.
#   tests/bench/bench-instructions.sh [BUILD_DIR [CYCLES [case...]]]
# BUILD_DIR defaults to build-rel (a release build), CYCLES to 20; cases as
# for bench_net (name prefixes; default: all but rnn-10000-100, threads, soak
# and load-1M). Prints a Markdown table.
set -euo pipefail
B=${1:-build-rel}
N=${2:-20}
shift $(($# < 2 ? $# : 2))
. "$(dirname "${BASH_SOURCE[0]}")/callgrind-lib.sh"
counts=$(cg_counts bench-instructions "$B" bench_net --instructions "$N" "$@")
awk -v n="$N" '
    { key = $1; ir[key, $2] = $3 / n; if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
    END {
        printf "| case | engine instructions/cycle | baseline instructions/cycle | ratio | engine - baseline |\n"
        printf "|---|---:|---:|---:|---:|\n"
        for (i = 1; i <= k; i++) {
            c = order[i]; e = ir[c, "engine"]; b = ir[c, "baseline"]
            printf "| %s | %.0f | %.0f | %.2f | %.0f |\n", c, e, b, b ? e / b : 0, e - b
        }
    }' <<<"$counts"
