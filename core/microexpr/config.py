"""Settings of the micro-expression refiner (what ``PipelineConfig.refine`` holds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class LossWeights:
    """Weights of the self-supervised losses (core/microexpr/losses.py). Residuals are measured in
    percent of the inter-ocular distance (flow, landmarks), expression weights, and millimetres
    (offsets), so the weights do not depend on the image size.

    flow: flow-guided term on the refined mesh; coarse_flow: the same term on the expression-only
    (DEM) mesh, so the global update explains what it can before the per-vertex offsets do.
    landmark: MediaPipe landmark motion (noisier than the flow, hence small). expression: deviation
    of the refined expression from the fitted one. identity: persistent offsets and offsets at the
    onset. laplacian, normal: smoothness and shape of the offsets. pose: per-frame head-pose
    correction (radians, log scale, translation in percent IOD) and its frame-to-frame change.
    """

    flow: float = 1.0
    coarse_flow: float = 0.5
    landmark: float = 0.02
    expression: float = 0.5
    identity: float = 0.1
    laplacian: float = 0.5
    normal: float = 50.0
    pose: float = 1.0


@dataclass(frozen=True)
class RefineConfig:
    """How the refiner runs.

    onset: frame index of the neutral onset chosen by the user (used by the window that contains
    it); None: found automatically in every window (a low-motion frame before the strongest
    movement). window_s, overlap_s: the clip is refined in windows of this length (seconds), which
    overlap and are cross-faded; each window has its own onset and its own self-supervised training.
    flow_iod_px: optical flow is computed on a face canvas scaled so that the inter-ocular distance
    spans this many pixels (cost independent of the image size); max_canvas_px caps its side.
    detrend_s: the refiner explains only brief motion the fit misses: its running median over this
    many seconds is removed (keep it above twice the longest micro-expression, and the clip longer
    than it; 0 keeps slow deviations too). smooth_s: Gaussian smoothing in time (seconds) of that
    brief motion, against frame-to-frame flow noise (0: none).
    samples_per_triangle: barycentric flow samples per visible triangle (1, 3, 4 or 6).
    num_regions: mesh regions of the pixel-vertex correspondence. iterations: Adam steps of the
    self-supervised training per window; frames_per_step: frames the graph network sees per step.
    hidden: feature width of both networks; graph_layers: message-passing layers (a vertex sees its
    graph_layers-ring). max_offset_mm: bound of the per-vertex offsets. ode_method: torchdiffeq
    solver on the frame grid. weights: optional file of pretrained network weights
    (training/microexpr/pretrain.py); None starts from a seeded initialisation.
    """

    onset: int | None = None
    window_s: float = 2.0
    overlap_s: float = 0.25
    flow_iod_px: float = 128.0
    max_canvas_px: int = 448
    detrend_s: float = 0.7
    smooth_s: float = 0.0
    samples_per_triangle: int = 4
    num_regions: int = 24
    iterations: int = 120
    frames_per_step: int = 12
    learning_rate: float = 5e-3
    hidden: int = 32
    graph_layers: int = 3
    max_offset_mm: float = 4.0
    ode_method: str = "midpoint"
    seed: int = 0
    weights: str | None = None
    losses: LossWeights = field(default_factory=LossWeights)

    def settings(self) -> dict:
        """The settings that change results (a stored refinement is reused only with the same)."""
        return asdict(self)
