"""Attention matrices reduced to at most N×N blocks, so long inputs fit a thumbnail.

Query blocks are averaged and key blocks summed, so every pooled row is still a distribution
over the key blocks (it sums to 1, like the rows it came from):

    P[a, b] = mean_{i in block a} Σ_{j in block b} A[i, j]

Blocks are contiguous runs of tokens of nearly equal size; ``block_edges`` says which token
indices each one covers ([edges[a], edges[a + 1])).
"""

from __future__ import annotations

import torch


def block_edges(n_tokens: int, n_blocks: int) -> list[int]:
    """Edges of min(n_blocks, n_tokens) contiguous blocks covering 0 … n_tokens."""
    n = max(1, min(n_blocks, n_tokens))
    return [round(k * n_tokens / n) for k in range(n + 1)]


def _block_sums(x: torch.Tensor, edges: list[int], dim: int) -> torch.Tensor:
    """Sums of x over each block of ``dim``, via a cumulative sum (O(T), any block sizes)."""
    x = x.movedim(dim, -1)
    zero = torch.zeros(*x.shape[:-1], 1, dtype=x.dtype, device=x.device)
    cum = torch.cat([zero, x.cumsum(-1)], dim=-1)
    idx = torch.tensor(edges, device=x.device)
    sums = cum.index_select(-1, idx[1:]) - cum.index_select(-1, idx[:-1])
    return sums.movedim(-1, dim)


def pool(
    pattern: torch.Tensor, q_edges: list[int], k_edges: list[int], chunk_cells: int = 1 << 22
) -> torch.Tensor:
    """(..., Tq, Tk) -> (..., nq, nk): key blocks summed, query blocks averaged.

    In float32 (a row's cumulative sum stays within ~1e-6 of exact), a few query rows at a
    time, so pooling a long input never holds more than ``chunk_cells`` extra cells."""
    lead, (Tq, Tk) = pattern.shape[:-2], pattern.shape[-2:]
    flat = pattern.reshape(-1, Tq, Tk)
    rows_per_chunk = max(1, chunk_cells // max(1, flat.shape[0] * Tk))
    summed = torch.cat(  # (N, Tq, nk): key blocks summed, chunk by chunk of query rows
        [
            _block_sums(_wide(flat[:, i : i + rows_per_chunk]), k_edges, -1)
            for i in range(0, Tq, rows_per_chunk)
        ],
        dim=1,
    )
    rows = _block_sums(summed, q_edges, -2)  # (N, nq, nk)
    sizes = torch.tensor(q_edges, dtype=rows.dtype, device=rows.device).diff()
    return (rows / sizes[:, None]).reshape(*lead, *rows.shape[-2:]).to(pattern.dtype)


def pool_rows(rows: torch.Tensor, k_edges: list[int]) -> torch.Tensor:
    """(..., Tk) attention rows -> (..., nk): each key block's total weight."""
    return _block_sums(_wide(rows), k_edges, -1).to(rows.dtype)


def _wide(x: torch.Tensor) -> torch.Tensor:
    """float32 for the sums (float64 stays float64; half floats would lose them)."""
    return x if x.dtype == torch.float64 else x.float()
