"""Positional information: sinusoidal table, learned table, rotary (RoPE) angles.

Both the sinusoid and RoPE work on pairs of dimensions, one pair per frequency. Where pair i
sits is the model's ``pair_layout``: "interleaved" = dimensions (2i, 2i+1), as in Vaswani
et al. and the RoFormer paper (our own models); "halves" = (i, i + d/2), as in Hugging Face's
Llama family (RoPE) and Marian (sin in the first half, cos in the second).
"""

from __future__ import annotations

import torch
from torch import nn


def sinusoidal_table(
    n_positions: int, d_model: int, base: float = 10000.0, layout: str = "interleaved"
) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(pos / base^(2i/d)).  (T, d)

    layout "halves": the sines fill columns 0..d/2-1 and the cosines d/2..d-1.
    """
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,)
    angle = pos / base ** (two_i / d_model)  # (T, d/2)
    return _place_pairs(torch.sin(angle), torch.cos(angle), layout).float()


def _place_pairs(first: torch.Tensor, second: torch.Tensor, layout: str) -> torch.Tensor:
    """Pair i's two components (..., d/2 each) laid out along the last dimension (..., d)."""
    if layout == "halves":
        return torch.cat((first, second), dim=-1)
    return torch.stack((first, second), dim=-1).flatten(-2)


def rope_frequencies(d_head: int, base: float = 10000.0) -> torch.Tensor:
    """theta_i = base^(-2i/d_head) for each pair i of dimensions.  (d_head/2,)"""
    two_i = torch.arange(0, d_head, 2, dtype=torch.float64)
    return (base ** (-two_i / d_head)).float()


def rope_angles(positions: torch.Tensor, d_head: int, base: float = 10000.0) -> torch.Tensor:
    """Angle pos * theta_i by which pair i of a vector at ``pos`` is rotated.  (T, d_head/2)"""
    return positions.float()[:, None] * rope_frequencies(d_head, base).to(positions.device)[None]


def apply_rope(x: torch.Tensor, angles: torch.Tensor, layout: str = "interleaved") -> torch.Tensor:
    """Rotate each pair (x1, x2) of the last dimension by its angle.

    x: (..., T, d_head), angles: (T, d_head/2). [x1, x2] -> [cos·x1 − sin·x2, sin·x1 + cos·x2],
    with the pairs where ``layout`` puts them (see the module docstring).
    """
    return rotate_pairs(x, angles.cos(), angles.sin(), layout)


def rotate_pairs(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, layout: str = "interleaved"
) -> torch.Tensor:
    """apply_rope with cos and sin of the angles already computed (once per forward pass)."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if layout == "halves":
        x1, x2 = x.chunk(2, dim=-1)
    else:
        x1, x2 = x[..., 0::2], x[..., 1::2]
    return _place_pairs(x1 * cos - x2 * sin, x1 * sin + x2 * cos, layout)


class Rotary:
    """The angles of a run of positions, with their cosines and sines computed once and
    shared by every attention layer of a stack."""

    def __init__(
        self, positions: torch.Tensor, d_head: int, base: float, layout: str = "interleaved"
    ) -> None:
        self.angles = rope_angles(positions, d_head, base)  # (T, d_head/2)
        self.cos, self.sin = self.angles.cos(), self.angles.sin()
        self.layout = layout

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        return rotate_pairs(x, self.cos, self.sin, self.layout)


class PositionalEmbedding(nn.Module):
    """Adds absolute positions to token embeddings: a fixed sinusoidal or a learned table.

    For "rope" and "none" nothing is added here (RoPE acts inside attention).
    """

    def __init__(self, kind: str, max_len: int, d_model: int, layout: str = "interleaved") -> None:
        super().__init__()
        self.kind = kind
        if kind == "learned":
            self.table = nn.Embedding(max_len, d_model)
            nn.init.normal_(self.table.weight, std=0.02)
        elif kind == "sinusoidal":
            # persistent=False: derived from the formula, so not stored in the checkpoint.
            table = sinusoidal_table(max_len, d_model, layout=layout)
            self.register_buffer("sin_table", table, persistent=False)

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
