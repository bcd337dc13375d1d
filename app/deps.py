"""Helpers every route shares: find the model, check and encode text, answer with bytes."""

from __future__ import annotations

import orjson
from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from app.config import Settings
from app.engine import ENCODINGS, Engine, Payload
from app.errors import ApiError, invalid
from app.registry import Entry
from app.tokenization import Encoded, check_encoded, check_ids, check_text

JSON = "application/json"


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


def entry_of(request: Request, model_id: str, field: str = "model") -> Entry:
    registry = request.app.state.registry
    if model_id not in registry:
        known = ", ".join(e.id for e in registry) or "none loaded"
        raise ApiError(
            404,
            f"unknown model {model_id!r} (available: {known})",
            field=field,
            code="unknown_model",
        )
    return registry.get(model_id)


def require_kind(entry: Entry, kinds: tuple[str, ...], what: str) -> None:
    if entry.config.kind not in kinds:
        raise invalid(
            "model",
            f"{entry.id} is a {entry.config.kind} model; {what} needs a {' or '.join(kinds)}",
            "unsupported_task",
        )


def input_limit(entry: Entry, settings: Settings) -> int:
    return min(settings.max_input_tokens, entry.config.max_len)


def encode_text(entry: Entry, text: str, settings: Settings, field: str = "text") -> Encoded:
    """The model's input sequence for ``text``, or a 422 naming ``field``."""
    check_text(text, settings.max_text_chars, field)
    if entry.tokenizer is None:
        raise invalid("model", f"{entry.id} ships no tokenizer: send token_ids", "no_tokenizer")
    enc = entry.tokens.encode_source(text)
    check_encoded(enc, input_limit(entry, settings), field)
    return enc


def encode_target(entry: Entry, text: str, settings: Settings) -> Encoded:
    """seq2seq: the decoder input <s> + target, or a 422 naming ``target``."""
    check_text(text, settings.max_text_chars, "target")
    if entry.tokenizer is None:
        raise invalid("model", f"{entry.id} ships no tokenizer: send target_ids", "no_tokenizer")
    enc = entry.tokens.encode_target(text)
    check_encoded(enc, input_limit(entry, settings), "target")
    return enc


def encode_ids(entry: Entry, ids: list[int], settings: Settings, field: str) -> list[int]:
    check_ids(ids, entry.config.vocab_size, input_limit(entry, settings), field)
    return ids


def check_index(values: list[int] | None, n: int, field: str, what: str) -> list[int]:
    """Layer / head indices: default all; each must be in [0, n); duplicates dropped."""
    if values is None:
        return list(range(n))
    for v in values:
        if not 0 <= v < n:
            raise invalid(field, f"{what} index {v} is out of range: this model has {n} {what}s")
    return list(dict.fromkeys(values))


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


def preferred_encoding(request: Request) -> str | None:
    """What the engine should compress this request's large answer with."""
    accepted = accepted_encodings(request)
    return accepted[0] if accepted else None


async def run_job(request: Request, endpoint: str, key, job) -> Response:
    """Run ``job`` (-> JSON bytes) on the engine, cached under ``key`` (None: never), and
    answer in the best content encoding the client accepts."""
    payload = await engine_of(request).run(endpoint, key, job, preferred_encoding(request))
    return respond(request, payload)


def respond(request: Request, payload: Payload) -> Response:
    """The payload in the best encoding both sides have. A cached payload compressed for
    another client is sent as plain JSON, which the GZip middleware still compresses."""
    for encoding in accepted_encodings(request):
        data = payload.encoded.get(encoding)
        if data is not None:
            return Response(
                data,
                media_type=JSON,
                headers={"Content-Encoding": encoding, "Vary": "Accept-Encoding"},
            )
    return Response(payload.body, media_type=JSON)
