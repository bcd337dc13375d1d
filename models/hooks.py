"""Named hook points and context-local capture.

Every tensor a student may want to see passes through a `HookPoint`, an identity module
named after its place in the module tree (TransformerLens-style), e.g.
``decoder.blocks.1.cross_attn.hook_pattern``.

    with capture(model, names=["encoder.blocks.0.attn.hook_pattern"]) as trace:
        model.encode(ids)
    pattern = trace["encoder.blocks.0.attn.hook_pattern"]   # (B, H, T, T)

The active trace lives in a ``contextvars.ContextVar``: two threads (or two asyncio tasks)
capturing on one shared model each see their own trace, with no lock and no hook state on
the model itself. With no active trace a hook point costs one context-variable read.
"""

from __future__ import annotations

import contextvars
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

Edit = Callable[[torch.Tensor], torch.Tensor]

_active_trace: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "attnviz_trace", default=None
)


class HookPoint(nn.Module):
    """Identity on its input; reports the tensor to the current trace, if any."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "<unnamed>"  # set by name_hook_points() once the model is built

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trace = _active_trace.get()
        if trace is None:
            return x
        return trace.record(self.name, x)

    # A hook point has no parameters and no torch hooks of its own, so it skips
    # nn.Module.__call__'s bookkeeping: a model has dozens of them per layer, and decoding
    # one token is mostly such per-call overhead.
    __call__ = forward


def name_hook_points(model: nn.Module) -> None:
    """Give every HookPoint its dotted path in the module tree."""
    for name, module in model.named_modules():
        if isinstance(module, HookPoint):
            module.name = name


def hook_names(model: nn.Module) -> list[str]:
    """All hook point names of a model, in module order."""
    return [n for n, m in model.named_modules() if isinstance(m, HookPoint)]


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


class Trace:
    """What one forward pass recorded, plus the edits it applies.

    names: hook names or glob patterns to record (None records everything).
    edits: hook name -> function applied to the tensor in the forward pass (ablations).
    Recorded tensors are detached; with ``keep_all=True`` a hook that fires several times
    (e.g. once per decoding step) keeps a list instead of the last value.
    """

    def __init__(
        self,
        names: Iterable[str] | None = None,
        edits: dict[str, Edit] | None = None,
        keep_all: bool = False,
    ) -> None:
        self.patterns = None if names is None else list(names)
        # Exact names are a set lookup; only glob patterns go through fnmatch (per hook call).
        self._exact = set() if names is None else {p for p in self.patterns if not _is_glob(p)}
        self._globs = [] if names is None else [p for p in self.patterns if _is_glob(p)]
        self.edits = dict(edits or {})
        self.keep_all = keep_all
        self.tensors: dict[str, torch.Tensor] = {}
        self.history: dict[str, list[torch.Tensor]] = {}
        self._wanted: dict[str, bool] = {}

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
        edit = self.edits.get(name)
        if edit is not None:
            x = edit(x)
        if self.wants(name):
            value = x.detach()
            self.tensors[name] = value
            if self.keep_all:
                self.history.setdefault(name, []).append(value)
        return x

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def keys(self) -> Iterable[str]:
        return self.tensors.keys()


@contextmanager
def capture(
    model: nn.Module | None = None,
    names: Iterable[str] | None = None,
    edits: dict[str, Edit] | None = None,
    keep_all: bool = False,
) -> Iterator[Trace]:
    """Record hook points of ``model`` into a fresh, context-local Trace.

    When ``model`` is given, exact names (no glob characters) in ``names`` and ``edits``
    are checked against its hook points, so a typo fails loudly instead of capturing nothing.
    """
    if model is not None:
        known = set(hook_names(model))
        asked = [n for n in (names or []) if not _is_glob(n)]
        unknown = [n for n in [*asked, *(edits or {})] if n not in known]
        if unknown:
            raise KeyError(f"no such hook point(s): {unknown}")
    trace = Trace(names, edits, keep_all)
    token = _active_trace.set(trace)
    try:
        yield trace
    finally:
        _active_trace.reset(token)
