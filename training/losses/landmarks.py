"""2D landmark reprojection loss (self-supervision from MediaPipe's landmarks)."""

from __future__ import annotations

import torch


def interocular(landmarks: torch.Tensor, right: int, left: int) -> torch.Tensor:
    """B x L x 3 -> B distances (x, y) between two landmarks (the outer eye corners)."""
    return (landmarks[:, left, :2] - landmarks[:, right, :2]).norm(dim=1)


def landmark_reprojection_loss(predicted: torch.Tensor, observed: torch.Tensor, iod: torch.Tensor,
                               z_weight: float = 0.2, eps: float = 1e-8) -> torch.Tensor:
    """Mean distance between the model's projected landmarks and the observed ones, in units of
    the inter-ocular distance.

    predicted, observed: B x L x 3 (same units, e.g. crop sides; z = depth). iod: B. Per landmark
    the distance is sqrt(dx^2 + dy^2 + z_weight dz^2) of the error divided by the sample's iod,
    with dz taken relative to its mean over the landmarks (MediaPipe's depth has no absolute
    origin). Samples whose observed landmarks hold NaN are left out (0 when none is left).
    Known answer: every landmark off by 0.1 iod in x -> 0.1."""
    valid = torch.isfinite(observed).all(dim=2).all(dim=1) & torch.isfinite(iod) & (iod > 0)
    if not valid.any():
        return predicted.sum() * 0.0
    d = (predicted[valid] - observed[valid]) / iod[valid, None, None]
    dz = d[..., 2] - d[..., 2].mean(dim=1, keepdim=True)
    return torch.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + z_weight * dz**2 + eps).mean()
