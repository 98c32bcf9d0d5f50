#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The sweep benchmark: networks/sweeps/bench-40.json (40 members of equal
# cost) on 1 and on 2 MPI ranks, loopback, median of 3 runs each; prints the
# times and the speed-up. Needs a dmm built with MPI (BUILD, default build).
#   tools/bench-sweep.sh [BUILD]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dmm=${1:-build}/runtime/dmm
root=()
[[ $(id -u) -eq 0 ]] && root=(--allow-run-as-root)
t() { # seconds of one run on $1 ranks
    local s e
    s=$(date +%s.%N)
    mpirun --oversubscribe "${root[@]}" -np "$1" "$dmm" sweep networks/sweeps/bench-40.json >/dev/null
    e=$(date +%s.%N)
    awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", e - s }'
}
med() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
one=$(med "$(t 1)" "$(t 1)" "$(t 1)")
two=$(med "$(t 2)" "$(t 2)" "$(t 2)")
awk -v a="$one" -v b="$two" 'BEGIN { printf "bench-sweep: 1 rank %.2f s, 2 ranks %.2f s, speed-up %.2f\n", a, b, a / b }'
