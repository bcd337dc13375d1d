"""Loads every checkpoint once, at start-up: model id -> (model, tokenizer, card)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from app.memory import mb
from app.tokenization import TextCodec
from models import load_checkpoint
from models.checkpoint import Checkpoint, weights_bytes
from models.precision import use_bfloat16_matmuls
from models.snapshots import load_snapshot, read_manifest
from models.transformer import Transformer, count_parameters

log = logging.getLogger("attnviz.registry")

#: snapshot models kept loaded per model (each the size of the model: ~1.2 MB for induction-2l)
SNAPSHOTS_KEPT = 16


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("ATTNVIZ_DEVICE=cuda but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class Entry:
    id: str
    checkpoint: Checkpoint
    dtype: str = "float32"  # of the linear layers' products (models/precision.py)
    _snapshots: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _snapshots_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def model(self):
        return self.checkpoint.model

    @property
    def config(self):
        return self.checkpoint.config

    @property
    def tokenizer(self):
        return self.checkpoint.tokenizer

    @property
    def card(self) -> dict:
        return self.checkpoint.card

    @cached_property
    def parameters(self) -> dict[str, int]:
        return count_parameters(self.model)

    @property
    def n_params(self) -> int:
        return self.parameters["total"]

    @cached_property
    def codec(self) -> TextCodec | None:
        """Text <-> the ids this model reads (None when the checkpoint ships no tokenizer)."""
        if self.tokenizer is None:
            return None
        return TextCodec(self.tokenizer, self.config, self.card.get("special_tokens"))

    @cached_property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @cached_property
    def snapshots(self) -> dict | None:
        """The training run's snapshots.json (models/snapshots.py); None without one."""
        path = self.checkpoint.path
        return read_manifest(path) if path is not None else None

    def snapshot(self, step: int) -> Transformer:
        """The model after ``step`` training steps, loaded on first use; the last
        SNAPSHOTS_KEPT used stay loaded."""
        with self._snapshots_lock:
            if step in self._snapshots:
                self._snapshots.move_to_end(step)
                return self._snapshots[step]
        model = load_snapshot(self.checkpoint.path, step, self.config).to(self.device)
        if self.dtype == "bfloat16":
            use_bfloat16_matmuls(model)
        with self._snapshots_lock:
            self._snapshots[step] = model
            while len(self._snapshots) > SNAPSHOTS_KEPT:
                self._snapshots.popitem(last=False)
        return model


class Registry:
    def __init__(self, device: torch.device, dtype: str = "float32") -> None:
        self.device = device
        self.dtype = dtype
        self.entries: dict[str, Entry] = {}
        self.refused: dict[str, str] = {}  # model id -> why it is not served

    @classmethod
    def load(
        cls,
        directories: list[Path],
        device: torch.device,
        dtype: str = "float32",
        weights_budget: int | None = None,
    ) -> Registry:
        """Every checkpoint folder in each directory; an id seen twice keeps its first.

        ``dtype`` "bfloat16": the linear layers multiply in bfloat16 (models/precision.py).
        ``weights_budget``: the bytes all models' weights may take (ATTNVIZ_MODELS_MEMORY_MB);
        a model that would go past it is not loaded, and named with why in ``refused``."""
        registry = cls(device, dtype)
        loaded = 0
        for directory in directories:
            if not directory.is_dir():
                log.warning("checkpoint directory %s does not exist: skipped", directory)
                continue
            for path in sorted(p for p in directory.iterdir() if (p / "config.json").exists()):
                if path.name in registry.entries:
                    log.warning("%s: a model named %s is already loaded: skipped", path, path.name)
                    continue
                weights = weights_bytes(path) * (3 if dtype == "bfloat16" else 2) // 2
                if weights_budget is not None and loaded + weights > weights_budget:
                    why = (
                        f"its weights need {mb(weights)} MB and {mb(weights_budget - loaded)} MB "
                        f"are left of the models' memory (ATTNVIZ_MODELS_MEMORY_MB="
                        f"{mb(weights_budget)}): raise it, or serve fewer models"
                    )
                    log.error("%s: not served: %s", path, why)
                    registry.refused[path.name] = why
                    continue
                try:
                    checkpoint = load_checkpoint(path, device)
                except Exception:  # one broken folder must not keep the others offline
                    log.exception("could not load the checkpoint in %s: skipped", path)
                    continue
                if dtype == "bfloat16":
                    use_bfloat16_matmuls(checkpoint.model)
                registry.entries[path.name] = Entry(path.name, checkpoint, dtype)
                loaded += weights
                log.info("loaded %s on %s (%s)", path.name, device, dtype)
        return registry

    def __contains__(self, model_id: str) -> bool:
        return model_id in self.entries

    def get(self, model_id: str) -> Entry:
        return self.entries[model_id]

    def __iter__(self):
        return iter(self.entries.values())
