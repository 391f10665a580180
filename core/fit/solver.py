"""Gauss-Newton normal equations for a window of frames, with the temporal coupling.

Each frame t has D unknowns; its data and prior terms give a D x D block H_t and a gradient g_t.
The acceleration penalty couples frames t-1, t, t+1 and is the same for every dimension, so the
whole window is ``(blockdiag(H_t) + K (x) diag(w)) delta = -(g + (K (x) diag(w)) x)``, with
K = D2^T D2 built from the second-difference rows of the valid centres. Frames given as fixed
anchors (the end of the previous window) enter the gradient but not the unknowns. Bounded
dimensions at a bound whose gradient points outward are frozen (projected Newton).

Each dimension may have its own temporal weight (coupling K (x) diag(w)). With the unknowns
ordered frame by frame the matrix is banded: inside a frame offsets up to D - 1,
and the coupling joins only the same dimension of frames t +- 1 and t +- 2 (offsets D and 2D). It
is solved exactly by a banded Cholesky factorisation (LAPACK), about (M D) (2 D)^2 operations.
Frozen entries stay in the system as identity rows, so the band is never broken.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solveh_banded


def second_difference_matrix(num_frames: int, centres: np.ndarray) -> sp.csr_matrix:
    """K = D2^T D2 (num_frames x num_frames) for second differences at ``centres``."""
    rows = np.repeat(np.arange(len(centres)), 3)
    cols = (centres[:, None] + np.array([-1, 0, 1])).ravel()
    values = np.tile([1.0, -2.0, 1.0], len(centres))
    d2 = sp.csr_matrix((values, (rows, cols)), shape=(len(centres), num_frames))
    return (d2.T @ d2).tocsr()


def solve_step(
    blocks: np.ndarray,
    gradient: np.ndarray,
    state: np.ndarray,
    temporal: np.ndarray,
    k_matrix: sp.csr_matrix | None,
    num_fixed: int,
    lower: np.ndarray,
    upper: np.ndarray,
    damping: float,
) -> np.ndarray:
    """One damped, projected Gauss-Newton step for the free frames.

    blocks: M x D x D, gradient: M x D (data + priors of the free frames), state: (F + M) x D the
    current values including F = num_fixed anchor frames first (used by the temporal term), k_matrix
    over F + M frames, temporal: D weights of the coupling per dimension, lower/upper: D bounds (-inf/inf where unbounded). Returns delta: M x D,
    zero for entries frozen at a bound, and clipped so that state + delta stays in bounds."""
    m, d = gradient.shape
    blocks = blocks.copy()
    diagonal = np.einsum("mii->mi", blocks)  # a writable view of each block's diagonal
    diagonal += damping * (diagonal + 1e-9)
    coupling = None
    rhs = -gradient
    weights = np.broadcast_to(np.asarray(temporal, dtype=np.float64), (d,))
    if weights.any() and k_matrix is not None and k_matrix.nnz:
        rhs = rhs - (k_matrix @ state)[num_fixed:] * weights
        coupling = k_matrix[num_fixed:, num_fixed:].tocsr()
    current = state[num_fixed:]
    lo, hi = lower[None], upper[None]
    eps = 1e-6
    frozen = ((current <= lo + eps) & (rhs < 0)) | ((current >= hi - eps) & (rhs > 0))
    keep = (~frozen).astype(np.float64)
    if frozen.any():  # frozen entries become identity rows and columns
        blocks *= keep[:, :, None]
        blocks *= keep[:, None, :]
        diagonal += 1 - keep
    coupling_diagonals = []
    if coupling is not None:
        coupling = coupling.todia() if hasattr(coupling, "todia") else coupling
        coupling_diagonals = [coupling.diagonal(k) for k in range(3)]
    band = banded_upper(blocks, coupling_diagonals, keep, weights)
    return solveh_banded(band, (rhs * keep).ravel(), check_finite=False).reshape(m, d)


def banded_upper(
    blocks: np.ndarray, coupling_diagonals: list[np.ndarray], keep: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """LAPACK upper band storage of blockdiag(blocks) + (coupling (x) diag(weights)) on the kept
    entries.

    blocks: M x D x D. coupling_diagonals: [main, first, second] diagonals of the M x M coupling
    (empty: none). keep: M x D (0 = frozen). weights: D. Returns (2D + 1) x (M D) with
    ab[u + i - j, j] = A[i, j]."""
    m, d = blocks.shape[:2]
    n, u = m * d, 2 * d
    ab = np.zeros((u + 1, n))
    for offset in range(d):  # entries (i, i + offset) of every block go to row u - offset
        ab[u - offset].reshape(m, d)[:, offset:] = np.diagonal(blocks, offset, axis1=1, axis2=2)
    flat_keep = (keep * np.sqrt(weights)[None]).ravel()
    for offset, diagonal in enumerate(coupling_diagonals):
        if offset == 0:
            ab[u] += np.repeat(diagonal, d) * flat_keep**2
        else:
            values = np.repeat(diagonal, d) * flat_keep[: len(diagonal) * d] * flat_keep[offset * d :]
            ab[u - offset * d, offset * d :] += values
    return ab
