"""The fitting building blocks on cases with known answers."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.fit.camera import project
from core.fit.rigid import initial_rigid
from core.fit.solver import AccelerationPenalty, Coupling, solve_step
from core.fit.temporal import segments, valid_centres


def test_segments_and_valid_centres_stop_at_gaps():
    has_face = np.array([1, 1, 1, 0, 1, 1, 1, 1, 0, 1], bool)
    assert segments(has_face) == [(0, 3), (4, 8), (9, 10)]
    ids = np.array([0, 0, 0, -1, 1, 1, 1, 1, -1, 2])
    assert valid_centres(ids).tolist() == [1, 5, 6]


def second_difference_rows(num_frames: int, centres: np.ndarray) -> np.ndarray:
    """The dense C x num_frames D2 of the second differences at ``centres``."""
    d2 = np.zeros((len(centres), num_frames))
    for row, c in enumerate(centres):
        d2[row, c - 1 : c + 2] = [1, -2, 1]
    return d2


def test_solver_reaches_the_minimum_of_a_known_quadratic():
    # E = 1/2 sum |x_t - target_t|^2 + lambda/2 |D2 x|^2, one Newton step from 0
    rng = np.random.default_rng(0)
    m, d, lam = 6, 2, 0.7
    target = rng.normal(size=(m, d))
    d2 = second_difference_rows(m, np.arange(1, m - 1))
    blocks = np.tile(np.eye(d), (m, 1, 1))
    coupling = Coupling(m, np.arange(1, m - 1), np.full((m - 2, d), lam))
    delta = solve_step(blocks, -target, np.zeros((m, d)), coupling, 0, np.full(d, -np.inf), np.full(d, np.inf), 0.0)
    expected = np.linalg.solve(np.eye(m) + lam * d2.T @ d2, target)
    assert np.allclose(delta, expected, atol=1e-9)


def test_solver_respects_bounds_and_fixed_anchor_frames():
    m, d = 4, 1
    blocks = np.tile(np.eye(d), (m, 1, 1))
    target = np.array([[2.0], [-1.0], [0.5], [0.25]])
    delta = solve_step(blocks, -target, np.zeros((m, d)), None, 0, np.zeros(d), np.ones(d), 0.0)
    # the value at its lower bound whose gradient points outward is frozen
    assert np.allclose(delta, [[2.0], [0.0], [0.5], [0.25]])

    # with two fixed frames at 1.0 before, strong smoothing pulls free frames toward 1.0
    coupling = Coupling(m + 2, np.arange(1, m + 1), np.full((m, d), 10.0))
    state = np.concatenate([np.ones((2, d)), np.zeros((m, d))])
    smooth = solve_step(blocks * 1e-6, np.zeros((m, d)), state, coupling, 2, np.full(d, -np.inf), np.full(d, np.inf), 0.0)
    assert np.allclose(smooth, 1.0, atol=1e-3)


def test_a_coupling_is_the_weighted_second_difference_quadratic_per_dimension():
    rng = np.random.default_rng(2)
    n, d = 9, 3
    centres = np.array([1, 2, 3, 6, 7])  # a gap between frames 4 and 5
    scale = rng.uniform(0.1, 2.0, size=(len(centres), d))
    coupling = Coupling(n, centres, scale)
    d2 = second_difference_rows(n, centres)
    x = rng.normal(size=(n, d))
    main, first, second = coupling.diagonals()
    for k in range(d):
        dense = d2.T @ np.diag(scale[:, k]) @ d2
        assert np.allclose(coupling.half_gradient(x)[:, k], dense @ x[:, k])
        assert np.allclose(main[:, k], np.diagonal(dense))
        assert np.allclose(first[:, k], np.diagonal(dense, 1)) and np.allclose(second[:, k], np.diagonal(dense, 2))
        assert np.allclose(np.diagonal(dense, 3), 0.0)


def test_the_acceleration_penalty_is_huber_and_its_majoriser_touches_it():
    rng = np.random.default_rng(3)
    n = 12
    centres = np.arange(1, n - 1)
    penalty = AccelerationPenalty(n, centres, weights=np.array([0.5, 2.0]), delta=np.array([np.inf, 0.05]))
    x = rng.normal(scale=0.1, size=(n, 2))
    x[6, 1] += 1.0  # accelerations far beyond delta in the second dimension
    a = x[centres - 1] - 2 * x[centres] + x[centres + 1]
    huber = np.where(np.abs(a[:, 1]) <= 0.05, a[:, 1] ** 2, 2 * 0.05 * np.abs(a[:, 1]) - 0.05**2)
    assert penalty.energy(x) == pytest.approx(0.5 * (a[:, 0] ** 2).sum() + 2.0 * huber.sum())
    coupling = penalty.coupling(x)
    assert np.allclose(coupling.scale[:, 0], 0.5)  # the square is its own majoriser
    assert (coupling.scale[:, 1] < 2.0).any() and (coupling.scale[:, 1] <= 2.0).all()

    def quadratic(values):  # the majoriser, with the constant that makes it touch at x
        b = values[centres - 1] - 2 * values[centres] + values[centres + 1]
        a = x[centres - 1] - 2 * x[centres] + x[centres + 1]
        return float((coupling.scale * (b**2 - a**2)).sum()) + penalty.energy(x)

    step = 1e-6
    for i, k in [(5, 1), (6, 1), (7, 0)]:  # it has the penalty's gradient at x (2 x the half gradient)
        e = np.zeros_like(x)
        e[i, k] = step
        numeric = (penalty.energy(x + e) - penalty.energy(x - e)) / (2 * step)
        assert numeric == pytest.approx(2 * coupling.half_gradient(x)[i, k], rel=1e-4, abs=1e-8)
    for _ in range(20):  # ... and lies above the penalty elsewhere
        y = x + rng.normal(scale=0.3, size=x.shape)
        assert quadratic(y) >= penalty.energy(y) - 1e-12


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
