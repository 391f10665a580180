"""Compression wrinkles: thin dark lines where the skin folds, as game rigs' animated wrinkle
(tension) maps draw them.

Where the deformed skin is compressed relative to the reference (seen from the front, in the
head's frame), lines run across the compression: forehead lines when the brows rise, vertical
lines between knit brows, lines across the nose root for a sneer, crow's feet. Only in the zones
where faces fold (:func:`wrinkle_zones`), as the rigs' painted masks do, and across the axis the
muscle there folds the skin along (:data:`ZONE_AXES`): the nose root's lines run level and the
glabella's upright, whatever way the mesh's principal directions turn (drawn across the principal
directions, knit brows drew a level line through the glabella that the brows' motion bent into a
zigzag); the forehead's run across its most compressed direction only (across both, a brow raise
drew whorls). Elsewhere compression
(a smiling cheek, a narrowed chin) folds into broad shapes the relighting ratio
(:mod:`core.render.shading`) already shows. The lines are drawn in the reference's coordinates, so
they move with the skin. Units: metres; stretch tensors are right Cauchy-Green tensors
C = F^T F in the reference's x, y, stored as (C_xx, C_xy, C_yy).
"""

from __future__ import annotations

import numpy as np

WRINKLE_PERIOD_M = 0.007
WRINKLE_WIDTH = 0.18  # of the period: the dark line's Gaussian sigma
WRINKLE_ONSET = 0.04  # compression (1 - stretch) below which nothing shows
WRINKLE_FULL = 0.20  # compression at which the lines reach full strength
WRINKLE_DEPTH = 0.35  # darkening of a line at full strength

# Where skin folds into lines (the zones game rigs paint wrinkle maps for), as MediaPipe landmarks
# and radii (metres, neutral face): the forehead above the brows' upper contours, the glabella,
# nose root and bridge, the crow's feet beside the outer eye corners. (The chin was one too:
# its lines changed no recogniser's reading and rippled the chin of a dropped jaw.)
BROWS_UPPER = (70, 63, 105, 66, 107, 300, 293, 334, 296, 336)
GLABELLA = ((9, 8), 0.011)
NOSE_BRIDGE = ((168, 6, 197, 195), 0.011)
NOSE_HALF_WIDTH_M = 0.006  # the nose root's level lines stay on the nose: wider, knit brows bent them into a W
CROWS_FEET = ((33, 263), 0.016)
ZONE_EDGE_M = 0.004
# Per zone of :func:`wrinkle_zones`, the compressed directions its lines run across: fixed unit
# (x, y) directions in the head's frame, MOST (the most compressed principal direction only: the
# forehead's lines follow how the raised brows bunch it, level for a plain raise and rising to the
# midline for the inner brows of fear and sadness; across both directions, they whorled) or BOTH
# principal directions (crow's feet fan around the eye corner).
MOST, BOTH = "most", "both"
ZONE_AXES = (MOST, ((1.0, 0.0),), ((0.0, 1.0),), BOTH)


def planar_stretch(reference: np.ndarray, deformed: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Right Cauchy-Green tensors C = F^T F of the skin's motion seen from the front.

    reference: V x 3, deformed: B x V x 3 head-frame vertices; only x and y are used (the face
    seen from the front, where MediaPipe's motion is reliable). faces: F x 3. Returns B x V x 3
    (C_xx, C_xy, C_yy) per vertex in the reference's x, y: the triangles' tensors averaged with
    their frontal areas as weights (identity where a vertex has no triangle with frontal area).
    sqrt of C's eigenvalues are the principal stretches (< 1: compressed)."""
    r = reference[faces][..., :2]  # F x 3 x 2
    e = np.stack([r[:, 1] - r[:, 0], r[:, 2] - r[:, 0]], axis=2)  # F x 2 x 2, columns = edges
    det = e[:, 0, 0] * e[:, 1, 1] - e[:, 0, 1] * e[:, 1, 0]
    weight = np.abs(det)
    safe = np.where(weight > 1e-12, det, 1.0)
    adjugate = np.stack([np.stack([e[:, 1, 1], -e[:, 0, 1]], 1), np.stack([-e[:, 1, 0], e[:, 0, 0]], 1)], 1)
    inv = adjugate / safe[:, None, None]
    d = deformed[:, faces][..., :2]  # B x F x 3 x 2
    de = np.stack([d[:, :, 1] - d[:, :, 0], d[:, :, 2] - d[:, :, 0]], axis=3)  # B x F x 2 x 2
    grad = np.einsum("bfij,fjk->bfik", de, inv)  # F = D R^-1
    c = np.einsum("bfki,bfkj->bfij", grad, grad)
    comps = np.stack([c[..., 0, 0], c[..., 0, 1], c[..., 1, 1]], axis=2)  # B x F x 3
    num_vertices = reference.shape[0]
    total = np.zeros(num_vertices)
    out = np.zeros((len(deformed), num_vertices, 3))
    for k in range(3):
        total += np.bincount(faces[:, k], weight, minlength=num_vertices)
        for b in range(len(deformed)):
            for q in range(3):
                out[b, :, q] += np.bincount(faces[:, k], weight * comps[b, :, q], minlength=num_vertices)
    empty = total <= 0
    out /= np.where(empty, 1.0, total)[None, :, None]
    out[:, empty] = (1.0, 0.0, 1.0)
    return out


def principal_stretches(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K x 3 tensors (C_xx, C_xy, C_yy) -> (K smaller stretch, K larger stretch, K x 2 unit
    direction of the smaller one)."""
    a, b, d = c[:, 0], c[:, 1], c[:, 2]
    mean = (a + d) / 2
    radius = np.sqrt(((a - d) / 2) ** 2 + b**2)
    low, high = mean - radius, mean + radius
    # eigenvector of `low`: (b, low - a) or (low - d, b), whichever is longer
    v1 = np.stack([b, low - a], 1)
    v2 = np.stack([low - d, b], 1)
    v = np.where((np.abs(a - low) > np.abs(d - low))[:, None], v1, v2)
    n = np.sqrt(v[:, 0] ** 2 + v[:, 1] ** 2)[:, None]
    v = np.where(n > 1e-12, v / np.maximum(n, 1e-12), np.array([1.0, 0.0]))
    return np.sqrt(np.clip(low, 0, None)), np.sqrt(np.clip(high, 0, None)), v


def wrinkle_shade(c: np.ndarray, position: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """Darkening by compression wrinkles at K surface points: thin dark lines across the compressed
    directions of each zone (:data:`ZONE_AXES`).

    c: K x 3 stretch tensors; position: K x 2 reference head-frame x, y (metres), where the lines
    are drawn (so they move with the skin); zone: K x Z weights in [0, 1], one column per zone of
    :func:`wrinkle_zones`. Returns K factors in (0, 1]."""
    low, high, d = principal_stretches(c)
    principal = ((low, high, d), (high, low, np.stack([-d[:, 1], d[:, 0]], 1)))
    dark = np.zeros(len(c))
    for column, axes in enumerate(ZONE_AXES):
        weight = zone[:, column]
        if not weight.any():
            continue
        if axes == MOST:
            directions = principal[:1]
        elif axes == BOTH:
            directions = principal
        else:
            directions = []
            for axis in axes:
                u = np.broadcast_to(np.asarray(axis), (len(c), 2))
                other = np.stack([-u[:, 1], u[:, 0]], 1)
                directions.append((_stretch_along(c, u), _stretch_along(c, other), u))
        lines = np.zeros(len(c))
        for stretch, across, direction in directions:
            # compression that the other direction's stretch makes up for (a dropped jaw narrows
            # the chin as it lengthens it) folds nothing
            compression = 1.0 - stretch - np.clip(across - 1.0, 0.0, None)
            amount = np.clip((compression - WRINKLE_ONSET) / (WRINKLE_FULL - WRINKLE_ONSET), 0.0, 1.0)
            phase = (position * direction).sum(axis=1) / WRINKLE_PERIOD_M
            offset = phase - np.round(phase)
            lines += amount * np.exp(-0.5 * (offset / WRINKLE_WIDTH) ** 2)
        dark = np.maximum(dark, weight * np.clip(lines, 0.0, 1.0))
    return 1.0 - WRINKLE_DEPTH * dark


def _stretch_along(c: np.ndarray, u: np.ndarray) -> np.ndarray:
    """K stretches of K x 3 tensors (C_xx, C_xy, C_yy) along K x 2 unit directions: sqrt(u^T C u)."""
    squared = c[:, 0] * u[:, 0] ** 2 + 2 * c[:, 1] * u[:, 0] * u[:, 1] + c[:, 2] * u[:, 1] ** 2
    return np.sqrt(np.clip(squared, 0.0, None))


def wrinkle_zones(vertices: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """V x 4 weights in [0, 1]: where compression may draw lines, per zone (the forehead above the
    brows, the glabella between them, the nose root and bridge, the crow's feet; :data:`ZONE_AXES`). vertices: V x 3
    neutral model-space vertices; landmarks: 478 x 3 the same face's MediaPipe landmarks (x left,
    y up, metres)."""

    def near(points, radius) -> np.ndarray:
        d = np.linalg.norm(vertices[:, None] - landmarks[list(points)][None], axis=2).min(axis=1)
        return np.clip((radius - d) / ZONE_EDGE_M, 0.0, 1.0)

    brows = landmarks[list(BROWS_UPPER)]
    order = np.argsort(brows[:, 0])
    brow_y = np.interp(vertices[:, 0], brows[order, 0], brows[order, 1])
    half_width = np.abs(brows[:, 0]).max() + 0.005
    forehead = np.clip((vertices[:, 1] - brow_y) / ZONE_EDGE_M, 0.0, 1.0)
    forehead *= np.clip((half_width - np.abs(vertices[:, 0])) / ZONE_EDGE_M, 0.0, 1.0)
    corners = landmarks[list(CROWS_FEET[0])]
    lateral = np.clip((np.abs(vertices[:, 0]) - np.abs(corners[:, 0]).mean() + 0.003) / ZONE_EDGE_M, 0.0, 1.0)
    on_nose = np.clip((NOSE_HALF_WIDTH_M - np.abs(vertices[:, 0])) / ZONE_EDGE_M, 0.0, 1.0)
    return np.stack([forehead, near(*GLABELLA), near(*NOSE_BRIDGE) * on_nose, near(*CROWS_FEET) * lateral], axis=1)
