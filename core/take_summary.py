"""The summary of a stored take: what ``emocap info`` prints and ``Pipeline.analyze`` returns.

Read from the take alone (its manifest and fit windows), without the pipeline's stages, so that
``emocap info`` loads neither torch nor the face models.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from core.emotion.choice import recogniser_licences
from core.errors import DamagedChunkError
from core.results import ClipSummary
from core.take import Take
from core.take.records import COMPLETE


def _fit_summary(take: Take) -> dict:
    fit = take.manifest.fit
    params = take.read_fit()
    if fit is None or params is None:
        return {}
    names = fit.expression_names
    faces = params.has_face
    curves = {}
    if faces.any():
        values = params.expression[faces]
        curves = {
            name: {"min": round(float(values[:, i].min()), 4), "max": round(float(values[:, i].max()), 4),
                   "mean": round(float(values[:, i].mean()), 4)}
            for i, name in enumerate(names)
        }
    return {
        "model": fit.model,
        "parameter_sizes": {"identity": fit.num_shape, "expression": len(names), "rotation": 3, "neck": 3,
                            "jaw": 3, "eyes": 6, "camera": 4},
        "curves": curves,
        "fit_residual": round(float(np.nanmean(params.residual)), 5) if faces.any() else None,
    }


def summarize(take: Take) -> ClipSummary:
    """The summary of a stored take (what ``emocap info`` prints). A damaged fit leaves the fit's
    part out and names the damaged chunk among the warnings."""
    m = take.manifest
    damage = []
    try:
        fit_part = _fit_summary(take)
    except DamagedChunkError as err:
        fit_part = {}
        damage.append(str(err))
    video = m.video
    done = m.frames_done
    fps = float(video.fps)
    emotion = m.emotion.summary if m.emotion is not None else None
    refine = m.microexpr.summary if m.microexpr is not None else None
    closures = m.closures.summary if m.closures is not None and m.closures.complete else None
    timecode = m.timecode()
    return ClipSummary(
        source=m.source.path,
        take=str(take.root),
        status="complete" if m.status == COMPLETE and (m.fit is None or m.fit.complete) else (
            m.status if m.status != COMPLETE else "fitting"),
        frames=done,
        frames_with_face=m.frames_with_face,
        fps=fps,
        width=int(video.width),
        height=int(video.height),
        seconds=round(done / fps, 3) if fps > 0 else 0.0,
        variable_frame_rate=bool(video.variable_frame_rate),
        truncated_at=video.truncated_at,
        actor_faces=m.actor.faces_found if m.actor else 0,
        device=m.settings.device,
        warnings=list(m.warnings) + damage,
        **fit_part,
        **(dataclasses.asdict(emotion) if emotion is not None else {}),
        **(dataclasses.asdict(refine) if refine is not None else {}),
        **(dataclasses.asdict(closures) if closures is not None else {}),
        emotion_recognisers=recogniser_licences(m.emotion.recognisers, m.emotion.runtimes) if emotion is not None else None,
        rate=str(video.exact_rate), timecode=str(timecode) if timecode else None,
        timecode_origin=None if timecode is None else "command line" if m.start_timecode else "recording",
    )
