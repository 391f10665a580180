"""Rigid head pose from 3D landmarks by similarity alignment to a canonical face.

Coordinates follow OpenCV's camera convention: x to the image right, y down, z away from the
camera. MediaPipe's landmarks come in that frame (x, y in pixels, z in pixels of the same scale).
The canonical face (``resources/canonical_face_478.npy``, built by
``scripts/build_canonical_face.py``) looks straight at the camera with identity rotation, its
origin between the eyes and unit inter-ocular distance (outer eye corners).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.observe import landmark_ids as ids

CANONICAL_FACE_PATH = Path(__file__).resolve().parents[2] / "resources" / "canonical_face_478.npy"


@dataclass(frozen=True)
class HeadPose:
    """Similarity transform canonical -> image: ``x_img = scale * rotation @ x_can + translation``.

    rotation: 3 x 3, proper rotation. translation: (3,) pixels. scale: pixels per canonical unit
    (the outer-eye-corner distance). yaw_pitch_roll_deg: (3,) degrees, see :func:`euler_yaw_pitch_roll`.
    residual: RMS distance of the rigid points after alignment, in canonical units.
    """

    rotation: np.ndarray
    translation: np.ndarray
    scale: float
    yaw_pitch_roll_deg: np.ndarray
    residual: float


def similarity_align(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares similarity (Umeyama 1991) mapping ``source`` onto ``target``.

    source, target: N x 3. Returns rotation (3 x 3, det +1), translation (3,), scale such that
    ``target ~= scale * source @ rotation.T + translation``.
    """
    rotation, translation, scale = similarity_align_many(source, target[None])
    return rotation[0], translation[0], float(scale[0])


def similarity_align_many(source: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`similarity_align` of one ``source`` (N x 3) onto each of F ``targets`` (F x N x 3).
    Returns rotations F x 3 x 3, translations F x 3, scales F."""
    mu_s = source.mean(axis=0)
    mu_t = targets.mean(axis=1)  # F x 3
    s = source - mu_s
    t = targets - mu_t[:, None]
    cov = t.transpose(0, 2, 1) @ s / len(source)  # F x 3 x 3
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones((len(targets), 3))
    d[np.linalg.det(u) * np.linalg.det(vt) < 0, 2] = -1.0
    rotation = (u * d[:, None, :]) @ vt
    var_s = (s**2).sum() / len(source)
    scale = (sigma * d).sum(axis=1) / var_s
    translation = mu_t - scale[:, None] * (rotation @ mu_s)
    return rotation, translation, scale


def euler_yaw_pitch_roll(rotation: np.ndarray) -> np.ndarray:
    """Yaw (about the camera's y axis, positive = the face turns toward image right), pitch (about x,
    positive = chin down), roll (about z, positive = clockwise in the image), in degrees, for
    ``rotation = Ry(yaw) @ Rx(pitch) @ Rz(roll)``. Shape (3,)."""
    r = rotation
    pitch = np.arcsin(np.clip(-r[1, 2], -1.0, 1.0))
    yaw = np.arctan2(r[0, 2], r[2, 2])
    roll = np.arctan2(r[1, 0], r[1, 1])
    return np.degrees(np.array([yaw, pitch, roll]))


@lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """The canonical neutral face, 478 x 3 float64 (see module docstring)."""
    return np.load(CANONICAL_FACE_PATH).astype(np.float64)


def estimate_head_pose(landmarks: np.ndarray, canonical: np.ndarray | None = None) -> HeadPose:
    """Head pose of one face. landmarks: 478 x 3 image pixels (x, y, z)."""
    canonical = canonical_face() if canonical is None else canonical
    rigid = list(ids.RIGID)
    src = canonical[rigid]
    dst = landmarks[rigid].astype(np.float64)
    rotation, translation, scale = similarity_align(src, dst)
    aligned = (dst - translation) @ rotation / scale
    residual = float(np.sqrt(((aligned - src) ** 2).sum(axis=1).mean()))
    return HeadPose(rotation, translation, scale, euler_yaw_pitch_roll(rotation), residual)
