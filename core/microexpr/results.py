"""The refined reconstruction of a take (stored and read through core.take.Take:
``write_refinement``, ``read_refinement``).

Per frame: refined expression weights, head rotation and camera (a drop-in for the fit's), the
motion energy for the timeline, the onset frame it is measured from, and per-vertex offsets stored
as a small linear basis (K x V x 3) with per-frame coefficients (N x K) instead of N x V x 3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from core.errors import RefinerError
from core.facemodel.model import FaceModel
from core.fit.params import FitParams
from core.microexpr.geometry import apply_offsets
from core.take.records import COMPLETE, RefineRecord, RefineSummary

MAX_BASIS = 32
BASIS_TOLERANCE = 1e-4  # share of the offsets' squared norm the basis may leave out


def offsets_basis(offsets: np.ndarray, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """M x V x 3 offsets -> (K x V x 3 float32 basis, M x K float32 coefficients): the fewest
    principal directions (no centring, at most MAX_BASIS) that keep all but BASIS_TOLERANCE of the
    squared norm. Offsets that are all zero give K = 0. Computed ``block`` frames at a time
    (:func:`streamed_offsets_basis`)."""
    m = len(offsets)
    return streamed_offsets_basis(lambda: ((s, offsets[s:s + block]) for s in range(0, m, block)), m,
                                  offsets.shape[1:])


def streamed_offsets_basis(blocks: Callable[[], Iterable[tuple[int, np.ndarray]]], count: int,
                           vertex_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`offsets_basis` of ``count`` frames of offsets that arrive in blocks: ``blocks()``
    yields (first row, B x V x 3) blocks that do not overlap; rows it never yields are zero. It is
    called twice (the Gram matrix, then the coefficients), so the offsets are never all in memory.

    The directions are the eigenvectors of the 3V x 3V Gram matrix summed block by block, so that
    memory does not grow with the frames (an SVD of the M x 3V matrix needs several times its
    size: 70 KB a frame)."""
    if count == 0:
        return np.zeros((0, *vertex_shape), np.float32), np.zeros((0, 0), np.float32)
    width = int(np.prod(vertex_shape))
    gram = np.zeros((width, width))
    for _, block in blocks():
        rows = block.reshape(len(block), width).astype(np.float64)
        gram += rows.T @ rows
    energy, directions = np.linalg.eigh(gram)  # ascending
    energy, directions = np.clip(energy[::-1], 0.0, None), directions[:, ::-1]
    total = energy.sum()
    if total <= 0:
        return np.zeros((0, *vertex_shape), np.float32), np.zeros((count, 0), np.float32)
    kept = np.cumsum(energy) / total
    k = int(min(MAX_BASIS, np.searchsorted(kept, 1.0 - BASIS_TOLERANCE) + 1, count, width))
    basis = directions[:, :k].T
    coefficients = np.zeros((count, k), np.float32)
    for first, block in blocks():
        coefficients[first:first + len(block)] = block.reshape(len(block), width).astype(np.float64) @ basis.T
    return basis.reshape(k, *vertex_shape).astype(np.float32), coefficients


@dataclass(frozen=True)
class Refinement:
    """The refiner's output for the N frames of a take (rows aligned with the fit's).

    frame_index: N. refined: N bool (frames the refiner covered). onset: N frame index of the
    onset of each frame's window, where its expression update starts from zero (-1 where not
    refined). motion_energy: N pixels, the largest regional RMS of the brief motion the fit does not
    explain (core/microexpr/motion.py; NaN where not refined).
    expression: N x E, rotation: N x 3, camera: N x 4 refined parameters (the fit's where not
    refined, NaN without a face). offset_basis: K x V x 3 metres (head frame); offset_coefficients:
    N x K. windows: W x 3 (first frame, stop frame, onset frame) of the refined windows."""

    frame_index: np.ndarray
    refined: np.ndarray
    onset: np.ndarray
    motion_energy: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    camera: np.ndarray
    offset_basis: np.ndarray
    offset_coefficients: np.ndarray
    windows: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)

    def vertex_offsets(self, rows: int | np.ndarray) -> np.ndarray:
        """Per-vertex offsets (metres, head frame) of one row (V x 3) or of rows (B x V x 3)."""
        coefficients = self.offset_coefficients[rows]
        return np.tensordot(coefficients, self.offset_basis, axes=(-1, 0)).astype(np.float32)

    def refined_fit(self, fit: FitParams) -> FitParams:
        """The fit with the refined expression, rotation and camera (offsets not included)."""
        return dataclasses.replace(fit, expression=self.expression.copy(), rotation=self.rotation.copy(),
                                   camera=self.camera.copy())

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_npz_dict(cls, data) -> Refinement:
        return cls(**{f.name: np.asarray(data[f.name]) for f in fields(cls)})


@torch.no_grad()
def reconstruct(model: FaceModel, fit: FitParams, refinement: Refinement | None, rows: np.ndarray) -> np.ndarray:
    """Posed vertices B x V x 3 (model space, metres, translation 0) of ``rows`` (frames with a
    face): the fit's when ``refinement`` is None, else the refined expression and rotation plus the
    offsets. Project with ``fit.camera`` or ``refinement.camera`` (core.fit.camera.project)."""
    params = (fit if refinement is None else refinement.refined_fit(fit)).to_face_params(rows)
    offsets = None if refinement is None else torch.as_tensor(refinement.vertex_offsets(rows))
    return apply_offsets(model(params), offsets).numpy()


def save_weights(refiner: torch.nn.Module, path: str | Path, info: dict | None = None) -> None:
    """Network weights (and sizes) for RefineConfig.weights."""
    torch.save({"state_dict": refiner.state_dict(), "info": dict(info or {})}, Path(path))


def load_weights(refiner: torch.nn.Module, path: str | Path) -> dict:
    """Load weights saved by :func:`save_weights` into ``refiner``; returns their info."""
    try:
        stored = torch.load(Path(path), map_location="cpu", weights_only=True)
        refiner.load_state_dict(stored["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError) as err:
        raise RefinerError(f"cannot use refiner weights {path}: {err}") from err
    return stored.get("info", {})


def refinement_summary(refinement: Refinement) -> RefineSummary:
    """What ``emocap info`` reports: ``micro_energy`` with the peak motion energy (pixels), its
    frame, the mean over refined frames, and the onset frame of every window."""
    energy = refinement.motion_energy
    refined = refinement.refined & np.isfinite(energy)
    if not refined.any():
        return RefineSummary(None)
    rows = np.nonzero(refined)[0]
    peak = rows[int(np.argmax(energy[rows]))]
    return RefineSummary({
        "peak_px": round(float(energy[peak]), 3), "peak_frame": int(refinement.frame_index[peak]),
        "mean_px": round(float(energy[rows].mean()), 3), "onsets": [int(w[2]) for w in refinement.windows],
    })


def refinement_record(refinement: Refinement, settings: dict) -> RefineRecord:
    """The take's (complete) record of a refinement made with ``settings``."""
    return RefineRecord(settings=settings, status=COMPLETE, windows=refinement.windows.tolist(),
                        offset_components=int(len(refinement.offset_basis)), summary=refinement_summary(refinement))
