"""Inputs of the two networks, built from a window's fit, flow tracks and landmarks.

- DEM static features (1 x Ds, Ds = E + 3R): the onset's fitted expression weights and the
  centroids of the R mesh regions of its rest-pose mesh (head frame, decimetres, centred).
- DEM motion features (T x Dm, Dm = 6R): per region, the confidence-weighted mean and root mean
  square (per axis) of what the fitted mesh does not explain of the flow (tracked minus fitted
  sample positions), millimetres in the head frame.
- DGMD vertex features (B x V x VERTEX_FEATURES): rest position (decimetres, centred) and normal of
  the current mesh, landmark residual (mm) and its weight, flow residual (mm) and log weight, and
  the flow residual of the vertex's region (mm). Motion features (B x V x VERTEX_MOTION): the flow
  and landmark residuals, what the motion attention looks at.
"""

from __future__ import annotations

import torch

from core.microexpr.correspondence import SampleSet, aggregate, aggregate_to_vertices
from core.microexpr.losses import face_normals

VERTEX_FEATURES = 17
VERTEX_MOTION = 6


def static_dim(num_expression: int, num_regions: int) -> int:
    return num_expression + 3 * num_regions


def motion_dim(num_regions: int) -> int:
    return 6 * num_regions


def region_centroids(rest_vertices: torch.Tensor, vertex_region: torch.Tensor, count: int) -> torch.Tensor:
    """1 x V x 3 metres -> 1 x 3R centred region centroids in decimetres."""
    v = rest_vertices - rest_vertices.mean(dim=1, keepdim=True)
    weights = torch.ones(v.shape[:2], dtype=v.dtype)
    return 10.0 * aggregate(v, vertex_region, count, weights).reshape(1, -1)


def static_features(onset_expression: torch.Tensor, rest_vertices: torch.Tensor, vertex_region: torch.Tensor, count: int) -> torch.Tensor:
    """onset_expression: E, rest_vertices: V x 3 (metres) -> 1 x (E + 3R)."""
    return torch.cat([onset_expression[None], region_centroids(rest_vertices[None], vertex_region, count)], dim=1)


def motion_features(residual_mm: torch.Tensor, samples: SampleSet, weights: torch.Tensor) -> torch.Tensor:
    """residual_mm: T x K x 3 head-frame flow residual of the fit; weights: T x K -> T x 6R
    per-region means and RMS."""
    region = torch.as_tensor(samples.region)
    mean = aggregate(residual_mm, region, samples.num_regions, weights)
    rms = torch.sqrt(aggregate(residual_mm**2, region, samples.num_regions, weights) + 1e-12)
    return torch.cat([mean, rms], dim=2).reshape(len(weights), -1)


def vertex_features(rest_vertices: torch.Tensor, faces: torch.Tensor, flow_residual_mm: torch.Tensor,
                    flow_weights: torch.Tensor, samples: SampleSet, landmark_residual_mm: torch.Tensor,
                    landmark_weights: torch.Tensor, landmarks: SampleSet, vertex_region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-vertex inputs of the graph network for B frames.

    rest_vertices: B x V x 3 metres (head frame); faces: F x 3; flow_residual_mm: B x K x 3 at the
    flow samples with flow_weights B x K; landmark_residual_mm: B x L x 3 with landmark_weights
    B x L, at the landmark points ``landmarks`` (a SampleSet on the same faces); vertex_region: V.
    Returns (B x V x VERTEX_FEATURES, B x V x VERTEX_MOTION)."""
    num_vertices = rest_vertices.shape[1]
    centred = 10.0 * (rest_vertices - rest_vertices.mean(dim=1, keepdim=True))
    fn = face_normals(rest_vertices, faces)  # B x F x 3
    normals = torch.zeros_like(rest_vertices).index_add_(1, faces.reshape(-1), fn.repeat_interleave(3, dim=1))
    normals = torch.nn.functional.normalize(normals, dim=2, eps=1e-12)
    flow_v, flow_w = aggregate_to_vertices(flow_residual_mm, samples, num_vertices, flow_weights)
    land_v, land_w = aggregate_to_vertices(landmark_residual_mm, landmarks, num_vertices, landmark_weights)
    region_flow = aggregate(flow_residual_mm, torch.as_tensor(samples.region), samples.num_regions, flow_weights)
    features = torch.cat([
        centred, normals, land_v, (land_w > 0).to(land_v.dtype)[..., None], flow_v,
        torch.log1p(flow_w)[..., None], region_flow[:, vertex_region],
    ], dim=2)
    return features, torch.cat([flow_v, land_v], dim=2)
