#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The one example command: install what is missing, build the dmm command in
# a release build (build/), and run the bundled self-modifying wave network
# for 12 cycles, printing for every cycle which neuron holds the wave. Extra
# arguments go to `dmm run`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=build

bash tools/setup.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [[ ! -f $B/meson-private/coredata.dat ]]; then
    meson setup "$B" --buildtype=release >"$log" 2>&1 || {
        cat "$log" >&2
        exit 1
    }
fi
ninja -C "$B" -j2 runtime/dmm >"$log" 2>&1 || {
    cat "$log" >&2
    echo "example: build failed" >&2
    exit 1
}

# At a glance: which update neuron feeds Self's delta (holds the wave) in
# each cycle, one "STEP PATH VALUE" line per cycle.
sel=accum/self/single/accum/self/delta/identity
echo "\$ build/runtime/dmm run networks/wave.json --steps 12 --trace --format flat --select $sel${*:+ $*}"
"$B/runtime/dmm" run networks/wave.json --steps 12 --trace --format flat \
    --select "$sel" "$@"
echo
echo "# every output, W included, is one flag away:"
echo "#   build/runtime/dmm run networks/wave.json --steps 12 --trace --self"
