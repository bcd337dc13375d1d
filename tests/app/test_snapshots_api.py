"""GET /api/v1/models/{id}/snapshots and /snapshots/{step}/attention: every value equals a
direct computation from the snapshot's weights on the probe /heads/scores builds, and every
bad input is a 4xx naming its field."""

from __future__ import annotations

import json

import pytest
import torch
from jsonschema import Draft202012Validator

from models.analysis import scores
from models.hooks import capture
from models.snapshots import load_snapshot

MODEL = "induction-2l"
BASE = f"/api/v1/models/{MODEL}/snapshots"


@pytest.fixture(scope="module")
def folder(infos, checkpoint_dir):
    if not infos[MODEL]["snapshots"]:
        pytest.skip(f"the checkpoints under test have no {MODEL} snapshots (fixture models)")
    return checkpoint_dir / MODEL


def patterns_of(folder, step: int, ids: list[int]) -> torch.Tensor:
    """(L, H, T, T) from the snapshot's weights, read off its hook points here."""
    model = load_snapshot(folder, step)
    names = [f"decoder.blocks.{i}.attn.hook_pattern" for i in range(model.config.n_layers)]
    with torch.no_grad(), capture(model, names=names) as trace:
        model.decode(torch.tensor([ids]))
    return torch.stack([trace[n][0] for n in names]).double()


def probe_ids(client, seed: int, run_length: int) -> list[int]:
    body = {"model": MODEL, "seed": seed, "run_length": run_length, "scores": ["induction"]}
    answer = client.post("/api/v1/heads/scores", json=body).json()
    return [t["id"] for t in answer["tokens"]["source"]]


@pytest.mark.parametrize("seed, run_length", [(0, 24), (3, 10)])
def test_scores_are_the_score_code_on_each_snapshot(client, folder, seed, run_length):
    r = client.get(BASE, params={"seed": seed, "run_length": run_length})
    assert r.status_code == 200, r.text
    data = r.json()
    ids = probe_ids(client, seed, run_length)
    assert [t["id"] for t in data["tokens"]["source"]] == ids  # the /heads/scores probe
    assert data["probe"] == {"seed": seed, "run_length": run_length}
    assert len(data["loss"]) == data["steps"]
    for snap in data["snapshots"]:
        p = patterns_of(folder, snap["step"], ids)
        tokens = torch.tensor(ids)
        want = {
            "induction": scores.induction(p, tokens),
            "previous_token": scores.previous_token(p),
        }
        for name, value in want.items():
            got = torch.tensor(snap["scores"][name], dtype=torch.float64)
            torch.testing.assert_close(got, value, atol=6e-5, rtol=0)


def test_the_default_probe_is_the_one_the_snapshots_were_measured_on(client, folder):
    data = client.get(BASE).json()
    manifest = json.loads((folder / "snapshots" / "snapshots.json").read_text())
    assert [t["id"] for t in data["tokens"]["source"]] == manifest["probe"]["token_ids"]
    for live, stored in zip(data["snapshots"], manifest["snapshots"], strict=True):
        assert live["scores"] == stored["scores"]
    assert (
        data["formed"]["induction_formed_at_step"] == manifest["formed"]["induction_formed_at_step"]
    )


def test_attention_is_the_snapshots_pattern(client, folder):
    steps = [s["step"] for s in client.get(BASE).json()["snapshots"]]
    ids = probe_ids(client, 0, 24)
    for step in (steps[0], steps[-1]):
        r = client.get(f"{BASE}/{step}/attention", params={"layer": 1, "head": 2})
        assert r.status_code == 200, r.text
        data = r.json()
        assert (data["step"], data["layer"], data["head"]) == (step, 1, 2)
        want = patterns_of(folder, step, ids)[1, 2]
        torch.testing.assert_close(
            torch.tensor(data["attention"], dtype=torch.float64), want, atol=6e-5, rtol=0
        )
        assert data["scores"]["induction"] == pytest.approx(
            float(scores.induction(want, torch.tensor(ids))), abs=6e-5
        )


def test_models_list_the_snapshot_count(client, folder):
    models = {m["id"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert models[MODEL]["snapshots"] == len(client.get(BASE).json()["snapshots"])
    assert models["decoder-mini"]["snapshots"] == 0


def test_answers_match_the_openapi_schema(client, folder):
    spec = client.get("/openapi.json").json()
    step = client.get(BASE).json()["snapshots"][-1]["step"]
    for template, url, params in [
        ("/api/v1/models/{model_id}/snapshots", BASE, {"run_length": 5}),
        (
            "/api/v1/models/{model_id}/snapshots/{step}/attention",
            f"{BASE}/{step}/attention",
            {"layer": 0, "head": 1},
        ),
    ]:
        r = client.get(url, params=params)
        assert r.status_code == 200, r.text
        content = spec["paths"][template]["get"]["responses"]["200"]["content"]
        schema = {**content["application/json"]["schema"], "components": spec["components"]}
        errors = list(Draft202012Validator(schema).iter_errors(r.json()))
        assert not errors, errors[0].message


@pytest.mark.parametrize(
    "path, params, status, code, field",
    [
        ("/api/v1/models/nope/snapshots", {}, 404, "unknown_model", "model_id"),
        ("/api/v1/models/decoder-mini/snapshots", {}, 404, "no_snapshots", "model_id"),
        (BASE, {"run_length": 200}, 422, "too_many_tokens", "run_length"),
        (BASE, {"run_length": 1}, 422, "validation_error", "run_length"),
        (BASE, {"seed": -1}, 422, "validation_error", "seed"),
        (BASE, {"seed": "x"}, 422, "validation_error", "seed"),
        (f"{BASE}/99999/attention", {"layer": 0, "head": 0}, 422, "out_of_range", "step"),
        (f"{BASE}/x/attention", {"layer": 0, "head": 0}, 422, "validation_error", "step"),
        (f"{BASE}/0/attention", {"layer": 2, "head": 0}, 422, "out_of_range", "layer"),
        (f"{BASE}/0/attention", {"layer": 0, "head": 4}, 422, "out_of_range", "head"),
        (f"{BASE}/0/attention", {"head": 0}, 422, "validation_error", "layer"),
        (f"{BASE}/0/attention", {"layer": 0}, 422, "validation_error", "head"),
        (
            f"{BASE}/0/attention",
            {"layer": 0, "head": 0, "run_length": 999},
            422,
            None,
            "run_length",
        ),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, folder, path, params, status, code, field):
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field
    if code:
        assert error["code"] == code
