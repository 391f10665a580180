"""The emotion-from-parameters network's training (core/emotion/from_params.py)."""

import numpy as np

from core.emotion.from_params import train_param_emotion
from core.emotion.types import EMOTIONS, EmotionScores


def test_it_learns_which_curve_means_which_emotion():
    rng = np.random.default_rng(0)
    expression = rng.uniform(0, 1, (300, 6)).astype(np.float32)
    happy, sad = EMOTIONS.index("happy"), EMOTIONS.index("sad")
    probabilities = np.full((300, len(EMOTIONS)), 0.01, np.float32)
    probabilities[:, happy] += expression[:, 0]
    probabilities[:, sad] += expression[:, 1]
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    _, report = train_param_emotion(expression, EmotionScores(probabilities))
    assert report.top_class_agreement > 0.9 and report.held_out_kl < 0.1
