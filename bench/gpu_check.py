"""The CUDA path, checked in a few minutes on a machine with a GPU:

1. the CUDA-marked tests (``pytest -m cuda``);
2. every head's attention and the logits on the GPU against the CPU (≤ 1e-3 per head) on a
   shipped model and, when imported (``make import-smollm2``), on SmolLM2-135M;
3. a forward pass of the GPT-2-small shape at 2048 tokens with every pattern captured, timed
   on the GPU beside the CPU.

Usage: ``.venv/bin/python bench/gpu_check.py`` (exit 0: every check passed). Without a CUDA
device it says so and exits 2: nothing here has run on a GPU yet (this project's machines
have none); the comparison logic is tested on the CPU in tests/bench/test_gpu_check.py.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOL = 1e-3
SMOLLM2 = ROOT / "imported" / "smollm2-135m-instruct"


def head_errors(cpu: dict[str, torch.Tensor], gpu: dict[str, torch.Tensor]) -> dict:
    """hook name -> the largest |CPU − GPU| of each head of that pattern ((B, H, Tq, Tk))."""
    if cpu.keys() != gpu.keys():
        raise ValueError(f"different hooks: {sorted(cpu.keys() ^ gpu.keys())}")
    return {
        name: (cpu[name].float() - gpu[name].float().cpu()).abs().amax(dim=(0, 2, 3)).tolist()
        for name in cpu
    }


def worst(errors: dict) -> tuple[str, int, float]:
    """(hook, head, error) of the largest error."""
    return max(
        ((name, h, e) for name, per in errors.items() for h, e in enumerate(per)),
        key=lambda t: t[2],
    )


def run_model(model, ids: torch.Tensor, device: str) -> tuple[dict, torch.Tensor]:
    from models.hooks import capture

    model = model.to(device)
    names = [n for n in model.hook_point_names if n.endswith("hook_pattern")]
    with torch.inference_mode(), capture(model, names=names) as trace:
        logits = model(ids.to(device))
    if device == "cuda":
        torch.cuda.synchronize()
    return {n: trace[n].cpu() for n in names}, logits.float().cpu()


def compare(path: Path, n_tokens: int) -> bool:
    from models import load_checkpoint

    ck = load_checkpoint(path)
    if ck.config.kind != "decoder":
        raise ValueError(f"{path.name}: only decoders are compared here")
    ids = torch.randint(0, ck.config.vocab_size, (1, min(n_tokens, ck.config.max_len)))
    cpu, cpu_logits = run_model(ck.model, ids, "cpu")
    gpu, gpu_logits = run_model(ck.model, ids, "cuda")
    name, head, err = worst(head_errors(cpu, gpu))
    logit_err = (cpu_logits - gpu_logits).abs().max().item()
    ok = err <= TOL
    print(
        f"{'ok ' if ok else 'BAD'} {path.name} at {ids.shape[1]} tokens: worst head "
        f"{name} #{head}: {err:.2e} (≤ {TOL:g}); logits {logit_err:.2e}"
    )
    return ok


def time_gpt2_shape(n: int = 2048) -> None:
    from models import load_checkpoint
    from tests.e2e.scale_models import gpt2_small

    with tempfile.TemporaryDirectory() as tmp:
        ck = load_checkpoint(gpt2_small(Path(tmp), n_positions=n))
    ids = torch.randint(0, ck.config.vocab_size, (1, n))
    for device in ("cuda", "cpu"):
        run_model(ck.model, ids, device)  # warm-up (CUDA context, kernels)
        t0 = time.perf_counter()
        run_model(ck.model, ids, device)
        print(f"GPT-2-small shape, {n} tokens, every pattern captured, {device}: "
              f"{time.perf_counter() - t0:.2f} s")  # fmt: skip


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing checked (run this on a machine with a GPU)")
        return 2
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
    )
    ok = tests.returncode == 0
    ok &= compare(ROOT / "checkpoints" / "decoder-mini", 256)
    if (SMOLLM2 / "config.json").is_file():
        ok &= compare(SMOLLM2, 512)
    else:
        print("SmolLM2 not imported (make import-smollm2): skipped")
    time_gpt2_shape()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
