"""The refined reconstruction of a take, as stored in TAKE/microexpr/refined.npz and read back.

Per frame: refined expression weights, head rotation and camera (a drop-in for the fit's), the
motion energy for the timeline, the onset frame it is measured from, and per-vertex offsets stored
as a small linear basis (K x V x 3) with per-frame coefficients (N x K) instead of N x V x 3.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from core.errors import RefinerError, TakeError
from core.facemodel.model import FaceModel
from core.fit.params import FitParams
from core.microexpr.geometry import apply_offsets

MICROEXPR_DIR = "microexpr"
RESULT_NAME = "refined"
MAX_BASIS = 32
BASIS_TOLERANCE = 1e-4  # share of the offsets' squared norm the basis may leave out


def offsets_basis(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """M x V x 3 offsets -> (K x V x 3 float32 basis, M x K float32 coefficients): the fewest
    principal directions (no centring, at most MAX_BASIS) that keep all but BASIS_TOLERANCE of the
    squared norm. Offsets that are all zero give K = 0."""
    m = len(offsets)
    if m == 0:
        return np.zeros((0, *offsets.shape[1:]), np.float32), np.zeros((0, 0), np.float32)
    flat = offsets.reshape(m, -1).astype(np.float64)
    u, s, vt = np.linalg.svd(flat, full_matrices=False)
    energy = s**2
    total = energy.sum()
    if total <= 0:
        return np.zeros((0, *offsets.shape[1:]), np.float32), np.zeros((m, 0), np.float32)
    kept = np.cumsum(energy) / total
    k = int(min(MAX_BASIS, np.searchsorted(kept, 1.0 - BASIS_TOLERANCE) + 1, len(s)))
    basis = vt[:k].reshape(k, *offsets.shape[1:]).astype(np.float32)
    return basis, (u[:, :k] * s[:k]).astype(np.float32)


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


def load_refinement(take) -> Refinement | None:
    """The stored refinement of a take (core.take.Take), or None when it has none (complete)."""
    entry = take.manifest.microexpr
    if not entry or entry.get("status") != "complete":
        return None
    arrays = take.read_arrays(MICROEXPR_DIR, RESULT_NAME)
    if arrays is None:
        raise TakeError(f"{take.root} lists a refinement but {MICROEXPR_DIR}/{RESULT_NAME}.npz is missing")
    return Refinement.from_npz_dict(arrays)


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


def stored_windows(take) -> dict[int, dict[str, np.ndarray]]:
    """Arrays of the windows an interrupted refinement already stored (TAKE/microexpr/window_*.npz),
    by start row."""
    folder = take.root / MICROEXPR_DIR
    found = {}
    for path in sorted(folder.glob("window_[0-9]*.npz")):
        arrays = take.read_arrays(MICROEXPR_DIR, path.stem)
        if arrays is not None:
            found[int(path.stem.split("_")[1])] = arrays
    return found


def store_window(take, start: int, arrays: dict[str, np.ndarray]) -> None:
    take.write_arrays(MICROEXPR_DIR, f"window_{start:08d}", arrays)


def store_refinement(take, refinement: Refinement) -> None:
    """Write TAKE/microexpr/refined.npz and drop the per-window files it was assembled from."""
    take.write_arrays(MICROEXPR_DIR, RESULT_NAME, refinement.to_npz_dict())
    for path in (take.root / MICROEXPR_DIR).glob("window_[0-9]*.npz"):
        take.remove_chunk(f"{MICROEXPR_DIR}/{path.name}")
    take.save_manifest()


def reset_refinement(take) -> None:
    """Remove every stored refinement file of a take (its settings changed)."""
    folder = take.root / MICROEXPR_DIR
    if folder.is_dir():
        for path in folder.glob("*.npz"):
            path.unlink()
    take.manifest.forget(f"{MICROEXPR_DIR}/")


def refinement_summary(refinement: Refinement) -> dict:
    """What ``emocap info`` reports: ``micro_energy`` with the peak motion energy (pixels), its
    frame, the mean over refined frames, and the onset frame of every window."""
    energy = refinement.motion_energy
    refined = refinement.refined & np.isfinite(energy)
    if not refined.any():
        return {"micro_energy": None}
    rows = np.nonzero(refined)[0]
    peak = rows[int(np.argmax(energy[rows]))]
    return {"micro_energy": {
        "peak_px": round(float(energy[peak]), 3), "peak_frame": int(refinement.frame_index[peak]),
        "mean_px": round(float(energy[rows].mean()), 3), "onsets": [int(w[2]) for w in refinement.windows],
    }}
