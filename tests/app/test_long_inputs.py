"""Long inputs: pooled matrices, the binary transport, and the memory budget."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.serialize import decode_f16, loads_binary
from tests.helpers import make_settings

API = "/api/v1"
LONG = " ".join(["the black cat ate the mouse and the dog saw the bird"] * 8)


def numpy_pool(a: np.ndarray, qe: list[int], ke: list[int]) -> np.ndarray:
    out = np.zeros((*a.shape[:-2], len(qe) - 1, len(ke) - 1))
    for i in range(len(qe) - 1):
        for j in range(len(ke) - 1):
            out[..., i, j] = a[..., qe[i] : qe[i + 1], ke[j] : ke[j + 1]].sum(-1).mean(-1)
    return out


@pytest.mark.parametrize("kind", ["encoder", "decoder", "seq2seq"])
def test_pooled_attention_matches_a_numpy_reference(client, model_ids, kind):
    body = {"model": model_ids[kind], "text": LONG, "layers": [0, 1]}
    full = client.post(f"{API}/attention", json=body).json()
    pooled = client.post(f"{API}/attention", json={**body, "pool": 7}).json()
    edges = pooled["pool"]["edges"]
    assert pooled["pool"]["size"] == 7
    for name, seq in full["tokens"].items():
        assert edges[name][0] == 0 and edges[name][-1] == len(seq)
    axes = {"encoder.self": ("source", "source"), "decoder.self": ("source", "source")}
    if kind == "seq2seq":
        axes = {
            "encoder.self": ("source", "source"),
            "decoder.self": ("target", "target"),
            "decoder.cross": ("target", "source"),
        }
    for site, att in pooled["attention"].items():
        q, k = axes[site]
        expected = numpy_pool(np.array(full["attention"][site]), edges[q], edges[k])
        got = np.array(att)
        assert got.shape[-2:] == (len(edges[q]) - 1, len(edges[k]) - 1)
        np.testing.assert_allclose(got, expected, atol=1e-3)  # sums of cells rounded to 4 decimals
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=2e-3)


def test_pool_refuses_what_cannot_be_pooled(client, model_ids):
    body = {"model": model_ids["decoder"], "text": "the cat", "pool": 4, "include": ["qkv"]}
    r = client.post(f"{API}/attention", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "pool"
    r = client.post(f"{API}/attention", json={**body, "include": [], "pool": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "pool"


@pytest.mark.parametrize("kind", ["encoder", "seq2seq"])
def test_binary_answers_carry_the_values_in_half_floats(client, model_ids, kind):
    body = {"model": model_ids[kind], "text": LONG, "include": ["scores", "masks"]}
    f16 = client.post(f"{API}/attention", json={**body, "format": "f16"}).json()
    full = client.post(f"{API}/attention", json=body).json()
    r = client.post(f"{API}/attention", json={**body, "format": "binary"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.content[:4] == b"ATNV"
    binary = loads_binary(r.content)
    assert binary["tokens"] == f16["tokens"] and binary["masks"] == f16["masks"]
    for site, t in f16["scores"].items():  # NaN (masked scores) included
        np.testing.assert_array_equal(binary["scores"][site], decode_f16(t))
    for site, weights in full["attention"].items():
        # weights keep their half-float precision (no 1e-3 grid): small ones survive
        got = binary["attention"][site]
        np.testing.assert_allclose(got, np.array(weights), rtol=1e-3, atol=6e-5)
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=5e-3)


def test_requests_over_the_memory_budget_get_a_422_that_says_what_fits(
    checkpoint_dir, model_ids, infos
):
    mid = model_ids["encoder"]
    info = infos[mid]
    n = min(200, info["max_len"] - 2)
    T, H, L = n + 2, info["n_heads"], info["n_layers"]
    # a budget that holds the forward pass and half the heads' answers (with norms)
    forward, per_head = 3 * H * T * T * 4, 3 * 2 * T * T * 4
    budget_mb = -(-(forward + per_head * H * L // 2) // 2**20)
    app = create_app(make_settings(checkpoint_dir, memory_budget_mb=budget_mb))
    body = {"model": mid, "text": " ".join(["cat"] * n), "include": ["norms"]}
    with TestClient(app) as c:
        err = c.post(f"{API}/attention", json=body).json()["error"]
        assert err["field"] == "heads" and err["code"] == "too_much_memory"
        assert "at most" in err["message"]
        fits = int(err["message"].split("at most ")[1].split()[0])
        assert 1 <= fits < H
        ok = c.post(f"{API}/attention", json={**body, "heads": list(range(fits))})
        assert ok.status_code == 200
        assert c.post(f"{API}/attention", json={**body, "pool": 16}).status_code == 200


EVERYTHING = ["scores", "masks", "qkv", "rope", "hidden", "norms"]


@pytest.mark.parametrize("kind", ["encoder", "decoder", "seq2seq"])
def test_another_head_of_the_same_input_costs_no_forward_pass(checkpoint_dir, model_ids, kind):
    """The second request replays one attention module on its stored input; its answer is
    the one a full forward pass gives, number for number."""
    replaying = create_app(make_settings(checkpoint_dir, cache_size=0, trace_cache_min_tokens=0))
    fresh = create_app(make_settings(checkpoint_dir, cache_size=0, trace_cache_mb=0))
    base = {"model": model_ids[kind], "text": "the black cat ate the mouse"}
    asks = [
        {"layers": [1], "heads": [0]},
        {"layers": [0], "heads": [2, 3], "include": EVERYTHING},
        {"layers": [1, 0], "include": EVERYTHING, "format": "f16"},
        {"pool": 3, "include": ["norms"]},
    ]
    with TestClient(replaying) as a, TestClient(fresh) as b:
        for ask in asks:
            got = a.post(f"{API}/attention", json={**base, **ask})
            want = b.post(f"{API}/attention", json={**base, **ask})
            assert got.status_code == want.status_code == 200
            assert got.json() == want.json()
        store = replaying.state.traces
        assert store.computed == 1 and store.hits == len(asks) - 1
        assert fresh.state.traces.computed == len(asks)


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_a_query_window_returns_those_rows_of_every_matrix(client, model_ids, kind):
    body = {"model": model_ids[kind], "text": LONG, "include": ["scores", "masks", "norms", "qkv"]}
    full = client.post(f"{API}/attention", json=body).json()
    part = client.post(f"{API}/attention", json={**body, "query_window": [3, 9]}).json()
    assert part["query_window"] == [3, 9]
    for name in ("attention", "scores", "norms"):
        for site, t in full[name].items():
            assert np.array_equal(np.array(part[name][site], dtype=float),
                                  np.array(t, dtype=float)[:, :, 3:9], equal_nan=True)  # fmt: skip
    for site, m in full["masks"].items():
        assert part["masks"][site] == m[3:9]
    for site, parts in full["qkv"].items():
        assert np.array_equal(part["qkv"][site]["q"], np.array(parts["q"])[:, :, 3:9])
        assert part["qkv"][site]["k"] == parts["k"]  # keys are not queries: all of them
        assert np.array_equal(part["qkv"][site]["x"], np.array(parts["x"])[:, 3:9])
    only_qkv = client.post(f"{API}/attention", json={**body, "weights": False}).json()
    assert "attention" not in only_qkv and only_qkv["qkv"] == full["qkv"]


def test_bad_query_windows_name_the_field(client, model_ids):
    base = {"model": model_ids["decoder"], "text": "the cat sat"}
    for window, extra in (([5, 5], {}), ([500, 600], {}), ([0, 2], {"pool": 4})):
        r = client.post(f"{API}/attention", json={**base, "query_window": window, **extra})
        assert r.status_code == 422 and r.json()["error"]["field"] == "query_window"
