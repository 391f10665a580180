"""FLAME to ARKit and back: a map between a FLAME model's expression + jaw and the open model's 52
ARKit weights, solved from the two models themselves.

Licence: a map solved from a real FLAME file is derived from FLAME, so none ships with EmoCap. It
is solved from the user's own file on first use (deterministic; seconds on two CPU cores), cached
in the user's cache folder keyed by the file's content hash (:func:`load_or_solve`), and rebuilt
explicitly by ``scripts/build_flame_arkit_map.py --flame FILE``, which prints the held-out table.
Only the method's settings (:class:`MapSettings`) ship, here in code.

Method (:func:`solve_map`, pure: no I/O):

1. Common frame. FLAME's neutral face (identity 0, expression 0, pose 0) gives its embedded
   MediaPipe landmarks (core.facemodel.correspondence, or FLAME's own 105-point embedding). The
   open model's identity is fitted to them once (alternating a similarity transform and a ridge
   solve of the open model's identity), so a FLAME landmark motion ``L(x) - L(0)`` becomes an
   open-model motion ``scale * R (L(x) - L(0))``.
2. FLAME -> ARKit samples. Expression vectors (random: 1..``active_max`` components active,
   Gaussian, clipped to +-``expression_limit``; plus every component alone at +-limit) and jaw
   rotations (open 0..``jaw_open_max_deg``, small sideways turns); for each, the open model's 52
   weights in [0, 1] that best reproduce the FLAME motion (bounded least squares, scipy
   ``lsq_linear``, a small ridge).
3. ARKit -> FLAME samples. Random open-model weights (1..``active_max`` shapes active, plus
   each shape alone at 1); for each, FLAME's expression and jaw that best reproduce the open
   motion (Gauss-Newton on FLAME's landmarks with a small prior).
4. Two ridge regressions on small fixed feature sets: FLAME -> ARKit on the positive and negative
   parts of each expression component and of the jaw's angles (+ the jaw opening squared), clipped
   to [0, 1]; ARKit -> FLAME on the 52 weights (+ jawOpen squared).
5. Held-out samples (a separate random stream) measure the one-way fit errors and the round trip
   FLAME -> ARKit -> FLAME as landmark distances (mm and % of the outer eye-corner distance).

Everything runs on FLAME's neutral identity; FLAME's identity moves its joints, not its expression
blend shapes, so the map holds for any performer to first order.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import lsq_linear

from core.errors import FlameArkitError
from core.facemodel.types import FaceModelData, FaceParams

log = logging.getLogger(__name__)

METHOD_VERSION = 1
CACHE_ENV = "EMOCAP_CACHE"  # the user cache folder (default ~/.cache/emocap); maps go to its flame_arkit/
EYE_CORNERS = (33, 263)  # MediaPipe ids of the outer eye corners
JAW_OPEN = "jawOpen"


@dataclass(frozen=True)
class MapSettings:
    """How a map is solved (what ships; the map itself is solved from the user's FLAME file)."""

    train_samples: int = 1000  # random FLAME samples (FLAME -> ARKit)
    reverse_samples: int = 500  # random ARKit samples (ARKit -> FLAME; each costs a Gauss-Newton fit)
    heldout_samples: int = 200  # of each, from a separate random stream
    active_max: int = 5  # components / shapes active in one random sample
    expression_sigma: float = 1.0
    expression_limit: float = 2.0
    jaw_open_max_deg: float = 25.0  # the open model's jawOpen at 1 is a 25 degree jaw rotation
    jaw_side_max_deg: float = 4.0
    fit_ridge: float = 1e-4  # bounded ARKit fit: ridge on the weights (landmark units: eye distance)
    fit_sparsity: float = 0.02  # and a linear cost per unit weight (no antagonists that cancel out)
    flame_prior: float = 1e-3  # FLAME fit: prior on expression (and jaw, radians)
    flame_iterations: int = 5
    map_ridge: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class HeldOutErrors:
    """Landmark errors on held-out samples, FLAME's units turned into mm (metres x 1000) and % of
    FLAME's neutral outer eye-corner distance: mean and 95th percentile over samples x landmarks.

    round_trip: FLAME -> ARKit -> FLAME against the original FLAME landmarks. to_arkit: the open
    model's motion from the mapped weights against FLAME's motion; to_arkit_best: the same for the
    best bounded fit (what the 52 shapes can do at all). to_flame: FLAME's landmarks from the
    mapped parameters against the open model's motion. motion: the mean size of the held-out
    FLAME motions themselves (what "no map at all" would miss)."""

    samples: int
    eye_distance_mm: float
    round_trip_mean_mm: float
    round_trip_p95_mm: float
    round_trip_mean_pct: float
    round_trip_p95_pct: float
    to_arkit_mean_mm: float
    to_arkit_p95_mm: float
    to_arkit_best_mean_mm: float
    to_flame_mean_mm: float
    to_flame_p95_mm: float
    motion_mean_mm: float

    def table(self) -> str:
        pct = 100.0 / self.eye_distance_mm

        def row(name: str, mean: float, p95: float | None) -> str:
            p95_text = f"{p95:7.2f} mm {p95 * pct:6.2f} %" if p95 is not None else ""
            return f"{name:34s} {mean:7.2f} mm {mean * pct:6.2f} %   {p95_text}"

        return "\n".join([
            f"held-out samples: {self.samples} each way; eye distance {self.eye_distance_mm:.1f} mm",
            f"{'landmark error':34s} {'mean':>17s}   {'95th percentile':>19s}",
            row("round trip FLAME->ARKit->FLAME", self.round_trip_mean_mm, self.round_trip_p95_mm),
            row("FLAME->ARKit (map)", self.to_arkit_mean_mm, self.to_arkit_p95_mm),
            row("FLAME->ARKit (best bounded fit)", self.to_arkit_best_mean_mm, None),
            row("ARKit->FLAME (map)", self.to_flame_mean_mm, self.to_flame_p95_mm),
            row("held-out FLAME motion itself", self.motion_mean_mm, None),
        ])


@dataclass(frozen=True)
class FlameArkitMap:
    """A solved map (float64 arrays). E: FLAME expression components.

    to_arkit: (2E + 7) x 52 on :func:`flame_features`. to_flame: 53 x (E + 3) on
    :func:`arkit_features` (outputs: expression E, then the jaw's axis-angle). rotation, scale:
    FLAME's frame into the open model's (``open ~ scale * rotation @ flame``), for head and eye
    rotations too. flame_sha256: the FLAME file's content hash. key: the cache key."""

    flame_sha256: str
    key: str
    num_expression: int
    settings: MapSettings
    to_arkit_matrix: np.ndarray
    to_flame_matrix: np.ndarray
    rotation: np.ndarray
    scale: float
    heldout: HeldOutErrors
    arkit_names: tuple[str, ...]
    method_version: int = METHOD_VERSION

    def check(self, num_expression: int) -> None:
        if num_expression != self.num_expression:
            raise FlameArkitError(
                f"the FLAME-ARKit map was solved for {self.num_expression} FLAME expression components, "
                f"not {num_expression}; solve it again for this take's model")

    def to_arkit(self, expression: np.ndarray, jaw: np.ndarray) -> np.ndarray:
        """N x E FLAME expression and N x 3 jaw axis-angle -> N x 52 ARKit weights in [0, 1]
        (rows with NaN stay NaN: frames without a face)."""
        expression = np.asarray(expression, np.float64)
        self.check(expression.shape[1])
        out = np.clip(flame_features(expression, np.asarray(jaw, np.float64)) @ self.to_arkit_matrix, 0.0, 1.0)
        return out

    def to_flame(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """N x 52 ARKit weights -> (N x E FLAME expression, N x 3 jaw axis-angle)."""
        weights = np.asarray(weights, np.float64)
        if weights.ndim != 2 or weights.shape[1] != len(self.arkit_names):
            raise FlameArkitError(f"ARKit weights must be N x {len(self.arkit_names)}, not {weights.shape}")
        out = arkit_features(weights, self.arkit_names) @ self.to_flame_matrix
        return out[:, : self.num_expression], out[:, self.num_expression:]

    def rotate(self, axis_angle: np.ndarray) -> np.ndarray:
        """N x 3 axis-angle rotations in FLAME's frame -> the same rotations in the open model's."""
        return np.asarray(axis_angle, np.float64) @ self.rotation.T

    # --- storage ---------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        meta = {"flame_sha256": self.flame_sha256, "key": self.key, "num_expression": self.num_expression,
                "settings": asdict(self.settings), "heldout": asdict(self.heldout), "scale": self.scale,
                "arkit_names": list(self.arkit_names), "method_version": self.method_version}
        buf = io.BytesIO()
        np.savez(buf, to_arkit=self.to_arkit_matrix, to_flame=self.to_flame_matrix, rotation=self.rotation,
                 meta=np.array(json.dumps(meta, sort_keys=True)))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> FlameArkitMap:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            return cls(
                flame_sha256=meta["flame_sha256"], key=meta["key"], num_expression=int(meta["num_expression"]),
                settings=MapSettings(**meta["settings"]), to_arkit_matrix=npz["to_arkit"].astype(np.float64),
                to_flame_matrix=npz["to_flame"].astype(np.float64), rotation=npz["rotation"].astype(np.float64),
                scale=float(meta["scale"]), heldout=HeldOutErrors(**meta["heldout"]),
                arkit_names=tuple(meta["arkit_names"]), method_version=int(meta["method_version"]))


# --- features ------------------------------------------------------------------------------------


def flame_features(expression: np.ndarray, jaw: np.ndarray) -> np.ndarray:
    """N x (2E + 7): each expression component's positive and negative part, the jaw's x (open),
    y and z angles' positive and negative parts, and the opening squared. No constant: the neutral
    face maps to the neutral face both ways."""
    pos, neg = np.maximum(expression, 0.0), np.maximum(-expression, 0.0)
    jp, jn = np.maximum(jaw, 0.0), np.maximum(-jaw, 0.0)
    return np.concatenate([pos, neg, jp, jn, jp[:, :1] ** 2], axis=1)


def arkit_features(weights: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """N x 53: the 52 weights and jawOpen squared."""
    jaw_open = weights[:, names.index(JAW_OPEN)][:, None]
    return np.concatenate([weights, jaw_open ** 2], axis=1)


def _ridge(features: np.ndarray, targets: np.ndarray, ridge: float) -> np.ndarray:
    """Least squares with a ridge (on features scaled to unit RMS)."""
    scale = np.sqrt((features ** 2).mean(axis=0)) + 1e-12
    x = features / scale
    solution = np.linalg.solve(x.T @ x + ridge * len(x) * np.eye(x.shape[1]), x.T @ targets)
    return solution / scale[:, None]


# --- the two models' landmarks ---------------------------------------------------------------------


def _barycentric(data: FaceModelData, array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Landmarks ``rows`` of a per-vertex array (V x 3 [x K]) of a model, float64."""
    corners = np.asarray(data.faces)[np.asarray(data.landmark_faces)[rows]]  # L x 3
    bary = np.asarray(data.landmark_barycentric, np.float64)[rows]
    values = np.asarray(array, np.float64)[corners]  # L x 3 corners x 3 [x K]
    return np.einsum("lk,lk...->l...", bary, values)


class _Flame:
    """FLAME's landmarks for batches of (expression, jaw), float64, identity 0 unless given."""

    def __init__(self, data: FaceModelData, identity: np.ndarray | None = None) -> None:
        from dataclasses import replace

        from core.facemodel.model import FaceModel

        if identity is None:  # identity 0: one zero component is all the model needs
            data = replace(data, shape_basis=np.zeros((data.num_vertices, 3, 1), np.float32))
        self.model = FaceModel(data).landmark_model().double()
        self.identity = None if identity is None else np.asarray(identity, np.float64)
        self.num_expression = data.num_expression
        corners = self.model.faces[self.model.landmark_faces]  # L x 3
        self._corners = corners
        self._bary = self.model.landmark_barycentric.double()

    def _params(self, expression: torch.Tensor, jaw: torch.Tensor) -> FaceParams:
        n = len(expression)
        z = torch.zeros(n, 3, dtype=torch.float64)
        shape = torch.zeros(n, self.model.num_shape, dtype=torch.float64)
        if self.identity is not None:
            k = min(len(self.identity), self.model.num_shape)
            shape[:, :k] = torch.as_tensor(self.identity[:k])
        return FaceParams(shape=shape, expression=expression,
                          rotation=z, neck=z, jaw=jaw, eyes=torch.zeros(n, 6, dtype=torch.float64), translation=z)

    @torch.no_grad()
    def landmarks(self, expression: np.ndarray, jaw: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(expression), 512):
            params = self._params(torch.as_tensor(expression[i:i + 512]), torch.as_tensor(jaw[i:i + 512]))
            out.append(self.model(params).landmarks.numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self._bary), 3))

    @torch.no_grad()
    def landmarks_and_jacobian(self, expression: np.ndarray, jaw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B x L x 3 landmarks, B x L x 3 x (E + 3) Jacobian): expression analytically (the
        skinned blend shapes), jaw by forward differences."""
        e, j = torch.as_tensor(expression), torch.as_tensor(jaw)
        out = self.model(self._params(e, j))
        basis = self.model.expression_basis.double()[self._corners]  # L x 3 corners x 3 x E
        rot = out.vertex_rotations[:, self._corners]  # B x L x 3 corners x 3 x 3
        jac_e = torch.einsum("lk,blkij,lkje->blie", self._bary, rot, basis)
        step = 1e-5
        jac_j = []
        for axis in range(3):
            moved = j.clone()
            moved[:, axis] += step
            jac_j.append((self.model(self._params(e, moved)).landmarks - out.landmarks) / step)
        jac = torch.cat([jac_e, torch.stack(jac_j, dim=-1)], dim=-1)
        return out.landmarks.numpy(), jac.numpy()


@dataclass(frozen=True)
class _Frame:
    """The common frame: open ~ scale * flame @ rotation.T + translation; the open model's identity
    fitted to FLAME's neutral; the open model's expression basis at the shared landmarks."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float
    open_identity: np.ndarray
    open_neutral: np.ndarray  # L x 3
    basis: np.ndarray  # (L*3) x 52
    eye_distance: float  # FLAME units


def open_rows(open_data: FaceModelData, ids: np.ndarray) -> np.ndarray:
    """The open model's landmark rows for MediaPipe ids ``ids``."""
    position = {int(i): r for r, i in enumerate(np.asarray(open_data.landmark_ids))}
    missing = [int(i) for i in ids if int(i) not in position]
    if missing:
        raise FlameArkitError(f"the open model has no landmark for MediaPipe ids {missing[:5]}")
    return np.array([position[int(i)] for i in ids], np.int64)


def fit_open_identity(open_data: FaceModelData, rows: np.ndarray, target: np.ndarray, *, ridge: float = 1e-3,
                      iterations: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The open model's identity (S) and the similarity (rotation, translation, scale) with
    ``scale * target @ rotation.T + translation ~ open neutral`` at landmark ``rows``."""
    from core.observe.headpose import similarity_align

    template = _barycentric(open_data, open_data.template, rows)
    shape = _barycentric(open_data, open_data.shape_basis, rows).reshape(-1, open_data.num_shape)
    size = float(np.ptp(template, axis=0).max())
    identity = np.zeros(open_data.num_shape)
    for _ in range(iterations):
        neutral = template + (shape @ identity).reshape(-1, 3)
        rotation, translation, scale = similarity_align(target, neutral)
        moved = scale * target @ rotation.T + translation
        a = shape / size
        b = (moved - template).ravel() / size
        identity = np.linalg.solve(a.T @ a + ridge * len(rows) * np.eye(a.shape[1]), a.T @ b)
    return identity, rotation, translation, float(scale)


def _common_frame(flame: _Flame, flame_data: FaceModelData, open_data: FaceModelData) -> tuple[_Frame, np.ndarray]:
    ids = np.asarray(flame_data.landmark_ids)
    rows = open_rows(open_data, ids)
    neutral = flame.landmarks(np.zeros((1, flame.num_expression)), np.zeros((1, 3)))[0]
    identity, rotation, translation, scale = fit_open_identity(open_data, rows, neutral)
    open_neutral = _barycentric(open_data, open_data.template, rows) + (
        _barycentric(open_data, open_data.shape_basis, rows) @ identity)
    basis = _barycentric(open_data, open_data.expression_basis, rows).reshape(-1, open_data.num_expression)
    where = {int(i): r for r, i in enumerate(ids)}
    if all(c in where for c in EYE_CORNERS):
        eye = float(np.linalg.norm(neutral[where[EYE_CORNERS[0]]] - neutral[where[EYE_CORNERS[1]]]))
    else:  # an embedding without the eye corners: the open model's, brought into FLAME's units
        template = np.asarray(open_data.template, np.float64)
        eye = float(np.linalg.norm(template[EYE_CORNERS[0]] - template[EYE_CORNERS[1]])) / scale
    return _Frame(rotation, translation, scale, identity, open_neutral, basis, eye), neutral


# --- sampling and per-sample fits ---------------------------------------------------------------------


def _flame_samples(rng: np.random.Generator, count: int, e: int, s: MapSettings, extremes: bool) -> tuple:
    expression = np.zeros((count, e))
    for i in range(count):
        k = int(rng.integers(1, min(s.active_max, e) + 1))
        which = rng.choice(e, size=k, replace=False)
        expression[i, which] = np.clip(rng.normal(0.0, s.expression_sigma, k), -s.expression_limit, s.expression_limit)
    jaw = np.zeros((count, 3))
    opened = rng.random(count) < 0.7
    jaw[:, 0] = np.where(opened, rng.uniform(0.0, np.radians(s.jaw_open_max_deg), count), 0.0)
    sideways = rng.random(count) < 0.3
    jaw[:, 1] = np.where(sideways, rng.uniform(-1, 1, count) * np.radians(s.jaw_side_max_deg), 0.0)
    if extremes:
        single = np.concatenate([np.eye(e), -np.eye(e)]) * s.expression_limit
        expression = np.concatenate([expression, single, np.zeros((3, e))])
        jaw_extra = np.zeros((len(single) + 3, 3))
        jaw_extra[len(single):, 0] = np.radians([s.jaw_open_max_deg / 2, s.jaw_open_max_deg, 0.0])
        jaw = np.concatenate([jaw, jaw_extra])
    return expression, jaw


def _arkit_samples(rng: np.random.Generator, count: int, n: int, s: MapSettings, extremes: bool) -> np.ndarray:
    weights = np.zeros((count, n))
    for i in range(count):
        k = int(rng.integers(1, min(s.active_max, n) + 1))
        which = rng.choice(n, size=k, replace=False)
        weights[i, which] = rng.uniform(0.0, 1.0, k)
    if extremes:
        weights = np.concatenate([weights, np.eye(n), np.zeros((1, n))])
    return weights


def _fit_arkit(frame: _Frame, motion: np.ndarray, ridge: float, sparsity: float) -> np.ndarray:
    """N x L x 3 motions in the open model's frame -> N x 52 bounded least-squares weights."""
    unit = frame.eye_distance * frame.scale
    basis = frame.basis / unit
    gram = basis.T @ basis + ridge * np.eye(basis.shape[1])
    upper = np.linalg.cholesky(gram).T  # upper.T @ upper = gram
    rhs = np.linalg.solve(upper.T, basis.T @ (motion.reshape(len(motion), -1) / unit).T).T
    # 1/2 |B w - m|^2 + sparsity * sum(w) = 1/2 |U w - (d - sparsity U^-T 1)|^2 + const
    rhs = rhs - sparsity * np.linalg.solve(upper.T, np.ones(basis.shape[1]))[None]
    out = np.empty((len(motion), basis.shape[1]))
    for i, d in enumerate(rhs):
        out[i] = lsq_linear(upper, d, bounds=(0.0, 1.0), method="bvls", tol=1e-10).x
    return out


def _fit_flame(flame: _Flame, frame: _Frame, target: np.ndarray, start_jaw: np.ndarray, s: MapSettings) -> np.ndarray:
    """N x L x 3 FLAME-frame landmark targets -> N x (E + 3) FLAME expression and jaw (Gauss-Newton
    with a small prior)."""
    e = flame.num_expression
    n = len(target)
    params = np.zeros((n, e + 3))
    params[:, e:] = start_jaw
    prior = np.full(e + 3, s.flame_prior)
    unit = frame.eye_distance
    for i in range(0, n, 128):
        p = params[i:i + 128]
        goal = target[i:i + 128]
        for _ in range(s.flame_iterations):
            lm, jac = flame.landmarks_and_jacobian(p[:, :e], p[:, e:])
            r = ((lm - goal) / unit).reshape(len(p), -1)
            jm = jac.reshape(len(p), -1, e + 3) / unit
            jt = jm.transpose(0, 2, 1)
            lhs = jt @ jm + np.diag(prior)[None]
            rhs = (jt @ r[..., None])[..., 0] + prior * p
            p = p - np.linalg.solve(lhs, rhs[..., None])[..., 0]
        params[i:i + 128] = p
    return params


def _errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1).ravel()


# --- the solver ----------------------------------------------------------------------------------------


def solve_map(flame_data: FaceModelData, open_data: FaceModelData, *, flame_sha256: str = "", key: str = "",
              settings: MapSettings = MapSettings()) -> FlameArkitMap:
    """Solve the FLAME <-> ARKit map for a FLAME model (pure; see the module docstring)."""
    started = time.perf_counter()
    flame = _Flame(flame_data)
    frame, neutral = _common_frame(flame, flame_data, open_data)
    e, names = flame.num_expression, tuple(open_data.expression_names)
    if JAW_OPEN not in names:
        raise FlameArkitError("the open model has no jawOpen shape")
    to_open = frame.scale * frame.rotation  # FLAME motion -> open motion
    rng = np.random.default_rng(settings.seed)
    held_rng = np.random.default_rng(settings.seed + 1_000_003)

    # FLAME -> ARKit
    expression, jaw = _flame_samples(rng, settings.train_samples, e, settings, extremes=True)
    motion = (flame.landmarks(expression, jaw) - neutral) @ to_open.T
    weights = _fit_arkit(frame, motion, settings.fit_ridge, settings.fit_sparsity)
    to_arkit = _ridge(flame_features(expression, jaw), weights, settings.map_ridge)

    # ARKit -> FLAME
    arkit = _arkit_samples(rng, settings.reverse_samples, len(names), settings, extremes=True)
    target, start_jaw = _arkit_targets(frame, neutral, arkit, names, to_open)
    flame_params = _fit_flame(flame, frame, target, start_jaw, settings)
    to_flame = _ridge(arkit_features(arkit, names), flame_params, settings.map_ridge)

    # held out
    h_expression, h_jaw = _flame_samples(held_rng, settings.heldout_samples, e, settings, extremes=False)
    h_landmarks = flame.landmarks(h_expression, h_jaw)
    h_motion = (h_landmarks - neutral) @ to_open.T
    h_weights = np.clip(flame_features(h_expression, h_jaw) @ to_arkit, 0.0, 1.0)
    h_best = _fit_arkit(frame, h_motion, settings.fit_ridge, settings.fit_sparsity)
    back = arkit_features(h_weights, names) @ to_flame
    round_trip = _errors(flame.landmarks(back[:, :e], back[:, e:]), h_landmarks)
    n_lm = len(neutral)
    to_arkit_err = _errors((h_weights @ frame.basis.T).reshape(-1, n_lm, 3), h_motion) / frame.scale
    best_err = _errors((h_best @ frame.basis.T).reshape(-1, n_lm, 3), h_motion) / frame.scale
    h_arkit = _arkit_samples(held_rng, settings.heldout_samples, len(names), settings, extremes=False)
    h_target, _ = _arkit_targets(frame, neutral, h_arkit, names, to_open)
    mapped = arkit_features(h_arkit, names) @ to_flame
    to_flame_err = _errors(flame.landmarks(mapped[:, :e], mapped[:, e:]), h_target)
    mm = 1000.0
    heldout = HeldOutErrors(
        samples=settings.heldout_samples, eye_distance_mm=frame.eye_distance * mm,
        round_trip_mean_mm=float(round_trip.mean() * mm), round_trip_p95_mm=float(np.percentile(round_trip, 95) * mm),
        round_trip_mean_pct=float(round_trip.mean() / frame.eye_distance * 100),
        round_trip_p95_pct=float(np.percentile(round_trip, 95) / frame.eye_distance * 100),
        to_arkit_mean_mm=float(to_arkit_err.mean() * mm), to_arkit_p95_mm=float(np.percentile(to_arkit_err, 95) * mm),
        to_arkit_best_mean_mm=float(best_err.mean() * mm),
        to_flame_mean_mm=float(to_flame_err.mean() * mm), to_flame_p95_mm=float(np.percentile(to_flame_err, 95) * mm),
        motion_mean_mm=float(_errors(h_landmarks, neutral[None]).mean() * mm),
    )
    log.info("FLAME-ARKit map solved in %.1f s; held-out round trip %.2f mm mean", time.perf_counter() - started,
             heldout.round_trip_mean_mm)
    return FlameArkitMap(flame_sha256=flame_sha256, key=key, num_expression=e, settings=settings,
                         to_arkit_matrix=to_arkit, to_flame_matrix=to_flame, rotation=frame.rotation,
                         scale=frame.scale, heldout=heldout, arkit_names=names)


def _arkit_targets(frame: _Frame, neutral: np.ndarray, arkit: np.ndarray, names: tuple[str, ...],
                   to_open: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FLAME-frame landmark targets of open-model weights, and a starting jaw for the fit."""
    motion_open = (arkit @ frame.basis.T).reshape(len(arkit), -1, 3)
    target = neutral[None] + motion_open @ np.linalg.inv(to_open).T
    start_jaw = np.zeros((len(arkit), 3))
    start_jaw[:, 0] = arkit[:, names.index(JAW_OPEN)] * np.radians(25.0)
    return target, start_jaw


def open_identity_for(flame_data: FaceModelData, open_data: FaceModelData, flame_identity: np.ndarray) -> np.ndarray:
    """The open model's identity that best matches FLAME's neutral face with identity
    ``flame_identity`` (S_flame) at the shared landmarks (what an ARKit export of a FLAME take wears)."""
    flame = _Flame(flame_data, identity=np.asarray(flame_identity, np.float64))
    ids = np.asarray(flame_data.landmark_ids)
    neutral = flame.landmarks(np.zeros((1, flame.num_expression)), np.zeros((1, 3)))[0]
    identity, *_ = fit_open_identity(open_data, open_rows(open_data, ids), neutral)
    return identity


# --- cache (the only I/O) --------------------------------------------------------------------------------


def cache_folder() -> Path:
    """``$EMOCAP_CACHE/flame_arkit`` (default ``~/.cache/emocap/flame_arkit``)."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "emocap") / "flame_arkit"


def map_key(flame_sha256: str, flame_data: FaceModelData, settings: MapSettings) -> str:
    """The cache key: the FLAME file's content hash, the components used, the landmark embedding,
    the settings and the method's and open model's versions."""
    from core.facemodel.open_model import MODEL_VERSION, open_model_digest

    digest = hashlib.sha256()
    digest.update(json.dumps({"flame": flame_sha256, "expression": flame_data.num_expression,
                              "settings": asdict(settings), "method": METHOD_VERSION, "open": MODEL_VERSION,
                              "open_sha256": open_model_digest()},
                             sort_keys=True).encode())
    for array in (flame_data.landmark_ids, flame_data.landmark_faces, flame_data.landmark_barycentric):
        digest.update(np.ascontiguousarray(array).tobytes())
    return f"{flame_sha256[:16]}-{digest.hexdigest()[:16]}"


def load_or_solve(flame_path: str | Path, *, num_expression: int = 50, flame_data: FaceModelData | None = None,
                  cache_dir: str | Path | None = None, settings: MapSettings = MapSettings(),
                  rebuild: bool = False) -> FlameArkitMap:
    """The map for the user's FLAME file: from the cache when solved before (same file content,
    components, embedding and settings), else solved now and cached (atomic write). A cached file
    that is unreadable or does not match is solved again. FaceModelError for an unusable FLAME file."""
    from core.atomic import write_bytes_atomic
    from core.digest import file_sha256
    from core.facemodel.open_model import load_open_model

    flame_path = Path(flame_path)
    if flame_data is None:
        from core.facemodel.flame import load_flame

        flame_data = load_flame(flame_path, num_shape=1, num_expression=num_expression)
    sha = file_sha256(flame_path)
    key = map_key(sha, flame_data, settings)
    folder = Path(cache_dir) if cache_dir is not None else cache_folder()
    path = folder / f"{key}.npz"
    if path.is_file() and not rebuild:
        try:
            cached = FlameArkitMap.from_bytes(path.read_bytes())
            if cached.key == key and cached.flame_sha256 == sha and cached.method_version == METHOD_VERSION:
                return cached
            log.warning("cached FLAME-ARKit map %s does not match; solving again", path)
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("cached FLAME-ARKit map %s is unreadable (%s); solving again", path, err)
    solved = solve_map(flame_data, load_open_model(), flame_sha256=sha, key=key, settings=settings)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, solved.to_bytes())
    except OSError as err:  # a read-only cache costs time, not correctness
        log.warning("cannot cache the FLAME-ARKit map in %s: %s", folder, err)
    return solved


__all__ = ["FlameArkitMap", "HeldOutErrors", "MapSettings", "arkit_features", "cache_folder",
           "flame_features", "load_or_solve", "map_key", "open_identity_for", "solve_map"]
