"""Plotly's stylesheet and the ids of the stylesheets it would inject, scraped from the
installed bundle by app.plotly_assets. The scrape must find exactly what it expects in *this*
Plotly: a new version that moves or renames its styles fails here. (The browser tests compare
the served stylesheet with the rules Plotly injects itself, see tests/e2e/test_pages.py.)"""

from __future__ import annotations

import re

import pytest

from app.plotly_assets import (
    HEADER,
    PLOTLY_JS,
    PlotlyBundleChanged,
    plotly_css,
    plotly_style_ids,
    style_ids,
    style_rules,
)

SOURCE = PLOTLY_JS.read_text(encoding="utf-8")
SCOPES = (".js-plotly-plot .plotly", ".plotly-notifier")


def test_every_rule_is_read_and_scoped_to_plotly():
    rules = style_rules(SOURCE)
    assert len(rules) >= 40
    for rule in rules:
        selector, body = rule.split("{", 1)
        assert body.endswith("}") and "{" not in body and body.count("}") == 1, rule
        for part in selector.split(","):
            assert part.strip().startswith(SCOPES), rule  # no placeholder left unrenamed
    selectors = {rule.split("{", 1)[0] for rule in rules}
    # what the views rely on: the mode bar (exports, zoom) and its buttons
    assert ".js-plotly-plot .plotly .modebar" in selectors
    assert ".js-plotly-plot .plotly .modebar-btn" in selectors
    assert ".plotly-notifier" in selectors  # the one rule whose key is a bare name
    assert plotly_css() == HEADER + "\n".join(rules)


def test_every_style_element_plotly_creates_is_opted_out_or_has_a_placeholder():
    ids = plotly_style_ids()
    assert ids == style_ids(SOURCE) and ids
    created = [m.start() for m in re.finditer(r'createElement\("style"\)', SOURCE)]
    assert created
    for at in created:
        before = SOURCE[max(0, at - 400) : at]
        opted_out = '"plotly.js-style-"' in before and '.matches(".no-inline-styles")' in before
        placeholder = any(f'getElementById("{i}")' in before for i in ids)
        assert opted_out or placeholder, f"an unhandled <style> at {at}: {SOURCE[at - 200 : at]}"


def test_the_page_renders_a_placeholder_per_style_id(client):
    html = client.get("/").text
    assert 'id="plotly.js-style-global" class="no-inline-styles"' in html
    for style_id in plotly_style_ids():
        assert f'<meta name="plotly-skipped-style" id="{style_id}">' in html
    css = client.get("/vendor/plotly.css")
    assert css.status_code == 200 and css.text == plotly_css()


@pytest.mark.parametrize(
    "change",
    [
        ('{"X,X div":', '{"X,Xdiv":'),  # the rules block moved or was renamed
        ('.replace(/Y/g,".plotly-notifier")', '.replace(/Z/g,".plotly-notifier")'),
        ('.replace(/X/g,".js-plotly-plot .plotly")', '.replace(/X/g,".plotly-graph")'),
        ("Y:'font-family:", "Y:`font-family:"),  # an entry written in a way not read here
    ],
)
def test_a_bundle_of_another_shape_is_refused(change):
    old, new = change
    assert old in SOURCE
    with pytest.raises(PlotlyBundleChanged):
        style_rules(SOURCE.replace(old, new))
