"""Serving precision: the blocks' weight products in bfloat16, everything else in float32.

    ATTNVIZ_DTYPE=bfloat16   →   use_bfloat16_matmuls(model)

A real LLM's forward pass is mostly its linear layers (W_Q, W_K, W_V, W_O, the FFN). On CPUs
with AMX or AVX-512 BF16 (and on GPUs) a bfloat16 product is several times faster than a
float32 one. Only those products change here: each linear layer rounds its input and weight
to bfloat16, multiplies (float32 accumulation), and hands back its output, rounded to
bfloat16, as float32. The attention math (QKᵀ/√d, the mask, the softmax, the weighted sum of
V), RoPE, the norms and the residual stream stay float32, so every hook point records float32
tensors and every analysis reads them as before.

The unembedding stays float32: its logits are what /generate, the logit lens and every
probability a view prints are made of, and bfloat16's 8-bit mantissa would round a logit of
20 to a multiple of 0.125. The float32 weights stay each module's ``weight`` (the /math view
and direct logit attribution read them); the bfloat16 copy is a buffer beside it. So a
recomputation from the weights (x · W_Q in /math) differs from the model's own bfloat16
product by that rounding. Accuracy against float32: bench/bench_llm.py, bench/RESULTS.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DTYPES = ("float32", "bfloat16")


class BFloat16Linear(nn.Linear):
    """nn.Linear whose product runs in bfloat16 (float32 in, float32 out)."""

    weight_bf16: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(torch.bfloat16)
        return F.linear(x.to(torch.bfloat16), self.weight_bf16, bias).to(x.dtype)


def use_bfloat16_matmuls(model: nn.Module) -> nn.Module:
    """Every nn.Linear of ``model`` but its unembedding (``lm_head``) becomes a BFloat16Linear,
    in place; idempotent."""
    keep = getattr(model, "lm_head", None)
    for module in model.modules():
        if type(module) is nn.Linear and module is not keep:
            module.__class__ = BFloat16Linear
            module.register_buffer(
                "weight_bf16", module.weight.detach().to(torch.bfloat16), persistent=False
            )
    return model
