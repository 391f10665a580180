"""Priors on the open model's curves (core/fit/evidence.py) and their use by the fitter: learned
scores as evidence, antagonist pairs, the bound."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.facemodel import FaceModel
from core.facemodel.open_model import ARKIT_NAMES, load_open_model
from core.fit.camera import project
from core.fit.evidence import BOUND_START, UNSCORED_SPREAD, CurvePriors, antagonist_pairs
from core.fit.fitter import FitConfig, Fitter
from core.observe.headpose import estimate_head_pose
from core.observe.view_bias import view_azimuth_deg
from core.take.observations import ObservationArrays
from tests.synthetic_observations import observations_from


@pytest.fixture(scope="module")
def model():
    return FaceModel(load_open_model())


def index(name: str) -> int:
    return ARKIT_NAMES.index(name)


def test_antagonist_pairs_are_same_side_opposites():
    pairs = {(ARKIT_NAMES[a], ARKIT_NAMES[b]) for a, b in antagonist_pairs(ARKIT_NAMES)}
    assert ("mouthSmileLeft", "mouthFrownLeft") in pairs and ("mouthSmileRight", "mouthFrownRight") in pairs
    assert ("mouthSmileLeft", "mouthFrownRight") not in pairs  # a lopsided face may do both
    assert ("mouthPucker", "mouthStretchLeft") in pairs and ("mouthLeft", "mouthRight") in pairs
    assert ("browInnerUp", "browDownLeft") not in pairs  # sadness and fear raise and knit the brows together
    assert len(antagonist_pairs(tuple(f"exp{i:03d}" for i in range(50)))) == 0  # FLAME: none


def test_the_open_model_carries_the_networks_neutral_statistics(model):
    priors = CurvePriors.for_model(model.expression_names, model.info, 1.0, 1.0, 1.0)
    assert priors is not None
    assert priors.neutral_mean[index("eyeSquintLeft")] > 0.1  # the network sees squints on neutral faces
    assert (priors.neutral_spread > 0).all()
    assert priors.up_only[index("noseSneerLeft")] and not priors.up_only[index("mouthSmileLeft")]
    flame_names = tuple(f"exp{i:03d}" for i in range(50))
    assert CurvePriors.for_model(flame_names, {}, 1.0, 1.0, 1.0) is None


def test_gradient_is_half_the_energy_gradient(model):
    priors = dataclasses.replace(CurvePriors.for_model(model.expression_names, model.info, 1.0, 0.3, 2.0),
                                 evidence=1.0)
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.0, 1.0, size=(3, 52))
    weights[0, :5] = [0.95, 0.85, 0.99, 0.05, 0.5]  # some over the bound's start
    scores = rng.uniform(0.0, 1.0, size=(3, 52))
    scores[:, index("tongueOut")] = np.nan
    scores[2] = np.nan  # a frame the network did not score
    target, precision = priors.targets(scores)
    # a curve the network has no output for is drawn to rest where it scored the frame, and a frame
    # it did not score has no evidence at all
    assert (target[:2, index("tongueOut")] == 0).all()
    assert (precision[:2, index("tongueOut")] == pytest.approx(priors.evidence / UNSCORED_SPREAD**2))
    assert (precision[2] == 0).all()
    gradient, curvature = priors.gradient(weights, target, precision)
    step = 1e-6
    for row, col in [(0, 0), (0, 1), (0, 2), (1, index("mouthSmileLeft")), (2, index("noseSneerLeft")),
                     (1, index("mouthPucker"))]:
        plus, minus = weights.copy(), weights.copy()
        plus[row, col] += step
        minus[row, col] -= step
        numeric = (priors.energy(plus, target, precision)[row] - priors.energy(minus, target, precision)[row]) / (2 * step)
        assert gradient[row, col] == pytest.approx(0.5 * numeric, rel=1e-4, abs=1e-6)
    assert (curvature >= 0).all()
    assert curvature[0, 0] >= priors.bound  # over BOUND_START the bound's curvature adds
    assert weights[0, 0] > BOUND_START


def test_scores_below_a_neutral_face_are_no_evidence_and_up_only_curves_only_push_up(model):
    priors = CurvePriors.for_model(model.expression_names, model.info, 1.0, 0.0, 0.0)
    scores = np.array(priors.neutral_mean)[None].copy()
    target, _ = priors.targets(scores)
    assert np.allclose(target, 0.0)  # the network's neutral face means all curves at rest
    own = np.full(52, 0.2)
    assert np.allclose(priors.targets(own[None] + 0.3, neutral_scores=own)[0][0, :51], 0.3)
    sneer = index("noseSneerLeft")
    weights = np.zeros((1, 52))
    weights[0, sneer] = 0.6  # geometry says sneer, the network (which under-reports it) says nothing
    target = np.zeros((1, 52))
    precision = np.ones((1, 52))
    assert priors.gradient(weights, target, precision)[0][0, sneer] == 0.0
    weights[0, sneer] = 0.0
    target[0, sneer] = 0.5
    assert priors.gradient(weights, target, precision)[0][0, sneer] < 0.0  # pulled up to the score


def test_a_single_image_weighs_the_scores_more_and_an_under_reported_curves_low_score_a_little(model):
    """One image with no neutral (FitConfig.evidence_single_image): the scores weigh more, and a
    low score of a curve the network under-reports pulls it down, weakly."""
    priors = CurvePriors.for_model(model.expression_names, model.info, 1e-6, 0.0, 0.0)
    single = priors.for_single_image(1e-5, 0.01)
    wide, smile = index("eyeWideLeft"), index("mouthSmileLeft")
    scores = np.array(priors.neutral_mean)[None].copy()
    _, clip_precision = priors.targets(scores)
    target, precision = single.targets(scores)
    assert precision[0, smile] == pytest.approx(10 * clip_precision[0, smile])
    assert precision[0, wide] == pytest.approx(0.1 * clip_precision[0, wide])
    weights = np.zeros((1, 52))
    weights[0, wide] = 0.4  # geometry says eyes wide, the network says nothing
    assert priors.gradient(weights, target, clip_precision)[0][0, wide] == 0.0
    assert single.gradient(weights, target, precision)[0][0, wide] > 0.0  # pulled down
    assert priors.up_only[wide]  # the model's own priors are left as they were


def test_a_single_images_fit_leaves_a_wide_eyed_face_less_eye_wide_than_a_clips(model):
    """The same frame fitted as one image and as a frame of a clip: where the network reads no
    eyeWide, the single image's fit shows less of it (the landmarks still have their say)."""
    expression = np.zeros(52)
    expression[index("eyeWideLeft")] = expression[index("eyeWideRight")] = 0.4
    observations = synthetic_frame(model, expression)
    observations.blendshapes[:] = np.array(model.info["mediapipe_neutral"]["mean"], np.float32)[None]
    clip = Fitter(model).fit_window(observations, np.zeros(model.num_shape, np.float32)).expression[0]
    fitter = Fitter(model)
    fitter.use_single_image()
    single = fitter.fit_window(observations, np.zeros(model.num_shape, np.float32)).expression[0]
    wide = [index("eyeWideLeft"), index("eyeWideRight")]
    assert clip[wide].mean() > 0.3  # measured 0.36 (the L1 prior takes the rest), single image 0.28
    assert 0.1 < single[wide].mean() < clip[wide].mean() - 0.05


def synthetic_frame(model: FaceModel, expression: np.ndarray) -> ObservationArrays:
    params = model.zero_params(1)
    params.expression[:] = torch.as_tensor(expression, dtype=torch.float32)[None]
    observations = observations_from(model, params, torch.tensor([[np.log(3000.0), 320.0, 240.0, 0.0]]))
    observations.blendshapes[:] = np.nan
    return observations


def fit_one(model: FaceModel, observations: ObservationArrays, config: FitConfig) -> np.ndarray:
    fitter = Fitter(model, config)
    return fitter.fit_window(observations, np.zeros(model.num_shape, np.float32)).expression[0]


def test_the_fitter_follows_the_scores_where_the_landmarks_leave_room(model):
    expression = np.zeros(52)
    expression[index("mouthSmileLeft")] = expression[index("mouthSmileRight")] = 0.5
    observations = synthetic_frame(model, expression)
    without = fit_one(model, observations, FitConfig(evidence=0.0))
    assert without[index("mouthSmileLeft")] == pytest.approx(0.5, abs=0.08)
    # the network says the brows are raised although the landmarks do not move them: the weight
    # of the evidence decides how far the fit follows it
    scores = np.array(load_open_model().info["mediapipe_neutral"]["mean"], np.float32)[None].copy()
    scores[0, index("browInnerUp")] += 0.8
    for side in ("Left", "Right"):  # and agrees with the smile
        scores[0, index("mouthSmile" + side)] += 0.5
    observations.blendshapes[:] = scores
    weak = fit_one(model, observations, FitConfig(evidence=1e-7))
    strong = fit_one(model, observations, FitConfig(evidence=1e-3))
    assert weak[index("browInnerUp")] < 0.1
    assert strong[index("browInnerUp")] > weak[index("browInnerUp")] + 0.2
    assert strong[index("mouthSmileLeft")] == pytest.approx(0.5, abs=0.1)  # the smile stays


def test_antagonists_and_the_bound_keep_curves_off_their_extremes(model):
    expression = np.zeros(52)
    expression[index("mouthSmileLeft")] = 1.0
    observations = synthetic_frame(model, expression)
    free = fit_one(model, observations, FitConfig(evidence=0.0, antagonist=0.0, bound=0.0))
    held = fit_one(model, observations, FitConfig(evidence=0.0, antagonist=0.0, bound=1.0))
    assert free[index("mouthSmileLeft")] > 0.95
    assert held[index("mouthSmileLeft")] < free[index("mouthSmileLeft")] - 0.02
    expression[index("mouthSmileLeft")] = 0.6
    expression[index("mouthFrownLeft")] = 0.6
    observations = synthetic_frame(model, expression)
    both = fit_one(model, observations, FitConfig(evidence=0.0, antagonist=0.0, bound=0.0))
    apart = fit_one(model, observations, FitConfig(evidence=0.0, antagonist=1e-2, bound=0.0))
    product = lambda w: w[index("mouthSmileLeft")] * w[index("mouthFrownLeft")]  # noqa: E731
    assert product(apart) < product(both) - 0.05


def test_curves_the_network_never_reports_are_not_held_at_rest_by_its_silence(model):
    """MediaPipe's network scores cheekSquint and noseSneer 0 on every face (at most 3e-5 on the
    development set's 48 expression photos, broad smiles among them), so its 0 there says nothing:
    a cheek raise is fitted as far as the landmarks show it, with or without the scores."""
    expression = np.zeros(52)
    for side in ("Left", "Right"):
        expression[index("cheekSquint" + side)] = 0.6
    observations = synthetic_frame(model, expression)
    landmarks_alone = fit_one(model, observations, FitConfig())
    scores = np.array(load_open_model().info["mediapipe_neutral"]["mean"], np.float32)[None].copy()
    assert scores[0, index("cheekSquintLeft")] < 1e-3 and scores[0, index("noseSneerLeft")] < 1e-3
    observations.blendshapes[:] = scores
    with_scores = fit_one(model, observations, FitConfig())
    for side in ("Left", "Right"):
        k = index("cheekSquint" + side)
        # mostly a forward bulge, which MediaPipe's depth barely sees: the landmarks give part of it
        assert landmarks_alone[k] > 0.08
        assert with_scores[k] == pytest.approx(landmarks_alone[k], abs=0.01)


def test_a_small_eyelid_raise_is_fitted_rather_than_left_to_the_priors(model):
    """Surprise's raised upper lid moves the lid points 1-3 % of the eye distance. Weighted like
    every other landmark, the L1 prior won over such a motion (a known eyeWide of 0.25 came out
    0.06); the lids' extra weight lets the landmarks decide it."""
    expression = np.zeros(52)
    for side in ("Left", "Right"):
        expression[index("eyeWide" + side)] = 0.25
    observations = synthetic_frame(model, expression)
    observations.blendshapes[:] = np.array(load_open_model().info["mediapipe_neutral"]["mean"], np.float32)[None]
    fitted = fit_one(model, observations, FitConfig())
    unweighted = fit_one(model, observations, FitConfig(eyelid_weight=0.0))
    for side in ("Left", "Right"):
        assert fitted[index("eyeWide" + side)] == pytest.approx(0.25, abs=0.06)
        assert unweighted[index("eyeWide" + side)] < 0.12


def test_the_far_eye_of_a_turned_head_weighs_less(model):
    """A half profile's far eye is foreshortened and its lids are guessed: its extra weight
    shrinks with its apparent width."""
    fitter = Fitter(model, FitConfig())
    params = model.zero_params(2)
    params.rotation[1, 1] = np.radians(45.0)  # the second frame turned about the vertical axis
    camera = torch.tensor([[np.log(3000.0), 320.0, 240.0, 0.0]] * 2)
    with torch.no_grad():
        landmarks = np.zeros((2, 478, 3), np.float32)
        landmarks[:, model.landmark_ids.numpy()] = project(model(params).landmarks, camera).numpy()
    weights = fitter.eyelid_weights(landmarks).numpy() ** 2  # 2 x K
    right, left = fitter.eyelid_side == 0, fitter.eyelid_side == 1
    assert right.sum() == left.sum() == 16
    assert weights[0] == pytest.approx(np.full(32, FitConfig().eyelid_weight), rel=0.05)  # frontal: both eyes in full
    far, near = sorted((weights[1, right].mean(), weights[1, left].mean()))
    assert near == pytest.approx(FitConfig().eyelid_weight)
    assert far < 0.6 * near
    assert Fitter(model, FitConfig(eyelid_weight=0.0)).eyelid_weights(landmarks) is None


def test_a_named_neutral_is_the_score_baseline_except_for_a_blink_or_glance_beyond_neutral_faces(model):
    """The performer's own neutral scores are the baseline of the evidence, curve by curve; on the
    blink and gaze curves only up to what neutral faces score (mean + 2 spreads), since beyond
    that the named face shows a blink or a glance, not a trait."""
    fitter = Fitter(model)
    names = list(ARKIT_NAMES)
    blink, squint, look = names.index("eyeBlinkLeft"), names.index("eyeSquintLeft"), names.index("eyeLookOutRight")
    priors = fitter.priors
    ceiling = priors.neutral_mean + 2.0 * priors.neutral_spread
    scores = np.nan_to_num(priors.neutral_mean.copy())
    scores[[blink, squint, look]] = 0.9
    scores[names.index("eyeBlinkRight")] = ceiling[names.index("eyeBlinkRight")] - 0.05  # narrow eyes: their own
    fitter.use_neutral_scores(scores)
    baseline = fitter.neutral_scores
    assert baseline[squint] == pytest.approx(0.9)  # a trait (narrow eyes, full cheeks) is the performer's own
    assert baseline[blink] == pytest.approx(ceiling[blink]) and baseline[look] == pytest.approx(ceiling[look])
    assert baseline[names.index("eyeBlinkRight")] == pytest.approx(scores[names.index("eyeBlinkRight")])
    target, _ = priors.targets(np.full((1, len(names)), 0.9), baseline)
    assert target[0, blink] == pytest.approx(0.9 - ceiling[blink]) and target[0, squint] == pytest.approx(0.0)
    fitter.use_neutral_scores(None)
    assert fitter.neutral_scores is None


def test_a_single_images_scores_weigh_what_they_are_worth_at_its_head_pose(model):
    """One image with no neutral (FitConfig.single_image_view_trust): each score's weight shrinks by
    its variance between views at the image's yaw (core/observe/view_bias.py), so a half profile's
    outer-brow score, which the network reads anyhow on the side turned away, decides less; a clip's
    frames keep the weights they had."""
    priors = CurvePriors.for_model(model.expression_names, model.info, 1e-6, 0.0, 0.0)
    brow = index("browOuterUpRight")
    scores = np.array(priors.neutral_mean)[None].repeat(2, axis=0)
    variance = np.zeros((2, 52))
    variance[1, brow] = 0.09
    _, plain = priors.targets(scores)
    _, weighed = priors.targets(scores, view_variance=variance)
    np.testing.assert_allclose(weighed[0], plain[0])
    spread2 = priors.neutral_spread[brow] ** 2
    assert weighed[1, brow] == pytest.approx(plain[1, brow] * spread2 / (spread2 + 0.09))

    # a face turned 35 degrees, no expression, whose outer brows the network reads raised
    params = model.zero_params(1)
    params.rotation[0, 1] = np.radians(35.0)
    observations = observations_from(model, params, torch.tensor([[np.log(3000.0), 320.0, 240.0, 0.0]]))
    pose = estimate_head_pose(observations.landmarks[0])
    observations.head_rotation[0], observations.head_scale[0] = pose.rotation, pose.scale
    observations.blendshapes[:] = np.array(model.info["mediapipe_neutral"]["mean"], np.float32)[None]
    observations.blendshapes[0, [brow, index("browOuterUpLeft")]] = 0.8
    fits = {}
    for trust in (True, False):
        fitter = Fitter(model, FitConfig(single_image_view_trust=trust))
        fitter.use_single_image()
        fits[trust] = fitter.fit_window(observations, np.zeros(model.num_shape, np.float32)).expression[0]
    yaw = view_azimuth_deg(pose.rotation[None])[0]
    far = brow if yaw > 0 else index("browOuterUpLeft")  # the side the shipped variance calls uncertain
    assert abs(yaw) > 25.0
    assert fits[True][far] < fits[False][far] - 0.01  # measured 0.37 against 0.39 (the score is 0.64 once its drift is out)
    clip = Fitter(model, FitConfig(single_image_view_trust=True))
    assert clip.curve_mirror is None  # only use_single_image weighs the scores by the view
