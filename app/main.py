"""create_app(): the lifespan loads the registry and the engine; routers are included.

Middleware, outermost first: request context (id, log line, metrics, security headers, body
limit), CORS (only when ``cors_origins`` is set), GZip (for bodies the engine did not
already compress).
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware

from app import docs, errors
from app.config import ROOT, Settings, get_settings
from app.deps import Shedder
from app.engine import Engine
from app.inputs import RULES, Inputs
from app.memory import weights_budget_bytes
from app.metrics import Metrics
from app.middleware import RequestContextMiddleware
from app.registry import Registry, resolve_device
from app.routes import (
    analysis,
    attention,
    block,
    generate,
    health,
    metrics,
    models,
    pages,
    patching,
    positions,
    rnn,
    snapshots,
    standalone,
    tasks,
    tokens,
)
from app.server import GUARDED, SERVER_ENV, SHED_STATE
from app.traces import TraceStore

log = logging.getLogger("attnviz")

DESCRIPTION = """
Look inside small trained transformers, head by head and step by step.

Start with `GET /api/v1/models`, then send a sentence to `POST /api/v1/attention`. Every
error has the shape `{"error": {"code", "message", "field"}}`; `field` names the input to fix.
Tensors come as nested JSON lists (4 decimals) or, with `format: "f16"`, as base64 half floats.

Every bound a field has on its own is in the schemas below, with this server's limits. A
request the schemas accept can still get a 4xx from a rule that depends on the model or
relates two fields; its `code` says which:

{rules}

A JSON body must be UTF-8 and name each key once (else 422, `field: "body"`); unknown body
fields are refused, unknown query parameters are ignored. When the
server is busy it answers 503 with `Retry-After` at once rather than queue more than about
a second of work.
"""


def _warm_up(registry: Registry, engine: Engine) -> None:
    """One tiny forward pass per model on every worker thread, so the first click is fast."""
    import torch

    def run():
        with torch.inference_mode():
            for entry in registry:
                cfg = entry.config
                ids = torch.tensor([[cfg.bos_id or 0, 1 % cfg.vocab_size]], device=entry.device)
                if cfg.kind == "encoder":
                    entry.model.encode(ids)
                elif cfg.kind == "decoder":
                    entry.model.decode(ids)
                else:
                    entry.model.decode(ids, entry.model.encode(ids))

    futures = [engine.executor.submit(run) for _ in range(engine.settings.max_concurrency)]
    for f in futures:
        f.result()


def configure_logging(level: str) -> None:
    """attnviz.* logs to stderr (one access line per request) unless someone configured it."""
    logger = logging.getLogger("attnviz")
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)


UNGUARDED = (
    "app.main:app is served by `python -m app.server` (make run, the container's entrypoint), "
    "which adds the guards plain uvicorn lacks: a request-head deadline, a connection limit "
    "and load shedding before the app. To embed the app elsewhere, build it with "
    "app.main.create_app() and give your server those guards."
)


def create_app(settings: Settings | None = None, *, require_guards: bool = False) -> FastAPI:
    """The app. ``require_guards``: refuse to start unless ``python -m app.server`` serves it
    (the module's ``app``, so that no launcher can serve the product without its guards)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if require_guards and os.environ.get(SERVER_ENV) != GUARDED:
            raise RuntimeError(UNGUARDED)
        t0 = time.perf_counter()
        app.state.ready = False
        device = resolve_device(settings.device)
        registry = Registry.load(
            settings.checkpoint_dir, device, settings.dtype, weights_budget_bytes(settings)
        )
        engine = Engine(settings, app_metrics)
        _warm_up(registry, engine)
        app.state.registry = registry
        app.state.inputs = Inputs(registry, settings)
        app.state.engine = engine
        app.state.traces = TraceStore(
            settings.trace_cache_mb << 20, settings.trace_cache_min_tokens
        )
        app.state.shedder = Shedder(engine)
        app_metrics.models_loaded.set(len(registry.entries))
        app.state.ready = True
        log.info(
            "ready in %.2fs: %d models on %s, %d workers x %d torch threads",
            time.perf_counter() - t0,
            len(registry.entries),
            device,
            settings.max_concurrency,
            engine.threads_per_worker,
        )
        try:
            # the lifespan state reaches the server's protocol too (ASGI): see app/server.py
            yield {SHED_STATE: app.state.shedder}
        finally:
            app.state.ready = False
            engine.shutdown()

    app = FastAPI(
        title="attnviz",
        version="0.1.0",
        description=DESCRIPTION.replace(
            "{rules}", "\n".join(f"* `{code}`: {rule}" for code, rule in RULES.items())
        ),
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry bridge asks three global providers on every request
        # whether anyone listens (~0.1 ms); this service exports Prometheus metrics instead
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.ready = False
    errors.install(app)
    docs.install(app, settings)

    app.include_router(health.router)
    app.include_router(metrics.router)
    for module in (
        models,
        tokens,
        attention,
        generate,
        tasks,
        positions,
        analysis,
        block,
        rnn,
        snapshots,
    ):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(patching.router, prefix="/api/v1")
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    app.include_router(pages.router)  # the browser UI: page shells, Plotly from the package
    app.include_router(standalone.router)  # its "HTML (standalone)" export

    app.add_middleware(
        GZipMiddleware, minimum_size=settings.gzip_min_bytes, compresslevel=settings.gzip_level
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app_metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        csp=settings.csp,
    )
    return app


app = create_app(require_guards=True)
