"""Temporal terms that respect gaps: nothing is smoothed across frames without a face."""

from __future__ import annotations

import numpy as np
import torch


def segments(has_face: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive frames with a face, as (start, stop) row ranges."""
    runs, start = [], None
    for i, flag in enumerate(has_face):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(has_face)))
    return runs


def acceleration(values: torch.Tensor, valid_centres: torch.Tensor) -> torch.Tensor:
    """Second differences x[t-1] - 2 x[t] + x[t+1] at the rows ``valid_centres`` (1-D long tensor of
    t whose neighbours are in the same segment). values: N x D -> K x D."""
    return values[valid_centres - 1] - 2 * values[valid_centres] + values[valid_centres + 1]


def valid_centres(segment_ids: np.ndarray) -> np.ndarray:
    """Rows t with t-1 and t+1 in the same segment. segment_ids: N ints (-1 = no face)."""
    s = segment_ids
    ok = (s[1:-1] >= 0) & (s[:-2] == s[1:-1]) & (s[2:] == s[1:-1])
    return np.nonzero(ok)[0] + 1
