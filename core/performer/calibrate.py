"""Learning a performer profile from their takes (pure maths over observations and fits, no I/O).

The fitter itself says what the generic open model cannot do for this performer: after a take is
fitted, each frame's landmark residual, brought back into the model's rest space through the
frame's camera and head rotation, is what no curve could reach. Regressed over the frames on the
curve weights the fitter chose, per vertex,

    residual_t(v) ~= offset(v) + sum_e weight_t,e * correction_e(v),

the constant part is the performer's neutral detail that the identity basis does not reach
(``neutral_offset``) and the part that moves with a curve is that curve's correction for this face.
The model is updated, the takes are fitted again with it (new weights), and the regression is
repeated for a few rounds. Because the weights always come from the fitter, with its learned
blendshape evidence and priors, they keep Apple's meaning; the shapes move to the performer's face.

Constraints: each correction only where the generic shape moves (core.facemodel.
open_model_calibration.shape_support), a ridge that keeps a shape generic until enough frames use
it (``ridge``: in frames at full weight), every frame also used mirrored (exact mirror pairs, a
symmetric neutral detail: a one-sided residual is mostly MediaPipe's bias at one head pose), no
motion of the joints (the head, jaw and eyes turn about them), and shapes the learned network never
reports (nose sneer, cheek puff and squint, tongue) stay generic: nothing in a take says when they
are used. Each round's corrections are smoothed over the surface. The face's outline keeps the
generic model's (``generic_outline``): it is MediaPipe's silhouette, which slides over the face as
the head turns, so what it learns is mostly the head pose the performer held while making each
expression. Learned, it lowered the held-out residual in benchmarks/bench_performer.py (Wolfgang's
interleaved blocks -17 -> -20 %), but by moving the silhouette with shapes that do not move it:
on the Wolfgang clip browOuterUp moved the temple's outline 15 mm (the generic shape 2.5 mm) and
mouthFrown the jaw line 13 mm (generic 0). What slides with the head pose is learned as what it
is instead: the performer's view drift (core/performer/view_drift.py), a correction of the
observed landmarks as a function of the head's direction, learned at the start of each round
from the round's fits (regressed on the head's direction together with the curve weights, which
keep what both could explain wherever the shapes may move) and taken out of the landmarks every
later fit reads (``view_drift``).

A share of each take is held out, in blocks of about two seconds spread over it
(:func:`held_out_blocks`; the end of a calibration clip, where its speech and eye movements
come, is learned like the rest): the profile is learned on the stretches between, and the quality
report fits the held-out blocks, less a quarter second at each end, with the generic and with the
performer's model (same identity) and compares their landmark residuals, so the report is of the
profile that is saved.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from core.errors import PerformerProfileError
from core.facemodel.curve_mirror import curve_mirror
from core.facemodel.lbs import batch_rodrigues
from core.facemodel.model import FaceModel
from core.facemodel.open_model import ARKIT_NAMES
from core.facemodel.open_model_authoring import Mesh, mirror_field
from core.facemodel.open_model_calibration import shape_support, stem
from core.facemodel.types import FaceModelData
from core.fit.camera import flip_matrix, project
from core.fit.fitter import FitConfig, Fitter, single_threaded_torch, slice_observations
from core.fit.params import FitParams
from core.fit.stage import fit_clip
from core.observe.landmark_ids import FACE_OVAL
from core.observe.view_bias import ViewBias, observed_scores, shipped_view_bias
from core.performer.profile import PerformerProfile
from core.performer.view_drift import (
    ViewDrift,
    canonical_residuals,
    has_head_pose,
    landmarks_as_fitted,
    learn_view_drift,
)
from core.render.reconstruction import expression_activity
from core.stages import drain
from core.take import ObservationArrays

log = logging.getLogger(__name__)

# The network never reports these, so nothing in a take says when they are used: they stay generic.
GENERIC_STEMS = ("noseSneer", "cheekPuff", "cheekSquint", "tongueOut")
MIN_FRAMES = 3  # a neutral and two expressions at the least
MIN_CHECKED_FRAMES = 20  # takes this long hold frames out for the quality report
HELD_OUT_BLOCK_SECONDS = 2.0  # the held-out frames come in blocks of about this length
GUARD_SECONDS = 0.25  # the ends of a held-out block are neither learned nor judged


@dataclass(frozen=True)
class PerformerTake:
    """One take of the performer: its observations, its fit on the generic open model (raw, before
    closures), the rows it names neutral (None: its most neutral frames) and what it is
    (``source``, recorded in the profile)."""

    observations: ObservationArrays
    fit: FitParams
    source: dict
    neutral_rows: np.ndarray | None = None


@dataclass(frozen=True)
class PerformerCalibration:
    """How a profile is learned. rounds: regress-and-refit rounds. ridge: how many frames at full
    weight a correction needs before it moves as far as the data say (the ridge of the per-vertex
    regression). min_use: a shape is corrected only when the fitter uses it at least this much
    (sum of squared weights over the frames: 1.5 = one and a half frames at full weight).
    support_radius_m: how far from where the generic shape moves its correction may
    reach (geodesic metres). generic_outline: keep the face's outline (FACE_OVAL) generic (see above).
    neutral_frames: how many of the first take's most neutral frames give the performer's neutral
    scores. smoothing: passes of neighbour smoothing of each round's corrections. held_out_share:
    the share of each take held out for the quality report (:func:`held_out_blocks`). fit: the
    fitter's settings for the rounds. view_drift: learn how MediaPipe's landmarks of this face drift
    with its head pose (core/performer/view_drift.py), at the start of each round from that round's
    fits, and take it out of the landmarks the shapes learn from and every later fit reads;
    view_drift_ridge: its ridge, in frames held at view_drift.REFERENCE_DEG. In
    benchmarks/bench_performer.py (Wolfgang clip, interleaved 2 s blocks), against the generic
    model: held-out residual -17 % without the drift, -19 % with it; real motion left unexplained
    x0.76 and x0.65 (each model with the drift it knows); calibrated on the first half, judged on
    the second: -5 % both, x0.85 and x0.71. Ridge 1 / 5 / 20 / 50: -16 / -18 / -19 / -19 % and
    x0.70 / 0.64 / 0.65 / 0.67 on the blocks, -1 / -4 / -5 / -6 % and x0.73 / 0.70 / 0.71 / 0.74
    on the second half."""

    rounds: int = 3
    ridge: float = 1.0
    min_use: float = 1.5
    smoothing: int = 1
    generic_outline: bool = True
    support_radius_m: float = 0.025
    neutral_frames: int = 8
    held_out_share: float = 0.2
    fit: FitConfig = FitConfig()
    view_drift: bool = True
    view_drift_ridge: float = 20.0


@dataclass(frozen=True)
class CalibrationReport:
    """frames: frames with a face in the takes; held_out_frames: frames of the check (0 when the takes are too
    short to hold any out); held_out_residual_generic / _performer: mean landmark residual
    (fraction of the inter-ocular distance) of the held-out frames fitted with the generic model
    and with the shapes learned without them (same identity); training_residual_generic /
    _performer: the same on the frames learned from; neutral_offset_rms_mm / _max_mm: the neutral
    detail; shape_change_mm: per shape, the largest vertex change from the generic shape at weight
    1; seconds: learning time; view_drift_mm: the largest landmark drift with head pose over the
    directions the takes showed (ViewDrift.size_mm; 0 without one); shape_reach: per shape, the
    largest weight the frames learned from showed it at (its generic fit): a change at weight 1 of
    a shape seen only up to 0.3 is the data's trend carried on, not the performer's extreme."""

    frames: int
    held_out_frames: int
    held_out_residual_generic: float | None
    held_out_residual_performer: float | None
    training_residual_generic: float
    training_residual_performer: float
    neutral_offset_rms_mm: float
    neutral_offset_max_mm: float
    shape_change_mm: dict
    seconds: float
    view_drift_mm: float = 0.0
    shape_reach: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def held_out_change(self) -> float | None:
        """Relative change of the held-out residual (-0.25: a quarter lower)."""
        if self.held_out_residual_generic is None:
            return None
        return self.held_out_residual_performer / self.held_out_residual_generic - 1.0


def neutral_rows(fit: FitParams, count: int) -> np.ndarray:
    """The ``count`` rows of ``fit`` with a face and the least expression activity, in order."""
    rows, activity = expression_activity(fit)
    return np.sort(rows[np.argsort(activity, kind="stable")[:count]])


def image_residuals(model: FaceModel, fit: FitParams, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, residuals N x V x 3 image pixels) of the rows of ``fit`` with a face: ``landmarks``
    (all rows x V x 3 image pixels) minus the fit's, each residual's mean depth removed
    (MediaPipe's depth has no origin)."""
    rows = np.nonzero(fit.has_face)[0]
    with torch.no_grad():
        output = model(fit.to_face_params(rows))
        image = project(output.landmarks, torch.as_tensor(fit.camera[rows], dtype=torch.float32)).double().numpy()
    residual = landmarks[rows].astype(np.float64) - image
    residual[:, :, 2] -= residual[:, :, 2].mean(axis=1, keepdims=True)
    return rows, residual


def rest_residuals(model: FaceModel, fit: FitParams, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(residuals N x V x 3 metres, weights N x E) of the rows of ``fit`` with a face: each row's
    landmark residual (:func:`image_residuals`) brought into the model's rest space by undoing its
    scaled orthographic camera and head rotation, and the row's curve weights."""
    rows, residual = image_residuals(model, fit, landmarks)
    scale = np.exp(fit.camera[rows, 0].astype(np.float64))[:, None, None]
    rotation = batch_rodrigues(torch.as_tensor(fit.rotation[rows], dtype=torch.float64)).numpy()
    rest = np.einsum("nij,nvi->nvj", rotation, residual @ flip_matrix() / scale)  # R^T d
    return rest, fit.expression[rows].astype(np.float64)


def regress_corrections(residuals: np.ndarray, weights: np.ndarray, support: np.ndarray, mirror_vertices: np.ndarray,
                        mirror_shapes: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Per vertex, residual ~= offset + weights @ corrections over the frames and their mirror
    images. residuals: N x V x 3; weights: N x E; support: E x V (which shapes may move each
    vertex); mirror_vertices: V; mirror_shapes: E. Returns (offset V x 3, corrections V x 3 x E),
    both exactly mirror-symmetric."""
    mirrored = np.stack([mirror_field(r, mirror_vertices) for r in residuals])
    targets = np.concatenate([residuals, mirrored])
    design = np.concatenate([np.ones((2 * len(weights), 1)), np.concatenate([weights, weights[:, mirror_shapes]])], axis=1)
    gram = design.T @ design
    num_vertices, num_shapes = residuals.shape[1], weights.shape[1]
    offset = np.zeros((num_vertices, 3))
    corrections = np.zeros((num_vertices, 3, num_shapes))
    for v in range(num_vertices):
        columns = np.concatenate([[0], 1 + np.flatnonzero(support[:, v])])
        penalty = np.diag(np.r_[1e-9, np.full(len(columns) - 1, ridge)])
        solution = np.linalg.solve(gram[np.ix_(columns, columns)] + penalty, design[:, columns].T @ targets[:, v])
        offset[v] = solution[0]
        corrections[v][:, columns[1:] - 1] = solution[1:].T
    return offset, corrections


def neighbour_average(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """V x V: the mean over each vertex's mesh neighbours."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    adjacency = sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(num_vertices, num_vertices))
    adjacency.data[:] = 1.0
    degree = np.maximum(np.asarray(adjacency.sum(axis=1)).ravel(), 1.0)
    return sp.diags(1.0 / degree) @ adjacency


def smooth(field: np.ndarray, neighbours: sp.csr_matrix, passes: int) -> np.ndarray:
    """``field`` (V x ...) with each value moved halfway to its neighbours' mean, ``passes`` times:
    the per-vertex regression knows nothing of the surface, and its noise must not become bumps."""
    shape = field.shape
    flat = field.reshape(shape[0], -1)
    for _ in range(passes):
        flat = 0.5 * (flat + neighbours @ flat)
    return flat.reshape(shape)


def symmetric(field: np.ndarray, mirror_vertices: np.ndarray) -> np.ndarray:
    """The mirror-symmetric part of a V x 3 field."""
    return 0.5 * (field + mirror_field(field, mirror_vertices))


def without_joint_motion(offset: np.ndarray, joint_regressor: np.ndarray) -> np.ndarray:
    """``offset`` (V x 3) changed least so that it moves none of the joints regressed by
    ``joint_regressor`` (J x V): the joints are where the head, jaw and eyes turn, so a neutral
    detail that moved them would move every turned frame's face by a pose-dependent amount."""
    w = joint_regressor.astype(np.float64)
    return offset - w.T @ np.linalg.solve(w @ w.T, w @ offset)


@dataclass
class _Part:
    observations: ObservationArrays
    identity: np.ndarray
    fit: FitParams


def _fit(model: FaceModel, part: _Part, config: FitConfig, drift: ViewDrift | None = None) -> FitParams:
    fitter = Fitter(model, config)
    fitter.use_view_drift(drift)
    return drain(fit_clip(fitter, part.observations, part.identity))


def learn_drift(model: FaceModel, parts: list[_Part], config: PerformerCalibration, shaped: np.ndarray,
                bias: ViewBias | None) -> ViewDrift | None:
    """The performer's view drift (core/performer/view_drift.py) from ``parts`` fitted with
    ``model`` (their ``fit``): their landmark residuals against the landmarks as the fitter reads
    them without it (``bias``: the shipped view bias it takes out, None: none); ``shaped``: V, the
    landmarks the performer's shapes may move. None when config.view_drift is off or no frame has
    a head pose."""
    if not config.view_drift:
        return None
    residuals, weights, rotations = [], [], []
    for part in parts:
        rows, residual = image_residuals(model, part.fit, landmarks_as_fitted(part.observations, slice(None), bias))
        rotation = part.observations.head_rotation[rows].astype(np.float64)
        scale = part.observations.head_scale[rows].astype(np.float64)
        posed = has_head_pose(rotation, scale)
        residuals.append(canonical_residuals(residual[posed], rotation[posed], scale[posed]))
        weights.append(part.fit.expression[rows[posed]].astype(np.float64))
        rotations.append(rotation[posed])
    if not sum(len(r) for r in rotations):
        return None
    return learn_view_drift(np.concatenate(residuals), np.concatenate(weights), np.concatenate(rotations),
                            config.view_drift_ridge, shaped)


def _reach(fits: list[FitParams]) -> np.ndarray:
    """E: the largest weight of each shape over the frames of ``fits`` with a face."""
    return np.nanmax(np.concatenate([f.expression[f.has_face] for f in fits]), axis=0)


def _mean_residual(fits: list[FitParams]) -> float:
    return float(np.nanmean(np.concatenate([f.residual[f.has_face] for f in fits])))


def learn_performer_model(generic: FaceModelData, parts: list[_Part], config: PerformerCalibration,
                          support: np.ndarray) -> tuple[FaceModelData, list[FitParams], ViewDrift | None]:
    """``config.rounds`` rounds of regress-and-refit on ``parts`` (their fits are with ``generic``,
    the open model); returns the performer's model and the parts' fits with it. ``support``: E x V,
    where each shape may be corrected. Returns as well the performer's view drift (learned at the
    start of each round, None when config.view_drift is off), which the shapes learn and the
    refits read without."""
    perm = np.asarray(generic.info["mirror"])
    pair = curve_mirror(ARKIT_NAMES)
    neighbours = neighbour_average(generic.faces, generic.num_vertices)
    movable = support.any(axis=0)
    bias = shipped_view_bias() if config.fit.view_bias else None  # the landmarks as the fitter reads them
    data, fits = generic, [p.fit for p in parts]
    drift = None
    for round_ in range(config.rounds):
        model = FaceModel(data)
        drift = learn_drift(model, [dataclasses.replace(p, fit=f) for p, f in zip(parts, fits)], config, movable, bias)
        pieces = [rest_residuals(model, fit, landmarks_as_fitted(part.observations, slice(None), bias, drift))
                  for part, fit in zip(parts, fits)]
        weights = np.concatenate([w for _, w in pieces])
        # what the generic model leaves with these weights, so the ridge always draws toward the
        # generic shapes, however many rounds ran
        offset = data.template.astype(np.float64) - generic.template
        corrections = data.expression_basis.astype(np.float64) - generic.expression_basis
        residuals = np.concatenate([r for r, _ in pieces]) + offset + np.einsum("ne,vce->nvc", weights, corrections)
        # a shape the fitter hardly uses would grow without bound to explain small unrelated motion
        # at a tiny weight (and mean nothing at weight 1): it stays generic
        use = (weights**2).sum(axis=0)
        used = (use + use[pair]) >= 2 * config.min_use
        offset, corrections = regress_corrections(residuals, weights, support & used[:, None], perm, pair, config.ridge)
        offset = symmetric(smooth(offset, neighbours, config.smoothing) * movable[:, None], perm)
        offset = without_joint_motion(offset, generic.joint_regressor)
        corrections = smooth(corrections, neighbours, config.smoothing) * support.T[:, None, :]
        # the mesh is not exactly mirror-symmetric, so neither is smoothing on it
        corrections = 0.5 * (corrections + np.stack([mirror_field(corrections[..., k], perm) for k in pair], axis=2))
        data = dataclasses.replace(data, template=(generic.template + offset).astype(np.float32),
                                   expression_basis=(generic.expression_basis + corrections).astype(np.float32))
        model = FaceModel(data)
        fits = [_fit(model, part, config.fit, drift) for part in parts]
        log.info("performer round %d: residual %.3f %% IOD", round_, 100 * _mean_residual(fits))
    return data, fits, drift


def held_out_blocks(total: int, share: float, block_frames: int) -> list[tuple[int, int]]:
    """[start, end) frame ranges held out of a take of ``total`` frames: ``share`` of it in blocks of
    about ``block_frames``, spread evenly (centred in equal stretches of the take), so the profile
    learns from every part of a range-of-motion clip, its end included; none for a short take
    (under MIN_CHECKED_FRAMES)."""
    if total < MIN_CHECKED_FRAMES or share <= 0.0:
        return []
    held = max(int(round(total * share)), 1)
    count = max(int(round(held / max(block_frames, 1))), 1)
    size = max(held // count, 1)
    centres = (np.arange(count) + 0.5) * total / count
    starts = np.clip(np.round(centres - size / 2).astype(int), 0, total - size)
    return [(int(a), int(a) + size) for a in starts]


def _split(take: PerformerTake, share: float) -> tuple[list[_Part], list[_Part]]:
    """The take's learning parts (the stretches between its held-out blocks) and its held-out parts
    (each block less GUARD_SECONDS at either end, frames too like the learned ones beside them to
    judge the profile by; they are not learned from either)."""
    total = len(take.observations.index)
    times = take.observations.timestamp
    fps = (total - 1) / (times[-1] - times[0]) if total > 1 and times[-1] > times[0] else 30.0
    blocks = held_out_blocks(total, share, int(round(HELD_OUT_BLOCK_SECONDS * fps)))

    def part(a: int, b: int) -> _Part:
        fit = FitParams(**{f.name: getattr(take.fit, f.name) if f.name == "identity" else getattr(take.fit, f.name)[a:b]
                           for f in dataclasses.fields(FitParams)})
        return _Part(slice_observations(take.observations, a, b), take.fit.identity, fit)

    def judged(a: int, b: int) -> _Part:
        trim = min(int(round(GUARD_SECONDS * fps)), (b - a - 1) // 2)
        return part(a + trim, b - trim)

    def shows_face(p: _Part) -> bool:  # the face may be gone for a whole stretch
        return bool(p.observations.has_face.any() and p.fit.has_face.any())

    edges = [0, *[edge for block in blocks for edge in block], total]
    learning = [part(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]
    held = [judged(a, b) for a, b in blocks]
    return [p for p in learning if shows_face(p)], [p for p in held if shows_face(p)]


def _median_scores(scores: np.ndarray) -> np.ndarray:
    """E: the median of N x E scores per shape (0 where the network has no such output)."""
    scores = scores.astype(np.float64)
    known = np.isfinite(scores).any(axis=0)
    out = np.zeros(scores.shape[1])
    out[known] = np.nanmedian(scores[:, known], axis=0)
    return out


def calibrate_performer(name: str, takes: list[PerformerTake], base: FaceModelData, base_sha256: str,
                        config: PerformerCalibration = PerformerCalibration()) -> tuple[PerformerProfile, CalibrationReport]:
    """Learn ``name``'s profile from ``takes`` (each with its generic fit) on the open model
    ``base`` (see the module docstring); the first take gives the identity and the neutral scores.
    PerformerProfileError when a take has no fitted face or there are too few frames."""
    started = time.perf_counter()
    if not takes:
        raise PerformerProfileError("a performer profile needs at least one take of the performer")
    for take in takes:
        if not (take.observations.has_face & take.fit.has_face).any():
            raise PerformerProfileError(f"{take.source.get('path', 'a take')}: no frame with a fitted face")
    frames = sum(int(t.fit.has_face.sum()) for t in takes)
    if frames < MIN_FRAMES:
        raise PerformerProfileError(f"only {frames} frames with a face to learn from: record the range of motion "
                                    "(see README: performer calibration)")
    first = takes[0]
    rows = first.neutral_rows if first.neutral_rows is not None else neutral_rows(first.fit, config.neutral_frames)
    scores_bias = shipped_view_bias() if config.fit.view_bias else None  # the scores as the fitter reads them
    mesh = Mesh.build(base.template.astype(np.float64), base.faces)
    support = shape_support(mesh, base.expression_basis.astype(np.float64), config.support_radius_m)
    support[[k for k, n in enumerate(ARKIT_NAMES) if stem(n) in GENERIC_STEMS]] = False
    if config.generic_outline:
        support[:, list(FACE_OVAL)] = False

    with single_threaded_torch():
        splits = [_split(t, config.held_out_share) for t in takes]
        learning = [part for parts, _ in splits for part in parts]
        held_out = [part for _, parts in splits for part in parts]
        generic_model = FaceModel(base)
        model, learned_fits, drift = learn_performer_model(base, learning, config, support)
        performer_model = FaceModel(model)
        held_generic = [_fit(generic_model, part, config.fit) for part in held_out]
        held_performer = [_fit(performer_model, part, config.fit, drift) for part in held_out]

    offset = model.template.astype(np.float64) - base.template.astype(np.float64)
    change = 1000 * np.linalg.norm(model.expression_basis.astype(np.float64) - base.expression_basis, axis=1).max(axis=0)
    offset_mm = 1000 * np.linalg.norm(offset, axis=1)
    report = CalibrationReport(
        frames=frames, held_out_frames=sum(int(p.fit.has_face.sum()) for p in held_out),
        held_out_residual_generic=round(_mean_residual(held_generic), 6) if held_out else None,
        held_out_residual_performer=round(_mean_residual(held_performer), 6) if held_out else None,
        training_residual_generic=round(_mean_residual([p.fit for p in learning]), 6),
        training_residual_performer=round(_mean_residual(learned_fits), 6),
        neutral_offset_rms_mm=round(float(np.sqrt((offset_mm**2).mean())), 3),
        neutral_offset_max_mm=round(float(offset_mm.max()), 3),
        shape_change_mm={n: round(float(c), 2) for n, c in zip(ARKIT_NAMES, change)},
        seconds=round(time.perf_counter() - started, 2),
        view_drift_mm=round(drift.size_mm(), 2) if drift is not None else 0.0,
        shape_reach={n: round(float(r), 2) for n, r in zip(ARKIT_NAMES, _reach([p.fit for p in learning]))})
    log.info("performer %s: %d frames in %.1f s; held-out residual generic %s, performer %s", name, frames,
             report.seconds, report.held_out_residual_generic, report.held_out_residual_performer)
    profile = PerformerProfile(
        name=name, identity=first.fit.identity.astype(np.float32), neutral_offset=offset.astype(np.float32),
        expression_basis=model.expression_basis.astype(np.float32),
        neutral_scores=_median_scores(observed_scores(first.observations, rows, scores_bias)).astype(np.float32),
        base_model_sha256=base_sha256, view_drift=drift,
        info={"built_from": {"takes": [t.source for t in takes], "neutral_rows_first_take": [int(r) for r in rows]},
              "learned_shapes": [n for n in ARKIT_NAMES if stem(n) not in GENERIC_STEMS],
              "calibration": {"rounds": config.rounds, "ridge": config.ridge, "support_radius_m": config.support_radius_m,
                              "held_out_share": config.held_out_share},
              "report": report.to_dict()})
    return profile, report
