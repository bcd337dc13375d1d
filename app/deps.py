"""FastAPI dependencies every route shares: settings, registry, engine, and the job runner.

Each is an ``Annotated[..., Depends(...)]`` alias, so a route declares what it needs and a
test swaps any of them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Request
from pydantic import BaseModel
from starlette.responses import Response

from app.config import Settings
from app.engine import ENCODINGS, Engine, Payload
from app.registry import Registry
from app.traces import TraceStore

JSON = "application/json"


def current_settings(request: Request) -> Settings:
    return request.app.state.settings


def current_registry(request: Request) -> Registry:
    return request.app.state.registry


def current_engine(request: Request) -> Engine:
    return request.app.state.engine


def current_traces(request: Request) -> TraceStore:
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
    """Runs a job (-> JSON bytes) on the engine and answers in the client's best encoding."""

    engine: Engine
    encodings: list[str]  # what the client accepts, best first

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
        return self.respond(await self.engine.run(endpoint, key, job, preferred), media_type)

    def respond(self, payload: Payload, media_type: str = JSON) -> Response:
        """The payload in the best encoding both sides have. A cached payload compressed for
        another client is sent as plain JSON, which the GZip middleware still compresses."""
        for encoding in self.encodings:
            data = payload.encoded.get(encoding)
            if data is not None:
                return Response(
                    data,
                    media_type=media_type,
                    headers={"Content-Encoding": encoding, "Vary": "Accept-Encoding"},
                )
        return Response(payload.body, media_type=media_type)


def get_runner(request: Request, engine: EngineDep) -> Runner:
    return Runner(engine, accepted_encodings(request))


RunJob = Annotated[Runner, Depends(get_runner)]
