"""Decoding step by step: the public step objects of /generate and its stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from app.inference.common import ablation_info, prob
from app.inputs import ModelInput, Rows
from app.registry import Entry
from app.serialize import rounded
from models.generate import Sampling, StopReason, generate
from models.pooling import block_edges, pool_rows


@dataclass
class DecodedStep:
    """One decoding step: the public step object, and on the last step why decoding stopped."""

    view: dict
    stop_reason: StopReason | None


def selected(attention: dict[str, torch.Tensor], rows: Rows | None) -> tuple[dict, dict | None]:
    """A step's rows (site -> (L, H, keys)) reduced to the layers and heads asked for, pooled
    into blocks of keys when asked: (rows, edges per site or None)."""
    if rows is None:
        return {site: rounded(a) for site, a in attention.items()}, None
    out, edges = {}, {} if rows.pool else None
    for site, a in attention.items():
        a = a[rows.layers][:, rows.heads]
        if rows.pool:
            edges[site] = block_edges(a.shape[-1], rows.pool)
            a = pool_rows(a, edges[site])
        out[site] = rounded(a)
    return out, edges


def decode_steps(
    entry: Entry,
    ids: list[int],
    sampling: Sampling,
    rows: Rows | None = None,
    edits: dict | None = None,
    start: list[int] | None = None,
) -> Iterator[DecodedStep]:
    """Steps, each made as soon as its token is decoded (KV cache on), carrying the attention
    rows asked for (``rows``; None: every layer and head in full); a seq2seq decoding continues
    ``start`` (its decoder input so far) when one is given.

    A step's token text is what it adds to the decoded output (so " chat" keeps the space
    that a Metaspace or byte-level token carries), falling back to the token alone; a decoding
    that continues ``start`` counts its tokens as output already (as the decoding it replays).
    """
    codec, tok = entry.codec, entry.tokenizer
    out_ids: list[int] = []
    if start is not None and codec is not None:
        out_ids = [i for i in start if i not in codec.special_ids]
    text = tok.decode(out_ids, skip_special_tokens=True) if out_ids else ""
    for step in generate(entry.model, ids, sampling, edits=edits, start=start):

        def ref(i: int) -> dict:
            """id, readable text, and the vocabulary piece itself (its Ġ / ▁ / ## says
            whether it starts a word, which decoding one id alone cannot show)."""
            if codec is None:
                return {"id": i, "text": str(i)}
            return {"id": i, "text": codec.token_text(i), "piece": codec.piece(i)}

        view = {
            "step": step.step,
            "token": ref(step.token_id),
            "prob": prob(step.prob),
            "top": [{**ref(i), "prob": prob(p)} for i, p in step.top],
        }
        view["attention"], edges = selected(step.attention, rows)
        if edges is not None:
            view["attention_edges"] = edges
        if codec is not None and step.token_id not in codec.special_ids:
            out_ids.append(step.token_id)
            new_text = tok.decode(out_ids, skip_special_tokens=True)
            if new_text.startswith(text) and len(new_text) > len(text):
                view["token"]["text"] = new_text[len(text) :]
            text = new_text
        yield DecodedStep(view, step.stop_reason)


def generation_output(entry: Entry, steps: list[DecodedStep]) -> dict:
    tokens = [s.view["token"] for s in steps]
    text_ids = [t["id"] for t in tokens if t["id"] != entry.config.eos_id]
    text = entry.tokenizer.decode(text_ids, skip_special_tokens=True) if entry.tokenizer else ""
    return {"text": text, "tokens": tokens}


def start_of(inp: ModelInput) -> list[int] | None:
    """The decoder input a seq2seq decoding continues (`target_ids`), None: from `<s>`."""
    return inp.target.ids if inp.target is not None else None


def steps_of(inp: ModelInput, sampling: Sampling, rows: Rows | None, edits: dict | None):
    return decode_steps(inp.entry, inp.source.ids, sampling, rows, edits, start_of(inp))


def prompt_info(inp: ModelInput) -> dict:
    """What the answer says of its input: the prompt or source, the given target (if any),
    and its rows (nothing when they are every head's, in full)."""
    out = {"prompt": inp.source.tokens}
    if inp.target is not None:
        out["target"] = inp.target.tokens
    if inp.rows is not None:
        out["rows"] = {"layers": inp.rows.layers, "heads": inp.rows.heads, "pool": inp.rows.pool}
    return out


def baseline(inp: ModelInput, sampling: Sampling) -> dict:
    """Under an ablation: what the same decoding (same seed) says without it."""
    if not inp.ablate:
        return {}
    steps = list(steps_of(inp, sampling, Rows([], [], None), None))
    done = {"output": generation_output(inp.entry, steps), "stop_reason": steps[-1].stop_reason}
    return ablation_info(inp, baseline=done)


def generation(inp: ModelInput, sampling: Sampling) -> dict:
    """POST /generate: every step, the output and why it stopped."""
    entry = inp.entry
    steps = list(steps_of(inp, sampling, inp.rows, inp.edits))
    return {
        "model": entry.id,
        "kind": entry.config.kind,
        **prompt_info(inp),
        "steps": [s.view for s in steps],
        "output": generation_output(entry, steps),
        "stop_reason": steps[-1].stop_reason,
        **baseline(inp, sampling),
    }
