"""The face as a rigged, animated mesh: what the scene formats (fbx, gltf, usd, abc) write.

Model space throughout: metres, right-handed, x toward the performer's left, y up, z toward the
viewer (FLAME's and glTF's convention). The face model (core.facemodel.model) computes, per frame,

    rest     = neutral + sum_e weight_e * delta_e             (linear blend shapes)
             + pose correctives(joint rotations)               (FLAME only; the open model has none)
    vertices = LBS(rest, joints, skinning weights, rotations) + translation

:class:`FaceRig` holds the parts of that formula that do not change over a clip (the neutral mesh
with the take's identity applied, the expression deltas, the joint chain and skinning weights);
:class:`RigAnimation` holds what changes per frame (expression weights, joint rotations, head
translation). A format that stores blend shapes + a skinned skeleton therefore reproduces the model
exactly, except for FLAME's pose correctives, which are a non-linear function of the joint
rotations and cannot be blend shapes with keyed weights: ``FaceRig.max_corrective_m`` says how far
(metres) they would have moved any vertex in the exported frames.

Head translation: the fit has no metric head translation (its camera is scaled-orthographic,
core.fit.camera). :func:`head_translation` turns the camera's image-plane motion into metres: the
model origin's position relative to the image centre, divided by the frame's scale (px per metre),
relative to the first exported frame with a face, x right, y up (model axes). Depth (the change of
scale) is not recoverable without a focal length and is left at 0.

Frames without a face hold the last pose with a face (HOLD_POLICY, core.export.base.held_rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import torch

from core.errors import ExportError
from core.export.base import ExportRequest, held_rows
from core.facemodel.types import JOINT_NAMES, JOINT_PARENTS, FaceParams

if TYPE_CHECKING:
    from core.export.keyreduce import KeyReduction
    from core.timecode import Timecode

BATCH = 64


@dataclass(frozen=True)
class FaceRig:
    """The constant part of an exported face (float32, model space, metres).

    neutral: V x 3, template + identity, expression 0, rest pose. faces: F x 3 int64.
    expression_names: E. expression_deltas: E x V x 3, the offset of each expression at weight 1
    (with a retarget map: the target channels and their preview shapes, core.export.retarget).
    joint_names, joint_parents: J (FLAME's chain root, neck, jaw, eye_left, eye_right; parent -1 for
    the root). rest_joints: J x 3 positions in the rest pose. skinning_weights: V x J, rows sum to 1.
    model_name: "open", "flame2020", ... max_corrective_m: largest pose-corrective displacement
    of any vertex in the exported frames (0 for the open model: exact).
    """

    model_name: str
    neutral: np.ndarray
    faces: np.ndarray
    expression_names: tuple[str, ...]
    expression_deltas: np.ndarray
    joint_names: tuple[str, ...]
    joint_parents: tuple[int, ...]
    rest_joints: np.ndarray
    skinning_weights: np.ndarray
    max_corrective_m: float


@dataclass(frozen=True)
class RigAnimation:
    """The per-frame part, N exported frames, gaps already held.

    frame_index: N int64 video frame numbers. timestamps: N float64 seconds (frame_index / fps).
    fps: frames per second. weights: N x E float32 expression weights. joint_rotations: N x J x 3
    float32 axis-angle (radians) of each joint relative to its parent, in model axes (the root's is
    the head rotation). translation: N x 3 float32 metres, added after posing (the root's motion).
    rows: N int64, the row of the request's fit each frame shows (a gap shows an earlier row).
    model_weights: N x E float32 face-model weights that pose the same mesh (equal to weights
    unless a retarget map made ``weights`` target channels; core.export.retarget). reduction: the
    key reduction asked for (core.export.keyreduce.KeyReduction) or None: key every frame.
    rate: fps exactly. timecode: the timecode of video frame 0 (None: none), see
    :meth:`timeline_frames`.
    """

    frame_index: np.ndarray
    timestamps: np.ndarray
    fps: float
    weights: np.ndarray
    joint_rotations: np.ndarray
    translation: np.ndarray
    rows: np.ndarray
    model_weights: np.ndarray | None = None
    reduction: KeyReduction | None = None
    rate: Fraction | None = None
    timecode: Timecode | None = None

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def timecode_offset(self) -> int:
        """Frames from 00:00:00:00 to video frame 0: the timecode's frame count (0 without one)."""
        return 0 if self.timecode is None else self.timecode.frames

    def timeline_frames(self) -> np.ndarray:
        """N int64 frame numbers on a timeline that starts at 00:00:00:00 at the exact rate: the
        video frame plus :attr:`timecode_offset` (so frame N sits at N / rate seconds)."""
        return self.frame_index.astype(np.int64) + self.timecode_offset


def load_model(req: ExportRequest):
    """The take's face model (FaceModelError when its file is gone)."""
    from core.facemodel.loading import ModelChoice, load_face_model

    return load_face_model(ModelChoice.from_settings(req.model_settings))


def image_centre(req: ExportRequest) -> tuple[float, float]:
    """Centre of the take's video frames, pixels."""
    from core.take.store import Take

    video = Take.open(req.take_dir).manifest.video
    return float(video.width) / 2.0, float(video.height) / 2.0


def head_translation(camera: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """camera: N x 4 (log px per metre, tx, ty, tz px), no NaN rows -> N x 3 float64 metres, model
    axes, relative to row 0 (see the module docstring). z is 0."""
    scale = np.exp(camera[:, 0].astype(np.float64))
    lateral = (camera[:, 1:3].astype(np.float64) - np.asarray(centre)) / scale[:, None]  # x right, y down
    rel = lateral - lateral[0]
    return np.stack([rel[:, 0], -rel[:, 1], np.zeros(len(rel))], axis=1)


def build_rig(req: ExportRequest, model=None) -> tuple[FaceRig, RigAnimation]:
    """The rig and its animation for the request's frames. ExportError when no frame has a face."""
    model = model or load_model(req)
    fit = req.fit
    rows = held_rows(fit.has_face)
    names = tuple(model.expression_names)
    model_expression = req.model_expression()
    if len(names) != model_expression.shape[1]:
        raise ExportError(f"{req.take_dir} has {model_expression.shape[1]} expression curves but its face model has "
                          f"{len(names)}; was the take analysed with another model file?")
    with torch.no_grad():
        shape = torch.as_tensor(fit.identity, dtype=torch.float32)[None]
        neutral = (model.template[None] + torch.einsum("bk,vck->bvc", shape, model.shape_basis))[0]
        rest_joints = (model.joint_template[None] + torch.einsum("bk,jck->bjc", shape, model.joint_shape_basis))[0]
        deltas = model.expression_basis.permute(2, 0, 1).numpy()
    if req.retarget is not None:  # one shape key per target channel (core.export.retarget)
        names, deltas = tuple(req.retarget.targets), req.retarget.shape_deltas(deltas)
    pose = np.concatenate([fit.rotation, fit.neck, fit.jaw, fit.eyes], axis=1)[rows].reshape(len(rows), -1, 3)
    anim = RigAnimation(
        frame_index=req.frame_index.astype(np.int64), timestamps=req.timestamps.astype(np.float64), fps=float(req.fps),
        weights=fit.expression[rows].astype(np.float32), joint_rotations=pose.astype(np.float32),
        translation=head_translation(fit.camera[rows], image_centre(req)).astype(np.float32), rows=rows,
        model_weights=model_expression[rows].astype(np.float32), reduction=req.reduction,
        rate=req.exact_rate, timecode=req.timecode,
    )
    rig = FaceRig(
        model_name=model.name, neutral=neutral.numpy().astype(np.float32), faces=model.faces.numpy().astype(np.int64),
        expression_names=names, expression_deltas=np.asarray(deltas, np.float32), joint_names=tuple(JOINT_NAMES),
        joint_parents=tuple(JOINT_PARENTS), rest_joints=rest_joints.numpy().astype(np.float32),
        skinning_weights=model.skinning_weights.numpy().astype(np.float32),
        max_corrective_m=max_corrective(model, anim.joint_rotations),
    )
    return rig, anim


def max_corrective(model, joint_rotations: np.ndarray) -> float:
    """Largest displacement (metres) FLAME's pose correctives give any vertex over the frames."""
    if not bool(model.pose_basis.abs().max() > 0):
        return 0.0
    from core.facemodel.lbs import batch_rodrigues

    unique = np.unique(joint_rotations.reshape(len(joint_rotations), -1), axis=0)
    worst = 0.0
    eye = torch.eye(3)
    with torch.no_grad():
        for i in range(0, len(unique), BATCH):
            part = torch.as_tensor(unique[i:i + BATCH]).reshape(-1, 3)
            rot = batch_rodrigues(part).view(-1, len(JOINT_NAMES), 3, 3)
            feature = (rot[:, 1:] - eye).reshape(len(rot), -1)
            offsets = (feature @ model.pose_basis).view(len(rot), -1, 3)
            worst = max(worst, float(offsets.norm(dim=2).max()))
    return worst


def face_params(model, anim: RigAnimation, identity: np.ndarray, frames: np.ndarray) -> FaceParams:
    """FaceParams of the given exported frames (their held rows, with the head translation)."""

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)

    pose = anim.joint_rotations[frames]
    shape = t(identity)[None].expand(len(frames), -1).contiguous()
    weights = anim.weights if anim.model_weights is None else anim.model_weights
    return FaceParams(shape=shape, expression=t(weights[frames]), rotation=t(pose[:, 0]), neck=t(pose[:, 1]),
                      jaw=t(pose[:, 2]), eyes=t(pose[:, 3:5].reshape(len(frames), 6)), translation=t(anim.translation[frames]))


def animated_vertices(model, anim: RigAnimation, identity: np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """The model's posed vertices of the given exported frames (default all): K x V x 3 float32,
    model space, metres, head translation included. This is the reference every format is checked
    against, and what the abc mesh cache stores."""
    frames = np.arange(len(anim)) if frames is None else np.asarray(frames)
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), BATCH):
            out.append(model(face_params(model, anim, identity, frames[i:i + BATCH])).vertices.numpy())
    return np.concatenate(out) if out else np.zeros((0, model.num_vertices, 3), np.float32)


def axis_angle_to_quaternion(axis_angle: np.ndarray) -> np.ndarray:
    """... x 3 axis-angle (radians) -> ... x 4 unit quaternions (w, x, y, z), float64. Along the
    first axis the signs are made continuous (q and -q are the same rotation; interpolating
    between neighbours then takes the short way)."""
    aa = np.asarray(axis_angle, np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = angle / 2.0
    # sin(angle/2)/angle, with its limit 1/2 near 0
    k = np.where(angle > 1e-8, np.sin(half) / np.where(angle > 1e-8, angle, 1.0), 0.5 - angle**2 / 48.0)
    q = np.concatenate([np.cos(half), aa * k], axis=-1)
    for i in range(1, len(q)):
        q[i] *= np.where((q[i] * q[i - 1]).sum(axis=-1) < 0, -1.0, 1.0)[..., None]
    return q
