"""core/prefetch.py: work run ahead on threads, results in order, errors where they belong."""

import threading
import time

import pytest

from core.prefetch import map_ahead, prefetch


def test_prefetch_yields_every_item_in_order_and_raises_the_producers_error_after_them():
    def items():
        yield from range(5)
        raise ValueError("corrupt frame")

    seen = []
    with pytest.raises(ValueError, match="corrupt frame"):
        for item in prefetch(items(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_map_ahead_keeps_the_order_runs_on_several_threads_and_stays_within_its_window():
    running, most, threads = 0, 0, set()
    lock = threading.Lock()

    def slow_square(x: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.get_ident())
        time.sleep(0.02 if x % 3 else 0.05)  # later items finish first
        with lock:
            running -= 1
        return x * x

    started = []
    results = []
    for value in map_ahead(slow_square, (started.append(x) or x for x in range(12)), workers=2, ahead=3):
        results.append(value)
        assert len(started) <= len(results) + 3 + 1  # never more than the window ahead of the consumer
    assert results == [x * x for x in range(12)]
    assert most == 2 and len(threads) == 2


def test_map_ahead_raises_the_functions_error_after_the_results_before_it():
    def check(x: int) -> int:
        if x == 3:
            raise RuntimeError("render failed")
        return x

    seen = []
    with pytest.raises(RuntimeError, match="render failed"):
        for value in map_ahead(check, range(6), workers=2, ahead=2):
            seen.append(value)
    assert seen == [0, 1, 2]


def test_map_ahead_lets_its_threads_go_once_everything_is_submitted():
    """Idle pool threads must not outlive the submissions while the consumer works on the last
    results (one that had prepared a refiner window slowed torch's threads in the consumer)."""
    def ours() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("map-ahead")]

    results = map_ahead(lambda x: x + 1, range(3), workers=2, ahead=4)
    assert next(results) == 1
    deadline = time.monotonic() + 5
    while ours() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not ours()  # gone, although the generator is still open with two results to give
    assert list(results) == [2, 3]
