#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per cycle of each bench_fields case (plain, placed, modulated,
# identity), counted by callgrind, and issue 14's two ratios in instructions:
# deterministic, where the timed ratios of bench_fields move by tens of
# percent on a shared machine.
#   tests/bench/bench-fields-instructions.sh [BUILD_DIR [CYCLES [N]]]
# BUILD_DIR defaults to build-rel (a release build), CYCLES to 10, N (ring
# neurons) to 1000. Prints a Markdown table and the ratios.
set -euo pipefail
B=${1:-build-rel}
C=${2:-10}
N=${3:-1000}
. "$(dirname "${BASH_SOURCE[0]}")/callgrind-lib.sh"
counts=$(cg_counts bench-fields-instructions "$B" bench_fields --instructions "$C" "$N")
awk -v c="$C" -v n="$N" '
    { ir[$1] = $2 / c }
    END {
        printf "| case (ring of %d tanh) | instructions/cycle |\n", n
        printf "|---|---:|\n"
        split("plain placed modulated identity", k, " ")
        for (i = 1; i <= 4; i++)
            printf "| %s | %.0f |\n", k[i], ir[k[i]]
        pm = (ir["modulated"] - ir["placed"]) / n
        pi = (ir["identity"] - ir["placed"]) / n
        printf "\nplaced / plain: %.4f (target 1)\n", ir["placed"] / ir["plain"]
        printf "modulation per target: %.0f instructions; identity neuron: %.0f; ratio %.2f (target <= 2)\n", pm, pi, pi ? pm / pi : 0
    }' <<<"$counts"
