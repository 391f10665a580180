"""Analysis-by-synthesis fitting of a face model to observed landmarks (Gauss-Newton).

Two stages, both vectorised over frames:

1. identity: the model's identity (shape) coefficients, once per clip, from the clip's most neutral
   frames (the least expression activity in a quick fit with the template's identity), jointly
   with those frames' expression and pose (a stronger expression prior makes what persists
   through the clip identity);
2. motion: per frame expression, head rotation, camera, and for models whose expression space does
   not contain them (FLAME) jaw and eye rotations, window by window with the identity fixed and an
   acceleration penalty inside runs of frames with a face. Each window starts from the last two
   frames of the previous one, so windows join without a kink; nothing is smoothed across a gap.

The clip's window loop (resume, storing, progress) is core/fit/stage.py's ``fit_clip``; this
module fits one window. Each Gauss-Newton step solves one sparse system for the whole window
(core/fit/solver.py).
Jacobians are analytic (expression through the skinning's blended rotations, head rotation by a
left-multiplied small rotation, camera), except FLAME's jaw and eye rotations (forward-mode AD).

The open model's ARKit expressions include the jaw (jawOpen ...) and gaze (eyeLook*), so its jaw and
eye rotations stay zero and the 52 curves carry them, as an ARKit rig expects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import numpy as np
import torch

from core.facemodel.curve_mirror import curve_mirror
from core.facemodel.lbs import batch_rodrigues
from core.facemodel.model import FaceModel
from core.facemodel.types import FaceParams
from core.fit.camera import AXIS_FLIP, project
from core.fit.evidence import CurvePriors
from core.fit.params import FitParams
from core.fit.rigid import initial_rigid, rigid_rows
from core.fit.solver import AccelerationPenalty, solve_step
from core.fit.temporal import segments, valid_centres
from core.observe import landmark_ids as ids
from core.observe.view_bias import observed_scores, shipped_view_bias, view_azimuth_deg
from core.performer.view_drift import ViewDrift, landmarks_as_fitted
from core.take.observations import ObservationArrays

log = logging.getLogger(__name__)

# Curves a neutral face may show for a moment: a blink and a glance. On a neutral the user named
# they are fitted freely (not held at rest), and the learned scores' baseline for them is the named
# face's own score only up to what neutral faces score (Fitter.use_neutral_scores): a named frame
# caught with its lids half down would otherwise become the performer's eye shape, and every later
# frame with open eyes would read as eyes wide (a typical synthetic face named neutral mid-blink:
# eyeWide 0.30-0.43 on its open-eyed frame held at rest; tests/core/test_fit.py).
TRANSIENT_CURVES = tuple(f"eye{kind}{side}" for kind in ("Blink", "LookUp", "LookDown", "LookIn", "LookOut")
                         for side in ("Left", "Right"))


@dataclass(frozen=True)
class FitConfig:
    """Weights and schedule. Energies are per frame, with landmark errors in units of the
    inter-ocular distance (outer eye corners, "IOD"), so they do not depend on the image size.

    z_weight: weight of MediaPipe's (less reliable) depth against x, y. expression_prior: L1 on
    bounded weights (the open model's ARKit curves), L2 on unbounded FLAME coefficients.
    temporal: weight of the squared second difference (jitter) per frame of the expression (and
    FLAME's jaw and eyes); temporal_pose: the same for the head (rotation in radians, log scale,
    translation in IOD), whose noise from MediaPipe is larger while real head motion is smoother;
    temporal_pose_huber: the head's acceleration (those units per frame squared) beyond which its
    penalty grows linearly (Huber) instead of quadratically, so that a strong weight smooths the
    tracker's pose noise without holding back a genuine fast turn (core/fit/solver.py; inf: the
    plain square). Measured (tests/core/test_fit.py's turn, and the fixtures): at 0.5 with the
    plain square, a 30-degree turn in 0.17 s lagged by 2.0 degrees on average over its fastest
    frames and the calm frames' pose jittered 0.14 degrees a frame; at 3.0 with Huber beyond 0.003,
    0.5 and 0.05 degrees, and the fixtures' landmark jitter fell from 27 and 39 % of raw
    MediaPipe's to 20 and 28 % (residual +2 %). pose_prior: L2 on jaw and eye
    rotations (radians). identity_prior: L2 on identity coefficients (one unit is one standard
    deviation of neutral faces for the open model; strong enough that an expressive still keeps its
    expression in the curves rather than in the identity: bench_fidelity.py's prototype curves in
    the top four rose from 85 to 92 % at 3e-4 against 1e-4, the clips' landmark residual from 1.32 to
    1.35 % IOD); named_neutral_identity_prior: the same on
    a neutral the user named, which the identity explains as far from the mean face as the face is
    (all of it is identity). At 1e-4 it held the identity of a typical face (coefficients drawn from
    the prior) near the mean: 1.0-1.3 % IOD left on the neutral, and that face's shape came back as
    expression in every other frame (synthetic squint, brow and smile weights 0.05-0.13 off; at 1e-5,
    0.03; tests/core/test_fit.py). On eight KDEF people's frontal photos, each fitted with their own
    neutral, the fitted eyeSquint rose from 0.59 to 0.76 of MediaPipe's learned scores (minus the
    neutral's) and browDown from 0.59 to 0.66, the neutral's residual fell from 0.72 to 0.42 % IOD.
    1e-6 reached 0.82 and 0.68, but a CK+ sequence whose first frame, named neutral, is mid-blink
    then read eyeWide 0.53 at its apex with the blink held at rest there (the network: 0.00; at 1e-5
    with the blink free, TRANSIENT_CURVES: 0.00). named_neutral_factor: the
    expression prior's factor while the identity is fitted on a neutral the user named, except on
    the TRANSIENT_CURVES (their face there is neutral, so the identity explains it; a weaker
    expression prior there lets the identity take noise for shape, which can fold the lips over the
    mouth opening). evidence, antagonist, bound: weights of the
    priors on ARKit curves (MediaPipe's learned scores, antagonist pairs, weights near the bound;
    core/fit/evidence.py), for models that carry the network's statistics (the open model).
    evidence_single_image: the learned scores' weight in one image of a performer whose neutral is
    unknown (no named neutral, no performer profile; Fitter.use_single_image). There the identity
    can only come from the expression itself, and the landmarks cannot tell a lowered brow or a
    narrowed eye from a face built that way: on the development set's stills the identity took
    much of it (browDown 0.24 where the network reads 0.50 on angry faces). In a clip the identity
    comes from its most neutral frames, so the landmarks decide there. Measured with
    bench_fidelity.py on the stills analysed alone, at 1e-6 / 1e-5 / 3e-5: retargeted emotion
    (EmoNet) 42 / 43 / 46 % (happy 83 / 96 / 96 %; MediaPipe's own curves 43 %); the share of the
    motion fitted with the person's own neutral that the still alone reproduces, mean over the six
    expressions, 0.60 / 0.62 / 0.51 (sad -0.14 / 0.03 / -0.27: beyond 1e-5 the network's brows
    knitted in sadness become browDown). Not used in clips: at 3e-5 the Wolfgang clip's EmoNet
    consistency fell from 0.58 to 0.57; raised for named neutrals too (1e-5), the real motion
    explained fell from 0.83 to 0.75. under_reported_single_image: there, the scores of the curves
    the network under-reports (eyeWide, cheekPuff, cheekSquint, noseSneer) count both ways, at
    this fraction of the weight, instead of only pushing up: the nine neutral stills alone rested
    at eyeWide up to 0.41, cheekPuff 0.35 and cheekSquint 0.37 where the network reads about 0
    (0.30, 0.19 and 0.09 at 0.01). At 0.01, retargeted 43 -> 44 % (neutral 74 -> 81 %, surprise
    88 % both), prototypes in the top four 90 -> 92 %, the still-alone share 0.62 both; at 0.1
    surprise fell to 79 % and the top four to 85 %.
    eyelid_weight: extra weight of the eyelid points' image residual (x, y), each eye's scaled by
    its visibility (its apparent width against the other eye's, squared: the far eye of a half
    profile is seen foreshortened and its lids are guessed). The lids move 1-3 % of the IOD
    (surprise's raised upper lid, a smile's raised lower lid), so with every landmark weighted alike
    the L1 prior and the learned scores decided them: on eight KDEF people's frontal photos, the
    person's own neutral named, the fitted upper-lid rise in surprise was 30-50 % of the observed;
    with 8 it is 80-100 %, and bench_fidelity's retargeted surprise rose from 75 to 92 % (the
    Wolfgang clip's jitter from 26 to 28 % of raw MediaPipe's, its residual the same).
    view_bias: take MediaPipe's yaw-dependent landmark drift out of the observed landmarks before
    fitting (core/observe/view_bias.py). On 28 KDEF people left out of its learning, a neutral
    half profile fitted with the person's frontal identity: false expression (L1 of the curves)
    3.4 -> 2.3, landmark residual 2.6 -> 1.6 % IOD; the same expression photographed frontally and
    from 45 degrees: curves 18 % closer. It also takes the blendshape network's yaw-dependent
    drift out of the learned scores (:meth:`Fitter.observed_scores`): bench_fidelity.py's view gap
    0.0659 -> 0.0648, everything else within a render. single_image_view_trust: on one image with
    no neutral (where the scores weigh evidence_single_image), divide each score's weight by its
    spread on neutral faces plus its variance between views at the image's yaw (the view bias's
    score_variance), so that a half profile's scores the network reads least reliably decide
    less. bench_fidelity.py, stills alone: retargeted emotion 43 -> 44 % (surprise 88 -> 92 %,
    anger 21 -> 25 %), the still-alone share of the own-neutral motion 0.622 -> 0.657. Applied to
    every frame it moved the two views' curves of one expression 7 % further apart, so clips and
    named neutrals keep their weights.
    """

    window: int = 256
    iterations: int = 8
    tolerance: float = 1e-3
    identity_frames: int = 32
    identity_candidates: int = 64
    identity_iterations: int = 8
    z_weight: float = 0.2
    expression_prior: float = 1e-5
    identity_prior: float = 3e-4
    named_neutral_identity_prior: float = 1e-5
    identity_expression_factor: float = 10.0
    temporal: float = 0.02
    temporal_pose: float = 3.0
    temporal_pose_huber: float = 0.003
    pose_prior: float = 1e-3
    named_neutral_factor: float = 1000.0
    evidence: float = 1e-6
    evidence_single_image: float = 1e-5
    under_reported_single_image: float = 0.01
    antagonist: float = 3e-5
    bound: float = 1e-3
    eyelid_weight: float = 8.0
    view_bias: bool = True
    single_image_view_trust: bool = True


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """N x 478 x 3 -> N inter-ocular distances (outer eye corners, 2D, pixels)."""
    return np.linalg.norm(landmarks[:, ids.LEFT_EYE_OUTER, :2] - landmarks[:, ids.RIGHT_EYE_OUTER, :2], axis=1)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch's intra-op work on ``count`` threads inside the block, as before after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """Run torch on one thread: the fitter's tensors are small (a few hundred frames x 478
    landmarks), and on two cores threading costs more than it gains (measured: 2.9 s instead of
    3.8 s for a 472-frame clip)."""
    with torch_threads(1):
        yield


def so3_left_jacobian(rotation: torch.Tensor) -> torch.Tensor:
    """Left Jacobian of SO(3) at axis-angle vectors M x 3 -> M x 3 x 3:
    J = I + (1 - cos t) / t^2 [r]x + (t - sin t) / t^3 [r]x^2, t = |r|."""
    theta = rotation.double().norm(dim=1).clamp_min(1e-8)[:, None, None]
    x, y, z = rotation.double().unbind(dim=1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).view(-1, 3, 3)
    a = (1 - torch.cos(theta)) / theta**2
    b = (theta - torch.sin(theta)) / theta**3
    return (torch.eye(3, dtype=torch.float64)[None] + a * skew + b * skew @ skew).float()


@dataclass(frozen=True)
class _RootOnlyOutput:
    """The parts of a FaceModelOutput the fitter uses, for root-only models: landmarks M x L x 3,
    joints M x 1 x 3 (the root), joint_rotations M x 1 x 3 x 3."""

    landmarks: torch.Tensor
    joints: torch.Tensor
    joint_rotations: torch.Tensor


@dataclass
class _State:
    """Per-frame values of M frames being fitted (float32 tensors)."""

    expression: torch.Tensor
    jaw: torch.Tensor
    eyes: torch.Tensor
    rotation: torch.Tensor
    camera: torch.Tensor

    def copy(self) -> _State:
        return _State(*(getattr(self, f.name).clone() for f in fields(self)))


@dataclass(frozen=True)
class _Problem:
    """Observed data of M frames: landmarks M x L x 3 (pixels), iod M (pixels)."""

    observed: torch.Tensor
    iod: torch.Tensor
    iod_ref: float
    evidence_target: np.ndarray | None = None  # M x E curve targets from learned scores (float64)
    evidence_precision: np.ndarray | None = None  # M x E their weights
    eyelid_sqrt: torch.Tensor | None = None  # M x K square roots of the eyelid points' extra weights (float64)


@dataclass(frozen=True)
class _GramTerms:
    """What the normal equations of a root-only model need of its rest-pose landmark basis B
    (C columns: the expression's, and for the identity stage the identity's after them), float64:
    basis 3L x C (rows landmark by landmark, x y z); basis_points L x 3C (the same, one row per
    landmark); basis_sum 3 x C and mean 3 x C over landmarks; gram 9 x C*C (sum over landmarks of
    B_l[i]^T B_l[j] for the nine axis pairs i, j); and per eye (right, left) the same over its lid
    points: eyelid_points K x 3C, eyelid_sum 3 x C, eyelid_gram 9 x C*C."""

    basis: torch.Tensor
    basis_points: torch.Tensor
    basis_sum: torch.Tensor
    gram: torch.Tensor
    mean: torch.Tensor
    eyelid_points: list[torch.Tensor]
    eyelid_sum: list[torch.Tensor]
    eyelid_gram: list[torch.Tensor]


def _rigid_products(q: torch.Tensor, metric: torch.Tensor, rest: torch.Tensor, basis_points: torch.Tensor,
                    basis_sum: torch.Tensor, columns: torch.Tensor, constants: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over P landmarks of rigid x basis and rigid x rigid column products, each column at
    landmark l being Q A Y_l + k (rigid) or Q B_l (basis), under a residual-axis metric W:
    sum_l (Q A_a Y_l + k_a)^T W Q B_l and sum_l (Q A_a Y_l + k_a)^T W (Q A_b Y_l + k_b).

    q: M x 3 x 3 (Q), metric: M x 3 x 3 (W, symmetric), rest: M x P x 3 (Y_l), basis_points:
    P x 3C, basis_sum: 3 x C, columns: M x 6 x 3 x 3 (A), constants: M x 6 x 3 (k).
    Returns M x 6 x C and M x 6 x 6."""
    m, p = rest.shape[:2]
    c = basis_sum.shape[1]
    metric_q = metric @ q  # W Q
    pair = q.transpose(1, 2) @ metric_q  # Q^T W Q
    moments = rest.transpose(1, 2) @ basis_points  # M x 3 x 3C: sum_l Y_l[n] B_l[j, c]
    k_q = constants @ metric_q  # M x 6 x 3: k_a^T W Q
    h_rb = (columns.transpose(2, 3) @ pair[:, None]).reshape(m, 6, 9) @ moments.reshape(m, 9, c) + k_q @ basis_sum
    second = rest.transpose(1, 2) @ rest  # M x 3 x 3: sum_l Y_l Y_l^T
    total = rest.sum(dim=1)  # M x 3
    # sum_l Y^T A_a^T Q^T W Q A_b Y = <Q^T W Q A_a M2, A_b>
    h_rr = torch.einsum("majo,mbjo->mab", pair[:, None] @ columns @ second[:, None], columns)
    cross = k_q @ (columns @ total[:, None, :, None])[..., 0].transpose(1, 2)  # k_a^T W Q A_b sum_l Y_l
    h_rr = h_rr + cross + cross.transpose(1, 2) + p * constants @ metric @ constants.transpose(1, 2)
    return h_rb, h_rr


class Fitter:
    """Fits one face model to a clip's observations (see module docstring)."""

    def __init__(self, model: FaceModel, config: FitConfig | None = None) -> None:
        self.config = config or FitConfig()
        self.model = model.landmark_model()
        self.bounds = model.expression_bounds
        self.fit_jaw_eyes = self.bounds is None
        self.num_expression = self.model.num_expression
        self.ids = self.model.landmark_ids.numpy()
        self.rigid = rigid_rows(self.ids)
        with torch.no_grad():
            neutral = self.model(self.model.zero_params(1))
        self.neutral_landmarks = neutral.landmarks[0].numpy().astype(np.float64)
        self.root_joint = neutral.joints[0, 0].numpy().astype(np.float64)
        num_landmarks = len(self.ids)
        weights = torch.tensor([1.0, 1.0, self.config.z_weight]) / num_landmarks
        self.sqrt_weights = weights.sqrt()
        self.corners = self.model.faces[self.model.landmark_faces]  # L x 3 vertex ids
        self.landmark_expression_basis = self._landmark_basis(self.model.expression_basis)
        side = np.full(num_landmarks, -1)
        side[np.isin(self.ids, ids.RIGHT_EYE_LIDS)] = 0
        side[np.isin(self.ids, ids.LEFT_EYE_LIDS)] = 1
        self.eyelid_rows = np.nonzero(side >= 0)[0]  # K rows of the landmarks on the lids
        self.eyelid_side = side[self.eyelid_rows]  # K: 0 right eye, 1 left eye
        self.landmark_shape_basis = self._landmark_basis(self.model.shape_basis)
        # With no jaw/eye rotation and no pose correctives (the open model) every landmark turns
        # with the root: landmarks are a matrix product and one rotation, no skinning needed.
        self.root_only = not self.fit_jaw_eyes and not bool(self.model.pose_basis.abs().max() > 0)
        self.landmark_template = self._landmark_basis(self.model.template[:, :, None])[..., 0]  # L x 3
        self._gram_terms_cache: dict[bool, _GramTerms] = {}
        self.dims = self.num_expression + (9 if self.fit_jaw_eyes else 0) + 6
        lower = np.full(self.dims, -np.inf)
        upper = np.full(self.dims, np.inf)
        if self.bounds is not None:
            lower[: self.num_expression], upper[: self.num_expression] = self.bounds
        self.lower, self.upper = lower, upper
        self.priors = None
        if self.bounds is not None:
            cfg = self.config
            self.priors = CurvePriors.for_model(model.expression_names, model.info, cfg.evidence, cfg.antagonist, cfg.bound)
        self.neutral_scores: np.ndarray | None = None
        self.transient = np.isin(np.asarray(model.expression_names, dtype=object), TRANSIENT_CURVES)  # E
        self.identity_mean = torch.zeros(1, self.model.num_shape)
        self.view_bias = shipped_view_bias() if self.config.view_bias else None
        self.view_drift: ViewDrift | None = None  # a performer's own drift with head pose
        self.curve_mirror: np.ndarray | None = None  # E: set when the scores are weighed by the view

    def use_neutral_scores(self, scores: np.ndarray | None) -> None:
        """The performer's own neutral as the baseline of the learned scores (E: the network's
        scores of a neutral the user named), instead of the mean of neutral faces. On the
        TRANSIENT_CURVES no higher than neutral faces score (their mean plus twice their spread):
        beyond that the named face shows a blink or a glance, which is no trait of the performer."""
        if scores is None or self.priors is None:
            self.neutral_scores = None
            return
        self.neutral_scores = np.nan_to_num(np.asarray(scores, np.float64))
        ceiling = self.priors.neutral_mean + 2.0 * self.priors.neutral_spread
        self.neutral_scores[self.transient] = np.minimum(self.neutral_scores, ceiling)[self.transient]

    def use_single_image(self) -> None:
        """Fit one image of a performer whose neutral is unknown: the learned scores weigh
        FitConfig.evidence_single_image instead of FitConfig.evidence, the under-reported
        curves' scores count both ways at FitConfig.under_reported_single_image of that, and each
        score weighs less by its variance between views at the image's yaw
        (FitConfig.single_image_view_trust)."""
        if self.priors is not None:
            self.priors = self.priors.for_single_image(self.config.evidence_single_image,
                                                       self.config.under_reported_single_image)
            if (self.config.single_image_view_trust and self.view_bias is not None
                    and self.view_bias.score_variance is not None):
                self.curve_mirror = curve_mirror(self.model.expression_names)

    def _named_neutral_factors(self) -> float | np.ndarray:
        """The expression prior's factor while the identity is fitted on a named neutral:
        named_neutral_factor (held at rest), identity_expression_factor on the TRANSIENT_CURVES."""
        if not self.transient.any():
            return self.config.named_neutral_factor
        return np.where(self.transient, self.config.identity_expression_factor, self.config.named_neutral_factor)

    def use_view_drift(self, drift: ViewDrift | None) -> None:
        """Take a performer's own landmark drift with head pose (core/performer/view_drift.py; None:
        none) out of the observed landmarks, after the shipped view bias."""
        self.view_drift = drift

    def use_identity_mean(self, identity: np.ndarray | None) -> None:
        """Centre the identity prior on ``identity`` (S: a performer profile's identity) instead of
        the mean face: a take's neutral frames refine the performer's known identity, and a single
        expressive still keeps it."""
        values = np.zeros(self.model.num_shape) if identity is None else np.asarray(identity, np.float64)
        self.identity_mean = torch.as_tensor(values, dtype=torch.float32)[None]

    # ---- state <-> vector --------------------------------------------------------------------
    def _vector(self, state: _State, problem: _Problem) -> np.ndarray:
        """M x D: the quantities the temporal and prior terms act on."""
        parts = [state.expression]
        if self.fit_jaw_eyes:
            parts += [state.jaw, state.eyes]
        parts += [state.rotation, state.camera[:, :1], state.camera[:, 1:3] / problem.iod_ref]
        return torch.cat(parts, dim=1).double().numpy()

    def _apply(self, state: _State, delta: np.ndarray, problem: _Problem) -> _State:
        new = state.copy()
        d = torch.as_tensor(delta, dtype=torch.float32)
        e = self.num_expression
        new.expression += d[:, :e]
        k = e
        if self.fit_jaw_eyes:
            new.jaw += d[:, k : k + 3]
            new.eyes += d[:, k + 3 : k + 9]
            k += 9
        new.rotation += d[:, k : k + 3]
        new.camera[:, :1] += d[:, k + 3 : k + 4]
        new.camera[:, 1:3] += d[:, k + 4 : k + 6] * problem.iod_ref
        if self.bounds is not None:
            new.expression.clamp_(*self.bounds)
        return new

    def _params(self, state: _State, identity: torch.Tensor) -> FaceParams:
        m = len(state.rotation)
        return FaceParams(
            shape=identity.expand(m, -1), expression=state.expression, rotation=state.rotation,
            neck=torch.zeros(m, 3), jaw=state.jaw, eyes=state.eyes, translation=torch.zeros(m, 3),
        )

    # ---- residuals and Jacobians -------------------------------------------------------------
    def _to_residual_space(self, image_delta: torch.Tensor, iod: torch.Tensor, in_place: bool = False) -> torch.Tensor:
        """Image-space quantities M x L x 3 (x K) -> weighted residual units: divided by each
        frame's inter-ocular distance, times the per-axis weight, z mean over landmarks removed
        (MediaPipe's depth has no absolute origin). ``in_place`` works on the given tensor (or view)."""
        out = image_delta if in_place else image_delta.clone()
        factor = self.sqrt_weights.view(1, 1, 3) / iod.view(-1, 1, 1)
        out *= factor.view(*factor.shape, *([1] * (out.dim() - 3)))
        out[:, :, 2] -= out[:, :, 2].mean(dim=1, keepdim=True)
        return out

    def _evaluate(self, state: _State, identity: torch.Tensor):
        """Posed landmarks (and what the Jacobians need) of the model for these values."""
        if not self.root_only:
            return self.model(self._params(state, identity))
        rest = (
            self.landmark_template
            + torch.einsum("ljs,s->lj", self.landmark_shape_basis, identity[0])
            + torch.einsum("ljk,mk->mlj", self.landmark_expression_basis, state.expression)
        )
        root = self.model.joint_template[0] + self.model.joint_shape_basis[0] @ identity[0]  # 3
        rotation = batch_rodrigues(state.rotation)  # M x 3 x 3
        landmarks = torch.matmul(rest - root, rotation.transpose(1, 2)) + root
        return _RootOnlyOutput(landmarks, root.expand(len(rotation), 1, 3), rotation[:, None])

    def _residual(self, state: _State, identity: torch.Tensor, problem: _Problem):
        output = self._evaluate(state, identity)
        image = project(output.landmarks, state.camera)
        return self._to_residual_space(image - problem.observed, problem.iod), output

    def _eyelid_rows(self, values: torch.Tensor, problem: _Problem) -> torch.Tensor:
        """The eyelid points' extra residual rows: residual-space values M x L x 3 (x C) ->
        M x 2K (x C) float64, the lids' x and y times the square root of their extra weight."""
        lids = values[:, self.eyelid_rows, :2]
        weight = problem.eyelid_sqrt.view(*problem.eyelid_sqrt.shape, 1, *([1] * (lids.dim() - 3)))
        return (lids.double() * weight).reshape(len(lids), -1, *lids.shape[3:])

    def _landmark_basis(self, basis: torch.Tensor) -> torch.Tensor:
        """A vertex basis V x 3 x K evaluated at the landmarks (barycentric): L x 3 x K."""
        bary = self.model.landmark_barycentric
        return sum(bary[:, c, None, None] * basis[self.corners[:, c]] for c in range(3))

    def _blend_jacobian(self, output, basis: torch.Tensor, landmark_basis: torch.Tensor) -> torch.Tensor:
        """d landmarks / d coefficients of a rest-pose basis (V x 3 x K; L x 3 x K at the
        landmarks): M x L x 3 x K in model space. Without jaw or eye rotations every vertex turns
        with the root, and the landmark basis is simply rotated."""
        if not self.fit_jaw_eyes:
            return torch.matmul(output.joint_rotations[:, 0, None], landmark_basis[None])
        rotations = output.vertex_rotations  # M x V x 3 x 3
        bary = self.model.landmark_barycentric
        out = 0
        for c in range(3):
            vertex = self.corners[:, c]
            out = out + bary[None, :, c, None, None] * torch.einsum("mlij,ljk->mlik", rotations[:, vertex], basis[vertex])
        return out

    def _jacobian(self, state: _State, identity: torch.Tensor, problem: _Problem, output) -> torch.Tensor:
        """M x (L*3) x D Jacobian of the weighted residual."""
        landmarks = output.landmarks
        m, num_landmarks = landmarks.shape[:2]
        e = self.num_expression
        jac = torch.empty(m, num_landmarks, 3, self.dims)
        jac[..., :e] = self._blend_jacobian(output, self.model.expression_basis, self.landmark_expression_basis)
        if self.fit_jaw_eyes:
            jac[..., e : e + 9] = self._pose_jacobian(output)
        deform = self.dims - 6
        scale_flip = torch.exp(state.camera[:, 0]).view(-1, 1, 1) * torch.tensor(AXIS_FLIP).view(1, 1, 3)
        jac[..., :deform] *= scale_flip[..., None]
        self._to_residual_space(jac[..., :deform], problem.iod, in_place=True)
        jac[..., deform:] = self._rigid_columns(state, problem, output)
        return jac.reshape(m, -1, self.dims)

    def _normal_equations(self, state: _State, identity: torch.Tensor, problem: _Problem, output, residual,
                          with_identity: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Gauss-Newton blocks M x C x C and gradients M x C (float64) of the data term, over the
        D per-frame columns, then with ``with_identity`` the S identity columns."""
        if not self.fit_jaw_eyes:
            return self._gram_normal_equations(state, problem, output, residual, with_identity)
        return self._explicit_normal_equations(state, identity, problem, output, residual, with_identity)

    def _explicit_normal_equations(self, state: _State, identity: torch.Tensor, problem: _Problem, output, residual,
                                   with_identity: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_normal_equations` from the full Jacobian, M x (3L + 2K) x C: any model."""
        jac = self._jacobian(state, identity, problem, output).double()
        more = [self._identity_jacobian(state, problem, output).double()] if with_identity else []
        jac, flat, *more = self._with_eyelid_rows(jac, residual, problem, *more)
        jac = torch.cat([jac, *more], dim=2)
        return torch.bmm(jac.transpose(1, 2), jac), torch.bmm(jac.transpose(1, 2), flat[..., None])[..., 0]

    def _identity_jacobian(self, state: _State, problem: _Problem, output) -> torch.Tensor:
        """M x (L*3) x S Jacobian of the weighted residual with respect to the identity (the shift
        of the joints with the identity left out, as for a rest-pose basis)."""
        scale_flip = torch.exp(state.camera[:, 0]).view(-1, 1, 1, 1) * torch.tensor(AXIS_FLIP).view(1, 1, 3, 1)
        jac = scale_flip * self._blend_jacobian(output, self.model.shape_basis, self.landmark_shape_basis)
        return self._to_residual_space(jac, problem.iod).reshape(len(jac), -1, self.model.num_shape)

    def _gram_terms(self, with_identity: bool) -> _GramTerms:
        """The Gram terms of the expression basis (and the identity basis after it), made once."""
        if with_identity not in self._gram_terms_cache:
            bases = [self.landmark_expression_basis] + ([self.landmark_shape_basis] if with_identity else [])
            basis = torch.cat(bases, dim=2).double()  # L x 3 x C
            lids = [basis[self.eyelid_rows[self.eyelid_side == side]] for side in (0, 1)]

            def gram(points: torch.Tensor) -> torch.Tensor:
                return torch.einsum("lik,ljn->ijkn", points, points).reshape(9, -1)

            self._gram_terms_cache[with_identity] = _GramTerms(
                basis=basis.reshape(-1, basis.shape[2]), basis_points=basis.reshape(len(basis), -1),
                basis_sum=basis.sum(dim=0), gram=gram(basis), mean=basis.mean(dim=0),
                eyelid_points=[lid.reshape(len(lid), -1) for lid in lids], eyelid_sum=[lid.sum(dim=0) for lid in lids],
                eyelid_gram=[gram(lid) for lid in lids],
            )
        return self._gram_terms_cache[with_identity]

    def _gram_normal_equations(self, state: _State, problem: _Problem, output, residual, with_identity: bool):
        """:meth:`_normal_equations` for models whose landmarks all turn with the root (no jaw or
        eye rotations to fit), from small per-frame sums instead of per-landmark Jacobians.

        In residual space (:meth:`_to_residual_space`) every column at landmark l is Q A Y_l plus a
        constant k, with Q = diag(f) R (f: scale, axis flip, axis weight, 1/IOD; R: the head
        rotation) and Y_l = R^T (p_l - root), the landmark about the root in the head's frame: a
        basis column (expression, identity) is Q B_l; head rotation k is Q [u_k]x Y_l with
        u_k = R^T J_l(r) e_k (:meth:`_rigid_structure`); log scale is Q Y_l + f * root; the
        translations are constants. So every product over landmarks contracts 3 x 3 matrices with
        the basis' Grams (made once), sum_l Y_l B_l^T, sum_l Y_l Y_l^T and sum_l Y_l. Removing the
        z rows' mean over the L landmarks (MediaPipe's depth has no origin) subtracts
        L mean_z(a) mean_z(b) from each product; the eyelid rows add the same sums over each eye's
        lid points, on x and y, times that eye's extra weight (equal on all its lid points)."""
        terms = self._gram_terms(with_identity)
        m, num_landmarks = output.landmarks.shape[:2]
        c = terms.basis.shape[1]
        rotation = output.joint_rotations[:, 0].double()  # M x 3 x 3
        root = output.joints[:, 0].double()  # M x 3
        axis = torch.tensor(AXIS_FLIP, dtype=torch.float64) * self.sqrt_weights.double()
        factor = torch.exp(state.camera[:, 0]).double()[:, None] * axis[None] / problem.iod.double()[:, None]  # M x 3
        q = factor[:, :, None] * rotation  # M x 3 x 3
        rest = torch.bmm(output.landmarks.double() - root[:, None], rotation)  # M x L x 3: Y_l
        columns, constants = self._rigid_structure(state, problem, rotation, factor, root)

        def basis_products(metric: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
            return ((q.transpose(1, 2) @ metric @ q).reshape(m, 9) @ gram).view(m, c, c)

        everywhere = torch.eye(3, dtype=torch.float64).expand(m, 3, 3)
        h_bb = basis_products(everywhere, terms.gram)
        h_rb, h_rr = _rigid_products(q, everywhere, rest, terms.basis_points, terms.basis_sum, columns, constants)
        basis_mean_z = q[:, 2] @ terms.mean  # M x C
        rigid_mean_z = (columns @ rest.mean(dim=1)[:, None, :, None])[..., 0] @ q[:, 2, :, None]  # M x 6 x 1
        rigid_mean_z = rigid_mean_z[..., 0] + constants[:, :, 2]
        h_bb = h_bb - num_landmarks * basis_mean_z[:, :, None] * basis_mean_z[:, None, :]
        h_rb = h_rb - num_landmarks * rigid_mean_z[:, :, None] * basis_mean_z[:, None, :]
        h_rr = h_rr - num_landmarks * rigid_mean_z[:, :, None] * rigid_mean_z[:, None, :]

        weighted_r = residual.double()
        if problem.eyelid_sqrt is not None:
            extra = problem.eyelid_sqrt**2  # M x K
            row_weight = torch.ones(m, num_landmarks, 3, dtype=torch.float64)
            row_weight[:, self.eyelid_rows, :2] += extra[:, :, None]
            weighted_r = weighted_r * row_weight
            x_and_y = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
            for side in (0, 1):
                on_side = self.eyelid_side == side
                metric = torch.diag_embed(extra[:, np.argmax(on_side), None] * x_and_y)  # M x 3 x 3
                h_bb = h_bb + basis_products(metric, terms.eyelid_gram[side])
                lid_rb, lid_rr = _rigid_products(q, metric, rest[:, self.eyelid_rows[on_side]],
                                                 terms.eyelid_points[side], terms.eyelid_sum[side], columns, constants)
                h_rb, h_rr = h_rb + lid_rb, h_rr + lid_rr
        rotated_r = torch.bmm(weighted_r, q)  # M x L x 3: Q^T times the weighted residual
        g_b = rotated_r.reshape(m, -1) @ terms.basis
        g_r = (columns.reshape(m, 6, 9) @ (rotated_r.transpose(1, 2) @ rest).reshape(m, 9, 1))[..., 0]
        g_r = g_r + (constants @ weighted_r.sum(dim=1)[:, :, None])[..., 0]

        blocks = torch.cat([torch.cat([h_bb, h_rb.transpose(1, 2)], dim=2), torch.cat([h_rb, h_rr], dim=2)], dim=1)
        gradient = torch.cat([g_b, g_r], dim=1)
        e = self.num_expression
        if c > e:  # the identity's columns after the per-frame ones: [expression, rigid, identity]
            order = torch.cat([torch.arange(e), torch.arange(c, c + 6), torch.arange(e, c)])
            blocks, gradient = blocks[:, order][:, :, order], gradient[:, order]
        return blocks, gradient

    def _rigid_structure(self, state: _State, problem: _Problem, rotation: torch.Tensor, factor: torch.Tensor,
                         root: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The six rigid columns (head rotation 3, log scale, translation 2) of a root-only model
        as Q A Y_l + k (see :meth:`_gram_normal_equations`): A M x 6 x 3 x 3 and k M x 6 x 3."""
        m = len(rotation)
        # turning the head's axis-angle r by delta turns it by J_l(r) delta about the root:
        # landmark p moves by (J_l(r) e_k) x (p - root) = R (u_k x Y) per unit of delta_k
        u = rotation.transpose(1, 2) @ so3_left_jacobian(state.rotation).double()  # M x 3 x 3, u_k = column k
        columns = torch.zeros(m, 6, 3, 3, dtype=torch.float64)
        zero = torch.zeros(m, dtype=torch.float64)
        for k in range(3):
            x, y, z = u[:, :, k].unbind(dim=1)
            columns[:, k] = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=1).view(m, 3, 3)
        columns[:, 3] = torch.eye(3, dtype=torch.float64)
        constants = torch.zeros(m, 6, 3, dtype=torch.float64)
        constants[:, 3] = factor * root
        weights = self.sqrt_weights.double()
        constants[:, 4, 0] = problem.iod_ref * weights[0] / problem.iod.double()
        constants[:, 5, 1] = problem.iod_ref * weights[1] / problem.iod.double()
        return columns, constants

    def _with_eyelid_rows(self, jac: torch.Tensor, residual: torch.Tensor, problem: _Problem,
                          *more: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Jacobians M x 3L x C (and ``more`` of them) and the residual M x L x 3 with the eyelid
        rows appended: M x (3L + 2K) x C ..., residual M x (3L + 2K)."""
        flat = residual.reshape(len(residual), -1).double()
        if problem.eyelid_sqrt is None:
            return (jac, flat, *more)
        shape = (len(residual), -1, 3)
        out = [torch.cat([j, self._eyelid_rows(j.view(*shape, j.shape[-1]), problem)], dim=1) for j in (jac, *more)]
        return (out[0], torch.cat([flat, self._eyelid_rows(residual, problem)], dim=1), *out[1:])

    def _rigid_columns(self, state: _State, problem: _Problem, output) -> torch.Tensor:
        """Weighted-residual Jacobian of head rotation (3), log scale (1), translation (2):
        M x L x 3 x 6, z mean removed."""
        landmarks = output.landmarks
        jac = torch.zeros(*landmarks.shape, 6)
        # changing the head's axis-angle r by delta turns the head by J_l(r) delta (SO(3)'s left
        # Jacobian) about the root, moving a landmark by (J_l(r) delta) x (landmark - root)
        relative = landmarks - output.joints[:, :1]
        left_jacobian = so3_left_jacobian(state.rotation)  # M x 3 x 3
        for k in range(3):
            jac[..., k] = torch.cross(left_jacobian[:, None, :, k].expand_as(relative), relative, dim=2)
        jac[..., 3] = landmarks
        jac[..., :4] *= (torch.exp(state.camera[:, 0]).view(-1, 1, 1) * torch.tensor(AXIS_FLIP).view(1, 1, 3))[..., None]
        jac[:, :, 0, 4] = problem.iod_ref
        jac[:, :, 1, 5] = problem.iod_ref
        return self._to_residual_space(jac, problem.iod, in_place=True)

    def _pose_jacobian(self, output) -> torch.Tensor:
        """d landmarks / d (jaw, left eye, right eye) rotations: M x L x 3 x 9.

        The three joints are leaves of the skeleton, so a small rotation delta of joint j moves a
        vertex by w_vj R_j (delta x (rest_v - J_j)); pose correctives are left out of the Jacobian
        (the energy check of each step still uses the full model)."""
        columns = []
        basis = torch.eye(3)
        for joint in (2, 3, 4):  # jaw, eye_left, eye_right (JOINT_NAMES)
            weight = self.model.skinning_weights[:, joint]  # V
            relative = output.rest_vertices - output.rest_joints[:, joint : joint + 1]  # M x V x 3
            rotation = output.joint_rotations[:, joint]  # M x 3 x 3
            for k in range(3):
                moved = torch.cross(basis[k].expand_as(relative), relative, dim=2)
                columns.append(weight[None, :, None] * torch.einsum("mij,mvj->mvi", rotation, moved))
        per_vertex = torch.stack(columns, dim=3)  # M x V x 3 x 9
        bary = self.model.landmark_barycentric
        return sum(bary[None, :, c, None, None] * per_vertex[:, self.corners[:, c]] for c in range(3))

    # ---- energies ----------------------------------------------------------------------------
    def _prior_gradient_and_curvature(self, vector: np.ndarray, factor: float | np.ndarray,
                                      problem: _Problem) -> tuple[np.ndarray, np.ndarray]:
        """Half-convention prior gradient and diagonal curvature, M x D each. ``factor``: of the
        expression prior, one for all curves or E, one per curve."""
        cfg = self.config
        gradient = np.zeros_like(vector)
        curvature = np.zeros_like(vector)
        e = self.num_expression
        if self.bounds is not None:
            gradient[:, :e] = 0.5 * cfg.expression_prior * factor
            if problem.evidence_target is not None:
                g, c = self.priors.gradient(vector[:, :e], problem.evidence_target, problem.evidence_precision)
                gradient[:, :e] += g
                curvature[:, :e] += c
        else:
            gradient[:, :e] = cfg.expression_prior * factor * vector[:, :e]
            curvature[:, :e] = cfg.expression_prior * factor
        if self.fit_jaw_eyes:
            gradient[:, e : e + 9] = cfg.pose_prior * vector[:, e : e + 9]
            curvature[:, e : e + 9] = cfg.pose_prior
        return gradient, curvature

    def _prior_per_frame(self, vector: np.ndarray, factor: float | np.ndarray, problem: _Problem) -> np.ndarray:
        """Prior energy of each frame: M."""
        cfg = self.config
        e = self.num_expression
        if self.bounds is not None:
            magnitude = np.abs(vector[:, :e])
            # one factor keeps its float order of old, so fits without a named neutral stay bit-identical
            per_curve = np.ndim(factor) > 0
            prior = cfg.expression_prior * ((factor * magnitude).sum(axis=1) if per_curve else factor * magnitude.sum(axis=1))
            if problem.evidence_target is not None:
                prior = prior + self.priors.energy(vector[:, :e], problem.evidence_target, problem.evidence_precision)
        else:
            prior = cfg.expression_prior * factor * (vector[:, :e] ** 2).sum(axis=1)
        if self.fit_jaw_eyes:
            prior = prior + cfg.pose_prior * (vector[:, e : e + 9] ** 2).sum(axis=1)
        return prior

    def _energy(self, residual: torch.Tensor, vector: np.ndarray, factor: float | np.ndarray, temporal_term,
                problem: _Problem) -> float:
        data = float((residual**2).sum())
        if problem.eyelid_sqrt is not None:
            data += float((self._eyelid_rows(residual, problem) ** 2).sum())
        prior = float(self._prior_per_frame(vector, factor, problem).sum())
        return data + prior + (temporal_term(vector) if temporal_term else 0.0)

    def _acceleration_penalty(self, num_frames: int, centres: np.ndarray | None) -> AccelerationPenalty | None:
        """The temporal term over ``num_frames`` rows: the expression's (and FLAME's jaw and eyes')
        accelerations squared, the head's squared up to ``temporal_pose_huber`` and Huber's beyond."""
        if centres is None:
            return None
        pose = self.dims - 6
        weights = np.full(self.dims, self.config.temporal)
        weights[pose:] = self.config.temporal_pose
        delta = np.full(self.dims, np.inf)
        delta[pose:] = self.config.temporal_pose_huber
        return AccelerationPenalty(num_frames, centres, weights, delta)

    def _gauss_newton(self, state, identity, problem, iterations, factor=1.0, anchor=None, centres=None):
        """Minimise the window energy; anchor: F x D fixed leading frames for the temporal term;
        centres: the rows (anchors first) whose second differences it penalises (None: no term)."""
        num_fixed = 0 if anchor is None else len(anchor)
        penalty = self._acceleration_penalty(num_fixed + len(state.rotation), centres)

        def full(vector: np.ndarray) -> np.ndarray:
            return vector if anchor is None else np.concatenate([anchor, vector])

        def temporal_term(vector: np.ndarray) -> float:
            return 0.0 if penalty is None else penalty.energy(full(vector))

        damping = 1e-4
        with torch.no_grad():
            residual, output = self._residual(state, identity, problem)
        vector = self._vector(state, problem)
        energy = self._energy(residual, vector, factor, temporal_term, problem)
        for _ in range(iterations):
            with torch.no_grad():
                blocks, gradient = (x.numpy() for x in self._normal_equations(state, identity, problem, output, residual))
            prior_gradient, prior_curvature = self._prior_gradient_and_curvature(vector, factor, problem)
            np.einsum("mii->mi", blocks)[:] += prior_curvature
            coupling = None if penalty is None else penalty.coupling(full(vector))
            for _attempt in range(4):
                delta = solve_step(blocks, gradient + prior_gradient, full(vector), coupling, num_fixed, self.lower,
                                   self.upper, damping)
                candidate = self._apply(state, np.clip(vector + delta, self.lower, self.upper) - vector, problem)
                with torch.no_grad():
                    cand_residual, cand_output = self._residual(candidate, identity, problem)
                cand_vector = self._vector(candidate, problem)
                cand_energy = self._energy(cand_residual, cand_vector, factor, temporal_term, problem)
                if cand_energy <= energy:
                    converged = energy - cand_energy <= self.config.tolerance * energy
                    state, residual, output, vector, energy = candidate, cand_residual, cand_output, cand_vector, cand_energy
                    damping = max(damping / 3, 1e-6)
                    break
                damping *= 10
            else:
                break
            if converged:
                break
        return state, residual

    # ---- stages ------------------------------------------------------------------------------
    def _prepare(self, observations: ObservationArrays, rows: np.ndarray) -> tuple[_State, _Problem]:
        observed = self.observed_landmarks(observations, rows)
        landmarks = observed[:, self.ids]
        iod = interocular(observed).astype(np.float32)
        rotation0, camera0 = initial_rigid(self.neutral_landmarks, self.root_joint, landmarks, self.rigid)
        m = len(rows)
        state = _State(
            expression=torch.zeros(m, self.num_expression), jaw=torch.zeros(m, 3), eyes=torch.zeros(m, 6),
            rotation=torch.as_tensor(rotation0), camera=torch.as_tensor(camera0),
        )
        target = precision = None
        if self.priors is not None:
            view_variance = None
            if self.curve_mirror is not None:  # one image: its scores weigh what they are worth at its head pose
                yaw = view_azimuth_deg(observations.head_rotation[rows])
                view_variance = self.view_bias.score_variance_at(yaw, self.curve_mirror)
            target, precision = self.priors.targets(self.observed_scores(observations, rows), self.neutral_scores,
                                                    view_variance)
        problem = _Problem(torch.as_tensor(landmarks, dtype=torch.float32), torch.as_tensor(iod), float(iod.mean()),
                           target, precision, self.eyelid_weights(observed))
        return state, problem

    def observed_landmarks(self, observations: ObservationArrays, rows: np.ndarray) -> np.ndarray:
        """M x 478 x 3 the landmarks of ``rows`` as the fit reads them (image pixels): with the
        shipped view bias (FitConfig.view_bias) and the performer's view drift taken out."""
        return landmarks_as_fitted(observations, rows, self.view_bias, self.view_drift)

    def observed_scores(self, observations: ObservationArrays, rows: np.ndarray) -> np.ndarray:
        """M x E MediaPipe's learned scores of ``rows`` as the fit reads them: with the network's
        drift at each frame's head pose taken out (FitConfig.view_bias; core/observe/view_bias.py)."""
        return observed_scores(observations, rows, self.view_bias)

    def eyelid_weights(self, landmarks: np.ndarray) -> torch.Tensor | None:
        """M x K square roots of the eyelid points' extra weight (FitConfig.eyelid_weight) from the
        M x 478 x 3 observed landmarks; None when there is none."""
        if not self.config.eyelid_weight or not len(self.eyelid_rows):
            return None
        width = np.stack([
            np.linalg.norm(landmarks[:, ids.RIGHT_EYE_OUTER, :2] - landmarks[:, ids.RIGHT_EYE_INNER, :2], axis=1),
            np.linalg.norm(landmarks[:, ids.LEFT_EYE_OUTER, :2] - landmarks[:, ids.LEFT_EYE_INNER, :2], axis=1),
        ], axis=1).astype(np.float64)  # M x 2
        visibility = (width / np.maximum(width.max(axis=1, keepdims=True), 1e-9)) ** 2
        return torch.as_tensor(np.sqrt(self.config.eyelid_weight * visibility[:, self.eyelid_side]))

    def _neutral_frames(self, observations: ObservationArrays, with_face: np.ndarray) -> np.ndarray:
        """The frames that show the least expression: a quick expression fit with the template's
        identity on up to ``identity_candidates`` frames spread over the clip, ranked by expression
        activity (L1 of bounded weights, L2 of FLAME coefficients)."""
        cfg = self.config
        spread = np.linspace(0, len(with_face) - 1, min(cfg.identity_candidates, len(with_face))).round().astype(int)
        candidates = with_face[np.unique(spread)]
        state, problem = self._prepare(observations, candidates)
        state, _ = self._gauss_newton(state, torch.zeros(1, self.model.num_shape), problem, 3)
        expression = state.expression.numpy()
        activity = np.abs(expression).sum(axis=1) if self.bounds is not None else (expression**2).sum(axis=1)
        return np.sort(candidates[np.argsort(activity, kind="stable")[: cfg.identity_frames]])

    def fit_identity(self, observations: ObservationArrays, named_neutral: bool = False) -> np.ndarray:
        """Identity coefficients (S,) from the clip's most neutral frames with a face.
        ``named_neutral``: the user named these frames neutral; the expression is held near rest."""
        with single_threaded_torch():
            return self._fit_identity(observations, named_neutral)

    def _fit_identity(self, observations: ObservationArrays, named_neutral: bool) -> np.ndarray:
        """See :meth:`fit_identity`.

        Joint Gauss-Newton over the identity and every chosen frame's values; the system is an
        arrow (per-frame blocks plus one identity block) solved by its Schur complement."""
        cfg = self.config
        with_face = np.nonzero(observations.has_face)[0]
        identity = torch.zeros(1, self.model.num_shape)
        if len(with_face) == 0 or self.model.num_shape == 0:
            return identity[0].numpy()
        chosen = self._neutral_frames(observations, with_face)
        state, problem = self._prepare(observations, chosen)
        mean = self.identity_mean
        identity = mean.clone()
        factor = self._named_neutral_factors() if named_neutral else cfg.identity_expression_factor
        identity_prior = cfg.named_neutral_identity_prior if named_neutral else cfg.identity_prior
        lower, upper = np.tile(self.lower, (len(chosen), 1)), np.tile(self.upper, (len(chosen), 1))

        def total_energy(residual, vector, beta) -> float:
            return self._energy(residual, vector, factor, None, problem) + identity_prior * float(((beta - mean) ** 2).sum())

        with torch.no_grad():
            residual, output = self._residual(state, identity, problem)
        vector = self._vector(state, problem)
        energy = total_energy(residual, vector, identity)
        damping = 1e-3
        for _ in range(cfg.identity_iterations):
            with torch.no_grad():
                blocks, gradient = self._normal_equations(state, identity, problem, output, residual, with_identity=True)
                d = self.dims
                h, coupling, h_beta = blocks[:, :d, :d], blocks[:, :d, d:], blocks[:, d:, d:].sum(dim=0)
                g, g_beta = gradient[:, :d], gradient[:, d:].sum(dim=0)
            prior_gradient, prior_curvature = self._prior_gradient_and_curvature(vector, factor, problem)
            g = g + torch.as_tensor(prior_gradient)
            h = h + torch.diag_embed(torch.as_tensor(prior_curvature))
            h_beta = h_beta + identity_prior * torch.eye(self.model.num_shape, dtype=torch.float64)
            g_beta = g_beta + identity_prior * (identity - mean)[0].double()
            # projected Newton: expression weights at a bound that the gradient pushes outward stay
            x = torch.as_tensor(vector)
            frozen = ((x <= torch.as_tensor(lower) + 1e-6) & (g > 0)) | ((x >= torch.as_tensor(upper) - 1e-6) & (g < 0))
            keep = (~frozen).double()
            h = h * keep[:, :, None] * keep[:, None, :] + torch.diag_embed(1.0 - keep)
            g, coupling = g * keep, coupling * keep[:, :, None]
            for _attempt in range(4):
                h_damped = h + damping * torch.diag_embed(torch.diagonal(h, dim1=1, dim2=2) + 1e-9)
                hb_damped = h_beta + damping * torch.diag(torch.diagonal(h_beta) + 1e-9)
                inv_coupling = torch.linalg.solve(h_damped, coupling)
                inv_g = torch.linalg.solve(h_damped, g[..., None])[..., 0]
                schur = hb_damped - torch.einsum("mds,mdt->st", coupling, inv_coupling)
                rhs = -(g_beta - torch.einsum("mds,md->s", coupling, inv_g))
                delta_beta = torch.linalg.solve(schur, rhs)
                delta = -(inv_g + torch.einsum("mds,s->md", inv_coupling, delta_beta)) * keep
                delta = np.clip(vector + delta.numpy(), lower, upper) - vector
                candidate = self._apply(state, delta, problem)
                cand_identity = identity + delta_beta.float()[None]
                with torch.no_grad():
                    cand_residual, cand_output = self._residual(candidate, cand_identity, problem)
                cand_vector = self._vector(candidate, problem)
                cand_energy = total_energy(cand_residual, cand_vector, cand_identity)
                if cand_energy <= energy:
                    state, identity, residual, output = candidate, cand_identity, cand_residual, cand_output
                    vector, energy = cand_vector, cand_energy
                    damping = max(damping / 3, 1e-6)
                    break
                damping *= 10
            else:
                break
        log.info("identity from %d neutral frames", len(chosen))
        return identity[0].numpy().astype(np.float32)

    def fit_window(
        self, observations: ObservationArrays, identity: np.ndarray, previous: FitParams | None = None
    ) -> FitParams:
        """Fit the frames of ``observations`` (one window) with the identity fixed. ``previous``:
        the window before it; its last two frames anchor the temporal term at the seam."""
        with single_threaded_torch():
            return self._fit_window(observations, identity, previous)

    def _fit_window(
        self, observations: ObservationArrays, identity: np.ndarray, previous: FitParams | None
    ) -> FitParams:
        result = FitParams.empty(observations.index, identity, self.num_expression)
        rows = np.nonzero(observations.has_face)[0]
        if len(rows) == 0:
            return result
        state, problem = self._prepare(observations, rows)
        identity_t = torch.as_tensor(identity, dtype=torch.float32)[None]

        segment_ids = np.full(len(observations), -1)
        for k, (a, b) in enumerate(segments(observations.has_face)):
            segment_ids[a:b] = k
        anchor = self._anchor(previous, observations, problem)
        sequence_ids = segment_ids[rows]
        if anchor is not None:
            sequence_ids = np.concatenate([np.full(len(anchor), segment_ids[0]), sequence_ids])
        centres = valid_centres(sequence_ids)
        state, residual = self._gauss_newton(state, identity_t, problem, self.config.iterations, anchor=anchor,
                                             centres=centres if len(centres) else None)
        with torch.no_grad():
            output = self._evaluate(state, identity_t)
            error = (project(output.landmarks, state.camera) - problem.observed)[..., :2].norm(dim=2).mean(dim=1) / problem.iod
        result.has_face[rows] = True
        result.expression[rows] = state.expression.numpy()
        result.rotation[rows] = state.rotation.numpy()
        result.neck[rows] = 0.0
        result.jaw[rows] = state.jaw.numpy()
        result.eyes[rows] = state.eyes.numpy()
        result.camera[rows] = state.camera.numpy()
        result.residual[rows] = error.numpy()
        return result

    def _anchor(self, previous: FitParams | None, observations: ObservationArrays, problem: _Problem):
        """The previous window's last two frames as fixed temporal neighbours, when they are the
        frames right before this window and the face continues."""
        if previous is None or len(previous) < 2 or not previous.has_face[-2:].all() or not observations.has_face[0]:
            return None
        if int(previous.frame_index[-1]) + 1 != int(observations.index[0]):
            return None
        last = _State(*(torch.as_tensor(getattr(previous, name)[-2:]) for name in ("expression", "jaw", "eyes", "rotation", "camera")))
        return self._vector(last, problem)


def slice_observations(observations: ObservationArrays, start: int, stop: int) -> ObservationArrays:
    """Rows [start, stop) of ``observations``."""
    return ObservationArrays(**{f.name: getattr(observations, f.name)[start:stop] for f in fields(observations)})
