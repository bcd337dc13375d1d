"""`ablate` on /attention, /generate (and its stream), /classify and /fill-mask."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
import torch

from models import capture
from models.analysis.ablation import zero_head
from models.hooks import hook_name

API = "/api/v1"


def ok(r) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def test_zero_ablation_equals_a_forward_with_that_heads_z_zeroed(client, app, model_ids):
    mid = model_ids["decoder"]
    body = {"model": mid, "text": "the black cat ate the mouse", "layers": [1]}
    ablate = [{"site": "decoder.self", "layer": 0, "head": 2}]
    out = ok(client.post(f"{API}/attention", json={**body, "ablate": ablate}))
    model = app.state.registry.get(mid).model
    ids = torch.tensor([[t["id"] for t in out["tokens"]["source"]]])
    name = hook_name("decoder.self", 1, "pattern")
    with (
        torch.inference_mode(),
        capture(model, [name], edits={hook_name("decoder.self", 0, "z"): zero_head(2)}) as trace,
    ):
        model.decode(ids)
    expected = trace[name][0].numpy()
    np.testing.assert_allclose(out["attention"]["decoder.self"][0], expected, atol=6e-5)
    assert out["ablation"]["heads"] == [{**ablate[0], "mode": "zero"}]


def test_changed_says_which_later_heads_moved(client, model_ids, infos):
    mid = model_ids["decoder"]
    body = {"model": mid, "text": "the black cat ate the mouse"}
    ablate = [{"site": "decoder.self", "layer": 0, "head": 0, "mode": "mean"}]
    changed = np.array(
        ok(client.post(f"{API}/attention", json={**body, "ablate": ablate}))["ablation"]["changed"][
            "decoder.self"
        ]
    )
    assert changed.shape == (infos[mid]["n_layers"], infos[mid]["n_heads"])
    # an ablation acts on the head's output: its own layer sees nothing, later layers do
    assert (changed[0] == 0).all()
    assert changed[1:].max() > 0
    clean = ok(client.post(f"{API}/attention", json=body))
    assert "ablation" not in clean


@pytest.mark.parametrize("kind", ["decoder", "seq2seq"])
def test_generation_under_ablation_carries_its_baseline(client, model_ids, infos, kind):
    mid = model_ids[kind]
    site = "decoder.cross" if kind == "seq2seq" else "decoder.self"
    heads = [{"site": site, "layer": 0, "head": h} for h in range(infos[mid]["n_heads"])]
    body = {"model": mid, "text": "the black cat ate the mouse", "max_new_tokens": 8}
    plain = ok(client.post(f"{API}/generate", json=body))
    ablated = ok(client.post(f"{API}/generate", json={**body, "ablate": heads}))
    assert ablated["ablation"]["baseline"]["output"] == plain["output"]
    assert ablated["ablation"]["baseline"]["stop_reason"] == plain["stop_reason"]
    stream = client.get(
        f"{API}/generate/stream",
        params={**{k: v for k, v in body.items()}, "ablate": [f"{site}:0:{h}" for h in range(2)]},
    )
    done = orjson.loads(stream.text.strip().split("\n\n")[-1].split("\n", 1)[1][6:])
    assert done["ablation"]["baseline"]["output"] == plain["output"]


def test_encoder_tasks_under_ablation_carry_their_baseline(client, model_ids, infos):
    mid = model_ids["classifier"] if "classifier" in model_ids else model_ids["encoder"]
    ablate = [{"site": "encoder.self", "layer": 0, "head": h} for h in range(2)]
    text = "the movie was not good"
    plain = ok(client.post(f"{API}/classify", json={"model": mid, "text": text}))
    ablated = ok(
        client.post(f"{API}/classify", json={"model": mid, "text": text, "ablate": ablate})
    )
    assert ablated["ablation"]["baseline"] == {"label": plain["label"], "labels": plain["labels"]}
    masked = {"model": mid, "text": "the black [MASK] ate the mouse"}
    plain = ok(client.post(f"{API}/fill-mask", json=masked))
    ablated = ok(client.post(f"{API}/fill-mask", json={**masked, "ablate": ablate}))
    assert ablated["ablation"]["baseline"]["masks"] == plain["masks"]


@pytest.mark.parametrize(
    ("ablation", "field"),
    [
        ({"site": "encoder.self", "layer": 0, "head": 0}, "ablate.0.site"),
        ({"site": "decoder.self", "layer": 99, "head": 0}, "ablate.0.layer"),
        ({"site": "decoder.self", "layer": 0, "head": 99}, "ablate.0.head"),
        ({"site": "decoder.self", "layer": 0, "head": 0, "mode": "half"}, "ablate.0.mode"),
    ],
)
def test_bad_ablations_name_their_field(client, model_ids, ablation, field):
    body = {"model": model_ids["decoder"], "text": "the cat", "ablate": [ablation]}
    r = client.post(f"{API}/attention", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == field
    params = {"model": model_ids["decoder"], "text": "the cat", "ablate": "decoder.self:x"}
    r = client.get(f"{API}/generate/stream", params=params)
    assert r.status_code == 422 and r.json()["error"]["field"] == "ablate.0"
