"""The actor encoder with and without a performer profile, side by side in one run.

    python benchmarks/bench_actor_performer.py [--epochs 10] [--input-size 128] [--width 0.5] [--threads 1]

The Wolfgang fixture is analysed with the generic open model (``emocap analyze``), a performer
profile is calibrated on that take (``emocap calibrate``), and the clip is analysed again with
the profile (``--performer``). ``train-actor`` then distils each take into an encoder (the same
seed, samples, losses and schedule: train-actor's defaults at the given size), and each encoder is
compared with the fitter it learned from on the held-out frames (every 5th second):

- expression MAE: mean absolute error of the 52 ARKit weights against that take's fitter;
- landmarks vs MediaPipe: 2D error of the encoder's mesh landmarks, in % of the eye distance
  (the fitter's own error beside it);
- vs fitter mesh: 2D distance between the encoder's and the fitter's landmarks.

The profile is calibrated on the same clip the encoders are judged on (its report holds out the
clip's last 20 %): this compares what each encoder learns from its fitter, not how a profile
generalises (benchmarks/bench_performer.py measures that).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_actor import add_encoder_arguments  # noqa: E402
from training.actor import actor_config, train_actor  # noqa: E402

CLIP = ROOT.parent / "shared" / "fixtures" / "WolfgangLanger_Pexels.mp4"


def emocap(*args: str) -> None:
    """Run an ``emocap`` command as a user would; stop the benchmark when it fails."""
    result = subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"emocap {' '.join(args)} failed: {result.stderr.strip().splitlines()[-1:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_encoder_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        takes = {"generic": tmp / "generic", "performer": tmp / "performer"}
        profile = tmp / "wolfgang.npz"
        emocap("analyze", str(CLIP), "--out", str(takes["generic"]), "--device", "cpu")
        emocap("calibrate", str(takes["generic"]), "--out", str(profile), "--name", "wolfgang")
        emocap("analyze", str(CLIP), "--out", str(takes["performer"]), "--device", "cpu", "--performer", str(profile))
        reports = {}
        for kind, take_dir in takes.items():
            config = actor_config(take_dir, tmp / kind / "run", epochs=args.epochs, width=args.width,
                                  input_size=args.input_size, threads=args.threads, device="cpu")
            start = time.perf_counter()
            reports[kind] = train_actor(take_dir, config, encoder_dir=tmp / kind / "encoder").report["held_out"]
            print(f"  trained on the {kind} take in {time.perf_counter() - start:.0f} s", flush=True)
    print(f"\nHeld-out frames of the Wolfgang clip; each encoder against the fitter it learned from "
          f"(MobileNetV2 x{args.width} at {args.input_size} px, {args.epochs} epochs)")
    print(f"{'take fitted with':18s} {'expression MAE':>15s} {'landmarks vs MediaPipe':>23s} {'fitter vs MediaPipe':>20s} "
          f"{'vs fitter mesh':>15s}")
    for kind, h in reports.items():
        print(f"{kind:18s} {h['expression_mae']:15.3f} {h['landmark_error_pct_iod']:22.2f}% "
              f"{h['fitter_landmark_error_pct_iod']:19.2f}% {h['encoder_vs_fitter_landmarks_pct_iod']:14.2f}%")
    print(f"\nbenchmark wall time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
