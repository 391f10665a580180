"""Photometric consistency between a render and the image."""

from __future__ import annotations

import torch


def photometric_loss(render: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute colour difference (colours in [0, 1]) over the pixels the mesh covers.

    render, image: B x C x H x W; mask: B x 1 x H x W in [0, 1] (the render's coverage). Each
    covered pixel counts once, averaged over its C channels; 0 when nothing is covered. Known
    answer: render 0.5 and image 0.25 everywhere, half the pixels covered -> 0.25."""
    weight = mask.expand_as(render)
    covered = weight.sum()
    if covered <= 0:
        return render.sum() * 0.0
    return ((render - image).abs() * weight).sum() / covered
