"""Rebuild ``resources/open_face_model.npz``, EmoCap's own open face model.

The authored model comes from the canonical face (core/facemodel/open_model_authoring.py); it is then
calibrated on photographs of people seen neutral and in six expressions (KDEF, in
``../shared/expressions/kdef``: 56 people, three views; see core/facemodel/open_model_calibration.py):
every photo is observed with MediaPipe's face mesh (as the pipeline does) and scored by MediaPipe's
learned blendshape network (``emocap models install`` installs it). Deterministic for the same inputs.

    python scripts/build_open_model.py [--calibration ../shared/expressions/kdef | --authored-only]
        [--canonical resources/canonical_face_478.npy] [--out resources/open_face_model.npz]

KDEF (Lundqvist, Flykt and Öhman 1998, Karolinska Institutet) is licensed for non-commercial
research; the calibrated model records that it was derived from it (info.calibration.sources).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.facemodel.calibration import CalibrationData  # noqa: E402
from core.facemodel.open_model import OPEN_MODEL_PATH, save_open_model  # noqa: E402
from core.facemodel.open_model_authoring import build_open_model  # noqa: E402
from core.facemodel.open_model_calibration import calibrate_open_model  # noqa: E402
from core.observe import FaceObserver  # noqa: E402
from core.observe.blendshapes import BlendshapeNetwork  # noqa: E402
from core.observe.headpose import CANONICAL_FACE_PATH  # noqa: E402
from core.video import open_source  # noqa: E402

log = logging.getLogger("build_open_model")

KDEF = ROOT.parent / "shared" / "expressions" / "kdef"
EXPRESSIONS = ("happy", "sad", "surprise", "fear", "anger", "disgust")
KDEF_TERMS = ("KDEF (Karolinska Directed Emotional Faces; Lundqvist, Flykt & Ohman 1998, Karolinska Institutet), "
              "session A: 56 people, neutral and six expressions, frontal and 45-degree views; "
              "licensed for non-commercial research")


def observe(paths: list[Path]) -> np.ndarray:
    """N x 478 x 3 landmarks (image pixels) of each photo observed alone; NaN where no face."""
    out = np.full((len(paths), 478, 3), np.nan, np.float32)
    with FaceObserver(crop_images=False) as observer:
        for k, path in enumerate(paths):
            with open_source(path) as source:
                image = source.read(0)
            observer.reset()
            observation = observer.observe(0, 0.0, image)
            if observation.has_face:
                out[k] = observation.landmarks
            else:
                log.warning("no face in %s: left out", path.name)
    return out


def kdef_calibration(folder: Path) -> CalibrationData:
    """Observe every KDEF photo of ``folder`` (its labels.csv) into CalibrationData."""
    with open(folder / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    photos = {(r["identity"].split()[-1], r["label"], r["view"]): folder / r["file"] for r in rows}
    keys = sorted(photos)
    landmarks = dict(zip(keys, observe([photos[k] for k in keys])))
    network = BlendshapeNetwork()
    neutral_keys = [k for k in keys if k[1] == "neutral" and np.isfinite(landmarks[k]).all()]
    neutral_row = {(person, view): row for row, (person, _, view) in enumerate(neutral_keys)}
    pairs = [k for k in keys if k[1] in EXPRESSIONS and (k[0], k[2]) in neutral_row and np.isfinite(landmarks[k]).all()]
    neutral = np.stack([landmarks[k] for k in neutral_keys])
    expression = np.stack([landmarks[k] for k in pairs])
    log.info("KDEF: %d neutral and %d expression photos of %d people observed", len(neutral), len(expression),
             len({k[0] for k in pairs}))
    return CalibrationData(
        neutral_landmarks=neutral,
        neutral_scores=network.predict(neutral),
        expression_landmarks=expression,
        expression_scores=network.predict(expression),
        expression_neutral=np.array([neutral_row[(k[0], k[2])] for k in pairs]),
        expression_person=np.array([k[0] for k in pairs]),
        expression_label=np.array([k[1] for k in pairs]),
        sources={"photos": KDEF_TERMS, "evidence": "MediaPipe's face_blendshapes.tflite (Apache-2.0)"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canonical", type=Path, default=CANONICAL_FACE_PATH)
    parser.add_argument("--out", type=Path, default=OPEN_MODEL_PATH)
    parser.add_argument("--calibration", type=Path, default=KDEF, help="KDEF folder with labels.csv")
    parser.add_argument("--authored-only", action="store_true", help="skip the calibration")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # the same float results on every run
    canonical = np.load(args.canonical)
    if args.authored_only:
        data = build_open_model(canonical)
    else:
        data = calibrate_open_model(canonical, kdef_calibration(args.calibration))
    save_open_model(data, args.out)
    log.info("wrote %s: %d vertices, %d triangles, %d identity and %d expression components, %.0f kB",
             args.out, data.num_vertices, len(data.faces), data.num_shape, data.num_expression,
             args.out.stat().st_size / 1024)


if __name__ == "__main__":
    main()
