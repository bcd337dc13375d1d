"""The analysis endpoints: logit lens, rollout, attribution, value-weighted norms."""

from __future__ import annotations

import numpy as np
import pytest

API = "/api/v1"


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def err(r) -> dict:
    assert r.status_code == 422, r.text
    return r.json()["error"]


def test_logit_lens_last_layer_is_the_next_token_distribution(client, model_ids):
    mid = model_ids["decoder"]
    lens = ok(client.post(f"{API}/logit-lens", json={"model": mid, "text": "the cat", "k": 3}))
    gen = ok(client.post(f"{API}/generate", json={"model": mid, "text": "the cat", "n_top": 3}))
    T = len(lens["tokens"]["source"])
    assert lens["stack"] == "decoder" and lens["positions"] == list(range(T))
    assert np.array(lens["top_ids"]).shape == (len(lens["layers"]), T, 3)
    first = gen["steps"][0]  # the step after the prompt = the lens at the last position
    assert lens["top_ids"][-1][-1] == [c["id"] for c in first["top"]]
    # generation never proposes padding, so its probabilities are renormalised without it
    np.testing.assert_allclose(
        lens["top_probs"][-1][-1], [c["prob"] for c in first["top"]], rtol=1e-2, atol=2e-6
    )
    assert lens["final_ids"][-1] == first["token"]["id"]
    assert all(str(i) in lens["vocab"] for i in lens["final_ids"])


def test_logit_lens_reads_an_encoder_at_its_masks(client, model_ids):
    mid = model_ids["encoder"]
    body = {"model": mid, "text": "the [MASK] sat on the [MASK]"}
    lens = ok(client.post(f"{API}/logit-lens", json=body))
    masks = [i for i, t in enumerate(lens["tokens"]["source"]) if t["text"] == "[MASK]"]
    assert lens["stack"] == "encoder" and lens["positions"] == masks
    fill = ok(client.post(f"{API}/fill-mask", json={**body, "top_k": 1}))
    # fill-mask never proposes special tokens; the lens may: compare where both agree
    for m, pos_top in zip(fill["masks"], lens["top_ids"][-1], strict=True):
        assert m["predictions"][0]["id"] in pos_top


def test_logit_lens_errors_name_the_field(client, model_ids):
    e = err(client.post(f"{API}/logit-lens", json={"model": model_ids["encoder"], "text": "a b"}))
    assert e["field"] == "text" and e["code"] == "no_mask"
    body = {"model": model_ids["seq2seq"], "text": "the cat", "positions": [1]}
    assert err(client.post(f"{API}/logit-lens", json=body))["field"] == "positions"
    body = {"model": model_ids["decoder"], "text": "the cat", "positions": [0, 99]}
    assert err(client.post(f"{API}/logit-lens", json=body))["field"] == "positions.1"


@pytest.mark.parametrize("kind", ["encoder", "decoder", "seq2seq"])
def test_rollout_rows_are_distributions(client, model_ids, infos, kind):
    mid = model_ids[kind]
    out = ok(client.post(f"{API}/rollout", json={"model": mid, "text": "the black cat sat"}))
    expected = {"encoder": ["encoder.self"], "decoder": ["decoder.self"]}.get(
        kind, ["encoder.self", "decoder.self"]
    )
    assert sorted(out["rollout"]) == sorted(expected)
    for site, r in out["rollout"].items():
        r = np.array(r)
        stack = "target" if site.startswith("decoder") and kind == "seq2seq" else "source"
        T = len(out["tokens"][stack])
        assert r.shape[1:] == (T, T)
        np.testing.assert_allclose(r.sum(-1), 1.0, atol=2e-3 + 5e-5 * T)  # T values rounded


@pytest.mark.parametrize("kind", ["encoder", "decoder", "seq2seq"])
def test_attribution_adds_up_to_the_logit(client, model_ids, infos, kind):
    mid = model_ids[kind]
    text = "the black [MASK] ate the mouse" if kind == "encoder" else "the black cat ate the"
    out = ok(client.post(f"{API}/attribution", json={"model": mid, "text": text}))
    parts = sum(p["value"] for p in out["parts"]) + sum(np.sum(h) for h in out["heads"].values())
    assert out["total"] == pytest.approx(out["logit"], abs=1e-3)
    assert parts == pytest.approx(out["total"], abs=5e-3)  # rounded to 4 decimals each
    info = infos[mid]
    for _site, heads in out["heads"].items():
        assert np.array(heads).shape[1] == info["n_heads"]


def test_attribution_splits_a_chosen_head_and_checks_it(client, model_ids):
    mid = model_ids["decoder"]
    body = {
        "model": mid,
        "text": "the cat sat",
        "head": {"site": "decoder.self", "layer": 1, "head": 2},
    }
    out = ok(client.post(f"{API}/attribution", json=body))
    assert len(out["head_positions"]) == len(out["tokens"]["source"])
    assert sum(out["head_positions"]) == pytest.approx(out["heads"]["decoder.self"][1][2], abs=1e-3)
    bad = {**body, "head": {"site": "encoder.self", "layer": 0, "head": 0}}
    assert err(client.post(f"{API}/attribution", json=bad))["field"] == "head.site"
    bad = {**body, "head": {"site": "decoder.self", "layer": 0, "head": 99}}
    assert err(client.post(f"{API}/attribution", json=bad))["field"] == "head.head"
    assert err(client.post(f"{API}/attribution", json={**body, "token": 10**7}))["field"] == "token"


def test_value_weighted_norms_on_attention(client, model_ids, infos):
    mid = model_ids["seq2seq"]
    body = {"model": mid, "text": "the black cat", "include": ["norms", "masks"], "heads": [1, 3]}
    out = ok(client.post(f"{API}/attention", json=body))
    for site, att in out["attention"].items():
        norms, att = np.array(out["norms"][site]), np.array(att)
        assert norms.shape == att.shape and (norms >= 0).all()
        masked = np.array(out["masks"][site]) == 0
        assert (norms[:, :, masked] == 0).all()  # a masked key moves nothing
        # α_ij ‖f(x_j)‖: along a key's column, norms are the weights times one ‖f(x_j)‖,
        # read here at the query that weighs the key most
        top = att.argmax(axis=2)[:, :, None]
        weight = np.take_along_axis(att, top, 2)  # 0 for a key no query may see
        f_norm = np.take_along_axis(norms, top, 2) / np.where(weight > 0, weight, 1)
        np.testing.assert_allclose(norms, att * f_norm, rtol=0.02, atol=3e-4)


@pytest.mark.parametrize("kind", ["encoder", "decoder", "seq2seq"])
def test_head_scores_on_the_probe_cover_every_site_layer_and_head(client, model_ids, infos, kind):
    mid = model_ids[kind]
    out = ok(client.post(f"{API}/heads/scores", json={"model": mid, "run_length": 8, "seed": 3}))
    assert out["input"] == "probe" and out["probe"] == {"seed": 3, "run_length": 8}
    info = infos[mid]
    assert set(out["scores"]) == set(info["sites"])
    for site, per in out["scores"].items():
        assert set(per) == set(out["definitions"])
        for name, values in per.items():
            if site == "decoder.cross" and name in (
                "previous_token",
                "induction",
                "duplicate_token",
            ):
                assert values is None  # token scores compare a sequence with itself
                continue
            assert np.array(values, dtype=float).shape == (info["sites"][site], info["n_heads"])
    # the probe is BOS/[CLS] + a run + the same run (+ [SEP] / </s>)
    ids = [t["id"] for t in out["tokens"]["target" if kind == "seq2seq" else "source"]]
    run = ids[1 : 1 + 8]
    assert ids[1 + 8 : 1 + 16] == run and len(set(run)) == 8


def test_head_scores_on_a_text_without_repeats_have_no_induction_to_measure(client, model_ids):
    body = {
        "model": model_ids["decoder"],
        "text": "the cat sat",
        "scores": ["induction", "entropy"],
    }
    out = ok(client.post(f"{API}/heads/scores", json=body))
    assert out["input"] == "text" and set(out["definitions"]) == {"induction", "entropy"}
    per = out["scores"]["decoder.self"]
    assert all(v is None for row in per["induction"] for v in row)
    assert all(v >= 0 for row in per["entropy"] for v in row)


def test_head_scores_errors_name_the_field(client, model_ids):
    r = client.post(f"{API}/heads/scores", json={"model": model_ids["decoder"], "run_length": 1000})
    assert r.status_code == 422 and r.json()["error"]["field"] == "run_length"
    r = client.post(
        f"{API}/heads/scores", json={"model": model_ids["seq2seq"], "target": "le chat"}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "target"
