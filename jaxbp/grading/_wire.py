"""What crosses between the grader and the grading worker: JSON trees and ``.npz`` arrays.

A case's arguments go to the worker as a JSON tree (tuples, lists, dicts, numbers,
strings) whose arrays travel in an ``.npz`` file; the learner's outputs come back the
same way. Nothing is pickled: the grader reads plain arrays (``allow_pickle=False``)
and rebuilds plain containers, and whatever else the learner returned arrives as a
description (:class:`Opaque`), never as an object.
"""

from __future__ import annotations

import collections
import io

import numpy as np



class Opaque:
    """A leaf of the learner's output that is not an array: only its description."""

    def __init__(self, what: str):
        self.what = str(what)[:100]

    def __repr__(self):
        return f"<{self.what}>"


def encode_args(args, arrays: dict):
    """A case's arguments as JSON, their arrays added to ``arrays``."""
    from jaxbp.grading.spec import LayerStandIns  # here: importing _wire imports no JAX

    def go(v):
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, LayerStandIns):
            out = []
            for s in v.layers:
                out.append({"name": s.name, "m": add(s.m), "token": add(s.token),
                            "params": go(s.params), "dy_shape": list(s.dy_shape),
                            "dx_shape": list(s.dx_shape)})
            return {"layers": out, "single": v.single}
        if isinstance(v, tuple) and not hasattr(v, "_fields"):
            return {"tuple": [go(x) for x in v]}
        if isinstance(v, list):
            return {"list": [go(x) for x in v]}
        if isinstance(v, dict):
            return {"dict": [[go(k), go(x)] for k, x in v.items()]}
        if hasattr(v, "shape") and hasattr(v, "dtype"):
            return {"array": add(v)}
        raise TypeError(f"the grader cannot send a {type(v).__name__} to the worker")

    def add(a):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(a)
        return key

    return go(args)


def npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def read_npz(blob: bytes) -> dict:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def decode_output(tree, arrays: dict):
    """The learner's output, rebuilt from the worker's JSON and arrays."""

    def go(v):
        if isinstance(v, dict):
            if "array" in v:
                return arrays[v["array"]]
            if "opaque" in v:
                return Opaque(v["opaque"])
            if "tuple" in v:
                return tuple(go(x) for x in v["tuple"])
            if "list" in v:
                return [go(x) for x in v["list"]]
            if "dict" in v:
                out = {}
                for k, x in v["dict"]:
                    key = go(k)
                    try:
                        hash(key)
                    except TypeError:
                        key = repr(key)
                    out[key] = go(x)
                return out
            if "namedtuple" in v:
                items = [go(x) for x in v["items"]]
                name = v["namedtuple"] if str(v["namedtuple"]).isidentifier() else "T"
                cls = collections.namedtuple(name, [f"f{i}" for i in range(len(items))])
                return cls(*items)
            return Opaque("something the grader cannot read")
        return v

    return go(tree)
