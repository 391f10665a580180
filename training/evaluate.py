"""Held-out evaluation of an actor encoder against the fitter it was distilled from.

- parameters: mean absolute error of the expression weights, head rotation error (degrees,
  geodesic, image space);
- landmarks: the encoder's 2D landmark error against MediaPipe's (% of the inter-ocular
  distance), beside the fitter's on the same frames, and the distance between the two meshes'
  landmarks;
- emotion: the emotion branch's agreement with a recogniser, and the emotion consistency of the
  reconstruction (core.emotion.consistency: 1 - Jensen-Shannon divergence between a recogniser on
  the image crop and on the ReconstructionRenderer's render of the parameters), for the encoder's
  parameters and the fitter's, judged by any recogniser (use one the losses did not see).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from core.emotion.consistency import consistency
from core.encoder.model import EncoderOutput, FaceEncoder
from core.encoder.predict import to_fit_params
from core.facemodel.model import FaceModel
from core.fit.camera import project
from core.fit.params import FitParams
from core.observe.align import warp_crop
from core.render.reconstruction import ReconstructionRenderer, choose_reference_frame
from core.take.observations import ObservationArrays

log = logging.getLogger(__name__)


@torch.no_grad()
def predict_images(encoder: FaceEncoder, images: np.ndarray, batch: int = 64) -> EncoderOutput:
    """N x S x S x 3 uint8 crops at the encoder's input size -> NumPy EncoderOutput (torch, eval)."""
    encoder.eval()
    parts = []
    for start in range(0, len(images), batch):
        x = torch.as_tensor(images[start:start + batch]).permute(0, 3, 1, 2).float() / 255.0
        parts.append(EncoderOutput.from_tuple(tuple(t.numpy() for t in encoder(x))))
    return EncoderOutput.concatenate(parts)


def rotation_error_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """N x 3, N x 3 axis-angle -> N geodesic angles between the rotations, degrees."""
    relative = Rotation.from_rotvec(a.astype(np.float64)).inv() * Rotation.from_rotvec(b.astype(np.float64))
    return np.degrees(relative.magnitude())


def model_landmarks(model: FaceModel, params: FitParams, rows: np.ndarray) -> np.ndarray:
    """Image-space landmarks (N x L x 3 pixels) of the model for ``rows``."""
    with torch.no_grad():
        return project(model(params.to_face_params(rows)).landmarks, torch.as_tensor(params.camera[rows])).numpy()


def parameter_metrics(pred: FitParams, fit: FitParams, observations: ObservationArrays, model: FaceModel,
                      rows: np.ndarray) -> dict[str, float]:
    """Errors of the encoder's parameters against the fitter's on ``rows`` (see module docstring)."""
    from core.fit.fitter import interocular

    iod = interocular(observations.landmarks[rows])
    between = np.linalg.norm(model_landmarks(model, pred, rows)[..., :2] - model_landmarks(model, fit, rows)[..., :2], axis=2)
    return {
        "frames": int(len(rows)),
        "expression_mae": float(np.abs(pred.expression[rows] - fit.expression[rows]).mean()),
        "rotation_error_deg": float(rotation_error_deg(pred.rotation[rows], fit.rotation[rows]).mean()),
        "landmark_error_pct_iod": float(100 * np.nanmean(pred.residual[rows])),
        "fitter_landmark_error_pct_iod": float(100 * np.nanmean(fit.residual[rows])),
        "encoder_vs_fitter_landmarks_pct_iod": float(100 * (between.mean(axis=1) / iod).mean()),
    }


def encoder_fit_params(encoder: FaceEncoder, images: np.ndarray, rows: np.ndarray, observations: ObservationArrays,
                       model: FaceModel, crop_size: float) -> tuple[FitParams, EncoderOutput]:
    """The encoder's FitParams for face ``rows`` (their crops ``images``), and its raw outputs."""
    out = predict_images(encoder, images)
    return to_fit_params(out, rows, observations, model, crop_size), out


@dataclass(frozen=True)
class JudgedEmotion:
    """A recogniser's view of N frames: image_probabilities N x 8 on the image crops; consistency:
    parameter-set name -> N per-frame consistency of its render with the image (1 - JS, bits)."""

    image_probabilities: np.ndarray
    consistency: dict[str, np.ndarray]


def judged_consistency(judge, model: FaceModel, params: dict[str, FitParams], observations: ObservationArrays,
                       source, rows: np.ndarray, reference_frame: int, crop_size: int = 256) -> JudgedEmotion:
    """Emotion consistency per row for each set of parameters (name -> FitParams), judged by the
    recogniser ``judge`` on 256 px image crops and ReconstructionRenderer renders. Every set is
    rendered with the same reference frame (texture), the fitter's choice."""
    index = observations.index[rows]
    crops = np.stack([warp_crop(source.read(int(i)), observations.crop_transform[r].astype(np.float64), crop_size)
                      for i, r in zip(index, rows)])
    on_image = judge.predict(crops).probabilities
    reference = source.read(int(reference_frame))
    out = {}
    for name, p in params.items():
        renderer = ReconstructionRenderer(model, p, observations, reference_frame=reference_frame, crop_size=crop_size)
        renderer.set_reference(reference_frame, reference)
        renders = np.concatenate([renderer.render_crop_batch(index[k:k + 16])[0] for k in range(0, len(index), 16)])
        out[name] = consistency(on_image, judge.predict(renders).probabilities)
    return JudgedEmotion(on_image, out)


def reference_of(fit: FitParams) -> int:
    return choose_reference_frame(fit)
