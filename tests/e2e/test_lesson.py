"""The guided lesson in a browser: every step walked with the keyboard (a plot on each, zero
console errors), each step's URL reopening that step, axe on every step, "Open in full view"
keeping the state, a teacher starting at any step, projector mode."""

from __future__ import annotations

import pytest

from tests.e2e.test_accessibility import report
from tests.e2e.urls import params

pytestmark = pytest.mark.e2e
STEPS = 11
# what every step draws: a Plotly figure, a drawing (the block, the head view) or a canvas
PLOT = (
    "#step-body .main-svg, #step-body svg.block-order, #step-body svg.head-view, #step-body canvas"
)


def at_step(ui, n: int):
    ui.page.wait_for_function(
        "n => document.querySelector('#step-count')?.textContent === `Step ${n} of 11`", arg=n
    )
    ui.wait(PLOT, state="attached")
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")


def test_walk_every_step_with_the_keyboard_then_reopen_each_url(ui):
    ui.goto("/lesson")
    seen = []
    for n in range(1, STEPS + 1):
        at_step(ui, n)
        assert ui.page.locator("#error-banner").is_hidden()
        assert ui.page.locator(
            "#lesson-toc a[aria-current='step']"
        ).inner_text() == ui.page.inner_text("#step-title")
        seen.append(
            (ui.page.url, ui.page.inner_text("#step-title"), ui.page.input_value("#text-input"))
        )
        ui.shot(f"lesson-step-{n}")
        ui.page.keyboard.press("ArrowRight" if n % 2 else "PageDown")
    at_step(ui, STEPS)  # past the last step: it stays
    ui.page.keyboard.press("ArrowLeft")
    at_step(ui, STEPS - 1)
    ui.page.keyboard.press("Home")
    at_step(ui, 1)
    ui.page.keyboard.press("End")
    at_step(ui, STEPS)
    # each step's URL opens that step, with its model and sentence, and axe finds nothing
    for n, (url, title, text) in enumerate(seen, start=1):
        ui.page.goto(url, wait_until="domcontentloaded")
        at_step(ui, n)
        assert ui.page.inner_text("#step-title") == title
        assert ui.page.input_value("#text-input") == text
        if n > 1:
            assert params(url)["step"] == str(n)
        violations = ui.axe()
        assert not violations, f"step {n}: {report(violations)}"


def test_back_and_forward_and_the_pager(ui):
    ui.goto("/lesson?step=3")
    at_step(ui, 3)
    ui.page.click("#next-step")
    at_step(ui, 4)
    ui.page.click("#lesson-toc a >> nth=8")
    at_step(ui, 9)
    ui.page.go_back()
    at_step(ui, 4)
    ui.page.go_back()
    at_step(ui, 3)
    ui.page.go_forward()
    at_step(ui, 4)


def test_a_teacher_starts_at_any_step_on_its_own_model(ui, app_server):
    ui.goto("/lesson?step=7")
    at_step(ui, 7)
    model = ui.page.input_value("#model-select")
    assert app_server.models[model]["kind"] in ("decoder", "seq2seq")
    assert "cat sat" in ui.page.input_value("#text-input")
    assert params(ui.page.url)["model"] == model  # the URL now holds the whole state


def test_open_in_full_view_keeps_the_state(ui):
    ui.goto("/lesson?step=5")
    at_step(ui, 5)
    ui.page.select_option("#step-body select[name='layer']", "2")
    ui.page.wait_for_function("() => new URL(location).searchParams.get('layer') === '2'")
    at_step(ui, 5)
    lesson = params(ui.page.url)
    ui.page.click("#full-view")
    ui.page.wait_for_url("**/block?**")
    view = params(ui.page.url)
    assert view["model"] == lesson["model"] and view["text"] == lesson["text"]
    assert view["layer"] == "2"
    ui.wait("#norm-panel .main-svg", state="attached")
    assert ui.page.inner_text("#order-panel h2").startswith("Block 2")
    # the decoding step opens the player at the step shown
    ui.goto("/lesson?step=9")
    at_step(ui, 9)
    ui.page.click("#step-body .player-bar button.primary")
    ui.page.wait_for_function("() => new URL(location).searchParams.get('row') === '2'")
    href = ui.page.get_attribute("#full-view", "href")
    assert href.startswith("/decode?") and params(href)["step"] == "2"


def test_projector_mode(ui):
    ui.goto("/lesson?step=6")
    at_step(ui, 6)
    ui.page.keyboard.press("p")
    assert ui.page.evaluate("() => document.documentElement.classList.contains('projector')")
    at_step(ui, 6)
    heights = ui.page.eval_on_selector_all(
        "#step-body .js-plotly-plot", "ps => ps.map((p) => p.offsetHeight)"
    )
    assert heights and min(heights) > 150, heights
    ui.page.keyboard.press("ArrowRight")
    at_step(ui, 7)
    ui.shot("lesson-projector")
    violations = ui.axe()
    assert not violations, report(violations)


def test_the_positions_step_says_the_embedding_is_scaled(ui, app_server):
    """seq2seq-en-fr multiplies its embedding by √d_model before adding positions: the
    lesson's "token embedding" panel says by how much, from the API's own figure."""
    import httpx

    ui.goto("/lesson?step=2&model=seq2seq-en-fr")
    at_step(ui, 2)
    text = ui.page.input_value("#text-input")
    pos = httpx.get(
        f"{app_server.url}/api/v1/models/seq2seq-en-fr/positions", params={"text": text}
    ).json()
    scale, d = pos["embedding"]["scale"], app_server.models["seq2seq-en-fr"]["d_model"]
    assert abs(scale - d**0.5) < 1e-6
    note = ui.page.text_content("#lesson-emb-scale")
    assert note == f"Already multiplied × √d_model = √{d} = {scale:.2f}."
