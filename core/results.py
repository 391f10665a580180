"""Typed results that cross module boundaries: per-frame results and clip summaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: importing results must not load torch or MediaPipe
    from core.fit.params import FitParams
    from core.observe.types import FrameObservation


@dataclass(frozen=True)
class FrameResult:
    """One analysed frame, as the pipeline streams it.

    position: how many frames of the clip are done including this one; total: frames in the clip.
    from_take: True when the frame was already stored by an earlier (interrupted) run.
    """

    observation: FrameObservation
    position: int
    total: int
    from_take: bool = False

    @property
    def index(self) -> int:
        return self.observation.index


@dataclass(frozen=True)
class FitProgress:
    """One fitted window of frames. position: frames fitted so far, total: frames in the clip."""

    params: FitParams
    position: int
    total: int
    from_take: bool = False


@dataclass(frozen=True)
class StageProgress:
    """Progress of a whole-clip stage (for example emotion): ``done`` of ``total`` items of ``step``."""

    step: str
    done: int
    total: int

    @property
    def position(self) -> int:
        return self.done


@dataclass(frozen=True)
class ClipSummary:
    """What an analysis produced; ``emocap analyze --json`` and ``emocap info --json`` print it.

    seconds: duration of the analysed frames of the source. truncated_at: first unreadable frame
    of a damaged source, else None. actor_faces: faces seen when the performer was chosen.
    model: the fitted face model ("open", "flame2020", ...), None before fitting. parameter_sizes:
    components per parameter group. curves: {expression name: {min, max, mean}} over frames with a
    face. fit_residual: mean 2D landmark error of the fit, as a fraction of the inter-ocular distance.
    dominant_emotion: the emotion with the highest mean probability over the take (primary
    recogniser: EmoNet when it ran); emotion_segments: [{start, stop, emotion}] frame runs of one
    dominant emotion; mean_consistency: {recogniser: mean image/reconstruction consistency};
    mean_carried: {recogniser: mean consistency of the performer's emotion with the curves' on the
    carrier face}; carrier: that face ("frame 31 of the take", a photo's path) or why there is none.
    micro_energy (after ``--refine``): {peak_px, peak_frame, mean_px, onsets}, the micro-expression
    motion energy (pixels, core/microexpr/results.py) and the onset frame of each refined window.
    blinks: [first, stop, most closed frame] runs of closed eyes; lip_contacts: [first, stop] runs
    of lips in contact; closure_raised_frames: {curve: frames raised to reach them} (core/closures/).
    emotion_recognisers: [{name, licence, runtime}] of the recognisers that ran (runtime: what ran
    it, e.g. "openvino bfloat16", where the take records it). rate: the frame rate
    exactly ("24000/1001"). timecode: the timecode of frame 0 ("01:00:00;00", ";" for drop-frame;
    None without one); timecode_origin: "recording" or "command line".
    """

    source: str
    take: str
    status: str
    frames: int
    frames_with_face: int
    fps: float
    width: int
    height: int
    seconds: float
    variable_frame_rate: bool
    truncated_at: int | None
    actor_faces: int
    device: str
    warnings: list[str] = field(default_factory=list)
    model: str | None = None
    parameter_sizes: dict[str, int] | None = None
    curves: dict[str, dict[str, float]] | None = None
    fit_residual: float | None = None
    dominant_emotion: str | None = None
    emotion_segments: list[dict] | None = None
    mean_consistency: dict[str, float | None] | None = None
    emotion_recogniser: str | None = None
    mean_carried: dict[str, float | None] | None = None
    carrier: str | None = None
    micro_energy: dict | None = None
    blinks: list[list[int]] | None = None
    lip_contacts: list[list[int]] | None = None
    closure_raised_frames: dict[str, int] | None = None
    emotion_recognisers: list[dict[str, str]] | None = None
    rate: str | None = None
    timecode: str | None = None
    timecode_origin: str | None = None

    @property
    def no_face(self) -> bool:
        return self.frames_with_face == 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ClipSummary:
        """The summary that :meth:`to_dict` wrote (unknown keys are ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
