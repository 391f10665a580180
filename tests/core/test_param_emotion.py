"""The emotion-from-parameters network's training (core/emotion/from_params.py)."""

import numpy as np
import torch

from core.emotion.from_params import ParamEmotionNet, _Adam, train_param_emotion
from core.emotion.types import EMOTIONS, EmotionScores


def test_its_adam_steps_as_torch_s_adam_does():
    torch.manual_seed(0)
    ours, reference = ParamEmotionNet(52), ParamEmotionNet(52)
    reference.load_state_dict(ours.state_dict())
    x = torch.rand(100, 52)
    steps = [(ours, _Adam(list(ours.parameters()), lr=3e-3, weight_decay=1e-4)),
             (reference, torch.optim.Adam(reference.parameters(), lr=3e-3, weight_decay=1e-4))]
    for _ in range(50):
        for net, optimiser in steps:
            net.zero_grad()
            log_q, _ = net(x)  # the affect head gets no gradient: its weights stay
            (log_q[:, 1].mean() ** 2).backward()
            optimiser.step()
    for a, b in zip(ours.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert not torch.equal(ours.classes.weight, ParamEmotionNet(52).classes.weight)


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
