"""Regularisers on identity and expression parameters."""

from __future__ import annotations

import torch


def identity_regulariser(identity: torch.Tensor) -> torch.Tensor:
    """Mean squared identity coefficient (B x S): both models' identity bases are scaled so that
    standard-normal coefficients are plausible faces, so this is a Gaussian prior up to scale.
    Known answer: all coefficients 2 -> 4."""
    return (identity**2).mean()


def identity_consistency(identity: torch.Tensor, actor: torch.Tensor) -> torch.Tensor:
    """One performer has one identity: the mean over performers present at least twice in the
    batch of the mean squared deviation of their samples' identities (B x S) from the performer's
    batch mean. actor: B ids (-1 unknown, left out). Known answer: two samples of one actor at
    +1 and -1 -> 1."""
    losses = []
    for a in torch.unique(actor):
        rows = actor == a
        if a < 0 or rows.sum() < 2:
            continue
        group = identity[rows]
        losses.append(((group - group.mean(dim=0, keepdim=True)) ** 2).mean())
    return torch.stack(losses).mean() if losses else identity.sum() * 0.0


def expression_regulariser(expression: torch.Tensor, bounds: tuple[float, float] | None) -> torch.Tensor:
    """Expression prior. Bounded weights (the open model's ARKit curves in [0, 1]): mean absolute
    weight (L1, sparse activations as the fitter uses) plus 10 x the mean squared excess outside
    the bounds. Unbounded coefficients (FLAME): mean squared coefficient.
    Known answers: bounded, all weights 0.5 -> 0.5; all 1.5 -> 1.5 + 10 x 0.25 = 4.0."""
    if bounds is None:
        return (expression**2).mean()
    low, high = bounds
    excess = torch.relu(low - expression) + torch.relu(expression - high)
    return expression.abs().mean() + 10.0 * (excess**2).mean()
