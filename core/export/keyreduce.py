"""Keyframe reduction with a stated maximum error, for curves interpolated linearly between keys.

A reduced curve keeps a subset of its per-frame samples as keys; between two kept keys a reader
interpolates linearly (slerp for quaternions). The kept keys are

1. the first and last frame (of each run of frames with values: gaps are never bridged);
2. every extreme that stands out (see :func:`keep_mask` for curves sharing key times): the turning points of a zig-zag with a swing of at least the
   tolerance (so a blink's peak, the closed-mouth minimum of jawOpen or the maximum of mouthClose
   is keyed at its exact frame and value), and both ends of an extreme held within a quarter of the
   tolerance (a held closure stays at its extreme);
3. then, Douglas-Peucker style, the frame that the interpolation between kept neighbours misses
   most, until every frame is within the tolerance.

So at every sampled frame ``|interpolated - original| <= tolerance`` (per component for vector
curves; for quaternions the rotation angle between them, radians). The error is measured on the
values given: a format that stores float32 adds its rounding (~1e-7 of the value).

NumPy only, with no EmoCap import at module level: the Blender FBX worker loads this file by path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEYED_FORMATS = ("curves_npz", "curves_json", "curves_csv", "fbx", "gltf", "usd")  # the formats --reduce applies to
SAFETY = 1.0 - 1e-4  # aim slightly below the tolerance, for float32 storage of the kept values
SHARED_EVENT_SWING = 0.25  # curves sharing key times keep the extremes of swings this large (blinks, contacts)
PLATEAU = 0.25  # a held extreme: within this fraction of the tolerance of the extreme's value


def extremes(v: np.ndarray, tol: float) -> list[int]:
    """Indices of the zig-zag turning points of a 1-D finite curve with swings >= ``tol``, and the
    ends of each turning point's plateau (values within PLATEAU * tol of it, contiguous)."""
    n = len(v)
    if n < 3 or tol <= 0:
        return list(range(n)) if tol <= 0 else []
    pivots: list[int] = []
    i_max = i_min = 0
    direction = 0
    cand = 0
    for i in range(1, n):
        x = v[i]
        if direction == 0:
            if x > v[i_max]:
                i_max = i
            if x < v[i_min]:
                i_min = i
            if v[i_max] - v[i_min] >= tol:
                if i_max > i_min:
                    pivots.append(i_min)
                    direction, cand = 1, i_max
                else:
                    pivots.append(i_max)
                    direction, cand = -1, i_min
        elif direction > 0:
            if x >= v[cand]:
                cand = i
            elif v[cand] - x >= tol:
                pivots.append(cand)
                direction, cand = -1, i
        else:
            if x <= v[cand]:
                cand = i
            elif x - v[cand] >= tol:
                pivots.append(cand)
                direction, cand = 1, i
    out = set(pivots)
    band = PLATEAU * tol
    for p in pivots:
        a = p
        while a > 0 and abs(v[a - 1] - v[p]) <= band:
            a -= 1
        b = p
        while b < n - 1 and abs(v[b + 1] - v[p]) <= band:
            b += 1
        out.update((a, b))
    return sorted(out)


def _linear_error(values: np.ndarray, a: int, b: int) -> np.ndarray:
    """Largest per-component |linear interpolation - value| at frames a+1..b-1."""
    t = (np.arange(a + 1, b) - a) / (b - a)
    interp = values[a] + t[:, None] * (values[b] - values[a])
    return np.abs(interp - values[a + 1:b]).max(axis=1)


def _slerp_error(quats: np.ndarray, a: int, b: int) -> np.ndarray:
    """Largest angle (radians) between slerp(q_a, q_b) and the quaternion at frames a+1..b-1;
    quats: N x J x 4 unit quaternions (any component order), error maxed over J."""
    qa, qb = quats[a], quats[b]
    dot = np.clip((qa * qb).sum(-1), -1.0, 1.0)
    sign = np.where(dot < 0, -1.0, 1.0)
    qb = qb * sign[:, None]
    omega = np.arccos(np.abs(dot))
    t = ((np.arange(a + 1, b) - a) / (b - a))[:, None]
    sin = np.sin(omega)
    small = sin < 1e-9
    wa = np.where(small, 1 - t, np.sin((1 - t) * omega) / np.where(small, 1.0, sin))
    wb = np.where(small, t, np.sin(t * omega) / np.where(small, 1.0, sin))
    interp = wa[..., None] * qa + wb[..., None] * qb
    return quaternion_angle(interp, quats[a + 1:b]).max(axis=1)


def quaternion_angle(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rotation angle (radians) between quaternions p and q (..., 4; normalised here): 4 asin(|p -
    q| / 2) with q's sign matched to p, well conditioned for nearly equal rotations (the usual 2
    acos(p . q) is not: a norm off by 3e-8, as float32 storage leaves it, moves 0.1 degrees by 2 %)."""
    p = p / np.linalg.norm(p, axis=-1, keepdims=True)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = q * np.where((p * q).sum(-1) < 0, -1.0, 1.0)[..., None]
    return 4.0 * np.arcsin(np.clip(np.linalg.norm(p - q, axis=-1) / 2.0, 0.0, 1.0))


def _fill(values: np.ndarray, mask: np.ndarray, tol: float, error) -> np.ndarray:
    kept = np.flatnonzero(mask).tolist()
    stack = list(zip(kept[:-1], kept[1:]))
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        err = error(values, a, b)
        j = int(np.argmax(err))
        if err[j] > tol * SAFETY:
            m = a + 1 + j
            mask[m] = True
            stack += [(a, m), (m, b)]
    return mask


def _runs(finite: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], finite.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def keep_mask(values: np.ndarray, tol: float, event_swing: float = 0.0) -> np.ndarray:
    """Keys to keep of a curve sampled once per frame, interpolated linearly: N or N x K values
    (one set of key times for all K components; rows with a NaN are gaps) -> N bool. Each
    component's extremes with a swing of at least max(tol, event_swing) are kept; the error is
    the largest per-component error. Formats that share key times between many curves (glTF's
    and USD's blend-shape weights) pass ``event_swing`` (e.g. 0.25): every curve's small wiggles
    would otherwise key nearly every frame; the large swings (blinks, lip contacts) stay exact."""
    v = np.asarray(values, np.float64)
    v2 = v.reshape(len(v), -1)
    mask = np.zeros(len(v), bool)
    for start, stop in _runs(np.isfinite(v2).all(axis=1)):
        part = v2[start:stop]
        sub = np.zeros(stop - start, bool)
        sub[[0, -1]] = True
        for k in range(part.shape[1]):
            sub[extremes(part[:, k], max(tol, event_swing))] = True
        mask[start:stop] = _fill(part, sub, tol, _linear_error)
    return mask


def keep_mask_quaternions(quats: np.ndarray, tol_rad: float) -> np.ndarray:
    """Keys to keep of N x 4 (or N x J x 4, one set of key times for the J joints) unit
    quaternions, continuous in sign, interpolated by slerp: the angle to every frame's rotation
    stays within ``tol_rad``. -> N bool."""
    q = np.asarray(quats, np.float64)
    q = q.reshape(len(q), -1, 4)
    mask = np.zeros(len(q), bool)
    mask[[0, -1]] = True
    return _fill(q, mask, tol_rad, _slerp_error)


def interpolate(frames: np.ndarray, key_frames: np.ndarray, key_values: np.ndarray) -> np.ndarray:
    """Linear interpolation of keys (K, K x C) at ``frames`` (N) -> N (x C); held beyond the ends."""
    key_values = np.asarray(key_values, np.float64)
    if key_values.ndim == 1:
        return np.interp(frames, key_frames, key_values)
    return np.stack([np.interp(frames, key_frames, key_values[:, c]) for c in range(key_values.shape[1])], axis=1)


@dataclass(frozen=True)
class KeyReduction:
    """What ``--reduce`` asks for: the largest error allowed at any frame.

    tolerance: expression curves (blend-shape weights, or the mapped channels' units).
    degrees: joint rotations (head, neck, jaw, eyes), the rotation angle, degrees.
    metres: the head translation, metres. pixels: the fit's camera translation in curve files
    (px); its log scale gets ``pixels / 1000``.
    """

    tolerance: float
    degrees: float = 0.1
    metres: float = 1e-4
    pixels: float = 0.05
