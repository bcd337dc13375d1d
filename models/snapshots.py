"""Snapshots of a training run: the weights after some steps, small (float16 safetensors), in
``<checkpoint>/snapshots/`` beside the checkpoint they lead to, listed in ``snapshots.json``.

    save_snapshot(folder, model, step, loss)     # during training
    steps = list_snapshots(folder)               # [{"step", "loss", "file"}, ...]
    load_snapshot(folder, step, model)           # the model's weights as they were then

Only weights are stored (the config and tokenizer are the checkpoint's), read back with
safetensors: nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

FOLDER, INDEX = "snapshots", "snapshots.json"


def _index(folder: Path) -> list[dict]:
    path = folder / FOLDER / INDEX
    return json.loads(path.read_text()) if path.exists() else []


def save_snapshot(folder: str | Path, model: nn.Module, step: int, loss: float | None) -> Path:
    """The weights after ``step`` training steps, in float16 (a tied matrix stored once per
    name: safetensors refuses shared storage), and their entry in the index."""
    folder = Path(folder)
    (folder / FOLDER).mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}.safetensors"
    weights = {
        k: v.detach().to("cpu", torch.float16).clone() for k, v in model.state_dict().items()
    }
    save_file(weights, str(folder / FOLDER / name))
    index = [e for e in _index(folder) if e["step"] != step]
    index.append({"step": step, "loss": None if loss is None else round(loss, 4), "file": name})
    index.sort(key=lambda e: e["step"])
    (folder / FOLDER / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return folder / FOLDER / name


def list_snapshots(folder: str | Path) -> list[dict]:
    """The snapshots of a checkpoint folder, by step: ``{"step", "loss", "file"}``."""
    return _index(Path(folder))


def load_snapshot(folder: str | Path, step: int, model: nn.Module) -> nn.Module:
    """Load the weights of the snapshot after ``step`` steps into ``model`` (its own dtype)."""
    entry = next((e for e in _index(Path(folder)) if e["step"] == step), None)
    if entry is None:
        raise KeyError(f"no snapshot after {step} steps in {folder}")
    weights = load_file(str(Path(folder) / FOLDER / entry["file"]))
    dtype = next(model.parameters()).dtype
    model.load_state_dict({k: v.to(dtype) for k, v in weights.items()})
    return model


def snapshot_steps(total: int, n: int) -> list[int]:
    """n steps spread evenly over a run of ``total`` steps, the first (0: the weights before
    training) and the last included."""
    if n <= 0:
        return []
    if n == 1:
        return [total]
    return sorted({round(i * total / (n - 1)) for i in range(n)})
