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


def repeated_run_batch(
    batch: int,
    seq_len: int,
    run_lengths: Sequence[int],
    *,
    low: int,
    high: int,
    bos_id: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Induction training data: BOS, random filler, and one random run that occurs twice.

    Per row: a run length L drawn from ``run_lengths``, L random tokens from ``low..high-1``,
    and the ``seq_len - 1 - 2L`` filler tokens split at random into before / between / after
    the two copies, so neither the copies' positions nor their distance is fixed.
    Returns ids ``(batch, seq_len)`` and ``spans`` ``(batch, 3)``: first start, second start, L.
    """
    lengths = torch.tensor(list(run_lengths))
    if int(lengths.max()) * 2 + 1 > seq_len:
        raise ValueError(f"runs of {int(lengths.max())} twice do not fit in {seq_len} tokens")
    ids = torch.randint(low, high, (batch, seq_len), generator=generator)
    ids[:, 0] = bos_id
    picks = lengths[torch.randint(len(lengths), (batch,), generator=generator)]
    spans = torch.empty(batch, 3, dtype=torch.long)
    for row, n in enumerate(picks.tolist()):
        filler = seq_len - 1 - 2 * n
        cuts = torch.randint(filler + 1, (2,), generator=generator).sort().values.tolist()
        first = 1 + cuts[0]
        second = first + n + (cuts[1] - cuts[0])
        ids[row, second : second + n] = ids[row, first : first + n]
        spans[row] = torch.tensor([first, second, n])
    return ids, spans
