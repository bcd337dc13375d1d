"""Inside a block (models.analysis.block) and the three normalisations
(models.analysis.normalization), against references written here from the formulas and
against torch's own functional norms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from app.config import ROOT
from models import capture, load_checkpoint
from models.analysis import normalization
from models.analysis.block import block_hooks, pass_fraction, read_block
from models.blocks import activate
from models.hooks import hook_name
from tests.helpers import MODEL_IDS, shipped_ready, tiny

FAMILIES = [
    ("encoder", {}),  # post-norm LayerNorm, ReLU
    ("decoder", {}),  # pre-norm RMSNorm, SwiGLU
    ("seq2seq", {}),  # post-norm LayerNorm, cross-attention
    ("encoder", {"activation": "gelu", "embed_norm": True}),  # BERT-like
    ("decoder", {"norm": "layernorm", "activation": "gelu_tanh"}),  # GPT-2-like, pre-norm
    ("decoder", {"activation": "silu", "norm_position": "post"}),
    ("decoder", {"norm": "none", "attn_only": True}),  # no norms, no FFN
]


def widen(model):
    """Gains and biases away from 1 and 0, so "up to the gain and bias" is tested."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif p.dim() == 1:
                p.normal_(0, 0.2)
            else:
                p.normal_(0, 0.3)
    return model


def run(model, stack: str, layer: int, T: int = 7):
    ids = torch.randint(3, model.config.vocab_size, (1, T))
    with capture(model, block_hooks(model, stack, layer)) as trace:
        if model.config.kind == "decoder":
            model.decode_states(ids)
        else:
            memory = model.encode(ids)
            if model.config.kind == "seq2seq":
                model.decode_states(torch.randint(3, 40, (1, 5)), memory)
    return trace, read_block(model, trace, stack, layer)


def ffn_input(model, trace, stack: str, layer: int) -> torch.Tensor:
    """What the FFN reads: its norm's output (pre-norm), else the stream after the last
    attention's Add & Norm."""
    if model.config.norm_position == "pre" and model.config.norm != "none":
        return trace[hook_name(stack, layer, "ffn_norm.out")][0]
    after = "resid_cross" if stack == "decoder" and model.config.kind == "seq2seq" else "resid_mid"
    return trace[hook_name(stack, layer, after)][0]


@torch.no_grad()
def reference_ffn(ffn, x: torch.Tensor, activation: str) -> torch.Tensor:
    """W_2 · act(W_1 · x) (+ biases), SwiGLU: W_2 · (silu(W_1 x) ⊙ W_3 x), written out."""
    x = x.double()
    w1, w2 = ffn.W_1.weight.double(), ffn.W_2.weight.double()
    h = x @ w1.T + (ffn.W_1.bias.double() if ffn.W_1.bias is not None else 0)
    if activation == "relu":
        h = torch.clamp(h, min=0)
    elif activation == "gelu":
        h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
    elif activation == "gelu_tanh":
        h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
    else:  # silu, and SwiGLU's gate
        h = h / (1 + torch.exp(-h))
    if activation == "swiglu":
        up = x @ ffn.W_3.weight.double().T + (
            ffn.W_3.bias.double() if ffn.W_3.bias is not None else 0
        )
        h = h * up
    return h @ w2.T + (ffn.W_2.bias.double() if ffn.W_2.bias is not None else 0)


@pytest.mark.parametrize(("kind", "overrides"), FAMILIES)
def test_normalized_vectors_are_standardised_up_to_gain_and_bias(kind, overrides):
    model = widen(tiny(kind, **overrides))
    for stack in model.config.stacks:
        for layer in range(model.config.depth(stack)):
            _, reading = run(model, stack, layer)
            if model.config.norm == "none":
                assert reading.norms == {}
            for name, n in reading.norms.items():
                x_hat = n.normalized
                if n.kind == "layernorm":
                    torch.testing.assert_close(
                        x_hat.mean(-1), torch.zeros_like(x_hat[:, 0]), atol=1e-9, rtol=0
                    )
                    var = n.stream.var(-1, unbiased=False)
                    # variance 1 up to eps: σ² / (σ² + eps)
                    torch.testing.assert_close(
                        x_hat.var(-1, unbiased=False), var / (var + n.eps), atol=1e-9, rtol=0
                    )
                    expected = F.layer_norm(n.stream, n.stream.shape[-1:], n.gain, n.bias, n.eps)
                    torch.testing.assert_close(
                        n.output, x_hat * n.gain + n.bias, atol=1e-12, rtol=0
                    )
                else:
                    ms = n.stream.pow(2).mean(-1)
                    torch.testing.assert_close(
                        x_hat.pow(2).mean(-1), ms / (ms + n.eps), atol=1e-9, rtol=0
                    )
                    expected = F.rms_norm(n.stream, n.stream.shape[-1:], n.gain, n.eps)
                    torch.testing.assert_close(n.output, x_hat * n.gain, atol=1e-12, rtol=0)
                torch.testing.assert_close(n.output, expected, atol=1e-9, rtol=0, msg=name)
                stats = n.stats()
                torch.testing.assert_close(stats["stream"].std, n.stream.std(-1, unbiased=False))


@pytest.mark.parametrize(("kind", "overrides"), FAMILIES)
def test_ffn_output_is_w2_act_w1_x_recomputed_from_the_weights(kind, overrides):
    model = widen(tiny(kind, **overrides))
    for stack in model.config.stacks:
        for layer in range(model.config.depth(stack)):
            trace, reading = run(model, stack, layer)
            if model.config.attn_only:
                assert reading.ffn is None
                continue
            f, ffn = reading.ffn, getattr(model, stack).blocks[layer].ffn
            x = ffn_input(model, trace, stack, layer)
            expected = reference_ffn(ffn, x, model.config.activation)
            assert (f.out.double() - expected).abs().max() <= 1e-5
            if f.gate is not None:
                torch.testing.assert_close(f.post, f.gate * f.up)
            else:
                torch.testing.assert_close(f.post, activate(f.pre, model.config.activation))
            # the share shut: act(x) = x · pass_fraction(x) at every unit
            frac = pass_fraction(f.pre, model.config.activation)
            gate = f.gate if f.gate is not None else f.post
            torch.testing.assert_close(gate.double(), f.pre.double() * frac, atol=1e-12, rtol=0)
            torch.testing.assert_close(f.zeroed, 1 - frac.mean(-1))
            w2 = ffn.W_2.weight.double()
            torch.testing.assert_close(f.unit_write, w2.pow(2).sum(0).sqrt())


def test_relu_zeroes_exactly_the_units_its_share_counts():
    model = widen(tiny("encoder", activation="relu"))
    _, reading = run(model, "encoder", 1)
    zeros = (reading.ffn.post == 0).double().mean(-1)
    torch.testing.assert_close(reading.ffn.zeroed, zeros)


def test_the_order_is_where_the_norms_sat_in_the_forward_pass():
    post = [(s.step, s.module) for s in run(tiny("encoder"), "encoder", 0)[1].order]
    assert post == [
        ("attention", "attn"),
        ("add", "attn"),
        ("norm", "attn_norm"),
        ("ffn", "ffn"),
        ("add", "ffn"),
        ("norm", "ffn_norm"),
    ]
    pre_model = tiny("decoder")
    pre = [(s.step, s.module) for s in run(pre_model, "decoder", 0)[1].order]
    assert pre == [
        ("norm", "attn_norm"),
        ("attention", "attn"),
        ("add", "attn"),
        ("norm", "ffn_norm"),
        ("ffn", "ffn"),
        ("add", "ffn"),
    ]
    last = [(s.step, s.module) for s in run(pre_model, "decoder", 1)[1].order]
    assert last[-1] == ("norm", "final_norm")
    bert = [
        (s.step, s.module) for s in run(tiny("encoder", embed_norm=True), "encoder", 0)[1].order
    ]
    assert bert[0] == ("norm", "embed_norm")
    cross = [(s.step, s.module) for s in run(tiny("seq2seq"), "decoder", 0)[1].order]
    assert cross[3:6] == [
        ("cross_attention", "cross_attn"),
        ("add", "cross_attn"),
        ("norm", "cross_norm"),
    ]
    bare = [
        (s.step, s.module)
        for s in run(tiny("decoder", norm="none", attn_only=True), "decoder", 0)[1].order
    ]
    assert bare == [("attention", "attn"), ("add", "attn")]


@pytest.mark.parametrize(("kind", "overrides"), FAMILIES[:3])
def test_the_residual_points_are_the_stream_after_each_sublayer(kind, overrides):
    model = widen(tiny(kind, **overrides))
    stack = model.config.stacks[-1]
    trace, reading = run(model, stack, 0)
    r = reading.residual
    subs = 3 if stack == "decoder" and kind == "seq2seq" else 2
    assert len(r.points) == 1 + subs * model.config.depth(stack)
    assert r.points[0] == (None, "embed") and r.points[-1] == (model.config.depth(stack) - 1, "ffn")
    last = trace[hook_name(stack, model.config.depth(stack) - 1, "resid_post")][0]
    torch.testing.assert_close(r.l2[-1], last.norm(dim=-1))
    ffn_out = trace[hook_name(stack, model.config.depth(stack) - 1, "ffn_out")][0]
    torch.testing.assert_close(r.added[-1], ffn_out.norm(dim=-1))
    if model.config.norm_position == "pre":  # the stream is the running sum of what was added
        before = trace[hook_name(stack, 0, "resid_pre")][0]
        attn = trace[hook_name(stack, 0, "attn_out")][0]
        torch.testing.assert_close(r.l2[1], (before + attn).norm(dim=-1))


# ---------------------------------------------------------------------------- the comparison
def test_the_three_normalisations_match_torch():
    x = torch.randn(6, 16, dtype=torch.float64) * 3 + 1
    others = [
        torch.randn(4, 16, dtype=torch.float64) * 2 - 1,
        torch.randn(9, 16, dtype=torch.float64),
    ]
    c = normalization.compare(x, others, eps=1e-5)
    torch.testing.assert_close(c.layernorm.output, F.layer_norm(x, (16,), eps=1e-5))
    torch.testing.assert_close(c.rmsnorm.output, F.rms_norm(x, (16,), eps=1e-5))
    tokens = torch.cat([x, *others])
    bn = torch.nn.BatchNorm1d(
        16, eps=1e-5, affine=False, momentum=None, dtype=torch.float64
    ).train()
    torch.testing.assert_close(c.batchnorm_batch.output, bn(tokens)[: len(x)])
    torch.testing.assert_close(
        c.batchnorm_batch.mean, bn.running_mean
    )  # momentum None: the batch's
    torch.testing.assert_close(c.batchnorm_batch.std, tokens.std(0, unbiased=False))
    torch.testing.assert_close(c.batchnorm_alone.output, bn.train()(x))
    assert (c.batchnorm_batch.n_tokens, c.batchnorm_batch.n_sentences) == (19, 3)


def test_batchnorm_depends_on_the_batch_and_layernorm_does_not():
    x = torch.randn(6, 16, dtype=torch.float64)
    a = normalization.compare(x, [torch.randn(5, 16, dtype=torch.float64) + 2], eps=1e-5)
    b = normalization.compare(x, [torch.randn(7, 16, dtype=torch.float64) * 4], eps=1e-5)
    assert (a.batchnorm_batch.mean - b.batchnorm_batch.mean).abs().max() > 0.1
    assert (a.batchnorm_batch.output - b.batchnorm_batch.output).abs().max() > 0.1
    torch.testing.assert_close(a.batchnorm_alone.output, b.batchnorm_alone.output, rtol=0, atol=0)
    for name in ("layernorm", "rmsnorm"):
        pa, pb = getattr(a, name), getattr(b, name)
        torch.testing.assert_close(pa.output, pb.output, rtol=0, atol=0)
        torch.testing.assert_close(pa.stats.std, pb.stats.std, rtol=0, atol=0)


# ---------------------------------------------------------------------------- shipped weights
@pytest.mark.skipif(not shipped_ready(), reason="the shipped checkpoints are not in checkpoints/")
@pytest.mark.parametrize("model_id", [m for m in MODEL_IDS if m != "induction-2l"])
def test_shipped_ffns_recompute_from_their_weights(model_id):
    ckpt = load_checkpoint(ROOT / "checkpoints" / model_id)
    model = ckpt.model
    ids = torch.tensor([ckpt.tokenizer.encode("the black cat ate the mouse").ids])
    for stack in model.config.stacks:
        for layer in range(model.config.depth(stack)):
            with capture(model, block_hooks(model, stack, layer)) as trace:
                if model.config.kind == "decoder":
                    model.decode_states(ids)
                else:
                    memory = model.encode(ids)
                    if stack == "decoder":
                        model.decode_states(torch.tensor([[model.config.bos_id, 5, 6, 7]]), memory)
            reading = read_block(model, trace, stack, layer)
            x = ffn_input(model, trace, stack, layer)
            ffn = getattr(model, stack).blocks[layer].ffn
            expected = reference_ffn(ffn, x, model.config.activation)
            assert (reading.ffn.out.double() - expected).abs().max() <= 1e-5, (stack, layer)
