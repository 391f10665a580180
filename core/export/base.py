"""What an export needs (:class:`ExportRequest`), what it wrote (:class:`ExportResult`), and the
exports' view of the atomic writers (core/atomic.py): on any error nothing that looks complete
is left behind, and the file system's errors become ExportError."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.atomic import write_bytes_atomic
from core.errors import ExportError
from core.fit.params import PER_FRAME, FitParams
from core.take.store import Take
from core.timecode import Timecode, exact_rate

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
    notes: tuple[str, ...] = ()  # one line per range of frames left out (a damaged chunk of the take)
    retarget: BoundRetarget | None = None  # a retarget map: fit.expression holds its target channels
    reduction: KeyReduction | None = None  # reduce the keys (keyed formats)
    rate: Fraction | None = None  # fps exactly (24000/1001); None: fps as it is
    timecode: Timecode | None = None  # the timecode of the take's frame 0 (not of the range's first row)

    @property
    def exact_rate(self) -> Fraction:
        return self.rate if self.rate is not None else exact_rate(float(self.fps))

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
    notes: list[str] = field(default_factory=list)  # the request's notes: frames left out, and why


def remove_exported(result: ExportResult, out: Path) -> None:
    """Delete what an export to ``out`` wrote, e.g. after a cancel. A folder export (written whole
    by core.atomic.AtomicFolder) is removed with the folder."""
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
                   reduce=None, curves=None, shapes=None) -> ExportRequest:
    """Load a take's fit, apply the edits and slice it. A fitted window that is damaged or missing
    does not stop the export: its frames become gaps, stated in the request's ``notes`` (one line
    each). ``frame_range``: None (whole take),
    (start, stop) or 'A:B'. ``edits``: core.edit.Edits to apply; None: the take's stored edits
    (TAKE/edits.json); ``Edits()`` exports the fit as analysed. ``retarget``: a retarget map (a
    path, a preset's name or a RetargetMap; core.export.retarget). ``reduce``: a KeyReduction or
    a tolerance (core.export.keyreduce; keyed formats only). ``curves``: "arkit" maps a FLAME
    take's curves onto the 52 ARKit shapes (core.export.arkit_from_flame). ``shapes``: "generic"
    exports a take fitted with a performer profile on the open model's own shapes."""
    from core.edit import apply_edits, load_edits, take_basis
    from core.facemodel.loading import ModelChoice, load_face_model
    take_dir = Path(take_dir)
    take = Take.open(take_dir)
    m = take.manifest
    fit, gaps = take.read_fit_intact()
    if fit is None and gaps:
        raise ExportError(f"{take_dir}: {gaps[0].chunk} is {gaps[0].reason} and no fitted window reads back whole; "
                          f"'emocap check {take_dir} --repair' rebuilds them")
    if fit is None or len(fit) == 0:
        raise ExportError(f"{take_dir} has no fit results; analyse it with a face model first")
    settings = dict(m.fit.settings)
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
    fps = float(m.video.fps)
    notes = tuple(gap.describe() for gap in gaps if gap.start < stop and gap.stop > start)
    req = ExportRequest(
        take_dir=take_dir, format=fmt, out=Path(out), start=start, stop=stop, fit=part, fps=fps,
        frame_index=part.frame_index.astype(np.int64), timestamps=part.frame_index.astype(np.float64) / fps,
        model=str(settings.get("model", m.fit.model or "open")), model_settings=settings,
        expression_names=list(m.fit.expression_names), edit_layers=len(edits.layers), notes=notes,
        rate=m.video.exact_rate, timecode=m.timecode(),
    )
    from core.export.options import with_options

    return with_options(req, retarget=retarget, reduce=reduce, curves=curves, shapes=shapes)


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


@contextmanager
def export_errors(target: Path) -> Iterator[None]:
    """Turn the file system's errors while writing ``target`` into ExportError("cannot write
    TARGET: reason")."""
    try:
        yield
    except OSError as err:
        raise ExportError(f"cannot write {target}: {err.strerror or err}") from err


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (core/atomic.py), creating missing parent folders. ExportError
    on failure; nothing is left behind."""
    path = Path(path)
    with export_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
