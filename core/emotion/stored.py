"""The emotion stage's result as a take stores it (TAKE/emotion/timelines.npz, written and read
through core.take.Take): every recogniser's timeline and the emotion-from-parameters model.

In the file, a recogniser's arrays are named ``<recogniser>.<field>`` (``fer.probabilities``,
``emonet.valence`` ...) and the model's weights ``param_net.<parameter>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch

from core.emotion.from_params import ParamEmotionNet

PARAM_NET = "param_net."
OPTIONAL = ("valence", "arousal", "carrier_raw", "carrier_probabilities", "carried")


@dataclass
class RecogniserTimeline:
    """One recogniser's view of a clip (N frames; NaN rows without a face or not measured).

    measured: N bool, frames the recogniser actually saw. raw: N x 8 probabilities as measured.
    probabilities: N x 8 interpolated and smoothed. valence, arousal: N or None. intensity: N.
    render_probabilities: N x 8 on the reconstruction (measured frames only). consistency: N.
    carrier_raw: N x 8 on the curves worn by the carrier face (core/emotion/carrier.py; its sampled
    frames only), carrier_probabilities: N x 8 interpolated and smoothed, carried: N, the
    consistency of the performer's emotion with the carrier's (None: the take has no carrier)."""

    name: str
    measured: np.ndarray
    raw: np.ndarray
    probabilities: np.ndarray
    valence: np.ndarray | None
    arousal: np.ndarray | None
    intensity: np.ndarray
    render_probabilities: np.ndarray
    consistency: np.ndarray
    carrier_raw: np.ndarray | None = None
    carrier_probabilities: np.ndarray | None = None
    carried: np.ndarray | None = None

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        return {f"{self.name}.{f.name}": np.asarray(getattr(self, f.name)) for f in fields(self)
                if f.name != "name" and getattr(self, f.name) is not None}

    @classmethod
    def from_npz_dict(cls, name: str, arrays: dict[str, np.ndarray]) -> RecogniserTimeline:
        """The timeline of recogniser ``name`` in a stored file (KeyError when it lacks one)."""
        values = {f.name: arrays.get(f"{name}.{f.name}") if f.name in OPTIONAL else arrays[f"{name}.{f.name}"]
                  for f in fields(cls) if f.name != "name"}
        return cls(name, **values)


@dataclass
class EmotionTimelines:
    """The timelines of every recogniser that ran, the primary one's name, and the weights of the
    emotion-from-parameters model (empty when the clip had too few face frames to train it)."""

    timelines: dict[str, RecogniserTimeline]
    primary: str
    param_state: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def main(self) -> RecogniserTimeline:
        """The primary recogniser's timeline."""
        return self.timelines[self.primary]

    def param_model(self, num_expression: int) -> ParamEmotionNet | None:
        """The emotion-from-parameters model, or None when the take holds none."""
        if not self.param_state:
            return None
        net = ParamEmotionNet(num_expression)
        net.load_state_dict({k: torch.as_tensor(v) for k, v in self.param_state.items()})
        net.eval()
        return net

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for timeline in self.timelines.values():
            arrays |= timeline.to_npz_dict()
        return arrays | {f"{PARAM_NET}{k}": v for k, v in self.param_state.items()}

    @classmethod
    def from_npz_dict(cls, arrays: dict[str, np.ndarray], recognisers: list[str], primary: str) -> EmotionTimelines:
        """The stored timelines of ``recognisers`` (as the take's emotion record names them)."""
        timelines = {name: RecogniserTimeline.from_npz_dict(name, arrays) for name in recognisers}
        if primary not in timelines:
            raise KeyError(f"no timeline of the primary recogniser {primary}")
        state = {k[len(PARAM_NET):]: v for k, v in arrays.items() if k.startswith(PARAM_NET)}
        return cls(timelines, primary, state)

    @classmethod
    def of(cls, timelines: dict[str, RecogniserTimeline], primary: str, net: ParamEmotionNet | None) -> EmotionTimelines:
        """The stored form of a fresh result (``net``: the trained model, or None)."""
        state = {} if net is None else {k: v.numpy() for k, v in net.state_dict().items()}
        return cls(timelines, primary, state)
