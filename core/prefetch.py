"""Run work ahead on background threads: an iterator (for example video decoding while the face
models work on the previous frame), or a function over items (renders while a network judges the
previous ones)."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()


def prefetch(items: Iterator[T], depth: int = 8) -> Iterator[T]:
    """Yield the items of ``items``, produced up to ``depth`` ahead on a daemon thread.

    An exception raised by ``items`` is raised here, after the items before it. Closing the
    returned generator stops the producer within one item."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_DONE, None))
        except BaseException as err:  # handed to the consumer, which re-raises it
            buffer.put((_DONE, err))

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def map_ahead(function: Callable[[T], R], items: Iterable[T], workers: int = 2, ahead: int = 4) -> Iterator[R]:
    """``function`` of each item, yielded in order, computed on ``workers`` threads up to ``ahead``
    items ahead of the consumer (for work that releases the GIL for much of its time, such as
    numpy-heavy rendering, while the consumer runs a network on the previous result).

    An exception raised by ``function`` is raised here, after the results before it. Closing the
    returned generator cancels what has not started and waits for what has."""
    pending: deque[Future] = deque()
    source = iter(items)
    with ThreadPoolExecutor(max_workers=max(int(workers), 1), thread_name_prefix="map-ahead") as pool:
        try:
            for item in source:
                pending.append(pool.submit(function, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            # nothing more to submit: the threads end as soon as they are idle, not when the
            # consumer is done with the last results (an idle thread that had run torch on two
            # threads kept an OpenMP team that held the consumer's two torch threads to one
            # thread's speed, measured on the refiner's last window)
            pool.shutdown(wait=False)
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
