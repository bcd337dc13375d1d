"""ATTNVIZ_MEMORY_BUDGET_MB on every endpoint: a request predicted to need more is a 422
``too_much_memory`` naming the field before any work; the importance sweep is batched to fit
and answers what the whole sweep answers."""

from __future__ import annotations

import os

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import memory
from app.main import create_app
from tests.helpers import make_settings

API = "/api/v1"
LONG = " ".join(["the black cat ate the mouse and the dog saw the bird"] * 15)


@pytest.fixture(scope="module")
def one_mb(checkpoint_dir):
    with TestClient(create_app(make_settings(checkpoint_dir, memory_budget_mb=1))) as c:
        yield c


def test_largest_chunk_and_require_follow_the_budget():
    assert memory.largest_chunk(10, 3, 100, 1000, "f", "x", "y") == 30
    assert memory.largest_chunk(10, 3, 100, 8, "f", "x", "y") == 8
    assert memory.largest_chunk(10, 90, 100, 8, "f", "x", "y") == 1
    with pytest.raises(Exception) as e:
        memory.largest_chunk(10, 91, 100, 8, "sweep", "the sweep", "ask less")
    assert e.value.status == 422 and e.value.field == "sweep" and e.value.code == "too_much_memory"
    memory.require(100, 100, "f", "x", "y")  # exactly the budget fits


@pytest.mark.parametrize(
    ("path", "kind", "extra"),
    [
        ("/logit-lens", "decoder", {}),
        ("/rollout", "decoder", {}),
        ("/attribution", "decoder", {}),
        ("/heads/scores", "decoder", {"scores": ["entropy"]}),
        ("/generate", "decoder", {"max_new_tokens": 4}),
        ("/block", "encoder", {"layer": 0}),
    ],
)
def test_a_long_text_over_the_budget_is_a_422_naming_it(one_mb, model_ids, path, kind, extra):
    body = {"model": model_ids[kind], "text": LONG, **extra}
    r = one_mb.post(f"{API}{path}", json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "too_much_memory" and err["field"] == "text"
    assert "MB (the budget, ATTNVIZ_MEMORY_BUDGET_MB, is 1 MB)" in err["message"]
    short = one_mb.post(f"{API}{path}", json={**body, "text": "the cat sat"})
    assert short.status_code == 200, short.text


def _sweep_mb(infos, mid, tokens: int, rows: int) -> int:
    """The budget (MB) in which the importance sweep runs ``rows`` heads per batch."""
    from models.config import ModelConfig

    info = infos[mid]
    cfg = ModelConfig(
        kind="decoder",
        vocab_size=info["vocab_size"],
        d_model=info["d_model"],
        n_heads=info["n_heads"],
        n_layers=info["n_layers"],
        d_ff=info["d_ff"],
    )
    fixed = 2 * memory.logits_bytes(cfg, tokens)
    per_row = memory.forward_bytes(cfg, tokens) + memory.logits_bytes(cfg, tokens)
    return (fixed + rows * per_row + per_row // 2) >> 20


def test_the_importance_sweep_is_batched_to_fit_and_answers_the_same(
    client, checkpoint_dir, model_ids, infos, monkeypatch
):
    import app.inference.analyses as analyses

    mid = model_ids["decoder"]
    text = " ".join(["the black cat ate the mouse"] * 30)
    tokens = len(client.post(f"{API}/tokenize", json={"model": mid, "text": text}).json()["tokens"])
    budget = _sweep_mb(infos, mid, tokens, rows=3)
    assert budget >= 1
    chunks = []
    real = analyses.importance_sweep

    def spy(*args):
        chunks.append(args[5])  # (model, ids, target_ids, positions, mode, chunk)
        return real(*args)

    monkeypatch.setattr(analyses, "importance_sweep", spy)
    body = {"model": mid, "text": text, "scores": ["importance"]}
    whole = client.post(f"{API}/heads/scores", json=body).json()
    with TestClient(create_app(make_settings(checkpoint_dir, memory_budget_mb=budget))) as small:
        batched = small.post(f"{API}/heads/scores", json=body).json()
        assert chunks == [32, 3]
    imp = "importance"
    assert batched["scores"]["decoder.self"][imp] == whole["scores"]["decoder.self"][imp]


def test_an_importance_sweep_that_cannot_fit_one_head_names_scores(one_mb, model_ids):
    body = {"model": model_ids["decoder"], "text": LONG, "scores": ["importance"]}
    r = one_mb.post(f"{API}/heads/scores", json=body)
    err = r.json()["error"]
    assert r.status_code == 422 and err["code"] == "too_much_memory"
    assert err["field"] == "scores" and "leave importance out of scores" in err["message"]


def test_metrics_carry_the_process_resident_memory(client):
    from pathlib import Path

    text = client.get("/metrics").text
    line = next(ln for ln in text.splitlines() if ln.startswith("process_resident_memory_bytes"))
    reported = float(line.split()[1])
    pages = int(Path("/proc/self/statm").read_text().split()[1])  # this process: the server
    measured = pages * os.sysconf("SC_PAGE_SIZE")
    assert abs(reported - measured) <= 0.1 * measured


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_importance_by_attribution_patching_is_labelled_as_an_approximation(
    client, model_ids, kind
):
    # on the induction probe (random tokens): predictions far from certain, drops far from 0
    body = {"model": model_ids[kind], "scores": ["importance"], "run_length": 12}
    exact = client.post(f"{API}/heads/scores", json=body).json()
    r = client.post(
        f"{API}/heads/scores", json={**body, "importance_method": "attribution_patching"}
    )
    assert r.status_code == 200, r.text
    approx = r.json()
    assert approx["definitions"]["importance"].startswith("APPROXIMATION (attribution patching)")
    assert not exact["definitions"]["importance"].startswith("APPROXIMATION")
    a = np.concatenate([np.ravel(approx["scores"][s]["importance"]) for s in exact["scores"]])
    e = np.concatenate([np.ravel(per["importance"]) for per in exact["scores"].values()])
    assert a.shape == e.shape and np.isfinite(a.astype(float)).all()
    assert not np.allclose(a, e)  # an estimate, not the measurement (how close: bench)


def test_attribution_patching_on_the_rnn_names_the_field(client, model_ids):
    body = {"model": model_ids["rnn"], "scores": ["importance"]}
    r = client.post(
        f"{API}/heads/scores", json={**body, "importance_method": "attribution_patching"}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "importance_method"
