"""Typed values produced by face observation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.observe.headpose import HeadPose


@dataclass(frozen=True)
class FaceBox:
    """Axis-aligned face box in image pixels, with the detector's score in [0, 1]. roll_deg: how far
    the line from the face's right eye to its left eye turns from the image's x axis (degrees,
    clockwise on screen, as y points down; the detector's eye keypoints; 0 where unknown)."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    roll_deg: float = 0.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2])

    def iou(self, other: FaceBox) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float32)


@dataclass(frozen=True)
class FrameObservation:
    """What was seen of the tracked performer in one frame.

    landmarks: 478 x 3 float32, image pixels (x right, y down, z away from the camera in the same
    pixel scale as x); None when ``has_face`` is False. confidence: face-detector score on the
    tracked region in [0, 1], 0 without a face. crop_transform: 2 x 3 affine from image pixels to
    the aligned crop; ``crop``: that crop, H x W x 3 uint8 RGB (not stored in takes: it is
    recomputed from the video). faces_detected: faces the full-range detector found in this frame,
    -1 where it did not run (while tracking). blendshapes: 52 float32 scores in [0, 1] of MediaPipe's
    blendshape network on these landmarks, in ``core.facemodel.open_model.ARKIT_NAMES`` order
    (tongueOut NaN; core/observe/blendshapes.py); None without a face.
    """

    index: int
    timestamp: float
    has_face: bool
    confidence: float = 0.0
    landmarks: np.ndarray | None = None
    box: FaceBox | None = None
    head_pose: HeadPose | None = None
    crop_transform: np.ndarray | None = None
    crop: np.ndarray | None = None
    faces_detected: int = -1
    blendshapes: np.ndarray | None = None


@dataclass(frozen=True)
class ActorSelection:
    """How the performer was chosen when first found: ``faces_found`` candidates at ``frame_index``,
    the largest (``box``) is followed."""

    frame_index: int
    faces_found: int
    box: FaceBox


@dataclass(frozen=True)
class TrackState:
    """Everything the tracker carries from one frame to the next; stored with each chunk of a take
    so that a resumed run continues exactly where an uninterrupted one would.

    last_box: the performer's box in the previous frame (None when lost). last_seen_box: the most
    recent box ever seen, used to pick the same person again after a loss. selection: how the
    performer was chosen (None until a face was first found).
    """

    last_box: FaceBox | None = None
    last_seen_box: FaceBox | None = None
    selection: ActorSelection | None = None
