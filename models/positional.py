"""Positional information: sinusoidal table, learned table, rotary (RoPE) angles."""

from __future__ import annotations

import torch
from torch import nn


def sinusoidal_table(n_positions: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(pos / base^(2i/d)).  (T, d)"""
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,)
    angle = pos / base ** (two_i / d_model)  # (T, d/2)
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table.float()


def rope_frequencies(d_head: int, base: float = 10000.0) -> torch.Tensor:
    """theta_i = base^(-2i/d_head) for each pair i of dimensions.  (d_head/2,)"""
    two_i = torch.arange(0, d_head, 2, dtype=torch.float64)
    return (base ** (-two_i / d_head)).float()


def rope_angles(positions: torch.Tensor, d_head: int, base: float = 10000.0) -> torch.Tensor:
    """Angle pos * theta_i by which pair i of a vector at ``pos`` is rotated.  (T, d_head/2)"""
    return positions.float()[:, None] * rope_frequencies(d_head, base).to(positions.device)[None]


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x[2i], x[2i+1]) of the last dimension by its angle.

    x: (..., T, d_head), angles: (T, d_head/2). The pairs are interleaved as in the RoFormer
    paper: [x1, x2] -> [cos·x1 − sin·x2, sin·x1 + cos·x2].
    """
    return rotate_pairs(x, angles.cos(), angles.sin())


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """apply_rope with cos and sin of the angles already computed (once per forward pass)."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return rotated.flatten(-2)


class Rotary:
    """The angles of a run of positions, with their cosines and sines computed once and
    shared by every attention layer of a stack."""

    def __init__(self, positions: torch.Tensor, d_head: int, base: float) -> None:
        self.angles = rope_angles(positions, d_head, base)  # (T, d_head/2)
        self.cos, self.sin = self.angles.cos(), self.angles.sin()

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        return rotate_pairs(x, self.cos, self.sin)


class PositionalEmbedding(nn.Module):
    """Adds absolute positions to token embeddings: a fixed sinusoidal or a learned table.

    For "rope" and "none" nothing is added here (RoPE acts inside attention).
    """

    def __init__(self, kind: str, max_len: int, d_model: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "learned":
            self.table = nn.Embedding(max_len, d_model)
            nn.init.normal_(self.table.weight, std=0.02)
        elif kind == "sinusoidal":
            # persistent=False: derived from the formula, so not stored in the checkpoint.
            self.register_buffer("sin_table", sinusoidal_table(max_len, d_model), persistent=False)

    @property
    def adds_vectors(self) -> bool:
        return self.kind in ("learned", "sinusoidal")

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """positions: (T,) -> (T, d_model)"""
        if self.kind == "learned":
            return self.table(positions)
        return self.sin_table[positions]

    def full_table(self) -> torch.Tensor:
        if self.kind == "learned":
            return self.table.weight.detach()
        return self.sin_table
