"""Emotion losses: FIELDS' intensity-aware emotion loss and the emotion-consistency loss.

Intensity of an emotion distribution p over EMOTIONS: 1 - p[neutral], the probability mass of any
emotion at all (0 = a neutral face, 1 = a full-blown emotion); the mix of emotions is p without
neutral, renormalised.
"""

from __future__ import annotations

import math

import torch

from core.emotion.types import EMOTIONS

NEUTRAL = EMOTIONS.index("neutral")


def emotion_intensity(probabilities: torch.Tensor) -> torch.Tensor:
    """B x 8 -> B: 1 - p[neutral]."""
    return 1.0 - probabilities[:, NEUTRAL]


def _non_neutral(p: torch.Tensor, eps: float) -> torch.Tensor:
    rest = torch.cat([p[:, :NEUTRAL], p[:, NEUTRAL + 1:]], dim=1).clamp_min(eps)
    return rest / rest.sum(dim=1, keepdim=True)


def intensity_aware_emotion_loss(predicted: torch.Tensor, target: torch.Tensor, target_intensity: torch.Tensor | None = None,
                                 predicted_va: torch.Tensor | None = None, target_va: torch.Tensor | None = None, *,
                                 exaggeration: float = 1.0, muting: float = 1.0, eps: float = 1e-6) -> torch.Tensor:
    """Match the emotion *and* its intensity (FIELDS): per sample, the sum of

    - class: KL(target mix || predicted mix) over the non-neutral classes (nats), weighted by the
      target intensity (which emotion a neutral face shows does not matter);
    - intensity: ``exaggeration`` x (i_pred - i_target)^2 when the prediction is stronger than the
      target, ``muting`` x (i_target - i_pred)^2 when weaker, with i = 1 - p[neutral] (or the given
      ``target_intensity`` where it is finite);
    - affect: mean squared error of valence and arousal (B x 2) where the target has them;

    averaged over the samples with a target. predicted, target: B x 8 probabilities (target rows
    with NaN are left out). Known answers: prediction = target -> 0; same mix, intensity 0.8
    predicted for 0.5 -> exaggeration x 0.09; 0.2 predicted for 0.5 -> muting x 0.09."""
    valid = torch.isfinite(target).all(dim=1)
    if not valid.any():
        return predicted.sum() * 0.0
    p, q = target[valid], predicted[valid]
    i_target = emotion_intensity(p)
    if target_intensity is not None:
        given = target_intensity[valid]
        i_target = torch.where(torch.isfinite(given), given, i_target)
    mix_p, mix_q = _non_neutral(p, eps), _non_neutral(q, eps)
    class_term = i_target * (mix_p * (mix_p.log() - mix_q.log())).sum(dim=1)
    gap = emotion_intensity(q) - i_target
    intensity_term = torch.where(gap > 0, exaggeration * gap**2, muting * gap**2)
    loss = class_term + intensity_term
    if predicted_va is not None and target_va is not None:
        va_t, va_p = target_va[valid], predicted_va[valid]
        known = torch.isfinite(va_t)
        sq = torch.where(known, (va_p - torch.nan_to_num(va_t)) ** 2, torch.zeros_like(va_p))
        loss = loss + sq.sum(dim=1) / known.sum(dim=1).clamp_min(1)
    return loss.mean()


def emotion_consistency_loss(render_probabilities: torch.Tensor, image_probabilities: torch.Tensor,
                             eps: float = 1e-8) -> torch.Tensor:
    """The emotion-consistency loss (a frozen recogniser on the reconstruction versus on the image
    must agree): mean Jensen-Shannon divergence in bits between the B x 8 distributions, so 0 for
    the same emotion and 1 for disjoint ones (1 - this is core.emotion.consistency's measure).
    Rows of ``image_probabilities`` with NaN are left out. Known answers: identical -> 0;
    one-hot on different classes -> 1."""
    valid = torch.isfinite(image_probabilities).all(dim=1)
    if not valid.any():
        return render_probabilities.sum() * 0.0
    p = render_probabilities[valid].clamp_min(eps)
    q = image_probabilities[valid].clamp_min(eps)
    p, q = p / p.sum(dim=1, keepdim=True), q / q.sum(dim=1, keepdim=True)
    m = 0.5 * (p + q)
    js = 0.5 * (p * (p / m).log()).sum(dim=1) + 0.5 * (q * (q / m).log()).sum(dim=1)
    return js.mean() / math.log(2.0)
