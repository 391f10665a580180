"""A take folder: one analysed recording, stored compactly and resumably.

Layout::

    TAKE/take.json                  manifest: source fingerprint, video info, settings, status,
                                    the size and SHA-256 of every chunk (core/take/manifest.py)
    TAKE/take.backup.json           the same, written after it (used when take.json is damaged)
    TAKE/.writer.lock               the writer's lock (core/take/lock.py)
    TAKE/observations/00000000.npz  per-frame observations of frames [start, start + chunk_size)
    TAKE/fit/identity.npz, fit/00000000.npz ...   fitted identity and windows of frames
    TAKE/emotion/timelines.npz      the emotion stage's timelines (core/emotion/stored.py)
    TAKE/microexpr/window_00000000.npz ...   refined windows of an unfinished refinement
    TAKE/microexpr/refined.npz      the refinement (core/microexpr/results.py)

This module is the only code that knows this layout: the stages read and write their results
through :class:`Take`'s typed methods (``read_fit``, ``write_fit_window``, ``read_emotion``,
``read_refinement`` ...), and the manifest through its typed records (core/take/records.py).

Chunks are written whole and atomically (temporary name, fsync, rename), so a take interrupted at
any moment holds only complete chunks, and an analysis resumes after the last one. Every read of a
chunk is checked against its record (core/take/integrity.py): a damaged or missing chunk raises
DamagedChunkError with its name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.atomic import write_bytes_atomic
from core.errors import DamagedChunkError, MissingChunkError, TakeError
from core.observe.types import TrackState
from core.take.integrity import ChunkRecord, npz_bytes, read_npz
from core.take.landmarks import ChunkedLandmarks
from core.take.lock import LOCK_NAME, TakeLock
from core.take.manifest import (  # noqa: F401 - TAKE_FORMAT and MANIFEST_NAME are part of this module's API
    BACKUP_NAME,
    MANIFEST_NAME,
    TAKE_FORMAT,
    TakeManifest,
    read_manifest,
    write_manifest,
)
from core.take.observations import ObservationArrays, track_state_from_arrays, track_state_to_arrays
from core.take.records import RUNNING, ClosureRecord, EmotionRecord, RefineRecord, SourceRecord
from core.timecode import Timecode

if TYPE_CHECKING:
    from core.emotion.stored import EmotionTimelines
    from core.fit.params import FitParams
    from core.microexpr.results import Refinement

log = logging.getLogger(__name__)

OBSERVATIONS_DIR = "observations"
FIT_DIR = "fit"
EMOTION_DIR = "emotion"
MICROEXPR_DIR = "microexpr"
STAGE_DIRS = (OBSERVATIONS_DIR, FIT_DIR, EMOTION_DIR, MICROEXPR_DIR)
IDENTITY_CHUNK = f"{FIT_DIR}/identity.npz"
EMOTION_CHUNK = f"{EMOTION_DIR}/timelines.npz"
REFINED_CHUNK = f"{MICROEXPR_DIR}/refined.npz"
CLOSURES_CHUNK = f"{FIT_DIR}/closures.npz"  # floors of the closures stage (core/closures/)
KEPT_ON_OVERWRITE = (LOCK_NAME,)


def source_fingerprint(path: Path) -> SourceRecord:
    """Identity of an input: absolute path, total size and a digest of its first and last MiB (all
    files of an image folder), cheap even for long videos."""
    path = Path(path).resolve()
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha1()
    size = 0
    for file in files:
        file_size = file.stat().st_size
        size += file_size
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(1 << 20))
            if file_size > 2 << 20:
                handle.seek(-(1 << 20), os.SEEK_END)
                digest.update(handle.read())
    return SourceRecord(str(path), size, digest.hexdigest())


class Take:
    """A take folder on disk. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, root: Path, manifest: TakeManifest, manifest_file: str = MANIFEST_NAME) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.manifest_file = manifest_file  # take.json, or its backup when take.json was damaged

    @property
    def observations_dir(self) -> Path:
        return self.root / OBSERVATIONS_DIR

    @classmethod
    def create(cls, root: Path, manifest: TakeManifest, *, overwrite: bool = False) -> Take:
        root = Path(root)
        check_target(root, overwrite)
        if overwrite and root.is_dir():
            for entry in root.iterdir():  # the writer's lock file stays: its holder is this process
                if entry.name not in KEPT_ON_OVERWRITE:
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        try:
            (root / OBSERVATIONS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TakeError(f"cannot create take folder {root}: {err.strerror}") from err
        take = cls(root, manifest)
        take.save_manifest()
        return take

    @classmethod
    def open(cls, root: Path) -> Take:
        """Read a take (never writes). When take.json is missing or damaged its backup is read
        and a warning logged; the next save of a writer restores take.json."""
        root = Path(root)
        manifest, name = read_manifest(root)
        if name != MANIFEST_NAME:
            log.warning("take %s: %s is missing or damaged; read its backup %s", root, MANIFEST_NAME, name)
        return cls(root, manifest, name)

    def save_manifest(self) -> None:
        """Write the manifest (and its backup) atomically."""
        self.manifest.updated = datetime.now(timezone.utc).isoformat()
        try:
            write_manifest(self.root, self.manifest)
        except OSError as err:
            raise TakeError(f"cannot write {self.root / MANIFEST_NAME}: {err.strerror}") from err
        self.manifest_file = MANIFEST_NAME

    def chunk_path(self, start: int) -> Path:
        return self.root / observation_chunk_name(start)

    def expected_chunk_starts(self) -> list[int]:
        """Start frames of the observation chunks the manifest says are stored (frames_done)."""
        return list(range(0, self.manifest.frames_done, self.manifest.settings.chunk_size))

    def stored_chunk_starts(self) -> list[int]:
        """Start frames of the stored chunks that form a contiguous run from frame 0."""
        starts = sorted(int(p.stem) for p in self.observations_dir.glob("[0-9]*.npz"))
        chunk = self.manifest.settings.chunk_size
        contiguous = []
        for expected, start in zip(range(0, chunk * len(starts), chunk), starts):
            if start != expected:
                break
            contiguous.append(start)
        return contiguous

    def write_chunk(self, arrays: ObservationArrays, state_after: TrackState) -> ChunkRecord:
        """Store frames ``arrays`` (starting at a multiple of the chunk size) and the tracker state
        after their last frame."""
        start = int(arrays.index[0])
        payload = arrays.to_npz_dict() | track_state_to_arrays(state_after)
        return self.write_named(observation_chunk_name(start), payload)

    def read_chunk(self, start: int) -> tuple[ObservationArrays, TrackState]:
        """The observations of the chunk starting at ``start`` and the tracker state after it."""
        name = observation_chunk_name(start)
        data = self.read_named(name)
        try:
            return ObservationArrays.from_npz_dict(data), track_state_from_arrays(data)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise DamagedChunkError(self.root, name, f"damaged (not an observation chunk: {err})") from err

    # ---- every chunk: written with a record in the manifest, read against it -------------------
    def write_named(self, name: str, arrays: dict[str, np.ndarray]) -> ChunkRecord:
        """Store ``arrays`` atomically as TAKE/name (an .npz path inside the take) and record its
        size and SHA-256 in the manifest, which is saved."""
        path = self.root / name
        try:
            path.parent.mkdir(exist_ok=True)
            data = npz_bytes(arrays)
            write_bytes_atomic(path, data)
        except OSError as err:
            raise TakeError(f"cannot write to take {self.root}: {err.strerror}") from err
        record = ChunkRecord.of(data)
        self.manifest.set_record(name, record)
        self.save_manifest()
        return record

    def read_named(self, name: str) -> dict[str, np.ndarray]:
        """The arrays of TAKE/name, verified against the manifest's record (DamagedChunkError,
        MissingChunkError)."""
        return read_npz(self.root, name, self.manifest.record(name))

    def has_chunk(self, name: str) -> bool:
        """Whether the chunk was recorded or is present (a recorded chunk that is gone is damage,
        not absence)."""
        return self.manifest.record(name) is not None or (self.root / name).exists()

    def remove_chunk(self, name: str) -> None:
        """Delete TAKE/name and its record (the manifest is saved by the caller)."""
        (self.root / name).unlink(missing_ok=True)
        self.manifest.forget(name)

    # ---- fitted parameters: fit/identity.npz and fit/<first frame>.npz per window ----------------
    def reset_fit(self) -> None:
        """Remove every fitted chunk (a new fit starts)."""
        shutil.rmtree(self.root / FIT_DIR, ignore_errors=True)
        (self.root / FIT_DIR).mkdir()
        self.manifest.forget(f"{FIT_DIR}/")

    def read_identity(self) -> np.ndarray | None:
        """The fitted identity coefficients (S), or None when none is stored yet."""
        arrays = self.read_arrays(FIT_DIR, "identity")
        return None if arrays is None else arrays["identity"]

    def write_identity(self, identity: np.ndarray) -> None:
        self.write_arrays(FIT_DIR, "identity", {"identity": identity})

    def fit_window_name(self, start: int) -> str:
        """Path inside the take of the fitted window that starts at frame ``start``."""
        return f"{FIT_DIR}/{start:08d}.npz"

    def read_fit_window(self, start: int) -> FitParams:
        """The stored fitted window that starts at frame ``start`` (verified)."""
        from core.fit.params import FitParams

        name = self.fit_window_name(start)
        data = self.read_named(name)
        try:
            return FitParams.from_npz_dict(data)
        except (ValueError, KeyError, TypeError) as err:
            raise DamagedChunkError(self.root, name, f"damaged (not a fitted window: {err})") from err

    def write_fit_window(self, params: FitParams) -> None:
        """Store a fitted window (its first frame names it)."""
        self.write_named(self.fit_window_name(int(params.frame_index[0])), params.to_npz_dict())

    def fit_window_starts(self) -> list[int]:
        """First frames of the fitted windows stored or recorded (a recorded one that is gone
        raises MissingChunkError when read)."""
        present = {p.name for p in (self.root / FIT_DIR).glob("[0-9]*.npz")}
        recorded = {n[len(FIT_DIR) + 1:] for n in self.manifest.chunks or {} if n.startswith(f"{FIT_DIR}/")}
        return sorted(int(name[:-4]) for name in present | recorded if name[:8].isdigit() and name.endswith(".npz"))

    def read_fit(self, *, complete: bool = False, closures: bool = True) -> FitParams | None:
        """All fitted windows as one FitParams, or None when the take has no fit (``complete``:
        also None while the fit is unfinished). ``closures``: with the closures stage's floors
        applied when the take has them (blinks and lip contacts reached; core/closures/), else as
        fitted."""
        from core.fit.params import FitParams

        fit = self.manifest.fit
        if fit is None or complete and not fit.complete:
            return None
        starts = self.fit_window_starts()
        if not starts:
            return None
        params = FitParams.concatenate([self.read_fit_window(s) for s in starts])
        return self._with_closures(params) if closures else params

    def _read_stage_output(self, chunk: str, stage: str) -> dict[str, np.ndarray] | None:
        """The arrays of the ``chunk`` a stage writes at its end (``stage``: its record's name in the
        manifest, "closures" or "emotion"), or None when the stage has not completed. An analysis
        redoing the stage replaces the file (the emotion stage removes it as it starts): a reader
        whose manifest was read before finds it gone or other than recorded. The manifest as it is
        now then says whether the stage is being redone (None), was redone (its new output is read
        and its record adopted), or the file is damaged (DamagedChunkError, as read_named raises)."""
        record = getattr(self.manifest, stage)
        if record is None or not record.complete or not self.has_chunk(chunk):
            return None
        try:
            return self.read_named(chunk)
        except DamagedChunkError:
            now = Take.open(self.root).manifest
            current = getattr(now, stage)
            if current is not None and current.complete and now.record(chunk) == self.manifest.record(chunk):
                raise
            setattr(self.manifest, stage, current)
            self.manifest.forget(chunk)
            if now.record(chunk) is not None:
                self.manifest.set_record(chunk, now.record(chunk))
            return self._read_stage_output(chunk, stage)

    # ---- closures: fit/closures.npz, floors under the fitted curves ------------------------------
    def read_closure_floor(self) -> np.ndarray | None:
        """The closures stage's floor (N x E, NaN: none), or None when the stage has not completed."""
        data = self._read_stage_output(CLOSURES_CHUNK, "closures")
        if data is None:
            return None
        if "floor" not in data:
            raise DamagedChunkError(self.root, CLOSURES_CHUNK, "damaged (no floor in it)")
        return data["floor"]

    def write_closures(self, floor: np.ndarray, record: ClosureRecord) -> None:
        """Store the closures stage's floor and its (complete) record."""
        self.write_named(CLOSURES_CHUNK, {"floor": np.asarray(floor, np.float32)})
        self.manifest.closures = record
        self.save_manifest()

    def _with_closures(self, fit: FitParams) -> FitParams:
        """``fit`` with the closure floor applied (unchanged when there is none for these rows)."""
        from core.closures.floor import apply_floor

        floor = self.read_closure_floor()
        if floor is None or floor.shape != fit.expression.shape:
            return fit
        return dataclasses.replace(fit, expression=apply_floor(fit.expression, floor))

    def fit_digest(self, closures: bool = False) -> str:
        """SHA-256 over the recorded digests of the fit's chunks (identity and windows, and with
        ``closures`` the blink and lip-contact floors that :meth:`read_fit` applies): what a stage
        computed from the fit is stale when it changes."""
        digest = hashlib.sha256()
        for name in sorted(self.manifest.chunks or {}):
            record = self.manifest.record(name)
            if name.startswith(f"{FIT_DIR}/") and (closures or name != CLOSURES_CHUNK) and record is not None:
                digest.update(f"{name} {record.sha256}\n".encode())
        return digest.hexdigest()

    def read_fit_intact(self) -> tuple[FitParams | None, list[FrameGap]]:
        """The fit as :meth:`read_fit` gives it, except that a damaged or missing window does not
        fail the read: its frames are held as frames without a face (NaN) and named in the
        returned gaps. None when the take has no fit or no window reads back whole."""
        from core.fit.params import FitParams

        fit = self.manifest.fit
        starts = self.fit_window_starts() if fit is not None else []
        windows: dict[int, FitParams] = {}
        gaps: list[FrameGap] = []
        for i, start in enumerate(starts):
            try:
                windows[start] = self.read_fit_window(start)
            except DamagedChunkError as err:
                stop = starts[i + 1] if i + 1 < len(starts) else self.manifest.frames_done
                gaps.append(FrameGap(start, max(stop, start + 1), err.chunk, err.reason))
        if not windows:
            return None, gaps
        identity = next(iter(windows.values())).identity
        for gap in gaps:
            windows[gap.start] = FitParams.empty(np.arange(gap.start, gap.stop), identity, len(fit.expression_names))
        params = FitParams.concatenate([windows[s] for s in sorted(windows)])
        try:
            return self._with_closures(params), gaps
        except DamagedChunkError as err:
            log.warning("take %s: %s; the fit is shown without its closure floors", self.root, err)
            return params, gaps

    # ---- emotion: emotion/timelines.npz --------------------------------------------------------
    def read_emotion(self) -> EmotionTimelines | None:
        """The emotion stage's timelines, or None when the stage has not completed."""
        from core.emotion.stored import EmotionTimelines

        data = self._read_stage_output(EMOTION_CHUNK, "emotion")
        if data is None:
            return None
        record = self.manifest.emotion  # as the stage output read was recorded
        try:
            return EmotionTimelines.from_npz_dict(data, record.recognisers, record.primary)
        except (ValueError, KeyError, TypeError) as err:
            raise DamagedChunkError(self.root, EMOTION_CHUNK, f"damaged (not emotion timelines: {err})") from err

    def write_emotion(self, timelines: EmotionTimelines, record: EmotionRecord) -> None:
        """Store the emotion stage's timelines and its (complete) record."""
        self.write_named(EMOTION_CHUNK, timelines.to_npz_dict())
        self.manifest.emotion = record
        self.save_manifest()

    def reset_emotion(self) -> None:
        """Remove the emotion timelines; the stage (and its summary) is redone."""
        if self.manifest.emotion is not None:
            self.remove_chunk(EMOTION_CHUNK)
            self.manifest.emotion.status = RUNNING
            self.manifest.emotion.summary = None

    # ---- refinement: microexpr/window_<first row>.npz while running, then microexpr/refined.npz --
    def refine_window_starts(self) -> list[int]:
        """Start rows of the windows an interrupted refinement already stored, in order."""
        return [int(path.stem.split("_")[1]) for path in sorted((self.root / MICROEXPR_DIR).glob("window_[0-9]*.npz"))]

    def read_refine_window(self, start: int) -> dict[str, np.ndarray]:
        """The arrays of the stored refined window starting at row ``start`` (verified:
        DamagedChunkError, MissingChunkError)."""
        return self.read_named(f"{MICROEXPR_DIR}/window_{start:08d}.npz")

    def write_refine_window(self, start: int, arrays: dict[str, np.ndarray]) -> None:
        self.write_arrays(MICROEXPR_DIR, f"window_{start:08d}", arrays)

    def read_refinement(self) -> Refinement | None:
        """The stored refinement, or None when the take has no complete one."""
        from core.microexpr.results import Refinement

        record = self.manifest.microexpr
        if record is None or not record.complete:
            return None
        data = self.read_named(REFINED_CHUNK)
        try:
            return Refinement.from_npz_dict(data)
        except (ValueError, KeyError, TypeError) as err:
            raise DamagedChunkError(self.root, REFINED_CHUNK, f"damaged (not a refinement: {err})") from err

    def write_refinement(self, refinement: Refinement, record: RefineRecord) -> None:
        """Store the refinement and its (complete) record, and drop the windows it was assembled
        from."""
        self.write_named(REFINED_CHUNK, refinement.to_npz_dict())
        for path in (self.root / MICROEXPR_DIR).glob("window_[0-9]*.npz"):
            self.remove_chunk(f"{MICROEXPR_DIR}/{path.name}")
        self.manifest.microexpr = record
        self.save_manifest()

    def reset_refinement(self) -> None:
        """Remove every stored refinement file (the stage starts over)."""
        folder = self.root / MICROEXPR_DIR
        if folder.is_dir():
            for path in folder.glob("*.npz"):
                path.unlink()
        self.manifest.forget(f"{MICROEXPR_DIR}/")

    # ---- chunks of a stage by folder and name ---------------------------------------------------
    def write_arrays(self, folder: str, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Store arrays atomically as TAKE/folder/name.npz, recorded in the manifest."""
        self.write_named(f"{folder}/{name}.npz", arrays)

    def read_arrays(self, folder: str, name: str) -> dict[str, np.ndarray] | None:
        """TAKE/folder/name.npz as a dict of arrays, or None when it was never stored; verified
        (DamagedChunkError, or MissingChunkError when it was recorded and is gone)."""
        chunk = f"{folder}/{name}.npz"
        if not self.has_chunk(chunk):
            return None
        return self.read_named(chunk)

    def load_observations(self, landmarks_on_demand: bool = False) -> ObservationArrays:
        """All stored frames, in order (each chunk verified: a damaged or missing one raises
        DamagedChunkError). ``landmarks_on_demand``: the landmarks are not held but read from the
        chunks (verified again) when indexed (core/take/landmarks.py); for a run that holds the
        take's writer lock, so that the chunks stay as they were read."""
        starts = self.stored_chunk_starts()
        gone = sorted(set(self.expected_chunk_starts()) - set(starts))
        if gone:
            raise MissingChunkError(self.root, observation_chunk_name(gone[0]))
        capacity = len(starts) * self.manifest.settings.chunk_size
        parts = (self.read_chunk(s)[0] for s in starts)
        if not landmarks_on_demand:
            return ObservationArrays.gather(parts, capacity)

        def read_landmarks(block: int) -> np.ndarray:
            name = observation_chunk_name(starts[block])
            try:
                return self.read_named(name)["landmarks"]
            except KeyError as err:
                raise DamagedChunkError(self.root, name, "damaged (no landmarks)") from err

        return ObservationArrays.gather(parts, capacity, lambda lengths: ChunkedLandmarks(read_landmarks, lengths))


def set_start_timecode(root: Path, label: str | None) -> Timecode | None:
    """Give the take at ``root`` the timecode of its frame 0, as ``emocap analyze --start-timecode``
    does (the app's "Set start timecode"); None or "" goes back to the recording's own. Written
    under the writer lock. Returns the take's timecode now. Raises TimecodeError when ``label``
    does not fit the take's frame rate, TakeBusyError while an analysis writes the take."""
    with TakeLock(root):
        take = Take.open(root)
        m = take.manifest
        m.start_timecode = str(Timecode.parse(label, m.video.exact_rate)) if label and label.strip() else None
        take.save_manifest()
    log.info("take %s: start timecode %s", root, m.start_timecode or "of the recording")
    return m.timecode()


@dataclass(frozen=True)
class FrameGap:
    """Frames [start, stop) whose stored chunk ``chunk`` cannot be read (``reason``)."""

    start: int
    stop: int
    chunk: str
    reason: str

    def describe(self) -> str:
        """One line naming the frames and why they are missing."""
        return f"frames {self.start}-{self.stop - 1} are gaps: {self.chunk} is {self.reason}"


def observation_chunk_name(start: int) -> str:
    """Path inside a take of the observation chunk that starts at frame ``start``."""
    return f"{OBSERVATIONS_DIR}/{start:08d}.npz"


def is_take_folder(root: Path) -> bool:
    """Whether ``root`` holds a take: a manifest, its backup, or the stage folders of one."""
    root = Path(root)
    return any((root / name).exists() for name in (MANIFEST_NAME, BACKUP_NAME, OBSERVATIONS_DIR))


def check_target(root: Path, overwrite: bool) -> None:
    """Refuse to write a take into a folder that holds something else (or, without ``overwrite``,
    a take that would be replaced); a missing or empty folder is fine."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise TakeError(f"{root} is a file, not a take folder")
    entries = [e for e in root.iterdir() if e.name not in KEPT_ON_OVERWRITE] if root.is_dir() else []
    if not entries:
        return
    if not overwrite:
        raise TakeError(f"{root} is not empty; choose another take folder or overwrite it")
    if not is_take_folder(root):
        raise TakeError(f"{root} is not a take folder; refusing to overwrite it")
