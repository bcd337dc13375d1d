"""The HTTP server: uvicorn, plus the guards against slow and idle clients an app cannot set.

    python -m app.server [uvicorn options]     e.g. --host 0.0.0.0 --port 8000 --workers 2

is ``uvicorn app.main:app --http app.server:GuardedHttpProtocol --no-server-header`` (any
uvicorn option may follow). Every way of running the service (``make run``, the container's
entrypoint, the benchmarks) goes through it.

uvicorn closes a keep-alive connection that stays idle between requests
(``--timeout-keep-alive``, 5 s), but arms no timer on a new connection and cancels its timer
at the first byte: a client that connects and sends nothing, or sends its headers a line at a
time, holds its connection (a file descriptor) forever. ``GuardedHttpProtocol`` adds:

* a deadline for each request head (``ATTNVIZ_HEADER_TIMEOUT_S``, counted from the connection
  or the end of the previous response): past it the connection is closed, with a 408 if part
  of a request had arrived; the body's deadline is the app's (app/middleware.py);
* a limit on open connections per process (``ATTNVIZ_MAX_CONNECTIONS``, and never within 64
  of the process's file limit): one more is answered 503 with ``Retry-After`` and closed.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings, get_settings
from app.errors import error_body

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
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # if so, the next request's head is already in
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
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

    args = [
        "app.main:app",
        "--http",
        "app.server:GuardedHttpProtocol",
        "--no-server-header",
        *(sys.argv[1:] if argv is None else argv),
    ]
    uvicorn_main.main(args=args, prog_name="python -m app.server")


if __name__ == "__main__":
    main()
