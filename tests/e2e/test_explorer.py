"""The explorer: presets, head view (toggle, hover, lock), grid, heatmap options, URL state,
user text as text, API errors, keyboard, exports, projector mode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.urls import params

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=alert(1)>"


def lines_per_head(page) -> dict[int, int]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#head-view g.head')]
             .map(g => [g.dataset.head, g.querySelectorAll('line').length]))"""
    )


def visible_lines(page) -> int:
    return page.evaluate(
        "() => [...document.querySelectorAll('#head-view line')].filter(l => l.style.display !== 'none').length"
    )


def test_preset_click_renders_head_view_grid_and_heatmap(ui, app_server):
    ui.goto("/?model=encoder-mini", wait_for="#heatmap .main-svg")
    ui.page.click(".preset >> text=the cat sat on the mat")
    ui.page.wait_for_function(
        "() => [...document.querySelectorAll('#tokens .tok-text')].some(t => t.textContent === 'sat')"
    )
    ui.wait("#head-view line", state="attached")
    ui.wait("#heatmap .main-svg")
    info = app_server.models["encoder-mini"]
    assert ui.page.locator(".thumb").count() == info["n_layers"] * info["n_heads"]
    assert ui.page.locator("#head-view line").count() > 0
    # tokens with ids, special tokens marked
    assert ui.page.locator("#tokens .token.special").count() >= 2  # [CLS] ... [SEP]
    ids = ui.page.locator("#tokens .tok-id").all_inner_texts()
    assert ids and all(i.isdigit() for i in ids)
    assert params(ui.page.url)["text"] == "the cat sat on the mat"
    assert ui.page.locator(".preset[aria-pressed=true]").inner_text() == "the cat sat on the mat"
    ui.shot("explorer-preset")


def test_toggling_a_head_changes_the_lines(ui):
    ui.goto("/?model=decoder-mini&text=the+dog+bites+the+man", wait_for="#heatmap .main-svg")
    ui.wait("#head-view line", state="attached")
    before = lines_per_head(ui.page)
    assert "1" in before and before["1"] > 0
    total = ui.page.locator("#head-view line").count()
    ui.page.click(".head-toggle[data-head='1']")
    after = lines_per_head(ui.page)
    assert "1" not in after
    assert ui.page.locator("#head-view line").count() == total - before["1"]
    assert ui.page.get_attribute(".head-toggle[data-head='1']", "aria-pressed") == "false"
    assert params(ui.page.url)["off"] == "1"
    ui.shot("explorer-head-1-off")
    ui.page.click(".head-toggle[data-head='1']")
    assert lines_per_head(ui.page) == before


def test_hover_isolates_and_click_locks_a_token(ui):
    ui.goto("/?model=decoder-mini&text=the+man+bites+the+dog", wait_for="#heatmap .main-svg")
    ui.wait("#head-view line", state="attached")
    total = visible_lines(ui.page)
    query = ui.page.locator("#head-view g.tok[data-side='q'][data-i='3']")
    query.hover()
    isolated = visible_lines(ui.page)
    assert 0 < isolated < total
    query.click()
    assert params(ui.page.url)["lock"] == "q3"
    ui.page.mouse.move(5, 5)  # leaving does not unlock
    assert visible_lines(ui.page) == isolated
    ui.shot("explorer-locked")
    ui.page.keyboard.press("Escape")
    assert visible_lines(ui.page) == total
    assert "lock" not in params(ui.page.url)


def test_grid_zoom_scores_and_hidden_specials(ui, app_server):
    ui.goto("/?model=encoder-mini&text=i+love+machine+learning", wait_for="#heatmap .main-svg")
    ui.page.click(".thumb[data-layer='1'][data-head='2']")
    ui.page.wait_for_function("() => document.querySelector('#heatmap').dataset.head === '2'")
    assert (
        ui.page.input_value("#layer-select") == "1" and ui.page.input_value("#head-select") == "2"
    )
    assert ui.page.get_attribute(".thumb[data-layer='1'][data-head='2']", "aria-pressed") == "true"
    title = ui.page.text_content("#heatmap .gtitle")
    assert "layer 1 · head 2" in title

    def heat_shape():
        return ui.page.evaluate(
            "() => { const z = document.querySelector('#heatmap').data[0].z; return [z.length, z[0].length]; }"
        )

    n = ui.page.locator("#tokens .token").count()
    assert heat_shape() == [n, n]
    ui.page.check("#hide-special")
    ui.page.wait_for_function(
        f"() => document.querySelector('#heatmap').data[0].z.length === {n - 2}"
    )
    rows = ui.page.evaluate("() => document.querySelector('#heatmap').data[0].z")
    for row in rows:  # renormalised: every row sums to 1 again
        assert abs(sum(v for v in row if v is not None) - 1) < 1e-6
    ui.page.select_option("#values-select", "scores")
    ui.page.wait_for_function(
        "() => document.querySelector('#heatmap').data[0].z.flat().some(v => v !== null && v < 0)"
    )
    assert "score" in ui.page.text_content("#heatmap .cbtitle")
    q = params(ui.page.url)
    assert q["hide"] == "1" and q["show"] == "scores" and q["layer"] == "1" and q["head"] == "2"
    ui.shot("explorer-scores-hidden-specials")


def test_causal_mask_is_greyed_in_the_decoder_heatmap(ui):
    ui.goto("/?model=decoder-mini&text=the+cat+sat+on+the+mat", wait_for="#heatmap .main-svg")
    z = ui.page.evaluate("() => document.querySelector('#heatmap').data[0].z")
    for i, row in enumerate(z):
        assert all(v is None for v in row[i + 1 :])  # the future: masked, shown grey
        assert all(v is not None for v in row[: i + 1])
    assert "masked" in ui.page.inner_text("#heatmap-note")


def test_seq2seq_has_three_attentions(ui):
    ui.goto(
        "/?model=seq2seq-en-fr&text=the+dog+bites+the+man&target=le+chien+mord+l%27homme",
        wait_for="#heatmap .main-svg",
    )
    options = ui.page.eval_on_selector_all("#site-select option", "os => os.map(o => o.value)")
    assert options == ["encoder.self", "decoder.self", "decoder.cross"]
    assert "chien" in ui.page.inner_text("#tokens")
    for site in options:
        ui.page.select_option("#site-select", site)
        ui.page.wait_for_function(
            "s => document.querySelector('#heatmap .gtitle')?.textContent.includes(s)",
            arg={
                "encoder.self": "encoder self",
                "decoder.self": "decoder self",
                "decoder.cross": "cross",
            }[site],
        )
        ui.shot(f"explorer-seq2seq-{site}")


def test_url_round_trips_the_state(ui, chromium_browser):
    path = (
        "/?model=seq2seq-en-fr&text=the+cat+sat+on+the+mat&target=le+chat+s%27est+assis+sur+le+tapis"
        "&site=decoder.self&layer=1&head=3&off=0,2&hide=1"
    )
    ui.goto(path, wait_for="#heatmap .main-svg")
    assert ui.page.input_value("#model-select") == "seq2seq-en-fr"
    assert ui.page.input_value("#text-input") == "the cat sat on the mat"
    assert ui.page.input_value("#site-select") == "decoder.self"
    assert ui.page.input_value("#layer-select") == "1"
    assert ui.page.input_value("#head-select") == "3"
    assert ui.page.is_checked("#hide-special")
    assert sorted(lines_per_head(ui.page)) == ["1", "3"]
    assert "layer 1 · head 3" in ui.page.text_content("#heatmap .gtitle")
    # change it in the page, then open the URL it wrote in a fresh browser context
    ui.page.select_option("#head-select", "2")
    ui.page.wait_for_function("() => document.querySelector('#heatmap').dataset.head === '2'")
    url = ui.page.url
    other = chromium_browser.new_context(viewport={"width": 1200, "height": 800})
    try:
        page = other.new_page()
        page.goto(url)
        page.wait_for_selector("#heatmap .main-svg", timeout=45_000)
        assert page.input_value("#head-select") == "2"
        assert page.input_value("#layer-select") == "1"
        assert page.input_value("#site-select") == "decoder.self"
        assert page.input_value("#text-input") == "the cat sat on the mat"
        assert "layer 1 · head 2" in page.text_content("#heatmap .gtitle")
    finally:
        other.close()
    # the nav links carry model and sentence to the other views
    href = ui.page.get_attribute("a[data-nav='math']", "href")
    assert (
        params(href)["model"] == "seq2seq-en-fr"
        and params(href)["text"] == "the cat sat on the mat"
    )


def test_user_text_is_only_ever_text(ui):
    ui.goto("/?model=decoder-mini", wait_for="#heatmap .main-svg")
    ui.page.fill("#text-input", XSS)
    ui.page.click("#run-button")
    ui.page.wait_for_function(
        "() => [...document.querySelectorAll('#tokens .tok-text')].map(t => t.textContent).join('').includes('img')"
    )
    ui.wait("#heatmap .main-svg")
    ui.page.wait_for_timeout(500)
    assert ui.dialogs == []
    assert ui.page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert "<" in ui.page.inner_text("#tokens")
    ticks = ui.page.eval_on_selector_all(
        "#heatmap .xtick text", "ts => ts.map(t => t.textContent).join(' ')"
    )
    assert "<" in ticks  # shown literally on the axis, not parsed
    assert params(ui.page.url)["text"] == XSS
    # the same sentence through the other views
    for path, ready in (
        ("/math", "[data-step='8'] .main-svg"),
        ("/positions", "#emb-sum .main-svg"),
    ):
        ui.goto(
            f"{path}?model=decoder-mini&text=%3Cimg+src%3Dx+onerror%3Dalert(1)%3E", wait_for=ready
        )
        assert ui.page.evaluate("() => document.querySelectorAll('img').length") == 0
    assert ui.dialogs == []
    ui.shot("explorer-user-text-as-text")


def test_api_errors_show_a_clear_message(ui):
    ui.allowed_console = ("status of 422", "status of 404")
    ui.goto("/?model=decoder-mini", wait_for="#heatmap .main-svg")
    ui.page.fill("#text-input", "   ")
    ui.page.click("#run-button")
    ui.wait("#error-banner")
    message = ui.page.inner_text("#error-banner")
    assert "422" in message and "text" in message
    assert ui.page.get_attribute("#text-input", "aria-invalid") == "true"
    ui.shot("explorer-api-error")
    ui.page.click(".error-close")
    assert ui.page.locator("#error-banner").is_hidden()
    # an unknown model on the card page: the API's 404, shown in the banner
    ui.goto("/models/no-such-model")
    ui.wait("#error-banner")
    assert "404" in ui.page.inner_text("#error-banner")


def test_keyboard_shortcuts(ui):
    ui.goto("/?model=encoder-mini&text=you+are+welcome", wait_for="#heatmap .main-svg")
    ui.page.locator("h1").click()
    ui.page.keyboard.press("]")
    ui.page.keyboard.press(".")
    ui.page.wait_for_function("() => document.querySelector('#heatmap').dataset.head === '1'")
    q = params(ui.page.url)
    assert q["layer"] == "1" and q["head"] == "1"
    # tokens in the head view are focusable buttons: Enter locks (once layer 1's view is drawn:
    # it replaces layer 0's when its heads arrive)
    ui.wait("#head-view-wrap[data-shows='encoder.self:1'] #head-view[data-drawn='true']")
    ui.page.focus("#head-view g.tok[data-side='q'][data-i='1']")
    ui.page.keyboard.press("Enter")
    ui.page.wait_for_function("() => new URLSearchParams(location.search).get('lock') === 'q1'")
    ui.page.keyboard.press("?")
    assert ui.page.locator("#help-panel").is_visible()
    ui.page.keyboard.press("Escape")
    assert ui.page.locator("#help-panel").is_hidden()


def test_exports_png_svg_json(ui):
    ui.goto("/?model=decoder-mini&text=the+black+cat+ate+the+mouse", wait_for="#heatmap .main-svg")
    ui.wait("#head-view line", state="attached")
    got = {}
    for panel in ("heatmap", "headview", "grid"):
        for fmt in ("png", "svg", "json"):
            with ui.page.expect_download() as info:
                ui.page.click(f".export[data-export='{panel}'] button[data-format='{fmt}']")
            download = info.value
            path = download.path()
            data = Path(path).read_bytes()
            assert download.suggested_filename.endswith(f".{fmt}"), download.suggested_filename
            assert len(data) > 200
            got[(panel, fmt)] = data
    assert got[("heatmap", "png")][:8] == b"\x89PNG\r\n\x1a\n"
    assert got[("headview", "png")][:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in got[("headview", "svg")] and b"<line" in got[("headview", "svg")]
    assert b"<svg" in got[("heatmap", "svg")]
    assert json.loads(got[("heatmap", "json")])["model"] == "decoder-mini"
    assert len(json.loads(got[("grid", "json")])["attention"]) >= 1


def test_projector_mode(ui):
    ui.goto("/?model=seq2seq-en-fr", wait_for="#heatmap .main-svg")
    size = ui.page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
    ui.page.click("#projector-toggle")
    assert ui.page.evaluate("() => document.documentElement.classList.contains('projector')")
    big = ui.page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert big >= size * 1.4
    ui.page.wait_for_timeout(500)
    ui.shot("explorer-projector")
    # it sticks across pages
    ui.goto("/rope", wait_for="#relative .main-svg")
    assert ui.page.evaluate("() => document.documentElement.classList.contains('projector')")
    assert re.search(r"projector", ui.page.get_attribute("html", "class") or "")
