"""The app under test, with real checkpoints (see tests/helpers.py for which)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.helpers import checkpoints_under_test, make_settings


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory) -> Path:
    return checkpoints_under_test(lambda: tmp_path_factory.mktemp("checkpoints"))[0]


@pytest.fixture(scope="session")
def app(checkpoint_dir):
    return create_app(make_settings(checkpoint_dir))


@pytest.fixture(scope="session")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def model_ids(client) -> dict[str, str]:
    """kind -> the id of a model of that kind (the first one listed)."""
    out: dict[str, str] = {}
    for m in client.get("/api/v1/models").json()["models"]:
        if m["architecture"] == "rnn":  # the transformer families are the kinds' models
            out.setdefault("rnn", m["id"])
            continue
        out.setdefault(m["kind"], m["id"])
        if m["positional"] == "rope" and m["kind"] == "decoder":
            out.setdefault("rope", m["id"])
        if m["positional"] in ("sinusoidal", "learned"):
            out.setdefault("additive", m["id"])
        if m["kind"] == "encoder" and m["labels"]:
            out.setdefault("classifier", m["id"])
    assert {"encoder", "decoder", "seq2seq"} <= set(out)
    return out


@pytest.fixture(scope="session")
def infos(client) -> dict[str, dict]:
    return {m["id"]: m for m in client.get("/api/v1/models").json()["models"]}
