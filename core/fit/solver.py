"""Gauss-Newton normal equations for a window of frames, with the temporal coupling.

Each frame t has D unknowns; its data and prior terms give a D x D block H_t and a gradient g_t.
The acceleration penalty couples frames t-1, t, t+1 of the same dimension: per dimension d,
``sum_c w_d rho_d(a_cd)`` over the second differences a = D2 x at the valid centres c, with rho_d
the square up to ``delta_d`` and Huber's linear growth beyond (delta_d = inf: the plain square).
Each Gauss-Newton step takes the penalty's quadratic majoriser at the current values (iteratively
reweighted least squares: a centre whose acceleration is beyond delta_d weighs delta_d / |a_cd|),
so the whole window is ``(blockdiag(H_t) + sum_d K_d (x) e_d e_d^T) delta = -(g + K x)`` with
K_d = D2^T diag(s_d) D2. Frames given as fixed anchors (the end of the previous window) enter the
gradient but not the unknowns. Bounded dimensions at a bound whose gradient points outward are
frozen (projected Newton).

With the unknowns ordered frame by frame the matrix is banded: inside a frame offsets up to D - 1,
and the coupling joins only the same dimension of frames t +- 1 and t +- 2 (offsets D and 2D). It
is solved exactly by a banded Cholesky factorisation (LAPACK), about (M D) (2 D)^2 operations.
Frozen entries stay in the system as identity rows, so the band is never broken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solveh_banded


def second_differences(values: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """N x D values -> C x D accelerations x[c-1] - 2 x[c] + x[c+1] at the C ``centres``."""
    return values[centres - 1] - 2.0 * values[centres] + values[centres + 1]


@dataclass(frozen=True)
class Coupling:
    """The quadratic temporal coupling of one step: ``sum_d sum_c scale[c, d] a_cd^2`` over
    ``num_frames`` frames (anchors first), a_cd = x[c-1, d] - 2 x[c, d] + x[c+1, d] at the C
    ``centres``; scale: C x D (>= 0)."""

    num_frames: int
    centres: np.ndarray
    scale: np.ndarray

    def half_gradient(self, values: np.ndarray) -> np.ndarray:
        """num_frames x D: K x per dimension (half the coupling's gradient)."""
        weighted = self.scale * second_differences(values, self.centres)
        out = np.zeros_like(values, dtype=np.float64)
        c = self.centres  # distinct, so each += below touches a row once
        out[c - 1] += weighted
        out[c] -= 2.0 * weighted
        out[c + 1] += weighted
        return out

    def diagonals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The main, first and second diagonals of every K_d: num_frames x D, (num_frames - 1) x D
        and (num_frames - 2) x D."""
        n, d = self.num_frames, self.scale.shape[1]
        main, first, second = np.zeros((n, d)), np.zeros((max(n - 1, 0), d)), np.zeros((max(n - 2, 0), d))
        c, s = self.centres, self.scale  # distinct centres: each += below touches a row once
        main[c - 1] += s
        main[c] += 4.0 * s
        main[c + 1] += s
        first[c - 1] -= 2.0 * s  # frames (c-1, c)
        first[c] -= 2.0 * s  # frames (c, c+1)
        second[c - 1] += s  # frames (c-1, c+1)
        return main, first, second


@dataclass(frozen=True)
class AccelerationPenalty:
    """``sum_d weights_d sum_c rho_d(a_cd)`` over ``num_frames`` frames (anchors first), a the second
    differences at ``centres`` (C); rho_d(a) = a^2 for |a| <= delta_d and 2 delta_d |a| - delta_d^2
    beyond (Huber: noise is smoothed as by the square, a genuine fast move is not held back by it).
    weights, delta: D (delta_d = inf: the plain square)."""

    num_frames: int
    centres: np.ndarray
    weights: np.ndarray
    delta: np.ndarray

    def energy(self, values: np.ndarray) -> float:
        """The penalty of num_frames x D values."""
        a = np.abs(second_differences(values, self.centres))
        inside = np.minimum(a, self.delta)
        rho = inside**2 + 2.0 * inside * (a - inside)
        return float((rho * self.weights).sum())

    def coupling(self, values: np.ndarray) -> Coupling:
        """The quadratic majoriser at ``values`` (num_frames x D): plus a constant, it equals the
        penalty there, has its gradient there, and lies above it everywhere else."""
        a = np.abs(second_differences(values, self.centres))
        with np.errstate(divide="ignore", invalid="ignore"):
            reweight = np.where(a > self.delta, self.delta / a, 1.0)
        return Coupling(self.num_frames, self.centres, self.weights * reweight)


def solve_step(
    blocks: np.ndarray,
    gradient: np.ndarray,
    state: np.ndarray,
    coupling: Coupling | None,
    num_fixed: int,
    lower: np.ndarray,
    upper: np.ndarray,
    damping: float,
) -> np.ndarray:
    """One damped, projected Gauss-Newton step for the free frames.

    blocks: M x D x D, gradient: M x D (data + priors of the free frames), state: (F + M) x D the
    current values including F = num_fixed anchor frames first (used by the temporal term),
    coupling: the temporal coupling over F + M frames (None: none), lower/upper: D bounds
    (-inf/inf where unbounded). Returns delta: M x D, zero for entries frozen at a bound."""
    m, d = gradient.shape
    blocks = blocks.copy()
    diagonal = np.einsum("mii->mi", blocks)  # a writable view of each block's diagonal
    diagonal += damping * (diagonal + 1e-9)
    rhs = -gradient
    coupling_diagonals = []
    if coupling is not None and len(coupling.centres) and coupling.scale.any():
        rhs = rhs - coupling.half_gradient(state)[num_fixed:]
        coupling_diagonals = [diag[num_fixed:] for diag in coupling.diagonals()]
    current = state[num_fixed:]
    lo, hi = lower[None], upper[None]
    eps = 1e-6
    frozen = ((current <= lo + eps) & (rhs < 0)) | ((current >= hi - eps) & (rhs > 0))
    keep = (~frozen).astype(np.float64)
    if frozen.any():  # frozen entries become identity rows and columns
        blocks *= keep[:, :, None]
        blocks *= keep[:, None, :]
        diagonal += 1 - keep
    band = banded_upper(blocks, coupling_diagonals, keep)
    return solveh_banded(band, (rhs * keep).ravel(), check_finite=False).reshape(m, d)


def banded_upper(blocks: np.ndarray, coupling_diagonals: list[np.ndarray], keep: np.ndarray) -> np.ndarray:
    """LAPACK upper band storage of blockdiag(blocks) + sum_d K_d (x) e_d e_d^T on the kept entries.

    blocks: M x D x D. coupling_diagonals: [main M x D, first (M-1) x D, second (M-2) x D]
    diagonals of each dimension's M x M coupling (empty: none). keep: M x D (0 = frozen).
    Returns (2D + 1) x (M D) with ab[u + i - j, j] = A[i, j]."""
    m, d = blocks.shape[:2]
    n, u = m * d, 2 * d
    ab = np.zeros((u + 1, n))
    for offset in range(d):  # entries (i, i + offset) of every block go to row u - offset
        ab[u - offset].reshape(m, d)[:, offset:] = np.diagonal(blocks, offset, axis1=1, axis2=2)
    flat_keep = keep.ravel()
    for offset, diagonal in enumerate(coupling_diagonals):
        if offset == 0:
            ab[u] += diagonal.ravel() * flat_keep**2
        else:
            values = diagonal.ravel() * flat_keep[: len(diagonal) * d] * flat_keep[offset * d :]
            ab[u - offset * d, offset * d :] += values
    return ab
