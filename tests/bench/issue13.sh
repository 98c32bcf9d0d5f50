#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every measure of issue 13 (performance) from one run, so that the table in
# docs/performance.md comes from one place and one moment of the machine:
#   tests/bench/issue13.sh [BUILD_DIR]
# BUILD_DIR: a release build (default build-rel). Takes about 15 minutes,
# most of it callgrind. The timed cases print their own same-run baselines;
# the counted ones (callgrind) are deterministic, for a noisy machine.
set -euo pipefail
B=${1:-build-rel}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export DMM_SOURCE_ROOT=$root
: "${DMM_MNIST_DIR:=$root/../shared/data/mnist}"
export DMM_MNIST_DIR
for exe in bench_net bench_interference_net; do
    [[ -x $B/tests/bench/$exe ]] || {
        echo "issue13.sh: no $B/tests/bench/$exe (ninja -C $B first)" >&2
        exit 1
    }
done

echo "## issue 13, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$root" rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "### timed (release build; ratios against baselines timed in the same run)"
echo
"$B/tests/bench/bench_net" accum-100-100 accum-1000-10 accum-10-1000 \
    accum-dense-256 selfmod threads load-1M
echo
"$B/tests/bench/bench_interference_net"
echo
echo "### counted (callgrind: instructions and first-level data cache misses a cycle)"
echo
CG_CACHE=1 bash "$here/bench-instructions.sh" "$B" 20 accum selfmod rnn-1000
echo
# One test image of the interference network: the difference between 10 and
# 5 test digits a class is 20 test images (whatever the cycles an image:
# learners that take whole episodes get one a cycle). The native part is its
# whole run, over its 3920 test images.
. "$here/callgrind-lib.sh"
declare -A net
native=0
for per in 5 10; do
    while read -r what ir; do
        [[ $what == network ]] && net[$per]=$ir
        [[ $what == native ]] && native=$ir
    done < <(cg_counts issue13 "$B" bench_interference_net --instructions "$per")
done
img=$(((net[10] - net[5]) / 20))
nat=$((native / 3920))
echo "interference network, one test image: $img instructions; native $nat; ratio $(awk -v a="$img" -v b="$nat" 'BEGIN { printf "%.2f", a / b }')"
