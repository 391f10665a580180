"""Where the performer's identity is fitted from (``--neutral``): the clip's most neutral frames
(None), a frame of the input ("120"), or a neutral photo of the same person (its path)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import EmoCapError
from core.fit.fitter import slice_observations
from core.observe import FaceObserver
from core.take import ObservationArrays, source_fingerprint
from core.video import open_source


def neutral_setting(neutral: str | None) -> dict[str, Any] | None:
    """How the neutral was chosen, as stored with the fit (a new choice refits): None,
    {"frame": N} or {"image": fingerprint}. EmoCapError for an image that is not there."""
    if neutral is None:
        return None
    if neutral.strip().isdigit():
        return {"frame": int(neutral)}
    path = Path(neutral)
    if not path.is_file():
        raise EmoCapError(f"--neutral {neutral}: no such image (give a frame number or a neutral photo)")
    return {"image": dataclasses.asdict(source_fingerprint(path))}


def neutral_evidence(neutral: str | None, observations: ObservationArrays) -> ObservationArrays:
    """The frames the identity is fitted on: all (the fitter picks the most neutral ones), the
    frame the user named, or the observation of the neutral image the user named. EmoCapError
    when the named frame or image shows no face."""
    if neutral is None:
        return observations
    if neutral.strip().isdigit():
        rows = np.nonzero((observations.index == int(neutral)) & observations.has_face)[0]
        if not len(rows):
            raise EmoCapError(f"--neutral {neutral}: that frame shows no face; choose another neutral frame")
        return slice_observations(observations, int(rows[0]), int(rows[0]) + 1)
    with open_source(neutral) as source, FaceObserver(crop_images=False) as observer:
        observation = observer.observe(0, 0.0, source.read(0))
    if not observation.has_face:
        raise EmoCapError(f"--neutral {neutral}: no face found in that image")
    return ObservationArrays.from_observations([observation])
