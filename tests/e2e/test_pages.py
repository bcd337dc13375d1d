"""Every view loads clean (no console error, no CSP violation, nothing fetched from outside
127.0.0.1) and draws its figures; a screenshot of each is kept as a test artifact."""

from __future__ import annotations

import urllib.request

import pytest

from app.plotly_assets import PLOTLY_JS
from tests.e2e.views import VIEWS

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("view", list(VIEWS))
def test_view_loads_clean_and_draws(ui, view):
    path, selectors = VIEWS[view]
    response = ui.goto(path)
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    for selector in selectors:
        ui.wait(selector, state="attached")
    assert ui.page.locator("#error-banner").is_hidden()
    assert_no_cloud_button(ui)
    ui.shot(f"view-{view}")


def assert_no_cloud_button(ui):
    """No mode bar offers to upload the chart (Plotly's "Share chart…" to Plotly Cloud)."""
    buttons = ui.page.eval_on_selector_all(
        ".modebar-btn", "els => els.map((e) => [e.dataset.title || '', e.dataset.attr || ''])"
    )
    assert buttons, "the view's charts have mode bars (zoom, download)"
    offered = [b for b in buttons if "share" in b[0].lower() or "cloud" in " ".join(b).lower()]
    assert not offered, offered


def test_model_card_of_every_model(ui, app_server):
    for model_id in app_server.models:
        ui.goto(f"/card?model={model_id}", wait_for="#params .main-svg")
        ui.page.wait_for_function(
            "id => document.querySelector('#arch-svg')?.getAttribute('aria-label')?.endsWith(id)",
            arg=model_id,
        )
        text = ui.page.inner_text("#arch")
        assert "attention" in text.lower()
        if app_server.models[model_id]["kind"] == "seq2seq":
            assert "Cross-attention" in text
        ui.shot(f"card-{model_id}")


def test_served_plotly_css_is_what_plotly_would_inject(ui, app_server):
    """Plotly on a page without our CSP or its opt-out injects its own rules: the browser must
    end up with exactly the rules of /vendor/plotly.css, in the same order."""
    with urllib.request.urlopen(app_server.url + "/vendor/plotly.css", timeout=10) as r:
        served = r.read().decode()
    ui.page.set_content("<!doctype html><html><head></head><body></body></html>")
    ui.page.add_script_tag(path=str(PLOTLY_JS))
    injected = ui.page.evaluate(
        """() => [...document.getElementById("plotly.js-style-global").sheet.cssRules]
                   .map((rule) => rule.cssText)"""
    )
    ours = ui.page.evaluate(
        """(css) => { const sheet = new CSSStyleSheet(); sheet.replaceSync(css);
                      return [...sheet.cssRules].map((rule) => rule.cssText); }""",
        served,
    )
    assert len(injected) >= 40
    assert ours == injected


def test_plotly_and_styles_come_from_this_server(app_server):
    for path in ("/vendor/plotly.min.js", "/vendor/plotly.css", "/static/css/app.css"):
        with urllib.request.urlopen(app_server.url + path, timeout=10) as r:
            assert r.status == 200 and len(r.read()) > 500


def test_no_window_of_another_origin_can_be_sent_a_chart(ui, app_server):
    """Plotly's cloud upload opens the cloud in a new window and posts the chart to it: the CSP
    governs neither. The Cross-Origin-Opener-Policy does: a window of another origin opened from
    a page is cut off from it (closed to the opener, so nothing can be posted to it)."""
    response = ui.goto("/models/encoder-mini")
    assert response.headers.get("cross-origin-opener-policy") == "same-origin"
    opened = """async (url) => { const w = window.open(url, "_blank");
                                 await new Promise((r) => setTimeout(r, 1500));
                                 return w === null || w.closed; }"""
    other = app_server.url.replace("127.0.0.1", "localhost") + "/healthz"  # another origin
    assert ui.page.evaluate(opened, other)
    assert not ui.page.evaluate(opened, app_server.url + "/healthz")  # the same origin: not cut
