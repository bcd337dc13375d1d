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
from models.blocks import MLMTransform, TransformerBlock, make_norm
from models.config import ModelConfig
from models.hooks import HookPoint, name_hook_points
from models.interface import TokenModel
from models.positional import PositionalEmbedding, Rotary


class KVCache:
    """Per decoder layer: (self-attention keys/values, cross-attention keys/values)."""

    def __init__(self, n_layers: int) -> None:
        self.layers = [(LayerKV(), LayerKV()) for _ in range(n_layers)]

    @property
    def length(self) -> int:
        return self.layers[0][0].length


class TransformerStack(nn.Module):
    """Token embeddings in; positions (and token types) added, optional embedding norm, N blocks,
    final norm (pre-norm only); states out."""

    def __init__(self, cfg: ModelConfig, n_layers: int, *, causal: bool, cross: bool) -> None:
        super().__init__()
        self.causal = causal
        self.max_len = cfg.max_len
        self.rope = (
            (cfg.d_head, cfg.rope_base, cfg.pair_layout) if cfg.positional == "rope" else None
        )
        self.embed_scale = math.sqrt(cfg.d_model) if cfg.scale_embeddings else 1.0
        self.pos = PositionalEmbedding(cfg.positional, cfg.max_len, cfg.d_model, cfg.pair_layout)
        self.type_embed = (
            nn.Embedding(cfg.type_vocab_size, cfg.d_model) if cfg.type_vocab_size else None
        )
        self.embed_norm = make_norm(cfg) if cfg.embed_norm else None
        self.blocks = nn.ModuleList(TransformerBlock(cfg, cross=cross) for _ in range(n_layers))
        # Pre-norm stacks end un-normalised, so they get one last norm (GPT-2, LLaMA).
        self.final_norm = make_norm(cfg) if cfg.norm_position == "pre" else nn.Identity()
        self.hook_embed = HookPoint()  # (B, T, D) token embeddings (scaled)
        self.hook_pos_embed = HookPoint()  # (T, D) positional vectors added to them
        self.hook_type_embed = HookPoint()  # (B, T, D) token-type vectors added (BERT)
        self.hook_out = HookPoint()  # (B, T, D) the stack's output

    def forward(
        self,
        tok_emb: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_pad_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        token_types: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """tok_emb: (B, T, D). pad_mask: (B, T_total) bool, True = real token, covering the
        cached positions too. memory: (B, S, D) encoder output for cross-attention.
        token_types: (B, T) segment ids for token-type embeddings (default: all 0)."""
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
        if self.type_embed is not None:
            if token_types is None:
                token_types = torch.zeros(B, T, dtype=torch.long, device=device)
            x = x + self.hook_type_embed(self.type_embed(token_types))
        if self.embed_norm is not None:
            x = self.embed_norm(x)  # block 0's hook_resid_pre shows the result

        self_mask, memory_mask, rope = self.attention_inputs(
            positions, B, pad_mask, memory, memory_pad_mask
        )
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

    def attention_inputs(
        self,
        positions: torch.Tensor,
        batch: int = 1,
        pad_mask: torch.Tensor | None = None,
        memory: torch.Tensor | None = None,
        memory_pad_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, Rotary | None]:
        """What every block of this stack reads besides the stream, for queries at
        ``positions`` (the cached ones come before them): the self-attention mask (B, T,
        T_total), the cross-attention mask (B, T, S) and the RoPE angles."""
        B, T, n_keys, device = batch, len(positions), int(positions[-1]) + 1, positions.device
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
        return self_mask, memory_mask, rope


class Transformer(TokenModel):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = (
            TransformerStack(cfg, cfg.depth("encoder"), causal=False, cross=False)
            if cfg.kind in ("encoder", "seq2seq")
            else None
        )
        self.decoder = (
            TransformerStack(cfg, cfg.depth("decoder"), causal=True, cross=cfg.kind == "seq2seq")
            if cfg.kind in ("decoder", "seq2seq")
            else None
        )
        # Linear + softmax over the vocabulary: next token (decoders) or masked token (MLM).
        self.mlm_transform = MLMTransform(cfg) if cfg.mlm_transform else None
        self.lm_head = (
            nn.Linear(cfg.d_model, cfg.vocab_size, bias=cfg.lm_head_bias) if cfg.lm_head else None
        )
        self.cls_head = nn.Linear(cfg.d_model, cfg.n_classes) if cfg.n_classes else None
        self.hook_logits = HookPoint()  # (B, T, V)
        self.apply(_init_weights)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.tok_embed.weight  # one matrix, in and out
        name_hook_points(self)

    def encode(
        self,
        ids: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        token_types: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, S) token ids -> (B, S, D) contextual states. ``token_types``: (B, S) segment
        ids for a model with token-type embeddings (default: all segment 0)."""
        if self.encoder is None:
            raise TypeError(f"a {self.config.kind} model has no encoder")
        return self.encoder(self.embed(ids), pad_mask, token_types=token_types)

    def unembed(self, h: torch.Tensor) -> torch.Tensor:
        """States (..., D) -> (..., V) scores over the vocabulary, through BERT's MLM transform
        where there is one; no hook (the logit lens reads every layer through it)."""
        if self.lm_head is None:
            raise TypeError("this model has no vocabulary head (it was imported without one)")
        if self.mlm_transform is not None:
            h = self.mlm_transform(h)
        return self.lm_head(h)

    def vocab_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Final states (B, T, D) -> (B, T, V) scores over the vocabulary."""
        return self.hook_logits(self.unembed(h))

    def run_decoder(self, x, memory, memory_pad_mask, pad_mask, cache: KVCache | None):
        if self.decoder is None:
            raise TypeError(f"a {self.config.kind} model has no decoder")
        return self.decoder(x, pad_mask, memory, memory_pad_mask, cache)

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Encoder states (B, S, D) -> (B, S, V) scores for the token at each position."""
        return self.vocab_logits(hidden)

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """Encoder states (B, S, D) -> (B, n_classes) logits, read from the [CLS] position."""
        if self.cls_head is None:
            raise TypeError("this model has no classification head")
        return self.cls_head(hidden[:, 0])

    def new_cache(self) -> KVCache:
        return KVCache(self.config.depth("decoder"))


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
    """Parameters per component: embeddings (tokens, learned positions, token types),
    attention, FFN, norms (including an embedding norm), the LM head (d_model × vocab + vocab,
    plus BERT's MLM transform; a head tied to the embeddings adds only its bias) and the
    classification head (d_model × classes + classes). Another architecture (the RNN) names
    its own parts."""
    if not isinstance(model, Transformer):
        return model.parameter_parts()
    parts = {"embeddings": 0, "attention": 0, "ffn": 0, "norms": 0, "lm_head": 0, "cls_head": 0}
    for name, p in model.named_parameters():  # a tied matrix is listed once, as tok_embed
        if name.startswith(("lm_head.", "mlm_transform.")):
            part = "lm_head"
        elif name.startswith("cls_head."):
            part = "cls_head"
        elif name.startswith("tok_embed.") or ".pos." in name or ".type_embed." in name:
            part = "embeddings"
        elif "attn." in name:
            part = "attention"
        elif ".ffn." in name:
            part = "ffn"
        elif "norm" in name:
            part = "norms"
        else:  # pragma: no cover - every parameter belongs to one of the parts above
            raise AssertionError(f"unclassified parameter {name}")
        parts[part] += p.numel()
    parts["total"] = sum(parts.values())
    return parts
