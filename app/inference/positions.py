"""Positional encodings: the tables, the RoPE angles, and relative position seen by a head."""

from __future__ import annotations

import math

import torch

from app.inference.common import as_batch, forward
from app.inputs import ModelInput, Sequence
from app.registry import Entry
from app.serialize import rounded
from models.hooks import hook_name
from models.positional import apply_rope, rope_angles, rope_frequencies


def _first_stack(entry: Entry):
    model = entry.model
    return model.encoder if model.encoder is not None else model.decoder


def positions(entry: Entry, n: int, source: Sequence | None) -> dict:
    cfg = entry.config
    out: dict = {"model": entry.id, "positional": cfg.positional, "n": n, "table": None}
    out["rope"] = None
    stack = _first_stack(entry)
    if cfg.positional in ("sinusoidal", "learned"):
        out["table"] = rounded(stack.pos.full_table()[:n])  # the model's own layout
        out["pairing"] = cfg.pair_layout if cfg.positional == "sinusoidal" else None
    elif cfg.positional == "rope":
        out["rope"] = {
            "base": cfg.rope_base,
            "d_head": cfg.d_head,
            "pairing": cfg.pair_layout,
            "frequencies": rounded(rope_frequencies(cfg.d_head, cfg.rope_base)),
            "angles": rounded(rope_angles(torch.arange(n), cfg.d_head, cfg.rope_base)),
        }
    if source is not None:
        ids = source.ids
        scale = getattr(stack, "embed_scale", 1.0)  # an RNN's encoder scales nothing
        tok = entry.model.embed(as_batch(ids, entry))[0] * scale  # (T, D)
        pos = None
        if cfg.positional in ("sinusoidal", "learned"):  # RoPE and an RNN add no vector
            pos = stack.pos(torch.arange(len(ids), device=entry.device))
        out["embedding"] = {
            "token": rounded(tok),
            "position": None if pos is None else rounded(pos),
            "sum": rounded(tok if pos is None else tok + pos),
            "scale": scale,  # `token` is the table's row times this (√d_model, or 1)
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
        rq = apply_rope(q.expand(max_position, d), angles, cfg.pair_layout)  # (P, d)
        rk = apply_rope(k.expand(max_position, d), angles, cfg.pair_layout)
        method = "rope"
    else:
        emb = model.embed(as_batch([ids[query], ids[key]], entry))[0] * stack.embed_scale  # (2, D)
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
