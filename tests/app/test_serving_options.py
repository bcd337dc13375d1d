"""Serving options read at load: ATTNVIZ_MODELS_MEMORY_MB (a model whose weights do not fit
is not served, and /readyz says why) and ATTNVIZ_DTYPE (bfloat16 products)."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from app.main import create_app
from models.checkpoint import weights_bytes
from tests.helpers import make_settings

API = "/api/v1"


def _sizes(checkpoint_dir) -> dict[str, int]:
    return {
        p.name: weights_bytes(p)
        for p in sorted(checkpoint_dir.iterdir())
        if (p / "config.json").exists()
    }


def test_models_past_the_models_memory_are_refused_by_name(checkpoint_dir):
    sizes = _sizes(checkpoint_dir)
    first, second = list(sizes)[:2]
    budget_mb = -(-(sizes[first]) // (1 << 20))  # room for the first model only
    settings = make_settings(checkpoint_dir, models_memory_mb=budget_mb)
    with TestClient(create_app(settings)) as c:
        ready = c.get("/readyz").json()
        served = {m["id"] for m in c.get(f"{API}/models").json()["models"]}
        assert set(ready["models"]) == served and served
        refused = ready["refused"]
        assert refused and not (set(refused) & served)
        assert set(refused) | served == set(sizes)
        why = refused[second] if second in refused else next(iter(refused.values()))
        assert "ATTNVIZ_MODELS_MEMORY_MB" in why and "MB" in why
        total = sum(sizes[m] for m in served)
        assert total <= budget_mb << 20
        gone = next(iter(refused))
        r = c.post(f"{API}/attention", json={"model": gone, "text": "the cat"})
        assert 400 <= r.status_code < 500 and r.json()["error"]["field"] == "model"


def test_bfloat16_serving_says_so_and_stays_close_to_float32(checkpoint_dir, model_ids):
    mid = model_ids["decoder"]
    body = {"model": mid, "text": "the black cat saw the small dog", "format": "json"}
    with TestClient(create_app(make_settings(checkpoint_dir))) as c32:
        a = c32.post(f"{API}/attention", json=body).json()
        assert c32.get(f"{API}/models/{mid}").json()["dtype"] == "float32"
    with TestClient(create_app(make_settings(checkpoint_dir, dtype="bfloat16"))) as c16:
        assert c16.get("/readyz").json()["dtype"] == "bfloat16"
        assert c16.get(f"{API}/models/{mid}").json()["dtype"] == "bfloat16"
        b = c16.post(f"{API}/attention", json=body).json()
    site = "decoder.self"
    wa = np.array(a["attention"][site], dtype=float)
    wb = np.array(b["attention"][site], dtype=float)
    assert wa.shape == wb.shape
    assert not np.array_equal(wa, wb)  # bfloat16 products: not the float32 numbers
    assert np.abs(wa - wb).max() < 0.05
    np.testing.assert_allclose(wb.sum(-1), 1.0, atol=2e-3)  # softmax still float32
