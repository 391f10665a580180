"""Every training loss on a case with a known answer."""

import math

import pytest
import torch

from core.emotion.types import EMOTIONS
from training.losses import (
    emotion_consistency_loss,
    emotion_intensity,
    expression_regulariser,
    expression_supervision_loss,
    identity_consistency,
    identity_regulariser,
    intensity_aware_emotion_loss,
    landmark_reprojection_loss,
    parameter_supervision_loss,
    photometric_loss,
)

HAPPY, SAD, NEUTRAL = EMOTIONS.index("happy"), EMOTIONS.index("sad"), EMOTIONS.index("neutral")


def mix(intensity: float, happy_share: float = 1.0) -> torch.Tensor:
    """One row: ``intensity`` split between happy (share) and sad, the rest neutral."""
    p = torch.zeros(1, 8)
    p[0, NEUTRAL] = 1 - intensity
    p[0, HAPPY] = intensity * happy_share
    p[0, SAD] = intensity * (1 - happy_share)
    return p


def test_landmark_loss_is_the_mean_distance_in_eye_distances():
    observed = torch.rand(2, 478, 3)
    iod = torch.tensor([0.3, 0.5])
    shifted = observed.clone()
    shifted[..., 0] += 0.1 * iod[:, None]
    shifted[..., 2] += 7.0  # a constant depth offset is no error (depth has no origin)
    assert landmark_reprojection_loss(shifted, observed, iod).item() == pytest.approx(0.1, abs=1e-4)
    assert landmark_reprojection_loss(observed, observed, iod).item() == pytest.approx(0.0, abs=1e-3)
    missing = observed.clone()
    missing[1] = float("nan")  # the second sample has no landmarks: only the first counts
    assert landmark_reprojection_loss(shifted, missing, iod).item() == pytest.approx(0.1, abs=1e-4)


def test_photometric_loss_averages_over_covered_pixels():
    render = torch.full((1, 3, 4, 4), 0.5)
    image = torch.full((1, 3, 4, 4), 0.25)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1.0
    image[..., 2:, :] = 1.0  # uncovered pixels do not count
    assert photometric_loss(render, image, mask).item() == pytest.approx(0.25)
    assert photometric_loss(render, image, torch.zeros_like(mask)).item() == 0.0


def test_expression_supervision_weights_ground_truth_over_pseudo_ground_truth():
    target = torch.zeros(3, 52)
    predicted = target + 0.1
    weight = torch.tensor([1.0, 1.0, 0.0])
    assert expression_supervision_loss(predicted, target, weight).item() == pytest.approx(0.01)
    predicted[1] = 0.3  # ground truth (1.0) off by 0.3, pseudo ground truth (0.5) off by 0.1
    mixed = expression_supervision_loss(predicted[:2], target[:2], torch.tensor([0.5, 1.0]))
    assert mixed.item() == pytest.approx((0.5 * 0.01 + 1.0 * 0.09) / 1.5)
    target[0] = float("nan")
    assert expression_supervision_loss(predicted, target, weight).item() == pytest.approx(0.09)


def test_parameter_supervision_is_in_units_of_each_parameters_scale():
    scale = torch.tensor([0.1, 2.0, 0.5])
    target = torch.tensor([[0.0, 1.0, float("nan")]])
    predicted = target.nan_to_num() + scale  # every known entry one scale off
    assert parameter_supervision_loss(predicted, target, scale, torch.ones(1)).item() == pytest.approx(1.0)
    assert parameter_supervision_loss(predicted, target, scale, torch.zeros(1)).item() == 0.0


def test_regularisers():
    assert identity_regulariser(torch.full((2, 5), 2.0)).item() == pytest.approx(4.0)
    one_actor = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [5.0, 5.0]])
    assert identity_consistency(one_actor, torch.tensor([0, 0, -1])).item() == pytest.approx(1.0)
    assert identity_consistency(one_actor, torch.tensor([0, 1, 2])).item() == 0.0
    assert expression_regulariser(torch.full((1, 4), 0.5), (0.0, 1.0)).item() == pytest.approx(0.5)
    assert expression_regulariser(torch.full((1, 4), 1.5), (0.0, 1.0)).item() == pytest.approx(1.5 + 10 * 0.25)
    assert expression_regulariser(torch.full((1, 4), 3.0), None).item() == pytest.approx(9.0)


def test_intensity_aware_loss_penalises_exaggeration_and_muting():
    target = mix(0.5)
    assert intensity_aware_emotion_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)
    assert emotion_intensity(target).item() == pytest.approx(0.5)
    exaggerated = intensity_aware_emotion_loss(mix(0.8), target, exaggeration=2.0, muting=1.0).item()
    muted = intensity_aware_emotion_loss(mix(0.2), target, exaggeration=2.0, muting=1.0).item()
    assert exaggerated == pytest.approx(2.0 * 0.09, abs=1e-5)
    assert muted == pytest.approx(1.0 * 0.09, abs=1e-5)
    # a given intensity label overrides the one implied by the probabilities
    assert intensity_aware_emotion_loss(mix(0.8), target, torch.tensor([0.8])).item() == pytest.approx(0.0, abs=1e-5)


def test_intensity_aware_loss_wants_the_right_emotion():
    # same intensity, half the predicted emotion is the wrong one: KL(happy || half happy) = ln 2,
    # weighted by the target intensity 0.6
    wrong_mix = intensity_aware_emotion_loss(mix(0.6, happy_share=0.5), mix(0.6)).item()
    assert wrong_mix == pytest.approx(0.6 * math.log(2), rel=1e-3)
    # for a neutral target the non-neutral mix does not matter, only the intensity
    assert intensity_aware_emotion_loss(mix(0.0, 0.5), mix(0.0, 1.0)).item() == pytest.approx(0.0, abs=1e-5)
    va = intensity_aware_emotion_loss(mix(0.6), mix(0.6), None, torch.tensor([[0.2, 0.1]]), torch.tensor([[0.5, float("nan")]]))
    assert va.item() == pytest.approx(0.09, abs=1e-5)  # valence off by 0.3, arousal unknown


def test_emotion_consistency_loss_is_the_js_divergence_in_bits():
    p = torch.softmax(torch.randn(4, 8), dim=1)
    assert emotion_consistency_loss(p, p).item() == pytest.approx(0.0, abs=1e-6)
    a, b = torch.zeros(1, 8), torch.zeros(1, 8)
    a[0, HAPPY], b[0, SAD] = 1.0, 1.0
    assert emotion_consistency_loss(a, b).item() == pytest.approx(1.0, abs=1e-5)
    half = torch.zeros(1, 8)
    half[0, HAPPY] = half[0, SAD] = 0.5
    # JS(one-hot, half-half) = 1 - 0.75 log2(3) + 0.5 ... computed directly
    m = 0.5 * (a + half)
    expected = 0.5 * (a[0, HAPPY] * math.log2(1 / m[0, HAPPY])) + 0.5 * sum(
        0.5 * math.log2(0.5 / float(m[0, k])) for k in (HAPPY, SAD))
    assert emotion_consistency_loss(a, half).item() == pytest.approx(float(expected), abs=1e-5)
