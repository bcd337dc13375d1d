"""Metrics of trained models, measured on validation and held-out data.

Used by training (written into card.json) and by tests/quality (on the shipped files).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from models.analysis import scores
from models.analysis.ablation import MODES, ablation_edits
from models.generate import Sampling, generate
from models.hooks import capture
from models.rnn import RNNSeq2Seq, encoder_state_gradients
from models.transformer import Transformer
from training import corpus
from training.data import pad_batch

#: Where the vanishing gradient is measured: the first four lecture sentences run together,
#: 19 words + </s> = 20 source tokens (chosen before any model was trained, not tuned).
GRADIENT_PAIR = (
    " ".join(en for en, _ in corpus.LECTURE_PAIRS[:4]),
    " ".join(fr for _, fr in corpus.LECTURE_PAIRS[:4]),
)


def _device(model: Transformer) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def greedy_translate(
    model: Transformer, tokenizer, sentences: Sequence[str], batch_size: int = 128
) -> list[str]:
    """Batched greedy decoding with the KV cache; returns the decoded French strings."""
    cfg, device, out = model.config, _device(model), []
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start : start + batch_size]
        src = [e.ids + [cfg.eos_id] for e in tokenizer.encode_batch(list(chunk))]
        ids, mask = pad_batch(src, cfg.pad_id)
        ids, mask = ids.to(device), mask.to(device)
        memory = model.encode(ids, mask)
        cache = model.new_cache()
        tokens = torch.full((len(chunk), 1), cfg.bos_id, device=device)
        generated = []
        done = torch.zeros(len(chunk), dtype=torch.bool, device=device)
        for _ in range(min(cfg.max_len - 1, 2 * ids.shape[1] + 10)):
            nxt = model.decode(tokens, memory, mask, cache=cache)[:, -1].argmax(-1)
            generated.append(nxt)
            done |= nxt == cfg.eos_id
            if done.all():
                break
            tokens = nxt[:, None]
        rows = torch.stack(generated, dim=1).tolist()
        for row in rows:
            if cfg.eos_id in row:
                row = row[: row.index(cfg.eos_id)]
            out.append(tokenizer.decode(row))
    return out


def exact_match(predictions: Sequence[str], gold: Sequence[str]) -> float:
    return sum(p.strip() == g for p, g in zip(predictions, gold, strict=True)) / len(gold)


@torch.inference_mode()
def classify(
    model: Transformer, tokenizer, texts: Sequence[str], batch_size: int = 256
) -> list[int]:
    cfg, device, preds = model.config, _device(model), []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer.encode_batch(list(texts[start : start + batch_size]))
        ids, mask = pad_batch([e.ids for e in enc], cfg.pad_id)
        logits = model.classify(model.encode(ids.to(device), mask.to(device)))
        preds += logits.argmax(-1).tolist()
    return preds


@torch.inference_mode()
def fill_mask(model: Transformer, tokenizer, text: str, k: int = 5) -> list[tuple[str, float]]:
    """Top-k predictions for the first [MASK] in ``text``."""
    enc = tokenizer.encode(text)
    mask_id = tokenizer.token_to_id("[MASK]")
    pos = enc.ids.index(mask_id)
    ids = torch.tensor([enc.ids], device=_device(model))
    probs = F.softmax(model.mlm_logits(model.encode(ids))[0, pos], dim=-1)
    top = torch.topk(probs, k)
    return [
        (tokenizer.id_to_token(int(i)), float(p))
        for p, i in zip(top.values, top.indices, strict=True)
    ]


@torch.inference_mode()
def mlm_accuracy(
    model: Transformer, tokenizer, texts: Sequence[str], prob: float = 0.15, seed: int = 0
) -> float:
    """Top-1 accuracy at positions replaced by [MASK] (15 %, at least one per sentence)."""
    cfg, device = model.config, _device(model)
    g = torch.Generator().manual_seed(seed)
    special = {tokenizer.token_to_id(t) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")}
    correct = total = 0
    for start in range(0, len(texts), 256):
        enc = tokenizer.encode_batch(list(texts[start : start + 256]))
        ids, mask = pad_batch([e.ids for e in enc], cfg.pad_id)
        maskable = mask & ~torch.isin(ids, torch.tensor(sorted(special)))
        chosen = (torch.rand(ids.shape, generator=g) < prob) & maskable
        empty = ~chosen.any(1)
        first = maskable.float().argmax(1)
        chosen[empty, first[empty]] = True
        corrupted = ids.masked_fill(chosen, tokenizer.token_to_id("[MASK]"))
        logits = model.mlm_logits(model.encode(corrupted.to(device), mask.to(device)))
        pred = logits.argmax(-1).cpu()
        correct += int((pred[chosen] == ids[chosen]).sum())
        total += int(chosen.sum())
    return correct / total


@torch.inference_mode()
def lm_nll(model: Transformer, sequences: Sequence[Sequence[int]]) -> tuple[float, int]:
    """Total next-token negative log-likelihood (nats) and the number of predicted tokens."""
    cfg, device = model.config, _device(model)
    total, count = 0.0, 0
    for start in range(0, len(sequences), 256):
        ids, mask = pad_batch(sequences[start : start + 256], cfg.pad_id)
        ids, mask = ids.to(device), mask.to(device)
        logits = model.decode(ids[:, :-1], pad_mask=mask[:, :-1])
        targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
        total += float(
            F.cross_entropy(
                logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"
            )
        )
        count += int(mask[:, 1:].sum())
    return total, count


def unigram_nll(
    train: Sequence[Sequence[int]], test: Sequence[Sequence[int]], vocab_size: int
) -> tuple[float, int]:
    """A unigram model (add-one smoothed) fitted on the training targets, scored on ``test``."""
    counts = Counter(t for s in train for t in s[1:])
    denom = sum(counts.values()) + vocab_size
    total, count = 0.0, 0
    for s in test:
        for t in s[1:]:
            total -= math.log((counts[t] + 1) / denom)
            count += 1
    return total, count


def greedy_continuation(
    model: Transformer, tokenizer, prompt: str, max_new_tokens: int = 30
) -> str:
    cfg = model.config
    ids = [cfg.bos_id] + tokenizer.encode(prompt).ids
    steps = list(
        generate(model, ids, Sampling(max_new_tokens=max_new_tokens), capture_attention=False)
    )
    new = [s.token_id for s in steps if s.token_id != cfg.eos_id]
    return tokenizer.decode(ids[1:] + new).strip()


def _head(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


@torch.inference_mode()
def induction_probe_run(
    model: Transformer,
    ids: torch.Tensor,
    ablate: Sequence[tuple[int, int]] = (),
    mode: str = "zero",
) -> dict:
    """One forward pass over induction probes ``(n, 1 + 2L)`` (BOS + run + run), with the
    decoder heads ``ablate`` = [(layer, head)] ablated. Returns each head's induction and
    previous-token scores ``(layers, heads)``, the loss on the second copy, and the greedy
    (argmax) copy accuracy on the second copy, every prediction given the true prefix."""
    cfg, device = model.config, _device(model)
    ids = ids.to(device)
    L = (ids.shape[1] - 1) // 2
    edits = ablation_edits([("decoder.self", layer, head, mode) for layer, head in ablate])
    with capture(model, names=["decoder.blocks.*.attn.hook_pattern"], edits=edits) as trace:
        logits = model.decode(ids)
    patterns = torch.stack(
        [trace[f"decoder.blocks.{i}.attn.hook_pattern"] for i in range(cfg.depth("decoder"))], dim=1
    )  # (n, layers, H, T, T)
    nll = F.cross_entropy(
        logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none"
    ).view(len(ids), -1)  # nll[:, t]: predicting ids[:, t + 1]
    # The first token of each copy is unpredictable; the rest of the second copy
    # (positions L+2..2L) is predicted from positions L+1..2L-1.
    second = slice(L + 1, 2 * L)
    copied = logits[:, second].argmax(-1) == ids[:, L + 2 : 2 * L + 1]
    return {
        "induction": scores.induction(patterns, ids).mean(0),
        "previous_token": scores.previous_token(patterns).mean(0),
        "loss_second_copy": float(nll[:, second].mean()),
        "copy_accuracy": float(copied.float().mean()),
    }


def induction_metrics(
    model: Transformer,
    first_id: int,
    run_lengths: Sequence[int],
    n: int = 64,
    seed: int = 1234,
) -> dict:
    """The induction circuit, measured on ``n`` probes (BOS + a run of distinct random tokens
    + the same run) per run length, ideally lengths training never used.

    - each head's induction score at each length, and each layer-0 head's previous-token
      score (``models.analysis.scores``);
    - the induction heads: mean induction score over the lengths >= 0.5; the previous-token
      head: the layer-0 head with the highest mean previous-token score;
    - greedy copy accuracy on the second copy, intact and with the induction heads or the
      previous-token head ablated (``zero`` and ``mean``, ``models.analysis.ablation``);
    - the induction heads' mean score, intact and with the previous-token head zeroed.
    """
    cfg = model.config
    probes = {
        L: scores.induction_probe(
            L, cfg.vocab_size, seed=seed + L, batch=n, bos_id=cfg.bos_id, exclude=range(first_id)
        )
        for L in run_lengths
    }
    intact = {L: induction_probe_run(model, ids) for L, ids in probes.items()}
    layers, heads = range(cfg.depth("decoder")), range(cfg.n_heads)
    induction = {
        _head(i, h): {str(L): round(float(r["induction"][i, h]), 4) for L, r in intact.items()}
        for i in layers
        for h in heads
    }
    prev = {
        _head(0, h): round(
            sum(float(r["previous_token"][0, h]) for r in intact.values()) / len(intact), 4
        )
        for h in heads
    }
    mean_induction = {
        (i, h): sum(float(r["induction"][i, h]) for r in intact.values()) / len(intact)
        for i in layers
        for h in heads
    }
    induction_heads = [lh for lh, score in mean_induction.items() if score >= 0.5]
    previous_token_head = (0, max(heads, key=lambda h: prev[_head(0, h)]))

    def ablated(ablate: list[tuple[int, int]]) -> dict:
        return {
            mode: {L: induction_probe_run(model, ids, ablate, mode) for L, ids in probes.items()}
            for mode in MODES
        }

    def accuracy(runs: dict) -> dict:
        return {
            mode: {str(L): round(r["copy_accuracy"], 4) for L, r in by_length.items()}
            for mode, by_length in runs.items()
        }

    def mean_induction_score(runs: dict[int, dict]) -> dict:
        k = max(len(induction_heads), 1)
        return {
            str(L): round(sum(float(r["induction"][lh]) for lh in induction_heads) / k, 4)
            for L, r in runs.items()
        }

    without_induction = ablated(induction_heads)
    without_previous = ablated([previous_token_head])
    return {
        "eval_run_lengths": list(run_lengths),
        "loss_second_copy": {str(L): round(r["loss_second_copy"], 4) for L, r in intact.items()},
        "induction_scores": induction,
        "previous_token_scores": prev,
        "induction_heads": [_head(*lh) for lh in induction_heads],
        "previous_token_head": _head(*previous_token_head),
        "copy_accuracy": {str(L): round(r["copy_accuracy"], 4) for L, r in intact.items()},
        "copy_accuracy_without_induction_heads": accuracy(without_induction),
        "copy_accuracy_without_previous_token_head": accuracy(without_previous),
        # composition: the induction heads find their key through the previous-token head
        "induction_heads_mean_score": mean_induction_score(intact),
        "induction_heads_mean_score_without_previous_token_head": mean_induction_score(
            without_previous["zero"]
        ),
    }


def state_gradient_profile(
    model: RNNSeq2Seq, tokenizer, pair: tuple[str, str] = GRADIENT_PAIR
) -> dict:
    """‖∂loss/∂h_t‖ of every encoder state on ``pair`` (teacher-forced), along every path
    ("all") and along the recurrence alone ("recurrence", the attention's read cut), with the
    ratio of the first token's norm to the last's (</s>)."""
    cfg = model.config
    src = tokenizer.encode(pair[0]).ids + [cfg.eos_id]
    tgt = [cfg.bos_id, *tokenizer.encode(pair[1]).ids, cfg.eos_id]
    out: dict = {"source": pair[0], "target": pair[1], "source_tokens": len(src)}
    for through in ("recurrence", "all"):
        norms = encoder_state_gradients(model, src, tgt, through=through)
        out[through] = {
            "norms": [float(f"{n:.4g}") for n in norms.tolist()],
            "first_over_last": float(f"{norms[0] / norms[-1]:.4g}"),
        }
    return out
