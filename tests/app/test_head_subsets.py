"""A request for some heads records only those heads' matrices in its forward pass
(AttentionPlan.heads): the answer must be, number for number, the rows of every head's answer,
whatever the route to it (a fresh forward pass, a replay from the trace store), the include,
the query window, or grouped-query attention (the K/V heads are shared, never sliced)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.main import create_app
from app.serialize import loads_binary
from models import ModelConfig, build_model, save_checkpoint
from tests.helpers import SENTENCES, byte_bpe, make_settings

API = "/api/v1/attention"
GQA = "gqa-decoder"
PER_HEAD = ("q", "k", "v", "rot_q", "rot_k", "z")


@pytest.fixture(scope="module")
def gqa_client(tmp_path_factory, checkpoint_dir):
    """The checkpoints under test plus a grouped-query RoPE decoder (4 query heads, 2 K/V)."""
    root = tmp_path_factory.mktemp("gqa")
    torch.manual_seed(3)
    tok = byte_bpe(SENTENCES, ["<pad>", "<|endoftext|>"])
    cfg = ModelConfig(
        kind="decoder", vocab_size=tok.get_vocab_size(), positional="rope", norm="rmsnorm",
        norm_position="pre", activation="swiglu", pad_id=0, bos_id=1, eos_id=1, d_model=32,
        n_heads=4, n_kv_heads=2, n_layers=2, d_ff=64, max_len=128,
    )  # fmt: skip
    save_checkpoint(root / GQA, build_model(cfg).eval(), tok, {"title": GQA, "description": "test"})
    # min 0: every input is kept in the trace store, so the second request of an input replays
    app = create_app(make_settings([checkpoint_dir, root], cache_size=0, trace_cache_min_tokens=0))
    with TestClient(app) as c:
        yield c


def _answer(client, body) -> dict:
    r = client.post(API, json={**body, "format": "binary"})
    assert r.status_code == 200, r.text
    return loads_binary(r.content)


def _per_head(answer: dict) -> dict[str, np.ndarray]:
    """Every (L, H, ...) array of an answer, by its path."""
    out = {f"attention.{s}": a for s, a in answer["attention"].items()}
    for s, a in answer.get("scores", {}).items():
        out[f"scores.{s}"] = a
    for s, parts in answer.get("qkv", {}).items():
        out |= {f"qkv.{s}.{p}": a for p, a in parts.items() if p in PER_HEAD}
    return out


@pytest.mark.parametrize("model", ["decoder-mini", "encoder-mini", "seq2seq-en-fr", GQA])
@pytest.mark.parametrize("include", [[], ["scores", "masks"], ["qkv", "rope"]])
def test_some_heads_are_the_rows_of_every_heads_answer(gqa_client, model, include):
    heads, window = [3, 0], {"query_window": [2, 7]}
    k = len(include)  # each include its own texts: its first request is a fresh forward pass
    for text in (SENTENCES[k], SENTENCES[k + 1] + " " + SENTENCES[k + 2]):
        body = {"model": model, "text": text, "include": include}
        # first some heads (a fresh forward pass), then all (a replay), then some (a replay)
        first = _answer(gqa_client, {**body, "heads": heads})
        every = _answer(gqa_client, body)
        again = _answer(gqa_client, {**body, "heads": heads, **window})
        full = _per_head(every)
        assert first["heads"] == heads and set(_per_head(first)) == set(full)
        for path, a in _per_head(first).items():
            np.testing.assert_array_equal(a, full[path][:, heads], err_msg=path)
        for path, a in _per_head(again).items():
            want = full[path][:, heads]
            if path.startswith(("attention", "scores")) or path.endswith(("q", "z")):
                want = want[:, :, 2:7]  # the window keeps query rows
            np.testing.assert_array_equal(a, want, err_msg=path)


def test_a_model_reading_every_heads_pattern_records_them_all(gqa_client):
    """Value-weighted norms read the whole pattern: with `norms` the plan keeps every head.
    (Two heads, out of order: one head's sliced pattern would broadcast over all and hide it.)"""
    body = {"model": "decoder-mini", "text": SENTENCES[3], "include": ["norms"]}
    some = _answer(gqa_client, {**body, "heads": [3, 1]})
    every = _answer(gqa_client, body)
    for s in every["norms"]:
        np.testing.assert_array_equal(some["norms"][s], every["norms"][s][:, [3, 1]])
        np.testing.assert_array_equal(some["attention"][s], every["attention"][s][:, [3, 1]])
