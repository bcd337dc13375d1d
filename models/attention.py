"""Multi-head attention, self and cross, written as the explicit math students learn.

    head_i = softmax(mask(Q_i K_iᵀ / √d_k)) V_i          MultiHead = concat(head_1..h) W_O

`scaled_dot_product` is the one place where a head's attention is computed; the module
around it holds the projections, RoPE and the KV cache. No fused SDPA kernel: the attention
matrix has to exist so that it can be shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.hooks import HookPoint
from models.positional import Rotary


@dataclass
class LayerKV:
    """Cached keys and values of one attention module, (B, H, T, d_head) each.

    Self-attention appends one position per decoding step (keys stored already rotated for
    RoPE); cross-attention computes the encoder's keys and values once and reuses them.
    """

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]


def scaled_dot_product(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attention of every head: (scores, pattern, z).

    q: (B, H, Tq, d_head). k, v: (B, H_kv, Tk, d_head), where H is a multiple of H_kv:
    with grouped-query attention each key/value head serves H / H_kv consecutive query
    heads (H_kv = H is plain multi-head attention). mask: (B, Tq, Tk) bool, True where the
    query may attend to the key.

    scores:  (B, H, Tq, Tk)  Q Kᵀ / √d_head, before the mask
    pattern: (B, H, Tq, Tk)  softmax over the keys of the masked scores; each row sums to 1
    z:       (B, H, Tq, d_head)  pattern · V, each head's output before W_O
    """
    group = q.shape[1] // k.shape[1]
    if group > 1:
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    masked = scores if mask is None else scores.masked_fill(~mask[:, None], float("-inf"))
    pattern = F.softmax(masked, dim=-1)
    return scores, pattern, pattern @ v


class MultiHeadAttention(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        bias: bool = True,
        qkv_bias: bool | None = None,
        n_kv_heads: int | None = None,
        rotary: bool = False,
        cross: bool = False,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads or n_heads  # fewer: grouped-query attention
        self.d_head = d_model // n_heads
        self.rotary = rotary  # rotate queries and keys by their positions (RoPE)
        self.cross = cross
        d_kv = self.n_kv_heads * self.d_head
        qkv_bias = bias if qkv_bias is None else qkv_bias  # Qwen2: Q, K, V biased, W_O not
        self.W_q = nn.Linear(d_model, d_model, bias=qkv_bias)
        self.W_k = nn.Linear(d_model, d_kv, bias=qkv_bias)
        self.W_v = nn.Linear(d_model, d_kv, bias=qkv_bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)

        self.hook_in = HookPoint()  # (B, Tq, D) the queries' input (after the norm if pre-norm)
        self.hook_q = HookPoint()  # (B, H, Tq, d_head)
        self.hook_k = HookPoint()  # (B, H_kv, Tk_new, d_head)
        self.hook_v = HookPoint()  # (B, H_kv, Tk_new, d_head)
        self.hook_rope_angles = HookPoint()  # (Tq, d_head/2)
        self.hook_rot_q = HookPoint()  # (B, H, Tq, d_head)
        self.hook_rot_k = HookPoint()  # (B, H_kv, Tk_new, d_head)
        self.hook_scores = HookPoint()  # (B, H, Tq, Tk) scaled, before the mask
        self.hook_mask = HookPoint()  # (B, Tq, Tk) bool, True = may attend
        self.hook_pattern = HookPoint()  # (B, H, Tq, Tk) after softmax
        self.hook_z = HookPoint()  # (B, H, Tq, d_head) each head's output, before W_O

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        return x.view(B, T, D // self.d_head, self.d_head).transpose(1, 2)  # (B, H, T, d_head)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        rope: Rotary | None = None,
        kv: LayerKV | None = None,
    ) -> torch.Tensor:
        """x: (B, Tq, D) queries' residual; context: (B, Tk, D) for cross-attention.

        mask: (B, Tq, Tk) bool, True where the query may attend to the key.
        rope: the angles of the queries' positions (needed when the module is rotary).
        kv: cache to read and extend (self) or fill once and reuse (cross).
        """
        B, Tq, D = x.shape
        x = self.hook_in(x)
        q = self.hook_q(self._split_heads(self.W_q(x)))

        if self.cross and kv is not None and kv.k is not None:
            k, v = kv.k, kv.v  # the encoder's keys and values, computed at the first step
        else:
            source = context if self.cross else x
            k = self.hook_k(self._split_heads(self.W_k(source)))
            v = self.hook_v(self._split_heads(self.W_v(source)))
            if self.rotary:
                self.hook_rope_angles(rope.angles)
                q = self.hook_rot_q(rope.rotate(q))
                k = self.hook_rot_k(rope.rotate(k))
            if kv is not None:
                if not self.cross and kv.k is not None:
                    k = torch.cat([kv.k, k], dim=2)
                    v = torch.cat([kv.v, v], dim=2)
                kv.k, kv.v = k, v

        scores, pattern, z = scaled_dot_product(q, k, v, mask)
        self.hook_scores(scores)
        if mask is not None:
            self.hook_mask(mask)
        self.hook_pattern(pattern)
        z = self.hook_z(z)  # an edit here (e.g. ablating a head) reaches the output
        return self.W_o(z.transpose(1, 2).reshape(B, Tq, D))  # concat heads, then W_O
