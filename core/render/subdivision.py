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
            step, edge_ids = _loop_step(current, matrix.shape[0])
            matrix = (step @ matrix).tocsr()
            grid = _refine_grid(grid, edge_ids)
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


def _loop_step(faces: np.ndarray, num_vertices: int) -> tuple[sp.csr_matrix, dict]:
    """One Loop step: the (V + E) x V matrix (old vertices repositioned, then one new vertex per
    edge) and a map from each edge (low, high vertex id) to its new vertex's id."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    opposite = np.concatenate([faces[:, 2], faces[:, 0], faces[:, 1]])
    unique, inverse, count = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    boundary_edge = count == 1
    rows, cols, vals = [], [], []
    # even (old) vertices
    neighbours = [set() for _ in range(num_vertices)]
    boundary_neighbours = [set() for _ in range(num_vertices)]
    for (a, b), on_boundary in zip(unique.tolist(), boundary_edge.tolist()):
        neighbours[a].add(b)
        neighbours[b].add(a)
        if on_boundary:
            boundary_neighbours[a].add(b)
            boundary_neighbours[b].add(a)
    for v in range(num_vertices):
        ring = sorted(boundary_neighbours[v] or neighbours[v])
        if boundary_neighbours[v] and len(ring) != 2:  # where two holes touch: keep it (a crease corner)
            ring, weights = [], []
        elif boundary_neighbours[v]:  # the boundary curve's cubic B-spline rule
            weights = [0.125, 0.125]
        elif ring:
            k = len(ring)
            beta = (0.625 - (0.375 + 0.25 * np.cos(2 * np.pi / k)) ** 2) / k
            weights = [beta] * k
        else:
            weights = []
        rows += [v] * (len(ring) + 1)
        cols += [v, *ring]
        vals += [1.0 - sum(weights), *weights]
    # odd (edge) vertices
    opposites = [[] for _ in range(len(unique))]
    for e, o in zip(inverse.tolist(), opposite.tolist()):
        opposites[e].append(o)
    for e, (a, b) in enumerate(unique.tolist()):
        row = num_vertices + e
        if boundary_edge[e] or len(opposites[e]) != 2:
            rows += [row, row]
            cols += [a, b]
            vals += [0.5, 0.5]
        else:
            c, d = opposites[e]
            rows += [row] * 4
            cols += [a, b, c, d]
            vals += [0.375, 0.375, 0.125, 0.125]
    step = sp.csr_matrix((vals, (rows, cols)), shape=(num_vertices + len(unique), num_vertices))
    step.sum_duplicates()
    edge_ids = {(int(a), int(b)): num_vertices + e for e, (a, b) in enumerate(unique.tolist())}
    return step, edge_ids


def _refine_grid(grid: np.ndarray, edge_ids: dict) -> np.ndarray:
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
            a, b = grid[:, p[0], p[1]], grid[:, q[0], q[1]]
            low, high = np.minimum(a, b), np.maximum(a, b)
            out[:, i, j] = [edge_ids[(int(x), int(y))] for x, y in zip(low, high)]
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
