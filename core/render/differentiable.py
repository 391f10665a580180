"""Differentiable texture-warp rendering in torch, for training losses (photometric, emotion from
the render).

A mesh whose vertices sit at ``points`` (crop pixels) is drawn with the colours of a *texture*
image where the same vertices sat at ``uv`` (for an actor: the reference frame's crop and its
fitted vertices), i.e. each covered pixel shows the texture at the point with the same barycentric
coordinates in the corresponding texture triangle. Visibility (which triangle covers which pixel)
comes from the project's NumPy rasteriser (core/render/rasterizer.py) and is treated as constant;
the barycentric coordinates are recomputed in torch from ``points``, so the rendered colours are
differentiable with respect to the geometry inside triangles (as in rasterisers without
anti-aliasing: silhouettes carry no gradient). Pixel centres follow the rasteriser's convention:
pixel (row r, column c) is the point (x = c, y = r).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.render.rasterizer import rasterize


@dataclass(frozen=True)
class Coverage:
    """Covered pixels of B renders of side H x W: batch K int64, pixel K int64 (row * W + col),
    triangle K int64 (index into faces)."""

    batch: torch.Tensor
    pixel: torch.Tensor
    triangle: torch.Tensor
    size: tuple[int, int]

    def to(self, device: str | torch.device) -> Coverage:
        return Coverage(self.batch.to(device), self.pixel.to(device), self.triangle.to(device), self.size)


def coverage(points: np.ndarray, faces: np.ndarray, size: tuple[int, int], cull_backfaces: bool = True) -> Coverage:
    """Visible triangle per pixel of each of B meshes. points: B x V x 3 (x, y pixels, z depth,
    smaller = nearer). faces: F x 3 int64. size: (H, W)."""
    batch, pixel, triangle = [], [], []
    for b, pts in enumerate(np.asarray(points, np.float64)):
        frags = rasterize(pts, faces, size, cull_backfaces=cull_backfaces)
        covered = np.flatnonzero(frags.triangle >= 0)
        batch.append(np.full(len(covered), b, np.int64))
        pixel.append(covered)
        triangle.append(frags.triangle.reshape(-1)[covered].astype(np.int64))
    cat = (lambda parts: torch.from_numpy(np.concatenate(parts)) if parts else torch.zeros(0, dtype=torch.long))
    return Coverage(cat(batch), cat(pixel), cat(triangle), (int(size[0]), int(size[1])))


def barycentric(points: torch.Tensor, faces: torch.Tensor, cov: Coverage) -> torch.Tensor:
    """K x 3 barycentric coordinates of the covered pixel centres in their triangles, from
    ``points`` B x V x 2 (differentiable)."""
    h, w = cov.size
    corners = faces[cov.triangle]  # K x 3
    a, b, c = (points[cov.batch, corners[:, k], :2] for k in range(3))
    x = (cov.pixel % w).to(points.dtype)
    y = torch.div(cov.pixel, w, rounding_mode="floor").to(points.dtype)
    p = torch.stack([x, y], dim=1)

    def cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]

    area = cross(b - a, c - a)
    area = torch.where(area.abs() < 1e-12, torch.full_like(area, 1e-12), area)
    l1 = cross(p - a, c - a) / area
    l2 = cross(b - a, p - a) / area
    return torch.stack([1 - l1 - l2, l1, l2], dim=1)


def texture_warp(points: torch.Tensor, uv: torch.Tensor, faces: torch.Tensor, texture: torch.Tensor,
                 cov: Coverage, background: torch.Tensor | None = None,
                 shade: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Render B meshes: points B x V x 2 (render pixels, differentiable), uv B x V x 2 (texture
    pixels), faces F x 3, texture B x C x Ht x Wt, cov from :func:`coverage` on the same points.
    shade: F factors multiplying the colour of each triangle's pixels (None: 1).
    Returns (image B x C x H x W, mask B x 1 x H x W float: 1 where the mesh covers the pixel);
    uncovered pixels show ``background`` (B x C x H x W) or 0."""
    n, channels = texture.shape[:2]
    h, w = cov.size
    th, tw = texture.shape[2:]
    lam = barycentric(points, faces, cov)
    corners = faces[cov.triangle]
    source = sum(lam[:, k, None] * uv[cov.batch, corners[:, k]] for k in range(3))  # K x 2 texture px
    grid_values = torch.stack([source[:, 0] / max(tw - 1, 1) * 2 - 1, source[:, 1] / max(th - 1, 1) * 2 - 1], dim=1)
    flat = cov.batch * (h * w) + cov.pixel
    grid = torch.zeros(n * h * w, 2, dtype=points.dtype, device=points.device).index_put((flat,), grid_values)
    sampled = F.grid_sample(texture, grid.view(n, h, w, 2), mode="bilinear", padding_mode="border", align_corners=True)
    empty = torch.zeros(n * h * w, dtype=points.dtype, device=points.device)
    mask = empty.index_put((flat,), torch.ones_like(flat, dtype=points.dtype)).view(n, 1, h, w)
    if shade is not None:
        sampled = sampled * empty.index_put((flat,), shade[cov.triangle].to(points.dtype)).view(n, 1, h, w)
    base = background if background is not None else torch.zeros_like(sampled)
    return mask * sampled + (1 - mask) * base, mask
