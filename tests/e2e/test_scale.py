"""Long inputs on 12-head models, in the browser: the real all-MiniLM-L6-v2 at 512 tokens in the
explorer (canvas heatmap: zoom, hover, switching heads and layers; windowed head view; pooled
grid), the math view's window, the RoPE view and the decoding player at 512 tokens on a 12-head
decoder, and an imported model in every view. Zero console errors (the `ui` fixture) and axe
clean. Timing figures belong to `make bench` (tests/e2e/bench_long_inputs.py), not here."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, urlparse

import numpy as np
import pytest

from app.serialize import loads_binary
from tests.e2e.scale_models import LONG_DECODER, MINILM, text_of
from tests.e2e.urls import params, post

pytestmark = pytest.mark.e2e

N = 512  # tokens, [CLS] and [SEP] included


def attention_requests(ui) -> list[str]:
    return [u for u in ui.requests if u.endswith("/api/v1/attention")]


def head_matrix(base: str, text: str, layer: int, head: int) -> np.ndarray:
    """The server's weights of one head, read through the binary transport."""
    body = {"model": MINILM, "text": text, "layers": [layer], "heads": [head], "format": "binary"}
    return loads_binary(post(base, "/attention", body))["attention"]["encoder.self"][0, 0]


def fetched_during_last_switch(ui) -> int:
    """/attention requests made between the last switch and its heatmap painted."""
    return ui.page.evaluate(
        """() => { const last = (n) => performance.getEntriesByName(n).at(-1).startTime;
                   const [a, b] = [last('attnviz:switch'), last('attnviz:switched')];
                   return performance.getEntriesByType('resource').filter(r =>
                     r.name.endsWith('/api/v1/attention') && r.startTime >= a && r.startTime <= b).length; }"""
    )


def window(ui) -> tuple[int, int, int, int]:
    return tuple(int(x) for x in ui.page.get_attribute("#heatmap", "data-window").split(","))


def plot_area(ui) -> dict:
    """Where the canvas heatmap's cells are, in page pixels: {x, y, w, h}."""
    return ui.page.evaluate(
        """() => { const c = document.querySelector('#heatmap canvas').getBoundingClientRect();
                   const p = JSON.parse(document.querySelector('#heatmap').dataset.plot);
                   return {x: c.x + p.left, y: c.y + p.top, w: p.w, h: p.h}; }"""
    )


def hover_cell(ui, fx: float, fy: float) -> tuple[int, int, list[str]]:
    """Hover at a fraction of the heatmap's cells; (row, column, the tooltip's lines)."""
    ui.page.locator("#heatmap canvas").scroll_into_view_if_needed()
    plot = plot_area(ui)
    x = plot["x"] + fx * plot["w"]
    y = plot["y"] + fy * plot["h"]
    ui.page.mouse.move(x, y)
    ui.page.mouse.move(x + 1, y + 1)
    ui.wait("#heatmap .heat-tip")
    i, j = (int(v) for v in ui.page.get_attribute("#heatmap", "data-hover").split(","))
    return i, j, ui.page.inner_text("#heatmap .heat-tip").splitlines()


def test_explorer_at_512_tokens_on_minilm(ui, app_server, minilm):
    text = text_of(minilm / "tokenizer.json", N)
    ui.goto(f"/?model={MINILM}&layer=1&head=0&text={quote_plus(text)}", wait_for="#heatmap canvas")
    ui.page.wait_for_function("() => document.querySelector('#heatmap').dataset.window")
    assert window(ui) == (0, N, 0, N)
    assert ui.page.text_content("#tokens .token-row-label") == f"{N} tokens"
    # WordPiece continuations read as such: "##" and joined to the piece before
    cont = ui.page.locator("#tokens .token.cont .tok-text").first
    marker = cont.evaluate("t => getComputedStyle(t, '::before').content")
    assert marker == '"##"' and len(cont.inner_text()) > 0
    # the grid: 6 × 12 thumbnails, pooled to 64 × 64 blocks
    ui.page.wait_for_function(
        "() => document.querySelectorAll('#grid .thumb canvas').length === 72"
    )
    assert ui.page.get_attribute("#grid .thumb canvas", "width") == "64"
    assert "pooled into 64 blocks" in ui.page.inner_text("#grid")
    # the head view: every head of the layer, the rows in view only, 3 lines per query and head
    ui.page.wait_for_function("() => document.querySelectorAll('#head-view g.head').length === 12")
    assert ui.page.get_attribute("#head-view", "data-windowed") == "true"
    drawn = ui.page.locator("#head-view g.tok[data-side='q']").count()
    assert 20 < drawn < 120
    assert ui.page.locator("#head-view line").count() <= drawn * 12 * 3
    ui.page.eval_on_selector("#head-view-wrap", "w => { w.scrollTop = w.scrollHeight; }")
    ui.page.wait_for_selector(
        f"#head-view g.tok[data-side='q'][data-i='{N - 1}']", state="attached"
    )
    # hover: the two tokens and the server's weight
    weights = head_matrix(app_server.url, text, 1, 0)
    i, j, lines = hover_cell(ui, 0.4, 0.6)
    assert lines[0].startswith("query: ") and lines[0].endswith(f"({i})")
    assert lines[1].startswith("key: ") and lines[1].endswith(f"({j})")
    assert abs(float(lines[2].split(": ")[1]) - weights[i, j]) < 1e-3

    # zoom: the + button halves the window around its centre; the URL keeps it
    ui.page.click("#heatmap .heat-tool[aria-label^='Zoom in']")
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap').dataset.window === '128,384,128,384'"
    )
    assert params(ui.page.url)["zoom"] == "128,384,128,384"
    i, j, lines = hover_cell(ui, 0.5, 0.25)
    assert 128 <= i < 384 and 128 <= j < 384
    assert abs(float(lines[2].split(": ")[1]) - weights[i, j]) < 1e-3
    # a box dragged over the cells zooms into it
    plot = plot_area(ui)
    x0, y0 = plot["x"] + 0.25 * plot["w"], plot["y"] + 0.25 * plot["h"]
    ui.page.mouse.move(x0, y0)
    ui.page.mouse.down()
    ui.page.mouse.move(x0 + 0.25 * plot["w"], y0 + 0.25 * plot["h"], steps=4)
    ui.page.mouse.up()
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap').dataset.window !== '128,384,128,384'"
    )
    r0, r1, c0, c1 = window(ui)
    assert 128 <= r0 < r1 <= 384 and 50 <= r1 - r0 <= 80 and 50 <= c1 - c0 <= 80
    # the keyboard: a cursor cell read out, "0" shows everything again
    ui.page.focus("#heatmap canvas")
    ui.page.keyboard.press("ArrowRight")
    assert "key:" in ui.page.inner_text("#heatmap .heat-readout")
    ui.page.keyboard.press("0")
    ui.page.wait_for_function(
        f"() => document.querySelector('#heatmap').dataset.window === '0,{N},0,{N}'"
    )

    # switching heads of the layer fetches nothing: the head view brought the layer
    ui.page.locator("h1").click()
    ui.page.keyboard.press(".")
    ui.page.wait_for_function("() => document.querySelector('#heatmap').dataset.head === '1'")
    ui.page.wait_for_function(
        "() => performance.getEntriesByName('attnviz:switch-to-heatmap').length === 1"
    )
    assert fetched_during_last_switch(ui) == 0
    before = len(attention_requests(ui))
    # another layer: its head first (the heatmap), then the rest of the layer (the head view)
    ui.page.keyboard.press("]")
    ui.page.wait_for_function("() => document.querySelector('#heatmap').dataset.layer === '2'")
    ui.page.wait_for_function(
        "() => performance.getEntriesByName('attnviz:switch-to-heatmap').length === 2"
    )
    assert len(attention_requests(ui)) >= before + 1
    assert params(ui.page.url)["layer"] == "2" and params(ui.page.url)["head"] == "1"
    i, j, lines = hover_cell(ui, 0.7, 0.3)
    weights = head_matrix(app_server.url, text, 2, 1)
    assert abs(float(lines[2].split(": ")[1]) - weights[i, j]) < 1e-3
    ui.page.wait_for_function("() => document.querySelectorAll('#head-view g.head').length === 12")
    ui.shot("scale-explorer-512")
    # exports of what is shown: the canvas as PNG and inside an SVG, the window's numbers as JSON
    got = {}
    for fmt in ("png", "svg", "json"):
        with ui.page.expect_download() as info:
            ui.page.click(f".export[data-export='heatmap'] button[data-format='{fmt}']")
        got[fmt] = Path(info.value.path()).read_bytes()
    assert got["png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in got["svg"] and b"data:image/png;base64," in got["svg"]
    exported = json.loads(got["json"])
    assert exported["window"] == {"r0": 0, "r1": N, "c0": 0, "c1": N}
    assert len(exported["matrix"]) == N and len(exported["queries"]) == N

    violations = ui.axe()
    assert not violations, violations


def test_math_window_at_512_tokens(ui, minilm):
    text = text_of(minilm / "tokenizer.json", N)
    ui.goto(f"/math?model={MINILM}&layer=3&head=5&row=300&text={quote_plus(text)}")
    ui.wait("[data-step='6'] .main-svg")  # the softmax: no RoPE step in a BERT
    assert "rows 288–311" in ui.page.inner_text("#window-text")
    assert f"of {N} × {N}" in ui.page.inner_text("#window-text")
    z = ui.page.evaluate(
        "() => document.querySelector(\"[data-step='6'] .js-plotly-plot\").data[0].z"
    )
    assert len(z) == 24 and len(z[0]) == 24
    # the row's arithmetic sums over all 512 keys: the weights add up to 1
    rows = ui.page.locator("#row-detail tr")
    assert f"{N - 24} other keys" in ui.page.inner_text("#row-detail")
    total = rows.last.locator("td").last.inner_text()
    assert abs(float(total) - 1) < 2e-3
    ui.page.click("#rows-next")
    ui.page.wait_for_function(
        "() => document.querySelector('#window-text').textContent.includes('rows 312–335')"
    )
    ui.wait("[data-step='6'] .main-svg")
    violations = ui.axe()
    assert not violations, violations


def test_rope_and_decoding_at_512_tokens_on_a_12_head_decoder(ui, app_server):
    folder = app_server.folders[LONG_DECODER]
    text = text_of(folder / "tokenizer.json", N - 1, add_special=False)  # + BOS = 512
    ui.goto(f"/rope?model={LONG_DECODER}&layer=1&head=11&text={quote_plus(text)}")
    ui.wait("#relative .main-svg")
    ui.wait("#pair .main-svg")
    note = ui.page.inner_text("#angles-note")
    assert "base 500000" in note and "halves" in note
    assert ui.page.locator("#query-select option").count() == N
    titles = ui.page.evaluate(
        "() => { const l = document.querySelector('#pair').layout; return [l.xaxis.title.text, l.yaxis.title.text]; }"
    )
    assert titles == ["dimension 0", "dimension 8"]  # halves of d_head 16: pair 0 turns 0 with 8

    prompt = text_of(folder / "tokenizer.json", 499, add_special=False)  # + BOS = 500
    ui.goto(
        f"/decode?model={LONG_DECODER}&max_new_tokens=4&step=4&layer=1&head=3&text={quote_plus(prompt)}"
    )
    ui.page.wait_for_function(
        "() => document.querySelector('#step-counter').textContent.trim() === 'step 4 / 4'"
    )
    ui.wait("#align canvas")  # 500 + 3 keys: a canvas
    stream = [u for u in ui.requests if "/generate/stream" in u][-1]
    q = parse_qs(urlparse(stream).query)
    assert q["layers"] == ["1"] and q["heads"] == ["3"]  # only the rows shown
    assert "… " in ui.page.inner_text("#prompt-part")  # the prompt's end only
    violations = ui.axe()
    assert not violations, violations


def test_an_imported_model_in_every_view(ui, minilm):
    ui.goto(f"/?model={MINILM}&text=the+unbelievable+tokenizers", wait_for="#heatmap .main-svg")
    ui.page.wait_for_function("() => document.querySelector('#model-says').textContent.length > 0")
    says = ui.page.inner_text("#model-says")
    assert "no output head" in says  # no MLM head: no fill-mask panel, no error
    assert not any("[MASK]" in p for p in ui.page.locator(".preset").all_inner_texts())
    assert ui.page.locator(".head-toggle[data-head]").count() == 12
    assert ui.page.locator(".head-toggle[data-head='3'] .swatch-solid").count() == 1
    assert ui.page.locator(".head-toggle[data-head='11'] .swatch-hollow").count() == 1
    ui.page.wait_for_function("() => document.querySelectorAll('#head-view g.head').length === 12")
    dashes = ui.page.evaluate(
        "() => [...document.querySelectorAll('#head-view g.head')].map(g => g.getAttribute('stroke-dasharray'))"
    )
    assert dashes[:8] == [None] * 8 and all(d for d in dashes[8:])
    izer = ui.page.locator("#tokens .token.cont .tok-text", has_text="izer")
    assert izer.count() == 1  # token|izer|s: "izer" continues "token"
    # views whose subject the model lacks say so
    ui.goto(f"/rope?model={MINILM}", wait_for="#relative .main-svg")
    assert "has no RoPE" in ui.page.inner_text("#view-notice")
    ui.goto(f"/decode?model={MINILM}")
    ui.wait("#view-notice")
    assert "not a decoder" in ui.page.inner_text(
        "#view-notice"
    ) or "generates" in ui.page.inner_text("#view-notice")
    # the card: where it came from and its license
    ui.goto(f"/card?model={MINILM}", wait_for="#params .main-svg")
    ui.wait("#source-table")
    source = ui.page.inner_text("#source-table")
    assert "apache-2.0" in source and "BertModel" in source
    assert "no output head" in ui.page.inner_text("#arch")
    assert ui.page.locator("#loss-panel").is_hidden()
