"""Overload, on a small engine (1 worker thread, a queue of 4) behind a real uvicorn: excess
requests get 503 + Retry-After at once, before they are validated or tokenized; /healthz
answers while every worker is busy; a job whose client went away never runs; a job that
waited past the queue deadline is dropped with a 503; the queue is sized in seconds of work.

The jobs block on a gate that the test opens, so what is checked is the order of events
(answered while the worker was still blocked), never how fast this machine is.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from app import inference
from app.config import Settings
from app.engine import Engine
from app.errors import ApiError
from app.inputs import Inputs
from app.main import create_app
from app.metrics import Metrics
from tests.helpers import make_settings, serve

API = "/api/v1"


class Gate:
    """Stands in for inference.attention: records the ids each job reads, then waits until
    the test opens the gate."""

    def __init__(self, original) -> None:
        self.original = original
        self.opened = threading.Event()
        self.ran: list[tuple[int, ...]] = []

    def __call__(self, inp, *args, **kwargs):
        self.ran.append(tuple(inp.source.ids))
        if not self.opened.wait(60):
            raise RuntimeError("the test never opened the gate")
        return self.original(inp, *args, **kwargs)


@pytest.fixture
def gate(monkeypatch):
    g = Gate(inference.attention)
    monkeypatch.setattr(inference, "attention", g)
    yield g
    g.opened.set()  # never leave a worker thread blocked


def small_engine(checkpoint_dir, **overrides) -> Settings:
    base = dict(
        max_concurrency=1, max_queue=4, queue_budget_s=60, queue_deadline_s=60, cache_size=0
    )
    return make_settings(checkpoint_dir, **{**base, **overrides})


async def until(condition, timeout: float = 30) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def dropped(app, reason: str) -> float:
    return sum(
        s.value
        for m in app.state.metrics.dropped.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels["reason"] == reason
    )


def raw_post(url: str, path: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return parts.hostname, parts.port, head.encode() + body


async def hang_up_after_sending(url: str, body: dict) -> asyncio.StreamWriter:
    """A client that sends its request and will close the connection without reading."""
    import json

    host, port, data = raw_post(url, f"{API}/attention", json.dumps(body).encode())
    _, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    return writer


def test_excess_requests_get_503_at_once_and_healthz_stays_up(
    checkpoint_dir, model_ids, gate, monkeypatch
):
    app = create_app(small_engine(checkpoint_dir, retry_after_s=3))
    engine_of = lambda: app.state.engine  # noqa: E731 - made by the lifespan
    enc = model_ids["encoder"]
    resolved: list[str] = []  # the requests that got as far as resolving (tokenizing) input
    resolve = Inputs.attention
    monkeypatch.setattr(
        Inputs, "attention", lambda self, body: resolved.append(body.text) or resolve(self, body)
    )

    async def scenario(url: str):
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:

            def post(i: int):
                body = {"model": enc, "text": f"sentence number {i}"}
                return c.post(f"{API}/attention", json=body)

            admitted = [asyncio.ensure_future(post(0))]
            await until(lambda: engine_of().running == 1)
            admitted += [asyncio.ensure_future(post(i)) for i in range(1, 5)]
            await until(lambda: engine_of().queued == 4)
            n_resolved = len(resolved)
            # all of these are answered while the only worker is still blocked
            excess = await asyncio.wait_for(asyncio.gather(*[post(i) for i in range(5, 13)]), 30)
            invalid = await c.post(f"{API}/attention", json={"model": enc, "text": 42})
            health = await c.get("/healthz")
            head = await c.head("/healthz")
            ready = await c.get("/readyz")
            resolved_while_full = len(resolved) - n_resolved
            gate.opened.set()
            done = await asyncio.wait_for(asyncio.gather(*admitted), 60)
            return excess, invalid, health, head, ready, resolved_while_full, done

    with serve(app) as url:
        excess, invalid, health, head, ready, resolved_while_full, done = asyncio.run(scenario(url))
    assert [r.status_code for r in excess] == [503] * 8
    for r in excess:
        assert r.headers["retry-after"] == "3"
        assert r.json()["error"]["code"] == "overloaded"
    # admission comes before validation and tokenizing: rejected requests cost neither
    assert invalid.status_code == 503 and resolved_while_full == 0
    assert health.status_code == 200 and head.status_code == 200
    assert ready.status_code == 503 and ready.json()["status"] == "overloaded"
    assert ready.json()["queue"]["waiting"] == 4
    assert [r.status_code for r in done] == [200] * 5
    assert app.state.metrics.rejected.labels("attention")._value.get() == 9


def test_a_job_whose_client_left_is_never_run(checkpoint_dir, model_ids, gate):
    app = create_app(small_engine(checkpoint_dir))
    enc = model_ids["encoder"]
    left = {"model": enc, "text": "nobody waits for this sentence"}
    twin = {"model": enc, "text": "two clients ask for this sentence"}

    async def scenario(url: str):
        engine = app.state.engine
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            first = asyncio.ensure_future(
                c.post(f"{API}/attention", json={"model": enc, "text": "the first one"})
            )
            await until(lambda: engine.running == 1)
            # queued, then the client hangs up: the job is dropped at once
            gone = await hang_up_after_sending(url, left)
            await until(lambda: engine.queued == 1)
            gone.close()
            await until(lambda: dropped(app, "disconnected") == 1 and engine.queued == 0)
            # two clients wait for one job; one hangs up: the other still gets its answer
            twin_gone = await hang_up_after_sending(url, twin)
            await until(lambda: engine.queued == 1)
            staying = asyncio.ensure_future(c.post(f"{API}/attention", json=twin))
            await until(lambda: app.state.metrics.coalesced.labels("attention")._value.get() == 1)
            twin_gone.close()
            await asyncio.sleep(0.2)  # time for the server to notice the hang-up
            gate.opened.set()
            return await first, await staying, c

    with serve(app) as url:
        first, staying, client = asyncio.run(scenario(url))
        with httpx.Client(base_url=url) as c:
            ids = {
                name: tuple(t["id"] for t in c.post(f"{API}/tokenize", json=body).json()["tokens"])
                for name, body in (("left", left), ("twin", twin))
            }
    assert first.status_code == 200 and staying.status_code == 200
    assert ids["left"] not in gate.ran  # never computed
    assert gate.ran.count(ids["twin"]) == 1  # computed once, for the client who stayed
    assert dropped(app, "disconnected") == 1
    assert app.state.engine.queued == 0 and app.state.engine.running == 0


def test_a_job_that_waited_past_the_deadline_gets_503_and_is_not_run(
    checkpoint_dir, model_ids, gate
):
    app = create_app(small_engine(checkpoint_dir, queue_deadline_s=0.3, retry_after_s=2))
    enc = model_ids["encoder"]
    late = {"model": enc, "text": "this one waits too long"}

    async def scenario(url: str):
        engine = app.state.engine
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            first = asyncio.ensure_future(
                c.post(f"{API}/attention", json={"model": enc, "text": "a long job"})
            )
            await until(lambda: engine.running == 1)
            waiting = asyncio.ensure_future(c.post(f"{API}/attention", json=late))
            await until(lambda: engine.queued == 1)
            await asyncio.sleep(0.5)  # past the deadline
            gate.opened.set()
            return await first, await waiting

    with serve(app) as url:
        first, waiting = asyncio.run(scenario(url))
    assert first.status_code == 200
    assert waiting.status_code == 503 and waiting.headers["retry-after"] == "2"
    assert "waited" in waiting.json()["error"]["message"]
    assert len(gate.ran) == 1  # only the first job ran
    assert dropped(app, "expired") == 1


def test_the_queue_holds_seconds_of_work_not_a_number_of_jobs():
    engine = Engine(Settings(max_concurrency=2, queue_budget_s=1.0, max_queue=1000), Metrics())
    try:

        def admitted(endpoint: str) -> int:
            jobs = []
            with pytest.raises(ApiError) as refused:
                while True:
                    jobs.append(engine._admit(endpoint))
            assert refused.value.status == 503
            for job in jobs:  # empty the queue again
                with engine._lock:
                    engine._leave_queue(job, "dropped")
            return len(jobs)

        engine.service_s = {"slow": 0.5, "fast": 1 / 16, "long": 5.0}
        # two go to the free workers; then a job is admitted while the work queued ahead of
        # it, per worker, is under 1 s (none has started here: all count as queued)
        assert admitted("slow") == 4  # the 4th waits for 1.5 s of work / 2 workers
        assert admitted("fast") == 32  # the 32nd waits for 31/16 s / 2
        assert admitted("long") == 2  # longer than the budget: only onto free workers
        assert engine.estimate("unmeasured") > 0  # a prior until the first job is measured
        engine.settings.max_queue = 10
        assert admitted("fast") == 12  # the hard cap still holds: 10 behind the 2 workers

        job = engine._admit("new")
        assert job.deadline == float("inf")  # onto a free worker: not queued, no deadline
        engine._start(job)
        engine._finish(job, 0.4)
        assert engine.service_s["new"] == 0.4  # the first measurement
        job = engine._admit("new")
        engine._start(job)
        engine._finish(job, 1.4)
        assert engine.service_s["new"] == pytest.approx(0.4 + 0.2 * (1.4 - 0.4))
    finally:
        engine.shutdown()


def test_the_server_sheds_before_the_app_and_paces_clients_that_retry_at_once(
    checkpoint_dir, model_ids, gate
):
    """Under app.server's protocol the 503 is written before the request reaches the app (no
    request id, no access line), and that connection is not read again for Retry-After
    seconds: a client hammering without pause costs the event loop next to nothing."""
    import json
    import time

    from app.server import GuardedHttpProtocol

    settings = small_engine(checkpoint_dir, max_queue=0, retry_after_s=1)
    app = create_app(settings)
    enc = model_ids["encoder"]

    def request(text: str) -> bytes:
        body = json.dumps({"model": enc, "text": text}).encode()
        return raw_post(url, f"{API}/attention", body)[2]

    async def exchange(reader, writer, data: bytes) -> tuple[bytes, float]:
        t0 = time.monotonic()
        writer.write(data)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
                     .split(b":")[1])  # fmt: skip
        await reader.readexactly(length)
        return head, time.monotonic() - t0

    async def scenario():
        engine = app.state.engine
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            first = asyncio.ensure_future(
                c.post(f"{API}/attention", json={"model": enc, "text": "the only job"})
            )
            await until(lambda: engine.running == 1)
            parts = urlsplit(url)
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            refused, _ = await exchange(reader, writer, request("one too many"))
            again, waited = await exchange(reader, writer, request("and again at once"))
            health = await c.get("/healthz")
            writer.close()
            gate.opened.set()
            return refused, again, waited, health, await first

    with serve(app, GuardedHttpProtocol.using(settings)) as url:
        refused, again, waited, health, first = asyncio.run(scenario())
    for head in (refused, again):
        assert head.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in head.lower()
        assert b"x-request-id" not in head.lower()  # the app never saw it
    assert waited >= 0.9  # the retry sent at once was read a Retry-After later
    assert health.status_code == 200 and first.status_code == 200
    assert app.state.metrics.rejected.labels("attention")._value.get() == 2
    assert len(gate.ran) == 1
