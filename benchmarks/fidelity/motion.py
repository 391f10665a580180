"""Real expression motion: a person's landmarks from their own neutral photo to an expression photo.

The observed motion is that of MediaPipe's 478 landmarks, the expression photo aligned onto the
neutral one by a similarity on points that expressions hardly move (nose bridge, eye corners, face
sides). The fitted motion is that of the two fits' landmarks, the expression's moved by the same
similarity. The share of the real motion the fit explains is ``1 - |W (observed - fitted)|^2 /
|W observed|^2`` over the landmarks, W weighing depth as the fitter does: what is left unexplained
is where the expression photo's fit misses in another way than the neutral photo's fit does.
"""

from __future__ import annotations

import numpy as np

from core.observe.headpose import similarity_align

STABLE = (168, 6, 197, 195, 133, 362, 33, 263, 234, 454, 93, 323, 127, 356)


def explained_share(neutral: np.ndarray, expression: np.ndarray, neutral_fit: np.ndarray, expression_fit: np.ndarray,
                    z_weight: float) -> float:
    """neutral, expression: observed 478 x 3 image landmarks; *_fit: the fits' 478 x 3 landmarks."""
    rot, shift, scale = similarity_align(expression[list(STABLE)].astype(np.float64),
                                         neutral[list(STABLE)].astype(np.float64))

    def aligned(points: np.ndarray) -> np.ndarray:
        return scale * points.astype(np.float64) @ rot.T + shift

    observed = aligned(expression) - neutral
    fitted = aligned(expression_fit) - neutral_fit
    axis = np.array([1.0, 1.0, np.sqrt(z_weight)])
    for motion in (observed, fitted):
        motion[:, 2] -= motion[list(STABLE), 2].mean()  # MediaPipe's depth has no absolute origin
    return 1.0 - float((((observed - fitted) * axis) ** 2).sum() / ((observed * axis) ** 2).sum())


def kept_share(basis: np.ndarray, reference: np.ndarray, other: np.ndarray, z_weight: float) -> float:
    """How much of the expression motion of ``reference`` curves (E) ``other`` curves reproduce on
    the model (basis: V x 3 x E): 1 - |W B (reference - other)|^2 / |W B reference|^2."""
    axis = np.array([1.0, 1.0, np.sqrt(z_weight)])
    motion = np.einsum("vce,e->vc", basis, reference) * axis
    gap = np.einsum("vce,e->vc", basis, reference - other) * axis
    return 1.0 - float((gap**2).sum() / max((motion**2).sum(), 1e-18))
