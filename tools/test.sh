#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The one test command: install what is missing, build everything under
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/, run every
# meson test (cmocka summaries shown), then the fuzz smoke run if there is one.
# Ends with one line "N passed, M failed" for meson's tests; exit 0 only when
# everything passed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=build-asan

bash tools/setup.sh || {
    echo "test: setup failed" >&2
    exit 1
}

export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

opts=(--buildtype=debugoptimized -Db_sanitize=address,undefined
    -Dc_args=-fno-sanitize-recover=all -Dc_link_args=-fno-sanitize-recover=all)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [[ -f $B/meson-private/coredata.dat ]]; then
    setup=(meson setup --reconfigure "$B" "${opts[@]}")
else
    setup=(meson setup "$B" "${opts[@]}")
fi
if ! "${setup[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    echo "test: meson setup failed" >&2
    exit 1
fi

if ! ninja -C "$B" -j2; then
    echo "test: build failed" >&2
    exit 1
fi

# -v streams each program's output, so cmocka's per-program summary lines
# ("[  PASSED  ] n test(s).") are in the log that CI reads.
meson test -C "$B" --print-errorlogs -v
meson_rc=$?

fuzz_rc=0
if [[ -f tools/fuzz.sh ]]; then
    echo "test: running tools/fuzz.sh"
    bash tools/fuzz.sh
    fuzz_rc=$?
    if [[ $fuzz_rc -ne 0 ]]; then
        echo "test: tools/fuzz.sh FAILED (exit $fuzz_rc)"
    else
        echo "test: tools/fuzz.sh passed"
    fi
fi

# Count meson's results from its machine-readable log.
counts=$(python3 - "$B/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = 0
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        ok += 1
    elif r != "SKIP":
        bad += 1
print(ok, bad)
PY
) || counts="0 1"
read -r passed failed <<<"$counts"
if [[ $meson_rc -ne 0 && $failed -eq 0 ]]; then
    failed=1 # meson failed without a failing test (e.g. a timeout in setup)
fi

echo "$passed passed, $failed failed"
[[ $meson_rc -eq 0 && $fuzz_rc -eq 0 && $failed -eq 0 ]]
