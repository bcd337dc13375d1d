"""/heads for a model saved with training snapshots: the panels show what GET
/models/{id}/snapshots answers (the loss, each head's scores per snapshot), the slider puts the
selected snapshot's attention on the heatmap (as /snapshots/{step}/attention answers it) and
into the URL, and axe finds nothing."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e.test_accessibility import report
from tests.e2e.urls import params

pytestmark = pytest.mark.e2e
MODEL = "induction-2l"


def get_json(base: str, path: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/v1{path}", timeout=60) as r:
        return json.load(r)


def plotted(ui, div: str) -> list:
    return ui.page.evaluate(
        "(sel) => document.querySelector(sel).data.map((t) => [t.name, t.x, t.y])", div
    )


def test_the_training_panels_show_the_runs_snapshots(ui, app_server):
    if not app_server.models[MODEL].get("snapshots"):
        pytest.skip(f"the checkpoints under test have no {MODEL} snapshots (fixture models)")
    ui.goto(f"/heads?model={MODEL}&probe=1&layer=1&head=0")
    ui.wait("#snap-attn .main-svg", state="attached")
    data = get_json(app_server.url, f"/models/{MODEL}/snapshots?seed=0&run_length=24")
    steps = [s["step"] for s in data["snapshots"]]

    loss = plotted(ui, "#snap-loss")
    assert loss[0][2] == data["loss"]
    assert loss[2][1] == steps and loss[2][2] == [s["loss"] for s in data["snapshots"]]
    for div, score in (("#snap-induction", "induction"), ("#snap-previous", "previous_token")):
        lines = plotted(ui, div)
        assert len(lines) == 8
        for name, x, y in lines:
            layer, head = int(name[1]), int(name[4])  # "L1 H0"
            assert x == steps
            assert y == [s["scores"][score][layer][head] for s in data["snapshots"]]
    formed = data["formed"]["induction_formed_at_step"]
    if formed is not None:
        assert f"and {formed}" in ui.page.text_content("#training-explain")

    for key, index in (("Home", 0), ("ArrowRight", 1), ("End", len(steps) - 1)):
        ui.page.focus("#snap-slider")
        ui.page.keyboard.press(key)
        step = steps[index]
        want = get_json(
            app_server.url, f"/models/{MODEL}/snapshots/{step}/attention?layer=1&head=0"
        )["attention"]
        masked = [[v if j <= i else None for j, v in enumerate(row)] for i, row in enumerate(want)]
        ui.page.wait_for_function(
            "(want) => JSON.stringify(document.querySelector('#snap-attn').data[0].z) === "
            "JSON.stringify(want)",
            arg=masked,
        )
        assert f"at step {step} (" in ui.page.text_content("#snap-attn-title")
        assert params(ui.page.url)["snap"] == str(step)

    violations = ui.axe()
    assert not violations, report(violations)
