"""Self-supervised losses of the refiner, in plain torch (PyTorch3D is not installable here).

Each loss is 0 on consistent input and grows with the inconsistency. The caller chooses units (the
refiner passes image positions in percent of the inter-ocular distance, offsets in millimetres,
expressions as weights).
"""

from __future__ import annotations

import numpy as np
import torch

ROBUST_SCALE = 2.0  # residual (in the caller's units) beyond which the penalty stops growing fast


def robust(residual: torch.Tensor, scale: float = ROBUST_SCALE) -> torch.Tensor:
    """Cauchy (Lorentzian) penalty of vector residuals ... x D -> ...: (c^2 / 2) log(1 + |r|^2 / c^2),
    0 at 0, quadratic for small residuals and only logarithmic for gross ones, so that a failed
    flow track or landmark pulls little. With image motion in percent of the inter-ocular
    distance, c = 2 % spans the 1-3 pixel motions of micro-expressions."""
    return 0.5 * scale**2 * torch.log1p((residual**2).sum(dim=-1) / scale**2)


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(1e-8)


def flow_guided_loss(predicted_motion: torch.Tensor, flow_motion: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Projected motion of mesh points against the optical flow at the same points.

    predicted_motion, flow_motion: B x K x 2 image positions of K surface points (projected
    refined mesh; where the flow tracked them), or their displacements from one reference frame;
    weights: B x K flow confidence.
    Robust (:func:`robust`) so that flow outliers do not dominate."""
    return weighted_mean(robust(predicted_motion - flow_motion), weights)


def landmark_loss(predicted_motion: torch.Tensor, observed_motion: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Motion of the model's landmarks against the detected landmarks' motion.

    predicted_motion, observed_motion: B x L x 2 image positions (or displacements from one
    reference frame); weights: B x L."""
    return weighted_mean(robust(predicted_motion - observed_motion), weights)


def expression_consistency_loss(refined: torch.Tensor, coarse: torch.Tensor,
                                bounds: tuple[float, float] | None = None) -> torch.Tensor:
    """The refined expression stays a refinement of the fitted one, within the model's range.

    refined, coarse: T x E expression weights. Mean squared deviation (per frame, summed over
    components) plus the squared excess beyond ``bounds`` (low, high) when the model has them."""
    loss = ((refined - coarse) ** 2).sum(dim=1).mean()
    if bounds is not None:
        low, high = bounds
        excess = torch.relu(low - refined) + torch.relu(refined - high)
        loss = loss + (excess**2).sum(dim=1).mean()
    return loss


def identity_loss(offsets: torch.Tensor, onset_rows: torch.Tensor | None = None) -> torch.Tensor:
    """Offsets must not change who the performer is: no persistent offset and none at the onset.

    offsets: B x V x 3 per-vertex offsets of B frames of one window; onset_rows: rows of B that
    are onset frames. Squared length of the mean offset over the frames, plus the mean squared
    offset at the onset rows."""
    loss = (offsets.mean(dim=0) ** 2).sum(dim=1).mean()
    if onset_rows is not None and len(onset_rows):
        loss = loss + (offsets[onset_rows] ** 2).sum(dim=2).mean()
    return loss


def uniform_laplacian(edges: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """V x V sparse uniform Laplacian L = I - D^-1 A from directed edges 2 x E (self loops ignored)."""
    source, target = edges
    keep = source != target
    source, target = source[keep], target[keep]
    degree = torch.zeros(num_vertices).index_add_(0, target, torch.ones(len(target)))
    values = -1.0 / degree[target]
    index = torch.cat([torch.stack([target, source]), torch.arange(num_vertices).repeat(2, 1)], dim=1)
    values = torch.cat([values, torch.ones(num_vertices)])
    return torch.sparse_coo_tensor(index, values, (num_vertices, num_vertices), check_invariants=False).coalesce()


def laplacian_loss(offsets: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
    """Smoothness of the offset field: mean squared length of L @ offsets (B x V x 3), with the
    uniform Laplacian L (V x V sparse). 0 for equal offsets everywhere (a translation)."""
    batch, vertices, _ = offsets.shape
    flat = offsets.permute(1, 0, 2).reshape(vertices, -1)
    return (torch.sparse.mm(laplacian, flat) ** 2).reshape(vertices, batch, 3).sum(dim=2).mean()


def adjacent_face_pairs(faces: np.ndarray) -> torch.Tensor:
    """P x 2 long: pairs of triangles sharing an edge."""
    faces = np.asarray(faces, np.int64)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(faces)), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, owner = edges[order], owner[order]
    same = (edges[1:] == edges[:-1]).all(axis=1)
    return torch.as_tensor(np.stack([owner[:-1][same], owner[1:][same]], axis=1))


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """B x V x 3, F x 3 -> B x F x 3 unit normals."""
    a, b, c = (vertices[:, faces[:, i]] for i in range(3))
    return torch.nn.functional.normalize(torch.cross(b - a, c - a, dim=2), dim=2, eps=1e-12)


def normal_consistency_loss(refined: torch.Tensor, coarse: torch.Tensor, faces: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Refinement keeps the mesh's folds: mean squared change of the cosine between the normals of
    adjacent triangles, refined against coarse. refined, coarse: B x V x 3, faces: F x 3, pairs:
    P x 2 (adjacent_face_pairs). 0 when the refined mesh is the coarse one moved rigidly."""
    def cosines(vertices: torch.Tensor) -> torch.Tensor:
        n = face_normals(vertices, faces)
        return (n[:, pairs[:, 0]] * n[:, pairs[:, 1]]).sum(dim=2)

    return ((cosines(refined) - cosines(coarse)) ** 2).mean()


def pose_correction_loss(correction: torch.Tensor) -> torch.Tensor:
    """Small and smooth per-frame pose corrections: correction T x D -> mean squared value plus
    mean squared frame-to-frame change."""
    loss = (correction**2).sum(dim=1).mean()
    if len(correction) > 1:
        loss = loss + (torch.diff(correction, dim=0) ** 2).sum(dim=1).mean()
    return loss
