"""Our explicit attention math against PyTorch's own implementations, weights copied across."""

import pytest
import torch
import torch.nn.functional as torch_f
from torch import nn

from models import ModelConfig
from models.attention import MultiHeadAttention, scaled_dot_product
from models.blocks import TransformerBlock
from models.hooks import capture, name_hook_points

D, H, F = 32, 4, 64
TOL = dict(atol=1e-5, rtol=1e-5)


def copy_mha(ours: MultiHeadAttention, ref: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias]))
        ref.out_proj.weight.copy_(ours.W_o.weight)
        ref.out_proj.bias.copy_(ours.W_o.bias)


def randomise(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)


@pytest.mark.parametrize("cross", [False, True])
def test_per_head_weights_and_output_match_nn_multihead_attention(cross):
    ours = MultiHeadAttention(D, H, cross=cross).double()
    randomise(ours)
    ref = nn.MultiheadAttention(D, H, batch_first=True, dtype=torch.float64)
    copy_mha(ours, ref)
    B, Tq, Tk = 3, 5, 7 if cross else 5
    x = torch.randn(B, Tq, D, dtype=torch.float64)
    ctx = torch.randn(B, Tk, D, dtype=torch.float64) if cross else x
    key_ok = torch.ones(B, Tk, dtype=torch.bool)
    key_ok[1, -2:] = False  # padding in the second sequence
    mask = key_ok[:, None, :].expand(B, Tq, Tk)
    if not cross:
        mask = mask & torch.ones(Tq, Tk, dtype=torch.bool).tril()

    name_hook_points(ours)  # a lone module: its hook is simply "hook_pattern"
    with capture(ours, names=["hook_pattern"]) as trace:
        out = ours(x, context=ctx if cross else None, mask=mask)
    ref_out, ref_w = ref(
        x,
        ctx,
        ctx,
        attn_mask=~mask.repeat_interleave(H, 0),
        need_weights=True,
        average_attn_weights=False,
    )
    torch.testing.assert_close(trace["hook_pattern"], ref_w, **TOL)
    torch.testing.assert_close(out, ref_out, **TOL)


def block_cfg(**kw) -> ModelConfig:
    return ModelConfig(
        kind="seq2seq",
        vocab_size=10,
        d_model=D,
        n_heads=H,
        d_ff=F,
        norm="layernorm",
        norm_position="post",
        activation="relu",
        **kw,
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_equals_transformer_encoder_layer(norm_first):
    cfg = block_cfg()
    cfg.norm_position = "pre" if norm_first else "post"
    ours = TransformerBlock(cfg).double()
    randomise(ours)
    ref = nn.TransformerEncoderLayer(
        D, H, F, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=torch.float64
    )
    copy_mha(ours.attn, ref.self_attn)
    with torch.no_grad():
        ref.linear1.load_state_dict(ours.ffn.W_1.state_dict())
        ref.linear2.load_state_dict(ours.ffn.W_2.state_dict())
        ref.norm1.load_state_dict(ours.attn_norm.state_dict())
        ref.norm2.load_state_dict(ours.ffn_norm.state_dict())
    ref.train()  # the math path (the eval fast path drops padded rows); dropout is 0
    x = torch.randn(2, 6, D, dtype=torch.float64)
    key_ok = torch.tensor([[1] * 6, [1] * 4 + [0] * 2], dtype=torch.bool)
    out = ours(x, self_mask=key_ok[:, None, :].expand(2, 6, 6))
    torch.testing.assert_close(out, ref(x, src_key_padding_mask=~key_ok), **TOL)


def test_decoder_block_with_cross_attention_equals_transformer_decoder_layer():
    ours = TransformerBlock(block_cfg(), cross=True).double()
    randomise(ours)
    ref = nn.TransformerDecoderLayer(D, H, F, dropout=0.0, batch_first=True, dtype=torch.float64)
    copy_mha(ours.attn, ref.self_attn)
    copy_mha(ours.cross_attn, ref.multihead_attn)
    with torch.no_grad():
        ref.linear1.load_state_dict(ours.ffn.W_1.state_dict())
        ref.linear2.load_state_dict(ours.ffn.W_2.state_dict())
        ref.norm1.load_state_dict(ours.attn_norm.state_dict())
        ref.norm2.load_state_dict(ours.cross_norm.state_dict())
        ref.norm3.load_state_dict(ours.ffn_norm.state_dict())
    ref.train()
    T, S = 5, 7
    tgt = torch.randn(2, T, D, dtype=torch.float64)
    mem = torch.randn(2, S, D, dtype=torch.float64)
    mem_ok = torch.tensor([[1] * S, [1] * 5 + [0] * 2], dtype=torch.bool)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    out = ours(
        tgt,
        self_mask=causal.expand(2, T, T),
        memory=mem,
        memory_mask=mem_ok[:, None, :].expand(2, T, S),
    )
    expected = ref(tgt, mem, tgt_mask=~causal, memory_key_padding_mask=~mem_ok)
    torch.testing.assert_close(out, expected, **TOL)


def test_scaled_dot_product_is_the_formula():
    B, Hq, T, d = 2, 4, 5, 8
    q, k, v = (torch.randn(B, Hq, T, d, dtype=torch.float64) for _ in range(3))
    mask = torch.ones(B, T, T, dtype=torch.bool).tril()
    scores, pattern, z = scaled_dot_product(q, k, v, mask)
    expected_scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / d**0.5
    torch.testing.assert_close(scores, expected_scores, **TOL)
    weights = torch.exp(expected_scores.masked_fill(~mask[:, None], float("-inf")))
    weights = weights / weights.sum(-1, keepdim=True)
    torch.testing.assert_close(pattern, weights, **TOL)
    torch.testing.assert_close(z, torch.einsum("bhqk,bhkd->bhqd", weights, v), **TOL)


def test_grouped_query_attention_shares_each_kv_head_with_its_group():
    """n_kv_heads = 2 for 4 query heads: heads 0, 1 read K/V head 0 and heads 2, 3 read head 1
    (the layout of Hugging Face's repeat_kv), checked against PyTorch's own GQA."""
    ours = MultiHeadAttention(D, H, n_kv_heads=2).double()
    randomise(ours)
    assert ours.W_k.weight.shape == (2 * D // H, D)
    x = torch.randn(2, 6, D, dtype=torch.float64)
    mask = torch.ones(2, 6, 6, dtype=torch.bool).tril()
    name_hook_points(ours)
    with capture(ours, names=["hook_q", "hook_k", "hook_v", "hook_z"]) as trace:
        ours(x, mask=mask)
    q, k, v = trace["hook_q"], trace["hook_k"], trace["hook_v"]
    assert k.shape == (2, 2, 6, D // H)
    ref = torch_f.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None], enable_gqa=True)
    torch.testing.assert_close(trace["hook_z"], ref, **TOL)
