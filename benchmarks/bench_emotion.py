"""Emotion recognisers and the emotion stage: speed, predictions, and consistency, in tables.

    python benchmarks/bench_emotion.py

1. ms per face of each recogniser at batch 1 and 16 (CPU; GPU too when there is one).
2. Predicted classes on the labelled still single_face.jpg (a broad smile) and on frames of the
   fixture videos.
3. The emotion stage on the fixture videos: frames the slow recogniser measured per second of
   video; the mean emotion consistency between image and reconstruction as judged by each
   recogniser; how far the two recognisers agree with each other on the same images (each an
   independent judge of the other); and the held-out fit of the emotion-from-parameters model.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.emotion.consistency import consistency  # noqa: E402
from core.emotion.recognisers import load_recogniser  # noqa: E402
from core.emotion.stage import EmotionConfig  # noqa: E402
from core.emotion.types import EMOTIONS  # noqa: E402
from core.observe import FaceObserver  # noqa: E402
from core.pipeline import Pipeline, PipelineConfig  # noqa: E402
from core.take import Take  # noqa: E402
from core.video import open_source  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
NAMES = ("fer", "emonet")


def face_crops(path: Path, frames: list[int]) -> list[np.ndarray]:
    crops = []
    with open_source(path) as source, FaceObserver() as observer:
        for index in frames:
            observer.reset()
            obs = observer.observe(index, 0.0, source.read(index))
            if obs.has_face:
                crops.append(obs.crop)
    return crops


def timing(recogniser, crop: np.ndarray, batch: int, repeats: int) -> float:
    crops = np.stack([crop] * batch)
    recogniser.predict(crops)
    start = time.perf_counter()
    for _ in range(repeats):
        recogniser.predict(crops)
    return 1000 * (time.perf_counter() - start) / (repeats * batch)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    devices = ["cpu"] + (["cuda:0"] if torch.cuda.is_available() else [])
    still = face_crops(FIXTURES / "single_face.jpg", [0])[0]
    print(f"\n{'recogniser':10s} {'device':7s} {'ms/face b1':>11s} {'ms/face b16':>12s}")
    recognisers = {}
    for name in NAMES:
        for device in devices:
            rec = load_recogniser(name, device=device)
            recognisers.setdefault(name, rec)
            reps = 3 if name == "emonet" and device == "cpu" else 20
            print(f"{name:10s} {device:7s} {timing(rec, still, 1, reps):11.1f} {timing(rec, still, 16, max(reps // 3, 1)):12.1f}")

    print(f"\n{'input':36s} " + " ".join(f"{n:>22s}" for n in NAMES))
    samples = [("single_face.jpg (broad smile)", FIXTURES / "single_face.jpg", [0]),
               ("WolfgangLanger frames 0/260/400", FIXTURES / "WolfgangLanger_Pexels.mp4", [0, 260, 400]),
               ("single_face.mp4 frames 0/40", FIXTURES / "single_face.mp4", [0, 40])]
    for label, path, frames in samples:
        crops = np.stack(face_crops(path, frames))
        cells = []
        for name in NAMES:
            probs = recognisers[name].predict(crops).probabilities
            cells.append("/".join(f"{EMOTIONS[int(p.argmax())]} {p.max():.2f}" for p in probs))
        print(f"{label:36s} " + " ".join(f"{c:>22s}" for c in cells))

    print(f"\n{'clip':28s} {'emonet frames per s of video':>29s} {'consistency (fer)':>18s} {'consistency (emonet)':>21s} "
          f"{'fer vs emonet':>14s} {'params->emotion KL/agree':>25s} {'dominant':>9s} {'seconds':>8s}")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in ("WolfgangLanger_Pexels.mp4", "single_face.mp4"):
            pipeline = Pipeline(PipelineConfig(device="cpu", emotion=EmotionConfig()))
            start = time.perf_counter()
            summary = pipeline.run(FIXTURES / clip, Path(tmp) / clip)
            seconds = time.perf_counter() - start
            take = Take.open(Path(tmp) / clip)
            measured = take.manifest.emotion.measured_frames["emonet"]
            timelines = take.read_emotion().timelines
            rows = timelines["emonet"].measured
            # the two recognisers judging each other on the same image frames
            agreement = float(np.nanmean(consistency(timelines["fer"].raw[rows], timelines["emonet"].raw[rows])))
            report = take.manifest.emotion.param_model
            c = summary.mean_consistency
            print(f"{clip:28s} {measured / summary.seconds:29.2f} {c['fer']:18.3f} {c['emonet']:21.3f} {agreement:14.3f} "
                  f"{report.get('held_out_kl', float('nan')):13.3f} / {report.get('top_class_agreement', float('nan')):.2f}"
                  f" {summary.dominant_emotion:>9s} {seconds:8.1f}")


if __name__ == "__main__":
    main()
