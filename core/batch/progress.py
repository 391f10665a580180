"""A batch's progress: the state of each recording, one overall bar on stderr, and a
machine-readable stream of JSON lines (``emocap batch --progress-jsonl``) for the desktop app.

The stream, one object per line on stdout:

    {"event": "batch", "recordings": [{"name": ..., "source": ..., "take": ...}, ...],
     "cluster": "local Ray (2 CPUs)", "workers": 2}
    {"event": "recording", "name": ..., "step": "fitting", "position": 40, "total": 72,
     "fraction": 0.55, "attempt": 1}                        (fraction: of the recording's work)
    {"event": "result", "result": {...}}                    (RecordingResult.to_dict())
    {"event": "summary", "summary": {...}}                  (BatchSummary.to_dict())

A line "cancel" on stdin, or stdin closing, cancels the batch (core/progress_stream.py); every
take keeps what was done and a rerun resumes.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from core.batch.inputs import Recording
from core.batch.summary import FINISHED, BatchSummary, RecordingResult


@dataclass(frozen=True)
class BatchStarted:
    """The recordings of a batch (name, source, take), where it runs and how many at once."""

    recordings: list[dict]
    cluster: str
    workers: int


@dataclass(frozen=True)
class RecordingProgress:
    """A running recording: its current step, ``position`` of ``total`` in it, an estimate of
    the ``fraction`` of its work done, and which attempt this is (2 after a worker died)."""

    name: str
    step: str
    position: int
    total: int
    fraction: float
    attempt: int


class BatchState:
    """Each recording's progress (from the workers' reports) and result; what the bar and the
    stream show. ``frames_known``: frames of the recordings whose length is known so far."""

    def __init__(self, recordings: list[Recording]) -> None:
        self.recordings = recordings
        self.started = time.monotonic()
        self.fraction = {r.name: 0.0 for r in recordings}
        self.frames = {r.name: 0 for r in recordings}
        self.steps: dict[str, list[str]] = {r.name: [] for r in recordings}
        self.attempts = {r.name: 0 for r in recordings}
        self.results: dict[str, RecordingResult] = {}

    def report(self, event: dict) -> RecordingProgress:
        """Take in a worker's report (core.batch.work.Reporter)."""
        name, step = event["name"], event["step"]
        seen = self.steps[name]
        if step == "starting":
            self.attempts[name] += 1
            seen.clear()
        elif not seen or seen[-1] != step:
            seen.append(step)
        if step == "observing" and event["total"]:
            self.frames[name] = event["total"]
        part = event["position"] / event["total"] if event["total"] else 0.0
        expected = max(int(event.get("steps", 1)), len(seen), 1)
        done = max(len(seen) - 1, 0)
        self.fraction[name] = min(0.99, (done + part) / expected)
        return RecordingProgress(name, step, event["position"], event["total"], round(self.fraction[name], 4),
                                 max(self.attempts[name], 1))

    def finish(self, result: RecordingResult) -> None:
        self.results[result.name] = result
        self.fraction[result.name] = 1.0
        if result.frames:
            self.frames[result.name] = result.frames

    @property
    def done(self) -> float:
        """Recordings done, counting the running ones by their fraction."""
        return sum(self.fraction.values())

    def frames_done(self) -> int:
        return int(sum(self.frames[n] * f for n, f in self.fraction.items()))


class Bar:
    """The overall bar on stderr: recordings done (the running ones in part), frames done of
    those known, throughput in frames a second, and the time left (tqdm's estimate)."""

    def __init__(self, state: BatchState, stream: TextIO | None = None) -> None:
        from tqdm import tqdm

        self.state = state
        self.bar = tqdm(total=len(state.recordings), unit="rec", desc="batch", file=stream or sys.stderr,
                        mininterval=0.5, bar_format="{l_bar}{bar}| {n:.1f}/{total} recordings "
                                                    "[{elapsed}<{remaining}{postfix}]")

    def refresh(self) -> None:
        state = self.state
        seconds = max(time.monotonic() - state.started, 1e-6)
        frames = state.frames_done()
        failed = sum(r.status not in FINISHED for r in state.results.values())
        self.bar.n = round(state.done, 2)
        self.bar.set_postfix_str(f"{frames}/{sum(state.frames.values())} frames, {frames / seconds:.1f} frame/s"
                                 + (f", {failed} failed" if failed else ""), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.refresh()
        self.bar.close()


def write_line(event: dict, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(event, separators=(",", ":")) + "\n")
    out.flush()


def started_event(recordings: list[Recording], cluster: str, workers: int) -> dict:
    return {"event": "batch", "recordings": [{"name": r.name, "source": str(r.source), "take": str(r.take)}
                                            for r in recordings], "cluster": cluster, "workers": workers}


def progress_event(progress: RecordingProgress) -> dict:
    return {"event": "recording", "name": progress.name, "step": progress.step, "position": progress.position,
            "total": progress.total, "fraction": progress.fraction, "attempt": progress.attempt}


def result_event(result: RecordingResult) -> dict:
    return {"event": "result", "result": result.to_dict()}


def summary_event(summary: BatchSummary) -> dict:
    return {"event": "summary", "summary": summary.to_dict()}


def parse_batch_event(line: str) -> BatchStarted | RecordingProgress | RecordingResult | BatchSummary:
    """The event of one line of ``emocap batch --progress-jsonl``; ValueError when it is not one."""
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError(f"not a batch event: {line[:80]!r}")
    kind = data.get("event")
    if kind == "batch":
        return BatchStarted(data["recordings"], data["cluster"], data["workers"])
    if kind == "recording":
        return RecordingProgress(data["name"], data["step"], data["position"], data["total"], data["fraction"],
                                 data["attempt"])
    if kind == "result":
        return RecordingResult.from_dict(data["result"])
    if kind == "summary":
        return BatchSummary.from_dict(data["summary"])
    raise ValueError(f"not a batch event: {line[:80]!r}")
