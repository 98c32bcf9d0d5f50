#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Make a validation copy of MNIST for selecting configurations without
# touching the test set: OUT/train-* are training images 0..44999 and
# OUT/t10k-* are training images 45000..59999 (about 1500 of each digit,
# more than the 980 per class the few-shot test reads). dmm experiment
# mnist-fewshot --data OUT then picks its shots from training images
# 5000..44999 and tests on images it never reports on.
#   tools/mnist-validation.py data/mnist data/mnist-validation
import gzip, os, struct, sys

def read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()

def find(d, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    sys.exit("mnist-validation: no %s in %s" % (stem, d))

def write(path, header, body):
    with gzip.open(path, "wb") as f:
        f.write(header + body)

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
img = read(find(src, "train-images-idx3-ubyte"))
lab = read(find(src, "train-labels-idx1-ubyte"))
magic, n, rows, cols = struct.unpack(">IIII", img[:16])
assert magic == 0x803 and struct.unpack(">II", lab[:8]) == (0x801, n)
cut, size = 45000, rows * cols
for prefix, lo, hi in (("train", 0, cut), ("t10k", cut, n)):
    write(os.path.join(out, prefix + "-images-idx3-ubyte.gz"),
          struct.pack(">IIII", 0x803, hi - lo, rows, cols),
          img[16 + lo * size:16 + hi * size])
    write(os.path.join(out, prefix + "-labels-idx1-ubyte.gz"),
          struct.pack(">II", 0x801, hi - lo), lab[8 + lo:8 + hi])
print("mnist-validation: %s: train 0..%d, test %d..%d" % (out, cut - 1, cut, n - 1))
