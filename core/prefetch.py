"""Run an iterator ahead on a background thread (for example video decoding while the face models
work on the previous frame)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
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
