"""One contract for every stage of an analysis (observe, fit or encode, refine, emotion).

A :class:`Stage` says which settings produce its result (``settings``), reads its record in the
take (``record``: settings, status, summary; core/take/records.py), and from those whether it is
current (``is_current``: complete for exactly these settings). ``run`` is the same for all:

- current: ``replay`` streams what is stored (the observed frames, the fitted windows) and nothing
  is computed;
- otherwise ``start`` resets the stage when its settings changed, then ``resume`` computes what
  is not stored yet, reusing what is (chunks, windows: the ``finished`` / ``on_window`` pattern of
  core.fit.stage.fit_clip and core.microexpr.stage.refine_clip), storing as it goes and marking
  the record complete at the end;
- a cancel (checked between frames, windows or steps) marks a running record cancelled and
  raises CancelledError; a rerun resumes.

Every stage yields its progress (FrameResult, FitProgress, StageProgress) as it works. The stages
of one run share a :class:`RunContext`, which loads the face model and the observations once.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from core.errors import CancelledError
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.model import FaceModel
from core.memory import release_freed_memory
from core.results import FitProgress, FrameResult, StageProgress
from core.take import ObservationArrays, Take
from core.take.records import CANCELLED, RUNNING, StageRecord
from core.video import FrameSource

Progress = FrameResult | FitProgress | StageProgress
T = TypeVar("T")


@dataclass
class RunContext:
    """What the stages of one run share: the take (its writer lock held), the recording, the
    compute device, the face model choice and the cancel event; the face model and the
    observations are loaded on first use and kept for the rest of the run."""

    take: Take
    source: FrameSource
    device: str
    model_choice: ModelChoice | None
    cancel: threading.Event | None = None
    _model: FaceModel | None = field(default=None, repr=False)
    _observations: ObservationArrays | None = field(default=None, repr=False)

    @property
    def model(self) -> FaceModel:
        if self._model is None:
            self._model = load_face_model(self.model_choice)
        return self._model

    @property
    def observations(self) -> ObservationArrays:
        """Every observed frame (read once the observation stage is complete); the landmarks are
        read from the take when indexed (core/take/landmarks.py), so a long clip's do not stay in
        memory for the whole run."""
        if self._observations is None:
            self._observations = self.take.load_observations(landmarks_on_demand=True)
        return self._observations



class Stage(ABC):
    """One stage of an analysis; see the module docstring."""

    name: str

    @abstractmethod
    def settings(self, ctx: RunContext) -> dict[str, Any]:
        """The JSON form of the settings that change this stage's result."""

    @abstractmethod
    def record(self, take: Take) -> StageRecord | None:
        """The take's record of this stage (None: it never ran)."""

    def is_current(self, ctx: RunContext) -> bool:
        """Whether the stored result is complete for this run's settings."""
        record = self.record(ctx.take)
        return record is not None and record.is_current(self.settings(ctx))

    def replay(self, ctx: RunContext) -> Generator[Progress, None, None]:
        """Stream what a current stage stores (default: nothing)."""
        yield from ()

    def start_ahead(self, ctx: RunContext) -> None:
        """Start, on a thread, work of this stage that needs only the observations, so that it
        runs beside the stages before this one (default: none). The pipeline calls it once the
        observations are complete, and :meth:`stop_ahead` when the run ends, however it ends."""

    def stop_ahead(self) -> None:
        """Abandon what :meth:`start_ahead` started, if the stage has not taken it over, and wait
        for its thread."""

    @abstractmethod
    def start(self, ctx: RunContext, settings: dict[str, Any]) -> None:
        """Reset the stored result when it was made with other settings, and record the stage as
        running with ``settings`` (saved)."""

    @abstractmethod
    def resume(self, ctx: RunContext, settings: dict[str, Any]) -> Generator[Progress, None, None]:
        """Compute and store what is missing, reusing what is stored; mark the record complete."""

    def run(self, ctx: RunContext) -> Generator[Progress, None, None]:
        """The stage's work under the contract (module docstring)."""
        if self.is_current(ctx):
            yield from self.replay(ctx)
            return
        settings = self.settings(ctx)
        self.start(ctx, settings)
        try:
            yield from self.resume(ctx, settings)
        except CancelledError:
            record = self.record(ctx.take)
            if record is not None and record.status == RUNNING:
                record.status = CANCELLED
                ctx.take.save_manifest()
            raise
        finally:
            release_freed_memory()  # what the stage freed, before the next one allocates (core/memory.py)


def json_ready(value: Any) -> Any:
    """Tuples to lists, recursively, so settings compare equal after a JSON round trip."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def drain(stream: Generator[Any, None, T]) -> T:
    """Run a generator to its end, discarding what it yields; returns its return value."""
    while True:
        try:
            next(stream)
        except StopIteration as stop:
            return stop.value
