"""Real expression motion: a person's landmarks from their own neutral photo to an expression photo.

The observed motion is that of MediaPipe's 478 landmarks, the expression photo aligned onto the
neutral one by a similarity on points that expressions hardly move (nose bridge, eye corners, face
sides). The fitted motion is that of the two fits' landmarks, the expression's moved by the same
similarity. The share of the real motion the fit explains is ``1 - |W (observed - fitted)|^2 /
|W observed|^2`` over the landmarks, W weighing depth as the fitter does: what is left unexplained
is where the expression photo's fit misses in another way than the neutral photo's fit does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.observe.headpose import similarity_align

STABLE = (168, 6, 197, 195, 133, 362, 33, 263, 234, 454, 93, 323, 127, 356)


def alignment(neutral: np.ndarray, expression: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """The similarity that puts the expression photo's points (N x 3) onto the neutral one's, fitted
    on the STABLE landmarks of their observed 478 x 3 landmarks, and its scale."""
    rot, shift, scale = similarity_align(expression[list(STABLE)].astype(np.float64),
                                         neutral[list(STABLE)].astype(np.float64))
    return (lambda points: scale * points.astype(np.float64) @ rot.T + shift), float(scale)


def motion_energy(motion: np.ndarray, z_weight: float) -> float:
    """|W motion|^2 of a 478 x 3 motion, depth weighed by z_weight, without its mean over the
    STABLE points (MediaPipe's depth has no absolute origin)."""
    motion = motion.astype(np.float64).copy()
    motion[:, 2] -= motion[list(STABLE), 2].mean()
    return float(((motion * np.array([1.0, 1.0, np.sqrt(z_weight)])) ** 2).sum())


def explained_share(neutral: np.ndarray, expression: np.ndarray, neutral_fit: np.ndarray, expression_fit: np.ndarray,
                    z_weight: float) -> float:
    """neutral, expression: observed 478 x 3 image landmarks; *_fit: the fits' 478 x 3 landmarks."""
    aligned, _ = alignment(neutral, expression)
    observed = aligned(expression) - neutral
    fitted = aligned(expression_fit) - neutral_fit
    return 1.0 - motion_energy(observed - fitted, z_weight) / motion_energy(observed, z_weight)


def kept_share(basis: np.ndarray, reference: np.ndarray, other: np.ndarray, z_weight: float) -> float:
    """How much of the expression motion of ``reference`` curves (E) ``other`` curves reproduce on
    the model (basis: V x 3 x E): 1 - |W B (reference - other)|^2 / |W B reference|^2."""
    axis = np.array([1.0, 1.0, np.sqrt(z_weight)])
    motion = np.einsum("vce,e->vc", basis, reference) * axis
    gap = np.einsum("vce,e->vc", basis, reference - other) * axis
    return 1.0 - float((gap**2).sum() / max((motion**2).sum(), 1e-18))
