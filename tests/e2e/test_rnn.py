"""The RNN translator in the browser: the /rnn view (the recurrence unrolled, its gates, the
vanishing gradient measured, its alignment beside the transformer's), and the RNN in the
explorer and the decoding player, which show its one attention (decoder.cross) and nothing of
the self-attention sites it does not have."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

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
    ui.page.check("#scores-toggle")  # the additive scores e_ij, before the softmax
    ui.page.wait_for_function("() => document.querySelector('#heatmap .gtitle')")
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
