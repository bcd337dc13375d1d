"""Server-rendered page shells (Jinja2). The views' logic lives in static/js (ES modules).

Every page is served under the app's strict Content-Security-Policy (set for every response by
app.middleware, see Settings.csp): scripts and styles only from this origin (no inline script,
no eval, no inline style), images from here or data:/blob: URLs (exports). The browser tests
load every view under it and fail on any violation. Plotly's script and stylesheet come from
the installed package (app.plotly_assets).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from app.config import ROOT
from app.plotly_assets import PLOTLY_JS, plotly_css, plotly_style_ids

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(ROOT / "templates"))

# path -> view: templates/<view>.html, which loads static/js/views/<view>.js
VIEWS = {
    "/": "explorer",
    "/math": "math",
    "/decode": "decode",
    "/rope": "rope",
    "/positions": "positions",
    "/block": "block",
    "/heads": "heads",
    "/patch": "patch",
    "/lesson": "lesson",
    "/rnn": "rnn",
    "/card": "card",
}
VENDOR_CACHE = {"Cache-Control": "public, max-age=86400"}


@router.get("/vendor/plotly.css")
def plotly_stylesheet() -> Response:
    return Response(plotly_css(), media_type="text/css", headers=VENDOR_CACHE)


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=VENDOR_CACHE)


def page(request: Request, view: str, **context) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        f"{view}.html",
        {"view": view, "plotly_style_ids": plotly_style_ids(), **context},
    )


def _view_page(view: str):
    def show(request: Request) -> HTMLResponse:
        return page(request, view)

    show.__name__ = f"{view}_page"
    return show


for _path, _view in VIEWS.items():
    router.add_api_route(
        _path, _view_page(_view), methods=["GET", "HEAD"], response_class=HTMLResponse
    )


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_card_by_id(request: Request, model_id: str) -> HTMLResponse:
    # The id is only echoed into a data- attribute (Jinja2 autoescapes it); the script reads
    # it from there and asks the API, which answers 404 for an unknown model.
    return page(request, "card", model_id=model_id)
