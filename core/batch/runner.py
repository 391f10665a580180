"""Runs a batch's recordings as Ray tasks, one task a recording.

Each task runs core.batch.work.process_recording on a worker with one CPU (Ray then sets
OMP_NUM_THREADS=1 in it, so torch and the other native libraries use one thread a worker). A task
whose worker process dies (killed, out of memory, its node lost) is retried by Ray up to
MAX_RETRIES times; the retry resumes the take from its stored chunks. A recording that fails with
a user-facing error (no face, a corrupt file) returns a failed result and the others go on; an
unexpected exception in a task is reported the same way, with its type.

Workers report their progress to a small Ray actor (:class:`ProgressBoard`); the driver polls it
between waits for finished tasks. At most ``workers`` tasks are submitted at a time (default: the
cluster's CPUs), so a cancel leaves the rest unstarted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from core.batch import cluster
from core.batch.inputs import Recording
from core.batch.progress import BatchState, RecordingProgress
from core.batch.settings import BatchSettings
from core.batch.summary import CANCELLED, FAILED, BatchSummary, RecordingResult
from core.batch.work import process_recording

log = logging.getLogger(__name__)

MAX_RETRIES = 2     # attempts after the first when a worker dies
POLL_SECONDS = 0.2  # how often the driver collects progress while tasks run


class ProgressBoard:
    """A Ray actor (no CPU) the workers send their progress reports to; the driver takes them.
    It also carries the batch's cancel back to the workers, as the answer to each report."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.cancelled = False

    def report(self, event: dict) -> bool:
        """Store ``event``; True once the batch is cancelled."""
        self.events.append(event)
        return self.cancelled

    def cancel(self) -> None:
        self.cancelled = True

    def take(self) -> list[dict]:
        events, self.events = self.events, []
        return events


def _run_task(recording: Recording, settings: BatchSettings, board) -> RecordingResult:
    """The body of a batch task on a worker. A cancel reaches the task only as the board's answer to
    its next progress report (at most REPORT_SECONDS apart), never as Ray's KeyboardInterrupt: an
    interrupt can land inside an import and leave a half-initialised module in the worker process,
    which Ray reuses for later tasks (seen: matplotlib without ``get_data_path`` in the next task)."""
    import ray

    cancel = threading.Event()

    def send(event: dict) -> None:
        if ray.get(board.report.remote(event)):
            cancel.set()

    return process_recording(recording, settings, send=send, cancel=cancel)


class BatchRunner:
    """Runs recordings on the Ray cluster this process is connected to (core.batch.cluster).

    ``on_start(cluster, workers)``, ``on_progress(RecordingProgress, report)`` and
    ``on_result(RecordingResult)`` are called on the calling thread as things happen (``report``:
    the worker's raw report, with its ``pid`` and ``host``); ``cancel`` stops the batch: running
    tasks stop at their next progress report (their takes keep what was done) and the rest are not
    started."""

    def __init__(self, settings: BatchSettings, workers: int | None = None, *,
                 on_start: Callable[[str, int], None] | None = None,
                 on_progress: Callable[[RecordingProgress, dict], None] | None = None,
                 on_result: Callable[[RecordingResult], None] | None = None,
                 cancel: threading.Event | None = None, max_retries: int = MAX_RETRIES,
                 state: BatchState | None = None) -> None:
        self.settings, self.workers = settings, workers
        self.on_start, self.on_progress, self.on_result = on_start, on_progress, on_result
        self.cancel = cancel or threading.Event()
        self.max_retries = max_retries
        self.state = state  # the recordings' state (a display's, shared); one of its own when None

    def run(self, recordings: list[Recording], notes: list[str] | None = None) -> BatchSummary:
        import ray

        started = time.monotonic()
        state = self.state if self.state is not None else BatchState(recordings)
        workers = self.workers or cluster.cluster_cpus()
        where = cluster.describe()
        if self.on_start is not None:
            self.on_start(where, workers)
        board = ray.remote(num_cpus=0)(ProgressBoard).remote()
        task = ray.remote(num_cpus=1, max_retries=self.max_retries)(_run_task)
        queue = list(recordings)
        running: dict = {}  # ObjectRef -> Recording
        try:
            while queue or running:
                if self.cancel.is_set():
                    self._cancel(board, running, queue, state)
                    break
                while queue and len(running) < workers:
                    recording = queue.pop(0)
                    running[task.remote(recording, self.settings, board)] = recording
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                self._drain(board, state)
                for ref in ready:
                    self._finish(state, self._result(ref, running.pop(ref), state))
            self._drain(board, state)
        except KeyboardInterrupt:
            self._cancel(board, running, queue, state)
            raise
        finally:
            ray.kill(board)
        results = [state.results.get(r.name) or _cancelled(r, state) for r in recordings]
        return BatchSummary(results, time.monotonic() - started, where, workers, list(notes or []))

    def _drain(self, board, state: BatchState) -> None:
        import ray

        for event in ray.get(board.take.remote()):
            if event["name"] in state.results:
                continue  # a late report of a finished recording
            progress = state.report(event)
            if self.on_progress is not None:
                self.on_progress(progress, event)

    def _result(self, ref, recording: Recording, state: BatchState) -> RecordingResult:
        """The task's result, or a failed one with the reason Ray gives (a worker that died more
        than MAX_RETRIES times, an unexpected exception)."""
        import ray
        from ray.exceptions import RayTaskError, TaskCancelledError

        from core.errors import CancelledError

        attempts = max(state.attempts[recording.name], 1)
        try:
            result = ray.get(ref)
        except TaskCancelledError:
            return _cancelled(recording, state)
        except RayTaskError as err:
            cause = err.cause if getattr(err, "cause", None) is not None else err
            if isinstance(cause, (KeyboardInterrupt, CancelledError)):
                return _cancelled(recording, state)
            reason = f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
            log.error("recording %s failed unexpectedly: %s", recording.name, err)
            return _failed(recording, f"unexpected error in the worker ({reason})", attempts)
        except ray.exceptions.RayError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return _failed(recording, f"the worker died {attempts} time(s) ({type(err).__name__}: {first})", attempts)
        return RecordingResult(**{**result.to_dict(), "attempts": attempts})

    def _finish(self, state: BatchState, result: RecordingResult) -> None:
        state.finish(result)
        if self.on_result is not None:
            self.on_result(result)

    def _cancel(self, board, running: dict, queue: list, state: BatchState) -> None:
        """Stop the running tasks (the board's answer to their next report; the take keeps its
        stored chunks) and wait for them; the queued recordings stay undone. No Ray interrupt: see
        _run_task."""
        import ray

        ray.get(board.cancel.remote())
        for ref, recording in list(running.items()):
            self._finish(state, self._result(ref, recording, state))
        running.clear()
        queue.clear()


def _failed(recording: Recording, reason: str, attempts: int) -> RecordingResult:
    return RecordingResult(recording.name, str(recording.source), str(recording.take), FAILED, reason=reason,
                           attempts=attempts)


def _cancelled(recording: Recording, state: BatchState) -> RecordingResult:
    return RecordingResult(recording.name, str(recording.source), str(recording.take), CANCELLED,
                           reason="the batch was cancelled; a rerun resumes it",
                           attempts=state.attempts.get(recording.name, 0))
