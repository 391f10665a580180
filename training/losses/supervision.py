"""Direct parameter supervision: against ground truth (4D-scan fits, FIELDS' direct 3D expression
supervision) or against the fitter's results on video (pseudo ground truth, actor distillation)."""

from __future__ import annotations

import torch


def _weighted_mean(per_sample: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    total = weight.sum()
    if total <= 0:
        return per_sample.sum() * 0.0
    return (per_sample * weight).sum() / total


def expression_supervision_loss(predicted: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Direct 3D expression supervision: weighted mean over samples of the mean squared error of
    the expression parameters (ARKit weights or FLAME coefficients, unitless).

    predicted, target: B x E (target rows with NaN are left out); weight: B, per sample (1 for
    ground truth, the pseudo-ground-truth weight for fitter results, 0 for none). Known answer:
    every weight off by 0.1 -> 0.01."""
    valid = torch.isfinite(target).all(dim=1) & (weight > 0)
    if not valid.any():
        return predicted.sum() * 0.0
    per_sample = ((predicted[valid] - target[valid]) ** 2).mean(dim=1)
    return _weighted_mean(per_sample, weight[valid])


def parameter_supervision_loss(predicted: torch.Tensor, target: torch.Tensor, scale: torch.Tensor,
                               weight: torch.Tensor) -> torch.Tensor:
    """Supervision of the other parameter groups (identity, head rotation, jaw, eyes, camera):
    weighted mean over samples of the mean over known entries of ((predicted - target) / scale)^2.

    predicted, target: B x K (NaN target entries are left out); scale: K, each entry's typical
    spread (the encoder's standardisation), so radians, log-scales and crop sides weigh alike;
    weight: B. Known answer: every entry off by its scale -> 1."""
    known = torch.isfinite(target)
    valid = known.any(dim=1) & (weight > 0)
    if not valid.any():
        return predicted.sum() * 0.0
    err = torch.where(known, (predicted - torch.nan_to_num(target)) / scale, torch.zeros_like(predicted)) ** 2
    per_sample = err[valid].sum(dim=1) / known[valid].sum(dim=1)
    return _weighted_mean(per_sample, weight[valid])
