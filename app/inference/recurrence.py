"""POST /rnn/unroll: an RNN translator's recurrence step by step, and its gradient norms.

The states and gates come from one forward pass through the model's hook points (the
encoder's and the decoder's cell, the attention's pattern and context); the gradient norms
from autograd (``models.rnn.encoder_state_gradients``), which needs the autograd graph that
the engine's ``torch.inference_mode()`` turns off: the job turns it back on for that part.
"""

from __future__ import annotations

import torch

from app.inference.common import forward, target_of, tokens_of
from app.inputs import ModelInput
from app.registry import Entry
from app.serialize import Format, tensor
from models.hooks import Trace, hook_name
from models.rnn import RecurrentCell, encoder_state_gradients

THROUGH = ("all", "recurrence")
#: where each stack's cell sits (encoder: the stack's own cell; decoder: its one block's)
CELL_AT = {"encoder": ("encoder", None), "decoder": ("decoder", 0)}


def cell_of(entry: Entry, stack: str) -> RecurrentCell:
    return entry.model.encoder.cell if stack == "encoder" else entry.model.decoder.blocks[0].cell


def cell_hooks(entry: Entry, stack: str) -> dict[str, str]:
    """part (wx, wh, h, gates…) -> the hook name of that part of the stack's cell."""
    where, layer = CELL_AT[stack]
    parts = ("wx", "wh", *cell_of(entry, stack).parts)
    return {p: hook_name(where, layer, f"cell.{p}") for p in parts}


def hooks(entry: Entry) -> list[str]:
    return [
        *cell_hooks(entry, "encoder").values(),
        *cell_hooks(entry, "decoder").values(),
        hook_name("encoder", None, "embed"),
        hook_name("decoder", None, "embed"),
        hook_name("decoder", None, "init"),
        hook_name("decoder.cross", 0, "pattern"),
        hook_name("decoder.cross", 0, "z"),
    ]


def steps(entry: Entry, trace: Trace, stack: str, fmt: Format) -> dict:
    """One stack's captured steps: the input, W_x·input and W_h h_{t−1} cut in the cell's
    chunks, the state, the gates."""
    cell = cell_of(entry, stack)
    names = cell_hooks(entry, stack)

    def chunked(part: str) -> torch.Tensor:  # (T, K·d) -> (T, K, d)
        t = trace[names[part]][0]
        return t.reshape(t.shape[0], len(cell.chunks), cell.d)

    return {
        "x": tensor(trace[hook_name(stack, None, "embed")][0], fmt),
        "wx": tensor(chunked("wx"), fmt),
        "wh": tensor(chunked("wh"), fmt),
        "h": tensor(trace[names["h"]][0], fmt),
        "gates": {g: tensor(trace[names[g]][0], fmt) for g in cell.parts if g != "h"},
    }


def gradient_norms(entry: Entry, source_ids: list[int], labelled: list[int]) -> dict:
    """‖∂loss/∂h_t‖ for every encoder step, along every path and along the recurrence alone,
    as plain floats (they span orders of magnitude: no rounding)."""
    with torch.inference_mode(False), torch.enable_grad():
        return {
            through: encoder_state_gradients(entry.model, source_ids, labelled, through).tolist()
            for through in THROUGH
        }


def unroll(inp: ModelInput, compare: Entry | None, fmt: Format, max_new_tokens: int) -> dict:
    """POST /rnn/unroll: every step of both stacks, the alignment, the gradient norms (and
    those of ``compare`` on the same token ids)."""
    entry = inp.entry
    target = target_of(inp, max_new_tokens)
    trace = forward(entry, inp.source.ids, target.ids, hooks(entry))
    # the loss teaches every next token of the decoder's input, and </s> after the last one
    labelled = [*target.ids, entry.config.eos_id]
    answer = {
        "model": entry.id,
        "cell": entry.config.cell,
        "format": fmt,
        "chunks": list(entry.model.encoder.cell.chunks),
        "tokens": tokens_of(inp, target),
        "encoder": steps(entry, trace, "encoder", fmt),
        "decoder": {
            **steps(entry, trace, "decoder", fmt),
            "s0": tensor(trace[hook_name("decoder", None, "init")][0], fmt),
            "context": tensor(trace[hook_name("decoder.cross", 0, "z")][0, 0], fmt),
        },
        "alignment": tensor(trace[hook_name("decoder.cross", 0, "pattern")][0, 0], fmt, prob=True),
        "gradients": gradient_norms(entry, inp.source.ids, labelled),
        "compare": None,
    }
    if compare is not None:
        answer["compare"] = {
            "model": compare.id,
            "cell": compare.config.cell,
            "gradients": gradient_norms(compare, inp.source.ids, labelled),
        }
    return answer
