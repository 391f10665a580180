"""Head pose and camera between image space (what a take stores) and crop space (what an encoder sees).

A take's camera is scaled orthographic in image pixels (core/fit/camera.py):
``p = s F X + t`` with F = diag(1, -1, -1), X the posed model points (metres), s = exp(camera[0]).
The aligned crop (core/observe/align.py) is a similarity of the image: ``c = k Q p_xy + m`` (k a
scale, Q an in-plane rotation by theta, m a shift; a 2 x 3 ``crop_transform`` for a crop of side
C pixels). An encoder sees only the crop, so it predicts the pose *in the crop*, normalised so the
crop's side is 1:

- rotation: the head rotation R' = G R with G = Rz(-theta) (in model space, rotating by -theta
  about the viewing axis is what Q does on screen: Q (F X)_xy = (F G X)_xy);
- camera: (log(k s / C), tx, ty, tz) with, since the head turns about its root joint j
  (G X = X(R') + (G - I) j),
  t_xy = (k s (F (G - I) j)_xy + k Q t_xy + m) / C and t_z = k t_z / C.

Then ``project(X(R'), camera_crop) * C`` equals the crop transform applied to ``project(X(R),
camera)`` (x, y exactly; z scaled by k). All functions are NumPy, float64 inside, vectorised over N.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from core.fit.camera import AXIS_FLIP

FLIP = np.array(AXIS_FLIP)


def similarity_parts(transforms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """N x 2 x 3 crop transforms -> (scale k N, angle theta N radians, Q N x 2 x 2, shift m N x 2)."""
    a = np.asarray(transforms, np.float64)[:, :, :2]
    k = np.sqrt(np.abs(np.linalg.det(a)))
    q = a / k[:, None, None]
    theta = np.arctan2(q[:, 1, 0], q[:, 0, 0])
    return k, theta, q, np.asarray(transforms, np.float64)[:, :, 2]


def _rz(theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    out = np.zeros((len(theta), 3, 3))
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1], out[:, 2, 2] = c, -s, s, c, 1.0
    return out


def _root_offset(g: np.ndarray, root: np.ndarray) -> np.ndarray:
    """F (G - I) j: N x 3 (z is 0: G turns about the viewing axis)."""
    j = np.broadcast_to(np.asarray(root, np.float64), (len(g), 3))
    return (np.einsum("nij,nj->ni", g, j) - j) * FLIP


def pose_to_crop(rotation: np.ndarray, camera: np.ndarray, root: np.ndarray, transforms: np.ndarray,
                 crop_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Image-space rotation N x 3 (axis-angle) and camera N x 4 -> crop-space rotation N x 3 and
    normalised camera N x 4. root: (3,) or N x 3 rest root joint (metres; depends on identity).
    transforms: N x 2 x 3 crop transforms of crops of side ``crop_size`` pixels."""
    k, theta, q, m = similarity_parts(transforms)
    g = _rz(-theta)
    rot = Rotation.from_matrix(g @ Rotation.from_rotvec(np.asarray(rotation, np.float64)).as_matrix())
    camera = np.asarray(camera, np.float64)
    s = np.exp(camera[:, 0])
    txy = (k * s)[:, None] * _root_offset(g, root)[:, :2] + k[:, None] * np.einsum("nij,nj->ni", q, camera[:, 1:3]) + m
    out = np.empty_like(camera)
    out[:, 0] = np.log(k * s / crop_size)
    out[:, 1:3] = txy / crop_size
    out[:, 3] = k * camera[:, 3] / crop_size
    return rot.as_rotvec().astype(np.float32), out.astype(np.float32)


def pose_from_crop(rotation: np.ndarray, camera: np.ndarray, root: np.ndarray, transforms: np.ndarray,
                   crop_size: float) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`pose_to_crop`: crop-space rotation N x 3 and camera N x 4 ->
    image-space rotation N x 3 and camera N x 4 (core/fit/camera.py)."""
    k, theta, q, m = similarity_parts(transforms)
    g = _rz(-theta)
    rot = Rotation.from_matrix(np.transpose(g, (0, 2, 1)) @ Rotation.from_rotvec(np.asarray(rotation, np.float64)).as_matrix())
    camera = np.asarray(camera, np.float64)
    s = np.exp(camera[:, 0]) * crop_size / k
    rest = crop_size * camera[:, 1:3] - m - (k * s)[:, None] * _root_offset(g, root)[:, :2]
    out = np.empty_like(camera)
    out[:, 0] = np.log(s)
    out[:, 1:3] = np.einsum("nji,nj->ni", q, rest) / k[:, None]
    out[:, 3] = crop_size * camera[:, 3] / k
    return rot.as_rotvec().astype(np.float32), out.astype(np.float32)


def landmarks_to_crop(landmarks: np.ndarray, transforms: np.ndarray, crop_size: float) -> np.ndarray:
    """Image landmarks N x L x 3 (pixels; z MediaPipe's depth in pixels) -> crop space, normalised
    (x, y in crop sides from the top-left corner; z scaled by the same factor)."""
    k, _, _, _ = similarity_parts(transforms)
    t = np.asarray(transforms, np.float64)
    pts = np.asarray(landmarks, np.float64)
    xy = np.einsum("nij,nlj->nli", t[:, :, :2], pts[..., :2]) + t[:, None, :, 2]
    z = k[:, None] * pts[..., 2]
    return (np.concatenate([xy, z[..., None]], axis=2) / crop_size).astype(np.float32)


def scaled_transforms(transforms: np.ndarray, from_size: float, to_size: float) -> np.ndarray:
    """Crop transforms for a crop of side ``from_size`` -> the same crop at side ``to_size``."""
    return (np.asarray(transforms, np.float64) * (to_size / from_size))
