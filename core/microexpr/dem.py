"""Dynamic-encoded module (DEM): a global, temporally evolving expression update from optical flow.

Sun and Zhang (2026): a static encoder reads the onset (neutral reference) frame, a motion encoder
reads the optical flow, a residual fusion combines them into a drive, and a neural ODE evolves the
expression update over time. Here:

- static encoder: MLP on the onset frame's reconstruction (fitted expression weights and the
  layout of the mesh regions, so the same motion can mean different things on different faces);
- motion encoder: MLP on per-region flow features of each frame (core/microexpr/features.py);
- residual fusion: fused = motion code + MLP([static code, motion code]);
- evolution: the expression update z(t) (E weights) obeys
  dz/dt = rate * (u(t) - z) + g(z, u(t)),   u(t) = decoder(fused(t)) interpolated between frames,
  a learned first-order response (per-component rates in 1/s, time constants >= MIN_TAU_S) plus a
  small learned non-linear term g, solved on a fixed step in seconds, so the dynamics do not
  depend on the frame rate. z is 0 at the onset and is integrated away from it in both directions
  (forward after the onset, in reversed time before it): the onset frame is the neutral reference
  by construction. The midpoint method (the default) runs both directions as one batch, stepping
  as torchdiffeq's fixed-grid solver does (the same grid, steps and linear interpolation to the
  frame times) with the drive precomputed at every evaluation time: a training step is hundreds of
  these tiny sequential steps, and their per-operation overhead, not arithmetic, is what they
  cost, so they run in numpy as one autograd node with an exact hand-written backward pass
  (core/microexpr/midpoint.py). Other methods (rk4, ...) run through torchdiffeq.

The decoder and g start at zero, so an untrained module returns a zero update. Pure nn.Modules, no
I/O.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import torch
from torch import nn
from torchdiffeq import odeint

from core.microexpr.midpoint import MidpointPath

MIN_TAU_S = 0.005  # fastest response of an expression component (seconds)
INITIAL_TAU_S = 0.01
ODE_STEP_S = 0.005


def mlp(sizes: list[int], activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def zero_last(module: nn.Sequential) -> nn.Sequential:
    last = module[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return module


class StaticEncoder(nn.Module):
    """Onset features 1 x Ds -> static code 1 x H."""

    def __init__(self, static_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = mlp([static_dim, hidden, hidden])

    def forward(self, static: torch.Tensor) -> torch.Tensor:
        return self.net(static)


class MotionEncoder(nn.Module):
    """Per-frame flow features T x Dm -> motion codes T x H."""

    def __init__(self, motion_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = mlp([motion_dim, 2 * hidden, hidden])

    def forward(self, motion: torch.Tensor) -> torch.Tensor:
        return self.net(motion)


class ResidualFusion(nn.Module):
    """fused = motion + MLP([static, motion]); static 1 x H (broadcast), motion T x H -> T x H."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = mlp([2 * hidden, hidden, hidden])

    def forward(self, static: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        return motion + self.net(torch.cat([static.expand(motion.shape[0], -1), motion], dim=1))


def interpolate_rows(times: list[float], values: torch.Tensor, t: float) -> torch.Tensor:
    """Piecewise-linear value at time t of samples values: T x D at increasing ``times`` (T
    floats, seconds; held constant outside them) -> 1 x D."""
    if t <= times[0] or len(times) == 1:
        return values[:1]
    if t >= times[-1]:
        return values[-1:]
    i = bisect.bisect_right(times, t)
    w = (t - times[i - 1]) / max(times[i] - times[i - 1], 1e-12)
    return values[i - 1 : i] * (1.0 - w) + values[i : i + 1] * w


class ExpressionDynamics(nn.Module):
    """Right-hand side of the expression ODE: dz/dt = rate * (u(t) - z) + g([z, u(t)]).

    rate: E per second, at most 1 / MIN_TAU_S. ``drive(times, u)`` sets the T x E drive sampled at
    T increasing times (seconds); ``direction`` -1 evaluates the drive at -t (reversed time)."""

    def __init__(self, num_expression: int, hidden: int) -> None:
        super().__init__()
        max_rate = 1.0 / MIN_TAU_S
        start = 1.0 / INITIAL_TAU_S / max_rate  # rate = max_rate * sigmoid(raw)
        self.raw_rate = nn.Parameter(torch.full((num_expression,), math.log(start / (1 - start))))
        self.max_rate = max_rate
        self.g = zero_last(mlp([2 * num_expression, hidden, num_expression], nn.Tanh))
        self._times: list[float] = []
        self._drive: torch.Tensor | None = None
        self.direction = 1.0

    @property
    def rate(self) -> torch.Tensor:
        return self.max_rate * torch.sigmoid(self.raw_rate)

    def drive(self, times: torch.Tensor, values: torch.Tensor, direction: float = 1.0) -> None:
        self._times, self._drive, self.direction = times.tolist(), values, direction

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        u = interpolate_rows(self._times, self._drive, float(t) * self.direction)
        return self.rate * (u - z) + self.g(torch.cat([z, u], dim=1))

    def midpoint_from_onset(self, rel: torch.Tensor, drive: torch.Tensor, onset: int, step_s: float) -> torch.Tensor:
        """z at the T times ``rel`` (seconds from the onset, increasing; rel[onset] = 0) with
        z(0) = 0, integrated by the midpoint method on a ``step_s`` grid forward after the onset
        and in reversed time before it, both at once: T x E. ``drive``: T x E, u at ``rel``."""
        rate = self.rate
        times = rel.tolist()
        branches = [(rel[onset:], 1.0)] + ([(-rel[: onset + 1].flip(0), -1.0)] if onset > 0 else [])
        grids = [fixed_grid(out, step_s) if len(out) > 1 else out for out, _ in branches]
        steps = max(len(grid) - 1 for grid in grids)
        # per branch and step: the step (0 once the branch has reached its end) and the drive at
        # the step's start and middle, as torchdiffeq computes them (its times in float32)
        dt = torch.zeros(steps, len(branches), 1, dtype=drive.dtype)
        half = torch.zeros_like(dt)
        u_start = drive.new_zeros(steps, len(branches), drive.shape[1])
        u_mid = torch.zeros_like(u_start)
        for b, ((_, direction), grid) in enumerate(zip(branches, grids)):
            n = len(grid) - 1
            if n == 0:
                continue
            step = grid[1:] - grid[:-1]
            half_step = 0.5 * step
            dt[:n, b, 0], half[:n, b, 0] = step.to(drive.dtype), half_step.to(drive.dtype)
            at = torch.cat([grid[:-1], grid[:-1] + half_step]).double().numpy() * direction
            values = drive_at(times, drive, at)
            u_start[:n, b], u_mid[:n, b] = values[:n], values[n:]
        # g is Linear([z, u]) -> tanh -> Linear: the drive's share of both linear maps, and the
        # drive term of the first-order response, are computed for every evaluation at once; the
        # sequential steps on z are one autograd node (core/microexpr/midpoint.py)
        inner, outer = self.g[0], self.g[2]
        width = drive.shape[1]
        from_z, from_u = inner.weight[:, :width].t(), inner.weight[:, width:].t()
        path = MidpointPath.apply(u_start @ from_u + inner.bias, u_mid @ from_u + inner.bias,
                                  rate * u_start + outer.bias, rate * u_mid + outer.bias, rate, from_z,
                                  outer.weight.t(), half, dt)  # steps + 1 x branches x E
        solved = []
        for b, ((out, _), grid) in enumerate(zip(branches, grids)):
            solved.append(_at_times(path[: len(grid), b], grid, out))
        after = solved[0]
        if onset == 0:
            return after
        return torch.cat([solved[1].flip(0)[:-1], after], dim=0)


def fixed_grid(times: torch.Tensor, step_s: float) -> torch.Tensor:
    """The step grid of torchdiffeq's fixed-grid solvers for output ``times`` (increasing, 1-D):
    ``step_s`` apart from times[0], the last point moved onto times[-1]."""
    count = torch.ceil((times[-1] - times[0]) / step_s + 1).item()
    grid = torch.arange(0, count, dtype=times.dtype) * step_s + times[0]
    grid[-1] = times[-1]
    return grid


def drive_at(times: list[float], values: torch.Tensor, at: np.ndarray) -> torch.Tensor:
    """:func:`interpolate_rows` at many times at once (its weights in double precision, as there):
    ``at`` (N, seconds) -> N x D."""
    if len(times) == 1:
        return values[:1].expand(len(at), -1)
    grid = np.asarray(times)
    upper = np.clip(np.searchsorted(grid, at, side="right"), 1, len(grid) - 1)
    lower = upper - 1
    weight = (at - grid[lower]) / np.maximum(grid[upper] - grid[lower], 1e-12)
    weight = np.where(at <= grid[0], 0.0, np.where(at >= grid[-1], 1.0, weight))
    keep = torch.as_tensor(1.0 - weight, dtype=values.dtype)[:, None]
    take = torch.as_tensor(weight, dtype=values.dtype)[:, None]
    return values[lower] * keep + values[upper] * take


def integrate(func: nn.Module, z0: torch.Tensor, times: torch.Tensor, method: str, step_s: float) -> torch.Tensor:
    """Solve dz/dt = func(t, z) from z(times[0]) = z0 (1 x D) and return T x D at ``times``
    (increasing, seconds)."""
    if len(times) == 1:
        return z0
    options = {"step_size": step_s} if method in ("euler", "midpoint", "rk4", "explicit_adams", "implicit_adams") else None
    return odeint(func, z0, times, method=method, options=options)[:, 0]


class DynamicEncodedModule(nn.Module):
    """Expression update over a window, from the onset frame and the flow.

    forward(static 1 x Ds, motion T x Dm, times T seconds (increasing), onset row) -> T x E
    expression update, exactly 0 at the onset row."""

    def __init__(self, num_expression: int, static_dim: int, motion_dim: int, hidden: int = 32,
                 method: str = "midpoint", step_s: float = ODE_STEP_S) -> None:
        super().__init__()
        self.static_encoder = StaticEncoder(static_dim, hidden)
        self.motion_encoder = MotionEncoder(motion_dim, hidden)
        self.fusion = ResidualFusion(hidden)
        self.decoder = zero_last(mlp([hidden, hidden, num_expression]))
        self.dynamics = ExpressionDynamics(num_expression, hidden)
        self.method = method
        self.step_s = step_s

    def drive(self, static: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """T x E: the instantaneous expression update u(t) the ODE relaxes toward."""
        return self.decoder(self.fusion(self.static_encoder(static), self.motion_encoder(motion)))

    def forward(self, static: torch.Tensor, motion: torch.Tensor, times: torch.Tensor, onset: int) -> torch.Tensor:
        u = self.drive(static, motion)
        rel = times - times[onset]
        if self.method == "midpoint":
            return self.dynamics.midpoint_from_onset(rel, u, onset, self.step_s)
        return from_onset_with_torchdiffeq(self.dynamics, rel, u, onset, self.method, self.step_s)


def from_onset_with_torchdiffeq(dynamics: ExpressionDynamics, rel: torch.Tensor, drive: torch.Tensor, onset: int,
                                method: str, step_s: float) -> torch.Tensor:
    """What :meth:`ExpressionDynamics.midpoint_from_onset` computes, by torchdiffeq's ``method``
    one direction at a time: T x E."""
    z0 = drive.new_zeros(1, drive.shape[1])
    dynamics.drive(rel, drive, 1.0)
    after = integrate(dynamics, z0, rel[onset:], method, step_s)
    if onset == 0:
        return after
    dynamics.drive(rel, drive, -1.0)
    before = integrate(dynamics, z0, -rel[: onset + 1].flip(0), method, step_s)
    return torch.cat([before.flip(0)[:-1], after], dim=0)


def _at_times(states: torch.Tensor, grid: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """The solution at output ``times`` (T, increasing, times[0] = grid[0]) from the ``states``
    (G x E) at the ``grid`` points (G), linearly interpolated inside a step, as torchdiffeq does
    (a time on a grid point takes that point's state exactly) -> T x E."""
    if len(grid) == 1:
        return states[:1].expand(len(times), -1)
    end = torch.searchsorted(grid, times[1:], side="left").clamp(1, len(grid) - 1)  # first grid point >= t
    start = end - 1
    t0, t1 = grid[start], grid[end]
    slope = ((times[1:] - t0) / (t1 - t0))[:, None]
    y0, y1 = states[start], states[end]
    inside = y0 + slope * (y1 - y0)
    value = torch.where((times[1:] == t1)[:, None], y1, torch.where((times[1:] == t0)[:, None], y0, inside))
    return torch.cat([states[:1], value])
