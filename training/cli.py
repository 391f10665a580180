"""``emocap train CONFIG`` and ``emocap train-actor TAKE``: argparse glue, registered by core/cli.py.

Importing this module is cheap (argparse only); the trainer, torch and the datasets are imported
when a training command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.encoder.config import BACKBONES


def add_training_parsers(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a face encoder from a YAML config (see training/configs/)")
    train.add_argument("config", type=Path, help="YAML training config")
    train.add_argument("--restart", action="store_true", help="discard an earlier run in the config's out folder")
    train.add_argument("--device", help="override the config's device: auto, cpu, cuda or cuda:N")
    train.set_defaults(func=run_train)

    actor = subparsers.add_parser(
        "train-actor", help="distil a fitted take into a fast encoder for its performer (stored in TAKE/encoder/)")
    actor.add_argument("take", type=Path, help="an analysed (fitted) take folder")
    actor.add_argument("--epochs", type=int, help="training epochs (default: about 12,000 training samples, e.g. 30 "
                                                  "epochs of a 500-frame clip, 4 of a 3,000-frame one)")
    actor.add_argument("--backbone", choices=BACKBONES, help="mobilenetv2 (fast on a CPU, default) or resnet50")
    actor.add_argument("--width", type=float, help="MobileNetV2 width multiplier (default 0.5)")
    actor.add_argument("--input-size", type=int, help="crop side the encoder sees, a multiple of 32 (default 128)")
    actor.add_argument("--threads", type=int, help="CPU threads (default: one per core; 1 is faster on a busy machine)")
    actor.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    actor.add_argument("--config", type=Path, help="base YAML instead of training/configs/actor.yaml")
    actor.add_argument("--recogniser", choices=("fer", "emonet"),
                       help="recogniser whose emotion the losses use (default fer; judge with the other one)")
    actor.add_argument("--emotion-losses", choices=("none", "branch", "all"),
                       help="branch (default): the emotion branch's intensity-aware loss; all: also the "
                            "render-emotion and emotion-consistency losses through a frozen recogniser; none")
    actor.add_argument("--restart", action="store_true", help="discard an unfinished run instead of resuming it")
    actor.add_argument("--json", action="store_true", help="print the report as one JSON object")
    actor.set_defaults(func=run_train_actor)


def _progress(entry: dict) -> None:
    val = entry.get("val") or {}
    extra = f", held-out landmarks {100 * val['landmark_error_iod']:.1f} % IOD" if "landmark_error_iod" in val else ""
    sys.stderr.write(f"epoch {entry['epoch']}: loss {entry['train']['total']:.4f}{extra} ({entry['seconds']:.1f} s)\n")


def run_train(args: argparse.Namespace) -> int:
    import dataclasses

    from training.config import load_config
    from training.trainer import Trainer

    config = load_config(args.config)
    if args.device:
        config = dataclasses.replace(config, device=args.device)
    result = Trainer(config).run(restart=args.restart, on_epoch=_progress)
    last = result.history[-1] if result.history else {}
    sys.stdout.write(f"encoder   {result.encoder_path}\n")
    sys.stdout.write(f"samples   {len(result.train_rows)} training, {len(result.val_rows)} held out\n")
    if last:
        sys.stdout.write(f"loss      {last['train']['total']:.4f} (training)"
                         + (f", {last['val']['total']:.4f} (held out)" if last.get("val") else "") + "\n")
    return 0


def run_train_actor(args: argparse.Namespace) -> int:
    from training.actor import DEFAULT_CONFIG, EMOTION_LOSSES, ENCODER_DIR, actor_config, train_actor

    losses = dict(EMOTION_LOSSES[args.emotion_losses]) if args.emotion_losses else {}
    if args.recogniser:
        losses["recogniser"] = args.recogniser
    config = actor_config(
        args.take, Path(args.take) / ENCODER_DIR / "run", base=args.config or DEFAULT_CONFIG, epochs=args.epochs,
        backbone=args.backbone, width=args.width, input_size=args.input_size, threads=args.threads,
        device=args.device, losses=losses or None, emotion_recogniser=args.recogniser)
    actor = train_actor(args.take, config, restart=args.restart, on_epoch=_progress)
    report = actor.report
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    held = report["held_out"]
    lines = [f"encoder   {actor.encoder_path}",
             f"frames    {report['train_frames']} training, {report['validation_frames']} held out; {report['seconds']:.0f} s"]
    if held:
        lines += [
            f"held out  expression MAE {held['expression_mae']:.3f} (the training frames' mean: "
            f"{held['mean_expression_baseline_mae']:.3f}), head rotation {held['rotation_error_deg']:.1f} deg vs the fitter",
            f"          landmarks {held['landmark_error_pct_iod']:.1f} % IOD (fitter {held['fitter_landmark_error_pct_iod']:.1f} %)",
        ]
        if "emotion_branch_top_class_agreement" in held:
            lines.append(f"          emotion branch agrees with the target's top class on {100 * held['emotion_branch_top_class_agreement']:.0f} %")
    lines.append("use it    emocap analyze VIDEO --out TAKE --method encoder --encoder " + str(actor.encoder_path))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
