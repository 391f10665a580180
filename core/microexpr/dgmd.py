"""Dynamic-guided mesh deformation (DGMD): a graph network over the mesh with motion attention that
turns per-vertex geometry, landmark cues and flow features into small per-vertex offsets.

Message passing runs over the mesh edges (both directions, plus a self loop). In each layer a
vertex i attends to its neighbours j with weights
    a_ij = softmax_j( w . tanh(Q h_i + K h_j + M m_j) )
where m_j is vertex j's motion feature (its flow and landmark residuals): neighbours that move
get more say, which is the "motion attention". The update is residual, h_i += MLP([h_i, sum_j
a_ij V h_j]), with a per-vertex LayerNorm; nothing is pooled over the mesh, so after k layers a
vertex has only heard from its k-ring. The output head is zero-initialised and bounded by tanh, so
an untrained network returns zero offsets.

Shapes: B frames, V vertices, C input channels, H hidden, E directed edges. Pure nn.Modules, no I/O.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.microexpr.dem import mlp, zero_last

# torch warns once that its CSR tensors are a beta feature; the products used here are tested
# against the plain gather-and-add they replace (tests/core/test_microexpr_parts.py)
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)


def mesh_edges(faces: np.ndarray, num_vertices: int) -> torch.Tensor:
    """2 x E long (source, target): every mesh edge in both directions plus one self loop per
    vertex, sorted by target."""
    faces = np.asarray(faces, np.int64)
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    pairs = np.concatenate([pairs, pairs[:, ::-1], np.repeat(np.arange(num_vertices)[:, None], 2, axis=1)])
    pairs = np.unique(pairs, axis=0)
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))
    return torch.as_tensor(pairs[order].T.copy())


def scatter_softmax(logits: torch.Tensor, target: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """Softmax of B x E edge logits over the edges that share a target vertex."""
    batch = logits.shape[0]
    index = target[None].expand(batch, -1)
    peak = logits.new_full((batch, num_vertices), -torch.inf).scatter_reduce(1, index, logits, "amax", include_self=True)
    weights = torch.exp(logits - peak.gather(1, index).detach())
    total = logits.new_zeros(batch, num_vertices).index_add_(1, target, weights)
    return weights / total.gather(1, index)


def reverse_edges(edges: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """E long: for each edge (source s, target t) of ``edges`` (2 x E, sorted by target, then
    source), the position of the edge (t, s). Raises ValueError when an edge has no reverse."""
    source, target = edges[0], edges[1]
    order = target * num_vertices + source  # ascending, as the edges are sorted
    wanted = source * num_vertices + target
    position = torch.searchsorted(order, wanted).clamp_max(len(order) - 1)
    if len(order) and not torch.equal(order[position], wanted):
        raise ValueError("every edge needs its reverse (mesh_edges gives both directions)")
    return position


class _NeighbourSum(torch.autograd.Function):
    """out[b, t] = sum over the edges e into t of weights[b, e] * values[b, source_e].

    values B x V x H, weights B x E -> B x V x H, computed as one block-diagonal sparse (CSR)
    product over the B frames. The gradients are the transposed product for the values (the same
    pattern with each weight moved to its reverse edge) and the sampled product (SDDMM) for the
    weights. The plain gather, multiply and scatter-add make several B x E x H tensors in each
    direction; for 12 frames of the 478-vertex mesh and 32 channels, forward and backward take
    1.7 ms instead of 4 on one CPU thread, with sums of the same terms."""

    @staticmethod
    def forward(ctx, values, weights, rows, columns, reverse):
        batch, count, width = values.shape
        size = (batch * count, batch * count)
        ctx.save_for_backward(values, weights, rows, columns, reverse)
        matrix = torch.sparse_csr_tensor(rows, columns, weights.reshape(-1), size, check_invariants=False)
        return (matrix @ values.reshape(batch * count, width)).view(batch, count, width)

    @staticmethod
    def backward(ctx, grad):
        values, weights, rows, columns, reverse = ctx.saved_tensors
        batch, count, width = values.shape
        size = (batch * count, batch * count)
        grad = grad.contiguous().view(batch * count, width)
        grad_values = grad_weights = None
        if ctx.needs_input_grad[0]:
            transposed = torch.sparse_csr_tensor(rows, columns, weights.reshape(-1)[reverse], size, check_invariants=False)
            grad_values = (transposed @ grad).view(batch, count, width)
        if ctx.needs_input_grad[1]:
            pattern = torch.sparse_csr_tensor(rows, columns, weights.new_zeros(weights.numel()), size, check_invariants=False)
            sampled = torch.sparse.sampled_addmm(pattern, grad, values.reshape(batch * count, width).t().contiguous(), beta=0.0)
            grad_weights = sampled.values().view_as(weights)
        return grad_values, grad_weights, None, None, None


@dataclass(frozen=True)
class NeighbourPattern:
    """The block-diagonal CSR pattern of :func:`neighbour_sum` for B frames of a mesh's edges:
    row starts (B V + 1), source columns (B E) and, per edge, the position of its reverse (B E)."""

    rows: torch.Tensor
    columns: torch.Tensor
    reverse: torch.Tensor

    @classmethod
    def of(cls, edges: torch.Tensor, batch: int, count: int) -> NeighbourPattern:
        """edges: 2 x E (sorted by target, then source; every edge with its reverse); count: V."""
        source, target = edges[0], edges[1]
        reverse = reverse_edges(edges, count)
        starts = torch.zeros(count + 1, dtype=torch.int64, device=edges.device)
        starts[1:] = torch.cumsum(torch.bincount(target, minlength=count), 0)
        edge_count = len(source)
        frame = torch.arange(batch, device=edges.device)
        rows = torch.cat([(starts[:-1][None] + edge_count * frame[:, None]).reshape(-1),
                          torch.tensor([batch * edge_count], device=edges.device)])
        columns = (source[None] + count * frame[:, None]).reshape(-1)
        reverses = (reverse[None] + edge_count * frame[:, None]).reshape(-1)
        return cls(rows, columns, reverses)


def neighbour_sum(values: torch.Tensor, weights: torch.Tensor, edges: torch.Tensor,
                  pattern: NeighbourPattern | None = None) -> torch.Tensor:
    """Per target vertex, the sum of its incoming edges' weights times their sources' values.
    values: B x V x H, weights: B x E, edges: 2 x E (sorted by target, then source; every edge
    with its reverse, as :func:`mesh_edges` gives them) -> B x V x H. ``pattern``: the
    NeighbourPattern of these edges and B (built here when None; the layers of one forward pass
    share one)."""
    batch, count, _ = values.shape
    if pattern is None:
        pattern = NeighbourPattern.of(edges, batch, count)
    return _NeighbourSum.apply(values.contiguous(), weights.contiguous(), pattern.rows, pattern.columns,
                               pattern.reverse)


class MotionAttentionLayer(nn.Module):
    """One residual message-passing layer with motion attention (see module docstring).

    forward(h B x V x H, motion B x V x Cm, edges 2 x E[, their NeighbourPattern]) -> B x V x H. Attention logits are
    computed in a narrower space (attention_dim) than the features, which keeps the per-edge work
    small."""

    def __init__(self, hidden: int, motion_dim: int, attention_dim: int = 8) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, attention_dim, bias=False)
        self.key = nn.Linear(hidden, attention_dim)
        self.motion = nn.Linear(motion_dim, attention_dim, bias=False)
        self.score = nn.Linear(attention_dim, 1, bias=False)
        self.value = nn.Linear(hidden, hidden)
        self.update = mlp([2 * hidden, hidden, hidden])
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, motion: torch.Tensor, edges: torch.Tensor,
                pattern: NeighbourPattern | None = None) -> torch.Tensor:
        source, target = edges[0], edges[1]
        keys = self.key(h) + self.motion(motion)  # B x V x H
        pair = self.query(h).index_select(1, target) + keys.index_select(1, source)
        logits = self.score(torch.tanh(pair))[..., 0]  # B x E
        alpha = scatter_softmax(logits, target, h.shape[1])
        gathered = neighbour_sum(self.value(h), alpha, edges, pattern)
        return self.norm(h + self.update(torch.cat([h, gathered], dim=2)))


class DynamicGuidedDeformation(nn.Module):
    """Per-vertex offsets from per-vertex features.

    forward(features B x V x C, motion B x V x Cm, edges 2 x E) -> B x V x 3 offsets in
    millimetres (head frame), each component within +-max_offset_mm."""

    def __init__(self, in_dim: int, motion_dim: int, hidden: int = 32, layers: int = 3, max_offset_mm: float = 4.0) -> None:
        super().__init__()
        self.embed = mlp([in_dim, hidden, hidden])
        self.layers = nn.ModuleList(MotionAttentionLayer(hidden, motion_dim) for _ in range(layers))
        self.head = zero_last(mlp([hidden, hidden, 3]))
        self.max_offset_mm = max_offset_mm

    def forward(self, features: torch.Tensor, motion: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        h = self.embed(features)
        pattern = NeighbourPattern.of(edges, features.shape[0], features.shape[1])
        for layer in self.layers:
            h = layer(h, motion, edges, pattern)
        return self.max_offset_mm * torch.tanh(self.head(h) / self.max_offset_mm)
