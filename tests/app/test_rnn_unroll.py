"""POST /api/v1/rnn/unroll: the recurrence through the API, checked against references written
apart from the app (tests/models/rnn_reference.py) on the served checkpoints' own weights, and
the gradient norms against autograd run outside the server."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.errors import ApiError
from app.inputs import Inputs
from app.registry import Registry
from app.serialize import decode_f16
from models import RNNConfig, RNNSeq2Seq, load_checkpoint, save_checkpoint
from models.rnn import encoder_state_gradients
from tests.helpers import SENTENCES, make_settings, shared_bpe
from tests.models.rnn_reference import reference_decode, textbook_encoder

API = "/api/v1"
SENTENCE = "the black cat ate the mouse"
GATES = {"lstm": {"i", "f", "g", "o", "c"}, "gru": {"r", "z", "n"}, "tanh": set()}
CHUNKS = {"lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"], "tanh": ["h"]}


@pytest.fixture(scope="module")
def rnns(infos) -> dict[str, dict]:
    """id -> ModelInfo of every RNN served."""
    found = {i: m for i, m in infos.items() if m["architecture"] == "rnn"}
    if not found:
        pytest.skip("no RNN checkpoint in this checkpoint folder")
    return found


@pytest.fixture(scope="module")
def weights(checkpoint_dir, rnns) -> dict[str, RNNSeq2Seq]:
    """The same checkpoints, loaded here apart from the server."""
    return {i: load_checkpoint(checkpoint_dir / i).model for i in rnns}


def unroll(client, **body) -> dict:
    r = client.post(f"{API}/rnn/unroll", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def arrays(obj):
    """An answer's tensors (f16 / f32 objects or nested lists) as numpy arrays."""
    if isinstance(obj, dict) and "dtype" in obj:
        return decode_f16(obj)
    if isinstance(obj, dict):
        return {k: arrays(v) for k, v in obj.items()}
    if isinstance(obj, list) and obj and isinstance(obj[0], (list, float, int)):
        return np.array(obj, dtype=np.float32)
    return obj


def test_the_answer_has_every_step_of_both_stacks(client, rnns):
    for model_id, info in rnns.items():
        out = unroll(client, model=model_id, text=SENTENCE)
        cell, d = info["cell"], info["d_model"]
        S, T = len(out["tokens"]["source"]), len(out["tokens"]["target"])
        assert out["cell"] == cell and out["chunks"] == CHUNKS[cell]
        assert out["tokens"]["target"][0]["text"] == "<s>"  # the greedy translation, <s> first
        K = len(out["chunks"])
        for stack, n in (("encoder", S), ("decoder", T)):
            steps = arrays(out[stack])
            assert steps["h"].shape == (n, d)
            assert steps["wx"].shape == steps["wh"].shape == (n, K, d)
            assert set(steps["gates"]) == GATES[cell]
            assert all(g.shape == (n, d) for g in steps["gates"].values())
        assert np.array(out["decoder"]["s0"]).shape == (d,)
        assert np.array(out["decoder"]["context"]).shape == (T, d)
        alignment = np.array(out["alignment"])
        assert alignment.shape == (T, S)
        np.testing.assert_allclose(alignment.sum(-1), 1.0, atol=2e-3)
        assert len(out["gradients"]["all"]) == len(out["gradients"]["recurrence"]) == S
        assert all(g > 0 for g in out["gradients"]["recurrence"])
        assert out["compare"] is None


def test_f16_carries_the_json_numbers(client, rnns):
    model_id = next(iter(rnns))
    raw_j = unroll(client, model=model_id, text=SENTENCE)
    raw_f = unroll(client, model=model_id, text=SENTENCE, format="f16")
    assert raw_f["gradients"] == raw_j["gradients"]  # never rounded
    j, f = arrays(raw_j), arrays(raw_f)
    for part in ("h", "wx", "wh"):
        np.testing.assert_allclose(f["encoder"][part], j["encoder"][part], atol=5e-3, rtol=2e-3)
    np.testing.assert_allclose(f["alignment"], j["alignment"], atol=1e-3)


@pytest.mark.parametrize("text", [SENTENCE, "i went to the store"])
def test_captured_states_equal_a_hand_unrolled_recurrence_of_the_weights(
    client, rnns, weights, text
):
    """Encoder: the lecture notes' equations on slices of the weights; decoder: Bahdanau's
    equations with torch's own cell; both to 1e-5 through the API (format f32)."""
    for model_id in rnns:
        out = unroll(client, model=model_id, text=text, format="f32")
        model = weights[model_id]
        src = torch.tensor([[t["id"] for t in out["tokens"]["source"]]])
        tgt = torch.tensor([[t["id"] for t in out["tokens"]["target"]]])
        with torch.no_grad():
            enc = textbook_encoder(model, src)
            dec = reference_decode(model, enc["h"], tgt)
        got = arrays(out)
        for name, value in enc.items():
            where = got["encoder"]["h"] if name == "h" else got["encoder"]["gates"][name]
            np.testing.assert_allclose(where, value[0].numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(got["decoder"]["h"], dec["states"][0].numpy(), atol=1e-5, rtol=0)
        np.testing.assert_allclose(got["alignment"], dec["alignment"][0].numpy(), atol=1e-5, rtol=0)
        # W_x x_t + b_x, cut in the chunks the answer names: the input projection of each step
        cell = model.encoder.cell
        wx = (model.tok_embed.weight[src[0]] @ cell.W_x.weight.T + cell.W_x.bias).detach()
        np.testing.assert_allclose(
            got["encoder"]["wx"], wx.reshape(len(src[0]), -1, cell.d).numpy(), atol=1e-5, rtol=0
        )
        # and W_h h_{t-1} + b_h, from the previous captured state (h_0 = 0)
        h_prev = np.vstack([np.zeros((1, cell.d)), got["encoder"]["h"][:-1]])
        wh = h_prev @ cell.W_h.weight.detach().numpy().T + cell.W_h.bias.detach().numpy()
        np.testing.assert_allclose(
            got["encoder"]["wh"], wh.reshape(got["encoder"]["wh"].shape), atol=1e-5, rtol=0
        )


def test_each_chunk_feeds_the_gate_it_is_named_after(client, rnns):
    """h = tanh(wx_h + wh_h) for the plain RNN; σ(wx_g + wh_g) for the LSTM's sigmoid gates."""
    for model_id, info in rnns.items():
        got = arrays(unroll(client, model=model_id, text=SENTENCE, format="f32"))["encoder"]
        pre = {c: got["wx"][:, k] + got["wh"][:, k] for k, c in enumerate(CHUNKS[info["cell"]])}
        if info["cell"] == "tanh":
            np.testing.assert_allclose(got["h"], np.tanh(pre["h"]), atol=1e-5)
        elif info["cell"] == "lstm":
            for gate in ("i", "f", "o"):
                np.testing.assert_allclose(
                    got["gates"][gate], 1 / (1 + np.exp(-pre[gate])), atol=1e-5
                )
            np.testing.assert_allclose(got["gates"]["g"], np.tanh(pre["g"]), atol=1e-5)


def test_gradient_norms_are_autograds_on_the_same_pair(client, rnns, weights):
    """The server computes them on an engine worker (under inference mode, switched off for
    the backward pass): they equal encoder_state_gradients run here, for both models."""
    ids = list(rnns)
    model_id, other = ids[0], ids[-1]
    out = unroll(client, model=model_id, text=SENTENCE, target="le chat noir", compare=other)
    src = [t["id"] for t in out["tokens"]["source"]]
    tgt = [t["id"] for t in out["tokens"]["target"]] + [weights[model_id].config.eos_id]
    for name, answer in ((model_id, out["gradients"]), (other, out["compare"]["gradients"])):
        for through in ("all", "recurrence"):
            expected = encoder_state_gradients(weights[name], src, tgt, through=through)
            np.testing.assert_allclose(answer[through], expected.numpy(), rtol=1e-5, atol=0)
    assert out["compare"]["model"] == other and out["compare"]["cell"] == rnns[other]["cell"]


def test_the_plain_rnns_gradient_vanishes_on_the_cards_sentence(client, rnns):
    """The 20-token sentence the card names: ‖∂loss/∂h_1‖ / ‖∂loss/∂h_20‖ along the recurrence
    is below 0.1 for the plain tanh RNN (its card: 1.1e-4), and the same as the card says."""
    tanh = [i for i, m in rnns.items() if m["cell"] == "tanh"]
    gated = [i for i, m in rnns.items() if m["cell"] != "tanh"]
    if not tanh or not gated:
        pytest.skip("needs a plain tanh RNN and a gated one")
    card = client.get(f"{API}/models/{tanh[0]}").json()["card"]
    measured = card.get("metrics", {}).get("encoder_state_gradients")
    if measured is None:
        pytest.skip(f"{tanh[0]} has no measured gradients in its card (random test weights)")
    out = unroll(
        client,
        model=gated[0],
        text=measured["source"],
        target=measured["target"],
        compare=tanh[0],
    )
    assert len(out["tokens"]["source"]) == measured["source_tokens"] == 20
    norms = out["compare"]["gradients"]["recurrence"]
    ratio = norms[0] / norms[-1]
    assert ratio < 0.1, ratio
    assert ratio == pytest.approx(measured["recurrence"]["first_over_last"], rel=1e-3)
    gated_norms = out["gradients"]["recurrence"]
    assert gated_norms[0] / gated_norms[-1] > 10 * ratio  # the LSTM keeps more of it


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"model": "seq2seq-en-fr"}, 422, "model"),
        ({"model": "decoder-mini"}, 422, "model"),
        ({"model": "nope"}, 404, "model"),
        ({"compare": "seq2seq-en-fr"}, 422, "compare"),
        ({"compare": "nope"}, 404, "compare"),
        ({"format": "binary"}, 422, "format"),
        ({"text": " "}, 422, "text"),
        ({"token_ids": [5, 6]}, 422, "text"),  # text and token_ids together
        ({"target_ids": [2, 99999]}, 422, "target_ids.1"),
        ({"target": "le chat", "target_ids": [2]}, 422, "target"),
        ({"extra": 1}, 422, "extra"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, rnns, body, status, field):
    r = client.post(f"{API}/rnn/unroll", json={"model": next(iter(rnns)), "text": SENTENCE, **body})
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field


def test_compare_must_read_the_same_vocabulary(tmp_path):
    """Two RNNs with different tokenizers: the same ids would be two different sentences."""
    for name, texts in (("a", SENTENCES), ("b", SENTENCES[:4])):
        tok = shared_bpe(texts, ["<pad>", "<unk>", "<s>", "</s>"])
        cfg = RNNConfig(vocab_size=300, d_embed=4, d_model=8, d_attn=4, bos_id=2, eos_id=3)
        save_checkpoint(tmp_path / name, RNNSeq2Seq(cfg), tok)
    registry = Registry.load([tmp_path], torch.device("cpu"))
    inputs = Inputs(registry, make_settings(tmp_path))

    class Body:
        model, text, token_ids, target, target_ids = "a", "the cat", None, None, None
        compare = "b"

    with pytest.raises(ApiError) as err:
        inputs.unroll(Body)
    assert err.value.status == 422 and err.value.field == "compare"
    Body.compare = "a"
    inp, other = inputs.unroll(Body)
    assert other.id == "a" and inp.source.ids[-1] == 3
