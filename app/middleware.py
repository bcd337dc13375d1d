"""One pure-ASGI middleware around every request (cheaper than a stack of BaseHTTPMiddleware):

* request id: ``X-Request-ID`` taken from the client when sane, else made; echoed back;
* body limit: a body over ``max_body_bytes`` gets 413 (declared or streamed);
* security headers: CSP, nosniff, Referrer-Policy, frame denial;
* metrics: request count and latency per route template;
* one log line per request: id, method, path, status, duration;
* last resort: an unexpected exception becomes a plain 500 in the error shape (logged with
  its trace, never sent).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body
from app.metrics import Metrics

log = logging.getLogger("attnviz.access")
_RID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_RID_PREFIX = os.urandom(4).hex()  # per process; a counter makes the rest unique and cheap
_RID_COUNTER = itertools.count(1)


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        csp: str,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.csp = csp.encode()

    def _headers(self, rid: str, elapsed_ms: float) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-request-id", rid.encode()),
            (b"content-security-policy", self.csp),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"server-timing", f"app;dur={elapsed_ms:.2f}".encode()),
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
                elapsed = (time.perf_counter() - start) * 1000
                headers = [h for h in message.get("headers", []) if h[0] != b"server-timing"]
                message["headers"] = headers + self._headers(rid, elapsed)
            await send(message)

        async def send_error(code: int, kind: str, text: str) -> None:
            body = error_body(kind, text)
            await send_wrapper(
                {
                    "type": "http.response.start",
                    "status": code,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
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
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        raise HTTPException(
                            413,
                            f"the request body is over the limit of {self.max_body_bytes} bytes",
                        )
                return message

            await self.app(scope, limited_receive, send_wrapper)
        except Exception:
            log.exception("request %s %s %s failed", rid, method, path)
            if not started:
                await send_error(
                    500, "internal_error", f"internal error (request id {rid}); it was logged"
                )
        finally:
            elapsed = time.perf_counter() - start
            template = _route_template(scope, path)
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


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _route_template(scope: Scope, path: str) -> str:
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
