"""How the open face model is built (used only by ``scripts/build_open_model.py``; runtime
reads the built file with core.facemodel.open_model.load_open_model): from
``resources/canonical_face_478.npy`` and MediaPipe's tesselation, pure and deterministic.

Model space: metres, x toward the performer's left, y up, z toward the viewer (FLAME's frame);
origin between the outer eye corners.

- **Template**: the canonical face (a median of real MediaPipe observations) turned into model space,
  scaled to a 0.09 m outer-eye-corner distance, made exactly left/right symmetric (mirror partners
  found by an optimal assignment of the reflected points; 28 points lie on the midline) and with a
  relaxed closed mouth (the median is taken over talking and smiling frames: the jaw is turned
  closed about its hinge, the lip corners lowered 6 mm and brought in 2.5 mm, then the inner lips
  brought together).
- **Faces**: MediaPipe's 852 triangles plus two iris fans, wound outward and made consistent.
- **Expressions**: the 52 ARKit blendshapes, in Apple's order (one symmetric ``cheekPuff``, as in
  ARKit), weights in [0, 1]. Each is a
  displacement field authored at full weight: prescribed displacements (millimetres) of handle
  landmarks (lid, lip and brow contours, lip corners, cheeks, nose wings, chin), zero on everything
  farther than a geodesic radius and on explicit anchors, and a biharmonic (squared cotangent
  Laplacian) interpolation everywhere else, which is smooth and respects the holes of the mesh
  (the lips and lids move independently). Jaw shapes are (linearised) rigid motions of the lower
  face weighted by the jaw skinning weights: jawOpen is exactly what a 25 degree rotation of the
  jaw joint does under linear blend skinning. eyeLook* rotate the iris points 25 degrees about the
  eyeball centres, the lids follow a fraction of the vertical gaze. Left/Right pairs are exact
  mirror images. MediaPipe has no tongue, so ``tongueOut`` is a lower-lip-down, lips-parted shape
  (what the lips do when the tongue comes out), documented in ``info``. Magnitudes at weight 1:
  lids close fully (upper lid 80 % of the way, lower lid 20 %), lip corners 10 mm for a smile (up,
  out and back), brows 8 mm, jawOpen opens the lips 35-40 mm, lips push forward 8-10 mm for
  pucker/funnel, cheeks 9 mm for cheekPuff.
- **Identity**: 48 manifold harmonics, the 16 smoothest non-constant eigenvectors of the mesh's
  cotangent Laplacian, each applied along x, y and z (ordered by frequency, then axis). A unit of
  component k moves the face by 3 mm * sqrt(lambda_1 / lambda_k) RMS, from 3 mm for the smoothest
  to about 0.7 mm (a smoothness prior: faces differ mostly in their broad shape); standard-normal
  weights on all of them move the face by about 1 cm RMS. The iris points follow the mean motion
  of their eye's lid contour. Each component then loses its similarity-motion part (translation,
  rotation, scale), so that identity cannot imitate head pose (the smoothest harmonics are close
  to rigid motions: a shear in z along x is almost a yaw).
- **Joints** (FLAME's chain): root at the head centre (between the ears, 0.1 m behind the nose tip,
  2 cm below the eye corners), neck 0.1 m below it, jaw at the hinge near the ears (0.105 m behind
  the nose tip, 45 mm below the eye corners: the effective pivot of a real jaw, whose condyle also
  slides forward as it turns, sits lower than the condyle; a pivot any higher swings the chin
  back more than down), eyes at the eyeball centres (12 mm behind the iris centres). The regressor writes each joint as an affine combination (weights sum
  to 1) of a few vertices, so joints follow any affine change of the face exactly.
- **Skinning**: iris points to their eye joint, the lower face to the jaw with a smooth falloff
  (harmonic weights: 1 on the chin and jaw line, on the lower lip 1 tapering to 0.4 at the
  corners, on the upper lip 0 rising to 0.4 there, 0 on the nose, at eye level and above), the
  rest to the root. No neck vertices exist, so a neck rotation
  moves the jaw and eye joints but not the skull vertices: keep ``neck`` at zero with this model.
  No pose correctives (pose_basis is zero).
- **Landmarks**: all 478 vertices, in MediaPipe's order.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq, linear_sum_assignment
from scipy.sparse.csgraph import dijkstra
from scipy.sparse.linalg import spsolve

from core.facemodel.open_model import (
    ARKIT_NAMES,
    BUILD_COMMAND,
    CHIN_MIDLINE,
    FACE_SIDES,
    FOREHEAD_TOP,
    JAW_LINE,
    JAW_OPEN_RAD,
    LEFT_BROW_LOWER,
    LEFT_BROW_UPPER,
    LEFT_LOWER_LID,
    LEFT_NOSE_WING,
    LEFT_UPPER_LID,
    LIP_CORNERS,
    LOWER_LIP_INNER,
    LOWER_LIP_OUTER,
    MODEL_VERSION,
    NOSE,
    NOSE_BRIDGE,
    RIGHT_BROW_LOWER,
    RIGHT_BROW_UPPER,
    RIGHT_LOWER_LID,
    RIGHT_NOSE_WING,
    RIGHT_UPPER_LID,
    UPPER_LIP_INNER,
    UPPER_LIP_OUTER,
)
from core.facemodel.types import JOINT_NAMES, NUM_JOINTS, NUM_POSE_CORRECTIVES, FaceModelData
from core.observe import landmark_ids as ids

log = logging.getLogger(__name__)

# --- geometry constants (metres, radians) ---------------------------------------------------------
EYE_CORNER_DISTANCE_M = 0.09
CANONICAL_TO_MODEL = np.array([1.0, -1.0, -1.0])  # OpenCV camera frame -> y up, z toward viewer
ROOT_BEHIND_NOSE_TIP = 0.100
ROOT_BELOW_EYES = 0.020
NECK_BELOW_ROOT = 0.100
HINGE_BEHIND_NOSE_TIP = 0.105
HINGE_BELOW_EYES = 0.045
EYEBALL_BEHIND_IRIS = 0.012
JAW_SIDE_RAD = np.radians(6.0)
JAW_FORWARD_M = 0.007
JAW_WEIGHT_ZERO_ABOVE = -0.010  # jaw weights are 0 above this height (m)
JAW_WEIGHT_CORNER = 0.4
GAZE_RAD = np.radians(25.0)
NUM_HARMONICS = 16  # per axis: 48 identity components
HARMONIC_RMS_M = 0.003


# ==================================================================================================
# Mesh tools
# ==================================================================================================


def mirror_permutation(vertices: np.ndarray) -> np.ndarray:
    """perm[i] = the mirror partner of vertex i (x -> -x), by an optimal one-to-one assignment of the
    reflected points (plain nearest neighbours disagree around the lips). Midline points map to
    themselves. Raises ValueError when the assignment is not an involution."""
    reflected = vertices * np.array([-1.0, 1.0, 1.0])
    cost = np.linalg.norm(vertices[:, None] - reflected[None], axis=2)
    _, perm = linear_sum_assignment(cost)
    if not np.array_equal(perm[perm], np.arange(len(perm))):
        raise ValueError("mirror assignment is not symmetric")
    return perm.astype(np.int64)


def mirror_field(field: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """The mirror image (x -> -x) of a V x 3 point set or displacement field."""
    return field[perm] * np.array([-1.0, 1.0, 1.0])


def symmetrise(field: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Average of a V x 3 field and its mirror image: exactly symmetric, midline x = 0."""
    out = 0.5 * (field + mirror_field(field, perm))
    out[perm == np.arange(len(perm)), 0] = 0.0
    return out


def consistent_orientation(faces: np.ndarray) -> np.ndarray:
    """Flip triangles so that every interior edge is used once in each direction (a face-by-face
    walk from the majority orientation of each connected patch); the triangle set is unchanged."""
    faces = faces.copy()
    edge_faces: dict[tuple[int, int], list[int]] = {}
    for f, tri in enumerate(faces):
        for k in range(3):
            a, b = int(tri[k]), int(tri[(k + 1) % 3])
            edge_faces.setdefault((min(a, b), max(a, b)), []).append(f)

    def directed(tri: np.ndarray) -> set[tuple[int, int]]:
        return {(int(tri[k]), int(tri[(k + 1) % 3])) for k in range(3)}

    seen = np.zeros(len(faces), bool)
    for seed in range(len(faces)):
        if seen[seed]:
            continue
        patch, flips, queue = [], [], deque([(seed, False)])
        seen[seed] = True
        while queue:
            f, flip = queue.popleft()
            patch.append(f)
            flips.append(flip)
            tri = faces[f][[0, 2, 1]] if flip else faces[f]
            for a, b in directed(tri):
                for g in edge_faces[(min(a, b), max(a, b))]:
                    if not seen[g]:
                        seen[g] = True
                        # g must use the edge as (b, a)
                        queue.append((g, (a, b) in directed(faces[g])))
        flips_arr = np.array(flips)
        seed_in_minority = flips_arr.sum() > len(flips_arr) / 2
        for f, flip in zip(patch, flips_arr):
            if flip != seed_in_minority:  # turn the minority to agree with the majority
                faces[f] = faces[f][[0, 2, 1]]
    return faces


def cotangent_laplacian(vertices: np.ndarray, faces: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Cotangent stiffness matrix C (V x V, positive semi-definite: C_ij = -(cot a + cot b) / 2)
    and lumped vertex areas (V,)."""
    v = len(vertices)
    rows, cols, vals = [], [], []
    area = np.zeros(v)
    for k in range(3):
        i, j, o = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        e1, e2 = vertices[i] - vertices[o], vertices[j] - vertices[o]
        cross = np.linalg.norm(np.cross(e1, e2), axis=1)
        cot = (e1 * e2).sum(1) / np.maximum(cross, 1e-12)
        rows += [i, j, i, j]
        cols += [j, i, i, j]
        vals += [-0.5 * cot, -0.5 * cot, 0.5 * cot, 0.5 * cot]
        np.add.at(area, o, cross / 6.0)
    stiffness = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(v, v))
    return stiffness, np.maximum(area, 1e-12)


def edge_graph(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """Symmetric V x V matrix of edge lengths."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    length = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    g = sp.coo_matrix((length, (e[:, 0], e[:, 1])), shape=(len(vertices),) * 2)
    return (g + g.T).tocsr()


def rotation(axis: str, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@dataclass
class Mesh:
    """The template with the operators the authoring needs."""

    vertices: np.ndarray  # V x 3, float64
    faces: np.ndarray
    stiffness: sp.csr_matrix
    area: np.ndarray
    bilaplacian: sp.csr_matrix
    graph: sp.csr_matrix
    surface: np.ndarray  # bool V: not an iris point

    @classmethod
    def build(cls, vertices: np.ndarray, faces: np.ndarray) -> Mesh:
        vertices = np.asarray(vertices, np.float64)
        stiffness, area = cotangent_laplacian(vertices, faces)
        bilaplacian = (stiffness @ sp.diags(1.0 / area) @ stiffness).tocsr()
        surface = np.ones(len(vertices), bool)
        surface[list(ids.RIGHT_IRIS) + list(ids.LEFT_IRIS)] = False
        return cls(vertices, faces, stiffness, area, bilaplacian, edge_graph(vertices, faces), surface)

    def geodesic(self, sources) -> np.ndarray:
        """Shortest edge-path distance (metres) from the nearest of ``sources`` to every vertex."""
        return dijkstra(self.graph, directed=False, indices=np.atleast_1d(sources), min_only=True)

    def interpolate(self, values: np.ndarray, known: np.ndarray, harmonic: bool = False) -> np.ndarray:
        """Biharmonic interpolation: values (V x k) kept where ``known`` (bool V), elsewhere the
        minimiser of the squared-Laplacian energy. ``harmonic``: minimise the Dirichlet energy
        instead (with non-negative cotangent weights, so the result stays within the known
        values' range). Iris points are never interpolated."""
        values = np.array(values, np.float64)
        free = ~known & self.surface
        if free.any():
            k = self.bilaplacian
            if harmonic:
                off = self.stiffness.copy()
                off.setdiag(0)
                off.data = np.minimum(off.data, 0.0)  # drop negative cotangent weights
                off.eliminate_zeros()
                k = (sp.diags(-np.asarray(off.sum(axis=1)).ravel()) + off).tocsr()
            fixed = ~free
            rhs = -(k[free][:, fixed] @ values[fixed])
            solution = spsolve(k[free][:, free].tocsc(), rhs)
            values[free] = solution.reshape(values[free].shape)
        return values

    def deform(self, handles: dict[int, np.ndarray], radius: float, anchors=()) -> np.ndarray:
        """V x 3 displacement: handles[i] at vertex i, zero at ``anchors``, at iris points and
        beyond ``radius`` (geodesic, metres) from every handle, biharmonic in between."""
        idx = np.array(sorted(handles), np.int64)
        disp = np.zeros((len(self.vertices), 3))
        disp[idx] = np.array([handles[i] for i in idx], np.float64)  # a handle wins over an anchor
        known = self.geodesic(idx) > radius
        known[list(anchors)] = True
        known[idx] = True
        known[~self.surface] = True
        return self.interpolate(disp, known)


def lid_profile(n: int) -> np.ndarray:
    """Weights along a lid contour of n points between the corners: 1 in the middle, ~0.4 at ends."""
    return np.sin(np.pi * (np.arange(n) + 1) / (n + 1))


def lip_profile(vertices: np.ndarray, contour, corner_weight: float = 0.25) -> np.ndarray:
    """Weights along a lip contour: 1 at the midline falling to ``corner_weight`` at the corners."""
    x = vertices[list(contour), 0]
    half = np.abs(vertices[ids.MOUTH_LEFT, 0])
    t = np.clip(np.abs(x) / half, 0, 1)
    return corner_weight + (1 - corner_weight) * (1 - t**2)


def mm(*xyz: float) -> np.ndarray:
    return np.array(xyz, np.float64) * 1e-3


# ==================================================================================================
# Template, joints, weights
# ==================================================================================================


def canonical_to_model(canonical: np.ndarray) -> np.ndarray:
    """Canonical face (OpenCV frame, unit outer-eye distance) -> model space (metres, y up, z toward
    the viewer), origin between the outer eye corners."""
    return normalised(np.asarray(canonical, np.float64) * CANONICAL_TO_MODEL)


def normalised(p: np.ndarray) -> np.ndarray:
    """A face in model space moved and scaled so that its outer eye corners are 0.09 m apart with the
    origin between them."""
    p = p - (p[ids.RIGHT_EYE_OUTER] + p[ids.LEFT_EYE_OUTER]) / 2
    return p * EYE_CORNER_DISTANCE_M / np.linalg.norm(p[ids.LEFT_EYE_OUTER] - p[ids.RIGHT_EYE_OUTER])


def head_centre(vertices: np.ndarray) -> np.ndarray:
    """Root joint: midline, between the ears, behind the nose tip."""
    return np.array([0.0, -ROOT_BELOW_EYES, vertices[ids.NOSE_TIP, 2] - ROOT_BEHIND_NOSE_TIP])


def jaw_hinge(vertices: np.ndarray) -> np.ndarray:
    """Jaw joint: midline point of the hinge axis, in front of the ears below the eye line."""
    return np.array([0.0, -HINGE_BELOW_EYES, vertices[ids.NOSE_TIP, 2] - HINGE_BEHIND_NOSE_TIP])


def eyeball_centres(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) eyeball centres, 12 mm behind the iris centres."""
    back = np.array([0.0, 0.0, EYEBALL_BEHIND_IRIS])
    return vertices[ids.LEFT_IRIS_CENTER] - back, vertices[ids.RIGHT_IRIS_CENTER] - back


def model_faces(vertices: np.ndarray) -> np.ndarray:
    """MediaPipe's triangles wound outward (away from a head centre 0.09 m behind the nose tip) and
    made consistent."""
    from core.facemodel.topology import mediapipe_triangles

    centre = vertices[ids.NOSE_TIP] - np.array([0.0, 0.0, 0.09])
    return consistent_orientation(mediapipe_triangles(vertices, centre))


def jaw_weights(mesh: Mesh) -> np.ndarray:
    """V weights of the jaw: 1 on the chin and the front of the jaw line; on the lower lip 1 in the
    middle tapering to 0.4 at the corners, on the upper lip 0 rising to 0.4 there (so the mouth
    opens round); 0 on the nose, at eye level and above and at the sides near the ears; harmonic
    (bounded, smooth) over the cheeks in between."""
    p = mesh.vertices
    w = np.zeros(len(p))
    known = ~mesh.surface.copy()
    known |= mesh.surface & (p[:, 1] > JAW_WEIGHT_ZERO_ABOVE)
    one = CHIN_MIDLINE + JAW_LINE[2:-2]
    zero = NOSE + FACE_SIDES
    w[list(one)] = 1.0
    known[list(one) + list(zero)] = True
    corner = JAW_WEIGHT_CORNER
    for contour, lower in ((LOWER_LIP_OUTER, True), (LOWER_LIP_INNER, True), (UPPER_LIP_OUTER, False),
                           (UPPER_LIP_INNER, False)):
        idx = list(contour)
        t = np.clip(np.abs(p[idx, 0]) / np.abs(p[ids.MOUTH_LEFT, 0]), 0.0, 1.0)
        w[idx] = corner + (1 - corner) * (1 - t**3) if lower else corner * t**4
        known[idx] = True
    w[list(LIP_CORNERS)] = corner
    return np.clip(mesh.interpolate(w[:, None], known, harmonic=True)[:, 0], 0.0, 1.0)


def jaw_rotation_field(mesh: Mesh, weights: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Displacement of linear blend skinning when the jaw joint turns by ``rot`` (3 x 3)."""
    rel = mesh.vertices - jaw_hinge(mesh.vertices)
    return weights[:, None] * (rel @ rot.T - rel)


def close_mouth(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Make the canonical's talking/smiling mouth a closed neutral one: turn the jaw up until 60 %
    of the gap between the inner lip midpoints (13, 14) is gone; lower the lip corners 6 mm and
    bring them 2.5 mm in and 1.5 mm forward (the median smiles: its corners sit 8 mm above the
    lip line, its mouth is 62 mm wide); then bring each inner-lip pair together at its midpoint,
    the outer lip contours following by 70 %."""
    mesh = Mesh.build(vertices, faces)
    weights = jaw_weights(mesh)
    gap0 = vertices[13, 1] - vertices[14, 1]

    def gap(angle: float) -> float:
        moved = vertices + jaw_rotation_field(mesh, weights, rotation("x", angle))
        return moved[13, 1] - moved[14, 1] - 0.4 * gap0

    if gap0 > 0:
        angle = brentq(gap, -0.5, 0.0)
        vertices = vertices + jaw_rotation_field(mesh, weights, rotation("x", angle))
        log.debug("closed the jaw by %.1f degrees", np.degrees(-angle))

    mesh = Mesh.build(vertices, faces)
    handles: dict[int, np.ndarray] = {i: np.zeros(3) for i in (0, 13, 14, 17)}
    for i in LIP_CORNERS:
        handles[i] = mm(-2.5 * np.sign(vertices[i, 0]), -6.0, 1.5)
    vertices = vertices + mesh.deform(handles, radius=0.03, anchors=NOSE)

    mesh = Mesh.build(vertices, faces)
    handles = {i: np.zeros(3) for i in LIP_CORNERS}
    for k in range(1, len(UPPER_LIP_INNER) - 1):
        u, lo = UPPER_LIP_INNER[k], LOWER_LIP_INNER[k]
        meet = 0.5 * (vertices[u] + vertices[lo])
        handles[u] = meet - vertices[u]
        handles[lo] = meet - vertices[lo]
        handles[UPPER_LIP_OUTER[k]] = 0.7 * handles[u]
        handles[LOWER_LIP_OUTER[k]] = 0.7 * handles[lo]
    return vertices + mesh.deform(handles, radius=0.02, anchors=NOSE)


def build_template(canonical: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(template V x 3, faces F x 3, mirror permutation V) from the canonical face."""
    p = canonical_to_model(canonical)
    perm = mirror_permutation(p)
    p = symmetrise(p, perm)
    faces = model_faces(p)
    p = symmetrise(close_mouth(p, faces), perm)
    return p, faces, perm


# ==================================================================================================
# Expressions
# ==================================================================================================


def side_weight(x: np.ndarray, width: float = 0.008) -> np.ndarray:
    """Smooth 0 -> 1 across the midline (0 for x < -width, 1 for x > width): splits a symmetric
    field into a left part and its mirror image that add up to the whole."""
    t = np.clip((np.asarray(x) + width) / (2 * width), 0.0, 1.0)
    return t * t * (3 - 2 * t)


class ExpressionAuthor:
    """Authors the 52 ARKit shapes on a symmetric template. Left shapes are written for the
    performer's left (+x) and mirrored for the right; symmetric shapes are symmetrised."""

    def __init__(self, mesh: Mesh, perm: np.ndarray) -> None:
        self.mesh = mesh
        self.p = mesh.vertices
        self.perm = perm
        self.jaw = jaw_weights(mesh)
        self.eye_left, _ = eyeball_centres(self.p)
        self.normals = vertex_normals(self.p, mesh.faces)

    # --- helpers ---------------------------------------------------------------------------------
    def lids(self):
        return LEFT_UPPER_LID, LEFT_LOWER_LID, (ids.LEFT_EYE_OUTER, ids.LEFT_EYE_INNER)

    def rotate_about_eye(self, idx, angles: np.ndarray, axis: str = "x") -> dict[int, np.ndarray]:
        """Handles turning each point idx[k] by angles[k] about the left eyeball centre."""
        out = {}
        for i, a in zip(idx, angles):
            rel = self.p[i] - self.eye_left
            out[i] = rotation(axis, a) @ rel - rel
        return out

    def lid_radius(self) -> float:
        """Lids never sink below the cornea: 0.5 mm outside the iris-centre radius."""
        return float(np.linalg.norm(self.p[ids.LEFT_IRIS_CENTER] - self.eye_left)) + 0.0005

    def nearest_front(self, x: float, y: float, min_facing: float = 0.3) -> int:
        """Surface vertex facing the viewer (normal z > min_facing) nearest to (x, y) in the front
        view."""
        ok = self.mesh.surface & (self.normals[:, 2] > min_facing)
        d = np.where(ok, np.hypot(self.p[:, 0] - x, self.p[:, 1] - y), np.inf)
        return int(np.argmin(d))

    def patch(self, centre: int, radius: float, displacement) -> dict[int, np.ndarray]:
        """Handles on every vertex within ``radius`` of ``centre`` with a smooth bump falloff;
        displacement: (3,) or a function of the vertex index giving (3,)."""
        d = self.mesh.geodesic(centre)
        out = {}
        for i in np.flatnonzero((d <= radius) & self.mesh.surface):
            fall = (1 - (d[i] / radius) ** 2) ** 2
            vec = displacement(i) if callable(displacement) else np.asarray(displacement)
            out[int(i)] = fall * vec
        return out

    def surface_shift(self, idx, dx: float, dy: float = 0.0) -> dict[int, np.ndarray]:
        """Handles moving points by (dx, dy) in the front view and in depth with the template's
        surface (its height z(x, y) around the mouth), so they slide over the face."""
        from scipy.interpolate import LinearNDInterpolator

        front = self.mesh.surface & (self.normals[:, 2] > 0.2)
        height = LinearNDInterpolator(self.p[front, :2], self.p[front, 2])
        out = {}
        for i in idx:
            x, y, z = self.p[i]
            dz = height(x + dx, y + dy) - height(x, y)
            dz = 0.0 if np.isnan(dz) else float(np.clip(dz, -0.5 * abs(dx), 0.5 * abs(dx)))
            out[i] = np.array([dx, dy, dz])
        return out

    def lip_points(self, upper_outer, lower_outer, upper_inner, lower_inner, corner_weight=0.25):
        """Handles on the four lip contours (corners excluded): each function maps (x, w) to a
        displacement in mm, x the point's x (m), w its lip_profile weight."""
        out = {}
        for contour, fn in ((UPPER_LIP_OUTER, upper_outer), (LOWER_LIP_OUTER, lower_outer),
                            (UPPER_LIP_INNER, upper_inner), (LOWER_LIP_INNER, lower_inner)):
            w = lip_profile(self.p, contour, corner_weight)
            for k, i in enumerate(contour):
                if i not in LIP_CORNERS:
                    out[i] = mm(*fn(self.p[i, 0], w[k]))
        return out

    # --- eyes (performer's left) -----------------------------------------------------------------
    def eye_blink(self) -> np.ndarray:
        upper, lower, corners = self.lids()
        handles = {i: np.zeros(3) for i in corners}
        r_min = self.lid_radius()
        c = self.eye_left
        for u, lo in zip(upper, lower):
            pu, pl = self.p[u], self.p[lo]
            meet = pl + 0.2 * (pu - pl)  # the upper lid does most of the travel
            radius = max(0.2 * np.linalg.norm(pu - c) + 0.8 * np.linalg.norm(pl - c), r_min)
            meet = c + (meet - c) * radius / np.linalg.norm(meet - c)
            handles[u] = meet - pu
            handles[lo] = meet - pl
        return self.mesh.deform(handles, radius=0.012, anchors=LEFT_BROW_UPPER + LEFT_BROW_LOWER)

    def eye_look(self, direction: str) -> np.ndarray:
        axis = "x" if direction in ("up", "down") else "y"
        angle = {"up": -GAZE_RAD, "down": GAZE_RAD, "in": -GAZE_RAD, "out": GAZE_RAD}[direction]
        upper, lower, corners = self.lids()
        iris = ids.LEFT_IRIS
        handles = self.rotate_about_eye(iris, np.full(len(iris), angle), axis)
        handles.update({i: np.zeros(3) for i in corners})
        # the lids follow vertical gaze (the upper lid most when looking down), not horizontal
        follow_upper, follow_lower = {"up": (0.5, 0.25), "down": (0.6, 0.3)}.get(direction, (0.0, 0.0))
        profile = lid_profile(len(upper))
        handles.update(self.rotate_about_eye(upper, follow_upper * angle * profile, axis))
        handles.update(self.rotate_about_eye(lower, follow_lower * angle * profile, axis))
        return self.mesh.deform(handles, radius=0.010, anchors=LEFT_BROW_UPPER + LEFT_BROW_LOWER)

    def lids_moved(self, upper_down_m: float, lower_up_m: float, radius: float) -> np.ndarray:
        """Both lids turned about the eyeball (corners still): the upper lid down and the lower lid
        up by the given arc lengths in metres (negative: the other way) at the lid's middle."""
        upper, lower, corners = self.lids()
        r = self.lid_radius()
        profile = lid_profile(len(upper))
        handles = {i: np.zeros(3) for i in corners}
        handles.update(self.rotate_about_eye(lower, -(lower_up_m / r) * profile))
        handles.update(self.rotate_about_eye(upper, (upper_down_m / r) * profile))
        return self.mesh.deform(handles, radius=radius, anchors=LEFT_BROW_UPPER + LEFT_BROW_LOWER)

    def eye_squint(self) -> np.ndarray:
        return self.lids_moved(upper_down_m=0.001, lower_up_m=0.0025, radius=0.014)

    def eye_wide(self) -> np.ndarray:
        return self.lids_moved(upper_down_m=-0.0035, lower_up_m=-0.001, radius=0.012)

    # --- jaw -------------------------------------------------------------------------------------
    def jaw_open(self) -> np.ndarray:
        return jaw_rotation_field(self.mesh, self.jaw, rotation("x", JAW_OPEN_RAD))

    def jaw_left(self) -> np.ndarray:
        return jaw_rotation_field(self.mesh, self.jaw, rotation("y", JAW_SIDE_RAD))

    def jaw_forward(self) -> np.ndarray:
        return self.jaw[:, None] * np.array([0.0, 0.0, JAW_FORWARD_M])

    # --- mouth -----------------------------------------------------------------------------------
    def mouth_close(self) -> np.ndarray:
        """Closes the gap jawOpen opens between the lips (ARKit's mouthClose rides on jawOpen): for
        each upper/lower pair of lip points (inner and outer contours) the lower one travels 70 %
        of the gap, the upper one 30 %, so jawOpen + mouthClose shows the neutral's closed lips,
        carried down by 30 % of the jaw's motion."""
        jaw = self.jaw_open()
        handles = {i: np.zeros(3) for i in LIP_CORNERS}
        for upper, lower in ((UPPER_LIP_INNER, LOWER_LIP_INNER), (UPPER_LIP_OUTER, LOWER_LIP_OUTER)):
            for u, lo in zip(upper[1:-1], lower[1:-1]):
                gap = jaw[lo] - jaw[u]
                handles[u] = 0.3 * gap
                handles[lo] = -0.7 * gap
        return self.mesh.deform(handles, radius=0.02, anchors=NOSE + CHIN_MIDLINE[2:])

    def lip_corner_handles(self, left: np.ndarray, midline: np.ndarray) -> dict[int, np.ndarray]:
        handles = {ids.MOUTH_LEFT: left, 308: left, ids.MOUTH_RIGHT: np.zeros(3), 78: np.zeros(3)}
        handles.update({i: midline for i in (0, 13, 14, 17)})
        return handles

    def mouth_funnel(self) -> np.ndarray:
        handles = self.lip_points(
            lambda x, w: (-200 * x, 1.5 * w, 8.5 * w), lambda x, w: (-200 * x, -1.5 * w, 8.5 * w),
            lambda x, w: (-200 * x, 3.0 * w, 7.0 * w), lambda x, w: (-200 * x, -3.0 * w, 7.0 * w))
        for i in LIP_CORNERS:
            handles[i] = mm(-6.0 * np.sign(self.p[i, 0]), 0.0, 3.0)
        return self.mesh.deform(handles, radius=0.025, anchors=NOSE)

    def mouth_pucker(self) -> np.ndarray:
        handles = self.lip_points(
            lambda x, w: (-280 * x, -1.0 * w, 9.5 * w), lambda x, w: (-280 * x, 1.0 * w, 9.5 * w),
            lambda x, w: (-280 * x, 0.0, 8.0 * w), lambda x, w: (-280 * x, 0.0, 8.0 * w))
        for i in LIP_CORNERS:
            handles[i] = mm(-8.0 * np.sign(self.p[i, 0]), 0.0, 4.0)
        return self.mesh.deform(handles, radius=0.025, anchors=NOSE)

    def mouth_left(self) -> np.ndarray:
        lips = set(UPPER_LIP_OUTER + LOWER_LIP_OUTER + UPPER_LIP_INNER + LOWER_LIP_INNER)
        handles = self.surface_shift(sorted(lips), 0.007)
        return self.mesh.deform(handles, radius=0.025, anchors=NOSE)

    def mouth_smile(self) -> np.ndarray:
        corner = self.p[ids.MOUTH_LEFT]
        handles = self.lip_corner_handles(mm(5.5, 7.0, -4.0), mm(0.8, 1.0, 0.0))
        cheek = self.nearest_front(corner[0] + 0.012, corner[1] + 0.014)
        handles[cheek] = mm(1.5, 3.5, 2.0)
        upper, lower, corners = self.lids()
        return self.mesh.deform(handles, radius=0.035, anchors=NOSE + lower + corners)

    def mouth_frown(self) -> np.ndarray:
        handles = self.lip_corner_handles(mm(1.5, -6.0, -0.5), mm(0.3, -0.8, 0.0))
        return self.mesh.deform(handles, radius=0.03, anchors=NOSE)

    def mouth_dimple(self) -> np.ndarray:
        handles = self.lip_corner_handles(mm(2.5, 0.5, -4.0), mm(0.5, 0.0, 0.0))
        return self.mesh.deform(handles, radius=0.025, anchors=NOSE)

    def mouth_stretch(self) -> np.ndarray:
        handles = self.lip_corner_handles(mm(6.0, -3.0, -2.5), mm(1.0, -1.0, 0.0))
        return self.mesh.deform(handles, radius=0.03, anchors=NOSE)

    def mouth_roll_lower(self) -> np.ndarray:
        zero = lambda x, w: (0.0, 0.0, 0.0)  # noqa: E731
        handles = self.lip_points(zero, lambda x, w: (0.0, 3.5 * w, -4.0 * w),
                                  zero, lambda x, w: (0.0, 0.0, -5.0 * w))
        handles.update({i: np.zeros(3) for i in LIP_CORNERS})
        return self.mesh.deform(handles, radius=0.02, anchors=NOSE)

    def mouth_roll_upper(self) -> np.ndarray:
        zero = lambda x, w: (0.0, 0.0, 0.0)  # noqa: E731
        handles = self.lip_points(lambda x, w: (0.0, -3.5 * w, -4.0 * w), zero,
                                  lambda x, w: (0.0, 0.0, -5.0 * w), zero)
        handles.update({i: np.zeros(3) for i in LIP_CORNERS})
        return self.mesh.deform(handles, radius=0.02, anchors=NOSE)

    def mouth_shrug_lower(self) -> np.ndarray:
        handles = self.lip_points(
            lambda x, w: (0.0, 1.0 * w, 0.5 * w), lambda x, w: (0.0, 2.5 * w, 3.0 * w),
            lambda x, w: (0.0, 1.0 * w, 1.0 * w), lambda x, w: (0.0, 1.0 * w, 2.5 * w))
        handles.update({i: np.zeros(3) for i in LIP_CORNERS})
        handles.update({i: mm(0.0, 2.5, 1.5) for i in (200, 199, 175)})
        return self.mesh.deform(handles, radius=0.03, anchors=NOSE)

    def mouth_shrug_upper(self) -> np.ndarray:
        handles = self.lip_points(
            lambda x, w: (0.0, 2.5 * w, 2.5 * w), lambda x, w: (0.0, 0.5 * w, 0.5 * w),
            lambda x, w: (0.0, 1.5 * w, 2.0 * w), lambda x, w: (0.0, 0.5 * w, 0.5 * w))
        handles.update({i: np.zeros(3) for i in LIP_CORNERS})
        return self.mesh.deform(handles, radius=0.025, anchors=NOSE)

    def split_left(self, field: np.ndarray) -> np.ndarray:
        """The performer's-left part of a symmetric field."""
        return field * side_weight(self.p[:, 0])[:, None]

    def mouth_press(self) -> np.ndarray:
        handles = self.lip_points(
            lambda x, w: (0.0, -2.5 * w, -1.5 * w), lambda x, w: (0.0, 2.5 * w, -1.5 * w),
            lambda x, w: (0.0, 0.0, -1.0 * w), lambda x, w: (0.0, 0.0, -1.0 * w), corner_weight=0.4)
        handles.update({i: np.zeros(3) for i in LIP_CORNERS})
        return self.split_left(self.mesh.deform(handles, radius=0.02, anchors=NOSE))

    def mouth_lower_down(self) -> np.ndarray:
        handles = self.lip_points(
            lambda x, w: (0.0, 0.0, 0.0), lambda x, w: (0.0, -5.0 * w, 0.5 * w),
            lambda x, w: (0.0, 0.0, 0.0), lambda x, w: (0.0, -5.5 * w, 0.0), corner_weight=0.15)
        handles.update({i: np.zeros(3) for i in LIP_CORNERS})
        return self.split_left(self.mesh.deform(handles, radius=0.025, anchors=NOSE))

    def mouth_upper_up(self) -> np.ndarray:
        handles = self.lip_points(
            lambda x, w: (0.0, 5.0 * w, 1.0 * w), lambda x, w: (0.0, 0.0, 0.0),
            lambda x, w: (0.0, 5.5 * w, 0.5 * w), lambda x, w: (0.0, 0.0, 0.0), corner_weight=0.15)
        handles.update({i: np.zeros(3) for i in LIP_CORNERS})
        return self.split_left(self.mesh.deform(handles, radius=0.025, anchors=NOSE))

    def tongue_out(self) -> np.ndarray:
        """No tongue in MediaPipe's mesh: the lips part around it, the lower lip pushed down and out."""
        handles = self.lip_points(
            lambda x, w: (0.0, 1.0 * w, 1.0 * w), lambda x, w: (0.0, -4.0 * w, 3.5 * w),
            lambda x, w: (0.0, 1.5 * w, 1.0 * w), lambda x, w: (0.0, -4.0 * w, 3.0 * w))
        handles.update({i: np.zeros(3) for i in LIP_CORNERS})
        handles.update({i: mm(0.0, -2.5, 0.0) for i in (199, 175, 152)})
        return self.mesh.deform(handles, radius=0.03, anchors=NOSE)

    # --- brows -----------------------------------------------------------------------------------
    def brow_handles(self, dy_mm, dx_mm=(0, 0, 0, 0, 0), dz_mm=(0, 0, 0, 0, 0)) -> dict[int, np.ndarray]:
        """Left brow points, outer -> inner, both edges of the brow moving together."""
        out = {}
        for contour in (LEFT_BROW_UPPER, LEFT_BROW_LOWER):
            for k, i in enumerate(contour):
                out[i] = mm(dx_mm[k], dy_mm[k], dz_mm[k])
        return out

    def brow_anchors(self) -> tuple[int, ...]:
        lids = LEFT_UPPER_LID + LEFT_LOWER_LID + RIGHT_UPPER_LID + RIGHT_LOWER_LID + (33, 133, 263, 362)
        return FOREHEAD_TOP + NOSE_BRIDGE + lids

    def brow_down(self) -> np.ndarray:
        handles = self.brow_handles((-3.5, -4.5, -6.0, -7.5, -8.0), (0, -0.5, -1.5, -2.5, -3.0),
                                    (0, 0, 0.5, 1.0, 1.5))
        handles.update({i: np.zeros(3) for i in RIGHT_BROW_UPPER + RIGHT_BROW_LOWER})
        return self.mesh.deform(handles, radius=0.03, anchors=self.brow_anchors())

    def brow_inner_up(self) -> np.ndarray:
        left = self.brow_handles((0.0, 1.5, 3.5, 6.5, 8.0))
        handles = dict(left)
        handles.update({int(self.perm[i]): v * np.array([-1.0, 1.0, 1.0]) for i, v in left.items()})
        return self.mesh.deform(handles, radius=0.03, anchors=self.brow_anchors())

    def brow_outer_up(self) -> np.ndarray:
        handles = self.brow_handles((8.0, 7.0, 4.0, 1.5, 0.5))
        handles.update({i: np.zeros(3) for i in RIGHT_BROW_UPPER + RIGHT_BROW_LOWER})
        return self.mesh.deform(handles, radius=0.03, anchors=self.brow_anchors())

    # --- cheeks and nose -------------------------------------------------------------------------
    def cheek_puff(self) -> np.ndarray:
        """Both cheeks pushed out 9 mm along their normals, centred 19 mm beside and 8 mm above
        the lip corners, falling off over 25 mm; lids, nose and the sealed inner lips stay."""
        corner = self.p[ids.MOUTH_LEFT]
        centre = self.nearest_front(corner[0] + 0.019, corner[1] + 0.008, min_facing=0.0)
        left = self.patch(centre, 0.025, lambda i: 0.009 * self.normals[i])
        handles = dict(left)
        handles.update({int(self.perm[i]): v * np.array([-1.0, 1.0, 1.0]) for i, v in left.items()})
        lids = eye_contour("left") + eye_contour("right")
        anchors = NOSE + lids + UPPER_LIP_INNER + LOWER_LIP_INNER
        return self.mesh.deform(handles, radius=0.045, anchors=anchors)

    def cheek_squint(self) -> np.ndarray:
        upper, lower, corners = self.lids()
        eye = self.p[374]
        centre = self.nearest_front(eye[0] + 0.006, eye[1] - 0.016)
        handles = self.patch(centre, 0.016, mm(0.5, 4.0, 1.5))
        r = self.lid_radius()
        handles.update(self.rotate_about_eye(lower, -(0.001 / r) * lid_profile(len(lower))))
        handles.update({i: np.zeros(3) for i in upper + corners})
        lips = UPPER_LIP_OUTER + LOWER_LIP_OUTER + UPPER_LIP_INNER + LOWER_LIP_INNER
        return self.mesh.deform(handles, radius=0.03, anchors=NOSE + lips)

    def nose_sneer(self) -> np.ndarray:
        handles = {i: mm(0.5, 3.5, -0.5) for i in LEFT_NOSE_WING}
        for i in (275, 326):  # near the tip and the columella: half
            handles[i] = mm(0.25, 1.75, 0.0)
        wing = self.p[278]
        handles[self.nearest_front(wing[0] + 0.008, wing[1] - 0.002)] = mm(0.5, 2.5, 0.0)
        upper, lower, corners = self.lids()
        anchors = (1, 4, 5, 195, 197, 6, 168, 2, 94, 19) + RIGHT_NOSE_WING + upper + lower + corners
        return self.mesh.deform(handles, radius=0.025, anchors=anchors)

    # --- all -------------------------------------------------------------------------------------
    def build(self) -> np.ndarray:
        """V x 3 x 52 expression basis in ARKIT_NAMES order."""
        left = {
            "eyeBlink": self.eye_blink, "eyeLookDown": lambda: self.eye_look("down"),
            "eyeLookIn": lambda: self.eye_look("in"), "eyeLookOut": lambda: self.eye_look("out"),
            "eyeLookUp": lambda: self.eye_look("up"), "eyeSquint": self.eye_squint,
            "eyeWide": self.eye_wide, "jaw": self.jaw_left, "mouth": self.mouth_left,
            "mouthSmile": self.mouth_smile, "mouthFrown": self.mouth_frown,
            "mouthDimple": self.mouth_dimple, "mouthStretch": self.mouth_stretch,
            "mouthPress": self.mouth_press, "mouthLowerDown": self.mouth_lower_down,
            "mouthUpperUp": self.mouth_upper_up, "browDown": self.brow_down,
            "browOuterUp": self.brow_outer_up, "cheekSquint": self.cheek_squint, "noseSneer": self.nose_sneer,
        }
        symmetric = {
            "jawForward": self.jaw_forward, "jawOpen": self.jaw_open, "mouthClose": self.mouth_close,
            "mouthFunnel": self.mouth_funnel, "mouthPucker": self.mouth_pucker,
            "mouthRollLower": self.mouth_roll_lower, "mouthRollUpper": self.mouth_roll_upper,
            "mouthShrugLower": self.mouth_shrug_lower, "mouthShrugUpper": self.mouth_shrug_upper,
            "browInnerUp": self.brow_inner_up, "cheekPuff": self.cheek_puff, "tongueOut": self.tongue_out,
        }
        shapes: dict[str, np.ndarray] = {}
        for stem, author in left.items():
            field = author()
            shapes[stem + "Left"] = field
            shapes[stem + "Right"] = mirror_field(field, self.perm)
        for name, author in symmetric.items():
            shapes[name] = symmetrise(author(), self.perm)
        missing = set(ARKIT_NAMES) ^ set(shapes)
        if missing:
            raise AssertionError(f"authored shapes differ from ARKit's: {sorted(missing)}")
        return np.stack([shapes[name] for name in ARKIT_NAMES], axis=2)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (outward for outward-wound faces)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    out = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(out, faces[:, k], n)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


# ==================================================================================================
# Identity, joints, skinning, landmarks
# ==================================================================================================


def eye_contour(side: str) -> tuple[int, ...]:
    if side == "left":
        return LEFT_UPPER_LID + LEFT_LOWER_LID + (ids.LEFT_EYE_OUTER, ids.LEFT_EYE_INNER)
    return RIGHT_UPPER_LID + RIGHT_LOWER_LID + (ids.RIGHT_EYE_OUTER, ids.RIGHT_EYE_INNER)


def build_shape_basis(mesh: Mesh, num_harmonics: int = NUM_HARMONICS) -> np.ndarray:
    """V x 3 x (3 * num_harmonics) manifold-harmonic identity basis (see the module docstring)."""
    from scipy.linalg import eigh

    s = mesh.surface
    stiffness = mesh.stiffness[s][:, s].toarray()
    values, vectors = eigh(stiffness, np.diag(mesh.area[s]))
    order = np.argsort(values)
    values, vectors = values[order][1:num_harmonics + 1], vectors[:, order][:, 1:num_harmonics + 1]
    components = []
    for k in range(num_harmonics):
        phi = np.zeros(len(mesh.vertices))
        phi[s] = vectors[:, k]
        phi *= np.sign(phi[np.argmax(np.abs(phi))])  # deterministic sign
        phi /= np.sqrt(np.mean(phi[s] ** 2))
        phi *= HARMONIC_RMS_M * np.sqrt(values[0] / values[k])
        for side, iris in (("left", ids.LEFT_IRIS), ("right", ids.RIGHT_IRIS)):
            phi[list(iris)] = phi[list(eye_contour(side))].mean()
        for axis in range(3):
            component = np.zeros((len(mesh.vertices), 3))
            component[:, axis] = phi
            components.append(component)
    return without_rigid_motion(np.stack(components, axis=2), mesh.vertices)


def similarity_motion_fields(vertices: np.ndarray) -> np.ndarray:
    """V x 3 x 7 infinitesimal similarity motions of a mesh: 3 translations, 3 rotations about its
    centroid, uniform scale about its centroid."""
    centred = vertices - vertices.mean(axis=0)
    fields = [np.broadcast_to(np.eye(3)[a], vertices.shape) for a in range(3)]
    fields += [np.cross(np.eye(3)[a], centred) for a in range(3)]
    fields.append(centred)
    return np.stack(fields, axis=2)


def without_rigid_motion(basis: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Remove from each identity component (V x 3 x K) its part that a head pose or camera could
    explain (a similarity motion), keeping its RMS size, so that identity and pose do not trade."""
    motions = similarity_motion_fields(vertices).reshape(-1, 7)
    q, _ = np.linalg.qr(motions)
    flat = basis.reshape(-1, basis.shape[2])
    rms = np.sqrt((flat**2).mean(axis=0))
    flat = flat - q @ (q.T @ flat)
    flat *= rms / np.sqrt((flat**2).mean(axis=0))
    return flat.reshape(basis.shape)


def joint_positions(vertices: np.ndarray) -> np.ndarray:
    """J x 3 rest joints in JOINT_NAMES order for a template."""
    root = head_centre(vertices)
    neck = root - np.array([0.0, NECK_BELOW_ROOT, 0.0])
    left, right = eyeball_centres(vertices)
    return np.stack([root, neck, jaw_hinge(vertices), left, right])


def affine_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Smallest weights w (sum 1) with sum_i w_i points_i = target."""
    a = np.vstack([points.T, np.ones(len(points))])
    b = np.append(target, 1.0)
    return a.T @ np.linalg.solve(a @ a.T, b)


def build_joint_regressor(vertices: np.ndarray, faces: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """J x V sparse affine regressor reproducing joint_positions(vertices) exactly: the head joints
    from points around the face, each eye from its iris and the skin within 1 cm of its lids."""
    joints = joint_positions(vertices)
    head = FACE_SIDES + (10, 152, ids.NOSE_TIP, 168)
    mesh = Mesh.build(vertices, faces)
    near_eye = mesh.surface & (mesh.geodesic(list(eye_contour("left"))) < 0.010)
    left_eye = tuple(int(i) for i in np.flatnonzero(near_eye)) + ids.LEFT_IRIS
    supports = {
        "root": head,
        "neck": head,
        "jaw": FACE_SIDES + (172, 397, 136, 365, 152, ids.NOSE_TIP),
        "eye_left": left_eye,
        "eye_right": tuple(int(perm[i]) for i in left_eye),
    }
    regressor = np.zeros((NUM_JOINTS, len(vertices)))
    for j, name in enumerate(JOINT_NAMES):
        idx = list(supports[name])
        regressor[j, idx] = affine_weights(vertices[idx], joints[j])
    return regressor


def build_skinning_weights(mesh: Mesh) -> np.ndarray:
    """V x J: iris points to their eye, the lower face to the jaw (smooth), the rest to the root."""
    weights = np.zeros((len(mesh.vertices), NUM_JOINTS))
    jaw = jaw_weights(mesh)
    weights[:, JOINT_NAMES.index("jaw")] = jaw
    weights[:, JOINT_NAMES.index("root")] = 1.0 - jaw
    for name, iris in (("eye_left", ids.LEFT_IRIS), ("eye_right", ids.RIGHT_IRIS)):
        weights[list(iris)] = 0.0
        weights[list(iris), JOINT_NAMES.index(name)] = 1.0
    return weights


def vertex_landmarks(faces: np.ndarray, num_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """For every vertex, the first triangle that uses it and the one-hot barycentric picking it."""
    face_of = np.full(num_vertices, -1, np.int64)
    bary = np.zeros((num_vertices, 3))
    for f in range(len(faces) - 1, -1, -1):  # backwards, so the first triangle wins
        for k in range(3):
            face_of[faces[f, k]] = f
    for v in range(num_vertices):
        if face_of[v] < 0:
            raise ValueError(f"vertex {v} is in no triangle")
        bary[v, list(faces[face_of[v]]).index(v)] = 1.0
    return face_of, bary


def build_open_model(canonical: np.ndarray) -> FaceModelData:
    """The authored open model from the canonical face (478 x 3, OpenCV frame). Deterministic.
    (scripts/build_open_model.py calibrates it on photographs: core/facemodel/open_model_calibration.py.)"""
    template, faces, perm = build_template(canonical)
    mesh = Mesh.build(template, faces)
    return assemble_open_model(mesh, perm, ExpressionAuthor(mesh, perm).build(), build_shape_basis(mesh))


def assemble_open_model(mesh: Mesh, perm: np.ndarray, expressions: np.ndarray, shape_basis: np.ndarray,
                        info: dict | None = None) -> FaceModelData:
    """The model data around a template mesh, its expression basis (V x 3 x 52) and identity basis
    (V x 3 x S); ``info`` is added to the model's own description."""
    template, faces = mesh.vertices, mesh.faces
    regressor = build_joint_regressor(template, faces, perm)
    skinning = build_skinning_weights(mesh)
    landmark_faces, landmark_bary = vertex_landmarks(faces, len(template))
    joints = joint_positions(template)
    info = {
        "version": MODEL_VERSION,
        "units": "metres",
        "axes": "x toward the performer's left, y up, z toward the viewer (FLAME's frame)",
        "origin": "between the outer eye corners (0.09 m apart)",
        "source": "resources/canonical_face_478.npy and MediaPipe's face-mesh tesselation",
        "builder": BUILD_COMMAND,
        "expressions": "the 52 ARKit blendshapes in Apple's order, weights in [0, 1], authored at full weight",
        "tongueOut": "MediaPipe has no tongue points: tongueOut parts the lips and pushes the lower lip down and out",
        "identity": f"{shape_basis.shape[2]} manifold harmonics (16 smoothest cotangent-Laplacian eigenvectors "
                    "x 3 axes, by frequency then axis); one unit moves the face 3 mm * sqrt(l1/lk) RMS (3 to 0.7 mm)",
    } | (info or {}) | {
        "neck": "the mesh has no neck: keep the neck pose at zero (it would move only the jaw and eye joints)",
        "joints": {name: [round(float(c), 6) for c in joints[j]] for j, name in enumerate(JOINT_NAMES)},
        "mirror": [int(i) for i in perm],
    }
    data = FaceModelData(
        name="open",
        template=template.astype(np.float32),
        faces=faces.astype(np.int64),
        shape_basis=shape_basis.astype(np.float32),
        expression_basis=expressions.astype(np.float32),
        pose_basis=np.zeros((NUM_POSE_CORRECTIVES, len(template) * 3), np.float32),
        joint_regressor=regressor.astype(np.float32),
        skinning_weights=skinning.astype(np.float32),
        landmark_faces=landmark_faces,
        landmark_barycentric=landmark_bary.astype(np.float32),
        landmark_ids=np.arange(len(template), dtype=np.int64),
        expression_names=ARKIT_NAMES,
        expression_bounds=(0.0, 1.0),
        info=info,
    )
    data.validate()
    return data
