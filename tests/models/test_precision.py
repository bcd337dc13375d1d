"""ATTNVIZ_DTYPE=bfloat16 (models/precision.py): the blocks' linear layers multiply in
bfloat16, the unembedding, attention math, norms and residual stream stay float32."""

from __future__ import annotations

import copy

import torch
from torch import nn

from models import capture
from models.hooks import hook_name
from models.precision import BFloat16Linear, use_bfloat16_matmuls
from tests.helpers import tiny


def _float32(kind: str, **overrides):
    return tiny(kind, **overrides).float()


def test_a_converted_linear_is_the_bfloat16_product_of_rounded_operands():
    torch.manual_seed(0)
    layer = nn.Linear(96, 40)
    x = torch.randn(7, 96)
    expected = layer(x)
    use_bfloat16_matmuls(layer)  # a bare Linear has no lm_head: it is converted
    assert isinstance(layer, BFloat16Linear)
    got = layer(x)
    assert got.dtype == torch.float32 and layer.weight.dtype == torch.float32
    # The independent reference: operands rounded to bfloat16, the product in float64, the
    # result rounded to bfloat16 once (float32 accumulation leaves at most a last-bit tie).
    ref = (
        x.bfloat16().double() @ layer.weight.bfloat16().double().T + layer.bias.bfloat16().double()
    )
    rounded = ref.to(torch.bfloat16).double()
    ulp = rounded.abs() * 2.0**-7
    assert ((got.double() - rounded).abs() <= ulp + 1e-30).all()
    assert (got.double() - ref).abs().max() > 0  # it did round: not the float32 product
    assert not torch.equal(got, expected)


def test_every_block_linear_is_converted_and_the_unembedding_is_not():
    model = use_bfloat16_matmuls(_float32("decoder"))
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert model.lm_head in linears and type(model.lm_head) is nn.Linear
    assert all(isinstance(m, BFloat16Linear) for m in linears if m is not model.lm_head)
    again = use_bfloat16_matmuls(model)  # idempotent
    assert again is model and type(model.lm_head) is nn.Linear


def test_hook_points_record_float32_and_the_patterns_stay_close():
    torch.manual_seed(1)
    ref = _float32("decoder")
    fast = use_bfloat16_matmuls(copy.deepcopy(ref))
    ids = torch.randint(3, 40, (1, 24))
    names = [hook_name("decoder.self", li, h) for li in range(2) for h in ("q", "pattern")]
    with torch.inference_mode():
        with capture(ref, names) as a:
            logits_ref = ref.decode(ids)
        with capture(fast, names) as b:
            logits_fast = fast.decode(ids)
    for n in names:
        assert b[n].dtype == torch.float32
        assert not torch.equal(a[n], b[n])
    for li in range(2):
        p = hook_name("decoder.self", li, "pattern")
        assert (a[p] - b[p]).abs().max() < 0.02
        assert torch.allclose(b[p].sum(-1), torch.ones(()), atol=1e-5)  # softmax in float32
    assert logits_fast.dtype == torch.float32
    assert (logits_ref - logits_fast).abs().max() < 0.1
