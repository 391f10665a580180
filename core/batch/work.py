"""One recording's work in a batch: analyse it into its take (resuming what is stored), then write
the requested exports next to the take. A Ray worker runs :func:`process_recording`; so do the
benchmark's in-process baseline and anything else that wants one recording done the batch's way.

The pipeline is the one ``emocap analyze`` drives (core/analysis_options.py builds its config);
each worker process keeps one Pipeline per settings, so its device and model are chosen once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.batch.inputs import Recording
from core.batch.settings import BatchSettings
from core.batch.summary import COMPLETE, FAILED, UNCHANGED, RecordingResult
from core.errors import EmoCapError, NoFaceFoundError
from core.progress_stream import step_of

log = logging.getLogger(__name__)

REPORT_SECONDS = 0.25  # a recording's progress is reported at most this often (and at each new step)

_pipelines: dict = {}


def pipeline_for(settings: BatchSettings):
    """This process's Pipeline for ``settings`` and its notes (built on first use)."""
    from core.analysis_options import pipeline_config
    from core.pipeline import Pipeline

    key = settings.analysis
    if key not in _pipelines:
        config, notes = pipeline_config(settings.analysis)
        _pipelines[key] = (Pipeline(config), notes)
    return _pipelines[key]


class Reporter:
    """Sends a recording's progress to ``send`` (a dict per report), at most every REPORT_SECONDS
    and whenever the step changes: name, step, steps (the expected number), position, total,
    from_take (the result was stored by an earlier attempt and is replayed), pid, host."""

    def __init__(self, name: str, steps: int, send: Callable[[dict], None] | None) -> None:
        self.name, self.steps, self.send = name, steps, send
        self.step, self.last = None, 0.0
        self.base = {"name": name, "pid": os.getpid(), "host": socket.gethostname(), "steps": steps}

    def started(self) -> None:
        if self.send is not None:
            self.send({**self.base, "step": "starting", "position": 0, "total": 0})

    def __call__(self, result) -> None:
        if self.send is None:
            return
        step, now = step_of(result), time.monotonic()
        if step == self.step and now - self.last < REPORT_SECONDS and result.position != result.total:
            return
        self.step, self.last = step, now
        self.send({**self.base, "step": step, "position": int(result.position), "total": int(result.total),
                   "from_take": bool(getattr(result, "from_take", False))})


def process_recording(recording: Recording, settings: BatchSettings, send: Callable[[dict], None] | None = None,
                      cancel: threading.Event | None = None) -> RecordingResult:
    """Analyse ``recording`` into its take and export it; returns its result. A user-facing error
    (EmoCapError: no face, an unreadable file, a take of another recording) becomes a failed
    result with its one-line reason; a cancel (CancelledError) and anything unexpected propagate."""
    from core.errors import CancelledError

    started = time.monotonic()
    base = {"name": recording.name, "source": str(recording.source), "take": str(recording.take)}
    try:
        pipeline, notes = pipeline_for(settings)
        report = Reporter(recording.name, len(pipeline.stage_names()), send)
        report.started()
        before = _manifest_bytes(recording.take)
        summary = pipeline.run(recording.source, recording.take, on_frame=report, cancel=cancel)
        if summary.no_face:
            reason = str(NoFaceFoundError(f"no face found in {recording.source} ({summary.frames} frames); "
                                          "the take records it"))
            return RecordingResult(**base, status=FAILED, frames=summary.frames, seconds=round(time.monotonic() - started, 3),
                                   reason=reason)
        analysed = before is None or before != _manifest_bytes(recording.take)
        exports, reasons = write_exports(recording, settings.exports, cancel)
    except CancelledError:
        raise
    except EmoCapError as err:
        return RecordingResult(**base, status=FAILED, seconds=round(time.monotonic() - started, 3), reason=str(err))
    status = FAILED if reasons else COMPLETE if analysed or exports else UNCHANGED
    return RecordingResult(**base, status=status, frames=summary.frames, frames_with_face=summary.frames_with_face,
                           seconds=round(time.monotonic() - started, 3), exports=exports,
                           reason="; ".join(reasons) or None, warnings=list(summary.warnings) + notes)


def export_path(recording: Recording, fmt: str) -> Path:
    """Where the batch writes ``fmt`` for a recording: ``OUT/<take>_<format><suffix>``."""
    from core.export.registry import SUFFIXES

    return recording.take.with_name(f"{recording.name}_{fmt}{SUFFIXES[fmt]}")


def write_exports(recording: Recording, formats: tuple[str, ...],
                  cancel: threading.Event | None = None) -> tuple[list[str], list[str]]:
    """Write each format that is missing or older than the take; returns the files written and
    the reasons of those that failed (ExportError's line, prefixed by the format)."""
    from core.errors import CancelledError, ExportError
    from core.export import export

    written, reasons = [], []
    newest = _newest_file(recording.take)
    for fmt in formats:
        if cancel is not None and cancel.is_set():
            raise CancelledError("batch cancelled")
        out = export_path(recording, fmt)
        if out.exists() and out.stat().st_mtime >= newest:
            continue  # current: written after the take's last change
        try:
            export(recording.take, fmt, out)
        except ExportError as err:
            reasons.append(f"export {fmt}: {err}")
            continue
        written.append(out.name)
    return written, reasons


def _manifest_bytes(take: Path) -> bytes | None:
    from core.take.manifest import MANIFEST_NAME

    try:
        return (take / MANIFEST_NAME).read_bytes()
    except OSError:
        return None


def _newest_file(folder: Path) -> float:
    """The latest modification time of the visible files in a take (its lock and temporary
    files left out)."""
    times = [p.stat().st_mtime for p in folder.rglob("*")
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return max(times, default=0.0)
