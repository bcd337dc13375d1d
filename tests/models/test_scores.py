"""Head scores against hand-built patterns and an independent TransformerLens-style reference."""

import math

import pytest
import torch

from models.analysis import scores

T = 9


def causal_uniform(T: int) -> torch.Tensor:
    return torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]


def one_hot_rows(targets: list[int]) -> torch.Tensor:
    """Row i puts all its attention on key targets[i]."""
    return torch.eye(len(targets))[targets]


def test_a_perfect_previous_token_head_scores_one():
    pattern = one_hot_rows([0, *range(T - 1)])  # query 0 can only attend to itself
    assert scores.previous_token(pattern).item() == pytest.approx(1.0)
    assert scores.entropy(pattern).item() == pytest.approx(0.0)
    assert scores.first_token(pattern).item() == pytest.approx(2 / T)  # queries 0 and 1


def test_uniform_causal_attention_scores_what_the_formulas_say():
    pattern = causal_uniform(T)
    prev = sum(1 / (i + 1) for i in range(1, T)) / (T - 1)
    first = sum(1 / (i + 1) for i in range(T)) / T
    ent = sum(math.log(i + 1) for i in range(T)) / T
    assert scores.previous_token(pattern).item() == pytest.approx(prev)
    assert scores.first_token(pattern).item() == pytest.approx(first)
    assert scores.entropy(pattern).item() == pytest.approx(ent)


def test_uniform_bidirectional_attention():
    pattern = torch.full((T, T), 1 / T)
    assert scores.previous_token(pattern).item() == pytest.approx(1 / T)
    assert scores.entropy(pattern).item() == pytest.approx(math.log(T))
    tokens = torch.tensor([5, 6, 5, 7, 8, 9, 6, 5, 4])
    # query 0 (token 5) has duplicates at 2 and 7: 2/T of its attention; etc.
    dup = scores.duplicate_token(pattern, tokens, causal=False).item()
    others = [2, 1, 2, 1, 2]  # queries 0, 1, 2, 6, 7 (tokens 5, 6, 5, 6, 5) have duplicates
    assert dup == pytest.approx(sum(others) / len(others) / T)


def repeated(L: int) -> torch.Tensor:
    return torch.cat([torch.tensor([1]), torch.arange(10, 10 + L).repeat(2)])


def test_perfect_induction_and_duplicate_token_heads():
    L = 4
    tokens = repeated(L)  # BOS a b c d a b c d: positions 1..4, 5..8
    second = range(L + 1, 2 * L + 1)
    induction = one_hot_rows([i - L + 1 if i in second else 0 for i in range(2 * L + 1)])
    duplicate = one_hot_rows([i - L if i in second else 0 for i in range(2 * L + 1)])
    assert scores.induction(induction, tokens).item() == pytest.approx(1.0)
    assert scores.duplicate_token(induction, tokens).item() == pytest.approx(0.0)
    assert scores.duplicate_token(duplicate, tokens).item() == pytest.approx(1.0)
    assert scores.induction(duplicate, tokens).item() == pytest.approx(0.0)
    # Olsson's score averages over the second copy only; TransformerLens's "mul" over all rows
    assert scores.induction(induction, tokens, normalize="all").item() == pytest.approx(
        L / (2 * L + 1)
    )
    # a uniform causal head spreads 1/(i+1) over the i+1 visible keys, one of them the target
    expected = sum(1 / (i + 1) for i in second) / L
    assert scores.induction(causal_uniform(2 * L + 1), tokens).item() == pytest.approx(expected)


def tl_detection(tokens: list[int], kind: str) -> torch.Tensor:
    """TransformerLens head_detector's detection patterns, rebuilt with plain loops."""
    n = len(tokens)
    d = torch.zeros(n, n)
    for i in range(n):
        for j in range(n):
            if kind == "previous" and j == i - 1:
                d[i, j] = 1
            if kind == "duplicate" and j < i and tokens[i] == tokens[j]:
                d[i, j] = 1
            if kind == "induction" and j < i and tokens[i] == tokens[j]:
                d[i, j + 1] = 1
    return d


def test_normalize_all_is_transformer_lens_mul_measure():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 4, (12,), generator=g)  # small alphabet: many repeats, A A too
    logits = torch.randn(3, 12, 12, generator=g).masked_fill(
        ~torch.ones(12, 12).tril().bool(), -1e9
    )
    pattern = logits.softmax(-1)
    for kind, detection, fn in [
        ("duplicate", scores.duplicate_token_detection, scores.duplicate_token),
        ("induction", scores.induction_detection, scores.induction),
    ]:
        d = tl_detection(tokens.tolist(), kind)
        assert torch.equal(detection(tokens).float(), d)
        reference = (pattern * d).sum((-2, -1)) / pattern.sum((-2, -1))
        torch.testing.assert_close(fn(pattern, tokens, normalize="all"), reference)
    d = tl_detection(tokens.tolist(), "previous")
    reference = (pattern * d).sum((-2, -1)) / pattern.sum((-2, -1))
    torch.testing.assert_close(scores.previous_token(pattern, normalize="all"), reference)


def test_targets_normalization_averages_only_queries_that_have_a_target():
    tokens = torch.tensor([1, 2, 3, 2, 4, 3])
    pattern = torch.softmax(
        torch.randn(6, 6).masked_fill(~torch.ones(6, 6).tril().bool(), -1e9), -1
    )
    # duplicates: query 3 (token 2 at 1), query 5 (token 3 at 2)
    expected = (pattern[3, 1] + pattern[5, 2]) / 2
    assert scores.duplicate_token(pattern, tokens).item() == pytest.approx(expected.item())
    # induction targets: the keys after those: 2 and 3
    expected = (pattern[3, 2] + pattern[5, 3]) / 2
    assert scores.induction(pattern, tokens).item() == pytest.approx(expected.item())


def test_no_repeated_token_gives_nan():
    pattern = causal_uniform(5)
    assert math.isnan(scores.induction(pattern, torch.arange(5)).item())


def test_shapes_layers_heads_and_a_batch():
    g = torch.Generator().manual_seed(1)
    B, L, H, n = 3, 2, 4, 10
    tokens = torch.randint(0, 5, (B, n), generator=g)
    mask = torch.ones(n, n).tril().bool()
    patterns = torch.randn(B, L, H, n, n, generator=g).masked_fill(~mask, -1e9).softmax(-1)
    for fn in (scores.induction, scores.duplicate_token):
        batched = fn(patterns, tokens)
        assert batched.shape == (B, L, H)
        for b in range(B):
            torch.testing.assert_close(batched[b], fn(patterns[b], tokens[b]))
            assert fn(patterns[b, 1, 2], tokens[b]).shape == ()
    for fn in (scores.previous_token, scores.first_token, scores.entropy):
        assert fn(patterns).shape == (B, L, H)


def test_first_token_and_entropy_accept_cross_attention():
    pattern = torch.zeros(2, 3, 5)  # (H, Tq, Tk)
    pattern[0, :, 0] = 1
    pattern[1] = 1 / 5
    torch.testing.assert_close(scores.first_token(pattern), torch.tensor([1.0, 0.2]))
    torch.testing.assert_close(scores.entropy(pattern), torch.tensor([0.0, math.log(5)]))
    with pytest.raises(ValueError, match="T, T"):
        scores.previous_token(pattern)


def test_the_induction_probe():
    ids = scores.induction_probe(30, 100, seed=3, batch=4, bos_id=1, exclude=[0, 1, 2])
    assert ids.shape == (4, 61) and ids.dtype == torch.long
    assert (ids[:, 0] == 1).all()
    assert torch.equal(ids[:, 1:31], ids[:, 31:])
    assert not torch.isin(ids[:, 1:], torch.tensor([0, 1, 2])).any()
    assert all(len(set(row[1:31].tolist())) == 30 for row in ids)  # distinct within a run
    assert not torch.equal(ids[0], ids[1])
    assert torch.equal(
        ids, scores.induction_probe(30, 100, seed=3, batch=4, bos_id=1, exclude=[0, 1, 2])
    )
    assert not torch.equal(
        ids, scores.induction_probe(30, 100, seed=4, batch=4, bos_id=1, exclude=[0, 1, 2])
    )
    assert scores.induction_probe(5, 10).shape == (1, 10)  # no BOS
    with pytest.raises(ValueError, match="run_length"):
        scores.induction_probe(98, 100, exclude=[0, 1, 2])
