"""POST /block: one block's Add & Norm and FFN, checked against the captured tensors it serves,
the model's own weights, and torch's norms; the normalisation comparison against the batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app.serialize import decode_f16, loads_binary
from models import load_checkpoint
from tests.models.test_block import reference_ffn

API = "/api/v1"
TEXT = "the black cat ate the mouse"
# rounding to 4 decimals moves each served value by up to 5e-5
ROUNDING = 1e-4


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def err(r, status: int = 422) -> dict:
    assert r.status_code == status, r.text
    return r.json()["error"]


def block(client, **body) -> dict:
    return ok(client.post(f"{API}/block", json=body))


def arr(x) -> np.ndarray:
    if isinstance(x, np.ndarray):  # from a binary frame
        return x.astype(np.float64)
    return decode_f16(x) if isinstance(x, dict) else np.array(x, dtype=np.float64)


def stacks_of(infos, model_id):
    info = infos[model_id]
    return {"encoder": ["encoder"], "decoder": ["decoder"]}.get(
        info["kind"], ["encoder", "decoder"]
    )


@pytest.fixture(scope="module")
def loaded(checkpoint_dir):
    cache = {}

    def get(model_id):
        if model_id not in cache:
            cache[model_id] = load_checkpoint(checkpoint_dir / model_id).model
        return cache[model_id]

    return get


@pytest.mark.parametrize("kind", ["encoder", "decoder", "seq2seq"])
def test_normalized_vectors_are_standardised_per_token(client, model_ids, infos, kind):
    mid = model_ids[kind]
    for stack in stacks_of(infos, mid):
        for layer in range(
            infos[mid][
                "n_decoder_layers" if stack == "decoder" and kind == "seq2seq" else "n_layers"
            ]
        ):
            out = block(client, model=mid, text=TEXT, stack=stack, layer=layer)
            assert out["normalization"], "every shipped family but the induction model has norms"
            for name, n in out["normalization"].items():
                stream, x_hat, y = arr(n["stream"]), arr(n["normalized"]), arr(n["output"])
                gain = arr(n["gain"])
                # variance (or mean square) 1 up to eps: σ² / (σ² + eps)
                if n["kind"] == "layernorm":
                    bias = arr(n["bias"])
                    one = stream.var(-1) / (stream.var(-1) + n["eps"])
                    np.testing.assert_allclose(x_hat.mean(-1), 0, atol=ROUNDING)
                    np.testing.assert_allclose(x_hat.var(-1), one, atol=2e-3)
                    # the served output with the gain and bias undone is the standardised vector
                    undone = (y - bias) / gain
                    np.testing.assert_allclose(undone.mean(-1), 0, atol=5e-3)
                    np.testing.assert_allclose(undone.var(-1), one, atol=1e-2)
                    np.testing.assert_allclose(y, x_hat * gain + bias, atol=1e-3)
                    ref = F.layer_norm(torch.tensor(stream), stream.shape[-1:], eps=n["eps"])
                else:
                    assert n.get("bias") is None
                    ms = (stream**2).mean(-1)
                    one = ms / (ms + n["eps"])
                    np.testing.assert_allclose((x_hat**2).mean(-1), one, atol=2e-3)
                    np.testing.assert_allclose(((y / gain) ** 2).mean(-1), one, atol=1e-2)
                    np.testing.assert_allclose(y, x_hat * gain, atol=1e-3)
                    ref = F.rms_norm(torch.tensor(stream), stream.shape[-1:], eps=n["eps"])
                # the norm of the served (rounded) stream: its rounding grows by 1 / σ
                spread = (
                    stream.std(-1) if n["kind"] == "layernorm" else np.sqrt((stream**2).mean(-1))
                )
                atol = max(2e-3, 3e-4 / spread.min())
                np.testing.assert_allclose(x_hat, ref.numpy(), atol=atol, err_msg=name)
                stats = n["stats"]
                np.testing.assert_allclose(stats["stream"]["mean"], stream.mean(-1), atol=ROUNDING)
                np.testing.assert_allclose(stats["stream"]["std"], stream.std(-1), atol=ROUNDING)
                np.testing.assert_allclose(
                    stats["output"]["rms"], np.sqrt((y**2).mean(-1)), atol=1e-3
                )
                # what the standardised chart plots: σ/√(σ²+ε) (LayerNorm, mean 0) or the RMS's
                # own (RMSNorm), not 1 and not the stream's statistics
                shown = stats["normalized"]
                np.testing.assert_allclose(shown["mean"], x_hat.mean(-1), atol=ROUNDING)
                if n["kind"] == "layernorm":
                    np.testing.assert_allclose(shown["mean"], 0, atol=ROUNDING)
                    np.testing.assert_allclose(shown["std"], np.sqrt(one), atol=2e-3)
                np.testing.assert_allclose(shown["rms"], np.sqrt((x_hat**2).mean(-1)), atol=1e-3)
                if n["kind"] == "rmsnorm":
                    np.testing.assert_allclose(shown["rms"], np.sqrt(one), atol=2e-3)


@pytest.mark.parametrize("kind", ["encoder", "decoder", "seq2seq"])
def test_ffn_output_is_w2_act_w1_x_of_the_served_input(client, model_ids, infos, loaded, kind):
    """The served FFN output against W_2 · act(W_1 · x) recomputed from the checkpoint's weights
    on the served input x (the ≤ 1e-5 check on unrounded tensors is tests/models/test_block.py;
    here the served numbers carry 4-decimal rounding)."""
    mid = model_ids[kind]
    model = loaded(mid)
    for stack in stacks_of(infos, mid):
        out = block(client, model=mid, text=TEXT, stack=stack, layer=1)
        f = out["ffn"]
        if out["norm"]["position"] == "pre":
            x = arr(out["normalization"]["ffn_norm"]["output"])
        else:  # post-norm: the FFN reads the last attention's Add & Norm
            before = "cross_norm" if "cross_norm" in out["normalization"] else "attn_norm"
            x = arr(out["normalization"][before]["output"])
        ffn = getattr(model, stack).blocks[1].ffn
        expected = reference_ffn(ffn, torch.tensor(x), f["activation"]).numpy()
        scale = np.abs(expected).max()
        np.testing.assert_allclose(arr(f["out"]), expected, atol=2e-3 * max(1.0, scale))
        pre, post = arr(f["pre"]), arr(f["post"])
        assert pre.shape == post.shape == (len(out["tokens"][out["reads"]]), f["d_ff"])
        assert ("gate" in f) == (f["activation"] == "swiglu")
        if f["activation"] == "swiglu":
            np.testing.assert_allclose(post, arr(f["gate"]) * arr(f["up"]), atol=1e-2)
        w2 = ffn.W_2.weight.detach().double()
        np.testing.assert_allclose(f["unit_write"], w2.norm(dim=0).numpy(), atol=ROUNDING)


def test_relu_share_zeroed_counts_the_units_set_to_zero(client, model_ids, infos):
    relu = [
        m
        for m, i in infos.items()
        if i["activation"] == "relu" and i["architecture"] == "transformer"
    ]
    ffns = [block(client, model=m, text=TEXT, layer=0)["ffn"] for m in relu]
    ffns = [f for f in ffns if f is not None]  # the attention-only model has none
    if not ffns:
        pytest.skip("no ReLU model with an FFN loaded")
    f = ffns[0]
    pre, post, zeroed = arr(f["pre"]), arr(f["post"]), np.array(f["zeroed"])
    np.testing.assert_array_equal(post[pre < 0], 0)
    # rounding to 4 decimals may move a unit within 5e-5 of 0 to either side, and the share
    lo, hi = (pre <= -1e-4).mean(-1), (pre < 1e-4).mean(-1)
    assert np.all(lo - 1e-4 <= zeroed) and np.all(zeroed <= hi + 1e-4)


def test_gelu_share_zeroed_is_its_soft_version(client, model_ids, infos):
    gelu = [m for m, i in infos.items() if i["activation"] == "gelu"]
    if not gelu:
        pytest.skip("no GELU model loaded")
    f = block(client, model=gelu[0], text=TEXT, layer=0)["ffn"]
    phi = 0.5 * (1 + torch.erf(torch.tensor(arr(f["pre"])) / np.sqrt(2))).numpy()
    np.testing.assert_allclose(f["zeroed"], (1 - phi).mean(-1), atol=1e-4)


def test_the_order_follows_each_models_norm_position(client, model_ids, infos):
    for mid, info in infos.items():
        if info["architecture"] != "transformer":
            continue
        order = [(s["step"], s["module"]) for s in block(client, model=mid, text=TEXT)["order"]]
        assert order[0][0] in ("attention", "norm")
        sub = [s for s in order if s[0] != "norm"]
        assert sub[:2] == [("attention", "attn"), ("add", "attn")]
        if info["norm"] == "none":
            assert all(step != "norm" for step, _ in order)
        elif info["norm_position"] == "pre":
            i = order.index(("attention", "attn"))
            assert order[i - 1] == ("norm", "attn_norm")
        else:
            i = order.index(("add", "attn"))
            assert order[i + 1] == ("norm", "attn_norm")


def test_the_residual_stream_is_read_after_every_sublayer(client, model_ids, infos):
    mid = model_ids["decoder"]
    out = block(client, model=mid, text=TEXT, layer=0)
    r = out["residual"]
    n_sub = 1 if infos[mid].get("attn_only") else 2
    assert len(r["points"]) == 1 + n_sub * infos[mid]["n_layers"]
    assert r["points"][0] == {"layer": None, "after": "embed"}
    T = len(out["tokens"]["source"])
    assert np.array(r["l2"]).shape == np.array(r["added"]).shape == (len(r["points"]), T)
    # block 0's attention norm reads the stream before the first block in a pre-norm model
    stream = arr(out["normalization"]["attn_norm"]["stream"])
    if out["norm"]["position"] == "pre":
        np.testing.assert_allclose(r["l2"][0], np.linalg.norm(stream, axis=-1), atol=1e-3)


def test_seq2seq_decoder_block_reads_the_translation(client, model_ids):
    mid = model_ids["seq2seq"]
    out = block(client, model=mid, text=TEXT, stack="decoder", target="le chat noir")
    assert out["reads"] == "target" and out["stack"] == "decoder"
    assert [t["text"] for t in out["tokens"]["target"]][0] in ("<s>",)
    assert "cross_norm" in out["normalization"]
    assert ("cross_attention", "cross_attn") in [(s["step"], s["module"]) for s in out["order"]]
    greedy = block(client, model=mid, text=TEXT, stack="decoder", batch=["you are welcome"])
    assert "target" in greedy["tokens"] and greedy["comparison"]["batch"][0]["n_tokens"] >= 1


def test_f16_carries_the_same_tensors(client, model_ids):
    mid = model_ids["encoder"]
    a = block(client, model=mid, text=TEXT, layer=1)
    b = block(client, model=mid, text=TEXT, layer=1, format="f16")
    assert b["format"] == "f16" and b["ffn"]["pre"]["dtype"] == "float16"
    for key in ("pre", "post", "out"):
        x, y = arr(a["ffn"][key]), arr(b["ffn"][key])
        np.testing.assert_allclose(y, x, atol=1e-3 * max(1.0, np.abs(x).max()))
    x = arr(a["comparison"]["batchnorm"]["alone"]["output"])
    np.testing.assert_allclose(arr(b["comparison"]["batchnorm"]["alone"]["output"]), x, atol=1e-2)
    r = client.post(
        f"{API}/block", json={"model": mid, "text": TEXT, "layer": 1, "format": "binary"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    c = loads_binary(r.content)
    assert c["format"] == "binary" and c["order"] == a["order"]
    for key in ("pre", "post", "out"):
        np.testing.assert_array_equal(arr(c["ffn"][key]), arr(b["ffn"][key]))


# ---------------------------------------------------------------------------- the comparison
BATCH_A = ["the cat sat on the mat", "you are welcome"]
BATCH_B = ["i love machine learning", "the dog bites the man", "i went to the store"]


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_batchnorm_statistics_change_with_the_batch_and_layernorms_do_not(client, model_ids, kind):
    mid = model_ids[kind]
    a = block(client, model=mid, text=TEXT, layer=1, batch=BATCH_A)["comparison"]
    b = block(client, model=mid, text=TEXT, layer=1, batch=BATCH_B)["comparison"]
    bn_a, bn_b = a["batchnorm"]["batch"], b["batchnorm"]["batch"]
    assert bn_a["n_sentences"] == 3 and bn_b["n_sentences"] == 4
    # beyond the 4-decimal rounding (the statistics), and in normalised units (the output)
    assert np.abs(np.subtract(bn_a["mean"], bn_b["mean"])).max() > 1e-3
    assert np.abs(np.subtract(bn_a["std"], bn_b["std"])).max() > 1e-3
    assert np.abs(arr(bn_a["output"]) - arr(bn_b["output"])).max() > 0.1
    assert a["batchnorm"]["alone"] == b["batchnorm"]["alone"]
    assert a["layernorm"] == b["layernorm"] and a["rmsnorm"] == b["rmsnorm"]
    assert [s["text"] for s in a["batch"]] == BATCH_A


def test_batchnorm_statistics_are_the_batchs_per_feature(client, model_ids):
    """Against torch's BatchNorm1d (training mode) over the tokens of every sentence, each
    sentence's stream read from its own /block answer."""
    mid = model_ids["encoder"]
    main = block(client, model=mid, text=TEXT, layer=0, batch=BATCH_A)
    streams = [arr(main["normalization"]["attn_norm"]["stream"])]
    for text in BATCH_A:
        streams.append(
            arr(
                block(client, model=mid, text=text, layer=0)["normalization"]["attn_norm"]["stream"]
            )
        )
    c = main["comparison"]
    assert c["stream"] == "encoder.blocks.0.attn_norm.hook_in"
    tokens = torch.tensor(np.concatenate(streams))
    bn = (
        torch.nn.BatchNorm1d(tokens.shape[1], eps=c["eps"], affine=False, momentum=None)
        .double()
        .train()
    )
    expected = bn(tokens)[: len(streams[0])].numpy()
    np.testing.assert_allclose(c["batchnorm"]["batch"]["mean"], bn.running_mean.numpy(), atol=1e-3)
    np.testing.assert_allclose(arr(c["batchnorm"]["batch"]["output"]), expected, atol=2e-2)
    assert c["batchnorm"]["batch"]["n_tokens"] == len(tokens)
    assert [s["n_tokens"] for s in c["batch"]] == [len(s) for s in streams[1:]]
    # the comparison's LayerNorm is the model's own normalisation of that stream, gain aside
    np.testing.assert_allclose(
        arr(c["layernorm"]["output"]),
        arr(main["normalization"]["attn_norm"]["normalized"]),
        atol=2e-3,
    )


# ---------------------------------------------------------------------------- bad input
def test_bad_input_is_a_422_naming_the_field(client, model_ids, infos):
    enc, dec = model_ids["encoder"], model_ids["decoder"]
    cases = [
        ({"model": dec, "text": TEXT, "stack": "encoder"}, "stack"),
        ({"model": dec, "text": TEXT, "stack": "middle"}, "stack"),
        ({"model": dec, "text": TEXT, "layer": 99}, "layer"),
        ({"model": dec, "text": TEXT, "layer": -1}, "layer"),
        ({"model": dec, "text": TEXT, "layer": "1"}, "layer"),
        ({"model": dec, "text": TEXT, "batch": ["fine", "   "]}, "batch.1"),
        ({"model": dec, "text": TEXT, "batch": ["a"] * 9}, "batch"),
        ({"model": dec, "text": TEXT, "batch": "the cat"}, "batch"),
        ({"model": dec, "text": TEXT, "format": "csv"}, "format"),
        ({"model": dec, "text": " "}, "text"),
        ({"model": dec, "text": TEXT, "target": "le chat"}, "target"),
        ({"model": enc, "text": TEXT, "norms": True}, "norms"),
        ({"model": dec}, "text"),
    ]
    if "rnn" in model_ids:
        cases.append(({"model": model_ids["rnn"], "text": TEXT}, "model"))
    for body, field in cases:
        e = err(client.post(f"{API}/block", json=body))
        assert e["field"] == field, (body, e)
    assert (
        err(client.post(f"{API}/block", json={"model": "nope", "text": "a"}), 404)["field"]
        == "model"
    )
