"""A floor under fitted curves (core/closures/enforce.py makes it; ``Take.read_fit`` applies it):
numpy only, so that reading a take does not load the face model."""

from __future__ import annotations

import numpy as np


def apply_floor(expression: np.ndarray, floor: np.ndarray | None) -> np.ndarray:
    """``expression`` (N x E) raised to ``floor`` (N x E, NaN: none) where the floor is higher."""
    if floor is None:
        return expression
    return np.where(np.isfinite(floor) & (floor > expression), floor, expression).astype(expression.dtype)
