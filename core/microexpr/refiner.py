"""The refiner (DEM + DGMD) and its self-supervised training on one window of a clip.

Coarse to fine, as in Sun and Zhang (2026): the fitted parameters are the coarse reconstruction;
the DEM adds a global expression update that evolves in time; a per-frame head-pose correction
absorbs what the fit's smoothing left of the rigid motion; the DGMD adds small per-vertex offsets
for what the expression space cannot express. Everything is trained on the window itself, with
the losses of core/microexpr/losses.py, from a start that reproduces the fit exactly (both networks'
outputs and the pose corrections start at zero): the training can only move away from the fit
where the flow, the landmarks and the priors agree that it should.

Units inside: image motion in percent of the inter-ocular distance (IOD), offsets in millimetres.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.facemodel.model import FaceModel
from core.facemodel.types import FaceModelOutput
from core.microexpr.config import LossWeights, RefineConfig
from core.microexpr.correspondence import MeshRegions, SampleSet, apply_matrix
from core.microexpr.dem import DynamicEncodedModule
from core.microexpr.dgmd import DynamicGuidedDeformation, mesh_edges
from core.microexpr.features import (
    VERTEX_FEATURES,
    VERTEX_MOTION,
    motion_dim,
    motion_features,
    static_dim,
    static_features,
    vertex_features,
)
from core.microexpr.geometry import apply_offsets, face_params, image_points, image_to_head
from core.microexpr.losses import (
    adjacent_face_pairs,
    expression_consistency_loss,
    flow_guided_loss,
    identity_loss,
    landmark_loss,
    laplacian_loss,
    normal_consistency_loss,
    pose_correction_loss,
    uniform_laplacian,
)
from core.optim import Adam

log = logging.getLogger(__name__)

POSE_UNIT_RAD = 0.01  # one unit of the rotation correction (radians)
POSE_UNIT_LOG_SCALE = 0.01
POSE_UNIT_IOD = 0.01  # one unit of the translation correction, as a fraction of the IOD


class MicroExpressionRefiner(nn.Module):
    """The two networks. Their sizes depend on the number of expression components E and of mesh
    regions R, not on the mesh, so weights carry over between clips of one face model."""

    def __init__(self, num_expression: int, num_regions: int, hidden: int = 32, graph_layers: int = 3,
                 max_offset_mm: float = 4.0, ode_method: str = "midpoint") -> None:
        super().__init__()
        self.num_expression = num_expression
        self.num_regions = num_regions
        self.dem = DynamicEncodedModule(num_expression, static_dim(num_expression, num_regions),
                                        motion_dim(num_regions), hidden, ode_method)
        self.dgmd = DynamicGuidedDeformation(VERTEX_FEATURES, VERTEX_MOTION, hidden, graph_layers, max_offset_mm)

    @classmethod
    def from_config(cls, num_expression: int, config: RefineConfig) -> MicroExpressionRefiner:
        return cls(num_expression, config.num_regions, config.hidden, config.graph_layers, config.max_offset_mm,
                   config.ode_method)


@dataclass(frozen=True)
class WindowData:
    """One window of T frames, everything the refiner needs (NumPy; image pixels).

    times: T seconds (increasing). onset: row of the onset frame. identity: S. expression: T x E,
    rotation, neck, jaw: T x 3, eyes: T x 6, camera: T x 4 (the fit). landmarks: T x L x 2
    detected landmarks at the model's landmarks (MediaPipe index model.landmark_ids). samples:
    the K flow samples; tracks: T x K x 2 their tracked image positions; confidence: T x K.
    (The stage passes tracks and landmarks with the slow part of their deviation from the fit
    removed.) iod: inter-ocular distance (pixels) of the window."""

    times: np.ndarray
    onset: int
    identity: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    neck: np.ndarray
    jaw: np.ndarray
    eyes: np.ndarray
    camera: np.ndarray
    landmarks: np.ndarray
    samples: SampleSet
    tracks: np.ndarray
    confidence: np.ndarray
    iod: float

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True)
class WindowRefinement:
    """The refiner's result for a window of T frames: expression T x E (refined, within the
    model's bounds), rotation T x 3, camera T x 4 (refined pose), offsets T x V x 3 (metres, head
    frame; kept small at the onset and on average by the identity loss), losses: {name: [value per
    step]} of the training."""

    expression: np.ndarray
    rotation: np.ndarray
    camera: np.ndarray
    offsets: np.ndarray
    losses: dict[str, list[float]]


@dataclass
class _Pass:
    """One forward pass: model output, posed vertices B x V x 3, their image points B x V x 2, the
    flow samples' and landmarks' image points B x K x 2, B x L x 2."""

    output: object
    vertices: torch.Tensor
    image: torch.Tensor
    samples: torch.Tensor
    landmarks: torch.Tensor


class WindowTensors:
    """Constant tensors of a window and the forward pass of the refined reconstruction."""

    def __init__(self, model: FaceModel, regions: MeshRegions, data: WindowData) -> None:
        def t(a) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)

        self.model = model
        self.data = data
        self.onset = int(data.onset)
        self.samples = data.samples
        self.times = torch.as_tensor(data.times - data.times[0], dtype=torch.float32)
        self.identity, self.expression = t(data.identity), t(data.expression)
        self.rotation, self.camera = t(data.rotation), t(data.camera)
        self.neck, self.jaw, self.eyes = t(data.neck), t(data.jaw), t(data.eyes)
        self.to_percent = 100.0 / float(data.iod)
        self.tracks = t(data.tracks)  # T x K x 2 px, where the flow puts the samples
        self.flow_weight = t(data.confidence)
        landmarks = t(data.landmarks)
        self.land_weight = torch.isfinite(landmarks).all(dim=2).float()
        self.landmarks = torch.nan_to_num(landmarks)
        self.faces = model.faces
        self.edges = mesh_edges(model.faces.numpy(), model.num_vertices)
        self.laplacian = uniform_laplacian(self.edges, model.num_vertices)
        self.pairs = adjacent_face_pairs(model.faces.numpy())
        self.vertex_region = torch.as_tensor(regions.vertex_region)
        self.landmark_samples = SampleSet(model.faces.numpy(), model.landmark_faces.numpy(),
                                          model.landmark_barycentric.numpy(), np.zeros(len(model.landmark_faces), np.int64), 1)
        self.sample_matrix = self.samples.matrix(model.num_vertices)
        self.landmark_matrix = self.landmark_samples.matrix(model.num_vertices)
        with torch.no_grad():
            coarse = self.forward(self.expression, self.rotation, self.camera)
            residual = self.to_head(self.tracks - coarse.samples)  # what the fit misses, mm
            self.static = static_features(self.expression[self.onset], coarse.output.rest_vertices[self.onset],
                                          self.vertex_region, regions.count)
            self.motion = motion_features(residual, self.samples, self.flow_weight)

    def to_head(self, motion_px: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        rows = slice(None) if rows is None else rows
        return image_to_head(motion_px, self.rotation[rows], self.camera[rows])

    def forward(self, expression, rotation, camera, rows=None, offsets_m=None) -> _Pass:
        rows = slice(None) if rows is None else rows
        params = face_params(self.identity, expression, rotation, self.neck[rows], self.jaw[rows], self.eyes[rows])
        return self._project(self.model(params), camera, offsets_m)

    def with_offsets(self, coarse: _Pass, local: torch.Tensor, camera: torch.Tensor, offsets_m: torch.Tensor) -> _Pass:
        """The pass of rows ``local`` of ``coarse`` (B of them, with their B x 4 ``camera``) with
        B x V x 3 head-frame offsets (metres) added: the model's posed output is reused, not
        recomputed, as the expression and pose of those rows are the coarse pass's."""
        out = coarse.output
        posed = FaceModelOutput(out.vertices[local], out.joints[local], out.landmarks[local], out.vertex_rotations[local],
                                out.rest_vertices[local], out.rest_joints[local], out.joint_rotations[local])
        return self._project(posed, camera, offsets_m)

    def _project(self, output: FaceModelOutput, camera: torch.Tensor, offsets_m: torch.Tensor | None) -> _Pass:
        vertices = apply_offsets(output, offsets_m)
        image = image_points(vertices, camera)
        return _Pass(output, vertices, image, apply_matrix(self.sample_matrix, image),
                     apply_matrix(self.landmark_matrix, image))


def pose_from_correction(window: WindowTensors, correction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """T x 6 correction units (rotation 3, log scale, tx, ty) -> refined rotation T x 3, camera T x 4;
    the onset row is never corrected."""
    mask = torch.ones(len(correction), 1)
    mask[window.onset] = 0
    c = correction * mask
    rotation = window.rotation + POSE_UNIT_RAD * c[:, :3]
    iod = float(window.data.iod)
    camera = window.camera + torch.cat([POSE_UNIT_LOG_SCALE * c[:, 3:4], POSE_UNIT_IOD * iod * c[:, 4:6],
                                        torch.zeros(len(c), 1)], dim=1)
    return rotation, camera


def sample_rows(length: int, onset: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random set of ``size`` rows of ``length`` that always contains the row ``onset`` (sorted)."""
    if length <= size:
        return torch.arange(length)
    others = torch.cat([torch.arange(onset), torch.arange(onset + 1, length)])
    pick = others[torch.randperm(len(others), generator=generator)[: size - 1]]
    return torch.sort(torch.cat([pick, torch.tensor([onset])])).values


def window_losses(refiner: MicroExpressionRefiner, window: WindowTensors, correction: torch.Tensor, coarse_rows: torch.Tensor,
            fine_rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """The unweighted losses of one step. The expression update is evolved over all frames; the
    coarse (expression and pose) terms are measured on ``coarse_rows`` and the fine (offset) terms
    on ``coarse_rows[fine_rows]``; both sets contain the onset. Flow and landmark terms compare
    image positions with the tracked and detected ones (which the stage gives with the slow part
    of their deviation from the fit removed, so that where nothing brief happens the fit is the
    target)."""
    w = window
    delta = refiner.dem(w.static, w.motion, w.times, w.onset)
    expression = w.expression + delta
    rotation, camera = pose_from_correction(w, correction)
    rows = coarse_rows
    onset = int((rows == w.onset).nonzero()[0, 0])
    coarse = w.forward(expression[rows], rotation[rows], camera[rows], rows)
    k = w.to_percent
    parts = {
        "coarse_flow": flow_guided_loss(k * coarse.samples, k * w.tracks[rows], w.flow_weight[rows]),
        "landmark": landmark_loss(k * coarse.landmarks, k * w.landmarks[rows], w.land_weight[rows]),
        "expression": expression_consistency_loss(expression, w.expression, w.model.expression_bounds),
        "pose": pose_correction_loss(correction),
    }
    # fine: the graph network, its inputs taken from the coarse pass without gradient
    fine_onset = int((fine_rows == onset).nonzero()[0, 0])
    with torch.no_grad():
        features, motion = _vertex_inputs(w, coarse, fine_rows, rows[fine_rows], rotation, camera)
    offsets_mm = refiner.dgmd(features, motion, w.edges)
    frames = rows[fine_rows]
    fine = w.with_offsets(coarse, fine_rows, camera[frames], offsets_mm / 1000.0)
    parts |= {
        "flow": flow_guided_loss(k * fine.samples, k * w.tracks[frames], w.flow_weight[frames]),
        "identity": identity_loss(offsets_mm, torch.tensor([fine_onset])),
        "laplacian": laplacian_loss(offsets_mm, w.laplacian),
        "normal": normal_consistency_loss(fine.vertices, coarse.vertices[fine_rows], w.faces, w.pairs),
    }
    return parts


def _vertex_inputs(w: WindowTensors, coarse: _Pass, local: torch.Tensor, frames: torch.Tensor,
                   rotation: torch.Tensor, camera: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Graph-network inputs of the frames ``frames`` (window rows), which are rows ``local`` of the
    coarse pass ``coarse``: what the coarse mesh misses of the flow and of the landmarks."""
    flow_res = w.tracks[frames] - coarse.samples[local]
    land_res = w.landmarks[frames] - coarse.landmarks[local]
    return vertex_features(
        coarse.output.rest_vertices[local], w.faces, image_to_head(flow_res, rotation[frames], camera[frames]),
        w.flow_weight[frames], w.samples, image_to_head(land_res, rotation[frames], camera[frames]),
        w.land_weight[frames], w.landmark_samples, w.vertex_region,
    )


def weighted_total(parts: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    return sum(getattr(weights, name) * value for name, value in parts.items())


def training_step(refiner: MicroExpressionRefiner, window: WindowTensors, correction: torch.Tensor,
                  optimiser: Adam | torch.optim.Optimizer, generator: torch.Generator, config: RefineConfig) -> dict[str, float]:
    """One Adam step on random frames of a window (the onset always among them); returns the
    unweighted losses and the weighted ``total``."""
    coarse_rows = sample_rows(len(window.times), window.onset, 2 * config.frames_per_step, generator)
    onset = int((coarse_rows == window.onset).nonzero()[0, 0])
    fine_rows = sample_rows(len(coarse_rows), onset, config.frames_per_step, generator)
    parts = window_losses(refiner, window, correction, coarse_rows, fine_rows)
    total = weighted_total(parts, config.losses)
    optimiser.zero_grad()
    total.backward()
    optimiser.step()
    return {name: float(value.detach()) for name, value in (parts | {"total": total}).items()}


def train_window(model: FaceModel, refiner: MicroExpressionRefiner, regions: MeshRegions, data: WindowData,
                 config: RefineConfig) -> Generator[int, None, WindowRefinement]:
    """Self-supervised training of ``refiner`` on one window (in place); yields the step number
    after each step, and returns the :class:`WindowRefinement` (StopIteration.value)."""
    window = WindowTensors(model, regions, data)
    generator = torch.Generator().manual_seed(config.seed)
    correction = torch.zeros(len(data), 6, requires_grad=True)
    optimiser = Adam(list(refiner.parameters()) + [correction], lr=config.learning_rate)
    history: dict[str, list[float]] = {}
    for step in range(config.iterations):
        for name, value in training_step(refiner, window, correction, optimiser, generator, config).items():
            history.setdefault(name, []).append(value)
        yield step + 1
    return _infer(refiner, window, correction.detach(), config, history)


@torch.no_grad()
def evaluate_window(model: FaceModel, refiner: MicroExpressionRefiner, regions: MeshRegions, data: WindowData,
                    config: RefineConfig) -> dict[str, float]:
    """The weighted losses of the refiner on all frames of a window (for pretraining reports and
    tests), without training."""
    window = WindowTensors(model, regions, data)
    every = torch.arange(len(data))
    parts = window_losses(refiner, window, torch.zeros(len(data), 6), every, every)
    return {name: float(v) for name, v in (parts | {"total": weighted_total(parts, config.losses)}).items()}


@torch.no_grad()
def _infer(refiner: MicroExpressionRefiner, w: WindowTensors, correction: torch.Tensor, config: RefineConfig,
           history: dict[str, list[float]]) -> WindowRefinement:
    delta = refiner.dem(w.static, w.motion, w.times, w.onset)
    expression = w.expression + delta
    rotation, camera = pose_from_correction(w, correction)
    coarse = w.forward(expression, rotation, camera)
    offsets = torch.zeros(len(w.times), w.model.num_vertices, 3)
    for start in range(0, len(w.times), config.frames_per_step):
        rows = torch.arange(start, min(start + config.frames_per_step, len(w.times)))
        features, motion = _vertex_inputs(w, coarse, rows, rows, rotation, camera)
        offsets[rows] = refiner.dgmd(features, motion, w.edges)
    offsets = offsets / 1000.0
    if w.model.expression_bounds is not None:
        expression = expression.clamp(*w.model.expression_bounds)
    return WindowRefinement(expression.numpy(), rotation.numpy(), camera.numpy(), offsets.numpy(), history)
