"""How much of a photo's landmark motion no model can explain: MediaPipe's own landmark noise.

MediaPipe's face mesh places its 478 points a little differently for every crop of the same photo
it is given; which crop it gets depends on where the detector's box (or the previous frame's
landmarks) fell. Sampling that spread, each photo's landmarks from CROP_JITTER crops around the
face (scaled 0.92-1.08, shifted 3 % of the crop), estimates the noise of one observation, and the
share of the real motion (benchmarks/fidelity/motion.py's measure) that even a perfect model leaves
unexplained: the noise of both photos over the motion's energy. Other noise (light, pose) is not
sampled, so the true ceiling is lower still.
"""

from __future__ import annotations

import numpy as np

from benchmarks.fidelity.motion import alignment, motion_energy
from core.observe.landmarker import CropLandmarker, square_region
from core.observe.observer import TRACKING_REGION_SCALE, box_from_landmarks

CROP_JITTER = tuple((scale, dx, dy) for scale in (0.92, 1.0, 1.08)
                    for dx, dy in ((0.0, 0.0), (0.03, 0.0), (-0.03, 0.0), (0.0, 0.03), (0.0, -0.03)))
MIN_SAMPLES = 8  # crops that must find the face for a noise estimate


def crop_jitter_landmarks(image: np.ndarray, landmarks: np.ndarray, landmarker: CropLandmarker) -> np.ndarray:
    """K x 478 x 3 image landmarks of ``image`` (H x W x 3 uint8 RGB) from the CROP_JITTER crops
    around its face (``landmarks``: 478 x 3, where the face is); crops where the mesh finds no face
    are left out."""
    x0, y0, side = square_region(box_from_landmarks(landmarks), TRACKING_REGION_SCALE)
    samples = []
    for scale, dx, dy in CROP_JITTER:
        size = side * scale
        cx, cy = x0 + side / 2 + dx * side, y0 + side / 2 + dy * side
        region = (cx - size / 2, cy - size / 2, size)
        landmarker.reset()  # each crop on its own, not tracked from the last
        found = landmarker.landmarks(landmarker.crop(image, region), region)
        if found is not None:
            samples.append(found.astype(np.float64))
    return np.array(samples).reshape(-1, *landmarks.shape)


def noise_energy(samples: np.ndarray, z_weight: float) -> float:
    """The expected |W n|^2 of one observation's landmark noise n (pixels squared, depth weighed by
    z_weight as the fitter does and without its mean over the STABLE points; each sample first
    aligned onto their mean by a similarity on the STABLE points, as motion.explained_share aligns
    the expression photo), from K x 478 x 3 samples of the same photo; NaN with fewer than
    MIN_SAMPLES."""
    if len(samples) < MIN_SAMPLES:
        return float("nan")
    # a crop moves or scales the whole mesh too; the measure aligns that away (and the fit's head
    # pose follows it), so only what is left of each sample after the same alignment is noise
    mean = samples.mean(axis=0)
    aligned = np.stack([alignment(mean, one)[0](one) for one in samples])
    spread = aligned - aligned.mean(axis=0)
    return sum(motion_energy(one, z_weight) for one in spread) / (len(samples) - 1)


def explained_ceiling(neutral: np.ndarray, expression: np.ndarray, neutral_samples: np.ndarray,
                      expression_samples: np.ndarray, z_weight: float) -> float:
    """The share of the real motion from ``neutral`` to ``expression`` (observed 478 x 3 image
    landmarks) that a perfect model would explain, as motion.explained_share measures it: 1 - the
    noise energy of both photos (from their K x 478 x 3 crop samples, the expression's scaled as it
    is aligned onto the neutral) over the observed motion's energy. NaN without enough samples."""
    aligned, scale = alignment(neutral, expression)
    noise = noise_energy(neutral_samples, z_weight) + scale**2 * noise_energy(expression_samples, z_weight)
    return 1.0 - noise / motion_energy(aligned(expression) - neutral, z_weight)
