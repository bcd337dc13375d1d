"""Multi-head attention, self and cross, written as the explicit math students learn.

    head_i = softmax(mask(Q_i K_iᵀ / √d_k)) V_i          MultiHead = concat(head_1..h) W_O

This is the one place where a head's attention is computed. No fused SDPA kernel: the
attention matrix has to exist so that it can be shown.
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


class MultiHeadAttention(nn.Module):
    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        bias: bool = True,
        rotary: bool = False,
        cross: bool = False,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.rotary = rotary  # rotate queries and keys by their positions (RoPE)
        self.cross = cross
        self.W_q = nn.Linear(d_model, d_model, bias=bias)
        self.W_k = nn.Linear(d_model, d_model, bias=bias)
        self.W_v = nn.Linear(d_model, d_model, bias=bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)

        self.hook_in = HookPoint()  # (B, Tq, D) the queries' input (after the norm if pre-norm)
        self.hook_q = HookPoint()  # (B, H, Tq, d_head)
        self.hook_k = HookPoint()  # (B, H, Tk_new, d_head)
        self.hook_v = HookPoint()  # (B, H, Tk_new, d_head)
        self.hook_rope_angles = HookPoint()  # (Tq, d_head/2)
        self.hook_rot_q = HookPoint()  # (B, H, Tq, d_head)
        self.hook_rot_k = HookPoint()  # (B, H, Tk_new, d_head)
        self.hook_scores = HookPoint()  # (B, H, Tq, Tk) scaled, before the mask
        self.hook_mask = HookPoint()  # (B, Tq, Tk) bool, True = may attend
        self.hook_pattern = HookPoint()  # (B, H, Tq, Tk) after softmax
        self.hook_z = HookPoint()  # (B, H, Tq, d_head) each head's output, before W_O

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, d_head)

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

        scores = self.hook_scores(q @ k.transpose(-2, -1) / math.sqrt(self.d_head))  # (B,H,Tq,Tk)
        if mask is not None:
            mask = self.hook_mask(mask)
            scores = scores.masked_fill(~mask[:, None], float("-inf"))
        pattern = self.hook_pattern(F.softmax(scores, dim=-1))  # (B, H, Tq, Tk)
        z = self.hook_z(pattern @ v)  # (B, H, Tq, d_head)
        return self.W_o(z.transpose(1, 2).reshape(B, Tq, D))  # concat heads, then W_O
