"""FastAPI dependencies every route shares: settings, registry, engine, and the job runner.

Each is an ``Annotated[..., Depends(...)]`` alias, so a route declares what it needs and a
test swaps any of them with ``app.dependency_overrides``. All are ``async``: FastAPI would run
a plain ``def`` dependency on its thread pool, a thread hop per dependency per request.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import Receive

from app.config import Settings
from app.engine import ENCODINGS, Engine, Payload
from app.errors import ClientDisconnected
from app.middleware import route_template
from app.registry import Registry
from app.traces import TraceStore

JSON = "application/json"
T = TypeVar("T")


# Dependencies are `async def` although they never wait: FastAPI runs a plain `def` one in its
# thread pool, a hop that cost a short request ~0.2 ms each (py-spy, encoder-mini at 32 tokens).
async def current_settings(request: Request) -> Settings:
    return request.app.state.settings


async def current_registry(request: Request) -> Registry:
    return request.app.state.registry


async def current_engine(request: Request) -> Engine:
    return request.app.state.engine


async def current_traces(request: Request) -> TraceStore:
    return request.app.state.traces


SettingsDep = Annotated[Settings, Depends(current_settings)]
TracesDep = Annotated[TraceStore, Depends(current_traces)]
RegistryDep = Annotated[Registry, Depends(current_registry)]
EngineDep = Annotated[Engine, Depends(current_engine)]


def cache_key(req: BaseModel) -> bytes:
    """Canonical JSON of the validated request: defaults filled in, keys sorted."""
    return orjson.dumps(req.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def accepted_encodings(request: Request) -> list[str]:
    """The encodings of ENCODINGS that the client's Accept-Encoding allows, best first."""
    offered = {
        part.split(";")[0].strip().lower()
        for part in request.headers.get("accept-encoding", "").split(",")
        if "q=0" not in part.replace(" ", "").split(";")[1:]
    }
    return [e for e in ENCODINGS if e in offered]


@dataclass
class Runner:
    """Runs a job (-> JSON bytes) on the engine and answers in the client's best encoding.

    While a job waits for a worker the client's connection is watched: a client that goes
    away is answered nothing (``ClientDisconnected``, logged as 499) and its job is dropped
    unless a twin still waits for it (``Engine._abandon``).
    """

    engine: Engine
    encodings: list[str]  # what the client accepts, best first
    receive: Receive  # the request's ASGI receive: it reports the client's disconnect

    async def __call__(
        self,
        endpoint: str,
        key: Hashable | None,
        job: Callable[[], bytes],
        media_type: str = JSON,
    ) -> Response:
        """``key`` None: never cached nor coalesced (e.g. sampling without a seed). The key
        must tell answers of different media types apart (it is the request, format included)."""
        preferred = self.encodings[0] if self.encodings else None
        payload = await self.until_disconnect(self.engine.run(endpoint, key, job, preferred))
        if payload.plain is None and not any(e in payload.encoded for e in self.encodings):
            # kept compressed only, for a client that takes none of its encodings: decoded off
            # the event loop (a long input's answer is megabytes)
            plain = await asyncio.to_thread(lambda: payload.body)
            payload = replace(payload, plain=plain)
        return self.respond(payload, media_type)

    async def stream(
        self, endpoint: str, make_iter: Callable[[], Iterator[Any]]
    ) -> AsyncIterator[Any]:
        """``Engine.stream``: returns once a worker has started ``make_iter``."""
        return await self.until_disconnect(self.engine.stream(endpoint, make_iter))

    async def until_disconnect(self, work: Awaitable[T]) -> T:
        """``await work``, unless the client disconnects first: then ``work`` is cancelled.
        (``work`` runs in this task: a cache hit returns before the watcher ever runs.)"""
        task = asyncio.current_task()
        watching, client_gone = True, False

        def gone(watch: asyncio.Future) -> None:
            nonlocal client_gone
            if watching and not watch.cancelled() and watch.exception() is None:
                client_gone = True
                task.cancel()

        watch = asyncio.ensure_future(_disconnected(self.receive))
        watch.add_done_callback(gone)
        try:
            return await work
        except asyncio.CancelledError:
            if not client_gone:
                raise  # cancelled from elsewhere (e.g. shutdown)
            if hasattr(task, "uncancel"):  # Python 3.11+: this cancellation is handled
                task.uncancel()
            raise ClientDisconnected from None
        finally:
            watching = False
            watch.cancel()

    def respond(self, payload: Payload, media_type: str = JSON) -> Response:
        """The payload in the best encoding both sides have; else its plain bytes, which the
        GZip middleware still compresses where it can."""
        timing = {"Server-Timing": server_timing(payload.timing)}
        for encoding in self.encodings:
            data = payload.encoded.get(encoding)
            if data is not None:
                return Response(
                    data,
                    media_type=media_type,
                    headers={"Content-Encoding": encoding, "Vary": "Accept-Encoding", **timing},
                )
        return Response(payload.body, media_type=media_type, headers=timing)


def server_timing(timing: dict[str, float]) -> str:
    """A payload's making as Server-Timing metrics (ms), shown by browsers' developer tools
    beside the middleware's ``app`` (the whole request): ``cache`` when it was not made now."""
    if not timing:
        return "cache;desc=hit"
    return ", ".join(f"{name};dur={1e3 * s:.2f}" for name, s in timing.items())


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone. The body has been read by then (FastAPI reads it
    before calling the route), so nothing else is waiting for these messages."""
    while (await receive())["type"] != "http.disconnect":
        pass


class Shedder:
    """``shed(method, path)``: is this request for the engine (a route that uses ``RunJob``)
    at a moment when the engine has no room for it? The server (app/server.py) asks it of
    each request head, and answers the 503 itself: under overload a refusal then costs
    microseconds, not a trip through the middleware, FastAPI and the body's parsing.

    It learns the engine's routes from the requests that reach ``get_runner`` (their route
    template, e.g. ``/api/v1/models/{model_id}/positions``): a route's first request goes
    through the app, and the app's own 503 (``Engine.check_room``) stays the rule.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.routes: dict[tuple[str, str], tuple[re.Pattern, str]] = {}

    def learn(self, scope, endpoint: str) -> None:
        key = (scope["method"], route_template(scope, scope["path"]))
        if key not in self.routes:
            pattern = "".join(
                "[^/]+" if part.startswith("{") else re.escape(part)
                for part in re.split(r"(\{[^}]+\})", key[1])
            )
            self.routes[key] = (re.compile(pattern), endpoint)

    def __call__(self, method: str, path: str) -> bool:
        for (known, _), (regex, endpoint) in self.routes.items():
            if known == method and regex.fullmatch(path):
                if self.engine.has_room():
                    return False
                self.engine.metrics.rejected.labels(endpoint).inc()
                return True
        return False


async def get_runner(request: Request, engine: EngineDep) -> Runner:
    """Admission control first: FastAPI solves dependencies before it validates the body, so
    a request the engine has no room for gets its 503 before any work is spent on it."""
    endpoint = getattr(request.scope.get("route"), "name", "unknown")
    request.app.state.shedder.learn(request.scope, endpoint)
    engine.check_room(endpoint)
    return Runner(engine, accepted_encodings(request), request.receive)


RunJob = Annotated[Runner, Depends(get_runner)]
