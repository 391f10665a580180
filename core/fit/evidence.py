"""Priors on the open model's ARKit curves beyond the landmarks: learned scores and plausibility.

- **Learned scores.** MediaPipe's blendshape network (core/observe/blendshapes.py) scores every
  observed frame. Its scores are evidence, not truth: on neutral faces it reports some curves far
  from zero (on KDEF's neutral photos eyeSquint about 0.3, and mouthPucker up to 0.7 for full lips),
  it under-reports cheekPuff and eyeWide, and it never reports cheekSquint or noseSneer (at most
  3e-5 on the development set's 48 expression photos, broad smiles among them). So each curve's
  target is the network's score minus its mean on neutral faces (or minus the performer's own
  neutral scores when the user names a neutral), its weight the inverse of the score's spread on
  neutral faces, and for the under-reported curves the evidence only pushes up (a low score says
  nothing). On one image whose neutral is unknown the scores weigh more, and an under-reported
  curve's low score pulls it down weakly (:meth:`CurvePriors.for_single_image`).
  A curve the network has no output for (tongueOut) is drawn toward zero in frames the network
  scored: landmarks alone cannot tell it from the mouth shapes that move the lips the same way, so
  it must not take their place.
  The model carries those statistics (``info["mediapipe_neutral"]``, measured by
  scripts/build_open_model.py); a model without them (FLAME) gets no score evidence.
- **Antagonist pairs**: curves that a face cannot show at once (smile and frown on one side, pucker
  and stretch, funnel and smile, eyes wide and squinting ...) cost ``w_a w_b``.
- **The bound**: weights above ``BOUND_START`` cost a quadratic, so that an extreme needs clear
  evidence and a curve does not sit at its bound to explain what another shape should.

Energies use the fitter's half convention: :meth:`CurvePriors.gradient` returns half the gradient
and half the diagonal curvature of the energy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

ANTAGONISTS = (
    ("mouthSmile{s}", "mouthFrown{s}"), ("mouthPucker", "mouthStretch{s}"), ("mouthPucker", "mouthSmile{s}"),
    ("mouthFunnel", "mouthSmile{s}"), ("eyeWide{s}", "eyeSquint{s}"), ("eyeWide{s}", "eyeBlink{s}"),
    ("browDown{s}", "browOuterUp{s}"), ("mouthRollUpper", "mouthUpperUp{s}"), ("mouthRollLower", "mouthLowerDown{s}"),
    ("mouthLeft", "mouthRight"), ("jawLeft", "jawRight"), ("eyeLookIn{s}", "eyeLookOut{s}"),
    ("eyeLookUp{s}", "eyeLookDown{s}"),
)
UNDER_REPORTED = ("cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeWideLeft", "eyeWideRight", "noseSneerLeft",
                  "noseSneerRight")
BOUND_START = 0.8
MIN_SPREAD = 0.05  # a score's spread on neutral faces is never taken as smaller than this
UNSCORED_SPREAD = 0.1  # the prior toward zero of a curve the network has no output for, as a spread


def antagonist_pairs(names: tuple[str, ...]) -> np.ndarray:
    """P x 2 indices of the antagonist pairs among ``names``."""
    pairs = set()
    for a, b in ANTAGONISTS:
        for side in ("Left", "Right"):
            first, second = a.format(s=side), b.format(s=side)
            if first in names and second in names:
                pairs.add((names.index(first), names.index(second)))
    return np.array(sorted(pairs), np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class CurvePriors:
    """Per-curve statistics and weights. neutral_mean, neutral_spread: E, the network's mean score
    and spread (RMS about the mean) on neutral faces; up_only: E bool; pairs: P x 2;
    evidence, antagonist, bound: weights of the three energies (0 turns one off); curve_weight:
    E factors of the evidence's weight per curve."""

    neutral_mean: np.ndarray
    neutral_spread: np.ndarray
    up_only: np.ndarray
    pairs: np.ndarray
    evidence: float
    antagonist: float
    bound: float
    curve_weight: np.ndarray

    @classmethod
    def for_model(cls, names: tuple[str, ...], info: dict, evidence: float, antagonist: float,
                  bound: float) -> CurvePriors | None:
        """The priors of a model with ARKit curves and the network's neutral statistics in its info;
        None for other models (FLAME)."""
        stats = info.get("mediapipe_neutral")
        if not stats or len(stats.get("mean", ())) != len(names):
            return None
        return cls(
            neutral_mean=np.nan_to_num(np.asarray(stats["mean"], np.float64)),
            neutral_spread=np.maximum(np.nan_to_num(np.asarray(stats["spread"], np.float64), nan=1.0), MIN_SPREAD),
            up_only=np.array([n in UNDER_REPORTED for n in names]),
            pairs=antagonist_pairs(names),
            evidence=evidence, antagonist=antagonist, bound=bound, curve_weight=np.ones(len(names)),
        )

    def for_single_image(self, evidence: float, under_reported: float) -> CurvePriors:
        """These priors for one image of a performer whose neutral is unknown: the scores weigh
        ``evidence``, and those of the UNDER_REPORTED curves count both ways at ``under_reported``
        times that weight (a low score of a curve the network under-reports is weak evidence, not
        none). See FitConfig.evidence_single_image."""
        return replace(self, evidence=evidence, up_only=np.zeros_like(self.up_only),
                       curve_weight=np.where(self.up_only, under_reported, 1.0))

    def targets(self, scores: np.ndarray, neutral_scores: np.ndarray | None = None,
                view_variance: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(targets, weights), both M x E, from the network's M x E scores (NaN: no evidence; a NaN
        curve in a scored frame is one the network has no output for, drawn toward 0).
        neutral_scores: E scores of the performer's own neutral, replacing the population mean.
        view_variance: M x E, how much less certain each score is at its frame's head pose (its
        variance between views, core/observe/view_bias.py), added to the neutral faces' spread."""
        baseline = self.neutral_mean if neutral_scores is None else np.nan_to_num(neutral_scores)
        known = np.isfinite(scores)
        scored_frame = known.any(axis=1, keepdims=True)
        target = np.clip(np.where(known, scores, 0.0) - baseline, 0.0, 1.0)
        variance = self.neutral_spread**2 if view_variance is None else self.neutral_spread**2 + view_variance
        weight = np.where(known, self.evidence / variance * self.curve_weight, 0.0)
        weight = np.where(~known & scored_frame, self.evidence / UNSCORED_SPREAD**2, weight)
        return target, weight

    def energy(self, weights: np.ndarray, target: np.ndarray, precision: np.ndarray) -> np.ndarray:
        """Per frame: M. weights, target, precision: M x E."""
        gap = weights - target
        gap = np.where(self.up_only & (gap > 0), 0.0, gap)
        out = (precision * gap**2).sum(axis=1)
        out += self.antagonist * (weights[:, self.pairs[:, 0]] * weights[:, self.pairs[:, 1]]).sum(axis=1)
        out += self.bound * (np.maximum(weights - BOUND_START, 0.0) ** 2).sum(axis=1)
        return out

    def gradient(self, weights: np.ndarray, target: np.ndarray, precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Half gradient and half diagonal curvature, M x E each."""
        gap = weights - target
        active = ~(self.up_only & (gap > 0))
        gradient = np.where(active, precision * gap, 0.0)
        curvature = np.where(active, precision, 0.0)
        for a, b in self.pairs:
            gradient[:, a] += 0.5 * self.antagonist * weights[:, b]
            gradient[:, b] += 0.5 * self.antagonist * weights[:, a]
        over = weights > BOUND_START
        gradient += self.bound * np.maximum(weights - BOUND_START, 0.0)
        curvature += self.bound * over
        return gradient, curvature
