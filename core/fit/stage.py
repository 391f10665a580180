"""The fit stage of an analysis: the identity once, then the clip window by window, stored in
the take as it goes (TAKE/fit/identity.npz, TAKE/fit/<first frame>.npz) and resumed after the last
stored window. :func:`fit_clip` is the one window loop (the pipeline and the tests run it)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Generator, Mapping
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from core.errors import CancelledError
from core.facemodel.loading import performer_profile
from core.fit.fitter import FitConfig, Fitter, slice_observations
from core.fit.neutral import neutral_evidence, neutral_setting
from core.fit.params import FitParams
from core.memory import release_freed_memory
from core.observe.view_bias import view_bias_digest
from core.results import FitProgress
from core.stages import RunContext, Stage
from core.take import ObservationArrays, Take
from core.take.records import COMPLETE, RUNNING, FitRecord


def fit_clip(
    fitter: Fitter,
    observations: ObservationArrays,
    identity: np.ndarray,
    *,
    finished: Mapping[int, FitParams] | None = None,
    on_window: Callable[[FitParams], None] | None = None,
    cancel: threading.Event | None = None,
) -> Generator[FitProgress, None, FitParams]:
    """Fit ``observations`` window by window (``fitter.config.window`` frames) with ``identity``
    fixed; each window's temporal term is anchored on the previous one's last frames.
    ``finished``: windows already fitted, by first row, reused as they are; ``on_window`` is called
    with each newly fitted window (to store it). Yields a FitProgress per window; returns the
    whole clip's FitParams."""
    finished = finished or {}
    window, total = fitter.config.window, len(observations)
    windows, previous = [], None
    for start in range(0, total, window):
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"fitting cancelled at frame {start}; a new run resumes from there")
        from_take = start in finished
        if from_take:
            previous = finished[start]
        else:
            previous = fitter.fit_window(slice_observations(observations, start, start + window), identity, previous)
            if on_window is not None:
                on_window(previous)
            release_freed_memory()
        windows.append(previous)
        yield FitProgress(previous, min(start + window, total), total, from_take)
    return FitParams.concatenate(windows) if windows else FitParams.empty(observations.index, identity, fitter.num_expression)


class FitStage(Stage):
    """The fitter's stage (core/stages.py): current when the fit is complete for the same face
    model, fit settings and neutral."""

    name = "fit"

    def __init__(self, config: FitConfig, neutral: str | None) -> None:
        self.config = config
        self.neutral = neutral
        self._evidence: ObservationArrays | None = None

    def settings(self, ctx: RunContext) -> dict[str, Any]:
        settings = ctx.model_choice.settings() | {"fit": dataclasses.asdict(self.config),
                                                  "neutral": neutral_setting(self.neutral)}
        if self.config.view_bias:  # a rebuilt field refits
            settings["view_bias_sha256"] = view_bias_digest()
        return settings

    def record(self, take: Take) -> FitRecord | None:
        return take.manifest.fit

    def replay(self, ctx: RunContext) -> Generator[FitProgress, None, None]:
        """The stored windows, as FitProgress from the take."""
        total = ctx.take.manifest.frames_done
        window = self.config.window
        for start in ctx.take.fit_window_starts():
            yield FitProgress(ctx.take.read_fit_window(start), min(start + window, total), total, True)

    def start(self, ctx: RunContext, settings: dict[str, Any]) -> None:
        # a neutral that cannot be used fails here, before a stored fit is replaced
        self._evidence = neutral_evidence(self.neutral, ctx.observations)
        take, record = ctx.take, self.record(ctx.take)
        if record is None or record.settings != settings:
            take.reset_fit()
        model = ctx.model
        take.manifest.fit = FitRecord(settings, RUNNING, model.name, model.num_shape, list(model.expression_names))
        take.save_manifest()

    def resume(self, ctx: RunContext, settings: dict[str, Any]) -> Generator[FitProgress, None, None]:
        take, evidence = ctx.take, self._evidence
        fitter = Fitter(ctx.model, self.config)
        named = self.neutral is not None
        profile = performer_profile(ctx.model_choice)
        if named:  # the performer's own neutral scores are the baseline of the learned scores
            neutral_rows = np.flatnonzero(evidence.has_face)
            fitter.use_neutral_scores(np.median(np.nan_to_num(fitter.observed_scores(evidence, neutral_rows)), axis=0))
        elif profile is not None:
            fitter.use_neutral_scores(profile.neutral_scores)
        if profile is not None:  # the take's neutral refines the performer's known identity
            fitter.use_identity_mean(profile.identity)
            fitter.use_view_drift(profile.view_drift)
        elif not named and len(ctx.observations) == 1:  # its identity can only come from the expression itself
            fitter.use_single_image()
        # torch fits on one thread (core.fit.fitter.single_threaded_torch); numpy's BLAS threads,
        # left at two, only spin beside it: on the Wolfgang clip 2.3 s of CPU for 1.2 s of fitting,
        # 1.2 s with one thread, as fast, which leaves the other core to work started ahead
        # (Stage.start_ahead: the emotion stage's fast recogniser)
        with threadpool_limits(limits=1, user_api="blas"):
            identity = take.read_identity()
            if identity is None:
                identity = fitter.fit_identity(evidence, named_neutral=named)
                take.write_identity(identity)
            finished = {start: take.read_fit_window(start) for start in take.fit_window_starts()}
            yield from fit_clip(fitter, ctx.observations, identity, finished=finished, on_window=take.write_fit_window,
                                cancel=ctx.cancel)
        take.manifest.fit.status = COMPLETE
        take.save_manifest()
