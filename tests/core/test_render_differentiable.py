"""core/render/differentiable.py: texture-warp rendering with gradients through the geometry."""

import numpy as np
import torch

from core.render.differentiable import barycentric, coverage, texture_warp

# two triangles forming a square, counter-clockwise on screen (front-facing)
SQUARE = np.array([[8.0, 8.0, 0.0], [8.0, 40.0, 0.0], [40.0, 40.0, 0.0], [40.0, 8.0, 0.0]])
FACES = np.array([[0, 1, 2], [0, 2, 3]])


def smooth_texture(size=48):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return torch.as_tensor(np.stack([x / size, y / size, 0.5 + 0.5 * np.sin(x / 5.0) * np.cos(y / 7.0)]))[None]


def test_barycentrics_of_pixel_centres_rebuild_them():
    points = torch.as_tensor(SQUARE[None, :, :2], dtype=torch.float32)
    cov = coverage(SQUARE[None], FACES, (48, 48))
    assert len(cov.pixel) == 32 * 32  # the square covers pixel centres 8..39 in x and y, each once
    lam = barycentric(points, torch.as_tensor(FACES), cov)
    corners = torch.as_tensor(FACES)[cov.triangle]
    rebuilt = sum(lam[:, k, None] * points[0, corners[:, k]] for k in range(3))
    expected = torch.stack([cov.pixel % 48, cov.pixel // 48], dim=1).float()
    assert torch.allclose(rebuilt, expected, atol=1e-4)


def test_same_geometry_reproduces_the_texture_and_a_shift_moves_it():
    texture = smooth_texture()
    uv = torch.as_tensor(SQUARE[None, :, :2], dtype=torch.float32)
    cov = coverage(SQUARE[None], FACES, (48, 48))
    image, mask = texture_warp(uv, uv, torch.as_tensor(FACES), texture, cov)
    inside = mask[0, 0] > 0
    assert torch.allclose(image[0][:, inside], texture[0][:, inside], atol=1e-5)
    shifted = SQUARE.copy()
    shifted[:, 0] += 3.0  # the mesh moves 3 px right: pixel x shows texture x - 3
    cov2 = coverage(shifted[None], FACES, (48, 48))
    image2, mask2 = texture_warp(torch.as_tensor(shifted[None, :, :2], dtype=torch.float32), uv, torch.as_tensor(FACES),
                                 texture, cov2)
    rows, cols = torch.nonzero(mask2[0, 0] > 0, as_tuple=True)
    assert torch.allclose(image2[0, 0, rows, cols], (cols.float() - 3) / 48, atol=1e-5)


def test_gradient_matches_finite_differences():
    texture = smooth_texture().double()
    uv = torch.as_tensor(SQUARE[None, :, :2])
    target = texture.roll(2, dims=3)
    bent = uv + torch.tensor([[[1.5, -1.0], [0.5, 0.8], [-1.2, 0.4], [0.9, 1.1]]], dtype=torch.float64)
    points3 = np.concatenate([bent[0].numpy(), np.zeros((4, 1))], axis=1)
    cov = coverage(points3[None], FACES, (48, 48))

    def loss(points):
        image, mask = texture_warp(points, uv, torch.as_tensor(FACES), texture, cov)
        return (((image - target) * mask) ** 2).sum()

    points = bent.clone().requires_grad_(True)
    loss(points).backward()
    step = 1e-4
    for vertex, axis in ((2, 0), (1, 1), (0, 0)):
        plus, minus = bent.clone(), bent.clone()
        plus[0, vertex, axis] += step
        minus[0, vertex, axis] -= step
        numeric = float((loss(plus) - loss(minus)) / (2 * step))
        analytic = float(points.grad[0, vertex, axis])
        assert abs(numeric) > 0.1  # a real slope, not noise
        assert abs(analytic - numeric) < 1e-3 * abs(numeric), (vertex, axis, analytic, numeric)
