"""How much each head matters: the drop in the log-probability of the model's own prediction
when that head alone is ablated (zero or mean), averaged over the predicted positions.

Attention weights say where a head looks; this says whether the output needs it. All the
ablations of a sweep run as one batch (or a few chunks): row r of the batch is the input with
head (site, layer, head)_r ablated, so a sweep over 72 heads costs a few batched forward
passes instead of 72. In a model of one stack (an encoder, a decoder), a batch's heads come
layer after layer, and an ablation changes nothing below its layer: each batch starts at its
first head's layer from the clean run's stream there (on average half the blocks), and is
unembedded at the predicted positions only.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from models.analysis.lens import FAST_CHUNK, vocab_chunks
from models.analysis.patching import run_blocks
from models.hooks import capture, hook_name


def _predicting_logits(model, ids: torch.Tensor, target_ids: torch.Tensor | None) -> torch.Tensor:
    kind = model.config.kind
    if kind == "decoder":
        return model.decode(ids)
    if kind == "encoder":
        return model.mlm_logits(model.encode(ids))
    return model.decode(target_ids, model.encode(ids))


def _ablate_rows(rows: dict[int, int], mode: str):
    """Edit for one hook_z (B, H, T, d): in batch row r, head rows[r] is ablated."""

    def edit(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        for r, h in rows.items():
            z[r, h] = 0.0 if mode == "zero" else z[r, h].mean(dim=-2, keepdim=True)
        return z

    return edit


def _log_prob_of(
    model, h: torch.Tensor, ids: torch.Tensor, chunk: int = FAST_CHUNK
) -> torch.Tensor:
    """log softmax(unembed(h))[..., ids] for final states h (B, P, D) and ids (P,): (B, P),
    the vocabulary read in chunks (a running log-sum-exp), so a batch of the sweep never holds
    (B, P, vocabulary) scores."""
    lse = torch.full(h.shape[:-1], -torch.inf, device=h.device)
    picked = torch.zeros(h.shape[:-1], device=h.device)
    for a, b, logits in vocab_chunks(model, h, chunk):
        lse = torch.logaddexp(lse, logits.logsumexp(-1))
        inside = (ids >= a) & (ids < b)  # (P,)
        at = (ids - a).clamp(0, b - a - 1)[None, :, None].expand(h.shape[0], -1, 1)
        picked = torch.where(inside, logits.gather(-1, at)[..., 0], picked)
        del logits
    return picked - lse


def _heads(cfg) -> list[tuple[str, int, int]]:
    """Every (site, layer, head), in the sweep's order: site after site, layer after layer."""
    return [(s, li, h) for s, n in cfg.sites.items() for li in range(n) for h in range(cfg.n_heads)]


def sweep_work(model, chunk: int) -> list[float]:
    """The sweep's work after each head, cumulative (index: heads ablated, 0 … all), in units
    of one block's parameters × one row: what its progress estimate divides by. A batch runs
    its rows through the blocks from its first head's layer (every block in a seq2seq) and
    the unembedding; attention's quadratic part is left out (small at a few hundred tokens)."""
    cfg = model.config
    heads = _heads(cfg)
    if getattr(cfg, "architecture", "transformer") != "transformer":  # the RNN: one batch
        return [float(k) for k in range(len(heads) + 1)]
    one_stack = cfg.kind in ("encoder", "decoder")
    blocks = [
        sum(p.numel() for p in block.parameters())
        for name in ("encoder", "decoder")
        if getattr(model, name, None) is not None
        for block in getattr(model, name).blocks
    ]
    head = getattr(model, "lm_head", None)
    unembed = head.weight.numel() if head is not None else 0
    work = [0.0]
    for start in range(0, len(heads), chunk):
        part = heads[start : start + chunk]
        per_row = (sum(blocks[part[0][1] :]) if one_stack else sum(blocks)) + unembed
        done = work[-1]
        work.extend(done + per_row * (r + 1) for r in range(len(part)))
    return work


def head_importance(
    model,
    ids: torch.Tensor,
    target_ids: torch.Tensor | None = None,
    positions: list[int] | None = None,
    mode: str = "zero",
    chunk: int = 32,
) -> dict[str, torch.Tensor]:
    """site -> (L, H): mean over ``positions`` (default: all of the predicting stack) of
    log p(clean prediction) − log p(same token | that head ablated). Positive: the head helps
    the model's own prediction; near 0: the output does not need it.

    ids: (1, S); target_ids: (1, T) for seq2seq. ``importance_sweep`` step by step.
    """
    *_, out = importance_sweep(model, ids, target_ids, positions, mode, chunk)
    return out


@torch.inference_mode()
def importance_sweep(
    model,
    ids: torch.Tensor,
    target_ids: torch.Tensor | None = None,
    positions: list[int] | None = None,
    mode: str = "zero",
    chunk: int = 32,
) -> Iterator[tuple[int, int] | dict[str, torch.Tensor]]:
    """``head_importance`` step by step, in the shape of ``patching.sweep``: (heads ablated,
    heads in all) after the clean run and after each batch, then the answer (stop iterating to
    cancel the sweep). Heads are counted site after site, layer after layer: the ``done``-th
    head is head (done − 1) % H of the ⌈done / H⌉-th layer."""
    sites = model.config.sites
    heads = _heads(model.config)
    kind = model.config.kind
    one_stack = kind in ("encoder", "decoder")
    stack = "encoder" if kind == "encoder" else "decoder"
    streams = [hook_name(stack, li, "resid_pre") for li in range(sites.get(f"{stack}.self", 0))]
    with capture(model, names=streams if one_stack else []) as trace:
        clean_logits = _predicting_logits(model, ids, target_ids)[0]
    clean = F.log_softmax(clean_logits.float(), dim=-1)
    pos = torch.arange(clean.shape[0]) if positions is None else torch.tensor(positions)
    pos = pos.to(clean.device)
    predicted = clean[pos].argmax(-1)  # (P,)
    clean_lp = clean[pos, predicted].mean()
    drops = torch.empty(len(heads))
    yield 0, len(heads)
    for start in range(0, len(heads), chunk):
        part = heads[start : start + chunk]
        per_hook: dict[str, dict[int, int]] = {}
        for r, (site, layer, head) in enumerate(part):
            per_hook.setdefault(hook_name(site, layer, "z"), {})[r] = head
        edits = {name: _ablate_rows(rows, mode) for name, rows in per_hook.items()}
        B = len(part)
        if one_stack:
            first = part[0][1]
            x = trace[streams[first]].expand(B, -1, -1)
            h = run_blocks(model, stack, first, x, 0, None, None, edits)
            ablated = _log_prob_of(model, h[:, pos], predicted).mean(-1)
        else:
            batch_tgt = None if target_ids is None else target_ids.expand(B, -1)
            with capture(model, names=[], edits=edits):
                logits = _predicting_logits(model, ids.expand(B, -1), batch_tgt)[:, pos]
            lp = F.log_softmax(logits.float(), dim=-1)  # (B, P, V)
            ablated = lp.gather(-1, predicted[None, :, None].expand(B, -1, 1))[..., 0].mean(-1)
        drops[start : start + B] = clean_lp.cpu() - ablated.cpu()
        yield start + B, len(heads)
    out, k = {}, 0
    for site, n in sites.items():
        size = n * model.config.n_heads
        out[site] = drops[k : k + size].view(n, model.config.n_heads)
        k += size
    yield out


def attribution_patching(
    model,
    ids: torch.Tensor,
    target_ids: torch.Tensor | None = None,
    positions: list[int] | None = None,
    mode: str = "zero",
) -> dict[str, torch.Tensor]:
    """An approximation of `head_importance` from one forward and one backward pass (Nanda,
    "Attribution patching", 2023): the drop when head h is ablated, to first order,

        log p(clean) − log p(ablated) ≈ ∇_z M · (z_h − z_h')

    with M the mean log-probability of the clean predictions, z_h the head's output (hook_z)
    and z_h' its ablated value (0, or its mean over positions). Exact for a model linear in
    z; a head whose ablation moves the output far (saturated softmaxes) is misjudged, so the
    answer is labelled an approximation and the exact sweep stays available.
    """
    cfg = model.config
    sites = cfg.sites
    z_names = {(s, li): hook_name(s, li, "z") for s, n in sites.items() for li in range(n)}
    kept: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def edit(z: torch.Tensor) -> torch.Tensor:
            kept[name] = z
            return z

        return edit

    def leaf(x: torch.Tensor) -> torch.Tensor:  # the graph starts at the stream, not the weights
        return x.detach().requires_grad_(True)

    edits = {name: keep(name) for name in z_names.values()}
    for stack in cfg.stacks:
        edits[hook_name(stack, 0, "resid_pre")] = leaf
    with torch.inference_mode(False), torch.enable_grad(), capture(model, names=[], edits=edits):
        # ids made under inference_mode (the server's jobs) cannot enter a graph: copies can
        ids = ids.clone()
        target_ids = None if target_ids is None else target_ids.clone()
        logits = _predicting_logits(model, ids, target_ids)[0].float()
        lp = F.log_softmax(logits, dim=-1)
        pos = torch.arange(lp.shape[0]) if positions is None else torch.tensor(positions)
        pos = pos.to(lp.device)
        predicted = lp[pos].argmax(-1).detach()
        metric = lp[pos, predicted].mean()
        names = list(z_names.values())
        grads = torch.autograd.grad(metric, [kept[n] for n in names])
    out = {}
    for site, n in sites.items():
        rows = []
        for li in range(n):
            name = z_names[(site, li)]
            z, g = kept[name].detach()[0], grads[names.index(name)][0]  # (H, T, d)
            ablated = torch.zeros_like(z) if mode == "zero" else z.mean(dim=-2, keepdim=True)
            rows.append((g * (z - ablated)).sum(dim=(-2, -1)))
        out[site] = torch.stack(rows).cpu()
    return out
