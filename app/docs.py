"""/docs: Swagger UI served from this server, with no inline script and no CDN.

The assets (Swagger UI 5, which reads OpenAPI 3.1) come from the ``swagger-ui-py`` package,
found without importing it, so the docs work offline under the app's strict CSP.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

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


def swagger_assets() -> Path:
    spec = importlib.util.find_spec("swagger_ui")  # a dependency (pyproject)
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install(app: FastAPI) -> None:
    """/docs, /docs/init.js and the Swagger UI assets under /docs/assets."""
    app.mount("/docs/assets", StaticFiles(directory=swagger_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(INIT, media_type="text/javascript")
