"""The result of each recording of a batch and the batch's summary (text table and JSON)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

COMPLETE = "complete"      # analysed (or resumed) and exported in this run
UNCHANGED = "unchanged"    # its take and exports were already complete: nothing was done
FAILED = "failed"          # no face, an unreadable file, a failed export: ``reason`` says which
CANCELLED = "cancelled"    # the batch was cancelled first; a rerun resumes it
PENDING = "pending"
RUNNING = "running"
FINISHED = (COMPLETE, UNCHANGED)


@dataclass(frozen=True)
class RecordingResult:
    """One recording's outcome. seconds: wall time of the attempt that finished (the analysis and
    its exports); exports: the files written in this run (exports already current are not
    rewritten); reason: the one-line error of a failed recording; attempts: how often a worker
    started it (more than 1: a worker died and Ray retried it)."""

    name: str
    source: str
    take: str
    status: str
    frames: int = 0
    frames_with_face: int = 0
    seconds: float = 0.0
    exports: list[str] = field(default_factory=list)
    reason: str | None = None
    attempts: int = 1
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RecordingResult:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class BatchSummary:
    """A batch's outcome: every recording's result (in the order of the recordings), the wall
    time, the Ray cluster it ran on and the number of recordings run at once."""

    results: list[RecordingResult]
    seconds: float
    cluster: str
    workers: int
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[RecordingResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def ok(self) -> bool:
        return all(r.status in FINISHED for r in self.results)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def to_dict(self) -> dict:
        return {"recordings": [r.to_dict() for r in self.results], "seconds": round(self.seconds, 3),
                "cluster": self.cluster, "workers": self.workers, "notes": list(self.notes),
                "counts": {s: self.count(s) for s in (COMPLETE, UNCHANGED, FAILED, CANCELLED)}}

    @classmethod
    def from_dict(cls, data: dict) -> BatchSummary:
        return cls([RecordingResult.from_dict(r) for r in data["recordings"]], data["seconds"], data["cluster"],
                   data["workers"], list(data.get("notes", [])))

    def text(self) -> str:
        """The summary as a table, one recording a line, then the failures' reasons."""
        width = max([len(r.name) for r in self.results] + [9])
        lines = [f"{'recording':<{width}}  {'status':<9}  {'frames':>7}  {'seconds':>8}  exports"]
        for r in self.results:
            exports = ", ".join(r.exports) if r.exports else "-"
            lines.append(f"{r.name:<{width}}  {r.status:<9}  {r.frames:>7}  {r.seconds:>8.1f}  {exports}")
        for r in self.results:
            if r.reason:
                lines.append(f"{r.status} {r.name}: {r.reason}")
        lines += [f"note: {n}" for n in self.notes]
        counts = ", ".join(f"{self.count(s)} {s}" for s in (COMPLETE, UNCHANGED, FAILED, CANCELLED) if self.count(s))
        lines.append(f"{len(self.results)} recordings in {self.seconds:.1f} s on {self.cluster} "
                     f"({self.workers} at once): {counts or 'none'}")
        return "\n".join(lines) + "\n"
