"""Pretraining the micro-expression refiner on macro-expression video.

    python -m training.microexpr.pretrain TAKE [TAKE ...] --out refiner.pt [--epochs 10]
    emocap analyze CLIP --out TAKE --refine   (then with RefineConfig(weights="refiner.pt"))

Sun and Zhang (2026) let the dynamic-encoded module learn from abundant macro-expression data so
that it carries over to scarce micro-expressions. Here every TAKE is an analysed recording
(``emocap analyze``), ideally expressive and at a high frame rate; its windows are prepared
exactly as the refiner prepares them (core/microexpr/stage.py: flow tracks, onset) and one refiner
is trained over all windows with the same self-supervised losses (each window keeps its own
head-pose correction). The weights are saved with core.microexpr.results.save_weights and start
the per-clip training of ``emocap analyze --refine`` when RefineConfig.weights names them.

Runs on the CPU (the per-window tensors are small); windows are visited in a seeded order.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.model import FaceModel
from core.fit.fitter import single_threaded_torch
from core.microexpr.config import RefineConfig
from core.microexpr.correspondence import MeshRegions
from core.microexpr.refiner import MicroExpressionRefiner, WindowData, WindowTensors, training_step
from core.microexpr.results import save_weights
from core.microexpr.stage import ClipGeometry, new_refiner, plan_windows, prepare_window
from core.take import Take
from core.video import open_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """epochs: passes over all windows; steps_per_window: Adam steps on a window per visit;
    seed: order of the windows and of the frames sampled in each step."""

    epochs: int = 10
    steps_per_window: int = 5
    seed: int = 0


def windows_from_take(take_dir: str | Path, model: FaceModel, config: RefineConfig) -> list[WindowData]:
    """The refiner's windows of an analysed take (with a complete fit)."""
    take = Take.open(Path(take_dir))
    fit = take.read_fit()
    if fit is None:
        raise ValueError(f"{take_dir} has no fit; run 'emocap analyze' on it first")
    observations = take.load_observations()
    geometry = ClipGeometry(model, fit, config)
    windows = []
    with open_source(take.manifest.source.path) as source:
        for start, stop in plan_windows(fit.has_face, float(source.info.fps), config.window_s, config.overlap_s):
            data, _ = prepare_window(geometry, source, observations, start, stop)
            windows.append(data)
    log.info("%s: %d windows", take_dir, len(windows))
    return windows


def pretrain(model: FaceModel, regions: MeshRegions, windows: list[WindowData], config: RefineConfig,
             schedule: PretrainConfig, refiner: MicroExpressionRefiner | None = None) -> tuple[MicroExpressionRefiner, list[float]]:
    """Train one refiner over ``windows``; returns it and the mean weighted loss of every epoch."""
    refiner = refiner or new_refiner(model.num_expression, config)
    tensors = [WindowTensors(model, regions, w) for w in windows]
    corrections = [torch.zeros(len(w), 6, requires_grad=True) for w in windows]
    optimiser = torch.optim.Adam(list(refiner.parameters()) + corrections, lr=config.learning_rate)
    generator = torch.Generator().manual_seed(schedule.seed)
    history = []
    with single_threaded_torch():
        for epoch in range(schedule.epochs):
            losses = []
            for i in torch.randperm(len(windows), generator=generator).tolist():
                for _ in range(schedule.steps_per_window):
                    parts = training_step(refiner, tensors[i], corrections[i], optimiser, generator, config)
                    losses.append(parts["total"])
            history.append(float(np.mean(losses)))
            log.info("epoch %d: mean loss %.5f", epoch + 1, history[-1])
    return refiner, history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.microexpr.pretrain", description=__doc__.split("\n")[0])
    parser.add_argument("takes", nargs="+", type=Path, help="analysed take folders (emocap analyze)")
    parser.add_argument("--out", type=Path, required=True, help="weights file to write")
    parser.add_argument("--epochs", type=int, default=PretrainConfig.epochs)
    parser.add_argument("--steps-per-window", type=int, default=PretrainConfig.steps_per_window)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    config = RefineConfig()
    model = load_face_model(ModelChoice())
    geometry_regions = ClipGeometry.regions_of(model, config)
    windows = [w for take in args.takes for w in windows_from_take(take, model, config)]
    refiner, history = pretrain(model, geometry_regions, windows, config,
                                PretrainConfig(epochs=args.epochs, steps_per_window=args.steps_per_window))
    save_weights(refiner, args.out, {"takes": [str(t) for t in args.takes], "windows": len(windows), "history": history})
    sys.stdout.write(f"wrote {args.out} ({len(windows)} windows, loss {history[0]:.4f} -> {history[-1]:.4f})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
