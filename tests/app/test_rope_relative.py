"""POST /rope/relative: RoPE scores depend only on m − n; additive positions do not."""

from __future__ import annotations

import numpy as np

API = "/api/v1"


def test_rope_relative_matrix_is_constant_along_diagonals(client, model_ids, infos):
    mid = model_ids["rope"]
    r = client.post(
        f"{API}/rope/relative",
        json={"model": mid, "text": "the black cat ate the mouse", "layer": 1, "head": 2,
              "query": 3, "key": 1, "max_position": 48},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "rope" and body["positional"] == "rope"
    s = np.array(body["scores"])
    assert s.shape == (48, 48)
    for offset in range(-47, 48):
        diag = np.diagonal(s, offset)
        np.testing.assert_allclose(diag, diag[0], atol=1e-3)
    assert np.ptp(s) > 0  # not trivially constant
    assert body["query"]["text"] and body["key"]["text"]


def test_rope_relative_reproduces_the_real_score(client, model_ids):
    """scores[query][key] is the head's actual pre-softmax score for that pair."""
    mid = model_ids["rope"]
    text = "the black cat ate the mouse"
    rel = client.post(
        f"{API}/rope/relative",
        json={"model": mid, "text": text, "layer": 0, "head": 1, "query": 4, "key": 2,
              "max_position": 8},
    ).json()  # fmt: skip
    att = client.post(
        f"{API}/attention",
        json={"model": mid, "text": text, "layers": [0], "heads": [1], "include": ["scores"]},
    ).json()
    real = att["scores"]["decoder.self"][0][0][4][2]
    assert abs(rel["scores"][4][2] - real) < 1e-3


def test_additive_positions_are_not_relative(client, model_ids):
    mid = model_ids["additive"]
    r = client.post(
        f"{API}/rope/relative",
        json={"model": mid, "text": "the cat sat", "query": 1, "key": 2, "max_position": 16},
    ).json()
    assert r["method"] == "additive"
    s = np.array(r["scores"])
    assert s.shape == (16, 16)
    # absolute positions leak in: the scores move along the diagonals (m − n fixed), by a
    # good share of how much the whole matrix moves
    along = max(np.ptp(np.diagonal(s, offset)) for offset in range(-14, 15))
    assert along > 0.05 * np.ptp(s) > 0
