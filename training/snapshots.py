"""``attnviz train <id> --snapshots N``: keep N snapshots of the run, and measure them.

While training, the weights are kept (float16, in memory) every ``total // 150`` steps; at
the end N of those candidates are written, chosen evenly spaced along the *length* of the
loss curve (steps and smoothed loss each scaled to 0..1): a flat stretch gets snapshots by
its steps, a fall of the loss by its height, so the snapshots are denser where the loss moves
(the phase change of an induction head forming, Olsson et al. 2022) than a grid of steps
would put them. Step 0 (the initial weights) and the last step are always kept.

Each snapshot is then scored on the induction probe of ``POST /heads/scores`` (BOS + a run of
random tokens, twice; its default seed and run length), and the card says, measured, at which
snapshot the induction heads formed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from models.analysis.scores import induction_probe
from models.checkpoint import CARD, TIED_HEAD
from models.snapshots import (
    FOLDER,
    MANIFEST,
    SCORES,
    load_snapshot,
    probe_patterns,
    probe_scores,
    snapshot_file,
)

#: candidates kept per run (the snapshots are chosen among them at the end)
CANDIDATES = 150
#: the probe: /heads/scores's default
PROBE_SEED, PROBE_RUN_LENGTH = 0, 24
#: a head "is" an induction (previous-token) head once its score passes this
FORMED = 0.5


class Recorder:
    """Keeps the weights every ``every`` steps of a ``total``-step run (and at its end)."""

    def __init__(self, n: int, total: int) -> None:
        if n < 2:
            raise ValueError("--snapshots needs at least 2 (the first and the last step)")
        self.n, self.total = n, total
        self.every = max(1, total // CANDIDATES)
        self.states: dict[int, dict[str, torch.Tensor]] = {}

    def keep(self, step: int, model: torch.nn.Module) -> None:
        """After ``step`` optimizer steps (0: the initial weights)."""
        if step % self.every == 0 or step == self.total:
            tied = getattr(model.config, "tie_embeddings", False)
            self.states[step] = {
                k: v.detach().to("cpu", torch.float16, copy=True)
                for k, v in model.state_dict().items()
                if not (tied and k == TIED_HEAD)  # stored once, under the embeddings' name
            }


def smoothed(losses: list[float], step: int, window: int) -> float:
    """The training loss of the weights after ``step`` steps, averaged over the ``window``
    batches around it (``losses[s]`` is the loss of the weights after ``s`` steps)."""
    lo = max(0, min(step, len(losses) - 1) - window // 2)
    part = losses[lo : lo + window]
    return sum(part) / len(part)


def pick_steps(losses: list[float], candidates: list[int], n: int, window: int) -> list[int]:
    """``n`` of the ``candidates`` (ascending, the first and last included), evenly spaced
    along the length of the curve (step / last step, smoothed loss scaled to 0..1)."""
    if n >= len(candidates):
        return list(candidates)
    y = [smoothed(losses, s, window) for s in candidates]
    span = (max(y) - min(y)) or 1.0
    last = candidates[-1] or 1
    length = [0.0]
    for i in range(1, len(candidates)):
        dx = (candidates[i] - candidates[i - 1]) / last
        dy = (y[i] - y[i - 1]) / span
        length.append(length[-1] + (dx * dx + dy * dy) ** 0.5)
    picked = [0]
    for k in range(1, n - 1):
        target = length[-1] * k / (n - 1)
        # after the previous pick, leaving a candidate for each pick still to come
        lo, hi = picked[-1] + 1, len(candidates) - (n - k)
        picked.append(min(range(lo, hi), key=lambda i: abs(length[i] - target)))
    picked.append(len(candidates) - 1)
    return [candidates[i] for i in picked]


def write(checkpoint_dir: str | Path, recorder: Recorder, losses: list[float], meta: dict) -> dict:
    """Write the chosen snapshots and snapshots.json (without scores: see `measure`)."""
    folder = Path(checkpoint_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("step-*.safetensors"):
        old.unlink()
    window = recorder.every
    steps = pick_steps(losses, sorted(recorder.states), recorder.n, window)
    for s in steps:
        save_file(recorder.states[s], str(folder / snapshot_file(s)), metadata={"step": str(s)})
    manifest = {
        **meta,
        "steps": recorder.total,
        "dtype": "float16",
        "selection": (
            f"{len(steps)} of the weights kept every {recorder.every} steps, evenly spaced "
            f"along the length of the loss curve (steps and the loss averaged over {window} "
            "batches, each scaled to 0..1): denser where the loss moves"
        ),
        "loss_window": window,
        "loss": [round(v, 4) for v in losses],
        "snapshots": [
            {"step": s, "file": snapshot_file(s), "loss": round(smoothed(losses, s, window), 4)}
            for s in steps
        ],
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def probe_ids(model_config, tokenizer) -> list[int]:
    """The /heads/scores default probe for a decoder: BOS + a run of distinct random
    non-special tokens, twice."""
    special = {i for i, t in tokenizer.get_added_tokens_decoder().items() if t.special}
    special |= {i for i in (model_config.bos_id, model_config.eos_id) if i is not None}
    run = induction_probe(
        PROBE_RUN_LENGTH, model_config.vocab_size, seed=PROBE_SEED, exclude=sorted(special)
    )
    return [model_config.bos_id, *run[0].tolist()]


def measure(checkpoint_dir: str | Path, ids: list[int], config=None) -> dict:
    """Score every snapshot's heads on the probe ``ids``; store the scores and when the
    circuit formed in snapshots.json, and return that summary (for the card)."""
    folder = Path(checkpoint_dir) / FOLDER
    manifest = json.loads((folder / MANIFEST).read_text())
    probe = torch.tensor(ids)
    for snap in manifest["snapshots"]:
        model = load_snapshot(checkpoint_dir, snap["step"], config)
        measured = probe_scores(probe_patterns(model, probe), probe)
        snap["scores"] = {
            k: [[round(float(v), 4) for v in row] for row in measured[k]] for k in SCORES
        }
    manifest["probe"] = {"seed": PROBE_SEED, "run_length": PROBE_RUN_LENGTH, "token_ids": ids}
    manifest["formed"] = formed(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest["formed"]


def _head(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def formed(manifest: dict) -> dict:
    """When the circuit formed, read off the snapshots' scores and the loss.

    The induction heads are the heads scoring >= FORMED at the last snapshot; they formed at
    the first snapshot where their mean score passes FORMED. Likewise for the previous-token
    head (layer 0's best at the last snapshot). The loss fell fastest where its average over
    ``loss_window`` batches dropped most from one window to the next."""
    snaps, window = manifest["snapshots"], manifest["loss_window"]
    last = snaps[-1]["scores"]
    induction = [
        (i, h) for i, row in enumerate(last["induction"]) for h, v in enumerate(row) if v >= FORMED
    ]
    prev = max(range(len(last["previous_token"][0])), key=lambda h: last["previous_token"][0][h])

    def mean_induction(snap: dict) -> float:
        k = max(len(induction), 1)
        return sum(snap["scores"]["induction"][i][h] for i, h in induction) / k

    def first(values: list[float]) -> int | None:
        return next((s["step"] for s, v in zip(snaps, values, strict=True) if v >= FORMED), None)

    ind = [round(mean_induction(s), 4) for s in snaps]
    pt = [s["scores"]["previous_token"][0][prev] for s in snaps]
    at = first(ind)
    i = [s["step"] for s in snaps].index(at) if at is not None else None
    loss = manifest["loss"]
    means = [sum(loss[s : s + window]) / window for s in range(0, len(loss) - window + 1)]
    drops = [means[s] - means[s + window] for s in range(len(means) - window)]
    steepest = max(range(len(drops)), key=drops.__getitem__) if drops else 0
    return {
        "threshold": FORMED,
        "snapshot_steps": [s["step"] for s in snaps],
        "induction_heads": [_head(*lh) for lh in induction],
        "induction_heads_mean_score": ind,
        "induction_formed_at_step": at,
        "induction_formed_between_steps": [snaps[i - 1]["step"], at] if i else None,
        "loss_at_snapshots": [s["loss"] for s in snaps],
        "loss_before_and_at_formation": [snaps[i - 1]["loss"], snaps[i]["loss"]] if i else None,
        "previous_token_head": _head(0, prev),
        "previous_token_scores": pt,
        "previous_token_formed_at_step": first(pt),
        "loss_fell_fastest": {
            "from_step": steepest + window // 2,
            "to_step": steepest + window + window // 2,
            "loss": [round(means[steepest], 4), round(means[steepest + window], 4)],
        },
    }


def findings(f: dict) -> str:
    """The card's sentence on when the circuit formed (from `formed`)."""
    at = f["induction_formed_at_step"]
    if at is None:
        return f"In the run's snapshots no head's induction score passed {f['threshold']}."
    i = f["snapshot_steps"].index(at)
    scores, loss = f["induction_heads_mean_score"], f["loss_at_snapshots"]
    fall = f["loss_fell_fastest"]
    text = f"Snapshots of the run: the induction heads ({', '.join(f['induction_heads'])}) formed "
    if i == 0:
        text += f"by step {at}"
    else:
        text += (
            f"between steps {f['snapshot_steps'][i - 1]} and {at}: their mean induction score "
            f"went {scores[i - 1]:.2f} -> {scores[i]:.2f} while the training loss went "
            f"{loss[i - 1]:.2f} -> {loss[i]:.2f}"
        )
    text += (
        f"; the loss fell fastest between steps {fall['from_step']} and {fall['to_step']} "
        f"({fall['loss'][0]:.2f} -> {fall['loss'][1]:.2f})"
    )
    if f["previous_token_formed_at_step"] is not None:
        text += (
            f"; the previous-token head {f['previous_token_head']} passed {f['threshold']} at "
            f"step {f['previous_token_formed_at_step']}"
        )
    return text + "."


def attach(run_dir: str | Path, checkpoint_dir: str | Path) -> dict:
    """Ship the snapshots of the run in ``run_dir`` (a folder `attnviz train --out RUN_DIR
    --snapshots N` wrote) with the checkpoint in ``checkpoint_dir`` trained by the same recipe:
    copy them, measure them again, say in snapshots.json whether the run's last weights are
    the checkpoint's (a rerun with other code or threads need not be bit-identical), and put
    when the circuit formed on the checkpoint's card. Returns the card's ``snapshots``."""
    from models import load_checkpoint

    run_dir, checkpoint_dir = Path(run_dir), Path(checkpoint_dir)
    run, shipped = load_checkpoint(run_dir), load_checkpoint(checkpoint_dir)
    if run.card.get("recipe") != shipped.card.get("recipe"):
        raise ValueError(f"{run_dir} was not trained with {checkpoint_dir}'s recipe")
    if run.tokenizer.to_str() != shipped.tokenizer.to_str():
        raise ValueError(f"{run_dir} has another tokenizer than {checkpoint_dir}")
    target = checkpoint_dir / FOLDER
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(run_dir / FOLDER, target)
    mine, theirs = run.model.state_dict(), shipped.model.state_dict()
    gap = max(float((mine[k] - theirs[k]).abs().max()) for k in theirs)
    m = run.card["metrics"]
    summary = {
        "identical_to_checkpoint": gap == 0.0,
        "max_abs_weight_difference_from_checkpoint": round(gap, 6),
        "wall_time_seconds": run.card["wall_time_seconds"],
        "torch": run.card["torch"],
        "torch_threads": run.card["torch_threads"],
        "final_train_loss": run.card["final_train_loss"],
        "induction_heads": m.get("induction_heads"),
        "previous_token_head": m.get("previous_token_head"),
        "copy_accuracy": m.get("copy_accuracy"),
    }
    manifest_path = target / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["run"] = summary
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    result = {
        **measure(checkpoint_dir, probe_ids(shipped.config, shipped.tokenizer)),
        "run": summary,
    }
    card = dict(shipped.card)
    sentence = findings(result)
    if not summary["identical_to_checkpoint"]:
        same = (m.get("induction_heads"), m.get("previous_token_head")) == (
            shipped.card["metrics"].get("induction_heads"),
            shipped.card["metrics"].get("previous_token_head"),
        )
        heads = ", ".join(m.get("induction_heads") or []) or "no induction head"
        circuit = f"{heads} with {m.get('previous_token_head')}"
        sentence = (
            f"The snapshots come from a rerun of this recipe (seed {run.card['seed']}, "
            f"{run.card['steps']} steps, torch {summary['torch']}), not bit-identical to these "
            f"weights (largest difference {gap:.3g}); "
            + (f"it learns the same circuit ({circuit}). " if same else f"its circuit: {circuit}. ")
            + sentence
        )
    old = card.get("snapshots_description")
    description = card["description"]
    if old and description.endswith(" " + old):
        description = description[: -len(old) - 1]
    card["description"] = f"{description} {sentence}"
    card["snapshots_description"] = sentence
    card["snapshots"] = result
    (checkpoint_dir / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return result
