"""Learning a face model's identity and expression spaces from observed faces (pure maths, no I/O).

Used by ``scripts/build_open_model.py`` to calibrate the open model on photographs of people who are
seen both neutral and expressive. Landmarks come in MediaPipe's image space (pixels, x right, y down,
z away from the camera); everything learned is in model space (metres, x to the performer's left,
y up, z toward the viewer) on the model's 478 vertices (= MediaPipe's landmarks).

- :func:`to_model_space`: a face's landmarks brought onto the template by a similarity.
- :func:`expression_motion`: the motion from a person's neutral photo to an expression photo, the
  expression aligned onto the neutral on points expressions hardly move, in model space.
- :func:`image_axis_precision`: how much each model-space direction of a photo's motion can be
  trusted: the image's x and y fully, MediaPipe's depth (the camera's z) much less. In a half
  profile the face's left-right axis lies half along the camera's depth, so its lateral motion is
  mostly depth noise and must not teach the shapes lateral motion.
- :func:`learn_identity`: a mean neutral face and principal components of neutral faces, scaled so
  that one unit is one standard deviation (a unit Gaussian prior on the coefficients).
- :func:`learn_expressions`: blendshapes that explain observed expression motion with weights in
  [0, 1]: a factorisation ``motion ~= weights @ shapes`` started from authored shapes, where each
  shape may only move near where its authored version moves, stays close to it where the data say
  little, keeps exact left/right mirror pairs, and each sample's weights are drawn toward prior
  evidence of which shapes are active (a learned blendshape network's scores).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from core.fit.camera import flip_matrix
from core.observe.headpose import similarity_align

log = logging.getLogger(__name__)

# Points that expressions hardly move: nose bridge, inner and outer eye corners, face sides.
STABLE_POINTS = (168, 6, 197, 195, 133, 362, 33, 263, 234, 454, 93, 323, 127, 356)


def to_model_space(landmarks: np.ndarray, template: np.ndarray, rows=None) -> tuple[np.ndarray, np.ndarray, float]:
    """Landmarks (V x 3 image pixels) mapped onto ``template`` (V x 3 metres) by the similarity that
    best aligns ``rows`` (default: all). Returns (aligned V x 3 metres, rotation 3 x 3, scale m/px)
    with ``aligned = scale * (landmarks @ F) @ rotation.T + shift``, F the image-to-model axis flip."""
    rows = np.arange(len(template)) if rows is None else np.asarray(rows)
    flipped = landmarks.astype(np.float64) @ flip_matrix()
    rotation, shift, scale = similarity_align(flipped[rows], template[rows].astype(np.float64))
    return scale * flipped @ rotation.T + shift, rotation, scale


def expression_motion(neutral: np.ndarray, expression: np.ndarray, template: np.ndarray) -> np.ndarray:
    """V x 3 model-space motion (metres) from a person's neutral landmarks to their expression
    landmarks (both V x 3 image pixels, any head pose): the expression is aligned onto the neutral
    on STABLE_POINTS, then both go into model space by the neutral's similarity to the template."""
    stable = list(STABLE_POINTS)
    rot, shift, scale = similarity_align(expression[stable].astype(np.float64), neutral[stable].astype(np.float64))
    aligned = scale * expression.astype(np.float64) @ rot.T + shift
    _, rotation, to_metres = to_model_space(neutral, template)
    motion = (aligned - neutral.astype(np.float64)) @ flip_matrix() @ rotation.T * to_metres
    # MediaPipe's depth has no absolute origin: the stable points carry no mean depth motion
    motion[:, 2] -= motion[stable, 2].mean()
    return motion


def image_axis_precision(landmarks: np.ndarray, template: np.ndarray, z_weight: float) -> np.ndarray:
    """3 x 3 model-space precision of a motion measured on a photo whose landmarks (V x 3 image
    pixels) map onto ``template`` as in :func:`to_model_space`: weight 1 along the image's x and y,
    ``z_weight`` along its depth. A residual r (model space) costs r @ P @ r."""
    _, rotation, _ = to_model_space(landmarks, template)
    return rotation @ np.diag([1.0, 1.0, z_weight]) @ rotation.T


def frontal_precision(count: int, z_weight: float) -> np.ndarray:
    """count x 3 x 3 precisions of motions measured head-on (depth weighed by ``z_weight``)."""
    return np.broadcast_to(np.diag([1.0, 1.0, z_weight]), (count, 3, 3)).copy()


def learn_identity(residuals: np.ndarray, num_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neutral faces' deviations from the template (N x V x 3 metres) -> (mean V x 3, components
    V x 3 x K scaled to one standard deviation each, explained variance ratio K)."""
    flat = residuals.reshape(len(residuals), -1)
    mean = flat.mean(axis=0)
    _, sigma, vt = np.linalg.svd(flat - mean, full_matrices=False)
    k = min(num_components, len(sigma) - 1)
    std = sigma[:k] / np.sqrt(len(flat) - 1)
    components = (vt[:k] * std[:, None]).T.reshape(*residuals.shape[1:], k)
    ratio = sigma[:k] ** 2 / (sigma**2).sum()
    # a deterministic sign: the largest entry of each component is positive
    flat_components = components.reshape(-1, k)
    signs = np.sign(flat_components[np.abs(flat_components).argmax(axis=0), np.arange(k)])
    return mean.reshape(residuals.shape[1:]), components * signs, ratio


@dataclass(frozen=True)
class ExpressionLearning:
    """Weights of the expression factorisation. Energies per sample, motion in units of
    ``noise_m`` (landmark noise, metres): data = |W_axis (motion - weights @ shapes)|^2 / noise^2;
    evidence = ``evidence`` * trust_k (w_k - prior_k)^2; closeness = ``closeness`` * |shape - authored|^2
    / noise^2 over all samples; smoothness = ``smoothness`` * |L (shape - authored)|^2 / noise^2
    (L the mesh Laplacian); sparsity = ``sparsity`` * sum w."""

    noise_m: float = 1e-3
    z_weight: float = 0.25
    evidence: float = 300.0
    closeness: float = 1e-3
    smoothness: float = 1e-3
    sparsity: float = 0.02
    support_radius_m: float = 0.025
    iterations: int = 1200
    learning_rate: float = 2e-3


def support_masks(authored: np.ndarray, geodesic, radius: float, level: float = 0.1) -> np.ndarray:
    """E x V: where each shape may move: within ``radius`` (metres, geodesic) of the vertices its
    authored version (V x 3 x E) moves by at least ``level`` of its largest motion. ``geodesic``:
    a function from source vertex ids to V distances."""
    size = np.linalg.norm(authored, axis=1)  # V x E
    masks = np.zeros((authored.shape[2], authored.shape[0]), bool)
    for k in range(authored.shape[2]):
        sources = np.flatnonzero(size[:, k] >= level * size[:, k].max())
        masks[k] = geodesic(sources) <= radius
    return masks


def learn_expressions(
    motions: np.ndarray,
    prior: np.ndarray,
    authored: np.ndarray,
    mirror_vertices: np.ndarray,
    mirror_shapes: np.ndarray,
    learnable: np.ndarray,
    support: np.ndarray,
    laplacian: np.ndarray,
    trust: np.ndarray,
    config: ExpressionLearning = ExpressionLearning(),
    precision: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Learn expression shapes from samples of motion.

    motions: N x V x 3 metres. prior: N x E evidence of each sample's weights in [0, 1].
    authored: V x 3 x E starting shapes. mirror_vertices: V, the mirror partner of each vertex.
    mirror_shapes: E, the mirror partner of each shape (itself for a symmetric one). learnable: E
    bool (the others stay as authored). support: E x V bool. laplacian: V x V. trust: E, or N x E
    (per sample: how much each sample's evidence binds its weights; 0 leaves the weight free).
    precision: N x 3 x 3 model-space precision of each sample's motion (:func:`image_axis_precision`;
    default: measured head-on, depth weighed by ``config.z_weight``).
    Every sample is also used mirrored, so the result keeps exact mirror pairs. Returns (shapes
    V x 3 x E, weights N x E of the given samples)."""
    dtype = torch.float32
    n, v, _ = motions.shape
    e = authored.shape[2]
    perm = torch.as_tensor(mirror_vertices)
    pair = torch.as_tensor(mirror_shapes)
    reflect = torch.tensor([-1.0, 1.0, 1.0], dtype=dtype)

    def mirror(field: torch.Tensor) -> torch.Tensor:  # ... x V x 3
        return field[..., perm, :] * reflect

    motion = torch.as_tensor(motions, dtype=dtype)
    motion = torch.cat([motion, mirror(motion)])
    evidence = torch.as_tensor(prior, dtype=dtype)
    evidence = torch.cat([evidence, evidence[:, pair]])
    base = torch.as_tensor(authored, dtype=dtype).permute(2, 0, 1)  # E x V x 3
    mask = torch.as_tensor(support, dtype=dtype)[..., None] * torch.as_tensor(learnable, dtype=dtype)[:, None, None]
    symmetric = pair == torch.arange(e)
    lap = torch.as_tensor(laplacian, dtype=dtype).to_sparse()
    if precision is None:
        precision = frontal_precision(n, config.z_weight)
    metric = torch.as_tensor(precision, dtype=dtype)
    reflect_matrix = torch.diag(reflect)
    metric = torch.cat([metric, reflect_matrix @ metric @ reflect_matrix])  # the mirrored samples' precision
    trust_t = torch.as_tensor(np.broadcast_to(trust, prior.shape).copy(), dtype=dtype)
    trust_t = torch.cat([trust_t, trust_t[:, pair]])
    # in units of the noise, so float32 keeps its precision where it matters
    motion, base = motion / config.noise_m, base / config.noise_m

    def shapes_of(delta: torch.Tensor) -> torch.Tensor:
        """Authored + masked correction, with mirror pairs and symmetric shapes made exact."""
        raw = base + delta * mask
        mirrored = mirror(raw)[pair]  # the mirror image of each shape's partner
        first = torch.arange(e) <= pair  # each pair is defined by its first member
        exact = torch.where(first[:, None, None], raw, mirrored)
        return torch.where(symmetric[:, None, None], 0.5 * (raw + mirror(raw)), exact)

    delta = torch.zeros_like(base, requires_grad=True)
    weights = evidence.clone().clamp(0.0, 1.0).requires_grad_(True)
    # learning_rate is a step in metres for the shapes (held in noise units) and in weight units
    optimiser = torch.optim.Adam([{"params": [delta], "lr": config.learning_rate / config.noise_m},
                                  {"params": [weights], "lr": config.learning_rate}])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, config.iterations)
    for step in range(config.iterations):
        optimiser.zero_grad()
        shapes = shapes_of(delta)
        w = weights.clamp(0.0, 1.0)
        predicted = torch.einsum("ne,evc->nvc", w, shapes)
        residual = motion - predicted
        data = torch.einsum("nvi,nij,nvj->n", residual, metric, residual).mean()
        prior_term = config.evidence * (trust_t * (w - evidence) ** 2).sum(dim=1).mean()
        sparse = config.sparsity * w.sum(dim=1).mean()
        change = shapes - base
        close = config.closeness * (change**2).sum()
        smooth = config.smoothness * torch.sparse.mm(lap, change.permute(1, 0, 2).reshape(v, -1)).pow(2).sum()
        loss = data + prior_term + sparse + close + smooth
        loss.backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            weights.clamp_(0.0, 1.0)
        if step % 250 == 0 or step == config.iterations - 1:
            log.info("expression learning step %d: data %.2f evidence %.3f closeness %.2f smoothness %.2f",
                     step, data.item(), prior_term.item(), close.item(), smooth.item())
    with torch.no_grad():
        shapes = config.noise_m * shapes_of(delta).permute(1, 2, 0).double().numpy()
        learned_weights = weights.clamp(0.0, 1.0)[:n].double().numpy()
    return shapes, learned_weights


def fit_weights(motions: np.ndarray, shapes: np.ndarray, z_weight: float,
                precision: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best weights in [0, 1] for each motion (N x V x 3) with ``shapes`` (V x 3 x E), and the share
    of each motion they explain (1 - residual^2 / motion^2 in the metric of ``precision``, N x 3 x 3,
    default: head-on with depth weighed by ``z_weight``)."""
    from scipy.optimize import lsq_linear

    if precision is None:
        precision = frontal_precision(len(motions), z_weight)
    weights, shares = [], []
    for motion, metric in zip(motions, precision):
        root = np.linalg.cholesky(metric + 1e-12 * np.eye(3)).T  # r @ P @ r = |root @ r|^2
        design = np.einsum("ij,vje->vie", root, shapes).reshape(-1, shapes.shape[2])
        target = (motion @ root.T).reshape(-1)
        solution = lsq_linear(design, target, bounds=(0.0, 1.0)).x
        weights.append(solution)
        shares.append(1.0 - np.sum((design @ solution - target) ** 2) / np.sum(target**2))
    return np.array(weights), np.array(shares)


@dataclass(frozen=True)
class CalibrationData:
    """Observed faces to calibrate a model on (built by scripts/build_open_model.py).

    neutral_landmarks: N x V x 3 image pixels of neutral photos. neutral_scores: N x E a learned
    blendshape network's scores of them (NaN where it has no such output). expression_landmarks:
    M x V x 3 of expression photos, expression_scores: M x E; expression_neutral: M, the row of the
    same person's neutral photo in the same view; expression_person: M person keys (for held-out
    checks); expression_label: M emotion labels the photos were posed as (happy, sad, surprise,
    fear, anger, disgust). sources: what the photos are (recorded in the model's info)."""

    neutral_landmarks: np.ndarray
    neutral_scores: np.ndarray
    expression_landmarks: np.ndarray
    expression_scores: np.ndarray
    expression_neutral: np.ndarray
    expression_person: np.ndarray
    expression_label: np.ndarray
    sources: dict

    def motions(self, template: np.ndarray) -> np.ndarray:
        """M x V x 3 model-space motion of each expression from its neutral."""
        return np.stack([expression_motion(self.neutral_landmarks[n], e, template)
                         for e, n in zip(self.expression_landmarks, self.expression_neutral)])

    def precisions(self, template: np.ndarray, z_weight: float) -> np.ndarray:
        """M x 3 x 3 model-space precision of each expression's motion (:func:`image_axis_precision`
        of its neutral photo's view)."""
        return np.stack([image_axis_precision(self.neutral_landmarks[n], template, z_weight)
                         for n in self.expression_neutral])

    def evidence(self) -> np.ndarray:
        """M x E: how much more active each shape is than in the person's neutral, by the network
        (shapes it has no output for: 0)."""
        delta = self.expression_scores - self.neutral_scores[self.expression_neutral]
        return np.clip(np.nan_to_num(delta), 0.0, 1.0)

    def neutral_residuals(self, template: np.ndarray) -> np.ndarray:
        """N x V x 3: each neutral face mapped onto the template (all points), minus the template."""
        return np.stack([to_model_space(lm, template)[0] - template for lm in self.neutral_landmarks])
