"""Liveness and readiness probes (load balancers, Kubernetes), and the site's icon.

Both probes are ``async`` and touch no model: they answer from the event loop at once, however
busy the inference workers are (a plain ``def`` would wait for a thread of the pool). HEAD is
answered too, as monitors send it.
"""

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, JSONResponse

from app.config import ROOT

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
@router.head("/healthz", include_in_schema=False)
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every checkpoint is loaded, and there is room for more work",
    description="200 once the lifespan has loaded every checkpoint and warmed each model up, "
    "with the engine's load (`queue`: jobs running and waiting, the estimated wait), and the "
    "models not served with why (`refused`: weights past ATTNVIZ_MODELS_MEMORY_MB). 503 "
    "before that or while shutting down (`starting`), and while the engine's queue has no "
    "room for one more request (`overloaded`), so that a load balancer sends work elsewhere.",
    responses={
        503: {
            "description": "Not ready: `starting`, or `overloaded`",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
@router.head("/readyz", include_in_schema=False)
async def readyz(request: Request):
    state = request.app.state
    registry = getattr(state, "registry", None)
    if not getattr(state, "ready", False) or registry is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    engine = state.engine
    queue = {
        "running": engine.running,
        "waiting": engine.queued,
        "wait_s": round(engine.queue_wait_s(), 3),
        "budget_s": engine.settings.queue_budget_s,
    }
    body = {
        "status": "ready",
        "models": [e.id for e in registry],
        "device": str(registry.device),
        "dtype": registry.dtype,
        "queue": queue,
    }
    if registry.refused:
        body["refused"] = registry.refused
    if not engine.has_room():
        return JSONResponse({**body, "status": "overloaded"}, status_code=503)
    return body


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    """Browsers ask for it on every page without a <link rel=icon> (/docs, JSON answers)."""
    return FileResponse(
        ROOT / "static" / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )
