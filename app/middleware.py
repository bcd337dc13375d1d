"""One pure-ASGI middleware around every request (cheaper than a stack of BaseHTTPMiddleware):

* request id: ``X-Request-ID`` taken from the client when sane, else made; echoed back;
* the body, read here before the app sees it: over ``max_body_bytes`` gets 413 (declared or
  streamed); not all in within ``body_timeout_s`` gets 408 and the connection is closed (a
  slow client holds no worker of the app); a JSON body that is not UTF-8, or repeats a key
  (``{"model": "a", "model": "b"}``), gets 422 naming ``body``;
* security headers: CSP, nosniff, Referrer-Policy, Permissions-Policy, frame denial;
* ``Server-Timing``: ``app`` (from the request's first byte to its answer's), followed by
  the metrics the app gave (the engine's wait / compute / compress, or a cache hit);
* metrics: request count and latency per route template;
* one log line per request: id, method, path, status, duration (499: the client went away);
* last resort: an unexpected exception becomes a plain 500 in the error shape (logged with
  its trace, never sent).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body
from app.metrics import Metrics
from app.server import PACE_STATE

log = logging.getLogger("attnviz.access")
_RID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_RID_PREFIX = os.urandom(4).hex()  # per process; a counter makes the rest unique and cheap
_RID_COUNTER = itertools.count(1)
#: The page uses none of these: a script injected into it cannot either.
PERMISSIONS_POLICY = (
    b"accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    b"microphone=(), payment=(), usb=()"
)


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        body_timeout_s: float,
        csp: str,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.csp = csp.encode()

    def _headers(
        self, rid: str, elapsed_ms: float, timing: bytes = b""
    ) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-request-id", rid.encode()),
            (b"content-security-policy", self.csp),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", PERMISSIONS_POLICY),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"server-timing", f"app;dur={elapsed_ms:.2f}".encode() + timing),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method, path = scope["method"], scope["path"]
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _RID.match(candidate):
                    rid = candidate
                break
        rid = rid or f"{_RID_PREFIX}{next(_RID_COUNTER):08x}"
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                if status == 503:  # the server paces a client told to retry later
                    retry = dict(message.get("headers", [])).get(b"retry-after")
                    if retry is not None and retry.isdigit():
                        scope["state"][PACE_STATE] = int(retry)
                elapsed = (time.perf_counter() - start) * 1000
                headers, timing = [], b""  # the app's own metrics follow the request's `app`
                for h in message.get("headers", []):
                    if h[0] == b"server-timing":
                        timing += b", " + h[1]
                    else:
                        headers.append(h)
                message["headers"] = headers + self._headers(rid, elapsed, timing)
            await send(message)

        async def send_error(
            code: int, kind: str, text: str, field: str | None = None, close: bool = False
        ) -> None:
            body = error_body(kind, text, field)
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            if close:
                headers.append((b"connection", b"close"))
            await send_wrapper({"type": "http.response.start", "status": code, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await send_error(
                    413,
                    "payload_too_large",
                    f"the request body is {declared} bytes; the limit is {self.max_body_bytes}",
                )
                return
            if declared or _header(scope, b"transfer-encoding") is not None:
                try:
                    body = await self._read_body(receive)
                except asyncio.TimeoutError:
                    await send_error(
                        408,
                        "request_timeout",
                        f"the request body did not arrive within {self.body_timeout_s:g} s",
                        close=True,
                    )
                    return
                except _BodyTooLarge:
                    await send_error(
                        413,
                        "payload_too_large",
                        f"the request body is over the limit of {self.max_body_bytes} bytes",
                    )
                    return
                if body is None:  # the client left while sending it
                    status = 499
                    return
                problem = _json_problem(scope, body)
                if problem:
                    await send_error(422, "validation_error", problem, "body")
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("request %s %s %s failed", rid, method, path)
            if not started:
                await send_error(
                    500, "internal_error", f"internal error (request id {rid}); it was logged"
                )
        finally:
            elapsed = time.perf_counter() - start
            template = route_template(scope, path)
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template).observe(elapsed)
            log.info(
                "%s %s %s %d %.1fms",
                rid,
                method,
                path,
                status,
                elapsed * 1000,
            )

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body (None: the client went away). TimeoutError when it is not all in
        within ``body_timeout_s``, _BodyTooLarge past ``max_body_bytes``."""
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        chunks, size = [], 0
        while True:
            message = await _receive_by(receive, deadline)
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _receive_by(receive: Receive, deadline: float) -> Message:
    if hasattr(asyncio, "timeout_at"):  # Python 3.11+: no extra task per message
        async with asyncio.timeout_at(deadline):
            return await receive()
    remaining = max(0.0, deadline - asyncio.get_running_loop().time())
    return await asyncio.wait_for(receive(), remaining)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The app's receive: the body read here, then the client's own messages (disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _json_problem(scope: Scope, body: bytes) -> str | None:
    """Why a JSON body is refused before parsing proper, or None. The rest of what can be
    wrong with it (syntax, types) the app reports, with the position of the error."""
    content_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    if not (content_type == b"application/json" or content_type.endswith(b"+json")):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"the request body is not valid JSON: it is not UTF-8 (byte 0x{body[exc.start]:02x} "
            f"at offset {exc.start})"
        )
    try:
        json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        return f"the request body is not valid JSON: the key {exc.args[0]!r} appears twice"
    except ValueError:
        return None
    return None


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return value
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def route_template(scope: Scope, path: str) -> str:
    """The matched route as a template (/api/v1/models/{model_id}): bounded label values."""
    if scope.get("route") is None:
        for prefix in ("/static", "/vendor", "/docs"):
            if path.startswith(prefix + "/"):
                return prefix
        return "unmatched"
    params = scope.get("path_params") or {}
    if not params:
        return path
    by_value = {str(v): k for k, v in params.items()}
    parts = [("{" + by_value[p] + "}") if p in by_value else p for p in path.split("/")]
    return "/".join(parts)
