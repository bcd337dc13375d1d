"""Quality of the shipped checkpoints, measured live on held-out data (no retraining).

These are the promises of the models issue: each figure here is recomputed from the files in
checkpoints/ and must also agree with what card.json reports.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import pytest
import torch

from models import load_checkpoint
from training import corpus, evaluate

pytestmark = pytest.mark.quality

ROOT = Path(__file__).resolve().parents[2] / "checkpoints"
SHIPPED = [
    "encoder-mini",
    "decoder-mini",
    "seq2seq-en-fr",
    "induction-2l",
    "rnn-en-fr",
    "rnn-tanh-en-fr",
]
SEED = 0


@cache
def ckpt(model_id: str):
    path = ROOT / model_id
    if not (path / "model.safetensors").exists():
        pytest.fail(f"shipped checkpoint {model_id} is missing")
    return load_checkpoint(path)


@pytest.mark.parametrize("model_id", SHIPPED)
def test_each_checkpoint_is_small_and_complete(model_id):
    files = {p.name: p.stat().st_size for p in (ROOT / model_id).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "card.json"} <= set(files)
    assert sum(files.values()) <= 10 * 2**20
    card = ckpt(model_id).card
    for key in ("recipe", "seed", "steps", "wall_time_seconds", "device", "metrics", "parameters"):
        assert key in card, key


def test_all_checkpoints_together_fit_in_40_mb():
    total = sum(p.stat().st_size for m in SHIPPED for p in (ROOT / m).iterdir())
    assert total <= 40 * 2**20


def test_seq2seq_translates_heldout_sentences_and_every_lecture_sentence():
    c = ckpt("seq2seq-en-fr")
    heldout = corpus.translation_splits(SEED).heldout
    preds = evaluate.greedy_translate(c.model, c.tokenizer, [e for e, _ in heldout])
    em = evaluate.exact_match(preds, [f for _, f in heldout])
    assert em >= 0.95, em
    assert math.isclose(em, c.card["metrics"]["exact_match_heldout"], abs_tol=1e-4)
    lecture = evaluate.greedy_translate(c.model, c.tokenizer, [e for e, _ in corpus.LECTURE_PAIRS])
    assert lecture == [f for _, f in corpus.LECTURE_PAIRS]


def test_encoder_sentiment_including_negation_and_mlm():
    c = ckpt("encoder-mini")
    heldout = corpus.sentiment_splits(SEED).heldout
    preds = evaluate.classify(c.model, c.tokenizer, [t for t, _ in heldout])
    labels = c.config.labels
    right = [labels[p] == gold for p, (_, gold) in zip(preds, heldout, strict=True)]
    negated = [r for r, (t, _) in zip(right, heldout, strict=True) if " not " in f" {t} "]
    assert len(negated) >= 50
    assert sum(right) / len(right) >= 0.95
    assert sum(negated) / len(negated) >= 0.95
    assert (
        evaluate.fill_mask(c.model, c.tokenizer, "i went to the [MASK]")[0][0] in corpus.PLACE_NOUNS
    )
    assert 0 < c.card["metrics"]["mlm_top1_heldout"] <= 1


def test_decoder_beats_a_unigram_model_by_half_and_continues_grammatically():
    c = ckpt("decoder-mini")
    eot = c.config.bos_id
    lm = corpus.lm_sentences(SEED)
    enc = lambda texts: [[eot, *e.ids, eot] for e in c.tokenizer.encode_batch(texts)]  # noqa: E731
    heldout = enc(lm.heldout)
    nll, n = evaluate.lm_nll(c.model, heldout)
    uni, m = evaluate.unigram_nll(enc(lm.train), heldout, c.config.vocab_size)
    assert math.exp(nll / n) <= 0.5 * math.exp(uni / m)
    continuation = evaluate.greedy_continuation(c.model, c.tokenizer, "the black cat")
    assert continuation.startswith("the black cat ")
    assert corpus.is_english_sentence(continuation), continuation


def test_induction_model_copies_the_second_run_with_named_heads():
    c = ckpt("induction-2l")
    m = evaluate.induction_metrics(c.model, 2, c.card["recipe"]["extra"]["run_length"])
    assert m["loss_second_copy"] <= 0.1 * m["loss_first_copy"]
    assert m["induction_heads"], m["induction_scores"]
    assert m["induction_heads"] == c.card["metrics"]["induction_heads"]
    best = max(m["induction_scores"].values())
    assert best >= 0.5


def test_checkpoints_load_on_the_configured_device():
    c = ckpt("decoder-mini")
    assert next(c.model.parameters()).device == torch.device("cpu")
    assert not c.model.training
