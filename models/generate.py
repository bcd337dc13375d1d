"""Autoregressive decoding, one token at a time, with a KV cache.

Each step yields the chosen token, the probabilities of the top candidates and the
attention row of every head for the query that chose it, so a player can replay decoding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from models.hooks import Edit, capture, hook_name
from models.transformer import Transformer

StopReason = Literal["eos", "max_new_tokens", "max_len"]


@dataclass
class Sampling:
    """greedy: argmax. sample: draw from softmax(logits / temperature), restricted to the
    top_k most likely tokens (0 = all) and to the smallest set whose mass reaches top_p."""

    strategy: Literal["greedy", "sample"] = "greedy"
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    max_new_tokens: int = 32
    n_top: int = 5  # candidates reported per step

    def __post_init__(self) -> None:
        if self.strategy not in ("greedy", "sample"):
            raise ValueError(f"unknown strategy {self.strategy!r}")
        if not (self.temperature > 0 and self.temperature < float("inf")):
            raise ValueError("temperature must be a finite number > 0")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")


@dataclass
class Step:
    step: int
    token_id: int
    prob: float  # probability of the chosen token in the distribution it was chosen from
    top: list[tuple[int, float]]  # (token id, probability), most likely first
    attention: dict[str, torch.Tensor] = field(default_factory=dict)  # site -> (L, H, keys)
    stop_reason: StopReason | None = None  # set on the last step


def next_token_distribution(logits: torch.Tensor, s: Sampling) -> torch.Tensor:
    """(V,) logits -> (V,) probabilities that the strategy chooses from."""
    if s.strategy == "greedy":
        return F.softmax(logits.float(), dim=-1)
    # In float64 and shifted so that the largest logit is 0: any temperature > 0 works. As it
    # goes to 0 (1e-39 overflows float32) the others go to -inf, never nan: all the mass is on
    # the most likely token(s), which is greedy decoding.
    logits = logits.double()
    logits = (logits - logits.max()) / s.temperature
    if s.top_k:
        kth = torch.topk(logits, min(s.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if s.top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        # keep a token if the mass before it is still short of top_p; the first always stays
        # (a top_p below the smallest float would drop it too)
        drop = (sorted_p.cumsum(0) - sorted_p) >= s.top_p
        drop[0] = False
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(0, order, sorted_p)
        probs = probs / probs.sum()
    return probs.float()


def decoder_sites(model: Transformer) -> dict[str, int]:
    """The attention sites a decoding step goes through: site -> number of layers."""
    return {s: n for s, n in model.config.sites.items() if s.startswith("decoder.")}


def _attention_rows(trace, sites: dict[str, int]) -> dict[str, torch.Tensor]:
    """The last query row of every decoder head: site -> (L, H, keys)."""
    return {
        site: torch.stack([trace[hook_name(site, i, "pattern")][0, :, -1] for i in range(n)])
        for site, n in sites.items()
    }


@torch.inference_mode()
def generate(
    model: Transformer,
    ids: Sequence[int],
    sampling: Sampling | None = None,
    *,
    use_cache: bool = True,
    capture_attention: bool = True,
    edits: dict[str, Edit] | None = None,
    start: Sequence[int] | None = None,
) -> Iterator[Step]:
    """Decode step by step.

    decoder: ``ids`` is the prompt (with its BOS, if the model uses one) and generation
    continues it. seq2seq: ``ids`` is the source sentence; the target starts with BOS, or
    continues ``start`` (the decoder's input so far, BOS included), e.g. to replay a decoding
    from one of its steps. ``edits`` (hook name -> edit, e.g. a head ablation) apply to every
    forward pass.
    """
    s = sampling or Sampling()
    cfg = model.config
    device = next(model.parameters()).device
    generator = None
    if s.strategy == "sample":
        generator = torch.Generator(device=device)
        generator.manual_seed(s.seed if s.seed is not None else torch.seed())

    memory = None
    if cfg.kind == "seq2seq":
        src = torch.tensor([list(ids)], device=device)
        with capture(model, names=[], edits=edits):
            memory = model.encode(src)
        tokens = [cfg.bos_id] if start is None else list(start)
    elif start is not None:
        raise TypeError("only a seq2seq decoding starts from a given decoder input")
    elif cfg.kind == "decoder":
        tokens = list(ids)
    else:
        raise TypeError("an encoder does not generate")
    if not tokens or tokens[0] is None:
        raise ValueError("nothing to decode from: empty prompt or no BOS id in the config")

    cache = model.new_cache() if use_cache else None
    new = tokens
    # padding is never generated (as Hugging Face does for Marian, whose pad starts decoding)
    never = cfg.pad_id if cfg.pad_id is not None and cfg.pad_id != cfg.eos_id else None
    sites = decoder_sites(model) if capture_attention else {}
    names = [hook_name(site, i, "pattern") for site, n in sites.items() for i in range(n)]
    for step in range(s.max_new_tokens):
        with capture(model, names=names, edits=edits) as trace:
            x = torch.tensor([new], device=device)
            logits = model.decode(x, memory, cache=cache)[0, -1]  # (V,)
        if never is not None:
            logits[never] = float("-inf")
        probs = next_token_distribution(logits, s)
        if s.strategy == "greedy":
            token = int(torch.argmax(probs))
        else:
            token = int(torch.multinomial(probs, 1, generator=generator))
        top_p, top_i = torch.topk(probs, min(s.n_top, probs.numel()))
        stop: StopReason | None = None
        if token == cfg.eos_id:
            stop = "eos"
        elif step == s.max_new_tokens - 1:
            stop = "max_new_tokens"
        elif len(tokens) + 1 > cfg.max_len:  # no room to feed the token back
            stop = "max_len"
        yield Step(
            step=step,
            token_id=token,
            prob=float(probs[token]),
            top=list(zip(top_i.tolist(), top_p.tolist(), strict=True)),
            attention=_attention_rows(trace, sites),
            stop_reason=stop,
        )
        if stop:
            return
        tokens.append(token)
        new = [token] if cache is not None else tokens
