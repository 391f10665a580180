"""The one analysed take every device workload reads: the Wolfgang fixture (or its first frames)
observed and fitted once on the CPU (core.pipeline.Pipeline, no emotion), with the aligned face
crops the recognisers and the encoder see."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.encoder.crop_space import scaled_transforms
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.model import FaceModel
from core.fit.params import FitParams
from core.observe.crop_batches import face_crop_batches
from core.pipeline import Pipeline, PipelineConfig
from core.take import Take
from core.take.observations import ObservationArrays
from core.video import open_source

FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "WolfgangLanger_Pexels.mp4"


@dataclass(frozen=True)
class AnalysedClip:
    """video: the recording; take: its take (observed and fitted); model: the open face model."""

    video: Path
    take: Take
    observations: ObservationArrays
    fit: FitParams
    model: FaceModel
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per ``key`` for this clip (inputs shared by the devices)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def face_rows(self) -> np.ndarray:
        """Rows with an observed and a fitted face."""
        return np.nonzero(self.observations.has_face & self.fit.has_face)[0]

    def crops(self, count: int, size: int) -> np.ndarray:
        """count x size x size x 3 uint8 RGB aligned crops of the first ``count`` face rows (the
        take's crop transforms scaled to ``size`` pixels, as the stages do)."""
        return self.cached(("crops", count, size), lambda: self._read_crops(self.face_rows[:count], size))

    def _read_crops(self, rows: np.ndarray, size: int) -> np.ndarray:
        transforms = scaled_transforms(self.observations.crop_transform, float(self.take.manifest.settings.crop_size), size)
        with open_source(self.video) as source:
            return np.concatenate([crops for _, crops in face_crop_batches(source, self.observations, rows, transforms,
                                                                            size, len(rows))])


def first_frames(folder: Path, frames: int) -> Path:
    """The fixture's first ``frames`` frames as an H.264 file in ``folder`` (the whole fixture
    when it has no more)."""
    from tests.microexpr_clips import write_video

    with open_source(FIXTURE) as source:
        if frames >= source.info.frame_count:
            return FIXTURE
        images = [source.read(i) for i in range(frames)]
        fps = int(round(source.info.fps))
    return write_video(folder / f"wolfgang_first_{frames}.mp4", images, fps)


def analyse_clip(folder: Path, frames: int) -> AnalysedClip:
    """Observe and fit the fixture's first ``frames`` frames (on the CPU) into ``folder``/take."""
    video = first_frames(folder, frames)
    Pipeline(PipelineConfig(device="cpu")).run(video, folder / "take")
    take = Take.open(folder / "take")
    fit = take.read_fit(complete=True)
    if fit is None or not fit.has_face.any():
        raise RuntimeError(f"the fit of {video} found no face")
    return AnalysedClip(video, take, take.load_observations(), fit, load_face_model(ModelChoice()))
