"""Learning identity and expression spaces from observed faces (core/facemodel/calibration.py),
on synthetic faces with known ground truth built from the open model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.facemodel.calibration import (
    ExpressionLearning,
    expression_motion,
    fit_weights,
    image_axis_precision,
    learn_expressions,
    learn_identity,
    support_masks,
)
from core.facemodel.open_model import ARKIT_NAMES, load_open_model
from core.facemodel.open_model_authoring import Mesh, mirror_field
from core.facemodel.open_model_calibration import evidence_trust, mirror_name
from core.fit.camera import flip_matrix


@pytest.fixture(scope="module")
def model():
    return load_open_model()


def photographed(points: np.ndarray, rotation: np.ndarray, scale: float, shift) -> np.ndarray:
    """Model-space points (metres) as MediaPipe image landmarks (pixels, y down, z away)."""
    return scale * (points @ rotation.T) @ flip_matrix() + np.asarray(shift)


def test_expression_motion_is_recovered_from_photos_in_any_head_pose(model):
    template = model.template.astype(np.float64)
    smile = model.expression_basis[:, :, ARKIT_NAMES.index("mouthSmileLeft")].astype(np.float64)
    neutral = photographed(template, Rotation.from_euler("xyz", [5, -25, 3], degrees=True).as_matrix(),
                           3100.0, [310, 260, 40])
    # the expression photo: another head pose and camera distance
    expression = photographed(template + 0.6 * smile, Rotation.from_euler("xyz", [-4, -15, -2], degrees=True).as_matrix(),
                              2700.0, [290, 270, -15])
    motion = expression_motion(neutral, expression, template)
    assert np.abs(motion - 0.6 * smile).max() < 1e-4  # 0.1 mm


def test_a_half_profile_s_sideways_motion_weighs_like_depth_and_a_frontal_one_like_the_image(model):
    """In a 45-degree view the face's left-right axis lies half along the camera's depth, so a
    sideways residual there costs (1 + z_weight) / 2, not 1; head-on it costs 1; the face's up-down
    axis stays in the image plane either way."""
    template = model.template.astype(np.float64)
    z_weight = 0.25
    frontal = photographed(template, np.eye(3), 3000.0, [300, 260, 0])
    assert image_axis_precision(frontal, template, z_weight) == pytest.approx(np.diag([1.0, 1.0, z_weight]), abs=1e-6)
    half = photographed(template, Rotation.from_euler("y", 45, degrees=True).as_matrix(), 3000.0, [300, 260, 0])
    precision = image_axis_precision(half, template, z_weight)
    assert precision[0, 0] == pytest.approx((1 + z_weight) / 2, abs=1e-6)
    assert precision[2, 2] == pytest.approx((1 + z_weight) / 2, abs=1e-6)
    assert precision[1, 1] == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(precision, precision.T)
    # a residual along the face's sideways axis costs the same as its own precision says
    sideways = np.array([1.0, 0.0, 0.0])
    assert sideways @ precision @ sideways == pytest.approx(0.625, abs=1e-6)


def test_identity_components_are_the_neutral_faces_spread(model):
    rng = np.random.default_rng(0)
    v = model.num_vertices
    directions = np.linalg.qr(rng.normal(size=(v * 3, 3)))[0].T.reshape(3, v, 3)
    std = np.array([3e-3, 2e-3, 1e-3])
    coefficients = rng.normal(size=(400, 3)) * std
    offset = 1e-3 * directions[0] + 5e-4 * directions[2]
    residuals = offset + np.einsum("nk,kvc->nvc", coefficients, directions)
    mean, components, ratio = learn_identity(residuals, 5)
    assert np.abs(mean - offset).max() < 5e-4
    assert ratio[:3].sum() > 0.999 and ratio[3:].sum() < 1e-6
    sizes = np.sqrt((components**2).sum(axis=(0, 1)))
    assert sizes[:3] == pytest.approx(std, rel=0.1)  # one unit is one standard deviation
    span = components[..., :3].reshape(-1, 3)
    for direction in directions:  # the true directions lie in the learned span
        flat = direction.reshape(-1)
        projection = span @ np.linalg.lstsq(span, flat, rcond=None)[0]
        assert np.linalg.norm(projection - flat) < 0.05


def test_expression_shapes_are_learned_from_motion_with_exact_mirror_pairs(model):
    """Motions made with a 'true' smile 1.7 times the authored one, and a true frown that also
    moves the chin; the learner starts from the authored shapes and recovers the true ones."""
    names = list(ARKIT_NAMES)
    template = model.template.astype(np.float64)
    mesh = Mesh.build(template, model.faces)
    perm = np.array(model.info["mirror"])
    authored = model.expression_basis.astype(np.float64)
    smile_l, frown_l = names.index("mouthSmileLeft"), names.index("mouthFrownLeft")
    truth = authored.copy()
    truth[..., smile_l] *= 1.7
    truth[..., frown_l] = authored[..., frown_l] * 1.3
    for k in (smile_l, frown_l):
        truth[..., names.index(mirror_name(names[k]))] = mirror_field(truth[..., k], perm)
    rng = np.random.default_rng(1)
    weights = np.zeros((60, 52))
    for k in (smile_l, frown_l, smile_l + 1, frown_l + 1):
        weights[:, k] = rng.uniform(0.0, 0.6, size=60) * (rng.uniform(size=60) < 0.5)
    motions = np.einsum("nk,vck->nvc", weights, truth) + rng.normal(scale=2e-4, size=(60, *template.shape))
    learnable = np.array([n.startswith(("mouthSmile", "mouthFrown")) for n in names])
    support = support_masks(authored, mesh.geodesic, 0.012)
    config = dataclasses.replace(ExpressionLearning(), iterations=400, evidence=300.0)
    mirror_shapes = np.array([names.index(mirror_name(n)) for n in names])
    learned, learned_weights = learn_expressions(
        motions, weights, authored, perm, mirror_shapes, learnable, support, mesh.stiffness.toarray(), np.ones(52), config)

    def error(shapes: np.ndarray, k: int) -> float:
        return float(np.linalg.norm(shapes[..., k] - truth[..., k]) / np.linalg.norm(truth[..., k]))

    for k in (smile_l, frown_l):
        assert error(learned, k) < 0.35 * error(authored, k), names[k]
    for k in range(52):
        partner = names.index(mirror_name(names[k]))
        assert np.allclose(learned[..., partner], mirror_field(learned[..., k], perm), atol=1e-7), names[k]
        if not learnable[k]:
            assert np.allclose(learned[..., k], authored[..., k], atol=1e-7), names[k]
    assert np.abs(learned_weights - weights).mean() < 0.05
    assert fit_weights(motions[:10], learned, 0.25)[1].mean() > fit_weights(motions[:10], authored, 0.25)[1].mean()

    # the same inputs give the same bits (the stored model's build is reproducible)
    short = dataclasses.replace(config, iterations=20)
    arguments = (motions, weights, authored, perm, mirror_shapes, learnable, support, mesh.stiffness.toarray(),
                 np.ones(52), short)
    first, again = learn_expressions(*arguments), learn_expressions(*arguments)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])


def test_a_shape_the_network_never_reports_is_free_only_where_the_posed_emotion_shows_it():
    labels = np.array(["happy", "disgust", "anger", "surprise"])
    trust = evidence_trust(ARKIT_NAMES, labels)
    assert trust.shape == (4, 52)
    sneer = [ARKIT_NAMES.index("noseSneerLeft"), ARKIT_NAMES.index("noseSneerRight")]
    # a smile's cheek raise must not be learned as a sneer: held at the evidence's zero there
    assert (trust[:, sneer] == [[1, 1], [0, 0], [0, 0], [1, 1]]).all()
    others = np.setdiff1d(np.arange(52), sneer)
    assert (trust[:, others] == 1).all()  # the network's scores bind every other weight


def test_sideways_noise_of_half_profiles_does_not_become_sideways_motion_of_a_shape(model):
    """Smiles seen in 45-degree views whose sideways motion carries depth noise (a bias, as
    MediaPipe's depth has in half profiles): weighed in the photos' own camera axes, the learned
    smile stays close to the truth; weighed as if every photo were head-on, it learns the bias."""
    names = list(ARKIT_NAMES)
    template = model.template.astype(np.float64)
    mesh = Mesh.build(template, model.faces)
    perm = np.array(model.info["mirror"])
    authored = model.expression_basis.astype(np.float64)
    smile_l = names.index("mouthSmileLeft")
    rng = np.random.default_rng(2)
    weights = np.zeros((40, 52))
    weights[:, smile_l] = rng.uniform(0.2, 0.8, size=40)
    half = photographed(template, Rotation.from_euler("y", 45, degrees=True).as_matrix(), 3000.0, [300, 260, 0])
    precision = np.repeat(image_axis_precision(half, template, 0.02)[None], 40, axis=0)
    # the camera's depth axis in model space: half along the face's sideways axis, half its depth
    depth_axis = np.linalg.eigh(precision[0])[1][:, 0]
    assert abs(depth_axis[0]) == pytest.approx(abs(depth_axis[2]), abs=1e-6)
    bias = 4e-3 * (np.linalg.norm(authored[..., smile_l], axis=1) > 1e-3)[:, None] * depth_axis
    motions = np.einsum("nk,vck->nvc", weights, authored) + weights[:, smile_l, None, None] * bias
    learnable = np.array([n.startswith("mouthSmile") for n in names])
    support = support_masks(authored, mesh.geodesic, 0.012)
    # closeness weighs about as much as a photo's depth and far less than its image plane
    config = dataclasses.replace(ExpressionLearning(), iterations=300, evidence=300.0, z_weight=0.02, closeness=0.02)
    mirrors = np.array([names.index(mirror_name(n)) for n in names])
    learn = [learn_expressions(motions, weights, authored, perm, mirrors, learnable, support,
                               mesh.stiffness.toarray(), np.ones(52), config, p)[0] for p in (precision, None)]
    error = [np.linalg.norm(shapes[..., smile_l] - authored[..., smile_l]) / np.linalg.norm(authored[..., smile_l])
             for shapes in learn]
    print(f"smile learned with the photos' own axes: {error[0]:.3f} from the truth; as if head-on: {error[1]:.3f}")
    assert error[0] < 0.5 * error[1]
