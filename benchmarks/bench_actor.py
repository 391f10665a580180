"""An actor-trained encoder on held-out frames of the Wolfgang fixture: parameter and landmark
error against the fitter, emotion consistency judged by a recogniser the losses never saw, and the
ablation with and without the 3D-supervision and emotion losses (one table each).

    python benchmarks/bench_actor.py [--epochs 10] [--input-size 128] [--width 0.5] [--threads 1]
                                     [--judge-frames 48] [--take TAKE]

The clip (472 frames) is analysed (observe + fit) unless --take names a fitted take of it. Every
5th second (24 frames) is held out (96 frames); the rest trains. Four encoders are trained from the
same seed on the same samples, differing only in their losses:

- 2D only: landmark reprojection + photometric (texture-warp render) + regularisers;
- 2D + 3D: also direct supervision of the parameters by the fitter's (pseudo ground truth);
- 2D + emotion: also the intensity-aware emotion loss (branch and render) and emotion consistency;
- full: both (train-actor --emotion-losses all);
- default (only with --variants): 2D + 3D + the emotion branch, train-actor's default.

The emotion losses use FER (mini-Xception); consistency is judged by EmoNet (and, for reference,
by FER itself), on the ReconstructionRenderer's renders of each encoder's parameters against the
image crops, with the same reference texture (the fitter's) for all; the fitter's own parameters
are the reference row.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.emotion.recognisers import load_recogniser  # noqa: E402
from core.emotion.types import FLOAT32  # noqa: E402
from core.encoder.runtime import EncoderRuntime  # noqa: E402
from core.encoder.stage import encode_take  # noqa: E402
from core.fit.fitter import Fitter, slice_observations  # noqa: E402
from core.pipeline import Pipeline, PipelineConfig  # noqa: E402
from core.take import Take  # noqa: E402
from core.video import open_source  # noqa: E402
from training.actor import EMOTION_LOSSES, actor_config, train_actor  # noqa: E402
from training.evaluate import encoder_fit_params, judged_consistency, reference_of  # noqa: E402
from training.trainer import Trainer  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures"
CLIP = FIXTURES / "WolfgangLanger_Pexels.mp4"
NO_3D = {"expression": 0.0, "parameters": 0.0}
NO_EMOTION, ALL_EMOTION = EMOTION_LOSSES["none"], EMOTION_LOSSES["all"]
VARIANTS = {"2D only": NO_3D | NO_EMOTION, "2D + 3D": NO_EMOTION, "2D + emotion": NO_3D | ALL_EMOTION,
            "full": ALL_EMOTION, "default": EMOTION_LOSSES["branch"]}


def mean_sem(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    return f"{values.mean():.3f} +- {values.std(ddof=1) / np.sqrt(len(values)):.3f}"


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """The encoder's size and schedule, as the actor benchmarks train it."""
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_encoder_arguments(parser)
    parser.add_argument("--judge-frames", type=int, default=48, help="held-out frames EmoNet judges (0.25 s each)")
    parser.add_argument("--take", type=Path, help="a fitted take of the Wolfgang clip (default: analyse it here)")
    parser.add_argument("--variants", default="2D only,2D + 3D,2D + emotion,full",
                        help=f"which encoders to train, comma-separated, of: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    print(f"CPU threads {args.threads}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"MobileNetV2 x{args.width} at {args.input_size} px, {args.epochs} epochs per encoder")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        take_dir = args.take
        if take_dir is None:
            take_dir = tmp / "wolfgang"
            Pipeline(PipelineConfig(device="cpu")).run(CLIP, take_dir)
        take = Take.open(take_dir)
        fit = take.read_fit()
        observations = take.load_observations()

        def config(name: str):
            return actor_config(take_dir, tmp / name / "run", epochs=args.epochs, width=args.width, input_size=args.input_size,
                                threads=args.threads, device="cpu", losses=VARIANTS[name])

        first = Trainer(config("full"))  # the samples do not depend on the losses: read once
        data = first.load_data()
        model = first.model
        rows = np.array([int(np.nonzero(observations.index == i)[0][0]) for i in data.order])
        results, params, outputs = {}, {}, {}
        chosen = [name.strip() for name in args.variants.split(",")]
        for name in chosen:
            start = time.perf_counter()
            results[name] = train_actor(take_dir, config(name), data=data, encoder_dir=tmp / name.replace(" ", "_"))
            results[name].report["train_seconds"] = time.perf_counter() - start
            params[name], outputs[name] = encoder_fit_params(results[name].result.encoder, data.images, rows, observations,
                                                             model, float(take.manifest.settings.crop_size))
            print(f"  trained {name} in {results[name].report['train_seconds']:.0f} s", flush=True)
        last = chosen[-1]
        val = results[last].result.val_rows
        held = rows[val]

        print(f"\nHeld-out frames ({len(held)} of {len(rows)}), against the fitter (expression: mean absolute "
              "error of the 52 ARKit weights; landmarks: 2D error in % of the eye distance)")
        print(f"{'encoder':14s} {'expression MAE':>15s} {'head rot. deg':>14s} {'landmarks vs MediaPipe':>23s} "
              f"{'vs fitter mesh':>15s} {'train s':>8s}")
        fit_landmarks = results[last].report["held_out"]["fitter_landmark_error_pct_iod"]
        baseline = results[last].report["held_out"]["mean_expression_baseline_mae"]
        for name, result in results.items():
            h = result.report["held_out"]
            print(f"{name:14s} {h['expression_mae']:15.3f} {h['rotation_error_deg']:14.2f} {h['landmark_error_pct_iod']:22.2f}% "
                  f"{h['encoder_vs_fitter_landmarks_pct_iod']:14.2f}% {result.report['train_seconds']:8.0f}")
        print(f"{'fitter':14s} {'0':>15s} {'0':>14s} {fit_landmarks:22.2f}% {'0':>15s}")
        print(f"{'mean expr.':14s} {baseline:15.3f}   (every held-out frame given the training frames' mean expression)")

        judged = held[np.unique(np.linspace(0, len(held) - 1, min(args.judge_frames, len(held))).round().astype(int))]
        reference = reference_of(fit)
        sets = {name: params[name] for name in chosen} | {"fitter": fit}
        with open_source(CLIP) as source:
            emonet = judged_consistency(load_recogniser("emonet", precision=FLOAT32), model, sets, observations, source, judged, reference)
            fer = judged_consistency(load_recogniser("fer", precision=FLOAT32), model, sets, observations, source, judged, reference)
        top = emonet.image_probabilities.argmax(axis=1)
        position = {int(r): k for k, r in enumerate(rows)}
        print(f"\nEmotion consistency of the reconstruction on {len(judged)} held-out frames (1 - JS divergence, "
              "image crop vs render; mean +- s.e.m.); EmoNet never saw the losses, FER is the losses' recogniser")
        print(f"{'parameters':14s} {'EmoNet (judge)':>16s} {'FER (in loss)':>16s} {'branch = EmoNet top class':>27s}")
        for name in sets:
            branch = ""
            if name in outputs:
                probs = outputs[name].emotion_probabilities()[[position[int(r)] for r in judged]]
                branch = f"{100 * float((probs.argmax(axis=1) == top).mean()):.0f} %"
            print(f"{name:14s} {mean_sem(emonet.consistency[name]):>16s} {mean_sem(fer.consistency[name]):>16s} {branch:>27s}")

        # speed of analysis: the full encoder through the pipeline's encoder stage vs the fitter
        shutil.copytree(take_dir, tmp / "speed")  # encode_take rewrites the copy's fit
        speed_take = Take.open(tmp / "speed")
        runtime = EncoderRuntime.from_checkpoint(results[last].encoder_path, threads=args.threads)
        with open_source(CLIP) as source:
            start = time.perf_counter()
            for _ in encode_take(speed_take, source, model, runtime, window=256):
                pass
            encode_ms = 1000 * (time.perf_counter() - start) / len(observations)
        start = time.perf_counter()
        fitter = Fitter(model)
        identity = fitter.fit_identity(observations)
        for s in range(0, len(observations), 256):
            fitter.fit_window(slice_observations(observations, s, s + 256), identity)
        fit_ms = 1000 * (time.perf_counter() - start) / len(observations)
        print(f"\nParameters for the 472-frame clip from stored observations, ms per frame: encoder stage "
              f"(decode + crop + {runtime.backend}) {encode_ms:.1f}; fitter {fit_ms:.1f}")
        print(f"\nbenchmark wall time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
