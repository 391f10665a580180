"""Emotion consistency between an image and its reconstruction.

The measure the emotion-consistency and FIELDS papers optimise: a recogniser looks at the input
face and at the rendered reconstruction, and their emotions must agree. Per frame:
``1 - JS(p_image, p_render)``, with the Jensen-Shannon divergence in bits (0 = identical
distributions, 1 = disjoint), so consistency is 1 for the same emotion and 0 for unrelated ones.
"""

from __future__ import annotations

import numpy as np


def jensen_shannon(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence in bits of N x C probability rows -> N, in [0, 1]."""
    p = np.clip(p, eps, None)
    q = np.clip(q, eps, None)
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    m = 0.5 * (p + q)
    return 0.5 * (p * np.log2(p / m)).sum(axis=1) + 0.5 * (q * np.log2(q / m)).sum(axis=1)


def consistency(image_probabilities: np.ndarray, render_probabilities: np.ndarray) -> np.ndarray:
    """N x C, N x C -> N in [0, 1]; NaN rows stay NaN."""
    out = 1.0 - jensen_shannon(np.nan_to_num(image_probabilities), np.nan_to_num(render_probabilities))
    missing = np.isnan(image_probabilities).any(axis=1) | np.isnan(render_probabilities).any(axis=1)
    out[missing] = np.nan
    return out.astype(np.float32)
