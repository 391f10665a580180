"""4D-scan sequences with FLAME parameters and their video frames (BP4D-style; FIELDS' direct 3D
expression supervision).

Layout::

    ROOT/<subject>/<sequence>/frames/<image>   the sequence's 2D frames, in sorted file order
    ROOT/<subject>/<sequence>/params.npz        FLAME fits of the scans, one row per scan:
        expression  T x E' (E' >= the model's E; FLAME's components are ordered, the first E are used)
        jaw         T x 3 axis-angle radians                  (optional)
        eyes        T x 6, neck T x 3                          (optional)
        shape       S' identity of the subject (S' >= S)       (optional)
        frame       T int, the frame file of each row (index into the sorted frames; default 0..T-1)
    ROOT/<subject>/<sequence>/emotion.json      optional: {"emotion": "happy", "intensity": 0.6}
        (BP4D's tasks elicit known emotions); intensity a number or a list of T numbers

Targets: the given parameter groups as ground truth (weight 1; head pose and camera stay unknown:
the scans' pose is not the video's), landmarks (observed), the emotion label with its intensity.
Each subject is one actor, each sequence one group (validation blocks run along it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from pathlib import Path

import numpy as np

from core.encoder.config import EncoderConfig
from training.data.labels import emotion_index, label_target
from training.data.stills import image_files, observe_stills
from training.samples import SampleArrays

log = logging.getLogger(__name__)


class ScanLayoutError(ValueError):
    """A sequence folder does not follow the layout above."""


def sequences(root: Path) -> list[tuple[str, Path]]:
    """(subject, sequence folder) of every sequence with a params.npz, sorted."""
    return sorted((p.parent.parent.name, p.parent) for p in Path(root).glob("*/*/params.npz"))


def load_sequence(folder: Path, config: EncoderConfig) -> tuple[list[Path], np.ndarray, np.ndarray, np.ndarray]:
    """(frame files of the T rows, T x P parameter targets (NaN where unknown), T x 8 emotion
    targets, T intensities)."""
    frames = image_files(folder / "frames")
    with np.load(folder / "params.npz") as npz:
        data = {k: np.asarray(npz[k]) for k in npz.files}
    if "expression" not in data:
        raise ScanLayoutError(f"{folder / 'params.npz'} has no 'expression' array")
    expression = data["expression"]
    t = len(expression)
    index = data.get("frame", np.arange(t))
    if len(index) != t or (len(index) and (index.min() < 0 or index.max() >= len(frames))):
        raise ScanLayoutError(f"{folder}: 'frame' must give one of the {len(frames)} frames for each of the {t} rows")
    if expression.shape[1] < config.num_expression:
        raise ScanLayoutError(f"{folder}: {expression.shape[1]} expression components, the model needs {config.num_expression}")
    targets = np.full((t, config.num_params), np.nan, np.float32)
    slices = config.group_slices()
    targets[:, slices["expression"]] = expression[:, : config.num_expression]
    for name in ("jaw", "eyes", "neck"):
        if name in data:
            targets[:, slices[name]] = data[name]
    if "shape" in data and len(data["shape"]) >= config.num_shape:
        targets[:, slices["identity"]] = data["shape"][: config.num_shape]
    emotion = np.full((t, 8), np.nan, np.float32)
    intensity = np.full(t, np.nan, np.float32)
    label_file = folder / "emotion.json"
    if label_file.exists():
        label = json.loads(label_file.read_text())
        k = emotion_index(str(label.get("emotion", "")))
        if k is None:
            raise ScanLayoutError(f"{label_file}: unknown emotion {label.get('emotion')!r}")
        levels = np.broadcast_to(np.asarray(label.get("intensity", np.nan), np.float64), (t,))
        for row in range(t):
            emotion[row], intensity[row] = label_target(k, None if np.isnan(levels[row]) else float(levels[row]))
    return [frames[i] for i in index], targets, emotion, intensity


def load_scan4d(root: str | Path, config: EncoderConfig, max_samples: int = 0) -> SampleArrays:
    parts = []
    subjects: dict[str, int] = {}
    for group, (subject, folder) in enumerate(sequences(Path(root))):
        files, targets, emotion, intensity = load_sequence(folder, config)
        crops, landmarks, kept = observe_stills(files, config.input_size)
        part = SampleArrays.empty_targets(crops, config.num_params)
        part.landmarks[:] = landmarks
        part.params[:] = targets[kept]
        part.param_weight[:] = 1.0
        part.emotion[:] = emotion[kept]
        part.intensity[:] = intensity[kept]
        part.actor[:] = subjects.setdefault(subject, len(subjects))
        part.group[:] = group
        part.order[:] = kept
        parts.append(part)
    if not parts:
        raise ScanLayoutError(f"no sequence with params.npz under {root} (expected ROOT/<subject>/<sequence>/params.npz)")
    data = _join(parts)
    if max_samples and len(data) > max_samples:
        data = data.subset(np.unique(np.linspace(0, len(data) - 1, max_samples).round().astype(int)))
    return data


def _join(parts: list[SampleArrays]) -> SampleArrays:
    """Concatenate sequences keeping their actor and group ids (already global here)."""
    return SampleArrays(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                           for f in fields(SampleArrays) if f.name != "textures"})
