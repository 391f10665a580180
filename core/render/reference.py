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

Quiet curves are not a quiet face. The curves cannot show what the pixels do (wrinkles, teeth, a
cheek's fold), and a clip may hold no neutral frame at all: the Wolfgang fixture runs from crying
to laughing, and its quietest uncovered frame by the curves, 241, is one that EmoNet reads as
happy (1.00). Painted onto every frame, that texture made the crying frames' renders read happy
(EmoNet image-vs-render consistency 0.17 on frames 0-100). Given a recogniser
(``expressiveness``), the choice is the uncovered frame the recogniser reads as least expressive
(:func:`core.emotion.timeline.intensity`: its largest non-neutral probability) among the
QUIET_SHORTLIST quietest candidates by the curves, so that the texture carries as little emotion
as the clip allows and the render shows what the geometry carries.
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
QUIET_SHORTLIST = 8  # of those, the quietest by the curves, among which a recogniser picks
# Readings closer than this are taken as equal, and the quieter frame by the curves wins: on the
# neutral single_face fixture FER reads every quiet frame at 0.03-0.05.
SAME_EXPRESSIVENESS = 0.05


def choose_uncovered_reference_frame(fit_params: FitParams, observations: ObservationArrays,
                                     read_frame: Callable[[int], np.ndarray],
                                     candidates: int = REFERENCE_CANDIDATES,
                                     expressiveness: Callable[[list[np.ndarray], list[int]], np.ndarray] | None = None,
                                     shortlist: int = QUIET_SHORTLIST) -> int:
    """The frame (index) whose pixels texture the reconstruction, among the quietest frame of each
    of ``candidates`` equal stretches of the clip: with ``expressiveness``, the uncovered one it
    reads as least expressive among the ``shortlist`` quietest (of two read within
    SAME_EXPRESSIVENESS, the quieter by the curves); else, or when a hand covers all of those, the
    quietest with no hand over the face; the quietest of all when every candidate is covered.
    read_frame: frame index -> H x W x 3 uint8 RGB (called once per candidate looked at).
    expressiveness: (frames, each H x W x 3 uint8 RGB; their observation rows) -> how clearly each
    face shows an emotion, in [0, 1] (0: neutral)."""
    rows, activity = expression_activity(fit_params)
    stretches = np.array_split(np.arange(len(rows)), min(candidates, len(rows)))
    picks = np.array([s[int(np.argmin(activity[s]))] for s in stretches])
    picks = picks[np.argsort(activity[picks], kind="stable")]  # quietest first
    frames = [int(f) for f in fit_params.frame_index[rows[picks]]]
    obs_rows = {int(f): r for r, f in enumerate(observations.index)}
    with HandDetector() as detector:
        def uncovered(frame: int, image: np.ndarray) -> bool:
            return not detector.covers_face(image, observations.landmarks[obs_rows[frame]])

        rest = frames
        if expressiveness is not None:
            images = {frame: read_frame(frame) for frame in frames[:shortlist]}
            quiet = [frame for frame, image in images.items() if uncovered(frame, image)]
            rest = frames[shortlist:]
            if quiet:
                strength = np.asarray(expressiveness([images[f] for f in quiet], [obs_rows[f] for f in quiet]))
                best = int(np.flatnonzero(strength <= strength.min() + SAME_EXPRESSIVENESS)[0])
                log.info("reference frame %d: read as the least expressive (%.2f) of %d quiet uncovered frames "
                         "(the quietest by the curves, %d: %.2f)", quiet[best], float(strength[best]), len(quiet),
                         quiet[0], float(strength[0]))
                return quiet[best]
        for frame in rest:
            if uncovered(frame, read_frame(frame)):
                if frame != frames[0]:
                    log.info("reference frame %d: the quieter frame %d has a hand over the face", frame, frames[0])
                return frame
    log.warning("a hand covers the face in every candidate reference frame; using the quietest, %d", frames[0])
    return frames[0]
