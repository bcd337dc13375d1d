"""The inference engine: forward passes off the event loop, bounded, cached and coalesced.

    request -> cache hit?            answer at once (no forward pass)
            -> identical in flight?  wait for that one (no second forward pass)
            -> queue full?           503 + Retry-After (never a pile-up)
            -> worker thread         torch.inference_mode(), compute + serialise -> bytes

A job's result is the response body itself (JSON bytes, and when large their compressed form
in the encoding the client asked for: zstd, ~3x faster than gzip at a smaller size, else
gzip), so a cache hit costs a dictionary lookup. ``max_concurrency`` worker threads run jobs, each with
``cores / max_concurrency`` torch threads; at most ``max_queue`` more jobs wait for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
import zstandard

from app.config import Settings
from app.errors import ApiError
from app.metrics import Metrics

log = logging.getLogger("attnviz.engine")


#: Content encodings the engine can produce, best first.
ENCODINGS = ("zstd", "gzip")


def compress(body: bytes, encoding: str, level: int) -> bytes:
    """zlib and zstd release the GIL: this runs on a worker thread beside other requests."""
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=level).compress(body)
    c = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: the gzip container
    return c.compress(body) + c.flush()


@dataclass
class Payload:
    """A finished response body: JSON bytes, plus their compressed form when worth it."""

    body: bytes
    encoded: dict[str, bytes] = field(default_factory=dict)  # content encoding -> bytes

    @property
    def nbytes(self) -> int:
        return len(self.body) + sum(len(b) for b in self.encoded.values())


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


class Engine:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.threads_per_worker = settings.threads_per_worker(os.cpu_count() or 1)
        torch.set_num_threads(self.threads_per_worker)
        self.executor = ThreadPoolExecutor(
            max_workers=settings.max_concurrency,
            thread_name_prefix="attnviz-infer",
            initializer=_init_worker,
            initargs=(self.threads_per_worker,),
        )
        self.capacity = settings.max_concurrency + settings.max_queue
        self.cache = LRUCache(settings.cache_size, settings.cache_max_bytes)
        self.inflight: dict[Hashable, asyncio.Task] = {}
        self.pending = 0  # admitted jobs, running or waiting
        self.jobs_run = 0  # jobs executed on a worker (tests count forward passes with it)

    # ------------------------------------------------------------------ admission
    def _admit(self, endpoint: str) -> None:
        if self.pending >= self.capacity:
            self.metrics.rejected.labels(endpoint).inc()
            raise ApiError(
                503,
                f"the server is busy ({self.pending} requests in progress); retry shortly",
                code="overloaded",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        self.pending += 1
        self.metrics.queue_depth.inc()

    def _release(self) -> None:
        self.pending -= 1

    def _work(self, endpoint: str, fn: Callable[[], Any]) -> Any:
        """Runs on a worker thread."""
        self.metrics.queue_depth.dec()
        self.metrics.running.inc()
        self.jobs_run += 1
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                return fn()
        finally:
            self.metrics.inference.labels(endpoint).observe(time.perf_counter() - start)
            self.metrics.running.dec()

    def _compress(self, body: bytes, encoding: str | None) -> Payload:
        if encoding is None or len(body) < self.settings.gzip_min_bytes:
            return Payload(body)
        return Payload(body, {encoding: compress(body, encoding, self.settings.gzip_level)})

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
        """
        if key is not None:
            full_key = (endpoint, key)
            hit = self.cache.get(full_key)
            if hit is not None:
                self.metrics.cache_hits.labels(endpoint).inc()
                if (
                    encoding
                    and encoding not in hit.encoded
                    and len(hit.body) >= (self.settings.gzip_min_bytes)
                ):
                    # first asked by a client of another encoding: add this one, once
                    loop = asyncio.get_running_loop()
                    data = await loop.run_in_executor(
                        self.executor, compress, hit.body, encoding, self.settings.gzip_level
                    )
                    if self.cache.pop(full_key) is hit:  # re-count its bytes
                        hit.encoded[encoding] = data
                        self.cache.put(full_key, hit)
                return hit
            task = self.inflight.get(full_key)
            if task is not None:
                self.metrics.coalesced.labels(endpoint).inc()
                return await self._wait(task)
            self.metrics.cache_misses.labels(endpoint).inc()
        else:
            full_key = None
        self._admit(endpoint)
        task = asyncio.ensure_future(self._execute(endpoint, full_key, fn, encoding))
        if full_key is not None:
            self.inflight[full_key] = task
        return await self._wait(task)

    async def _execute(
        self, endpoint: str, full_key, fn: Callable[[], bytes], encoding: str | None
    ) -> Payload:
        loop = asyncio.get_running_loop()
        try:
            payload = await loop.run_in_executor(
                self.executor, self._work, endpoint, lambda: self._compress(fn(), encoding)
            )
            if full_key is not None:
                self.cache.put(full_key, payload)
                self.metrics.cache_entries.set(len(self.cache))
                self.metrics.cache_bytes.set(self.cache.nbytes)
            return payload
        finally:
            self._release()
            if full_key is not None:
                self.inflight.pop(full_key, None)

    async def _wait(self, task: asyncio.Task) -> Payload:
        # shield: a client that goes away does not cancel the job its twins are waiting for
        try:
            return await asyncio.wait_for(
                asyncio.shield(task), timeout=self.settings.request_timeout_s
            )
        except asyncio.TimeoutError:
            raise ApiError(
                504, "the model took too long to answer; try a shorter input", code="timeout"
            ) from None

    async def stream(self, endpoint: str, make_iter: Callable[[], Iterator[Any]]) -> AsyncIterator:
        """Items of a synchronous iterator run on a worker thread, as soon as each is made.

        Admission happens here, before the first item: call it before sending headers so a
        full queue is still a plain 503. The worker stops early if the consumer goes away.
        """
        self._admit(endpoint)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

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

        future = loop.run_in_executor(self.executor, self._work, endpoint, produce)
        future.add_done_callback(lambda _: self._release())

        async def items() -> AsyncIterator:
            try:
                while True:
                    kind, item = await queue.get()
                    if kind == "end":
                        return
                    if kind == "error":
                        raise item
                    yield item
            finally:
                stop.set()

        return items()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
