"""Request and response schemas (pydantic). Named "schemas" so "models" means networks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class ModelInfo(BaseModel):
    id: str
    kind: Literal["encoder", "decoder", "seq2seq"]
    title: str
    description: str
    n_layers: int
    n_decoder_layers: int | None = None
    n_heads: int
    d_model: int
    d_head: int
    d_ff: int
    positional: str
    norm: str
    norm_position: str
    activation: str
    vocab_size: int
    max_len: int
    n_params: int
    tasks: list[str]


class ModelList(BaseModel):
    models: list[ModelInfo]
