#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Python module (python/dmm.py) over the build tree's libdmm: runs the
Python blocks of docs/python.md in order, in one namespace, then checks what
the page does not show (bad input raises dmm.Error with a located message
and leaves the network as it was; paths with escapes; a bad plugin).
Run by meson with DMM_LIBRARY, PYTHONPATH and the source root set."""
import os
import re
import sys

root = os.environ["DMM_SOURCE_ROOT"]
os.chdir(root)
import dmm  # noqa: E402

failures = 0


def check(name, fn):
    global failures
    try:
        fn()
        print("ok", name)
    except Exception as e:  # report and go on
        failures += 1
        print("FAIL", name, type(e).__name__, e)


def docs():
    text = open(os.path.join(root, "docs", "python.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 6, "docs/python.md lost its examples"
    ns = {}
    for k, b in enumerate(blocks):
        try:
            exec(compile(b, "docs/python.md block %d" % (k + 1), "exec"), ns)
        except Exception:
            print("in docs/python.md block %d:\n%s" % (k + 1, b))
            raise


def bad_input():
    try:
        dmm.Network.from_dict({"dmm": 1, "matrix": {"nosuch": {"n": {"x": {"identity": {"a": {"single": 1}}}}}}})
        raise AssertionError("an unknown type loaded")
    except dmm.Error as e:
        assert "/matrix/nosuch" in str(e) and "unknown neuron type" in str(e), e
    try:
        dmm.Network.load(os.path.join(root, "README.md"))
        raise AssertionError("README loaded as a network")
    except dmm.Error as e:
        assert "README.md:1:1" in str(e), e
    net = dmm.Network.load("networks/accumulator.json")
    net.step(2)
    before = net.outputs()
    for bad in ["a//b", "", "x\\q"]:
        try:
            net.get(bad)
            raise AssertionError("path %r accepted" % bad)
        except dmm.Error:
            pass
    try:
        net.set("accum/sum/single", 1)  # three parts: not a weight
        raise AssertionError("a 3-part path set a weight")
    except dmm.Error as e:
        assert "not a weight" in str(e)
    try:
        net.feed("identity/const", {"single": 1})
        raise AssertionError("fed a non-input neuron")
    except dmm.Error:
        pass
    try:
        net.edit({"accum": {"sum": {"delta": {"identity": {"const": {"single": "x"}}}}}})
        raise AssertionError("a string weight was accepted")
    except dmm.Error:
        pass
    assert net.outputs() == before and net.step_count == 2
    assert dmm.split_path("a\\/b/c") == ["a/b", "c"]
    assert dmm.join_path(["a/b", "c"]) == "a\\/b/c"


def bad_plugin():
    so = os.environ.get("DMM_PLUGIN_BAD_ABI")
    if not so:
        return
    try:
        dmm.Network.load("networks/accumulator.json", plugins=[so])
        raise AssertionError("a plugin of another ABI loaded")
    except dmm.Error as e:
        want = "built for plugin ABI %d" % (dmm.PLUGIN_ABI + 1)
        assert want in str(e), e


check("docs/python.md", docs)
check("bad input", bad_input)
check("bad plugin", bad_plugin)
print("%d failed" % failures)
sys.exit(1 if failures else 0)
