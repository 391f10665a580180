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
        refinement = yield from refine_clip(ctx.source, ctx.observations, fit, ctx.model, self.config, ctx.cancel,
                                            WindowsInTake(take))
        take.write_refinement(refinement, refinement_record(refinement, settings))


class WindowsInTake:
    """The refined windows of a take (core.microexpr.stage.RefinedWindows): each stored as it is
    done and read back when the clip is assembled, so that they are never all in memory. Those an
    interrupted run stored are verified when this is made (DamagedChunkError, read one at a time)."""

    def __init__(self, take: Take) -> None:
        self.take = take
        self.starts = set(take.refine_window_starts())
        for start in self.starts:
            take.read_refine_window(start)

    def __contains__(self, start: object) -> bool:
        return start in self.starts

    def __getitem__(self, start: int) -> WindowResult:
        return WindowResult.from_npz_dict(self.take.read_refine_window(start))

    def add(self, window: WindowResult) -> None:
        self.take.write_refine_window(window.start, window.to_npz_dict())
        self.starts.add(window.start)
