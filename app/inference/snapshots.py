"""GET /models/{id}/snapshots and /models/{id}/snapshots/{step}/attention: a training run's
snapshots (models/snapshots.py), each loaded on first use (``Entry.snapshot``), scored and
read on the induction probe of POST /heads/scores."""

from __future__ import annotations

import torch

from app.inference.common import tokens_of
from app.inputs import ModelInput
from models.snapshots import SCORES, probe_patterns, probe_scores

DEFINITIONS = {
    "induction": "attention from each token of the second run to the token after its first "
    "occurrence, averaged over those tokens (Olsson et al. 2022)",
    "previous_token": "attention from each token to the one just before it, averaged over "
    "the tokens",
    "loss": "the training loss (cross-entropy on the copied tokens) of the batch at each step",
}


def _rounded(values: torch.Tensor) -> list:
    return [[None if v != v else round(v, 4) for v in row] for row in values.tolist()]


def _measure(inp: ModelInput, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ids = torch.tensor(inp.source.ids)
    patterns = probe_patterns(inp.entry.snapshot(step), ids)
    return patterns, probe_scores(patterns, ids)


def _probe(seed: int, run_length: int) -> dict:
    return {"seed": seed, "run_length": run_length}


def snapshots(inp: ModelInput, seed: int, run_length: int) -> dict:
    """The run's loss curve, and every snapshot's head scores on the probe."""
    manifest = inp.entry.snapshots
    out = []
    for snap in manifest["snapshots"]:
        _, measured = _measure(inp, snap["step"])
        scores = {name: _rounded(measured[name]) for name in SCORES}
        out.append({"step": snap["step"], "loss": snap["loss"], "scores": scores})
    return {
        "model": inp.entry.id,
        "steps": manifest["steps"],
        "seed": manifest["seed"],
        "selection": manifest["selection"],
        "loss_window": manifest["loss_window"],
        "loss": manifest["loss"],
        "probe": _probe(seed, run_length),
        "tokens": tokens_of(inp, None),
        "snapshots": out,
        "formed": {
            **manifest["formed"],
            "probe": _probe(manifest["probe"]["seed"], manifest["probe"]["run_length"]),
        },
        "run": manifest.get("run"),
        "definitions": DEFINITIONS,
    }


def snapshot_attention(inp: ModelInput, step: int, seed: int, run_length: int) -> dict:
    """One head's attention on the probe at one snapshot, and its scores there."""
    layer, head = inp.layers[0], inp.heads[0]
    patterns, measured = _measure(inp, step)
    loss = next(s["loss"] for s in inp.entry.snapshots["snapshots"] if s["step"] == step)
    return {
        "model": inp.entry.id,
        "step": step,
        "loss": loss,
        "layer": layer,
        "head": head,
        "probe": _probe(seed, run_length),
        "tokens": tokens_of(inp, None),
        "attention": _rounded(patterns[layer, head]),
        "scores": {name: _rounded(measured[name])[layer][head] for name in SCORES},
    }
