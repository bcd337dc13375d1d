"""Trace tensors -> response bytes: nested JSON lists, compact float16, or binary.

* ``json``: nested lists, floats rounded to 4 decimals; masked cells (NaN) become ``null``.
* ``f16``:  ``{"dtype": "float16", "shape": [...], "data": "<base64>"}`` -- the same values
  as little-endian IEEE half floats, row-major, within 1e-3 of the JSON numbers: unbounded
  tensors (scores, q/k/v, norms) are rounded to 4 decimals like JSON, probabilities
  (attention weights, in [0, 1]) to a 1e-3 grid first: a visualisation cannot show the
  difference, and the repeated values make the gzipped payload ~35 % smaller. Masked cells
  are NaN. Decode in the browser with
  ``new Float16Array(bytes.buffer)`` (or a 10-line half-float decoder); in Python with
  ``np.frombuffer(base64.b64decode(data), "<f2").reshape(shape)``.
* ``f32``:  ``{"dtype": "float32", ...}`` the same layout with the float32 values as computed,
  unrounded: for checking a model against a reference to 1e-5 (endpoints that offer it).
* ``binary``: half floats without base64 (``application/octet-stream``), for long inputs:
  attention weights are *not* put on the 1e-3 grid (at 2048 tokens a uniform row's weights
  are 0.0005; half floats keep ~3 significant digits of each), other tensors are rounded to
  4 decimals as in JSON. The layout: the bytes
  ``ATNV``, the header's length (uint32, little-endian), the answer as JSON with each tensor
  replaced by ``{"dtype": "float16", "shape": [...], "offset": o, "length": n}``, padding to
  a multiple of 8, then the tensors' bytes; ``offset`` counts from the end of the padding.
  In the browser: ``new Float16Array(buffer, start + offset, length)``.

Rounding and encoding happen in numpy and orjson (``OPT_SERIALIZE_NUMPY``): no Python loop
over floats.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
import orjson
import pybase64
import torch

Format = Literal["json", "f16", "f32", "binary"]
BINARY_MAGIC = b"ATNV"
BINARY = "application/octet-stream"
DECIMALS = 4
PROB_F16_DECIMALS = 3
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def to_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype != torch.float32 and x.is_floating_point():
            x = x.float()
        x = x.cpu().numpy()
    return x


def _float32(x: torch.Tensor) -> torch.Tensor:
    x = x.detach()
    return x if x.dtype == torch.float32 else x.float()


def rounded(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """float32, rounded to DECIMALS (what the JSON format writes)."""
    if isinstance(x, torch.Tensor):  # torch rounds 3-5x faster than numpy, to the same bits
        return torch.round(_float32(x), decimals=DECIMALS).cpu().contiguous().numpy()
    a = to_numpy(x)
    return np.ascontiguousarray(np.round(a.astype(np.float32, copy=False), DECIMALS))


def half(x: torch.Tensor | np.ndarray, decimals: int | None) -> np.ndarray:
    """Little-endian float16, C-contiguous: float32 rounded to ``decimals`` first (None: not
    rounded), then converted with IEEE round-to-nearest-even. Torch tensors are converted by
    torch (vectorised, on the tensor's device, so a GPU sends half the bytes): the result is
    bit-identical to numpy's ``np.round(a, decimals).astype("<f2")``, ~5x faster
    (tests/app/test_serialize.py holds the two to the same bits)."""
    if isinstance(x, torch.Tensor):
        t = _float32(x)
        if decimals is not None:
            t = torch.round(t, decimals=decimals)
        return t.half().cpu().contiguous().numpy()
    a = np.asarray(x).astype(np.float32, copy=False)
    if decimals is not None:
        a = np.round(a, decimals)
    return np.ascontiguousarray(a.astype("<f2"))


class Blob:
    """Half floats a binary answer carries after its JSON header."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def tensor(x: torch.Tensor | np.ndarray, fmt: Format = "json", *, prob: bool = False) -> Any:
    """A float tensor in the requested format (something ``dumps`` can write).

    ``prob``: values in [0, 1] (attention weights), which f16 carries on a 1e-3 grid
    (binary keeps their half-float precision: long rows have many small weights).
    """
    if fmt == "json":
        return rounded(x)
    if fmt == "f32":
        return _base64(np.ascontiguousarray(to_numpy(x).astype("<f4")))
    if fmt == "binary":
        return Blob(half(x, None if prob else DECIMALS))
    return _base64(half(x, PROB_F16_DECIMALS if prob else DECIMALS))


def stack_tensor(parts: list[torch.Tensor], fmt: Format = "json", *, prob: bool = False) -> Any:
    """``tensor(torch.stack(parts), fmt, prob=prob)``, the same bytes. In the half-float
    formats each part is rounded and converted straight into its slot of the output: no
    float32 stack to write and read again (at 126 tokens a quarter of the attention
    weights' serialisation)."""
    if fmt not in ("f16", "binary"):
        return tensor(torch.stack(parts), fmt, prob=prob)
    decimals = (None if fmt == "binary" else PROB_F16_DECIMALS) if prob else DECIMALS
    out = torch.empty((len(parts), *parts[0].shape), dtype=torch.float16, device=parts[0].device)
    for slot, part in zip(out, parts, strict=True):
        part = _float32(part)
        slot.copy_(part if decimals is None else torch.round(part, decimals=decimals))
    a = out.cpu().numpy()
    return Blob(a) if fmt == "binary" else _base64(a)


def _base64(a: np.ndarray) -> dict:
    return {
        "dtype": {"<f2": "float16", "<f4": "float32"}[a.dtype.str],
        "shape": list(a.shape),
        # pybase64 (SIMD) writes the same text as the standard library, ~20x faster, as a str
        # directly (no second copy of ~1 MB through bytes.decode)
        "data": pybase64.b64encode_as_string(a.data),
    }


def ints(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """0/1 masks and other integer arrays, written as JSON integers in every format."""
    return np.ascontiguousarray(to_numpy(x).astype(np.int8))


def decode_f16(obj: dict) -> np.ndarray:
    """The inverse of ``tensor(..., "f16")`` and ``tensor(..., "f32")`` (for tests and Python
    clients)."""
    raw = base64.b64decode(obj["data"])
    dtype = {"float16": "<f2", "float32": "<f4"}[obj["dtype"]]
    return np.frombuffer(raw, dtype=dtype).astype(np.float32).reshape(obj["shape"])


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=_OPTIONS)


def dumps_binary(obj: Any) -> bytes:
    """The binary frame of an answer whose tensors were made with ``format="binary"``.

    orjson writes the header and asks ``default`` for each Blob as it meets it, in document
    order, so the offsets are counted as the bytes will lie (no Python walk over the answer:
    its token lists made that ~0.2 ms at 126 tokens); the blobs are joined from their buffers
    without an intermediate copy."""
    blobs: list[np.ndarray] = []
    offset = 0

    def lift(o: Any) -> dict:
        nonlocal offset
        if not isinstance(o, Blob):
            raise TypeError(f"{type(o).__name__} is not JSON serializable")
        a = o.array
        blobs.append(a)
        where = {"dtype": "float16", "shape": list(a.shape), "offset": offset, "length": a.size}
        offset += a.nbytes
        return where

    head = orjson.dumps(obj, default=lift, option=_OPTIONS)
    head += b" " * (-(len(BINARY_MAGIC) + 4 + len(head)) % 8)
    parts = [BINARY_MAGIC, len(head).to_bytes(4, "little"), head]
    return b"".join(parts + [memoryview(a) for a in blobs])


def loads_binary(data: bytes) -> dict:
    """The inverse of a binary answer: its header with each tensor as a float32 array (for
    tests and Python clients)."""
    if data[:4] != BINARY_MAGIC:
        raise ValueError("not an attnviz binary answer")
    n = int.from_bytes(data[4:8], "little")
    header = orjson.loads(data[8 : 8 + n])
    start = 8 + n

    def arrays(o: Any) -> Any:
        if isinstance(o, dict) and set(o) == {"dtype", "shape", "offset", "length"}:
            raw = np.frombuffer(data, "<f2", count=o["length"], offset=start + o["offset"])
            return raw.astype(np.float32).reshape(o["shape"])
        if isinstance(o, dict):
            return {k: arrays(v) for k, v in o.items()}
        if isinstance(o, list):
            return [arrays(v) for v in o]
        return o

    return arrays(header)
