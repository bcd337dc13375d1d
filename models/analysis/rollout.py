"""Attention rollout (Abnar & Zuidema, 2020): how much each token's information could reach
each position through every layer so far, counting the residual connection.

    Ã_l = ½ · mean_h A_l + ½ · I        (rows renormalised to sum to 1)
    R_0 = Ã_0,   R_l = Ã_l · R_{l−1}

Row i of R_l is a distribution over the input tokens: a coarse picture of what layer l's
position i is made of. It assumes heads mix linearly and equally, which is why it is an
approximation, not an explanation.
"""

from __future__ import annotations

import torch


def rollout(patterns: torch.Tensor) -> torch.Tensor:
    """patterns: (L, H, T, T) one stack's self-attention. Returns (L, T, T): R_l per layer."""
    L, _, T, _ = patterns.shape
    eye = torch.eye(T, dtype=patterns.dtype, device=patterns.device)
    out, acc = [], eye
    for layer in range(L):
        a = 0.5 * patterns[layer].mean(dim=0) + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        acc = a @ acc
        out.append(acc)
    return torch.stack(out)
