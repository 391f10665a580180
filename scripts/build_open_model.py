"""Rebuild ``resources/open_face_model.npz``, EmoCap's own open face model.

The authored model comes from the canonical face (core/facemodel/open_model_authoring.py); it is then
calibrated on photographs of people seen neutral and in six expressions (KDEF, in
``../shared/expressions/kdef``: 56 people, three views; see core/facemodel/open_model_calibration.py):
every photo is observed with MediaPipe's face mesh (as the pipeline does) and scored by MediaPipe's
learned blendshape network (``emocap models install`` installs it). Deterministic for the same inputs.

    python scripts/build_open_model.py [--calibration ../shared/expressions/kdef | --authored-only]
        [--people N] [--canonical resources/canonical_face_478.npy] [--out resources/open_face_model.npz]
    python scripts/build_open_model.py --verify [--out resources/open_face_model.npz]

The model records the SHA-256 of the files that decide its numbers (BUILD_INPUTS) and of the
calibration photos (info.calibration.build); ``--verify`` says whether they are still the files on
disk, i.e. whether the stored model is stale, in a second instead of a six-minute rebuild.

KDEF (Lundqvist, Flykt and Öhman 1998, Karolinska Institutet) is licensed for non-commercial
research; the calibrated model records that it was derived from it (info.calibration.sources).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import logging
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.digest import file_sha256  # noqa: E402
from core.facemodel.calibration import CalibrationData  # noqa: E402
from core.facemodel.open_model import OPEN_MODEL_PATH, load_open_model, save_open_model  # noqa: E402
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
# The files whose content decides the built model's numbers (relative to the project root): this
# script, the model's authoring and calibration, the observer and the blendshape network that turn
# photos into landmarks and scores, and the canonical face. Edit one and the model must be rebuilt.
BUILD_INPUTS = (
    "scripts/build_open_model.py",
    "core/facemodel/calibration.py",
    "core/facemodel/open_model.py",
    "core/facemodel/open_model_authoring.py",
    "core/facemodel/open_model_calibration.py",
    "core/fit/camera.py",
    "core/observe/align.py",
    "core/observe/blendshapes.py",
    "core/observe/detector.py",
    "core/observe/headpose.py",
    "core/observe/landmark_ids.py",
    "core/observe/landmarker.py",
    "core/observe/mediapipe_runtime.py",
    "core/observe/observer.py",
    "resources/canonical_face_478.npy",
)


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


def kdef_photos(folder: Path, people: int | None = None) -> dict[tuple[str, str, str], Path]:
    """(person, label, view) -> photo of ``folder``'s labels.csv; only the first ``people`` people
    (sorted) when given."""
    with open(folder / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    photos = {(r["identity"].split()[-1], r["label"], r["view"]): folder / r["file"] for r in rows}
    if people is not None:
        chosen = set(sorted({person for person, _, _ in photos})[:people])
        photos = {key: path for key, path in photos.items() if key[0] in chosen}
    return photos


def build_record(photos: list[Path], people: int | None) -> dict:
    """What a build was made from: SHA-256 of each of BUILD_INPUTS and one over the photos (their
    names and bytes, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(photos, key=lambda p: p.name):
        digest.update(f"{path.name}\0{file_sha256(path)}\0".encode())
    return {"inputs": {name: file_sha256(ROOT / name) for name in BUILD_INPUTS},
            "photos": digest.hexdigest(), "photo_count": len(photos), "people_limit": people}


def stale_inputs(model_path: Path, folder: Path) -> list[str]:
    """Why the model at ``model_path`` is not what a build would make now (empty: it is current):
    build inputs or photos whose content differs from what it records."""
    record = load_open_model(model_path).info.get("calibration", {}).get("build")
    if record is None:
        return ["the model records no build inputs (built before they were recorded)"]
    now = build_record(list(kdef_photos(folder, record["people_limit"]).values()), record["people_limit"])
    reasons = [f"{name} changed" for name in sorted(set(now["inputs"]) | set(record["inputs"]))
               if now["inputs"].get(name) != record["inputs"].get(name)]
    if now["photos"] != record["photos"]:
        reasons.append(f"the calibration photos in {folder} changed")
    return reasons


def kdef_calibration(photos: dict[tuple[str, str, str], Path]) -> CalibrationData:
    """Observe KDEF photos ((person, label, view) -> path) into CalibrationData."""
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
    parser.add_argument("--people", type=int, help="calibrate on the first N people only (a quick build)")
    parser.add_argument("--verify", action="store_true",
                        help="only check that the model at --out records the current build inputs and photos")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.verify:
        reasons = stale_inputs(args.out, args.calibration)
        for reason in reasons:
            log.error("%s is stale: %s; rebuild it with scripts/build_open_model.py", args.out, reason)
        if reasons:
            sys.exit(1)
        log.info("%s records the current build inputs and calibration photos", args.out)
        return
    torch.set_num_threads(1)  # the same float results on every run
    canonical = np.load(args.canonical)
    if args.authored_only:
        data = build_open_model(canonical)
    else:
        photos = kdef_photos(args.calibration, args.people)
        data = calibrate_open_model(canonical, kdef_calibration(photos))
        calibration = {**data.info["calibration"], "build": build_record(list(photos.values()), args.people)}
        data = dataclasses.replace(data, info={**data.info, "calibration": calibration})
    save_open_model(data, args.out)
    log.info("wrote %s: %d vertices, %d triangles, %d identity and %d expression components, %.0f kB",
             args.out, data.num_vertices, len(data.faces), data.num_shape, data.num_expression,
             args.out.stat().st_size / 1024)


if __name__ == "__main__":
    main()
