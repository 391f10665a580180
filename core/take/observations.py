"""Observations of many frames as arrays: the compact form a take stores (no images)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

import numpy as np

from core.errors import ModelIntegrityError, ModelNotInstalledError
from core.observe.headpose import HeadPose
from core.observe.landmark_ids import NUM_LANDMARKS
from core.observe.types import ActorSelection, FaceBox, FrameObservation, TrackState
from core.take.landmarks import ChunkedLandmarks

log = logging.getLogger(__name__)
NUM_BLENDSHAPES = 52  # MediaPipe's blendshape network's scores, in ARKIT_NAMES order


@dataclass(frozen=True)
class ObservationArrays:
    """Per-frame observations of N frames. Rows of frames without a face hold NaN (and
    has_face False).

    index: N int64. timestamp: N float64 seconds. has_face: N bool. confidence: N float32.
    landmarks: N x 478 x 3 float32 image pixels. box: N x 4 float32 (x0, y0, x1, y1) pixels.
    head_rotation: N x 3 x 3 float32. head_translation: N x 3 float32 pixels. head_scale: N float32
    pixels per canonical unit. yaw_pitch_roll: N x 3 float32 degrees. pose_residual: N float32.
    crop_transform: N x 2 x 3 float32. faces_detected: N int16 (-1: detector did not run).
    blendshapes: N x 52 float32, MediaPipe's blendshape network's scores in [0, 1] in
    ``core.facemodel.open_model.ARKIT_NAMES`` order (tongueOut NaN; core/observe/blendshapes.py).

    ``landmarks`` is an array or, read from a take for an analysis (``Take.load_observations(
    landmarks_on_demand=True)``), a :class:`core.take.landmarks.ChunkedLandmarks` that reads them
    from the take's chunks when indexed: index it by rows (``landmarks[rows]``) rather than
    treating it as one array.
    """

    index: np.ndarray
    timestamp: np.ndarray
    has_face: np.ndarray
    confidence: np.ndarray
    landmarks: np.ndarray | ChunkedLandmarks
    box: np.ndarray
    head_rotation: np.ndarray
    head_translation: np.ndarray
    head_scale: np.ndarray
    yaw_pitch_roll: np.ndarray
    pose_residual: np.ndarray
    crop_transform: np.ndarray
    faces_detected: np.ndarray
    blendshapes: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def empty(cls, n: int, landmarks: bool = True) -> ObservationArrays:
        """N rows without a face; ``landmarks`` False: a landmarks array of no rows (for a caller
        that supplies them otherwise)."""
        nan = np.float32(np.nan)
        return cls(
            index=np.zeros(n, np.int64),
            timestamp=np.zeros(n, np.float64),
            has_face=np.zeros(n, bool),
            confidence=np.zeros(n, np.float32),
            landmarks=np.full((n if landmarks else 0, NUM_LANDMARKS, 3), nan, np.float32),
            box=np.full((n, 4), nan, np.float32),
            head_rotation=np.full((n, 3, 3), nan, np.float32),
            head_translation=np.full((n, 3), nan, np.float32),
            head_scale=np.full(n, nan, np.float32),
            yaw_pitch_roll=np.full((n, 3), nan, np.float32),
            pose_residual=np.full(n, nan, np.float32),
            crop_transform=np.full((n, 2, 3), nan, np.float32),
            faces_detected=np.full(n, -1, np.int16),
            blendshapes=np.full((n, NUM_BLENDSHAPES), nan, np.float32),
        )

    @classmethod
    def from_observations(cls, observations: list[FrameObservation]) -> ObservationArrays:
        out = cls.empty(len(observations))
        for row, obs in enumerate(observations):
            out.index[row] = obs.index
            out.timestamp[row] = obs.timestamp
            out.faces_detected[row] = obs.faces_detected
            if not obs.has_face:
                continue
            pose = obs.head_pose
            out.has_face[row] = True
            out.confidence[row] = obs.confidence
            out.landmarks[row] = obs.landmarks
            out.box[row] = obs.box.as_array()
            out.head_rotation[row] = pose.rotation
            out.head_translation[row] = pose.translation
            out.head_scale[row] = pose.scale
            out.yaw_pitch_roll[row] = pose.yaw_pitch_roll_deg
            out.pose_residual[row] = pose.residual
            out.crop_transform[row] = obs.crop_transform
            out.blendshapes[row] = obs.blendshapes
        return out

    def observation(self, row: int) -> FrameObservation:
        """The stored frame ``row`` as a FrameObservation (without the crop image)."""
        index, timestamp = int(self.index[row]), float(self.timestamp[row])
        faces = int(self.faces_detected[row])
        if not self.has_face[row]:
            return FrameObservation(index, timestamp, False, faces_detected=faces)
        conf = float(self.confidence[row])
        pose = HeadPose(
            self.head_rotation[row].astype(np.float64),
            self.head_translation[row].astype(np.float64),
            float(self.head_scale[row]),
            self.yaw_pitch_roll[row].astype(np.float64),
            float(self.pose_residual[row]),
        )
        return FrameObservation(
            index=index, timestamp=timestamp, has_face=True, confidence=conf,
            landmarks=self.landmarks[row], box=FaceBox(*map(float, self.box[row]), conf),
            head_pose=pose, crop_transform=self.crop_transform[row].astype(np.float64),
            faces_detected=faces, blendshapes=self.blendshapes[row],
        )

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_npz_dict(cls, data) -> ObservationArrays:
        """From a stored chunk; a chunk from before takes kept ``blendshapes`` gets them computed
        from its landmarks (NaN, with a warning, when the network is not installed)."""
        names = [f.name for f in fields(cls) if f.name != "blendshapes"]
        arrays = {name: np.asarray(data[name]) for name in names}
        files = getattr(data, "files", data)
        if "blendshapes" in files:
            arrays["blendshapes"] = np.asarray(data["blendshapes"])
        else:
            arrays["blendshapes"] = blendshapes_of(arrays["landmarks"])
        return cls(**arrays)

    @classmethod
    def gather(cls, parts: Iterable[ObservationArrays], capacity: int,
               landmarks_of: Callable[[list[int]], ChunkedLandmarks] | None = None) -> ObservationArrays:
        """The rows of ``parts``, in order, copied into one block as each part arrives, so that one
        part at a time is held beside the result (np.concatenate of a list holds them all: twice
        the observations at the peak). ``capacity``: at least the total number of rows (ValueError
        otherwise); the result views the block's first rows. ``landmarks_of``: when given, the
        parts' landmarks are not copied; the result's are ``landmarks_of(row count of each part)``."""
        out, rows, lengths = cls.empty(capacity, landmarks=landmarks_of is None), 0, []
        copied = [f.name for f in fields(cls) if landmarks_of is None or f.name != "landmarks"]
        for part in parts:
            n = len(part)
            if rows + n > capacity:
                raise ValueError(f"more than {capacity} observed rows")
            for name in copied:
                getattr(out, name)[rows : rows + n] = getattr(part, name)
            rows += n
            lengths.append(n)
        columns = {name: getattr(out, name)[:rows] for name in copied}
        if landmarks_of is not None:
            columns["landmarks"] = landmarks_of(lengths)
        return cls(**columns)


_warned_missing_network = False


def blendshapes_of(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe's blendshape scores (N x 52 float32) of N x 478 x 3 stored landmarks; NaN, with a
    warning (once per process), when the network is not installed or not intact."""
    global _warned_missing_network
    from core.observe.blendshapes import shared_network

    try:
        return shared_network().predict(landmarks)
    except (ModelNotInstalledError, ModelIntegrityError) as err:
        if not _warned_missing_network:
            _warned_missing_network = True
            log.warning("a take stored before MediaPipe's blendshape scores is read without them: %s", err)
        return np.full((len(landmarks), NUM_BLENDSHAPES), np.nan, np.float32)


def _box_to_array(box: FaceBox | None) -> np.ndarray:
    if box is None:
        return np.full(6, np.nan)
    return np.array([box.x0, box.y0, box.x1, box.y1, box.score, box.roll_deg], np.float64)


def _box_from_array(values: np.ndarray) -> FaceBox | None:
    """A box from its 6 values (takes written before 2026-12-07 stored 5, without the roll)."""
    return None if np.isnan(values[0]) else FaceBox(*map(float, values))


def track_state_to_arrays(state: TrackState) -> dict[str, np.ndarray]:
    """Exact (float64) serialisation of a TrackState for a take chunk."""
    selection = state.selection
    return {
        "state_last_box": _box_to_array(state.last_box),
        "state_last_seen_box": _box_to_array(state.last_seen_box),
        "state_selection": np.array(
            [-1, 0] if selection is None else [selection.frame_index, selection.faces_found], np.int64
        ),
        "state_selection_box": _box_to_array(selection.box if selection else None),
    }


def track_state_from_arrays(data) -> TrackState:
    frame_index, faces_found = (int(v) for v in data["state_selection"])
    selection = None
    if frame_index >= 0:
        selection = ActorSelection(frame_index, faces_found, _box_from_array(data["state_selection_box"]))
    return TrackState(
        _box_from_array(data["state_last_box"]), _box_from_array(data["state_last_seen_box"]), selection
    )
