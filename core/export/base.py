"""What an export needs (:class:`ExportRequest`), what it wrote (:class:`ExportResult`), and
atomic writers: files go to a temporary name beside the target and are renamed at the end; folders
are filled as a temporary folder beside the target and renamed at the end. On any error the
temporary file or folder is removed, so nothing that looks complete is left behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import ExportError
from core.fit.params import PER_FRAME, FitParams
from core.take.atomic import write_all, write_bytes_atomic
from core.take.store import Take

if TYPE_CHECKING:
    from core.export.keyreduce import KeyReduction
    from core.export.retarget import BoundRetarget

GAP_POLICY = "frames without a face are gaps: NaN in arrays, null in JSON, empty cells in CSV"
HOLD_POLICY = "frames without a face hold the last pose with a face (the first face pose before any face)"


@dataclass(frozen=True)
class ExportRequest:
    """An export of rows ``start:stop`` (stop exclusive) of a take's fit."""

    take_dir: Path
    format: str
    out: Path
    start: int
    stop: int
    fit: FitParams  # the rows start:stop
    fps: float
    frame_index: np.ndarray  # N int64, video frame numbers
    timestamps: np.ndarray  # N float64 seconds (frame_index / fps)
    model: str  # "open" | "flame"
    model_settings: dict
    expression_names: list[str]
    edit_layers: int = 0  # edit layers applied to fit
    retarget: BoundRetarget | None = None  # a retarget map: fit.expression holds its target channels
    reduction: KeyReduction | None = None  # reduce the keys (keyed formats)

    def model_expression(self) -> np.ndarray:
        """N x E face-model weights of the rows: the fit's, or with a retarget map the weights that
        pose its preview mesh (core.export.retarget)."""
        if self.retarget is None:
            return self.fit.expression
        return self.retarget.model_weights(self.fit.expression)

    @property
    def num_frames(self) -> int:
        return self.stop - self.start

    @property
    def gap_frames(self) -> int:
        return int((~self.fit.has_face).sum())


@dataclass
class ExportResult:
    paths: list[Path]
    frames: int
    gap_policy: str
    gap_frames: int = 0
    extra: dict = field(default_factory=dict)


def remove_exported(result: ExportResult, out: Path) -> None:
    """Delete what an export to ``out`` wrote, e.g. after a cancel. A folder export (written whole
    by :class:`AtomicFolder`) is removed with the folder."""
    for path in result.paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if Path(out).is_dir():
        shutil.rmtree(out, ignore_errors=True)


def parse_range(text: str) -> tuple[int | None, int | None]:
    """'A:B', 'A:' or ':B' to (start, stop)."""
    try:
        a, b = text.split(":")
        return (int(a) if a.strip() else None, int(b) if b.strip() else None)
    except ValueError:
        raise ExportError(f"bad frame range '{text}': use START:STOP, e.g. 0:100 (STOP exclusive)") from None


def prepare_export(take_dir, fmt: str, out, frame_range=None, edits=None, retarget=None,
                   reduce=None) -> ExportRequest:
    """Load a take's fit, apply the edits and slice it. ``frame_range``: None (whole take),
    (start, stop) or 'A:B'. ``edits``: core.edit.Edits to apply; None: the take's stored edits
    (TAKE/edits.json); ``Edits()`` exports the fit as analysed. ``retarget``: a retarget map (a
    path, a preset's name or a RetargetMap; core.export.retarget). ``reduce``: a KeyReduction or
    a tolerance (core.export.keyreduce; keyed formats only)."""
    from core.edit import apply_edits, load_edits, take_basis
    from core.facemodel.loading import ModelChoice, load_face_model
    from core.pipeline import load_fit

    take_dir = Path(take_dir)
    take = Take.open(take_dir)
    m = take.manifest
    fit = load_fit(take) if m.fit else None
    if fit is None or not m.fit or len(fit) == 0:
        raise ExportError(f"{take_dir} has no fit results; analyse it with a face model first")
    settings = dict(m.fit.get("settings") or {})
    edits = load_edits(take_dir) if edits is None else edits
    if not edits.is_identity:
        fit = apply_edits(fit, edits, take_basis(take, load_face_model(ModelChoice.from_settings(settings))))
    n = len(fit)
    if isinstance(frame_range, str):
        frame_range = parse_range(frame_range)
    start, stop = frame_range if frame_range is not None else (None, None)
    start = 0 if start is None else int(start)
    stop = n if stop is None else int(stop)
    if start < 0 or stop > n or start > n:
        raise ExportError(f"frame range {start}:{stop} is outside the take (frames 0:{n})")
    if stop <= start:
        raise ExportError(f"frame range {start}:{stop} is empty")
    part = FitParams(identity=fit.identity, **{k: getattr(fit, k)[start:stop] for k in PER_FRAME})
    fps = float(m.video["fps"])
    req = ExportRequest(
        take_dir=take_dir, format=fmt, out=Path(out), start=start, stop=stop, fit=part, fps=fps,
        frame_index=part.frame_index.astype(np.int64), timestamps=part.frame_index.astype(np.float64) / fps,
        model=str(settings.get("model", m.fit.get("model", "open"))), model_settings=settings,
        expression_names=list(m.fit.get("expression_names", [])), edit_layers=len(edits.layers),
    )
    from core.export.options import with_options

    return with_options(req, retarget=retarget, reduce=reduce)


def held_rows(has_face: np.ndarray) -> np.ndarray:
    """Row to use for each frame under the hold policy; ExportError when no row has a face."""
    faces = np.nonzero(has_face)[0]
    if len(faces) == 0:
        raise ExportError("no frame in the range shows a face; nothing to export")
    rows = np.empty(len(has_face), np.int64)
    last = faces[0]
    for i, f in enumerate(has_face):
        if f:
            last = i
        rows[i] = last
    return rows


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (core.take.atomic), creating missing parent folders.
    ExportError on failure; nothing is left behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    except OSError as err:
        raise ExportError(f"cannot write {path}: {err.strerror or err}") from err


class AtomicFolder:
    """``with AtomicFolder(target) as tmp: write files into tmp`` -> tmp is renamed to target.
    A target folder that exists is replaced. On error the temporary folder is removed."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent))
        except OSError as err:
            raise ExportError(f"cannot write {self.target}: {err.strerror or err}") from err
        return self.tmp

    def write(self, name: str, data: bytes) -> None:
        fd = os.open(self.tmp / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise ExportError(f"cannot write {self.target}: {exc.strerror or exc}") from exc
            return False
        old = None
        try:
            if self.target.exists():
                old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
                os.replace(self.target, old)
            os.replace(self.tmp, self.target)
        except OSError as err:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if old is not None and not self.target.exists():
                os.replace(old, self.target)
            raise ExportError(f"cannot write {self.target}: {err.strerror or err}") from err
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False

