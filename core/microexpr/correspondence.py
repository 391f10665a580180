"""Region-based pixel-vertex correspondence: which image pixels belong to which mesh vertex and region.

The mesh is split into regions (:func:`mesh_regions`: farthest-point seeds on the template, every
vertex and triangle to its nearest seed). A projected triangle covers the pixels whose centres lie
inside it (:func:`pixel_correspondence`, exact, through the z-buffer of core/render/rasterizer.py,
so hidden triangles own no pixel). The refiner does not visit every pixel: it reads the optical flow
at a fixed number of barycentric points per visible triangle (:class:`SampleSet`), which covers each
triangle's pixels evenly at a cost of F x n samples, independent of the image size, and aggregates
the samples per vertex (barycentric weights) and per region (means).

Shapes: V vertices, F triangles, K samples, R regions, B frames; image points in pixels (x right,
y down), the rasteriser's convention (pixel (row r, column c) has its centre at x = c, y = r).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.render.rasterizer import rasterize

# Barycentric sample patterns: n points inside a triangle, spread evenly, weights summing to 1.
BARYCENTRIC_PATTERNS: dict[int, np.ndarray] = {
    1: np.array([[1 / 3, 1 / 3, 1 / 3]]),
    3: np.array([[2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3]]),
    4: np.array([[1 / 3, 1 / 3, 1 / 3], [3 / 5, 1 / 5, 1 / 5], [1 / 5, 3 / 5, 1 / 5], [1 / 5, 1 / 5, 3 / 5]]),
    6: np.array([
        [2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3],
        [1 / 6, 5 / 12, 5 / 12], [5 / 12, 1 / 6, 5 / 12], [5 / 12, 5 / 12, 1 / 6],
    ]),
}


@dataclass(frozen=True)
class MeshRegions:
    """A partition of the mesh. vertex_region: V int64, triangle_region: F int64, values in
    [0, count); seeds: count vertex indices the regions grew from."""

    vertex_region: np.ndarray
    triangle_region: np.ndarray
    seeds: np.ndarray

    @property
    def count(self) -> int:
        return len(self.seeds)


def mesh_regions(vertices: np.ndarray, faces: np.ndarray, count: int) -> MeshRegions:
    """Split a mesh into ``count`` compact regions, deterministically.

    vertices: V x 3 (the template; any unit), faces: F x 3. Seeds by farthest-point sampling from
    the vertex nearest the centroid; each vertex joins its nearest seed, each triangle the seed
    nearest its centroid."""
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    count = int(min(count, len(vertices)))
    seeds = [int(np.argmin(np.linalg.norm(vertices - vertices.mean(axis=0), axis=1)))]
    distance = np.linalg.norm(vertices - vertices[seeds[0]], axis=1)
    for _ in range(count - 1):
        seeds.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(vertices - vertices[seeds[-1]], axis=1))
    seed_points = vertices[seeds]

    def nearest(points: np.ndarray) -> np.ndarray:
        return np.argmin(((points[:, None, :] - seed_points[None]) ** 2).sum(-1), axis=1).astype(np.int64)

    return MeshRegions(nearest(vertices), nearest(vertices[faces].mean(axis=1)), np.asarray(seeds, np.int64))


@dataclass(frozen=True)
class SampleSet:
    """K flow samples on a mesh: sample k is the point with weights barycentric[k] on triangle
    triangle[k] (of ``faces``), in region region[k]."""

    faces: np.ndarray
    triangle: np.ndarray
    barycentric: np.ndarray
    region: np.ndarray
    num_regions: int
    _matrices: dict[int, torch.Tensor] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.triangle)

    def corners(self) -> np.ndarray:
        """K x 3 vertex indices of each sample's triangle."""
        return self.faces[self.triangle]

    def points(self, vertices: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Sample positions. vertices: B x V x D (NumPy or torch) -> B x K x D."""
        corners = self.corners()
        if isinstance(vertices, torch.Tensor):
            idx = torch.as_tensor(corners, device=vertices.device)
            w = torch.as_tensor(self.barycentric, dtype=vertices.dtype, device=vertices.device)
            return (vertices[:, idx] * w[None, :, :, None]).sum(dim=2)
        return (vertices[:, corners] * self.barycentric[None, :, :, None]).sum(axis=2)

    def matrix(self, num_vertices: int) -> torch.Tensor:
        """K x V sparse barycentric matrix: ``apply_matrix(matrix, vertices)`` equals
        ``points(vertices)`` but is much faster for many frames, with gradients. Built once per
        vertex count and kept (the set is immutable; do not change the matrix in place)."""
        matrix = self._matrices.get(num_vertices)
        if matrix is None:
            rows = np.repeat(np.arange(len(self)), 3)
            index = torch.as_tensor(np.stack([rows, self.corners().reshape(-1)]))
            values = torch.as_tensor(self.barycentric.reshape(-1), dtype=torch.float32)
            matrix = torch.sparse_coo_tensor(index, values, (len(self), num_vertices), check_invariants=False).coalesce()
            self._matrices[num_vertices] = matrix
        return matrix

    def subset(self, keep: np.ndarray) -> SampleSet:
        return SampleSet(self.faces, self.triangle[keep], self.barycentric[keep], self.region[keep], self.num_regions)


def apply_matrix(matrix: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """K x V sparse matrix (SampleSet.matrix), B x V x D vertices -> B x K x D points."""
    batch, num_vertices, dims = vertices.shape
    flat = vertices.permute(1, 0, 2).reshape(num_vertices, batch * dims)
    return torch.sparse.mm(matrix, flat).reshape(-1, batch, dims).permute(1, 0, 2)


def sample_set(
    faces: np.ndarray, regions: MeshRegions, triangles: np.ndarray, per_triangle: int, max_samples: int | None = None
) -> SampleSet:
    """``per_triangle`` samples (a key of BARYCENTRIC_PATTERNS) on each of ``triangles`` (indices
    into faces); with more than ``max_samples`` samples, an even subset of the triangles is used."""
    if per_triangle not in BARYCENTRIC_PATTERNS:
        raise ValueError(f"samples_per_triangle must be one of {sorted(BARYCENTRIC_PATTERNS)}, got {per_triangle}")
    triangles = np.asarray(triangles, np.int64)
    if max_samples is not None and len(triangles) * per_triangle > max_samples:
        keep = np.linspace(0, len(triangles) - 1, max(1, max_samples // per_triangle)).round().astype(np.int64)
        triangles = triangles[np.unique(keep)]
    pattern = BARYCENTRIC_PATTERNS[per_triangle]
    tri = np.repeat(triangles, len(pattern))
    bary = np.tile(pattern, (len(triangles), 1)).astype(np.float32)
    return SampleSet(np.asarray(faces, np.int64), tri, bary, regions.triangle_region[tri], regions.count)


def front_facing(vertices_image: np.ndarray, faces: np.ndarray, min_cosine: float = 0.0) -> np.ndarray:
    """Triangles that face the camera. vertices_image: B x V x 3 image space (x right, y down, z
    away from the camera; core.fit.camera.project), faces: F x 3 wound outward -> B x F bool where
    the cosine between the triangle's normal and the direction to the camera exceeds min_cosine."""
    a, b, c = (vertices_image[:, faces[:, i]] for i in range(3))
    normal = np.cross(b - a, c - a)
    length = np.linalg.norm(normal, axis=-1)
    return -normal[..., 2] > min_cosine * np.maximum(length, 1e-12)


@dataclass(frozen=True)
class PixelCorrespondence:
    """The pixels a projected mesh covers: P pixels at rows, cols (int64), each with its visible
    triangle (index into faces), the barycentric weights of its centre (P x 3) and its region."""

    rows: np.ndarray
    cols: np.ndarray
    triangle: np.ndarray
    barycentric: np.ndarray
    region: np.ndarray

    def pixels_of_triangle(self, triangle: int) -> set[tuple[int, int]]:
        keep = self.triangle == triangle
        return set(zip(self.rows[keep].tolist(), self.cols[keep].tolist()))


def pixel_correspondence(
    vertices_px: np.ndarray, faces: np.ndarray, size: tuple[int, int], triangle_region: np.ndarray | None = None
) -> PixelCorrespondence:
    """Every pixel of an H x W image covered by the projected mesh, with its visible triangle.

    vertices_px: V x 3 (x, y pixels, z depth with smaller = nearer), faces: F x 3, size: (H, W).
    Back faces are culled and the nearest triangle wins (core/render/rasterizer.py)."""
    fragments = rasterize(vertices_px, faces, size, cull_backfaces=True)
    rows, cols = np.nonzero(fragments.mask)
    triangle = fragments.triangle[rows, cols].astype(np.int64)
    region = triangle_region[triangle] if triangle_region is not None else np.zeros_like(triangle)
    return PixelCorrespondence(rows, cols, triangle, fragments.barycentric[rows, cols], region)


def visible_samples(samples: SampleSet, vertices_px: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """K bool: samples whose pixel shows their own triangle or a triangle sharing a vertex with it
    (edge pixels), i.e. not hidden by another part of the mesh and inside the image.
    vertices_px: V x 3 image space of one frame; size (H, W)."""
    fragments = rasterize(vertices_px, samples.faces, size, cull_backfaces=True)
    points = samples.points(vertices_px[None, :, :2])[0]
    col = np.round(points[:, 0]).astype(np.int64)
    row = np.round(points[:, 1]).astype(np.int64)
    inside = (col >= 0) & (row >= 0) & (col < size[1]) & (row < size[0])
    seen = np.full(len(samples), -1, np.int64)
    seen[inside] = fragments.triangle[row[inside], col[inside]]
    own = samples.corners()
    other = samples.faces[np.maximum(seen, 0)]
    shares = (own[:, :, None] == other[:, None, :]).any(axis=(1, 2))
    return inside & (seen >= 0) & shares


def aggregate(values: torch.Tensor, index: torch.Tensor, count: int, weights: torch.Tensor) -> torch.Tensor:
    """Weighted means of samples per group. values: B x K x C, index: K int64 in [0, count),
    weights: B x K (>= 0) -> B x count x C (0 for a group without weight)."""
    batch, _, channels = values.shape
    total = values.new_zeros(batch, count, channels).index_add_(1, index, values * weights[..., None])
    norm = weights.new_zeros(batch, count).index_add_(1, index, weights)
    return total / norm.clamp_min(1e-8)[..., None]


def aggregate_to_vertices(
    values: torch.Tensor, samples: SampleSet, num_vertices: int, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-vertex weighted means of sample values, each sample counting for its triangle's three
    vertices with its barycentric weights. values: B x K x C, weights: B x K -> (B x V x C means,
    B x V total weight; 0 where no sample reaches a vertex). One product with the transposed
    barycentric matrix for all frames and channels (half the time of a scatter-add of B x 3K x C)."""
    batch, count, channels = values.shape
    weighted = torch.cat([values * weights[..., None], weights[..., None]], dim=2)  # B x K x (C + 1)
    spread = samples.matrix(num_vertices).to(values.device, values.dtype).t()  # V x K
    flat = weighted.permute(1, 0, 2).reshape(count, batch * (channels + 1))
    sums = torch.sparse.mm(spread, flat).reshape(num_vertices, batch, channels + 1).permute(1, 0, 2)
    norm = sums[..., channels]
    return sums[..., :channels] / norm.clamp_min(1e-8)[..., None], norm
