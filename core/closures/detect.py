"""Where the performer's eyes and lips are closed, read from the observed landmarks.

Eyes: the eye aspect ratio of each eye (upper to lower lid over corner to corner, MediaPipe
points 159/145 over 33/133 and 386/374 over 362/263) relative to that eye's open ratio in the clip
(its 90th percentile over frames with a face), averaged over both eyes (a head turn narrows one
eye's ratio, a blink closes both). A frame is closed when that relative opening is at most
``closed`` (eyes shut for a while: the crying stretches of the Wolfgang fixture read 0.06-0.17,
lowered lids that still show the iris 0.21-0.33), or when it dips to at most ``dip`` of the most
open frame within ``dip_frames`` either side while at most ``dip_open`` (a blink: 0.2-0.5 of the
frames around it). Lips: the inner-lip gap (13/14) over the mouth's width (78/308) at most
``lips`` (lips in contact).

A single image has no clip to compare with: its eyes are measured against ``open_ratio``, the
typical open eye aspect ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

from core.take.observations import ObservationArrays

EYE_POINTS = ((159, 145, 33, 133), (386, 374, 362, 263))  # (upper lid, lower lid, corner, corner) per eye
LIP_POINTS = (13, 14, 78, 308)  # upper inner lip, lower inner lip, mouth corners


@dataclass(frozen=True)
class ClosureConfig:
    """Thresholds of :func:`detect_closures` (see the module docstring)."""

    closed: float = 0.18
    dip: float = 0.5
    dip_open: float = 0.6
    dip_frames: int = 6
    lips: float = 0.03
    open_ratio: float = 0.3
    blink_target: float = 0.95  # eyeBlink at a closed frame (core/closures/enforce.py)

    def settings(self) -> dict:
        """The JSON form stored with the result."""
        return dict(vars(self))


@dataclass(frozen=True)
class ClosureEvidence:
    """Per frame (N rows): ``eye_opening`` (both eyes' opening relative to open, NaN without a
    face), ``eyes_closed`` and ``lips_closed`` (bool) and ``lip_gap`` (inner-lip gap over mouth
    width, NaN without a face)."""

    eye_opening: np.ndarray
    eyes_closed: np.ndarray
    lip_gap: np.ndarray
    lips_closed: np.ndarray

    def blinks(self) -> list[tuple[int, int, int]]:
        """Runs of closed-eye rows as (first, stop, most closed row)."""
        return [(a, b, a + int(np.nanargmin(self.eye_opening[a:b]))) for a, b in runs(self.eyes_closed)]

    def lip_contacts(self) -> list[tuple[int, int]]:
        """Runs of closed-lip rows as (first, stop)."""
        return runs(self.lips_closed)


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True as (first, stop) row ranges."""
    padded = np.concatenate([[False], np.asarray(flags, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _ratio(xy: np.ndarray) -> np.ndarray:
    """|a - b| / |c - d| of N x 4 x 2 points (a, b, c, d) in image pixels (N; NaN or inf where
    c and d coincide)."""
    gap = np.linalg.norm(xy[:, 0] - xy[:, 1], axis=1)
    width = np.linalg.norm(xy[:, 2] - xy[:, 3], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return gap / width


def eye_opening(eyes_xy: np.ndarray, has_face: np.ndarray, open_ratio: float) -> np.ndarray:
    """Both eyes' aspect ratio relative to their open value, averaged (N; NaN without a face).
    eyes_xy: N x 2 x 4 x 2 float64, each eye's EYE_POINTS in image pixels."""
    relative = []
    for eye in range(len(EYE_POINTS)):
        ratio = np.where(has_face, _ratio(eyes_xy[:, eye]), np.nan)
        faces = np.isfinite(ratio)
        reference = np.percentile(ratio[faces], 90) if faces.sum() > 1 else open_ratio
        relative.append(ratio / max(reference, 1e-6))
    return np.mean(relative, axis=0)


def detect_closures(observations: ObservationArrays, config: ClosureConfig = ClosureConfig()) -> ClosureEvidence:
    """Closed eyes and lips in every observed frame (module docstring)."""
    has_face = observations.has_face
    groups = (*EYE_POINTS, LIP_POINTS)
    # the twelve points only (not N x 478 copies), read in one pass over the take's landmarks
    xy = observations.landmarks[:, [p for group in groups for p in group], :2].astype(np.float64)
    xy = xy.reshape(len(xy), len(groups), 4, 2)
    opening = eye_opening(xy[:, : len(EYE_POINTS)], has_face, config.open_ratio)
    around = maximum_filter1d(np.nan_to_num(opening, nan=0.0), 2 * config.dip_frames + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dips = (opening <= config.dip * around) & (opening <= config.dip_open)
    eyes = has_face & ((opening <= config.closed) | dips)
    gap = np.where(has_face, _ratio(xy[:, -1]), np.nan)
    lips = has_face & (gap <= config.lips)
    return ClosureEvidence(opening, eyes, gap, lips)
