"""What the curves of one image say, without rendering: prototype curves and off-meaning saturation.

The FACS prototype of each emotion as ARKit weights (../shared/notes/fidelity.md's table: happy
AU6+12, sad AU1+4+15+17, surprise AU1+2+5+26, fear AU1+2+4+5+20+26, anger AU4+5+7+23, disgust
AU9+10+15+7). A curve "belongs" to a label when its prototype names it.
"""

from __future__ import annotations

import numpy as np

from core.facemodel.open_model import ARKIT_NAMES
from core.facemodel.open_model_calibration import stem as curve_stem


def _both(*stems: str) -> dict[str, float]:
    return {f"{stem}{side}": 1.0 for stem in stems for side in ("Left", "Right")}


PROTOTYPES: dict[str, dict[str, float]] = {
    "happy": {**{k: 1.0 for k in _both("mouthSmile", "cheekSquint")}, **{k: 0.6 for k in _both("eyeSquint")},
              **{k: 0.3 for k in _both("mouthUpperUp")}, "jawOpen": 0.1},
    "sad": {"browInnerUp": 1.0, **{k: 0.4 for k in _both("browDown")}, **_both("mouthFrown"),
            "mouthShrugLower": 0.6, **{k: 0.3 for k in _both("mouthPress", "eyeSquint")}},
    "surprise": {"browInnerUp": 1.0, **_both("browOuterUp", "eyeWide"), "jawOpen": 0.6},
    "fear": {"browInnerUp": 1.0, **{k: 0.6 for k in _both("browOuterUp")}, **{k: 0.3 for k in _both("browDown")},
             **_both("eyeWide", "mouthStretch"), "jawOpen": 0.3},
    "anger": {**_both("browDown"), **{k: 0.6 for k in _both("eyeSquint")}, **{k: 0.3 for k in _both("eyeWide")},
              **{k: 0.8 for k in _both("mouthPress")}, **{k: 0.4 for k in _both("noseSneer")}},
    "disgust": {**_both("noseSneer", "mouthUpperUp"), **{k: 0.5 for k in _both("browDown", "eyeSquint")},
                **{k: 0.4 for k in _both("mouthFrown")}},
}


def prototype_vector(label: str) -> np.ndarray:
    """52 ARKit weights of the label's prototype (zeros for neutral)."""
    out = np.zeros(len(ARKIT_NAMES))
    for name, weight in PROTOTYPES.get(label, {}).items():
        out[ARKIT_NAMES.index(name)] = weight
    return out


def prototype_in_top(curves: np.ndarray, label: str, top: int = 4) -> bool:
    """Whether one of the label's prototype curves is among the ``top`` strongest curves."""
    members = {ARKIT_NAMES.index(n) for n in PROTOTYPES[label]}
    strongest = np.argsort(-np.nan_to_num(curves), kind="stable")[:top]
    return bool(members & set(strongest.tolist()))


def off_prototype(curves: np.ndarray, label: str, level: float = 0.9) -> list[str]:
    """Curves at ``level`` or more that the label's prototype does not name (every such curve for
    a neutral face)."""
    members = set(PROTOTYPES.get(label, {}))
    return [n for n, v in zip(ARKIT_NAMES, np.nan_to_num(curves)) if v >= level and n not in members]


def at_bound(curves: np.ndarray, level: float = 0.99) -> int:
    return int((np.nan_to_num(curves) >= level).sum())


# curves the learned network reports (not cheekSquint or noseSneer, which it never does, nor the
# under-reported eyeWide and cheekPuff: core/fit/evidence.py), by stem; Left and Right pooled
SCALE_STEMS = ("browDown", "browInnerUp", "browOuterUp", "eyeSquint", "jawOpen", "mouthSmile", "mouthFrown",
               "mouthStretch", "mouthUpperUp", "mouthLowerDown", "mouthShrugLower", "mouthPucker")


def curve_scale(fitted: np.ndarray, network: np.ndarray, min_change: float = 0.1) -> dict[str, tuple[float, int]]:
    """Per stem of SCALE_STEMS: the fitted weight per unit of the network's, the least-squares
    slope through zero sum(fit * net) / sum(net^2) over the samples where the network's score rose
    by ``min_change`` or more, and that sample count. fitted, network: N x 52 (ARKIT_NAMES): the
    fitted curves and the network's score change from the same person's neutral."""
    out = {}
    for stem in SCALE_STEMS:
        columns = [k for k, name in enumerate(ARKIT_NAMES) if curve_stem(name) == stem]
        fit, net = np.asarray(fitted)[:, columns].ravel(), np.asarray(network)[:, columns].ravel()
        active = net >= min_change
        if active.any():
            out[stem] = (float(fit[active] @ net[active] / (net[active] @ net[active])), int(active.sum()))
    return out
