"""Per-curve edits: the curve editor's keys, and the face regions that edits can lock.

A :class:`CurveEdits` value holds, for each expression curve the user edited, sparse **absolute
key values**: frame -> the value that curve has at that frame after every edit. They are a layer on
top of the slider layers of core.edit: ``apply_edits`` applies the slider layers first (in their
order), then replaces the edited curves' values at their keyed frames, then clamps to the curve's
bounds ([0, 1] for the open model's ARKit weights). A keyed frame therefore shows what the animator
put there whatever the sliders under it do; frames without keys keep following the sliders.
Frames without a face never take a value (a key there is ignored, and the operations below never
write one). Keys are frame positions in the take (row i = the take's i-th frame), like the slider
layers' ranges.

The operations (:func:`drag_keys`, :func:`draw_keys`, :func:`smooth_keys`, :meth:`CurveEdits.reset`)
work on a curve as it is shown (the fit with the current edits) and return new keys, so a drag, a
drawn stretch or a smoothing composes with everything that was there.

Regions: ``brows`` (brow*), ``eyes`` (eye*; and the eyes' gaze pose), ``mouth`` (mouth*, cheek*,
nose*, tongueOut) and ``jaw`` (jaw*; and the jaw joint's rotation). The open model's 52 ARKit
curves each belong to one region by name. FLAME's expression components (exp000, ...) each move the
whole face and belong to no region: they can be edited but no lock protects them; a lock on a FLAME
take keeps its jaw and eye poses. A curve in a locked region cannot be edited (EditError), and a
slider layer made while regions were locked (``EditLayer.locked``) leaves their curves untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from core.errors import EditError

REGIONS = ("brows", "eyes", "mouth", "jaw")
DRAG_FALLOFF = 6  # frames over which a dragged range blends back into the curve on each side
SMOOTH_SIGMA = 2.0  # frames, one press of "smooth selection"
_PREFIXES = (("brow", "brows"), ("eye", "eyes"), ("jaw", "jaw"), ("mouth", "mouth"), ("cheek", "mouth"),
             ("nose", "mouth"), ("tongue", "mouth"))


def curve_region(name: str) -> str | None:
    """The face region of an ARKit-named curve (None: in no region, e.g. FLAME's components)."""
    from core.facemodel.open_model import ARKIT_NAMES

    if name not in ARKIT_NAMES:
        return None
    return next(region for prefix, region in _PREFIXES if name.startswith(prefix))


def check_regions(regions: Iterable[str]) -> tuple[str, ...]:
    """Sorted, validated region names."""
    regions = tuple(sorted(set(regions)))
    for region in regions:
        if region not in REGIONS:
            raise EditError(f"unknown face region '{region}': use {', '.join(REGIONS)}")
    return regions


def locked_mask(names: Iterable[str], locked: Iterable[str]) -> np.ndarray:
    """E bool: which curves of ``names`` lie in a ``locked`` region."""
    locked = set(locked)
    return np.array([curve_region(n) in locked for n in names], bool)


@dataclass(frozen=True)
class CurveKeys:
    """The keys of one curve: frames (sorted, unique) and their absolute values."""

    name: str
    frames: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.frames) != len(self.values):
            raise EditError(f"curve {self.name}: {len(self.frames)} frames but {len(self.values)} values")
        if any(f < 0 for f in self.frames) or list(self.frames) != sorted(set(self.frames)):
            raise EditError(f"curve {self.name}: key frames must be distinct, sorted and not negative")
        if not all(np.isfinite(self.values)):
            raise EditError(f"curve {self.name}: key values must be numbers")

    def as_dict(self) -> dict[int, float]:
        return dict(zip(self.frames, self.values))


@dataclass(frozen=True)
class CurveEdits:
    """Keys of the edited curves (sorted by name; a curve without keys is not listed)."""

    curves: tuple[CurveKeys, ...] = ()

    @property
    def is_identity(self) -> bool:
        return not self.curves

    def keys(self, name: str) -> dict[int, float]:
        """{frame: value} of one curve (empty when it has no keys)."""
        for keys in self.curves:
            if keys.name == name:
                return keys.as_dict()
        return {}

    def with_keys(self, name: str, keys: dict[int, float]) -> CurveEdits:
        """These edits with the curve's keys replaced by ``keys`` (empty: the curve is unedited)."""
        others = [k for k in self.curves if k.name != name]
        if keys:
            frames = sorted(int(f) for f in keys)
            others.append(CurveKeys(name, tuple(frames), tuple(float(keys[f]) for f in frames)))
        return CurveEdits(tuple(sorted(others, key=lambda k: k.name)))

    def set(self, name: str, frames, values, *, has_face: np.ndarray, bounds: tuple[float, float] | None,
            locked: Iterable[str] = ()) -> CurveEdits:
        """Key ``name`` at ``frames`` with ``values`` (clamped to ``bounds``; frames without a face
        are skipped). EditError when the curve's region is locked."""
        check_unlocked(name, locked)
        frames = np.asarray(frames, np.int64).reshape(-1)
        values = np.asarray(values, np.float64).reshape(-1)
        if bounds is not None:
            values = np.clip(values, *bounds)
        keep = (frames >= 0) & (frames < len(has_face))
        keep[keep] &= has_face[frames[keep]]
        keys = self.keys(name) | {int(f): float(v) for f, v in zip(frames[keep], values[keep])}
        return self.with_keys(name, keys)

    def reset(self, name: str, start: int, stop: int, locked: Iterable[str] = ()) -> CurveEdits:
        """Remove the curve's keys at frames ``start:stop`` (they follow the sliders again)."""
        check_unlocked(name, locked)
        return self.with_keys(name, {f: v for f, v in self.keys(name).items() if not start <= f < stop})

    def to_dict(self) -> dict:
        return {k.name: {"frames": list(k.frames), "values": list(k.values)} for k in self.curves}

    @classmethod
    def from_dict(cls, data: dict) -> CurveEdits:
        curves = [CurveKeys(str(name), tuple(int(f) for f in d["frames"]), tuple(float(v) for v in d["values"]))
                  for name, d in dict(data).items()]
        return cls(tuple(sorted((k for k in curves if k.frames), key=lambda k: k.name)))

    def apply(self, expression: np.ndarray, has_face: np.ndarray, names: list[str],
              bounds: tuple[float, float] | None) -> None:
        """Write the keys into ``expression`` (N x E, in place; frames past N or without a face
        and curves this model does not have are skipped)."""
        n = len(expression)
        for keys in self.curves:
            if keys.name not in names:
                continue
            frames = np.asarray(keys.frames, np.int64)
            values = np.asarray(keys.values, np.float64)
            keep = frames < n
            keep[keep] &= has_face[frames[keep]]
            if bounds is not None:
                values = np.clip(values, *bounds)
            expression[frames[keep], names.index(keys.name)] = values[keep]


def check_unlocked(name: str, locked: Iterable[str]) -> None:
    region = curve_region(name)
    if region is not None and region in set(locked):
        raise EditError(f"{name} is in the locked {region} region; unlock it to edit the curve")


def _face_frames(has_face: np.ndarray, start: int, stop: int) -> np.ndarray:
    start, stop = max(0, int(start)), min(len(has_face), int(stop))
    frames = np.arange(start, max(start, stop))
    return frames[has_face[frames]]


def drag_keys(curve: np.ndarray, has_face: np.ndarray, start: int, stop: int, delta: float,
              falloff: int = DRAG_FALLOFF) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values): ``curve`` (N, as shown) moved by ``delta`` over frames ``start:stop``, and
    by a raised-cosine share of it over ``falloff`` frames on each side, so no step appears."""
    n = len(curve)
    lo, hi = max(0, start - falloff), min(n, stop + falloff)
    frames = _face_frames(has_face, lo, hi)
    weight = np.ones(len(frames))
    before, after = frames < start, frames >= stop
    # share 1 next to the range, falling to 0 at falloff + 1 frames away
    weight[before] = 0.5 + 0.5 * np.cos(np.pi * (start - frames[before]) / (falloff + 1))
    weight[after] = 0.5 + 0.5 * np.cos(np.pi * (frames[after] - stop + 1) / (falloff + 1))
    return frames, curve[frames].astype(np.float64) + delta * weight


def draw_keys(points, has_face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values) of a stroke drawn as ``points`` ((frame, value) pairs in drawing order):
    every frame with a face between the stroke's first and last frame takes the stroke's value
    there (linear between the points; where the stroke doubles back, the later pass wins). The
    stroke's first and last points snap to their nearest frame, so it covers the frames it starts
    and ends on."""
    points = np.asarray(points, np.float64).reshape(-1, 2).copy()
    if not len(points):
        return np.zeros(0, np.int64), np.zeros(0)
    points[[0, -1], 0] = np.round(points[[0, -1], 0])
    out: dict[int, float] = {}
    if len(points) == 1:
        out[int(round(points[0, 0]))] = float(points[0, 1])
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
        lo, hi = sorted((x0, x1))
        frames = np.arange(int(np.ceil(lo)), int(np.floor(hi)) + 1)
        if not len(frames):  # both points inside one frame's step
            frames = np.array([int(round(x1))])
        t = np.zeros(len(frames)) if x1 == x0 else (frames - x0) / (x1 - x0)
        out.update(zip(frames.tolist(), (y0 + np.clip(t, 0, 1) * (y1 - y0)).tolist()))
    frames = np.array(sorted(f for f in out if 0 <= f < len(has_face)), np.int64)
    frames = frames[has_face[frames]] if len(frames) else frames
    return frames, np.array([out[f] for f in frames.tolist()], np.float64)


def smooth_keys(curve: np.ndarray, has_face: np.ndarray, start: int, stop: int,
                sigma: float = SMOOTH_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values): ``curve`` (N, as shown) smoothed inside ``start:stop`` only (zero-phase
    Gaussian local-linear smoothing that never crosses a gap), blended in with a weight that is 0
    at the range's first and last frame (pinned) and 1 over its middle two thirds."""
    from core.emotion.timeline import smooth

    start, stop = max(0, int(start)), min(len(curve), int(stop))
    if stop - start < 3:
        return np.zeros(0, np.int64), np.zeros(0)
    block = curve[start:stop].astype(np.float64)[:, None]
    faces = has_face[start:stop]
    smoothed = smooth(np.nan_to_num(block), faces, sigma)[:, 0]
    weight = np.minimum(1.0, 2.0 * np.sin(np.pi * np.arange(stop - start) / (stop - start - 1)))
    values = block[:, 0] + weight * (smoothed - block[:, 0])
    frames = np.nonzero(faces)[0]
    return frames + start, values[frames]
