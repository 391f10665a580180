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
  small learned non-linear term g, solved with torchdiffeq on a fixed step in seconds, so the
  dynamics do not depend on the frame rate. z is 0 at the onset and is integrated away from it in
  both directions (forward after the onset, in reversed time before it): the onset frame is the
  neutral reference by construction.

The decoder and g start at zero, so an untrained module returns a zero update. Pure nn.Modules, no
I/O.
"""

from __future__ import annotations

import bisect
import math

import torch
from torch import nn
from torchdiffeq import odeint

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
        z0 = u.new_zeros(1, u.shape[1])
        self.dynamics.drive(rel, u, 1.0)
        after = integrate(self.dynamics, z0, rel[onset:], self.method, self.step_s)
        if onset == 0:
            return after
        self.dynamics.drive(rel, u, -1.0)
        before = integrate(self.dynamics, z0, -rel[: onset + 1].flip(0), self.method, self.step_s)
        return torch.cat([before.flip(0)[:-1], after], dim=0)
