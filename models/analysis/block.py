"""Inside one transformer block: its Add & Norm and its FFN, read off one forward pass.

    names = block_hooks(model, "decoder", 1)
    with capture(model, names) as trace:
        model.decode_states(ids)
    reading = read_block(model, trace, "decoder", 1)

Everything comes from the block's hook points: the stream each norm reads (``hook_in``), the
normalised vectors (``hook_normalized``), what the norm hands on (``hook_out``), the FFN's
hidden units before and after the non-linearity (``ffn.hook_pre`` / ``hook_post``, and
SwiGLU's ``hook_gate`` / ``hook_up``), what each sublayer adds to the stream, and the residual
stream around every sublayer of the stack. The block's order (where its norms sit) is the
order in which those hook points fired, not what the config says it should be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.analysis.normalization import TokenStats, token_stats
from models.hooks import Trace, hook_name

#: a block's sublayers: module -> (step name, the block hook of its output)
SUBLAYERS = {
    "attn": ("attention", "attn_out"),
    "cross_attn": ("cross_attention", "cross_out"),
    "ffn": ("ffn", "ffn_out"),
}
#: a block's norms, in module order, and the residual point after each sublayer
BLOCK_NORMS = ("attn_norm", "cross_norm", "ffn_norm")
AFTER = {"attn": "resid_mid", "cross_attn": "resid_cross", "ffn": "resid_post"}
NORM_PARTS = ("in", "normalized", "out")


def _norm_modules(model: nn.Module, stack: str, layer: int) -> dict[str, nn.Module]:
    """name -> norm module that normalises (not an Identity): the block's own, the stack's
    embedding norm before block 0, its final norm after the last block."""
    stack_module = getattr(model, stack)
    block = stack_module.blocks[layer]
    norms = {n: getattr(block, n) for n in BLOCK_NORMS}
    if layer == 0:
        norms = {"embed_norm": stack_module.embed_norm, **norms}
    if layer == len(stack_module.blocks) - 1:
        norms["final_norm"] = stack_module.final_norm
    return {n: m for n, m in norms.items() if hasattr(m, "hook_normalized")}


def _norm_hook(stack: str, layer: int, norm: str, part: str) -> str:
    where_layer = None if norm in ("embed_norm", "final_norm") else layer
    return hook_name(stack, where_layer, f"{norm}.{part}")


def _sublayers(model: nn.Module, stack: str, layer: int) -> list[str]:
    block = getattr(model, stack).blocks[layer]
    return [s for s in SUBLAYERS if getattr(block, s, None) is not None]


def residual_points(model: nn.Module, stack: str) -> list[tuple[int | None, str, str]]:
    """(layer, sublayer, hook) of the stream: before the first block, then after each sublayer
    of every block."""
    points: list[tuple[int | None, str, str]] = [(None, "embed", hook_name(stack, 0, "resid_pre"))]
    for li in range(len(getattr(model, stack).blocks)):
        for sub in _sublayers(model, stack, li):
            points.append((li, sub, hook_name(stack, li, AFTER[sub])))
    return points


def block_hooks(model: nn.Module, stack: str, layer: int) -> list[str]:
    """Every hook point read_block reads."""
    names = []
    for norm in _norm_modules(model, stack, layer):
        names += [_norm_hook(stack, layer, norm, p) for p in NORM_PARTS]
    for sub in _sublayers(model, stack, layer):
        first = "ffn.pre" if sub == "ffn" else f"{sub}.in"
        names.append(hook_name(stack, layer, first))
    block = getattr(model, stack).blocks[layer]
    if block.ffn is not None:
        names.append(hook_name(stack, layer, "ffn.post"))
        if block.ffn.W_3 is not None:
            names += [hook_name(stack, layer, "ffn.gate"), hook_name(stack, layer, "ffn.up")]
    for li in range(len(getattr(model, stack).blocks)):
        names += [hook_name(stack, li, SUBLAYERS[s][1]) for s in _sublayers(model, stack, li)]
    names += [hook for _, _, hook in residual_points(model, stack)]
    names.append(first_stream_hook(model, stack, layer))
    return list(dict.fromkeys(names))


@dataclass
class Step:
    """One step of the block as it ran: a norm, a sublayer, or an addition to the stream."""

    step: str  # "norm" | "attention" | "cross_attention" | "ffn" | "add"
    module: str  # "attn_norm", "attn", ... (for "add": the sublayer whose output is added)


@dataclass
class NormReading:
    kind: str  # "layernorm" | "rmsnorm"
    eps: float
    stream: torch.Tensor  # (T, D) what it reads (hook_in)
    normalized: torch.Tensor  # (T, D) mean 0 / variance 1 (LayerNorm) or RMS 1 (RMSNorm)
    output: torch.Tensor  # (T, D) after the gain (and bias): what comes next reads
    gain: torch.Tensor  # (D,) γ
    bias: torch.Tensor | None  # (D,) β (LayerNorm)

    def stats(self) -> dict[str, TokenStats]:
        return {p: token_stats(getattr(self, p)) for p in ("stream", "normalized", "output")}


@dataclass
class FFNReading:
    activation: str
    pre: torch.Tensor  # (T, d_ff) W_1 x
    post: torch.Tensor  # (T, d_ff) after the non-linearity (SwiGLU: the gated product)
    gate: torch.Tensor | None  # (T, d_ff) SwiGLU: silu(W_1 x)
    up: torch.Tensor | None  # (T, d_ff) SwiGLU: W_3 x
    out: torch.Tensor  # (T, D) W_2 · post (+ bias): what the FFN adds to the stream
    zeroed: torch.Tensor  # (T,) share of units the non-linearity shuts (soft for GELU, SiLU)
    unit_write: torch.Tensor  # (d_ff,) ‖W_2[:, u]‖: how far one unit of activation moves the stream


@dataclass
class Residual:
    points: list[tuple[int | None, str]]  # (layer, "embed" | sublayer) in stream order
    l2: torch.Tensor  # (P, T) ‖stream‖ per token at each point
    added: torch.Tensor  # (P, T) ‖what was added there‖ (the embeddings for "embed")


@dataclass
class BlockReading:
    stack: str
    layer: int
    order: list[Step]
    norms: dict[str, NormReading]
    ffn: FFNReading | None
    residual: Residual
    first_stream: str  # the hook of the stream the block's first norm reads (or its input)


def pass_fraction(pre: torch.Tensor, activation: str) -> torch.Tensor:
    """act(x) / x: the fraction of each unit's input the non-linearity lets through — 0 or 1
    for ReLU, Φ(x) for GELU, σ(x) for SiLU and SwiGLU's gate."""
    x = pre.double()
    if activation == "relu":
        return (x > 0).double()
    if activation == "gelu":
        return 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    if activation == "gelu_tanh":
        return 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if activation in ("silu", "swiglu"):
        return torch.sigmoid(x)
    raise ValueError(f"unknown activation {activation!r}")


def _order(trace: Trace, stack: str, layer: int, norms, sublayers) -> list[Step]:
    events = {_norm_hook(stack, layer, n, "in"): Step("norm", n) for n in norms}
    for sub in sublayers:
        first = "ffn.pre" if sub == "ffn" else f"{sub}.in"
        events[hook_name(stack, layer, first)] = Step(SUBLAYERS[sub][0], sub)
        events[hook_name(stack, layer, SUBLAYERS[sub][1])] = Step("add", sub)
    # a trace keeps its tensors in the order the hook points fired
    return [events[name] for name in trace.tensors if name in events]


def read_block(model: nn.Module, trace: Trace, stack: str, layer: int, item: int = 0):
    """The block's reading from a trace recorded over block_hooks(model, stack, layer);
    ``item``: which sequence of the batch."""
    cfg = model.config

    def at(name: str) -> torch.Tensor:
        return trace[name][item]

    norms = {}
    for name, module in _norm_modules(model, stack, layer).items():
        norms[name] = NormReading(
            kind=cfg.norm,
            eps=module.eps,
            stream=at(_norm_hook(stack, layer, name, "in")),
            normalized=at(_norm_hook(stack, layer, name, "normalized")),
            output=at(_norm_hook(stack, layer, name, "out")),
            gain=module.weight.detach(),
            bias=None if getattr(module, "bias", None) is None else module.bias.detach(),
        )
    block = getattr(model, stack).blocks[layer]
    ffn = None
    if block.ffn is not None:
        pre = at(hook_name(stack, layer, "ffn.pre"))
        swiglu = block.ffn.W_3 is not None
        ffn = FFNReading(
            activation=cfg.activation,
            pre=pre,
            post=at(hook_name(stack, layer, "ffn.post")),
            gate=at(hook_name(stack, layer, "ffn.gate")) if swiglu else None,
            up=at(hook_name(stack, layer, "ffn.up")) if swiglu else None,
            out=at(hook_name(stack, layer, "ffn_out")),
            zeroed=(1 - pass_fraction(pre, cfg.activation)).mean(-1),
            unit_write=torch.linalg.vector_norm(block.ffn.W_2.weight.detach().double(), dim=0),
        )
    points = residual_points(model, stack)
    l2, added = [], []
    for li, sub, hook in points:
        l2.append(torch.linalg.vector_norm(at(hook).double(), dim=-1))
        wrote = hook if li is None else hook_name(stack, li, SUBLAYERS[sub][1])
        added.append(torch.linalg.vector_norm(at(wrote).double(), dim=-1))
    sublayers = _sublayers(model, stack, layer)
    return BlockReading(
        stack=stack,
        layer=layer,
        order=_order(trace, stack, layer, norms, sublayers),
        norms=norms,
        ffn=ffn,
        residual=Residual(
            [(li, sub) for li, sub, _ in points], torch.stack(l2), torch.stack(added)
        ),
        first_stream=first_stream_hook(model, stack, layer),
    )


def first_stream_hook(model: nn.Module, stack: str, layer: int) -> str:
    """The stream the block's first norm reads (its hook_in), or the block's input when the
    model has no norms: the activations the normalisation comparison takes."""
    block = getattr(model, stack).blocks[layer]
    if hasattr(block.attn_norm, "hook_normalized"):
        return hook_name(stack, layer, "attn_norm.in")
    return hook_name(stack, layer, "resid_pre")
