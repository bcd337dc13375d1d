"""Encoder (BERT-style), decoder (GPT-style) and encoder-decoder (original Transformer).

One `Transformer` class builds all three from a `ModelConfig`; each stack of blocks lives
under ``encoder`` or ``decoder`` so hook names read ``encoder.blocks.0.attn.hook_pattern``
or ``decoder.blocks.1.cross_attn.hook_pattern`` whatever the family.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.attention import LayerKV
from models.blocks import TransformerBlock, make_norm
from models.config import ModelConfig
from models.hooks import HookPoint, name_hook_points
from models.positional import PositionalEmbedding, Rotary


class KVCache:
    """Per decoder layer: (self-attention keys/values, cross-attention keys/values)."""

    def __init__(self, n_layers: int) -> None:
        self.layers = [(LayerKV(), LayerKV()) for _ in range(n_layers)]

    @property
    def length(self) -> int:
        return self.layers[0][0].length


class TransformerStack(nn.Module):
    """Token embeddings in; positions added, N blocks, final norm (pre-norm only); states out."""

    def __init__(self, cfg: ModelConfig, n_layers: int, *, causal: bool, cross: bool) -> None:
        super().__init__()
        self.causal = causal
        self.max_len = cfg.max_len
        self.rope = (cfg.d_head, cfg.rope_base) if cfg.positional == "rope" else None
        self.embed_scale = math.sqrt(cfg.d_model) if cfg.scale_embeddings else 1.0
        self.pos = PositionalEmbedding(cfg.positional, cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(TransformerBlock(cfg, cross=cross) for _ in range(n_layers))
        # Pre-norm stacks end un-normalised, so they get one last norm (GPT-2, LLaMA).
        self.final_norm = make_norm(cfg) if cfg.norm_position == "pre" else nn.Identity()
        self.hook_embed = HookPoint()  # (B, T, D) token embeddings (scaled)
        self.hook_pos_embed = HookPoint()  # (T, D) positional vectors added to them
        self.hook_out = HookPoint()  # (B, T, D) the stack's output

    def forward(
        self,
        tok_emb: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_pad_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """tok_emb: (B, T, D). pad_mask: (B, T_total) bool, True = real token, covering the
        cached positions too. memory: (B, S, D) encoder output for cross-attention."""
        B, T, _ = tok_emb.shape
        offset = cache.length if cache is not None else 0
        n_keys = offset + T
        if n_keys > self.max_len:
            raise ValueError(f"sequence of {n_keys} tokens is longer than max_len={self.max_len}")
        device = tok_emb.device
        positions = torch.arange(offset, n_keys, device=device)

        x = self.hook_embed(tok_emb * self.embed_scale)
        if self.pos.adds_vectors:
            x = x + self.hook_pos_embed(self.pos(positions))

        if pad_mask is None:
            pad_mask = torch.ones(B, n_keys, dtype=torch.bool, device=device)
        self_mask = pad_mask[:, None, :].expand(B, T, n_keys)  # (B, T, T_total)
        if self.causal:
            keys = torch.arange(n_keys, device=device)
            self_mask = self_mask & (keys[None, :] <= positions[:, None])[None]
        memory_mask = None
        if memory is not None:
            if memory_pad_mask is None:
                memory_pad_mask = torch.ones(B, memory.shape[1], dtype=torch.bool, device=device)
            memory_mask = memory_pad_mask[:, None, :].expand(B, T, memory.shape[1])

        rope = Rotary(positions, *self.rope) if self.rope else None
        for i, block in enumerate(self.blocks):
            x = block(
                x,
                self_mask=self_mask,
                rope=rope,
                memory=memory,
                memory_mask=memory_mask,
                cache=cache.layers[i] if cache is not None else None,
            )
        return self.hook_out(self.final_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = (
            TransformerStack(cfg, cfg.n_encoder_layers, causal=False, cross=False)
            if cfg.kind in ("encoder", "seq2seq")
            else None
        )
        self.decoder = (
            TransformerStack(cfg, cfg.n_dec_layers, causal=True, cross=cfg.kind == "seq2seq")
            if cfg.kind in ("decoder", "seq2seq")
            else None
        )
        # Linear + softmax over the vocabulary: next token (decoders) or masked token (MLM).
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.cls_head = nn.Linear(cfg.d_model, cfg.n_classes) if cfg.n_classes else None
        self.hook_logits = HookPoint()  # (B, T, V)
        self.apply(_init_weights)
        name_hook_points(self)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.tok_embed(ids)

    def encode(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) token ids -> (B, S, D) contextual states."""
        if self.encoder is None:
            raise TypeError(f"a {self.config.kind} model has no encoder")
        return self.encoder(self.embed(ids), pad_mask)

    def decode(
        self,
        ids: torch.Tensor,
        memory: torch.Tensor | None = None,
        memory_pad_mask: torch.Tensor | None = None,
        pad_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """(B, T) ids (only the new ones when a cache is given) -> (B, T, V) next-token logits."""
        if self.decoder is None:
            raise TypeError(f"a {self.config.kind} model has no decoder")
        if self.config.kind == "seq2seq" and memory is None:
            raise ValueError("seq2seq decoding needs the encoder's output (memory)")
        h = self.decoder(self.embed(ids), pad_mask, memory, memory_pad_mask, cache)
        return self.hook_logits(self.lm_head(h))

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Encoder states (B, S, D) -> (B, S, V) scores for the token at each position."""
        return self.hook_logits(self.lm_head(hidden))

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """Encoder states (B, S, D) -> (B, n_classes) logits, read from the [CLS] position."""
        if self.cls_head is None:
            raise TypeError("this model has no classification head")
        return self.cls_head(hidden[:, 0])

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_dec_layers)

    def forward(
        self,
        ids: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        target_ids: torch.Tensor | None = None,
        target_pad_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits of the model's own objective: MLM (encoder), next token (decoder), or the
        next target token given the source (seq2seq, teacher-forced ``target_ids``)."""
        kind = self.config.kind
        if kind == "encoder":
            return self.mlm_logits(self.encode(ids, pad_mask))
        if kind == "decoder":
            return self.decode(ids, pad_mask=pad_mask)
        if target_ids is None:
            raise ValueError("seq2seq forward needs target_ids")
        memory = self.encode(ids, pad_mask)
        return self.decode(target_ids, memory, pad_mask, target_pad_mask)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)


def build_model(cfg: ModelConfig) -> Transformer:
    return Transformer(cfg)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters per component: embeddings (tokens + learned positions), attention, FFN,
    norms, the LM head (d_model × vocab + vocab) and the classification head
    (d_model × classes + classes). Another architecture (the RNN) names its own parts."""
    if not isinstance(model, Transformer):
        return model.parameter_parts()
    parts = {"embeddings": 0, "attention": 0, "ffn": 0, "norms": 0, "lm_head": 0, "cls_head": 0}
    for name, p in model.named_parameters():
        if name.startswith("tok_embed") or ".pos." in name:
            part = "embeddings"
        elif "attn." in name:
            part = "attention"
        elif ".ffn." in name:
            part = "ffn"
        elif "norm" in name:
            part = "norms"
        elif name.startswith(("lm_head", "cls_head")):
            part = name.split(".")[0]
        else:  # pragma: no cover - every parameter belongs to one of the parts above
            raise AssertionError(f"unclassified parameter {name}")
        parts[part] += p.numel()
    parts["total"] = sum(parts.values())
    return parts
