"""The engine and the envelope around every request: cache, coalescing, back-pressure,
errors without stack traces, request ids, metrics, security headers, CORS."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from app import inference
from app.main import create_app
from tests.helpers import make_settings

API = "/api/v1"


async def _with_app(app, fn):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await fn(client)


def _count_forward(app, model_id, monkeypatch, delay=0.0) -> list:
    """Wrap the model's encode() on the loaded entry: every call is one forward pass."""
    calls = []
    entry = app.state.registry.get(model_id)
    original = entry.model.encode

    def counting(*args, **kwargs):
        calls.append(1)
        time.sleep(delay)
        return original(*args, **kwargs)

    monkeypatch.setattr(entry.model, "encode", counting)
    return calls


def test_a_class_of_40_clicking_the_same_preset_costs_one_forward_pass(
    checkpoint_dir, model_ids, monkeypatch
):
    app = create_app(make_settings(checkpoint_dir))
    body = {"model": model_ids["encoder"], "text": "the cat sat on the mat"}

    async def scenario(client):
        calls = _count_forward(app, model_ids["encoder"], monkeypatch, delay=0.2)
        first = await asyncio.gather(
            *[client.post(f"{API}/attention", json=body) for _ in range(40)]
        )
        later = await asyncio.gather(
            *[client.post(f"{API}/attention", json=body) for _ in range(5)]
        )
        return calls, first + later

    calls, responses = asyncio.run(_with_app(app, scenario))
    assert all(r.status_code == 200 for r in responses)
    assert len({r.content for r in responses}) == 1
    assert len(calls) == 1  # 39 coalesced in flight, 5 cache hits
    metrics = app.state.metrics
    assert metrics.coalesced.labels("attention")._value.get() == 39
    assert metrics.cache_hits.labels("attention")._value.get() == 5


def test_cache_key_is_the_validated_request(client, model_ids):
    """Defaults filled in: the same request with and without them is one cache entry."""
    engine = client.app.state.engine
    mid = model_ids["decoder"]
    client.post(f"{API}/attention", json={"model": mid, "text": "a fresh sentence for the key"})
    runs = engine.jobs_run
    r = client.post(
        f"{API}/attention",
        json={
            "model": mid,
            "text": "a fresh sentence for the key",
            "format": "json",
            "include": [],
        },
    )
    assert r.status_code == 200 and engine.jobs_run == runs


def test_full_queue_gives_503_with_retry_after(checkpoint_dir, model_ids, monkeypatch):
    app = create_app(make_settings(checkpoint_dir, max_concurrency=1, max_queue=1, retry_after_s=2))
    original = inference.attention

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return original(*args, **kwargs)

    monkeypatch.setattr(inference, "attention", slow)
    mid = model_ids["encoder"]

    async def scenario(client):
        reqs = [
            client.post(f"{API}/attention", json={"model": mid, "text": f"sentence number {i}"})
            for i in range(6)
        ]
        return await asyncio.gather(*reqs)

    t0 = time.perf_counter()
    responses = asyncio.run(_with_app(app, scenario))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 503, 503, 503, 503]  # one running + one queued; no pile-up
    assert time.perf_counter() - t0 < 3
    busy = [r for r in responses if r.status_code == 503]
    assert all(r.headers["retry-after"] == "2" for r in busy)
    assert busy[0].json()["error"]["code"] == "overloaded"
    assert app.state.metrics.rejected.labels("attention")._value.get() == 4


def test_unexpected_errors_are_500_without_a_stack_trace(
    checkpoint_dir, model_ids, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(inference, "fill_mask", broken)
    with TestClient(create_app(make_settings(checkpoint_dir))) as c:
        with caplog.at_level(logging.ERROR):
            r = c.post(f"{API}/fill-mask", json={"model": model_ids["encoder"], "text": "a [MASK]"})
        assert r.status_code == 500
        err = r.json()["error"]
        assert err["code"] == "internal_error" and r.headers["x-request-id"] in err["message"]
        assert "secret" not in r.text and "Traceback" not in r.text
        assert r.headers["content-security-policy"]  # the envelope still applies
        assert any(rec.exc_info for rec in caplog.records)


def test_request_id_is_echoed_and_logged_once(client, model_ids, caplog):
    with caplog.at_level(logging.INFO, logger="attnviz.access"):
        r = client.post(
            f"{API}/tokenize",
            json={"model": model_ids["encoder"], "text": "hello"},
            headers={"X-Request-ID": "lecture-3.slide-12"},
        )
    assert r.headers["x-request-id"] == "lecture-3.slide-12"
    lines = [rec.getMessage() for rec in caplog.records if "lecture-3.slide-12" in rec.getMessage()]
    assert len(lines) == 1 and "POST /api/v1/tokenize 200" in lines[0] and "ms" in lines[0]
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces\n"})
    assert made.headers["x-request-id"] != "bad id with spaces\n"
    assert len(made.headers["x-request-id"]) == 16


def _timing(response) -> dict[str, str]:
    """Server-Timing as name -> dur (or desc)."""
    out = {}
    for metric in response.headers["server-timing"].split(","):
        name, _, param = metric.strip().partition(";")
        out[name] = param.split("=", 1)[1]
    return out


def test_server_timing_says_where_an_answers_time_went(client, model_ids):
    """`app` is the whole request; an answer made now adds the engine's stages (they fit in
    it), a cached one says so; a request the engine never saw has `app` alone."""
    body = {"model": model_ids["encoder"], "text": "server timing, once", "format": "binary"}
    made = _timing(client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "zstd"}))
    assert set(made) == {"app", "wait", "compute", "compress"}
    stages = [float(made[k]) for k in ("wait", "compute", "compress")]
    assert all(v >= 0 for v in stages) and sum(stages) <= float(made["app"])
    cached = _timing(
        client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "zstd"})
    )
    assert cached.keys() == {"app", "cache"} and cached["cache"] == "hit"
    assert _timing(client.get("/healthz")).keys() == {"app"}
    refused = client.post(f"{API}/attention", json={**body, "model": "nope"})
    assert refused.status_code == 404 and _timing(refused).keys() == {"app"}


def test_a_cached_answer_is_kept_compressed_and_served_in_every_encoding(app, client, model_ids):
    """A large answer is cached in the one encoding it was made for (not also plain); a client
    of another encoding, or of none, gets the same bytes once decoded."""
    import zstandard

    body = {"model": model_ids["encoder"], "text": "kept compressed " * 8, "format": "f16"}
    first = client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "zstd"})
    assert first.headers["content-encoding"] == "zstd"
    plain = client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and _timing(plain)["cache"] == "hit"
    assert zstandard.ZstdDecompressor().decompress(first.read()) == plain.content
    hit = next(
        p for p in app.state.engine.cache._data.values() if p.encoded.get("zstd") == first.read()
    )
    assert hit.plain is None and hit.nbytes == len(first.read()) and hit.size == len(plain.content)
    zipped = client.post(f"{API}/attention", json=body, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and _timing(zipped)["cache"] == "hit"
    assert zipped.content == plain.content  # httpx decodes gzip itself


def test_security_headers_on_every_response(client):
    for r in (client.get("/healthz"), client.get("/nope"), client.get("/docs")):
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp
        assert "script-src 'self'" in csp and "img-src 'self' data: blob:" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"


def test_cors_is_off_unless_configured(client, checkpoint_dir):
    origin = {"Origin": "https://elsewhere.example"}
    assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    app = create_app(make_settings(checkpoint_dir, cors_origins=["https://elsewhere.example"]))
    with TestClient(app) as c:
        r = c.get("/healthz", headers=origin)
        assert r.headers["access-control-allow-origin"] == "https://elsewhere.example"


def test_metrics_count_requests_per_route(client, model_ids):
    client.post(f"{API}/tokenize", json={"model": model_ids["encoder"], "text": "count me"})
    text = client.get("/metrics").text
    assert 'attnviz_requests_total{method="POST",route="/api/v1/tokenize",status="200"}' in text
    assert 'attnviz_request_duration_seconds_count{route="/api/v1/tokenize"}' in text
    assert "attnviz_inference_seconds_bucket" in text
    assert "attnviz_cache_hits_total" in text


def test_cors_origins_from_the_environment(monkeypatch):
    from app.config import Settings

    monkeypatch.setenv("ATTNVIZ_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.cuda
def test_cuda_gives_the_cpu_results(checkpoint_dir, model_ids, client):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    body = {"model": model_ids["seq2seq"], "text": "the cat sat on the mat", "target": "le chat"}
    cpu = client.post(f"{API}/attention", json=body).json()
    with TestClient(create_app(make_settings(checkpoint_dir, device="cuda"))) as c:
        assert c.get("/readyz").json()["device"].startswith("cuda")
        gpu = c.post(f"{API}/attention", json=body).json()
        import numpy as np

        for site in cpu["attention"]:
            np.testing.assert_allclose(
                np.array(gpu["attention"][site]), np.array(cpu["attention"][site]), atol=1e-3
            )
        gen = c.post(f"{API}/generate", json={"model": model_ids["decoder"], "text": "the"})
        assert gen.status_code == 200


def test_a_job_past_the_timeout_is_504(checkpoint_dir, model_ids, monkeypatch):
    original = inference.classify

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(inference, "classify", slow)
    with TestClient(create_app(make_settings(checkpoint_dir, request_timeout_s=0.1))) as c:
        r = c.post(f"{API}/classify", json={"model": model_ids["encoder"], "text": "slow one"})
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"


def test_not_ready_before_the_lifespan_ran(checkpoint_dir):
    c = TestClient(create_app(make_settings(checkpoint_dir)))  # no `with`: no lifespan
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "starting"
    assert c.get("/healthz").status_code == 200
