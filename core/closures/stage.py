"""The closures stage of an analysis: after the fit (or the encoder), find the blinks and lip
contacts in the observations (core/closures/detect.py) and store the floors that make the fitted
curves reach them (core/closures/enforce.py) as TAKE/fit/closures.npz, recorded in take.json
(``closures``: settings, status, summary). ``Take.read_fit`` applies the floors, so exports, the
app's views and the emotion of the reconstruction all see the closed eyes and lips; the fitted
windows themselves stay as fitted (``read_fit(closures=False)``). A refit removes the floors
with the rest of the fit (they live in its folder) and this stage computes them again.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from core.closures.detect import ClosureConfig, detect_closures
from core.closures.enforce import closure_floor
from core.errors import EmoCapError
from core.results import StageProgress
from core.stages import RunContext, Stage
from core.take import Take
from core.take.records import COMPLETE, RUNNING, ClosureRecord, ClosureSummary
from core.take.store import CLOSURES_CHUNK


class ClosureStage(Stage):
    """Blinks and lip contacts reached by the curves (module docstring); current when complete
    for the same thresholds, fit settings and fitted chunks, and its chunk is stored."""

    name = "closures"

    def __init__(self, config: ClosureConfig = ClosureConfig()) -> None:
        self.config = config

    def settings(self, ctx: RunContext) -> dict[str, Any]:
        fit = ctx.take.manifest.fit
        return {"closures": self.config.settings(), "fit": fit.settings if fit is not None else None,
                "fitted": ctx.take.fit_digest()}

    def record(self, take: Take) -> ClosureRecord | None:
        return take.manifest.closures

    def is_current(self, ctx: RunContext) -> bool:
        return super().is_current(ctx) and ctx.take.has_chunk(CLOSURES_CHUNK)

    def start(self, ctx: RunContext, settings: dict[str, Any]) -> None:
        ctx.take.manifest.closures = ClosureRecord(settings, RUNNING)
        ctx.take.save_manifest()

    def resume(self, ctx: RunContext, settings: dict[str, Any]) -> Generator[StageProgress, None, None]:
        take = ctx.take
        fit = take.read_fit(complete=True, closures=False)
        if fit is None:
            raise EmoCapError(f"{take.root} has no complete fit: blinks and lip contacts need one")
        yield StageProgress("closures", 0, 1)
        evidence = detect_closures(ctx.observations, self.config)
        floor = closure_floor(fit, evidence, ctx.model, self.config)
        names = list(ctx.model.expression_names)
        frames = fit.frame_index
        summary = ClosureSummary(
            blinks=[[int(frames[a]), int(frames[b - 1]) + 1, int(frames[peak])] for a, b, peak in evidence.blinks()],
            lip_contacts=[[int(frames[a]), int(frames[b - 1]) + 1] for a, b in evidence.lip_contacts()],
            closure_raised_frames={names[i]: int(n) for i, n in enumerate(_raised(fit.expression, floor)) if n},
        )
        take.write_closures(floor, ClosureRecord(settings, COMPLETE, summary))
        yield StageProgress("closures", 1, 1)


def _raised(expression: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Per curve, the frames whose value the floor raises."""
    with np.errstate(invalid="ignore"):
        return (np.isfinite(floor) & (floor > expression)).sum(axis=0)
