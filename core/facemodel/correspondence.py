"""Where MediaPipe's 478 face-mesh points lie on a FLAME-style mesh.

FLAME ships no embedding for all 478 MediaPipe points (its ``mediapipe_landmark_embedding.npz``
covers 105). :func:`register_to_canonical` computes one for all 478: the canonical face
(``resources/canonical_face_478.npy``, OpenCV camera frame, unit = outer-eye-corner distance) is
turned into FLAME's frame (y up, z toward the viewer: a half turn about x), placed on the template
by its nose tip at a typical eye-corner distance, refined by similarity ICP against the template's
surface (see :func:`align_canonical`), and each canonical point is then attached to its closest
point on the surface (triangle + barycentric coordinates).

Limits: the canonical face is a median of observed faces, not the FLAME template's identity. ICP
finds the best similarity transform overall; where the two shapes differ (nose length, lip
thickness, eye shape) each point snaps to the nearest surface point, which is not necessarily the
anatomically corresponding one. On a synthetic test face whose surface passes exactly through the
canonical points the error is nil; after deforming that face non-rigidly by up to 2.5 / 5 / 8 mm
the embedded points sit up to about 2.5 / 6 / 11 mm (median 1 / 2.5 / 4 mm) from their true
positions, i.e. errors are of the order of the shape difference. Points on parts the template
models differently (iris on an eyeball mesh behind the eyelids, inner lips) follow the same rule.
The correspondence is computed once on the neutral template; identity and expression then move the
embedded points with the mesh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from core.observe.headpose import canonical_face, similarity_align

log = logging.getLogger(__name__)

# Canonical (x right, y down, z away from the camera) -> FLAME (x right, y up, z toward the viewer).
CANONICAL_TO_FLAME = np.diag([1.0, -1.0, -1.0])
# Typical adult outer-eye-corner (exocanthion) distance, metres: the initial scale of the ICP.
TYPICAL_EYE_CORNER_DISTANCE_M = 0.09


def closest_points_on_triangles(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (N x 3) of the closest point of triangle (a[i], b[i], c[i]) to
    points[i]; all inputs N x 3. Exact (region tests on the triangle's Voronoi regions); a
    degenerate triangle gives a point on one of its edges or corners."""
    p = np.asarray(points, np.float64)
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1 = (ab * ap).sum(1)
    d2 = (ac * ap).sum(1)
    d3 = (ab * bp).sum(1)
    d4 = (ac * bp).sum(1)
    d5 = (ab * cp).sum(1)
    d6 = (ac * cp).sum(1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.zeros_like(num)
        np.divide(num, den, out=out, where=den != 0)
        return np.clip(out, 0.0, 1.0)

    n = len(p)
    bary = np.zeros((n, 3))
    done = np.zeros(n, bool)

    def assign(mask: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> None:
        take = mask & ~done
        bary[take, 0], bary[take, 1], bary[take, 2] = u[take], v[take], w[take]
        done[take] = True

    one, zero = np.ones(n), np.zeros(n)
    assign((d1 <= 0) & (d2 <= 0), one, zero, zero)  # corner a
    assign((d3 >= 0) & (d4 <= d3), zero, one, zero)  # corner b
    t = ratio(d1, d1 - d3)
    assign((vc <= 0) & (d1 >= 0) & (d3 <= 0), 1 - t, t, zero)  # edge ab
    assign((d6 >= 0) & (d5 <= d6), zero, zero, one)  # corner c
    t = ratio(d2, d2 - d6)
    assign((vb <= 0) & (d2 >= 0) & (d6 <= 0), 1 - t, zero, t)  # edge ac
    t = ratio(d4 - d3, (d4 - d3) + (d5 - d6))
    assign((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), zero, 1 - t, t)  # edge bc
    total = va + vb + vc
    safe = np.where(total != 0, total, 1.0)
    v, w = vb / safe, vc / safe
    assign(np.ones(n, bool), 1 - v - w, v, w)  # interior
    return bary


class MeshSurface:
    """Closest-point queries on a fixed triangle mesh (V x 3 vertices, F x 3 faces).

    Candidate triangles come from a k-d tree on triangle centroids. ``closest(points)`` tests the
    16 nearest centroids' triangles; with ``exact=True`` (the default) it then also tests, for every
    point where a farther triangle could still be closer (its centroid within the best distance
    plus the largest triangle radius), all such triangles, so the result is the true closest point.
    ``exact=False`` keeps the first pass only (right for nearly every point on a well-shaped mesh;
    used inside ICP, where a rare near-miss does not matter)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        self.vertices = np.asarray(vertices, np.float64)
        self.faces = np.asarray(faces, np.int64)
        self.corners = self.vertices[self.faces]  # F x 3 x 3
        centroids = self.corners.mean(axis=1)
        self.radius = float(np.sqrt(((self.corners - centroids[:, None]) ** 2).sum(-1).max()))
        self.tree = cKDTree(centroids)
        normals = np.cross(self.corners[:, 1] - self.corners[:, 0], self.corners[:, 2] - self.corners[:, 0])
        self.normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)

    def _test(
        self, points: np.ndarray, point_index: np.ndarray, face_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        tri = self.corners[face_index]
        bary = closest_points_on_triangles(points[point_index], tri[:, 0], tri[:, 1], tri[:, 2])
        nearest = np.einsum("nk,nkc->nc", bary, tri)
        return bary, ((nearest - points[point_index]) ** 2).sum(1)

    def closest(self, source_points: np.ndarray, *, exact: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(face_index L int64, barycentric L x 3) of each point's closest surface point."""
        points = np.asarray(source_points, np.float64).reshape(-1, 3)
        n, num_faces = len(points), len(self.faces)
        k = min(16, num_faces)
        centroid_distance, guess = self.tree.query(points, k=k)
        centroid_distance = centroid_distance.reshape(n, k)
        guess = guess.reshape(n, k)
        bary, dist2 = self._test(points, np.repeat(np.arange(n), k), guess.ravel())
        dist2 = dist2.reshape(n, k)
        pick = dist2.argmin(axis=1)
        rows = np.arange(n)
        face_index = guess[rows, pick].astype(np.int64)
        barycentric = bary.reshape(n, k, 3)[rows, pick]
        if not exact or k == num_faces:
            return face_index, barycentric
        # A triangle beyond the k-th centroid is at least (that distance - radius) away.
        best = np.sqrt(dist2[rows, pick])
        unsure = np.flatnonzero(centroid_distance[:, -1] - self.radius < best)
        if len(unsure):
            lists = self.tree.query_ball_point(points[unsure], r=best[unsure] + self.radius + 1e-12)
            point_index = np.repeat(unsure, [len(c) for c in lists])
            candidates = np.fromiter((f for c in lists for f in c), np.int64, count=len(point_index))
            bary, dist2 = self._test(points, point_index, candidates)
            order = np.lexsort((candidates, dist2, point_index))
            _, first = np.unique(point_index[order], return_index=True)
            chosen = order[first]
            face_index[point_index[chosen]] = candidates[chosen]
            barycentric[point_index[chosen]] = bary[chosen]
        return face_index, barycentric

    def points(self, face_index: np.ndarray, barycentric: np.ndarray) -> np.ndarray:
        return np.einsum("nk,nkc->nc", barycentric, self.corners[face_index])


def closest_point_embedding(
    target_vertices: np.ndarray, target_faces: np.ndarray, source_points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each source point, its exact closest point on the target mesh.

    target_vertices: V x 3, target_faces: F x 3, source_points: L x 3. Returns (face_index L int64,
    barycentric L x 3 float64). See :class:`MeshSurface` for how candidates are found."""
    return MeshSurface(target_vertices, target_faces).closest(source_points)


def embedded_points(
    vertices: np.ndarray, faces: np.ndarray, face_index: np.ndarray, barycentric: np.ndarray
) -> np.ndarray:
    """L x 3 points given as triangles + barycentric coordinates on a V x 3 mesh."""
    return (np.asarray(vertices, np.float64)[np.asarray(faces)[face_index]] * barycentric[:, :, None]).sum(1)


@dataclass(frozen=True)
class CanonicalRegistration:
    """The canonical face placed on a template: ``points = scale * canonical_flame @ rotation.T +
    translation`` (canonical_flame = canonical face in FLAME axes), and its closest surface points.

    face_index, barycentric: 478 each, the embedding. distance: 478 metres from each placed point to
    the surface. rms: RMS of ``distance`` over the points ICP kept as inliers. iterations: ICP steps."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float
    points: np.ndarray
    face_index: np.ndarray
    barycentric: np.ndarray
    distance: np.ndarray
    rms: float
    iterations: int


def _initial_scale(template: np.ndarray, canonical: np.ndarray) -> float:
    """The typical eye-corner distance, unless the template's width says it is in other units."""
    ratio = np.ptp(template[:, 0]) / max(np.ptp(canonical[:, 0]), 1e-12)
    if 0.5 * TYPICAL_EYE_CORNER_DISTANCE_M < ratio < 2.0 * TYPICAL_EYE_CORNER_DISTANCE_M:
        return TYPICAL_EYE_CORNER_DISTANCE_M
    return float(ratio)


def _point_to_plane_step(
    points: np.ndarray, targets: np.ndarray, normals: np.ndarray, weight_point: float = 0.05
) -> tuple[np.ndarray, np.ndarray, float]:
    """One linearised similarity step: small rotation w, translation t and scale change d about the
    points' centroid c, minimising sum (n . (x' - q))^2 + weight_point^2 |x' - q|^2 for
    x' = x + d (x - c) + w x (x - c) + t (the weak point-to-point term keeps directions the
    planes leave free determined). Returns (rotation, translation, factor): the moved points are
    ``factor * points @ rotation.T + translation``."""
    centre = points.mean(axis=0)
    x = points - centre
    residual = targets - points
    rows = [np.concatenate([np.cross(x, normals), normals, (normals * x).sum(1, keepdims=True)], axis=1)]
    rhs = [(normals * residual).sum(1)]
    for axis in range(3):
        unit = np.zeros(3)
        unit[axis] = 1.0
        rows.append(weight_point * np.concatenate(
            [np.cross(x, unit), np.tile(unit, (len(x), 1)), x[:, axis : axis + 1]], axis=1))
        rhs.append(weight_point * residual[:, axis])
    solution, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)
    rotation = _rotation_matrix(solution[:3])
    factor = 1.0 + float(solution[6])
    translation = centre + solution[3:6] - factor * rotation @ centre
    return rotation, translation, factor


def _rotation_matrix(axis_angle: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(axis_angle))
    if angle < 1e-15:
        return np.eye(3)
    k = axis_angle / angle
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


@dataclass
class _Pose:
    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.translation


def _icp(
    surface: MeshSurface, canonical: np.ndarray, pose: _Pose, steps: int, point_to_plane: bool, tolerance: float
) -> tuple[_Pose, int]:
    """Up to ``steps`` ICP steps from ``pose``; returns the final pose and the steps taken."""
    floor = 1e-4 * pose.scale  # ~0.01 mm: below this every pair is an inlier
    points = pose.apply(canonical)
    step = 0
    for step in range(1, steps + 1):
        face_index, bary = surface.closest(points, exact=False)
        targets = surface.points(face_index, bary)
        distance = np.linalg.norm(targets - points, axis=1)
        inliers = distance <= max(3.0 * np.median(distance), floor)
        if point_to_plane:
            r, t, s = _point_to_plane_step(points[inliers], targets[inliers], surface.normals[face_index[inliers]])
            pose = _Pose(r @ pose.rotation, s * r @ pose.translation + t, pose.scale * s)
        else:
            pose = _Pose(*similarity_align(canonical[inliers], targets[inliers]))
        moved = pose.apply(canonical)
        change = np.abs(moved - points).max()
        points = moved
        if change < tolerance:
            break
    return pose, step


def _fit_score(surface: MeshSurface, points: np.ndarray, cap: float) -> float:
    """Mean distance to the surface, each capped (a robust measure of how well a placement fits)."""
    face_index, bary = surface.closest(points, exact=False)
    return float(np.minimum(np.linalg.norm(surface.points(face_index, bary) - points, axis=1), cap).mean())


START_PITCHES_DEG = (0.0, 12.0, -12.0, 24.0, -24.0)


def align_canonical(
    flame_template: np.ndarray,
    flame_faces: np.ndarray,
    *,
    max_iterations: int = 50,
    tolerance: float = 1e-9,
) -> CanonicalRegistration:
    """Similarity ICP of the canonical face onto a FLAME-frame template (see module docstring).

    Starts: FLAME axes at a typical scale, pitched by each of START_PITCHES_DEG (the canonical
    frame's vertical runs from the eyes to the mouth, which leans against a head's vertical),
    with the most frontal points (nose tips) together; each start gets 8 point-to-point steps and
    the best fit continues. Every step pairs each canonical point with its closest surface point
    and drops pairs farther than 3x the median distance (parts the template lacks or models
    differently). Point-to-point steps solve the least-squares similarity between the pairs (robust
    far from the answer); the following point-to-plane steps converge fast near it. Stops when no
    point moves by more than ``tolerance`` metres or after ``max_iterations`` refinement steps."""
    surface = MeshSurface(flame_template, flame_faces)
    template = surface.vertices
    canonical = canonical_face() @ CANONICAL_TO_FLAME.T
    scale = _initial_scale(template, canonical)
    nose = template[np.argmax(template[:, 2])]
    best: tuple[float, _Pose] | None = None
    iterations = 0
    for pitch in START_PITCHES_DEG:
        rotation = _rotation_matrix(np.array([np.radians(pitch), 0.0, 0.0]))
        turned = canonical @ rotation.T
        start = _Pose(rotation, nose - scale * turned[np.argmax(turned[:, 2])], scale)
        pose, steps = _icp(surface, canonical, start, 8, point_to_plane=False, tolerance=tolerance)
        iterations += steps
        score = _fit_score(surface, pose.apply(canonical), cap=0.1 * pose.scale)
        if best is None or score < best[0]:
            best = (score, pose)
    pose, steps = _icp(surface, canonical, best[1], max_iterations, point_to_plane=True, tolerance=tolerance)
    iterations += steps
    points = pose.apply(canonical)
    face_index, bary = surface.closest(points)
    distance = np.linalg.norm(surface.points(face_index, bary) - points, axis=1)
    inliers = distance <= max(3.0 * np.median(distance), 1e-4 * pose.scale)
    rms = float(np.sqrt((distance[inliers] ** 2).mean()))
    log.debug("canonical face registered in %d ICP steps: scale %.4f m, rms %.2f mm", iterations, pose.scale, rms * 1e3)
    return CanonicalRegistration(
        pose.rotation, pose.translation, float(pose.scale), points, face_index, bary, distance, rms, iterations
    )


def register_to_canonical(flame_template: np.ndarray, flame_faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embedding of all 478 MediaPipe points on a FLAME-frame mesh: (face_index 478 int64,
    barycentric 478 x 3). See :func:`align_canonical` and the module docstring for the limits."""
    registration = align_canonical(flame_template, flame_faces)
    return registration.face_index, registration.barycentric
