"""Articulated morphable-model maths as pure functions on tensors (the smplx/FLAME formulation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_rodrigues(axis_angle: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Rotation matrices from axis-angle vectors. N x 3 radians -> N x 3 x 3."""
    angle = torch.sqrt((axis_angle**2).sum(dim=1, keepdim=True) + eps)  # N x 1, smooth at 0
    axis = axis_angle / angle
    cos = torch.cos(angle)[:, :, None]
    sin = torch.sin(angle)[:, :, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zeros = torch.zeros_like(x)
    skew = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)[None]
    return eye + sin * skew + (1 - cos) * torch.bmm(skew, skew)


def blend_shapes(coefficients: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Linear blend shapes. coefficients: B x K, basis: V x 3 x K -> offsets B x V x 3."""
    return torch.einsum("bk,vck->bvc", coefficients, basis)


def vertices_to_joints(regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """regressor: J x V, vertices: B x V x 3 -> joints B x J x 3."""
    return torch.einsum("jv,bvc->bjc", regressor, vertices)


def rigid_transforms(rotations: torch.Tensor, joints: torch.Tensor, parents: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kinematics. rotations: B x J x 3 x 3 local, joints: B x J x 3 rest positions,
    parents: J (parents[0] = -1, each parent before its child).

    Returns posed joints B x J x 3 and relative transforms B x J x 4 x 4 that map rest-pose
    points to posed points for vertices skinned to each joint."""
    batch, num_joints = joints.shape[:2]
    rel_joints = joints.clone()
    rel_joints[:, 1:] -= joints[:, parents[1:]]
    local = F.pad(torch.cat([rotations, rel_joints[..., None]], dim=3), (0, 0, 0, 1))
    local[..., 3, 3] = 1.0
    chain = [local[:, 0]]
    for j in range(1, num_joints):
        chain.append(torch.matmul(chain[parents[j]], local[:, j]))
    world = torch.stack(chain, dim=1)  # B x J x 4 x 4
    posed_joints = world[:, :, :3, 3]
    rest = F.pad(joints, (0, 1))[..., None]  # B x J x 4 x 1 (homogeneous, w = 0 for the offset)
    relative = world - F.pad(torch.matmul(world, rest), (3, 0))
    return posed_joints, relative


def linear_blend_skinning(
    vertices: torch.Tensor, weights: torch.Tensor, transforms: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """vertices: B x V x 3 rest pose, weights: V x J, transforms: B x J x 4 x 4.

    Returns posed vertices B x V x 3 and the blended 3 x 3 linear parts B x V x 3 x 3."""
    per_vertex = torch.einsum("vj,bjrc->bvrc", weights, transforms[:, :, :3])  # B x V x 3 x 4
    posed = torch.einsum("bvrc,bvc->bvr", per_vertex[..., :3], vertices) + per_vertex[..., 3]
    return posed, per_vertex[..., :3]


def barycentric_points(
    vertices: torch.Tensor, faces: torch.Tensor, face_index: torch.Tensor, barycentric: torch.Tensor
) -> torch.Tensor:
    """Points on a mesh surface. vertices: B x V x 3, faces: F x 3, face_index: L,
    barycentric: L x 3 -> B x L x 3."""
    corners = vertices[:, faces[face_index]]  # B x L x 3 x 3
    return (corners * barycentric[None, :, :, None]).sum(dim=2)
