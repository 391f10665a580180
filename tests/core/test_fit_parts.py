"""The fitting building blocks on cases with known answers."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.fit.camera import project
from core.fit.rigid import initial_rigid
from core.fit.solver import second_difference_matrix, solve_step
from core.fit.temporal import segments, valid_centres


def test_segments_and_valid_centres_stop_at_gaps():
    has_face = np.array([1, 1, 1, 0, 1, 1, 1, 1, 0, 1], bool)
    assert segments(has_face) == [(0, 3), (4, 8), (9, 10)]
    ids = np.array([0, 0, 0, -1, 1, 1, 1, 1, -1, 2])
    assert valid_centres(ids).tolist() == [1, 5, 6]


def test_second_difference_matrix_matches_the_dense_definition():
    centres = np.array([1, 2, 5])
    d2 = np.zeros((3, 7))
    for row, c in enumerate(centres):
        d2[row, c - 1 : c + 2] = [1, -2, 1]
    assert np.allclose(second_difference_matrix(7, centres).toarray(), d2.T @ d2)


def test_solver_reaches_the_minimum_of_a_known_quadratic():
    # E = 1/2 sum |x_t - target_t|^2 + lambda/2 |D2 x|^2, one Newton step from 0
    rng = np.random.default_rng(0)
    m, d, lam = 6, 2, 0.7
    target = rng.normal(size=(m, d))
    k = second_difference_matrix(m, np.arange(1, m - 1))
    blocks = np.tile(np.eye(d), (m, 1, 1))
    delta = solve_step(blocks, -target, np.zeros((m, d)), np.full(d, lam), k, 0, np.full(d, -np.inf), np.full(d, np.inf), 0.0)
    expected = np.linalg.solve(np.eye(m) + lam * k.toarray(), target)
    assert np.allclose(delta, expected, atol=1e-9)


def test_solver_respects_bounds_and_fixed_anchor_frames():
    m, d = 4, 1
    blocks = np.tile(np.eye(d), (m, 1, 1))
    target = np.array([[2.0], [-1.0], [0.5], [0.25]])
    delta = solve_step(blocks, -target, np.zeros((m, d)), np.zeros(d), None, 0, np.zeros(d), np.ones(d), 0.0)
    # the value at its lower bound whose gradient points outward is frozen
    assert np.allclose(delta, [[2.0], [0.0], [0.5], [0.25]])

    # with two fixed frames at 1.0 before, strong smoothing pulls free frames toward 1.0
    k = second_difference_matrix(m + 2, np.arange(1, m + 1))
    state = np.concatenate([np.ones((2, d)), np.zeros((m, d))])
    smooth = solve_step(blocks * 1e-6, np.zeros((m, d)), state, np.full(d, 10.0), k, 2, np.full(d, -np.inf), np.full(d, np.inf), 0.0)
    assert np.allclose(smooth, 1.0, atol=1e-3)


def test_rigid_initialisation_recovers_a_known_pose():
    rng = np.random.default_rng(1)
    model = rng.normal(scale=0.05, size=(60, 3))
    root = np.array([0.0, -0.02, -0.08])
    rotation = Rotation.from_euler("xyz", [10, -25, 5], degrees=True)
    posed = rotation.apply(model - root) + root
    camera = np.array([[np.log(1500.0), 300.0, 200.0, 40.0]], np.float32)
    import torch

    image = project(torch.tensor(posed[None], dtype=torch.float32), torch.tensor(camera)).numpy()
    rot, cam = initial_rigid(model, root, image.astype(np.float64), np.arange(60))
    assert np.allclose(Rotation.from_rotvec(rot[0]).as_matrix(), rotation.as_matrix(), atol=1e-4)
    assert cam[0, 0] == pytest.approx(np.log(1500.0), abs=1e-4)
    assert np.allclose(cam[0, 1:3], [300.0, 200.0], atol=0.05)
