"""POST /patch: activation patching of one clean / corrupted pair (models/analysis/patching)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from app.errors import invalid
from app.inference.common import as_batch, greedy_target
from app.inputs import PatchQuery, Sequence
from models.analysis.patching import Inputs, Metric, attribute, sweep, top_tokens

EFFECT_DECIMALS = 6
TOP_K = 8  # the most likely tokens at the position, per input, in the answer

DEFINITIONS = {
    "effect": "(m(patched) − m(corrupted)) / (m(clean) − m(corrupted)): 1 when the patched "
    "activation alone restores the clean metric, 0 when it changes nothing",
    "patch": "the corrupted input runs with one activation of the clean input written in "
    "(denoising)",
    "logit_diff": "logit(answer) − logit(wrong) at the position",
    "logprob": "log p(answer) at the position",
    "classifier": "the metric reads the [CLS] classification head: answer and wrong are classes",
    "resid_pre": "the stream entering a block, at one position: [L][T] per stack",
    "attn_out": "a block's self-attention output (after W_O), at one position: [L][T] per stack",
    "cross_out": "a decoder block's cross-attention output, at one position: [L][T]",
    "mlp_out": "a block's FFN output, at one position: [L][T] per stack",
    "head_z": "one head's output before W_O, at every position: [L][H] per attention site",
    "head_pattern": "one head's attention pattern at every position, its values the corrupted "
    "run's: [L][H] per attention site",
    "memory": "seq2seq: the encoder's output at one source position, as the decoder reads it: "
    "[1][S]",
    "attribution": "an approximation: m(patched) − m(corrupted) ≈ (a_clean − a_corrupted) · "
    "∂m/∂a, the gradient taken on the corrupted run (attribution patching, Nanda 2023)",
}


def _token(entry, token_id: int | None, head: str) -> dict | None:
    if token_id is None:
        return None
    if head == "classifier":
        labels = entry.config.labels
        return {"id": token_id, "text": labels[token_id] if labels else str(token_id)}
    codec = entry.codec
    return {
        "id": token_id,
        "text": codec.token_text(token_id) if codec else str(token_id),
        "piece": codec.piece(token_id) if codec else None,
    }


def _position(q: PatchQuery, predicted_len: int) -> int:
    """The predicting position: given (negative from the end), else the family's default."""
    if q.head == "classifier":
        return 0
    if q.position is not None:
        if not -predicted_len <= q.position < predicted_len:
            raise invalid(
                "metric.position",
                f"position {q.position} is outside the {predicted_len} target tokens",
                "out_of_range",
            )
        return q.position % predicted_len
    if q.entry.config.kind == "encoder":
        return q.clean.ids.index(q.entry.codec.mask_id)
    return predicted_len - 1


def _question(q: PatchQuery, max_new_tokens: int) -> tuple[Inputs, Sequence | None, dict]:
    """The models-level question, the seq2seq target (given, else the model's own) and the
    model's top tokens at the position on each input (the metric's defaults come from them)."""
    entry, cfg = q.entry, q.entry.config
    target = q.target
    if cfg.kind == "seq2seq" and target is None:
        target = greedy_target(entry, q.clean.ids, max_new_tokens)
    predicted = target if cfg.kind == "seq2seq" else q.clean
    position = _position(q, len(predicted.ids))
    ids = {
        name: as_batch(seq.ids, entry)
        for name, seq in (("clean", q.clean), ("corrupted", q.corrupted))
    }
    target_ids = None if target is None else as_batch(target.ids, entry)
    top = {
        name: top_tokens(entry.model, x, target_ids, position, q.head, TOP_K)
        for name, x in ids.items()
    }
    answer = q.answer if q.answer is not None else top["clean"][0][0]
    wrong = q.wrong
    if q.kind == "logit_diff" and wrong is None:
        wrong = next(i for i, _ in top["corrupted"] + top["clean"] if i != answer)
    metric = Metric(q.kind, answer, wrong if q.kind == "logit_diff" else None, position, q.head)
    return Inputs(ids["clean"], ids["corrupted"], target_ids, metric), target, top


def patching(q: PatchQuery, max_new_tokens: int) -> dict:
    """POST /patch: the whole sweep, then the answer."""
    *_, answer = patching_steps(q, max_new_tokens)
    return answer


def patching_steps(q: PatchQuery, max_new_tokens: int) -> Iterator[dict]:
    """POST /patch/stream: ``{"done", "total"}`` after each batch of patched runs, then the
    answer (a consumer that stops iterating stops the sweep at its next batch)."""
    inp, target, top = _question(q, max_new_tokens)
    if q.method == "attribution":
        yield {"done": 0, "total": 1}
        result = attribute(q.entry.model, inp, q.sites)
    else:
        for item in sweep(q.entry.model, inp, q.sites, q.chunk):
            if isinstance(item, tuple):
                yield {"done": item[0], "total": item[1]}
            else:
                result = item
    yield _answer(q, inp, target, top, result)


def _answer(q: PatchQuery, inp: Inputs, target: Sequence | None, top: dict, result) -> dict:
    entry, cfg, metric = q.entry, q.entry.config, inp.metric
    denominator = result.clean - result.corrupted
    flat = abs(denominator) <= 1e-9 * max(1.0, abs(result.clean))
    reasons = dict(result.reasons)
    effects: dict = {}
    for site in q.sites:
        if site not in result.values:
            effects[site] = None
        elif flat and not q.raw:
            effects[site] = None
            reasons[site] = (
                f"m(clean) = m(corrupted) = {result.clean:.6g}: the inputs do not differ in "
                "this metric, so no activation can restore anything (ask for raw values, or "
                "pick another answer, wrong token or position)"
            )
        else:
            effects[site] = {
                group: _values(grid, result.corrupted, denominator, q.raw)
                for group, grid in result.values[site].items()
            }
    tokens = {}
    for name, seq in (("clean", q.clean), ("corrupted", q.corrupted)):
        tokens[name] = {"source": seq.tokens}
        if target is not None:
            tokens[name]["target"] = target.tokens
    return {
        "model": entry.id,
        "kind": cfg.kind,
        "method": q.method,
        "approximation": q.method == "attribution",
        "raw": q.raw,
        "tokens": tokens,
        "differing": [
            k for k, (a, b) in enumerate(zip(q.clean.ids, q.corrupted.ids, strict=True)) if a != b
        ],
        "metric": {
            "kind": q.kind,
            "head": q.head,
            "answer": _token(entry, metric.answer, q.head),
            "wrong": _token(entry, metric.wrong, q.head),
            "position": metric.position,
            "clean": round(result.clean, EFFECT_DECIMALS),
            "corrupted": round(result.corrupted, EFFECT_DECIMALS),
            "top": {
                name: [
                    {**_token(entry, i, q.head), "prob": round(p, EFFECT_DECIMALS)}
                    for i, p in tokens
                ]
                for name, tokens in top.items()
            },
        },
        "effects": effects,
        "reasons": reasons,
        "definitions": {
            k: v
            for k, v in DEFINITIONS.items()
            if k in ("effect", "patch", q.kind, *q.sites)
            or (k == "classifier" and q.head == "classifier")
            or (k == "attribution" and q.method == "attribution")
        },
    }


def _values(grid: torch.Tensor, corrupted: float, denominator: float, raw: bool) -> list:
    values = grid if raw else (grid - corrupted) / denominator
    out = values.tolist()
    return [[round(v, EFFECT_DECIMALS) if math.isfinite(v) else None for v in row] for row in out]
