"""478 face landmarks (with iris) from MediaPipe's face mesh, run on a square crop around the face.

Running the mesh on a crop that follows the performer (instead of the whole frame) lets it find
small or distant faces, keeps it on the chosen person when there are several, and costs the same at
any video resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.observe.mediapipe_runtime import QuietSolution, import_mediapipe
from core.observe.types import FaceBox

# The mesh model sees the face at about 128 px inside its 192 px input; a 256 px crop at 1.7x
# the face box keeps more detail than that (measured: 0.7 % of the eye distance from a 384 px crop).
MESH_INPUT_SIZE = 256


def square_region(box: FaceBox, scale: float) -> tuple[float, float, float]:
    """Square around ``box``: (x0, y0, side) in image pixels, side = scale * max(width, height)."""
    side = max(box.width, box.height) * scale
    cx, cy = box.center
    return cx - side / 2, cy - side / 2, side


def _crop_affine(region: tuple[float, float, float], roll_deg: float) -> np.ndarray:
    """2 x 3 affine from image pixels to the MESH_INPUT_SIZE crop of ``region`` turned by ``roll_deg``."""
    x0, y0, side = region
    s = MESH_INPUT_SIZE / side
    if roll_deg == 0.0:
        return np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]])
    centre = np.array([x0 + side / 2, y0 + side / 2])
    a = np.radians(roll_deg)
    turn = s * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # undoes the roll
    return np.concatenate([turn, (MESH_INPUT_SIZE / 2 - turn @ centre)[:, None]], axis=1)


def crop_to_image(points: np.ndarray, region: tuple[float, float, float], roll_deg: float = 0.0) -> np.ndarray:
    """N x 3 mesh outputs (x, y in [0, 1] of the crop, z in the same unit as x) of the crop of
    ``region`` turned by ``roll_deg`` -> N x 3 image pixels (float64)."""
    x0, y0, side = region
    out = np.empty_like(points, dtype=np.float64)
    out[:, 2] = points[:, 2] * side
    if roll_deg == 0.0:
        out[:, 0] = x0 + points[:, 0] * side
        out[:, 1] = y0 + points[:, 1] * side
        return out
    affine = _crop_affine(region, roll_deg)
    inverse = np.linalg.inv(affine[:, :2])
    crop_px = points[:, :2] * MESH_INPUT_SIZE
    out[:, :2] = (crop_px - affine[:, 2]) @ inverse.T
    return out


class CropLandmarker:
    """MediaPipe face mesh (refined: 478 points) on a crop resampled to MESH_INPUT_SIZE pixels.

    The mesh tracks between calls (it reuses the previous landmarks to place its region of
    interest); :meth:`reset` forgets that, so a new track starts from its detector.
    """

    def __init__(self, min_confidence: float = 0.5) -> None:
        mp = import_mediapipe()
        self._mesh = QuietSolution(
            lambda: mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=min_confidence,
                min_tracking_confidence=min_confidence,
            )
        )

    def crop(self, image: np.ndarray, region: tuple[float, float, float], roll_deg: float = 0.0) -> np.ndarray:
        """Resample the square region (x0, y0, side) of an RGB image to MESH_INPUT_SIZE pixels,
        turned by ``roll_deg`` about its centre so that a face rolled by that much stands upright
        in the crop; parts outside the image are black."""
        return cv2.warpAffine(
            image, _crop_affine(region, roll_deg), (MESH_INPUT_SIZE, MESH_INPUT_SIZE), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )

    def landmarks(self, crop: np.ndarray, region: tuple[float, float, float], roll_deg: float = 0.0) -> np.ndarray | None:
        """Landmarks of the face in ``crop`` (made by :meth:`crop` from ``region`` and ``roll_deg``),
        as 478 x 3 float32 image pixels, or None when the mesh finds no face."""
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        raw = np.array(
            [(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64
        )
        return crop_to_image(raw, region, roll_deg).astype(np.float32)

    def reset(self) -> None:
        self._mesh.reset()

    def close(self) -> None:
        self._mesh.close()
