"""Every way to start the product goes through `python -m app.server` and its guards
(request-head deadline, connection limit, load shedding): the make targets say so, and
`app.main:app` refuses to be served by anything else."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from app.config import ROOT
from app.server import SERVER_ENV


def served_by(target: str) -> list[list[str]]:
    """The command lines `make -n <target>` would run that start a server."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(
        ["make", "-n", "--always-make", target], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    lines = [shlex.split(line) for line in out.stdout.replace("\\\n", " ").splitlines()]
    return [
        w for w in lines if any("uvicorn" in x or "app.main" in x or "app.server" in x for x in w)
    ]


@pytest.mark.parametrize("target", ["run", "run-minilm"])
def test_make_targets_serve_through_app_server(target):
    commands = served_by(target)
    assert commands, f"make -n {target} starts no server"
    for words in commands:
        python = next(i for i, w in enumerate(words) if w.endswith("/python"))
        assert words[python + 1 : python + 3] == ["-m", "app.server"], words
        assert not any("uvicorn" in w for w in words), words


def test_app_main_app_refuses_to_start_without_the_guards(monkeypatch):
    from app.main import app

    monkeypatch.delenv(SERVER_ENV, raising=False)
    with pytest.raises(RuntimeError, match="python -m app.server"), TestClient(app):
        pass


def test_plain_uvicorn_exits_before_serving(tmp_path):
    """What an operator sees: `uvicorn app.main:app` stops at startup, saying why."""
    env = {k: v for k, v in os.environ.items() if k != SERVER_ENV}
    env["ATTNVIZ_CHECKPOINT_DIR"] = str(tmp_path)  # never reached: the check comes first
    cmd = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", "0"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "python -m app.server" in out.stderr
    assert "Application startup failed" in out.stderr
