"""A few steps of every objective, end to end: data, tokenizer, loop, metrics, checkpoint.

CI does not retrain the shipped models; this proves the recipe code runs and is deterministic.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from models import load_checkpoint
from models.rnn import RNNSeq2Seq
from training.cli import main as cli_main
from training.recipes import RECIPES
from training.train import train


@pytest.mark.parametrize("model_id", sorted(RECIPES))
def test_a_few_steps_of_every_recipe_write_a_loadable_checkpoint_and_card(model_id, tmp_path):
    card = train(model_id, tmp_path, steps=3, eval_limit=8, progress=False)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.card == json.loads((tmp_path / "card.json").read_text())
    for key in ("recipe", "seed", "steps", "wall_time_seconds", "device", "metrics", "parameters"):
        assert key in card
    assert card["steps"] == 3 and card["device"] == "cpu"
    assert card["parameters"]["total"] == sum(p.numel() for p in ckpt.model.parameters())
    assert ckpt.tokenizer.get_vocab_size() == ckpt.config.vocab_size
    assert card["train_tokens_per_second"] > 0
    if model_id == "encoder-mini":
        d = ckpt.config.d_model
        assert card["parameters"]["cls_head"] == d * 3 + 3
        assert ckpt.config.labels == ["negative", "neutral", "positive"]
    if model_id.startswith("rnn-"):
        assert isinstance(ckpt.model, RNNSeq2Seq)
        assert ckpt.config.cell == RECIPES[model_id].architecture["cell"]
        profile = card["metrics"]["encoder_state_gradients"]
        assert profile["source_tokens"] == 20
        assert len(profile["recurrence"]["norms"]) == len(profile["all"]["norms"]) == 20
    if model_id == "rnn-en-fr":
        other = "seq2seq-en-fr"
        comparison = card["comparison"]
        assert comparison["model"] == other and comparison["timing"]["steps"] == 3
        for key in ("exact_match_heldout", "lecture_exact", "train_tokens_per_second"):
            assert set(comparison[key]) == {model_id, other}
        assert comparison["exact_match_heldout"][model_id] == card["metrics"]["exact_match_heldout"]


@pytest.mark.parametrize("model_id", ["decoder-mini", "seq2seq-en-fr", "rnn-tanh-en-fr"])
def test_the_training_loss_falls(model_id):
    """20 steps are enough for next-token and translation losses to fall clearly (the MLM and
    induction objectives need longer; they share the same loop)."""
    curve = train(model_id, None, steps=20, eval_limit=4, progress=False)["loss_curve"]
    assert len(curve) == 20
    assert sum(curve[-5:]) / 5 < 0.9 * sum(curve[:5]) / 5


@pytest.mark.parametrize("model_id", ["induction-2l", "rnn-tanh-en-fr"])
def test_training_is_deterministic_for_a_seed_and_changes_the_weights(model_id, tmp_path):
    for name, steps in (("a", 4), ("b", 4), ("c", 1)):
        train(model_id, tmp_path / name, steps=steps, eval_limit=4, progress=False)
    a, b, c = (load_file(str(tmp_path / n / "model.safetensors")) for n in "abc")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # three more optimiser steps moved every trained matrix
    changed = [k for k in a if a[k].dim() >= 2 and not torch.equal(a[k], c[k])]
    assert changed == [k for k in a if a[k].dim() >= 2]


def test_cli_lists_recipes(capsys):
    assert cli_main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert all(model_id in out for model_id in RECIPES)
