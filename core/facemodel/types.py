"""Typed values of the face models: the arrays that define a model, parameters, outputs.

Notation: B batch, V vertices, F triangles, J joints, S identity components, E expression
components, L landmarks (478, MediaPipe's face mesh order). Model space is right-handed, metres,
y up, z toward the viewer (FLAME's convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the model's data is numpy; torch loads with the model (core.facemodel.model)
    import torch

# FLAME's kinematic chain; both models use it: root (global head rotation) -> neck -> jaw, eyes.
JOINT_NAMES = ("root", "neck", "jaw", "eye_left", "eye_right")
JOINT_PARENTS = (-1, 0, 1, 1, 1)
NUM_JOINTS = len(JOINT_NAMES)
NUM_POSE_CORRECTIVES = 9 * (NUM_JOINTS - 1)


@dataclass(frozen=True)
class FaceModelData:
    """Everything that defines a FLAME-style face model, as NumPy arrays (float32 unless noted).

    template: V x 3 neutral mesh. faces: F x 3 int64. shape_basis: V x 3 x S. expression_basis:
    V x 3 x E. pose_basis: 36 x (V*3), pose correctives driven by the rotation matrices of joints
    1..4 minus identity (smplx/FLAME layout; zeros where a model has none). joint_regressor: J x V.
    skinning_weights: V x J (rows sum to 1). landmark_faces: L int64 triangle per landmark;
    landmark_barycentric: L x 3. landmark_ids: L int64, the MediaPipe index (0..477) of each
    landmark (all 478 in order for the open model; FLAME's own embedding covers 105). expression_names: E names (the 52 ARKit names for the open model,
    "exp000".. for FLAME). expression_bounds: (low, high) for every expression weight, or None
    when unbounded (FLAME). name: "open", "flame2020", "flame2023", ...
    """

    name: str
    template: np.ndarray
    faces: np.ndarray
    shape_basis: np.ndarray
    expression_basis: np.ndarray
    pose_basis: np.ndarray
    joint_regressor: np.ndarray
    skinning_weights: np.ndarray
    landmark_faces: np.ndarray
    landmark_barycentric: np.ndarray
    landmark_ids: np.ndarray
    expression_names: tuple[str, ...]
    expression_bounds: tuple[float, float] | None = None
    info: dict = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.template.shape[0])

    @property
    def num_shape(self) -> int:
        return int(self.shape_basis.shape[2])

    @property
    def num_expression(self) -> int:
        return int(self.expression_basis.shape[2])

    def validate(self) -> None:
        """Raise ValueError naming the first array whose shape does not fit the others."""
        v, j = self.num_vertices, NUM_JOINTS
        expected = {
            "template": (v, 3),
            "shape_basis": (v, 3, self.num_shape),
            "expression_basis": (v, 3, self.num_expression),
            "pose_basis": (NUM_POSE_CORRECTIVES, v * 3),
            "joint_regressor": (j, v),
            "skinning_weights": (v, j),
            "landmark_barycentric": (len(self.landmark_faces), 3),
            "landmark_ids": (len(self.landmark_faces),),
        }
        for name, shape in expected.items():
            actual = tuple(getattr(self, name).shape)
            if actual != shape:
                raise ValueError(f"{name} has shape {actual}, expected {shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.max() >= v:
            raise ValueError(f"faces has shape {self.faces.shape} or indices beyond {v} vertices")
        if len(self.expression_names) != self.num_expression:
            raise ValueError(f"{len(self.expression_names)} expression names for {self.num_expression} components")


@dataclass
class FaceParams:
    """Parameters of a batch of B faces (torch tensors, float32).

    shape: B x S identity. expression: B x E. rotation: B x 3 axis-angle of the head (root joint),
    radians. neck, jaw: B x 3 axis-angle. eyes: B x 6 (left eye, right eye) axis-angle.
    translation: B x 3 metres, added after posing.
    """

    shape: torch.Tensor
    expression: torch.Tensor
    rotation: torch.Tensor
    neck: torch.Tensor
    jaw: torch.Tensor
    eyes: torch.Tensor
    translation: torch.Tensor

    @classmethod
    def zeros(cls, batch: int, num_shape: int, num_expression: int, device: str | torch.device = "cpu") -> FaceParams:
        import torch

        def z(n: int) -> torch.Tensor:
            return torch.zeros(batch, n, device=device)

        return cls(z(num_shape), z(num_expression), z(3), z(3), z(3), z(6), z(3))

    @property
    def batch_size(self) -> int:
        return int(self.expression.shape[0])

    def full_pose(self) -> torch.Tensor:
        """B x J x 3 axis-angle in JOINT_NAMES order."""
        import torch

        return torch.cat([self.rotation, self.neck, self.jaw, self.eyes], dim=1).view(-1, NUM_JOINTS, 3)


@dataclass(frozen=True)
class FaceModelOutput:
    """vertices: B x V x 3, joints: B x J x 3 (posed), landmarks: B x L x 3, all metres.
    vertex_rotations: B x V x 3 x 3, the skinning-blended linear part that maps a rest-pose offset
    of each vertex to its posed offset. rest_vertices: B x V x 3 before skinning; rest_joints:
    B x J x 3; joint_rotations: B x J x 3 x 3 world rotations (what fitting needs for Jacobians)."""

    vertices: torch.Tensor
    joints: torch.Tensor
    landmarks: torch.Tensor
    vertex_rotations: torch.Tensor
    rest_vertices: torch.Tensor
    rest_joints: torch.Tensor
    joint_rotations: torch.Tensor
