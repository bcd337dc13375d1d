"""Step-by-step decoding: the KV cache, strategies, stopping, and per-step attention."""

import pytest
import torch

from models import capture
from models.generate import Sampling, generate, next_token_distribution
from tests.helpers import tiny


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_cached_logits_equal_a_full_recompute(kind):
    model = tiny(kind)
    tokens = torch.randint(3, 40, (1, 10))
    memory = model.encode(torch.randint(3, 40, (1, 7))) if kind == "seq2seq" else None
    full = model.decode(tokens, memory)
    cache = model.new_cache()
    stepped = [model.decode(tokens[:, :4], memory, cache=cache)]  # prefill, then one at a time
    stepped += [model.decode(tokens[:, t : t + 1], memory, cache=cache) for t in range(4, 10)]
    torch.testing.assert_close(torch.cat(stepped, dim=1), full, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_generation_with_and_without_cache_agree(kind):
    model = tiny(kind)
    s = Sampling(strategy="sample", seed=3, max_new_tokens=12, temperature=1.5)
    a = list(generate(model, [1, 7, 8, 9], s, use_cache=True))
    b = list(generate(model, [1, 7, 8, 9], s, use_cache=False))
    assert [x.token_id for x in a] == [x.token_id for x in b]
    for x, y in zip(a, b, strict=True):
        for site in x.attention:
            torch.testing.assert_close(x.attention[site], y.attention[site])


def test_step_attention_rows_equal_teacher_forced_attention():
    model = tiny("seq2seq")
    src = [5, 9, 11, 4]
    steps = list(generate(model, src, Sampling(max_new_tokens=6)))
    target = [1] + [s.token_id for s in steps[:-1]]
    with capture(model) as trace:
        memory = model.encode(torch.tensor([src]))
        model.decode(torch.tensor([target]), memory)
    for t, step in enumerate(steps):
        for layer in range(2):
            self_row = trace[f"decoder.blocks.{layer}.attn.hook_pattern"][0, :, t, : t + 1]
            cross_row = trace[f"decoder.blocks.{layer}.cross_attn.hook_pattern"][0, :, t]
            torch.testing.assert_close(step.attention["decoder.self"][layer], self_row)
            torch.testing.assert_close(step.attention["decoder.cross"][layer], cross_row)


def test_same_seed_same_output_and_different_seeds_differ():
    model = tiny("decoder")
    runs = {
        seed: [
            s.token_id
            for s in generate(model, [1, 5], Sampling("sample", 2.0, seed=seed, max_new_tokens=20))
        ]
        for seed in (1, 1, 2)
    }
    again = [
        s.token_id
        for s in generate(model, [1, 5], Sampling("sample", 2.0, seed=1, max_new_tokens=20))
    ]
    assert runs[1] == again
    assert runs[1] != runs[2]


def test_greedy_stops_at_eos():
    model = tiny("decoder")
    with torch.no_grad():
        model.lm_head.bias[model.config.eos_id] = 100.0  # make EOS the obvious next token
    steps = list(generate(model, [1, 5, 6], Sampling(max_new_tokens=10)))
    assert len(steps) == 1 and steps[0].token_id == 2 and steps[0].stop_reason == "eos"
    assert steps[0].prob > 0.99


def test_stops_at_the_token_limit():
    steps = list(generate(tiny("decoder"), [1, 5], Sampling(max_new_tokens=3)))
    assert [s.step for s in steps] == [0, 1, 2]
    assert steps[-1].stop_reason == "max_new_tokens"


def test_top_k_and_top_p_restrict_the_distribution():
    logits = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0])
    probs = next_token_distribution(logits, Sampling("sample", top_k=2))
    assert (probs[2:] == 0).all() and torch.isclose(probs.sum(), torch.tensor(1.0))
    full = torch.softmax(logits, 0)
    probs = next_token_distribution(logits, Sampling("sample", top_p=0.8))
    # the smallest set whose mass reaches 0.8: tokens 0 and 1 (0.64 + 0.24)
    assert (probs[:2] > 0).all() and (probs[2:] == 0).all()
    assert torch.isclose(probs[0], full[0] / full[:2].sum())
    hot = next_token_distribution(logits, Sampling("sample", temperature=100.0))
    assert hot.max() - hot.min() < 0.05  # high temperature flattens


@pytest.mark.parametrize("temperature", [1e-3, 1e-39, 1e-300, 5e-324])
def test_a_tiny_temperature_is_greedy_decoding(temperature):
    """softmax(logits / T) as T -> 0 puts all the mass on the argmax; 1e-39 and below overflow
    float32 (inf - inf = nan) unless the logits are shifted first."""
    logits = torch.tensor([0.5, 3.0, -2.0, 2.9, 1.0])
    probs = next_token_distribution(logits, Sampling("sample", temperature=temperature))
    assert torch.isfinite(probs).all()
    assert probs[1] == 1.0 and probs.sum() == 1.0
    tied = next_token_distribution(torch.tensor([1.0, 3.0, 3.0]), Sampling("sample", 1e-300))
    assert torch.equal(tied, torch.tensor([0.0, 0.5, 0.5]))  # the limit splits a tie evenly


@pytest.mark.parametrize("top_p", [1e-3, 1e-46, 5e-324])
def test_a_tiny_top_p_keeps_the_most_likely_token(top_p):
    logits = torch.tensor([0.5, 3.0, -2.0, 2.9, 1.0])
    probs = next_token_distribution(logits, Sampling("sample", top_p=top_p, temperature=0.7))
    assert torch.equal(probs, torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0]))


def test_generation_with_tiny_temperature_matches_greedy():
    model = tiny("decoder")
    greedy = [s.token_id for s in generate(model, [1, 5], Sampling(max_new_tokens=8))]
    cold = Sampling("sample", temperature=1e-39, top_p=1e-46, seed=0, max_new_tokens=8)
    assert [s.token_id for s in generate(model, [1, 5], cold)] == greedy


@pytest.mark.parametrize(
    "bad",
    [
        dict(temperature=0.0),
        dict(temperature=-1.0),
        dict(temperature=float("nan")),
        dict(temperature=float("inf")),
        dict(top_p=0.0),
        dict(top_p=1.5),
        dict(top_k=-1),
        dict(max_new_tokens=0),
        dict(strategy="beam"),
    ],
)
def test_bad_sampling_settings_are_rejected(bad):
    with pytest.raises(ValueError):
        Sampling(**bad)
