"""What the routes ask the models: plain functions run on an engine worker thread.

Each takes a resolved ``ModelInput`` (app/inputs.py) plus the request's options, runs the
core through ``models.capture`` (only the hook points the request needs) and returns the
response as a dict for ``serialize.dumps``. Nothing here knows about HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from app.inputs import ModelInput, Sequence
from app.registry import Entry
from app.serialize import Format, ints, rounded, tensor
from models import capture
from models.analysis.attribution import direct_logit_attribution, value_weighted_norms
from models.analysis.lens import run_logit_lens
from models.analysis.rollout import rollout as attention_rollout
from models.config import ModelConfig
from models.generate import Sampling, StopReason, generate
from models.hooks import SITE_OUTPUT, Trace, hook_name
from models.positional import apply_rope, rope_angles, rope_frequencies, sinusoidal_table

PROB_DECIMALS = 6


def _p(x: float) -> float:
    return round(float(x), PROB_DECIMALS)


def _ids(ids: list[int], entry: Entry) -> torch.Tensor:
    return torch.tensor([ids], dtype=torch.long, device=entry.device)


def forward(
    entry: Entry, source_ids: list[int], target_ids: list[int] | None = None, names=()
) -> Trace:
    """One forward pass of the model's stacks over a single sequence, recording ``names``.

    encoder: encode the source. decoder: decode the source (the prompt). seq2seq: encode the
    source, then decode ``target_ids`` over it (encode only when no target is given).
    """
    model = entry.model
    with capture(model, names) as trace:
        src = _ids(source_ids, entry)
        if entry.config.kind == "decoder":
            model.decode(src)
        else:
            memory = model.encode(src)
            if target_ids is not None:
                model.decode(_ids(target_ids, entry), memory)
    return trace


# ---------------------------------------------------------------------------- attention
@dataclass(frozen=True)
class AttentionPlan:
    """Which layers of which attention sites a request reads, and the extras it includes."""

    config: ModelConfig
    sites: dict[str, list[int]]  # site -> the requested layers that site has
    include: frozenset[str]

    @classmethod
    def of(cls, config: ModelConfig, layers: list[int], include) -> AttentionPlan:
        sites = {s: [li for li in layers if li < depth] for s, depth in config.sites.items()}
        return cls(config, sites, frozenset(include))

    def rotary(self, site: str) -> bool:
        """Queries and keys of this site are rotated (RoPE acts on self-attention only)."""
        return self.config.positional == "rope" and not site.endswith("cross")

    def qkv_parts(self, site: str) -> list[str]:
        return ["q", "k", "v", *(["rot_q", "rot_k"] if self.rotary(site) else [])]

    def hooks(self) -> list[str]:
        names = []
        for site, layers in self.sites.items():
            for li in layers:
                names.append(hook_name(site, li, "pattern"))
                if "scores" in self.include:
                    names.append(hook_name(site, li, "scores"))
                if "qkv" in self.include:
                    names += [hook_name(site, li, p) for p in [*self.qkv_parts(site), "in", "z"]]
                    names.append(hook_name(site.split(".")[0], li, SITE_OUTPUT[site]))
                if "norms" in self.include and "qkv" not in self.include:
                    names.append(hook_name(site, li, "v"))
            if layers and self.include & {"masks", "scores"}:
                names.append(hook_name(site, layers[0], "mask"))
        rotary_sites = [s for s in self.config.sites if self.rotary(s)]
        if "rope" in self.include and rotary_sites:
            names.append(hook_name(rotary_sites[0], 0, "rope_angles"))
        if "hidden" in self.include:
            for stack, layers in self.stack_layers().items():
                for li in layers:
                    names += [hook_name(stack, li, f"resid_{w}") for w in ("pre", "mid", "post")]
        return names

    def stack_layers(self) -> dict[str, list[int]]:
        """stack -> the requested layers it has (read off its self-attention site)."""
        return {s.split(".")[0]: ls for s, ls in self.sites.items() if s.endswith(".self") and ls}


@dataclass
class Captured:
    """One forward pass's trace, read per site over the plan's layers and selected heads."""

    trace: Trace
    plan: AttentionPlan
    heads: list[int]
    fmt: Format
    model: torch.nn.Module  # for weights an extractor needs (W_O of the value-weighted norms)

    def stacked(self, site: str, hook: str) -> torch.Tensor:
        """(L, H, ...) of a per-head hook. Grouped-query K/V heads are repeated so that head
        h reads the key/value head it attends with."""
        n_heads = self.plan.config.n_heads
        t = torch.stack([self.trace[hook_name(site, li, hook)][0] for li in self.plan.sites[site]])
        if t.shape[1] != n_heads:
            t = t.repeat_interleave(n_heads // t.shape[1], dim=1)
        if self.heads != list(range(n_heads)):
            t = t.index_select(1, torch.tensor(self.heads, device=t.device))
        return t

    def per_layer(self, site: str, where: str, hook: str) -> torch.Tensor:
        """(L, ...) of a hook with no head axis (``where``: the site or its stack), over the
        site's layers."""
        return torch.stack(
            [self.trace[hook_name(where, li, hook)][0] for li in self.plan.sites[site]]
        )

    def mask(self, site: str) -> torch.Tensor:
        return self.trace[hook_name(site, self.plan.sites[site][0], "mask")][0]  # (Tq, Tk)

    def sites(self) -> list[str]:
        return [s for s, layers in self.plan.sites.items() if layers]


def _patterns(c: Captured) -> dict:
    return {s: tensor(c.stacked(s, "pattern"), c.fmt, prob=True) for s in c.sites()}


def _masks(c: Captured) -> dict:
    return {s: ints(c.mask(s)) for s in c.sites()}


def _scores(c: Captured) -> dict:
    """Scaled QKᵀ before the softmax; masked cells are NaN (null in JSON)."""
    out = {}
    for s in c.sites():
        sc = c.stacked(s, "scores").float()
        out[s] = tensor(sc.masked_fill(~c.mask(s)[None, None], float("nan")), c.fmt)
    return out


def _qkv(c: Captured) -> dict:
    """q/k/v (and RoPE's rotated q/k) and z per head; the module's input x and its output
    after concat · W_O per layer: a view never recomputes what was measured."""
    out = {}
    for s in c.sites():
        stack = s.split(".")[0]
        parts = {p: tensor(c.stacked(s, p), c.fmt) for p in [*c.plan.qkv_parts(s), "z"]}
        parts["x"] = tensor(c.per_layer(s, s, "in"), c.fmt)
        parts["out"] = tensor(c.per_layer(s, stack, SITE_OUTPUT[s]), c.fmt)
        out[s] = parts
    return out


def _rope(c: Captured) -> dict | None:
    """The rotation angles the model used (captured), or None without RoPE."""
    cfg = c.plan.config
    rotary = [s for s in cfg.sites if c.plan.rotary(s)]
    if not rotary:
        return None
    angles = c.trace[hook_name(rotary[0], 0, "rope_angles")]
    return {"base": cfg.rope_base, "d_head": cfg.d_head, "angles": tensor(angles, c.fmt)}


def _hidden(c: Captured) -> dict:
    """The L2 norm of the residual stream per layer and position, around each sublayer."""
    out = {}
    for stack, layers in c.plan.stack_layers().items():
        out[stack] = {
            f"resid_{w}": tensor(
                torch.stack(
                    [
                        torch.linalg.vector_norm(
                            c.trace[hook_name(stack, li, f"resid_{w}")][0].float(), dim=-1
                        )
                        for li in layers
                    ]
                ),
                c.fmt,
            )
            for w in ("pre", "mid", "post")
        }
    return out


def _norms(c: Captured) -> dict:
    """Value-weighted norms ‖α_ij · f_h(x_j)‖ per site: [L][H][Tq][Tk]."""
    out = {}
    for s in c.sites():
        per_layer = []
        for li in c.plan.sites[s]:
            w_o = c.model.get_submodule(hook_name(s, li, "v").rsplit(".", 1)[0]).W_o.weight
            pattern, v = c.trace[hook_name(s, li, "pattern")], c.trace[hook_name(s, li, "v")]
            per_layer.append(value_weighted_norms(pattern, v, w_o)[0])
        norms = torch.stack(per_layer)
        if c.heads != list(range(c.plan.config.n_heads)):
            norms = norms.index_select(1, torch.tensor(c.heads, device=norms.device))
        out[s] = tensor(norms, c.fmt)
    return out


#: include value -> what it adds to the answer (attention weights are always there)
EXTRACTORS: dict[str, Callable[[Captured], Any]] = {
    "masks": _masks,
    "scores": _scores,
    "qkv": _qkv,
    "rope": _rope,
    "hidden": _hidden,
    "norms": _norms,
}


def greedy_target(entry: Entry, source_ids: list[int], max_new_tokens: int) -> Sequence:
    """seq2seq: <s> + the model's own greedy output (its final </s> left out)."""
    cfg = entry.config
    budget = max(1, min(max_new_tokens, cfg.max_len - 1))
    ids = [cfg.bos_id]
    for step in generate(
        entry.model, source_ids, Sampling(max_new_tokens=budget), capture_attention=False
    ):
        if step.token_id == cfg.eos_id:
            break
        ids.append(step.token_id)
    return Sequence(ids, entry.codec.ids_view(ids) if entry.codec else None)


def target_of(inp: ModelInput, max_new_tokens: int) -> Sequence | None:
    """seq2seq: the target given, else the model's own greedy translation. Others: None."""
    if inp.entry.config.kind != "seq2seq" or inp.target is not None:
        return inp.target
    return greedy_target(inp.entry, inp.source.ids, max_new_tokens)


def tokens_of(inp: ModelInput, target: Sequence | None) -> dict:
    tokens = {"source": inp.source.tokens}
    if target is not None:
        tokens["target"] = target.tokens
    return tokens


def attention(inp: ModelInput, include, fmt: Format, max_new_tokens: int) -> dict:
    """POST /attention: plan the hooks, run one forward pass, extract what was asked."""
    entry, cfg = inp.entry, inp.entry.config
    target = target_of(inp, max_new_tokens)
    plan = AttentionPlan.of(cfg, inp.layers, include)
    trace = forward(entry, inp.source.ids, target.ids if target else None, plan.hooks())
    captured = Captured(trace, plan, inp.heads, fmt, entry.model)
    out = {
        "model": entry.id,
        "kind": cfg.kind,
        "format": fmt,
        "n_layers": max(cfg.sites.values()),
        "n_heads": cfg.n_heads,
        "layers": inp.layers,
        "heads": inp.heads,
        "tokens": tokens_of(inp, target),
        "attention": _patterns(captured),
    }
    for name, extract in EXTRACTORS.items():
        if name in plan.include:
            out[name] = extract(captured)
    return out


# ---------------------------------------------------------------------------- analyses
def _forward_ids(inp: ModelInput, target: Sequence | None):
    entry = inp.entry
    return _ids(inp.source.ids, entry), None if target is None else _ids(target.ids, entry)


def logit_lens(inp: ModelInput, k: int, max_new_tokens: int) -> dict:
    """POST /logit-lens: every layer's residual stream read through the unembedding."""
    entry, cfg = inp.entry, inp.entry.config
    target = target_of(inp, max_new_tokens)
    ids, target_ids = _forward_ids(inp, target)
    lens = run_logit_lens(entry.model, ids, target_ids, inp.positions, k)
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
    }


def rollout(inp: ModelInput, fmt: Format, max_new_tokens: int) -> dict:
    """POST /rollout: attention rollout of every self-attention site."""
    entry, cfg = inp.entry, inp.entry.config
    target = target_of(inp, max_new_tokens)
    sites = {s: n for s, n in cfg.sites.items() if s.endswith(".self")}
    names = [hook_name(s, li, "pattern") for s, n in sites.items() for li in range(n)]
    trace = forward(entry, inp.source.ids, target.ids if target else None, names)
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
    }


def attribution(inp: ModelInput, token: int | None, head, max_new_tokens: int) -> dict:
    """POST /attribution: direct logit attribution at one position."""
    entry, cfg = inp.entry, inp.entry.config
    target = target_of(inp, max_new_tokens)
    ids, target_ids = _forward_ids(inp, target)
    head_ref = None if head is None else (head.site, head.layer, head.head)
    attr = direct_logit_attribution(
        entry.model, ids, target_ids, position=inp.positions[0], token=token, head=head_ref
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
    }


# ---------------------------------------------------------------------------- generation
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
            "prob": _p(step.prob),
            "top": [{"id": i, "text": shown(i), "prob": _p(p)} for i, p in step.top],
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


# ---------------------------------------------------------------------------- encoder tasks
def fill_mask(inp: ModelInput, top_k: int, with_attention: bool) -> dict:
    entry, codec = inp.entry, inp.entry.codec
    model, ids = entry.model, inp.source.ids
    names = []
    if with_attention:
        names = [hook_name("encoder.self", li, "pattern") for li in range(entry.config.n_layers)]
    with capture(model, names) as trace:
        logits = model.mlm_logits(model.encode(_ids(ids, entry)))[0].float()  # (T, V)
    never = [i for i in codec.special_ids if i < logits.shape[-1]]
    if never:
        logits[:, never] = float("-inf")  # predict words, not [CLS] / [SEP] / [MASK] / [PAD]
    positions = [k for k, i in enumerate(ids) if i == codec.mask_id]
    probs = F.softmax(logits[positions], dim=-1)
    top_p, top_i = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1)
    masks = [
        {
            "index": k,
            "predictions": [
                {"id": int(i), "token": codec.token_text(int(i)), "prob": _p(p)}
                for p, i in zip(top_p[row].tolist(), top_i[row].tolist(), strict=True)
            ],
        }
        for row, k in enumerate(positions)
    ]
    out: dict = {"model": entry.id, "tokens": inp.source.tokens, "masks": masks}
    if with_attention:
        out["attention"] = {"encoder.self": rounded(torch.stack([trace[n][0] for n in names]))}
    return out


def classify(inp: ModelInput) -> dict:
    entry, cfg = inp.entry, inp.entry.config
    model = entry.model
    last = cfg.depth("encoder") - 1
    name = hook_name("encoder.self", last, "pattern")
    with capture(model, [name]) as trace:
        logits = model.classify(model.encode(_ids(inp.source.ids, entry)))[0].float()
    probs = F.softmax(logits, dim=-1).tolist()
    labels = cfg.labels or [f"class_{i}" for i in range(len(probs))]
    return {
        "model": entry.id,
        "tokens": inp.source.tokens,
        "label": labels[int(np.argmax(probs))],
        "labels": [{"label": lab, "prob": _p(p)} for lab, p in zip(labels, probs, strict=True)],
        "cls_attention": {"layer": last, "heads": rounded(trace[name][0, :, 0, :])},
    }


# ---------------------------------------------------------------------------- positions
def _first_stack(entry: Entry):
    model = entry.model
    return model.encoder if model.encoder is not None else model.decoder


def positions(entry: Entry, n: int, source: Sequence | None) -> dict:
    cfg = entry.config
    out: dict = {"model": entry.id, "positional": cfg.positional, "n": n, "table": None}
    out["rope"] = None
    stack = _first_stack(entry)
    if cfg.positional == "sinusoidal":
        out["table"] = rounded(sinusoidal_table(n, cfg.d_model))
    elif cfg.positional == "learned":
        out["table"] = rounded(stack.pos.full_table()[:n])
    elif cfg.positional == "rope":
        out["rope"] = {
            "base": cfg.rope_base,
            "d_head": cfg.d_head,
            "frequencies": rounded(rope_frequencies(cfg.d_head, cfg.rope_base)),
            "angles": rounded(rope_angles(torch.arange(n), cfg.d_head, cfg.rope_base)),
        }
    if source is not None:
        ids = source.ids
        tok = entry.model.embed(_ids(ids, entry))[0] * stack.embed_scale  # (T, D)
        pos = None
        if stack.pos.adds_vectors:
            pos = stack.pos(torch.arange(len(ids), device=entry.device))
        out["embedding"] = {
            "token": rounded(tok),
            "position": None if pos is None else rounded(pos),
            "sum": rounded(tok if pos is None else tok + pos),
            "tokens": source.tokens,
        }
    return out


def rope_relative(inp: ModelInput, query: int, key: int, max_position: int) -> dict:
    """scores[m][n] = q(token ``query``) placed at position m · k(token ``key``) at n / √d.

    RoPE: the un-rotated q and k of that layer and head (hook_q / hook_k), rotated to every
    position with ``apply_rope``: the matrix depends only on m − n.
    Additive positions (sinusoidal / learned): the token embeddings of the two tokens plus
    the positional vectors of m and n, projected by that layer's W_q / W_k (after its norm
    for pre-norm models): absolute positions leak in, so diagonals are not constant. For
    layers above 0 this is the layer's view of the bare embeddings, not of the full
    residual stream (which also carries the other tokens).
    """
    entry, cfg, model = inp.entry, inp.entry.config, inp.entry.model
    (layer,), (head,) = inp.layers, inp.heads
    ids, d = inp.source.ids, cfg.d_head
    site = f"{cfg.stacks[0]}.self"
    stack = _first_stack(entry)
    block = stack.blocks[layer]
    pos_ids = torch.arange(max_position, device=entry.device)
    if cfg.positional == "rope":
        q_name, k_name = hook_name(site, layer, "q"), hook_name(site, layer, "k")
        trace = forward(entry, ids, None, [q_name, k_name])
        group = cfg.n_heads // trace[k_name].shape[1]  # grouped-query attention
        q = trace[q_name][0, head, query].float()  # (d,)
        k = trace[k_name][0, head // group, key].float()
        angles = rope_angles(pos_ids, d, cfg.rope_base)  # (P, d/2)
        rq = apply_rope(q.expand(max_position, d), angles)  # (P, d)
        rk = apply_rope(k.expand(max_position, d), angles)
        method = "rope"
    else:
        emb = model.embed(_ids([ids[query], ids[key]], entry))[0] * stack.embed_scale  # (2, D)
        if stack.pos.adds_vectors:
            pe = stack.pos(pos_ids)  # (P, D)
        else:
            pe = torch.zeros(max_position, cfg.d_model, device=entry.device)
        xq, xk = emb[0] + pe, emb[1] + pe  # (P, D)
        if block.pre_norm:
            xq, xk = block.attn_norm(xq), block.attn_norm(xk)
        attn = block.attn
        group = cfg.n_heads // attn.n_kv_heads
        rq = attn.W_q(xq).view(max_position, cfg.n_heads, d)[:, head].float()
        rk = attn.W_k(xk).view(max_position, attn.n_kv_heads, d)[:, head // group].float()
        method = "additive"
    return {
        "model": entry.id,
        "positional": cfg.positional,
        "layer": layer,
        "head": head,
        "query": inp.source.tokens[query],
        "key": inp.source.tokens[key],
        "max_position": max_position,
        "method": method,
        "scores": rounded(rq @ rk.T / math.sqrt(d)),  # (P, P)
    }
