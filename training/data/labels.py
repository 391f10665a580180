"""Emotion labels of the labelled datasets as training targets."""

from __future__ import annotations

import numpy as np

from core.emotion.types import EMOTIONS

NEUTRAL = EMOTIONS.index("neutral")
# AffectNet's expression ids 0-7 are EMOTIONS' order (Neutral, Happy, Sad, Surprise, Fear, Disgust,
# Anger, Contempt); ids 8-10 (None, Uncertain, No-Face) are not emotions.
ALIASES = {"angry": "anger", "anger": "anger", "happiness": "happy", "sadness": "sad", "surprised": "surprise",
           "fearful": "fear", "disgusted": "disgust"}


def emotion_index(label: str) -> int | None:
    """A folder name or label -> index into EMOTIONS (names, common aliases, AffectNet ids 0-7),
    or None when it is not one of the 8 emotions."""
    name = label.strip().lower()
    if name.isdigit():
        return int(name) if int(name) < len(EMOTIONS) else None
    name = ALIASES.get(name, name)
    return EMOTIONS.index(name) if name in EMOTIONS else None


def label_target(index: int, intensity: float | None) -> tuple[np.ndarray, float]:
    """The probability target and intensity of a labelled face: a neutral face is all neutral
    (intensity 0); an emotion of known intensity i puts i on its class and 1 - i on neutral (so
    a faint smile is not taught as a full one); unknown intensity: the class alone (intensity 1)."""
    p = np.zeros(len(EMOTIONS), np.float32)
    if index == NEUTRAL:
        p[NEUTRAL] = 1.0
        return p, 0.0
    i = 1.0 if intensity is None or not np.isfinite(intensity) else float(np.clip(intensity, 0.0, 1.0))
    p[index] = i
    p[NEUTRAL] = 1.0 - i
    return p, i
