"""Import MediaPipe quietly, compatibly and quickly.

mediapipe 0.10.21 calls ``MessageFactory.GetPrototype``, which protobuf 6 removed (protobuf 6 is
what onnx needs, see STACK.md); without the alias below it prints an AttributeError at exit. Its
C++ logging is lowered to errors only. Its drawing helpers, which import matplotlib, are imported
only when used (core/observe/deferred_import.py).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from core.observe.deferred_import import MEDIAPIPE_DRAWING, bind, defer

log = logging.getLogger(__name__)


def import_mediapipe() -> ModuleType:
    """Return the ``mediapipe`` module, importing it once with the fixes above."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from google.protobuf import message_factory

    if not hasattr(message_factory.MessageFactory, "GetPrototype"):
        message_factory.MessageFactory.GetPrototype = (  # type: ignore[attr-defined]
            lambda self, descriptor: message_factory.GetMessageClass(descriptor)
        )
    defer(MEDIAPIPE_DRAWING)
    import mediapipe

    bind(MEDIAPIPE_DRAWING)
    return mediapipe


_silence_lock = threading.Lock()
_silence_depth = 0
_saved_stderr_fd: int | None = None


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send the process's C-level stderr to /dev/null while MediaPipe starts a graph.

    MediaPipe's C++ code logs start-up warnings ("Feedback manager requires ...", "Created
    TensorFlow Lite XNNPACK delegate") straight to file descriptor 2, before absl logging is
    configurable. Reference-counted so that threads starting graphs at the same time restore
    stderr exactly once."""
    global _silence_depth, _saved_stderr_fd
    with _silence_lock:
        if _silence_depth == 0:
            sys.stderr.flush()
            _saved_stderr_fd = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _silence_depth += 1
    try:
        yield
    finally:
        with _silence_lock:
            _silence_depth -= 1
            if _silence_depth == 0 and _saved_stderr_fd is not None:
                os.dup2(_saved_stderr_fd, 2)
                os.close(_saved_stderr_fd)
                _saved_stderr_fd = None


class QuietSolution:
    """A MediaPipe solution whose graph start-ups (creation, reset, first frame after them) run with
    native stderr silenced.

    A reset closes the graph and starts a new run of it; now and then (seen once in a full CI run,
    not reproduced in three runs of the same tests) MediaPipe 0.10.21 refuses the new run with
    "SetNonDefaultExecutor must not be called after the scheduler has started". The solution is
    then built again: a new graph starts from the same state a reset gives."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        with native_stderr_silenced():
            self._solution = factory()
            self._wait_for_graph()
        self._fresh = True

    def _wait_for_graph(self) -> None:
        # Calculators open (and log) on the graph's own threads after the run starts.
        graph = getattr(self._solution, "_graph", None)
        if graph is not None:
            graph.wait_until_idle()

    def process(self, image: Any) -> Any:
        if not self._fresh:
            return self._solution.process(image)
        with native_stderr_silenced():
            result = self._solution.process(image)
        self._fresh = False
        return result

    def reset(self) -> None:
        with native_stderr_silenced():
            try:
                self._solution.reset()
            except RuntimeError as err:
                log.warning("MediaPipe refused to restart its graph (%s); building it again", str(err).strip("; "))
                self._solution = self._factory()
            self._wait_for_graph()
        self._fresh = True

    def close(self) -> None:
        self._solution.close()
