"""POST /heads/scores/stream: the exact importance sweep's progress (heads ablated, the layer
reached, the seconds left) after each batch, then /heads/scores' answer byte for byte; bad
input is plain JSON before the stream starts; a client that leaves stops the sweep."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fastapi.testclient import TestClient

import app.inference.analyses as analyses
from app.main import create_app
from tests.helpers import make_settings, serve

API = "/api/v1"
TEXT = "the cat sat on the mat and the cat sat on the rug"


def frames(text: str) -> list[tuple[str, str]]:
    """(event, data) of each server-sent event, the data as sent."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], lines["data"]))
    return out


def heads_of(answer: dict) -> tuple[int, int]:
    """(layers, heads) the answer's importance maps cover, every site's layers together."""
    maps = [per["importance"] for per in answer["scores"].values() if per.get("importance")]
    return sum(len(m) for m in maps), sum(len(m) * len(m[0]) for m in maps)


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("decoder", {"text": TEXT}),
        ("encoder", {"run_length": 6, "seed": 1}),
        ("seq2seq", {"text": "the cat sat", "scores": ["importance"]}),
        ("rnn", {"text": "the cat sat"}),  # one head per layer
    ],
)
def test_progress_counts_every_head_then_the_json_answer_byte_for_byte(
    client, other, model_ids, infos, kind, body
):
    mid = model_ids[kind]
    body = {"model": mid, **body}
    r = other.post(f"{API}/heads/scores/stream", json=body)  # a body new to `other`
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    got = frames(r.text)
    assert [name for name, _ in got[:-1]] == ["progress"] * (len(got) - 1)
    assert got[-1][0] == "result"
    plain = client.post(f"{API}/heads/scores", json=body)  # computed apart, not the cache's
    assert plain.status_code == 200
    assert got[-1][1].encode() == plain.content  # the same bytes /heads/scores answers

    layers, heads = heads_of(plain.json())
    assert heads == layers * infos[mid]["n_heads"] > 0
    progress = [json.loads(data) for _, data in got[:-1]]
    done = [p["done"] for p in progress]
    assert done[0] == 0 and done == sorted(set(done)), done  # from 0, strictly increasing
    assert done[-1] == heads
    for p in progress:
        assert p["total"] == heads and p["unit"] == "heads" and p["n_layers"] == layers
        assert 1 <= p["layer"] <= layers
        assert p["layer"] == max(1, -(-p["done"] // infos[mid]["n_heads"]))
        assert (p["eta_s"] is None) == (p["done"] == 0)
        assert p["eta_s"] is None or p["eta_s"] >= 0
    assert progress[-1]["layer"] == layers and progress[-1]["eta_s"] == 0


@pytest.fixture(scope="module")
def other(checkpoint_dir):
    """A second app on the same checkpoints, its own cache: the bodies streamed here are new to
    it, and `client` computes the JSON answers apart."""
    with TestClient(create_app(make_settings(checkpoint_dir))) as c:
        yield c


def test_the_stream_and_heads_scores_share_one_cache(client, other, model_ids):
    """An answer /heads/scores gave is streamed at once (no sweep, no progress); a streamed
    answer is /heads/scores' next answer (no job run)."""
    body = {"model": model_ids["decoder"], "text": TEXT + " again", "importance_mode": "mean"}
    plain = other.post(f"{API}/heads/scores", json=body).content
    runs = other.app.state.engine.jobs_run
    assert frames(other.post(f"{API}/heads/scores/stream", json=body).text) == [
        ("result", plain.decode())
    ]
    assert other.app.state.engine.jobs_run == runs
    streamed = frames(client.post(f"{API}/heads/scores/stream", json=body).text)
    assert streamed[0][0] == "progress" and streamed[-1] == ("result", plain.decode())
    runs = client.app.state.engine.jobs_run
    assert client.post(f"{API}/heads/scores", json=body).content == plain
    assert client.app.state.engine.jobs_run == runs


@pytest.mark.parametrize(
    "change", [{"scores": ["entropy", "induction"]}, {"importance_method": "attribution_patching"}]
)
def test_without_the_exact_sweep_the_stream_sends_only_the_answer(client, other, model_ids, change):
    body = {"model": model_ids["decoder"], "text": TEXT, **change}
    got = frames(other.post(f"{API}/heads/scores/stream", json=body).text)
    assert [name for name, _ in got] == ["result"]
    assert got[0][1].encode() == client.post(f"{API}/heads/scores", json=body).content


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"run_length": 1000}, 422, "run_length"),
        ({"model": "no-such-model"}, 404, "model"),
        ({"importance_mode": "sideways"}, 422, "importance_mode"),
        ({"scores": ["nonsense"]}, 422, "scores"),
        ({"target": "le chat"}, 422, "target"),  # a target without text: not with the probe
    ],
)
def test_bad_input_is_plain_json_naming_the_field(client, model_ids, change, status, field):
    body = {"model": model_ids["decoder"], **change}
    r = client.post(f"{API}/heads/scores/stream", json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert field in (r.json()["error"]["field"] or ""), r.json()


def test_a_client_that_leaves_stops_the_sweep_at_its_next_batch(
    checkpoint_dir, model_ids, monkeypatch
):
    """A real server, a real socket closed after the first batch: the worker is free again
    within a couple of seconds and most batches never ran (one head per batch, each slowed)."""
    real = analyses.importance_sweep
    batches: list[int] = []

    def slow_sweep(*args, **kwargs):
        for item in real(*args[:5], chunk=1):  # one head per batch: many batches
            if isinstance(item, tuple) and item[0] > 0:
                batches.append(item[0])
                time.sleep(0.1)
            yield item

    monkeypatch.setattr(analyses, "importance_sweep", slow_sweep)
    app = create_app(make_settings(checkpoint_dir, max_concurrency=1))
    body = {"model": model_ids["decoder"], "text": TEXT, "scores": ["importance"]}
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        with http.stream("POST", f"{API}/heads/scores/stream", json=body) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:]).get("done", 0) > 0:
                    total = json.loads(line[6:])["total"]
                    break
        left = time.monotonic()  # the connection is closed here
        engine = app.state.engine
        while engine.running and time.monotonic() - left < 10:
            time.sleep(0.02)
        assert engine.running == 0 and time.monotonic() - left < 3.0
        assert total > 10 and len(batches) < total / 2, (len(batches), total)
        ok = http.post(f"{API}/heads/scores", json={**body, "scores": ["entropy"]})
        assert ok.status_code == 200  # the one worker serves the next request
