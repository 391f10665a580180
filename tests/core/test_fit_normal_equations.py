"""The fitter's fast normal equations (per-frame sums instead of per-landmark Jacobians) against
the products of the full Jacobian, and the banded window solve against a dense one."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from core.facemodel import FaceModel
from core.facemodel.open_model import load_open_model
from core.fit.fitter import FitConfig, Fitter
from core.fit.solver import Coupling, solve_step
from core.take.observations import ObservationArrays
from tests.synthetic_observations import observations_from


@pytest.fixture(scope="module")
def model():
    return FaceModel(load_open_model())


def posed_observations(model, frames: int, seed: int) -> ObservationArrays:
    """Landmarks of random expressions under turned heads, with noise, so that residuals and
    every rigid column are non-trivial; the head turns far enough to weigh the far eye's lids less."""
    rng = np.random.default_rng(seed)
    params = model.zero_params(frames)
    params.expression[:] = torch.tensor(rng.uniform(0, 0.6, size=(frames, model.num_expression)), dtype=torch.float32)
    params.shape[:] = torch.tensor(rng.normal(scale=0.7, size=model.num_shape), dtype=torch.float32)
    params.rotation[:] = torch.tensor(rng.uniform(-0.6, 0.6, size=(frames, 3)), dtype=torch.float32)
    camera = torch.tensor(np.column_stack([np.log(rng.uniform(1500, 3000, frames)), rng.uniform(200, 400, (frames, 2)),
                                           np.zeros(frames)]), dtype=torch.float32)
    return observations_from(model, params, camera, noise_px=2.0, seed=seed)


@pytest.mark.parametrize("eyelid_weight", [8.0, 0.0])
@pytest.mark.parametrize("with_identity", [False, True])
def test_the_fast_normal_equations_equal_the_full_jacobians_products(model, with_identity, eyelid_weight):
    fitter = Fitter(model, FitConfig(eyelid_weight=eyelid_weight))
    observations = posed_observations(model, 6, seed=3)
    state, problem = fitter._prepare(observations, np.arange(6))
    rng = np.random.default_rng(4)
    # move away from the initialisation so that the model's landmarks do not match the image
    state.expression[:] = torch.tensor(rng.uniform(0, 0.5, size=state.expression.shape), dtype=torch.float32)
    state.rotation += torch.tensor(rng.normal(scale=0.1, size=state.rotation.shape), dtype=torch.float32)
    identity = torch.tensor(rng.normal(scale=0.5, size=(1, model.num_shape)), dtype=torch.float32)
    with torch.no_grad():
        residual, output = fitter._residual(state, identity, problem)
        fast_blocks, fast_gradient = fitter._gram_normal_equations(state, problem, output, residual, with_identity)
        blocks, gradient = fitter._explicit_normal_equations(state, identity, problem, output, residual, with_identity)
    assert (problem.eyelid_sqrt is None) == (eyelid_weight == 0.0)
    columns = fitter.dims + (model.num_shape if with_identity else 0)
    assert fast_blocks.shape == blocks.shape == (6, columns, columns)
    # the explicit path builds its Jacobian in float32 (relative rounding about 1e-7); a wrong
    # term in the sums is off by orders of magnitude more
    scale = blocks.abs().amax(dim=(1, 2), keepdim=True)
    assert torch.allclose(fast_blocks / scale, blocks / scale, atol=1e-6)
    assert torch.allclose(fast_gradient, gradient, atol=1e-6 * float(gradient.abs().max()))


def test_the_banded_window_solve_equals_the_dense_solve_with_frozen_entries():
    """One damped, projected step over 7 frames x 5 dimensions with dense per-frame blocks, the
    temporal coupling after two fixed anchor frames, and entries frozen at their bounds."""
    rng = np.random.default_rng(0)
    m, d, fixed = 7, 5, 2
    a = rng.normal(size=(m, d, d))
    blocks = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)
    gradient = rng.normal(size=(m, d))
    state = rng.uniform(0.2, 0.8, size=(fixed + m, d))
    state[fixed + 1, 0], state[fixed + 4, 3] = 0.0, 1.0  # at the lower and upper bound
    gradient[1, 0], gradient[4, 3] = 50.0, -50.0  # pushing outward (beyond any coupling): frozen
    centres = np.arange(1, fixed + m - 1)
    scale = rng.uniform(0.2, 2.0, size=(len(centres), d))  # per centre and dimension (a reweighted penalty)
    lower, upper, damping = np.zeros(d), np.ones(d), 1e-3
    delta = solve_step(blocks, gradient, state, Coupling(fixed + m, centres, scale), fixed, lower, upper, damping)

    d2 = np.zeros((len(centres), fixed + m))
    for row, c in enumerate(centres):
        d2[row, c - 1 : c + 2] = [1, -2, 1]
    dense = sp.block_diag(list(blocks)).toarray()
    dense[np.diag_indices_from(dense)] *= 1 + damping
    dense[np.diag_indices_from(dense)] += damping * 1e-9
    coupling_gradient = np.zeros((fixed + m, d))
    for k in range(d):  # K_d = D2^T diag(scale_d) D2 on dimension d of every frame
        k_d = d2.T @ np.diag(scale[:, k]) @ d2
        dense[k::d, k::d] += k_d[fixed:, fixed:]
        coupling_gradient[:, k] = k_d @ state[:, k]
    rhs = -(gradient + coupling_gradient[fixed:]).ravel()
    free = np.ones(m * d, bool)
    free[[1 * d + 0, 4 * d + 3]] = False
    expected = np.zeros(m * d)
    expected[free] = np.linalg.solve(dense[np.ix_(free, free)], rhs[free])
    assert np.allclose(delta.ravel(), expected, atol=1e-10)
    assert delta[1, 0] == delta[4, 3] == 0.0
