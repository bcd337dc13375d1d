"""training/snapshots.py: which steps are kept, what is written, and what is measured on them
(on a tiny random decoder and a made-up loss curve: fast, and independent of the shipped run)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from models.analysis import scores
from models.checkpoint import save_checkpoint
from models.hooks import capture
from models.snapshots import FOLDER, MANIFEST, load_snapshot, read_manifest
from tests.helpers import tiny
from training import snapshots as snap


def plateau_drop_plateau(total: int = 1500, drop: tuple[int, int] = (210, 270)) -> list[float]:
    """6.5 until `drop`, a fall to 0.1 across it, then slowly to 0.01 (the shape of the
    induction run's curve)."""
    lo, hi = drop
    out = []
    for s in range(total):
        if s < lo:
            out.append(6.5 - 0.3 * s / lo)
        elif s < hi:
            out.append(6.2 - 6.1 * (s - lo) / (hi - lo))
        else:
            out.append(0.1 * math.exp(-(s - hi) / 400) + 0.01)
    return out


def test_picks_are_denser_where_the_loss_moves():
    loss = plateau_drop_plateau()
    candidates = list(range(0, 1501, 10))
    picked = snap.pick_steps(loss, candidates, 8, window=10)
    assert picked[0] == 0 and picked[-1] == 1500
    assert picked == sorted(set(picked)) and len(picked) == 8
    assert set(picked) <= set(candidates)
    in_drop = [s for s in picked if 200 <= s <= 280]
    even = [round(1500 * k / 7) for k in range(8)]
    # a 60-step fall holds 4% of the steps and ~half of the curve's length
    assert len(in_drop) >= 3 > len([s for s in even if 200 <= s <= 280])


def test_all_candidates_when_fewer_than_asked():
    assert snap.pick_steps([1.0, 0.5, 0.2], [0, 1, 2], 8, window=1) == [0, 1, 2]


def test_a_flat_curve_gives_an_even_grid():
    picked = snap.pick_steps([2.0] * 100, list(range(0, 101, 5)), 5, window=5)
    assert picked == [0, 25, 50, 75, 100]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny decoder 'trained' for 30 steps by random nudges, 4 snapshots written and measured."""
    torch.manual_seed(0)
    model = tiny("decoder").float().eval()
    folder = tmp_path_factory.mktemp("run") / "tiny"
    save_checkpoint(folder, model)
    recorder = snap.Recorder(4, 30)
    recorder.keep(0, model)
    kept = {0: {k: v.clone() for k, v in model.state_dict().items()}}
    for step in range(1, 31):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        recorder.keep(step, model)
        kept[step] = {k: v.clone() for k, v in model.state_dict().items()}
    loss = [5.0 - 4.0 * (s >= 12) for s in range(30)]  # a step down at 12
    manifest = snap.write(folder, recorder, loss, {"model": "tiny", "seed": 0})
    cfg = model.config
    ids = [cfg.bos_id, *range(3, 13), *range(3, 13)]
    formed = snap.measure(folder, ids)
    return folder, manifest, kept, ids, formed


def test_write_keeps_the_chosen_steps_in_float16(run):
    folder, manifest, kept, _, _ = run
    steps = [s["step"] for s in manifest["snapshots"]]
    assert steps[0] == 0 and steps[-1] == 30 and len(steps) == 4
    assert 12 in steps or 11 in steps  # the loss's one move is sampled
    assert sorted(p.name for p in (folder / FOLDER).glob("*.safetensors")) == [
        f"step-{s:05d}.safetensors" for s in steps
    ]
    for s in steps:
        model = load_snapshot(folder, s)
        for name, value in model.state_dict().items():
            torch.testing.assert_close(value, kept[s][name].half().float(), rtol=0, atol=0)
    assert manifest["loss"] == [round(v, 4) for v in [5.0 - 4.0 * (s >= 12) for s in range(30)]]


def test_measured_scores_are_the_score_code_on_each_snapshot(run):
    folder, _, _, ids, formed = run
    stored = read_manifest(folder)
    assert stored["probe"]["token_ids"] == ids
    tokens = torch.tensor(ids)
    for s in stored["snapshots"]:
        model = load_snapshot(folder, s["step"])
        names = [f"decoder.blocks.{i}.attn.hook_pattern" for i in range(model.config.n_layers)]
        with torch.no_grad(), capture(model, names=names) as trace:
            model.decode(tokens[None])
        patterns = torch.stack([trace[n][0] for n in names]).double()
        want = {
            "induction": scores.induction(patterns, tokens),
            "previous_token": scores.previous_token(patterns),
        }
        for name, value in want.items():
            torch.testing.assert_close(
                torch.tensor(s["scores"][name], dtype=torch.float64), value, atol=6e-5, rtol=0
            )
    assert stored["formed"] == formed
    assert json.loads((folder / FOLDER / MANIFEST).read_text())["formed"] == formed


def manifest_with(induction_l1: list[float], prev_l0h2: list[float], loss: list[float]) -> dict:
    steps = [0, 100, 200, 300]
    snaps = []
    for k, s in enumerate(steps):
        ind = [[0.01] * 4, [induction_l1[k]] * 4]
        prev = [[0.05, 0.05, prev_l0h2[k], 0.05], [0.05] * 4]
        snaps.append(
            {"step": s, "loss": loss[k], "scores": {"induction": ind, "previous_token": prev}}
        )
    per_step = [loss[min(i // 100, 3)] for i in range(300)]
    return {"snapshots": snaps, "loss_window": 10, "loss": per_step}


def test_formed_reads_the_first_snapshot_past_the_threshold():
    f = snap.formed(manifest_with([0.02, 0.3, 0.8, 0.95], [0.1, 0.6, 0.7, 0.8], [6, 5, 1, 0.1]))
    assert f["induction_heads"] == ["L1H0", "L1H1", "L1H2", "L1H3"]
    assert f["induction_formed_at_step"] == 200
    assert f["induction_formed_between_steps"] == [100, 200]
    assert f["loss_before_and_at_formation"] == [5, 1]
    assert f["previous_token_head"] == "L0H2"
    assert f["previous_token_formed_at_step"] == 100
    assert f["induction_heads_mean_score"] == [0.02, 0.3, 0.8, 0.95]
    # the per-step loss falls 5 -> 1 at step 200: the window that straddles it
    assert f["loss_fell_fastest"]["from_step"] <= 200 <= f["loss_fell_fastest"]["to_step"]


def test_formed_without_an_induction_head():
    f = snap.formed(manifest_with([0.02, 0.1, 0.2, 0.3], [0.1] * 4, [6, 6, 6, 6]))
    assert f["induction_heads"] == [] and f["induction_formed_at_step"] is None
    assert f["loss_before_and_at_formation"] is None


def test_snapshots_need_an_output_folder_and_a_decoder():
    from training.train import train

    with pytest.raises(ValueError, match="out_dir"):
        train("induction-2l", None, steps=2, snapshots=2)
    with pytest.raises(ValueError, match="decoders only"):
        train("encoder-mini", "/nonexistent", steps=2, snapshots=2)
    with pytest.raises(ValueError, match="at least 2"):
        snap.Recorder(1, 10)


def test_findings_say_when_in_figures():
    f = snap.formed(manifest_with([0.02, 0.3, 0.8, 0.95], [0.1, 0.6, 0.7, 0.8], [6, 5, 1, 0.1]))
    text = snap.findings(f)
    assert "between steps 100 and 200" in text and "0.30 -> 0.80" in text
    assert "5.00 -> 1.00" in text and "L0H2 passed 0.5 at step 100" in text
    none = snap.formed(manifest_with([0.02, 0.1, 0.2, 0.3], [0.1] * 4, [6, 6, 6, 6]))
    assert "no head's induction score passed 0.5" in snap.findings(none)
