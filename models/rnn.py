"""Before transformers: an RNN encoder-decoder with additive attention (Bahdanau et al., 2015).

Written as the math of the lecture notes, so that every gate and every state can be shown:

    encoder    h_t = cell(x_t, h_{t-1})                           t = 1..S, left to right
    decoder    s_0 = tanh(W_init h_S)
               e_ij = vᵀ tanh(W_a s_{i-1} + U_a h_j)               additive score
               α_i = softmax_j(e_ij)      c_i = Σ_j α_ij h_j       alignment, context
               s_i = cell([y_{i-1}; c_i], s_{i-1})
               p(y_i | y_<i, x) = softmax(W_out tanh(W_r [s_i; c_i; y_{i-1}]))

cells (``RNNConfig.cell``), with ``a = W_x x_t + b_x + W_h h_{t-1} + b_h`` cut in chunks:
    "tanh"   h_t = tanh(a)                                         the plain RNN
    "lstm"   i, f, o = σ(a_i), σ(a_f), σ(a_o)   g = tanh(a_g)
             c_t = f ⊙ c_{t-1} + i ⊙ g          h_t = o ⊙ tanh(c_t)
    "gru"    r, z = σ(a_r), σ(a_z)   n = tanh(W_x x_t + b_x + r ⊙ (W_h h_{t-1} + b_h))_n
             h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
The chunk order and the two biases are torch's (``nn.RNNCell``, ``nn.LSTMCell``,
``nn.GRUCell``), so their weights map one to one and the tests use them as a reference.

The encoder reads in one direction only (Bahdanau's was bidirectional): each h_t is then "the
sentence up to word t", the unrolled picture of the lecture notes, and the distance from h_t
to the end of the sentence is plain, which the vanishing-gradient measurement needs.

Through the same contract as ``Transformer`` (``encode``, ``decode`` with a cache,
``new_cache``, ``forward``): it is a ``seq2seq`` model whose attention is one layer and one
head at site ``decoder.cross``, recorded under the transformer's names
(``decoder.blocks.0.cross_attn.hook_pattern``, ``hook_scores``, ``hook_mask``).

Hook points see each quantity for all steps at once, stacked over time after the loop:
``(B, T, d)`` for states and gates. Edits on the states change what later modules read (the
encoder's ``cell.hook_h`` and ``hook_out`` are the memory the attention and the decoder read;
the decoder's ``cell.hook_h`` and the attention's ``hook_z`` feed the readout; the attention's
``hook_k`` and ``hook_v`` are what it scores and averages) but not the recurrence that already
ran; the gates, the projections and the attention's scores and pattern only report
(``record_only``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.config import SavedConfig
from models.hooks import HookPoint, capture, hook_name, name_hook_points
from models.interface import TokenModel

Cell = Literal["tanh", "lstm", "gru"]


@dataclass
class RNNConfig(SavedConfig):
    """What builds an ``RNNSeq2Seq``. ``config.json`` says ``"architecture": "rnn"``.

    The properties below answer, for this architecture, what code written for ``ModelConfig``
    reads: one recurrent layer per side (``n_layers``, ``n_decoder_layers``), one attention head
    (``n_heads``) whose output, the context vector c_i, is ``d_head = d_model`` wide, no
    positions (order comes from the recurrence), no norms, no feed-forward sub-layer
    (``d_ff = 0``). In the hook layout (``stacks``, ``depth``, ``sites``) the encoder is one
    recurrent cell and no block, the decoder one block (``decoder.blocks.0``: ``cross_attn``
    and ``cell``), and the only attention site is ``decoder.cross``, one layer.
    """

    vocab_size: int
    cell: Cell = "lstm"
    d_embed: int = 128  # token embeddings x_t, y_{i-1}
    d_model: int = 256  # the states h_t, s_i (and c_t for an LSTM) and the context c_i
    d_attn: int = 128  # where the additive score is computed: W_a s, U_a h_j, v
    max_len: int = 256
    pad_id: int = 0
    bos_id: int | None = None
    eos_id: int | None = None
    architecture: Literal["rnn"] = "rnn"
    kind: Literal["seq2seq"] = "seq2seq"

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}: one of {sorted(CELLS)}")
        if self.architecture != "rnn" or self.kind != "seq2seq":
            raise ValueError("an RNNConfig describes an rnn seq2seq model")

    n_layers = property(lambda self: 1, doc="recurrent layers of the encoder")
    n_decoder_layers = property(lambda self: 1, doc="recurrent layers of the decoder")
    n_heads = property(lambda self: 1, doc="one additive attention head")
    d_head = property(lambda self: self.d_model, doc="width of the head's output c_i")
    d_ff = property(lambda self: 0, doc="no feed-forward sub-layer")
    positional = property(lambda self: "none", doc="positions come from the recurrence")
    norm = property(lambda self: "none")
    norm_position = property(lambda self: "none")
    activation = property(lambda self: "tanh", doc="of the plain cell, g/n and the readout")
    tie_embeddings = property(lambda self: False, doc="the vocabulary head has its own matrix")
    n_classes = property(lambda self: 0)
    labels = property(lambda self: [])
    stacks = property(lambda self: ("encoder", "decoder"))

    def depth(self, stack: str) -> int:
        """Blocks in ``stack``: the encoder has none (one recurrent cell), the decoder one."""
        return {"encoder": 0, "decoder": 1}.get(stack, 0)

    @property
    def sites(self) -> dict[str, int]:
        """Attention site -> its number of layers."""
        return {"decoder.cross": 1}


# ---------------------------------------------------------------------------- cells
class RecurrentCell(nn.Module):
    """One step h_{t-1} -> h_t from the input's projection W_x x_t + b_x.

    ``W_x`` is applied outside the loop (to every x_t at once where the inputs are known in
    advance: that part is parallel); only ``W_h h_{t-1}`` has to wait for the previous step.
    ``step`` returns the step's parts (states and gates, each (B, d)); ``record`` stacks a
    list of them over time and passes each through its hook point.
    """

    chunks: tuple[str, ...]  # the d-wide blocks of W_x and W_h, in torch's order
    parts: tuple[str, ...]  # what one step returns, each (B, d)

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.d = d
        self.W_x = nn.Linear(d_in, len(self.chunks) * d)  # bias b_x
        self.W_h = nn.Linear(d, len(self.chunks) * d)  # bias b_h
        self.hook_wx = HookPoint(record_only=True)  # (B, T, chunks·d) W_x x_t + b_x
        self.hook_wh = HookPoint(record_only=True)  # (B, T, chunks·d) W_h h_{t-1} + b_h
        self.hook_h = HookPoint()  # (B, T, d) the hidden state after each step

    def initial_state(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"h": h}

    def step(self, wx: torch.Tensor, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def record(self, steps: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Per-step parts -> each part (B, T, d) for all steps, through its hook point."""
        return {
            name: getattr(self, f"hook_{name}")(torch.stack([s[name] for s in steps], dim=1))
            for name in ("wx", "wh", *self.parts)
        }


class TanhCell(RecurrentCell):
    """h_t = tanh(W_x x_t + b_x + W_h h_{t-1} + b_h): the plain (Elman) RNN."""

    chunks, parts = ("h",), ("h",)

    def step(self, wx, state):
        wh = self.W_h(state["h"])
        return {"wx": wx, "wh": wh, "h": torch.tanh(wx + wh)}


class LSTMCell(RecurrentCell):
    """Gates i (input), f (forget), o (output), candidate g; cell state c carries the memory."""

    chunks, parts = ("i", "f", "g", "o"), ("i", "f", "g", "o", "c", "h")

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__(d_in, d)
        self.hook_i = HookPoint(record_only=True)  # (B, T, d) input gate: how much of g to write
        self.hook_f = HookPoint(record_only=True)  # (B, T, d) forget gate: keep of c_{t-1}
        self.hook_g = HookPoint(record_only=True)  # (B, T, d) candidate content
        self.hook_o = HookPoint(record_only=True)  # (B, T, d) output gate: show of tanh(c_t)
        self.hook_c = HookPoint(record_only=True)  # (B, T, d) cell state

    def initial_state(self, h):
        return {"h": h, "c": torch.zeros_like(h)}

    def step(self, wx, state):
        wh = self.W_h(state["h"])
        a_i, a_f, a_g, a_o = (wx + wh).chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
        c = f * state["c"] + i * g
        return {"wx": wx, "wh": wh, "i": i, "f": f, "g": g, "o": o, "c": c, "h": o * torch.tanh(c)}


class GRUCell(RecurrentCell):
    """Reset gate r (how much of h_{t-1} the candidate n sees), update gate z (how much of
    h_{t-1} to keep)."""

    chunks, parts = ("r", "z", "n"), ("r", "z", "n", "h")

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__(d_in, d)
        self.hook_r = HookPoint(record_only=True)  # (B, T, d) reset gate
        self.hook_z = HookPoint(record_only=True)  # (B, T, d) update gate
        self.hook_n = HookPoint(record_only=True)  # (B, T, d) candidate state

    def step(self, wx, state):
        h = state["h"]
        wh = self.W_h(h)
        x_r, x_z, x_n = wx.chunk(3, dim=-1)
        h_r, h_z, h_n = wh.chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return {"wx": wx, "wh": wh, "r": r, "z": z, "n": n, "h": (1 - z) * n + z * h}


CELLS: dict[str, type[RecurrentCell]] = {"tanh": TanhCell, "lstm": LSTMCell, "gru": GRUCell}


# ---------------------------------------------------------------------------- attention
class AdditiveAttention(nn.Module):
    """score(s, h_j) = vᵀ tanh(W_a s + U_a h_j), softmax over the source positions.

    One head; its tensors are recorded in the transformer's head layout (B, H=1, T, ·) under
    the transformer's names, so a view of cross-attention reads either model the same way.
    """

    def __init__(self, d: int, d_attn: int) -> None:
        super().__init__()
        self.W_a = nn.Linear(d, d_attn, bias=False)  # the query s_{i-1}
        self.U_a = nn.Linear(d, d_attn, bias=False)  # the keys h_j
        self.v = nn.Linear(d_attn, 1, bias=False)

        self.hook_in = HookPoint(record_only=True)  # (B, Tq, d) the queries s_{i-1}
        self.hook_q = HookPoint(record_only=True)  # (B, 1, Tq, d_attn) W_a s_{i-1}
        self.hook_k = HookPoint()  # (B, 1, S, d_attn) U_a h_j
        self.hook_v = HookPoint()  # (B, 1, S, d) the values: the encoder states h_j themselves
        self.hook_scores = HookPoint(record_only=True)  # (B, 1, Tq, S) e_ij, before the mask
        self.hook_mask = HookPoint(record_only=True)  # (B, Tq, S) bool, True = may attend
        self.hook_pattern = HookPoint(record_only=True)  # (B, 1, Tq, S) α_ij, after softmax
        self.hook_z = HookPoint()  # (B, 1, Tq, d) the context c_i

    def keys_and_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, d) encoder states -> U_a h_j (B, S, d_attn) and the values (B, S, d), once per
        source sentence."""
        keys = self.hook_k(self.U_a(memory)[:, None])[:, 0]
        values = self.hook_v(memory[:, None])[:, 0]
        return keys, values

    def step(
        self, s: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """One query s (B, d) over the source; mask (B, S) True = a real token."""
        q = self.W_a(s)  # (B, d_attn)
        scores = self.v(torch.tanh(q[:, None, :] + keys))[..., 0]  # (B, S)
        pattern = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        context = (pattern[:, :, None] * values).sum(dim=1)  # (B, d)
        return {"in": s, "q": q, "scores": scores, "pattern": pattern, "z": context}

    def record(self, steps: Sequence[dict[str, torch.Tensor]], mask: torch.Tensor) -> torch.Tensor:
        """Stack the steps into the hooks' layout; returns the contexts (B, Tq, d)."""

        def stacked(name: str) -> torch.Tensor:
            return torch.stack([s[name] for s in steps], dim=1)

        self.hook_in(stacked("in"))
        self.hook_q(stacked("q")[:, None])
        self.hook_scores(stacked("scores")[:, None])
        self.hook_mask(mask[:, None, :].expand(-1, len(steps), -1))
        self.hook_pattern(stacked("pattern")[:, None])
        return self.hook_z(stacked("z")[:, None])[:, 0]


# ---------------------------------------------------------------------------- stacks
@dataclass
class Unrolled:
    memory: torch.Tensor  # (B, S, d) the encoder states h_1..h_S (through ``hook_out``)
    steps: list[dict[str, torch.Tensor]]  # per step, the cell's parts, in the autograd graph


class RNNEncoder(nn.Module):
    def __init__(self, cfg: RNNConfig) -> None:
        super().__init__()
        self.cell = CELLS[cfg.cell](cfg.d_embed, cfg.d_model)
        self.hook_embed = HookPoint()  # (B, S, d_embed) x_t
        self.hook_out = HookPoint()  # (B, S, d) the memory the decoder reads: h_1..h_S

    def unroll(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> Unrolled:
        """x: (B, S, d_embed). At a padding position (pad_mask False) the state is carried
        over unchanged, so the last column holds every sentence's final state h_S."""
        B, S, _ = x.shape
        x = self.hook_embed(x)
        wx = self.cell.W_x(x)  # (B, S, chunks·d): every input's projection at once
        state = self.cell.initial_state(x.new_zeros(B, self.cell.d))
        steps = []
        for t in range(S):
            new = self.cell.step(wx[:, t], state)
            if pad_mask is not None:
                keep = pad_mask[:, t, None]
                for name in state:
                    new[name] = torch.where(keep, new[name], state[name])
            state = {name: new[name] for name in state}
            steps.append(new)
        return Unrolled(self.hook_out(self.cell.record(steps)["h"]), steps)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.unroll(x, pad_mask).memory


class RNNDecoderBlock(nn.Module):
    """The decoder's one layer: attention over the source, then the recurrent cell. Named as
    the transformer's decoder block so that its cross-attention sits at the same place."""

    def __init__(self, cfg: RNNConfig) -> None:
        super().__init__()
        self.cross_attn = AdditiveAttention(cfg.d_model, cfg.d_attn)
        self.cell = CELLS[cfg.cell](cfg.d_embed + cfg.d_model, cfg.d_model)


class RNNCache:
    """What decoding one more token needs: the decoder's state after the tokens fed so far,
    and the attention's keys and values (computed from the source once)."""

    def __init__(self) -> None:
        self.state: dict[str, torch.Tensor] | None = None
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self.length = 0  # target tokens fed so far


class RNNDecoder(nn.Module):
    def __init__(self, cfg: RNNConfig) -> None:
        super().__init__()
        self.max_len = cfg.max_len
        self.init = nn.Linear(cfg.d_model, cfg.d_model)  # s_0 = tanh(W_init h_S)
        self.blocks = nn.ModuleList([RNNDecoderBlock(cfg)])
        self.readout = nn.Linear(2 * cfg.d_model + cfg.d_embed, cfg.d_model)  # W_r
        self.hook_embed = HookPoint()  # (B, T, d_embed) y_{i-1}
        self.hook_init = HookPoint()  # (B, d) s_0
        self.hook_out = HookPoint()  # (B, T, d) tanh(W_r [s_i; c_i; y_{i-1}])

    def forward(
        self,
        y: torch.Tensor,
        memory: torch.Tensor,
        memory_pad_mask: torch.Tensor | None = None,
        cache: RNNCache | None = None,
    ) -> torch.Tensor:
        """y: (B, T, d_embed) embeddings of the tokens fed (only the new ones with a cache);
        memory: (B, S, d) encoder states. Returns (B, T, d) readout vectors."""
        B, T, _ = y.shape
        offset = cache.length if cache is not None else 0
        if offset + T > self.max_len:
            raise ValueError(
                f"sequence of {offset + T} tokens is longer than max_len={self.max_len}"
            )
        block = self.blocks[0]
        if memory_pad_mask is None:
            memory_pad_mask = torch.ones(memory.shape[:2], dtype=torch.bool, device=memory.device)

        if cache is not None and cache.state is not None:
            state, keys, values = cache.state, cache.keys, cache.values
        else:
            s0 = self.hook_init(torch.tanh(self.init(memory[:, -1])))
            state = block.cell.initial_state(s0)
            keys, values = block.cross_attn.keys_and_values(memory)

        y = self.hook_embed(y)
        attn_steps, cell_steps = [], []
        for t in range(T):
            a = block.cross_attn.step(state["h"], keys, values, memory_pad_mask)
            wx = block.cell.W_x(torch.cat([y[:, t], a["z"]], dim=-1))
            new = block.cell.step(wx, state)
            state = {name: new[name] for name in state}
            attn_steps.append(a)
            cell_steps.append(new)
        if cache is not None:
            cache.state, cache.keys, cache.values = state, keys, values
            cache.length = offset + T

        context = block.cross_attn.record(attn_steps, memory_pad_mask)  # (B, T, d)
        s = block.cell.record(cell_steps)["h"]  # (B, T, d)
        return self.hook_out(torch.tanh(self.readout(torch.cat([s, context, y], dim=-1))))


class RNNSeq2Seq(TokenModel):
    """The whole translator. Weights start from torch's defaults: nn.Linear U(±1/√fan_in),
    nn.Embedding N(0, 1)."""

    def __init__(self, cfg: RNNConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embed = nn.Embedding(cfg.vocab_size, cfg.d_embed)  # shared by both languages
        self.encoder = RNNEncoder(cfg)
        self.decoder = RNNDecoder(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size)  # W_out
        self.hook_logits = HookPoint()  # (B, T, V)
        name_hook_points(self)

    def encode(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) token ids -> (B, S, d) encoder states h_1..h_S (right padding: the last
        column is each sentence's final state)."""
        return self.encoder(self.embed(ids), pad_mask)

    def run_decoder(self, x, memory, memory_pad_mask, pad_mask, cache: RNNCache | None):
        """The readout states. ``pad_mask`` has no effect: a target is right-padded and the
        recurrence runs left to right, so padding never reaches a real position."""
        return self.decoder(x, memory, memory_pad_mask, cache)

    def vocab_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.hook_logits(self.lm_head(h))

    def new_cache(self) -> RNNCache:
        return RNNCache()

    def parameter_parts(self) -> dict[str, int]:
        """Parameters per component: token embeddings, the encoder's cell, the decoder's
        cell, its first state's W_init, the attention (W_a, U_a, v), the readout W_r, the LM
        head."""
        parts = dict.fromkeys(
            ("embeddings", "encoder", "decoder", "decoder_init", "attention", "readout", "lm_head"),
            0,
        )
        for name, p in self.named_parameters():
            if name.startswith("tok_embed"):
                part = "embeddings"
            elif ".cross_attn." in name:
                part = "attention"
            elif name.startswith("decoder.readout"):
                part = "readout"
            elif name.startswith("decoder.init."):
                part = "decoder_init"
            else:
                part = name.split(".")[0]  # encoder, decoder, lm_head
            parts[part] += p.numel()
        parts["total"] = sum(parts.values())
        return parts


# ---------------------------------------------------------------------------- gradients
@torch.enable_grad()
def encoder_state_gradients(
    model: RNNSeq2Seq,
    source_ids: Sequence[int],
    target_ids: Sequence[int],
    through: Literal["all", "recurrence"] = "all",
) -> torch.Tensor:
    """‖∂loss/∂h_t‖ for every encoder step t, by autograd. (S,) float.

    loss: the teacher-forced cross-entropy (mean over target tokens) of ``target_ids``
    (``<s> … </s>``) given ``source_ids``. through="all": every path from h_t to the loss,
    including the attention's direct read of h_t. through="recurrence": the attention's read of
    the encoder states is cut (its keys and values detached), so the loss reaches h_t only along
    h_{t+1} … h_S and the decoder's initial state: the chain ∏ ∂h_j/∂h_{j-1} of
    backpropagation through time, whose vanishing the lecture notes describe.
    """
    device = next(model.parameters()).device
    src = torch.tensor([list(source_ids)], device=device)
    tgt = torch.tensor([list(target_ids)], device=device)
    if through not in ("all", "recurrence"):
        raise ValueError(f"through must be 'all' or 'recurrence', not {through!r}")
    cut = {}
    if through == "recurrence":
        cut = {hook_name("decoder.cross", 0, h): torch.Tensor.detach for h in ("k", "v")}
    with capture(model, names=[], edits=cut):
        run = model.encoder.unroll(model.embed(src))
        logits = model.decode(tgt[:, :-1], run.memory)
    loss = F.cross_entropy(logits[0], tgt[0, 1:])
    grads = torch.autograd.grad(loss, [step["h"] for step in run.steps])
    return torch.stack([g[0].norm() for g in grads]).detach()
