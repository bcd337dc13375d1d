"""The induction training data: a random run twice, at random places, never a held-out length."""

import pytest
import torch

from training.data import repeated_run_batch
from training.recipes import RECIPES
from training.train import InductionTask


def batch(seed=0, n=256, lengths=(8, 9, 30, 64), seq_len=160):
    g = torch.Generator().manual_seed(seed)
    return repeated_run_batch(n, seq_len, lengths, low=2, high=100, bos_id=1, generator=g)


def test_each_row_holds_its_run_twice_after_bos():
    ids, spans = batch()
    assert ids.shape == (256, 160)
    assert (ids[:, 0] == 1).all() and (ids[:, 1:] >= 2).all() and (ids < 100).all()
    for row, (first, second, n) in zip(ids, spans.tolist(), strict=True):
        assert n in (8, 9, 30, 64)
        assert first >= 1 and first + n <= second and second + n <= 160
        assert torch.equal(row[first : first + n], row[second : second + n])


def test_lengths_places_and_distances_vary():
    _, spans = batch()
    first, second, n = spans.T
    assert set(n.tolist()) == {8, 9, 30, 64}
    assert len(set((second - first).tolist())) > 50  # no fixed offset to learn
    assert len(set(first.tolist())) > 50
    assert (second == first + n).any() and (first == 1).any()  # adjacent copies, run at BOS


def test_same_seed_same_batch():
    assert torch.equal(batch(3)[0], batch(3)[0])
    assert not torch.equal(batch(3)[0], batch(4)[0])


def test_runs_too_long_for_the_sequence_are_refused():
    with pytest.raises(ValueError, match="fit"):
        batch(lengths=(80,))


def test_the_recipe_never_trains_on_the_lengths_it_evaluates():
    recipe = RECIPES["induction-2l"]
    task = InductionTask(recipe)
    task.prepare()
    held = set(recipe.extra["heldout_run_lengths"])
    lo, hi = recipe.extra["run_lengths"]
    assert held and held.isdisjoint(task.run_lengths)
    assert set(task.run_lengths) | held == set(range(lo, hi + 1))
    unseen = [n for n in recipe.extra["eval_run_lengths"] if n not in task.run_lengths]
    assert unseen == recipe.extra["eval_run_lengths"]  # every evaluated length is unseen
    assert any(n < lo for n in unseen) and any(n > hi for n in unseen) and held <= set(unseen)
