"""Where an output comes from: value-weighted attention norms and direct logit attribution.

**Value-weighted norms** (Kobayashi et al., 2020). A head moves α_ij · f_h(x_j) from key j to
query i, with f_h(x) = (x W_V + b_V) W_O restricted to head h. Its size ‖α_ij f_h(x_j)‖ can
disagree with α_ij alone: a head may attend strongly to a token whose value vector is tiny.
Since α_ij ≥ 0, ‖α_ij f_h(x_j)‖ = α_ij ‖f_h(x_j)‖.

**Direct logit attribution.** The residual stream at the predicting position is a sum of
what each component wrote into it: token and position embeddings, each head's output (its
slice of W_O), attention and FFN outputs, norm biases. With every norm's scale frozen at its
measured value, each norm is linear, so the logit of a token splits exactly into one term per
component (plus the unembedding bias): logit = Σ_c W_U[token] · N(c) + b_U[token], where N
applies every later frozen norm to c. Pre-norm models pass components through one final norm;
post-norm models through the norm after every later sublayer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from models.hooks import SITE_OUTPUT, capture, hook_name


# ---------------------------------------------------------------------------- norms of heads
def head_value_vectors(v: torch.Tensor, w_o: torch.Tensor | None) -> torch.Tensor:
    """f_h(x_j) for every head and key: v (B, H_kv, Tk, d) from hook_v, w_o (D, H·d) the
    output projection's weight. Returns (B, H, Tk, D). Without an output projection (an RNN's
    additive attention reads the encoder states themselves) f_h is v."""
    if w_o is None:
        return v
    d = v.shape[-1]
    n_heads = w_o.shape[1] // d
    if v.shape[1] != n_heads:  # grouped-query attention: head h reads K/V head h // group
        v = v.repeat_interleave(n_heads // v.shape[1], dim=1)
    w = w_o.view(w_o.shape[0], n_heads, d)  # (D, H, d)
    return torch.einsum("bhkd,ohd->bhko", v, w)


def value_weighted_norms(
    pattern: torch.Tensor, v: torch.Tensor, w_o: torch.Tensor | None
) -> torch.Tensor:
    """‖α_ij f_h(x_j)‖ (B, H, Tq, Tk) from the pattern (B, H, Tq, Tk) and hook_v."""
    f_norm = torch.linalg.vector_norm(head_value_vectors(v, w_o), dim=-1)  # (B, H, Tk)
    return pattern * f_norm[:, :, None, :]


# ---------------------------------------------------------------------------- attribution
@dataclass
class Attribution:
    position: int  # the query position whose output is explained
    token: int  # the token whose logit is explained
    logit: float  # the model's own logit for it
    heads: dict[str, torch.Tensor]  # site -> (L, H) each head's direct contribution
    parts: dict[str, float]  # every other component: embeddings, biases, FFNs, norm shifts
    head_positions: torch.Tensor | None = None  # (Tk,) the chosen head's share per key
    total: float = field(init=False)

    def __post_init__(self) -> None:
        self.total = float(sum(h.sum() for h in self.heads.values()) + sum(self.parts.values()))


def _frozen(norm: nn.Module, x: torch.Tensor) -> tuple[Callable, torch.Tensor | None]:
    """A norm at its measured input x (D,) as a linear map plus a shift."""
    if isinstance(norm, nn.Identity):
        return (lambda c: c), None
    if isinstance(norm, nn.LayerNorm):
        sigma = torch.sqrt(x.var(unbiased=False) + norm.eps)
        gamma = norm.weight / sigma
        return (lambda c: (c - c.mean(-1, keepdim=True)) * gamma), norm.bias
    if isinstance(norm, nn.RMSNorm):
        eps = norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps
        gamma = norm.weight / torch.sqrt(x.pow(2).mean() + eps)
        return (lambda c: c * gamma), None
    raise TypeError(f"no frozen form for {type(norm).__name__}")


class _Stream:
    """The components written into the residual stream at one position, by name."""

    def __init__(self) -> None:
        self.parts: dict[tuple, torch.Tensor] = {}

    def add(self, key: tuple, value: torch.Tensor) -> None:
        self.parts[key] = value

    def normalise(self, norm: nn.Module, x: torch.Tensor, name: str) -> None:
        """Apply a norm frozen at its input x to every component; its shift is a component."""
        linear, shift = _frozen(norm, x)
        self.parts = {k: linear(v) for k, v in self.parts.items()}
        if shift is not None:
            self.add(("shift", name), shift)


def _stream_hooks(cfg, stack: str) -> list[str]:
    names = [hook_name(stack, None, "embed"), hook_name(stack, None, "out")]
    if cfg.positional in ("learned", "sinusoidal"):
        names.append(hook_name(stack, None, "pos_embed"))
    if cfg.type_vocab_size:
        names.append(hook_name(stack, None, "type_embed"))
    sites = [s for s in cfg.sites if s.startswith(stack)]
    for li in range(cfg.depth(stack)):
        names += [hook_name(stack, li, f"resid_{w}") for w in ("pre", "mid", "post")]
        for site in sites:
            names += [hook_name(site, li, h) for h in ("z", "pattern", "v")]
            names.append(hook_name(stack, li, SITE_OUTPUT[site]))
        if "decoder.cross" in sites:
            names.append(hook_name(stack, li, "resid_cross"))
        if not cfg.attn_only:
            names.append(hook_name(stack, li, "ffn_out"))
    return names


@torch.inference_mode()
def direct_logit_attribution(
    model,
    ids: torch.Tensor,
    target_ids: torch.Tensor | None = None,
    position: int = -1,
    token: int | None = None,
    head: tuple[str, int, int] | None = None,
    edits=None,
) -> Attribution:
    """Explain the logit of ``token`` (default: the model's prediction) at ``position`` of the
    predicting stack (the decoder, or the encoder for MLM) of a single sequence (1, T).

    ``head``: (site, layer, head) whose contribution is also split over its key positions.
    """
    cfg = model.config
    if model.lm_head is None or model.mlm_transform is not None:
        raise TypeError(
            "direct logit attribution needs a linear unembedding: this model has "
            + ("no vocabulary head" if model.lm_head is None else "a nonlinear MLM transform")
        )
    stack_name = "encoder" if cfg.kind == "encoder" else "decoder"
    stack = getattr(model, stack_name)
    names = _stream_hooks(cfg, stack_name)
    with capture(model, names, edits=edits) as trace:
        if cfg.kind == "decoder":
            logits = model.decode(ids)
        elif cfg.kind == "encoder":
            logits = model.mlm_logits(model.encode(ids))
        else:
            logits = model.decode(target_ids, model.encode(ids))
    t = position % logits.shape[1]
    token = int(logits[0, t].argmax()) if token is None else token

    def at(layer: int | None, hook: str) -> torch.Tensor:
        """The stack's (or its block's) hook at the explained position: (D,)."""
        return trace[hook_name(stack_name, layer, hook)][0, t]

    stream = _Stream()
    stream.add(("embed",), at(None, "embed"))
    if cfg.positional in ("learned", "sinusoidal"):
        stream.add(("pos",), trace[hook_name(stack_name, None, "pos_embed")][t])
    if stack.type_embed is not None:
        stream.add(("type",), at(None, "type_embed"))
    if stack.embed_norm is not None:  # its output is block 0's input
        embedded = sum(stream.parts.values())
        stream.normalise(stack.embed_norm, embedded, "embeddings")
    per_key = None  # the chosen head's output split over key positions: (Tk, D)
    sites = [s for s in cfg.sites if s.startswith(stack_name)]
    for li, block in enumerate(stack.blocks):
        sublayers = [(s, block.cross_attn if s.endswith("cross") else block.attn) for s in sites]
        for site, attn in sublayers:
            norm = block.cross_norm if site.endswith("cross") else block.attn_norm
            resid_in = at(li, "resid_mid" if site.endswith("cross") else "resid_pre")
            z = trace[hook_name(site, li, "z")][0, :, t]  # (H, d)
            w = attn.W_o.weight.view(cfg.d_model, cfg.n_heads, -1)  # (D, H, d)
            for h, out in enumerate(torch.einsum("hd,ohd->ho", z, w)):
                stream.add((site, li, h), out)
            if attn.W_o.bias is not None:
                stream.add(("attn_bias", site, li), attn.W_o.bias)
            if head is not None and head[:2] == (site, li):
                v = trace[hook_name(site, li, "v")]
                f = head_value_vectors(v, attn.W_o.weight)[0, head[2]]  # (Tk, D)
                alpha = trace[hook_name(site, li, "pattern")][0, head[2], t]  # (Tk,)
                per_key = alpha[:, None] * f
                stream.add(("per_key",), per_key)
            if not block.pre_norm:
                sub_out = at(li, SITE_OUTPUT[site])
                stream.normalise(norm, resid_in + sub_out, f"{site} L{li}")
        if block.ffn is not None:
            stream.add(("ffn", li), at(li, "ffn_out"))
            if not block.pre_norm:
                before = "resid_cross" if "decoder.cross" in sites else "resid_mid"
                x = at(li, before) + at(li, "ffn_out")
                stream.normalise(block.ffn_norm, x, f"ffn L{li}")
    if isinstance(stack.final_norm, (nn.LayerNorm, nn.RMSNorm)):
        stream.normalise(stack.final_norm, at(len(stack.blocks) - 1, "resid_post"), "final")

    w_u = model.lm_head.weight[token]  # (D,)
    per_key_share = None
    if ("per_key",) in stream.parts:
        per_key_share = (stream.parts.pop(("per_key",)) @ w_u).float()
    contrib = {k: float(v @ w_u) for k, v in stream.parts.items()}
    heads = {
        s: torch.tensor(
            [
                [contrib.pop((s, li, h)) for h in range(cfg.n_heads)]
                for li in range(cfg.depth(stack_name))
            ]
        )
        for s in sites
    }
    parts = {_part_name(k): v for k, v in contrib.items()}
    if model.lm_head.bias is not None:
        parts["unembedding bias"] = float(model.lm_head.bias[token])
    return Attribution(
        position=t,
        token=token,
        logit=float(logits[0, t, token]),
        heads=heads,
        parts=parts,
        head_positions=per_key_share,
    )


def _part_name(key: tuple) -> str:
    kind = key[0]
    if kind == "embed":
        return "token embedding"
    if kind == "pos":
        return "position embedding"
    if kind == "type":
        return "token-type embedding"
    if kind == "attn_bias":
        return f"{key[1]} L{key[2]} output bias"
    if kind == "ffn":
        return f"FFN L{key[1]}"
    return f"norm shift ({key[1]})"
