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
exe=$B/tests/bench/bench_fields
[[ -x $exe ]] || { echo "bench-fields-instructions: no $exe (ninja -C $B first)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if ! valgrind --tool=callgrind --collect-atstart=no \
    --callgrind-out-file="$dir/cg.out" "$exe" --instructions "$C" "$N" \
    >"$dir/log" 2>&1; then
    cat "$dir/log" >&2
    exit 1
fi
for f in "$dir"/cg.out.*; do
    what=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
    tot=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p; s/^summary: *\([0-9]*\).*/\1/p' "$f" | head -1)
    echo "$what $tot"
done | awk -v c="$C" -v n="$N" '
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
    }'
