"""Overload, soak and slow clients, measured from outside as an operator would; writes the
`overload` section of bench/RESULTS.md (between its markers; the rest of the file is kept).

    .venv/bin/python bench/bench_overload.py                  # ~16 minutes (the soak is 10)
    .venv/bin/python bench/bench_overload.py --soak-seconds 60 --workers 1

It starts `python -m app.server` on 127.0.0.1 with the result cache off (every request runs
the model) and, for 1 and 2 worker processes:

1. saturation: `wrk` at 1, 2, 4, 8, 16 connections on POST /api/v1/attention, a new sentence
   every request; the saturated rate is the best goodput (200s per second), the saturating
   concurrency the fewest connections that reach 90 % of it;
2. overload at 4x and 8x that concurrency, and at 32, 64, 128 and 256 connections (the
   issue's figures were taken there): goodput, the p99
   latency of the 200s (timed per request by the Lua script, by X-Request-ID), that every
   other answer is a 503 with Retry-After, and /healthz p99 from a probe opening a new
   connection every 50 ms (as a Kubernetes probe does), all while the load runs.

Then, on 2 workers: a soak (mixed endpoints, 8 connections, RSS of the server processes
sampled every 10 s: the drift from the first quarter to the end), and 200 slow clients (100
idle connections and 100 sending their headers a line a second) beside 4 normal ones: how
long the slow ones are held and what the normal ones see.

`--app-dir` measures another checkout (e.g. the code before issue 14, which has no
app.server) with the same load; `--launch uvicorn` serves it with plain uvicorn
(`uvicorn --factory app.main:create_app`: the app without the server's guards, which
`app.main:app` itself refuses).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- overload:begin -->", "<!-- overload:end -->"

# ----------------------------------------------------------------------------- wrk scripts
#: Per request: a new sentence; its start time kept under its X-Request-ID, which the server
#: echoes, so the latency of each 200 is known. done() prints one JSON line.
LUA_COMMON = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local adj = {"black","white","red","green","small","big","young","happy"}
local noun = {"cat","dog","mouse","bear","man","woman","bird","fish","girl","boy"}
local verb = {"ate","saw","liked","found","bites","sees"}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  n = 0
  started = {}
  codes = {}
  hist = {}          -- latency of the 200s, in ms -> count
  no_retry = 0       -- 503s without Retry-After
end
local function sentence()
  return "the " .. adj[math.random(#adj)] .. " " .. noun[math.random(#noun)] .. " " ..
    verb[math.random(#verb)] .. " the " .. noun[math.random(#noun)] .. " " .. tid .. "x" .. n
end
local function send(method, path, body)
  n = n + 1
  local rid = "b" .. tid .. "-" .. n
  started[rid] = now()
  local headers = {["X-Request-ID"] = rid}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end
function response(status, headers, body)
  local rid = headers["x-request-id"]
  local t0 = rid and started[rid]
  if rid then started[rid] = nil end
  codes[status] = (codes[status] or 0) + 1
  if status == 200 and t0 then
    local ms = math.floor((now() - t0) * 1000)
    hist[ms] = (hist[ms] or 0) + 1
  end
  if status == 503 and not headers["retry-after"] then no_retry = no_retry + 1 end
end
function done(summary, latency, requests)
  local all_codes, all_hist, missing = {}, {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("codes")) do all_codes[k] = (all_codes[k] or 0) + v end
    for k, v in pairs(t:get("hist")) do all_hist[k] = (all_hist[k] or 0) + v end
    missing = missing + t:get("no_retry")
  end
  local function obj(tbl)
    local parts = {}
    for k, v in pairs(tbl) do table.insert(parts, string.format('"%d": %d', k, v)) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  local e = summary.errors
  io.write(string.format('BENCH {"codes": %s, "ok_ms": %s, "no_retry_after": %d, ' ..
    '"duration_s": %f, "socket_errors": %d}\n', obj(all_codes), obj(all_hist), missing,
    summary.duration / 1e6, e.connect + e.read + e.write + e.timeout))
end
"""

LUA_ATTENTION = (
    LUA_COMMON
    + r"""
function request()
  return send("POST", "/api/v1/attention",
    '{"model": "encoder-mini", "text": "' .. sentence() .. '"}')
end
"""
)

#: The soak: what a class does, in these proportions (a stream decodes 16 tokens).
LUA_MIXED = (
    LUA_COMMON
    + r"""
local kinds = {"attention", "attention", "attention", "tokenize", "fill", "classify",
               "generate", "stream", "positions", "translate"}
function request()
  local kind = kinds[math.random(#kinds)]
  local text = sentence()
  if kind == "attention" then
    return send("POST", "/api/v1/attention", '{"model": "encoder-mini", "text": "' .. text .. '"}')
  elseif kind == "tokenize" then
    return send("POST", "/api/v1/tokenize", '{"model": "decoder-mini", "text": "' .. text .. '"}')
  elseif kind == "fill" then
    return send("POST", "/api/v1/fill-mask",
      '{"model": "encoder-mini", "text": "' .. text .. ' [MASK]", "include_attention": true}')
  elseif kind == "classify" then
    return send("POST", "/api/v1/classify", '{"model": "encoder-mini", "text": "' .. text .. '"}')
  elseif kind == "generate" then
    return send("POST", "/api/v1/generate",
      '{"model": "decoder-mini", "text": "' .. text .. '", "max_new_tokens": 16, ' ..
      '"strategy": "sample", "seed": ' .. n .. '}')
  elseif kind == "stream" then
    return send("GET", "/api/v1/generate/stream?model=decoder-mini&max_new_tokens=16&text=" ..
      string.gsub(text, " ", "+"))
  elseif kind == "positions" then
    return send("GET", "/api/v1/models/seq2seq-en-fr/positions?n=32&text=" ..
      string.gsub(text, " ", "+"))
  else
    return send("POST", "/api/v1/attention",
      '{"model": "seq2seq-en-fr", "text": "' .. text .. '", "layers": [2]}')
  end
end
"""
)


# ----------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, app_dir: Path, launch: str, workers: int, env: dict, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # "uvicorn": the app without the server's guards, on purpose, for the comparison (the
        # factory: app.main:app itself refuses to start without them)
        plain = ["-m", "uvicorn", "--factory", "app.main:create_app"]
        head = ["-m", "app.server"] if launch == "app.server" else plain
        self.cmd = [sys.executable, *head, "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", str(workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
        cpus = os.cpu_count() or 1
        threads = max(1, cpus // (workers * 2))  # as deploy/entrypoint.sh divides the cores
        self.env = {
            **os.environ,
            "PYTHONPATH": str(app_dir),
            "ATTNVIZ_DEVICE": "cpu",
            "ATTNVIZ_CACHE_SIZE": "0",
            "ATTNVIZ_CHECKPOINT_DIR": str(app_dir / "checkpoints"),
            "ATTNVIZ_TORCH_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads),
            **env,
        }
        self.app_dir, self.log = app_dir, log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd, cwd=self.app_dir, env=self.env, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if get(self.url + "/readyz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server was not ready in 120 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def pids(self) -> list[int]:
        """The serving processes: the workers under uvicorn's supervisor, else itself."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        children = [int(p) for p in out if Path(f"/proc/{p}/status").exists()]
        return [c for c in children if "python" in Path(f"/proc/{c}/cmdline").read_text()] or [
            self.proc.pid
        ]

    def rss_mb(self) -> float:
        total = 0.0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        return total

    def open_fds(self) -> int:
        return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in self.pids())


def get(url: str, timeout: float = 10) -> tuple[int, float]:
    """(status, seconds) of a GET on a new connection."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    finally:
        conn.close()
    return status, time.perf_counter() - t0


class Probe(threading.Thread):
    """GET /healthz every ``every`` seconds on a new connection, as a liveness probe does."""

    def __init__(self, url: str, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.url, self.every = url + "/healthz", every
        self.times: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, seconds = get(self.url)
                self.times.append(seconds)
                self.failures += status != 200
            except OSError:
                self.failures += 1
            self.stop.wait(self.every)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def hist_pct(hist: dict[int, int], q: float) -> float:
    total = sum(hist.values())
    if not total:
        return float("nan")
    seen = 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= q / 100 * total:
            return float(ms)
    return float(max(hist))


def wrk(url: str, script: str, conns: int, seconds: int, probe: bool = True) -> dict:
    path = Path(tempfile.mkstemp(suffix=".lua")[1])
    path.write_text(script)
    threads = max(1, min(2, conns))
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "30s",
           "-s", str(path), url]  # fmt: skip
    prober = Probe(url) if probe else None
    if prober:
        prober.start()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 90).stdout
    finally:
        if prober:
            prober.stop.set()
            prober.join()
        path.unlink()
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(line[6:])
    codes = {int(k): v for k, v in r["codes"].items()}
    hist = {int(k): v for k, v in r["ok_ms"].items()}
    dur = r["duration_s"]
    res = {
        "conns": conns,
        "seconds": dur,
        "codes": codes,
        "rate": sum(codes.values()) / dur,
        "goodput": codes.get(200, 0) / dur,
        "p50_ms": hist_pct(hist, 50),
        "p99_ms": hist_pct(hist, 99),
        "other": sum(v for k, v in codes.items() if k not in (200, 503)),
        "no_retry_after": r["no_retry_after"],
        "socket_errors": r["socket_errors"],
    }
    if prober:
        res["healthz_p99_ms"] = pct(prober.times, 99) * 1e3
        res["healthz_max_ms"] = max(prober.times, default=float("nan")) * 1e3
        res["healthz_n"] = len(prober.times)
        res["healthz_failures"] = prober.failures
    return res


# ----------------------------------------------------------------------------- measurements
def overload(server: Server, seconds: int, also: list[int], log) -> dict:
    sweep = []
    for conns in (1, 2, 4, 8, 16):
        r = wrk(server.url, LUA_ATTENTION, conns, max(4, seconds // 3), probe=False)
        log(f"  saturation {conns:3d} conns: goodput {r['goodput']:.0f}/s p99 {r['p99_ms']:.0f} ms")
        sweep.append(r)
        time.sleep(1)
    best = max(r["goodput"] for r in sweep)
    c_sat = next(r["conns"] for r in sweep if r["goodput"] >= 0.9 * best)
    runs = []
    for conns in sorted({4 * c_sat, 8 * c_sat, *also}):
        r = wrk(server.url, LUA_ATTENTION, conns, seconds)
        r["x"] = conns / c_sat
        log(
            f"  {conns:3d} conns ({r['x']:.0f}x): goodput {r['goodput']:.0f}/s of "
            f"{r['rate']:.0f}/s, p99 of 200s {r['p99_ms']:.0f} ms, other {r['other']}, "
            f"503 w/o Retry-After {r['no_retry_after']}, healthz p99 {r['healthz_p99_ms']:.1f} ms"
        )
        runs.append(r)
        time.sleep(2)
    return {"sweep": sweep, "saturated": best, "c_sat": c_sat, "runs": runs}


def soak(server: Server, seconds: int, log) -> dict:
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.wait(10):
            samples.append((time.monotonic() - t0, server.rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    rss0 = server.rss_mb()
    sampler.start()
    r = wrk(server.url, LUA_MIXED, 8, seconds)
    stop.set()
    sampler.join()
    quarter = [m for t, m in samples if t >= seconds / 4]
    r.update(
        rss_start=rss0,
        rss_quarter=quarter[0] if quarter else float("nan"),
        rss_end=samples[-1][1] if samples else float("nan"),
        rss_max=max((m for _, m in samples), default=float("nan")),
    )
    r["drift_pct"] = 100 * (r["rss_end"] / r["rss_quarter"] - 1)
    log(
        f"  soak {seconds} s: {sum(r['codes'].values())} requests, codes {r['codes']}, RSS "
        f"{r['rss_start']:.0f} -> {r['rss_quarter']:.0f} (1/4) -> {r['rss_end']:.0f} MB "
        f"({r['drift_pct']:+.1f} %)"
    )
    return r


async def slow_clients(server: Server, n: int, log) -> dict:
    host, port = "127.0.0.1", server.port
    fds0 = server.open_fds()
    closed_after: list[float] = []

    async def idle() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        t0 = time.monotonic()
        await reader.read()  # until the server closes it
        closed_after.append(time.monotonic() - t0)
        writer.close()

    async def trickle() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        t0 = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
        try:
            for i in range(600):  # a header line a second, for up to 10 minutes
                writer.write(f"X-Slow-{i}: x\r\n".encode())
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                        break  # closed without an answer
                    break  # an answer (408)
                except asyncio.TimeoutError:
                    continue
        except ConnectionError:
            pass
        closed_after.append(time.monotonic() - t0)
        writer.close()

    tasks = [asyncio.create_task(idle() if i % 2 else trickle()) for i in range(n)]
    await asyncio.sleep(1)
    fds_held = server.open_fds()
    normal = await asyncio.to_thread(wrk, server.url, LUA_ATTENTION, 4, 10)
    await asyncio.wait_for(asyncio.gather(*tasks), 900)
    await asyncio.sleep(1)
    r = {
        "n": n,
        "fds_before": fds0,
        "fds_held": fds_held,
        "fds_after": server.open_fds(),
        "closed_p50_s": pct(closed_after, 50),
        "closed_max_s": max(closed_after),
        "normal": normal,
    }
    log(
        f"  {n} slow clients: fds {fds0} -> {fds_held} -> {r['fds_after']}, closed after "
        f"{r['closed_p50_s']:.1f} s (max {r['closed_max_s']:.1f} s); beside them 4 normal "
        f"connections: {normal['goodput']:.0f}/s, p99 {normal['p99_ms']:.0f} ms, "
        f"codes {normal['codes']}"
    )
    return r


# ----------------------------------------------------------------------------- report
def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "unknown",
    )  # fmt: skip
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
    }


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def render(res: dict) -> str:
    ok = lambda good: "✅" if good else "❌"  # noqa: E731
    m = res["machine"]
    out = [
        BEGIN,
        "## Overload, soak and slow clients",
        "",
        f"`bench/bench_overload.py`, {m['date']}, {m['cpu']} ({m['cores']} cores shared with "
        "`wrk` and the probe). `python -m app.server` on 127.0.0.1, result cache off "
        "(`ATTNVIZ_CACHE_SIZE=0`), default engine (2 inference threads per process, a queue "
        "of at most 1 s of work, a 1.5 s queue deadline); `POST /api/v1/attention` on "
        "encoder-mini, a new sentence every request. Goodput = 200s per second; p99 is that "
        "of the 200s, timed per request; /healthz p99 from a probe opening a new connection "
        "every 50 ms while the load runs. The load average of the machine is given for each "
        "run: above 2, the server, `wrk` and the probe share the 2 cores with other work, and "
        "the latencies (the probe's most) grow with it.",
        "",
    ]
    for workers, o in res["overload"].items():
        sat, c = o["saturated"], o["c_sat"]
        out += [
            f"**{workers} worker process{'es' if workers > 1 else ''}** (load average "
            f"{o['load']} at the start): saturated at {c} connections, {sat:.0f} req/s.",
            "",
            "| connections | × saturation | goodput req/s | % of saturated | all req/s | p99 of "
            "200s | other than 200/503 | 503 without Retry-After | /healthz p99 | |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in o["runs"]:
            good = (
                r["goodput"] >= 0.8 * sat
                and r["p99_ms"] <= 2000
                and r["other"] == 0
                and r["no_retry_after"] == 0
                and r["healthz_p99_ms"] <= 50
            )
            out.append(
                f"| {r['conns']} | {r['x']:.0f}× | {r['goodput']:.0f} | "
                f"{100 * r['goodput'] / sat:.0f} % | {r['rate']:.0f} | {r['p99_ms']:.0f} ms | "
                f"{r['other']} | {r['no_retry_after']} | {r['healthz_p99_ms']:.1f} ms | "
                f"{ok(good)} |"
            )
        out.append("")
    out += [
        "Targets: goodput ≥ 80 % of the saturated rate, p99 of the 200s ≤ 2 s, every other "
        "answer a 503 with `Retry-After`, /healthz p99 ≤ 50 ms.",
        "",
    ]
    before = res.get("before")
    if before:
        out += [
            f"**Before** ({before['label']}; measured just before, same load, the same machine):",
            "",
            "| workers | connections | goodput req/s | % of saturated | all req/s | p99 of 200s "
            "| /healthz p99 |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for workers, o in before["overload"].items():
            for r in o["runs"]:
                out.append(
                    f"| {workers} | {r['conns']} | {r['goodput']:.0f} | "
                    f"{100 * r['goodput'] / o['saturated']:.0f} % of {o['saturated']:.0f} | "
                    f"{r['rate']:.0f} | {r['p99_ms']:.0f} ms | {r['healthz_p99_ms']:.0f} ms |"
                )
        out.append("")
    s = res.get("soak")
    if s:
        total = sum(s["codes"].values())
        errors = total - s["codes"].get(200, 0)
        out += [
            f"**Soak** ({s['seconds'] / 60:.0f} min, 2 workers, 8 connections, a mix of "
            "attention, tokenize, fill-mask, classify, generate, the SSE stream and positions): "
            f"{total} requests, {errors} not 200 ({s['codes']}), "
            f"{s['socket_errors']} socket errors. RSS of the worker processes "
            f"{s['rss_start']:.0f} MB at the start, {s['rss_quarter']:.0f} MB after a quarter, "
            f"{s['rss_end']:.0f} MB at the end (**{s['drift_pct']:+.1f} %**, max "
            f"{s['rss_max']:.0f} MB).",
            "",
        ]
    sc = res.get("slow")
    if sc:
        n = sc["normal"]
        out += [
            f"**{sc['n']} slow clients** (2 workers; half idle, half sending a header line a "
            f"second; header timeout {res['header_timeout_s']:g} s): the servers' open files went "
            f"{sc['fds_before']} → {sc['fds_held']} while they were connected → "
            f"{sc['fds_after']} after; each was closed {sc['closed_p50_s']:.1f} s after it "
            f"connected (p50; max {sc['closed_max_s']:.1f} s). Beside them, 4 normal "
            f"connections got {n['goodput']:.0f} req/s, p99 {n['p99_ms']:.0f} ms, codes "
            f"{n['codes']}.",
            "",
        ]
    out.append(END)
    return "\n".join(out)


def write(section: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    new = pattern.sub(lambda _: section, old) if pattern.search(old) else f"{old}\n{section}\n"
    RESULTS.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--app-dir", type=Path, default=ROOT)
    ap.add_argument("--launch", choices=["app.server", "uvicorn"], default="app.server")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=int, default=15, help="each overload run")
    ap.add_argument(
        "--conns",
        type=int,
        nargs="*",
        default=[32, 64, 128, 256],
        help="connections to measure besides 4x and 8x the saturating concurrency",
    )
    ap.add_argument("--soak-seconds", type=int, default=600, help="0: no soak")
    ap.add_argument("--slow-clients", type=int, default=200, help="0: none")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    ap.add_argument(
        "--soak-from",
        type=Path,
        help="report the soak and slow clients of an earlier run (its --json) instead",
    )
    ap.add_argument(
        "--before",
        nargs=2,
        metavar=("JSON", "LABEL"),
        help="also report an earlier run (its --json) under this label",
    )
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench_overload needs wrk (apt-get install wrk)")
    header_timeout = 10.0
    res: dict = {"machine": machine(), "overload": {}, "header_timeout_s": header_timeout}
    log_dir = Path(tempfile.mkdtemp(prefix="attnviz-overload-"))

    def log(msg: str) -> None:
        print(msg, flush=True)

    for workers in args.workers:
        log(f"{workers} worker(s), load average {load_average()}")
        with Server(args.app_dir, args.launch, workers, {}, log_dir / f"w{workers}.log") as srv:
            o = overload(srv, args.seconds, args.conns, log)
        o["load"] = load_average()
        res["overload"][workers] = o
    env = {"ATTNVIZ_HEADER_TIMEOUT_S": str(header_timeout)}
    if args.soak_seconds:
        log(f"soak, load average {load_average()}")
        with Server(args.app_dir, args.launch, 2, env, log_dir / "soak.log") as srv:
            res["soak"] = soak(srv, args.soak_seconds, log)
    if args.slow_clients:
        log(f"slow clients, load average {load_average()}")
        with Server(args.app_dir, args.launch, 2, env, log_dir / "slow.log") as srv:
            res["slow"] = asyncio.run(slow_clients(srv, args.slow_clients, log))
    if args.soak_from:
        earlier = json.loads(args.soak_from.read_text())
        for key in ("soak", "slow"):
            if key in earlier:
                res[key] = earlier[key]
                run = res[key] if key == "soak" else res[key]["normal"]
                run["codes"] = {int(k): v for k, v in run["codes"].items()}  # JSON: str keys
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    if args.before:
        res["before"] = {**json.loads(Path(args.before[0]).read_text()), "label": args.before[1]}
    section = render(res)
    print(section)
    if not args.no_write:
        write(section)
        print(f"wrote the overload section of {RESULTS}")


if __name__ == "__main__":
    main()
