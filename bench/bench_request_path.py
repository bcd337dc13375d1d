"""Where one /attention request's time goes, and the request path's goals against BertViz.

    .venv/bin/python bench/bench_request_path.py            # ~2 minutes on 2 cores
    .venv/bin/python bench/bench_request_path.py --gpt2     # + 1024 tokens on GPT-2-small's shape
    .venv/bin/python bench/bench_request_path.py --no-write # print only

The case (issue 25): encoder-mini, every layer and head, a new 126-token input each request.

1. **In process**, one torch thread on a worker thread (as the server), per stage (median over distinct inputs): the body's
   validation, resolving it into ids, the bare forward pass (``model.encode``), the answer
   computed (forward pass under capture + every head's weights in the format), its bytes
   (orjson), and each compression. A regression shows up here as one stage that grew.
2. **Over HTTP** against a real server (``python -m app.server``, default settings, so the
   answer cache and the trace store are on), keep-alive, every request a new input, for f16 +
   gzip (curl, requests), binary + zstd (the browser's format) and JSON, at 126 and 32
   tokens: the client's p50 (httpx) and the server's own stages from its ``Server-Timing``
   (app: the whole request; the engine's wait, compute, compress), so that a regression shows
   where it is. The yardstick, a bare forward pass of a new input, is timed in this process
   before each request: this VM's speed drifts by a fifth within minutes. The same inputs are
   then asked again: the same bytes from the answer cache, the path's floor for that client.
   Then the browser's way itself: Chromium's ``fetch()`` of binary answers, timed in the page
   (needs the browser tests' Chromium and Playwright).
3. **BertViz side by side**: ``head_view`` on a transformers ``BertModel`` of encoder-mini's shape
   (bench/peer_bertviz.py, needs ``make bench-env``), timed in the same run.

Writes its section of bench/RESULTS.md between ``<!-- request-path:begin/end -->`` markers.
The machine is shared: the load average is printed with every figure, and each goal is a
difference or ratio measured side by side, never an absolute time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH = ROOT / "bench"
RESULTS = BENCH / "RESULTS.md"
MODEL = "encoder-mini"
WORDS = ["the", "a", "black", "white", "red", "small", "big", "young", "happy", "cat", "dog",
         "mouse", "bear", "man", "woman", "bird", "fish"]  # fmt: skip
GZIP = {"Accept-Encoding": "gzip, deflate"}  # curl --compressed, Python's requests
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # Chromium


def p50(values: list[float]) -> float:
    return statistics.median(values)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def distinct_ids(tokenize, n: int, count: int, seed: int = 0) -> list[list[int]]:
    """``count`` inputs of exactly n ids ([CLS] … [SEP]), each differing from the others."""
    rng = random.Random(seed)
    ids = tokenize(" ".join(rng.choice(WORDS) for _ in range(n + 20)))
    body = list(ids[1:-1])
    out = []
    for _ in range(count):
        rng.shuffle(body)
        out.append([ids[0], *body[: n - 2], ids[-1]])
    assert len({tuple(x) for x in out}) == count
    return out


# ----------------------------------------------------------------------------- in process
def in_process(n: int, count: int) -> dict:
    import orjson
    import torch

    from app import inference
    from app.config import Settings
    from app.deps import cache_key
    from app.engine import compress
    from app.inputs import Inputs
    from app.registry import Registry
    from app.schemas import AttentionRequest
    from app.serialize import dumps, dumps_binary
    from app.traces import TraceStore

    torch.set_num_threads(1)
    settings = Settings()
    registry = Registry.load(settings.checkpoint_dir, torch.device("cpu"))
    inputs = Inputs(registry, settings)
    store = TraceStore(settings.trace_cache_mb << 20, settings.trace_cache_min_tokens)
    model = registry.get(MODEL).model

    def tokenize(text: str) -> list[int]:
        return inputs.attention(AttentionRequest(model=MODEL, text=text)).source.ids

    stages: dict[str, list[float]] = {}
    faults = []
    for i, ids in enumerate(distinct_ids(tokenize, n, count + 10)):
        t = [time.perf_counter()]
        raw = orjson.dumps({"model": MODEL, "token_ids": ids, "format": "f16"})
        body = AttentionRequest.model_validate_json(raw)
        cache_key(body)
        t.append(time.perf_counter())
        inp = inputs.attention(body)
        t.append(time.perf_counter())
        with torch.inference_mode():
            model.encode(torch.tensor([ids]))
        t.append(time.perf_counter())
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        with torch.inference_mode():
            answer = inference.attention(inp, body.include, "f16", 20, None, store, True)
        t.append(time.perf_counter())
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        data = dumps(answer)
        t.append(time.perf_counter())
        compress(data, "gzip", settings.gzip_level)
        t.append(time.perf_counter())
        binary = inputs.attention(body.model_copy(update={"format": "binary"}))
        with torch.inference_mode():  # the same input: replayed from the trace store
            b_answer = inference.attention(binary, body.include, "binary", 20, None, store, True)
        b_data = dumps_binary(b_answer)
        t.append(time.perf_counter())
        compress(b_data, "zstd", settings.gzip_level)
        t.append(time.perf_counter())
        if i < 10:
            continue
        names = ["validate + cache key", "resolve ids", "bare forward (model.encode)",
                 "forward under capture + f16 weights", "orjson", "gzip (ISA-L)",
                 "binary answer (replay) + header", "zstd"]  # fmt: skip
        for name, a, b in zip(names, t[:-1], t[1:], strict=True):
            stages.setdefault(name, []).append(1e3 * (b - a))
    return {
        "stages": {k: p50(v) for k, v in stages.items()},
        "faults": p50(faults),
        "bytes": {"f16": len(data), "binary": len(b_data)},
        "load": load(),
    }


# ----------------------------------------------------------------------------- over HTTP
class Server:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)  # noqa: SIM115
        cmd = [sys.executable, "-m", "app.server", "--host", "127.0.0.1", "--port",
               str(self.port), "--log-level", "warning"]  # fmt: skip
        env = {**os.environ, "ATTNVIZ_LOG_LEVEL": "warning", **(env or {})}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"the server did not start; see {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def tokenizer(url: str):
    """text -> the server's token ids for MODEL (its /tokenize)."""
    client = httpx.Client(timeout=60)

    def tokenize(text: str) -> list[int]:
        r = client.post(f"{url}/api/v1/tokenize", json={"model": MODEL, "text": text})
        return [t["id"] for t in r.json()["tokens"]]

    return tokenize


def server_timing(header: str) -> dict[str, float]:
    """Server-Timing's durations (ms) by name: app, and the engine's wait / compute / compress."""
    return {m[1]: float(m[2]) for m in re.finditer(r"(\w+);dur=([\d.]+)", header)}


def over_http(url: str, n: int, fmt: str, headers: dict, count: int, forward: BareForward) -> dict:
    """p50s of the client's time and of the server's own stages, with a bare forward pass of a
    new input timed in this process before each request (the yardstick, under the same
    machine conditions: this VM's speed drifts by a fifth within minutes)."""
    client = httpx.Client(timeout=60)
    wall, fwd, stages, size = [], [], {}, 0

    def ask(ids: list[int]) -> tuple[float, httpx.Response, bytes]:
        body = {"model": MODEL, "token_ids": ids, "format": fmt}
        t0 = time.perf_counter()
        with client.stream("POST", f"{url}/api/v1/attention", json=body, headers=headers) as r:
            data = b"".join(r.iter_raw())
        elapsed = time.perf_counter() - t0
        r.raise_for_status()
        return 1e3 * elapsed, r, data

    inputs = distinct_ids(tokenizer(url), n, count + 5, seed=n * 7 + len(fmt))
    for i, ids in enumerate(inputs):
        bare = forward(n)
        ms, r, data = ask(ids)
        if i >= 5:  # the first ones warm the connection and the worker threads
            wall.append(ms)
            fwd.append(bare)
            for k, v in server_timing(r.headers["server-timing"]).items():
                stages.setdefault(k, []).append(v)
            size = len(data)
    # the latest inputs again: the same bytes from the answer cache, no job (the path's floor)
    hits = [ask(ids) for ids in inputs[-20:]]
    assert all("cache;desc=hit" in r.headers["server-timing"] for _, r, _ in hits)
    return {"p50_ms": p50(wall), "p95_ms": sorted(wall)[int(0.95 * len(wall))],
            "app_ms": p50(stages["app"]), "forward_ms": p50(fwd),
            "stages": {k: p50(v) for k, v in stages.items()}, "bytes": size,
            "hit_ms": p50([ms for ms, _, _ in hits]), "load": load()}  # fmt: skip


BROWSER_FETCH = """async ([url, body]) => {
  const t0 = performance.now();
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                              body: JSON.stringify(body)});
  const data = await r.arrayBuffer();
  return [performance.now() - t0, r.headers.get("server-timing"),
          r.headers.get("content-encoding"), data.byteLength];
}"""


def in_browser(url: str, count: int, forward: BareForward) -> dict | None:
    """The browser's way, measured in one: Chromium's fetch() of a binary answer (zstd, as
    Chromium asks), timed in the page from the call to the last byte decoded
    (performance.now(), 0.1 ms steps), a bare forward pass timed here before each. None
    without Chromium and Playwright (the browser tests' own)."""
    try:
        from playwright.sync_api import Error as BrowserError
        from playwright.sync_api import sync_playwright

        from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
    except ImportError:
        return None
    if not Path(CHROMIUM).exists():
        return None
    tokenize = tokenizer(url)
    out = {}
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except BrowserError as exc:
            print(f"Chromium did not start, the browser's way is not measured: {exc}")
            return None
        try:
            page = browser.new_page()
            page.goto(f"{url}/healthz")
            for n in (126, 32):
                wall, fwd, stages, encodings = [], [], {}, set()
                inputs = distinct_ids(tokenize, n, count + 5, seed=n * 11)

                def ask(ids: list[int]) -> list:
                    body = {"model": MODEL, "token_ids": ids, "format": "binary"}
                    return page.evaluate(BROWSER_FETCH, [f"{url}/api/v1/attention", body])

                for i, ids in enumerate(inputs):
                    bare = forward(n)
                    ms, timing, encoding, _ = ask(ids)
                    if i >= 5:
                        wall.append(ms)
                        fwd.append(bare)
                        encodings.add(encoding)
                        for k, v in server_timing(timing).items():
                            stages.setdefault(k, []).append(v)
                hits = [ask(ids) for ids in inputs[-20:]]  # the same bytes from the cache
                assert all("cache;desc=hit" in timing for _, timing, _, _ in hits)
                out[f"binary {n}"] = {
                    "p50_ms": p50(wall), "app_ms": p50(stages["app"]), "forward_ms": p50(fwd),
                    "stages": {k: p50(v) for k, v in stages.items()},
                    "encoding": "/".join(sorted(e or "identity" for e in encodings)),
                    "hit_ms": p50([ms for ms, _, _, _ in hits]), "load": load(),
                }  # fmt: skip
        finally:
            browser.close()
    return out


class BareForward:
    """``model.encode`` of a new random input on one torch thread, in this process: the
    yardstick of the goals (ms per call)."""

    def __init__(self) -> None:
        import torch

        from app.config import Settings
        from app.registry import Registry

        torch.set_num_threads(1)
        self.torch = torch
        self.model = Registry.load(Settings().checkpoint_dir, torch.device("cpu")).get(MODEL).model
        self.vocab = self.model.config.vocab_size
        self.g = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            for _ in range(5):
                self(126)

    def __call__(self, n: int) -> float:
        ids = self.torch.randint(5, self.vocab, (1, n), generator=self.g)
        with self.torch.inference_mode():
            t0 = time.perf_counter()
            self.model.encode(ids)
            return 1e3 * (time.perf_counter() - t0)


def bertviz(n: int) -> dict | None:
    pkgs = BENCH / ".pkgs"
    if not pkgs.is_dir():
        return None
    env = {**os.environ, "PYTHONPATH": str(pkgs)}
    out = subprocess.run(
        [sys.executable, str(BENCH / "peer_bertviz.py"), "--tokens", str(n), "--repeat", "15"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- GPT-2 shape
def gpt2_switch(samples: int = 5) -> dict:
    """1024 tokens on GPT-2-small's shape (random weights, imported): the first head of a new
    input against the bare forward pass, then another head of the same input."""
    import torch

    from app.registry import Registry
    from tests.e2e.scale_models import GPT2_SMALL, gpt2_small

    root = Path(tempfile.mkdtemp(prefix="attnviz-gpt2-"))
    gpt2_small(root, 2048)
    server = Server({"ATTNVIZ_CHECKPOINT_DIR": str(root), "ATTNVIZ_MAX_INPUT_TOKENS": "2048"})
    try:
        client = httpx.Client(timeout=600)
        api = f"{server.url}/api/v1/attention"
        first, switch, forward = [], [], []
        torch.set_num_threads(1)
        model = Registry.load([root], torch.device("cpu")).get(GPT2_SMALL).model
        rng = random.Random(0)
        for _ in range(samples):
            ids = [rng.randrange(5, 300) for _ in range(1024)]
            with torch.inference_mode():
                t0 = time.perf_counter()
                model.decode_states(torch.tensor([ids]))
                forward.append(1e3 * (time.perf_counter() - t0))
            base = {"model": GPT2_SMALL, "token_ids": ids, "format": "binary"}
            for k, (layer, head) in enumerate(((0, 0), (3, 5), (7, 2), (11, 3))):
                t0 = time.perf_counter()
                r = client.post(api, json={**base, "layers": [layer], "heads": [head]},
                                headers=BROWSER)  # fmt: skip
                r.raise_for_status()
                (first if k == 0 else switch).append(1e3 * (time.perf_counter() - t0))
        return {"forward_ms": p50(forward), "first_ms": p50(first), "switch_ms": p50(switch),
                "load": load()}  # fmt: skip
    finally:
        server.stop()


# ----------------------------------------------------------------------------- report
def _row(name: str, v: dict) -> str:
    st = v["stages"]
    made = [st.get(k, 0.0) for k in ("wait", "compute", "compress")]
    outside = v["app_ms"] - sum(made)
    size = f"{v['bytes']:,}" if "bytes" in v else "–"
    return (
        f"| {name} | {v['p50_ms']:.2f} | {v['forward_ms']:.2f} | {v['app_ms']:.2f} | "
        + " | ".join(f"{x:.2f}" for x in made)
        + f" | {outside:.2f} | {v['p50_ms'] - v['app_ms']:.2f} | {v['hit_ms']:.2f} | {size} "
        f"| {v['load']} |"
    )


def render(r: dict) -> str:
    ok = lambda good: "✅" if good else "❌"  # noqa: E731
    f16, binary, small = r["http"]["f16 gzip 126"], r["http"]["binary zstd 126"], r["http"]
    browser = r.get("browser") or {}
    lines = [
        "## Where a request's time goes (`bench/bench_request_path.py`)",
        "",
        f"{r['date']}, {r['cpu']}, load average {r['load']} at the start. encoder-mini, every "
        "layer and head, a new input each request; the server is `python -m app.server` with "
        "default settings (2 worker threads × 1 torch thread, answer cache and trace store on).",
        "",
        "| stage (in process, one thread, 126 tokens, median) | ms |",
        "|---|---|",
        *[f"| {name} | {ms:.2f} |" for name, ms in r["inproc"]["stages"].items()],
        "",
        f"Page faults per answer (forward under capture + weights): {r['inproc']['faults']:.0f}. "
        f"Bytes: f16 JSON {r['inproc']['bytes']['f16']:,}, binary {r['inproc']['bytes']['binary']:,}.",
        "",
        "Over HTTP, p50 of each (ms). *forward*: a bare forward pass of a new input timed in "
        "the bench's process before each request; *app*: the server's own time (Server-Timing, "
        "the request's first byte to its answer's); *compute*, *compress*: the worker's job "
        "(forward pass under capture, extraction, serialisation) and its compression; "
        "*outside*: app − wait − compute − compress (parsing, FastAPI, the engine's hand-off); "
        "*client − app*: the client's time less app (the transfer, the client's own parsing); "
        "*cache hit*: the client's time for the same answers asked again (the same bytes from "
        "the answer cache, no job: the floor of the path for this client and these bytes).",
        "",
        "| case | client | forward | app | wait | compute | compress | outside | client − app "
        "| cache hit | bytes | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[_row(k, v) for k, v in small.items()],
        *[_row(f"Chromium fetch, {k}, {v['encoding']}", v) for k, v in browser.items()],
        "",
        "| goal | measured | |",
        "|---|---|---|",
        f"| 126 tokens, f16 + gzip: p50 ≤ forward + 5 ms | {f16['p50_ms']:.2f} ms = forward + "
        f"{f16['p50_ms'] - f16['forward_ms']:.2f} | "
        f"{ok(f16['p50_ms'] <= f16['forward_ms'] + 5)} |",
        f"| 126 tokens, binary + zstd: p50 ≤ forward + 3 ms (httpx) | {binary['p50_ms']:.2f} ms"
        f" = forward + {binary['p50_ms'] - binary['forward_ms']:.2f} (the same bytes from the "
        f"cache: {binary['hit_ms']:.2f} ms) | "
        f"{ok(binary['p50_ms'] <= binary['forward_ms'] + 3)} |",
        *(
            [
                f"| … in Chromium (fetch + arrayBuffer) | {b['p50_ms']:.2f} ms = forward + "
                f"{b['p50_ms'] - b['forward_ms']:.2f} (the server's own: forward + "
                f"{b['app_ms'] - b['forward_ms']:.2f}; the same bytes from the cache: "
                f"{b['hit_ms']:.2f} ms) | {ok(b['p50_ms'] <= b['forward_ms'] + 3)} |"
                for b in [browser["binary 126"]]
            ]
            if browser
            else ["| … in Chromium | not measured (no Chromium/Playwright) | |"]
        ),
        f"| 32 tokens, all heads: p50 ≤ 5 ms | f16 + gzip {small['f16 gzip 32']['p50_ms']:.2f}, "
        f"binary + zstd {small['binary zstd 32']['p50_ms']:.2f} ms | "
        f"{ok(max(small['f16 gzip 32']['p50_ms'], small['binary zstd 32']['p50_ms']) <= 5)} |",
    ]
    peer = r.get("bertviz")
    if peer:
        t_ratio = 1e3 * peer["seconds_median"] / f16["p50_ms"]
        b_ratio = peer["bytes"] / f16["bytes"]
        lines += [
            f"| vs BertViz `head_view` ({1e3 * peer['seconds_median']:.0f} ms, "
            f"{peer['bytes'] / 1e6:.1f} MB, same run): ≥ 12× faster | {t_ratio:.1f}× | "
            f"{ok(t_ratio >= 12)} |",
            f"| … ≥ 40× fewer bytes | {b_ratio:.0f}× | {ok(b_ratio >= 40)} |",
        ]
    else:
        lines.append("| vs BertViz | not measured (run `make bench-env`) | |")
    g = r.get("gpt2")
    if g:
        lines += [
            f"| 1024 tokens, GPT-2-small shape: another head ≤ 300 ms | {g['switch_ms']:.0f} ms "
            f"(load {g['load']}) | {ok(g['switch_ms'] <= 300)} |",
            f"| … first head ≤ forward + 300 ms | {g['first_ms']:.0f} ms = forward "
            f"({g['forward_ms']:.0f}) + {g['first_ms'] - g['forward_ms']:.0f} | "
            f"{ok(g['first_ms'] <= g['forward_ms'] + 300)} |",
        ]
    return "\n".join(lines) + "\n"


def write(section: str) -> None:
    begin, end = "<!-- request-path:begin -->", "<!-- request-path:end -->"
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    body = f"{begin}\n{section.rstrip()}\n{end}\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        RESULTS.write_text(head + body + rest.split(end, 1)[1].lstrip("\n"))
    else:
        RESULTS.write_text(old.rstrip() + "\n\n" + body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--gpt2", action="store_true", help="also 1024 tokens on GPT-2-small's shape")
    ap.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    args = ap.parse_args()

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "unknown")  # fmt: skip
    r: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu,
               "load": load()}  # fmt: skip
    print("in process ...", flush=True)
    # on a worker thread, as the server runs its jobs (glibc gives each thread its own arena)
    with ThreadPoolExecutor(1) as pool:
        r["inproc"] = pool.submit(in_process, 126, args.requests).result()
    print(json.dumps(r["inproc"], indent=1), flush=True)
    forward = BareForward()
    server = Server()
    try:
        r["http"] = {}
        for n in (126, 32):
            for name, fmt, headers in (("f16 gzip", "f16", GZIP), ("binary zstd", "binary",
                                       BROWSER), ("json gzip", "json", GZIP)):  # fmt: skip
                case = over_http(server.url, n, fmt, headers, args.requests, forward)
                r["http"][f"{name} {n}"] = case
                print(f"{name} {n}", case, flush=True)
        print("Chromium ...", flush=True)
        r["browser"] = in_browser(server.url, args.requests, forward)
        print(r["browser"], flush=True)
    finally:
        server.stop()
    r["forward_ms"] = r["http"]["f16 gzip 126"]["forward_ms"]
    print("bertviz ...", flush=True)
    r["bertviz"] = bertviz(126)
    print(r["bertviz"], flush=True)
    if args.gpt2:
        print("GPT-2-small shape at 1024 tokens ...", flush=True)
        r["gpt2"] = gpt2_switch()
        print(r["gpt2"], flush=True)
    text = render(r)
    print(text)
    if not args.no_write:
        write(text)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
