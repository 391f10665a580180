"""The training objective: encoder outputs -> face model -> projections and renders -> the
weighted sum of the losses in training/losses/.

Per batch (weights from LossWeights; a loss with weight 0 costs nothing):

- the predicted parameters drive the face model; its landmarks are projected with the crop-space
  camera and compared with MediaPipe's (landmark reprojection);
- expression and the other groups are compared with the targets where the samples have them
  (direct 3D supervision, pseudo ground truth);
- the emotion branch meets the intensity-aware emotion loss;
- for samples with an actor texture, the predicted mesh is rendered by texture warping
  (core/render/differentiable.py) over the input crop: photometric loss against the crop, and a
  frozen recogniser on the render against the emotion target (intensity-aware) and against the
  same recogniser on the crop (emotion consistency). The recogniser's losses reach only the
  expression, jaw and eyes (identity, head pose and camera are held fixed for them);
- identity and expression regularisers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.encoder.config import EncoderConfig
from core.encoder.model import EncoderOutput
from core.facemodel.model import FaceModel
from core.facemodel.types import FaceParams
from core.fit.camera import project
from core.observe import landmark_ids as ids
from core.render.differentiable import coverage, texture_warp
from training.config import LossWeights
from training.losses import (
    emotion_consistency_loss,
    expression_regulariser,
    expression_supervision_loss,
    identity_consistency,
    identity_regulariser,
    intensity_aware_emotion_loss,
    landmark_reprojection_loss,
    parameter_supervision_loss,
    photometric_loss,
)
from training.render_topology import FILLER_DEPTH, render_topology
from training.samples import Batch

OTHER_GROUPS = ("identity", "rotation", "neck", "jaw", "eyes", "camera")


@dataclass(frozen=True)
class Render:
    """Texture-warp renders of the batch rows ``rows``: images R x 3 x S x S; mask R x 1 x S x S,
    the pixels the mesh and its hole fillers cover; skin R x 1 x S x S, those of the mesh itself."""

    rows: torch.Tensor
    images: torch.Tensor
    mask: torch.Tensor
    skin: torch.Tensor


def face_params(out: EncoderOutput, expression_only: bool = False) -> FaceParams:
    """The face model's parameters of the encoder's outputs; ``expression_only`` holds identity,
    head rotation and neck fixed (detached), so gradients reach only expression, jaw and eyes."""
    n = out.expression.shape[0]

    def fixed(t: torch.Tensor) -> torch.Tensor:
        return t.detach() if expression_only else t

    return FaceParams(shape=fixed(out.identity), expression=out.expression, rotation=fixed(out.rotation),
                      neck=fixed(out.neck), jaw=out.jaw, eyes=out.eyes,
                      translation=torch.zeros(n, 3, device=out.expression.device))


class Objective:
    """model: the FaceModel; config: the encoder's configuration; weights: loss weights;
    param_scale: P typical spreads of the parameters (the encoder's param_std); recogniser: the
    frozen DifferentiableRecogniser of the render losses (None when they are off)."""

    def __init__(self, model: FaceModel, config: EncoderConfig, weights: LossWeights, param_scale: torch.Tensor,
                 recogniser=None) -> None:
        self.model = model
        self.landmark_model = model.landmark_model() if model.num_vertices > 2 * len(model.landmark_ids) else model
        self.config = config
        self.weights = weights
        self.param_scale = param_scale
        self.recogniser = recogniser
        self.slices = config.group_slices()
        self.landmark_ids = model.landmark_ids
        self.topology = render_topology(model)

    def __call__(self, out: EncoderOutput, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        w = self.weights
        terms: dict[str, torch.Tensor] = {}
        params = face_params(out)
        need_render = w.uses_render() and batch.texture_images is not None and bool((batch.texture >= 0).any())
        geometry = (self.model if need_render else self.landmark_model)(params)
        landmarks = project(geometry.landmarks, out.camera)
        observed = batch.landmarks
        iod = (observed[:, ids.LEFT_EYE_OUTER, :2] - observed[:, ids.RIGHT_EYE_OUTER, :2]).norm(dim=1)
        if w.landmarks > 0:
            terms["landmarks"] = landmark_reprojection_loss(landmarks, observed[:, self.landmark_ids], iod, w.z_weight)
        if w.expression > 0:
            terms["expression"] = expression_supervision_loss(
                out.expression, batch.params[:, self.slices["expression"]], batch.param_weight)
        if w.parameters > 0:
            cols = torch.cat([torch.arange(self.slices[g].start, self.slices[g].stop) for g in OTHER_GROUPS])
            predicted = torch.cat([getattr(out, g) for g in OTHER_GROUPS], dim=1)
            terms["parameters"] = parameter_supervision_loss(
                predicted, batch.params[:, cols], self.param_scale[cols], batch.param_weight)
        if w.emotion > 0:
            terms["emotion"] = intensity_aware_emotion_loss(
                torch.softmax(out.emotion_logits, dim=1), batch.emotion, batch.intensity, out.valence_arousal,
                batch.valence_arousal, exaggeration=w.exaggeration, muting=w.muting)
        if need_render and w.photometric > 0:
            render = self.render(geometry.vertices, geometry.landmarks, out.camera, batch)
            terms["photometric"] = photometric_loss(render.images, batch.images[render.rows], render.skin)
        if need_render and self.recogniser is not None and (w.consistency > 0 or w.reconstruction_emotion > 0):
            # the recogniser's verdict may move the expression only: when it could also move the
            # head and camera, it did (landmark error doubled) to please FER without convincing EmoNet
            shape = self.model(face_params(out, expression_only=True))
            render = self.render(shape.vertices, shape.landmarks, out.camera.detach(), batch)
            on_render = self.recogniser(render.images)
            if w.consistency > 0:
                with torch.no_grad():
                    on_image = self.recogniser(batch.images[render.rows])
                terms["consistency"] = emotion_consistency_loss(on_render, on_image)
            if w.reconstruction_emotion > 0:
                terms["reconstruction_emotion"] = intensity_aware_emotion_loss(
                    on_render, batch.emotion[render.rows], batch.intensity[render.rows],
                    exaggeration=w.exaggeration, muting=w.muting)
        if w.identity_reg > 0:
            terms["identity_reg"] = identity_regulariser(out.identity) + identity_consistency(out.identity, batch.actor)
        if w.expression_reg > 0:
            terms["expression_reg"] = expression_regulariser(out.expression, self.config.expression_bounds)
        total = sum(getattr(w, name) * value for name, value in terms.items())
        return total, {name: float(value.detach()) for name, value in terms.items()}

    def render(self, vertices: torch.Tensor, landmarks: torch.Tensor, camera: torch.Tensor, batch: Batch) -> Render:
        """Texture-warp renders (over the input crops) of the rows that have a texture: the mesh and
        its hole fillers (training/render_topology.py), textured from the actor's reference frame."""
        rows = torch.nonzero(batch.texture >= 0).squeeze(1)
        size = batch.images.shape[-1]
        points = project(torch.cat([vertices[rows], landmarks[rows]], dim=1), camera[rows]) * size  # R x (V+L) x 3 px
        depth = points[..., 2].detach().cpu().numpy()
        if self.topology.filler_points:  # fillers behind the skin: only seen through the holes
            span = np.ptp(depth[:, : vertices.shape[1]], axis=1, keepdims=True) + 1.0
            depth[:, vertices.shape[1]:] += FILLER_DEPTH * span
        visible = np.concatenate([points[..., :2].detach().cpu().numpy(), depth[..., None]], axis=2)
        cov = coverage(visible, self.topology.faces.cpu().numpy(), (size, size)).to(points.device)
        tex = batch.texture[rows]
        images, mask = texture_warp(points[..., :2], batch.texture_uv[tex] * size, self.topology.faces,
                                    batch.texture_images[tex], cov, background=batch.images[rows], shade=self.topology.shade)
        on_skin = cov.triangle < self.topology.skin_faces
        flat = cov.batch[on_skin] * size * size + cov.pixel[on_skin]
        skin = torch.zeros(len(rows) * size * size, device=points.device).index_put(
            (flat,), torch.ones(len(flat), device=points.device)).view(len(rows), 1, size, size)
        return Render(rows, images, mask, skin)
