from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every checkpoint is loaded")
def readyz(request: Request) -> dict:
    registry = request.app.state.registry
    return {"status": "ready", "models": [e.id for e in registry], "device": str(registry.device)}
