"""Plotly for the browser, from the installed `plotly` package: no CDN, works offline.

The package is located, not imported (importing it costs start-up time for nothing).

Plotly injects its stylesheet at run time with <style> elements, which the app's strict
`style-src 'self'` refuses. Plotly's own opt-out: an element with id "plotly.js-style-global"
and class "no-inline-styles" makes it skip the injection; base.html's <link> is that element
and loads the same rules from /vendor/plotly.css, extracted here from the installed bundle so
they always match its version. The bundle also injects its map library's CSS unless an
element with that stylesheet's id exists: base.html renders an empty placeholder for each id
`plotly_style_ids()` finds.

What is scraped is checked, not assumed: `style_rules` raises `PlotlyBundleChanged` when the
bundle no longer has the shape read here (tests/app/test_plotly_assets.py runs it against the
installed Plotly, so a new version that moves things fails there, not in a classroom).
"""

from __future__ import annotations

import importlib.util
import logging
import re
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("attnviz.plotly")

_PLOTLY = importlib.util.find_spec("plotly")
PLOTLY_JS = Path(next(iter(_PLOTLY.submodule_search_locations))) / "package_data" / "plotly.min.js"

# The rules: an object literal {"X,X div": "direction:ltr;…", …} whose keys the bundle turns
# into selectors (X and Y are placeholders) in the loop that follows it.
_RULES = re.compile(r'\{("X,X div":.*?)\};for\(', re.S)
# key: value, the key quoted or a bare name (the notifier's own rule is `Y:'…'`)
_ENTRY = re.compile(
    r"""("(?:[^"\\]|\\.)*"|[A-Za-z_$][\w$]*):('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
)
# That loop's renaming, as the bundle writes it: ours below must do the same.
_RENAMING = re.compile(
    r'[\w$]+ in [\w$]+\)[\w$]+=[\w$]+\.replace\(/\^,/," ,"\)'
    r'\.replace\(/X/g,"\.js-plotly-plot \.plotly"\)\.replace\(/Y/g,"\.plotly-notifier"\)'
)
_STYLE_IDS = re.compile(
    r'getElementById\("([0-9a-f]{32,})"\)\)\{var \w+=document\.createElement\("style"\)'
)
HEADER = "/* Plotly's run-time styles, served as a file (CSP style-src 'self'). */\n"


class PlotlyBundleChanged(ValueError):
    """The Plotly bundle no longer has the shape this module reads."""


def style_rules(source: str) -> list[str]:
    """Plotly's global style rules as CSS (`selector{declarations}`), read from the bundle, in
    the order its run-time injection leaves them in."""
    blocks = list(_RULES.finditer(source))
    if len(blocks) != 1:
        raise PlotlyBundleChanged(f"expected one block of style rules, found {len(blocks)}")
    block = blocks[0]
    if not _RENAMING.match(source, block.end()):
        raise PlotlyBundleChanged("the loop after the style rules no longer renames X and Y")
    entries = block.group(1)
    unread = _ENTRY.sub("", entries).replace(",", "")
    if unread.strip():
        raise PlotlyBundleChanged(f"unread text in the block of style rules: {unread[:80]!r}")
    rules = []
    for key, value in _ENTRY.findall(entries):
        selector = re.sub(r"^,", " ,", key.strip('"')).replace("X", ".js-plotly-plot .plotly")
        selector = selector.replace("Y", ".plotly-notifier")
        rules.append(f"{selector}{{{value[1:-1].encode().decode('unicode_escape')}}}")
    # Plotly inserts each rule at the top of its sheet: the browser ends up with them reversed,
    # and where two rules tie, the later one wins. Serve them in that order.
    return rules[::-1]


def style_ids(source: str) -> list[str]:
    """Ids of the stylesheets the bundle injects unless an element with that id exists."""
    return sorted(set(_STYLE_IDS.findall(source)))


@lru_cache(maxsize=1)
def plotly_css() -> str:
    try:
        return HEADER + "\n".join(style_rules(PLOTLY_JS.read_text(encoding="utf-8")))
    except PlotlyBundleChanged as error:
        # The figures still draw, only unstyled (e.g. the mode bar): serve what we have.
        log.warning("could not read Plotly's style rules from %s: %s", PLOTLY_JS, error)
        return HEADER


@lru_cache(maxsize=1)
def plotly_style_ids() -> list[str]:
    return style_ids(PLOTLY_JS.read_text(encoding="utf-8"))
