"""Server-rendered page shells (Jinja2). The views' logic lives in static/js (ES modules).

Every page is served under the app's strict Content-Security-Policy (set for every response by
app.middleware, see Settings.csp): scripts and styles only from this origin (no inline script,
no eval, no inline style), images from here or data:/blob: URLs (exports). The browser tests
load every view under it and fail on any violation.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from app.config import ROOT

log = logging.getLogger("attnviz.pages")
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(ROOT / "templates"))

# Plotly's JavaScript comes from the installed `plotly` package: no CDN, works offline. The
# package is located, not imported (importing it costs start-up time for nothing).
_PLOTLY = importlib.util.find_spec("plotly")
PLOTLY_JS = Path(next(iter(_PLOTLY.submodule_search_locations))) / "package_data" / "plotly.min.js"

# Plotly injects its stylesheet at run time with <style> elements, which a strict
# `style-src 'self'` refuses. Plotly's own opt-out: an element with id "plotly.js-style-global"
# and class "no-inline-styles" makes it skip the injection; base.html's <link> is that element
# and loads the same rules from /vendor/plotly.css, extracted here from the installed bundle so
# they always match its version. The bundle also injects its map library's CSS unless an
# element with that stylesheet's id exists: base.html renders an empty placeholder for it.
_RULES = re.compile(r'\{"X,X div":.*?\};for\(', re.S)
_ENTRY = re.compile(r"""("(?:[^"\\]|\\.)*"):('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_STYLE_IDS = re.compile(
    r'getElementById\("([0-9a-f]{32,})"\)\)\{var \w+=document\.createElement\("style"\)'
)


@lru_cache(maxsize=1)
def plotly_css() -> str:
    source = PLOTLY_JS.read_text(encoding="utf-8")
    block = _RULES.search(source)
    if not block:  # pragma: no cover - a future Plotly may move its rules
        log.warning("could not find Plotly's style rules in %s", PLOTLY_JS)
        return ""
    rules = []
    for key, value in _ENTRY.findall(block.group(0)):
        selector = re.sub(r"^,", " ,", key[1:-1]).replace("X", ".js-plotly-plot .plotly")
        selector = selector.replace("Y", ".plotly-notifier")
        rules.append(f"{selector}{{{value[1:-1].encode().decode('unicode_escape')}}}")
    return "/* Plotly's run-time styles, served as a file (CSP style-src 'self'). */\n" + "\n".join(
        rules
    )


@lru_cache(maxsize=1)
def plotly_style_ids() -> list[str]:
    return sorted(set(_STYLE_IDS.findall(PLOTLY_JS.read_text(encoding="utf-8"))))


@router.get("/vendor/plotly.css")
def plotly_stylesheet() -> Response:
    return Response(
        plotly_css(), media_type="text/css", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(
        PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


def page(request: Request, template: str, view: str, **context) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"view": view, "plotly_style_ids": plotly_style_ids(), **context},
    )


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def explorer(request: Request) -> HTMLResponse:
    return page(request, "explorer.html", "explorer")


@router.get("/math", response_class=HTMLResponse)
def attention_math(request: Request) -> HTMLResponse:
    return page(request, "math.html", "math")


@router.get("/decode", response_class=HTMLResponse)
def decode(request: Request) -> HTMLResponse:
    return page(request, "decode.html", "decode")


@router.get("/rope", response_class=HTMLResponse)
def rope(request: Request) -> HTMLResponse:
    return page(request, "rope.html", "rope")


@router.get("/positions", response_class=HTMLResponse)
def positions(request: Request) -> HTMLResponse:
    return page(request, "positions.html", "positions")


@router.get("/card", response_class=HTMLResponse)
def model_card(request: Request) -> HTMLResponse:
    return page(request, "card.html", "card")


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_card_by_id(request: Request, model_id: str) -> HTMLResponse:
    # The id is only echoed into a data- attribute (Jinja2 autoescapes it); the script reads
    # it from there and asks the API, which answers 404 for an unknown model.
    return page(request, "card.html", "card", model_id=model_id)
