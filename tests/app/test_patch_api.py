"""POST /api/v1/patch: its numbers against independent calls (/attribution's logits, the
effect's formula), every model kind, and a 422 naming the field for every bad input."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from models.analysis.patching import patch_bytes
from tests.helpers import make_settings

API = "/api/v1"


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def err(r, status: int = 422) -> dict:
    assert r.status_code == status, r.text
    return r.json()["error"]


def ids_of(client, model: str, text: str) -> list[int]:
    return [
        t["id"]
        for t in ok(client.post(f"{API}/tokenize", json={"model": model, "text": text}))["tokens"]
    ]


def corrupt(ids: list[int], at: int, vocab: int) -> list[int]:
    out = list(ids)
    out[at] = 5 + (ids[at] + 11 - 5) % (vocab - 5)
    return out


def logit(client, model: str, ids: list[int], token: int, position: int, target=None) -> float:
    body = {"model": model, "token_ids": ids, "token": token, "position": position}
    if target is not None:
        body["target_ids"] = target
    return ok(client.post(f"{API}/attribution", json=body))["logit"]


@pytest.fixture(scope="module")
def decoder_case(client, model_ids, infos):
    mid = model_ids["decoder"]
    clean = ids_of(client, mid, "the black cat ate the")
    corrupted = corrupt(clean, 2, infos[mid]["vocab_size"])
    body = {
        "model": mid,
        "clean": {"token_ids": clean},
        "corrupted": {"token_ids": corrupted},
        "metric": {"kind": "logit_diff", "answer": 7, "wrong": 9},
    }
    return body, ok(client.post(f"{API}/patch", json=body))


def test_the_metric_is_the_logit_difference_that_attribution_reports(client, decoder_case):
    body, answer = decoder_case
    mid, last = body["model"], len(body["clean"]["token_ids"]) - 1
    assert answer["metric"]["position"] == last  # a decoder's default: the last position
    for name in ("clean", "corrupted"):
        ids = body[name]["token_ids"]
        want = logit(client, mid, ids, 7, last) - logit(client, mid, ids, 9, last)
        assert answer["metric"][name] == pytest.approx(want, abs=2e-3)


def test_a_decoder_sweep_holds_the_identities_and_raw_values_match_the_effect(client, decoder_case):
    body, answer = decoder_case
    resid = answer["effects"]["resid_pre"]["decoder"]
    assert answer["differing"] == [2]
    assert resid[0][2] == pytest.approx(1.0, abs=1e-4)  # layer 0 at the differing position
    for row in resid + answer["effects"]["attn_out"]["decoder"]:
        assert row[:2] == [0.0, 0.0]  # before the first difference, at every layer
    raw = ok(client.post(f"{API}/patch", json={**body, "raw": True}))
    m = answer["metric"]
    for site, groups in answer["effects"].items():
        if groups is None:
            continue
        for group, grid in groups.items():
            for row, raw_row in zip(grid, raw["effects"][site][group], strict=True):
                for effect, value in zip(row, raw_row, strict=True):
                    want = (value - m["corrupted"]) / (m["clean"] - m["corrupted"])
                    assert effect == pytest.approx(want, abs=1e-3)
    assert set(answer["definitions"]) >= {"effect", "logit_diff", "resid_pre", "head_z"}
    assert answer["tokens"]["clean"]["source"][2]["id"] == body["clean"]["token_ids"][2]


def test_a_translation_reads_both_sources_with_one_target(client, model_ids, infos):
    mid = model_ids["seq2seq"]
    clean = ids_of(client, mid, "the black cat ate the mouse")
    corrupted = corrupt(clean, 1, infos[mid]["vocab_size"])
    body = {
        "model": mid,
        "clean": {"token_ids": clean},
        "corrupted": {"token_ids": corrupted},
        "metric": {"kind": "logprob", "answer": 7},
    }
    answer = ok(client.post(f"{API}/patch", json=body))
    target = [t["id"] for t in answer["tokens"]["clean"]["target"]]  # the model's own translation
    assert [t["id"] for t in answer["tokens"]["corrupted"]["target"]] == target
    assert answer["metric"]["position"] == len(target) - 1
    assert answer["effects"]["resid_pre"]["encoder"][0][1] == pytest.approx(1.0, abs=1e-4)
    assert len(answer["effects"]["memory"]["encoder"][0]) == len(clean)
    assert len(answer["effects"]["cross_out"]["decoder"][0]) == len(target)
    assert set(answer["effects"]["head_pattern"]) == {
        "encoder.self",
        "decoder.self",
        "decoder.cross",
    }
    # the target given on one input, a position counted from the end
    given = {**body, "clean": {"token_ids": clean, "target_ids": target}}
    given["metric"] = {"kind": "logprob", "answer": 7, "position": -2}
    again = ok(client.post(f"{API}/patch", json=given))
    assert again["metric"]["position"] == len(target) - 2


def test_an_encoder_is_read_at_its_first_mask(client, model_ids):
    mid = model_ids["encoder"]
    clean = "the movie was [MASK] good"
    corrupted = "the food was [MASK] good"
    body = {
        "model": mid,
        "clean": {"text": clean},
        "corrupted": {"text": corrupted},
        "metric": {"kind": "logit_diff", "answer": 7, "wrong": 9},
        "sites": ["resid_pre", "head_z"],
    }
    answer = ok(client.post(f"{API}/patch", json=body))
    tokens = answer["tokens"]["clean"]["source"]
    assert tokens[answer["metric"]["position"]]["text"] == "[MASK]"
    assert set(answer["effects"]) == {"resid_pre", "head_z"}


def test_a_classifier_metric_is_the_log_probability_classify_reports(client, model_ids):
    mid = model_ids["classifier"]
    labels = [
        x["label"]
        for x in ok(client.post(f"{API}/classify", json={"model": mid, "text": "a"}))["labels"]
    ]
    body = {
        "model": mid,
        "clean": {"text": "the movie was not good"},
        "corrupted": {"text": "the movie was very good"},
        "metric": {"kind": "logprob", "head": "classifier", "answer": labels[0]},
        "sites": ["head_z"],
    }
    answer = ok(client.post(f"{API}/patch", json=body))
    assert answer["metric"]["position"] == 0 and answer["metric"]["answer"]["text"] == labels[0]
    for name in ("clean", "corrupted"):
        text = body[name]["text"]
        probs = ok(client.post(f"{API}/classify", json={"model": mid, "text": text}))["labels"]
        assert answer["metric"][name] == pytest.approx(math.log(probs[0]["prob"]), abs=1e-3)
    wrong = {**body, "metric": {**body["metric"], "answer": "nope"}}
    e = err(client.post(f"{API}/patch", json=wrong))
    assert (e["field"], e["code"]) == ("metric.answer", "out_of_range")


def test_the_rnn_patches_its_memory_and_says_why_nothing_else(client, model_ids):
    mid = model_ids["rnn"]
    body = {
        "model": mid,
        "clean": {"text": "the black cat ate the mouse"},
        "corrupted": {"text": "the black cat ate the mouse"},
        "metric": {"kind": "logprob", "answer": 7},
        "raw": True,
    }
    answer = ok(client.post(f"{API}/patch", json=body))
    assert answer["effects"]["head_z"] is None and "recurrence" in answer["reasons"]["head_z"]
    memory = answer["effects"]["memory"]["encoder"][0]
    assert memory == pytest.approx([answer["metric"]["corrupted"]] * len(memory), abs=1e-5)


def test_equal_metrics_give_null_effects_with_the_reason_never_nan(client, model_ids):
    mid = model_ids["decoder"]
    body = {
        "model": mid,
        "clean": {"text": "the black cat"},
        "corrupted": {"text": "the black cat"},
        "metric": {"kind": "logprob", "answer": 7},
    }
    r = client.post(f"{API}/patch", json=body)
    assert "NaN" not in r.text
    answer = ok(r)
    assert all(v is None for v in answer["effects"].values())
    assert "m(clean) = m(corrupted)" in answer["reasons"]["head_z"]
    raw = ok(client.post(f"{API}/patch", json={**body, "raw": True}))
    assert all(math.isfinite(v) for row in raw["effects"]["head_z"]["decoder.self"] for v in row)


def test_an_attention_only_model_has_no_mlp_out(client, infos):
    mid = next(i for i, m in infos.items() if m.get("attn_only"))
    body = {
        "model": mid,
        "clean": {"token_ids": [5, 6, 7, 8]},
        "corrupted": {"token_ids": [5, 9, 7, 8]},
        "metric": {"kind": "logprob", "answer": 7},
    }
    answer = ok(client.post(f"{API}/patch", json=body))
    assert answer["effects"]["mlp_out"] is None and "attention-only" in answer["reasons"]["mlp_out"]
    e = err(client.post(f"{API}/patch", json={**body, "sites": ["head_z", "mlp_out"]}))
    assert (e["field"], e["code"]) == ("sites.1", "unsupported_field")


def test_the_metric_defaults_to_the_models_own_top_tokens(client, decoder_case):
    body, _ = decoder_case
    answer = ok(client.post(f"{API}/patch", json={**body, "metric": {"kind": "logit_diff"}}))
    top = answer["metric"]["top"]
    assert answer["metric"]["answer"]["id"] == top["clean"][0]["id"]
    wrong = next(
        t["id"] for t in top["corrupted"] + top["clean"] if t["id"] != top["clean"][0]["id"]
    )
    assert answer["metric"]["wrong"]["id"] == wrong
    assert all(a["prob"] >= b["prob"] for a, b in zip(top["clean"], top["clean"][1:], strict=False))
    # log(p1 / p2) is the difference of their logits, which /attribution reports
    mid, ids = body["model"], body["clean"]["token_ids"]
    logits = {t["id"]: logit(client, mid, ids, t["id"], len(ids) - 1) for t in top["clean"][:2]}
    first, second = top["clean"][0], top["clean"][1]
    assert math.log(first["prob"] / second["prob"]) == pytest.approx(
        logits[first["id"]] - logits[second["id"]], abs=2e-3
    )


def test_attribution_is_labelled_an_approximation_and_shares_the_metric(client, decoder_case):
    body, exact = decoder_case
    approx = ok(client.post(f"{API}/patch", json={**body, "method": "attribution"}))
    assert approx["approximation"] is True and "attribution" in approx["definitions"]
    assert approx["metric"]["clean"] == pytest.approx(exact["metric"]["clean"], abs=1e-4)
    assert approx["metric"]["corrupted"] == pytest.approx(exact["metric"]["corrupted"], abs=1e-4)
    assert set(approx["effects"]) == set(exact["effects"])


BASE = {
    "clean": {"text": "the black cat ate the"},
    "corrupted": {"text": "the black cat ate the"},
    "metric": {"kind": "logit_diff", "answer": 7, "wrong": 9},
}


@pytest.mark.parametrize(
    "kind, change, field, code",
    [
        ("decoder", {"corrupted": {"text": "the cat"}}, "corrupted.text", "length_mismatch"),
        (
            "decoder",
            {"corrupted": {"token_ids": [1, 2]}},
            "corrupted.token_ids",
            "length_mismatch",
        ),
        (
            "decoder",
            {"metric": {"answer": "zzqqxxyyww", "wrong": 9}},
            "metric.answer",
            "not_one_token",
        ),
        (
            "decoder",
            {"metric": {"answer": 7, "wrong": "zzqqxxyyww"}},
            "metric.wrong",
            "not_one_token",
        ),
        ("decoder", {"metric": {"answer": 10**6, "wrong": 9}}, "metric.answer", "out_of_range"),
        (
            "decoder",
            {"metric": {"answer": 7, "wrong": 9, "position": 99}},
            "metric.position",
            "out_of_range",
        ),
        ("decoder", {"clean": {"text": "a", "token_ids": [1]}}, "clean.text", "exclusive_fields"),
        (
            "decoder",
            {"clean": {"text": "the black cat ate the", "target": "le chat"}},
            "clean.target",
            "unsupported_field",
        ),
        ("decoder", {"sites": ["memory"]}, "sites.0", "unsupported_field"),
        ("decoder", {"sites": ["nope"]}, "sites.0", "validation_error"),
        ("decoder", {"metric": {"kind": "nope", "answer": 7}}, "metric.kind", "validation_error"),
        ("decoder", {"method": "guess"}, "method", "validation_error"),
        (
            "decoder",
            {"metric": {"head": "classifier", "answer": 0, "kind": "logprob"}},
            "metric.head",
            "unsupported_task",
        ),
        ("decoder", {"clean": {"text": "  "}}, "clean.text", "empty_text"),
        ("encoder", {}, "clean.text", "no_mask"),
        (
            "seq2seq",
            {
                "clean": {"text": "the black cat", "target": "le chat"},
                "corrupted": {"text": "the black cat", "target": "le chien noir"},
            },
            "corrupted.target",
            "length_mismatch",
        ),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, model_ids, kind, change, field, code):
    body = {"model": model_ids[kind], **BASE, **change}
    e = err(client.post(f"{API}/patch", json=body))
    assert (e["field"], e["code"]) == (field, code), e


def test_an_unknown_model_is_a_404(client):
    e = err(client.post(f"{API}/patch", json={"model": "nope", **BASE}), 404)
    assert e["field"] == "model"


def test_a_sweep_beyond_the_memory_budget_is_a_422(checkpoint_dir, model_ids, infos):
    mid = model_ids["decoder"]
    n = min(infos[mid]["max_len"], 256)
    app = create_app(make_settings(checkpoint_dir, memory_budget_mb=1))
    body = {
        "model": mid,
        **BASE,
        "clean": {"token_ids": [5] * n},
        "corrupted": {"token_ids": [6] * n},
    }
    with TestClient(app) as c:
        fixed, per_row = patch_bytes(app.state.registry.get(mid).config, n, None)
        if fixed + per_row <= 1 << 20:
            pytest.skip(f"{mid} fits in 1 MB even at its max_len {n}")
        e = err(c.post(f"{API}/patch", json=body))
    assert (e["field"], e["code"]) == ("clean.token_ids", "too_much_memory")
    assert "MB" in e["message"]


def events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_the_stream_reports_progress_then_the_same_answer(checkpoint_dir, client, decoder_case):
    body, answer = decoder_case  # asked of `client`: this app's cache does not have it
    with TestClient(create_app(make_settings(checkpoint_dir))) as fresh:
        r = fresh.post(f"{API}/patch/stream", json=body)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        got = events(r.text)
        progress = [data for name, data in got if name == "progress"]
        assert [p["done"] for p in progress] == list(range(progress[-1]["total"] + 1))
        assert progress[-1]["total"] > 1
        assert got[-1] == ("result", answer)
        runs = fresh.app.state.engine.jobs_run
        assert fresh.post(f"{API}/patch", json=body).json() == answer  # the stream's, cached
        assert fresh.app.state.engine.jobs_run == runs
    # /patch answered it before: the stream sends that answer at once, with no progress
    assert events(client.post(f"{API}/patch/stream", json=body).text) == [("result", answer)]
    e = err(client.post(f"{API}/patch/stream", json={**body, "corrupted": {"token_ids": [1]}}))
    assert e["code"] == "length_mismatch"
