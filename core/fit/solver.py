"""Gauss-Newton normal equations for a window of frames, with the temporal coupling.

Each frame t has D unknowns; its data and prior terms give a D x D block H_t and a gradient g_t.
The acceleration penalty couples frames t-1, t, t+1 and is the same for every dimension, so the
whole window is ``(blockdiag(H_t) + lambda K (x) I_D) delta = -(g + lambda (K (x) I_D) x)``, with
K = D2^T D2 built from the second-difference rows of the valid centres. Frames given as fixed
anchors (the end of the previous window) enter the gradient but not the unknowns. Bounded
dimensions at a bound whose gradient points outward are frozen (projected Newton).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve


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
    temporal: float,
    k_matrix: sp.csr_matrix | None,
    num_fixed: int,
    lower: np.ndarray,
    upper: np.ndarray,
    damping: float,
) -> np.ndarray:
    """One damped, projected Gauss-Newton step for the free frames.

    blocks: M x D x D, gradient: M x D (data + priors of the free frames), state: (F + M) x D the
    current values including F = num_fixed anchor frames first (used by the temporal term), k_matrix
    over F + M frames, lower/upper: D bounds (-inf/inf where unbounded). Returns delta: M x D,
    zero for entries frozen at a bound, and clipped so that state + delta stays in bounds."""
    m, d = gradient.shape
    diag = np.einsum("mii->mi", blocks)
    blocks = blocks + (damping * (diag + 1e-9))[:, :, None] * np.eye(d)[None]
    hessian = sp.block_diag(list(blocks), format="csr")
    rhs = -gradient.ravel()
    if temporal > 0 and k_matrix is not None and k_matrix.nnz:
        coupling = temporal * sp.kron(k_matrix, sp.identity(d), format="csr")
        full_gradient = coupling @ state.ravel()
        free = slice(num_fixed * d, None)
        hessian = hessian + coupling[free, free]
        rhs = rhs - full_gradient[free]
    current = state[num_fixed:].ravel()
    lo, hi = np.tile(lower, m), np.tile(upper, m)
    eps = 1e-6
    frozen = ((current <= lo + eps) & (rhs < 0)) | ((current >= hi - eps) & (rhs > 0))
    keep = ~frozen
    delta = np.zeros(m * d)
    if keep.any():
        reduced = hessian[keep][:, keep].tocsc()
        delta[keep] = spsolve(reduced, rhs[keep])
    delta = np.clip(current + delta, lo, hi) - current
    return delta.reshape(m, d)
