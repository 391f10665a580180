"""Typed records of a take's manifest (``take.json``): the recording, the video, the take's
settings, the chosen performer, and one record per later stage (settings, status, summary).

The JSON layout is the one takes have always had (core/take/manifest.py writes ``to_dict`` of
these records, sorted): a key a record does not know is ignored on reading and a missing one
takes its default, so takes written by earlier versions read unchanged (tests/core/test_take.py
reads a take.json as version 0.1 wrote it).

A stage's ``settings`` is the JSON form of what produced it (the stage's own ``settings()``, see
core/stages.py): it is only compared whole (:meth:`StageRecord.is_current`) and read back by
core/take_settings.py, never picked apart elsewhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

from core.timecode import exact_rate

RUNNING, CANCELLED, COMPLETE = "running", "cancelled", "complete"
STATUSES = (RUNNING, CANCELLED, COMPLETE)

R = TypeVar("R")


def record_to_dict(record) -> dict[str, Any]:
    """A record as JSON values (nested records as objects)."""
    return {f.name: record_to_dict(value) if dataclasses.is_dataclass(value := getattr(record, f.name)) else value
            for f in dataclasses.fields(record)}


def record_from_dict(cls: type[R], data: dict[str, Any], nested: dict[str, type] | None = None) -> R:
    """An instance of the record ``cls`` from its JSON object: unknown keys ignored, missing ones
    default, ``nested`` names the fields that hold records of their own."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    for key, kind in (nested or {}).items():
        if isinstance(values.get(key), dict):
            values[key] = record_from_dict(kind, values[key])
        else:
            values.pop(key, None)
    return cls(**values)


@dataclass(frozen=True)
class SourceRecord:
    """The recording a take belongs to: absolute path, total size and a digest of its first and
    last MiB (core.take.store.source_fingerprint)."""

    path: str
    size: int
    sha1: str

    def same_recording(self, other: SourceRecord) -> bool:
        """Whether ``other`` fingerprints the same content (wherever it lies now)."""
        return self.sha1 == other.sha1 and self.size == other.size


@dataclass
class VideoRecord:
    """What the recording holds (core.video.VideoInfo as stored); ``truncated_at`` is also set
    when decoding stopped early during observation."""

    fps: float
    width: int
    height: int
    path: str = ""
    kind: str = "video"
    frame_count: int = 0
    duration_s: float = 0.0
    variable_frame_rate: bool = False
    truncated_at: int | None = None
    codec: str | None = None
    rate: str | None = None  # fps exactly ("24000/1001"); None in takes made before it was stored
    timecode: str | None = None  # the recording's own start timecode ("01:00:00;00"), None: it has none

    @classmethod
    def of(cls, info) -> VideoRecord:
        """The record of a core.video.VideoInfo (its exact rate as text)."""
        values = {f.name: getattr(info, f.name) for f in dataclasses.fields(cls)}
        return cls(**values | {"rate": None if info.rate is None else str(info.rate)})

    @property
    def exact_rate(self) -> Fraction:
        """The frame rate as a fraction: the stored one, or in older takes ``fps`` snapped to the
        standard rate it rounds from (23.976... -> 24000/1001)."""
        return exact_rate(self.rate if self.rate else float(self.fps))


@dataclass(frozen=True)
class TakeSettings:
    """How the observations were made: frames per chunk (where tracking restarts), the aligned
    crop's side in pixels, the frame rate given to images, the device and EmoCap's version."""

    chunk_size: int
    crop_size: int = 256
    image_fps: float = 30.0
    device: str = "cpu"
    version: str = ""

    def result_settings(self) -> dict[str, Any]:
        """The settings that change the observations (a take resumes only with equal ones)."""
        return {"chunk_size": self.chunk_size, "crop_size": self.crop_size, "image_fps": self.image_fps}


@dataclass(frozen=True)
class ActorRecord:
    """How the performer was chosen: the frame, the faces found there, the chosen face's box
    (x0, y0, x1, y1 pixels)."""

    frame: int
    faces_found: int
    box: list[float]


@dataclass
class StageRecord:
    """A later stage's record: the settings it ran with and how far it got."""

    settings: dict[str, Any]
    status: str = RUNNING

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    def is_current(self, settings: dict[str, Any]) -> bool:
        """Whether the stage is complete for exactly these settings (nothing to do)."""
        return self.complete and self.settings == settings


@dataclass
class FitRecord(StageRecord):
    """The fit (or the encoder that stands in for it): the face model's name, identity size and
    expression names."""

    model: str | None = None
    num_shape: int | None = None
    expression_names: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        """"fit" (the fitter) or "encoder" (a trained encoder)."""
        return str(self.settings.get("method", "fit"))

    @property
    def window(self) -> int | None:
        """Frames per stored window of a fitter's fit (None when the settings do not say)."""
        window = (self.settings.get("fit") or {}).get("window")
        return window if isinstance(window, int) and window > 0 else None

    @property
    def neutral(self) -> dict[str, Any] | None:
        """The neutral the identity was fitted on: None (automatic), {"frame": N} or
        {"image": {"path", "size", "sha1"}}."""
        neutral = self.settings.get("neutral")
        return neutral if isinstance(neutral, dict) else None


@dataclass
class EmotionSummary:
    """What ``emocap info`` reports of the emotion stage (core.results.ClipSummary's fields)."""

    dominant_emotion: str | None = None
    emotion_segments: list[dict[str, Any]] = field(default_factory=list)
    mean_consistency: dict[str, float | None] = field(default_factory=dict)
    emotion_recogniser: str | None = None
    mean_carried: dict[str, float | None] = field(default_factory=dict)
    carrier: str | None = None


@dataclass
class EmotionRecord(StageRecord):
    """The emotion stage: the primary recogniser, all that ran, the reference frame of the
    renders, frames each recogniser measured and judged the reconstruction of (``rendered_frames``;
    empty in takes made before it was recorded), the emotion-from-parameters model's report, and the
    carrier face that wore the curves (core.emotion.carrier.CarrierChoice's dict; empty: none),
    and what ran each recogniser (name -> e.g. "openvino bfloat16"; empty in takes made before
    it was recorded)."""

    primary: str | None = None
    recognisers: list[str] = field(default_factory=list)
    reference_frame: int = -1
    measured_frames: dict[str, int] = field(default_factory=dict)
    rendered_frames: dict[str, int] = field(default_factory=dict)
    param_model: dict[str, Any] = field(default_factory=dict)
    summary: EmotionSummary | None = None
    carrier: dict[str, Any] = field(default_factory=dict)
    runtimes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmotionRecord:
        return record_from_dict(cls, data, {"summary": EmotionSummary})


@dataclass
class RefineSummary:
    """What ``emocap info`` reports of the refinement: ``micro_energy`` (peak_px, peak_frame,
    mean_px, onsets; None when no frame was refined)."""

    micro_energy: dict[str, Any] | None = None


@dataclass
class RefineRecord(StageRecord):
    """The micro-expression refinement: its windows (first, stop, onset frame) and the size of
    the per-vertex offset basis."""

    windows: list[list[int]] = field(default_factory=list)
    offset_components: int = 0
    summary: RefineSummary | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefineRecord:
        return record_from_dict(cls, data, {"summary": RefineSummary})


@dataclass
class ClosureSummary:
    """What ``emocap info`` reports of the closures stage (core/closures/): the runs of closed
    eyes (``blinks``: first, stop and most closed frame) and of lips in contact
    (``lip_contacts``: first, stop), and in how many frames each curve was raised to reach them."""

    blinks: list[list[int]] = field(default_factory=list)
    lip_contacts: list[list[int]] = field(default_factory=list)
    closure_raised_frames: dict[str, int] = field(default_factory=dict)


@dataclass
class ClosureRecord(StageRecord):
    """The closures stage (core/closures/stage.py): blinks and lip contacts found in the
    observations and the floors (TAKE/fit/closures.npz) that make the fitted curves reach them."""

    summary: ClosureSummary | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClosureRecord:
        return record_from_dict(cls, data, {"summary": ClosureSummary})
