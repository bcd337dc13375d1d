"""/docs: Swagger UI served from this server, with no inline script and no CDN.

The assets (Swagger UI 5, which reads OpenAPI 3.1) come from the ``swagger-ui-py`` package,
found without importing it, so the docs work offline under the strict CSP. Without that package FastAPI's CDN page is served instead (it needs the
network, and gets a looser CSP on /docs only).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

FALLBACK_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "object-src 'none'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>attnviz API</title>
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


def swagger_assets() -> Path | None:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "static"
    ok = all((path / f).exists() for f in ("swagger-ui-bundle.js", "swagger-ui.css"))
    return path if ok else None


def install(app: FastAPI) -> str | None:
    """Add /docs; returns the CSP /docs needs when it differs from the app's."""
    assets = swagger_assets()
    if assets is None:

        @app.get("/docs", include_in_schema=False)
        def docs_cdn() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="attnviz API")

        return FALLBACK_CSP

    app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(INIT, media_type="text/javascript")

    return None
