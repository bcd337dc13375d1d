"""One dataclass describes every model we build: encoder, decoder or encoder-decoder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Literal

Kind = Literal["encoder", "decoder", "seq2seq"]
Positional = Literal["sinusoidal", "learned", "rope", "none"]
Norm = Literal["layernorm", "rmsnorm", "none"]
NormPosition = Literal["pre", "post"]
Activation = Literal["relu", "gelu", "swiglu"]


@dataclass
class ModelConfig:
    kind: Kind
    vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4  # encoder layers for "encoder" and "seq2seq", decoder layers for "decoder"
    n_decoder_layers: int | None = None  # seq2seq only; defaults to n_layers
    d_ff: int = 512
    max_len: int = 256
    positional: Positional = "learned"
    rope_base: float = 10000.0
    norm: Norm = "layernorm"
    norm_position: NormPosition = "post"
    norm_eps: float = 1e-5
    activation: Activation = "relu"
    attn_only: bool = False  # no FFN sub-layer (e.g. the induction-heads model)
    bias: bool = True
    dropout: float = 0.0
    scale_embeddings: bool = (
        False  # multiply token embeddings by sqrt(d_model), as in Vaswani et al.
    )
    n_classes: int = 0  # >0 adds a [CLS] classification head (encoder only)
    labels: list[str] = field(default_factory=list)
    # Special token ids, so the model can build masks and decode without the tokenizer.
    pad_id: int = 0
    bos_id: int | None = None
    eos_id: int | None = None

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.positional == "rope" and self.d_head % 2:
            raise ValueError("RoPE rotates pairs of dimensions: d_head must be even")
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise ValueError("the sinusoidal table needs an even d_model")
        if self.kind == "seq2seq" and self.n_decoder_layers is None:
            self.n_decoder_layers = self.n_layers
        if self.n_classes and self.kind != "encoder":
            raise ValueError("a classification head is only built on an encoder")
        if self.labels and len(self.labels) != self.n_classes:
            raise ValueError("labels must name each of the n_classes classes")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_encoder_layers(self) -> int:
        return self.n_layers if self.kind in ("encoder", "seq2seq") else 0

    @property
    def n_dec_layers(self) -> int:
        if self.kind == "decoder":
            return self.n_layers
        if self.kind == "seq2seq":
            return self.n_decoder_layers
        return 0

    @property
    def attention_sites(self) -> dict[str, int]:
        """The attention sites this model has -> how many layers each (``RNNConfig`` has
        the same property: its only site is ``decoder.cross``)."""
        sites = {
            "encoder.self": self.n_encoder_layers,
            "decoder.self": self.n_dec_layers,
            "decoder.cross": self.n_dec_layers if self.kind == "seq2seq" else 0,
        }
        return {site: n for site, n in sites.items() if n}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**data)
