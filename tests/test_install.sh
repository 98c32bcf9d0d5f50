#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `meson install --destdir STAGE`, then use what was installed as a person
# would, from outside the tree: build examples/embed.c against libdmm with
# pkg-config (shared and static) and compare its output with the in-tree
# build's; check the exported symbols, `man dmm`, the bash completion, and
# `dmm experiment hysteresis --plot` from an empty folder, which must find
# the installed network and plot script (not the source tree's).
# Usage (from tests/meson.build): test_install.sh BUILD SRC PREFIX LIBDIR
#   CC IN_TREE_EMBED [SANITIZE_FLAGS...]
set -euo pipefail
build=$1 src=$2 prefix=$3 libdir=$4 cc=$5 intree=$6
shift 6
san=("$@")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }
step() { echo "test_install: $*"; }

[[ $libdir = /* ]] || libdir=$prefix/$libdir
root=$stage$prefix
lib=$stage$libdir

step "meson install --destdir $stage"
meson install -C "$build" --destdir "$stage" --no-rebuild --quiet

export PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_PATH=$lib/pkgconfig
pkg-config --exists dmm || fail "pkg-config does not find dmm in the stage"
cflags=$(pkg-config --cflags dmm)
[[ $cflags == *"$stage"* ]] || fail "cflags do not point into the stage: $cflags"

net=$root/share/dmm/networks/accumulator.json
[[ -f $net ]] || fail "no installed networks/accumulator.json"
want=$("$intree" "$net")
[[ -n $want ]] || fail "the in-tree embed printed nothing"

step "shared: cc embed.c \$(pkg-config --cflags --libs dmm)"
# shellcheck disable=SC2046
"$cc" "${san[@]}" -o "$stage/embed" "$src/examples/embed.c" \
    $(pkg-config --cflags --libs dmm)
got=$(LD_LIBRARY_PATH=$lib "$stage/embed" "$net")
[[ $got == "$want" ]] || fail "shared embed printed '$got', in-tree '$want'"
deps=$(LD_LIBRARY_PATH=$lib ldd "$stage/embed")
grep -qF "$lib/libdmm.so.0" <<<"$deps" ||
    fail "embed is not linked to the staged libdmm.so.0"

step "static: cc embed.c libdmm.a \$(pkg-config --static --libs dmm)"
# shellcheck disable=SC2046
"$cc" "${san[@]}" -o "$stage/embed-static" "$src/examples/embed.c" $cflags \
    "$lib/libdmm.a" $(pkg-config --static --libs dmm | sed 's/-ldmm//')
got=$("$stage/embed-static" "$net")
[[ $got == "$want" ]] || fail "static embed printed '$got', in-tree '$want'"

step "libdmm.so exports the public API only"
syms=$(nm -D --defined-only "$lib/libdmm.so.0" | awk '{print $3}' | sed 's/@.*//')
grep -qx dmm_net_load_file <<<"$syms" || fail "dmm_net_load_file not exported"
grep -qx vv_add <<<"$syms" || fail "vv_add not exported"
if grep -E '^(vv|dmm)__' <<<"$syms"; then fail "internal symbols exported"; fi

step "man dmm"
command -v man >/dev/null || fail "man is not installed (tools/setup.sh installs man-db)"
page=$(MANPATH=$root/share/man MANWIDTH=100 man -P cat dmm 2>/dev/null)
for w in "dmm run" "dmm serve" "dmm experiment" "EXIT STATUS"; do
    grep -qF -- "$w" <<<"$page" || fail "man dmm does not show '$w'"
done

step "bash completion"
comp=$root/share/bash-completion/completions/dmm
got=$(bash -c "source '$comp'; COMP_WORDS=(dmm ser); COMP_CWORD=1; _dmm;
    echo \${COMPREPLY[*]}")
[[ $got == serve ]] || fail "completing 'dmm ser' gave '$got'"
got=$(bash -c "source '$comp'; COMP_WORDS=(dmm run --thr); COMP_CWORD=2; _dmm;
    echo \${COMPREPLY[*]}")
[[ $got == --threads ]] || fail "completing 'dmm run --thr' gave '$got'"

step "dmm experiment hysteresis --plot from an empty folder"
mkdir "$stage/empty"
out=$(cd "$stage/empty" && "$root/bin/dmm" experiment hysteresis --plot h.png)
grep -qF "\"network\": \"$root/bin/../share/dmm/networks/hysteresis.json\"" \
    <<<"$out" || fail "did not use the installed network: $out"
[[ $(head -c 8 "$stage/empty/h.png" | od -An -tx1 | tr -d ' \n') == \
    89504e470d0a1a0a ]] || fail "h.png is not a PNG"
echo "test_install: ok"
