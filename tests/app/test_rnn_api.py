"""The RNN translator through the same contract: one site, decoder.cross, 1 layer × 1 head."""

from __future__ import annotations

import numpy as np
import pytest

API = "/api/v1"
SENTENCE = "the black cat ate the mouse"


@pytest.fixture(scope="module")
def rnn(model_ids):
    if "rnn" not in model_ids:
        pytest.skip("no RNN checkpoint in this checkpoint folder")
    return model_ids["rnn"]


def test_it_is_listed_as_an_rnn_with_one_site(infos, rnn):
    info = infos[rnn]
    assert info["kind"] == "seq2seq" and info["architecture"] == "rnn"
    assert info["sites"] == {"decoder.cross": 1} and info["n_heads"] == 1


def test_attention_has_only_the_alignment_and_rows_sum_to_one(client, rnn):
    body = {"model": rnn, "text": SENTENCE, "include": ["scores", "masks", "qkv", "norms"]}
    out = client.post(f"{API}/attention", json=body).json()
    assert list(out["attention"]) == ["decoder.cross"]
    att = np.array(out["attention"]["decoder.cross"])
    T, S = len(out["tokens"]["target"]), len(out["tokens"]["source"])
    assert att.shape == (1, 1, T, S)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=2e-3)
    qkv = out["qkv"]["decoder.cross"]
    assert set(qkv) == {"q", "k", "v", "z", "x"}  # no W_O, so no output after it
    assert np.array(out["norms"]["decoder.cross"]).shape == att.shape


def test_its_generation_steps_align_with_the_teacher_forced_attention(client, rnn):
    gen = client.post(f"{API}/generate", json={"model": rnn, "text": SENTENCE}).json()
    assert gen["output"]["text"]
    target_ids = [2] + [s["token"]["id"] for s in gen["steps"]][:-1]  # <s> + all but </s>
    att = client.post(
        f"{API}/attention", json={"model": rnn, "text": SENTENCE, "target_ids": target_ids}
    ).json()["attention"]["decoder.cross"]
    for i, step in enumerate(gen["steps"][:-1]):
        assert list(step["attention"]) == ["decoder.cross"]
        np.testing.assert_allclose(
            step["attention"]["decoder.cross"][0][0], att[0][0][i], atol=2e-4
        )


def test_the_stream_and_positions_work(client, rnn):
    r = client.get(f"{API}/generate/stream", params={"model": rnn, "text": SENTENCE})
    assert r.status_code == 200 and "event: done" in r.text
    pos = client.get(f"{API}/models/{rnn}/positions", params={"text": SENTENCE}).json()
    assert pos["positional"] == "none" and pos["table"] is None and pos["rope"] is None
    assert pos["embedding"]["position"] is None


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/logit-lens", {}),
        ("/rollout", {}),
        ("/attribution", {}),
        ("/rope/relative", {"layer": 0, "head": 0, "query": 1, "key": 1}),
    ],
)
def test_what_reads_transformer_blocks_is_a_clear_422(client, rnn, path, body):
    r = client.post(f"{API}{path}", json={"model": rnn, "text": SENTENCE, **body})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "model" and "rnn" in err["message"]
