# SPDX-License-Identifier: MIT
# Sourced by the tests/bench/*-instructions.sh scripts: runs a bench program
# under callgrind and prints what each of its measured parts cost.
#   cg_counts SCRIPT BUILD_DIR PROGRAM ARGS...
# runs BUILD_DIR/tests/bench/PROGRAM ARGS with collection off at the start
# (the program switches it on around each part and dumps the part with a
# description) and prints one line a dump: "DESCRIPTION INSTRUCTIONS".
# With CG_CACHE=1 callgrind also simulates the caches and each line gets two
# more numbers, the first-level data cache's read and write misses: a
# deterministic view of what instruction counts miss (a walk over memory that
# rep movsb or the data's size makes cheap in instructions).
# On failure it prints the program's output (or what is missing, named after
# SCRIPT) to stderr and exits 1 (call it in $(...), so that its temporary
# directory goes when it returns).
cg_counts() {
    local who=$1 b=$2 exe=$2/tests/bench/$3
    shift 3
    [[ -x $exe ]] || { echo "$who: no $exe (ninja -C $b first)" >&2; exit 1; }
    cg_dir=$(mktemp -d) # global: the trap runs after the function returned
    trap 'rm -rf "$cg_dir"' EXIT
    local cache=()
    [[ ${CG_CACHE:-0} == 1 ]] && cache=(--cache-sim=yes)
    if ! valgrind --tool=callgrind --collect-atstart=no "${cache[@]}" \
        --callgrind-out-file="$cg_dir/cg.out" "$exe" "$@" \
        >"$cg_dir/log" 2>&1; then
        cat "$cg_dir/log" >&2
        exit 1
    fi
    local f what tot
    for f in "$cg_dir"/cg.out.*; do
        what=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
        if [[ ${CG_CACHE:-0} == 1 ]]; then # Ir Dr Dw I1mr D1mr D1mw ...
            tot=$(awk '/^(totals|summary):/ { print $2, $6 + 0, $7 + 0; exit }' "$f")
        else
            tot=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p; s/^summary: *\([0-9]*\).*/\1/p' "$f" | head -1)
        fi
        echo "$what $tot"
    done
}
