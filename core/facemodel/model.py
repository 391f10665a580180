"""The face model: one FLAME-style articulated morphable model for FLAME and the open model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from core.facemodel.lbs import (
    barycentric_points,
    batch_rodrigues,
    blend_shapes,
    linear_blend_skinning,
    rigid_transforms,
)
from core.facemodel.types import JOINT_PARENTS, NUM_JOINTS, FaceModelData, FaceModelOutput, FaceParams


class FaceModel(nn.Module):
    """Stateless articulated morphable face model; all data are buffers, nothing is learned here.

    ``forward(params)`` computes, for B faces:
    rest = template + shape_basis . shape + expression_basis . expression + pose_basis . pose_feature;
    joints regressed from template + identity (so expressions do not move joints; the regression is
    linear, so it is precomputed as joint_template + joint_shape_basis . shape);
    vertices = LBS(rest, rotations of root, neck, jaw, eyes) + translation;
    landmarks = barycentric points of the posed mesh; landmark i is MediaPipe point landmark_ids[i].
    """

    def __init__(self, data: FaceModelData) -> None:
        super().__init__()
        data.validate()
        self.name = data.name
        self.expression_names = tuple(data.expression_names)
        self.expression_bounds = data.expression_bounds
        self.info = dict(data.info)
        self.parents = list(JOINT_PARENTS)

        def f32(a) -> torch.Tensor:
            return torch.as_tensor(a, dtype=torch.float32)

        self.register_buffer("template", f32(data.template))
        self.register_buffer("faces", torch.as_tensor(data.faces, dtype=torch.long))
        self.register_buffer("shape_basis", f32(data.shape_basis))
        self.register_buffer("expression_basis", f32(data.expression_basis))
        self.register_buffer("pose_basis", f32(data.pose_basis))
        self.register_buffer("joint_regressor", f32(data.joint_regressor))
        self.register_buffer("skinning_weights", f32(data.skinning_weights))
        self.register_buffer("landmark_faces", torch.as_tensor(data.landmark_faces, dtype=torch.long))
        self.register_buffer("landmark_barycentric", f32(data.landmark_barycentric))
        self.register_buffer("landmark_ids", torch.as_tensor(data.landmark_ids, dtype=torch.long))
        regressor = torch.as_tensor(data.joint_regressor, dtype=torch.float64)
        self.register_buffer("joint_template", (regressor @ torch.as_tensor(data.template, dtype=torch.float64)).float())
        self.register_buffer(
            "joint_shape_basis",
            torch.einsum("jv,vck->jck", regressor, torch.as_tensor(data.shape_basis, dtype=torch.float64)).float(),
        )
        self._data = data

    def landmark_model(self) -> FaceModel:
        """The same model restricted to the vertices its landmarks need (a few hundred instead of
        thousands for FLAME): identical landmarks and joints, much faster for fitting."""
        data = self._data
        used = np.unique(data.faces[data.landmark_faces])
        remap = np.full(data.num_vertices, -1, np.int64)
        remap[used] = np.arange(len(used))
        faces = remap[data.faces[data.landmark_faces]]
        pose = data.pose_basis.reshape(-1, data.num_vertices, 3)[:, used].reshape(len(data.pose_basis), -1)
        subset = replace(
            data,
            template=data.template[used],
            faces=faces,
            shape_basis=data.shape_basis[used],
            expression_basis=data.expression_basis[used],
            pose_basis=pose,
            joint_regressor=np.zeros((data.joint_regressor.shape[0], len(used)), np.float32),
            skinning_weights=data.skinning_weights[used],
            landmark_faces=np.arange(len(faces)),
        )
        model = FaceModel(subset)
        model.joint_template.copy_(self.joint_template)
        model.joint_shape_basis.copy_(self.joint_shape_basis)
        return model.to(self.template.device)

    @property
    def num_shape(self) -> int:
        return self._data.num_shape

    @property
    def num_expression(self) -> int:
        return self._data.num_expression

    @property
    def num_vertices(self) -> int:
        return self._data.num_vertices

    def zero_params(self, batch: int = 1) -> FaceParams:
        return FaceParams.zeros(batch, self.num_shape, self.num_expression, device=self.template.device)

    def neutral_face(self, identity) -> FaceModelOutput:
        """The face of ``identity`` (S shape coefficients) with no expression and no pose, without
        gradient: a batch of one."""
        shape = torch.as_tensor(np.asarray(identity), dtype=torch.float32, device=self.template.device)[None]
        with torch.no_grad():
            return self(replace(self.zero_params(1), shape=shape))

    def forward(self, params: FaceParams) -> FaceModelOutput:
        batch = params.batch_size
        identity = self.template[None] + blend_shapes(params.shape, self.shape_basis)
        rest_joints = self.joint_template[None] + blend_shapes(params.shape, self.joint_shape_basis)
        rest = identity + blend_shapes(params.expression, self.expression_basis)

        rotations = batch_rodrigues(params.full_pose().reshape(-1, 3)).view(batch, NUM_JOINTS, 3, 3)
        eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
        pose_feature = (rotations[:, 1:] - eye).reshape(batch, -1)  # B x 36
        rest = rest + torch.matmul(pose_feature, self.pose_basis).view(batch, -1, 3)

        joints, transforms = rigid_transforms(rotations, rest_joints, self.parents)
        vertices, vertex_rotations = linear_blend_skinning(rest, self.skinning_weights, transforms)
        offset = params.translation[:, None]
        vertices = vertices + offset
        landmarks = barycentric_points(vertices, self.faces, self.landmark_faces, self.landmark_barycentric)
        return FaceModelOutput(
            vertices, joints + offset, landmarks, vertex_rotations, rest, rest_joints, transforms[:, :, :3, :3]
        )
