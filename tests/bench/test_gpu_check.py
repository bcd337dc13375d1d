"""bench/gpu_check.py's CPU-side logic (no GPU here): the per-head comparison finds the head
that differs, a whole comparison passes on identical runs, and no CUDA means exit 2."""

from __future__ import annotations

import torch

from bench import gpu_check
from tests.helpers import SHIPPED, tiny


def test_head_errors_name_the_head_that_differs():
    model = tiny("decoder")
    cpu, _ = gpu_check.run_model(model, torch.tensor([[1, 2, 3, 4, 5]]), "cpu")
    name = "decoder.blocks.1.attn.hook_pattern"
    other = {k: v.clone() for k, v in cpu.items()}
    other[name][0, 2, 3, 1] += 2e-3
    errors = gpu_check.head_errors(cpu, other)
    assert gpu_check.worst(errors)[:2] == (name, 2)
    assert abs(gpu_check.worst(errors)[2] - 2e-3) < 1e-6
    assert sum(e for per in errors.values() for e in per) == gpu_check.worst(errors)[2]


def test_a_comparison_of_identical_runs_passes(monkeypatch, capsys):
    run = gpu_check.run_model
    monkeypatch.setattr(gpu_check, "run_model", lambda m, ids, device: run(m, ids, "cpu"))
    assert gpu_check.compare(SHIPPED / "decoder-mini", 32)
    assert capsys.readouterr().out.startswith("ok  decoder-mini at 32 tokens: worst head")


def test_without_cuda_it_says_so_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main() == 2
    assert "no CUDA device" in capsys.readouterr().out
