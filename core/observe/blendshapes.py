"""MediaPipe's learned blendshape network: 52 ARKit-style scores from a face's landmarks.

``face_blendshapes.tflite`` (Google, Apache-2.0; installed in the model store as ``blendshapes``,
see core/emotion/store.py) is the network MediaPipe's Face Landmarker runs after its mesh. It reads
146 of the 478 landmarks, x and y only, in the order of ``kLandmarksSubsetIdxs`` in MediaPipe's
``mediapipe/tasks/cc/vision/face_landmarker/face_blendshapes_graph.cc`` (:data:`LANDMARK_SUBSET`).
That graph feeds them through ``LandmarksToTensorCalculator`` with the image size and the
attributes X and Y, which turns MediaPipe's normalised coordinates into image pixels (x times the
width, y times the height, y down); the network then centres and scales them itself. EmoCap's
landmarks are already image pixels (``FrameObservation.landmarks``), so they go in as they are.
On MediaPipe Face Landmarker's own landmarks of the Wolfgang clip this reproduces its scores to
2e-6.

Outputs: MediaPipe's order is ``_neutral`` then 51 ARKit names (:data:`NETWORK_NAMES`, no
tongueOut); :meth:`BlendshapeNetwork.predict` returns them in EmoCap's open-model order
(``core.facemodel.open_model.ARKIT_NAMES``, Apple's), ``_neutral`` dropped and tongueOut NaN.
Left/Right follow ARKit's convention (the performer's side), as EmoCap's curves do. About 0.3 ms
per face on one CPU thread (XNNPACK).
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from core.emotion.store import model_path
from core.observe.mediapipe_runtime import native_stderr_silenced

# kLandmarksSubsetIdxs of face_blendshapes_graph.cc: the network's 146 input points, in its order.
LANDMARK_SUBSET = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67,
    70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148,
    149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185,
    191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295,
    296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362,
    365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400,
    402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
], np.int64)

# The network's 52 outputs, in its order.
NETWORK_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)


class BlendshapeNetwork:
    """MediaPipe's blendshape network on the CPU (LiteRT, one thread).

    ``path``: the .tflite file; by default the verified file of the model store
    (ModelNotInstalledError when it is missing, ModelIntegrityError when it does not match its
    SHA-256). Thread-safe: a LiteRT interpreter is not, so calls are serialised by a lock (a face
    takes about 0.3 ms)."""

    def __init__(self, path: str | Path | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from core.facemodel.open_model import ARKIT_NAMES  # here: open_model imports core.observe

        path = model_path("blendshapes") if path is None else path
        # LiteRT prints "Created TensorFlow Lite XNNPACK delegate" to file descriptor 2.
        with native_stderr_silenced():
            self._interpreter = Interpreter(model_path=str(path), num_threads=1)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._lock = threading.Lock()
        # For each of EmoCap's names, the network's output index (-1: the network has none, tongueOut).
        self._from_network = np.array([NETWORK_NAMES.index(n) if n in NETWORK_NAMES else -1 for n in ARKIT_NAMES])

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        """Scores of N faces. landmarks: N x 478 x 2 (or x 3; z is not used) image pixels, rows of
        NaN for frames without a face. Returns N x 52 float32 in [0, 1], in ARKIT_NAMES order;
        tongueOut and the rows of frames without a face are NaN."""
        points = np.asarray(landmarks, np.float32)[:, LANDMARK_SUBSET, :2]
        raw = np.full((len(points), len(NETWORK_NAMES)), np.nan, np.float32)
        with self._lock:
            for row in np.flatnonzero(np.isfinite(points).all(axis=(1, 2))):
                self._interpreter.set_tensor(self._input, points[row][None])
                self._interpreter.invoke()
                raw[row] = self._interpreter.get_tensor(self._output).reshape(-1)
        out = raw[:, np.maximum(self._from_network, 0)]
        out[:, self._from_network < 0] = np.nan
        return out


_shared: BlendshapeNetwork | None = None
_shared_lock = threading.Lock()


def shared_network() -> BlendshapeNetwork:
    """One network for the whole process (created on first use; raises as BlendshapeNetwork does)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = BlendshapeNetwork()
        return _shared
