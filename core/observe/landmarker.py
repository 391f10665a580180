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

    def crop(self, image: np.ndarray, region: tuple[float, float, float]) -> np.ndarray:
        """Resample the square region (x0, y0, side) of an RGB image to MESH_INPUT_SIZE pixels;
        parts outside the image are black."""
        x0, y0, side = region
        s = MESH_INPUT_SIZE / side
        affine = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]])
        return cv2.warpAffine(
            image, affine, (MESH_INPUT_SIZE, MESH_INPUT_SIZE), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )

    def landmarks(self, crop: np.ndarray, region: tuple[float, float, float]) -> np.ndarray | None:
        """Landmarks of the face in ``crop`` (made by :meth:`crop` from ``region``), as 478 x 3
        float32 image pixels, or None when the mesh finds no face."""
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        x0, y0, side = region
        raw = np.array(
            [(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float64
        )
        out = np.empty_like(raw)
        out[:, 0] = x0 + raw[:, 0] * side
        out[:, 1] = y0 + raw[:, 1] * side
        out[:, 2] = raw[:, 2] * side
        return out.astype(np.float32)

    def reset(self) -> None:
        self._mesh.reset()

    def close(self) -> None:
        self._mesh.close()
