"""/positions and /rope read against the server's numbers and the formulas: captions that
follow the model's kind of positions, colour scales that follow the data, the embedding's
scale stated, the angle table θᵢ·m, and the sinusoidal comparison on the tokens picked."""

from __future__ import annotations

import json
import math
import urllib.request

import pytest

from tests.e2e.urls import post_json

pytestmark = pytest.mark.e2e

SINUSOID_WORDS = ("oscillate", "sine or cosine wave")


def get_json(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/v1{path}", timeout=60) as r:
        return json.load(r)


def texts(page, selector: str) -> str:
    return " ".join(page.eval_on_selector_all(selector, "els => els.map((e) => e.textContent)"))


def test_positions_follow_the_models_kind_and_its_numbers(ui, app_server):
    # a learned table: no sinusoid captions, and a colour scale to its own largest |value|
    ui.goto("/positions?model=encoder-mini&text=the+cat+sat", wait_for="#emb-sum .main-svg")
    ui.wait("#table .main-svg", state="attached")
    api = get_json(app_server.url, "/models/encoder-mini/positions?n=64&text=the+cat+sat")
    top = max(abs(v) for row in api["table"] for v in row)
    trace = ui.page.evaluate("() => document.querySelector('#table').data[0]")
    assert trace["zmax"] == pytest.approx(top) and trace["zmin"] == pytest.approx(-top)
    assert f"±{top:.3f}" in ui.page.inner_text("#table-note")
    captions = texts(ui.page, "#table-sub, #curves-sub, #similarity-sub")
    assert "learned" in captions and not any(w in captions for w in SINUSOID_WORDS)
    assert api["embedding"]["scale"] == 1 and ui.page.inner_text("#emb-scale") == ""

    # the original Transformer: the sinusoid's captions, and the embedding's × √d_model stated
    ui.goto("/positions?model=seq2seq-en-fr&text=the+cat+sat", wait_for="#emb-sum .main-svg")
    ui.page.wait_for_function("() => document.querySelector('#emb-scale').textContent !== ''")
    d = app_server.models["seq2seq-en-fr"]["d_model"]
    recipe = get_json(app_server.url, "/models/seq2seq-en-fr")["card"].get("recipe") or {}
    assert recipe.get("architecture", {}).get("scale_embeddings", True)  # as it was trained
    assert ui.page.inner_text("#emb-scale") == f"× √d_model = √{d} = {math.sqrt(d):.2f}"
    captions = texts(ui.page, "#table-sub, #curves-sub")
    assert all(w in captions for w in SINUSOID_WORDS)
    assert "±1.000" in ui.page.inner_text("#table-note")


def test_rope_sliders_start_at_the_tokens_and_the_sinusoid_compares_the_same_words(ui, app_server):
    text = "the black cat ate the mouse"
    ui.goto(f"/rope?model=decoder-mini&text={text.replace(' ', '+')}", wait_for="#pair .main-svg")
    ui.wait("#relative-sin .main-svg")
    tokens = post_json(app_server.url, "/tokenize", {"model": "decoder-mini", "text": text})[
        "tokens"
    ]
    query, key = len(tokens) - 1, len(tokens) - 2  # the defaults: the last token, the one before
    assert ui.page.input_value("#m-slider") == str(query)
    assert ui.page.input_value("#n-slider") == str(key)
    note = ui.page.inner_text("#pair-note")
    assert f"“{tokens[query]['text']}” at m = {query}" in note
    assert f"“{tokens[key]['text']}” at n = {key}" in note
    # the additive model's matrix is of the same two words (its tokens cover the same characters)
    other = ui.page.text_content("#relative-sin .gtitle")
    pair = f"“{tokens[query]['text']}” → “{tokens[key]['text']}”"
    assert pair in ui.page.text_content("#relative .gtitle") and pair in other
    assert ui.page.inner_text("#relative-sin-note").startswith("The same tokens")

    # a query on the start token, which the translator's source lacks: said, not "same"
    ui.page.select_option("#query-select", "0")
    ui.page.wait_for_function(
        "() => document.querySelector('#relative-sin-note').textContent.includes('instead')"
    )
    assert ui.page.input_value("#m-slider") == "0"  # the slider followed the token picked
    assert tokens[0]["special"] and tokens[0]["text"] in ui.page.inner_text("#relative-sin-note")
    # projector mode: the labels on the rotating pair grow with the rest of the page
    label = "#pair g.textpoint text"
    size = "s => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)"
    before = ui.page.evaluate(size, label)
    ui.page.click("#projector-toggle")
    ui.page.wait_for_function(f"([s, b]) => ({size})(s) > b", arg=[label, before])
