"""POST /api/v1/generate and GET /api/v1/generate/stream: decoding, one token at a time."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.responses import StreamingResponse

from app import inference
from app.deps import RunJob, Runner, cache_key
from app.errors import error_body, invalid
from app.inputs import InputsDep
from app.schemas import (
    INFERENCE_ERRORS,
    TEXT_SCHEMA,
    GenerateRequest,
    GenerateResponse,
    server_limit,
)
from app.serialize import dumps
from models.generate import Sampling

router = APIRouter(tags=["generate"])
log = logging.getLogger("attnviz.generate")

DESCRIPTION = """
Decode step by step with a KV cache. A **decoder** continues `text` (BOS + text is the
prompt); a **seq2seq** model translates it (`text` + `</s>` is the source, the target
starts with `<s>`). `token_ids` instead of `text` gives the prompt or source exactly
(nothing added), and a seq2seq `target_ids` the decoder input to continue (`<s>` included):
with the ids of an answer's prompt and its first k tokens, greedy decoding replays the
rest token for token.

Each step reports the chosen token, its probability, the `n_top` most likely candidates,
and the attention row of the query that chose it, for every layer and head:
`decoder.self` `[L][H][t]` over the prompt and the tokens so far, and (seq2seq)
`decoder.cross` `[L][H][S]` over the source — the alignment that picked the word.

`strategy: greedy` takes the most likely token; `sample` draws from
softmax(logits / temperature) restricted to `top_k` tokens and the `top_p` nucleus.
**Same seed, same output.** `stop_reason` is `eos`, `max_new_tokens` or `max_len`. A
temperature near 0 (any value > 0 works) or a tiny `top_p` gives greedy decoding.

**Rules the schema cannot state** (422, `code` in brackets): a decoder or seq2seq model
[`unsupported_task`]; exactly one of `text` / `token_ids` [`exclusive_fields`];
`target_ids` for a seq2seq model only [`unsupported_field`]; a decoder's prompt (or a given
`target_ids`) must leave room before its `max_len`, and no input may pass `max_input_tokens`
tokens [`too_many_tokens`].
"""


SAMPLING = {f.name for f in dataclasses.fields(Sampling)}


def sampling_of(body: GenerateRequest) -> Sampling:
    try:
        return Sampling(**body.model_dump(include=SAMPLING))
    except ValueError as exc:  # the schema checks the same rules; this is a safety net
        raise invalid("body", str(exc)) from None


TokenId = Annotated[int, Field(ge=0)]
ABLATE_PATTERN = r"^(encoder\.self|decoder\.self|decoder\.cross):\d+:\d+(:(zero|mean))?$"


def parse_ablations(items: list[str] | None) -> list[dict] | None:
    """`site:layer:head[:mode]` query values as Ablation objects (the schema checks them)."""
    if not items:
        return None
    out = []
    for k, item in enumerate(items):
        parts = item.split(":")
        if len(parts) not in (3, 4) or not all(p.lstrip("-").isdigit() for p in parts[1:3]):
            raise invalid(f"ablate.{k}", f"{item!r}: write site:layer:head[:mode]")
        site, layer, head = parts[0], int(parts[1]), int(parts[2])
        out.append({"site": site, "layer": layer, "head": head, "mode": (parts[3:] or ["zero"])[0]})
    return out


def deterministic(body: GenerateRequest) -> bool:
    return body.strategy == "greedy" or body.seed is not None


@router.post(
    "/generate",
    response_model=GenerateResponse,
    summary="Generate a continuation or a translation, step by step",
    description=DESCRIPTION,
    responses=INFERENCE_ERRORS,
)
async def generate(body: GenerateRequest, inputs: InputsDep, run: RunJob):
    inp, sampling = inputs.generation(body), sampling_of(body)
    key = cache_key(body) if deterministic(body) else None
    return await run("generate", key, lambda: dumps(inference.generation(inp, sampling)))


def sse(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def step_frames(
    steps: Iterator[dict], on_answer: Callable[[bytes], None] | None = None
) -> Iterator[bytes]:
    """A sweep's steps (``progress`` dicts, each with a ``total``, then the answer) as events:
    ``progress`` …, then ``result``. The answer's bytes are those its JSON route answers (also
    handed to ``on_answer``)."""
    for item in steps:
        if "total" in item:
            yield sse("progress", dumps(item))
            continue
        data = dumps(item)
        if on_answer is not None:
            on_answer(data)
        yield sse("result", data)


async def sweep_stream(
    run: Runner,
    endpoint: str,
    twin: str,
    key: bytes,
    steps: Callable[[], Iterator[dict]],
    what: str,
) -> StreamingResponse:
    """POST /patch/stream, /heads/scores/stream: ``steps()`` (a sweep's steps, see
    ``step_frames``) run on a worker as events. The answer is shared with the JSON twin's cache
    (``twin``: its job name, ``key``: the request's cache key): one answered before is the
    ``result`` at once, with no progress, and the stream's answer answers the twin next time."""
    engine = run.engine
    hit = engine.cached(twin, key)
    if hit is not None:
        return event_stream(_frames_of([sse("result", hit.body)]), what)
    loop = asyncio.get_running_loop()

    def remember(data: bytes) -> None:  # on the worker: the cache is the loop's
        with contextlib.suppress(RuntimeError):  # the loop closed under us
            loop.call_soon_threadsafe(engine.remember, twin, key, data)

    frames = await run.stream(endpoint, lambda: step_frames(steps(), remember))
    return event_stream(frames, what)


async def _frames_of(frames: list[bytes]):
    for frame in frames:
        yield frame


def event_stream(items, what: str) -> StreamingResponse:
    """Server-sent events from a worker's frames (``RunJob.stream``); a failure midway is sent
    as an ``error`` event (the status line has gone) and logged."""

    async def body():
        try:
            async for frame in items:
                yield frame
        except Exception:  # noqa: BLE001 - reported to the client as an event, logged
            log.exception("%s stream failed", what)
            yield sse("error", error_body("internal_error", f"{what} failed"))

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/generate/stream",
    summary="The same generation as Server-Sent Events",
    description="Same parameters as `POST /generate`, as query parameters. Events: "
    "`prompt` (`{model, kind, prompt, target?, rows?}`), then one `step` per token as soon as it is decoded "
    "(the objects of `steps`), then `done` (`{output, stop_reason}`). An error after the "
    "stream started arrives as an `error` event with the usual error object; errors before "
    "it are plain JSON 4xx/503.\n\n" + DESCRIPTION,
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **INFERENCE_ERRORS},
)
async def generate_stream(
    inputs: InputsDep,
    run: RunJob,
    model: str = Query(
        min_length=1, max_length=100, description="A model id", examples=["seq2seq-en-fr"]
    ),
    text: str | None = Query(
        None,
        min_length=1,
        description="The prompt / source sentence (or `token_ids`)",
        json_schema_extra=TEXT_SCHEMA,
    ),
    token_ids: list[TokenId] = Query(
        [], description="Instead of `text`: the exact ids to feed (repeat the parameter)."
    ),
    target_ids: list[TokenId] = Query(
        [], description="seq2seq only: the decoder input to continue, `<s>` included."
    ),
    max_new_tokens: int = Query(
        32,
        ge=1,
        description="1 … the server's `max_new_tokens`.",
        json_schema_extra=server_limit(maximum="max_new_tokens"),
    ),
    strategy: Literal["greedy", "sample"] = Query("greedy"),
    temperature: float = Query(1.0, gt=0, allow_inf_nan=False),
    top_k: int = Query(0, ge=0),
    top_p: float = Query(1.0, gt=0, le=1, allow_inf_nan=False),
    seed: int | None = Query(None, ge=0, le=2**53 - 1),
    n_top: int = Query(5, ge=1, le=20),
    layers: list[int] = Query(
        [], description="Decoder layers whose rows steps carry (repeat the parameter)."
    ),
    heads: list[int] = Query([], description="Heads whose rows steps carry."),
    pool: int | None = Query(
        None, ge=2, le=256, description="Rows pooled to at most this many key blocks."
    ),
    ablate: list[Annotated[str, Field(pattern=ABLATE_PATTERN)]] = Query(
        [],
        description="Heads to ablate, each `site:layer:head[:mode]`, e.g. `decoder.self:1:0` "
        "or `decoder.cross:2:3:mean`; the `done` event then carries the baseline output.",
    ),
    chat: bool = Query(False, description="`text` as a question through the chat template."),
):
    body = GenerateRequest(
        model=model,
        text=text,
        token_ids=token_ids or None,
        target_ids=target_ids or None,
        max_new_tokens=max_new_tokens,
        strategy=strategy,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        n_top=n_top,
        layers=layers or None,
        heads=heads or None,
        pool=pool,
        ablate=parse_ablations(ablate),
        chat=chat,
    )
    inp, sampling = inputs.generation(body), sampling_of(body)
    entry = inp.entry

    def frames() -> Iterator[bytes]:
        prompt = {"model": entry.id, "kind": entry.config.kind, **inference.prompt_info(inp)}
        yield sse("prompt", dumps(prompt))
        steps = []
        for step in inference.steps_of(inp, sampling, inp.rows, inp.edits):
            steps.append(step)
            yield sse("step", dumps(step.view))
        done = {
            "output": inference.generation_output(entry, steps),
            "stop_reason": steps[-1].stop_reason,
            **inference.baseline(inp, sampling),
        }
        yield sse("done", dumps(done))

    return event_stream(await run.stream("generate_stream", frames), "generation")
