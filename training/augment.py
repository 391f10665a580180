"""Random similarity and colour jitter of a batch, with the targets moved along.

A crop-space point u (crop sides from the top-left corner) moves to a (u - 0.5) + 0.5 + d (scale
a about the crop centre, shift d). The targets that live in the crop move the same way: landmarks
(x, y as points; z scaled by a) and the crop-space camera (log scale + log a; tx, ty as points;
tz scaled by a). Head rotation, expression and emotion do not change. Textures are untouched (the
render is drawn in the augmented crop, sampling the texture where the vertices were).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from training.config import AugmentSpec
from training.samples import Batch


def augment(batch: Batch, spec: AugmentSpec, camera: slice, generator: torch.Generator) -> Batch:
    """A jittered copy of ``batch``. camera: the slice of the camera group in ``batch.params``."""
    n, _, h, w = batch.images.shape
    dev = batch.images.device

    def uniform(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=generator) * 2 - 1).to(dev)

    a = torch.exp(uniform(n) * math.log1p(spec.scale)) if spec.scale > 0 else torch.ones(n, device=dev)
    d = uniform(n, 2) * spec.shift
    # grid_sample coordinates (align_corners=False): g = 2 u - 1 + 1/S for crop coordinate u
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / a
    offset = torch.tensor([1.0 / w, 1.0 / h], device=dev)
    theta[:, :, 2] = (-offset - 2 * d) / a[:, None] + offset
    grid = F.affine_grid(theta, (n, 3, h, w), align_corners=False)
    images = F.grid_sample(batch.images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if spec.colour > 0:
        brightness = 1 + uniform(n, 1, 1, 1) * spec.colour
        contrast = 1 + uniform(n, 1, 1, 1) * spec.colour
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        images = ((images - mean) * contrast + mean) * brightness
    images = images.clamp(0, 1)

    landmarks = batch.landmarks.clone()
    landmarks[..., :2] = a[:, None, None] * (landmarks[..., :2] - 0.5) + 0.5 + d[:, None]
    landmarks[..., 2] = a[:, None] * landmarks[..., 2]
    params = batch.params.clone()
    cam = params[:, camera]
    cam[:, 0] = cam[:, 0] + torch.log(a)
    cam[:, 1:3] = a[:, None] * (cam[:, 1:3] - 0.5) + 0.5 + d
    cam[:, 3] = a * cam[:, 3]
    params[:, camera] = cam
    return replace(batch, images=images, landmarks=landmarks, params=params)
