"""Background jobs: analysis, a batch of recordings, opening a take, export. Each runs as a superqt generator worker on
Qt's thread pool; what it yields reaches the main thread through signals, in batches (at most
about ten a second) so that a fast analysis never floods the event loop. A cancel sets a
``threading.Event`` that the pipeline checks between frames. Heavy modules (torch, the pipeline)
are imported here, inside the workers, so the window opens without waiting for them."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from superqt.utils import GeneratorWorker

log = logging.getLogger(__name__)

BATCH_SECONDS = 0.1
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHILD_NICENESS = 10


@dataclass(frozen=True)
class FittedWindow:
    """A fitted window of frames as the analysis stores it, read in the worker so that the
    window's thread does no file work: rows N (frame indices), expression N x E, the expression
    names, and the progress of the fitting stage."""

    start: int
    position: int
    total: int
    rows: np.ndarray
    expression: np.ndarray
    names: list[str]


def read_fitted_window(take_dir: Path, event) -> FittedWindow | None:
    """The window a core.progress_stream.FitEvent announces, or None when it cannot be read."""
    from core.errors import EmoCapError
    from core.take import Take

    try:
        take = Take.open(Path(take_dir))
        window = take.read_fit_window(event.start)
    except EmoCapError as err:  # a damaged or replaced file
        log.warning("fitted window %d is not readable: %s", event.start, err)
        return None
    names = [] if take.manifest.fit is None else list(take.manifest.fit.expression_names)
    return FittedWindow(event.start, event.position, event.total, window.frame_index.astype(np.int64),
                        window.expression, names)


class Job:
    """A generator function run in a worker thread with a cancel event.

    ``on_batch(list)`` gets the yielded items in batches on the main thread, ``on_done(value)``
    the generator's return value, ``on_error(exception)`` any exception (a cancel arrives as
    core.errors.CancelledError)."""

    def __init__(self, name: str, function: Callable[..., Generator], *args,
                 on_batch: Callable[[list], None] | None = None, on_done: Callable | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.name = name
        self.cancel_event = threading.Event()
        self.worker = GeneratorWorker(_batched, function, args, self.cancel_event)
        self.running = False
        self._on_done, self._on_error = on_done, on_error
        # One slot each, which stops the job and then calls the caller's: a signal emitted in the
        # worker thread posts one event per connected slot, and the window's thread can run between
        # two of them, so with separate slots "not running" could be seen before on_done ran.
        self.worker.returned.connect(self._returned)
        self.worker.errored.connect(self._errored)
        self.worker.finished.connect(self._stopped)
        if on_batch is not None:
            self.worker.yielded.connect(on_batch)

    def start(self) -> None:
        self.running = True
        self.worker.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def _returned(self, value) -> None:
        self.running = False
        if self._on_done is not None:
            self._on_done(value)

    def _errored(self, err: BaseException) -> None:
        self.running = False
        if self._on_error is not None:
            self._on_error(err)

    def _stopped(self) -> None:
        self.running = False


def _batched(function: Callable[..., Generator], args: tuple, cancel: threading.Event) -> Generator[list, None, object]:
    stream = function(*args, cancel=cancel)
    batch: list = []
    last = time.monotonic()
    while True:
        try:
            item = next(stream)
        except StopIteration as stop:
            if batch:
                yield batch
            return stop.value
        batch.append(item)
        now = time.monotonic()
        if now - last >= BATCH_SECONDS:
            yield batch
            batch, last = [], now


# -- the jobs ----------------------------------------------------------------------------------
def analysis_job(input_path: Path, take_dir: Path, options: list[str], *, cancel: threading.Event):
    """``emocap analyze INPUT --out TAKE --progress-jsonl OPTIONS`` in a child process, driven from
    a worker thread: yields the child's progress events (core.progress_stream; fitted windows as
    FittedWindow, already read from the take), returns the ClipSummary. In a child because MediaPipe and torch hold the GIL for long stretches, which
    would freeze the window; a cancel is passed on through the child's stdin."""
    from core.errors import CancelledError, EmoCapError
    from core.progress_stream import FitEvent, parse_event
    from core.results import ClipSummary

    child, errors = _progress_child(["analyze", str(input_path), "--out", str(take_dir), "--progress-jsonl", *options],
                                    cancel)
    summary = None
    for line in child.stdout:
        try:
            event = parse_event(line)
        except ValueError:
            log.warning("analysis printed %r", line[:120])
            continue
        if isinstance(event, ClipSummary):
            summary = event
        elif isinstance(event, FitEvent):
            window = read_fitted_window(take_dir, event)
            if window is not None:
                yield window
        else:
            yield event
    code = child.wait()
    cancel.set()  # ends the cancel forwarder
    reason = _reason(errors)
    if code == CancelledError.exit_code:
        raise CancelledError(reason or "analysis cancelled; a new run resumes where it stopped")
    if code != 0 or summary is None:
        raise EmoCapError(reason or _stopped("the analysis", code, errors))
    return summary


def batch_job(inputs: list[Path], out: Path, options: list[str], *, cancel: threading.Event):
    """``emocap batch INPUTS --out OUT --progress-jsonl OPTIONS`` in a child process (low priority),
    driven from a worker thread as analysis_job drives ``analyze``: yields the batch's events
    (core.batch.progress: BatchStarted, RecordingProgress, RecordingResult), returns the
    BatchSummary (also when some recordings failed: their reasons are in it). A cancel is passed
    on through the child's stdin; the child stops its Ray tasks and every take keeps what was done."""
    from core.batch.progress import parse_batch_event
    from core.batch.summary import BatchSummary
    from core.errors import BatchFailedError, CancelledError, EmoCapError

    child, errors = _progress_child(["batch", *(str(p) for p in inputs), "--out", str(out), "--progress-jsonl",
                                     *options], cancel)
    summary = None
    for line in child.stdout:
        try:
            event = parse_batch_event(line)
        except (ValueError, KeyError):
            log.warning("batch printed %r", line[:120])
            continue
        if isinstance(event, BatchSummary):
            summary = event
        else:
            yield event
    code = child.wait()
    cancelled = cancel.is_set()
    cancel.set()  # ends the cancel forwarder
    reason = _reason(errors)
    if code == CancelledError.exit_code or (cancelled and summary is None):
        raise CancelledError(reason or "batch cancelled; running it again resumes it")
    if summary is None or code not in (0, BatchFailedError.exit_code, CancelledError.exit_code):
        raise EmoCapError(reason or _stopped("the batch", code, errors))
    return summary


def train_actor_job(take_dir: Path, epochs: int | None = None, *, cancel: threading.Event):
    """``emocap train-actor TAKE --json`` in a child process (low priority); yields its progress
    lines ("epoch 3: loss ..."), returns its report (dict). A cancel interrupts the child, whose
    training resumes from its last epoch next time."""
    command = ["train-actor", str(take_dir), "--json"] + (["--epochs", str(epochs)] if epochs is not None else [])
    return (yield from _json_command_job(
        command, cancel, progress_prefix="epoch ", keep_prefix=True,
        cancelled="training cancelled; training again resumes from the last finished epoch", stopped="training stopped"))


def calibrate_job(take_dir: Path, out: Path, *, cancel: threading.Event):
    """``emocap calibrate TAKE --out OUT --json`` in a child process (low priority); yields its
    rounds ("performer round 1: ..."), returns its report (dict). A cancel interrupts it; nothing is
    written until it finishes."""
    command = ["-v", "calibrate", str(take_dir), "--out", str(out), "--json"]
    return (yield from _json_command_job(command, cancel, progress_prefix="INFO core.performer.calibrate: ",
                                         keep_prefix=False, cancelled="calibration cancelled; no profile was written",
                                         stopped="calibration stopped"))


def _json_command_job(arguments: list[str], cancel: threading.Event, *, progress_prefix: str, keep_prefix: bool,
                      cancelled: str, stopped: str):
    """``emocap ARGUMENTS`` (which ends by printing one JSON object) in a child process: yields its
    stderr lines that start with ``progress_prefix`` (with it when ``keep_prefix``), returns the
    JSON object. A cancel sends the child SIGINT."""
    import json
    import signal

    from core.errors import CancelledError, EmoCapError

    child = subprocess.Popen(child_command(arguments), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, bufsize=1, cwd=PROJECT_ROOT)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(child.stdout), daemon=True).start()
    threading.Thread(target=lambda: cancel.wait() or (child.poll() is None and child.send_signal(signal.SIGINT)),
                     daemon=True).start()
    errors = []
    for line in child.stderr:
        errors.append(line)
        if line.startswith(progress_prefix):
            yield (line if keep_prefix else line[len(progress_prefix):]).strip()
    code = child.wait()
    cancel.set()
    if code == CancelledError.exit_code:
        raise CancelledError(cancelled)
    if code != 0:
        raise EmoCapError(_reason(errors) or f"{stopped} (exit {code})")
    return json.loads(output[-1])


def _progress_child(arguments: list[str], cancel: threading.Event) -> tuple[subprocess.Popen, list[str]]:
    """``emocap ARGUMENTS`` started in a child process at a lower priority (it keeps the window
    responsive on machines with few cores), its stdout to read line by line; returns the child and
    the list its stderr lines are collected into. A cancel is passed on through its stdin."""
    command = child_command(arguments)
    log.info("running %s", " ".join(command))
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, bufsize=1, cwd=PROJECT_ROOT)
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True).start()
    threading.Thread(target=_forward_cancel, args=(cancel, child), daemon=True).start()
    return child, errors


def _reason(errors: list[str]) -> str | None:
    """The one-line reason a child ``emocap`` gave (its last "emocap: ..." stderr line), if any."""
    return next((e.strip()[len("emocap: "):] for e in reversed(errors) if e.startswith("emocap: ")), None)


def _stopped(what: str, code: int, errors: list[str]) -> str:
    """'WHAT stopped (exit CODE): its last stderr line', for a child that gave no reason."""
    tail = "".join(errors[-20:]).strip()
    return f"{what} stopped (exit {code}): {tail.splitlines()[-1] if tail else 'no message'}"


def child_command(arguments: list[str]) -> list[str]:
    """``emocap ARGUMENTS`` as the app runs it: this interpreter, at CHILD_NICENESS lower a
    priority, which the child sets itself (``--nice``): a ``preexec_fn`` would make the app fork
    instead of vfork, and a fork of a process whose other threads hold locks (torch's, OpenMP's,
    OpenBLAS's at-fork handlers; the import lock) can leave the child stuck before it starts, its
    job never ending."""
    return [sys.executable, "-m", "core.cli", "--nice", str(CHILD_NICENESS), *arguments]


def _forward_cancel(cancel: threading.Event, child: subprocess.Popen) -> None:
    cancel.wait()
    if child.poll() is None:
        try:
            child.stdin.write("cancel\n")
            child.stdin.flush()
        except OSError:
            pass


def engine_job(*, cancel: threading.Event):
    """Import the heavy modules (torch and what views and exports need) once, early. An import
    holds Python's lock while libtorch initialises (about 1.5 s here), so this runs right after
    the first frame is shown instead of in the middle of an analysis."""
    started = time.monotonic()
    import core.export  # noqa: F401
    import core.take_view  # noqa: F401

    yield "ready"
    return time.monotonic() - started


def open_take_job(take_dir: Path, source_path: Path | None = None, *, cancel: threading.Event):
    """Load a take for viewing (the face model, fit, edits, timelines); returns a TakeView."""
    from core.take_view import open_take_view

    yield "loading"
    return open_take_view(take_dir, source_path)


def export_job(take_dir: Path, fmt: str, out: Path, frame_range, edits, retarget=None, reduce=None, curves=None, *,
               cancel: threading.Event):
    """Export a take in a worker; returns the ExportResult. Exports write atomically, so a cancel
    that arrives while the format is being written removes the finished files afterwards.
    ``retarget``, ``reduce``, ``curves``: as core.export.export."""
    from core.errors import CancelledError
    from core.export import export
    from core.export.base import remove_exported

    yield "exporting"
    result = export(take_dir, fmt, out, frame_range, edits=edits, retarget=retarget, reduce=reduce, curves=curves)
    if cancel.is_set():
        remove_exported(result, out)
        raise CancelledError(f"export to {out} cancelled; nothing was kept")
    return result
