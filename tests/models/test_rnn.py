"""The RNN translator (models/rnn.py): its math against references written apart from it,
its attention, decoding with the cache, autograd's gradient norms, and checkpoints."""

import json

import pytest
import torch
import torch.nn.functional as F

from models import capture, hook_names, load_checkpoint, save_checkpoint
from models.generate import Sampling, generate
from models.hooks import hook_name
from models.rnn import RNNConfig, RNNSeq2Seq, encoder_state_gradients
from models.transformer import count_parameters
from tests.models.rnn_reference import (
    reference_decode,
    run_torch_cell,
    textbook_encoder,
    torch_cell,
    torch_encoder,
)

CELLS = ["lstm", "gru", "tanh"]
GATES = {"lstm": ["i", "f", "g", "o", "c"], "gru": ["r", "z", "n"], "tanh": []}
TOL = dict(atol=1e-5, rtol=0)  # float32, as shipped


def cross(hook: str) -> str:
    """The transformer's name for a hook of layer 0's cross-attention."""
    return hook_name("decoder.cross", 0, hook)


def tiny_rnn(cell: str = "lstm") -> RNNSeq2Seq:
    cfg = RNNConfig(
        vocab_size=40, cell=cell, d_embed=6, d_model=8, d_attn=5, max_len=32, bos_id=1, eos_id=2
    )
    return RNNSeq2Seq(cfg).eval()


def padded_batch():
    """Two sources, the second right-padded after 4 tokens."""
    ids = torch.randint(3, 40, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    return ids.masked_fill(~mask, 0), mask


@pytest.mark.parametrize("cell", CELLS)
def test_captured_states_and_gates_equal_a_hand_unrolled_recurrence(cell):
    model = tiny_rnn(cell)
    ids, mask = padded_batch()
    with capture(model, names=["encoder.cell.*"]) as trace:
        model.encode(ids, mask)
    expected = textbook_encoder(model, ids, mask)
    assert set(expected) == {"h", *GATES[cell]}
    for name, value in expected.items():
        got = trace[f"encoder.cell.hook_{name}"]
        assert got.shape == (2, 7, 8)
        if name in ("h", "c"):
            torch.testing.assert_close(got, value, **TOL)
        else:  # a gate at a padding step is computed but not used: compare real steps
            torch.testing.assert_close(got[mask], value[mask], **TOL)
    # the recurrence really is sequential: the input projections are W_x x_t + b_x
    wx = model.encoder.cell.W_x(model.embed(ids))
    torch.testing.assert_close(trace["encoder.cell.hook_wx"], wx, **TOL)


@pytest.mark.parametrize("cell", CELLS)
def test_encoder_states_equal_torchs_own_cell_with_the_same_weights(cell):
    model = tiny_rnn(cell)
    ids, mask = padded_batch()
    memory = model.encode(ids, mask)
    torch.testing.assert_close(memory, torch_encoder(model, ids, mask), **TOL)
    # padding carries the last real state over: the last column is each sentence's final state
    torch.testing.assert_close(memory[1, -1], memory[1, 3], atol=0, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_decoder_logits_alignment_and_states_equal_bahdanaus_equations(cell):
    model = tiny_rnn(cell)
    ids, mask = padded_batch()
    target = torch.randint(3, 40, (2, 5))
    names = [cross(n) for n in ("scores", "pattern", "mask")]
    with capture(model, names=[*names, "decoder.blocks.0.cell.hook_h"]) as trace:
        logits = model(ids, mask, target)
    ref = reference_decode(model, torch_encoder(model, ids, mask), target, mask)
    torch.testing.assert_close(logits, ref["logits"], **TOL)
    torch.testing.assert_close(trace["decoder.blocks.0.cell.hook_h"], ref["states"], **TOL)
    torch.testing.assert_close(trace[cross("scores")][:, 0], ref["scores"], **TOL)
    torch.testing.assert_close(trace[cross("pattern")][:, 0], ref["alignment"], **TOL)


def test_alignment_rows_sum_to_one_and_padding_gets_nothing():
    model = tiny_rnn()
    ids, mask = padded_batch()
    names = [cross("pattern"), cross("mask")]
    with capture(model, names=names) as trace:
        model(ids, mask, torch.randint(3, 40, (2, 6)))
    pattern, attend = trace[names[0]], trace[names[1]]
    assert pattern.shape == (2, 1, 6, 7) and attend.shape == (2, 6, 7)  # (B, H=1, Tq, Tk)
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 1, 6))
    assert torch.equal(attend, mask[:, None, :].expand(2, 6, 7))
    assert torch.all(pattern[1, 0, :, 4:] == 0) and torch.all(pattern[1, 0, :, :4] > 0)


def test_one_layer_one_head_at_the_transformers_cross_attention_names():
    model = tiny_rnn()
    names = set(hook_names(model))
    assert {cross(n) for n in ("scores", "mask", "pattern")} <= names
    assert not any(n.startswith("encoder.blocks") or ".attn." in n for n in names)
    cfg = model.config
    assert cfg.kind == "seq2seq" and cfg.sites == {"decoder.cross": 1}
    assert cfg.stacks == ("encoder", "decoder") and cfg.depth("decoder") == 1
    assert cfg.n_heads == 1 and cfg.d_head * cfg.n_heads == cfg.d_model


def test_hooks_recorded_after_the_loop_refuse_edits_and_states_take_them():
    model = tiny_rnn()
    for name in ("encoder.cell.hook_f", "encoder.cell.hook_wh", cross("q"), cross("pattern")):
        with pytest.raises(ValueError, match="only report"), capture(model, edits={name: abs}):
            pass
    ids, target = torch.randint(3, 40, (1, 5)), torch.randint(3, 40, (1, 4))
    clean = model(ids, target_ids=target)
    with capture(model, names=[], edits={"encoder.cell.hook_h": torch.zeros_like}):
        edited = model(ids, target_ids=target)
    # an all-zero memory: uniform attention, and the decoder starts from tanh(b_init)
    assert not torch.allclose(clean, edited)
    with capture(
        model, names=[cross("pattern")], edits={"encoder.cell.hook_h": torch.zeros_like}
    ) as t:
        model(ids, target_ids=target)
    torch.testing.assert_close(t[cross("pattern")], torch.full((1, 1, 4, 5), 0.2))


@pytest.mark.parametrize("cell", CELLS)
def test_cached_steps_equal_a_full_teacher_forced_recompute(cell):
    model = tiny_rnn(cell)
    memory = model.encode(torch.randint(3, 40, (1, 7)))
    tokens = torch.randint(3, 40, (1, 10))
    full = model.decode(tokens, memory)
    cache = model.new_cache()
    stepped = [model.decode(tokens[:, :4], memory, cache=cache)]  # prefill, then one at a time
    stepped += [model.decode(tokens[:, t : t + 1], memory, cache=cache) for t in range(4, 10)]
    torch.testing.assert_close(torch.cat(stepped, dim=1), full, atol=1e-6, rtol=0)
    assert cache.length == 10


def test_greedy_generation_equals_the_teacher_forced_argmax_and_alignment():
    model = tiny_rnn()
    src = [5, 9, 11, 4, 2]
    steps = list(generate(model, src, Sampling(max_new_tokens=8)))
    assert all(set(s.attention) == {"decoder.cross"} for s in steps)
    target = torch.tensor([[1] + [s.token_id for s in steps[:-1]]])
    with capture(model, names=[cross("pattern")]) as trace:
        logits = model.decode(target, model.encode(torch.tensor([src])))
    assert logits[0].argmax(-1).tolist() == [s.token_id for s in steps]
    for t, step in enumerate(steps):
        assert step.attention["decoder.cross"].shape == (1, 1, len(src))  # (L, H, S)
        row = trace[cross("pattern")][0, :, t]
        torch.testing.assert_close(step.attention["decoder.cross"][0], row, atol=1e-6, rtol=0)


def test_decoding_past_max_len_is_refused():
    model = tiny_rnn()
    memory = model.encode(torch.randint(3, 40, (1, 3)))
    with pytest.raises(ValueError, match="max_len"):
        model.decode(torch.randint(3, 40, (1, 33)), memory)


def _finite_difference_norms(model, src, tgt, through, eps=1e-6):
    """‖∂loss/∂h_t‖ by central differences: h_t is nudged inside a hand-unrolled encoder
    (torch's cell); with through="recurrence" the attention keeps reading the unnudged
    states (its keys and values replaced by the clean ones)."""
    model = model.double()
    ids, target = torch.tensor([src]), torch.tensor([tgt])
    clean = torch_encoder(model, ids)
    with capture(model, names=[cross("k"), cross("v")]) as trace:
        model.decode(target[:, :-1], clean)
    keep_clean = {
        cross("k"): lambda _: trace[cross("k")],
        cross("v"): lambda _: trace[cross("v")],
    }
    ref = torch_cell(model.encoder.cell, model.config.cell)
    x = model.tok_embed.weight[ids]

    def loss(t: int, delta: torch.Tensor) -> float:
        h = c = x.new_zeros(1, model.config.d_model)
        states = []
        for k in range(len(src)):
            h, c_new = run_torch_cell(ref, x[:, k], (h, c))
            c = c_new if c_new is not None else c
            if k == t:
                h = h + delta
            states.append(h)
        with capture(model, names=[], edits=keep_clean if through == "recurrence" else {}):
            logits = model.decode(target[:, :-1], torch.stack(states, dim=1))
        return float(F.cross_entropy(logits[0], target[0, 1:]))

    norms = []
    with torch.no_grad():
        for t in range(len(src)):
            grad = torch.zeros(model.config.d_model, dtype=torch.float64)
            for j in range(model.config.d_model):
                e = torch.zeros(1, model.config.d_model, dtype=torch.float64)
                e[0, j] = eps
                grad[j] = (loss(t, e) - loss(t, -e)) / (2 * eps)
            norms.append(grad.norm())
    return torch.stack(norms)


@pytest.mark.parametrize("cell", ["lstm", "tanh"])
@pytest.mark.parametrize("through", ["all", "recurrence"])
def test_state_gradient_norms_from_autograd_match_finite_differences(cell, through):
    model = tiny_rnn(cell).double()
    src, tgt = [5, 9, 11, 4, 2], [1, 7, 8, 2]
    norms = encoder_state_gradients(model, src, tgt, through=through)
    assert norms.shape == (5,)
    expected = _finite_difference_norms(model, src, tgt, through)
    torch.testing.assert_close(norms, expected, atol=1e-7, rtol=1e-5)


def test_an_unknown_gradient_path_is_refused():
    with pytest.raises(ValueError, match="through"):
        encoder_state_gradients(tiny_rnn(), [5, 2], [1, 2], through="attention")


def test_parameter_parts_add_up_with_the_textbook_sizes():
    model = tiny_rnn("lstm")
    parts = count_parameters(model)
    assert parts["total"] == sum(p.numel() for p in model.parameters())
    assert parts["total"] == sum(v for k, v in parts.items() if k != "total")
    E, d, A, V = 6, 8, 5, 40
    assert parts["encoder"] == 4 * (E * d + d) + 4 * (d * d + d)  # W_x, b_x, W_h, b_h
    assert parts["attention"] == d * A + d * A + A  # W_a, U_a, v
    assert parts["decoder"] == 4 * ((E + d) * d + d) + 4 * (d * d + d)  # its cell alone
    assert parts["decoder_init"] == d * d + d  # s_0 = tanh(W_init h_S + b)
    assert parts["readout"] == (2 * d + E) * d + d and parts["lm_head"] == d * V + V


def test_config_round_trip_and_refusals():
    cfg = tiny_rnn("gru").config
    assert RNNConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="cell"):
        RNNConfig(vocab_size=10, cell="elman")
    with pytest.raises(ValueError, match="unknown config fields"):
        RNNConfig.from_dict({**cfg.to_dict(), "n_heads": 2})


@pytest.mark.parametrize("cell", CELLS)
def test_save_and_load_round_trip_through_safetensors(cell, tmp_path):
    model = tiny_rnn(cell)
    save_checkpoint(tmp_path, model, card={"metrics": {"exact_match_heldout": 0.5}})
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architecture"] == "rnn" and config["cell"] == cell
    raw = (tmp_path / "model.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert "encoder.cell.W_h.weight" in header
    ckpt = load_checkpoint(tmp_path)
    assert isinstance(ckpt.model, RNNSeq2Seq) and ckpt.config == model.config
    src, tgt = torch.randint(3, 40, (1, 6)), torch.randint(3, 40, (1, 4))
    assert torch.equal(ckpt.model(src, target_ids=tgt), model(src, target_ids=tgt))
    assert not ckpt.model.training


def test_an_unknown_architecture_is_refused(tmp_path):
    save_checkpoint(tmp_path, tiny_rnn())
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "architecture": "mamba"}))
    with pytest.raises(ValueError, match="architecture"):
        load_checkpoint(tmp_path)
