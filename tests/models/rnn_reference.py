"""References for the RNN translator, written apart from models/rnn.py.

``textbook_encoder`` unrolls the encoder with the gate equations spelled out on slices of the
model's weights; ``torch_cell`` builds torch's own nn.RNNCell / nn.LSTMCell / nn.GRUCell
holding the same weights, an implementation we did not write; ``reference_decode`` unrolls the
decoder (initial state, additive attention, torch's cell, readout) from the model's weights.
"""

from __future__ import annotations

import torch
from torch import nn

from models.rnn import RecurrentCell, RNNSeq2Seq

TORCH_CELLS = {"tanh": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def textbook_step(kind: str, cell: RecurrentCell, x, h, c) -> dict[str, torch.Tensor]:
    """One step by the lecture notes' equations; a = W_x x + b_x + W_h h + b_h by blocks."""
    d = cell.d

    def block(k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = slice(k * d, (k + 1) * d)
        wx = x @ cell.W_x.weight[rows].T + cell.W_x.bias[rows]
        wh = h @ cell.W_h.weight[rows].T + cell.W_h.bias[rows]
        return wx, wh

    if kind == "tanh":
        return {"h": torch.tanh(sum(block(0)))}
    if kind == "lstm":
        i = torch.sigmoid(sum(block(0)))
        f = torch.sigmoid(sum(block(1)))
        g = torch.tanh(sum(block(2)))
        o = torch.sigmoid(sum(block(3)))
        c = f * c + i * g
        return {"i": i, "f": f, "g": g, "o": o, "c": c, "h": o * torch.tanh(c)}
    (x_r, h_r), (x_z, h_z), (x_n, h_n) = block(0), block(1), block(2)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return {"r": r, "z": z, "n": n, "h": (1 - z) * n + z * h}


def textbook_encoder(model: RNNSeq2Seq, ids, pad_mask=None) -> dict[str, torch.Tensor]:
    """Every part of every step, (B, S, d) each; a padding step keeps the previous h (and c)."""
    kind, cell = model.config.cell, model.encoder.cell
    x = model.tok_embed.weight[ids]
    B, S, _ = x.shape
    h = c = x.new_zeros(B, cell.d)
    steps = []
    for t in range(S):
        parts = textbook_step(kind, cell, x[:, t], h, c)
        keep = torch.ones(B, 1, dtype=torch.bool) if pad_mask is None else pad_mask[:, t, None]
        h = parts["h"] = torch.where(keep, parts["h"], h)
        if "c" in parts:
            c = parts["c"] = torch.where(keep, parts["c"], c)
        steps.append(parts)
    return {name: torch.stack([s[name] for s in steps], dim=1) for name in steps[0]}


def torch_cell(cell: RecurrentCell, kind: str) -> nn.RNNCellBase:
    """torch's cell of the same kind with the same weights (both keep two biases)."""
    d_in = cell.W_x.in_features
    ref = TORCH_CELLS[kind](d_in, cell.d).to(cell.W_x.weight.dtype)
    with torch.no_grad():
        ref.weight_ih.copy_(cell.W_x.weight)
        ref.bias_ih.copy_(cell.W_x.bias)
        ref.weight_hh.copy_(cell.W_h.weight)
        ref.bias_hh.copy_(cell.W_h.bias)
    return ref


def run_torch_cell(ref: nn.RNNCellBase, x, state):
    """(h, c) for an LSTM cell, (h, None) otherwise."""
    if isinstance(ref, nn.LSTMCell):
        return ref(x, state)
    return ref(x, state[0]), None


def torch_encoder(model: RNNSeq2Seq, ids, pad_mask=None) -> torch.Tensor:
    """h_1..h_S (B, S, d) with torch's cell."""
    ref = torch_cell(model.encoder.cell, model.config.cell)
    x = model.tok_embed.weight[ids]
    B, S, _ = x.shape
    h = c = x.new_zeros(B, ref.hidden_size)
    out = []
    for t in range(S):
        h_new, c_new = run_torch_cell(ref, x[:, t], (h, c))
        keep = torch.ones(B, 1, dtype=torch.bool) if pad_mask is None else pad_mask[:, t, None]
        h = torch.where(keep, h_new, h)
        c = torch.where(keep, c_new, c) if c_new is not None else c
        out.append(h)
    return torch.stack(out, dim=1)


def reference_decode(model: RNNSeq2Seq, memory, target, memory_pad_mask=None) -> dict:
    """Bahdanau's decoder from the model's weights: logits (B, T, V), scores and alignment
    (B, T, S), decoder states (B, T, d)."""
    dec, block = model.decoder, model.decoder.blocks[0]
    att = block.cross_attn
    ref = torch_cell(block.cell, model.config.cell)
    B, S, _ = memory.shape
    mask = torch.ones(B, S, dtype=torch.bool) if memory_pad_mask is None else memory_pad_mask
    s = torch.tanh(memory[:, -1] @ dec.init.weight.T + dec.init.bias)
    c = torch.zeros_like(s)
    keys = memory @ att.U_a.weight.T  # (B, S, d_attn)
    logits, scores, alignment, states = [], [], [], []
    for i in range(target.shape[1]):
        y = model.tok_embed.weight[target[:, i]]
        e = (torch.tanh((s @ att.W_a.weight.T)[:, None] + keys) @ att.v.weight.T)[..., 0]
        alpha = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=-1)
        context = torch.einsum("bs,bsd->bd", alpha, memory)
        s, c = run_torch_cell(ref, torch.cat([y, context], -1), (s, c))
        out = torch.tanh(torch.cat([s, context, y], -1) @ dec.readout.weight.T + dec.readout.bias)
        logits.append(out @ model.lm_head.weight.T + model.lm_head.bias)
        scores.append(e)
        alignment.append(alpha)
        states.append(s)
    stack = lambda xs: torch.stack(xs, dim=1)  # noqa: E731
    return {
        "logits": stack(logits),
        "scores": stack(scores),
        "alignment": stack(alignment),
        "states": stack(states),
    }
