"""The RNN translator in the browser: the /rnn view (the recurrence unrolled, its gates, the
vanishing gradient measured, its alignment beside the transformer's), and the RNN in the
explorer and the decoding player, which show its one attention (decoder.cross) and nothing of
the self-attention sites it does not have."""

from __future__ import annotations

import json
import math
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.e2e.urls import params, post_json
from training import corpus
from training.evaluate import GRADIENT_PAIR

pytestmark = pytest.mark.e2e

SOURCE = "the black cat ate the mouse"
TRANSLATION = "le chat noir a mangé la souris"


@pytest.fixture
def rnn(app_server) -> str:
    """The id of a gated RNN (the LSTM), else of any RNN."""
    rnns = {i: m for i, m in app_server.models.items() if m["architecture"] == "rnn"}
    if not rnns:
        pytest.skip("no RNN checkpoint is served")
    return next((i for i, m in rnns.items() if m["cell"] != "tanh"), next(iter(rnns)))


def test_the_rnn_in_the_explorer_shows_its_cross_attention_only(ui, rnn, app_server):
    ui.goto(f"/?model={rnn}&text={SOURCE.replace(' ', '+')}", wait_for="#heatmap .main-svg")
    ui.wait("#head-view line", state="attached")
    ui.wait("#model-says .says-block")
    # one site: no site picker to offer absent sites; one layer, one head
    assert ui.page.locator("#site-field").is_hidden()
    assert ui.page.eval_on_selector_all("#site-select option", "os => os.map(o => o.value)") == [
        "decoder.cross"
    ]
    assert ui.page.locator(".thumb").count() == 1
    assert "cross" in ui.page.text_content("#heatmap .gtitle")
    z = ui.page.evaluate("() => document.querySelector('#heatmap').data[0].z")
    assert all(abs(sum(row) - 1) < 2e-3 for row in z)  # the alignment's rows are distributions
    if app_server.shipped:
        assert TRANSLATION in ui.page.inner_text("#model-says")
    ui.page.select_option(
        "#values-select", "scores"
    )  # the additive scores e_ij, before the softmax
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap').data[0].hovertemplate.includes('additive')"
    )
    assert "additive" in ui.page.inner_text("#values-caption")
    assert "QKᵀ" not in ui.page.inner_text("#values-caption")
    assert ui.page.locator("#error-banner").is_hidden()
    ui.shot("rnn-in-explorer")


def test_the_rnn_in_the_decoding_player_shows_its_alignment(ui, rnn, app_server):
    ui.goto(f"/decode?model={rnn}&text={SOURCE.replace(' ', '+')}&step=64")
    ui.wait("#output-text")
    ui.wait("#align .main-svg", state="attached")
    rows = ui.page.evaluate("() => document.querySelector('#align').data[0].z")
    steps = ui.page.locator("#output-line .out-tok").count()
    assert len(rows) == steps and all(abs(sum(r) - 1) < 2e-3 for r in rows)
    # it has no decoder self-attention: no panel for it, and nothing broken
    assert ui.page.locator("#self-panel").is_hidden()
    assert ui.page.locator("#error-banner").is_hidden()
    if app_server.shipped:
        assert ui.page.inner_text("#output-text") == TRANSLATION
    ui.page.click("#back-button")
    ui.page.wait_for_function(
        "n => document.querySelector('#align').data[0].z.length === n - 1", arg=steps
    )
    ui.shot("rnn-in-decode")


def recomputed_and_captured(page) -> tuple[float, float]:
    """The step panel's last line: "Recomputed hₜ[k] = x; the server captured y."."""
    text = page.inner_text("#step-detail").replace("−", "-")
    line = next(s for s in text.splitlines() if s.startswith("Recomputed"))
    x, y = (part.rsplit(" ", 1)[1].rstrip(".") for part in line.split(";"))
    return float(x), float(y)


def sci(x: float) -> str:
    """1.12e-4 -> "1.1·10⁻⁴" (0.0114 -> "0.011", 1.7 -> "1.70"): as the figure's note
    writes a ratio."""
    if 0.01 <= x < 100:
        return f"{x:.{3 if x < 1 else 2}f}"
    exponent = math.floor(math.log10(x))
    mantissa = round(x / 10**exponent, 1)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.1f}·10" + str(exponent).translate(
        str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    )


def test_the_rnn_view_draws_the_recurrence_gates_gradients_and_alignments(ui, rnn, app_server):
    info = app_server.models[rnn]
    text, target = GRADIENT_PAIR  # the 20-token preset, where the cards measure the gradients
    query = urlencode({"model": rnn, "text": text, "target": target})
    ui.goto(f"/rnn?{query}", wait_for="#states .main-svg")
    for selector in ("#gates .main-svg", "#gradients .main-svg", "#align-transformer .main-svg"):
        ui.wait(selector, state="attached")
    # (a) each state a column: d units × one step per token of the 20-token preset
    z = ui.page.evaluate("() => document.querySelector('#states').data[0].z")
    assert len(z) == info["d_model"] and len(z[0]) == 20
    assert "tanh" in ui.page.inner_text("#formula") or "σ" in ui.page.inner_text("#formula")
    x, y = recomputed_and_captured(ui.page)
    assert abs(x - y) < 2e-4  # the formula on the captured parts gives the captured state
    # (b) the gates: a line per sigmoid gate, a heatmap per gate
    gates = ui.page.evaluate("() => document.querySelector('#gates').data.map(t => t.type)")
    assert gates.count("heatmap") == {"lstm": 4, "gru": 2}[info["cell"]]
    # (c) the gradient norms, one curve per model, on a log axis
    curves = ui.page.evaluate(
        "() => document.querySelector('#gradients').data.map(t => ({name: t.name, y: t.y}))"
    )
    assert len(curves) == 2 and all(len(c["y"]) == 20 and min(c["y"]) > 0 for c in curves)
    axis = ui.page.evaluate("() => document.querySelector('#gradients').layout.yaxis.type")
    assert axis == "log"
    note = ui.page.inner_text("#gradients-note")
    for curve in curves:  # the note's ratio is the plotted curve's first point over its last
        ratio = curve["y"][0] / curve["y"][-1]
        assert f"= {sci(ratio)} over 19 steps" in note, (sci(ratio), note)
    if app_server.shipped:  # the plain RNN's first word gets < 1/10 of the last one's
        plain = next(c["y"] for c in curves if "plain" in c["name"])
        assert plain[0] / plain[-1] < 0.1
    # (d) the two alignments over the same pair, rows summing to 1
    for div in ("#align-rnn", "#align-transformer"):
        rows = ui.page.evaluate(f"() => document.querySelector('{div}').data[0].z")
        assert len(rows) == 20 and all(abs(sum(r) - 1) < 5e-3 for r in rows)
    assert "transformer" in ui.page.inner_text("#translations")
    assert ui.page.locator("#error-banner").is_hidden()
    ui.shot("rnn-view")


def translations_shown(page) -> dict[str, str]:
    """#translations: "who" (the RNN's or the transformer's line) -> the translation shown."""
    lines = page.eval_on_selector_all(
        "#translations p.translation", "ps => ps.map(p => [...p.children].map(s => s.innerText))"
    )
    return {("transformer" if "transformer" in who else "rnn"): text for who, text in lines}


def test_the_rnn_view_opens_on_a_sentence_both_translate_and_shows_where_the_rnn_fails(
    ui, rnn, app_server
):
    if not app_server.shipped:
        pytest.skip("the translations are the trained checkpoints'")
    ui.goto(f"/rnn?model={rnn}", wait_for="#states .main-svg")
    ui.wait("#translations p.translation:nth-child(2)")
    text = params(ui.page.url)["text"]
    shown = translations_shown(ui.page)
    assert shown == {"rnn": corpus.translate(text), "transformer": corpus.translate(text)}
    ui.page.click("button.preset:has-text('where the RNN fails')")
    ui.page.wait_for_function(
        "t => document.querySelector('#translations').innerText !== t",
        arg=ui.page.inner_text("#translations"),
    )
    ui.wait("#translations p.translation:nth-child(2)")
    text = params(ui.page.url)["text"]
    gold = dict(corpus.role_swap_pairs())[text]  # a noun as a subject it never was in training
    shown = translations_shown(ui.page)
    assert shown["transformer"] == gold and shown["rnn"] != gold, shown
    assert ui.page.locator("#error-banner").is_hidden()


def test_the_rnn_view_steps_by_click_and_keys_and_keeps_its_state_in_the_url(ui, rnn):
    ui.goto(f"/rnn?model={rnn}&text=the+dog+bites+the+man", wait_for="#states .main-svg")
    ui.wait("#step-detail table")
    assert "Step t = 5" in ui.page.inner_text("#step-detail")  # the last step: </s>
    ui.page.locator("#states .nsewdrag").click(position={"x": 5, "y": 5})  # step 0, unit 0
    ui.page.wait_for_function(
        "() => document.querySelector('#step-detail').innerText.includes('t = 0')"
    )
    unit = params(ui.page.url)["unit"]
    assert params(ui.page.url)["step"] == "0" and int(unit) < 4
    assert f"Unit {unit} of this step" in ui.page.inner_text("#step-detail")
    ui.page.locator("body").press("ArrowRight")
    ui.page.wait_for_function(
        "() => document.querySelector('#step-detail').innerText.includes('t = 1')"
    )
    assert f"Unit {unit} of this step" in ui.page.inner_text("#step-detail")
    x, y = recomputed_and_captured(ui.page)
    assert abs(x - y) < 2e-4
    ui.page.click("label:has(input[name='stack'][value='decoder'])")
    ui.page.wait_for_function("() => document.querySelector('#formula').innerText.includes('ctx')")
    ui.page.click("label:has(input[name='paths'][value='all'])")
    ui.page.wait_for_function(
        "() => document.querySelector('#gradients-note').innerText.startsWith('Every path')"
    )
    assert params(ui.page.url)["stack"] == "decoder" and params(ui.page.url)["paths"] == "all"
    # the same link reopens the same view
    url = ui.page.url
    ui.goto(url[len(ui.base) :], wait_for="#states .main-svg")
    assert ui.page.is_checked("input[name='stack'][value='decoder']")
    assert ui.page.is_checked("input[name='paths'][value='all']")
    # projector mode and a narrower window: every figure keeps its height (Plotly's resize
    # drops a figure's layout height; the div holds it)
    ui.page.click("#projector-toggle")
    ui.page.set_viewport_size({"width": 1200, "height": 900})
    ui.page.wait_for_timeout(800)
    heights = ui.page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map(d => d.offsetHeight)"
    )
    assert len(heights) == 5 and min(heights) >= 250, heights
    ui.shot("rnn-view-projector")


def test_the_plain_rnn_has_no_gates_to_show(ui, app_server):
    plain = [i for i, m in app_server.models.items() if m.get("cell") == "tanh"]
    if not plain:
        pytest.skip("no plain tanh RNN is served")
    ui.goto(f"/rnn?model={plain[0]}&text=the+cat+sat+on+the+mat", wait_for="#states .main-svg")
    ui.wait("#gradients .main-svg")
    assert ui.page.locator("#gates").is_hidden() and ui.page.locator("#show-field").is_hidden()
    assert "no gates" in ui.page.inner_text("#gates-note")
    x, y = recomputed_and_captured(ui.page)  # hₜ = tanh(Wₓ xₜ + bₓ + Wₕ hₜ₋₁ + bₕ)
    assert abs(x - y) < 2e-4


def test_the_rnn_view_exports_png_svg_json(ui, rnn):
    ui.goto(f"/rnn?model={rnn}&text=i+love+machine+learning", wait_for="#states .main-svg")
    ui.wait("#align-transformer .main-svg", state="attached")
    # every panel's data, and the image formats once (the export code is shared by all
    # panels; rendering 15 images on a busy 2-core machine only tests its patience)
    panels = ("states", "gates", "gradients", "align-rnn", "align-transformer")
    asks = [(panel, "json") for panel in panels] + [("gradients", "png"), ("states", "svg")]
    for panel, fmt in asks:
        with ui.page.expect_download() as info:
            ui.page.click(f".export[data-export='{panel}'] button[data-format='{fmt}']")
        download = info.value
        data = Path(download.path()).read_bytes()
        assert download.suggested_filename.endswith(f".{fmt}"), download.suggested_filename
        if fmt == "png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        elif fmt == "svg":
            assert b"<svg" in data
        else:
            exported = json.loads(data)
            assert exported["text"] == "i love machine learning"
            if panel == "gradients":
                assert len(exported["series"]) == 2


def boxes(page, selector: str) -> list[tuple[str, float, float, float, float]]:
    return page.eval_on_selector_all(
        selector,
        """els => els.map((e) => { const b = e.getBoundingClientRect();
                                   return [e.textContent, b.left, b.right, b.top, b.bottom]; })""",
    )


def touch(a, b, pad: float = 2) -> bool:
    """Two boxes (text, left, right, top, bottom) closer than 2 * pad px on both axes."""
    return (
        a[1] - pad < b[2] + pad
        and b[1] - pad < a[2] + pad
        and (a[3] - pad < b[4] + pad and b[3] - pad < a[4] + pad)
    )


def test_the_gate_means_are_told_apart_and_the_colour_bar_title_stands_clear(ui, rnn, app_server):
    if app_server.models[rnn]["cell"] != "lstm":
        pytest.skip("no LSTM served")
    text = "the dog bites the man"
    ui.goto(f"/rnn?model={rnn}&text={text.replace(' ', '+')}", wait_for="#gates .main-svg")
    lines = ui.page.evaluate(
        """() => document.querySelector('#gates').data.filter((t) => t.type === 'scatter')
                   .map((t) => ({name: t.name, y: t.y, dash: t.line.dash, symbol: t.marker.symbol}))"""
    )
    # every mean line its own dash pattern and marker (the input and output gates overlap)
    assert len(lines) == 3
    assert len({line["dash"] for line in lines}) == 3
    assert len({line["symbol"] for line in lines}) == 3
    # and the means are the captured gates' means over units, step by step
    steps = post_json(app_server.url, "/rnn/unroll", {"model": rnn, "text": text})["encoder"]
    for line, gate in zip(lines, ("i", "f", "o"), strict=True):
        assert line["name"].endswith(f" {gate}")
        want = [sum(row) / len(row) for row in steps["gates"][gate]]
        assert line["y"] == pytest.approx(want, abs=2e-4)
    # the states' colour-bar title does not sit against any of its tick labels
    title = boxes(ui.page, "#states .cbtitle text")
    ticks = boxes(ui.page, "#states .cbaxis text")
    assert len(title) == 1 and len(ticks) >= 3
    assert not [t for t in ticks if touch(title[0], t)], (title, ticks)
