"""MediaPipe's landmarks drift with the head's yaw; a learned correction takes the drift out.

The same neutral face seen frontally and from 45 degrees does not give the same landmarks once the
head pose is removed: contour points slide along the visible outline, the far side is compressed,
depth is flattened. Measured on KDEF (55 people, neutral, frontal and half profiles), the
canonical-frame difference between views is 2.8 mm a point on average, as large as a typical
expression's motion, and about half of it is the same for everyone (on people left out of the
learning the field below takes it from 2.8 to 1.55 mm). A fit that takes it for the face turns it into false expression and into identity.

The drift is modelled per landmark in the observer's canonical frame (``core/observe/headpose.py``:
``x_img = scale * rotation @ x_can + translation``, one unit = the outer-eye-corner distance) as

    bias(yaw) = odd * sin(yaw) + even * (1 - cos(yaw))

where yaw is the camera's azimuth seen from the head (:func:`view_azimuth_deg`: what decides which
side of the face turns away; for an upright head it is the head pose's yaw, for a head lying on
its side a turn about the camera's vertical axis is no yaw at all), with ``odd`` and ``even``
478 x 3, mirror-symmetric (a face turned left is the mirror image of one
turned right), learned from neutral photos of the same people in several views
(:func:`learn_view_bias`, built into ``resources/landmark_view_bias.npz`` by
``scripts/build_view_bias.py``). Yaw is clamped to the learned range: the field is not extrapolated.
Pitch is not modelled (the photos have none).

MediaPipe's blendshape network, fed those landmarks, drifts with yaw as well. Measured on the same
KDEF people (each expression photographed frontally and from about 40 degrees), its scores of a
half profile differ from those of the frontal photo of the same expression systematically: the
brows read 0.16-0.26 less lowered, the outer brow of one side 0.2 raised, the lower lip 0.14 more
lowered, the jaw 0.09 less open. The fit takes those scores as evidence, so the same drift model
per score (``score_odd``, ``score_even``: E, the network's curves in ARKit order, mirror-symmetric:
a face turned left scores as the mirror image of one turned right, Left and Right curves swapped) is
learned from the differences between views (:func:`learn_score_drift`) and taken out of the
scores (:meth:`ViewBias.correct_scores`). What remains between views is kept as a variance per
score and side (``score_variance``, growing with sin(yaw)^2; :meth:`ViewBias.score_variance_at`).
It is not the network's error alone (each KDEF view is a photo of its own, posed again), so the fit
uses it only where the scores decide most, a single image with no neutral
(FitConfig.single_image_view_trust).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.atomic import write_bytes_atomic
from core.digest import file_sha256
from core.errors import EmoCapError
from core.observe.headpose import estimate_head_pose
from core.take.integrity import npz_bytes

if TYPE_CHECKING:
    from core.take.observations import ObservationArrays

VIEW_BIAS_PATH = Path(__file__).resolve().parents[2] / "resources" / "landmark_view_bias.npz"
SCORE_FIELDS = ("score_odd", "score_even", "score_variance")  # ViewBias's optional score arrays, as stored


class ViewBiasError(EmoCapError):
    """The view-bias file is missing or not one this code can read."""


def view_azimuth_deg(rotation: np.ndarray) -> np.ndarray:
    """N x 3 x 3 head rotations (canonical -> image, core/observe/headpose.py) -> N azimuths
    (degrees) of the camera's viewing axis in the head's own frame, about the head's vertical axis.
    Equal to the head pose's yaw (euler_yaw_pitch_roll) when pitch and roll are zero."""
    rotation = np.asarray(rotation, np.float64)
    image_depth = rotation[..., 2, :]  # the image's z axis (away from the camera) in canonical coordinates
    return np.degrees(np.arctan2(-image_depth[..., 0], image_depth[..., 2]))


def yaw_features(yaw_deg: np.ndarray) -> np.ndarray:
    """N yaws (degrees) -> N x 2 (sin(yaw), 1 - cos(yaw))."""
    yaw = np.radians(np.asarray(yaw_deg, np.float64))
    return np.stack([np.sin(yaw), 1.0 - np.cos(yaw)], axis=-1)


@dataclass(frozen=True)
class ViewBias:
    """odd, even: 478 x 3 canonical units (see the module docstring). max_yaw_deg: yaws beyond it
    are treated as it. info: what the field was learned from (sources and their terms).
    score_odd, score_even: E, the blendshape network's score drift (None: not learned).
    score_variance: E, what remains between views once the drift is out, as a variance per unit of
    sin(yaw)^2, for a head turned to positive yaw (the mirror curve's for negative yaw)."""

    odd: np.ndarray
    even: np.ndarray
    max_yaw_deg: float
    info: dict = field(default_factory=dict)
    score_odd: np.ndarray | None = None
    score_even: np.ndarray | None = None
    score_variance: np.ndarray | None = None

    def field(self, yaw_deg: np.ndarray) -> np.ndarray:
        """N x 478 x 3 canonical-frame drift at N yaws (degrees)."""
        features = yaw_features(np.clip(yaw_deg, -self.max_yaw_deg, self.max_yaw_deg))
        return features[:, 0, None, None] * self.odd + features[:, 1, None, None] * self.even

    def correct(self, landmarks: np.ndarray, rotation: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """N x 478 x 3 image landmarks (pixels) with the drift of each frame's head pose taken out.
        rotation: N x 3 x 3 and scale: N (pixels per canonical unit) of the observed head pose
        (ObservationArrays.head_rotation, head_scale). Rows whose pose is not finite are returned
        as they are."""
        landmarks = np.asarray(landmarks, np.float64)
        rotation = np.asarray(rotation, np.float64)
        scale = np.asarray(scale, np.float64)
        known = np.isfinite(scale) & np.isfinite(rotation).all(axis=(1, 2))
        out = landmarks.copy()
        if known.any():
            drift = self.field(view_azimuth_deg(rotation[known]))
            out[known] -= scale[known, None, None] * np.matmul(drift, rotation[known].transpose(0, 2, 1))
        return out

    def score_drift(self, yaw_deg: np.ndarray) -> np.ndarray:
        """N x E drift of the network's scores at N yaws (degrees), when one was learned."""
        features = yaw_features(np.clip(yaw_deg, -self.max_yaw_deg, self.max_yaw_deg))
        return features[:, :1] * self.score_odd + features[:, 1:] * self.score_even

    def score_variance_at(self, yaw_deg: np.ndarray, mirror: np.ndarray) -> np.ndarray:
        """N x E the scores' remaining variance between views at N yaws (degrees; NaN: 0), when it
        was learned. mirror: E, each curve's mirror partner."""
        yaw = np.nan_to_num(np.clip(np.asarray(yaw_deg, np.float64), -self.max_yaw_deg, self.max_yaw_deg))
        per_side = np.where((yaw >= 0)[:, None], self.score_variance[None, :], self.score_variance[mirror][None, :])
        return per_side * np.sin(np.radians(yaw))[:, None] ** 2

    def correct_scores(self, scores: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        """N x E network scores with the drift of each frame's head pose (N x 3 x 3 rotation,
        ObservationArrays.head_rotation) taken out (:meth:`correct_scores_at_yaw`)."""
        return self.correct_scores_at_yaw(scores, view_azimuth_deg(rotation))

    def correct_scores_at_yaw(self, scores: np.ndarray, yaw_deg: np.ndarray) -> np.ndarray:
        """N x E network scores with the drift at each row's yaw (N, degrees) taken out, kept in
        [0, 1]; NaN scores (no output, or no face) and rows without a yaw stay as they are, and so do
        all scores when no score drift was learned."""
        scores = np.asarray(scores, np.float64)
        if self.score_odd is None or len(self.score_odd) != scores.shape[1]:
            return scores
        yaw_deg = np.asarray(yaw_deg, np.float64)
        known = np.isfinite(yaw_deg)
        out = scores.copy()
        if known.any():
            corrected = np.clip(scores[known] - self.score_drift(yaw_deg[known]), 0.0, 1.0)
            out[known] = np.where(np.isfinite(scores[known]), corrected, scores[known])
        return out


def observed_landmarks(observations: ObservationArrays, rows: np.ndarray, bias: ViewBias | None) -> np.ndarray:
    """M x 478 x 3 landmarks (image pixels) of ``rows`` of ``observations`` with the view drift of
    each frame's observed head pose (head_rotation, head_scale) taken out; as stored when ``bias``
    is None."""
    landmarks = np.asarray(observations.landmarks[rows], np.float64)
    if bias is None:
        return landmarks
    return bias.correct(landmarks, observations.head_rotation[rows], observations.head_scale[rows])


def observed_scores(observations: ObservationArrays, rows: np.ndarray, bias: ViewBias | None) -> np.ndarray:
    """M x E MediaPipe's blendshape scores of ``rows`` of ``observations`` with the network's drift
    at each frame's observed head pose taken out; as stored when ``bias`` is None."""
    scores = np.asarray(observations.blendshapes[rows], np.float64)
    if bias is None:
        return scores
    return bias.correct_scores(scores, observations.head_rotation[rows])


def canonical_view(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """One face's 478 x 3 image landmarks -> (the same in the observer's canonical frame, the
    inverse of its own head pose; the view's azimuth in degrees, :func:`view_azimuth_deg`): what
    :func:`learn_view_bias` learns from."""
    pose = estimate_head_pose(landmarks)
    canonical = (np.asarray(landmarks, np.float64) - pose.translation) @ pose.rotation / pose.scale
    return canonical, float(view_azimuth_deg(pose.rotation[None])[0])


def learn_view_bias(canonical: list[np.ndarray], yaw_deg: list[np.ndarray], mirror: np.ndarray,
                    max_yaw_deg: float, info: dict | None = None) -> ViewBias:
    """Learn the drift from neutral faces of P people, each seen in several views.

    canonical[p]: K_p x 478 x 3 person p's neutral landmarks in the canonical frame, one per view;
    yaw_deg[p]: K_p yaws (both from :func:`canonical_view`). Only differences between views of the same person are used, so the
    person's own shape cancels. mirror: 478, each landmark's mirror partner (x -> -x). The least-
    squares odd and even fields are made mirror-symmetric: odd(v) = -M odd(mirror v) and
    even(v) = M even(mirror v), M flipping x."""
    rows, targets = [], []
    for points, yaws in zip(canonical, yaw_deg):
        if len(points) < 2:
            continue
        features = yaw_features(np.clip(yaws, -max_yaw_deg, max_yaw_deg))
        for k in range(1, len(points)):
            rows.append(features[k] - features[0])
            targets.append((points[k] - points[0]).reshape(-1))
    if len(rows) < 2:
        raise ValueError("learning the view bias needs people seen in at least two views")
    odd, even = np.linalg.lstsq(np.array(rows), np.array(targets), rcond=None)[0].reshape(2, -1, 3)
    flip = np.array([-1.0, 1.0, 1.0])
    odd = 0.5 * (odd - odd[mirror] * flip)
    even = 0.5 * (even + even[mirror] * flip)
    return ViewBias(odd.astype(np.float32), even.astype(np.float32), float(max_yaw_deg), dict(info or {}))


def learn_score_drift(frontal: np.ndarray, turned: np.ndarray, frontal_yaw_deg: np.ndarray, turned_yaw_deg: np.ndarray,
                      mirror: np.ndarray, max_yaw_deg: float,
                      fixed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network's score drift from P pairs of photos of one face and expression: frontal and
    turned, P x E scores each (NaN: no output), and their P yaws (degrees, :func:`canonical_view`).
    mirror: E, each curve's mirror partner (itself for a symmetric one). fixed: E bool, curves whose
    drift is held at zero (and whose variance is 0). Returns (score_odd, score_even, score_variance),
    E each: the drift by least squares over the pairs and their mirror images (the odd term flips,
    Left and Right swap), and what remains of each pair's difference, as a variance per unit of
    sin(turned yaw)^2 (least squares), every pair seen as turned to positive yaw."""
    if len(frontal) < 2:
        raise ValueError("learning the score drift needs at least two pairs of views")
    turned_yaw = np.clip(np.asarray(turned_yaw_deg, np.float64), -max_yaw_deg, max_yaw_deg)
    features = yaw_features(turned_yaw) - yaw_features(np.clip(frontal_yaw_deg, -max_yaw_deg, max_yaw_deg))
    gap = np.nan_to_num(np.asarray(turned, np.float64) - np.asarray(frontal, np.float64))
    odd, even = np.linalg.lstsq(np.concatenate([features, features * np.array([-1.0, 1.0])]),
                                np.concatenate([gap, gap[:, mirror]]), rcond=None)[0]
    if fixed is not None:
        odd, even = np.where(fixed, 0.0, odd), np.where(fixed, 0.0, even)
    remaining = gap - features[:, :1] * odd - features[:, 1:] * even
    remaining = np.where((turned_yaw >= 0)[:, None], remaining, remaining[:, mirror])  # as if turned to +yaw
    size = np.sin(np.radians(turned_yaw)) ** 2
    variance = (size[:, None] * remaining**2).sum(axis=0) / max(float((size**2).sum()), 1e-12)
    if fixed is not None:
        variance = np.where(fixed, 0.0, variance)
    return odd.astype(np.float32), even.astype(np.float32), variance.astype(np.float32)


def save_view_bias(bias: ViewBias, path: Path) -> None:
    """Write ``bias`` to an .npz atomically; the same field and info give the same bytes (and so
    the same digest: a rebuild that changes nothing refits nothing)."""
    arrays = {"odd": bias.odd, "even": bias.even, "max_yaw_deg": np.float64(bias.max_yaw_deg),
              "info": np.array(json.dumps(bias.info, sort_keys=True))}
    for name in SCORE_FIELDS:
        if getattr(bias, name) is not None:
            arrays[name] = np.asarray(getattr(bias, name), np.float32)
    write_bytes_atomic(Path(path), npz_bytes(arrays))


def load_view_bias(path: Path = VIEW_BIAS_PATH) -> ViewBias:
    """The view bias stored at ``path`` (default: the one that ships in resources/)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            scores = {name: data[name].astype(np.float32) for name in SCORE_FIELDS if name in data.files}
            bias = ViewBias(data["odd"].astype(np.float32), data["even"].astype(np.float32),
                            float(data["max_yaw_deg"]), json.loads(str(data["info"])), **scores)
    except (OSError, KeyError, ValueError) as error:
        raise ViewBiasError(f"cannot read the landmark view bias {path}: {error}; rebuild it with "
                            "scripts/build_view_bias.py") from error
    if bias.odd.shape != (478, 3) or bias.even.shape != (478, 3):
        raise ViewBiasError(f"{path} holds fields of shape {bias.odd.shape}, not 478 x 3; rebuild it with "
                            "scripts/build_view_bias.py")
    return bias


@functools.cache
def view_bias_digest() -> str:
    """The first 16 hex digits of the SHA-256 of the shipped file: stored with every fit that used
    it, so that a rebuilt field makes those fits stale."""
    try:
        return file_sha256(VIEW_BIAS_PATH)[:16]
    except OSError as error:
        raise ViewBiasError(f"the landmark view bias {VIEW_BIAS_PATH} is missing: rebuild it with "
                            "scripts/build_view_bias.py") from error


@functools.cache
def shipped_view_bias() -> ViewBias:
    """The view bias in resources/, read once per process."""
    return load_view_bias(VIEW_BIAS_PATH)
