"""The analyses against independent references: the model's own outputs, NumPy, the formulas."""

import numpy as np
import pytest
import torch

from models import capture
from models.analysis.attribution import (
    direct_logit_attribution,
    head_value_vectors,
    value_weighted_norms,
)
from models.analysis.lens import run_logit_lens
from models.analysis.rollout import rollout
from models.hooks import SITE_OUTPUT, hook_name
from tests.helpers import tiny

FAMILIES = [
    ("encoder", {}),  # post-norm LayerNorm, learned positions
    ("decoder", {}),  # pre-norm RMSNorm, RoPE, SwiGLU
    ("seq2seq", {}),  # post-norm LayerNorm, sinusoidal, cross-attention
    ("decoder", {"norm": "layernorm", "positional": "learned", "activation": "gelu"}),  # GPT-2-like
    ("decoder", {"norm": "none", "attn_only": True}),  # no norms, no FFN
    ("decoder", {"n_kv_heads": 2, "pair_layout": "halves"}),  # Llama-like: GQA, RoPE halves
    ("encoder", {"embed_norm": True, "type_vocab_size": 2}),  # BERT-like embeddings
]


def widen(model):
    """Weights far from HF-style tiny init, so attention is not near-uniform."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
            elif "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0, 0.1)
    return model


def inputs(model, T=7):
    ids = torch.randint(3, 40, (1, T))
    target = torch.randint(3, 40, (1, 5)) if model.config.kind == "seq2seq" else None
    return ids, target


def logits_of(model, ids, target):
    kind = model.config.kind
    if kind == "encoder":
        return model.mlm_logits(model.encode(ids))
    if kind == "decoder":
        return model.decode(ids)
    return model.decode(target, model.encode(ids))


@pytest.mark.parametrize(("kind", "overrides"), FAMILIES)
def test_direct_logit_attribution_sums_to_the_logit(kind, overrides):
    model = widen(tiny(kind, **overrides))
    ids, target = inputs(model)
    for position, token in ((-1, None), (2, 11)):
        attr = direct_logit_attribution(model, ids, target, position=position, token=token)
        expected = logits_of(model, ids, target)[0, position]
        assert attr.token == (int(expected.argmax()) if token is None else token)
        assert attr.logit == pytest.approx(float(expected[attr.token].detach()), abs=1e-9)
        assert attr.total == pytest.approx(attr.logit, abs=1e-3)
        for contributions in attr.heads.values():  # every head wrote something
            assert (contributions != 0).all()


@pytest.mark.parametrize(("kind", "overrides"), FAMILIES[:3])
def test_one_heads_contribution_splits_over_its_key_positions(kind, overrides):
    model = widen(tiny(kind, **overrides))
    ids, target = inputs(model)
    site = "decoder.cross" if kind == "seq2seq" else f"{model.config.stacks[-1]}.self"
    attr = direct_logit_attribution(model, ids, target, head=(site, 1, 2))
    assert attr.head_positions is not None
    assert float(attr.head_positions.sum()) == pytest.approx(
        float(attr.heads[site][1, 2]), abs=1e-6
    )


def test_attribution_changes_when_a_head_is_ablated():
    model = widen(tiny("decoder"))
    ids, _ = inputs(model)
    name = hook_name("decoder.self", 1, "z")

    def zero_head_0(z):
        z = z.clone()
        z[:, 0] = 0
        return z

    clean = direct_logit_attribution(model, ids)
    ablated = direct_logit_attribution(model, ids, token=clean.token, edits={name: zero_head_0})
    assert ablated.heads["decoder.self"][1, 0] == 0
    assert clean.heads["decoder.self"][1, 0] != 0
    assert ablated.total == pytest.approx(ablated.logit, abs=1e-3)


@pytest.mark.parametrize(("kind", "overrides"), FAMILIES)
def test_value_weighted_vectors_add_up_to_the_attention_output(kind, overrides):
    """Σ_h Σ_j α_hij f_h(x_j) + b_O equals what the block captured at hook_attn_out."""
    model = widen(tiny(kind, **overrides))
    ids, target = inputs(model)
    sites = list(model.config.sites)
    with capture(model) as trace:
        logits_of(model, ids, target)
    for site in sites:
        attn = model.get_submodule(hook_name(site, 1, "z").rsplit(".", 1)[0])
        pattern = trace[hook_name(site, 1, "pattern")]
        f = head_value_vectors(trace[hook_name(site, 1, "v")], attn.W_o.weight)  # (B,H,Tk,D)
        out = torch.einsum("bhqk,bhko->bqo", pattern, f) + attn.W_o.bias
        expected = trace[hook_name(site.split(".")[0], 1, SITE_OUTPUT[site])]
        torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)
        norms = value_weighted_norms(pattern, trace[hook_name(site, 1, "v")], attn.W_o.weight)
        direct = torch.linalg.vector_norm(pattern[..., None] * f[:, :, None], dim=-1)
        torch.testing.assert_close(norms, direct, atol=1e-9, rtol=1e-9)


def test_rollout_equals_a_numpy_reference():
    rng = np.random.default_rng(0)
    L, H, T = 3, 4, 6
    raw = rng.random((L, H, T, T))
    patterns = raw / raw.sum(-1, keepdims=True)
    expected, acc = [], np.eye(T)
    for layer in range(L):
        a = 0.5 * patterns[layer].mean(0) + 0.5 * np.eye(T)
        a = a / a.sum(-1, keepdims=True)
        acc = a @ acc
        expected.append(acc)
    got = rollout(torch.tensor(patterns)).numpy()
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-12)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-12)


def test_rollout_of_a_causal_stack_stays_causal():
    model = widen(tiny("decoder"))
    ids, _ = inputs(model)
    with capture(model, names=["decoder.blocks.*.attn.hook_pattern"]) as trace:
        model.decode(ids)
    patterns = torch.stack([trace[hook_name("decoder.self", li, "pattern")][0] for li in (0, 1)])
    r = rollout(patterns)
    assert torch.equal(r.triu(1), torch.zeros_like(r))


@pytest.mark.parametrize(("kind", "overrides"), FAMILIES)
def test_the_logit_lens_last_layer_is_the_models_own_distribution(kind, overrides):
    model = widen(tiny(kind, **overrides))
    ids, target = inputs(model)
    lens = run_logit_lens(model, ids, target, k=3)
    probs = torch.softmax(logits_of(model, ids, target)[0].float(), dim=-1)
    depth = model.config.depth(model.config.stacks[-1])
    assert lens.layers == ["embed", *map(str, range(depth))]
    torch.testing.assert_close(lens.top_probs[-1], probs.topk(3).values, atol=1e-5, rtol=0)
    assert torch.equal(lens.final_ids, probs.argmax(-1))
    torch.testing.assert_close(lens.final_probs[-1], probs.max(-1).values, atol=1e-5, rtol=0)
    assert not torch.allclose(lens.final_probs[0], lens.final_probs[-1])  # earlier layers differ


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_the_logit_lens_over_vocabulary_chunks_equals_every_layers_full_softmax(chunk):
    from models.analysis.lens import residual_hooks

    model = widen(tiny("decoder"))
    ids, _ = inputs(model)
    lens = run_logit_lens(model, ids, k=4, vocab_chunk=chunk)
    names = residual_hooks("decoder", model.config.n_layers)
    with capture(model, names=names) as trace:
        model.decode(ids)
    final = None
    for layer, name in reversed(list(enumerate(names))):  # the output's layer first
        states = model.decoder.final_norm(trace[name][0])
        probs = torch.softmax(model.unembed(states).float(), dim=-1)
        top = probs.topk(4)
        final = probs.argmax(-1) if final is None else final
        torch.testing.assert_close(lens.top_probs[layer], top.values, atol=1e-6, rtol=0)
        assert torch.equal(lens.top_ids[layer], top.indices)
        torch.testing.assert_close(lens.final_probs[layer], probs.gather(-1, final[:, None])[:, 0])


def test_the_importance_sweep_counts_heads_per_batch_then_answers_what_head_importance_does():
    from models.analysis.importance import head_importance, importance_sweep

    model = widen(tiny("seq2seq"))
    ids, target = inputs(model)
    *steps, answer = importance_sweep(model, ids, target, mode="zero", chunk=5)
    total = sum(model.config.sites.values()) * model.config.n_heads
    assert steps == [(0, total)] + [(min(k, total), total) for k in range(5, total + 5, 5)]
    expected = head_importance(model, ids, target, mode="zero", chunk=5)
    assert answer.keys() == expected.keys()
    assert all(torch.equal(answer[s], expected[s]) for s in answer)


@pytest.mark.parametrize(
    ("kind", "overrides", "mode"),
    [("encoder", {}, "zero"), ("decoder", {}, "mean"), ("seq2seq", {}, "zero")],
)
def test_batched_importance_equals_one_ablation_at_a_time(kind, overrides, mode):
    from models.analysis.ablation import ablation_edits
    from models.analysis.importance import head_importance

    model = widen(tiny(kind, **overrides))
    ids, target = inputs(model)
    got = head_importance(model, ids, target, mode=mode, chunk=5)  # chunks split layers
    clean = torch.log_softmax(logits_of(model, ids, target)[0], dim=-1)
    predicted = clean.argmax(-1)
    clean_lp = clean.gather(-1, predicted[:, None]).mean()
    for site, n in model.config.sites.items():
        assert got[site].shape == (n, model.config.n_heads)
        for layer in range(n):
            for head in range(model.config.n_heads):
                with capture(model, edits=ablation_edits([(site, layer, head, mode)])):
                    lp = torch.log_softmax(logits_of(model, ids, target)[0], dim=-1)
                expected = clean_lp - lp.gather(-1, predicted[:, None]).mean()
                assert float(got[site][layer, head]) == pytest.approx(float(expected), abs=1e-4)


@pytest.mark.parametrize(("kind", "mode"), [("decoder", "zero"), ("seq2seq", "mean")])
def test_attribution_patching_is_the_first_order_change_of_each_ablation(kind, mode):
    """∇M · (z − z') per head, against the finite difference of M moving that head's output
    a step ε of the way to its ablated value (float64)."""
    from models.analysis.importance import attribution_patching

    model = widen(tiny(kind))
    ids, target = inputs(model)
    got = attribution_patching(model, ids, target, mode=mode)
    clean = torch.log_softmax(logits_of(model, ids, target)[0], dim=-1)
    predicted = clean.argmax(-1)
    metric = clean.gather(-1, predicted[:, None]).mean()
    eps = 1e-6
    for site, n in model.config.sites.items():
        for layer in range(n):
            for head in range(model.config.n_heads):

                def nudge(z, head=head):
                    z = z.clone()
                    toward = 0.0 if mode == "zero" else z[:, head].mean(dim=-2, keepdim=True)
                    z[:, head] = z[:, head] + eps * (toward - z[:, head])
                    return z

                with capture(model, edits={hook_name(site, layer, "z"): nudge}):
                    lp = torch.log_softmax(logits_of(model, ids, target)[0], dim=-1)
                moved = lp.gather(-1, predicted[:, None]).mean()
                expected = float(((metric - moved) / eps).detach())
                assert float(got[site][layer, head]) == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_the_sweeps_chunked_log_probability_equals_log_softmax():
    from models.analysis.importance import _log_prob_of

    model = widen(tiny("decoder"))
    h = torch.randn(3, 5, model.config.d_model, dtype=torch.float64)
    ids = torch.tensor([0, 7, 39, 12, 25])
    full = torch.log_softmax(model.lm_head(h).float(), -1)
    expected = full.gather(-1, ids[None, :, None].expand(3, -1, 1))[..., 0]
    torch.testing.assert_close(_log_prob_of(model, h, ids, chunk=7), expected)


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_sweep_work_counts_the_blocks_each_batch_runs(kind):
    from models.analysis.importance import sweep_work

    model = widen(tiny(kind))
    cfg = model.config
    n = sum(cfg.sites.values()) * cfg.n_heads
    work = sweep_work(model, chunk=5)
    assert len(work) == n + 1 and work[0] == 0
    steps = [b - a for a, b in zip(work, work[1:], strict=False)]
    assert all(s > 0 for s in steps)
    if kind == "decoder":  # the last batch starts at the last layer: it runs fewer blocks
        assert steps[-1] < steps[0]
    else:  # a seq2seq batch reruns the whole model: every head costs the same
        assert len(set(steps)) == 1
