"""Emotion: recognisers from shipped weights, timelines, the reconstruction's emotion, consistency."""

from core.emotion.types import EMOTIONS, EmotionScores

__all__ = ["EMOTIONS", "EmotionScores"]
