"""Transformer blocks: Add & Norm around self-attention, optional cross-attention, and the FFN."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.attention import LayerKV, MultiHeadAttention
from models.config import ModelConfig
from models.hooks import HookPoint
from models.positional import Rotary


class _HookedNorm:
    """A norm's hook points: hook_in (the un-normalised stream), hook_normalized (each token
    standardised, before the gain and bias) and hook_out (what the next sublayer or block
    reads). It runs torch's fused kernel; the standardised vectors are spelt out only for a
    capture that reads them, and the output stays the kernel's (bit-identical with or without
    a capture) unless an edit changed them."""

    def _add_hooks(self) -> None:
        self.hook_in = HookPoint()  # (B, T, D)
        self.hook_normalized = HookPoint()  # (B, T, D)
        self.hook_out = HookPoint()  # (B, T, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_in(x)
        y = self.fused(x)
        if self.hook_normalized.is_read():
            x_hat = self.standardised(x)
            edited = self.hook_normalized(x_hat)
            if edited is not x_hat:
                y = self.scaled(edited)
        return self.hook_out(y)


class LayerNorm(_HookedNorm, nn.LayerNorm):
    """(x − mean) / std · γ + β over each token's features; hook_normalized: mean 0 and
    variance 1 per token."""

    def __init__(self, d: int, eps: float) -> None:
        super().__init__(d, eps=eps)
        self._add_hooks()

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, unbiased=False, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps)

    def scaled(self, x_hat: torch.Tensor) -> torch.Tensor:
        return x_hat * self.weight + self.bias


class RMSNorm(_HookedNorm, nn.RMSNorm):
    """x / rms(x) · γ over each token's features (no centring, no shift); hook_normalized:
    RMS 1 per token."""

    def __init__(self, d: int, eps: float) -> None:
        super().__init__(d, eps=eps)
        self._add_hooks()

    def fused(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def scaled(self, x_hat: torch.Tensor) -> torch.Tensor:
        return x_hat * self.weight


def make_norm(cfg: ModelConfig) -> nn.Module:
    """LayerNorm: (x − mean) / std · γ + β.  RMSNorm: x / rms(x) · γ (no mean, no shift)."""
    if cfg.norm == "layernorm":
        return LayerNorm(cfg.d_model, eps=cfg.norm_eps)
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.d_model, eps=cfg.norm_eps)
    return nn.Identity()


def activate(h: torch.Tensor, activation: str) -> torch.Tensor:
    """The element-wise non-linearity (swiglu's gate uses silu)."""
    if activation == "relu":
        return F.relu(h)
    if activation == "gelu":
        return F.gelu(h)
    if activation == "gelu_tanh":  # 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), GPT-2's
        return F.gelu(h, approximate="tanh")
    if activation in ("silu", "swiglu"):
        return F.silu(h)
    raise ValueError(f"unknown activation {activation!r}")


class FeedForward(nn.Module):
    """Position-wise FFN: expand to d_ff, non-linearity, project back to d_model.

    SwiGLU (LLaMA-style) gates the expansion: W_2 (silu(W_1 x) ⊙ W_3 x).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.activation = cfg.activation
        self.W_1 = nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias)
        self.W_3 = (
            nn.Linear(cfg.d_model, cfg.d_ff, bias=cfg.bias) if cfg.activation == "swiglu" else None
        )
        self.W_2 = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)
        self.hook_pre = HookPoint()  # (B, T, d_ff) W_1 x, before the non-linearity
        self.hook_post = HookPoint()  # (B, T, d_ff) after it (SwiGLU: the gated product)
        if self.W_3 is not None:
            self.hook_gate = HookPoint()  # (B, T, d_ff) SwiGLU's gate silu(W_1 x)
            self.hook_up = HookPoint()  # (B, T, d_ff) SwiGLU's W_3 x, which the gate scales

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = activate(self.hook_pre(self.W_1(x)), self.activation)
        if self.W_3 is not None:
            h = self.hook_gate(h) * self.hook_up(self.W_3(x))
        return self.W_2(self.hook_post(h))


class MLMTransform(nn.Module):
    """BERT's masked-LM head begins with dense -> activation -> norm, then the vocabulary."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.activation = cfg.activation
        self.dense = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm = make_norm(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(activate(self.dense(x), self.activation))


class TransformerBlock(nn.Module):
    """One layer. Encoder block: self-attention + FFN. Decoder block: masked self-attention,
    then (seq2seq) cross-attention over the encoder's output, then FFN.

    Post-norm (original Transformer, BERT):  x = Norm(x + Sublayer(x))
    Pre-norm (GPT-2, LLaMA):                 x = x + Sublayer(Norm(x))
    """

    def __init__(self, cfg: ModelConfig, *, cross: bool = False) -> None:
        super().__init__()
        self.pre_norm = cfg.norm_position == "pre"
        attn = dict(n_kv_heads=cfg.n_kv_heads, bias=cfg.bias, qkv_bias=cfg.qkv_bias)
        self.attn = MultiHeadAttention(
            cfg.d_model, cfg.n_heads, rotary=cfg.positional == "rope", **attn
        )
        self.attn_norm = make_norm(cfg)
        self.cross_attn = (
            MultiHeadAttention(cfg.d_model, cfg.n_heads, cross=True, **attn) if cross else None
        )
        self.cross_norm = make_norm(cfg) if cross else None
        self.ffn = None if cfg.attn_only else FeedForward(cfg)
        self.ffn_norm = None if cfg.attn_only else make_norm(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

        self.hook_resid_pre = HookPoint()  # (B, T, D) the block's input
        self.hook_attn_out = HookPoint()  # (B, T, D) self-attention output (after W_O)
        self.hook_resid_mid = HookPoint()  # (B, T, D) after self-attention's Add & Norm
        self.hook_cross_out = HookPoint()  # (B, T, D) cross-attention output
        self.hook_resid_cross = HookPoint()  # (B, T, D) after cross-attention's Add & Norm
        self.hook_ffn_out = HookPoint()  # (B, T, D) FFN output
        self.hook_resid_post = HookPoint()  # (B, T, D) the block's output

    def _sublayer(self, x, norm, fn, hook_out):
        if self.pre_norm:
            return x + self.dropout(hook_out(fn(norm(x))))
        return norm(x + self.dropout(hook_out(fn(x))))

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        rope: Rotary | None = None,
        memory: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        cache: tuple[LayerKV, LayerKV] | None = None,
    ) -> torch.Tensor:
        self_kv, cross_kv = cache if cache is not None else (None, None)
        x = self.hook_resid_pre(x)
        x = self._sublayer(
            x,
            self.attn_norm,
            lambda h: self.attn(h, mask=self_mask, rope=rope, kv=self_kv),
            self.hook_attn_out,
        )
        x = self.hook_resid_mid(x)
        if self.cross_attn is not None:
            x = self._sublayer(
                x,
                self.cross_norm,
                lambda h: self.cross_attn(h, context=memory, mask=memory_mask, kv=cross_kv),
                self.hook_cross_out,
            )
            x = self.hook_resid_cross(x)
        if self.ffn is not None:
            x = self._sublayer(x, self.ffn_norm, self.ffn, self.hook_ffn_out)
        return self.hook_resid_post(x)
