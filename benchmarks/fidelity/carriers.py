"""Retargeting onto carriers: one image's curves on other people's neutral faces, judged by recognisers.

A carrier is a neutral photo of a person, analysed into a take: its own fitted identity, head pose,
camera and texture. A set of 52 curves drives the carrier's open-model mesh
(:meth:`core.render.reconstruction.ReconstructionRenderer.render_expressions`, as the emotion
stage's carrier face does, core/emotion/carrier.py) into the carrier's aligned crop, and the
emotion recognisers judge the render.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.fidelity.devset import Analysed
from core.emotion.types import EMOTIONS
from core.facemodel.model import FaceModel
from core.render.reconstruction import ReconstructionRenderer

# Frontal, unoccluded neutral stills of four different people; each image uses the first three
# that show someone else.
CARRIER_FILES = ("neutral__kdef__1", "neutral__kdef__2", "neutral__ckplus__1", "neutral__pam29__1")
PER_IMAGE = 3


@dataclass
class Carrier:
    """A carrier face ready to render any curves."""

    analysed: Analysed
    renderer: ReconstructionRenderer

    @classmethod
    def build(cls, analysed: Analysed, model: FaceModel) -> Carrier:
        renderer = ReconstructionRenderer(model, analysed.fit, analysed.observations, reference_frame=0)
        renderer.set_reference(0, analysed.image)
        return cls(analysed, renderer)

    @property
    def person(self) -> str:
        return self.analysed.still.identity

    def render(self, curves: np.ndarray) -> np.ndarray:
        """256 x 256 x 3 uint8: the carrier with ``curves`` (52 weights) as its expression."""
        return self.renderer.render_expressions(0, np.nan_to_num(np.asarray(curves, np.float32))[None])[0][0]


def carriers_for(carriers: list[Carrier], person: str) -> list[Carrier]:
    """The first PER_IMAGE carriers that show someone other than ``person``."""
    return [c for c in carriers if c.person != person][:PER_IMAGE]


def judged_labels(recogniser, crops: list[np.ndarray]) -> np.ndarray:
    """N emotion names (argmax over EMOTIONS) the recogniser reads in the crops."""
    if not crops:
        return np.array([], dtype=object)
    probabilities = recogniser.predict(np.stack(crops)).probabilities
    return np.array([EMOTIONS[i] for i in probabilities.argmax(axis=1)], dtype=object)
