#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the libFuzzer targets with clang (ASan + UBSan, coverage in every
# library) in build-fuzz and run each reader of outside input (network file,
# script, state file, live request) on a temporary copy of its seed corpus:
# by default a bounded CI run (SECONDS in all, 60 unless given: the network
# reader 45 s, the others sharing the rest), with --long each target for
# PER_TARGET seconds (3600 unless given). Exits non-zero on a crash or hang;
# the input is kept in build-fuzz/fuzz-artifacts/, and each target's final
# statistics (executions, coverage) are printed.
# Usage: tools/fuzz.sh [SECONDS] | tools/fuzz.sh --long [PER_TARGET]
set -eu
cd "$(dirname "$0")/.."
B=build-fuzz
LONG=
if [ "${1:-}" = "--long" ]; then
  LONG=${2:-3600}
fi
SECS=${1:-60}
[ -n "$LONG" ] && SECS=60
# One input may take this long before it counts as a hang. A long run is
# often started niced beside other work, where a starved process can sit
# for seconds on a trivial input (seen: 11 s on a 2-byte input that runs
# in 7 ms alone), so it allows more.
UNIT_TIMEOUT=10
[ -n "$LONG" ] && UNIT_TIMEOUT=60
if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz.sh: clang not found" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
set -- -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
  "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all"
if [ -f "$B/build.ninja" ]; then
  meson setup --reconfigure "$B" "$@" >"$tmp/setup.log" 2>&1 || {
    cat "$tmp/setup.log" >&2; exit 1; }
else
  CC=clang meson setup "$B" "$@" >"$tmp/setup.log" 2>&1 || {
    cat "$tmp/setup.log" >&2; exit 1; }
fi
ninja -C "$B" -j2 tests/fuzz/fuzz_net_load tests/fuzz/fuzz_script \
  tests/fuzz/fuzz_state tests/fuzz/fuzz_request tests/fuzz/fuzz_render \
  tests/fuzz/fuzz_web

mkdir -p "$B/fuzz-artifacts"
# The network reader gets most of the time; the smaller readers share the rest.
for spec in "fuzz_net_load:corpus:$((SECS * 3 / 4))" \
  "fuzz_script:script-corpus:$((SECS / 4 + 1))" \
  "fuzz_state:state-corpus:$((SECS / 6 + 1))" \
  "fuzz_request:request-corpus:$((SECS / 3 + 1))" \
  "fuzz_render:render-corpus:$((SECS / 4 + 1))" \
  "fuzz_web:web-corpus:$((SECS / 6 + 1))"; do
  target=${spec%%:*}
  rest=${spec#*:}
  corpus=${rest%%:*}
  secs=${rest#*:}
  [ -n "$LONG" ] && secs=$LONG
  mkdir "$tmp/$target"
  cp "tests/fuzz/$corpus"/* "$tmp/$target/"
  echo "fuzz.sh: running $target for $secs s"
  "$B/tests/fuzz/$target" -max_total_time="$secs" -timeout="$UNIT_TIMEOUT" \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$B/fuzz-artifacts/$target-" "$tmp/$target" \
    2>"$tmp/$target.log" || {
    tail -n 60 "$tmp/$target.log" >&2
    echo "fuzz.sh: $target found a crash (input in $B/fuzz-artifacts/)" >&2
    exit 1
  }
  grep -E '^stat::number_of_executed_units' "$tmp/$target.log" || true
  grep -E '^#[0-9]+.*(DONE|pulse|NEW)' "$tmp/$target.log" | tail -n 1 || true
done
echo "fuzz.sh: no crash"
