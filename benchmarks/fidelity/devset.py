"""The labelled development set (../shared/expressions) analysed as a user would: one take per image.

Each still goes through :class:`core.pipeline.Pipeline` (observation, fit on the default open model)
into its own take under a work folder; the fit, the observations, the image and MediaPipe's learned
blendshape scores (stored with the observations) come back as one :class:`Analysed` value. KDEF
people of ``kdef/`` (neutral and six expressions, three views) are read the same way.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.fit.params import FitParams
from core.pipeline import Pipeline, PipelineConfig
from core.take import Take
from core.take.observations import ObservationArrays
from core.video import open_source

log = logging.getLogger(__name__)

EXPRESSIONS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "expressions"
LABELS = ("neutral", "happy", "sad", "surprise", "fear", "anger", "disgust")
EMOTION_LABELS = LABELS[1:]


@dataclass(frozen=True)
class Still:
    """One labelled photograph. identity: who it shows (the same text for the same person)."""

    path: Path
    label: str
    source: str
    identity: str
    view: str

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class Analysed:
    """A still after analysis: its take's first frame. fit/observations hold that one frame (fit is
    None when no face was found); image: H x W x 3 uint8 RGB."""

    still: Still
    take: Path
    fit: FitParams | None
    observations: ObservationArrays
    image: np.ndarray

    @property
    def found(self) -> bool:
        return self.fit is not None and bool(self.fit.has_face[0])

    @property
    def curves(self) -> np.ndarray:
        """The 52 fitted ARKit weights."""
        return self.fit.expression[0].astype(np.float64)

    @property
    def mediapipe(self) -> np.ndarray:
        """MediaPipe's 52 scores in ARKit order, tongueOut (which it lacks) as 0."""
        return np.nan_to_num(self.observations.blendshapes[0].astype(np.float64))


def person_of(identity: str) -> str:
    """A short person key: the KDEF code (AF02) or CK+ subject (S505) when the text names one."""
    match = re.search(r"\b(A[FM]\d\d|S\d{3})\b", identity)
    return match.group(1) if match else identity


def stills(root: Path = EXPRESSIONS_DIR) -> list[Still]:
    """The 57 labelled stills of labels.csv, in file order."""
    with open(root / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [Still(root / r["file"], r["label"], r["source"], person_of(r["identity"]), r["view"]) for r in rows]


def kdef_people(root: Path = EXPRESSIONS_DIR) -> dict[str, dict[tuple[str, str], Path]]:
    """kdef/: person code -> {(label, view): path} (views frontal, half-left, half-right)."""
    people: dict[str, dict[tuple[str, str], Path]] = {}
    with open(root / "kdef" / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            people.setdefault(person_of(row["identity"]), {})[(row["label"], row["view"])] = root / "kdef" / row["file"]
    return dict(sorted(people.items()))


def analyse(path: Path, work: Path, config: PipelineConfig, still: Still | None = None) -> Analysed:
    """Analyse one image into work/<name> (overwritten: the model may have changed since)."""
    take_dir = work / path.stem
    still = still or Still(path, "", "", path.stem, "")
    Pipeline(config).run(path, take_dir, overwrite=True)
    take = Take.open(take_dir)
    with open_source(path) as source:
        image = source.read(0)
    return Analysed(still, take_dir, take.read_fit(), take.load_observations(), image)
