"""Beyond attention weights: the logit lens, attention rollout, direct logit attribution."""

from __future__ import annotations

import numpy as np
import torch

from app.inference.common import (
    PROB_DECIMALS,
    ablation_info,
    as_batch,
    forward,
    target_of,
    tokens_of,
)
from app.inputs import ModelInput, Sequence
from app.serialize import Format, rounded, tensor
from models.analysis.attribution import direct_logit_attribution
from models.analysis.lens import run_logit_lens
from models.analysis.rollout import rollout as attention_rollout
from models.hooks import hook_name


def _forward_ids(inp: ModelInput, target: Sequence | None):
    entry = inp.entry
    return as_batch(inp.source.ids, entry), None if target is None else as_batch(target.ids, entry)


def logit_lens(inp: ModelInput, k: int, max_new_tokens: int) -> dict:
    """POST /logit-lens: every layer's residual stream read through the unembedding."""
    entry, cfg = inp.entry, inp.entry.config
    target = target_of(inp, max_new_tokens)
    ids, target_ids = _forward_ids(inp, target)
    lens = run_logit_lens(entry.model, ids, target_ids, inp.positions, k, edits=inp.edits)
    ids_seen = sorted(set(lens.top_ids.flatten().tolist()) | set(lens.final_ids.tolist()))
    shown = entry.codec.token_text if entry.codec else str
    return {
        "model": entry.id,
        "kind": cfg.kind,
        "stack": inp.predicting,
        "tokens": tokens_of(inp, target),
        "layers": lens.layers,
        "positions": lens.positions,
        "top_ids": lens.top_ids.tolist(),
        "top_probs": np.round(lens.top_probs.cpu().numpy(), PROB_DECIMALS),
        "final_ids": lens.final_ids.tolist(),
        "final_probs": np.round(lens.final_probs.cpu().numpy(), PROB_DECIMALS),
        "vocab": {str(i): shown(i) for i in ids_seen},
        **ablation_info(inp),
    }


def rollout(inp: ModelInput, fmt: Format, max_new_tokens: int) -> dict:
    """POST /rollout: attention rollout of every self-attention site."""
    entry, cfg = inp.entry, inp.entry.config
    target = target_of(inp, max_new_tokens)
    sites = {s: n for s, n in cfg.sites.items() if s.endswith(".self")}
    names = [hook_name(s, li, "pattern") for s, n in sites.items() for li in range(n)]
    trace = forward(entry, inp.source.ids, target.ids if target else None, names, inp.edits)
    out = {}
    for site, n in sites.items():
        patterns = torch.stack([trace[hook_name(site, li, "pattern")][0] for li in range(n)])
        out[site] = tensor(attention_rollout(patterns.double()), fmt, prob=True)
    return {
        "model": entry.id,
        "kind": cfg.kind,
        "format": fmt,
        "tokens": tokens_of(inp, target),
        "rollout": out,
        **ablation_info(inp),
    }


def attribution(inp: ModelInput, token: int | None, head, max_new_tokens: int) -> dict:
    """POST /attribution: direct logit attribution at one position."""
    entry, cfg = inp.entry, inp.entry.config
    target = target_of(inp, max_new_tokens)
    ids, target_ids = _forward_ids(inp, target)
    head_ref = None if head is None else (head.site, head.layer, head.head)
    attr = direct_logit_attribution(
        entry.model,
        ids,
        target_ids,
        position=inp.positions[0],
        token=token,
        head=head_ref,
        edits=inp.edits,
    )
    shown = entry.codec.token_text(attr.token) if entry.codec else str(attr.token)
    return {
        "model": entry.id,
        "kind": cfg.kind,
        "tokens": tokens_of(inp, target),
        "position": attr.position,
        "token": {"id": attr.token, "text": shown},
        "logit": round(attr.logit, 4),
        "total": round(attr.total, 4),
        "heads": {s: rounded(h) for s, h in attr.heads.items()},
        "parts": [{"name": n, "value": round(v, 4)} for n, v in attr.parts.items()],
        "head_positions": None if attr.head_positions is None else rounded(attr.head_positions),
        **ablation_info(inp),
    }
