"""What crosses the boundary between the grader and a sandboxed kernel.

Shared by both sides, standard library and NumPy only (the kernel side imports it
inside the sandbox):

- the run statuses (one set of words, written by the worker, read by the report);
- the **data channel**: :func:`encode` / :func:`decode` turn a value made of
  ``None``, booleans, numbers, strings, lists, tuples, dicts, NumPy arrays and torch
  tensors into bytes and back. Nothing else crosses (no pickle, no objects, no
  code): decoding reads JSON and raw array bytes of a fixed list of dtypes, so a
  reply from the sandbox can hold wrong numbers but never run anything in the grader.
  When one object appears twice (a function that returns its input, or the same
  array in two places), the second place is a reference to the first, so identity
  survives the trip;
- :func:`kill_tree`, the one way either side stops a process and its children.
"""

from __future__ import annotations

import json
import struct

import numpy as np

# ------------------------------------------------------------------ run statuses
OK, TIMEOUT, MEMORY, DIED = "ok", "timeout", "memory", "kernel died"
TOTAL_TIMEOUT, CLEANUP = "total timeout", "cleanup"
UNREADABLE, MISSING, ERROR = "unreadable", "missing", "error"
OTHER = "other notebook"

# ------------------------------------------------------------------ the data channel
MAX_BYTES = 256 * 2**20
"""largest message (bytes) either side encodes or decodes"""
MAX_HEADER = 16 * 2**20
"""largest JSON part of a message (bytes): structure and strings; arrays travel as raw buffers"""
MAX_DEPTH = 64
MAX_ITEMS = 1_000_000
"""most values a message may stand for, a reference counting as all it refers to"""
DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 "
    "complex64 complex128".split()
)
_MAGIC = b"WBDC1"


class ChannelError(ValueError):
    """A value that cannot cross the channel, or bytes that are not a valid message."""


def _is_tensor(x) -> bool:
    t = type(x)
    return t.__name__ in ("Tensor", "Parameter") and t.__module__.startswith("torch")


class _Encoder:
    def __init__(self, limit: int):
        self.buffers: list[bytes] = []
        self.size = 0
        self.items = 0
        self.limit = limit
        self.seen: dict[int, str] = {}
        self.keep: list = []  # keeps converted objects alive while their ids are in `seen`

    def array(self, a: np.ndarray, tensor: bool) -> dict:
        dtype = a.dtype.name
        if dtype not in DTYPES:
            raise ChannelError(
                f"an array of dtype {a.dtype} (only numbers and booleans can be sent)"
            )
        data = np.ascontiguousarray(a).tobytes()
        self.size += len(data)
        if self.size > self.limit:
            raise ChannelError(f"more than {self.limit // 2**20} MiB of data")
        self.buffers.append(data)
        out = {"A": [dtype, list(a.shape), len(self.buffers) - 1]}
        if tensor:
            out["torch"] = 1
        return out

    def value(self, x, path: str, depth: int = 0):
        self.items += 1
        if self.items > MAX_ITEMS or depth > MAX_DEPTH:
            raise ChannelError("a value nested too deeply or with too many items")
        if isinstance(x, str):
            self.size += len(x)
            if self.size > self.limit:
                raise ChannelError(f"more than {self.limit // 2**20} MiB of data")
            return x
        if x is None or isinstance(x, bool):
            return x
        if isinstance(x, int):
            if abs(x) >= 2**63:
                return {"I": str(x)}
            return x
        if isinstance(x, float):
            return {"F": repr(x)} if x != x or x in (float("inf"), float("-inf")) else x
        if isinstance(x, complex):
            return {"C": [repr(x.real), repr(x.imag)]}
        if id(x) in self.seen:
            return {"R": self.seen[id(x)]}
        if isinstance(x, np.generic):
            return self.array(np.asarray(x), False) | {"scalar": 1}
        if isinstance(x, np.ndarray):
            self.seen[id(x)] = path
            return self.array(x, False)
        if _is_tensor(x):
            self.seen[id(x)] = path
            self.keep.append(x)
            return self.array(x.detach().cpu().resolve_conj().resolve_neg().numpy(), True)
        if isinstance(x, list | tuple):
            self.seen[id(x)] = path
            tag = "L" if isinstance(x, list) else "T"
            return {tag: [self.value(v, f"{path}/{i}", depth + 1) for i, v in enumerate(x)]}
        if isinstance(x, dict):
            self.seen[id(x)] = path
            items = []
            for i, (k, v) in enumerate(x.items()):
                if not isinstance(k, str | int) or isinstance(k, bool):
                    raise ChannelError(f"a dict key of type {type(k).__name__}")
                items.append([k, self.value(v, f"{path}/{i}", depth + 1)])
            return {"D": items}
        raise ChannelError(
            f"a {type(x).__name__}: only arrays, tensors, numbers, strings, None, lists, "
            "tuples and dicts can be sent"
        )


def encode(message: dict, limit: int = MAX_BYTES) -> bytes:
    """``message`` (a dict of values, see the module docstring) as bytes.

    Values inside are encoded in the order of the dict, so a later key may refer to
    an object seen under an earlier key (``{"args": ..., "value": ...}``).
    """
    enc = _Encoder(limit)
    header = {k: enc.value(v, k) for k, v in message.items()}
    head = json.dumps(header, allow_nan=False).encode()
    if len(head) > MAX_HEADER:
        raise ChannelError(f"more than {MAX_HEADER // 2**20} MiB of structure and text")
    sizes = [len(b) for b in enc.buffers]
    meta = json.dumps(sizes).encode()
    return b"".join([_MAGIC, struct.pack("<QQ", len(head), len(meta)), head, meta, *enc.buffers])


class _Decoder:
    def __init__(self, buffers: list[memoryview], tensors: bool):
        self.buffers = buffers
        self.tensors = tensors
        self.objects: dict[str, object] = {}
        self.weight: dict[str, int] = {}  # values each path stands for, expanded
        self.items = 0

    def array(self, spec: list, tensor: bool, scalar: bool):
        if not (isinstance(spec, list) and len(spec) == 3):
            raise ChannelError("malformed array")
        dtype, shape, index = spec
        if dtype not in DTYPES or not isinstance(shape, list):
            raise ChannelError(f"array dtype {dtype!r} is not allowed")
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ChannelError("malformed array shape")
        if not isinstance(index, int) or not 0 <= index < len(self.buffers):
            raise ChannelError("malformed array buffer")
        buf = self.buffers[index]
        dt = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dt.itemsize != len(buf):
            raise ChannelError("array size does not match its shape")
        a = np.frombuffer(buf, dtype=dt).reshape(shape).copy()
        if scalar:
            return a[()]
        if tensor and self.tensors:
            import torch

            return torch.from_numpy(a)
        return a

    def value(self, x, path: str, depth: int = 0):
        start = self.items
        out = self._value(x, path, depth)
        self.weight[path] = self.items - start
        return out

    def _value(self, x, path: str, depth: int):
        self.items += 1
        if self.items > MAX_ITEMS or depth > MAX_DEPTH:
            raise ChannelError("a value nested too deeply or with too many items")
        if x is None or isinstance(x, bool | int | float | str):
            return x
        if isinstance(x, list):  # never produced by the encoder at this level
            raise ChannelError("malformed value")
        if not isinstance(x, dict) or len(set(x) - {"torch", "scalar"}) != 1:
            raise ChannelError("malformed value")
        (tag,) = set(x) - {"torch", "scalar"}
        body = x[tag]
        if tag == "I":
            return int(body)
        if tag == "F":
            return float(body)
        if tag == "C":
            return complex(float(body[0]), float(body[1]))
        if tag == "R":
            if body not in self.objects:
                raise ChannelError("a reference to nothing")
            self.items += self.weight.get(body, 1)  # what a walk over it will meet
            if self.items > MAX_ITEMS:
                raise ChannelError("a value that refers to itself too many times")
            return self.objects[body]
        if tag == "A":
            out = self.array(body, bool(x.get("torch")), bool(x.get("scalar")))
        elif tag in ("L", "T"):
            if not isinstance(body, list):
                raise ChannelError("malformed sequence")
            out = [] if tag == "L" else None
            if tag == "L":
                self.objects[path] = out
                out.extend(self.value(v, f"{path}/{i}", depth + 1) for i, v in enumerate(body))
                return out
            out = tuple(self.value(v, f"{path}/{i}", depth + 1) for i, v in enumerate(body))
        elif tag == "D":
            if not isinstance(body, list):
                raise ChannelError("malformed dict")
            out = {}
            self.objects[path] = out
            for i, item in enumerate(body):
                if not (isinstance(item, list) and len(item) == 2):
                    raise ChannelError("malformed dict item")
                k, v = item
                if not isinstance(k, str | int) or isinstance(k, bool):
                    raise ChannelError("malformed dict key")
                out[k] = self.value(v, f"{path}/{i}", depth + 1)
            return out
        else:
            raise ChannelError(f"unknown tag {tag!r}")
        self.objects[path] = out
        return out


def decode(data: bytes, *, tensors: bool = True, limit: int = MAX_BYTES) -> dict:
    """The message ``encode`` wrote. ``tensors=False`` gives NumPy arrays for tensors."""
    if len(data) > limit:
        raise ChannelError(f"a message of more than {limit // 2**20} MiB")
    if len(data) < len(_MAGIC) + 16 or not data.startswith(_MAGIC):
        raise ChannelError("not a message of the grader's data channel")
    view = memoryview(data)
    n_head, n_meta = struct.unpack_from("<QQ", data, len(_MAGIC))
    if n_head > MAX_HEADER or n_meta > MAX_HEADER:
        raise ChannelError("a message with too much structure")
    start = len(_MAGIC) + 16
    if start + n_head + n_meta > len(data):
        raise ChannelError("a truncated message")
    try:
        header = json.loads(bytes(view[start : start + n_head]))
        sizes = json.loads(bytes(view[start + n_head : start + n_head + n_meta]))
    except (ValueError, UnicodeDecodeError) as e:
        raise ChannelError(f"a malformed message ({e})") from None
    if not isinstance(header, dict) or not isinstance(sizes, list):
        raise ChannelError("a malformed message")
    if not all(isinstance(s, int) and s >= 0 for s in sizes):
        raise ChannelError("a malformed message")
    buffers, pos = [], start + n_head + n_meta
    for s in sizes:
        if pos + s > len(data):
            raise ChannelError("a truncated message")
        buffers.append(view[pos : pos + s])
        pos += s
    dec = _Decoder(buffers, tensors)
    return {k: dec.value(v, k) for k, v in header.items()}


def sync_back(original, returned, pairs: dict | None = None):
    """Make ``original`` (an argument the grader sent) look like ``returned`` (what the
    function left of its copy), in place where possible, and return the object that
    now stands for it: a call through the channel then changes the caller's arguments
    exactly as a local call would (arrays written into, lists appended to, ...).

    ``pairs`` (optional) collects ``id(returned part) -> object standing for it`` for
    every part, so that a result referring to an argument can be pointed at the caller's
    own object (:func:`rebind`)."""
    out = _sync(original, returned, pairs)
    if pairs is not None:
        pairs[id(returned)] = out
    return out


def _sync(original, returned, pairs):
    if isinstance(original, np.ndarray) and isinstance(returned, np.ndarray):
        if original.shape == returned.shape and original.dtype == returned.dtype:
            if not np.array_equal(original, returned, equal_nan=True):
                if not original.flags.writeable:
                    return returned
                np.copyto(original, returned)
            return original
        return returned
    if _is_tensor(original) and _is_tensor(returned):
        if original.shape == returned.shape and original.dtype == returned.dtype:
            import torch

            if not torch.equal(original, returned):
                with torch.no_grad():
                    original.copy_(returned)
            return original
        return returned
    if isinstance(original, list) and isinstance(returned, list):
        if len(original) == len(returned):
            for i, (a, b) in enumerate(zip(original, returned)):
                new = sync_back(a, b, pairs)
                if new is not a:
                    original[i] = new
        else:
            original[:] = returned
        return original
    if isinstance(original, tuple) and isinstance(returned, tuple):
        if len(original) == len(returned):
            items = [sync_back(a, b, pairs) for a, b in zip(original, returned)]
            if all(a is b for a, b in zip(items, original)):
                return original
            return tuple(items)
        return returned
    if isinstance(original, dict) and isinstance(returned, dict):
        if list(original) == list(returned):
            for k in original:
                new = sync_back(original[k], returned[k], pairs)
                if new is not original[k]:
                    original[k] = new
        else:
            original.clear()
            original.update(returned)
        return original
    if type(original) is type(returned) and original == returned:
        return original
    return returned


def rebind(value, pairs: dict, _depth: int = 0, _seen: dict | None = None):
    """``value`` with every part that is a decoded argument replaced by the caller's
    object standing for it (see :func:`sync_back`). Each object is visited once."""
    seen = {} if _seen is None else _seen
    if id(value) in pairs:
        return pairs[id(value)]
    if id(value) in seen or _depth > MAX_DEPTH:
        return seen.get(id(value), value)
    seen[id(value)] = value
    if isinstance(value, list):
        value[:] = [rebind(v, pairs, _depth + 1, seen) for v in value]
    elif isinstance(value, tuple):
        items = tuple(rebind(v, pairs, _depth + 1, seen) for v in value)
        if any(a is not b for a, b in zip(items, value)):
            seen[id(value)] = items
            return items
    elif isinstance(value, dict):
        for k in value:
            value[k] = rebind(value[k], pairs, _depth + 1, seen)
    return value


# ------------------------------------------------------------------ processes
def kill_tree(pid: int) -> None:
    """Kill the process ``pid`` and all its descendants (children first)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
