"""Turning token-id lists into padded batches, and BERT's masking of tokens."""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence. Returns ids (B, T) and mask (B, T), True = token."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = True
    return ids, mask


def mask_tokens(
    ids: torch.Tensor,
    maskable: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    first_normal_id: int,
    prob: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's MLM corruption: choose `prob` of the maskable tokens (at least one per row);
    of those 80 % become [MASK], 10 % a random token, 10 % stay. Labels are -100 elsewhere."""
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & maskable
    # guarantee a target in every row: pick one maskable position where none was chosen
    empty = ~chosen.any(dim=1)
    if empty.any():
        noise = torch.rand(ids.shape, generator=generator).masked_fill(~maskable, -1.0)
        chosen[empty, noise[empty].argmax(dim=1)] = True
    labels = ids.masked_fill(~chosen, -100)
    corrupted = ids.clone()
    roll = torch.rand(ids.shape, generator=generator)
    corrupted[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    corrupted[swap] = torch.randint(
        first_normal_id, vocab_size, (int(swap.sum()),), generator=generator
    )
    return corrupted, labels


def sample_batch(rng: random.Random, data: Sequence, batch_size: int) -> list:
    return [data[rng.randrange(len(data))] for _ in range(batch_size)]


def repeated_runs_batch(
    batch: int,
    seq_len: int,
    run_lengths: Sequence[int],
    max_gap: int,
    *,
    low: int,
    high: int,
    bos_id: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, list[list[tuple[int, int, int]]]]:
    """Induction training data: BOS, then random runs that each occur twice, in random filler.

    Each row is filled left to right with: 0..max_gap filler tokens, a run of L random tokens
    (L drawn from ``run_lengths``), 0..max_gap filler tokens, the same run again; and so on
    while the next pair fits, the rest filler. Tokens are uniform over ``low..high-1``.
    Neither a run's length, its place nor the distance between its copies is fixed.

    Returns ids ``(batch, seq_len)``; ``copied`` ``(batch, seq_len)``, True at the tokens
    induction predicts (a second copy after its first token, which follows filler); and per
    row the ``(first start, second start, L)`` of each pair.
    """
    lengths = [int(n) for n in run_lengths]
    if 1 + 2 * (max(lengths) + max_gap) > seq_len:  # so that every row holds a pair
        raise ValueError(f"runs of {max(lengths)} twice with gaps do not fit in {seq_len} tokens")
    ids = torch.randint(low, high, (batch, seq_len), generator=generator)
    ids[:, 0] = bos_id
    copied = torch.zeros(batch, seq_len, dtype=torch.bool)
    spans: list[list[tuple[int, int, int]]] = []
    for row in range(batch):
        pos, pairs = 1, []
        while True:
            n = lengths[int(torch.randint(len(lengths), (1,), generator=generator))]
            before, between = torch.randint(max_gap + 1, (2,), generator=generator).tolist()
            first = pos + before
            second = first + n + between
            if second + n > seq_len:
                break
            ids[row, second : second + n] = ids[row, first : first + n]
            copied[row, second + 1 : second + n] = True
            pairs.append((first, second, n))
            pos = second + n
        spans.append(pairs)
    return ids, copied, spans
