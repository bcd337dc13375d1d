"""Decoding step by step: the public step objects of /generate and its stream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from app.inference.common import prob
from app.inputs import ModelInput
from app.registry import Entry
from app.serialize import rounded
from models.generate import Sampling, StopReason, generate


@dataclass
class DecodedStep:
    """One decoding step: the public step object, and on the last step why decoding stopped."""

    view: dict
    stop_reason: StopReason | None


def decode_steps(entry: Entry, ids: list[int], sampling: Sampling) -> Iterator[DecodedStep]:
    """Steps, each made as soon as its token is decoded (KV cache on).

    A step's token text is what it adds to the decoded output (so " chat" keeps the space
    that a Metaspace or byte-level token carries), falling back to the token alone.
    """
    codec, tok = entry.codec, entry.tokenizer
    out_ids: list[int] = []
    text = ""
    for step in generate(entry.model, ids, sampling):

        def shown(i: int) -> str:
            return codec.token_text(i) if codec else str(i)

        view = {
            "step": step.step,
            "token": {"id": step.token_id, "text": shown(step.token_id)},
            "prob": prob(step.prob),
            "top": [{"id": i, "text": shown(i), "prob": prob(p)} for i, p in step.top],
            "attention": {site: rounded(a) for site, a in step.attention.items()},
        }
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


def generation(inp: ModelInput, sampling: Sampling) -> dict:
    """POST /generate: every step, the output and why it stopped."""
    entry = inp.entry
    steps = list(decode_steps(entry, inp.source.ids, sampling))
    return {
        "model": entry.id,
        "kind": entry.config.kind,
        "prompt": inp.source.tokens,
        "steps": [s.view for s in steps],
        "output": generation_output(entry, steps),
        "stop_reason": steps[-1].stop_reason,
    }
