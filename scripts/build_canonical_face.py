"""Rebuild ``resources/canonical_face_478.npy``: the canonical face used for rigid head pose.

It is the generalised-Procrustes median of MediaPipe face-mesh observations on the project's fixture
clips, put in an anatomical frame: origin between the outer eye corners, x toward the performer's
left (image right), y from the eyes toward the mouth (image down), z = x cross y (away from the
camera), unit outer-eye-corner distance.

    python scripts/build_canonical_face.py [--fixtures ../shared/fixtures]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from core.observe import landmark_ids as ids
from core.observe.detector import FaceDetector
from core.observe.headpose import CANONICAL_FACE_PATH, similarity_align
from core.observe.landmarker import CropLandmarker, square_region
from core.video import open_source  # noqa: E402

log = logging.getLogger("build_canonical_face")
CLIPS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov")


def observe_clip(path: Path, step: int) -> list[np.ndarray]:
    detector = FaceDetector(full_range=True)
    landmarker = CropLandmarker()
    shapes = []
    with open_source(path) as source:
        for index, image in source.iter_frames():
            if index % step:
                continue
            boxes = detector.detect(image)
            if not boxes:
                continue
            landmarker.reset()
            region = square_region(boxes[0], 2.0)
            lms = landmarker.landmarks(landmarker.crop(image, region), region)
            if lms is not None:
                shapes.append(lms.astype(np.float64))
    return shapes


def procrustes_median(shapes: list[np.ndarray], iterations: int = 5) -> np.ndarray:
    rigid = list(ids.RIGID)
    reference = shapes[0]
    for _ in range(iterations):
        aligned = []
        for shape in shapes:
            rotation, translation, scale = similarity_align(shape[rigid], reference[rigid])
            aligned.append(scale * shape @ rotation.T + translation)
        reference = np.median(np.stack(aligned), axis=0)
    return reference


def to_anatomical_frame(shape: np.ndarray) -> np.ndarray:
    right_outer, left_outer = shape[ids.RIGHT_EYE_OUTER], shape[ids.LEFT_EYE_OUTER]
    origin = (right_outer + left_outer) / 2
    x_axis = left_outer - right_outer
    iod = np.linalg.norm(x_axis)
    x_axis /= iod
    mouth = (shape[ids.MOUTH_RIGHT] + shape[ids.MOUTH_LEFT]) / 2
    y_axis = mouth - origin
    y_axis -= x_axis * (y_axis @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    basis = np.stack([x_axis, y_axis, z_axis])
    return (shape - origin) @ basis.T / iod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=Path("../shared/fixtures"))
    parser.add_argument("--step", type=int, default=4, help="use every STEP-th frame")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    shapes = []
    for name in CLIPS:
        clip_shapes = observe_clip(args.fixtures / name, args.step)
        log.info("%s: %d faces", name, len(clip_shapes))
        shapes += clip_shapes
    canonical = to_anatomical_frame(procrustes_median(shapes))
    CANONICAL_FACE_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.save(CANONICAL_FACE_PATH, canonical.astype(np.float32))
    log.info("wrote %s from %d observations", CANONICAL_FACE_PATH, len(shapes))


if __name__ == "__main__":
    main()
