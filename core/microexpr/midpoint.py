"""The expression ODE's midpoint steps as one autograd node, with their exact backward pass.

:meth:`core.microexpr.dem.ExpressionDynamics.midpoint_from_onset` steps
dz/dt = rate * (u - z) + W_out tanh(W_z z + W_u u + b_in) + b_out on a fixed grid: hundreds of
sequential steps per training step, each a handful of operations on a 2 x 52 state. As torch
operations each costs about 7 us of dispatch and autograd bookkeeping, forward and backward,
for microseconds of arithmetic. Here the steps run in numpy (float32, as torch would), and the
backward pass is the discrete adjoint of the same steps, so the gradients are those of the
recurrence itself, not of an approximation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable


class MidpointPath(torch.autograd.Function):
    """States of the midpoint recurrence, z_0 = 0 and for each step k

        f0 = lead_start[k] - rate * z_k + tanh(z_k @ from_z + hidden_start[k]) @ to_out
        m  = z_k + half[k] * f0
        f1 = lead_mid[k] - rate * m + tanh(m @ from_z + hidden_mid[k]) @ to_out
        z_{k+1} = z_k + dt[k] * f1

    Shapes: hidden_start, hidden_mid S x B x H (the drive's and the bias's share of the inner
    layer at each step's start and middle); lead_start, lead_mid S x B x E (rate * u + the outer
    bias there); rate E (1/s); from_z E x H; to_out H x E; half, dt S x B x 1 (seconds; 0 once a
    branch has reached its end). Returns the S + 1 x B x E states. Gradients flow to every input
    but ``half`` and ``dt`` (the grid's constants)."""

    @staticmethod
    def forward(ctx, hidden_start, hidden_mid, lead_start, lead_mid, rate, from_z, to_out, half, dt):
        hs, hm, ls, lm = (t.detach().cpu().numpy() for t in (hidden_start, hidden_mid, lead_start, lead_mid))
        r, w_z, w_out = (t.detach().cpu().numpy() for t in (rate, from_z, to_out))
        h, d = half.detach().cpu().numpy(), dt.detach().cpu().numpy()
        steps, branches, width = ls.shape
        z = np.zeros((steps + 1, branches, width), ls.dtype)
        middle = np.empty((steps, branches, width), ls.dtype)
        act_start = np.empty(hs.shape, hs.dtype)
        act_mid = np.empty(hm.shape, hm.dtype)
        for k in range(steps):
            zk = z[k]
            act_start[k] = np.tanh(zk @ w_z + hs[k])
            f0 = ls[k] - r * zk + act_start[k] @ w_out
            middle[k] = zk + h[k] * f0
            act_mid[k] = np.tanh(middle[k] @ w_z + hm[k])
            f1 = lm[k] - r * middle[k] + act_mid[k] @ w_out
            z[k + 1] = zk + d[k] * f1
        ctx.arrays = (z, middle, act_start, act_mid, r, w_z, w_out, h, d)
        ctx.device = lead_start.device
        return torch.from_numpy(z).to(lead_start.device)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_path):
        z, middle, act_start, act_mid, r, w_z, w_out, h, d = ctx.arrays
        g_path = grad_path.detach().cpu().numpy().astype(z.dtype, copy=False)
        steps = len(middle)
        slope_start, slope_mid = 1.0 - act_start ** 2, 1.0 - act_mid ** 2  # tanh' at each evaluation
        # the adjoint of each step's inputs; the weights' gradients are summed over the steps after
        g_hs, g_hm = np.empty_like(act_start), np.empty_like(act_mid)
        g_ls, g_lm = np.empty_like(middle), np.empty_like(middle)
        w_z_t, w_out_t = w_z.T, w_out.T
        g_z = g_path[steps].copy()
        for k in range(steps - 1, -1, -1):
            g_f1 = g_lm[k] = d[k] * g_z
            g_a1 = g_hm[k] = (g_f1 @ w_out_t) * slope_mid[k]
            g_m = g_a1 @ w_z_t - r * g_f1
            g_f0 = g_ls[k] = h[k] * g_m
            g_a0 = g_hs[k] = (g_f0 @ w_out_t) * slope_start[k]
            g_z = g_z + g_m + g_a0 @ w_z_t - r * g_f0 + g_path[k]
        g_rate = -np.einsum("sbe,sbe->e", g_lm, middle) - np.einsum("sbe,sbe->e", g_ls, z[:-1])
        g_wz = np.einsum("sbe,sbh->eh", middle, g_hm) + np.einsum("sbe,sbh->eh", z[:-1], g_hs)
        g_wout = np.einsum("sbh,sbe->he", act_mid, g_lm) + np.einsum("sbh,sbe->he", act_start, g_ls)
        device = ctx.device
        return (*(torch.from_numpy(np.ascontiguousarray(g, dtype=z.dtype)).to(device)
                  for g in (g_hs, g_hm, g_ls, g_lm, g_rate, g_wz, g_wout)), None, None)
