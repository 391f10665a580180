"""Which frame's pixels texture the reconstruction of a clip.

The reconstruction render (:mod:`core.render.reconstruction`) paints every frame's fitted mesh with
one reference frame's pixels, so that frame should show the face quiet (an expression in the
texture is painted onto every other frame) and uncovered. The fit knows the first
(:func:`core.render.reconstruction.expression_activity`) but not the second: under a hand,
MediaPipe's face mesh predicts a plausible, quiet face, so the quietest frame of a clip is often
one where the performer covers their mouth (the Wolfgang fixture's quietest frame, 212, has a hand
over the mouth, and every render of the clip showed that hand).

:func:`choose_uncovered_reference_frame` takes the quietest frame of each of several equal
stretches of the clip and, from the quietest on, the first one with no hand over the face
(:class:`core.observe.hands.HandDetector`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from core.fit.params import FitParams
from core.observe.hands import HandDetector
from core.render.reconstruction import expression_activity
from core.take.observations import ObservationArrays

log = logging.getLogger(__name__)

REFERENCE_CANDIDATES = 16  # equal stretches of the clip, each offering its quietest frame


def choose_uncovered_reference_frame(fit_params: FitParams, observations: ObservationArrays,
                                     read_frame: Callable[[int], np.ndarray],
                                     candidates: int = REFERENCE_CANDIDATES) -> int:
    """The quietest frame (index) with no hand over the face among the quietest frame of each of
    ``candidates`` equal stretches of the clip; the quietest of all when every candidate is covered.
    read_frame: frame index -> H x W x 3 uint8 RGB (called once per candidate looked at)."""
    rows, activity = expression_activity(fit_params)
    stretches = np.array_split(np.arange(len(rows)), min(candidates, len(rows)))
    picks = np.array([s[int(np.argmin(activity[s]))] for s in stretches])
    picks = picks[np.argsort(activity[picks], kind="stable")]  # quietest first
    frames = [int(f) for f in fit_params.frame_index[rows[picks]]]
    obs_rows = {int(f): r for r, f in enumerate(observations.index)}
    with HandDetector() as detector:
        for frame in frames:
            if not detector.covers_face(read_frame(frame), observations.landmarks[obs_rows[frame]]):
                if frame != frames[0]:
                    log.info("reference frame %d: the quieter frame %d has a hand over the face", frame, frames[0])
                return frame
    log.warning("a hand covers the face in every candidate reference frame; using the quietest, %d", frames[0])
    return frames[0]
