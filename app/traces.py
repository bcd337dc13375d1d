"""What a forward pass leaves behind, so that another head or layer of the same input costs no
forward pass.

Storing every head's attention is what does not scale: 12 layers × 12 heads × 2048² is 2.4 GB
in float32. What each attention module *reads* is small: its input (T × d_model, after the
norm in pre-norm blocks), plus the encoder's output for cross-attention. With those kept, any
head of any layer is one attention module run again on its stored input — the same
operations on the same tensor, so the same numbers — at a fraction of a forward pass (no
FFN, no other layer), for 12 × 2048 × 768 × 4 B = 75 MB per input on a GPT-2-small shape.

``TraceStore`` keeps them per input, least recently used first out, within a byte budget,
and computes each missing input once even when several requests ask for it together.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch


@dataclass
class StoredInput:
    """One input's forward pass, kept to replay any attention module of it."""

    target_ids: list[int] | None  # seq2seq: the decoder input used (given or the greedy one)
    module_inputs: dict[tuple[str, int], torch.Tensor]  # (site, layer) -> (1, Tq, D)
    memory: torch.Tensor | None  # seq2seq: (1, S, D) the encoder output cross-attention reads
    hidden: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # stack -> (L, T)
    rope_angles: torch.Tensor | None = None  # (T, d_head/2) the angles RoPE rotated by
    kept: dict[str, torch.Tensor] | None = None  # the whole trace, when modules cannot replay
    nbytes: int = 0

    def __post_init__(self) -> None:
        tensors = [
            *self.module_inputs.values(),
            *([self.memory] if self.memory is not None else []),
        ]
        tensors += [t for parts in self.hidden.values() for t in parts.values()]
        tensors += list((self.kept or {}).values())
        self.nbytes = sum(t.numel() * t.element_size() for t in tensors)


class TraceStore:
    """Stored inputs by key (model, ids, target ids), within ``max_bytes``. Thread-safe."""

    def __init__(self, max_bytes: int, min_tokens: int = 0) -> None:
        self.max_bytes = max_bytes
        self.min_tokens = min_tokens  # shorter inputs are recomputed, not kept
        self.nbytes = 0
        self.computed = 0  # forward passes run to fill the store
        self.hits = 0  # requests answered by replaying a stored input
        self._data: OrderedDict[Hashable, StoredInput] = OrderedDict()
        self._pending: dict[Hashable, Future] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def count_forward(self) -> None:
        """A forward pass run without keeping it (a short input), counted with the others."""
        with self._lock:
            self.computed += 1

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], StoredInput]
    ) -> tuple[StoredInput, bool]:
        """(stored input, whether this call computed it). Concurrent callers of one missing
        key wait for the first one's forward pass instead of running their own."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self.hits += 1
                return value, False
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = Future()
                owner = True
            else:
                owner = False
        if not owner:
            value = pending.result()
            with self._lock:
                self.hits += 1
            return value, False
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self.computed += 1
            self._put(key, value)
        pending.set_result(value)
        return value, True

    def _put(self, key: Hashable, value: StoredInput) -> None:
        if value.nbytes > self.max_bytes:
            return  # larger than the whole budget: used once, not kept
        self._data[key] = value
        self.nbytes += value.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._data.popitem(last=False)
            self.nbytes -= evicted.nbytes
