"""The inference engine: forward passes off the event loop, bounded, cached and coalesced.

    request -> cache hit?            answer at once (no forward pass)
            -> identical in flight?  wait for that one (no second forward pass)
            -> no room in the queue? 503 + Retry-After (never a pile-up)
            -> worker thread         torch.inference_mode(), compute + serialise -> bytes

A job's result is the response body itself (JSON bytes, or when large only their compressed
form, in the encoding the client asked for: zstd, ~3x faster than gzip at a smaller size,
else gzip), so a cache hit costs a dictionary lookup. ``max_concurrency`` worker threads run jobs,
each with ``cores / max_concurrency`` torch threads.

Overload: the queue is measured in seconds of work, not in jobs. Each endpoint's service time
is a moving average of what its jobs took; a job is admitted while the work queued ahead of
it (per worker) is under ``queue_budget_s``, so a client waits about that long at most,
whatever the mix of cheap and costly requests (``max_queue`` jobs is only a hard cap). A job that
still has not started after ``queue_deadline_s`` is dropped with a 503, and so is a job all
of whose clients went away: a worker never computes an answer nobody will read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import zstandard
from isal import igzip

from app import allocator
from app.config import Settings
from app.errors import ApiError
from app.metrics import Metrics
from models.hooks import stoppable

log = logging.getLogger("attnviz.engine")


#: Content encodings the engine can produce, best first.
ENCODINGS = ("zstd", "gzip")


_zstd = threading.local()  # one compressor per thread and level: a new one's tables page-fault


def compress(body: bytes, encoding: str, level: int) -> bytes:
    """zstd for browsers; gzip (curl, Python's requests) with Intel's ISA-L, ~4x faster than
    zlib at its level 1 for a smaller output on these payloads (ISA-L has levels 0-3). Both
    release the GIL: this runs on a worker thread beside other requests. A zstd compressor is
    kept per thread (it is not thread-safe): a new one per answer costs ~54 page faults and
    0.09 ms of a 0.5 ms compression (516 kB binary answer, measured on a worker thread)."""
    if encoding == "zstd":
        compressors = _zstd.__dict__.setdefault("by_level", {})
        if level not in compressors:
            compressors[level] = zstandard.ZstdCompressor(level=level)
        return compressors[level].compress(body)
    return igzip.compress(body, compresslevel=min(level, 3))


def decompress(data: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompress(data)  # the frame says its size
    return igzip.decompress(data)


@dataclass
class Payload:
    """A finished response body, kept compressed when it was worth compressing: ``plain`` is
    then None and ``body`` makes the bytes again (~0.3 ms for a 500 kB answer) for the rare
    client that takes no encoding. Keeping both, the cache held 2-4x fewer answers in its
    bytes (encoder-mini at 126 tokens: binary 906 -> 390 kB an entry, f16 903 -> 217 kB)."""

    plain: bytes | None
    encoded: dict[str, bytes] = field(default_factory=dict)  # content encoding -> bytes
    #: how this answer was made, in seconds (the response's Server-Timing): "wait" for a
    #: worker, "compute" (the job: forward pass, extraction, serialisation), "compress";
    #: empty when it came from the cache
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def body(self) -> bytes:
        if self.plain is not None:
            return self.plain
        encoding, data = next(iter(self.encoded.items()))
        return decompress(data, encoding)

    @property
    def size(self) -> int:
        """The plain body's length, without making it."""
        if self.plain is not None:
            return len(self.plain)
        encoding, data = next(iter(self.encoded.items()))
        if encoding == "zstd":
            return zstandard.frame_content_size(data)
        return int.from_bytes(data[-4:], "little")  # gzip's ISIZE (answers are < 4 GB)

    @property
    def nbytes(self) -> int:
        return len(self.plain or b"") + sum(len(b) for b in self.encoded.values())


class LRUCache:
    """Recent payloads, bounded in entries and in bytes. Used from the event loop only."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._data: OrderedDict[Hashable, Payload] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> Payload | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def pop(self, key: Hashable) -> Payload | None:
        value = self._data.pop(key, None)
        if value is not None:
            self.nbytes -= value.nbytes
        return value

    def put(self, key: Hashable, value: Payload) -> None:
        if self.max_entries <= 0 or value.nbytes > self.max_bytes:
            return
        old = self._data.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._data[key] = value
        self.nbytes += value.nbytes
        while len(self._data) > self.max_entries or self.nbytes > self.max_bytes:
            _, evicted = self._data.popitem(last=False)
            self.nbytes -= evicted.nbytes


def _init_worker(n_threads: int) -> None:
    torch.set_num_threads(n_threads)


#: The service time assumed for an endpoint until one of its jobs has been measured.
PRIOR_SERVICE_S = 0.05
#: Weight of the newest measurement in an endpoint's moving average of service time.
EWMA_WEIGHT = 0.2


class Dropped(Exception):
    """A queued job whose clients all went away: skipped by the worker, answered to no one."""


@dataclass(eq=False)
class Job:
    """One admitted job, from admission until it finishes or is dropped.

    ``state`` goes queued -> running -> done, or queued -> dropped (its clients left) or
    queued -> expired (not started by ``deadline``). Transitions happen under the engine's
    lock: the event loop drops jobs, worker threads start them.
    """

    endpoint: str
    cost_s: float  # the estimated service time, counted in the queued work until it starts
    deadline: float  # time.monotonic() after which it may no longer start
    admitted: float = field(default_factory=time.perf_counter)
    key: Hashable | None = None  # (endpoint, request key) when coalesced and cached
    waiters: int = 1  # requests awaiting the result (twins of the first join it)
    state: str = "queued"
    task: asyncio.Future | None = None
    # set when every client has gone: a running job stops at its next hook point
    stop: threading.Event = field(default_factory=threading.Event)


class Engine:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.workers = settings.max_concurrency
        self.threads_per_worker = settings.threads_per_worker(os.cpu_count() or 1)
        torch.set_num_threads(self.threads_per_worker)
        self.executor = ThreadPoolExecutor(
            max_workers=self.workers,
            thread_name_prefix="attnviz-infer",
            initializer=_init_worker,
            initargs=(self.threads_per_worker,),
        )
        self.cache = LRUCache(settings.cache_size, settings.cache_max_bytes)
        self.inflight: dict[Hashable, Job] = {}
        self.service_s: dict[str, float] = {}  # endpoint -> moving average of its jobs' time
        self._lock = threading.Lock()  # guards the counts below and every Job.state
        self.queued = 0  # jobs admitted and not started
        self.queued_s = 0.0  # their estimated service time
        self.running = 0  # jobs on a worker thread
        self.jobs_run = 0  # jobs executed on a worker (tests count forward passes with it)
        metrics.queue_wait.set_function(self.queue_wait_s)

    # ------------------------------------------------------------------ admission
    def estimate(self, endpoint: str) -> float:
        """Seconds one job of this endpoint keeps a worker busy (moving average)."""
        return self.service_s.get(endpoint, PRIOR_SERVICE_S)

    def has_room(self) -> bool:
        """A worker is free, or a job admitted now would wait less than the budget: the work
        queued ahead of it, per worker (its own length does not count: a long generation
        may be admitted, it is the wait that is bounded)."""
        waiting = self.running + self.queued - self.workers  # behind a busy worker
        if waiting < 0:
            return True  # a worker is free (whether or not its thread has started yet)
        if waiting >= self.settings.max_queue:
            return False
        return self.queued_s < self.settings.queue_budget_s * self.workers

    def queue_wait_s(self) -> float:
        """How long a job admitted now would wait for a worker, as estimated."""
        return self.queued_s / self.workers

    def _overloaded(self, endpoint: str, message: str) -> ApiError:
        return ApiError(
            503,
            message,
            code="overloaded",
            headers={"Retry-After": str(self.settings.retry_after_s)},
        )

    def check_room(self, endpoint: str) -> None:
        """The 503 a request would get from ``run``, before any work is spent on it (parsing,
        validation, tokenizing): routes reach it through ``app.deps.RunJob``."""
        if not self.has_room():
            self.metrics.rejected.labels(endpoint).inc()
            raise self._overloaded(endpoint, self._busy_message())

    def _busy_message(self) -> str:
        return (
            f"the server is busy ({self.running} requests running, {self.queued} waiting, "
            f"about {self.queue_wait_s():.1f} s of work queued); retry shortly"
        )

    def _admit(self, endpoint: str) -> Job:
        cost = self.estimate(endpoint)
        with self._lock:
            room = self.has_room()
            behind = self.running + self.queued >= self.workers  # no worker free for it
            if room:
                self.queued += 1
                self.queued_s += cost
        if not room:
            self.metrics.rejected.labels(endpoint).inc()
            raise self._overloaded(endpoint, self._busy_message())
        self.metrics.queue_depth.inc()
        # the deadline bounds queueing: a job handed to a free worker has none to fear (its
        # thread may still be slow to start on a busy machine)
        deadline = time.monotonic() + self.settings.queue_deadline_s if behind else math.inf
        return Job(endpoint, cost, deadline)

    def _leave_queue(self, job: Job, state: str) -> bool:
        """queued -> ``state``, once. Call with the lock held."""
        if job.state != "queued":
            return False
        job.state = state
        self.queued -= 1
        self.queued_s -= job.cost_s
        return True

    def _start(self, job: Job) -> None:
        """On the worker thread, before the job runs: dropped and expired jobs go no further."""
        with self._lock:
            if job.state == "dropped":
                raise Dropped
            expired = time.monotonic() > job.deadline
            self._leave_queue(job, "expired" if expired else "running")
            if not expired:
                self.running += 1
                self.jobs_run += 1
        self.metrics.queue_depth.dec()
        if expired:
            self.metrics.dropped.labels(job.endpoint, "expired").inc()
            raise self._overloaded(
                job.endpoint,
                f"the request waited {self.settings.queue_deadline_s:g} s for a worker and "
                "was dropped; the server is busy, retry shortly",
            )

    def _finish(self, job: Job, elapsed: float) -> None:
        with self._lock:
            self.running -= 1
            job.state = "done"
            old = self.service_s.get(job.endpoint)
            self.service_s[job.endpoint] = (
                elapsed if old is None else old + EWMA_WEIGHT * (elapsed - old)
            )

    def _abandon(self, job: Job) -> None:
        """A client of ``job`` went away (disconnected or timed out). The last one to leave a
        job that has not started drops it: no worker will run it; a running one stops at its
        next hook point (its forward pass's memory is freed as it unwinds)."""
        job.waiters -= 1
        if job.waiters > 0:
            return
        job.stop.set()
        if job.key is not None and self.inflight.get(job.key) is job:
            del self.inflight[job.key]  # a twin arriving later starts afresh
        with self._lock:
            dropped = self._leave_queue(job, "dropped")
        if dropped:
            self.metrics.queue_depth.dec()
            self.metrics.dropped.labels(job.endpoint, "disconnected").inc()

    def _work(self, job: Job, fn: Callable[[], Any]) -> Any:
        """Runs on a worker thread."""
        self._start(job)
        self.metrics.running.inc()
        start = time.perf_counter()
        try:
            with torch.inference_mode(), stoppable(job.stop):
                return fn()
        finally:
            elapsed = time.perf_counter() - start
            if elapsed > allocator.TRIM_AFTER_S:
                allocator.release()  # a large job's freed tensors go back to the system
            self._finish(job, elapsed)
            self.metrics.inference.labels(job.endpoint).observe(elapsed)
            self.metrics.running.dec()

    def _compress(self, body: bytes, encoding: str | None) -> Payload:
        if encoding is None or len(body) < self.settings.gzip_min_bytes:
            return Payload(body)
        return Payload(None, {encoding: compress(body, encoding, self.settings.gzip_level)})

    # ------------------------------------------------------------------ jobs
    async def run(
        self,
        endpoint: str,
        key: Hashable | None,
        fn: Callable[[], bytes],
        encoding: str | None = None,
    ) -> Payload:
        """The payload of ``fn()`` (JSON bytes), from the cache, a twin in flight, or a worker.

        ``key`` None: never cached nor coalesced (e.g. sampling without a seed).
        ``encoding``: the content encoding to compress a large body with (one of ENCODINGS).
        Cancelling the caller (its client went away) leaves the job; see ``_abandon``.
        """
        if key is not None:
            full_key = (endpoint, key)
            hit = self.cache.get(full_key)
            if hit is not None:
                self.metrics.cache_hits.labels(endpoint).inc()
                if (
                    encoding
                    and encoding not in hit.encoded
                    and hit.size >= self.settings.gzip_min_bytes
                ):
                    # first asked by a client of another encoding: add this one, once
                    loop = asyncio.get_running_loop()
                    level = self.settings.gzip_level
                    data = await loop.run_in_executor(
                        self.executor, lambda: compress(hit.body, encoding, level)
                    )
                    if self.cache.pop(full_key) is hit:  # re-count its bytes
                        hit.encoded[encoding] = data
                        self.cache.put(full_key, hit)
                return replace(hit, timing={})
            twin = self.inflight.get(full_key)
            if twin is not None:
                self.metrics.coalesced.labels(endpoint).inc()
                twin.waiters += 1
                return await self._wait(twin)
            self.metrics.cache_misses.labels(endpoint).inc()
        else:
            full_key = None
        job = self._admit(endpoint)
        job.key = full_key
        job.task = asyncio.ensure_future(self._execute(job, fn, encoding))
        job.task.add_done_callback(_retrieve)
        if full_key is not None:
            self.inflight[full_key] = job
        return await self._wait(job)

    async def _execute(self, job: Job, fn: Callable[[], bytes], encoding: str | None) -> Payload:
        loop = asyncio.get_running_loop()

        def compute() -> Payload:
            start = time.perf_counter()
            body = fn()
            computed = time.perf_counter()
            payload = self._compress(body, encoding)
            payload.timing = {
                "wait": start - job.admitted,
                "compute": computed - start,
                "compress": time.perf_counter() - computed,
            }
            return payload

        try:
            payload = await loop.run_in_executor(self.executor, self._work, job, compute)
            if job.key is not None:
                self._store(job.key, payload)
            return payload
        finally:
            if job.key is not None and self.inflight.get(job.key) is job:
                del self.inflight[job.key]

    def _store(self, full_key: Hashable, payload: Payload) -> None:
        self.cache.put(full_key, payload)
        self.metrics.cache_entries.set(len(self.cache))
        self.metrics.cache_bytes.set(self.cache.nbytes)

    def cached(self, endpoint: str, key: Hashable) -> Payload | None:
        """The answer ``run(endpoint, key, …)`` would find in the cache, or None (on the loop)."""
        hit = self.cache.get((endpoint, key))
        if hit is not None:
            self.metrics.cache_hits.labels(endpoint).inc()
        return hit

    def remember(self, endpoint: str, key: Hashable, body: bytes) -> None:
        """Cache ``body`` as the answer of ``run(endpoint, key, …)``: a stream's answer, for
        its JSON twin and the next stream (on the loop; compressed when first asked so)."""
        self._store((endpoint, key), Payload(body))

    async def _wait(self, job: Job) -> Payload:
        # shield: a client that goes away does not cancel the job its twins are waiting for
        try:
            return await asyncio.wait_for(
                asyncio.shield(job.task), timeout=self.settings.request_timeout_s
            )
        except asyncio.TimeoutError:
            self._abandon(job)
            raise ApiError(
                504, "the model took too long to answer; try a shorter input", code="timeout"
            ) from None
        except asyncio.CancelledError:
            self._abandon(job)
            raise

    async def stream(self, endpoint: str, make_iter: Callable[[], Iterator[Any]]) -> AsyncIterator:
        """Items of a synchronous iterator run on a worker thread, as soon as each is made.

        Admission happens here, and this returns once a worker has started the job (its first
        item is in): call it before sending headers, so that a full queue, or a job that
        waited past its deadline, is still a plain 503. The worker stops early if the
        consumer goes away (or skips the job if it goes away while it is queued).
        """
        job = self._admit(endpoint)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = job.stop  # also stops a step at its next hook point

        def put(item) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                for item in make_iter():
                    put(("item", item))
                    if stop.is_set():
                        break
            except BaseException as exc:  # handed to the consumer, which reports it
                put(("error", exc))
            finally:
                put(("end", None))

        def run() -> None:
            try:
                self._work(job, produce)
            except (Dropped, ApiError) as exc:  # never started: dropped or expired
                put(("error", exc))

        job.task = loop.run_in_executor(self.executor, run)
        try:
            first = await queue.get()
        except asyncio.CancelledError:
            stop.set()
            self._abandon(job)
            raise
        if first[0] == "error":
            raise first[1]

        async def items() -> AsyncIterator:
            kind, item = first
            try:
                while True:
                    if kind == "end":
                        return
                    if kind == "error":
                        raise item
                    yield item
                    kind, item = await queue.get()
            finally:
                stop.set()

        return items()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _retrieve(task: asyncio.Future) -> None:
    """Mark a job's outcome as seen: every client of a job may have gone before it failed."""
    if not task.cancelled():
        task.exception()
