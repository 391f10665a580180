"""How MediaPipe's landmarks of one performer drift with their head pose, learned from their takes.

The shipped view bias (core/observe/view_bias.py) takes out the part of the landmarks' drift with
yaw that is the same for everyone, learned from still photographs without pitch. What remains is
the performer's own: MediaPipe places its outline and its brow and lid points on this face as it
turns and nods differently than on the average face, and a fit reads that as expression or leaves
it as residual. Per landmark, in the observer's canonical frame (core/observe/headpose.py: one unit
is the outer-eye-corner distance), the drift is modelled as

    drift(azimuth, elevation) = sum_k feature_k(azimuth, elevation) * field_k

with the features sin(az), 1 - cos(az), sin(el), 1 - cos(el) and sin(az) sin(el) of the camera's
direction seen from the head (azimuth about the head's vertical axis, elevation above its
horizontal plane), each clamped to the range of directions the performer's takes showed: the
fields are not extrapolated beyond the poses they were learned at.

It is learned by :func:`learn_view_drift` from a fit's landmark residual over frames, regressed on
the features together with a constant and the fitted curve weights (so that what moves with an
expression or is constant is left to the performer's shapes and neutral, core/performer/
calibrate.py), with a ridge in units of frames held at REFERENCE_DEG: a take that hardly turns
learns next to nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.observe.view_bias import ViewBias, observed_landmarks, view_azimuth_deg

if TYPE_CHECKING:
    from core.take.observations import ObservationArrays

REFERENCE_DEG = 20.0  # the ridge counts frames at this azimuth and elevation
CURVE_RIDGE = 1e-3  # the ridge on the curves' part of the regression, in frames at full weight
NUM_FEATURES = 5


def has_head_pose(rotation: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """N bool: the frames whose observed head rotation (N x 3 x 3) and scale (N) are known."""
    return np.isfinite(scale) & np.isfinite(rotation).all(axis=(1, 2))


def view_direction_deg(rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """N x 3 x 3 observed head rotations (canonical -> image) -> (N azimuths, N elevations) in
    degrees: the camera's viewing axis in the head's own frame, about its vertical axis
    (core.observe.view_bias.view_azimuth_deg) and above its horizontal plane."""
    rotation = np.asarray(rotation, np.float64)
    depth = rotation[..., 2, :]  # the image's z axis in canonical coordinates
    elevation = np.degrees(np.arctan2(depth[..., 1], np.hypot(depth[..., 0], depth[..., 2])))
    return view_azimuth_deg(rotation), elevation


def drift_features(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """N azimuths and elevations (degrees) -> N x NUM_FEATURES features, each divided by its value
    at REFERENCE_DEG (so that a ridge counts frames held at that pose)."""
    az, el, ref = np.radians(azimuth_deg), np.radians(elevation_deg), np.radians(REFERENCE_DEG)
    raw = np.stack([np.sin(az), 1.0 - np.cos(az), np.sin(el), 1.0 - np.cos(el), np.sin(az) * np.sin(el)], axis=-1)
    unit = np.array([np.sin(ref), 1.0 - np.cos(ref), np.sin(ref), 1.0 - np.cos(ref), np.sin(ref) ** 2])
    return raw / unit


@dataclass(frozen=True)
class ViewDrift:
    """fields: NUM_FEATURES x V x 3 canonical units per unit feature (:func:`drift_features`);
    azimuth_range_deg, elevation_range_deg: (low, high) the directions are clamped to."""

    fields: np.ndarray
    azimuth_range_deg: tuple[float, float]
    elevation_range_deg: tuple[float, float]

    def field(self, rotation: np.ndarray) -> np.ndarray:
        """N x V x 3 canonical-frame drift at N observed head rotations (N x 3 x 3)."""
        azimuth, elevation = view_direction_deg(rotation)
        features = drift_features(np.clip(azimuth, *self.azimuth_range_deg), np.clip(elevation, *self.elevation_range_deg))
        return np.einsum("nk,kvc->nvc", features, self.fields)

    def correct(self, landmarks: np.ndarray, rotation: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """N x V x 3 image landmarks (pixels) with the drift at each frame's observed head pose
        (rotation N x 3 x 3, scale N pixels per canonical unit) taken out; rows without a pose as
        they are."""
        landmarks = np.asarray(landmarks, np.float64)
        rotation, scale = np.asarray(rotation, np.float64), np.asarray(scale, np.float64)
        known = has_head_pose(rotation, scale)
        out = landmarks.copy()
        if known.any():
            drift = self.field(rotation[known])
            out[known] -= scale[known, None, None] * np.matmul(drift, rotation[known].transpose(0, 2, 1))
        return out

    def size_mm(self, interocular_mm: float = 63.0) -> float:
        """The largest drift of any landmark over the clamped range of directions, in millimetres
        at a typical eye distance (for reports)."""
        corners = [(a, e) for a in self.azimuth_range_deg for e in self.elevation_range_deg]
        features = drift_features(*np.array(corners).T)
        return float(np.linalg.norm(np.einsum("nk,kvc->nvc", features, self.fields), axis=2).max() * interocular_mm)


def landmarks_as_fitted(observations: ObservationArrays, rows, bias: ViewBias | None,
                        drift: ViewDrift | None = None) -> np.ndarray:
    """M x 478 x 3 image landmarks of ``rows`` (indices or a slice) of ``observations`` as a fit
    reads them: the shipped view bias (None: none), then the performer's view drift (None: none)
    taken out at each frame's observed head pose."""
    landmarks = observed_landmarks(observations, rows, bias)
    if drift is None:
        return landmarks
    return drift.correct(landmarks, observations.head_rotation[rows], observations.head_scale[rows])


def canonical_residuals(residuals: np.ndarray, rotation: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """N x V x 3 image-space landmark residuals (pixels; observed minus fitted) -> the observer's
    canonical frame (the inverse of each frame's observed head rotation and scale)."""
    return np.einsum("nvi,nij->nvj", np.asarray(residuals, np.float64), np.asarray(rotation, np.float64)) / \
        np.asarray(scale, np.float64)[:, None, None]


def learn_view_drift(residuals: np.ndarray, weights: np.ndarray, rotation: np.ndarray, ridge: float,
                     shaped: np.ndarray | None = None) -> ViewDrift:
    """The drift fields from N frames: residuals N x V x 3 (canonical units, :func:`canonical_residuals`),
    the fitted curve weights N x E and the observed head rotations N x 3 x 3. For every landmark a
    least-squares problem: residual ~= constant + weights @ A + features @ fields, with ``ridge``
    (frames held at REFERENCE_DEG) on the fields and CURVE_RIDGE on A; only the fields are kept.
    ``shaped`` (V bool, default all): the landmarks the performer's shapes may move; on the others
    (the outline, which the shapes leave generic) nothing but the drift can follow the residual, so
    it is regressed on the constant and the features alone."""
    azimuth, elevation = view_direction_deg(rotation)
    features = drift_features(azimuth, elevation)
    shaped = np.ones(residuals.shape[1], bool) if shaped is None else np.asarray(shaped, bool)
    fields = np.zeros((NUM_FEATURES, *residuals.shape[1:]))
    for rows, curves in ((shaped, np.asarray(weights, np.float64)), (~shaped, np.zeros((len(weights), 0)))):
        if not rows.any():
            continue
        design = np.concatenate([np.ones((len(weights), 1)), curves, features], axis=1)
        # where the head turns as an expression is made, the two are nearly collinear: the curves
        # are held back far less, so that what either could explain stays with the curves
        penalty = np.concatenate([[0.0], np.full(curves.shape[1], CURVE_RIDGE), np.full(NUM_FEATURES, float(ridge))])
        flat = residuals[:, rows].reshape(len(residuals), -1)
        solution = np.linalg.solve(design.T @ design + np.diag(penalty), design.T @ flat)
        fields[:, rows] = solution[-NUM_FEATURES:].reshape(NUM_FEATURES, int(rows.sum()), residuals.shape[2])
    return ViewDrift(fields, (float(azimuth.min()), float(azimuth.max())),
                     (float(elevation.min()), float(elevation.max())))
