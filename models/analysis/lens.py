"""The logit lens (nostalgebraist, 2020): read the residual stream after each layer through the
model's own final norm and unembedding, as if the model stopped there.

    lens_l(t) = softmax(unembed(final_norm(resid_l[t])))

Layer "embed" is the stream before the first block (token + position embeddings); the last
layer's lens is exactly the model's output distribution. Post-norm models (BERT, the original
Transformer) have no final norm: each block already ends normalised, and the lens reads it
through the unembedding alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models.hooks import capture, hook_name


@dataclass
class LogitLens:
    """For every layer (embed, then each block) and each position asked for."""

    layers: list[str]  # "embed", "0", "1", ...
    positions: list[int]
    top_ids: torch.Tensor  # (L+1, P, k) the k most likely tokens
    top_probs: torch.Tensor  # (L+1, P, k)
    final_ids: torch.Tensor  # (P,) the model's own prediction at each position
    final_probs: torch.Tensor  # (L+1, P) the probability each layer gives that prediction


def residual_hooks(stack: str, depth: int) -> list[str]:
    """The stream before the first block, then after each block."""
    return [hook_name(stack, 0, "resid_pre")] + [
        hook_name(stack, li, "resid_post") for li in range(depth)
    ]


@torch.inference_mode()
def logit_lens(
    model, stack: str, states: list[torch.Tensor], positions: list[int], k: int = 5
) -> LogitLens:
    """``states``: the residual stream (T, D) at each of residual_hooks(stack, depth)."""
    final_norm = getattr(model, stack).final_norm
    pos = torch.tensor(positions, device=states[0].device)
    probs = []
    for resid in states:  # one layer at a time: (P, V) stays small even for big vocabularies
        logits = model.unembed(final_norm(resid[pos]))
        probs.append(F.softmax(logits.float(), dim=-1))
    final_ids = probs[-1].argmax(-1)  # (P,)
    top = [p.topk(min(k, p.shape[-1]), dim=-1) for p in probs]
    return LogitLens(
        layers=["embed", *[str(li) for li in range(len(states) - 1)]],
        positions=list(positions),
        top_ids=torch.stack([t.indices for t in top]),
        top_probs=torch.stack([t.values for t in top]),
        final_ids=final_ids,
        final_probs=torch.stack([p.gather(-1, final_ids[:, None])[:, 0] for p in probs]),
    )


def run_logit_lens(
    model,
    ids: torch.Tensor,
    target_ids: torch.Tensor | None = None,
    positions: list[int] | None = None,
    k: int = 5,
    edits=None,
) -> LogitLens:
    """One forward pass, then the lens on the stack that predicts tokens: the decoder (decoder,
    seq2seq with ``target_ids``) or the encoder (MLM; pass the [MASK] positions).

    ids: (1, T) source. positions: default every position of the predicting stack.
    """
    cfg = model.config
    stack = "encoder" if cfg.kind == "encoder" else "decoder"
    names = residual_hooks(stack, cfg.depth(stack))
    with torch.inference_mode(), capture(model, names, edits=edits) as trace:
        if cfg.kind == "decoder":
            model.decode(ids)
        elif cfg.kind == "encoder":
            model.encode(ids)
        else:
            model.decode(target_ids, model.encode(ids))
    states = [trace[n][0] for n in names]
    if positions is None:
        positions = list(range(states[0].shape[0]))
    return logit_lens(model, stack, states, positions, k)
