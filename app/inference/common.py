"""What every job shares: one forward pass over a resolved input, the seq2seq target."""

from __future__ import annotations

import torch

from app.inputs import ModelInput, Sequence
from app.registry import Entry
from models import capture
from models.generate import Sampling, generate
from models.hooks import Trace

PROB_DECIMALS = 6


def prob(x: float) -> float:
    return round(float(x), PROB_DECIMALS)


def as_batch(ids: list[int], entry: Entry) -> torch.Tensor:
    """One sequence of ids as a (1, T) tensor on the model's device."""
    return torch.tensor([ids], dtype=torch.long, device=entry.device)


def forward(
    entry: Entry,
    source_ids: list[int],
    target_ids: list[int] | None = None,
    names=(),
    edits: dict | None = None,
    slices: dict | None = None,
) -> Trace:
    """One forward pass of the model's stacks over a single sequence, recording ``names`` (of
    some only the part ``slices`` says: see models.hooks.Trace). The stacks only: no logits,
    so ``hook_logits`` never fires here.

        encoder: encode the source. decoder: decode the source (the prompt). seq2seq: encode the
        source, then decode ``target_ids`` over it (encode only when no target is given).
    """
    model = entry.model
    with capture(model, names, edits=edits, slices=slices) as trace:
        src = as_batch(source_ids, entry)
        if entry.config.kind == "decoder":
            model.decode_states(src)  # no vocabulary head: nothing here reads logits
        else:
            memory = model.encode(src)
            if target_ids is not None:
                model.decode_states(as_batch(target_ids, entry), memory)
    return trace


def greedy_target(
    entry: Entry, source_ids: list[int], max_new_tokens: int, edits: dict | None = None
) -> Sequence:
    """seq2seq: <s> + the model's own greedy output (its final </s> left out)."""
    cfg = entry.config
    budget = max(1, min(max_new_tokens, cfg.max_len - 1))
    ids = [cfg.bos_id]
    sampling = Sampling(max_new_tokens=budget)
    for step in generate(entry.model, source_ids, sampling, capture_attention=False, edits=edits):
        if step.token_id == cfg.eos_id:
            break
        ids.append(step.token_id)
    return Sequence(ids, entry.codec.ids_view(ids) if entry.codec else None)


def target_of(inp: ModelInput, max_new_tokens: int) -> Sequence | None:
    """seq2seq: the target given, else the model's own greedy translation. Others: None."""
    if inp.entry.config.kind != "seq2seq" or inp.target is not None:
        return inp.target
    return greedy_target(inp.entry, inp.source.ids, max_new_tokens, inp.edits)


def tokens_of(inp: ModelInput, target: Sequence | None) -> dict:
    tokens = {"source": inp.source.tokens}
    if target is not None:
        tokens["target"] = target.tokens
    return tokens


def ablation_info(inp: ModelInput, **extra) -> dict:
    """The answer's `ablation` object (nothing without an ablation)."""
    if not inp.ablate:
        return {}
    heads = [a._asdict() for a in inp.ablate]
    return {"ablation": {"heads": heads, **extra}}
