# SPDX-License-Identifier: MIT
"""dmm for Python: dataflow matrix machines over the installed libdmm.

A thin ctypes layer (no build step) over libdmm.so's public C API. Values
cross the boundary as JSON text in canonical form, so a V-value is a Python
number or a dict of them; get_array() gives a dense NumPy array when NumPy is
installed. Paths are the command line's: labels joined by "/", a "/" or "\\"
inside a label written "\\/" or "\\\\".

    import dmm
    net = dmm.Network.load("networks/accumulator.json")
    net.step(3)
    net.get("accum/sum/single")             # {'apples': 3, 'pears': 1.5}

The library is found through $DMM_LIBRARY (a path), else as "libdmm.so.0" on
the system's library path. Errors raise dmm.Error with the library's located
message ("file:line:column: /json/path: message").
"""

import ctypes
import ctypes.util
import json
import os

__all__ = ["Error", "Network", "split_path", "join_path", "PLUGIN_ABI"]

PLUGIN_ABI = 3  # DMM_PLUGIN_ABI of dmm_neuron.h this module speaks


class Error(Exception):
    """A refusal of the library: bad file, network, path, edit or value."""


class _VV(ctypes.Structure):
    _fields_ = [("num", ctypes.c_double), ("map", ctypes.c_void_p)]


class _Err(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_int),
        ("line", ctypes.c_int),
        ("column", ctypes.c_int),
        ("source", ctypes.c_char * 256),
        ("path", ctypes.c_char * 512),
        ("text", ctypes.c_char * 512),
    ]


class _Buf(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("len", ctypes.c_size_t),
        ("cap", ctypes.c_size_t),
    ]


class _Plugin(ctypes.Structure):
    _fields_ = [
        ("abi", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("register_types", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)),
    ]


_lib = None


def _library():
    global _lib
    if _lib is not None:
        return _lib
    name = os.environ.get("DMM_LIBRARY") or "libdmm.so.0"
    try:
        # RTLD_GLOBAL: plugins resolve their vv_/dmm_ calls against it.
        lib = ctypes.CDLL(name, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise Error(
            "cannot load libdmm (%s): install dmm, or set DMM_LIBRARY to "
            "the path of libdmm.so" % e
        ) from None
    P, I, S, D = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_char_p
    E = ctypes.POINTER(_Err)
    sig = {
        "vv_ctx_new": (P, [P]),
        "vv_ctx_free": (None, [P]),
        "vv_free": (None, [P, _VV]),
        "vv_parse": (I, [P, D, S, D, ctypes.POINTER(_VV), E]),
        "vv_write": (I, [P, _VV, ctypes.POINTER(_Buf)]),
        "vv_intern_cstr": (I, [P, D, ctypes.POINTER(ctypes.c_uint32)]),
        "dmm_registry_new": (P, [P]),
        "dmm_registry_free": (None, [P]),
        "dmm_registry_add_builtins": (I, [P]),
        "dmm_net_load_text": (I, [P, P, D, S, D, ctypes.POINTER(P), E]),
        "dmm_net_restore_text": (I, [P, P, D, S, D, ctypes.POINTER(P), E]),
        "dmm_net_free": (None, [P]),
        "dmm_net_step": (I, [P, E]),
        "dmm_net_step_count": (ctypes.c_uint64, [P]),
        "dmm_net_outputs_build": (I, [P, E]),
        "dmm_net_outputs": (_VV, [P]),
        "dmm_net_matrix": (_VV, [P]),
        "dmm_net_edit": (I, [P, _VV, E]),
        "dmm_net_feed": (I, [P, ctypes.c_uint32, _VV, E]),
        "dmm_net_save_buf": (I, [P, ctypes.POINTER(_Buf)]),
        "dmm_net_save_file": (I, [P, D, E]),
        "dmm_net_self": (None, [P, ctypes.POINTER(ctypes.c_uint32)]),
        "vv_label_str": (ctypes.c_void_p, [P, ctypes.c_uint32, ctypes.POINTER(S)]),
        "dmm_strerror": (D, [I]),
    }
    for fname, (res, args) in sig.items():
        f = getattr(lib, fname)
        f.restype = res
        f.argtypes = args
    _lib = lib
    return lib


def _libc_free(p):
    ctypes.CDLL(None).free(ctypes.c_void_p(p))


def _raise(rc, err=None, what=""):
    lib = _library()
    if err is not None and err.text:
        parts = []
        if err.source:
            loc = err.source.decode()
            if err.line > 0:
                loc += ":%d" % err.line
                if err.column > 0:
                    loc += ":%d" % err.column
            parts.append(loc)
        if err.path:
            parts.append(err.path.decode())
        parts.append(err.text.decode())
        raise Error(": ".join(parts))
    raise Error("%s%s" % (what + ": " if what else "", lib.dmm_strerror(rc).decode()))


def split_path(path):
    """The labels of a path text: "a\\/b/c" is ["a/b", "c"]."""
    if not isinstance(path, str) or not path:
        raise Error("a path is a non-empty string of labels joined by '/'")
    parts, cur, i = [], [], 0
    while i < len(path):
        c = path[i]
        if c == "\\":
            if i + 1 >= len(path) or path[i + 1] not in "/\\":
                raise Error('path "%s": a backslash must escape "/" or "\\"' % path)
            cur.append(path[i + 1])
            i += 2
            continue
        if c == "/":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    if any(p == "" for p in parts):
        raise Error('path "%s": empty part' % path)
    return parts


def join_path(labels):
    """The path text of a list of labels (the inverse of split_path)."""
    return "/".join(l.replace("\\", "\\\\").replace("/", "\\/") for l in labels)


def _nest(labels, value):
    for l in reversed(labels):
        value = {l: value}
    return value


def _lookup(tree, labels):
    for l in labels:
        if not isinstance(tree, dict) or l not in tree:
            return None
        tree = tree[l]
    return tree


class Network:
    """A running network: its outputs, matrix W, edits, feeds and state."""

    def __init__(self, text, source="<string>", state=False, plugins=()):
        lib = _library()
        self._lib = lib
        self._vc = lib.vv_ctx_new(None)
        self._reg = lib.dmm_registry_new(self._vc) if self._vc else None
        self._net = None
        self._plugins = []
        if not self._reg or lib.dmm_registry_add_builtins(self._reg) < 0:
            self.close()
            raise Error("cannot set up the neuron registry")
        try:
            for p in plugins:
                self._load_plugin(p)
        except Error:
            self.close()
            raise
        data = text.encode() if isinstance(text, str) else bytes(text)
        net = ctypes.c_void_p()
        err = _Err()
        load = lib.dmm_net_restore_text if state else lib.dmm_net_load_text
        rc = load(self._vc, self._reg, data, len(data), source.encode(),
                  ctypes.byref(net), ctypes.byref(err))
        if rc < 0:
            self.close()
            _raise(rc, err)
        self._net = net

    @classmethod
    def load(cls, filename, plugins=()):
        """A network description (docs/network-format.md) or a state file
        written by save(); plugins are neuron-type plugins to load first."""
        with open(filename, "rb") as f:
            data = f.read()
        try:
            is_state = "dmm-state" in json.loads(data)
        except ValueError:
            is_state = False  # the library reports where the JSON is bad
        return cls(data, source=str(filename), state=is_state, plugins=plugins)

    @classmethod
    def from_dict(cls, description, plugins=()):
        """A network from its description as a Python dict."""
        return cls(json.dumps(description), source="<dict>", plugins=plugins)

    def _load_plugin(self, filename):
        try:
            so = ctypes.CDLL(os.path.abspath(filename), mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise Error("plugin %s: cannot load: %s" % (filename, e)) from None
        try:
            entry = _Plugin.in_dll(so, "dmm_plugin_entry")
        except ValueError:
            raise Error("plugin %s: not a dmm plugin (no dmm_plugin_entry)"
                        % filename) from None
        if entry.abi != PLUGIN_ABI:
            raise Error("plugin %s: built for plugin ABI %d, this module "
                        "speaks ABI %d" % (filename, entry.abi, PLUGIN_ABI))
        rc = entry.register_types(self._reg)
        if rc < 0:
            _raise(rc, None, "plugin %s: registering its types" % filename)
        self._plugins.append(so)

    def close(self):
        """Free the network now (also done when it is garbage-collected)."""
        lib = getattr(self, "_lib", None)
        if lib is None:
            return
        if getattr(self, "_net", None):
            lib.dmm_net_free(self._net)
            self._net = None
        if getattr(self, "_reg", None):
            lib.dmm_registry_free(self._reg)
            self._reg = None
        if getattr(self, "_vc", None):
            lib.vv_ctx_free(self._vc)
            self._vc = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_open(self):
        if not self._net:
            raise Error("the network is closed")

    # ---- values ----------------------------------------------------------

    def _text(self, v):
        buf = _Buf()
        rc = self._lib.vv_write(self._vc, v, ctypes.byref(buf))
        try:
            if rc < 0:
                _raise(rc)
            return ctypes.string_at(buf.data, buf.len).decode()
        finally:
            if buf.data:
                _libc_free(buf.data)

    def _parse(self, value, what):
        text = json.dumps(value).encode()
        v = _VV()
        err = _Err()
        rc = self._lib.vv_parse(self._vc, text, len(text), what.encode(),
                                ctypes.byref(v), ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
        return v

    @property
    def step_count(self):
        """t: the number of cycles run (outputs are Y_t)."""
        self._check_open()
        return int(self._lib.dmm_net_step_count(self._net))

    def outputs(self):
        """Y_t as a dict, Self's output (the matrix W) included."""
        self._check_open()
        err = _Err()
        rc = self._lib.dmm_net_outputs_build(self._net, ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
        return json.loads(self._text(self._lib.dmm_net_outputs(self._net)))

    def matrix(self):
        """W_t as a dict, six levels deep."""
        self._check_open()
        return json.loads(self._text(self._lib.dmm_net_matrix(self._net)))

    def _self_prefix(self):
        ids = (ctypes.c_uint32 * 3)()
        self._lib.dmm_net_self(self._net, ids)
        out = []
        for l in ids:
            n = ctypes.c_size_t()
            p = self._lib.vv_label_str(self._vc, l, ctypes.byref(n))
            out.append(ctypes.string_at(p, n.value).decode())
        return out

    def _weight_labels(self, path):
        """The six labels of a weight, from either of its two names: the
        six-part W path, or the same prefixed by Self's output path
        (accum/self/single/...), which is how get() reaches it."""
        labels = split_path(path)
        pre = self._self_prefix()
        if len(labels) == 9 and labels[:3] == pre:
            labels = labels[3:]
        if len(labels) != 6:
            raise Error('"%s" is not a weight: expected type/name/input/'
                        'type/name/output (6 parts), optionally after %s/'
                        % (path, join_path(pre)))
        return labels

    def get(self, path):
        """The value at path in the outputs: a number or a dict. A weight
        is reached through Self's output, accum/self/single/ + its six
        parts, the same string set() takes. Raises Error when nothing is
        stored under path (a mistyped path, or a zero)."""
        self._check_open()
        labels = split_path(path)
        v = _lookup(self.outputs(), labels)
        if v is None:
            raise Error('nothing is stored under "%s"' % path)
        return v

    def get_array(self, path, shape=None):
        """The value at path as a dense NumPy array: a map with labels 0,
        1, ... (nested for more dimensions), absent entries 0. shape is
        taken from the largest index unless given. Needs NumPy."""
        import numpy as np

        v = self.get(path) if path else self.outputs()

        def indices(x, depth):
            if not isinstance(x, dict):
                return [()]
            out = []
            for k, c in x.items():
                if not k.isdigit():
                    raise Error('"%s": label "%s" is not an index' % (path, k))
                out += [(int(k),) + r for r in indices(c, depth + 1)]
            return out

        idx = [i for i in indices(v, 0) if i]
        if shape is None:
            ndim = max(len(i) for i in idx)
            shape = tuple(max(i[d] for i in idx if len(i) > d) + 1 for d in range(ndim))
        a = np.zeros(shape)
        for i in idx:
            x = _lookup(v, [str(j) for j in i])
            if isinstance(x, dict):
                x = x.get(":number", 0.0)
            a[i] = x
        return a

    def weight(self, path):
        """The weight at a W path (6 parts, or with Self's prefix); 0 when
        absent, as a weight that is not stored is zero."""
        self._check_open()
        v = _lookup(self.matrix(), self._weight_labels(path))
        if isinstance(v, dict):
            raise Error('"%s" names more than one weight' % path)
        return 0.0 if v is None else v

    # ---- changes ---------------------------------------------------------

    def step(self, n=1):
        """Run n cycles; returns the outputs after the last one."""
        self._check_open()
        err = _Err()
        for _ in range(int(n)):
            rc = self._lib.dmm_net_step(self._net, ctypes.byref(err))
            if rc < 0:
                _raise(rc, err)
        return self.outputs()

    def edit(self, delta):
        """Add a W fragment (a six-level dict) before the next cycle; a
        refused edit leaves the network as it was."""
        self._check_open()
        v = self._parse(delta, "edit")
        err = _Err()
        rc = self._lib.dmm_net_edit(self._net, v, ctypes.byref(err))
        self._lib.vv_free(self._vc, v)
        if rc < 0:
            _raise(rc, err)

    def set(self, path, value):
        """Set the weight at path (see weight()) to value."""
        labels = self._weight_labels(path)
        old = self.weight(path)
        if value != old:
            self.edit(_nest(labels, float(value) - old))

    def feed(self, neuron, outputs):
        """Queue an output map for the input neuron "input/NAME"."""
        self._check_open()
        labels = split_path(neuron)
        if len(labels) != 2 or labels[0] != "input":
            raise Error('"%s" is not an input neuron (feed takes "input/NAME")'
                        % neuron)
        name = ctypes.c_uint32()
        rc = self._lib.vv_intern_cstr(self._vc, labels[1].encode(), ctypes.byref(name))
        if rc < 0:
            _raise(rc)
        v = self._parse(outputs, "feed")
        err = _Err()
        rc = self._lib.dmm_net_feed(self._net, name, v, ctypes.byref(err))
        self._lib.vv_free(self._vc, v)
        if rc < 0:
            _raise(rc, err)

    def save(self, filename):
        """Write the whole state (atomic); Network.load reads it back."""
        self._check_open()
        err = _Err()
        rc = self._lib.dmm_net_save_file(self._net, os.fsencode(filename),
                                         ctypes.byref(err))
        if rc < 0:
            _raise(rc, err)
