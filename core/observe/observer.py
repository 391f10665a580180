"""Follow one performer through a clip and observe their face in every frame.

Per frame: if the performer was seen in the previous frame, the face mesh runs on a square around
that face (tracking). Otherwise the full-range detector looks at the whole frame (and, when it
finds nothing, the short-range one, which finds half profiles and faces filling the frame): the first time, it
picks the largest face (ties broken by position) and records how many it saw; after a loss, it picks
the face nearest to where the performer was last seen. A frame where no face is found is flagged
with ``has_face=False``; nothing is invented for it.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from core.observe import landmark_ids as ids
from core.observe.align import DEFAULT_CROP_SIZE, crop_transform, warp_crop
from core.observe.blendshapes import shared_network
from core.observe.detector import FaceDetector
from core.observe.headpose import estimate_head_pose
from core.observe.landmarker import MESH_INPUT_SIZE, CropLandmarker, crop_to_image, square_region
from core.observe.types import ActorSelection, FaceBox, FrameObservation, TrackState

log = logging.getLogger(__name__)

# A detector box is tight around the face; the mesh wants context around it.
DETECTION_REGION_SCALE = 2.0
# A box from landmarks spans brows to chin; the tracking square adds a margin for motion.
TRACKING_REGION_SCALE = 1.7
# A detected face rolled at least this far (its eyes' line from level, degrees) whose plain crop
# gives the mesh no face is tried again in a crop turned upright: the mesh's own detector misses
# some heads rolled 35 degrees and more. Of the development set's 57 photos turned by 35, 90 and
# -90 degrees, a level crop lost 1, 2 and 5; with the upright retry, 0, 0 and 2.
UPRIGHT_RETRY_DEG = 20.0


def box_from_landmarks(landmarks: np.ndarray) -> FaceBox:
    """Bounding box of the 468 surface landmarks (image pixels)."""
    pts = landmarks[: ids.NUM_SURFACE_LANDMARKS, :2]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return FaceBox(float(x0), float(y0), float(x1), float(y1))


def _next_roll(roll_deg: float, landmarks: np.ndarray) -> float:
    """The roll of the next frame's tracking crop after landmarks found in a crop turned by
    ``roll_deg``: level while the track is level (a level crop that works stays as it was); while
    it follows a head upright, the head's roll now (its outer eye corners), and level again once
    that is under UPRIGHT_RETRY_DEG."""
    if roll_deg == 0.0:
        return 0.0
    eyes = landmarks[ids.LEFT_EYE_OUTER, :2] - landmarks[ids.RIGHT_EYE_OUTER, :2]
    now = float(np.degrees(np.arctan2(eyes[1], eyes[0])))
    return now if abs(now) >= UPRIGHT_RETRY_DEG else 0.0


def nearest_box(boxes: list[FaceBox], reference: FaceBox) -> FaceBox:
    """The box whose centre is nearest to the reference's, in units of the reference's size."""
    size = max(reference.width, reference.height, 1.0)
    return min(boxes, key=lambda b: float(np.linalg.norm(b.center - reference.center)) / size)


class FaceObserver:
    """Observes the performer frame by frame. Not thread-safe; one per worker. Needs MediaPipe's
    blendshape network in the model store (ModelNotInstalledError otherwise).

    crop_size: side in pixels of the aligned crop for recognisers. crop_images: whether each
    observation carries the crop image too (else only its transform, and
    ``align.warp_crop(frame, observation.crop_transform)`` makes it when needed).
    """

    def __init__(
        self, *, crop_size: int = DEFAULT_CROP_SIZE, crop_images: bool = True, min_confidence: float = 0.5
    ) -> None:
        self.crop_size = crop_size
        self.crop_images = crop_images
        self._blendshapes = shared_network()
        self._landmarker = CropLandmarker(min_confidence)
        self._full_detector = FaceDetector(full_range=True, min_score=min_confidence)
        # The full-range model misses half profiles (KDEF's 45 degree views: 115 of 784) and faces
        # that fill a large photo; the short-range model finds them on the whole frame.
        self._near_detector = FaceDetector(full_range=False, min_score=min_confidence)
        self._crop_detector = FaceDetector(full_range=False, min_score=0.05)
        # MediaPipe releases the GIL while it runs: the confidence detector works on this thread
        # while the mesh runs on the caller's.
        self._side_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="face-confidence")
        self.state = TrackState()

    def reset(self, state: TrackState | None = None) -> None:
        """Start a new track from ``state`` (or from scratch): the mesh forgets its tracking.

        The pipeline resets at fixed frame indices so that a resumed run matches an uninterrupted
        one exactly."""
        self.state = state if state is not None else TrackState()
        self._landmarker.reset()

    def observe(self, index: int, timestamp: float, image: np.ndarray) -> FrameObservation:
        """image: H x W x 3 uint8 RGB."""
        return self.describe(self.track(index, timestamp, image), image)

    def track(self, index: int, timestamp: float, image: np.ndarray) -> FrameObservation:
        """The part of :meth:`observe` that the next frame depends on: landmarks, box, confidence
        and the tracking state. Head pose, crop transform, crop and blendshapes are left to
        :meth:`describe`, which a caller may run on another thread while it tracks the next frame."""
        faces_detected = -1
        landmarks = None
        roll = 0.0  # of the crop the landmarks come from
        if self.state.last_box is not None:
            roll = self.state.last_box.roll_deg  # 0 unless the track follows a rolled head upright
            region = square_region(self.state.last_box, TRACKING_REGION_SCALE)
            crop = self._landmarker.crop(image, region, roll)
            detections: Future = self._side_thread.submit(self._crop_detector.detect, crop)
            landmarks = self._landmarker.landmarks(crop, region, roll)
            if landmarks is None:
                detections.result()
                roll = 0.0
        if landmarks is None:
            boxes = self._full_detector.detect(image) or self._near_detector.detect(image)
            faces_detected = len(boxes)
            target = self._choose(boxes, index)
            if target is not None:
                self._landmarker.reset()
                region = square_region(target, DETECTION_REGION_SCALE)
                crop = self._landmarker.crop(image, region)
                detections = self._side_thread.submit(self._crop_detector.detect, crop)
                landmarks = self._landmarker.landmarks(crop, region)
                if landmarks is None:
                    # the detector's roll, then the short-range model's on the crop (the
                    # full-range model's eye keypoints read level on some heads rolled 75-90 degrees)
                    in_crop = detections.result()
                    rolls = [target.roll_deg] + ([max(in_crop, key=lambda b: b.score).roll_deg] if in_crop else [])
                    for candidate in rolls:
                        if abs(candidate) >= UPRIGHT_RETRY_DEG and landmarks is None:
                            landmarks, roll, detections = self._upright(image, region, candidate)
        if landmarks is None:
            self.state = TrackState(None, self.state.last_seen_box, self.state.selection)
            return FrameObservation(index, timestamp, False, faces_detected=faces_detected)

        box = box_from_landmarks(landmarks)
        confidence = self._confidence(detections.result(), region, roll, box)
        box = FaceBox(box.x0, box.y0, box.x1, box.y1, confidence, _next_roll(roll, landmarks))
        self.state = TrackState(box, box, self.state.selection)
        return FrameObservation(index=index, timestamp=timestamp, has_face=True, confidence=confidence,
                                landmarks=landmarks, box=box, faces_detected=faces_detected)

    def describe(self, tracked: FrameObservation, image: np.ndarray) -> FrameObservation:
        """The observation of :meth:`track`'s result on ``image`` (the same frame) completed with
        what depends on its landmarks alone: head pose, crop transform (and crop), blendshapes."""
        if not tracked.has_face:
            return tracked
        landmarks = tracked.landmarks
        transform = crop_transform(landmarks, self.crop_size)
        return dataclasses.replace(
            tracked,
            head_pose=estimate_head_pose(landmarks),
            crop_transform=transform,
            crop=warp_crop(image, transform, self.crop_size) if self.crop_images else None,
            blendshapes=self._blendshapes.predict(landmarks[None])[0],
        )

    def _choose(self, boxes: list[FaceBox], index: int) -> FaceBox | None:
        if not boxes:
            return None
        if self.state.selection is None:
            chosen = boxes[0]
            selection = ActorSelection(index, len(boxes), chosen)
            self.state = TrackState(None, None, selection)
            if len(boxes) > 1:
                log.info(
                    "%d faces in frame %d; following the largest at x=%.0f..%.0f, y=%.0f..%.0f",
                    len(boxes), index, chosen.x0, chosen.x1, chosen.y0, chosen.y1,
                )
            return chosen
        if self.state.last_seen_box is None:
            return boxes[0]
        return nearest_box(boxes, self.state.last_seen_box)

    def _upright(self, image: np.ndarray, region: tuple[float, float, float], roll_deg: float):
        """The mesh on the detection's region turned upright (for a head rolled so far that the
        mesh finds no face in the plain crop): (landmarks or None, roll_deg, the crop detector's
        future). Tracking then crops the next frames turned as well (:func:`_next_roll`)."""
        self._landmarker.reset()
        crop = self._landmarker.crop(image, region, roll_deg)
        detections = self._side_thread.submit(self._crop_detector.detect, crop)
        return self._landmarker.landmarks(crop, region, roll_deg), roll_deg, detections

    @staticmethod
    def _confidence(detections: list[FaceBox], region: tuple[float, float, float], roll_deg: float, box: FaceBox) -> float:
        """Best short-range detector score (detections in crop pixels of ``region`` turned by
        ``roll_deg``) among the detections that overlap the landmark box."""
        x0, y0, side = region
        scale = side / MESH_INPUT_SIZE
        best = 0.0
        for det in detections:
            if roll_deg == 0.0:
                in_image = FaceBox(x0 + det.x0 * scale, y0 + det.y0 * scale, x0 + det.x1 * scale, y0 + det.y1 * scale)
            else:  # the bounding box of the turned box's corners
                corners = np.array([[det.x0, det.y0, 0], [det.x1, det.y0, 0], [det.x0, det.y1, 0], [det.x1, det.y1, 0]])
                points = crop_to_image(corners / MESH_INPUT_SIZE, region, roll_deg)[:, :2]
                in_image = FaceBox(*points.min(axis=0), *points.max(axis=0))
            if in_image.iou(box) > 0.3:
                best = max(best, det.score)
        return float(best)

    def close(self) -> None:
        self._side_thread.shutdown(wait=True)
        self._landmarker.close()
        self._full_detector.close()
        self._near_detector.close()
        self._crop_detector.close()

    def __enter__(self) -> FaceObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
