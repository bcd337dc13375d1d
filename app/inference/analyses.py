"""Beyond attention weights: the logit lens, attention rollout, direct logit attribution."""

from __future__ import annotations

import time
from collections.abc import Iterator

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
from models.analysis import scores
from models.analysis.attribution import direct_logit_attribution
from models.analysis.importance import attribution_patching, importance_sweep, sweep_work
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
    lens = run_logit_lens(
        entry.model, ids, target_ids, inp.positions, k, edits=inp.edits, vocab_chunk=inp.chunk
    )
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


SCORE_DEFINITIONS = {
    "previous_token": "attention from each token to the one just before it (mean over queries)",
    "induction": "attention from a repeated token to the token after its earlier occurrence "
    "(Olsson et al. 2022), over the queries whose token occurred before",
    "duplicate_token": "attention from a token to its earlier occurrences",
    "first_token": "attention on the first key, key 0 (an attention sink where key 0 is a start "
    "token: BOS, [CLS], <s>)",
    "entropy": "entropy of each attention row in nats (0: one key; log n: uniform)",
    "importance": "drop in the log-probability of the model's own predictions when this head "
    "alone is ablated (mean over the predicted positions; positive: the output needs it)",
}
APPROXIMATE_IMPORTANCE = (
    "APPROXIMATION (attribution patching): the first-order estimate, from one forward and "
    "one backward pass, of the drop in the log-probability of the model's own predictions "
    "when this head alone is ablated (gradient × the change the ablation makes to the head's "
    "output); ask importance_method exact for the measured drop"
)
PATTERN_SCORES = ("previous_token", "induction", "duplicate_token", "first_token", "entropy")


def head_scores(
    inp: ModelInput,
    wanted,
    mode: str,
    max_new_tokens: int,
    probe: dict | None,
    method: str = "exact",
) -> dict:
    """POST /heads/scores: every head's scores per site, [L][H] each."""
    *_, answer = head_scores_steps(inp, wanted, mode, max_new_tokens, probe, method)
    return answer


def head_scores_steps(
    inp: ModelInput,
    wanted,
    mode: str,
    max_new_tokens: int,
    probe: dict | None,
    method: str = "exact",
) -> Iterator[dict]:
    """POST /heads/scores/stream: with the exact importance sweep, a ``progress`` dict
    (``sweep_progress``) before the first batch and after each, then the answer of
    ``head_scores`` (a consumer that stops iterating stops the sweep at its next batch).
    Without it (pattern scores, the attribution-patching estimate), only the answer."""
    entry, cfg, model = inp.entry, inp.entry.config, inp.entry.model
    wanted = list(wanted or SCORE_DEFINITIONS)
    target = target_of(inp, max_new_tokens)
    if set(wanted) - {"importance"}:
        out = _pattern_scores(inp, target, wanted)  # its patterns are freed before the sweep
    else:
        out = {site: {} for site in cfg.sites}
    if "importance" in wanted:
        has_head = getattr(model, "lm_head", None) is not None
        ids, target_ids = _forward_ids(inp, target)
        if not has_head:
            sweep = {}
        elif method == "attribution_patching":
            sweep = attribution_patching(model, ids, target_ids, inp.positions, mode)
        else:
            chunk = inp.chunk or 32
            started = None
            work = sweep_work(model, chunk)
            for item in importance_sweep(model, ids, target_ids, inp.positions, mode, chunk):
                if isinstance(item, dict):
                    sweep = item
                    continue
                started = started or time.perf_counter()
                yield sweep_progress(*item, cfg.n_heads, time.perf_counter() - started, work)
        for site in cfg.sites:
            out[site]["importance"] = sweep.get(site)
    yield {
        "model": entry.id,
        "kind": cfg.kind,
        "input": "probe" if probe else "text",
        "probe": probe,
        "tokens": tokens_of(inp, target),
        "scores": {
            site: {name: None if v is None else _nullable(v) for name, v in per.items()}
            for site, per in out.items()
        },
        "definitions": {name: _definition(name, method) for name in wanted},
    }


def sweep_progress(
    done: int, total: int, n_heads: int, elapsed_s: float, work: list[float] | None = None
) -> dict:
    """``{done, total, unit, layer, n_layers, eta_s}``: heads ablated of all heads; the layer the
    sweep has reached (1-based, the layers of every attention site counted in order: the
    ``done``-th head is in layer ⌈done / H⌉); the seconds left at the rate measured since the
    first batch started (None before any batch has finished), per unit of ``work``
    (importance.sweep_work: a later layer's heads cost less, they run fewer blocks), else per
    head."""
    if done == 0:
        eta = None
    elif work is not None:
        eta = round(elapsed_s / work[done] * (work[total] - work[done]), 1)
    else:
        eta = round(elapsed_s / done * (total - done), 1)
    return {
        "done": done,
        "total": total,
        "unit": "heads",
        "layer": max(1, -(-done // n_heads)),
        "n_layers": total // n_heads,
        "eta_s": eta,
    }


def _pattern_scores(inp: ModelInput, target: Sequence | None, wanted: list[str]) -> dict:
    """site -> score -> (L, H): the scores read off the patterns, one layer at a time in
    float64 (all layers at once in float64 would be 2 × the patterns' memory again)."""
    entry, cfg = inp.entry, inp.entry.config
    names = [hook_name(s, li, "pattern") for s, n in cfg.sites.items() for li in range(n)]
    trace = forward(entry, inp.source.ids, target.ids if target else None, names)
    reads = {"encoder.self": inp.source, "decoder.self": target or inp.source}
    out: dict = {}
    for site, n in cfg.sites.items():
        causal = site != "encoder.self"
        tokens = torch.tensor(reads[site].ids) if site in reads else None
        layers = [
            _layer_scores(
                trace[hook_name(site, li, "pattern")][0][None].double(), tokens, causal, wanted
            )
            for li in range(n)
        ]
        out[site] = {
            name: None if layers[0].get(name) is None else torch.cat([per[name] for per in layers])
            for name in wanted
            if name != "importance"
        }
    return out


def _layer_scores(patterns: torch.Tensor, tokens, causal: bool, wanted: list[str]) -> dict:
    """patterns (1, H, Tq, Tk) -> score -> (1, H); a score that does not apply is left out."""
    per = {}
    for name in wanted:
        if name == "importance" or (tokens is None and name not in ("first_token", "entropy")):
            continue
        if name == "previous_token":
            if patterns.shape[-1] < 2:  # one token: no previous one to look at
                continue
            value = scores.previous_token(patterns)
        elif name == "induction":
            value = scores.induction(patterns, tokens, causal)
        elif name == "duplicate_token":
            value = scores.duplicate_token(patterns, tokens, causal)
        else:
            value = getattr(scores, name)(patterns)
        per[name] = value
    return per


def _definition(name: str, method: str) -> str:
    if name == "importance" and method == "attribution_patching":
        return APPROXIMATE_IMPORTANCE
    return SCORE_DEFINITIONS[name]


def _nullable(values: torch.Tensor) -> list:
    """(L, H) rounded, NaN (nothing to measure) as null."""
    return [[None if v != v else round(v, 4) for v in row] for row in values.tolist()]
