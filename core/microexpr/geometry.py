"""Geometry shared by the refiner and its readers: posing the model with offsets, projecting,
and turning image motion into the head's frame.

Offsets are per-vertex displacements in the head's (rest) frame, metres; posing rotates each one
with its vertex's skinning-blended rotation, so an offset moves with the head.
"""

from __future__ import annotations

import numpy as np
import torch

from core.facemodel.lbs import batch_rodrigues
from core.facemodel.model import FaceModel
from core.facemodel.types import FaceModelOutput, FaceParams
from core.fit.camera import AXIS_FLIP, project


def face_params(identity: torch.Tensor, expression: torch.Tensor, rotation: torch.Tensor, neck: torch.Tensor,
                jaw: torch.Tensor, eyes: torch.Tensor) -> FaceParams:
    """FaceParams of B frames of one performer (identity: S) with model translation 0."""
    batch = expression.shape[0]
    return FaceParams(identity[None].expand(batch, -1), expression, rotation, neck, jaw, eyes,
                      expression.new_zeros(batch, 3))


def apply_offsets(output: FaceModelOutput, offsets: torch.Tensor | None) -> torch.Tensor:
    """Posed vertices B x V x 3 (metres) plus head-frame offsets B x V x 3 (metres) rotated by each
    vertex's blended rotation."""
    if offsets is None:
        return output.vertices
    return output.vertices + torch.einsum("bvij,bvj->bvi", output.vertex_rotations, offsets)


def image_points(vertices: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """B x V x 3 model space, B x 4 camera -> B x V x 2 image pixels."""
    return project(vertices, camera)[..., :2]


def image_to_head(motion_px: torch.Tensor, rotation: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Image displacements B x K x 2 (pixels) -> B x K x 3 millimetres in the head frame: the
    image-plane vector at the model's scale, turned back by the head rotation (B x 3 axis-angle).
    Exact for motion parallel to the image plane; motion along the view ray is invisible."""
    scale = torch.exp(camera[:, 0])[:, None, None]  # px per metre
    flip = torch.tensor(AXIS_FLIP[:2], dtype=motion_px.dtype, device=motion_px.device)
    world = torch.cat([motion_px * flip / scale, motion_px.new_zeros(*motion_px.shape[:2], 1)], dim=2)
    r = batch_rodrigues(rotation)  # B x 3 x 3 model -> world
    return 1000.0 * torch.einsum("bji,bkj->bki", r, world)


def eyeball_vertices(model: FaceModel) -> np.ndarray:
    """V bool: vertices skinned mostly to the eye joints (irises, eyeballs). Their flow is not the
    skin's: lids slide over them."""
    weights = model.skinning_weights.detach().cpu().numpy()
    return weights[:, 3:5].sum(axis=1) > 0.5


def skin_triangles(model: FaceModel) -> np.ndarray:
    """Indices of the triangles without an eyeball vertex."""
    eye = eyeball_vertices(model)
    faces = model.faces.cpu().numpy()
    return np.nonzero(~eye[faces].any(axis=1))[0]
