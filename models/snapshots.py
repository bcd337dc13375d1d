"""Snapshots of a training run: the weights at a few steps of it, beside the checkpoint.

A checkpoint folder may hold ``snapshots/``: ``snapshots.json`` (the run's training loss at
every step, the snapshot steps, the probe and each head's scores measured on every snapshot)
and one ``step-NNNNN.safetensors`` per snapshot, the weights (float16, to keep them small)
after that many optimizer steps. The checkpoint's own config.json describes them all.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from models.analysis import scores
from models.checkpoint import CONFIG, EMBEDDINGS, TIED_HEAD, config_from_dict, model_from_config
from models.hooks import capture
from models.transformer import Transformer

FOLDER, MANIFEST = "snapshots", "snapshots.json"
#: the scores measured on every snapshot
SCORES = ("induction", "previous_token")


def snapshot_file(step: int) -> str:
    return f"step-{step:05d}.safetensors"


def read_manifest(checkpoint_dir: str | Path) -> dict | None:
    """The run's snapshots.json, or None when the checkpoint has no snapshots."""
    path = Path(checkpoint_dir) / FOLDER / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def load_snapshot(checkpoint_dir: str | Path, step: int, config=None) -> Transformer:
    """The model as it was after ``step`` training steps (float32, eval mode, CPU).
    ``config``: the checkpoint's (default: read from its config.json)."""
    checkpoint_dir = Path(checkpoint_dir)
    if config is None:
        config = config_from_dict(json.loads((checkpoint_dir / CONFIG).read_text()))
    model = model_from_config(config)
    state = load_file(str(checkpoint_dir / FOLDER / snapshot_file(step)), device="cpu")
    if config.tie_embeddings:
        state[TIED_HEAD] = state[EMBEDDINGS]
    model.load_state_dict(state, strict=True)  # casts the float16 weights to float32
    return model.eval()


@torch.inference_mode()
def probe_patterns(model: Transformer, ids: torch.Tensor) -> torch.Tensor:
    """Every decoder head's attention on ``ids`` ``(T,)``: ``(layers, heads, T, T)``."""
    depth = model.config.depth("decoder")
    names = [f"decoder.blocks.{i}.attn.hook_pattern" for i in range(depth)]
    with capture(model, names=names) as trace:
        model.decode(ids[None].to(next(model.parameters()).device))
    return torch.stack([trace[n][0] for n in names])


def probe_scores(patterns: torch.Tensor, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each head's induction and previous-token score ``(layers, heads)`` on the probe."""
    patterns, ids = patterns.double(), ids.to(patterns.device)  # as POST /heads/scores
    return {
        "induction": scores.induction(patterns, ids),
        "previous_token": scores.previous_token(patterns),
    }
