"""The /patch view in a browser: a preset's maps plot what POST /patch answers (checked
against an independent call), the differing tokens are marked, a cell click opens the
explorer on that head, the URL reopens the experiment, exports, and zero console errors
(checked by the `ui` fixture after each test); axe runs through tests/e2e/views.py."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.test_accessibility import report
from tests.e2e.test_heads import PROGRESS_TEXTS, click_cell, plotted
from tests.e2e.urls import params, post_json

pytestmark = pytest.mark.e2e
SEQ2SEQ = "/patch?model=seq2seq-en-fr"


def drawn(ui):
    ui.wait("#head_z .main-svg", state="attached")
    ui.wait("#top-cells a", state="attached")
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")


def test_the_colour_swap_plots_the_servers_effects_and_a_cell_opens_the_explorer(ui, app_server):
    ui.goto(SEQ2SEQ)
    drawn(ui)
    want = post_json(
        app_server.url,
        "/patch",
        {
            "model": "seq2seq-en-fr",
            "clean": {
                "text": "the black cat ate the mouse",
                "target": "le chat noir a mangé la souris",
            },
            "corrupted": {"text": "the white cat ate the mouse"},
            "metric": {"kind": "logit_diff", "answer": "noir", "wrong": "blanc", "position": 2},
        },
    )
    # the page shows the site picked (the last attention site by default: cross-attention)
    assert ui.page.input_value("#site-select") == "decoder.cross"
    assert plotted(ui, "#head_z") == want["effects"]["head_z"]["decoder.cross"]
    assert plotted(ui, "#resid_pre") == want["effects"]["resid_pre"]["decoder"]
    ui.page.select_option("#stack-select", "encoder")
    ui.page.wait_for_function(
        "(n) => document.querySelector('#resid_pre').data[0].z[0].length === n",
        arg=len(want["tokens"]["clean"]["source"]),
    )
    assert plotted(ui, "#resid_pre") == want["effects"]["resid_pre"]["encoder"]
    # the one differing token is marked in both rows, and nothing else
    marked = ui.page.eval_on_selector_all(
        ".token.marked .tok-text", "ns => ns.map(n => n.textContent)"
    )
    assert marked[:2] == ["black", "white"] and len(want["differing"]) == 1
    # the URL keeps the experiment
    state = params(ui.page.url)
    assert state["corrupted"] == "the white cat ate the mouse" and state["position"] == "2"
    # a head's cell opens it in the explorer, on the clean input
    click_cell(ui, "#head_z", 1, 2)
    ui.page.wait_for_url(lambda url: urlparse(url).path == "/")
    opened = params(ui.page.url)
    assert (opened["site"], opened["layer"], opened["head"]) == ("decoder.cross", "1", "2")
    assert opened["text"] == "the black cat ate the mouse"
    assert opened["compare"] == "the white cat ate the mouse"  # both inputs: A and B
    ui.wait("#heatmap .main-svg", state="attached")
    ui.wait("#compare-diff .main-svg", state="attached")


def test_the_sweeps_progress_goes_through_the_shared_meter(ui):
    """/patch/stream's batches in lib/progress.js's meter, as on /heads (a seed no other test
    patches: an experiment the server has answered before is sent at once, without progress)."""
    ui.page.add_init_script(script=PROGRESS_TEXTS)
    ui.goto("/patch?model=induction-2l&preset=induction&seed=11")
    ui.wait("#head_z .main-svg", state="attached")
    ui.page.wait_for_function("() => !document.querySelector('#status.busy')")
    texts = ui.page.evaluate("window.__progressTexts")
    steps = [re.fullmatch(r"Patching every activation: (\d+) of (\d+) batches", t) for t in texts]
    assert texts and all(steps), texts
    done = [int(m.group(1)) for m in steps]
    assert done == sorted(set(done)) and done[-1] == int(steps[-1].group(2)) > 1
    assert ui.page.locator("#patch-progress .job-progress").count() == 0  # gone when done


def test_the_induction_preset_measures_the_cards_circuit(ui, app_server, tmp_path):
    ui.goto("/patch?model=induction-2l")
    drawn(ui)
    explain = ui.page.text_content("#explain")
    z = plotted(ui, "#head_z")
    # the paragraph quotes the layer-1 heads' measured effects, as the map plots them
    for h, v in enumerate(z[1]):
        assert f"L1 H{h} {v:.2f}".replace("-", "−") in explain, (h, v, explain)
    assert "mlp_out" in ui.page.text_content(
        "#mlp_out-note"
    ) or "attention-only" in ui.page.text_content("#mlp_out-note")
    with ui.page.expect_download() as download:
        ui.page.click("[data-export='head_z'] button[data-format='json']")
    saved = Path(download.value.path())
    exported = json.loads(saved.read_text())
    assert exported["effects"]["decoder.self"] == z


def test_the_explorer_compares_two_inputs_and_plots_their_difference(ui, app_server):
    """A − B equals the difference of two independent /attention calls; the total-variation
    map has one cell per layer × head."""
    a, b = "the black cat ate the mouse", "the white cat ate the mouse"
    url = f"/?model=decoder-mini&layer=1&head=2&text={a.replace(' ', '+')}&compare={b.replace(' ', '+')}"
    ui.goto(url)
    ui.wait("#compare-diff .main-svg", state="attached")
    ui.wait("#compare-tv .main-svg", state="attached")
    want = [
        post_json(app_server.url, "/attention", {"model": "decoder-mini", "text": t})["attention"][
            "decoder.self"
        ]
        for t in (a, b)
    ]
    diff = plotted(ui, "#compare-diff")
    for i, row in enumerate(want[0][1][2]):
        for j, v in enumerate(row):
            assert diff[i][j] == pytest.approx(v - want[1][1][2][i][j], abs=1e-6)
    tv = plotted(ui, "#compare-tv")
    assert len(tv) == len(want[0]) and len(tv[0]) == len(want[0][0])
    violations = ui.axe()
    assert not violations, report(violations)


def test_the_explorer_compares_two_models_on_one_input(ui, app_server):
    """decoder-mini (A) and induction-2l (B) share their vocabulary: the same head of both on
    the same sentence, A − B as two independent /attention calls give it."""
    text = "the cat sat on the mat"
    ui.goto(
        f"/?model=decoder-mini&layer=1&head=1&text={text.replace(' ', '+')}&compare_model=induction-2l"
    )
    ui.wait("#compare-diff .main-svg", state="attached")
    assert ui.page.input_value("#compare-model") == "induction-2l"
    a, b = (
        post_json(app_server.url, "/attention", {"model": m, "text": text})["attention"][
            "decoder.self"
        ][1][1]
        for m in ("decoder-mini", "induction-2l")
    )
    diff = plotted(ui, "#compare-diff")
    assert diff == [
        [pytest.approx(x - y, abs=1e-6) for x, y in zip(ra, rb, strict=True)]
        for ra, rb in zip(a, b, strict=True)
    ]
    with urllib.request.urlopen(f"{app_server.url}/api/v1/models") as r:
        layers = {m["id"]: m["n_layers"] for m in json.load(r)["models"]}
    if layers["decoder-mini"] != layers["induction-2l"]:  # the shipped ones: 4 against 2
        assert "differ in layers" in ui.page.text_content("#compare-note")
    else:  # the fixtures: the same shape, so every head's total variation is drawn
        ui.wait("#compare-tv .main-svg", state="attached")
        assert len(plotted(ui, "#compare-tv")) == layers["decoder-mini"]
