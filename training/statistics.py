"""Standardisation of the encoder's parameter head, from the training targets.

Each parameter's mean and spread come from the samples that have a target for it. Where none has
one (self-supervised data only), priors are used: identity 0 +- 1 (the models' bases are scaled for
standard-normal identities); expression 0 +- 0.2; rotations 0 +- 0.3 rad (head) or 0.1 (neck, jaw,
eyes); camera from a similarity alignment of the model's neutral landmarks to the mean observed
crop landmarks, +- (0.1 log, 0.05, 0.05, 0.05 crop sides). Spreads are floored at 1e-3 so constant
targets stay well-defined. Groups whose known targets are all exactly zero (the open model's
neck, jaw and eyes in fitted takes) are returned as zero groups; with no targets at all the
fitter's convention is used: neck always zero, jaw and eyes zero for bounded (ARKit) models.
"""

from __future__ import annotations

import numpy as np
import torch

from core.encoder.config import EncoderConfig
from core.facemodel.model import FaceModel
from core.fit.rigid import initial_rigid, rigid_rows
from training.samples import SampleArrays

PRIOR_STD = {"identity": 1.0, "expression": 0.2, "rotation": 0.3, "neck": 0.1, "jaw": 0.1, "eyes": 0.1}
CAMERA_STD = (0.1, 0.05, 0.05, 0.05)
MIN_STD = 1e-3


def prior_camera(model: FaceModel, data: SampleArrays) -> np.ndarray:
    """(4,) crop-space camera aligning the neutral model to the mean observed landmarks."""
    valid = np.isfinite(data.landmarks).all(axis=(1, 2))
    if not valid.any():
        return np.array([np.log(1 / 0.2), 0.5, 0.5, 0.0], np.float32)  # a 20 cm wide view, centred
    mean = data.landmarks[valid].mean(axis=0)[model.landmark_ids.cpu().numpy()]
    with torch.no_grad():
        neutral = model(model.zero_params(1))
    _, camera = initial_rigid(neutral.landmarks[0].double().numpy(), neutral.joints[0, 0].double().numpy(),
                              mean[None].astype(np.float64), rigid_rows(model.landmark_ids.cpu().numpy()))
    return camera[0]


def parameter_statistics(data: SampleArrays, model: FaceModel, config: EncoderConfig) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(mean P, std P, zero groups) for FaceEncoder.set_statistics and EncoderConfig.zero_groups."""
    mean = np.zeros(config.num_params, np.float64)
    std = np.ones(config.num_params, np.float64)
    camera = None
    zero_groups = []
    any_target = False
    for name, part in config.group_slices().items():
        values = data.params[:, part].astype(np.float64)
        known = np.isfinite(values)
        for k, col in enumerate(range(part.start, part.stop)):
            column = values[known[:, k], k]
            if len(column) >= 2:
                mean[col], std[col] = column.mean(), max(column.std(), MIN_STD)
            elif name == "camera":
                camera = prior_camera(model, data) if camera is None else camera
                mean[col], std[col] = camera[k], CAMERA_STD[k]
            else:
                mean[col], std[col] = 0.0, PRIOR_STD[name]
        if known.any():
            any_target = True
            if known.all(axis=1).any() and np.all(values[known] == 0):
                zero_groups.append(name)
    if not any_target:
        zero_groups = ["neck"] + (["jaw", "eyes"] if config.expression_bounds is not None else [])
    return mean.astype(np.float32), np.maximum(std, MIN_STD).astype(np.float32), tuple(zero_groups)
