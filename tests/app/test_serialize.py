"""The wire formats: torch's fast path writes exactly the bytes of the numpy formulas.

The answers' bytes are a contract (clients decode them; cached answers are compared), so the
torch conversion that replaced numpy's (issue 25) is held here to the numpy reference bit for
bit, on values of every kind a model produces.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import numpy as np
import orjson
import pytest
import torch

from app.serialize import (
    DECIMALS,
    PROB_F16_DECIMALS,
    Blob,
    decode_f16,
    dumps,
    dumps_binary,
    half,
    loads_binary,
    rounded,
    stack_tensor,
    tensor,
)


def awkward_values(seed: int = 0) -> torch.Tensor:
    """Probabilities, scores, activations and the edge cases: ties at the rounding grid, NaN
    (masked cells), ±inf, subnormal halves, values past half's range, negative zero."""
    g = torch.Generator().manual_seed(seed)
    parts = [
        torch.softmax(torch.randn(8, 128, generator=g) * 4, -1).flatten(),
        torch.randn(4096, generator=g) * 30,
        torch.randn(4096, generator=g) * 1e4,
        torch.rand(4096, generator=g) * 1e-4,
        torch.arange(-2000, 2000) * 0.0005,  # on and between the 1e-3 / 1e-4 grids
        torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 7e4, -7e4, 6e-8]),
    ]
    return torch.cat(parts).float()


def numpy_half(a: np.ndarray, decimals: int | None) -> np.ndarray:
    """The formula the formats are defined by (numpy, as the code did before issue 25)."""
    a = a.astype(np.float32)
    if decimals is not None:
        a = np.round(a, decimals)
    with np.errstate(over="ignore"):  # past half's range: inf, as IEEE says
        return np.ascontiguousarray(a.astype("<f2"))


@pytest.mark.parametrize("decimals", [None, PROB_F16_DECIMALS, DECIMALS])
def test_torch_half_is_bit_identical_to_numpy(decimals):
    x = awkward_values()
    ours = half(x, decimals)
    ref = numpy_half(x.numpy(), decimals)
    assert ours.dtype.str == "<f2" and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours.view(np.uint16), ref.view(np.uint16))


def test_half_takes_any_layout_and_dtype():
    x = awkward_values(1)[: 64 * 96].reshape(64, 96)
    strided = x.t()  # not contiguous: the bytes must be in the logical (row-major) order
    assert not strided.is_contiguous()
    np.testing.assert_array_equal(
        half(strided, 4).view(np.uint16), numpy_half(strided.numpy(), 4).view(np.uint16)
    )
    for dtype in (torch.float64, torch.bfloat16, torch.float16, torch.int64):
        y = (x * 3).to(dtype)
        np.testing.assert_array_equal(
            half(y, 4).view(np.uint16),
            numpy_half(y.float().numpy(), 4).view(np.uint16),
            err_msg=str(dtype),
        )
    assert half(x.numpy(), 4).tobytes() == half(x, 4).tobytes()  # numpy input: same bytes


def test_rounded_is_bit_identical_to_numpy():
    x = awkward_values(2)
    ours = rounded(x)
    ref = np.round(x.numpy(), DECIMALS)
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours.view(np.uint32), ref.view(np.uint32))
    assert dumps(ours) == dumps(ref)  # the JSON text too (NaN -> null)


def test_each_format_decodes_to_the_formula():
    x = awkward_values(3)[:4096].reshape(4, 8, 128)
    f16 = tensor(x, "f16", prob=True)
    assert base64.b64decode(f16["data"]) == numpy_half(x.numpy(), PROB_F16_DECIMALS).tobytes()
    # pybase64 writes the standard alphabet with padding, as the standard library does
    assert f16["data"] == base64.b64encode(numpy_half(x.numpy(), 3).tobytes()).decode()
    np.testing.assert_array_equal(
        decode_f16(tensor(x, "f16")), numpy_half(x.numpy(), DECIMALS).astype(np.float32)
    )
    blob = tensor(x, "binary", prob=True)
    assert isinstance(blob, Blob)
    assert blob.array.tobytes() == numpy_half(x.numpy(), None).tobytes()
    frame = loads_binary(dumps_binary({"a": tensor(x, "binary")}))
    np.testing.assert_array_equal(frame["a"], numpy_half(x.numpy(), DECIMALS).astype(np.float32))
    np.testing.assert_array_equal(decode_f16(tensor(x, "f32")), x.numpy())


@pytest.mark.parametrize("fmt", ["json", "f16", "binary", "f32"])
@pytest.mark.parametrize("prob", [False, True])
def test_stack_tensor_writes_the_bytes_of_the_stack(fmt, prob):
    """Each layer converted into its slot of the output: the bytes of tensor(torch.stack(...)),
    for strided parts (a query window's rows) too."""
    x = awkward_values(4)[: 3 * 4 * 24 * 20].reshape(3, 4, 24, 20)
    parts = [x[0], x[1].narrow(1, 5, 12), x[2, :, :12]]  # one contiguous, two strided
    parts[0] = parts[0][:, :12]
    ours, ref = stack_tensor(parts, fmt, prob=prob), tensor(torch.stack(parts), fmt, prob=prob)
    if fmt == "binary":
        assert ours.array.tobytes() == ref.array.tobytes() and ours.array.shape == (3, 4, 12, 20)
    else:
        assert dumps(ours) == dumps(ref)


def test_the_binary_frame_places_every_blob_where_its_header_says():
    """Blobs nested in dicts and lists, between tokens and numbers: offsets count in document
    order, the header is padded to 8 bytes, and the text around them is plain JSON."""
    g = torch.Generator().manual_seed(5)
    a, b, c = (torch.randn(n, 3, generator=g) for n in (2, 5, 1))
    answer = {
        "tokens": [{"text": "ATNV", "id": 1}, {"text": "é", "id": 2}],
        "attention": {"s": tensor(a, "binary"), "t": [tensor(b, "binary"), 7]},
        "masks": np.ones((2, 2), np.int8),
        "last": tensor(c, "binary"),
    }
    frame = dumps_binary(answer)
    n = int.from_bytes(frame[4:8], "little")
    assert frame[:4] == b"ATNV" and (8 + n) % 8 == 0
    header = orjson.loads(frame[8 : 8 + n])
    assert header["attention"]["s"] == {
        "dtype": "float16",
        "shape": [2, 3],
        "offset": 0,
        "length": 6,
    }
    assert header["attention"]["t"][0]["offset"] == 12 and header["last"]["offset"] == 42
    assert header["tokens"] == answer["tokens"] and header["masks"] == [[1, 1], [1, 1]]
    assert len(frame) == 8 + n + 2 * (6 + 15 + 3)
    back = loads_binary(frame)
    for got, want in (
        (back["attention"]["s"], a),
        (back["attention"]["t"][0], b),
        (back["last"], c),
    ):
        np.testing.assert_array_equal(got, numpy_half(want.numpy(), DECIMALS).astype(np.float32))


def test_the_allocator_is_tuned_before_torch_allocates():
    """app/__init__ asks PyTorch for huge pages before torch is imported (it reads the setting
    once), and an operator's own setting wins."""
    code = "import app, os; print(os.environ['THP_MEM_ALLOC_ENABLE'], app.ALLOCATOR)"
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1 {'huge_pages': True")
    if sys.platform.startswith("linux"):
        assert "'malloc': True" in out.stdout
    env["THP_MEM_ALLOC_ENABLE"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.startswith("0 {'huge_pages': False")
