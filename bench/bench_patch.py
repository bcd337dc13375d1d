"""Activation patching's sweep times and attribution patching's agreement with exact patching.

    .venv/bin/python bench/bench_patch.py [--threads N] [--no-gpt2]

In process (models.analysis.patching, what POST /patch runs on an engine worker), with N
torch threads (default 1, as one server worker has). For each sweep: wall seconds and the
process's CPU seconds (on a busy machine the wall time waits for the CPU; the CPU time is
what the sweep costs). Cases:

* every site of decoder-mini and seq2seq-en-fr at 16 tokens (the issue's goal: ≤ 1 s);
* a GPT-2-small-shaped decoder (12 × 12, d_model 768, vocabulary 50 257, random weights, built
  by tests/e2e/scale_models.py through `attnviz import`) at 32 tokens: head_z for all 144
  heads (goal ≤ 5 s) and resid_pre for 12 × 32 cells (goal ≤ 10 s), the inputs differing in
  the middle (position 16) and, the worst case for a causal model, at position 1;
* the /patch view's presets (induction-2l repeated run, seq2seq-en-fr colour swap,
  encoder-mini negation) and decoder-mini: attribution patching's Spearman rank correlation
  with exact patching per site, and what the induction preset measures.

Prints figures; the `patch` section of bench/RESULTS.md is written from them by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.tokenization import TextCodec  # noqa: E402
from models import load_checkpoint  # noqa: E402
from models.analysis.patching import SITES, Inputs, Metric, attribute, patch  # noqa: E402

CHECKPOINTS = ROOT / "checkpoints"


def timed(fn, repeat: int = 3):
    """(result, median wall s, median CPU s) over ``repeat`` runs after one warm-up."""
    fn()
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return out, sorted(walls)[len(walls) // 2], sorted(cpus)[len(cpus) // 2]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def load(model_id: str):
    ck = load_checkpoint(CHECKPOINTS / model_id)
    return ck.model.eval(), TextCodec(ck.tokenizer, ck.config)


def one_token(codec: TextCodec, text: str) -> int:
    ids = codec.tokenizer.encode(text, add_special_tokens=False).ids
    assert len(ids) == 1, (text, ids)
    return ids[0]


def sixteen(codec: TextCodec, kind: str) -> Inputs:
    """16 source tokens (a sentence of the lecture notes' kind, repeated), one word swapped in
    the middle; seq2seq: 16 target tokens teacher-forced."""
    words = "the small white bird saw the big red fish and the young girl liked the green apple"
    ids = codec.encode_source(words).ids
    ids = (ids * 4)[:16]
    corrupted = list(ids)
    corrupted[8] = ids[9] if ids[9] != ids[8] else ids[7]
    target = None
    if kind == "seq2seq":
        french = "le petit oiseau blanc a vu le grand poisson rouge et la jeune fille a aimé"
        target = torch.tensor([codec.encode_target(french).ids[:16]])
    answer, wrong = ids[-1], ids[-2]
    position = 15 if kind != "encoder" else 8
    return Inputs(
        torch.tensor([ids]),
        torch.tensor([corrupted]),
        target,
        Metric("logit_diff", answer, wrong, position),
    )


def presets() -> dict[str, tuple]:
    """The /patch view's presets (static/js/views/patch.js builds the same inputs)."""
    out = {}
    model, codec = load("induction-2l")
    g = torch.Generator().manual_seed(7)
    vocab = model.config.vocab_size
    run = (torch.randperm(vocab - 2, generator=g)[:12] + 2).tolist()
    other = (torch.randperm(vocab - 2, generator=g)[:12] + 2).tolist()
    clean = [model.config.bos_id, *run, *run[:-1]]
    corrupted = [model.config.bos_id, *other, *run[:-1]]
    metric = Metric("logit_diff", run[-1], other[-1], len(clean) - 1)
    out["induction-2l"] = (
        model,
        Inputs(torch.tensor([clean]), torch.tensor([corrupted]), None, metric),
    )

    model, codec = load("seq2seq-en-fr")
    c = codec.encode_source("the black cat ate the mouse").ids
    k = codec.encode_source("the white cat ate the mouse").ids
    t = codec.encode_target("le chat noir a mangé la souris").ids
    metric = Metric("logit_diff", one_token(codec, "noir"), one_token(codec, "blanc"), 2)
    out["seq2seq-en-fr"] = (
        model,
        Inputs(torch.tensor([c]), torch.tensor([k]), torch.tensor([t]), metric),
    )

    model, codec = load("encoder-mini")
    c = codec.encode_source("the movie was not good").ids
    k = codec.encode_source("the movie was very good").ids
    labels = model.config.labels
    metric = Metric(
        "logit_diff", labels.index("negative"), labels.index("positive"), 0, "classifier"
    )
    out["encoder-mini"] = (model, Inputs(torch.tensor([c]), torch.tensor([k]), None, metric))

    model, codec = load("decoder-mini")
    c = codec.encode_source("the black cat ate the").ids
    k = codec.encode_source("the white cat ate the").ids
    metric = Metric(
        "logit_diff", one_token(codec, " mouse"), one_token(codec, " honey"), len(c) - 1
    )
    out["decoder-mini"] = (model, Inputs(torch.tensor([c]), torch.tensor([k]), None, metric))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-gpt2", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads {args.threads}; load average at start {os.getloadavg()}")

    print("\n## every site at 16 tokens (goal ≤ 1 s)")
    for model_id in ("decoder-mini", "seq2seq-en-fr", "encoder-mini", "induction-2l"):
        model, codec = load(model_id)
        inp = sixteen(codec, model.config.kind)
        with torch.inference_mode():
            r, wall, cpu = timed(lambda m=model, i=inp: patch(m, i, list(SITES)))
        cells = sum(g.numel() for groups in r.values.values() for g in groups.values())
        print(
            f"{model_id}: {cells} cells, {wall:.3f} s wall, {cpu:.3f} s CPU (load {os.getloadavg()[0]:.1f})"
        )

    if not args.no_gpt2:
        from tests.e2e.scale_models import gpt2_small

        print("\n## GPT-2-small shape at 32 tokens")
        with tempfile.TemporaryDirectory() as tmp:
            model = load_checkpoint(
                gpt2_small(Path(tmp), n_positions=1024, vocab_size=50257)
            ).model.eval()
        g = torch.Generator().manual_seed(0)
        clean = torch.randint(300, 50000, (1, 32), generator=g)
        for at in (16, 1):
            corrupted = clean.clone()
            corrupted[0, at] = 777
            inp = Inputs(clean, corrupted, None, Metric("logit_diff", 5, 6, 31))
            for site, goal in (("head_z", 5), ("resid_pre", 10)):
                with torch.inference_mode():
                    _, wall, cpu = timed(lambda s=site, i=inp: patch(model, i, [s]), repeat=1)
                print(
                    f"{site}, inputs differing at position {at}: {wall:.2f} s wall, {cpu:.2f} s "
                    f"CPU (goal ≤ {goal} s; load {os.getloadavg()[0]:.1f})"
                )

    print("\n## attribution patching against exact (Spearman rank correlation per site)")
    for model_id, (model, inp) in presets().items():
        with torch.inference_mode():
            exact, wall_e, _ = timed(lambda m=model, i=inp: patch(m, i, list(SITES)), repeat=1)
        approx, wall_a, _ = timed(lambda m=model, i=inp: attribute(m, i, list(SITES)), repeat=1)
        rho = {}
        for site, groups in exact.values.items():
            a = torch.cat([v.flatten() for v in groups.values()])
            b = torch.cat([v.flatten() for v in approx.values[site].values()])
            rho[site] = round(spearman(a, b), 3)
        print(f"{model_id}: exact {wall_e:.3f} s, attribution {wall_a:.3f} s; rho {rho}")
        if model_id == "induction-2l":
            d = exact.clean - exact.corrupted
            heads = (exact.values["head_z"]["decoder.self"] - exact.corrupted) / d
            pattern = (exact.values["head_pattern"]["decoder.self"] - exact.corrupted) / d
            print(f"  m(clean) {exact.clean:.2f}, m(corrupted) {exact.corrupted:.2f}")
            print(f"  head_z effects [L][H]: {heads.round(decimals=3).tolist()}")
            print(f"  head_pattern effects [L][H]: {pattern.round(decimals=3).tolist()}")
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
