# SPDX-License-Identifier: MIT
# Sourced by the tests/bench/*-instructions.sh scripts: runs a bench program
# under callgrind and prints what each of its measured parts cost.
#   cg_counts SCRIPT BUILD_DIR PROGRAM ARGS...
# runs BUILD_DIR/tests/bench/PROGRAM ARGS with collection off at the start
# (the program switches it on around each part and dumps the part with a
# description) and prints one line a dump: "DESCRIPTION INSTRUCTIONS".
# On failure it prints the program's output (or what is missing, named after
# SCRIPT) to stderr and exits 1 (call it in $(...), so that its temporary
# directory goes when it returns).
cg_counts() {
    local who=$1 b=$2 exe=$2/tests/bench/$3
    shift 3
    [[ -x $exe ]] || { echo "$who: no $exe (ninja -C $b first)" >&2; exit 1; }
    cg_dir=$(mktemp -d) # global: the trap runs after the function returned
    trap 'rm -rf "$cg_dir"' EXIT
    if ! valgrind --tool=callgrind --collect-atstart=no \
        --callgrind-out-file="$cg_dir/cg.out" "$exe" "$@" \
        >"$cg_dir/log" 2>&1; then
        cat "$cg_dir/log" >&2
        exit 1
    fi
    local f what tot
    for f in "$cg_dir"/cg.out.*; do
        what=$(sed -n 's/^desc: Trigger: Client Request: //p' "$f")
        tot=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p; s/^summary: *\([0-9]*\).*/\1/p' "$f" | head -1)
        echo "$what $tot"
    done
}
