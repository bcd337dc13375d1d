"""Liveness and readiness probes (load balancers, Kubernetes)."""

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every checkpoint is loaded",
    description="200 once the lifespan has loaded every checkpoint and warmed each model up; "
    "503 before that (or while shutting down).",
)
def readyz(request: Request):
    state = request.app.state
    registry = getattr(state, "registry", None)
    if not getattr(state, "ready", False) or registry is None:
        return JSONResponse({"status": "starting"}, status_code=503)
    return {"status": "ready", "models": [e.id for e in registry], "device": str(registry.device)}
