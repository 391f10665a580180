"""The micro-expression refinement as a stage of an analysis (core/stages.py): refined window by
window (core/microexpr/stage.py's ``refine_clip``), each window stored as it is done
(TAKE/microexpr/window_*.npz) and reused by a rerun, then assembled into TAKE/microexpr/refined.npz.
Current when it completed with the same settings on the same fit."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from core.errors import RefinerError
from core.microexpr.config import RefineConfig
from core.microexpr.results import refinement_record
from core.microexpr.stage import WindowResult, refine_clip
from core.results import StageProgress
from core.stages import RunContext, Stage, json_ready
from core.take import Take
from core.take.records import RUNNING, RefineRecord


class RefineStage(Stage):
    """The refiner's stage; see the module docstring."""

    name = "microexpr"

    def __init__(self, config: RefineConfig) -> None:
        self.config = config

    def settings(self, ctx: RunContext) -> dict[str, Any]:
        fit = ctx.take.manifest.fit
        return json_ready(self.config.settings() | {"fit": None if fit is None else fit.settings})

    def record(self, take: Take) -> RefineRecord | None:
        return take.manifest.microexpr

    def start(self, ctx: RunContext, settings: dict[str, Any]) -> None:
        record = self.record(ctx.take)
        if record is None or record.settings != settings:
            ctx.take.reset_refinement()
        ctx.take.manifest.microexpr = RefineRecord(settings, RUNNING)
        ctx.take.save_manifest()

    def resume(self, ctx: RunContext, settings: dict[str, Any]) -> Generator[StageProgress, None, None]:
        take = ctx.take
        fit = take.read_fit(complete=True)
        if fit is None:
            raise RefinerError(f"{take.root} has no complete fit to refine; run the analysis without --refine first")
        finished = {start: WindowResult.from_npz_dict(a) for start, a in take.refine_windows().items()}
        refinement = yield from refine_clip(
            ctx.source, ctx.observations, fit, ctx.model, self.config, ctx.cancel, finished,
            on_window=lambda w: take.write_refine_window(w.start, w.to_npz_dict()),
        )
        take.write_refinement(refinement, refinement_record(refinement, settings))
