"""A performer's landmark drift with head pose (core/performer/view_drift.py), on synthetic data
whose drift is known."""

import numpy as np
from scipy.spatial.transform import Rotation

from core.performer.view_drift import (
    NUM_FEATURES,
    ViewDrift,
    canonical_residuals,
    drift_features,
    learn_view_drift,
    view_direction_deg,
)

V, E = 40, 6


def head_rotations(rng, count, azimuth=25.0, elevation=15.0):
    """N x 3 x 3 canonical -> image rotations of a head turned and nodded at random."""
    angles = np.stack([rng.uniform(-elevation, elevation, count), rng.uniform(-azimuth, azimuth, count),
                       rng.uniform(-5, 5, count)], axis=1)
    return Rotation.from_euler("xyz", angles, degrees=True).as_matrix()


def test_view_direction_follows_a_turn_and_a_nod():
    turn = Rotation.from_euler("y", 30, degrees=True).as_matrix()
    nod = Rotation.from_euler("x", 20, degrees=True).as_matrix()
    azimuth, elevation = view_direction_deg(np.stack([turn, nod, np.eye(3)]))
    np.testing.assert_allclose(np.abs(azimuth), [30, 0, 0], atol=1e-9)
    np.testing.assert_allclose(np.abs(elevation), [0, 20, 0], atol=1e-9)


def test_the_drift_is_learned_apart_from_the_constant_and_the_curves():
    rng = np.random.default_rng(0)
    n = 400
    rotation = head_rotations(rng, n)
    fields = rng.normal(scale=0.01, size=(NUM_FEATURES, V, 3))
    weights = rng.uniform(size=(n, E)) * (rng.uniform(size=(n, E)) < 0.3)
    shapes = rng.normal(scale=0.05, size=(E, V, 3))
    constant = rng.normal(scale=0.02, size=(V, 3))
    features = drift_features(*view_direction_deg(rotation))
    residuals = constant + np.einsum("ne,evc->nvc", weights, shapes) + np.einsum("nk,kvc->nvc", features, fields)
    residuals += rng.normal(scale=1e-3, size=residuals.shape)
    drift = learn_view_drift(residuals, weights, rotation, ridge=1.0)
    error = np.linalg.norm(drift.fields - fields) / np.linalg.norm(fields)
    assert error < 0.05
    azimuth, elevation = view_direction_deg(rotation)
    assert drift.azimuth_range_deg == (azimuth.min(), azimuth.max())
    assert drift.elevation_range_deg == (elevation.min(), elevation.max())


def test_an_expression_the_head_turns_with_stays_with_its_curve():
    """The performer turns to the left as they smile: the regression with the curves keeps the
    smile's motion out of the drift; one on the head's direction alone would take it."""
    rng = np.random.default_rng(1)
    n = 300
    smile = rng.uniform(size=n)
    azimuth = 20.0 * smile + rng.normal(scale=2.0, size=n)
    rotation = Rotation.from_euler("y", azimuth[:, None], degrees=True).as_matrix()
    weights = np.zeros((n, E))
    weights[:, 0] = smile
    motion = rng.normal(scale=0.05, size=(V, 3))
    residuals = smile[:, None, None] * motion + rng.normal(scale=1e-3, size=(n, V, 3))
    drift = learn_view_drift(residuals, weights, rotation, ridge=1.0)
    taken = np.abs(drift.field(rotation)).max()
    alone = learn_view_drift(residuals, np.zeros((n, 0)), rotation, ridge=1.0)
    assert taken < 0.05 * np.abs(motion).max() < np.abs(alone.field(rotation)).max()


def test_correct_takes_the_drift_out_of_image_landmarks_and_never_extrapolates():
    rng = np.random.default_rng(2)
    rotation = head_rotations(rng, 50)
    drift = ViewDrift(rng.normal(scale=0.01, size=(NUM_FEATURES, V, 3)), (-10.0, 12.0), (-8.0, 5.0))
    scale = rng.uniform(80, 200, size=50)
    true = rng.normal(scale=50, size=(50, V, 3))
    observed = true + scale[:, None, None] * np.matmul(drift.field(rotation), rotation.transpose(0, 2, 1))
    np.testing.assert_allclose(drift.correct(observed, rotation, scale), true, atol=1e-9)
    # the image residual brought back to the canonical frame is the drift itself
    np.testing.assert_allclose(canonical_residuals(observed - true, rotation, scale), drift.field(rotation), atol=1e-9)
    # beyond the learned directions the field is the one at their edge
    far = Rotation.from_euler("y", [[60.0], [-60.0]], degrees=True).as_matrix()
    edge = Rotation.from_euler("y", [[12.0], [-10.0]], degrees=True).as_matrix()
    azimuth, _ = view_direction_deg(far)
    if azimuth[0] < 0:  # the sign convention of the azimuth: match the edges to it
        edge = edge[::-1]
    np.testing.assert_allclose(drift.field(far), drift.field(edge), atol=1e-12)
    # a frame without a head pose is left as it is
    rotation[0] = np.nan
    np.testing.assert_array_equal(drift.correct(observed, rotation, scale)[0], observed[0])
