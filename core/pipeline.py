"""The one pipeline that the GUI, the command line and the tests drive.

``Pipeline.analyze`` is a generator. It runs the stages of an analysis in order, each under one
contract (core/stages.py: current for these settings, resume, progress, cancel): observe
(core/observe/stage.py), fit (core/fit/stage.py) or encode (core/encoder/stage.py), refine
(core/microexpr/take_stage.py), emotion (core/emotion/stage.py). It yields a :class:`FrameResult`
per observed frame (frames already stored by an interrupted run first, then new ones), then a
:class:`FitProgress` per fitted window of frames, then :class:`StageProgress` of the later stages;
it checks for a cancel between frames and windows, stores everything in the take folder as it
goes (a rerun resumes), and returns the :class:`ClipSummary`. It holds the take's
writer lock throughout (core/take/lock.py: a second writer is refused at once) and first repairs
damaged chunks (core/take_repair.py)::

    pipeline = Pipeline(PipelineConfig(device="auto"))
    summary = pipeline.run("clip.mp4", "takes/clip", on_frame=print)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from core import __version__
from core.closures.detect import ClosureConfig
from core.closures.stage import ClosureStage
from core.device import select_device
from core.emotion.stage import EmotionConfig, EmotionStage
from core.errors import DamagedManifestError, EmoCapError, TakeError
from core.facemodel.loading import ModelChoice
from core.fit.fitter import FitConfig
from core.fit.stage import FitStage
from core.microexpr.config import RefineConfig
from core.observe.stage import ObserveStage
from core.results import ClipSummary, FitProgress, FrameResult, StageProgress
from core.stages import RunContext, Stage
from core.take import Take, TakeManifest, source_fingerprint
from core.take.lock import TakeLock
from core.take.manifest import BACKUP_NAME, MANIFEST_NAME
from core.take.records import COMPLETE, TakeSettings, VideoRecord
from core.take.store import check_target, is_take_folder
from core.take_repair import fit_changed, heal, rebuild_manifest
from core.take_summary import summarize
from core.timecode import start_timecode_of
from core.video import FrameSource, open_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of an analysis. chunk_size: frames per stored chunk (also where tracking restarts,
    so that resumed and uninterrupted runs agree). crop_size: aligned face crop side, pixels.
    crop_images: whether streamed observations carry the crop image (the take stores only the
    transform; recognisers that sample frames warp their own crops). image_fps: frame rate given to image folders. device: auto | cpu | cuda | cuda:N.
    model: which face model to fit (None: observe only). fit: fitting weights and schedule.
    emotion: the emotion stage's settings (None: no emotion analysis). method: "fit" (the fitter)
    or "encoder" (a trained encoder, core/encoder/stage.py); encoder: its checkpoint path (required
    with method "encoder"; never one trained on this take). refine: the micro-expression refiner's
    settings (core/microexpr/; None: no refinement). neutral: where the performer's identity comes
    from: None (the clip's most neutral frames, or for a single image the model's prior of neutral
    faces), a frame number of the input ("120") or the path of a neutral image of the same person.
    closures: the thresholds of the blink and lip-contact stage after the fit (core/closures/;
    None: the curves stay as fitted). start_timecode: the timecode of the input's frame 0
    ("HH:MM:SS:FF", "HH:MM:SS;FF" drop-frame), stored in the take over the recording's own; None
    keeps what the take has (a new take: the recording's timecode, if any). It changes no result,
    so giving it to a finished take only records it."""

    device: str = "auto"
    chunk_size: int = 128
    crop_size: int = 256
    crop_images: bool = False
    image_fps: float = 30.0
    model: ModelChoice | None = ModelChoice()
    fit: FitConfig = FitConfig()
    emotion: EmotionConfig | None = None
    method: str = "fit"
    encoder: str | None = None
    refine: RefineConfig | None = None
    neutral: str | None = None
    closures: ClosureConfig | None = ClosureConfig()
    start_timecode: str | None = None


class Pipeline:
    """Analyses recordings into takes. The compute device is chosen once, here."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        if self.config.method not in ("fit", "encoder"):
            raise EmoCapError(f"unknown method '{self.config.method}': use fit or encoder")
        self.encoder_path: Path | None = None
        if self.config.method == "encoder":
            from core.encoder.stage import find_encoder

            self.encoder_path = find_encoder(self.config.encoder)  # fails before any frame is read
        self.device = select_device(self.config.device)

    def run(
        self,
        input_path: str | Path,
        take_dir: str | Path,
        *,
        on_frame: Callable[[FrameResult | FitProgress | StageProgress], None] | None = None,
        cancel: threading.Event | None = None,
        overwrite: bool = False,
    ) -> ClipSummary:
        """Drain :meth:`analyze`, calling ``on_frame`` for each result; returns the summary."""
        stream = self.analyze(input_path, take_dir, cancel=cancel, overwrite=overwrite)
        while True:
            try:
                result = next(stream)
            except StopIteration as stop:
                return stop.value
            if on_frame is not None:
                on_frame(result)

    def analyze(
        self,
        input_path: str | Path,
        take_dir: str | Path,
        *,
        cancel: threading.Event | None = None,
        overwrite: bool = False,
    ) -> Generator[FrameResult | FitProgress | StageProgress, None, ClipSummary]:
        root = Path(take_dir)
        with open_source(input_path, image_fps=self.config.image_fps) as source:
            self._start_timecode(source)  # a bad --start-timecode fails before anything is written
            if not is_take_folder(root):
                check_target(root, overwrite)  # a folder that holds something else gets no lock file
            with TakeLock(root):  # one writer at a time; readers never wait
                return (yield from self._analyze_locked(source, root, cancel, overwrite))

    def _analyze_locked(
        self, source: FrameSource, root: Path, cancel: threading.Event | None, overwrite: bool,
    ) -> Generator[FrameResult | FitProgress | StageProgress, None, ClipSummary]:
        """The analysis, with the take's writer lock held: open (or create, or rebuild) the take,
        heal what is damaged (core/take_repair.py), then resume every stage."""
        take = self._open_take(source, root, overwrite)
        healed = heal(take, source, self.config.crop_size, self._later_stages())
        ctx = RunContext(take, source, self.device, self.config.model, cancel)
        yield from ObserveStage(self.config.crop_images).run(ctx)
        stages = self._stages() if take.manifest.frames_with_face else []
        try:
            for stage in stages:
                stage.start_ahead(ctx)
            for stage in stages:
                yield from stage.run(ctx)
                if stage.name == "fit":
                    fit_changed(take, healed)
        finally:
            for stage in stages:
                stage.stop_ahead()
        return summarize(take)

    def _stages(self) -> list[Stage]:
        """The stages after observing that this run computes, in order (the encoder's and the
        refiner's modules are imported only when they run)."""
        if self.config.model is None:
            return [EmotionStage(self.config.emotion)] if self.config.emotion is not None else []
        if self.config.method == "encoder":
            from core.encoder.stage import EncoderStage

            stages: list[Stage] = [EncoderStage(self.encoder_path, self.config.fit.window)]
        else:
            stages = [FitStage(self.config.fit, self.config.neutral)]
        if self.config.closures is not None:
            stages.append(ClosureStage(self.config.closures))
        if self.config.refine is not None:
            from core.microexpr.take_stage import RefineStage

            stages.append(RefineStage(self.config.refine))
        if self.config.emotion is not None:
            stages.append(EmotionStage(self.config.emotion))
        return stages

    def stage_names(self) -> list[str]:
        """The stages a run computes, in order ("observe" first), for progress displays."""
        return ["observe", *(stage.name for stage in self._stages())]

    def _later_stages(self) -> set[str]:
        """The stages after observing that this run computes (their damaged chunks are rebuilt)."""
        return {stage.name for stage in self._stages()}

    def _open_take(self, source: FrameSource, root: Path, overwrite: bool) -> Take:
        take = self._open_or_create(source, root, overwrite)
        self._record_timecode(take, source)
        return take

    def _start_timecode(self, source: FrameSource) -> str | None:
        """The --start-timecode checked against the input's exact rate (TimecodeError before any
        work when it does not fit), normalised."""
        if self.config.start_timecode is None:
            return None
        return start_timecode_of(self.config.start_timecode, source.info)

    def _record_timecode(self, take: Take, source: FrameSource) -> None:
        """Store the recording's exact rate and own timecode (takes made before they were read get
        them on their next run) and the --start-timecode given now."""
        m = take.manifest
        video = VideoRecord.of(source.info)
        start = self._start_timecode(source)
        changed = (m.video.rate, m.video.timecode) != (video.rate, video.timecode) or (
            start is not None and start != m.start_timecode)
        if not changed:
            return
        m.video.rate, m.video.timecode = video.rate, video.timecode
        if start is not None:
            m.start_timecode = start
        take.save_manifest()
        tc = m.timecode()
        log.info("take %s: timecode %s", take.root, tc.describe() if tc else "none")

    def _open_or_create(self, source: FrameSource, root: Path, overwrite: bool) -> Take:
        fingerprint = source_fingerprint(Path(source.info.path))
        settings = TakeSettings(self.config.chunk_size, self.config.crop_size, self.config.image_fps, self.device,
                                __version__)

        def fresh() -> TakeManifest:
            return TakeManifest(fingerprint, VideoRecord.of(source.info), settings)

        if is_take_folder(root) and not overwrite:
            try:
                take = Take.open(root)
            except DamagedManifestError:
                return rebuild_manifest(root, source, fresh())
            except TakeError:
                if any((root / name).exists() for name in (MANIFEST_NAME, BACKUP_NAME)):
                    raise  # another take format
                return rebuild_manifest(root, source, fresh())
            stored = take.manifest
            if not stored.source.same_recording(fingerprint):
                raise TakeError(
                    f"{root} holds the take of another recording ({stored.source.path}); "
                    "use --overwrite or another --out folder"
                )
            if stored.settings.result_settings() != settings.result_settings():
                raise TakeError(f"{root} was analysed with other settings; use --overwrite to redo it")
            if stored.status != COMPLETE:
                log.info("resuming %s after frame %d", root, stored.frames_done)
            if take.manifest_file != MANIFEST_NAME:
                take.save_manifest()
                log.warning("take %s: restored %s from its backup", root, MANIFEST_NAME)
            return take
        return Take.create(root, fresh(), overwrite=overwrite)
