"""Head ablations: edits for a ``hook_z`` point, applied in flight by ``capture``.

``hook_z`` is each head's output before ``W_O``, shaped ``(B, H, T, d_head)``; since the
heads are concatenated and then multiplied by ``W_O``, editing one head's slice of ``z``
removes exactly that head's contribution to the residual stream.

    edits = ablation_edits([("decoder.self", 1, 2, "zero"), ("decoder.self", 0, 1, "mean")])
    with capture(model, edits=edits):
        logits = model(ids)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple

import torch

from models.hooks import Edit

Mode = Literal["zero", "mean"]

#: Where each attention site's per-head output is captured, by layer.
HOOK_Z = {
    "encoder.self": "encoder.blocks.{layer}.attn.hook_z",
    "decoder.self": "decoder.blocks.{layer}.attn.hook_z",
    "decoder.cross": "decoder.blocks.{layer}.cross_attn.hook_z",
}
MODES = ("zero", "mean")


class HeadAblation(NamedTuple):
    site: str  # a key of HOOK_Z
    layer: int
    head: int
    mode: Mode = "zero"


def _check_head(z: torch.Tensor, head: int) -> None:
    if not 0 <= head < z.shape[1]:
        raise ValueError(f"head {head} does not exist: this layer has {z.shape[1]} heads")


def zero_head(head: int) -> Edit:
    """Silence one head: its output becomes 0 at every position."""

    def edit(z: torch.Tensor) -> torch.Tensor:
        _check_head(z, head)
        z = z.clone()
        z[:, head] = 0.0
        return z

    return edit


def mean_head(head: int) -> Edit:
    """Replace one head's output at every position by its mean over the input's positions
    (per sequence): the head still adds its average, but no longer depends on where it looks."""

    def edit(z: torch.Tensor) -> torch.Tensor:
        _check_head(z, head)
        z = z.clone()
        z[:, head] = z[:, head].mean(dim=-2, keepdim=True)
        return z

    return edit


EDITS = {"zero": zero_head, "mean": mean_head}


def _chain(edits: list[Edit]) -> Edit:
    def edit(z: torch.Tensor) -> torch.Tensor:
        for e in edits:
            z = e(z)
        return z

    return edit


def ablation_edits(
    ablations: Iterable[HeadAblation | tuple[str, int, int, Mode] | tuple[str, int, int]],
) -> dict[str, Edit]:
    """The ``edits`` dict for ``capture(model, edits=...)`` that ablates the given heads.

    Each item is ``(site, layer, head[, mode])``; heads of one layer share one hook, so
    their edits are chained. ``capture`` rejects a layer the model does not have; a head
    out of range fails when the edit runs.
    """
    per_hook: dict[str, list[Edit]] = {}
    for item in ablations:
        a = HeadAblation(*item)
        if a.site not in HOOK_Z:
            raise ValueError(f"unknown site {a.site!r}; expected one of {sorted(HOOK_Z)}")
        if a.mode not in EDITS:
            raise ValueError(f"unknown ablation mode {a.mode!r}; expected one of {MODES}")
        if a.layer < 0 or a.head < 0:
            raise ValueError(f"layer and head must be >= 0, got {a.layer}, {a.head}")
        name = HOOK_Z[a.site].format(layer=a.layer)
        per_hook.setdefault(name, []).append(EDITS[a.mode](a.head))
    return {name: _chain(edits) for name, edits in per_hook.items()}
