"""Server-rendered page shells (Jinja2). The views' logic lives in static/js (ES modules).

Every page is sent with a strict Content-Security-Policy: scripts only from this origin (no
inline script, no eval), styles only from this origin, images from here or data:/blob: URLs
(exports). The browser tests load every view under it and fail on any violation.
"""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import ROOT

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(ROOT / "templates"))

# Plotly's JavaScript comes from the installed `plotly` package: no CDN, works offline.
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(
        PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


def page(request: Request, template: str, view: str, **context) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {"view": view, **context}, headers=PAGE_HEADERS
    )


@router.get("/", response_class=HTMLResponse)
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
