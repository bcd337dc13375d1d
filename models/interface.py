"""What every model that writes tokens offers the rest of the project (decoding, evaluation,
the app): the Transformer and the RNN translator share this protocol, written once here.

A model gives ``tok_embed``, ``config`` (its ``kind``), ``encode``, ``run_decoder`` (its
decoder stack on embedded ids) and ``vocab_logits`` (final states -> scores over the
vocabulary); an encoder also ``mlm_logits``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class TokenModel(nn.Module):
    config: Any
    tok_embed: nn.Embedding

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.tok_embed(ids)

    def run_decoder(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None,
        memory_pad_mask: torch.Tensor | None,
        pad_mask: torch.Tensor | None,
        cache: Any,
    ) -> torch.Tensor:
        """Embedded decoder input (B, T, D) -> its final states (B, T, D)."""
        raise NotImplementedError

    def vocab_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Final states (B, T, D) -> (B, T, V) scores over the vocabulary."""
        raise NotImplementedError

    def decode(self, ids: torch.Tensor, *context: Any, **named: Any) -> torch.Tensor:
        """(B, T) ids (only the new ones when a cache is given) -> (B, T, V) next-token logits;
        ``context``: decode_states' memory, memory_pad_mask, pad_mask, cache."""
        return self.vocab_logits(self.decode_states(ids, *context, **named))

    def decode_states(
        self,
        ids: torch.Tensor,
        memory: torch.Tensor | None = None,
        memory_pad_mask: torch.Tensor | None = None,
        pad_mask: torch.Tensor | None = None,
        cache: Any = None,
    ) -> torch.Tensor:
        """decode() without the vocabulary head: (B, T, D) states (what attention views need;
        the head of a 50k vocabulary can cost a third of a long forward pass)."""
        if self.config.kind == "seq2seq" and memory is None:
            raise ValueError("seq2seq decoding needs the encoder's output (memory)")
        return self.run_decoder(self.embed(ids), memory, memory_pad_mask, pad_mask, cache)

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
        return self.decode(target_ids, self.encode(ids, pad_mask), pad_mask, target_pad_mask)
