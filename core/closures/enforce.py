"""Floors that make the fitted curves reach the closures the observations show.

The fit weighs landmarks against temporal smoothing, which rounds off a two-frame blink (the
single_face fixture's closed frame fitted eyeBlink 0.35). Here each frame where the eyes are
closed (core/closures/detect.py) gets a floor of ``blink_target`` on eyeBlinkLeft and
eyeBlinkRight, and each frame where the lips touch gets the smallest mouthClose that brings the
fitted mesh's inner lips (model landmarks 13/14, over the mouth's width 78/308) within the same
contact ratio the observations were judged by (found by bisection on the model). A floor only
raises a curve: ``expression = fmax(expression, floor)`` (NaN: no floor), so a blink's peak stays
where the performer's was and no other frame changes. Models without these curves (FLAME) get
no floors.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from core.closures.detect import LIP_POINTS, ClosureConfig, ClosureEvidence
from core.facemodel.model import FaceModel
from core.fit.params import FitParams

BLINKS = ("eyeBlinkLeft", "eyeBlinkRight")
LIPS_CLOSE = "mouthClose"
BISECTION_STEPS = 12
ROWS_PER_PASS = 128  # frames posed at once: posing holds ~100 KB of intermediates a frame


def mesh_lip_gap(model: FaceModel, fit: FitParams, rows: np.ndarray, expression: np.ndarray | None = None) -> np.ndarray:
    """The fitted mesh's inner-lip gap over its mouth width at ``rows`` (with ``expression``, K x E,
    in place of the fit's when given), measured with the head unrotated along the model's up axis:
    negative when the lips press past each other."""
    params = fit.to_face_params(rows)
    zero = torch.zeros_like(params.rotation)
    changes = {"rotation": zero, "neck": zero}
    if expression is not None:
        changes["expression"] = torch.as_tensor(expression, dtype=torch.float32)
    with torch.no_grad():
        points = model(dataclasses.replace(params, **changes)).landmarks.numpy().astype(np.float64)
    upper, lower, left, right = LIP_POINTS
    gap = points[:, upper, 1] - points[:, lower, 1]
    return gap / np.linalg.norm(points[:, left] - points[:, right], axis=1)


def closure_floor(fit: FitParams, evidence: ClosureEvidence, model: FaceModel,
                  config: ClosureConfig = ClosureConfig()) -> np.ndarray:
    """The floor (N x E, NaN where none) that closes the fitted eyes and lips where the evidence
    says they are closed (module docstring)."""
    names = list(model.expression_names)
    floor = np.full(fit.expression.shape, np.nan, np.float32)
    closable = fit.has_face & np.isfinite(fit.expression).all(axis=1)
    if all(name in names for name in BLINKS):
        eyes = evidence.eyes_closed & closable
        for name in BLINKS:
            floor[eyes, names.index(name)] = config.blink_target
    if LIPS_CLOSE in names:
        rows = np.flatnonzero(evidence.lips_closed & closable)
        if len(rows):
            column = names.index(LIPS_CLOSE)
            needed = np.concatenate([_lip_closing(model, fit, rows[k : k + ROWS_PER_PASS], column, config.lips)
                                     for k in range(0, len(rows), ROWS_PER_PASS)])
            raise_rows = needed > fit.expression[rows, column]
            floor[rows[raise_rows], column] = needed[raise_rows]
    return floor


def _lip_closing(model: FaceModel, fit: FitParams, rows: np.ndarray, column: int, contact: float) -> np.ndarray:
    """The smallest mouthClose (per row, at least the fitted one, at most 1) that brings the
    mesh's lip gap within ``contact``, by bisection."""
    expression = fit.expression[rows].astype(np.float32)
    low = expression[:, column].copy()
    high = np.ones_like(low)
    done = mesh_lip_gap(model, fit, rows) <= contact
    high[done] = low[done]
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        trial = expression.copy()
        trial[:, column] = middle
        closed = mesh_lip_gap(model, fit, rows, trial) <= contact
        high = np.where(closed, middle, high)
        low = np.where(closed, low, middle)
    return high
