"""Every error leaves the API in one shape: ``{"error": {"code", "message", "field"}}``.

``field`` is the dotted name of the offending input (``text``, ``layers.0``, ``temperature``),
or null when the error is not about one field. No stack trace ever reaches a client: an
unexpected exception is logged with the request id and answered with a plain 500.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("attnviz.errors")

CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "overloaded",
    504: "timeout",
}
_SECTIONS = ("body", "query", "path", "header", "cookie")


class ApiError(Exception):
    """Raise anywhere in a route: it becomes ``status`` with the error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or CODES.get(status, "error")
        self.headers = headers or {}


class ClientDisconnected(Exception):
    """The client went away before its answer was ready: nothing is sent (logged as 499)."""


def invalid(field: str, message: str, code: str = "validation_error") -> ApiError:
    """A 422 that names the field the user should fix."""
    return ApiError(422, message, field=field, code=code)


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    error = {"code": code, "message": message, "field": field}
    try:
        return orjson.dumps({"error": error})
    except orjson.JSONEncodeError:  # a lone surrogate echoed from the input (JSON "\\ud800")
        return orjson.dumps({"error": {k: _printable(v) for k, v in error.items()}})


def _printable(text: str | None) -> str | None:
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        error_body(code, message, field),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def field_of(loc: tuple | list) -> str | None:
    """("body", "layers", 0) -> "layers.0";  ("body",) -> "body";  ("query", "n") -> "n"."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in _SECTIONS:
        parts = parts[1:] or parts[:1]
    return ".".join(parts) or None


def _validation_message(err: dict, field: str | None) -> str:
    kind = err.get("type", "")
    if kind == "json_invalid":
        ctx = err.get("ctx") or {}
        return f"the request body is not valid JSON: {ctx.get('error', 'parse error')}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}: this endpoint does not accept it"
    if kind == "missing":
        return f"{field} is required"
    if kind == "string_unicode":  # JSON "\\ud800": a UTF-16 surrogate with no partner
        return f"{field} is not valid Unicode: it holds a lone surrogate (such as \\ud800)"
    msg = str(err.get("msg", "invalid value"))
    # pydantic prefixes messages of custom validators with "Value error, "
    msg = msg.removeprefix("Value error, ")
    return f"{field}: {msg}" if field else msg


def validation_error_response(errors: list[dict]) -> Response:
    err = errors[0] if errors else {}
    loc = tuple(err.get("loc", ()))
    field = "body" if err.get("type") == "json_invalid" else field_of(loc)
    code = "invalid_text" if err.get("type") == "string_unicode" else "validation_error"
    return error_response(422, code, _validation_message(err, field), field)


async def _client_disconnected(request: Request, exc: ClientDisconnected) -> Response:
    return Response(status_code=499)  # nginx's "client closed request"; no one reads it


async def _api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _request_validation(request: Request, exc: RequestValidationError) -> Response:
    return validation_error_response(list(exc.errors()))


async def _pydantic_validation(request: Request, exc: ValidationError) -> Response:
    return validation_error_response(list(exc.errors()))


async def _http_exception(request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) else CODES.get(status, "error")
    if status == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    return error_response(
        status, CODES.get(status, "error"), message, None, getattr(exc, "headers", None)
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ClientDisconnected, _client_disconnected)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(ValidationError, _pydantic_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
