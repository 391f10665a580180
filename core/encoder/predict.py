"""From encoder outputs on a clip's crops to the FitParams a take stores (image space)."""

from __future__ import annotations

import numpy as np
import torch

from core.encoder.crop_space import pose_from_crop
from core.encoder.model import EncoderOutput
from core.facemodel.model import FaceModel
from core.fit.camera import project
from core.fit.fitter import interocular
from core.fit.params import FitParams
from core.take.observations import ObservationArrays


def root_joint(model: FaceModel, identity: np.ndarray) -> np.ndarray:
    """The rest position (3,) of the root joint, metres, for identity coefficients (S,)."""
    with torch.no_grad():
        ident = torch.as_tensor(identity, dtype=torch.float32)
        return (model.joint_template[0] + model.joint_shape_basis[0] @ ident).double().numpy()


def to_fit_params(output: EncoderOutput, rows: np.ndarray, observations: ObservationArrays, model: FaceModel,
                  crop_size: float) -> FitParams:
    """Encoder outputs (NumPy, one per row of ``rows``) -> FitParams over all frames of
    ``observations`` (rows without a prediction stay NaN, has_face False).

    The clip's identity is the median of the per-frame identities. Expression weights are clipped
    to the model's bounds. Pose and camera go from crop space to image space with each frame's
    crop transform (for crops of side ``crop_size``). residual: mean 2D distance between the
    model's landmarks and the observed ones over the inter-ocular distance (as the fitter's)."""
    rows = np.asarray(rows, np.int64)
    identity = np.median(output.identity, axis=0).astype(np.float32) if len(rows) else np.zeros(model.num_shape, np.float32)
    result = FitParams.empty(observations.index, identity, model.num_expression)
    if len(rows) == 0:
        return result
    expression = np.asarray(output.expression, np.float32)
    if model.expression_bounds is not None:
        expression = np.clip(expression, *model.expression_bounds)
    transforms = observations.crop_transform[rows].astype(np.float64)
    rotation, camera = pose_from_crop(output.rotation, output.camera, root_joint(model, identity), transforms, crop_size)
    result.has_face[rows] = True
    result.expression[rows] = expression
    result.rotation[rows] = rotation
    result.neck[rows] = output.neck
    result.jaw[rows] = output.jaw
    result.eyes[rows] = output.eyes
    result.camera[rows] = camera
    result.residual[rows] = landmark_residual(model, result, rows, observations)
    return result


def landmark_residual(model: FaceModel, params: FitParams, rows: np.ndarray, observations: ObservationArrays,
                      rows_per_pass: int = 512) -> np.ndarray:
    """Mean 2D landmark error of ``rows`` as a fraction of the inter-ocular distance (N,); the face
    model poses ``rows_per_pass`` frames at a time, so memory does not grow with a clip's length."""
    ids = model.landmark_ids.cpu().numpy()
    out = np.empty(len(rows), np.float32)
    for k in range(0, len(rows), rows_per_pass):
        part = rows[k : k + rows_per_pass]
        with torch.no_grad():
            posed = model(params.to_face_params(part))
            image = project(posed.landmarks, torch.as_tensor(params.camera[part])).numpy()
        observed = observations.landmarks[part]
        error = np.linalg.norm(image[..., :2] - observed[:, ids, :2], axis=2).mean(axis=1)
        out[k : k + rows_per_pass] = error / interocular(observed)
    return out
