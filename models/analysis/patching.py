"""Activation patching: which activations carry what makes the model's answer.

The corrupted input runs with one activation of the clean input written in (denoising,
TransformerLens's convention), and a metric m is read at one position::

    effect = (m(patched) − m(corrupted)) / (m(clean) − m(corrupted))

1: that activation alone restores the clean answer; 0: it carries none of it.

Sites (what one patched run writes in):

* ``resid_pre``, ``attn_out``, ``cross_out``, ``mlp_out``: one block's stream entering it, its
  self-attention's or cross-attention's output (after W_O), its FFN's output, at one position:
  an (L, T) grid per stack;
* ``head_z``: one head's output before W_O (the ablation's hook), at every position: (L, H) per
  attention site;
* ``head_pattern``: one head's attention pattern at every position, its values staying the
  corrupted run's (written as z = pattern_clean · V_corrupted, since the pattern's own hook only
  reports): (L, H) per attention site;
* ``memory``: seq2seq, the encoder's output at one source position as the decoder reads it
  (the one site an RNN translator has: its attention's context feeds the recurrence inside
  the loop, where no hook reaches): (1, S).

Why it is fast: the clean and corrupted runs are captured once. A patched run starts at the
patched block from the corrupted run's stream there (the blocks before would only recompute
it) and, in a causal stack, at the first position the patch can change, with the corrupted
run's keys and values for the positions before (they cannot change). Patched runs go in
batches of ``chunk`` rows. A cell whose clean activation equals the corrupted one bit for bit
needs no run: its patched run is the corrupted run (in a decoder, every position before the
first differing token).

``method="attribution"`` estimates every cell from one forward and one backward pass of the
corrupted input (Nanda 2023; Syed et al. 2023): m(patched) − m(corrupted) ≈ (a_clean −
a_corrupted) · ∂m/∂a at the corrupted run. An approximation: first order in the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from models.attention import LayerKV
from models.hooks import capture, hook_name

POSITION_SITES = ("resid_pre", "attn_out", "cross_out", "mlp_out")
HEAD_SITES = ("head_z", "head_pattern")
SITES = (*POSITION_SITES, *HEAD_SITES, "memory")
#: a position site -> its block hook
BLOCK_HOOK = {
    "resid_pre": "resid_pre",
    "attn_out": "attn_out",
    "cross_out": "cross_out",
    "mlp_out": "ffn_out",
}
METRICS = ("logit_diff", "logprob")
#: A causal stack's batch of patched runs closes at about this many rows × positions: big
#: enough for efficient matrix products, small enough that later positions start later.
TOKENS_PER_BATCH = 512


@dataclass(frozen=True)
class Metric:
    """What is read at ``position`` of the predicting sequence (the decoder's, or an
    encoder's): logit(answer) − logit(wrong), or log p(answer), over the vocabulary or
    (``head="classifier"``, an encoder's [CLS] at position 0) over the classes."""

    kind: str
    answer: int
    wrong: int | None
    position: int
    head: str = "vocab"

    def read(self, model, h: torch.Tensor) -> torch.Tensor:
        """(B, D) final states at the position -> (B,) float64."""
        return self(model.cls_head(h) if self.head == "classifier" else _logits(model, h))

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, V) logits at the position -> (B,) float64."""
        logits = logits.double()
        if self.kind == "logit_diff":
            return logits[:, self.answer] - logits[:, self.wrong]
        return torch.log_softmax(logits, dim=-1)[:, self.answer]


@dataclass
class PatchResult:
    clean: float  # m(clean)
    corrupted: float  # m(corrupted)
    # site -> group (a stack, an attention site, or "encoder" for memory) -> (L, N) m(patched)
    values: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # site -> why it does not apply


@dataclass(frozen=True)
class Inputs:
    """One patching question: (1, S) clean and corrupted ids, and (1, T) the teacher-forced
    target of a seq2seq model (the same for both)."""

    clean: torch.Tensor
    corrupted: torch.Tensor
    target: torch.Tensor | None
    metric: Metric


# ------------------------------------------------------------------------ which sites apply
def site_groups(cfg, site: str) -> tuple[dict[str, int], str | None]:
    """The groups of ``site`` in this model (stack or attention site -> its layers), or the
    reason it has none."""
    rnn = getattr(cfg, "architecture", "transformer") == "rnn"
    if site == "memory":
        if cfg.kind != "seq2seq":
            return {}, "only an encoder-decoder has a memory the decoder reads"
        return {"encoder": 1}, None
    if rnn:
        if site in HEAD_SITES:
            return {}, (
                "the RNN's attention context feeds its recurrence inside the loop, where no "
                "hook can write it; patch `memory` (the encoder states it reads)"
            )
        return {}, "an RNN has no blocks: no residual stream, attention or FFN outputs to patch"
    if site in HEAD_SITES:
        return dict(cfg.sites), None
    if site == "mlp_out" and cfg.attn_only:
        return {}, "the model is attention-only: its blocks have no FFN"
    if site == "cross_out":
        if cfg.kind != "seq2seq":
            return {}, "only an encoder-decoder's decoder has cross-attention"
        return {"decoder": cfg.depth("decoder")}, None
    return {stack: cfg.depth(stack) for stack in cfg.stacks}, None


def _hook(site: str, group: str, layer: int) -> str:
    if site in HEAD_SITES:
        return hook_name(group, layer, "z")
    if site == "memory":
        return hook_name("encoder", None, "out")
    return hook_name(group, layer, BLOCK_HOOK[site])


def _stack_of(group: str) -> str:
    return group.split(".")[0]


# ------------------------------------------------------------------------ memory
def patch_bytes(cfg, n_source: int, n_target: int | None) -> tuple[int, int]:
    """(fixed, per_row): the bytes a sweep holds whatever its chunk (the clean and corrupted
    runs' captured activations and patterns), and what each row of a patched batch adds (its
    stream, attention matrices and FFN units through every block it runs, and one row of
    logits). float32; a generous estimate, used to size the chunks against a budget."""
    d, heads, ff = cfg.d_model, cfg.n_heads, max(cfg.d_ff, cfg.d_model)
    lengths = {"encoder": n_source, "decoder": n_target if cfg.kind == "seq2seq" else n_source}
    fixed = 0
    per_row = 8 * cfg.vocab_size
    for stack in cfg.stacks:
        t = lengths[stack] or 1
        keys = t + (n_source if stack == "decoder" and cfg.kind == "seq2seq" else 0)
        layers = max(1, cfg.depth(stack))
        fixed += 2 * layers * (8 * t * d + 2 * heads * t * keys) * 4
        per_row += (8 * t * d + 3 * t * ff + 4 * heads * t * keys) * 4
    return fixed, per_row


# ------------------------------------------------------------------------ running the model
def _logits(model, h: torch.Tensor) -> torch.Tensor:
    """(B, D) states -> (B, V)."""
    unembed = getattr(model, "unembed", None)
    return unembed(h) if unembed is not None else model.lm_head(h)


@torch.inference_mode()
def top_tokens(
    model, ids: torch.Tensor, target: torch.Tensor | None, position: int, head: str, k: int
) -> list[tuple[int, float]]:
    """The k most likely tokens (or classes, ``head="classifier"``) at ``position``, with their
    probabilities: where a metric's answer and wrong token are picked from."""
    h = _predicting_states(model, ids, target)[:, position]
    logits = model.cls_head(h) if head == "classifier" else _logits(model, h)
    probs = torch.softmax(logits[0].double(), dim=-1)
    values, indices = probs.topk(min(k, probs.shape[-1]))
    return list(zip(indices.tolist(), values.tolist(), strict=True))


def _capture_runs(model, inp: Inputs, names: list[str]):
    """The clean and corrupted runs: their traces and metrics."""
    out = []
    for ids in (inp.clean, inp.corrupted):
        with capture(model, names) as trace:
            h = _predicting_states(model, ids, inp.target)
        out.append((trace, float(inp.metric.read(model, h[:, inp.metric.position])[0])))
    return out


def _predicting_states(model, ids: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    kind = model.config.kind
    if kind == "encoder":
        return model.encode(ids)
    if kind == "decoder":
        return model.decode_states(ids)
    return model.decode_states(target, model.encode(ids))


def _finish(model, stack: str, h: torch.Tensor, start: int, inp: Inputs, memory) -> torch.Tensor:
    """The rest of the model after ``stack``'s blocks gave ``h`` (B, T − start, D):
    m per row."""
    if model.config.kind == "seq2seq" and stack == "encoder":
        target = inp.target.expand(h.shape[0], -1)
        h, start = model.decode_states(target, h), 0
    return inp.metric.read(model, h[:, inp.metric.position - start])


def run_blocks(
    model,
    stack_name: str,
    layer: int,
    x: torch.Tensor,
    start: int,
    prefix: list[tuple[torch.Tensor, torch.Tensor]] | None,
    memory: torch.Tensor | None,
    edits: dict,
) -> torch.Tensor:
    """Blocks ``layer``… of a stack on ``x`` (B, T − start, D), the stream at positions start…
    (a causal stack reads the keys and values of the positions before from ``prefix``, per
    block); the final norm's output."""
    stack = getattr(model, stack_name)
    B, n, _ = x.shape
    positions = torch.arange(start, start + n, device=x.device)
    if memory is not None:
        memory = memory.expand(B, -1, -1)
    self_mask, memory_mask, rope = stack.attention_inputs(positions, B, None, memory)
    with capture(model, names=[], edits=edits):
        for i in range(layer, len(stack.blocks)):
            cache = None
            if start > 0:
                k, v = prefix[i]
                cache = (LayerKV(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)), LayerKV())
            x = stack.blocks[i](
                x,
                self_mask=self_mask,
                rope=rope,
                memory=memory,
                memory_mask=memory_mask,
                cache=cache,
            )
        return stack.final_norm(x)


def _write_rows(values: list[tuple[int, torch.Tensor]]) -> Callable:
    """Edit of a (B, …) hook: in batch row b, index values[b][0] of the second axis (a
    position of a (B, T, D) stream, a head of a (B, H, T, d) z) becomes values[b][1]."""

    def edit(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        for b, (index, value) in enumerate(values):
            x[b, index] = value
        return x

    return edit


def _plan(cfg, sites: list[str]) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """site -> its groups (stack or attention site -> layers), and site -> why it has none."""
    plan, reasons = {}, {}
    for site in sites:
        groups, reason = site_groups(cfg, site)
        if reason:
            reasons[site] = reason
        else:
            plan[site] = groups
    return plan, reasons


def _hooks_read(cfg, plan: dict[str, dict[str, int]]) -> set[str]:
    """The hook points whose clean and corrupted values the cells of ``plan`` need."""
    names = set()
    for site, groups in plan.items():
        for group, n in groups.items():
            for li in range(n):
                names.add(_hook(site, group, li))
                if site == "head_pattern":
                    names |= {hook_name(group, li, h) for h in ("pattern", "v")}
    return names


# ------------------------------------------------------------------------ exact patching
class _Sweep:
    """The clean and corrupted runs, captured once, and the patched runs built on them."""

    def __init__(self, model, inp: Inputs, sites: list[str], chunk: int) -> None:
        self.model, self.inp, self.chunk = model, inp, max(1, chunk)
        cfg = model.config
        self.causal = {"decoder"} if cfg.kind == "decoder" else set()
        self.plan, self.reasons = _plan(cfg, sites)
        names = _hooks_read(cfg, self.plan)
        for stack in cfg.stacks if cfg.architecture == "transformer" else ():
            for li in range(cfg.depth(stack)):
                names.add(hook_name(stack, li, "resid_pre"))
        self.rotary_k = "rot_k" if cfg.positional == "rope" else "k"
        if "decoder" in self.causal:
            for li in range(cfg.depth("decoder")):
                names |= {hook_name("decoder.self", li, h) for h in (self.rotary_k, "v")}
        if cfg.kind == "seq2seq":
            names.add(hook_name("encoder", None, "out"))
        (self.clean, self.m_clean), (self.corr, self.m_corr) = _capture_runs(
            model, inp, sorted(names)
        )

    # the corrupted run's keys and values of one causal stack's blocks
    def prefix(self, stack: str, start: int):
        if start == 0:
            return None
        k = self.rotary_k
        return [
            (
                self.corr[hook_name(f"{stack}.self", li, k)][:, :, :start],
                self.corr[hook_name(f"{stack}.self", li, "v")][:, :, :start],
            )
            for li in range(self.model.config.depth(stack))
        ]

    def run(self) -> Iterator[tuple[int, int] | PatchResult]:
        """(batches done, batches in all) after each batched run, then the PatchResult."""
        result = PatchResult(self.m_clean, self.m_corr, reasons=dict(self.reasons))
        work = []
        for site, groups in self.plan.items():
            result.values[site] = {}
            for group, n in groups.items():
                cells = [self.cells(site, group, li) for li in range(n)]
                width = self.model.config.n_heads if site in HEAD_SITES else len(cells[0])
                grid = torch.full((n, width), self.m_corr, dtype=torch.float64)
                result.values[site][group] = grid
                for li, layer_cells in enumerate(cells):
                    todo = sorted((c for c in layer_cells if c[1] is not None), key=lambda c: c[1])
                    work += [
                        (site, group, li, part) for part in self.batches(todo, _stack_of(group))
                    ]
        yield 0, len(work)
        for k, (site, group, li, part) in enumerate(work):
            values = self.patched(site, group, li, part).cpu()
            result.values[site][group][li, [c[0] for c in part]] = values
            yield k + 1, len(work)
        yield result

    def batches(self, cells: list, stack: str) -> list[list]:
        """Cells in batches of at most ``chunk`` rows. In a causal stack a batch runs from its
        first cell's position on, so a batch closes once its rows hold about TOKENS_PER_BATCH
        positions: later positions then start later (cells come sorted by position)."""
        out: list[list] = []
        length = (
            self.inp.corrupted.shape[1]
            if stack == "encoder" or (self.model.config.kind == "decoder")
            else self.inp.target.shape[1]
        )
        for cell in cells:
            if (
                out
                and len(out[-1]) < self.chunk
                and not (
                    stack in self.causal
                    and (len(out[-1]) + 1) * (length - out[-1][0][1]) > TOKENS_PER_BATCH
                )
            ):
                out[-1].append(cell)
            else:
                out.append([cell])
        return out

    def cells(self, site: str, group: str, layer: int) -> list[tuple[int, int | None, object]]:
        """(index, first position the patch changes or None: nothing to change, value)."""
        name = _hook(site, group, layer)
        clean, corr = self.clean[name][0], self.corr[name][0]
        out = []
        if site in HEAD_SITES:
            for h in range(self.model.config.n_heads):
                if site == "head_pattern":
                    p = hook_name(group, layer, "pattern")
                    clean_h, corr_h = self.clean[p][0, h], self.corr[p][0, h]
                else:
                    clean_h, corr_h = clean[h], corr[h]
                out.append((h, _first_change(clean_h, corr_h), None))
            return out
        for t in range(clean.shape[0]):
            same = torch.equal(clean[t], corr[t])
            out.append((t, None if same else t, clean[t]))
        return out

    def patched(self, site: str, group: str, layer: int, cells) -> torch.Tensor:
        """m of each cell's patched run, in one batch."""
        model, inp = self.model, self.inp
        stack = _stack_of(group)
        B = len(cells)
        if site == "memory":
            memory = self.corr[_hook(site, group, layer)].expand(B, -1, -1).clone()
            for b, (t, _, value) in enumerate(cells):
                memory[b, t] = value
            h = model.decode_states(inp.target.expand(B, -1), memory)
            return inp.metric.read(model, h[:, inp.metric.position])
        start = min(c[1] for c in cells) if stack in self.causal else 0
        if stack in self.causal and inp.metric.position < start:
            return torch.full((B,), self.m_corr, dtype=torch.float64)
        x = self.corr[hook_name(stack, layer, "resid_pre")][:, start:].expand(B, -1, -1)
        memory = (
            self.corr[hook_name("encoder", None, "out")]
            if stack == "decoder" and (model.config.kind == "seq2seq")
            else None
        )
        name = _hook(site, group, layer)
        edits = {}
        if site == "resid_pre":
            x = x.clone()
            for b, (t, _, value) in enumerate(cells):
                x[b, t - start] = value
        elif site in POSITION_SITES:
            edits[name] = _write_rows([(t - start, value) for t, _, value in cells])
        else:
            edits[name] = _write_rows(
                [(h, self.head_value(site, group, layer, h, start)) for h, _, _ in cells]
            )
        h = run_blocks(model, stack, layer, x, start, self.prefix(stack, start), memory, edits)
        return _finish(model, stack, h, start, inp, memory)

    def head_value(self, site: str, group: str, layer: int, head: int, start: int):
        """What head ``head`` writes at positions start… when patched: the clean z, or the
        clean pattern applied to the corrupted values."""
        if site == "head_z":
            return self.clean[hook_name(group, layer, "z")][0, head, start:]
        pattern = self.clean[hook_name(group, layer, "pattern")][0, head, start:]
        v = self.corr[hook_name(group, layer, "v")][0]  # (H_kv, Tk, d)
        return pattern @ v[head // (self.model.config.n_heads // v.shape[0])]


def _first_change(a: torch.Tensor, b: torch.Tensor) -> int | None:
    """The first row (position) where a and b differ, or None."""
    differs = (a != b).flatten(1).any(-1).nonzero()
    return None if len(differs) == 0 else int(differs[0])


@torch.inference_mode()
def patch(model, inp: Inputs, sites: list[str], chunk: int = 64) -> PatchResult:
    """Exact activation patching of every cell of ``sites``: m(patched) per cell."""
    *_, result = sweep(model, inp, sites, chunk)
    return result


def sweep(
    model, inp: Inputs, sites: list[str], chunk: int = 64
) -> Iterator[tuple[int, int] | PatchResult]:
    """``patch`` step by step: (batches done, batches in all) after the clean and corrupted runs
    and after each batch, then the PatchResult (stop iterating to cancel the sweep)."""
    with torch.inference_mode():
        run = _Sweep(model, inp, sites, chunk).run()
    while True:
        with torch.inference_mode():
            item = next(run, None)
        if item is None:
            return
        yield item


# ------------------------------------------------------------------------ attribution patching
def _delta(store: dict, name: str) -> Callable:
    """Edit adding a zero tensor that requires grad: ∂m/∂(it) is ∂m/∂(the hook's tensor), along
    every path, and the forward pass is unchanged."""

    def edit(x: torch.Tensor) -> torch.Tensor:
        delta = torch.zeros_like(x, requires_grad=True)
        store[name] = delta
        return x + delta

    return edit


def attribute(model, inp: Inputs, sites: list[str]) -> PatchResult:
    """Attribution patching: every cell's m(patched) estimated as m(corrupted) + (a_clean −
    a_corrupted) · ∂m/∂a, the gradient taken once on the corrupted run. head_pattern: through
    z = A · V, ∂m/∂A = ∂m/∂z · Vᵀ."""
    cfg = model.config
    plan, reasons = _plan(cfg, sites)
    names = sorted(_hooks_read(cfg, plan))
    with torch.inference_mode():
        ((clean, m_clean),) = [_capture_runs(model, inp, names)[0]]
    edited = {
        _hook(site, g, li) for site, gs in plan.items() for g, n in gs.items() for li in range(n)
    }
    deltas: dict[str, torch.Tensor] = {}
    with torch.inference_mode(False), torch.enable_grad():
        ids = inp.corrupted.clone()
        target = None if inp.target is None else inp.target.clone()
        with capture(model, names, edits={n: _delta(deltas, n) for n in edited}) as corr:
            h = _predicting_states(model, ids, target)
        m = inp.metric.read(model, h[:, inp.metric.position])[0]
        order = sorted(deltas)
        grads = dict(zip(order, torch.autograd.grad(m, [deltas[n] for n in order]), strict=True))
    m_corr = float(m.detach())
    result = PatchResult(m_clean, m_corr, reasons=reasons)
    with torch.inference_mode():
        for site, groups in plan.items():
            result.values[site] = {}
            for group, n in groups.items():
                rows = []
                for li in range(n):
                    name = _hook(site, group, li)
                    g = grads[name][0].detach()
                    if site == "head_pattern":
                        pn, vn = hook_name(group, li, "pattern"), hook_name(group, li, "v")
                        v = corr[vn][0]
                        v = v.repeat_interleave(cfg.n_heads // v.shape[0], dim=0)
                        g_pattern = g @ v.transpose(-2, -1)  # (H, Tq, Tk)
                        diff = clean[pn][0] - corr[pn][0]
                        row = (diff * g_pattern).flatten(1).sum(-1)
                    else:
                        diff = clean[name][0] - corr[name][0]
                        row = (diff * g).flatten(1).sum(-1)  # per position, or per head
                    rows.append(m_corr + row.double().cpu())
                result.values[site][group] = torch.stack(rows)
    return result
