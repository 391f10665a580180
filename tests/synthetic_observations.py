"""Landmark observations of a posed face model, as MediaPipe would report them (test code only)."""

import numpy as np
import torch

from core.fit.camera import project
from core.take.observations import ObservationArrays


def observations_from(model, params, camera, noise_px=0.0, seed=0) -> ObservationArrays:
    """N frames of the model posed with ``params`` under ``camera`` (N x 4), its landmarks projected
    to the image (478 ids) with Gaussian noise of ``noise_px`` pixels, at 30 frames/s."""
    with torch.no_grad():
        image = project(model(params).landmarks, camera).numpy()
    image = image + np.random.default_rng(seed).normal(scale=noise_px, size=image.shape)
    n = len(image)
    obs = ObservationArrays.empty(n)
    obs.index[:] = np.arange(n)
    obs.timestamp[:] = np.arange(n) / 30.0
    obs.has_face[:] = True
    obs.landmarks[:, model.landmark_ids.numpy()] = image
    return obs
