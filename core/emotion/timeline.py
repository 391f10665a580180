"""Per-frame emotion timelines from recognisers that run on some frames or on all of them.

- ``choose_frames``: which frames a slow recogniser measures: every ``step``-th frame of each run
  of frames with a face, the first and last frame of every run, and frames where a fast signal
  (for example the fast recogniser's probabilities) moved by more than ``change`` since the last
  chosen frame.
- ``interpolate``: fills the other frames of each run linearly in time between measured frames;
  nothing is filled across frames without a face.
- ``smooth``: a zero-phase local linear fit with Gaussian weights (no lag) inside each run, cut
  at gaps and at cuts.
- ``intensity``: how strongly the dominant non-neutral emotion shows, the largest non-neutral
  probability.
"""

from __future__ import annotations

import numpy as np

from core.emotion.types import EMOTIONS
from core.fit.temporal import segments

NEUTRAL = EMOTIONS.index("neutral")


def choose_frames(has_face: np.ndarray, step: int, signal: np.ndarray | None = None, change: float = 0.25) -> np.ndarray:
    """Rows to measure (sorted). has_face: N bool. signal: N x K per-frame values (NaN where no
    face) whose L1 change since the last chosen frame, above ``change``, adds a frame."""
    chosen: list[int] = []
    for start, stop in segments(has_face):
        last = None
        for row in range(start, stop):
            periodic = (row - start) % step == 0 or row == stop - 1
            moved = signal is not None and last is not None and np.abs(signal[row] - signal[last]).sum() > change
            if periodic or moved:
                chosen.append(row)
                last = row
    return np.array(chosen, dtype=np.int64)


def interpolate(values: np.ndarray, measured: np.ndarray, has_face: np.ndarray, times: np.ndarray) -> np.ndarray:
    """values: K x C at the rows ``measured`` (K, sorted). Returns N x C: linear in time between
    measured rows of the same run of face frames, held at a run's ends, NaN without a face."""
    out = np.full((len(has_face), values.shape[1]), np.nan, np.float32)
    position = {int(r): k for k, r in enumerate(measured)}
    for start, stop in segments(has_face):
        rows = [r for r in range(start, stop) if r in position]
        if not rows:
            continue
        known = values[[position[r] for r in rows]]
        span = times[start:stop]
        for c in range(values.shape[1]):
            out[start:stop, c] = np.interp(span, times[rows], known[:, c])
    return out


def smooth(values: np.ndarray, has_face: np.ndarray, sigma_frames: float, cuts: np.ndarray | None = None) -> np.ndarray:
    """Zero-phase smoothing of N x C values inside runs of face frames, restarting at ``cuts``
    (rows where a new shot begins): a local linear fit with Gaussian weights (sigma in frames),
    which keeps straight lines exactly, also at the ends of a run where the window is one-sided,
    so nothing lags or bleeds across a gap or a cut."""
    if sigma_frames <= 0:
        return values.copy()
    out = np.full_like(values, np.nan)
    cut_set = set() if cuts is None else {int(c) for c in cuts}
    runs = []
    for start, stop in segments(has_face):
        edges = [start] + sorted(c for c in cut_set if start < c < stop) + [stop]
        runs += list(zip(edges[:-1], edges[1:]))
    radius = int(np.ceil(3 * sigma_frames))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma_frames) ** 2)
    for start, stop in runs:
        block = values[start:stop].astype(np.float64)
        n = len(block)
        inside = np.zeros(n + 2 * radius)
        inside[radius : radius + n] = 1.0
        padded = np.zeros((n + 2 * radius, block.shape[1]))
        padded[radius : radius + n] = block

        def window_sum(signal: np.ndarray, power: int) -> np.ndarray:
            return np.correlate(signal, kernel * offsets**power, mode="valid")

        s0, s1, s2 = (window_sum(inside, k) for k in range(3))
        det = s0 * s2 - s1**2
        for c in range(block.shape[1]):
            t0, t1 = window_sum(padded[:, c], 0), window_sum(padded[:, c], 1)
            safe = det > 1e-12 * s0**2
            # weighted least squares a + b d; where a run is too short for a slope, the mean
            out[start:stop, c] = np.where(safe, (s2 * t0 - s1 * t1) / np.where(safe, det, 1.0), t0 / s0)
    return out


def intensity(probabilities: np.ndarray) -> np.ndarray:
    """N x 8 -> N: the largest non-neutral probability (0 = neutral face, 1 = a clear emotion)."""
    non_neutral = np.delete(probabilities, NEUTRAL, axis=1)
    return non_neutral.max(axis=1)


def dominant(probabilities: np.ndarray) -> list[str | None]:
    """Name of the most probable emotion per row (None for NaN rows)."""
    return [None if np.isnan(row).any() else EMOTIONS[int(np.argmax(row))] for row in probabilities]


def dominant_segments(probabilities: np.ndarray, has_face: np.ndarray, min_frames: int = 1) -> list[dict]:
    """Runs of frames sharing a dominant emotion: [{start, stop, emotion}], stop exclusive;
    runs shorter than ``min_frames`` merge into their predecessor."""
    names = dominant(probabilities)
    out: list[dict] = []
    for row, name in enumerate(names):
        if name is None:
            continue
        if out and out[-1]["emotion"] == name and out[-1]["stop"] == row:
            out[-1]["stop"] = row + 1
        else:
            out.append({"start": row, "stop": row + 1, "emotion": name})
    merged: list[dict] = []
    for seg in out:
        if merged and seg["stop"] - seg["start"] < min_frames and merged[-1]["stop"] == seg["start"]:
            merged[-1]["stop"] = seg["stop"]
        elif merged and merged[-1]["emotion"] == seg["emotion"] and merged[-1]["stop"] == seg["start"]:
            merged[-1]["stop"] = seg["stop"]
        else:
            merged.append(dict(seg))
    return merged


def cuts_from_boxes(boxes: np.ndarray, has_face: np.ndarray, jump: float = 0.5, zoom: float = 0.3) -> np.ndarray:
    """Rows where a new shot likely begins inside a run of face frames: the face box (N x 4,
    x0 y0 x1 y1 pixels) jumps by more than ``jump`` box sizes or changes size by more than
    ``zoom`` (fraction) from the previous frame, faster than a head moves between frames."""
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    both = has_face[1:] & has_face[:-1]
    moved = np.linalg.norm(centre[1:] - centre[:-1], axis=1) > jump * size[:-1]
    scaled = np.abs(size[1:] / np.maximum(size[:-1], 1e-6) - 1) > zoom
    return np.nonzero(both & (moved | scaled))[0] + 1
