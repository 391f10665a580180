"""Face detection with MediaPipe's BlazeFace models (shipped inside the mediapipe wheel).

The full-range model finds every face, also small and distant ones, and is used to choose and
re-find the performer. The short-range model scores a face that fills a crop; its score is the
per-frame confidence.
"""

from __future__ import annotations

import numpy as np

from core.observe.mediapipe_runtime import QuietSolution, import_mediapipe
from core.observe.types import FaceBox


class FaceDetector:
    """Finds faces in RGB images. ``full_range=True`` for whole frames, False for face crops."""

    def __init__(self, *, full_range: bool, min_score: float = 0.5) -> None:
        mp = import_mediapipe()
        self._solution = QuietSolution(
            lambda: mp.solutions.face_detection.FaceDetection(
                model_selection=1 if full_range else 0, min_detection_confidence=min_score
            )
        )

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """image: H x W x 3 uint8 RGB. Returns boxes in pixels, largest first, ties broken by
        position (left, then top) so that the order is deterministic."""
        height, width = image.shape[:2]
        result = self._solution.process(image)
        boxes = []
        for det in result.detections or []:
            rel = det.location_data.relative_bounding_box
            x0 = max(rel.xmin, 0.0) * width
            y0 = max(rel.ymin, 0.0) * height
            x1 = min(rel.xmin + rel.width, 1.0) * width
            y1 = min(rel.ymin + rel.height, 1.0) * height
            box = FaceBox(x0, y0, x1, y1, float(det.score[0]), _eye_roll_deg(det, width, height))
            if box.area > 0:
                boxes.append(box)
        boxes.sort(key=lambda b: (-round(b.area, 3), b.x0, b.y0))
        return boxes

    def close(self) -> None:
        self._solution.close()


def _eye_roll_deg(detection, width: int, height: int) -> float:
    """The roll of a BlazeFace detection from its first two keypoints (the face's right eye, then
    its left eye), in degrees; 0 without them."""
    points = detection.location_data.relative_keypoints
    if len(points) < 2:
        return 0.0
    right, left = points[0], points[1]
    return float(np.degrees(np.arctan2((left.y - right.y) * height, (left.x - right.x) * width)))
