"""Trace tensors -> response bytes: nested JSON lists or compact float16.

* ``json``: nested lists, floats rounded to 4 decimals; masked cells (NaN) become ``null``.
* ``f16``:  ``{"dtype": "float16", "shape": [...], "data": "<base64>"}`` -- the same values
  as little-endian IEEE half floats, row-major, within 1e-3 of the JSON numbers: unbounded
  tensors (scores, q/k/v, norms) are rounded to 4 decimals like JSON, probabilities
  (attention weights, in [0, 1]) to a 1e-3 grid first: a visualisation cannot show the
  difference, and the repeated values make the gzipped payload ~35 % smaller. Masked cells
  are NaN. Decode in the browser with
  ``new Float16Array(bytes.buffer)`` (or a 10-line half-float decoder); in Python with
  ``np.frombuffer(base64.b64decode(data), "<f2").reshape(shape)``.

Rounding and encoding happen in numpy and orjson (``OPT_SERIALIZE_NUMPY``): no Python loop
over floats.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
import orjson
import torch

Format = Literal["json", "f16"]
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


def rounded(x: torch.Tensor | np.ndarray) -> np.ndarray:
    a = to_numpy(x)
    return np.ascontiguousarray(np.round(a.astype(np.float32, copy=False), DECIMALS))


def tensor(x: torch.Tensor | np.ndarray, fmt: Format = "json", *, prob: bool = False) -> Any:
    """A float tensor in the requested format (something orjson can write).

    ``prob``: values in [0, 1] (attention weights), which f16 carries on a 1e-3 grid.
    """
    if fmt == "json":
        return rounded(x)
    a = to_numpy(x).astype(np.float32, copy=False)
    a = np.round(a, PROB_F16_DECIMALS if prob else DECIMALS).astype("<f2")
    return {
        "dtype": "float16",
        "shape": list(a.shape),
        "data": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def ints(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """0/1 masks and other integer arrays, written as JSON integers in every format."""
    return np.ascontiguousarray(to_numpy(x).astype(np.int8))


def decode_f16(obj: dict) -> np.ndarray:
    """The inverse of ``tensor(..., "f16")`` (for tests and Python clients)."""
    raw = base64.b64decode(obj["data"])
    return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(obj["shape"])


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=_OPTIONS)
