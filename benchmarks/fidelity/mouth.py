"""How much of an open mouth shows bright teeth: an expression photo against the render of the same
person's neutral photo wearing the curves fitted to it.

Inside the mouth opening (the photo's inner-lip contour; the render's mouth-cavity layer, teeth
included), the share of pixels brighter than BRIGHT_OF_SKIN times the image's median skin
luminance. Real teeth in an open mouth are lit only where the lips let light in, so a render whose
share is well above the photo's draws bared teeth the face did not show.
"""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.fidelity.devset import Analysed
from core.facemodel.open_model import LOWER_LIP_INNER, UPPER_LIP_INNER
from core.observe.landmark_ids import FACE_OVAL
from core.render.reconstruction import ReconstructionRenderer
from core.render.shading import LUMA

BRIGHT_OF_SKIN = 0.75
MIN_PIXELS = 20  # smaller openings are closed mouths: no share


def polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    """H x W bool inside a P x 2 pixel polygon."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    return mask > 0


def bright_share(image: np.ndarray, region: np.ndarray, skin: np.ndarray) -> float | None:
    """Share of the H x W bool ``region``'s pixels of an H x W x 3 RGB image brighter than
    BRIGHT_OF_SKIN times the median luminance of the ``skin`` mask; None for a region under
    MIN_PIXELS pixels."""
    if region.sum() < MIN_PIXELS:
        return None
    level = float(np.median(image[skin].astype(np.float64) @ LUMA))
    return float(((image[region].astype(np.float64) @ LUMA) > BRIGHT_OF_SKIN * level).mean())


def photo_share(analysed: Analysed) -> float | None:
    """:func:`bright_share` of a photo's mouth opening (its observed inner-lip contour)."""
    landmarks = analysed.observations.landmarks[0][:, :2]
    opening = np.concatenate([landmarks[list(UPPER_LIP_INNER)], landmarks[list(LOWER_LIP_INNER)[::-1]]])
    shape = analysed.image.shape[:2]
    return bright_share(analysed.image, polygon_mask(shape, opening), polygon_mask(shape, landmarks[list(FACE_OVAL)]))


def render_share(renderer: ReconstructionRenderer, curves: np.ndarray) -> float | None:
    """:func:`bright_share` of the mouth of a neutral photo's renderer (its frame 0: the fitted
    identity, pose, camera and texture; :class:`benchmarks.fidelity.carriers.Carrier`'s) wearing
    ``curves`` (52 weights), as the retargeting renders draw it."""
    curves = np.nan_to_num(np.asarray(curves, np.float32))
    rgb = renderer.render_expressions(0, curves[None])[0][0]
    fragments, _ = renderer.fragments(0, curves)
    start, stop = renderer.layers["mouth"]
    skin_stop = renderer.layers["skin"][1]
    return bright_share(rgb, (fragments.triangle >= start) & (fragments.triangle < stop),
                        (fragments.triangle >= 0) & (fragments.triangle < skin_stop))
