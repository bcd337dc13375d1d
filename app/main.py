"""create_app(): the lifespan loads the registry; routers are included; static files mounted."""

from __future__ import annotations

from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.config import ROOT, Settings, get_settings
from app.registry import Registry, resolve_device
from app.routes import health, models, pages


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        app.state.registry = Registry.load(settings.checkpoint_dir, resolve_device(settings.device))
        yield

    app = FastAPI(title="attnviz", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(models.router, prefix="/api/v1")
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    return app


app = create_app()
