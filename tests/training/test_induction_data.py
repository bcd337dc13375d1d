"""The induction training data: random runs twice, at random places, never a held-out length."""

import pytest
import torch

from training.data import repeated_runs_batch
from training.recipes import RECIPES
from training.train import InductionTask

LENGTHS = (8, 9, 30, 40)


def batch(seed=0, n=128, lengths=LENGTHS, seq_len=160, max_gap=20):
    g = torch.Generator().manual_seed(seed)
    return repeated_runs_batch(n, seq_len, lengths, max_gap, low=2, high=300, bos_id=1, generator=g)


def test_each_row_holds_its_runs_twice_and_marks_the_predictable_tokens():
    ids, copied, spans = batch()
    assert ids.shape == copied.shape == (128, 160)
    assert (ids[:, 0] == 1).all() and (ids[:, 1:] >= 2).all() and (ids < 300).all()
    for row, marks, pairs in zip(ids, copied, spans, strict=True):
        assert pairs, "every row holds at least one pair"
        expected = torch.zeros(160, dtype=torch.bool)
        end = 1
        for first, second, n in pairs:
            assert n in LENGTHS
            assert end <= first <= end + 20 and first + n <= second <= first + n + 20
            assert second + n <= 160
            assert torch.equal(row[first : first + n], row[second : second + n])
            expected[second + 1 : second + n] = True
            end = second + n
        assert torch.equal(marks, expected)


def test_lengths_places_and_distances_vary():
    _, _, spans = batch()
    pairs = [p for row in spans for p in row]
    assert {n for _, _, n in pairs} == set(LENGTHS)
    assert len({second - first for first, second, _ in pairs}) > 40  # no fixed offset to learn
    assert len({first for first, _, _ in pairs}) > 40
    assert any(second == first + n for first, second, n in pairs)  # adjacent copies
    assert any(first == 1 for first, _, _ in pairs)  # a run right after BOS
    assert max(len(row) for row in spans) >= 2  # several pairs in a row


def test_same_seed_same_batch():
    assert torch.equal(batch(3)[0], batch(3)[0])
    assert not torch.equal(batch(3)[0], batch(4)[0])


def test_impossible_layouts_are_refused():
    with pytest.raises(ValueError, match="fit"):
        batch(lengths=(70,))


def test_the_recipe_never_trains_on_the_lengths_it_evaluates():
    recipe = RECIPES["induction-2l"]
    task = InductionTask(recipe)
    task.prepare()
    held = set(recipe.extra["heldout_run_lengths"])
    lo, hi = recipe.extra["run_lengths"]
    assert held and held.isdisjoint(task.run_lengths)
    assert set(task.run_lengths) | held == set(range(lo, hi + 1))
    evaluated = recipe.extra["eval_run_lengths"]
    assert not set(evaluated) & set(task.run_lengths)  # every evaluated length is unseen
    assert any(n < lo for n in evaluated) and any(n > hi for n in evaluated)
    assert held <= set(evaluated)
