"""The trainer: resumable training of a FaceEncoder from a TrainConfig.

Run folder (``config.out``)::

    config.yaml      the resolved configuration
    checkpoint.pt    the encoder plus the training state (optimizer, epochs done, history), written
                     atomically after every epoch; a rerun with the same settings resumes from it
    encoder.pt       the finished encoder (core.encoder.load_encoder reads it)
    log.jsonl        one JSON line per epoch: mean training losses, validation losses and metrics

Every random choice of an epoch (sample order, augmentation) is seeded from (seed, epoch) and the
learning rate is a function of the step, so a run interrupted after any epoch and resumed ends
with exactly the weights of an uninterrupted run (on the same device and thread count).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from core.atomic import write_bytes_atomic
from core.device import select_device
from core.encoder.checkpoint import load_encoder, save_encoder
from core.encoder.config import EncoderConfig
from core.encoder.model import EncoderOutput, FaceEncoder
from core.errors import CancelledError
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.model import FaceModel
from core.fit.camera import project
from core.observe import landmark_ids as ids
from training.augment import augment
from training.config import ConfigError, TrainConfig, config_to_yaml
from training.objective import Objective, face_params
from training.samples import SampleArrays, make_batch, split_blocks
from training.statistics import parameter_statistics

log = logging.getLogger(__name__)

CHECKPOINT, ENCODER, LOG, CONFIG = "checkpoint.pt", "encoder.pt", "log.jsonl", "config.yaml"


@dataclass
class TrainResult:
    """encoder: the trained module (eval mode, on the CPU). history: one dict per epoch (as in
    log.jsonl). train_rows, val_rows: rows of the data used for each. encoder_path: encoder.pt."""

    encoder: FaceEncoder
    history: list[dict]
    train_rows: np.ndarray
    val_rows: np.ndarray
    encoder_path: Path
    resumed_from: int = 0
    meta: dict = field(default_factory=dict)


def model_choice(config: TrainConfig) -> ModelChoice:
    m = config.model
    return ModelChoice(m.kind, m.flame_path, m.num_shape, m.num_expression, performer=m.performer)


def learning_rate(step: int, steps_per_epoch: int, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup_epochs``, then a cosine decay to 5 % of ``lr`` at the end."""
    o = config.optim
    total = max(o.epochs * steps_per_epoch, 1)
    warm = max(int(o.warmup_epochs * steps_per_epoch), 1)
    if step < warm:
        return o.lr * (step + 1) / warm
    progress = min((step - warm) / max(total - warm, 1), 1.0)
    return o.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def with_augmentation_spread(std: np.ndarray, camera: slice, spec) -> np.ndarray:
    """The camera's spread as the network sees it: the data's, combined with the uniform jitter of
    the augmentation (log scale +- log(1 + scale), tx and ty +- shift; a uniform variable on
    [-a, a] has standard deviation a / sqrt(3))."""
    out = std.astype(np.float64).copy()
    jitter = np.array([math.log1p(spec.scale), spec.shift, spec.shift, 0.0]) / math.sqrt(3)
    out[camera] = np.sqrt(out[camera] ** 2 + jitter**2)
    return out.astype(np.float32)


def batches(rows: np.ndarray, size: int, generator: torch.Generator) -> list[np.ndarray]:
    """Shuffled batches of ``rows``; a last batch of one sample joins the one before (BatchNorm
    needs two samples in training mode)."""
    order = rows[torch.randperm(len(rows), generator=generator).numpy()]
    parts = [order[i:i + size] for i in range(0, len(order), size)]
    if len(parts) > 1 and len(parts[-1]) < 2:
        parts[-2] = np.concatenate([parts[-2], parts.pop()])
    return parts


class Trainer:
    """Trains a FaceEncoder. data / model: already loaded samples and face model (actor training
    builds its own); by default both come from the config."""

    def __init__(self, config: TrainConfig, data: SampleArrays | None = None, model: FaceModel | None = None) -> None:
        self.config = config
        self.out = Path(config.out)
        self.device = select_device(config.device)
        self.model = model if model is not None else load_face_model(model_choice(config))
        enc = config.encoder
        self.encoder_config = EncoderConfig.for_model(self.model, backbone=enc.backbone, width=enc.width,
                                                      input_size=enc.input_size)
        self._data = data

    def load_data(self) -> SampleArrays:
        if self._data is None:
            from training.data import load_dataset

            parts = [load_dataset(spec, self.model, self.encoder_config) for spec in self.config.data]
            self._data = SampleArrays.concatenate(parts)
            log.info("%d training samples from %d datasets", len(self._data), len(parts))
        if len(self._data) < 2:
            raise ConfigError(f"only {len(self._data)} usable samples; training needs at least 2")
        if self._data.input_size != self.encoder_config.input_size:
            raise ConfigError(f"samples are {self._data.input_size} px, the encoder wants {self.encoder_config.input_size}")
        return self._data

    def run(self, *, cancel: threading.Event | None = None, on_epoch: Callable[[dict], None] | None = None,
            restart: bool = False) -> TrainResult:
        """Train (or resume, or return a finished run). CancelledError after the epoch during which
        ``cancel`` was set (its checkpoint is written first)."""
        threads = torch.get_num_threads()
        if self.config.threads > 0:
            torch.set_num_threads(int(self.config.threads))
        try:
            return self._run(cancel, on_epoch, restart)
        finally:
            torch.set_num_threads(threads)

    # ---------------------------------------------------------------------------------------------
    def _prepare(self, data: SampleArrays):
        cfg = self.config
        train_rows, val_rows = split_blocks(data, cfg.validation.every, cfg.validation.block)
        mean, std, zero = parameter_statistics(data.subset(train_rows), self.model, self.encoder_config)
        std = with_augmentation_spread(std, self.encoder_config.group_slices()["camera"], cfg.augment)
        encoder_config = EncoderConfig.from_dict(self.encoder_config.to_dict() | {"zero_groups": list(zero)})
        torch.manual_seed(cfg.seed)
        encoder = FaceEncoder(encoder_config)
        encoder.set_statistics(mean, std)
        return encoder, train_rows, val_rows

    def _run(self, cancel, on_epoch, restart: bool) -> TrainResult:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        checkpoint = self.out / CHECKPOINT
        if restart:
            for name in (CHECKPOINT, ENCODER, LOG):
                (self.out / name).unlink(missing_ok=True)
        settings = json.loads(json.dumps(cfg.result_dict()))
        state = None
        if checkpoint.exists():
            loaded = load_encoder(checkpoint)
            state = loaded.training or {}
            if state.get("config") != settings:
                raise ConfigError(f"{self.out} holds a run with other settings; choose another 'out' folder or restart it")
        data = self.load_data()
        encoder, train_rows, val_rows = self._prepare(data)
        write_bytes_atomic(self.out / CONFIG, config_to_yaml(cfg).encode())
        encoder.to(self.device)
        optimizer = torch.optim.AdamW(encoder.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        history: list[dict] = []
        start = 0
        if state is not None:
            encoder.load_state_dict(loaded.encoder.state_dict())
            optimizer.load_state_dict(state["optimizer"])
            history = list(state.get("history", []))
            start = int(state["epoch"])
            log.info("resuming %s after epoch %d of %d", self.out, start, cfg.optim.epochs)
        self._truncate_log(start)
        recogniser = None
        if cfg.losses.uses_recogniser():
            from training.recogniser import DifferentiableRecogniser

            recogniser = DifferentiableRecogniser(cfg.losses.recogniser, device=self.device)
        objective = Objective(self.model.to(self.device), encoder.config, cfg.losses, encoder.param_std, recogniser)
        steps = len(batches(train_rows, cfg.optim.batch_size, torch.Generator().manual_seed(0)))
        meta = self._meta(data, train_rows, val_rows)
        for epoch in range(start, cfg.optim.epochs):
            began = time.perf_counter()
            train_means = self._train_epoch(encoder, optimizer, objective, data, train_rows, epoch, steps)
            val = self._validate(encoder, objective, data, val_rows) if len(val_rows) else {}
            entry = {"epoch": epoch + 1, "train": train_means, "val": val,
                     "lr": learning_rate((epoch + 1) * steps - 1, steps, cfg), "seconds": round(time.perf_counter() - began, 2)}
            history.append(entry)
            training_state = {"config": settings, "epoch": epoch + 1, "optimizer": optimizer.state_dict(), "history": history}
            save_encoder(checkpoint, encoder, meta, training_state)
            with open(self.out / LOG, "a") as handle:
                handle.write(json.dumps(entry) + "\n")
            log.info("epoch %d/%d: train %.4f%s (%.1f s)", epoch + 1, cfg.optim.epochs, train_means["total"],
                     f", val {val['total']:.4f}" if val else "", entry["seconds"])
            if on_epoch is not None:
                on_epoch(entry)
            if cancel is not None and cancel.is_set() and epoch + 1 < cfg.optim.epochs:
                raise CancelledError(f"training cancelled after epoch {epoch + 1}; run again to resume from {checkpoint}")
        encoder.eval().cpu()
        meta["trained"]["history_tail"] = history[-1] if history else None
        path = save_encoder(self.out / ENCODER, encoder, meta)
        return TrainResult(encoder, history, train_rows, val_rows, path, start, meta)

    def _train_epoch(self, encoder, optimizer, objective, data, rows, epoch: int, steps: int) -> dict:
        cfg = self.config
        torch.manual_seed(cfg.seed * 100003 + epoch)
        generator = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
        encoder.train()
        sums: dict[str, float] = {}
        count = 0
        camera = encoder.config.group_slices()["camera"]
        for k, chunk in enumerate(batches(rows, cfg.optim.batch_size, generator)):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(epoch * steps + k, steps, cfg)
            batch = augment(make_batch(data, chunk, self.device), cfg.augment, camera, generator)
            out = EncoderOutput.from_tuple(encoder(batch.images))
            total, parts = objective(out, batch)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            for name, value in (parts | {"total": float(total.detach())}).items():
                sums[name] = sums.get(name, 0.0) + value * len(chunk)
            count += len(chunk)
        return {name: round(value / max(count, 1), 6) for name, value in sums.items()}

    @torch.no_grad()
    def _validate(self, encoder, objective, data, rows) -> dict:
        """Mean validation losses, and the mean landmark error in % of the inter-ocular distance
        (2D) and expression MAE where targets exist."""
        encoder.eval()
        sums: dict[str, float] = {}
        for start in range(0, len(rows), 64):
            chunk = rows[start:start + 64]
            batch = make_batch(data, chunk, self.device)
            out = EncoderOutput.from_tuple(encoder(batch.images))
            total, parts = objective(out, batch)
            metrics = landmark_and_expression_errors(objective, out, batch)
            for name, value in (parts | {"total": float(total)} | metrics).items():
                if np.isfinite(value):
                    sums[name] = sums.get(name, 0.0) + value * len(chunk)
        return {name: round(value / len(rows), 6) for name, value in sums.items()}

    def _truncate_log(self, epochs_done: int) -> None:
        path = self.out / LOG
        if not path.exists():
            return
        lines = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epochs_done]
        write_bytes_atomic(path, ("\n".join(lines) + "\n" if lines else "").encode())

    def _meta(self, data: SampleArrays, train_rows: np.ndarray, val_rows: np.ndarray) -> dict:
        return {
            "model": self.model.name, "model_settings": model_choice(self.config).settings(),
            "expression_names": list(self.model.expression_names),
            "trained": {"samples": int(len(train_rows)), "validation_samples": int(len(val_rows)),
                        "epochs": self.config.optim.epochs, "losses": self.config.to_dict()["losses"],
                        "created": datetime.now(timezone.utc).isoformat()},
        }


def landmark_and_expression_errors(objective: Objective, out: EncoderOutput, batch) -> dict[str, float]:
    """landmark_error_iod: mean 2D distance of the projected model landmarks from the observed ones
    / inter-ocular distance; expression_mae: mean absolute expression error against the targets."""
    geometry = objective.landmark_model(face_params(out))
    pred = project(geometry.landmarks, out.camera)
    obs = batch.landmarks[:, objective.landmark_ids]
    iod = (batch.landmarks[:, ids.LEFT_EYE_OUTER, :2] - batch.landmarks[:, ids.RIGHT_EYE_OUTER, :2]).norm(dim=1)
    valid = torch.isfinite(obs).all(dim=2).all(dim=1)
    out_metrics = {}
    if valid.any():
        err = (pred[valid, :, :2] - obs[valid, :, :2]).norm(dim=2).mean(dim=1) / iod[valid]
        out_metrics["landmark_error_iod"] = float(err.mean())
    target = batch.params[:, objective.slices["expression"]]
    known = torch.isfinite(target).all(dim=1)
    if known.any():
        out_metrics["expression_mae"] = float((out.expression[known] - target[known]).abs().mean())
    return out_metrics
