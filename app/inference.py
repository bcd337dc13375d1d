"""What the routes ask the models: plain functions run on an engine worker thread.

Each takes an ``Entry`` (model + tokenizer) and validated inputs, runs the core
(``models.capture`` around ``encode`` / ``decode``, ``models.generate``, ``models.positional``)
and returns a dict ready for ``serialize.dumps``. Only the hook points a request needs are
captured. Nothing here knows about HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from app.registry import Entry
from app.serialize import Format, ints, rounded, tensor
from models import capture
from models.generate import Sampling, Step, generate
from models.positional import apply_rope, rope_angles, rope_frequencies, sinusoidal_table

SITES = {
    "encoder": ("encoder.self",),
    "decoder": ("decoder.self",),
    "seq2seq": ("encoder.self", "decoder.self", "decoder.cross"),
}
PROB_DECIMALS = 6


def site_module(site: str, layer: int) -> str:
    """encoder.self -> encoder.blocks.{li}.attn; decoder.cross -> decoder.blocks.{li}.cross_attn"""
    stack, what = site.split(".")
    return f"{stack}.blocks.{layer}.{'cross_attn' if what == 'cross' else 'attn'}"


#: the block's hook holding the attention module's output, after W_O (before Add & Norm)
OUT_HOOK = {
    "encoder.self": "hook_attn_out",
    "decoder.self": "hook_attn_out",
    "decoder.cross": "hook_cross_out",
}


def block_of(site: str, layer: int) -> str:
    return f"{site.split('.')[0]}.blocks.{layer}"


def site_depth(entry: Entry, site: str) -> int:
    return entry.config.depth(site.split(".")[0])


def n_layers_max(entry: Entry) -> int:
    return max(entry.config.sites.values())


def _ids(ids: list[int], entry: Entry) -> torch.Tensor:
    return torch.tensor([ids], dtype=torch.long, device=entry.device)


def _p(x: float) -> float:
    return round(float(x), PROB_DECIMALS)


# ---------------------------------------------------------------------------- attention
@dataclass
class AttentionJob:
    source_ids: list[int]
    target_ids: list[int] | None
    layers: list[int]
    heads: list[int]
    include: frozenset[str]
    fmt: Format


def greedy_target(entry: Entry, source_ids: list[int], max_new_tokens: int) -> list[int]:
    """seq2seq: <s> + the model's own greedy output (its final </s> left out)."""
    cfg = entry.config
    budget = max(1, min(max_new_tokens, cfg.max_len - 1))
    out = [cfg.bos_id]
    for step in generate(
        entry.model, source_ids, Sampling(max_new_tokens=budget), capture_attention=False
    ):
        if step.token_id == cfg.eos_id:
            break
        out.append(step.token_id)
    return out


def attention(entry: Entry, job: AttentionJob) -> dict:
    cfg, model = entry.config, entry.model
    kind = cfg.kind
    sites = SITES[kind]
    inc = job.include
    is_rope = cfg.positional == "rope"
    # site -> layers of this request that the site's stack has
    site_layers = {s: [li for li in job.layers if li < site_depth(entry, s)] for s in sites}

    names: list[str] = []
    for site, layers in site_layers.items():
        for li in layers:
            m = site_module(site, li)
            names.append(f"{m}.hook_pattern")
            if "scores" in inc:
                names.append(f"{m}.hook_scores")
            if "qkv" in inc:
                names += [
                    f"{m}.hook_in",
                    f"{m}.hook_q",
                    f"{m}.hook_k",
                    f"{m}.hook_v",
                    f"{m}.hook_z",
                ]
                names.append(f"{block_of(site, li)}.{OUT_HOOK[site]}")
                if is_rope and not site.endswith("cross"):
                    names += [f"{m}.hook_rot_q", f"{m}.hook_rot_k"]
        if ("masks" in inc or "scores" in inc) and layers:
            names.append(f"{site_module(site, layers[0])}.hook_mask")
    stacks = sorted({s.split(".")[0] for s in sites})
    if "hidden" in inc:
        for stack in stacks:
            depth = site_depth(entry, f"{stack}.self")
            for li in job.layers:
                if li < depth:
                    names += [f"{stack}.blocks.{li}.hook_resid_{w}" for w in ("pre", "mid", "post")]

    with capture(model, names) as trace:
        src = _ids(job.source_ids, entry)
        if kind == "encoder":
            model.encode(src)
        elif kind == "decoder":
            model.decode(src)
        else:
            memory = model.encode(src)
            model.decode(_ids(job.target_ids, entry), memory)

    all_heads = job.heads == list(range(cfg.n_heads))
    heads = None if all_heads else torch.tensor(job.heads, device=entry.device)

    def stacked(site: str, hook: str) -> torch.Tensor:
        layers = site_layers[site]
        t = torch.stack([trace[f"{site_module(site, li)}.{hook}"][0] for li in layers])
        return t if heads is None else t.index_select(1, heads)  # (L, H, T, ...)

    out: dict = {"attention": {}}
    for site, layers in site_layers.items():
        if layers:
            out["attention"][site] = tensor(stacked(site, "hook_pattern"), job.fmt, prob=True)
    if "masks" in inc or "scores" in inc:
        masks = {
            s: trace[f"{site_module(s, ls[0])}.hook_mask"][0] for s, ls in site_layers.items() if ls
        }
        if "masks" in inc:
            out["masks"] = {s: ints(m) for s, m in masks.items()}
        if "scores" in inc:
            out["scores"] = {}
            for site, layers in site_layers.items():
                if layers:
                    sc = stacked(site, "hook_scores").float()
                    sc = sc.masked_fill(~masks[site][None, None], float("nan"))
                    out["scores"][site] = tensor(sc, job.fmt)
    if "qkv" in inc:
        out["qkv"] = {}
        for site, layers in site_layers.items():
            if not layers:
                continue
            parts = ["q", "k", "v"]
            if is_rope and not site.endswith("cross"):
                parts += ["rot_q", "rot_k"]
            out["qkv"][site] = {p: tensor(stacked(site, f"hook_{p}"), job.fmt) for p in parts}
            # per layer: the module's input X, each head's output Z (before the concat), and
            # the output after concat · W_O, so a view never recomputes what was measured
            out["qkv"][site]["z"] = tensor(stacked(site, "hook_z"), job.fmt)
            x = [trace[f"{site_module(site, li)}.hook_in"][0] for li in layers]
            attn_out = [trace[f"{block_of(site, li)}.{OUT_HOOK[site]}"][0] for li in layers]
            out["qkv"][site]["x"] = tensor(torch.stack(x), job.fmt)
            out["qkv"][site]["out"] = tensor(torch.stack(attn_out), job.fmt)
    if "rope" in inc:
        if is_rope:
            n = len(job.source_ids)
            angles = rope_angles(torch.arange(n), cfg.d_head, cfg.rope_base)
            out["rope"] = {
                "base": cfg.rope_base,
                "d_head": cfg.d_head,
                "angles": tensor(angles, job.fmt),
            }
        else:
            out["rope"] = None
    if "hidden" in inc:
        out["hidden"] = {}
        for stack in stacks:
            depth = site_depth(entry, f"{stack}.self")
            layers = [li for li in job.layers if li < depth]
            if not layers:
                continue
            out["hidden"][stack] = {
                w: tensor(
                    torch.stack(
                        [
                            torch.linalg.vector_norm(
                                trace[f"{stack}.blocks.{li}.hook_resid_{w}"][0].float(), dim=-1
                            )
                            for li in layers
                        ]
                    ),
                    job.fmt,
                )
                for w in ("pre", "mid", "post")
            }
            out["hidden"][stack] = {f"resid_{k}": v for k, v in out["hidden"][stack].items()}
    return out


# ---------------------------------------------------------------------------- generation
def step_view(entry: Entry, step: Step) -> dict:
    view = entry.tokens
    return {
        "step": step.step,
        "token": {"id": step.token_id, "text": view.token_text(step.token_id)},
        "prob": _p(step.prob),
        "top": [{"id": i, "text": view.token_text(i), "prob": _p(p)} for i, p in step.top],
        "attention": {site: rounded(a) for site, a in step.attention.items()},
    }


def generate_steps(entry: Entry, ids: list[int], sampling: Sampling) -> Iterator[dict]:
    """Step views, each made as soon as its token is decoded (KV cache on).

    A step's token text is what it adds to the decoded output (so " chat" keeps the space
    that a Metaspace or byte-level token carries), falling back to the token alone.
    """
    tok = entry.tokenizer
    out_ids: list[int] = []
    text = ""
    for step in generate(entry.model, ids, sampling):
        view = step_view(entry, step)
        if tok is not None and step.token_id not in entry.tokens.special_ids:
            out_ids.append(step.token_id)
            new_text = tok.decode(out_ids, skip_special_tokens=True)
            if new_text.startswith(text) and len(new_text) > len(text):
                view["token"]["text"] = new_text[len(text) :]
            text = new_text
        view["_stop_reason"] = step.stop_reason
        yield view


def generation_output(entry: Entry, steps: list[dict]) -> dict:
    cfg = entry.config
    ids = [s["token"]["id"] for s in steps]
    text_ids = [i for i in ids if i != cfg.eos_id]
    text = entry.tokenizer.decode(text_ids, skip_special_tokens=True) if entry.tokenizer else ""
    return {"text": text, "tokens": [s["token"] for s in steps]}


# ---------------------------------------------------------------------------- encoder tasks
def fill_mask(entry: Entry, ids: list[int], top_k: int, with_attention: bool) -> dict:
    model, cfg, view = entry.model, entry.config, entry.tokens
    names = (
        [f"encoder.blocks.{li}.attn.hook_pattern" for li in range(cfg.n_layers)]
        if with_attention
        else []
    )
    with capture(model, names) as trace:
        logits = model.mlm_logits(model.encode(_ids(ids, entry)))[0].float()  # (T, V)
    never = [i for i in view.special_ids if i < logits.shape[-1]]
    if never:
        logits[:, never] = float("-inf")  # predict words, not [CLS] / [SEP] / [MASK] / [PAD]
    positions = [k for k, i in enumerate(ids) if i == view.mask_id]
    probs = F.softmax(logits[positions], dim=-1)
    top_p, top_i = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1)
    masks = []
    for row, k in enumerate(positions):
        masks.append(
            {
                "index": k,
                "predictions": [
                    {"id": int(i), "token": view.token_text(int(i)), "prob": _p(p)}
                    for p, i in zip(top_p[row].tolist(), top_i[row].tolist(), strict=True)
                ],
            }
        )
    out: dict = {"masks": masks}
    if with_attention:
        out["attention"] = {
            "encoder.self": rounded(
                torch.stack([trace[n][0] for n in names])  # (L, H, T, T)
            )
        }
    return out


def classify(entry: Entry, ids: list[int]) -> dict:
    model, cfg = entry.model, entry.config
    last = cfg.n_layers - 1
    name = f"encoder.blocks.{last}.attn.hook_pattern"
    with capture(model, [name]) as trace:
        logits = model.classify(model.encode(_ids(ids, entry)))[0].float()
    probs = F.softmax(logits, dim=-1).tolist()
    labels = cfg.labels or [f"class_{i}" for i in range(len(probs))]
    best = int(np.argmax(probs))
    return {
        "label": labels[best],
        "labels": [{"label": lab, "prob": _p(p)} for lab, p in zip(labels, probs, strict=True)],
        "cls_attention": {"layer": last, "heads": rounded(trace[name][0, :, 0, :])},
    }


# ---------------------------------------------------------------------------- positions
def _stack(entry: Entry):
    model = entry.model
    return model.encoder if model.encoder is not None else model.decoder


def positions(entry: Entry, n: int, ids: list[int] | None) -> dict:
    cfg = entry.config
    out: dict = {"table": None, "rope": None}
    stack = _stack(entry)
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
    if ids is not None:
        tok = entry.model.embed(_ids(ids, entry))[0] * stack.embed_scale  # (T, D)
        pos = None
        if stack.pos.adds_vectors:
            pos = stack.pos(torch.arange(len(ids), device=entry.device))
        out["embedding"] = {
            "token": rounded(tok),
            "position": None if pos is None else rounded(pos),
            "sum": rounded(tok if pos is None else tok + pos),
        }
    return out


def rope_relative(
    entry: Entry, ids: list[int], layer: int, head: int, query: int, key: int, max_position: int
) -> dict:
    """scores[m][n] = q(token ``query``) placed at position m · k(token ``key``) at n / √d.

    RoPE: the un-rotated q and k of that layer and head (hook_q / hook_k), rotated to every
    position with ``apply_rope``: the matrix depends only on m − n.
    Additive positions (sinusoidal / learned): the token embeddings of the two tokens plus
    the positional vectors of m and n, projected by that layer's W_q / W_k (after its norm
    for pre-norm models): absolute positions leak in, so diagonals are not constant. For
    layers above 0 this is the layer's view of the bare embeddings, not of the full
    residual stream (which also carries the other tokens).
    """
    cfg, model = entry.config, entry.model
    d = cfg.d_head
    stack_name = "encoder" if model.encoder is not None else "decoder"
    stack = _stack(entry)
    block = stack.blocks[layer]
    attn = block.attn
    pos_ids = torch.arange(max_position, device=entry.device)
    if cfg.positional == "rope":
        m = f"{stack_name}.blocks.{layer}.attn"
        with capture(model, [f"{m}.hook_q", f"{m}.hook_k"]) as trace:
            src = _ids(ids, entry)
            if stack_name == "encoder":
                model.encode(src)
            else:
                model.decode(src)
        q = trace[f"{m}.hook_q"][0, head, query].float()  # (d,)
        k = trace[f"{m}.hook_k"][0, head, key].float()
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
        rq = attn.W_q(xq).view(max_position, cfg.n_heads, d)[:, head].float()
        rk = attn.W_k(xk).view(max_position, cfg.n_heads, d)[:, head].float()
        method = "additive"
    scores = rq @ rk.T / math.sqrt(d)  # (P, P)
    return {"method": method, "scores": rounded(scores)}
