"""The shape most API routes share: a POST body checked against its model at once (a 4xx
before any work), then computed on an engine worker, answered as JSON and cached by the
canonical body.

    @engine_post(router, "/logit-lens", LogitLensResponse, job="logit_lens", summary=...)
    def logit_lens(inputs: Inputs, body: LogitLensRequest, settings: Settings):
        inp = inputs.logit_lens(body)  # in the request
        return lambda: inference.logit_lens(inp, body.k, settings.max_new_tokens)  # on a worker

The decorated function resolves the body and returns the job; ``engine_post`` writes the
FastAPI endpoint around it: its body type is the function's ``body`` annotation and its name
the function's, so the OpenAPI document and the route's metrics label are the ones a
hand-written endpoint of that name would have.
"""

# No `from __future__ import annotations`: the endpoint's `body: body_type` must be evaluated
# when it is defined, for FastAPI to read the type off the signature.
from collections.abc import Callable
from typing import Any, get_type_hints

from fastapi import APIRouter

from app.deps import RunJob, SettingsDep, cache_key
from app.inputs import InputsDep
from app.schemas import INFERENCE_ERRORS
from app.serialize import dumps

Resolve = Callable[..., Callable[[], Any]]


def engine_post(
    router: APIRouter, path: str, response: type, *, job: str, **route: Any
) -> Callable[[Resolve], Resolve]:
    """Register ``POST path`` on ``router``: ``resolve(inputs, body, settings)`` returns the
    job, the job's answer is serialised on an engine worker (the engine names it ``job``).
    ``route``: FastAPI's own arguments (summary, description, ...)."""

    def register(resolve: Resolve) -> Resolve:
        body_type = get_type_hints(resolve)["body"]

        async def endpoint(body: body_type, inputs: InputsDep, settings: SettingsDep, run: RunJob):
            compute = resolve(inputs, body, settings)
            return await run(job, cache_key(body), lambda: dumps(compute()))

        endpoint.__name__ = endpoint.__qualname__ = resolve.__name__
        router.post(path, response_model=response, responses=INFERENCE_ERRORS, **route)(endpoint)
        return resolve

    return register
