"""A take folder: one analysed recording, stored compactly and resumably.

Layout::

    TAKE/take.json                  manifest: source fingerprint, video info, settings, status
    TAKE/observations/00000000.npz  per-frame observations of frames [start, start + chunk_size)

Chunks are written whole and atomically (temporary name, fsync, rename), so a take interrupted at
any moment holds only complete chunks, and an analysis resumes after the last one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import TakeError
from core.observe.types import TrackState
from core.take.atomic import write_json_atomic, write_npz_atomic
from core.take.observations import ObservationArrays, track_state_from_arrays, track_state_to_arrays

log = logging.getLogger(__name__)

TAKE_FORMAT = 1
MANIFEST_NAME = "take.json"
OBSERVATIONS_DIR = "observations"
FIT_DIR = "fit"


def source_fingerprint(path: Path) -> dict[str, Any]:
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
    return {"path": str(path), "size": size, "sha1": digest.hexdigest()}


@dataclass
class TakeManifest:
    """Contents of take.json. ``status``: running | cancelled | complete."""

    source: dict[str, Any]
    video: dict[str, Any]
    settings: dict[str, Any]
    status: str = "running"
    frames_done: int = 0
    frames_with_face: int = 0
    actor: dict[str, Any] | None = None  # how the performer was chosen: frame, faces_found, box
    fit: dict[str, Any] | None = None  # model, sizes, expression names, status of the fitting stage
    emotion: dict[str, Any] | None = None  # settings, status and summary of the emotion stage
    microexpr: dict[str, Any] | None = None  # settings, status, windows and summary of the refiner
    warnings: list[str] = field(default_factory=list)
    format: int = TAKE_FORMAT
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    updated: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TakeManifest:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


class Take:
    """A take folder on disk. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, root: Path, manifest: TakeManifest) -> None:
        self.root = Path(root)
        self.manifest = manifest

    @property
    def observations_dir(self) -> Path:
        return self.root / OBSERVATIONS_DIR

    @classmethod
    def create(cls, root: Path, manifest: TakeManifest, *, overwrite: bool = False) -> Take:
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            if not overwrite:
                raise TakeError(f"{root} is not empty; choose another take folder or overwrite it")
            if not (root / MANIFEST_NAME).exists():
                raise TakeError(f"{root} is not a take folder; refusing to overwrite it")
            shutil.rmtree(root)
        try:
            (root / OBSERVATIONS_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TakeError(f"cannot create take folder {root}: {err.strerror}") from err
        take = cls(root, manifest)
        take.save_manifest()
        return take

    @classmethod
    def open(cls, root: Path) -> Take:
        root = Path(root)
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise TakeError(f"{root} is not a take folder (no {MANIFEST_NAME})")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise TakeError(f"{path} is unreadable: {err}") from err
        if data.get("format") != TAKE_FORMAT:
            raise TakeError(f"{root} has take format {data.get('format')}; this EmoCap reads {TAKE_FORMAT}")
        return cls(root, TakeManifest.from_dict(data))

    def save_manifest(self) -> None:
        self.manifest.updated = datetime.now(timezone.utc).isoformat()
        try:
            write_json_atomic(self.root / MANIFEST_NAME, asdict(self.manifest))
        except OSError as err:
            raise TakeError(f"cannot write {self.root / MANIFEST_NAME}: {err.strerror}") from err

    def chunk_path(self, start: int) -> Path:
        return self.observations_dir / f"{start:08d}.npz"

    def stored_chunk_starts(self) -> list[int]:
        """Start frames of the stored chunks that form a contiguous run from frame 0."""
        starts = sorted(int(p.stem) for p in self.observations_dir.glob("[0-9]*.npz"))
        chunk = self.manifest.settings["chunk_size"]
        contiguous = []
        for expected, start in zip(range(0, chunk * len(starts), chunk), starts):
            if start != expected:
                break
            contiguous.append(start)
        return contiguous

    def write_chunk(self, arrays: ObservationArrays, state_after: TrackState) -> None:
        """Store frames ``arrays`` (starting at a multiple of the chunk size) and the tracker state
        after their last frame."""
        start = int(arrays.index[0])
        payload = arrays.to_npz_dict() | track_state_to_arrays(state_after)
        try:
            write_npz_atomic(self.chunk_path(start), payload)
        except OSError as err:
            raise TakeError(f"cannot write to take {self.root}: {err.strerror}") from err

    def read_chunk(self, start: int) -> tuple[ObservationArrays, TrackState]:
        try:
            with np.load(self.chunk_path(start)) as data:
                return ObservationArrays.from_npz_dict(data), track_state_from_arrays(data)
        except (OSError, ValueError, KeyError) as err:
            raise TakeError(f"chunk {self.chunk_path(start).name} of {self.root} is unreadable: {err}") from err

    # ---- fitted parameters: fit/identity.npz and fit/<first frame>.npz per window ----------------
    def reset_fit(self) -> None:
        shutil.rmtree(self.root / FIT_DIR, ignore_errors=True)
        (self.root / FIT_DIR).mkdir()

    def write_fit_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        self.write_arrays(FIT_DIR, name, arrays)

    def read_fit_arrays(self, name: str) -> dict[str, np.ndarray] | None:
        return self.read_arrays(FIT_DIR, name)

    def write_arrays(self, folder: str, name: str, arrays: dict[str, np.ndarray]) -> None:
        """Store arrays atomically as TAKE/folder/name.npz."""
        try:
            (self.root / folder).mkdir(exist_ok=True)
            write_npz_atomic(self.root / folder / f"{name}.npz", arrays)
        except OSError as err:
            raise TakeError(f"cannot write to take {self.root}: {err.strerror}") from err

    def read_arrays(self, folder: str, name: str) -> dict[str, np.ndarray] | None:
        """TAKE/folder/name.npz as a dict of arrays, or None when it does not exist."""
        path = self.root / folder / f"{name}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as err:
            raise TakeError(f"{path} is unreadable: {err}") from err

    def fit_window_starts(self) -> list[int]:
        return sorted(int(p.stem) for p in (self.root / FIT_DIR).glob("[0-9]*.npz"))

    def load_observations(self) -> ObservationArrays:
        """All stored frames, in order."""
        return ObservationArrays.concatenate([self.read_chunk(s)[0] for s in self.stored_chunk_starts()])
