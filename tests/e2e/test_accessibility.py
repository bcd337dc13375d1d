"""Accessibility, measured: axe-core (WCAG 2.x A and AA rules) finds nothing on any view,
before a model's results arrive and once they are drawn."""

from __future__ import annotations

import re

import pytest

from tests.e2e.views import VIEWS

pytestmark = pytest.mark.e2e

# Everything under /api/v1 except the model list: the view shows its controls, not results.
HELD_BACK = re.compile(r"/api/v1/(?!models$).+")


def report(violations: list[dict]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} — {', '.join(v['nodes'][:5])}" for v in violations
    )


@pytest.mark.parametrize("view", list(VIEWS))
def test_no_violations_before_results(ui, view):
    ui.page.route(HELD_BACK, lambda route: None)  # never answered while the test looks
    with ui.page.expect_request(HELD_BACK):
        ui.goto(VIEWS[view][0])
    ui.wait("#model-select option", state="attached")
    violations = ui.axe()
    assert not violations, report(violations)


@pytest.mark.parametrize("view", list(VIEWS))
def test_no_violations_with_results(ui, view):
    path, selectors = VIEWS[view]
    ui.goto(path)
    for selector in selectors:
        ui.wait(selector, state="attached")
    violations = ui.axe()
    assert not violations, report(violations)


def test_no_violations_in_the_explorer_with_its_panels_open(ui):
    """A head switched off, a token locked, the keyboard panel, an error, projector mode."""
    ui.allowed_console = ("status of 422",)
    ui.goto("/?model=decoder-mini&off=1&lock=q2", wait_for="#heatmap .main-svg")
    ui.wait("#head-view g.tok.locked", state="attached")
    ui.page.fill("#text-input", "   ")
    ui.page.click("#run-button")
    ui.wait("#error-banner")
    ui.page.click("#help-toggle")
    ui.page.click("#projector-toggle")
    ui.wait("#help-panel")
    violations = ui.axe()
    assert not violations, report(violations)


def test_no_violations_in_a_finished_decoding(ui):
    """Every step shown: the output line, the final text and its stop reason."""
    ui.goto("/decode?model=seq2seq-en-fr&step=64", wait_for="#output-text")
    ui.wait("#self .main-svg", state="attached")
    violations = ui.axe()
    assert not violations, report(violations)
