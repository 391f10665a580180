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


def test_a_long_clip_trains_on_evenly_spaced_frames(monkeypatch):
    """Past MAX_TRAINING_FRAMES pairs, the network trains on that many evenly spaced ones (memory
    and time flat in the clip's length), exactly as if given those alone."""
    import torch

    from core.emotion import from_params

    rng = np.random.default_rng(1)
    expression = rng.uniform(0, 1, (400, 6)).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(len(EMOTIONS)), 400).astype(np.float32)
    valence, arousal = rng.uniform(-1, 1, (2, 400)).astype(np.float32)
    monkeypatch.setattr(from_params, "MAX_TRAINING_FRAMES", 100)
    net, report = train_param_emotion(expression, EmotionScores(probabilities, valence, arousal), epochs=5)
    assert report.frames == 100
    spaced = np.linspace(0, 399, 100).round().astype(np.int64)
    assert spaced[0] == 0 and spaced[-1] == 399 and len(np.unique(spaced)) == 100
    alone, same = train_param_emotion(expression[spaced], EmotionScores(probabilities[spaced], valence[spaced],
                                                                       arousal[spaced]), epochs=5)
    assert same == report
    for a, b in zip(net.parameters(), alone.parameters()):
        assert torch.equal(a, b)


def test_it_trains_and_predicts_on_one_torch_thread_and_gives_the_threads_back(monkeypatch):
    """Tiny tensors: a second torch thread only waits (with one core busy elsewhere, 9x slower)."""
    import torch

    from core.emotion import from_params
    from core.fit.fitter import torch_threads

    seen = []
    forward = from_params.ParamEmotionNet.forward

    def recorded(self, x):
        seen.append(torch.get_num_threads())
        return forward(self, x)

    monkeypatch.setattr(from_params.ParamEmotionNet, "forward", recorded)
    with torch_threads(2):
        rng = np.random.default_rng(2)
        expression = rng.uniform(0, 1, (40, 6)).astype(np.float32)
        probabilities = rng.dirichlet(np.ones(len(EMOTIONS)), 40).astype(np.float32)
        net, _ = train_param_emotion(expression, EmotionScores(probabilities), epochs=3)
        from_params.predict_from_params(net, expression)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
