"""/docs: Swagger UI served from this server, with no inline script and no CDN; and the
OpenAPI document it reads, with this server's limits filled in.

The assets (Swagger UI 5, which reads OpenAPI 3.1) come from the ``swagger-ui-py`` package,
found without importing it, so the docs work offline under the app's strict CSP.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from app.config import Settings
from app.schemas import LIMIT_KEY

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>attnviz API</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


def swagger_assets() -> Path:
    spec = importlib.util.find_spec("swagger_ui")  # a dependency (pyproject)
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def with_server_limits(document: Any, settings: Settings) -> Any:
    """Replace each ``server_limit`` marker (app/schemas.py) by the settings it names, so the
    document states this server's limits: ``{"x-server-limit": {"maxLength":
    "max_text_chars"}}`` becomes ``{"maxLength": 8192}``."""
    if isinstance(document, list):
        return [with_server_limits(v, settings) for v in document]
    if not isinstance(document, dict):
        return document
    out = {k: with_server_limits(v, settings) for k, v in document.items() if k != LIMIT_KEY}
    for keyword, setting in document.get(LIMIT_KEY, {}).items():
        out[keyword] = getattr(settings, setting)
    return out


def install(app: FastAPI, settings: Settings) -> None:
    """/docs, /docs/init.js and the Swagger UI assets under /docs/assets; the OpenAPI
    document with the server's limits."""
    app.mount("/docs/assets", StaticFiles(directory=swagger_assets()), name="docs-assets")
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_server_limits(build(), settings)
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(INIT, media_type="text/javascript")
