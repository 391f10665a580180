"""The fast recogniser's pass over every face frame of a take, on a thread of its own.

The pass needs only the observations (each frame's crop transform) and the video, not the fit, so
the emotion stage can start it as soon as the observations are complete
(``EmotionStage.start_ahead``) and it runs on the core the fitter leaves idle (the fitter works on
one thread); the emotion stage then takes its result. Started inside the stage, it runs beside the
renders as before. Either way its probabilities are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from core.emotion.types import EMOTIONS
from core.errors import CancelledError
from core.observe.crop_batches import face_crop_batches
from core.results import StageProgress
from core.take.observations import ObservationArrays
from core.video import FrameSource

PROGRESS_SECONDS = 0.25  # how often to report the progress of work on another thread


def fast_scores(source: FrameSource, observations: ObservationArrays, rows: np.ndarray, recogniser, crop_size: int,
                batch: int, check_cancel: Callable[[], None], done: list[int]) -> np.ndarray:
    """N x 8 probabilities of ``recogniser`` on the aligned crops (``crop_size`` pixels) of ``rows``
    (NaN in the others), the video decoded once in order, ``batch`` crops a call; ``done[0]``
    counts the frames judged so far."""
    scores = np.full((len(observations), len(EMOTIONS)), np.nan, np.float32)
    transforms = observations.crop_transform.astype(np.float64)
    for batch_rows, crops in face_crop_batches(source, observations, rows, transforms, crop_size, batch, check_cancel):
        scores[batch_rows] = recogniser.predict(crops).probabilities
        done[0] += len(batch_rows)
    return scores


class FastPass:
    """:func:`fast_scores` of every face frame of ``observations`` by ``recogniser`` (named
    ``name``), started on a thread of its own at construction. ``cancel``: the run's cancel event.
    Work queued after it with :meth:`then` runs on the same thread. :meth:`close` abandons the pass
    if it is still running and waits for the thread."""

    def __init__(self, name: str, recogniser, source: FrameSource, observations: ObservationArrays, crop_size: int,
                 batch: int, cancel: threading.Event | None = None) -> None:
        self.name, self.recogniser = name, recogniser
        self.observations, self.crop_size, self.batch = observations, crop_size, batch
        self.rows = np.nonzero(observations.has_face)[0]
        self.done = [0]
        self._abandon = threading.Event()
        self._cancel = cancel
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emotion-fast")
        self.future: Future = self._pool.submit(fast_scores, source, observations, self.rows, recogniser, crop_size,
                                                batch, self._check_cancel, self.done)

    def _check_cancel(self) -> None:
        if self._abandon.is_set():
            raise CancelledError("the fast recogniser's pass was abandoned")
        if self._cancel is not None and self._cancel.is_set():
            raise CancelledError("emotion analysis cancelled; run again to redo it")

    def serves(self, name: str, observations: ObservationArrays, crop_size: int, batch: int) -> bool:
        """Whether this pass is the one the emotion stage would start: the same recogniser,
        observations, crop side and batch (the batch changes float rounding), and not abandoned."""
        return (not self._abandon.is_set() and (name, crop_size, batch) == (self.name, self.crop_size, self.batch)
                and observations is self.observations)

    def then(self, work: Callable[[], Any]) -> Future:
        """``work`` run on the pass's thread once the pass is done."""
        return self._pool.submit(work)

    def result(self, label: str) -> Generator[StageProgress, None, np.ndarray]:
        """The N x 8 probabilities, yielding StageProgress (``label``) while the pass runs."""
        while True:
            try:
                return self.future.result(timeout=PROGRESS_SECONDS)
            except FutureTimeout:
                yield StageProgress(label, self.done[0], len(self.rows))

    def close(self) -> None:
        """Abandon the pass if it still runs; wait for its thread (and the work queued after it)."""
        self._abandon.set()
        self._pool.shutdown(wait=True)
