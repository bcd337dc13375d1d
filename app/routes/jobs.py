"""The shape most API routes share: a POST body checked against its model at once (a 4xx
before any work), then computed on an engine worker, answered as JSON and cached by the
canonical body.

    @engine_post(router, "/logit-lens", LogitLensResponse, job="logit_lens")
    def logit_lens(inputs: Inputs, body: LogitLensRequest, settings: Settings):
        '''What each layer would predict (the logit lens)

        The residual stream after every layer ... (the route's OpenAPI description)
        '''
        inp = inputs.logit_lens(body)  # in the request
        return lambda: inference.logit_lens(inp, body.k, settings.max_new_tokens)  # on a worker

The decorated function resolves the body and returns the job; ``engine_post`` writes the
FastAPI endpoint around it: its body type is the function's ``body`` annotation, its name the
function's, its summary and description the docstring's (``from_docstring``), so the OpenAPI
document and the route's metrics label are the ones a hand-written endpoint would have.
``documented`` gives any other route its summary and description the same way.
"""

# No `from __future__ import annotations`: the endpoint's `body: body_type` must be evaluated
# when it is defined, for FastAPI to read the type off the signature.
import inspect
from collections.abc import Callable
from typing import Any, get_type_hints

from fastapi import APIRouter

from app.deps import RunJob, SettingsDep, cache_key
from app.inputs import InputsDep
from app.schemas import INFERENCE_ERRORS
from app.serialize import dumps

Resolve = Callable[..., Callable[[], Any]]


def from_docstring(doc: str) -> tuple[str, str]:
    """(summary, description): the first line, then the paragraphs after the blank line, each
    one line (a line starting "* " starts a list item), paragraphs apart by a blank line."""
    first, *rest = inspect.cleandoc(doc).splitlines()
    lines: list[str] = []
    for line in rest[1:]:
        text = line.strip()
        if text and lines and lines[-1] and not text.startswith("* "):
            lines[-1] += " " + text
        else:
            lines.append(text)
    return first, "\n".join(lines)


def documented(register: Callable, path: str, response: type, **route: Any) -> Callable:
    """``register`` (e.g. ``router.get``) ``path`` with the function's docstring as its
    summary and description (``from_docstring``)."""

    def decorate(fn: Callable) -> Callable:
        summary, description = from_docstring(fn.__doc__)
        register(path, response_model=response, summary=summary, description=description, **route)(
            fn
        )
        return fn

    return decorate


def engine_post(
    router: APIRouter, path: str, response: type, *, job: str, appendix: str = "", **route: Any
) -> Callable[[Resolve], Resolve]:
    """Register ``POST path`` on ``router``: ``resolve(inputs, body, settings)`` returns the
    job, the job's answer is serialised on an engine worker (the engine names it ``job``).
    Summary and description: the docstring's (``appendix`` added), unless ``route`` (FastAPI's
    own arguments) gives them."""

    def register(resolve: Resolve) -> Resolve:
        body_type = get_type_hints(resolve)["body"]
        if resolve.__doc__ and "description" not in route:
            summary, description = from_docstring(resolve.__doc__)
            route.update(summary=summary, description=description + appendix)

        async def endpoint(body: body_type, inputs: InputsDep, settings: SettingsDep, run: RunJob):
            compute = resolve(inputs, body, settings)
            return await run(job, cache_key(body), lambda: dumps(compute()))

        endpoint.__name__ = endpoint.__qualname__ = resolve.__name__
        router.post(path, response_model=response, responses=INFERENCE_ERRORS, **route)(endpoint)
        return resolve

    return register
