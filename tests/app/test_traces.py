"""The trace store: each input computed once, even when asked for together; a byte budget."""

import threading
import time

import pytest
import torch

from app.traces import StoredInput, TraceStore


def stored(n_floats: int) -> StoredInput:
    return StoredInput(None, {("encoder.self", 0): torch.zeros(1, n_floats)}, None)


def test_concurrent_requests_for_one_input_run_one_forward_pass():
    store, calls = TraceStore(1 << 20), []

    def compute():
        calls.append(1)
        time.sleep(0.2)  # a slow forward pass: the others arrive meanwhile
        return stored(10)

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(store.get_or_compute("k", compute)))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and store.computed == 1 and store.hits == 5
    assert sum(ran for _, ran in results) == 1
    assert len({id(value) for value, _ in results}) == 1


def test_least_recently_used_inputs_leave_first_within_the_budget():
    store = TraceStore(3 * 400)  # three inputs of 100 floats
    for key in "abc":
        store.get_or_compute(key, lambda: stored(100))
    store.get_or_compute("a", lambda: stored(100))  # a is used again
    store.get_or_compute("d", lambda: stored(100))  # b, the least recent, leaves
    assert store.nbytes == 1200 and len(store) == 3
    _, ran = store.get_or_compute("b", lambda: stored(100))
    assert ran
    _, ran = store.get_or_compute("a", lambda: stored(100))
    assert not ran


def test_a_failed_forward_pass_is_not_stored_and_can_be_retried():
    store = TraceStore(1 << 20)

    def broken():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        store.get_or_compute("k", broken)
    value, ran = store.get_or_compute("k", lambda: stored(4))
    assert ran and value.nbytes == 16
