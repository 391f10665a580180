"""Machine-readable progress of ``emocap analyze --progress-jsonl``, for the desktop app.

The app runs analyses in a child process (MediaPipe and torch hold Python's GIL for long
stretches, which would freeze a window running them on a thread) and reads one JSON object per
line on the child's stdout:

    {"event": "frame", "index": 12, "position": 13, "total": 472, "has_face": true,
     "confidence": 0.93, "from_take": false, "landmarks": [x0, y0, ...]}  (478 points, pixels, 0.1 px;
                                                 from_take: stored by an earlier, interrupted run)
    {"event": "fit", "start": 0, "stop": 256, "position": 256, "total": 472}
    {"event": "stage", "step": "emotion fer", "done": 40, "total": 472}
    {"event": "summary", "summary": {...}}                          (ClipSummary.to_dict())

A line "cancel" on the child's stdin, or stdin closing (the app went away), cancels the analysis
between frames; the take keeps what was done.
"""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from core.results import ClipSummary, FitProgress, FrameResult, StageProgress


def event_of(result: FrameResult | FitProgress | StageProgress) -> dict:
    """The JSON-ready event of one pipeline result."""
    if isinstance(result, FrameResult):
        obs = result.observation
        event = {"event": "frame", "index": int(result.index), "position": result.position, "total": result.total,
                 "has_face": bool(obs.has_face), "confidence": round(float(obs.confidence), 4),
                 "from_take": result.from_take}
        if obs.has_face and obs.landmarks is not None:
            event["landmarks"] = np.round(obs.landmarks[:, :2].astype(np.float64), 1).ravel().tolist()
        return event
    if isinstance(result, FitProgress):
        rows = result.params.frame_index
        return {"event": "fit", "start": int(rows[0]) if len(rows) else 0, "stop": int(rows[-1]) + 1 if len(rows) else 0,
                "position": result.position, "total": result.total}
    return {"event": "stage", "step": result.step, "done": result.done, "total": result.total}


def step_of(result: FrameResult | FitProgress | StageProgress) -> str:
    """The name of the step a pipeline result belongs to, as progress displays show it: "observing",
    "fitting", or a later stage's own step ("closures", "emotion: ...")."""
    if isinstance(result, FitProgress):
        return "fitting"
    if isinstance(result, StageProgress):
        return result.step
    return "observing"


def summary_event(summary: ClipSummary) -> dict:
    return {"event": "summary", "summary": summary.to_dict()}


def write_event(event: dict, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(event, separators=(",", ":")) + "\n")
    out.flush()


def cancel_on_stdin(cancel: threading.Event, stream: TextIO | None = None) -> threading.Thread:
    """Set ``cancel`` when a line "cancel" arrives on ``stream`` (stdin) or it closes."""

    def watch() -> None:
        source = stream or sys.stdin
        for line in source:
            if line.strip() == "cancel":
                break
        cancel.set()

    thread = threading.Thread(target=watch, name="cancel-on-stdin", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class FrameEvent:
    """An observed frame. landmarks: 478 x 2 float32 pixels, or None without a face. from_take:
    the frame was stored by an earlier, interrupted run (a resumed analysis replays it)."""

    index: int
    position: int
    total: int
    has_face: bool
    confidence: float
    landmarks: np.ndarray | None
    from_take: bool = False


@dataclass(frozen=True)
class FitEvent:
    """Frames start:stop are fitted (stored as TAKE/fit/<start>.npz)."""

    start: int
    stop: int
    position: int
    total: int


@dataclass(frozen=True)
class StageEvent:
    step: str
    done: int
    total: int


def parse_event(line: str) -> FrameEvent | FitEvent | StageEvent | ClipSummary:
    """The event of one line of ``--progress-jsonl`` output; ValueError when it is not one."""
    data = json.loads(line)
    kind = data.get("event")
    if kind == "frame":
        points = data.get("landmarks")
        landmarks = None if points is None else np.asarray(points, np.float32).reshape(-1, 2)
        return FrameEvent(data["index"], data["position"], data["total"], data["has_face"], data["confidence"], landmarks,
                          bool(data.get("from_take", False)))
    if kind == "fit":
        return FitEvent(data["start"], data["stop"], data["position"], data["total"])
    if kind == "stage":
        return StageEvent(data["step"], data["done"], data["total"])
    if kind == "summary":
        return ClipSummary.from_dict(data["summary"])
    raise ValueError(f"not a progress event: {line[:80]!r}")
