"""Metrics of trained models, measured on validation and held-out data.

Used by training (written into card.json) and by tests/quality (on the shipped files).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from models.generate import Sampling, generate
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


@torch.inference_mode()
def induction_metrics(
    model: Transformer, first_id: int, run_length: int, n: int = 64, seed: int = 1234
) -> dict:
    """Loss on the first vs second copy of a random run, and each head's induction score:
    the attention mass from position i onto the token after the previous occurrence of
    token i (averaged over the second copy)."""
    cfg, device = model.config, _device(model)
    g = torch.Generator().manual_seed(seed)
    L = run_length
    run = torch.randint(first_id, cfg.vocab_size, (n, L), generator=g)
    bos = torch.full((n, 1), cfg.bos_id)
    ids = torch.cat([bos, run, run], dim=1).to(device)  # positions 1..L, L+1..2L
    from models.hooks import capture

    with capture(model, names=["decoder.blocks.*.attn.hook_pattern"]) as trace:
        logits = model.decode(ids)
    nll = F.cross_entropy(
        logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="none"
    ).view(n, -1)
    # nll[:, t] is the loss of predicting ids[:, t + 1]
    first = nll[:, 1:L].mean()  # targets at positions 2..L (the first token follows BOS)
    second = nll[:, L + 1 : 2 * L].mean()  # targets at positions L+2..2L
    queries = torch.arange(L + 1, 2 * L + 1, device=device)
    scores = {}
    for layer in range(cfg.depth("decoder")):
        pattern = trace[f"decoder.blocks.{layer}.attn.hook_pattern"]  # (n, H, T, T)
        mass = pattern[:, :, queries, queries - L + 1]  # (n, H, L)
        for head, value in enumerate(mass.mean(dim=(0, 2)).tolist()):
            scores[f"L{layer}H{head}"] = round(value, 4)
    return {
        "loss_first_copy": round(float(first), 4),
        "loss_second_copy": round(float(second), 4),
        "second_over_first": round(float(second / first), 4),
        "induction_scores": scores,
        "induction_heads": sorted(k for k, v in scores.items() if v >= 0.5),
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
