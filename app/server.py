"""The HTTP server: uvicorn, plus the guards against slow and idle clients an app cannot set.

    python -m app.server [uvicorn options]     e.g. --host 0.0.0.0 --port 8000 --workers 2

is ``uvicorn app.main:app --http app.server:GuardedHttpProtocol --no-server-header`` (any
uvicorn option may follow). Every way of running the service (``make run``, ``make
run-minilm``, the container's entrypoint, the benchmarks, the browser tests) goes through it:
``app.main:app`` refuses to start under any other launcher (``SERVER_ENV``), so a plain
``uvicorn app.main:app`` cannot serve the product without its guards.

uvicorn closes a keep-alive connection that stays idle between requests
(``--timeout-keep-alive``, 5 s), but arms no timer on a new connection and cancels its timer
at the first byte: a client that connects and sends nothing, or sends its headers a line at a
time, holds its connection (a file descriptor) forever. ``GuardedHttpProtocol`` adds:

* a deadline for each request head (``ATTNVIZ_HEADER_TIMEOUT_S``, counted from the connection
  or the end of the previous response): past it the connection is closed, with a 408 if part
  of a request had arrived; the body's deadline is the app's (app/middleware.py);
* a limit on open connections per process (``ATTNVIZ_MAX_CONNECTIONS``, and never within 64
  of the process's file limit): one more is answered 503 with ``Retry-After`` and closed;
* load shedding before the app: a request head for the inference engine while it has no room
  (``app.deps.Shedder``, handed over in the app's lifespan state) is answered 503 with
  ``Retry-After`` at once, by a few lines here instead of the whole app;
* pacing: after any answer that says ``Retry-After`` (shed here, or the app's own 503, which
  it notes in the request's ASGI state under ``PACE_STATE``) the connection is not read again
  for that many seconds. A client that retries at once, ignoring it, cannot turn the event
  loop into a 503 machine that starves everything else (the inference threads share the GIL
  with it; /healthz needs it). Clients that honour ``Retry-After`` never notice.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import urllib.parse
from dataclasses import dataclass

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings, get_settings
from app.errors import error_body

#: The key of the app's lifespan state under which it hands the server its load shedder.
SHED_STATE = "attnviz_shed"
#: The key of a request's ASGI state under which the app notes its answer's Retry-After.
PACE_STATE = "attnviz_retry_after"
#: Set by ``main()`` (and inherited by uvicorn's worker processes): ``app.main:app`` starts only
#: where it says ``GUARDED``.
SERVER_ENV = "ATTNVIZ_SERVED_BY"
GUARDED = "app.server"
BUSY_BODY = error_body("overloaded", "the server is busy; retry after Retry-After seconds")

#: File descriptors kept for everything but client connections (logs, checkpoints, sockets
#: to nothing else, the event loop's own).
FD_RESERVE = 64


def max_connections(setting: int) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return setting
    return max(1, min(setting, soft - FD_RESERVE))


def _raw_response(status: str, code: str, message: str, headers: str = "") -> bytes:
    body = error_body(code, message)
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{headers}connection: close\r\n\r\n"
    ).encode() + body


@dataclass(frozen=True)
class Guards:
    header_timeout: float
    max_connections: int
    retry_after: int

    @classmethod
    def of(cls, settings: Settings) -> Guards:
        return cls(
            settings.header_timeout_s,
            max_connections(settings.max_connections),
            settings.retry_after_s,
        )


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head deadline and a connection limit."""

    guards: Guards | None = None  # None: from the environment's settings, on first use

    @classmethod
    def using(cls, settings: Settings) -> type[GuardedHttpProtocol]:
        """The protocol with these settings' guards (uvicorn.Config(http=...), e.g. tests)."""
        return type(cls.__name__, (cls,), {"guards": Guards.of(settings)})

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.guards is None:
            cls.guards = Guards.of(get_settings())
        self.header_timeout = cls.guards.header_timeout
        self.max_connections = cls.guards.max_connections
        self.retry_after = cls.guards.retry_after
        self.head_timer: asyncio.TimerHandle | None = None
        self.head_started = False  # some bytes of the awaited request head have arrived
        self.resume_timer: asyncio.TimerHandle | None = None
        self.busy_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BUSY_BODY)).encode()),
            (b"retry-after", str(self.retry_after).encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
        ]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(
                _raw_response(
                    "503 Service Unavailable",
                    "overloaded",
                    "too many open connections; retry shortly",
                    f"retry-after: {self.retry_after}\r\n",
                )
            )
            transport.close()
            return
        self._await_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_started = True

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        if not self._shed():
            super().on_headers_complete()
            return
        app, self.app = self.app, self._busy  # uvicorn runs this request through _busy
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _shed(self) -> bool:
        shed = self.app_state.get(SHED_STATE)
        if shed is None:
            return False
        try:
            path = httptools.parse_url(self.url).path.decode("ascii")
        except (httptools.HttpParserInvalidURLError, UnicodeDecodeError):
            return False  # the app answers what it makes of it
        return shed(self.parser.get_method().decode("ascii"), urllib.parse.unquote(path))

    async def _busy(self, scope, receive, send) -> None:
        scope["state"][PACE_STATE] = self.retry_after
        await send({"type": "http.response.start", "status": 503, "headers": self.busy_headers})
        await send({"type": "http.response.body", "body": BUSY_BODY})

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # if so, the next request's head is already in
        answered = self.cycle.scope if self.cycle is not None else {}
        super().on_response_complete()
        if self.transport.is_closing():
            return
        pause = answered.get("state", {}).get(PACE_STATE)
        if pause and not pipelined:
            self.flow.pause_reading()
            # shorter than the keep-alive timeout, which would otherwise close the connection
            pause = min(float(pause), 0.8 * self.timeout_keep_alive)
            self.resume_timer = self.loop.call_later(pause, self._resume_reading)
        if not pipelined:
            self._await_head()

    def _resume_reading(self) -> None:
        self.resume_timer = None
        if not self.transport.is_closing():
            self.flow.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self.resume_timer is not None:
            self.resume_timer.cancel()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self.head_started = False
        self.head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.head_started:
            self.transport.write(
                _raw_response(
                    "408 Request Timeout",
                    "request_timeout",
                    f"the request line and headers did not arrive within {self.header_timeout:g} s",
                )
            )
        self.transport.close()


def main(argv: list[str] | None = None) -> None:
    from uvicorn.main import main as uvicorn_main

    os.environ[SERVER_ENV] = GUARDED
    args = [
        "app.main:app",
        "--http",
        "app.server:GuardedHttpProtocol",
        "--no-server-header",
        "--no-access-log",  # the app logs one line per request, with its id (app/middleware.py)
        *(sys.argv[1:] if argv is None else argv),
    ]
    uvicorn_main.main(args=args, prog_name="python -m app.server")


if __name__ == "__main__":
    main()
