"""How well attribution patching (one forward + one backward pass) ranks heads against the
exact importance sweep (every head ablated in turn): Spearman's rank correlation per model,
on the induction probe and on a sentence, and the time of each. Usage:
``.venv/bin/python bench/bench_importance_approx.py [--smollm2]`` (SmolLM2's exact sweep of
270 heads takes minutes on 2 cores)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import load_checkpoint  # noqa: E402
from models.analysis.importance import attribution_patching, head_importance  # noqa: E402
from models.analysis.scores import induction_probe  # noqa: E402


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = a.argsort().argsort(), b.argsort().argsort()
    return float(np.corrcoef(ra, rb)[0, 1])


def compare(path: Path, ids: list[int], target: list[int] | None, label: str) -> None:
    ck = load_checkpoint(path)
    x = torch.tensor([ids])
    t = None if target is None else torch.tensor([target])
    row = [f"{path.name:22} {label:9} {len(ids):4} tokens"]
    for mode in ("zero", "mean"):
        t0 = time.perf_counter()
        with torch.inference_mode():
            exact = head_importance(ck.model, x, t, mode=mode, chunk=8)
        t_exact = time.perf_counter() - t0
        t0 = time.perf_counter()
        approx = attribution_patching(ck.model, x, t, mode=mode)
        t_approx = time.perf_counter() - t0
        e = torch.cat([v.flatten() for v in exact.values()]).numpy()
        a = torch.cat([v.flatten() for v in approx.values()]).numpy()
        row.append(
            f"{mode}: ρ {spearman(a, e):+.2f} (exact {t_exact:.2f} s, approx {t_approx:.2f} s)"
        )
    print(" | ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smollm2", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.1f}")
    for name in ("decoder-mini", "induction-2l", "seq2seq-en-fr"):
        path = ROOT / "checkpoints" / name
        cfg = load_checkpoint(path).config
        run = induction_probe(24, cfg.vocab_size, seed=0)[0].tolist()
        bos = [cfg.bos_id] if cfg.bos_id is not None else []
        if cfg.kind == "decoder":
            compare(path, bos + run, None, "probe")
        else:
            compare(path, run + [cfg.eos_id], bos + run, "probe")
    if args.smollm2:
        path = ROOT / "imported" / "smollm2-135m-instruct"
        ck = load_checkpoint(path)
        text = "The history of the printing press begins in the fifteenth century. " * 12
        ids = ck.tokenizer.encode(text).ids[:128]
        compare(path, ids, None, "text")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
