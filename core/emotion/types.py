"""Typed emotion values shared by recognisers, timelines and the app."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The fast recogniser (every frame) and the slow one (sampled frames): core/emotion/stage.py.
FAST, SLOW = "fer", "emonet"

# EmoCap's emotion classes, in EmoNet's (AffectNet's) order. Recognisers with fewer classes
# (FER2013 has no contempt) report 0 for the ones they lack.
EMOTIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")

# Numerical precision a recogniser may use: AUTO lets it compute in a reduced precision where the
# CPU does so natively and that was measured to keep its scores; FLOAT32 never.
AUTO = "auto"
FLOAT32 = "float32"
PRECISIONS = (AUTO, FLOAT32)


@dataclass(frozen=True)
class EmotionScores:
    """Emotion of N faces. probabilities: N x 8 float32 over EMOTIONS (rows sum to 1).
    valence, arousal: N float32 in [-1, 1], or None when the recogniser does not estimate them."""

    probabilities: np.ndarray
    valence: np.ndarray | None = None
    arousal: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.probabilities)

    def subset(self, rows: np.ndarray) -> EmotionScores:
        """The scores of ``rows`` (indices or a mask)."""
        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[rows]

        return EmotionScores(self.probabilities[rows], pick(self.valence), pick(self.arousal))
