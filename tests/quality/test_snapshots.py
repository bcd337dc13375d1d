"""The shipped training snapshots of induction-2l (checkpoints/induction-2l/snapshots): small,
and their scores, recomputed here from the snapshot weights, rise where the card says the
induction heads formed."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest
import torch

from models.analysis import scores
from models.checkpoint import load_checkpoint
from models.hooks import capture
from models.snapshots import FOLDER, load_snapshot, read_manifest, snapshot_file
from training import snapshots as snap

pytestmark = pytest.mark.quality

CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "induction-2l"


@cache
def manifest() -> dict:
    m = read_manifest(CHECKPOINT)
    if m is None:
        pytest.fail("the shipped induction-2l has no snapshots")
    return m


@cache
def card() -> dict:
    return json.loads((CHECKPOINT / "card.json").read_text())


@cache
def recomputed() -> list[dict]:
    """Every snapshot's scores from its weights, on the stored probe, with the score code."""
    ids = torch.tensor(manifest()["probe"]["token_ids"])
    out = []
    for s in manifest()["snapshots"]:
        model = load_snapshot(CHECKPOINT, s["step"])
        names = [f"decoder.blocks.{i}.attn.hook_pattern" for i in range(model.config.n_layers)]
        with torch.no_grad(), capture(model, names=names) as trace:
            model.decode(ids[None])
        p = torch.stack([trace[n][0] for n in names]).double()
        measured = {
            "induction": scores.induction(p, ids),
            "previous_token": scores.previous_token(p),
        }
        out.append({**s, "scores": {k: v.tolist() for k, v in measured.items()}})
    return out


def test_snapshots_are_small_and_span_the_run():
    m = manifest()
    steps = [s["step"] for s in m["snapshots"]]
    assert steps[0] == 0 and steps[-1] == m["steps"] == card()["steps"]
    assert steps == sorted(set(steps)) and 6 <= len(steps) <= 12
    files = list((CHECKPOINT / FOLDER).iterdir())
    assert {p.name for p in files} == {"snapshots.json", *(snapshot_file(s) for s in steps)}
    assert sum(p.stat().st_size for p in files) <= 10 * 2**20
    assert len(m["loss"]) == m["steps"]


def test_the_probe_is_the_heads_scores_default():
    c = load_checkpoint(CHECKPOINT)
    assert manifest()["probe"]["token_ids"] == snap.probe_ids(c.config, c.tokenizer)


def test_stored_scores_are_the_snapshot_weights_scores():
    for stored, live in zip(manifest()["snapshots"], recomputed(), strict=True):
        for name in ("induction", "previous_token"):
            torch.testing.assert_close(
                torch.tensor(stored["scores"][name], dtype=torch.float64),
                torch.tensor(live["scores"][name], dtype=torch.float64),
                atol=6e-5,
                rtol=0,
            )


def test_the_induction_heads_formed_where_the_card_says():
    said = card()["snapshots"]
    live = [
        {
            **s,
            "scores": {
                k: [[round(v, 4) for v in row] for row in m] for k, m in s["scores"].items()
            },
        }
        for s in recomputed()
    ]
    measured = snap.formed({**manifest(), "snapshots": live})
    assert {k: v for k, v in said.items() if k != "run"} == measured
    at = said["induction_formed_at_step"]
    assert at is not None and said["induction_heads"]
    heads = [(int(h[1]), int(h[3])) for h in said["induction_heads"]]  # "L1H0"
    steps = [s["step"] for s in live]
    mean = [sum(s["scores"]["induction"][i][h] for i, h in heads) / len(heads) for s in live]
    k = steps.index(at)
    assert mean[0] < 0.1  # the initial weights: no induction
    assert all(v < 0.5 for v in mean[:k]) and all(v >= 0.5 for v in mean[k:])
    assert live[k]["loss"] < live[k - 1]["loss"]  # the loss falls as they form
    assert snap.findings(said) in card()["description"]
