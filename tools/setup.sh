#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian 12 packages dmm needs to build and test, if missing.
# Idempotent and quiet when everything is already there; `apt-get update`
# runs only when something has to be installed. Needs root (or sudo).
set -euo pipefail

packages=(
    gcc libc6-dev meson ninja-build pkg-config python3
    libjansson-dev uthash-dev libuv1-dev libcmocka-dev
    zlib1g-dev # MNIST IDX files are gzipped
    libpng-dev libgif-dev # dmm render: PNG frames, animated GIFs, PNG images
    libopenblas-dev # matmul of dense blocks (cblas_dgemm)
    libwebsockets-dev libwebsockets-evlib-uv # dmm serve --http (lws on libuv)
    clang libclang-rt-14-dev # libFuzzer targets
    python3-matplotlib # the plots of dmm experiment (Debian's /usr/bin/python3)
    libedit-dev # line editing and history in dmm ctl's interactive mode
    python3-numpy # dense values as arrays in the Python module (docs/python.md)
    man-db # tests/test_install.sh reads the installed page with man
    libopenmpi-dev openmpi-bin # dmm sweep over MPI ranks (mpirun), test_sweep
    chromium # tests/browser: the page in a real browser (no browser download)
)
# Node runs the browser test (playwright-core from the npm registry); a
# Node that is already there (with its own npm) is used as it is.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

# The browser test's one npm package, pinned by its lockfile.
browser_deps() {
    local dir=tests/browser
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    [[ -f $dir/package-lock.json ]] || return 0
    if [[ ! -d $dir/node_modules/playwright-core ||
        $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
        echo "setup: npm ci in $dir"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) ||
            { echo "setup: error: npm ci failed in $dir" >&2; exit 1; }
    fi
}

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ $status == ii* ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    browser_deps
    exit 0
fi

echo "setup: installing ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    sudo=(sudo)
else
    echo "setup: error: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get update -q >"$log" 2>&1 ||
    ! "${sudo[@]}" apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "setup: error: apt-get could not install: ${missing[*]}" >&2
    exit 1
fi
browser_deps
echo "setup: done"
