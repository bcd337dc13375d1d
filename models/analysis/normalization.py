"""Three ways to normalise the same activations, side by side.

* LayerNorm: each token over its own features, (x − mean) / std.
* RMSNorm: the same without centring, x / rms.
* BatchNorm: each feature over every token of a batch, (x − mean_d) / std_d.

LayerNorm's and RMSNorm's statistics belong to one token, so a sentence normalises the same
whatever else is in the batch; BatchNorm's belong to the batch, so the same token comes out
differently beside other sentences (and a batch of one short sentence gives noisy
statistics). Applied to a transformer, BatchNorm pools every real token of every sentence in
the batch (a padded batch would leave its padding out), so here a batch is a list of
sentences of any lengths. Gain and bias are left out: they are learnt per feature by all
three alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenStats:
    """Per token (T,): over that token's features."""

    mean: torch.Tensor
    std: torch.Tensor  # population standard deviation (no eps)
    rms: torch.Tensor  # sqrt(mean(x²))


def token_stats(x: torch.Tensor) -> TokenStats:
    """x: (T, D)."""
    x = x.double()
    return TokenStats(
        mean=x.mean(-1),
        std=x.var(-1, unbiased=False).sqrt(),
        rms=x.pow(2).mean(-1).sqrt(),
    )


@dataclass
class PerToken:
    """LayerNorm or RMSNorm of one sentence: each token by its own statistics."""

    stats: TokenStats  # of the input, per token (T,)
    output: torch.Tensor  # (T, D) normalised, before any gain or bias


@dataclass
class PerFeature:
    """BatchNorm of one sentence with statistics pooled over a batch of sentences."""

    mean: torch.Tensor  # (D,) per feature, over every token of the batch
    std: torch.Tensor  # (D,) population standard deviation (no eps)
    n_tokens: int  # tokens pooled
    n_sentences: int
    output: torch.Tensor  # (T, D) the sentence normalised with these statistics


def layer_norm(x: torch.Tensor, eps: float) -> PerToken:
    """x: (T, D) -> each row centred and scaled to variance 1."""
    x = x.double()
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return PerToken(token_stats(x), (x - mean) / torch.sqrt(var + eps))


def rms_norm(x: torch.Tensor, eps: float) -> PerToken:
    """x: (T, D) -> each row scaled to RMS 1 (not centred)."""
    x = x.double()
    return PerToken(token_stats(x), x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def batch_norm(sentence: torch.Tensor, others: list[torch.Tensor], eps: float) -> PerFeature:
    """``sentence`` (T, D) normalised per feature by the statistics of its own tokens together
    with every token of ``others`` (each (T_i, D)): the batch is the sentence plus the others."""
    tokens = torch.cat([sentence, *others]).double()  # (N, D)
    mean = tokens.mean(0)
    var = tokens.var(0, unbiased=False)
    output = (sentence.double() - mean) / torch.sqrt(var + eps)
    return PerFeature(mean, var.sqrt(), tokens.shape[0], 1 + len(others), output)


@dataclass
class NormComparison:
    eps: float
    layernorm: PerToken
    rmsnorm: PerToken
    batchnorm_alone: PerFeature  # a batch of this sentence only
    batchnorm_batch: PerFeature  # this sentence and the others


def compare(sentence: torch.Tensor, others: list[torch.Tensor], eps: float) -> NormComparison:
    """The three normalisations of the same activations (T, D) of one sentence."""
    return NormComparison(
        eps=eps,
        layernorm=layer_norm(sentence, eps),
        rmsnorm=rms_norm(sentence, eps),
        batchnorm_alone=batch_norm(sentence, [], eps),
        batchnorm_batch=batch_norm(sentence, others, eps),
    )
