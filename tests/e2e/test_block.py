"""The /block view in a browser: every panel drawn from the server's answer, the block's order
per model, the keyboard, the batch of the normalisation comparison, exports, projector mode,
a model without norms or FFN, and axe with the panels in use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_accessibility import report
from tests.e2e.urls import params
from tests.e2e.views import VIEWS

pytestmark = pytest.mark.e2e
PANELS = VIEWS["block"][1]


def drawn(ui):
    for selector in PANELS:
        ui.wait(selector, state="attached")


def order_labels(ui) -> list[str]:
    return ui.page.eval_on_selector_all(
        "#order-panel svg.block-order rect", "rs => rs.map(r => r.getAttribute('class'))"
    )


def test_every_panel_is_drawn_and_the_order_is_each_models(ui):
    ui.goto("/block?model=decoder-mini&text=the+black+cat+ate+the+mouse")
    drawn(ui)
    assert order_labels(ui)[:2] == ["box-norm", "box-attn"]  # pre-norm: the norm first
    assert ui.page.locator("#norm-panel h2").first.inner_text().startswith("Add & Norm")
    assert "RMSNorm" in ui.page.inner_text("#norm-panel")
    assert ui.page.locator("#ffn-panel .main-svg").count() >= 6  # 4 unit maps, shut, top, unit, out
    assert ui.page.locator("#error-banner").is_hidden()
    ui.shot("block-decoder")
    ui.goto("/block?model=encoder-mini&text=i+love+machine+learning")
    drawn(ui)
    assert order_labels(ui)[:2] == ["box-attn", "box-norm"]  # post-norm: add, then norm
    ui.goto("/block?model=seq2seq-en-fr&stack=decoder&layer=2")
    drawn(ui)
    assert "box-cross" in order_labels(ui)
    assert ui.page.is_visible("#stack-field")
    assert "le" in ui.page.inner_text("#token-select")  # the decoder reads the translation


def test_keyboard_layer_token_and_norm(ui):
    ui.goto("/block?model=encoder-mini&text=the+cat+sat+on+the+mat")
    drawn(ui)
    ui.page.locator("h1").click()
    ui.page.keyboard.press("]")
    ui.page.wait_for_function(
        "() => document.querySelector('#order-panel h2').textContent.startsWith('Block 1')"
    )
    ui.page.keyboard.press(",")
    q = params(ui.page.url)
    assert q["layer"] == "1" and int(q["token"]) >= 0
    title = ui.page.locator("#ffn-panel h2").nth(2).inner_text()
    assert "strongest units" in title
    # a norm box of the drawing is a button: Enter shows that norm
    ui.page.focus("#order-panel .norm-box >> nth=1")
    ui.page.keyboard.press("Enter")
    ui.page.wait_for_function("() => new URL(location).searchParams.get('norm') === 'ffn_norm'")
    assert "ffn_norm" in ui.page.locator("#norm-panel h2").first.inner_text()
    assert ui.page.get_attribute("#order-panel .norm-box >> nth=1", "aria-pressed") == "true"
    # a unit picked from the top units is followed across the sentence
    ui.page.click("#ffn-panel .unit-chips button >> nth=3")
    unit = params(ui.page.url)["unit"]
    assert f"Unit {unit} across" in ui.page.inner_text("#ffn-panel")


def test_the_batch_moves_batchnorm_only(ui):
    ui.goto("/block?model=decoder-mini&text=the+black+cat+ate+the+mouse")
    drawn(ui)
    legend = ui.page.inner_text("#compare-panel legend")
    assert "8 sentences" in legend  # the sentence and the 7 other lecture presets

    def exported() -> dict:
        with ui.page.expect_download() as info:
            ui.page.click(".export[data-export='compare'] button[data-format='json']")
        return json.loads(Path(info.value.path()).read_text())["comparison"]

    before = exported()
    with ui.page.expect_response(lambda r: r.url.endswith("/api/v1/block")):
        ui.page.click("#compare-panel .batch-choice >> nth=0")
        ui.page.click("#compare-panel .batch-choice >> nth=1")
    ui.page.wait_for_function(
        "() => document.querySelector('#compare-panel legend')?.textContent.includes('6 sentences')"
    )
    assert params(ui.page.url)["drop"]
    after = exported()
    assert after["batchnorm"]["batch"]["n_sentences"] == 6
    assert after["batchnorm"]["batch"]["mean"] != before["batchnorm"]["batch"]["mean"]
    assert after["batchnorm"]["alone"] == before["batchnorm"]["alone"]
    assert after["layernorm"] == before["layernorm"] and after["rmsnorm"] == before["rmsnorm"]
    # the URL reopens the same batch
    ui.page.reload()
    ui.wait("#compare-panel legend")
    ui.page.wait_for_function(
        "() => document.querySelector('#compare-panel legend')?.textContent.includes('6 sentences')"
    )


def test_exports(ui):
    ui.goto("/block?model=seq2seq-en-fr")
    drawn(ui)
    for panel, fmt in [("order", "svg"), ("order", "png"), ("norm-maps", "png"), ("ffn-top", "json"),
                       ("residual", "svg"), ("residual", "json")]:  # fmt: skip
        with ui.page.expect_download() as info:
            ui.page.click(f".export[data-export='{panel}'] button[data-format='{fmt}']")
        download = info.value
        data = Path(download.path()).read_bytes()
        assert download.suggested_filename.endswith(f".{fmt}") and len(data) > 200
        if fmt == "png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        if panel == "order" and fmt == "svg":
            assert b"<svg" in data and b"residual" in data
        if panel == "residual" and fmt == "json":
            assert json.loads(data)["points"][0] == "embed"


def test_an_attention_only_model(ui):
    """induction-2l has RMSNorm before attention and no FFN: the order shows the norm and the
    attention only, the norm panel speaks of RMS (no centring) and the FFN panel says why it is
    empty."""
    ui.goto("/block?model=induction-2l")
    ui.wait("#order-panel svg.block-order", state="attached")
    ui.wait("#residual-panel .main-svg", state="attached")
    assert order_labels(ui) == ["box-norm", "box-attn"]
    assert "RMS" in ui.page.inner_text("#norm-panel")
    assert "attention only" in ui.page.inner_text("#ffn-panel")
    assert ui.page.is_hidden("#token-select")


def test_projector_mode_and_axe_with_the_panels_in_use(ui):
    ui.goto("/block?model=seq2seq-en-fr&stack=decoder&norm=cross_norm&unit=3")
    drawn(ui)
    ui.page.click("#projector-toggle")
    ui.page.wait_for_timeout(600)
    heights = ui.page.eval_on_selector_all(
        "#ffn-panel .js-plotly-plot, #norm-panel .js-plotly-plot",
        "ps => ps.map(p => p.offsetHeight)",
    )
    assert heights and min(heights) > 150, heights
    ui.shot("block-projector")
    ui.page.keyboard.press("?")
    violations = ui.axe()
    assert not violations, report(violations)


def test_an_imported_model_at_a_long_input(ui, minilm):
    """all-MiniLM-L6-v2 (BERT: an embedding norm before block 0, GELU) on the ~490-token
    passage: its tokens × features maps become canvases, its axes count positions, and the
    residual stream is a heatmap; every panel is drawn."""
    from tests.e2e.scale_models import MINILM

    ui.goto(f"/block?model={MINILM}")
    drawn(ui)
    assert order_labels(ui)[0] == "box-norm"  # embed_norm, then the post-norm block
    ui.page.click("#presets .preset >> text=long passage")
    ui.page.wait_for_function(
        "() => document.querySelector('#token-select').options.length > 400", timeout=120_000
    )
    ui.wait("#ffn-panel canvas", state="attached")
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")
    assert ui.page.locator("#norm-panel canvas").count() >= 3
    assert ui.page.locator("#compare-panel canvas").count() >= 4
    assert "One row per token" in ui.page.inner_text("#residual-panel")
    ui.shot("block-minilm-long")
