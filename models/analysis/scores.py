"""Head scores: what kind of head is this, read off its attention pattern.

Every score takes attention patterns of shape ``(..., Tq, Tk)`` (one head ``(T, T)``, a
layer ``(H, T, T)``, a model ``(L, H, T, T)``, or with a batch in front) and returns one
number per head, ``(...)``. Rows are queries, columns keys, and each row sums to 1 (softmax
output, e.g. a ``hook_pattern`` without its batch dimension).

The token-based scores (``duplicate_token``, ``induction``) compare a pattern with a
0/1 *detection pattern* built from the token ids, as TransformerLens's ``detect_head`` does,
and report ``pattern_match``: the share of a query's attention that lands on its target keys,
averaged over the queries that have a target. That is Olsson et al. (2022)'s induction score
(on a repeated random run, the attention from each token of the second copy to the token after
its first occurrence). TransformerLens's ``"mul"`` measure divides the same sum by *all*
queries instead; ``normalize="all"`` gives that figure (it cannot exceed the share of queries
that have a target, ~0.5 on a run repeated twice).

``causal=True`` (decoder self-attention) only counts earlier keys as targets; an encoder's
patterns see both directions, so pass ``causal=False`` for them.
"""

from __future__ import annotations

from typing import Literal

import torch

Normalize = Literal["targets", "all"]


def _check_square(patterns: torch.Tensor) -> int:
    if patterns.dim() < 2 or patterns.shape[-1] != patterns.shape[-2]:
        raise ValueError(
            f"patterns must be (..., T, T) self-attention, got {tuple(patterns.shape)}"
        )
    return patterns.shape[-1]


def pattern_match(
    patterns: torch.Tensor, detection: torch.Tensor, normalize: Normalize = "targets"
) -> torch.Tensor:
    """Share of attention on the keys a detection pattern marks, per head.

    patterns: ``(..., T, T)``. detection: ``(T, T)`` or ``(B, T, T)`` of 0/1 (True = a target
    key of that query); a ``(B, T, T)`` detection pairs with patterns ``(B, ..., T, T)``.

    ``normalize="targets"``: for each query with at least one target, the attention on its
    targets; the mean over those queries (NaN where no query has a target).
    ``normalize="all"``: ``sum(A * D) / sum(A)`` over the whole pattern (TransformerLens
    ``detect_head``, ``error_measure="mul"``).
    """
    T = _check_square(patterns)
    if detection.shape[-2:] != (T, T):
        raise ValueError(f"detection {tuple(detection.shape)} does not match patterns T={T}")
    d = detection.to(patterns.dtype)
    if d.dim() == 3:  # one detection per batch element: broadcast over the layer/head dims
        d = d.view(d.shape[0], *([1] * (patterns.dim() - 3)), T, T)
    on_target = (patterns * d).sum(-1)  # (..., T) attention each query puts on its targets
    if normalize == "all":
        return on_target.sum(-1) / patterns.sum((-2, -1))
    has_target = (d.sum(-1) > 0).to(patterns.dtype).expand_as(on_target)
    return (on_target * has_target).sum(-1) / has_target.sum(-1)


def previous_token_detection(T: int) -> torch.Tensor:
    """``D[i, i-1] = 1``: each query's target is the key just before it."""
    return torch.diag(torch.ones(T - 1, dtype=torch.bool), diagonal=-1)


def duplicate_token_detection(tokens: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """``D[i, j] = 1`` where ``tokens[j] == tokens[i]`` and ``j != i`` (``j < i`` if causal).

    tokens: ``(T,)`` or ``(B, T)``; returns ``(..., T, T)`` bool."""
    T = tokens.shape[-1]
    same = tokens[..., :, None] == tokens[..., None, :]
    allowed = torch.ones(T, T, dtype=torch.bool, device=tokens.device)
    allowed = allowed.tril(-1) if causal else allowed.fill_diagonal_(False)
    return same & allowed


def induction_detection(tokens: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """``D[i, j+1] = 1`` where token ``j`` is an earlier occurrence of token ``i``
    (``j < i``; any ``j != i`` if not causal): the token that followed it last time.

    tokens: ``(T,)`` or ``(B, T)``; returns ``(..., T, T)`` bool."""
    dup = duplicate_token_detection(tokens, causal)
    shifted = torch.zeros_like(dup)
    shifted[..., 1:] = dup[..., :-1]  # the key one to the right of each duplicate
    return shifted


def previous_token(patterns: torch.Tensor, normalize: Normalize = "targets") -> torch.Tensor:
    """Mean attention from query ``i`` to key ``i - 1``, over queries ``1..T-1``.

    A perfect previous-token head scores 1; uniform causal attention scores
    ``mean_{i=1..T-1} 1/(i+1)``."""
    T = _check_square(patterns)
    if T < 2:
        raise ValueError("a previous-token score needs at least 2 positions")
    return pattern_match(patterns, previous_token_detection(T).to(patterns.device), normalize)


def duplicate_token(
    patterns: torch.Tensor,
    tokens: torch.Tensor,
    causal: bool = True,
    normalize: Normalize = "targets",
) -> torch.Tensor:
    """Attention from a token to the other occurrences of the same token
    (earlier ones if causal), averaged over the queries whose token occurs there."""
    return pattern_match(patterns, duplicate_token_detection(tokens, causal), normalize)


def induction(
    patterns: torch.Tensor,
    tokens: torch.Tensor,
    causal: bool = True,
    normalize: Normalize = "targets",
) -> torch.Tensor:
    """Attention from a token to the token *after* its earlier occurrences: "last time I
    saw A it was followed by B, so look at B". Averaged over the queries whose token
    occurred before (Olsson et al. 2022; TransformerLens ``induction_head``)."""
    return pattern_match(patterns, induction_detection(tokens, causal), normalize)


def first_token(patterns: torch.Tensor) -> torch.Tensor:
    """Mean attention on key 0 over all queries: the attention sink (BOS / [CLS]).

    Any ``(..., Tq, Tk)``, cross-attention included. In a causal pattern query 0 can only
    attend to itself, so it always adds 1/Tq."""
    return patterns[..., 0].mean(-1)


def entropy(patterns: torch.Tensor) -> torch.Tensor:
    """Mean over queries of the Shannon entropy ``-sum_k p log p`` of each row, in nats.

    0 for a head that puts all its attention on one key; ``log n`` for a uniform row over
    n keys. Any ``(..., Tq, Tk)``."""
    p = patterns
    plogp = torch.where(p > 0, p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny)), 0.0)
    return -plogp.sum(-1).mean(-1)


def induction_probe(
    run_length: int,
    vocab_size: int,
    *,
    seed: int = 0,
    batch: int = 1,
    bos_id: int | None = None,
    exclude: tuple[int, ...] | list[int] = (),
) -> torch.Tensor:
    """The standard induction probe: ``[BOS] + run + run``, a run of random tokens repeated.

    Each run has ``run_length`` distinct tokens drawn uniformly from ``0..vocab_size-1``
    minus ``exclude`` and ``bos_id`` (special tokens), so every token of the second copy has
    exactly one earlier occurrence. Returns ``(batch, [1 +] 2 * run_length)`` int64 ids; the
    same seed gives the same probe.
    """
    banned = set(exclude) | ({bos_id} if bos_id is not None else set())
    allowed = torch.tensor([t for t in range(vocab_size) if t not in banned], dtype=torch.long)
    if not 1 <= run_length <= len(allowed):
        raise ValueError(f"run_length must be in 1..{len(allowed)} (distinct tokens)")
    g = torch.Generator().manual_seed(seed)
    picks = torch.rand(batch, len(allowed), generator=g).argsort(-1)[:, :run_length]
    run = allowed[picks]
    parts = [run, run]
    if bos_id is not None:
        parts.insert(0, torch.full((batch, 1), bos_id, dtype=torch.long))
    return torch.cat(parts, dim=1)
