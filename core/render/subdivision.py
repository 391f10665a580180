"""Loop subdivision of a fixed triangle mesh, as a constant linear map, evaluated at the coarse
mesh's barycentric coordinates.

A coarse mesh (here the 478-vertex face) is too faceted to shade: its interpolated normals bend at
every edge. Loop's scheme (Loop 1987; boundary edges and vertices by the cubic B-spline rules, so
the holes of the eyes and mouth keep their outline) refines it ``levels`` times. Every refined
vertex is a fixed affine combination of the coarse vertices, so the refinement is built once for
the topology as a sparse matrix and a frame costs one sparse product::

    sub = LoopSubdivision(faces, num_vertices, levels=2)
    fine = sub.matrix @ vertices                        # V' x 3, for any V x 3 vertices
    normals = vertex_normals(fine, sub.faces)           # V' x 3

The refined mesh is parametrised by the coarse one: each coarse triangle becomes a regular grid of
``4 ** levels`` triangles in its own barycentric coordinates. :meth:`LoopSubdivision.locate` turns
(coarse triangle, coarse barycentrics) from a rasteriser into (three refined vertices, weights),
so a renderer that rasterises the coarse mesh (as :mod:`core.render.reconstruction` does, with its
texture coordinates) can shade with the refined surface's normals at the same surface point,
without rasterising the refined mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


class LoopSubdivision:
    """Loop subdivision of an F x 3 triangle mesh over ``num_vertices`` vertices, ``levels`` times.

    matrix: V' x V sparse (CSR, float64, rows sum to 1), refined vertices from coarse ones; the
    first V refined vertices are the coarse ones' new positions.
    faces: F * 4**levels x 3 int64 refined triangles, wound like their coarse triangle.
    incidence: V' x F' sparse, 1 where a refined vertex is a corner of a refined triangle.
    grid: F x (n+1) x (n+1) int64 (n = 2**levels), the refined vertex at coarse barycentrics
    (i/n, j/n, 1 - (i+j)/n) of each coarse triangle (corners 0, 1, 2); -1 where i + j > n.
    Coarse vertices that no triangle uses are carried along unchanged.
    """

    def __init__(self, faces: np.ndarray, num_vertices: int, levels: int = 2) -> None:
        faces = np.asarray(faces, np.int64).reshape(-1, 3)
        if levels < 0:
            raise ValueError(f"levels must be >= 0, got {levels}")
        self.levels = int(levels)
        n = 1 << self.levels
        matrix = sp.identity(num_vertices, format="csr")
        # grid of the current mesh's vertex ids per coarse triangle, at the current resolution
        grid = np.full((len(faces), 2, 2), -1, np.int64)
        grid[:, 1, 0], grid[:, 0, 1], grid[:, 0, 0] = faces[:, 0], faces[:, 1], faces[:, 2]
        current = faces
        for _ in range(self.levels):
            step, edges = _loop_step(current, matrix.shape[0])
            matrix = (step @ matrix).tocsr()
            grid = _refine_grid(grid, edges)
            current = _grid_faces(grid)
        self.matrix = matrix
        self.grid = grid
        self.faces = current
        count = matrix.shape[0]
        corners = (current.reshape(-1), np.repeat(np.arange(len(current)), 3))
        self.incidence = sp.csr_matrix((np.ones(current.size), corners), shape=(count, len(current)))
        self._n = n

    @property
    def num_vertices(self) -> int:
        return int(self.matrix.shape[0])

    def locate(self, triangle: np.ndarray, barycentric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Refined-mesh interpolation at coarse surface points.

        triangle: K int coarse triangle indices. barycentric: K x 3 weights of its corners.
        Returns (K x 3 int64 refined vertex ids, K x 3 float32 weights summing to 1): the refined
        triangle of the regular grid that contains the point, and the point's barycentrics in it."""
        n = self._n
        b = np.asarray(barycentric, np.float64)
        x = np.clip(b[:, 0], 0.0, 1.0) * n
        y = np.clip(b[:, 1], 0.0, 1.0) * n
        i = np.minimum(np.floor(x), n - 1).astype(np.int64)
        j = np.minimum(np.floor(y), n - 1 - i).clip(0).astype(np.int64)
        fx, fy = x - i, y - j
        upper = (fx + fy > 1.0) & (i + j < n - 1)  # the cell's second triangle exists off the diagonal
        t = np.asarray(triangle, np.int64)
        g = self.grid
        ids = np.stack([g[t, i, j], g[t, i + 1, j], g[t, i, j + 1]], axis=1)
        w0 = np.where(upper, fx + fy - 1.0, 1.0 - fx - fy)
        w1 = np.where(upper, 1.0 - fy, fx)
        w2 = np.where(upper, 1.0 - fx, fy)
        up = np.nonzero(upper)[0]
        ids[up, 0] = g[t[up], i[up] + 1, j[up] + 1]
        # points a hair outside their cell (rounding, the clamps at the far edges) are pulled in
        weights = np.clip(np.stack([w0, w1, w2], axis=1), 0.0, 1.0)
        weights /= np.maximum(weights[:, 0] + weights[:, 1] + weights[:, 2], 1e-12)[:, None]
        return ids, weights.astype(np.float32)


@dataclass(frozen=True)
class _EdgeIndex:
    """The refined-vertex id of each edge of a mesh over ``num_vertices`` vertices: edge (low, high)
    has key ``low * num_vertices + high``; ``keys`` are the sorted keys of every edge and the edge
    whose key is ``keys[e]`` gets vertex ``num_vertices + e``."""

    keys: np.ndarray
    num_vertices: int

    def ids(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The new vertex ids of edges (a, b), in either order (arrays of one shape)."""
        low, high = np.minimum(a, b), np.maximum(a, b)
        return self.num_vertices + np.searchsorted(self.keys, low * self.num_vertices + high)


def _loop_step(faces: np.ndarray, num_vertices: int) -> tuple[sp.csr_matrix, _EdgeIndex]:
    """One Loop step: the (V + E) x V matrix (old vertices repositioned, then one new vertex per
    edge, in edge-key order) and the index of each edge's new vertex."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    opposite = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]])
    keys, first, inverse, count = np.unique(edges[:, 0] * num_vertices + edges[:, 1], return_index=True,
                                            return_inverse=True, return_counts=True)
    a, b = edges[first, 0], edges[first, 1]
    num_edges = len(keys)
    boundary = count == 1
    # even (old) vertices: the boundary curve's cubic B-spline rule where a vertex has two boundary
    # edges; kept where two holes touch (a crease corner: more boundary edges); else Loop's ring rule
    ends = np.concatenate([a, b])
    others = np.concatenate([b, a])
    on_boundary = np.concatenate([boundary, boundary])
    valence = np.bincount(ends, minlength=num_vertices)
    boundary_valence = np.bincount(ends[on_boundary], minlength=num_vertices)
    ring_weight = np.zeros(num_vertices)
    centre = np.ones(num_vertices)
    for k in np.unique(valence[valence > 0]):
        beta = (0.625 - (0.375 + 0.25 * np.cos(2 * np.pi / k)) ** 2) / k
        ring_weight[valence == k] = beta
        centre[valence == k] = 1.0 - sum([beta] * int(k))  # the sum as a ring's weights add up
    ring_weight[boundary_valence > 0] = 0.125
    centre[boundary_valence == 2] = 0.75
    crease = (boundary_valence > 0) & (boundary_valence != 2)
    ring_weight[crease], centre[crease] = 0.0, 1.0
    # a boundary vertex takes only its boundary neighbours; an interior one all of them
    use = np.where(boundary_valence[ends] > 0, on_boundary, True) & ~crease[ends]
    rows = [np.arange(num_vertices), ends[use]]
    cols = [np.arange(num_vertices), others[use]]
    vals = [centre, ring_weight[ends[use]]]
    # odd (edge) vertices: the midpoint on a boundary (or non-manifold) edge, else 3/8 of each end
    # and 1/8 of the two opposite corners
    row = num_vertices + np.arange(num_edges)
    interior = count == 2
    order = np.argsort(inverse, kind="stable")  # each edge's occurrences together, in face order
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    c, d = opposite[order[starts]], opposite[order[np.minimum(starts + 1, len(order) - 1)]]
    end_weight = np.where(interior, 0.375, 0.5)
    rows += [row, row, row[interior], row[interior]]
    cols += [a, b, c[interior], d[interior]]
    vals += [end_weight, end_weight, np.full(interior.sum(), 0.125), np.full(interior.sum(), 0.125)]
    step = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(num_vertices + num_edges, num_vertices))
    step.sum_duplicates()
    return step, _EdgeIndex(keys, num_vertices)


def _refine_grid(grid: np.ndarray, edges: _EdgeIndex) -> np.ndarray:
    """F x (n+1) x (n+1) vertex grid -> F x (2n+1) x (2n+1): old vertices at even positions, edge
    vertices between the grid neighbours of the current triangles."""
    n = grid.shape[1] - 1
    out = np.full((len(grid), 2 * n + 1, 2 * n + 1), -1, np.int64)
    out[:, ::2, ::2] = grid
    for i in range(2 * n + 1):
        for j in range(2 * n + 1 - i):
            if i % 2 == 0 and j % 2 == 0:
                continue
            # two of (i, j, 2n - i - j) are odd: the point halves the old grid edge between the
            # two even neighbours along those coordinates
            if i % 2 and j % 2:
                p, q = ((i - 1) // 2, (j + 1) // 2), ((i + 1) // 2, (j - 1) // 2)
            elif i % 2:
                p, q = ((i - 1) // 2, j // 2), ((i + 1) // 2, j // 2)
            else:
                p, q = (i // 2, (j - 1) // 2), (i // 2, (j + 1) // 2)
            out[:, i, j] = edges.ids(grid[:, p[0], p[1]], grid[:, q[0], q[1]])
    return out


def _grid_faces(grid: np.ndarray) -> np.ndarray:
    """The triangles of every coarse triangle's vertex grid, wound like the coarse triangle
    (corner order (1,0), (0,1), (0,0) of the grid)."""
    n = grid.shape[1] - 1
    tris = []
    for i in range(n):
        for j in range(n - i):
            # lower cell triangle, same orientation as (i+1, j), (i, j+1), (i, j)
            tris.append(np.stack([grid[:, i + 1, j], grid[:, i, j + 1], grid[:, i, j]], axis=1))
            if i + j < n - 1:
                tris.append(np.stack([grid[:, i + 1, j], grid[:, i + 1, j + 1], grid[:, i, j + 1]], axis=1))
    return np.concatenate(tris)
