"""The model cards and /math read against the server: every parameter row adds up from what it
names (the RNN's W_init too), one box for the translator's one token embedding, equations with
real subscripts, metrics in words (their numbers checked by formula), and /math's dot products
on a RoPE model named and computed as the rotated Q′K′ᵀ."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from tests.e2e.urls import post_json

pytestmark = pytest.mark.e2e


def card_of(app_server, model: str) -> dict:
    with urllib.request.urlopen(f"{app_server.url}/api/v1/models/{model}", timeout=30) as r:
        return json.load(r)


def facts(ui, table: str) -> dict[str, str]:
    rows = ui.page.eval_on_selector_all(
        f"{table} tr", "rows => rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent])"
    )
    return dict(rows)


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_the_rnn_card_adds_up_and_draws_one_shared_embedding(ui, app_server):
    model = "rnn-en-fr"
    info = card_of(app_server, model)
    if info.get("cell") != "lstm":
        pytest.skip("no LSTM translator served")
    ui.goto(f"/models/{model}", wait_for="#params .main-svg")
    ui.wait("#params-table tr", state="attached")
    rows = facts(ui, "#params-table")
    total = number(rows.pop("total"))
    assert sum(number(v) for v in rows.values()) == total == info["n_params"]
    # each row is the size of what it names (models/rnn.py's LSTM cells)
    d, e = info["d_model"], info["card"]["recipe"]["architecture"]["d_embed"]
    assert number(rows["decoder's first state (W_init)"]) == d * d + d
    assert number(rows["decoder cell (W_x, W_h)"]) == 4 * ((e + d) * d + d) + 4 * (d * d + d)
    assert number(rows["encoder cell (W_x, W_h)"]) == 4 * (e * d + d) + 4 * (d * d + d)
    # the drawing: one token-embedding box for the one table, W_init's first state, and
    # equations with subscripts, no raw braces
    texts = ui.page.eval_on_selector_all("#arch-svg text", "ts => ts.map((t) => t.textContent)")
    assert sum("Token embedding" in t for t in texts) == 1
    assert any("s₀ = tanh(W_init hₛ)" in t for t in texts)
    assert any("sᵢ₋₁" in t for t in texts) and not any("{" in t for t in texts)
    # the metrics in words, their values the card's
    metrics = facts(ui, "#metrics-table")
    assert not [k for k in metrics if "_" in k], metrics
    held = info["card"]["metrics"]["exact_match_heldout"]
    assert number(metrics["exact-match translations, held-out (unseen combinations)"]) == held


def test_card_metrics_are_in_words_and_the_ratio_is_the_ratio(ui, app_server):
    model = "decoder-mini"
    metrics_json = card_of(app_server, model)["card"].get("metrics") or {}
    if "perplexity_heldout" not in metrics_json:
        pytest.skip("needs the shipped decoder-mini's card")
    ui.goto(f"/models/{model}", wait_for="#params .main-svg")
    ui.wait("#metrics-table tr", state="attached")
    metrics = facts(ui, "#metrics-table")
    assert not [k for k in metrics if "_" in k], metrics
    ratio = number(metrics["perplexity ÷ a unigram model's, held-out (unseen combinations)"])
    want = metrics_json["perplexity_heldout"] / metrics_json["unigram_perplexity_heldout"]
    assert ratio == pytest.approx(want, abs=1e-3)
    assert metrics["greedy continuation of “the black cat”"] == "the black cat ate the mouse"


def test_math_on_rope_names_and_computes_the_rotated_dot_products(ui, app_server):
    text, layer, head = "the cat sat on the mat", 1, 2
    ui.goto(
        f"/math?model=decoder-mini&text={text.replace(' ', '+')}&layer={layer}&head={head}",
        wait_for="section.step:has([data-export='qk']) .main-svg",
    )
    step = "section.step:has([data-export='qk'])"
    assert ui.page.inner_text(f"{step} .formula") == "Q′K′ᵀ"
    words = ui.page.inner_text(step).replace("Q′K′ᵀ", "")
    assert "QKᵀ" not in words and "Q′ and K′" in words
    # the matrix is Q′K′ᵀ of the server's rotated queries and keys, not of the unrotated ones
    body = {"model": "decoder-mini", "text": text, "layers": [layer], "heads": [head]}
    qkv = post_json(app_server.url, "/attention", {**body, "include": ["qkv"]})["qkv"][
        "decoder.self"
    ]
    rot = np.array(qkv["rot_q"][0][0]) @ np.array(qkv["rot_k"][0][0]).T
    plain = np.array(qkv["q"][0][0]) @ np.array(qkv["k"][0][0]).T
    z = np.array(
        ui.page.evaluate(f'() => document.querySelector("{step} .js-plotly-plot").data[0].z')
    )
    tolerance = 0.02 * np.abs(rot).max()  # the page reads half floats
    assert np.abs(z - rot).max() < tolerance
    assert np.abs(z - plain).max() > 10 * tolerance
    # projector mode: the numbers in the cells grow with the rest
    cell = f"{step} .heatmaplayer text, {step} g.text text"
    size = "s => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)"
    before = ui.page.evaluate(size, cell)
    ui.page.click("#projector-toggle")
    ui.page.wait_for_function(f"([s, b]) => ({size})(s) > b", arg=[cell, before])
    assert ui.page.evaluate(size, cell) >= 16
