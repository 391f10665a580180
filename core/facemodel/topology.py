"""Triangles of MediaPipe's 478-point face mesh, derived from its published tesselation edges.

MediaPipe publishes the mesh as edges (``FACEMESH_TESSELATION``). Its triangles are the 3-cliques
of that edge graph, except a few cliques that span two real triangles: those are recognised by all
three of their edges being shared by three cliques. Each iris (a centre and four rim points) is
closed with a fan of four triangles. Triangles are wound counter-clockwise seen from outside the
head (normals point away from the head centre).
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import numpy as np

from core.observe import landmark_ids as ids


def tesselation_edges() -> set[tuple[int, int]]:
    from core.observe.mediapipe_runtime import import_mediapipe

    import_mediapipe()
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return {tuple(sorted(e)) for e in FACEMESH_TESSELATION}


def triangles_from_edges(edges: set[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """The faces of a triangulated surface given as edges (see module docstring)."""
    neighbours = defaultdict(set)
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    cliques = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    uses = Counter(e for t in cliques for e in itertools.combinations(t, 2))
    return sorted(t for t in cliques if not all(uses[e] >= 3 for e in itertools.combinations(t, 2)))


def iris_fans() -> list[tuple[int, int, int]]:
    fans = []
    for centre, *rim in (ids.RIGHT_IRIS, ids.LEFT_IRIS):
        fans += [(centre, rim[i], rim[(i + 1) % 4]) for i in range(4)]
    return fans


def orient_outward(triangles: np.ndarray, vertices: np.ndarray, head_centre: np.ndarray) -> np.ndarray:
    """Flip triangles whose normal points toward ``head_centre``. vertices: V x 3 (any frame)."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    outward = ((a + b + c) / 3 - head_centre)
    flip = (normals * outward).sum(axis=1) < 0
    out = triangles.copy()
    out[flip] = out[flip][:, [0, 2, 1]]
    return out


def mediapipe_triangles(vertices: np.ndarray, head_centre: np.ndarray) -> np.ndarray:
    """F x 3 int64 triangles of the 478-point mesh, wound outward for the given vertex positions."""
    triangles = np.array(triangles_from_edges(tesselation_edges()) + iris_fans(), dtype=np.int64)
    return orient_outward(triangles, vertices, head_centre)
