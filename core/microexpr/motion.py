"""Motion energy of the face for the timeline, and the automatic choice of the onset frame.

Input: the motion of K tracked face points over T frames that the fitted reconstruction does not
explain (tracked position minus where the fitted mesh puts the point), image pixels: the subtle
motion a landmark fit misses, which is what a micro-expression is. What remains of a per-frame 2D
affine motion (residual head-pose error) is removed, the root mean square is taken per mesh region,
and the energy of a frame is the largest regional value: a motion of a few points (one lip corner)
is not diluted by the rest of the face.
"""

from __future__ import annotations

import numpy as np

MIN_REGION_WEIGHT = 3.0  # summed confidence below which a region is ignored in a frame


def remove_affine(displacement: np.ndarray, points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What a per-frame affine map of the points does not explain.

    displacement: T x K x 2 pixels, points: K x 2 (where the displacements start), weights: T x K
    -> T x K x 2 residuals of the weighted least-squares affine fit of each frame."""
    x = np.concatenate([points - points.mean(axis=0), np.ones((len(points), 1))], axis=1)  # K x 3
    w = np.asarray(weights, np.float64)
    normal = np.einsum("tk,ki,kj->tij", w, x, x) + 1e-6 * np.eye(3)
    rhs = np.einsum("tk,ki,tkc->tic", w, x, displacement)
    coefficients = np.linalg.solve(normal, rhs)  # T x 3 x 2
    return displacement - np.einsum("ki,tic->tkc", x, coefficients)


def regional_rms(residual: np.ndarray, region: np.ndarray, count: int, weights: np.ndarray) -> np.ndarray:
    """T x K x 2, K region ids in [0, count), T x K weights -> T x count weighted RMS length
    (NaN for a region with too little weight in a frame)."""
    t = residual.shape[0]
    energy = np.zeros((t, count))
    total = np.zeros((t, count))
    squared = (residual**2).sum(axis=2)
    for r in range(count):
        keep = region == r
        energy[:, r] = (squared[:, keep] * weights[:, keep]).sum(axis=1)
        total[:, r] = weights[:, keep].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(energy / total)
    rms[total < MIN_REGION_WEIGHT] = np.nan
    return rms


def motion_energy(motion: np.ndarray, points: np.ndarray, region: np.ndarray, count: int, weights: np.ndarray) -> np.ndarray:
    """T: the largest regional RMS of the affine-free motion (pixels). motion: T x K x 2 unexplained
    motion relative to one frame; points: K x 2; weights: T x K."""
    rms = regional_rms(remove_affine(motion, points, weights), region, count, weights)
    rms = np.where(np.isfinite(rms), rms, -np.inf).max(axis=1)
    return np.where(np.isfinite(rms), rms, 0.0)


def motion_speed(motion: np.ndarray, points: np.ndarray, region: np.ndarray, count: int, weights: np.ndarray, lag: int) -> np.ndarray:
    """T: motion energy of the change over ``lag`` frames, motion[t] - motion[t - lag]
    (pixels per lag); the first ``lag`` frames repeat frame ``lag``'s value."""
    t = len(motion)
    lag = int(max(1, min(lag, t - 1)))
    if t < 2:
        return np.zeros(t)
    change = motion[lag:] - motion[:-lag]
    w = np.minimum(weights[lag:], weights[:-lag])
    speed = motion_energy(change, points, region, count, w)
    return np.concatenate([np.full(lag, speed[0]), speed])


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` (odd) samples, edges padded with the end values."""
    width = max(1, int(width) | 1)
    if width == 1 or len(values) == 0:
        return values.astype(np.float64)
    half = width // 2
    padded = np.concatenate([np.full(half, values[0]), values, np.full(half, values[-1])])
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def find_onset(speed: np.ndarray, fps: float, lag: int, search_s: float = 0.5, rise: float = 0.2,
               smooth_s: float = 0.03) -> tuple[int, int]:
    """(onset, peak) rows: peak is where the smoothed speed is highest (the strongest movement of
    the window); onset is a low-motion frame before it: the last frame before the peak, within
    ``search_s`` seconds, whose speed is within ``rise`` of the way from the quietest frame of
    that span to the peak, moved earlier by the lag and the smoothing half-width so that the
    onset precedes the movement rather than sitting on its first rise."""
    if len(speed) == 0:
        raise ValueError("no frames")
    width = max(1, int(round(smooth_s * fps)))
    smooth = moving_average(np.asarray(speed, np.float64), width)
    peak = int(np.argmax(smooth))
    low = max(0, peak - int(round(search_s * fps)))
    span = smooth[low:peak + 1]
    base = span.min()
    quiet = np.nonzero(span <= base + rise * (smooth[peak] - base))[0]
    last_quiet = low + int(quiet[-1]) if len(quiet) else low
    onset = max(low, last_quiet - lag - width // 2)
    return int(onset), peak
