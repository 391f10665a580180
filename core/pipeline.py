"""The one pipeline that the GUI, the command line and the tests drive.

``Pipeline.analyze`` is a generator. It yields a :class:`FrameResult` per observed frame (frames
already stored by an interrupted run first, then new ones), then a :class:`FitProgress` per fitted
window of frames, then :class:`StageProgress` of the emotion stage when asked for; it checks for a
cancel between frames and windows, stores everything in the take
folder as it goes (a rerun resumes), and returns the :class:`ClipSummary`. It holds the take's
writer lock throughout (core/take/lock.py: a second writer is refused at once) and first repairs
damaged chunks (core/take_repair.py)::

    pipeline = Pipeline(PipelineConfig(device="auto"))
    summary = pipeline.run("clip.mp4", "takes/clip", on_frame=print)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import __version__
from core.device import select_device
from core.errors import (
    CancelledError, DamagedChunkError, DamagedManifestError, EmoCapError, EncoderError, RefinerError, TakeError,
    VideoDecodeError,
)
from core.emotion.stage import EmotionConfig
from core.facemodel.loading import ModelChoice, load_face_model
from core.fit.fitter import FitConfig, Fitter, slice_observations
from core.fit.params import FitParams
from core.microexpr.config import RefineConfig
from core.observe import FaceObserver, FrameObservation, TrackState
from core.prefetch import prefetch
from core.results import ClipSummary, FitProgress, FrameResult, StageProgress
from core.take import ObservationArrays, Take, TakeManifest, source_fingerprint
from core.take.lock import TakeLock
from core.take.manifest import BACKUP_NAME, MANIFEST_NAME
from core.take.observations import track_state_from_arrays, track_state_to_arrays
from core.take.store import check_target, is_take_folder
from core.take_repair import fit_changed, heal, rebuild_manifest
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
    faces), a frame number of the input ("120") or the path of a neutral image of the same person."""

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

    def result_settings(self) -> dict:
        """The settings that change results; a take is only resumed with the same ones."""
        return {"chunk_size": self.chunk_size, "crop_size": self.crop_size, "image_fps": self.image_fps}


def json_ready(value):
    """Tuples to lists, recursively, so settings compare equal after a JSON round trip."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def load_fit(take: Take) -> FitParams | None:
    """All fitted windows of a take, or None when it has no fit."""
    starts = take.fit_window_starts() if take.manifest.fit else []
    if not starts:
        return None
    return FitParams.concatenate([FitParams.from_npz_dict(take.read_fit_arrays(f"{s:08d}")) for s in starts])


def _fit_summary(take: Take) -> dict:
    fit = take.manifest.fit
    params = load_fit(take)
    if fit is None or params is None:
        return {}
    names = fit["expression_names"]
    faces = params.has_face
    curves = {}
    if faces.any():
        values = params.expression[faces]
        curves = {
            name: {"min": round(float(values[:, i].min()), 4), "max": round(float(values[:, i].max()), 4),
                   "mean": round(float(values[:, i].mean()), 4)}
            for i, name in enumerate(names)
        }
    return {
        "model": fit["model"],
        "parameter_sizes": {"identity": fit["num_shape"], "expression": len(names), "rotation": 3, "neck": 3,
                            "jaw": 3, "eyes": 6, "camera": 4},
        "curves": curves,
        "fit_residual": round(float(np.nanmean(params.residual)), 5) if faces.any() else None,
    }


def summarize(take: Take) -> ClipSummary:
    """The summary of a stored take (what ``emocap info`` prints). A damaged fit leaves the fit's
    part out and names the damaged chunk among the warnings."""
    m = take.manifest
    damage = []
    try:
        fit_part = _fit_summary(take)
    except DamagedChunkError as err:
        fit_part = {}
        damage.append(str(err))
    video = m.video
    done = m.frames_done
    fps = float(video["fps"])
    return ClipSummary(
        source=m.source["path"],
        take=str(take.root),
        status="complete" if m.status == "complete" and (m.fit is None or m.fit["status"] == "complete") else (
            m.status if m.status != "complete" else "fitting"),
        frames=done,
        frames_with_face=m.frames_with_face,
        fps=fps,
        width=int(video["width"]),
        height=int(video["height"]),
        seconds=round(done / fps, 3) if fps > 0 else 0.0,
        variable_frame_rate=bool(video["variable_frame_rate"]),
        truncated_at=video.get("truncated_at"),
        actor_faces=int(m.actor["faces_found"]) if m.actor else 0,
        device=str(m.settings.get("device", "cpu")),
        warnings=list(m.warnings) + damage,
        **fit_part,
        **((m.emotion or {}).get("summary") or {}),
        **((m.microexpr or {}).get("summary") or {}),
    )


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
        total = source.info.frame_count
        state = TrackState()
        position = 0
        for start in take.expected_chunk_starts():
            arrays, state = take.read_chunk(start)
            for row in range(len(arrays)):
                position += 1
                yield FrameResult(arrays.observation(row), position, total, from_take=True)
        if take.manifest.status != "complete":
            yield from self._observe(source, take, state, position, cancel)
        if self.config.model is not None and take.manifest.frames_with_face:
            if self.config.method == "encoder":
                yield from self._encode(take, source, cancel)
            else:
                yield from self._fit(take, cancel)
            fit_changed(take, healed)
        if self.config.refine is not None and self.config.model is not None and take.manifest.frames_with_face:
            yield from self._refine(take, source, cancel)
        if self.config.emotion is not None and take.manifest.frames_with_face:
            yield from self._emotion(take, source, cancel)
        return summarize(take)

    def _later_stages(self) -> set[str]:
        """The stages after observing that this run computes (their damaged chunks are rebuilt)."""
        stages = set()
        if self.config.model is not None:
            stages |= {"fit"} | ({"microexpr"} if self.config.refine is not None else set())
        if self.config.emotion is not None:
            stages.add("emotion")
        return stages

    def _open_take(self, source: FrameSource, root: Path, overwrite: bool) -> Take:
        fingerprint = source_fingerprint(Path(source.info.path))
        settings = self.config.result_settings() | {"device": self.device, "version": __version__}
        video = dataclasses.asdict(source.info)
        if is_take_folder(root) and not overwrite:
            try:
                take = Take.open(root)
            except DamagedManifestError:
                return rebuild_manifest(root, source, TakeManifest(fingerprint, video, settings))
            except TakeError:
                if any((root / name).exists() for name in (MANIFEST_NAME, BACKUP_NAME)):
                    raise  # another take format
                return rebuild_manifest(root, source, TakeManifest(fingerprint, video, settings))
            stored = take.manifest
            if stored.source["sha1"] != fingerprint["sha1"] or stored.source["size"] != fingerprint["size"]:
                raise TakeError(
                    f"{root} holds the take of another recording ({stored.source['path']}); "
                    "use --overwrite or another --out folder"
                )
            same = all(stored.settings.get(k) == v for k, v in self.config.result_settings().items())
            if not same:
                raise TakeError(f"{root} was analysed with other settings; use --overwrite to redo it")
            if stored.status != "complete":
                log.info("resuming %s after frame %d", root, stored.frames_done)
            if take.manifest_file != MANIFEST_NAME:
                take.save_manifest()
                log.warning("take %s: restored %s from its backup", root, MANIFEST_NAME)
            return take
        return Take.create(root, TakeManifest(fingerprint, video, settings), overwrite=overwrite)

    def _observe(
        self,
        source: FrameSource,
        take: Take,
        state: TrackState,
        position: int,
        cancel: threading.Event | None,
    ) -> Generator[FrameResult, None, None]:
        chunk = self.config.chunk_size
        total = source.info.frame_count
        manifest = take.manifest
        buffer: list[FrameObservation] = []
        manifest.status = "running"
        with FaceObserver(crop_size=self.config.crop_size, crop_images=self.config.crop_images) as observer:
            observer.state = state
            try:
                for index, image in prefetch(source.iter_frames(start=position)):
                    if cancel is not None and cancel.is_set():
                        manifest.status = "cancelled"
                        take.save_manifest()
                        raise CancelledError(
                            f"analysis cancelled at frame {index}; {manifest.frames_done} frames are "
                            f"stored in {take.root} and a new run resumes from there"
                        )
                    if index % chunk == 0:
                        # Round-trip through the stored form so that a resumed run starts from
                        # bit-identical state.
                        observer.reset(track_state_from_arrays(track_state_to_arrays(observer.state)))
                    observation = observer.observe(index, float(source.timestamps[index]), image)
                    buffer.append(dataclasses.replace(observation, crop=None))
                    position += 1
                    yield FrameResult(observation, position, total)
                    if len(buffer) == chunk:
                        self._store(take, buffer, observer.state)
                        buffer = []
            except VideoDecodeError as err:
                manifest.warnings.append(f"decoding stopped at frame {position}: {err}")
                manifest.video["truncated_at"] = position
            if buffer:
                self._store(take, buffer, observer.state)
        if source.info.truncated_at is not None and not any("truncated" in w for w in manifest.warnings):
            manifest.warnings.append(
                f"the source is truncated: frames from {source.info.truncated_at} on are unreadable"
            )
        self._add_face_warnings(take)
        manifest.status = "complete"
        take.save_manifest()

    def _fit(self, take: Take, cancel: threading.Event | None) -> Generator[FitProgress, None, None]:
        """Fit the face model to the stored observations, window by window, resumably."""
        settings = self.config.model.settings() | {"fit": dataclasses.asdict(self.config.fit),
                                                   "neutral": self._neutral_setting()}
        observations = take.load_observations()
        total = len(observations)
        named = self.config.neutral is not None
        # a neutral that cannot be used fails here, before a stored fit is replaced
        neutral = self._neutral_evidence(observations)
        manifest = take.manifest
        if manifest.fit is None or manifest.fit["settings"] != settings:
            take.reset_fit()
            manifest.fit = {"settings": settings, "status": "running"}
        model = load_face_model(self.config.model)
        manifest.fit |= {"model": model.name, "num_shape": model.num_shape,
                         "expression_names": list(model.expression_names)}
        take.save_manifest()
        fitter = Fitter(model, self.config.fit)
        stored = take.read_fit_arrays("identity")
        if named:  # the performer's own neutral scores are the baseline of the learned scores
            fitter.use_neutral_scores(np.median(np.nan_to_num(neutral.blendshapes[neutral.has_face]), axis=0))
        if stored is None:
            identity = fitter.fit_identity(neutral, named_neutral=named)
            take.write_fit_arrays("identity", {"identity": identity})
        else:
            identity = stored["identity"]
        done = set(take.fit_window_starts())
        previous = None
        for start in range(0, total, self.config.fit.window):
            if cancel is not None and cancel.is_set():
                manifest.fit["status"] = "cancelled"
                take.save_manifest()
                raise CancelledError(f"fitting cancelled at frame {start}; a new run resumes from there")
            name = f"{start:08d}"
            if start in done:
                previous = FitParams.from_npz_dict(take.read_fit_arrays(name))
                from_take = True
            else:
                window = slice_observations(observations, start, start + self.config.fit.window)
                previous = fitter.fit_window(window, identity, previous)
                take.write_fit_arrays(name, previous.to_npz_dict())
                from_take = False
            yield FitProgress(previous, min(start + self.config.fit.window, total), total, from_take)
        manifest.fit["status"] = "complete"
        take.save_manifest()

    def _neutral_setting(self) -> dict | None:
        """How the identity's neutral was chosen, as stored with the fit (a new choice refits)."""
        neutral = self.config.neutral
        if neutral is None:
            return None
        if neutral.strip().isdigit():
            return {"frame": int(neutral)}
        path = Path(neutral)
        if not path.is_file():
            raise EmoCapError(f"--neutral {neutral}: no such image (give a frame number or a neutral photo)")
        return {"image": source_fingerprint(path)}

    def _neutral_evidence(self, observations: ObservationArrays) -> ObservationArrays:
        """The frames the identity is fitted on: all (the fitter picks the most neutral ones), the
        frame the user named, or the observation of the neutral image the user named."""
        neutral = self.config.neutral
        if neutral is None:
            return observations
        if neutral.strip().isdigit():
            rows = np.nonzero((observations.index == int(neutral)) & observations.has_face)[0]
            if not len(rows):
                raise EmoCapError(f"--neutral {neutral}: that frame shows no face; choose another neutral frame")
            return slice_observations(observations, int(rows[0]), int(rows[0]) + 1)
        with open_source(neutral) as source, FaceObserver(crop_images=False) as observer:
            observation = observer.observe(0, 0.0, source.read(0))
        if not observation.has_face:
            raise EmoCapError(f"--neutral {neutral}: no face found in that image")
        return ObservationArrays.from_observations([observation])

    def _encode(self, take: Take, source: FrameSource, cancel: threading.Event | None) -> Generator[FitProgress | StageProgress, None, None]:
        """Per-frame parameters from a trained encoder instead of the fitter, stored as the fit is."""
        from core.encoder.runtime import EncoderRuntime
        from core.digest import file_sha256
        from core.encoder.stage import check_compatible, encode_take

        path = self.encoder_path
        settings = self.config.model.settings() | {"method": "encoder", "encoder": str(path.resolve()),
                                                   "encoder_sha256": file_sha256(path)}
        manifest = take.manifest
        if manifest.fit is not None and manifest.fit.get("settings") == settings and manifest.fit.get("status") == "complete":
            return
        fitted = manifest.fit is not None and manifest.fit.get("status") == "complete" \
            and manifest.fit.get("settings", {}).get("method") != "encoder"
        if fitted and path.resolve().is_relative_to(take.root.resolve()):
            raise EncoderError(
                f"{take.root} holds the fit its own encoder ({path}) was trained on, and --method encoder "
                "would replace it; analyse into another take instead: "
                f"emocap analyze CLIP --out NEW_TAKE --method encoder --encoder {path}"
            )
        runtime = EncoderRuntime.from_checkpoint(path, device=self.device)
        model = load_face_model(self.config.model)
        check_compatible(runtime.encoder.config, model, path)
        manifest.fit = {"settings": settings, "status": "running", "model": model.name, "num_shape": model.num_shape,
                        "expression_names": list(model.expression_names)}
        take.save_manifest()
        yield from encode_take(take, source, model, runtime, window=self.config.fit.window, cancel=cancel)
        manifest.fit["status"] = "complete"
        take.save_manifest()

    def _refine(self, take: Take, source: FrameSource, cancel: threading.Event | None) -> Generator[StageProgress, None, None]:
        """Micro-expression refinement of the fit (core/microexpr/stage.py), stored as
        TAKE/microexpr/refined.npz; resumes window by window, and a complete result with the same
        settings is kept."""
        from core.microexpr.results import (
            refinement_summary, reset_refinement, store_refinement, store_window, stored_windows,
        )
        from core.microexpr.stage import WindowResult, refine_clip

        fit_entry = take.manifest.fit or {}
        settings = json_ready(self.config.refine.settings() | {"fit": fit_entry.get("settings")})
        entry = take.manifest.microexpr
        if entry and entry.get("settings") == settings and entry.get("status") == "complete":
            return
        if not entry or entry.get("settings") != settings:
            reset_refinement(take)
        take.manifest.microexpr = {"settings": settings, "status": "running"}
        take.save_manifest()
        fit = load_fit(take)
        if fit is None or fit_entry.get("status") != "complete":
            raise RefinerError(f"{take.root} has no complete fit to refine; run the analysis without --refine first")
        model = load_face_model(self.config.model)
        finished = {start: WindowResult.from_npz_dict(a) for start, a in stored_windows(take).items()}
        refinement = yield from refine_clip(
            source, take.load_observations(), fit, model, self.config.refine, cancel, finished,
            on_window=lambda w: store_window(take, w.start, w.to_npz_dict()),
        )
        store_refinement(take, refinement)
        take.manifest.microexpr = {
            "settings": settings, "status": "complete", "windows": refinement.windows.tolist(),
            "offset_components": int(len(refinement.offset_basis)), "summary": refinement_summary(refinement),
        }
        take.save_manifest()

    def _emotion(self, take: Take, source: FrameSource, cancel: threading.Event | None) -> Generator[StageProgress, None, None]:
        """Emotion timelines of the performer and of the reconstruction (core/emotion/stage.py),
        stored as TAKE/emotion/timelines.npz; a complete result with the same settings is kept."""
        from core.emotion.recognisers import load_recogniser
        from core.emotion.stage import analyse_emotion, param_model_state

        settings = dataclasses.asdict(self.config.emotion) | {"fit": (take.manifest.fit or {}).get("settings")}
        settings = json_ready(settings)
        existing = take.manifest.emotion
        if existing and existing.get("status") == "complete" and existing.get("settings") == settings:
            return
        recognisers = {name: load_recogniser(name, device=self.device) for name in self.config.emotion.recognisers}
        fit = load_fit(take) if take.manifest.fit and take.manifest.fit.get("status") == "complete" else None
        model = load_face_model(self.config.model) if fit is not None and self.config.model is not None else None
        observations = take.load_observations()
        result = yield from analyse_emotion(
            source, observations, fit if model is not None else None, model, recognisers, self.config.emotion, cancel
        )
        arrays: dict[str, np.ndarray] = {}
        for timeline in result.timelines.values():
            arrays |= timeline.to_npz_dict()
        if result.param_model is not None:
            arrays |= param_model_state(result.param_model)
        take.write_arrays("emotion", "timelines", arrays)
        take.manifest.emotion = {
            "settings": settings, "status": "complete", "primary": result.primary,
            "recognisers": list(result.timelines), "reference_frame": result.reference_frame,
            "measured_frames": {name: int(t.measured.sum()) for name, t in result.timelines.items()},
            "param_model": result.param_report, "summary": result.summary(observations.has_face),
        }
        take.save_manifest()

    def _store(self, take: Take, buffer: list[FrameObservation], state: TrackState) -> None:
        arrays = ObservationArrays.from_observations(buffer)
        take.write_chunk(arrays, state)
        manifest = take.manifest
        manifest.frames_with_face += int(arrays.has_face.sum())
        if state.selection is not None:
            box = state.selection.box
            manifest.actor = {
                "frame": state.selection.frame_index,
                "faces_found": state.selection.faces_found,
                "box": [round(v, 1) for v in (box.x0, box.y0, box.x1, box.y1)],
            }
        manifest.frames_done = int(arrays.index[-1]) + 1
        take.save_manifest()

    @staticmethod
    def _add_face_warnings(take: Take) -> None:
        m = take.manifest
        if m.frames_with_face == 0:
            m.warnings.append(f"no face found in any of the {m.frames_done} frames")
            return
        if m.actor and m.actor["faces_found"] > 1:
            x0, y0, x1, y1 = m.actor["box"]
            m.warnings.append(
                f"{m.actor['faces_found']} faces in frame {m.actor['frame']}; following the largest "
                f"(x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px)"
            )
        missing = m.frames_done - m.frames_with_face
        if missing:
            m.warnings.append(f"no face in {missing} of {m.frames_done} frames (flagged, not filled in)")
