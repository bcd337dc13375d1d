"""POST /attention: plan the hooks a request needs, run one forward pass, extract each include."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from app.inference.common import ablation_info, forward, target_of, tokens_of
from app.inputs import ModelInput, Sequence
from app.registry import Entry
from app.serialize import Format, ints, rounded, stack_tensor, tensor
from app.traces import StoredInput, TraceStore
from models import capture
from models.analysis.attribution import value_weighted_norms
from models.config import ModelConfig
from models.hooks import SITE_OUTPUT, Trace, hook_name
from models.pooling import block_edges, pool


@dataclass(frozen=True)
class AttentionPlan:
    """Which layers of which attention sites a request reads, and the extras it includes."""

    config: ModelConfig
    sites: dict[str, list[int]]  # site -> the requested layers that site has
    include: frozenset[str]
    #: the only heads recorded of the hooks with a query-head axis (QUERY_HOOKS), in the
    #: answer's order; None: every head. A long input's one head then keeps one matrix alive
    #: during the forward pass, not the layer's (at 1024 tokens on GPT-2-small's shape, 4 MB
    #: instead of 50 MB, and ~0.1 s less: the retained matrices slowed the later layers)
    heads: tuple[int, ...] | None = None

    @classmethod
    def of(
        cls, config: ModelConfig, layers: list[int], include, heads: list[int] | None = None
    ) -> AttentionPlan:
        sites = {s: [li for li in layers if li < depth] for s, depth in config.sites.items()}
        include = frozenset(include)
        # value-weighted norms read every head's pattern; a model that cannot replay keeps
        # its whole trace for later requests
        some = heads is not None and list(heads) != list(range(config.n_heads))
        if not some or "norms" in include or not replayable(config):
            heads = None
        return cls(config, sites, include, None if heads is None else tuple(heads))

    def slices(self) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
        """Per hook recorded with only the plan's heads: what to keep of its (B, H, ...)."""
        if self.heads is None:
            return {}
        heads = list(self.heads)

        def part(x: torch.Tensor) -> torch.Tensor:
            return x.index_select(1, torch.tensor(heads, device=x.device))

        return {n: part for n in self.hooks() if n.rsplit("hook_", 1)[1] in QUERY_HOOKS}

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
                    if self.config.architecture == "transformer":  # the output after W_O
                        names.append(hook_name(site.split(".")[0], li, SITE_OUTPUT[site]))
                if "norms" in self.include and "qkv" not in self.include:
                    names.append(hook_name(site, li, "v"))
            if layers and self.include & {"masks", "scores"}:
                names.append(hook_name(site, layers[0], "mask"))
        return names

    def stack_layers(self) -> dict[str, list[int]]:
        """stack -> the requested layers it has (read off its self-attention site)."""
        return {s.split(".")[0]: ls for s, ls in self.sites.items() if s.endswith(".self") and ls}


#: hooks with a query axis (after the head axis): a query window keeps some of their rows
QUERY_HOOKS = ("pattern", "scores", "q", "rot_q", "z")


@dataclass
class Captured:
    """One forward pass's trace, read per site over the plan's layers and selected heads."""

    trace: Trace
    plan: AttentionPlan
    heads: list[int]
    fmt: Format
    model: torch.nn.Module  # for weights an extractor needs (W_O of the value-weighted norms)
    stored: StoredInput  # what the forward pass left: the stream's norms, RoPE angles
    window: tuple[int, int] | None = None  # [start, stop) of the query rows returned

    def rows(self, t: torch.Tensor, axis: int) -> torch.Tensor:
        """``t`` cut to the query window along ``axis`` (unchanged without one)."""
        if self.window is None:
            return t
        return t.narrow(
            axis, self.window[0], max(0, min(self.window[1], t.shape[axis]) - self.window[0])
        )

    def layers(self, site: str, hook: str) -> list[torch.Tensor]:
        """Per requested layer, (H, ...) of a per-head hook. Grouped-query K/V heads are
        repeated so that head h reads the key/value head it attends with. Per-query hooks
        keep the window's rows."""
        n_heads = self.plan.config.n_heads
        every_head = self.heads == list(range(n_heads))
        recorded = self.plan.heads is not None and hook in QUERY_HOOKS  # as selected already
        out = []
        for li in self.plan.sites[site]:
            t = self.trace[hook_name(site, li, hook)][0]
            if hook in QUERY_HOOKS:
                t = self.rows(t, 1)
            if recorded:
                out.append(t)
                continue
            if t.shape[0] != n_heads:
                t = t.repeat_interleave(n_heads // t.shape[0], dim=0)
            if not every_head:
                t = t.index_select(0, torch.tensor(self.heads, device=t.device))
            out.append(t)
        return out

    def stacked(self, site: str, hook: str) -> torch.Tensor:
        """(L, H, ...) of a per-head hook (see ``layers``)."""
        return torch.stack(self.layers(site, hook))

    def per_layer(self, site: str, where: str, hook: str) -> torch.Tensor:
        """(L, ...) of a hook with no head axis (``where``: the site or its stack), over the
        site's layers."""
        return torch.stack(
            [
                self.rows(self.trace[hook_name(where, li, hook)][0], 0)
                for li in self.plan.sites[site]
            ]
        )

    def mask(self, site: str) -> torch.Tensor:
        """(Tq, Tk) True where the query may attend, over the window's rows."""
        return self.rows(self.trace[hook_name(site, self.plan.sites[site][0], "mask")][0], 0)

    def sites(self) -> list[str]:
        return [s for s, layers in self.plan.sites.items() if layers]


def _patterns(c: Captured) -> dict:
    return {s: stack_tensor(c.layers(s, "pattern"), c.fmt, prob=True) for s in c.sites()}


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
        parts = {p: stack_tensor(c.layers(s, p), c.fmt) for p in [*c.plan.qkv_parts(s), "z"]}
        parts["x"] = tensor(c.per_layer(s, s, "in"), c.fmt)
        if hook_name(stack, c.plan.sites[s][0], SITE_OUTPUT[s]) in c.trace:  # no W_O: no out
            parts["out"] = tensor(c.per_layer(s, stack, SITE_OUTPUT[s]), c.fmt)
        out[s] = parts
    return out


def _rope(c: Captured) -> dict | None:
    """The rotation angles the model used (captured in its forward pass), or None."""
    cfg = c.plan.config
    if c.stored.rope_angles is None:
        return None
    return {
        "base": cfg.rope_base,
        "d_head": cfg.d_head,
        "pairing": cfg.pair_layout,  # interleaved (2i, 2i+1) or halves (i, i + d/2)
        "angles": tensor(c.stored.rope_angles, c.fmt),
    }


def _hidden(c: Captured) -> dict:
    """The L2 norm of the residual stream per layer and position, around each sublayer."""
    return {
        stack: {
            name: tensor(norms[layers], c.fmt) for name, norms in c.stored.hidden[stack].items()
        }
        for stack, layers in c.plan.stack_layers().items()
    }


def norms_of(c: Captured, site: str) -> torch.Tensor:
    """Value-weighted norms ‖α_ij · f_h(x_j)‖ (L, H, Tq, Tk) of the selected heads."""
    per_layer = []
    for li in c.plan.sites[site]:
        module = c.model.get_submodule(hook_name(site, li, "v").rsplit(".", 1)[0])
        w_o = module.W_o.weight if hasattr(module, "W_o") else None  # RNN: the values as they are
        pattern = c.rows(c.trace[hook_name(site, li, "pattern")], 2)
        v = c.trace[hook_name(site, li, "v")]
        per_layer.append(value_weighted_norms(pattern, v, w_o)[0])
    norms = torch.stack(per_layer)
    if c.heads != list(range(c.plan.config.n_heads)):
        norms = norms.index_select(1, torch.tensor(c.heads, device=norms.device))
    return norms


def _norms(c: Captured) -> dict:
    return {s: tensor(norms_of(c, s), c.fmt) for s in c.sites()}


#: include value -> what it adds to the answer (attention weights are always there)
EXTRACTORS: dict[str, Callable[[Captured], Any]] = {
    "masks": _masks,
    "scores": _scores,
    "qkv": _qkv,
    "rope": _rope,
    "hidden": _hidden,
    "norms": _norms,
}


def pool_edges(
    kind: str, source_len: int, target_len: int | None, size: int
) -> tuple[dict[str, list[int]], dict[str, tuple[list[int], list[int]]]]:
    """Block edges per sequence, and per site its (query, key) edges."""
    edges = {"source": block_edges(source_len, size)}
    if target_len is not None:
        edges["target"] = block_edges(target_len, size)
    if kind != "seq2seq":
        return edges, {f"{kind}.self": (edges["source"], edges["source"])}
    src, tgt = edges["source"], edges["target"]
    return edges, {
        "encoder.self": (src, src),
        "decoder.self": (tgt, tgt),
        "decoder.cross": (tgt, src),
    }


def rotary_site(cfg: ModelConfig) -> str | None:
    """The first site whose queries and keys RoPE rotates (self-attention only)."""
    if cfg.positional != "rope":
        return None
    return next(s for s in cfg.sites if not s.endswith("cross"))


ATTENTION_HOOKS = ("in", "q", "k", "v", "rot_q", "rot_k", "scores", "mask", "pattern", "z")


def replayable(cfg: ModelConfig) -> bool:
    """A transformer's attention module can run again alone on its stored input; a
    recurrent decoder's attention is one step of a loop, so its trace is kept instead."""
    return cfg.architecture == "transformer"


def stream_hooks(model: torch.nn.Module) -> list[str]:
    """What the store keeps of a forward pass: every attention module's input, the encoder's
    output (seq2seq), the RoPE angles, the residual stream around each sublayer (for its
    norms); for a model that cannot replay, every attention hook."""
    cfg, known = model.config, set(model.hook_point_names)
    hooks = ("in",) if replayable(cfg) else ATTENTION_HOOKS
    names = [hook_name(s, li, h) for s, n in cfg.sites.items() for li in range(n) for h in hooks]
    if cfg.kind == "seq2seq":
        names.append(hook_name("encoder", None, "out"))
    if rotary_site(cfg):
        names.append(hook_name(rotary_site(cfg), 0, "rope_angles"))
    for stack in cfg.stacks:
        for li in range(cfg.depth(stack)):
            names += [hook_name(stack, li, f"resid_{w}") for w in ("pre", "mid", "post")]
    return [n for n in names if n in known]


def keep(trace: Trace, cfg: ModelConfig, target_ids: list[int] | None) -> StoredInput:
    def norms(stack: str, where: str) -> torch.Tensor:  # (L, T)
        # each layer's norms, then the stack of those: stacking the states first copied
        # (L, T, d_model) three times per stack (113 MB on GPT-2-small's shape at 1024 tokens)
        return torch.stack(
            [
                torch.linalg.vector_norm(trace[hook_name(stack, li, where)][0].float(), dim=-1)
                for li in range(cfg.depth(stack))
            ]
        )

    rotary = rotary_site(cfg)
    return StoredInput(
        target_ids=target_ids,
        module_inputs={
            (site, li): trace[hook_name(site, li, "in")]
            for site, n in cfg.sites.items()
            for li in range(n)
            if hook_name(site, li, "in") in trace
        },
        memory=trace.tensors.get(hook_name("encoder", None, "out")),
        rope_angles=trace.tensors.get(hook_name(rotary, 0, "rope_angles")) if rotary else None,
        hidden={
            stack: {f"resid_{w}": norms(stack, f"resid_{w}") for w in ("pre", "mid", "post")}
            for stack in cfg.stacks
            if hook_name(stack, 0, "resid_pre") in trace
        },
        kept=None if replayable(cfg) else dict(trace.tensors),
    )


def replay(
    entry: Entry, stored: StoredInput, plan: AttentionPlan, edits: dict | None = None
) -> Trace:
    """The plan's hooks from each requested attention module, run again on its stored input
    (or read from the kept trace of a model that cannot replay). ``edits``: the ablation the
    stored input was computed under (a module's own heads are ablated at its output)."""
    model = entry.model
    if stored.kept is not None:
        trace = Trace(plan.hooks())
        trace.tensors = {n: t for n, t in stored.kept.items() if trace.wants(n)}
        return trace
    with capture(model, plan.hooks(), edits=edits, slices=plan.slices()) as trace:
        for site, layers in plan.sites.items():
            stack_name = site.split(".")[0]
            stack = getattr(model, stack_name)
            for li in layers:
                x = stored.module_inputs[(site, li)]
                positions = torch.arange(x.shape[1], device=x.device)
                cross = site.endswith("cross")
                memory = stored.memory if cross else None
                self_mask, memory_mask, rope = stack.attention_inputs(positions, 1, None, memory)
                module = model.get_submodule(hook_name(site, li, "z").rsplit(".", 1)[0])
                if cross:
                    out = module(x, context=memory, mask=memory_mask)
                else:
                    out = module(x, mask=self_mask, rope=rope)
                trace.record(hook_name(stack_name, li, SITE_OUTPUT[site]), out)
    return trace


def attention(
    inp: ModelInput,
    include,
    fmt: Format,
    max_new_tokens: int,
    pool_size: int | None = None,
    store: TraceStore | None = None,
    weights: bool = True,
) -> dict:
    """POST /attention: plan the hooks; one forward pass, or when the store holds this input,
    the requested attention modules run again on their stored inputs; extract what was asked.
    Under an ablation, also how far each returned head's attention moved."""
    entry, cfg = inp.entry, inp.entry.config
    plan = AttentionPlan.of(cfg, inp.layers, include, inp.heads if pool_size is None else None)
    store = store if store is not None else TraceStore(0)
    stored, trace = _stored_input(inp, plan, store, max_new_tokens, pooled=pool_size is not None)
    target = inp.target
    if target is None and stored.target_ids is not None:
        codec = entry.codec
        target = Sequence(stored.target_ids, codec.ids_view(stored.target_ids) if codec else None)
    if pool_size is None:
        trace = trace or replay(entry, stored, plan, inp.edits)
        captured = Captured(trace, plan, inp.heads, fmt, entry.model, stored, inp.window)
        parts = {"attention": _patterns(captured)} if weights else {}
        parts |= {name: f(captured) for name, f in EXTRACTORS.items() if name in plan.include}
        if inp.window is not None:
            parts["query_window"] = list(inp.window)
    else:
        target_len = len(target.ids) if target else None
        by_seq, edges = pool_edges(cfg.kind, len(inp.source.ids), target_len, pool_size)
        parts = pooled(entry, stored, plan, inp.heads, fmt, edges, inp.edits)
        parts |= {n: EXTRACTORS[n](Captured(None, plan, inp.heads, fmt, entry.model, stored))
                  for n in ("rope", "hidden") if n in plan.include}  # fmt: skip
        parts["pool"] = {"size": pool_size, "edges": by_seq}
    if inp.ablate:
        parts |= ablation_info(inp, changed=_changed(inp, plan, store, max_new_tokens, stored))
    return {
        "model": entry.id,
        "kind": cfg.kind,
        "format": fmt,
        "n_layers": max(cfg.sites.values()),
        "n_heads": cfg.n_heads,
        "layers": inp.layers,
        "heads": inp.heads,
        "tokens": tokens_of(inp, target),
        **parts,
    }


def _stored_input(
    inp: ModelInput, plan: AttentionPlan, store: TraceStore, max_new_tokens: int, pooled: bool
) -> tuple[StoredInput, Trace | None]:
    """The input's stored forward pass (computed now if missing, with the plan's hooks unless
    the answer is pooled), and that pass's trace when it was computed here."""
    entry, cfg = inp.entry, inp.entry.config
    given = inp.target.ids if inp.target else None
    key = (entry.id, tuple(inp.source.ids), None if given is None else tuple(given), inp.ablate)
    fresh: list[Trace] = []
    # A short input's forward pass costs about what replaying its modules would: it is run
    # again rather than kept, and captures only what this answer reads.
    short = not pooled and len(inp.source.ids) + len(given or ()) < store.min_tokens

    def run_forward() -> StoredInput:
        target = target_of(inp, max_new_tokens)
        target_ids = target.ids if target else None
        # pooled answers replay one module at a time: the forward keeps the stream only
        stream = stream_hooks(entry.model)
        if short:
            wanted = ["resid_", "rope_angles"] if plan.include & {"hidden", "rope"} else []
            stream = [n for n in stream if any(w in n for w in wanted)]
        names = [*([] if pooled else plan.hooks()), *stream]
        slices = {} if pooled else plan.slices()
        fresh.append(forward(entry, inp.source.ids, target_ids, names, inp.edits, slices))
        return keep(fresh[0], cfg, target_ids)

    if short:
        store.count_forward()
        return run_forward(), fresh[0]
    stored, _ = store.get_or_compute(key, run_forward)
    return stored, fresh[0] if fresh else None


def _changed(
    inp: ModelInput, plan: AttentionPlan, store: TraceStore, max_new_tokens: int, ablated
) -> dict:
    """Per site (L, H): the total variation distance between each returned head's rows with
    and without the ablation, averaged over queries. The clean pass reads the ablated one's
    target, so both compare the same positions."""
    target_ids = ablated.target_ids
    clean_target = None if target_ids is None else Sequence(target_ids, None)
    clean = replace(inp, ablate=(), target=clean_target or inp.target)
    pattern_only = AttentionPlan(plan.config, plan.sites, frozenset())
    stacked = []
    for run in (inp, clean):
        stored, trace = _stored_input(run, pattern_only, store, max_new_tokens, pooled=False)
        trace = trace or replay(run.entry, stored, pattern_only, run.edits)
        stacked.append(Captured(trace, pattern_only, inp.heads, "json", run.entry.model, stored))
    after, before = stacked
    out = {}
    for site in before.sites():
        a, b = after.stacked(site, "pattern").float(), before.stacked(site, "pattern").float()
        out[site] = rounded(0.5 * (a - b).abs().sum(-1).mean(-1))
    return out


def pooled(
    entry: Entry,
    stored: StoredInput,
    plan: AttentionPlan,
    heads: list[int],
    fmt: Format,
    edges: dict[str, tuple[list[int], list[int]]],
    edits: dict | None = None,
) -> dict:
    """Pooled attention (and norms), one attention module at a time: the full matrices of a
    long input's heads never sit in memory together, only one layer's."""
    out: dict = {"attention": {}}
    if "norms" in plan.include:
        out["norms"] = {}
    for site, layers in plan.sites.items():
        if not layers:
            continue
        patterns, norms = [], []
        for li in layers:
            one = AttentionPlan(plan.config, {site: [li]}, plan.include)
            c = Captured(replay(entry, stored, one, edits), one, heads, fmt, entry.model, stored)
            patterns.append(pool(c.stacked(site, "pattern"), *edges[site]))
            if "norms" in plan.include:
                norms.append(pool(norms_of(c, site), *edges[site]))
        out["attention"][site] = tensor(torch.cat(patterns), fmt, prob=True)
        if norms:
            out["norms"][site] = tensor(torch.cat(norms), fmt)
    return out
