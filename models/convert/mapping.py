"""What every family's converter produces, and the small helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from models.config import ModelConfig
from models.convert.source import ConversionError, Source, Weights

State = dict[str, torch.Tensor]

#: Hugging Face activation names -> ours (anything else is refused by `activation`)
ACTIVATIONS = {
    "relu": "relu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "silu": "silu",
    "swish": "silu",
}


@dataclass
class Converted:
    """A Hugging Face checkpoint as one of ours: the config and the state dict of
    `Transformer(config)` (a tied head's matrix is stored once, as ``tok_embed.weight``)."""

    config: ModelConfig
    state: State
    tasks: list[str]
    dropped: list[str] = field(default_factory=list)  # source tensors not imported, and why
    notes: list[str] = field(default_factory=list)  # what the import changed or assumed
    parameters: dict[str, int] = field(default_factory=dict)  # per part, once checked


def move(state: State, w: Weights, ours: str, theirs: str, *, bias: bool = True) -> None:
    """A Linear or norm module: weight (and bias) from ``theirs`` to ``ours``."""
    state[f"{ours}.weight"] = w.take(f"{theirs}.weight")
    if bias:
        state[f"{ours}.bias"] = w.take(f"{theirs}.bias")


def activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ConversionError(
            f"activation {name!r} is not supported (supported: {sorted(ACTIVATIONS)})"
        )
    return ACTIVATIONS[name]


def require(source: Source, **values: object) -> None:
    """Raise if any of these config keys holds a value other than the one given (the one we
    implement), e.g. ``require(src, position_embedding_type="absolute")``."""
    for key, supported in values.items():
        value = source.config.get(key, supported)
        if value != supported and value is not None:
            raise ConversionError(
                f"{source.architecture or source.config.get('model_type')}: {key}={value!r} "
                f"is not supported (only {supported!r})"
            )


def decoder_pad_id(source: Source) -> int:
    """A decoder-only checkpoint's padding id: its own pad token, else its EOS (what Hugging
    Face pads a decoder with), else 0. Not a made-up 0 when it has a pad-less vocabulary:
    generation never picks the padding id, and 0 is a real token there ("!" in GPT-2's,
    Llama 3's and Qwen2's vocabularies, <unk> in Llama 2's and Mistral's) that transformers'
    greedy decoding does pick."""
    pad = source.token_id("pad_token_id")
    if pad is None:
        pad = source.token_id("eos_token_id")
    return 0 if pad is None else pad


def lm_head(state: State, w: Weights, source: Source, head_weight: str) -> bool:
    """The vocabulary matrix: tied to the token embeddings (the HF config's
    tie_word_embeddings, default True; a stored copy is dropped, as HF ignores it too) or its
    own ``head_weight``. Returns whether it is tied."""
    if source.config.get("tie_word_embeddings", True):
        w.drop(head_weight)
        return True
    if head_weight not in w:
        raise ConversionError(
            f"tie_word_embeddings is false but the checkpoint has no {head_weight!r}"
        )
    state["lm_head.weight"] = w.take(head_weight)
    return False
