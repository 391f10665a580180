"""Emotion predicted from fitted expression parameters alone.

A small network maps a frame's expression parameters (the 52 ARKit weights of the open model, or
FLAME's coefficients) to the emotion a recogniser saw in the image (8 probabilities, and valence and
arousal when the recogniser gives them). Trained per take on its own frames (a few hundred pairs,
about a second on a CPU), it lets the app show how an edit of the curves changes the emotion
without rendering anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.emotion.types import EMOTIONS, EmotionScores
from core.fit.fitter import single_threaded_torch
from core.optim import Adam

# Pairs trained on at most: a longer clip gives evenly spaced frames, so that the full-batch
# training's memory and time stop growing with its length (20 000 frames took 10 s and 60 MB of
# activations). Neighbouring frames say nearly the same: on the Wolfgang fixture (24 fps) every
# second frame raises the held-out KL by 0.0013 nats (0.0176 -> 0.0189).
MAX_TRAINING_FRAMES = 8192


class ParamEmotionNet(nn.Module):
    """expression B x E -> (log-probabilities B x 8, valence-arousal B x 2 in [-1, 1])."""

    def __init__(self, num_expression: int, hidden: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(num_expression, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.classes = nn.Linear(hidden, len(EMOTIONS))
        self.affect = nn.Linear(hidden, 2)

    def forward(self, expression: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(expression)
        return torch.log_softmax(self.classes(h), dim=1), torch.tanh(self.affect(h))


@dataclass(frozen=True)
class TrainingReport:
    """held_out_kl: mean KL(image || predicted) on the held-out frames (nats); top_class_agreement:
    share of held-out frames whose most probable class matches the image's."""

    frames: int
    held_out_kl: float
    top_class_agreement: float


def train_param_emotion(
    expression: np.ndarray, target: EmotionScores, *, epochs: int = 300, seed: int = 0, held_out: float = 0.2
) -> tuple[ParamEmotionNet, TrainingReport]:
    """Fit the network to N pairs (expression N x E, target scores of N frames; at most
    MAX_TRAINING_FRAMES of them, evenly spaced). Every 1/held_out-th of those is kept out of
    training to report generalisation; ``frames`` in the report counts the pairs used.

    On one torch thread: the tensors are tiny, and a second thread only waits on the first. On
    the Wolfgang clip's 472 frames, 2 cores: 0.33 s on one thread, 0.41 s on two; with one core
    kept busy by another process, 0.30 s on one and 2.7 s on two; the same network either way."""
    with single_threaded_torch():
        return _train(expression, target, epochs, seed, held_out)


def _train(expression: np.ndarray, target: EmotionScores, epochs: int, seed: int,
           held_out: float) -> tuple[ParamEmotionNet, TrainingReport]:
    if len(expression) > MAX_TRAINING_FRAMES:
        rows = np.linspace(0, len(expression) - 1, MAX_TRAINING_FRAMES).round().astype(np.int64)
        expression, target = expression[rows], target.subset(rows)
    torch.manual_seed(seed)
    x = torch.as_tensor(expression, dtype=torch.float32)
    p = torch.as_tensor(target.probabilities, dtype=torch.float32)
    has_affect = target.valence is not None
    va = torch.as_tensor(np.stack([target.valence, target.arousal], 1), dtype=torch.float32) if has_affect else None
    stride = max(int(round(1 / held_out)), 2)
    test = torch.zeros(len(x), dtype=torch.bool)
    test[::stride] = True
    train = ~test if len(x) > stride else torch.ones(len(x), dtype=torch.bool)
    net = ParamEmotionNet(x.shape[1])
    optimizer = Adam(list(net.parameters()), lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        net.zero_grad()
        log_q, affect = net(x[train])
        loss = nn.functional.kl_div(log_q, p[train], reduction="batchmean")
        if has_affect:
            loss = loss + nn.functional.mse_loss(affect, va[train])
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        log_q, _ = net(x[test])
        kl = float(nn.functional.kl_div(log_q, p[test], reduction="batchmean")) if test.any() else float("nan")
        agree = float((log_q.argmax(1) == p[test].argmax(1)).float().mean()) if test.any() else float("nan")
    return net, TrainingReport(len(x), kl, agree)


def predict_from_params(net: ParamEmotionNet, expression: np.ndarray) -> EmotionScores:
    """EmotionScores of N frames from their expression parameters (N x E)."""
    with torch.no_grad(), single_threaded_torch():
        log_q, affect = net(torch.as_tensor(expression, dtype=torch.float32))
    affect = affect.numpy()
    return EmotionScores(np.exp(log_q.numpy()).astype(np.float32), affect[:, 0], affect[:, 1])
