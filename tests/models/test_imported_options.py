"""The ModelConfig options that imported families need, checked against their formulas
(written here independently of models/) and for the bookkeeping around them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from models import ModelConfig, build_model, capture, load_checkpoint, save_checkpoint
from models.positional import apply_rope, rope_angles, sinusoidal_table
from models.transformer import count_parameters


def tiny(kind: str, **options) -> torch.nn.Module:
    """A small random model in float64 (d_model 32, 2 layers of 4 heads, 40 tokens)."""
    sizes = dict(vocab_size=40, d_model=32, n_heads=4, n_layers=2, d_ff=64, max_len=64)
    return build_model(ModelConfig(kind=kind, **sizes, **options)).double().eval()


def test_rope_halves_is_hugging_face_rotate_half():
    """HF Llama: q·cos + rotate_half(q)·sin, with cos/sin repeated over both halves."""
    x = torch.randn(2, 4, 7, 8, dtype=torch.float64)
    angles = rope_angles(torch.arange(7), 8).double()
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
    x1, x2 = x[..., :4], x[..., 4:]
    expected = x * cos + torch.cat((-x2, x1), -1) * sin
    torch.testing.assert_close(apply_rope(x, angles, "halves"), expected)


def test_rope_halves_is_the_interleaved_rotation_with_dimensions_permuted():
    x = torch.randn(5, 8, dtype=torch.float64)
    angles = rope_angles(torch.arange(5), 8).double()
    halves_to_pairs = torch.tensor([0, 4, 1, 5, 2, 6, 3, 7])  # (i, i + 4) -> (2i, 2i + 1)
    torch.testing.assert_close(
        apply_rope(x, angles, "halves")[:, halves_to_pairs],
        apply_rope(x[:, halves_to_pairs], angles),
    )


def test_sinusoid_halves_is_marians_table():
    d, n = 16, 30
    table = sinusoidal_table(n, d, layout="halves")
    for pos in (0, 1, 29):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert math.isclose(table[pos, i], math.sin(angle), abs_tol=1e-6)
            assert math.isclose(table[pos, d // 2 + i], math.cos(angle), abs_tol=1e-6)


@pytest.mark.parametrize(
    ("activation", "reference"),
    [
        (
            "gelu_tanh",
            lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        ),
        ("silu", lambda x: x * torch.sigmoid(x)),
        ("gelu", lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))),
    ],
)
def test_ffn_activations_are_their_formulas(activation, reference):
    model = tiny("decoder", activation=activation, norm_position="pre")
    ffn = model.decoder.blocks[0].ffn
    x = torch.randn(1, 3, 32, dtype=torch.float64)
    torch.testing.assert_close(ffn(x), ffn.W_2(reference(ffn.W_1(x))))


def test_qkv_bias_without_output_bias():
    model = tiny("decoder", bias=False, qkv_bias=True, positional="rope")
    attn = model.decoder.blocks[0].attn
    assert all(getattr(attn, w).bias is not None for w in ("W_q", "W_k", "W_v"))
    assert attn.W_o.bias is None and model.decoder.blocks[0].ffn.W_1.bias is None


def test_unknown_option_values_are_refused():
    with pytest.raises(ValueError, match="activation='gelu_new'"):
        ModelConfig(kind="decoder", vocab_size=10, activation="gelu_new")
    with pytest.raises(ValueError, match="pair_layout"):
        ModelConfig(kind="encoder", vocab_size=10, positional="learned", pair_layout="halves")
    with pytest.raises(ValueError, match="token-type"):
        ModelConfig(kind="decoder", vocab_size=10, type_vocab_size=2)


def bert_like(**overrides):
    return tiny(
        "encoder",
        type_vocab_size=2,
        embed_norm=True,
        mlm_transform=True,
        tie_embeddings=True,
        activation="gelu",
        **overrides,
    )


def test_token_types_add_their_vector_and_the_embedding_norm_normalises():
    model = bert_like()
    ids = torch.tensor([[3, 4, 5]])
    types = torch.tensor([[0, 1, 1]])
    with torch.no_grad():
        x = model.embed(ids) + model.encoder.pos.table.weight[:3] + model.encoder.type_embed(types)
        expected = torch.nn.functional.layer_norm(
            x, (32,), model.encoder.embed_norm.weight, model.encoder.embed_norm.bias, 1e-5
        )
        with capture(model, names=["encoder.blocks.0.hook_resid_pre"]) as trace:
            model.encode(ids, token_types=types)
    torch.testing.assert_close(trace["encoder.blocks.0.hook_resid_pre"], expected)


def test_tied_head_is_one_matrix_in_memory_and_on_disk(tmp_path):
    model = bert_like()
    assert model.lm_head.weight is model.tok_embed.weight
    save_checkpoint(tmp_path, model)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        stored = set(f.keys())  # noqa: SIM118 - safe_open is not a mapping
    assert "lm_head.weight" not in stored and "tok_embed.weight" in stored
    loaded = load_checkpoint(tmp_path).model.double()
    assert loaded.lm_head.weight is loaded.tok_embed.weight
    ids = torch.tensor([[3, 4, 5, 6]])
    torch.testing.assert_close(loaded(ids), model(ids))


def test_parameter_parts_classify_the_new_parameters():
    model = bert_like()
    parts = count_parameters(model)
    d, v, t = 32, 40, 64  # d_model, vocabulary, max_len
    assert parts["total"] == sum(p.numel() for p in model.parameters())
    assert parts["embeddings"] == v * d + t * d + 2 * d  # tokens, positions, 2 token types
    assert parts["lm_head"] == (d * d + d) + 2 * d + v  # transform dense, its norm, the bias
    assert parts["norms"] == 2 * 2 * 2 * d + 2 * d  # two per layer + the embedding norm


def test_a_bare_encoder_and_a_bias_free_head():
    assert build_model(ModelConfig(kind="encoder", vocab_size=10, lm_head=False)).lm_head is None
    head = tiny("decoder", lm_head_bias=False).lm_head
    assert head.bias is None


def test_shipped_configs_need_none_of_the_new_options():
    shipped = sorted((Path(__file__).parents[2] / "checkpoints").glob("*/config.json"))
    assert shipped
    for path in shipped:
        data = json.loads(path.read_text())
        if data.get("architecture") == "rnn":  # the RNN translators have none of these options
            continue
        cfg = ModelConfig.from_dict(data)
        assert cfg.pair_layout == "interleaved" and cfg.lm_head and not cfg.tie_embeddings
        assert cfg.type_vocab_size == 0 and not cfg.embed_norm and not cfg.mlm_transform
