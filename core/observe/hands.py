"""Hands in front of the face, with MediaPipe's palm detector and hand landmark model (both shipped
inside the mediapipe wheel, Apache-2.0).

MediaPipe's face mesh keeps predicting a plausible, quiet face under a hand, so the landmarks alone
cannot tell that a frame's face is covered; a hand's own landmarks can.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.observe.landmark_ids import FACE_OVAL
from core.observe.mediapipe_runtime import QuietSolution, import_mediapipe

COVERING_POINTS = 3  # hand landmarks inside the face's outline that make it covered


class HandDetector:
    """Finds up to two hands in single RGB images (no tracking between calls)."""

    def __init__(self, min_score: float = 0.5) -> None:
        mp = import_mediapipe()
        self._solution = QuietSolution(
            lambda: mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=0,
                                             min_detection_confidence=min_score)
        )

    def hands(self, image: np.ndarray) -> list[np.ndarray]:
        """image: H x W x 3 uint8 RGB -> one 21 x 2 array of landmark pixels per hand found."""
        height, width = image.shape[:2]
        result = self._solution.process(np.ascontiguousarray(image))
        return [np.array([(p.x * width, p.y * height) for p in hand.landmark]) for hand in result.multi_hand_landmarks or []]

    def covers_face(self, image: np.ndarray, face_landmarks: np.ndarray) -> bool:
        """Whether a hand lies over the face: COVERING_POINTS or more of its landmarks inside the
        face's outline (face_landmarks: 478 x 2+ image pixels of MediaPipe's face mesh)."""
        outline = face_landmarks[list(FACE_OVAL), :2].astype(np.float32).reshape(-1, 1, 2)
        for hand in self.hands(image):
            inside = sum(cv2.pointPolygonTest(outline, (float(x), float(y)), False) >= 0 for x, y in hand)
            if inside >= COVERING_POINTS:
                return True
        return False

    def close(self) -> None:
        self._solution.close()

    def __enter__(self) -> HandDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
