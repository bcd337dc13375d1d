"""Slow and idle clients cannot hold connections (file descriptors) forever: the server the
service runs under (app.server.GuardedHttpProtocol, behind a real uvicorn here) closes a
connection whose request head does not arrive in time, the app answers 408 to a body that
does not, and connections beyond the limit are refused at once.

Bounds are loose (the timeout plus several seconds) so a loaded machine does not fail them;
what they catch is a connection that stays open.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

from app.config import ROOT
from app.main import create_app
from app.server import GuardedHttpProtocol
from tests.helpers import make_settings, serve

TIMEOUT_S = 1.0
SLACK_S = 8.0  # how much later than the timeout a loaded machine may close it


@pytest.fixture(scope="module")
def server(checkpoint_dir):
    settings = make_settings(checkpoint_dir, header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S)
    with serve(create_app(settings), GuardedHttpProtocol.using(settings)) as url:
        yield urlsplit(url)


def connect(server) -> socket.socket:
    s = socket.create_connection((server.hostname, server.port), timeout=TIMEOUT_S + SLACK_S)
    return s


def read_until_closed(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    return data


def test_an_idle_connection_is_closed_within_the_timeout(server):
    with connect(server) as s:
        t0 = time.monotonic()
        assert read_until_closed(s) == b""  # closed without a word: nothing was asked
        assert TIMEOUT_S * 0.9 <= time.monotonic() - t0 < TIMEOUT_S + SLACK_S


def test_headers_sent_a_line_at_a_time_get_408_and_the_connection_closed(server):
    lines = [b"GET /healthz HTTP/1.1\r\n"] + [f"X-Line-{i}: x\r\n".encode() for i in range(60)]
    with connect(server) as s:
        t0 = time.monotonic()
        try:
            for line in lines:  # never finished in time: a line every 0.2 s
                s.sendall(line)
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed it under us
        answer = read_until_closed(s)
        elapsed = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"request_timeout"' in answer
    assert elapsed < TIMEOUT_S + SLACK_S + 0.2


def test_a_body_that_stops_coming_gets_408_and_the_connection_closed(server, model_ids):
    head = (
        f"POST /api/v1/tokenize HTTP/1.1\r\nHost: {server.netloc}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    ).encode()
    with connect(server) as s:
        t0 = time.monotonic()
        s.sendall(head + b'{"model": "' + model_ids["encoder"].encode())  # ... and no more
        answer = read_until_closed(s)
        elapsed = time.monotonic() - t0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()
    assert b'"code":"request_timeout"' in answer
    assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + SLACK_S


def test_a_keep_alive_connection_gets_a_new_deadline_per_request(server):
    with connect(server) as s:
        for _ in range(3):  # requests sent promptly are served on the same connection
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {server.netloc}\r\n\r\n".encode())
            answer = s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200 ")
        assert read_until_closed(s) == b""  # then idle: closed


def test_connections_beyond_the_limit_are_refused_at_once(checkpoint_dir):
    settings = make_settings(checkpoint_dir, max_connections=4, header_timeout_s=60)
    with serve(create_app(settings), GuardedHttpProtocol.using(settings)) as url:
        server = urlsplit(url)
        held = [connect(server) for _ in range(4)]
        try:
            with connect(server) as extra:
                answer = read_until_closed(extra)
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert b"retry-after: 1" in answer.lower()
            for s in held[:2]:
                s.close()
            time.sleep(0.2)
            with connect(server) as again:  # room again once others have gone
                again.sendall(f"GET /healthz HTTP/1.1\r\nHost: {server.netloc}\r\n\r\n".encode())
                assert again.recv(4096).startswith(b"HTTP/1.1 200 ")
        finally:
            for s in held:
                s.close()


def test_the_launch_command_serves_with_these_guards(checkpoint_dir, tmp_path):
    """`python -m app.server` (what make run and the container's entrypoint start) is uvicorn
    with this protocol and without the `server` header."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "ATTNVIZ_CHECKPOINT_DIR": str(checkpoint_dir),
        "ATTNVIZ_DEVICE": "cpu",
        "ATTNVIZ_HEADER_TIMEOUT_S": str(TIMEOUT_S),
    }
    cmd = [sys.executable, "-m", "app.server", "--host", "127.0.0.1", "--port", str(port)]
    with open(tmp_path / "server.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                head = urllib.request.urlopen(
                    urllib.request.Request(base + "/healthz", method="HEAD")
                )
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert head.status == 200 and "server" not in {k.lower() for k in head.headers}
        server = urlsplit(base)
        with connect(server) as idle:
            t0 = time.monotonic()
            assert read_until_closed(idle) == b""
            assert time.monotonic() - t0 < TIMEOUT_S + SLACK_S
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
