"""A job whose clients have all gone (timed out or disconnected) stops at its next hook point:
the worker is free again within a second, not after the whole computation."""

from __future__ import annotations

import time

import pytest
import torch
from fastapi.testclient import TestClient

from app import inference
from app.main import create_app
from models.hooks import Cancelled, capture, stoppable
from tests.helpers import make_settings

API = "/api/v1"
GIVE_UP_S = 20.0  # the endless job's own bound, so a regression fails instead of hanging


def test_a_timed_out_job_frees_its_worker_within_a_second(checkpoint_dir, model_ids, monkeypatch):
    passes = []

    def endless(inp, *args, **kwargs):
        model, ids = inp.entry.model, torch.tensor([inp.source.ids])
        start = time.monotonic()
        with capture(model, names=["decoder.blocks.*.attn.hook_pattern"]):
            while time.monotonic() - start < GIVE_UP_S:  # forward passes, layer after layer
                model.decode(ids)
                passes.append(1)
        raise AssertionError("the job was never stopped")

    monkeypatch.setattr(inference, "head_scores", endless)
    settings = make_settings(checkpoint_dir, request_timeout_s=0.5, max_concurrency=1)
    with TestClient(create_app(settings)) as c:
        engine = c.app.state.engine
        body = {"model": model_ids["decoder"], "text": "the cat sat on the mat " * 8}
        r = c.post(f"{API}/heads/scores", json=body)
        assert r.status_code == 504
        gone = time.monotonic()
        while engine.running and time.monotonic() - gone < 5:
            time.sleep(0.02)
        assert engine.running == 0 and time.monotonic() - gone < 1.0
        assert passes  # it was running, not refused
        after = len(passes)
        ok = c.post(f"{API}/attention", json={"model": model_ids["decoder"], "text": "a cat"})
        assert ok.status_code == 200 and len(passes) == after  # the worker serves the next


def test_a_capture_stops_at_its_next_hook_point_once_the_event_is_set():
    import threading

    from tests.helpers import tiny

    model = tiny("decoder")
    ids = torch.tensor([[1, 2, 3]])
    event = threading.Event()
    with stoppable(event), capture(model, names=[]):
        model.decode(ids)  # not set: runs to the end
    event.set()  # e.g. the client went away
    with (
        pytest.raises(Cancelled, match="stopped at decoder"),
        stoppable(event),
        capture(model, names=[]),
    ):
        model.decode(ids)
    with capture(model, names=[]):  # outside stoppable(): no effect
        model.decode(ids)
