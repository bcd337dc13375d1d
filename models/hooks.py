"""Named hook points and context-local capture.

Every tensor a student may want to see passes through a `HookPoint`, an identity module
named after its place in the module tree (TransformerLens-style), e.g.
``decoder.blocks.1.cross_attn.hook_pattern``.

    name = hook_name("encoder.self", 0, "pattern")    # "encoder.blocks.0.attn.hook_pattern"
    with capture(model, names=[name]) as trace:
        model.encode(ids)
    pattern = trace[name]                              # (B, H, T, T)

The active trace lives in a ``contextvars.ContextVar``: two threads (or two asyncio tasks)
capturing on one shared model each see their own trace, with no lock and no hook state on
the model itself. With no active trace a hook point costs one context-variable read.

Work run under ``stoppable(event)`` stops at the next recorded hook point once the event is
set (the server sets it when the request's client has gone or timed out): `Cancelled` is
raised there, and the forward pass's tensors are freed as it unwinds.
"""

from __future__ import annotations

import contextvars
import fnmatch
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

Edit = Callable[[torch.Tensor], torch.Tensor]

_active_trace: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "attnviz_trace", default=None
)


class HookPoint(nn.Module):
    """Identity on its input; reports the tensor to the current trace, if any.

    ``record_only``: the model computes on without this hook's output (e.g. the RNN records its
    gates once the recurrence has run), so ``capture`` refuses to edit it.
    """

    def __init__(self, record_only: bool = False) -> None:
        super().__init__()
        self.name = "<unnamed>"  # set by name_hook_points() once the model is built
        self.record_only = record_only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trace = _active_trace.get()
        if trace is None:
            return x
        return trace.record(self.name, x)

    def is_read(self) -> bool:
        """Whether the running capture records or edits this hook point: then the model must
        compute the tensor it names; otherwise it may take a fused path to the same result."""
        trace = _active_trace.get()
        return trace is not None and (self.name in trace.edits or trace.wants(self.name))

    # A hook point has no parameters and no torch hooks of its own, so it skips
    # nn.Module.__call__'s bookkeeping: a model has dozens of them per layer, and decoding
    # one token is mostly such per-call overhead.
    __call__ = forward


def name_hook_points(model: nn.Module) -> None:
    """Give every HookPoint its dotted path in the module tree (once the model is built)."""
    names, record_only = [], []
    for name, module in model.named_modules():
        if isinstance(module, HookPoint):
            module.name = name
            names.append(name)
            if module.record_only:
                record_only.append(name)
    model.hook_point_names = tuple(names)  # capture() checks names against these
    model.hook_point_set = frozenset(names)
    model.record_only_hook_names = frozenset(record_only)


def hook_names(model: nn.Module) -> list[str]:
    """All hook point names of a model, in module order."""
    named = getattr(model, "hook_point_names", None)
    if named is not None:
        return list(named)
    return [n for n, m in model.named_modules() if isinstance(m, HookPoint)]


#: attention site -> (stack, attention module of a block)
SITES = {
    "encoder.self": ("encoder", "attn"),
    "decoder.self": ("decoder", "attn"),
    "decoder.cross": ("decoder", "cross_attn"),
}
#: the block hook holding an attention site's output (after W_O, before Add & Norm)
SITE_OUTPUT = {"encoder.self": "attn_out", "decoder.self": "attn_out", "decoder.cross": "cross_out"}


def hook_name(where: str, layer: int | None = None, hook: str = "") -> str:
    """The name of a hook point: the one place hook names are spelled.

    ``where`` is an attention site (the hook of that layer's attention module), a stack
    (``layer`` given: a block's hook; else the stack's own), or "" (the model's top level)::

        hook_name("decoder.cross", 1, "pattern") -> "decoder.blocks.1.cross_attn.hook_pattern"
        hook_name("encoder", 0, "resid_pre")     -> "encoder.blocks.0.hook_resid_pre"
        hook_name("encoder", 0, "ffn.pre")       -> "encoder.blocks.0.ffn.hook_pre"
        hook_name("decoder", None, "embed")      -> "decoder.hook_embed"
        hook_name("", None, "logits")            -> "hook_logits"
    """
    module, _, leaf = hook.rpartition(".")
    if where in SITES:
        if layer is None:
            raise ValueError(f"an attention site's hook needs a layer: {where}")
        stack, attn = SITES[where]
        parts = [stack, "blocks", str(layer), attn]
    elif where in ("encoder", "decoder"):
        parts = [where] if layer is None else [where, "blocks", str(layer)]
    elif where == "" and layer is None:
        parts = []
    else:
        raise ValueError(f"unknown hook location {where!r} (layer {layer})")
    return ".".join([*parts, *([module] if module else []), f"hook_{leaf}"])


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


_stop_event: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "attnviz_stop", default=None
)


class Cancelled(RuntimeError):
    """The work was stopped (its requester went away) at a hook point."""


@contextmanager
def stoppable(event: threading.Event) -> Iterator[None]:
    """Captures opened inside stop at their next hook point once ``event`` is set."""
    token = _stop_event.set(event)
    try:
        yield
    finally:
        _stop_event.reset(token)


class Trace:
    """What one forward pass recorded, plus the edits it applies.

    names: hook names or glob patterns to record (None records everything).
    edits: hook name -> function applied to the tensor in the forward pass (ablations).
    slices: hook name -> the part of its tensor to record (e.g. some heads of a pattern): the
    model computes on with the whole tensor, and the rest is not kept alive by the trace.
    Recorded tensors are detached; a hook that fires again (one decoding step after another)
    keeps its last value.
    """

    def __init__(
        self,
        names: Iterable[str] | None = None,
        edits: dict[str, Edit] | None = None,
        slices: dict[str, Edit] | None = None,
    ) -> None:
        self.patterns = None if names is None else list(names)
        # Exact names are a set lookup; only glob patterns go through fnmatch (per hook call).
        self._exact = set() if names is None else {p for p in self.patterns if not _is_glob(p)}
        self._globs = [] if names is None else [p for p in self.patterns if _is_glob(p)]
        self.edits = dict(edits or {})
        self.slices = dict(slices or {})
        self.tensors: dict[str, torch.Tensor] = {}
        self._wanted: dict[str, bool] = {}
        self._stop = _stop_event.get()

    def wants(self, name: str) -> bool:
        hit = self._wanted.get(name)
        if hit is None:
            hit = (
                self.patterns is None
                or name in self._exact
                or any(fnmatch.fnmatchcase(name, p) for p in self._globs)
            )
            self._wanted[name] = hit
        return hit

    def record(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if self._stop is not None and self._stop.is_set():
            raise Cancelled(f"stopped at {name}")
        edit = self.edits.get(name)
        if edit is not None:
            x = edit(x)
        if self.wants(name):
            part = self.slices.get(name)
            kept = x if part is None else part(x)
            # detach() makes a new tensor object (~1 µs, dozens per pass): only worth it where
            # autograd tracks x (under inference_mode it never does)
            self.tensors[name] = kept.detach() if kept.requires_grad else kept
        return x

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def keys(self) -> Iterable[str]:
        return self.tensors.keys()


#: Hook points that only report: the attention math computes its output from the unedited
#: scores and pattern (models.attention.scaled_dot_product), so an edit there would be lost.
RECORD_ONLY = ("hook_scores", "hook_mask", "hook_pattern", "hook_rope_angles")


@contextmanager
def capture(
    model: nn.Module,
    names: Iterable[str] | None = None,
    edits: dict[str, Edit] | None = None,
    slices: dict[str, Edit] | None = None,
) -> Iterator[Trace]:
    """Record hook points of ``model`` into a fresh, context-local Trace (see ``Trace``).

    Every name in ``names`` and ``edits`` is checked against the model's hook points (a glob
    must match at least one), so a typo fails loudly instead of capturing nothing.
    """
    known = hook_names(model)
    known_set = getattr(model, "hook_point_set", None) or frozenset(known)
    names = None if names is None else list(names)
    unknown = [
        n
        for n in names or []
        if (n not in known_set if not _is_glob(n) else not fnmatch.filter(known, n))
    ]
    unknown += [n for n in [*(edits or {}), *(slices or {})] if n not in known_set]
    if unknown:
        raise KeyError(f"no such hook point(s): {unknown}")
    record_only = getattr(model, "record_only_hook_names", frozenset())
    lost = [n for n in edits or {} if n.endswith(RECORD_ONLY) or n in record_only]
    if lost:
        raise ValueError(f"these hook points only report and cannot be edited: {lost}")
    trace = Trace(names, edits, slices)
    token = _active_trace.set(trace)
    try:
        yield trace
    finally:
        _active_trace.reset(token)
