"""POST /api/v1/generate and GET /api/v1/generate/stream: decoding, one token at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import StreamingResponse

from app import inference
from app.deps import (
    cache_key,
    encode_text,
    engine_of,
    entry_of,
    require_kind,
    run_job,
    settings_of,
)
from app.errors import error_body, invalid
from app.schemas import INFERENCE_ERRORS, GenerateRequest, GenerateResponse
from app.serialize import dumps
from models.generate import Sampling

router = APIRouter(tags=["generate"])


DESCRIPTION = """
Decode step by step with a KV cache. A **decoder** continues `text` (BOS + text is the
prompt); a **seq2seq** model translates it (`text` + `</s>` is the source, the target
starts with `<s>`).

Each step reports the chosen token, its probability, the `n_top` most likely candidates,
and the attention row of the query that chose it, for every layer and head:
`decoder.self` `[L][H][t]` over the prompt and the tokens so far, and (seq2seq)
`decoder.cross` `[L][H][S]` over the source — the alignment that picked the word.

`strategy: greedy` takes the most likely token; `sample` draws from
softmax(logits / temperature) restricted to `top_k` tokens and the `top_p` nucleus.
**Same seed, same output.** `stop_reason` is `eos`, `max_new_tokens` or `max_len`.
"""


def prepare(request: Request, body: GenerateRequest):
    settings = settings_of(request)
    entry = entry_of(request, body.model)
    require_kind(entry, ("decoder", "seq2seq"), "generation")
    if body.max_new_tokens > settings.max_new_tokens:
        raise invalid(
            "max_new_tokens",
            f"max_new_tokens is {body.max_new_tokens}; the limit is {settings.max_new_tokens}",
        )
    source = encode_text(entry, body.text, settings)
    if entry.config.kind == "decoder" and len(source.ids) >= entry.config.max_len:
        raise invalid(
            "text", f"the prompt leaves no room to generate (max_len {entry.config.max_len})"
        )
    try:
        sampling = Sampling(
            strategy=body.strategy,
            temperature=body.temperature,
            top_k=body.top_k,
            top_p=body.top_p,
            seed=body.seed,
            max_new_tokens=body.max_new_tokens,
            n_top=body.n_top,
        )
    except ValueError as exc:  # the schema checks the same rules; this is a safety net
        raise invalid("body", str(exc)) from None
    return entry, source, sampling


def deterministic(body: GenerateRequest) -> bool:
    return body.strategy == "greedy" or body.seed is not None


@router.post(
    "/generate",
    response_model=GenerateResponse,
    summary="Generate a continuation or a translation, step by step",
    description=DESCRIPTION,
    responses=INFERENCE_ERRORS,
)
async def generate(body: GenerateRequest, request: Request):
    entry, source, sampling = prepare(request, body)

    def job() -> bytes:
        steps = list(inference.generate_steps(entry, source.ids, sampling))
        stop = steps[-1].pop("_stop_reason") if steps else "max_new_tokens"
        for s in steps:
            s.pop("_stop_reason", None)
        return dumps(
            {
                "model": entry.id,
                "kind": entry.config.kind,
                "prompt": source.tokens,
                "steps": steps,
                "output": inference.generation_output(entry, steps),
                "stop_reason": stop,
            }
        )

    key = cache_key(body) if deterministic(body) else None
    return await run_job(request, "generate", key, job)


def sse(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


@router.get(
    "/generate/stream",
    summary="The same generation as Server-Sent Events",
    description="Same parameters as `POST /generate`, as query parameters. Events: "
    "`prompt` (`{model, kind, prompt}`), then one `step` per token as soon as it is decoded "
    "(the objects of `steps`), then `done` (`{output, stop_reason}`). An error after the "
    "stream started arrives as an `error` event with the usual error object; errors before "
    "it are plain JSON 4xx/503.\n\n" + DESCRIPTION,
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **INFERENCE_ERRORS},
)
async def generate_stream(
    request: Request,
    model: str = Query(description="A model id", examples=["seq2seq-en-fr"]),
    text: str = Query(description="The prompt / source sentence"),
    max_new_tokens: int = Query(32),
    strategy: Literal["greedy", "sample"] = Query("greedy"),
    temperature: float = Query(1.0),
    top_k: int = Query(0),
    top_p: float = Query(1.0),
    seed: int | None = Query(None),
    n_top: int = Query(5),
):
    body = GenerateRequest(
        model=model,
        text=text,
        max_new_tokens=max_new_tokens,
        strategy=strategy,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        n_top=n_top,
    )
    entry, source, sampling = prepare(request, body)

    def frames() -> Iterator[bytes]:
        yield sse(
            "prompt",
            dumps({"model": entry.id, "kind": entry.config.kind, "prompt": source.tokens}),
        )
        steps = []
        stop = "max_new_tokens"
        for s in inference.generate_steps(entry, source.ids, sampling):
            stop = s.pop("_stop_reason") or stop
            steps.append(s)
            yield sse("step", dumps(s))
        done = {"output": inference.generation_output(entry, steps), "stop_reason": stop}
        yield sse("done", dumps(done))

    items = await engine_of(request).stream("generate_stream", frames)

    async def body_iter():
        try:
            async for frame in items:
                yield frame
        except Exception:  # noqa: BLE001 - reported to the client as an event, logged
            import logging

            logging.getLogger("attnviz.generate").exception("stream failed")
            yield sse("error", error_body("internal_error", "generation failed"))

    return StreamingResponse(
        body_iter(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
