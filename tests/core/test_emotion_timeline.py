"""Emotion timelines, consistency and emotion-from-parameters on cases with known answers."""

import numpy as np

from core.emotion.consistency import consistency, jensen_shannon
from core.emotion.from_params import predict_from_params, train_param_emotion
from core.emotion.timeline import choose_frames, dominant_segments, intensity, interpolate, smooth
from core.emotion.types import EMOTIONS, EmotionScores


def test_choose_frames_samples_each_run_and_follows_changes():
    has_face = np.array([True] * 10 + [False] * 3 + [True] * 5)
    rows = choose_frames(has_face, step=4)
    assert rows.tolist() == [0, 4, 8, 9, 13, 17]
    signal = np.zeros((18, 2))
    signal[6:] = [1.0, 0.0]  # a change at frame 6
    assert 6 in choose_frames(has_face, step=4, signal=signal, change=0.5).tolist()


def test_interpolate_is_linear_in_time_and_never_crosses_a_gap():
    has_face = np.array([True] * 5 + [False] * 2 + [True] * 3)
    times = np.arange(10) / 10.0
    measured = np.array([0, 4, 7, 9])
    values = np.array([[0.0], [1.0], [5.0], [5.0]])
    out = interpolate(values, measured, has_face, times)
    assert np.allclose(out[:5, 0], [0, 0.25, 0.5, 0.75, 1.0])
    assert np.isnan(out[5:7]).all()
    assert np.allclose(out[7:, 0], 5.0)


def test_smoothing_has_no_lag_and_does_not_bleed_across_a_cut():
    n = 60
    has_face = np.ones(n, bool)
    step = np.zeros((n, 1))
    step[30:] = 1.0
    out = smooth(step, has_face, sigma_frames=3.0, cuts=np.array([30]))
    assert np.allclose(out[:30], 0.0) and np.allclose(out[30:], 1.0)  # the cut keeps the step sharp
    ramp = np.linspace(0, 1, n)[:, None]
    assert np.allclose(smooth(ramp, has_face, 3.0), ramp, atol=1e-9)  # zero phase: a line is unchanged
    assert not np.allclose(smooth(step, has_face, 3.0)[28:32], step[28:32])  # without the cut it blends


def test_intensity_dominant_and_segments():
    p = np.zeros((4, 8))
    p[:2, EMOTIONS.index("neutral")] = 0.9
    p[:2, EMOTIONS.index("happy")] = 0.1
    p[2:, EMOTIONS.index("happy")] = 0.8
    p[2:, EMOTIONS.index("neutral")] = 0.2
    assert np.allclose(intensity(p), [0.1, 0.1, 0.8, 0.8])
    assert dominant_segments(p, np.ones(4, bool)) == [
        {"start": 0, "stop": 2, "emotion": "neutral"}, {"start": 2, "stop": 4, "emotion": "happy"}]


def test_consistency_is_one_for_equal_and_zero_for_disjoint_distributions():
    p = np.eye(8)[[0, 1]]
    assert np.allclose(consistency(p, p), 1.0)
    assert np.allclose(consistency(p, p[::-1]), 0.0, atol=1e-6)
    q = np.full((1, 8), 1 / 8)
    assert 0 < jensen_shannon(p[:1], q)[0] < 1


def test_emotion_from_parameters_learns_a_known_mapping():
    rng = np.random.default_rng(0)
    expression = rng.uniform(0, 1, size=(400, 52)).astype(np.float32)
    smile = expression[:, 23]  # a made-up rule: happiness follows one curve
    probs = np.zeros((400, 8), np.float32)
    probs[:, EMOTIONS.index("happy")] = smile
    probs[:, EMOTIONS.index("neutral")] = 1 - smile
    valence = (2 * smile - 1).astype(np.float32)
    net, report = train_param_emotion(expression, EmotionScores(probs, valence, np.zeros(400, np.float32)))
    assert report.held_out_kl < 0.05 and report.top_class_agreement > 0.9
    pred = predict_from_params(net, np.array([[0.0] * 23 + [1.0] + [0.5] * 28], np.float32))
    assert pred.probabilities[0].argmax() == EMOTIONS.index("happy")
    assert pred.valence[0] > 0.5


def test_cuts_are_found_where_the_face_box_jumps():
    boxes = np.tile([100.0, 100.0, 200.0, 200.0], (10, 1))
    boxes[:, [0, 2]] += np.arange(10)[:, None] * 2.0  # slow head motion: no cut
    boxes[6:] += [300.0, 0.0, 300.0, 0.0]  # a new shot
    has_face = np.ones(10, bool)
    from core.emotion.timeline import cuts_from_boxes

    assert cuts_from_boxes(boxes, has_face).tolist() == [6]
    has_face[5] = False  # a gap is not a cut (it already splits runs)
    assert cuts_from_boxes(boxes, has_face).tolist() == []
