"""One dataclass describes every model we build: encoder, decoder or encoder-decoder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Literal, get_args

Kind = Literal["encoder", "decoder", "seq2seq"]
Positional = Literal["sinusoidal", "learned", "rope", "none"]
Norm = Literal["layernorm", "rmsnorm", "none"]
NormPosition = Literal["pre", "post"]
Activation = Literal["relu", "gelu", "gelu_tanh", "silu", "swiglu"]
PairLayout = Literal["interleaved", "halves"]


class SavedConfig:
    """A config dataclass as config.json holds it: a dict of its fields, no unknown key."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**data)


@dataclass
class ModelConfig(SavedConfig):
    """Every option defaults to the shipped models' behaviour; imported models (models/convert)
    set the few that their family needs."""

    kind: Kind
    vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    n_kv_heads: int | None = None  # key/value heads; fewer than n_heads: grouped-query attention
    n_layers: int = 4  # encoder layers for "encoder" and "seq2seq", decoder layers for "decoder"
    n_decoder_layers: int | None = None  # seq2seq only; defaults to n_layers
    d_ff: int = 512
    max_len: int = 256
    positional: Positional = "learned"
    rope_base: float = 10000.0
    # Where pair i of a head's (RoPE) or the model's (sinusoidal) dimensions sits:
    # "interleaved" = (2i, 2i+1) as in the papers; "halves" = (i, i + d/2) as in HF Llama, Marian.
    pair_layout: PairLayout = "interleaved"
    norm: Norm = "layernorm"
    norm_position: NormPosition = "post"
    norm_eps: float = 1e-5
    # relu | gelu (erf) | gelu_tanh (GPT-2's "gelu_new") | silu (Marian's "swish") | swiglu (gated)
    activation: Activation = "relu"
    attn_only: bool = False  # no FFN sub-layer (e.g. the induction-heads model)
    bias: bool = True
    qkv_bias: bool | None = None  # bias of the Q, K, V projections; None: same as `bias` (Qwen2)
    dropout: float = 0.0
    scale_embeddings: bool = (
        False  # multiply token embeddings by sqrt(d_model), as in Vaswani et al.
    )
    type_vocab_size: int = 0  # >0: BERT's token-type (segment) embeddings, added in the encoder
    embed_norm: bool = False  # a norm right after embeddings + positions (BERT, BART)
    mlm_transform: bool = False  # encoder: dense -> activation -> norm before the vocabulary head
    lm_head: bool = True  # the vocabulary head; False for a bare encoder (no fill-mask)
    lm_head_bias: bool = True  # the vocabulary head's bias (BERT's, Marian's final_logits_bias)
    tie_embeddings: bool = False  # the vocabulary head reuses the token embedding matrix
    n_classes: int = 0  # >0 adds a [CLS] classification head (encoder only)
    labels: list[str] = field(default_factory=list)
    # Special token ids, so the model can build masks and decode without the tokenizer.
    # bos_id starts a seq2seq target (HF's decoder_start_token_id).
    pad_id: int = 0
    bos_id: int | None = None
    eos_id: int | None = None

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected one of {allowed}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not a multiple of n_kv_heads")
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
        if self.type_vocab_size and self.kind != "encoder":
            raise ValueError("token-type embeddings are only built on an encoder")
        if self.mlm_transform and (self.kind != "encoder" or not self.lm_head):
            raise ValueError("the MLM transform belongs to an encoder's vocabulary head")
        if self.tie_embeddings and not self.lm_head:
            raise ValueError("tie_embeddings needs a vocabulary head (lm_head)")
        if self.pair_layout == "halves" and self.positional not in ("rope", "sinusoidal"):
            raise ValueError("pair_layout applies to RoPE or sinusoidal positions only")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def architecture(self) -> str:
        """ "transformer" (an RNNConfig says "rnn"): what app code may expect of the model."""
        return "transformer"

    @property
    def stacks(self) -> tuple[str, ...]:
        """The model's stacks of blocks: ("encoder",), ("decoder",) or both."""
        return {"encoder": ("encoder",), "decoder": ("decoder",)}.get(
            self.kind, ("encoder", "decoder")
        )

    def depth(self, stack: str) -> int:
        """Number of blocks in ``stack`` ("encoder" or "decoder"); 0 when the model has none."""
        if stack not in self.stacks:
            return 0
        return (
            self.n_decoder_layers
            if self.kind == "seq2seq" and stack == "decoder"
            else self.n_layers
        )

    @property
    def sites(self) -> dict[str, int]:
        """Attention site -> its number of layers: encoder.self, decoder.self, decoder.cross."""
        out = {f"{stack}.self": self.depth(stack) for stack in self.stacks}
        if self.kind == "seq2seq":
            out["decoder.cross"] = self.depth("decoder")
        return out


#: the options that take one of a few names, checked when a config is built or loaded
_CHOICES = {
    "kind": get_args(Kind),
    "positional": get_args(Positional),
    "pair_layout": get_args(PairLayout),
    "norm": get_args(Norm),
    "norm_position": get_args(NormPosition),
    "activation": get_args(Activation),
}
