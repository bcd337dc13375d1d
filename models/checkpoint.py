"""Checkpoints as a folder: config.json + model.safetensors (+ tokenizer.json, card.json).

Weights are read with safetensors only: loading never unpickles anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from models.config import ModelConfig
from models.rnn import RNNConfig, RNNSeq2Seq
from models.transformer import Transformer, build_model

CONFIG, WEIGHTS, TOKENIZER, CARD = "config.json", "model.safetensors", "tokenizer.json", "card.json"


def config_from_dict(data: dict) -> ModelConfig | RNNConfig:
    """A config.json's content -> its config: ``"architecture": "rnn"`` is the RNN
    encoder-decoder, no ``architecture`` field the Transformer."""
    if "architecture" not in data:
        return ModelConfig.from_dict(data)
    if data["architecture"] == "rnn":
        return RNNConfig.from_dict(data)
    raise ValueError(f"unknown architecture {data['architecture']!r}")


def model_from_config(config: ModelConfig | RNNConfig) -> Transformer | RNNSeq2Seq:
    return RNNSeq2Seq(config) if isinstance(config, RNNConfig) else build_model(config)


@dataclass
class Checkpoint:
    model: Transformer | RNNSeq2Seq
    config: ModelConfig | RNNConfig
    tokenizer: Any | None = None  # tokenizers.Tokenizer
    card: dict = field(default_factory=dict)
    path: Path | None = None


#: a head tied to the token embeddings is stored once, under the embeddings' name
TIED_HEAD, EMBEDDINGS = "lm_head.weight", "tok_embed.weight"


def save_checkpoint(
    path: str | Path,
    model: Transformer | RNNSeq2Seq,
    tokenizer: Any | None = None,
    card: dict | None = None,
) -> Path:
    return write_checkpoint(path, model.config, model.state_dict(), tokenizer, card)


def write_checkpoint(
    path: str | Path,
    config: ModelConfig | RNNConfig,
    state: dict[str, torch.Tensor],
    tokenizer: Any | None = None,
    card: dict | None = None,
) -> Path:
    """Write a checkpoint folder from a state dict of the model ``config`` builds (tensors
    keep their dtype; `load_checkpoint` casts them to the model's)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / CONFIG).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in state.items()
        if not (config.tie_embeddings and k == TIED_HEAD)  # safetensors stores no aliases
    }
    save_file(state, str(path / WEIGHTS), metadata={"format": "pt", "kind": config.kind})
    if tokenizer is not None:
        tokenizer.save(str(path / TOKENIZER))
    if card is not None:
        write_card(path, card)
    return path


def write_card(path: str | Path, card: dict) -> None:
    (Path(path) / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")


def weights_bytes(path: str | Path) -> int:
    """The size of a checkpoint folder's weights file (0 when it has none)."""
    weights = Path(path) / WEIGHTS
    return weights.stat().st_size if weights.is_file() else 0


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    config = config_from_dict(json.loads((path / CONFIG).read_text()))
    model = model_from_config(config)
    state = load_file(str(path / WEIGHTS), device="cpu")
    if config.tie_embeddings:
        state[TIED_HEAD] = state[EMBEDDINGS]
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    tokenizer = None
    if (path / TOKENIZER).exists():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path / TOKENIZER))
    card = json.loads((path / CARD).read_text()) if (path / CARD).exists() else {}
    return Checkpoint(model=model, config=config, tokenizer=tokenizer, card=card, path=path)
