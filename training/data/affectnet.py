"""AffectNet-style emotion-labelled folders (AffectNet, RAF-DB, FER+ exported to folders, ...).

Layout::

    ROOT/<emotion>/<image>            emotion: an EMOTIONS name (neutral, happy, sad, surprise, fear,
                                      disgust, anger, contempt; common aliases such as "angry" too)
                                      or AffectNet's expression id 0-7 (the same order); other
                                      folders (AffectNet's 8-10) are skipped
    ROOT/annotations.csv   optional   header ``path,valence,arousal[,intensity]``; path relative to
                                      ROOT; valence and arousal in [-1, 1]; intensity in [0, 1]

Targets: landmarks (observed), the emotion as probabilities with its intensity (training/data/
labels.py): the csv's intensity, else for non-neutral faces with valence and arousal
min(1, |(valence, arousal)|), the affect's distance from neutral; valence and arousal when given.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from core.encoder.config import EncoderConfig
from training.data.labels import NEUTRAL, emotion_index, label_target
from training.data.stills import image_files, observe_stills
from training.samples import SampleArrays

log = logging.getLogger(__name__)


def read_annotations(root: Path) -> dict[str, dict[str, float]]:
    path = root / "annotations.csv"
    if not path.exists():
        return {}
    out = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            out[row["path"]] = {k: float(v) for k, v in row.items() if k != "path" and v not in (None, "")}
    return out


def load_affectnet(root: str | Path, config: EncoderConfig, max_samples: int = 0) -> SampleArrays:
    root = Path(root)
    files, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        index = emotion_index(folder.name)
        if index is None:
            log.info("skipping folder %s: not one of the 8 emotions", folder)
            continue
        for path in image_files(folder):
            files.append(path)
            labels.append(index)
    if max_samples and len(files) > max_samples:
        keep = np.unique(np.linspace(0, len(files) - 1, max_samples).round().astype(int))
        files, labels = [files[i] for i in keep], [labels[i] for i in keep]
    notes = read_annotations(root)
    crops, landmarks, kept = observe_stills(files, config.input_size)
    data = SampleArrays.empty_targets(crops, config.num_params)
    data.landmarks[:] = landmarks
    data.order[:] = kept
    for row, k in enumerate(kept):
        note = notes.get(files[k].relative_to(root).as_posix(), {})
        va = (note.get("valence"), note.get("arousal"))
        intensity = note.get("intensity")
        if intensity is None and None not in va and labels[k] != NEUTRAL:
            intensity = min(1.0, float(np.hypot(*va)))
        data.emotion[row], data.intensity[row] = label_target(labels[k], intensity)
        if None not in va:
            data.valence_arousal[row] = va
    return data
