"""Training loops for every objective, and `train(model_id)` which writes a checkpoint.

Each objective is a Task: it trains the tokenizer, knows the special ids, makes batches,
computes the loss, and measures its metrics at the end.
"""

from __future__ import annotations

import math
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from models import load_checkpoint, save_checkpoint
from models.checkpoint import config_from_dict, model_from_config
from models.rnn import RNNSeq2Seq
from models.transformer import Transformer, count_parameters
from training import corpus, evaluate
from training.data import mask_tokens, pad_batch, repeated_runs_batch, sample_batch
from training.recipes import RECIPES, Recipe
from training.tokenizer import train_byte_bpe, train_shared_bpe, train_wordpiece

ROOT = Path(__file__).resolve().parent.parent
Model = Transformer | RNNSeq2Seq


@dataclass
class Batch:
    loss: torch.Tensor
    tokens: int


@dataclass
class Task:
    recipe: Recipe
    eval_limit: int | None = None  # cap evaluation sets (smoke runs)
    tokenizer: Any = None
    ids: dict = field(default_factory=dict)  # special ids for the ModelConfig

    def limit(self, items):
        return items if self.eval_limit is None else items[: self.eval_limit]

    def prepare(self) -> None: ...
    def batch(self, model: Model, step: int, rng: random.Random) -> Batch: ...
    def metrics(self, model: Model) -> dict: ...
    def findings(self, metrics: dict) -> str:
        """What the metrics show, in a sentence or two for the card's description."""
        return ""


class MaskedLMThenClassify(Task):
    """MLM pre-training; the last `cls_steps` add a [CLS] sentiment head (MLM continues)."""

    def prepare(self) -> None:
        seed = self.recipe.seed
        self.lm = corpus.lm_sentences(seed)
        self.sent = corpus.sentiment_splits(seed)
        self.tokenizer = tok = train_wordpiece(self.lm.train + [t for t, _ in self.sent.train])
        self.ids = dict(
            pad_id=tok.token_to_id("[PAD]"),
            labels=list(corpus.SENTIMENT_LABELS),
            n_classes=len(corpus.SENTIMENT_LABELS),
        )
        self.mask_id = tok.token_to_id("[MASK]")
        self.first_normal = 5  # [PAD] [UNK] [CLS] [SEP] [MASK] come first
        self.lm_ids = [e.ids for e in tok.encode_batch(self.lm.train)]
        label_ix = {name: i for i, name in enumerate(corpus.SENTIMENT_LABELS)}
        self.cls_data = [
            (e.ids, label_ix[lab])
            for e, (_, lab) in zip(
                tok.encode_batch([t for t, _ in self.sent.train]), self.sent.train, strict=True
            )
        ]
        self.gen = torch.Generator().manual_seed(seed)

    def batch(self, model, step, rng):
        dev = next(model.parameters()).device
        ids, mask = pad_batch(sample_batch(rng, self.lm_ids, self.recipe.batch_size), 0)
        special = ids < self.first_normal
        corrupted, labels = mask_tokens(
            ids,
            mask & ~special,
            mask_id=self.mask_id,
            vocab_size=model.config.vocab_size,
            first_normal_id=self.first_normal,
            prob=self.recipe.extra["mask_prob"],
            generator=self.gen,
        )
        logits = model.mlm_logits(model.encode(corrupted.to(dev), mask.to(dev)))
        loss = F.cross_entropy(logits.flatten(0, 1), labels.to(dev).flatten(), ignore_index=-100)
        tokens = int(mask.sum())
        if step >= self.recipe.steps - self.recipe.extra["cls_steps"]:
            rows = sample_batch(rng, self.cls_data, self.recipe.batch_size)
            cids, cmask = pad_batch([r[0] for r in rows], 0)
            target = torch.tensor([r[1] for r in rows], device=dev)
            loss = loss + F.cross_entropy(
                model.classify(model.encode(cids.to(dev), cmask.to(dev))), target
            )
            tokens += int(cmask.sum())
        return Batch(loss, tokens)

    def metrics(self, model):
        labels = list(corpus.SENTIMENT_LABELS)
        out = {}
        for split in ("validation", "heldout"):
            data = self.limit(getattr(self.sent, split))
            preds = evaluate.classify(model, self.tokenizer, [t for t, _ in data])
            right = [labels[p] == lab for p, (_, lab) in zip(preds, data, strict=True)]
            neg = [r for r, (t, _) in zip(right, data, strict=True) if " not " in f" {t} "]
            out[f"sentiment_accuracy_{split}"] = round(sum(right) / len(right), 4)
            if neg:
                out[f"sentiment_accuracy_negated_{split}"] = round(sum(neg) / len(neg), 4)
            out[f"n_sentiment_{split}"] = len(data)
            out[f"mlm_top1_{split}"] = round(
                evaluate.mlm_accuracy(model, self.tokenizer, self.limit(getattr(self.lm, split))), 4
            )
        top = evaluate.fill_mask(model, self.tokenizer, "i went to the [MASK]")
        out["fill_mask_i_went_to_the"] = [[t, round(p, 4)] for t, p in top]
        out["fill_mask_top_is_place"] = top[0][0] in corpus.PLACE_NOUNS
        return out


class LanguageModel(Task):
    """Next-token prediction over English sentences: <|endoftext|> sentence <|endoftext|>."""

    def prepare(self) -> None:
        self.lm = corpus.lm_sentences(self.recipe.seed)
        self.tokenizer = tok = train_byte_bpe(self.lm.train)
        eot = tok.token_to_id("<|endoftext|>")
        self.ids = dict(pad_id=tok.token_to_id("<pad>"), bos_id=eot, eos_id=eot)
        self.seqs = {
            split: [[eot, *e.ids, eot] for e in tok.encode_batch(getattr(self.lm, split))]
            for split in ("train", "validation", "heldout")
        }

    def batch(self, model, step, rng):
        dev = next(model.parameters()).device
        ids, mask = pad_batch(
            sample_batch(rng, self.seqs["train"], self.recipe.batch_size), self.ids["pad_id"]
        )
        ids, mask = ids.to(dev), mask.to(dev)
        logits = model.decode(ids[:, :-1], pad_mask=mask[:, :-1])
        targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
        return Batch(
            F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100),
            int(mask.sum()),
        )

    def metrics(self, model):
        out = {}
        V = model.config.vocab_size
        for split in ("validation", "heldout"):
            seqs = self.limit(self.seqs[split])
            nll, n = evaluate.lm_nll(model, seqs)
            uni, m = evaluate.unigram_nll(self.seqs["train"], seqs, V)
            out[f"perplexity_{split}"] = round(math.exp(nll / n), 4)
            out[f"unigram_perplexity_{split}"] = round(math.exp(uni / m), 4)
            out[f"perplexity_ratio_{split}"] = round(math.exp(nll / n) / math.exp(uni / m), 4)
        conts = {
            p: evaluate.greedy_continuation(model, self.tokenizer, p)
            for p in ("the black cat", "the dog", "i went to the", "the movie was")
        }
        out["greedy_continuations"] = conts
        out["greedy_continuations_grammatical"] = {
            p: corpus.is_english_sentence(c) for p, c in conts.items()
        }
        return out


class Translation(Task):
    """English -> French. Source: sentence </s>. Target: <s> phrase </s>, teacher-forced."""

    def prepare(self) -> None:
        self.tr = corpus.translation_splits(self.recipe.seed)
        self.tokenizer = tok = train_shared_bpe([t for pair in self.tr.train for t in pair])
        self.ids = dict(
            pad_id=tok.token_to_id("<pad>"),
            bos_id=tok.token_to_id("<s>"),
            eos_id=tok.token_to_id("</s>"),
        )
        bos, eos = self.ids["bos_id"], self.ids["eos_id"]
        en = tok.encode_batch([e for e, _ in self.tr.train])
        fr = tok.encode_batch([f for _, f in self.tr.train])
        self.pairs = [(s.ids + [eos], [bos, *t.ids, eos]) for s, t in zip(en, fr, strict=True)]

    def batch(self, model, step, rng):
        dev = next(model.parameters()).device
        rows = sample_batch(rng, self.pairs, self.recipe.batch_size)
        src, smask = pad_batch([r[0] for r in rows], self.ids["pad_id"])
        tgt, tmask = pad_batch([r[1] for r in rows], self.ids["pad_id"])
        src, smask, tgt, tmask = src.to(dev), smask.to(dev), tgt.to(dev), tmask.to(dev)
        memory = model.encode(src, smask)
        logits = model.decode(tgt[:, :-1], memory, smask, tmask[:, :-1])
        targets = tgt[:, 1:].masked_fill(~tmask[:, 1:], -100)
        return Batch(
            F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100),
            int(smask.sum() + tmask.sum()),
        )

    def metrics(self, model, tokenizer=None):
        """Exact match on validation and held-out pairs, the lecture sentences, and for an RNN
        the gradient norms of its encoder states. ``tokenizer``: the model's own, when it
        comes from another checkpoint (default: the one trained here)."""
        tokenizer = tokenizer or self.tokenizer
        out = {}
        for split in ("validation", "heldout"):
            data = self.limit(getattr(self.tr, split))
            preds = evaluate.greedy_translate(model, tokenizer, [e for e, _ in data])
            out[f"exact_match_{split}"] = round(
                evaluate.exact_match(preds, [f for _, f in data]), 4
            )
            out[f"n_{split}"] = len(data)
        preds = evaluate.greedy_translate(model, tokenizer, [e for e, _ in corpus.LECTURE_PAIRS])
        out["lecture_translations"] = {
            e: p for (e, _), p in zip(corpus.LECTURE_PAIRS, preds, strict=True)
        }
        out["lecture_exact"] = all(
            p == f for (_, f), p in zip(corpus.LECTURE_PAIRS, preds, strict=True)
        )
        if isinstance(model, RNNSeq2Seq):
            out["encoder_state_gradients"] = evaluate.state_gradient_profile(model, tokenizer)
        return out


class InductionTask(Task):
    """Random filler holding random runs that each occur twice, at random places: predicting
    a second copy needs induction (find the earlier occurrence of the current token, copy the
    token after it), since neither a run's length nor the distance between its copies is
    fixed. Runs of ``heldout_run_lengths`` are never trained on, so the metrics can use them.

    The loss is on the copied tokens only: every other token is uniformly random, so its loss
    is ln V whatever the model does and its gradient is pure noise."""

    def prepare(self) -> None:
        lm = corpus.lm_sentences(self.recipe.seed)
        self.tokenizer = tok = train_byte_bpe(lm.train)  # same vocabulary as decoder-mini
        eot = tok.token_to_id("<|endoftext|>")
        self.ids = dict(pad_id=tok.token_to_id("<pad>"), bos_id=eot, eos_id=eot)
        self.first_id = 2  # after <pad> and <|endoftext|>
        self.gen = torch.Generator().manual_seed(self.recipe.seed)
        lo, hi = self.recipe.extra["run_lengths"]
        heldout = set(self.recipe.extra["heldout_run_lengths"])
        self.run_lengths = [n for n in range(lo, hi + 1) if n not in heldout]

    def batch(self, model, step, rng):
        dev = next(model.parameters()).device
        extra = self.recipe.extra
        ids, copied, _ = repeated_runs_batch(
            self.recipe.batch_size,
            extra["seq_len"],
            self.run_lengths,
            extra["max_gap"],
            low=self.first_id,
            high=model.config.vocab_size,
            bos_id=self.ids["bos_id"],
            generator=self.gen,
        )
        ids, copied = ids.to(dev), copied.to(dev)
        logits = model.decode(ids[:, :-1])
        targets = ids[:, 1:].masked_fill(~copied[:, 1:], -100)
        return Batch(
            F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100),
            ids.numel(),
        )

    def metrics(self, model):
        return evaluate.induction_metrics(
            model,
            self.first_id,
            self.recipe.extra["eval_run_lengths"],
            n=64 if self.eval_limit is None else self.eval_limit,
        )

    def findings(self, m):
        def per_length(values: dict, percent: bool = False) -> str:
            return " / ".join(f"{v * 100:.0f}" if percent else f"{v:.2f}" for v in values.values())

        heads = m["induction_heads"]
        if not heads:
            return "No head scored as an induction head."
        scores = [v for h in heads for v in m["induction_scores"][h].values()]
        prev = m["previous_token_head"]
        return (
            f"Measured on runs of {', '.join(map(str, m['eval_run_lengths']))} tokens, lengths "
            f"it never trained on: {', '.join(heads)} are induction heads (scores "
            f"{min(scores):.2f}-{max(scores):.2f}); the second run is copied greedily "
            f"{per_length(m['copy_accuracy'], True)} % of the time, and "
            f"{per_length(m['copy_accuracy_without_induction_heads']['zero'], True)} % with "
            f"them ablated. They compose with {prev}, the previous-token head of layer 0 "
            f"(score {m['previous_token_scores'][prev]:.2f}): with it ablated alone their "
            "mean induction score falls from "
            f"{per_length(m['induction_heads_mean_score'])} to "
            f"{per_length(m['induction_heads_mean_score_without_previous_token_head'])} and "
            f"copying to {per_length(m['copy_accuracy_without_previous_token_head']['zero'], True)}"
            " %."
        )


TASKS = {
    "mlm+cls": MaskedLMThenClassify,
    "lm": LanguageModel,
    "seq2seq": Translation,
    "induction": InductionTask,
}


def pick_device(name: str | None = None) -> torch.device:
    if name in (None, "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def lr_at(step: int, recipe: Recipe, total: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    warmup = min(recipe.warmup, max(total // 10, 1))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def build(recipe: Recipe, task: Task, device: torch.device) -> Model:
    """A fresh model of the recipe's architecture, sized to the task's tokenizer."""
    cfg = config_from_dict(
        {"vocab_size": task.tokenizer.get_vocab_size(), **recipe.architecture, **task.ids}
    )
    return model_from_config(cfg).to(device)


def make_optimizer(model: Model, recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW; matrices decay, biases, norms and embeddings do not."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "embed" in n]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": recipe.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=recipe.lr,
    )


def train_step(
    model: Model, task: Task, opt, recipe: Recipe, step: int, total: int, rng: random.Random
) -> Batch:
    for group in opt.param_groups:
        group["lr"] = lr_at(step, recipe, total)
    b = task.batch(model, step, rng)
    opt.zero_grad(set_to_none=True)
    b.loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return b


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_throughput(
    model_id: str,
    steps: int,
    batch_size: int,
    device: str | None = None,
    warmup: int = 2,
    task: Task | None = None,
) -> float:
    """Training tokens (source + target, padding excluded) per second of a fresh ``model_id``
    over ``steps`` steps after ``warmup`` untimed ones, with the current torch threads.
    Recipes of one objective and seed see the very same batches; ``task``: one already
    prepared for that objective and seed, with ``batch_size`` (saves preparing it again)."""
    recipe = RECIPES[model_id]
    recipe = Recipe(**{**recipe.to_dict(), "batch_size": batch_size})
    dev = pick_device(device)
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    if task is None:
        task = TASKS[recipe.objective](recipe)
        task.prepare()
    elif (task.recipe.objective, task.recipe.seed, task.recipe.batch_size) != (
        recipe.objective,
        recipe.seed,
        batch_size,
    ):
        raise ValueError(f"the task given was not prepared for {model_id} at this batch size")
    model = build(recipe, task, dev)
    opt = make_optimizer(model, recipe)
    model.train()
    for step in range(warmup):
        train_step(model, task, opt, recipe, step, recipe.steps, rng)
    _sync(dev)
    start, tokens = time.perf_counter(), 0
    for step in range(warmup, warmup + steps):
        tokens += train_step(model, task, opt, recipe, step, recipe.steps, rng).tokens
    _sync(dev)
    return tokens / (time.perf_counter() - start)


def compare(
    model: Model, task: Translation, recipe: Recipe, metrics: dict, device: torch.device
) -> dict:
    """This translator beside the shipped ``recipe.extra["compare_with"]`` one: held-out exact
    match measured the same way (same sets, same greedy decoding, each with its own
    tokenizer), and training tokens/s of the two recipes timed back to back here."""
    other_id = recipe.extra["compare_with"]
    other = load_checkpoint(ROOT / "checkpoints" / other_id, device)
    other_metrics = task.metrics(other.model, other.tokenizer)
    keys = ("exact_match_validation", "exact_match_heldout", "lecture_exact")
    steps = min(recipe.extra.get("timing_steps", 30), recipe.steps)
    load_before = os.getloadavg()[0]
    speed = {
        mid: round(training_throughput(mid, steps, recipe.batch_size, str(device), task=task), 1)
        for mid in (recipe.model_id, other_id)
    }
    return {
        "model": other_id,
        **{k: {recipe.model_id: metrics[k], other_id: other_metrics[k]} for k in keys},
        "train_tokens_per_second": speed,
        "timing": {
            "steps": steps,
            "batch_size": recipe.batch_size,
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "note": (
                "fresh models of both recipes, the same batches, timed one after the other "
                "on this machine while other jobs were running (1-minute load average before "
                "and after)"
            ),
        },
    }


def loss_curve(losses: list[float], points: int = 50) -> list[float]:
    """The training loss averaged over windows of len/points steps (at least one step)."""
    w = max(1, len(losses) // points)
    return [
        round(sum(losses[i : i + w]) / len(losses[i : i + w]), 4) for i in range(0, len(losses), w)
    ]


def train(
    model_id: str,
    out_dir: str | Path | None = None,
    *,
    steps: int | None = None,
    device: str | None = None,
    eval_limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Train `model_id` from nothing and save it; returns the card (also in card.json)."""
    recipe = RECIPES[model_id]
    total = steps if steps is not None else recipe.steps
    if steps is not None and recipe.extra.get("cls_steps"):
        recipe = Recipe(
            **{
                **recipe.to_dict(),
                "extra": {
                    **recipe.extra,
                    "cls_steps": max(1, recipe.extra["cls_steps"] * total // recipe.steps),
                },
            }
        )
    recipe = Recipe(**{**recipe.to_dict(), "steps": total})
    dev = pick_device(device)
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.seed)
    task = TASKS[recipe.objective](recipe, eval_limit=eval_limit)
    task.prepare()
    model = build(recipe, task, dev)
    opt = make_optimizer(model, recipe)

    start, tokens, losses = time.perf_counter(), 0, []
    bar = tqdm(range(total), desc=model_id, disable=not progress, mininterval=1.0)
    model.train()
    for step in bar:
        b = train_step(model, task, opt, recipe, step, total, rng)
        tokens += b.tokens
        losses.append(b.loss.item())
        if step % 20 == 0 or step == total - 1:
            elapsed = time.perf_counter() - start
            bar.set_postfix(
                loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}",
                tok_s=f"{tokens / elapsed:,.0f}",
            )
    train_seconds = time.perf_counter() - start
    model.eval()
    metrics = task.metrics(model)
    params = count_parameters(model)
    card = {
        "id": model_id,
        "title": recipe.title,
        "description": " ".join(filter(None, [recipe.description, task.findings(metrics)])),
        "tasks": recipe.tasks,
        "recipe": recipe.to_dict(),
        "seed": recipe.seed,
        "steps": total,
        "wall_time_seconds": round(train_seconds, 1),
        "train_tokens_per_second": round(tokens / train_seconds, 1),
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "final_train_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "loss_curve": loss_curve(losses),
        "metrics": metrics,
        "parameters": params,
    }
    if recipe.extra.get("compare_with"):
        card["comparison"] = compare(model, task, recipe, metrics, dev)
    if out_dir is not None:
        save_checkpoint(out_dir, model.cpu(), task.tokenizer, card)
    return card
