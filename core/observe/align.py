"""Aligned face crops for recognisers.

The crop is an oriented square built from the eye centres and the mouth centre (the alignment
used to build the FFHQ data set): it follows in-plane rotation, keeps the whole face with a margin,
and does not depend on the image size.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.observe import landmark_ids as ids

DEFAULT_CROP_SIZE = 256


def crop_transform(landmarks: np.ndarray, size: int = DEFAULT_CROP_SIZE) -> np.ndarray:
    """2 x 3 affine (float64) mapping image pixels to crop pixels of a ``size`` x ``size`` crop.

    landmarks: 478 x 3 (or 478 x 2) image pixels; needs the iris points (refined landmarks).
    """
    pts = landmarks[:, :2].astype(np.float64)
    eye_right = pts[list(ids.RIGHT_IRIS)].mean(axis=0)
    eye_left = pts[list(ids.LEFT_IRIS)].mean(axis=0)
    eye_avg = (eye_right + eye_left) / 2
    eye_to_eye = eye_left - eye_right
    mouth_avg = (pts[ids.MOUTH_RIGHT] + pts[ids.MOUTH_LEFT]) / 2
    eye_to_mouth = mouth_avg - eye_avg

    def rot90(v: np.ndarray) -> np.ndarray:
        return np.array([-v[1], v[0]])

    # In image coordinates (y down) the performer's right eye is on the image left, so eye_to_eye
    # points to image right, and rot90(eye_to_mouth) points to image left: subtract it.
    x_axis = eye_to_eye - rot90(eye_to_mouth)
    x_axis /= max(np.linalg.norm(x_axis), 1e-9)
    half = max(np.linalg.norm(eye_to_eye) * 2.0, np.linalg.norm(eye_to_mouth) * 1.8)
    x_axis *= half
    y_axis = rot90(x_axis)  # image down
    center = eye_avg + eye_to_mouth * 0.1
    src = np.float32([center - x_axis - y_axis, center + x_axis - y_axis, center + x_axis + y_axis])
    dst = np.float32([[0, 0], [size, 0], [size, size]])
    return cv2.getAffineTransform(src, dst).astype(np.float64)


def warp_crop(image: np.ndarray, transform: np.ndarray, size: int = DEFAULT_CROP_SIZE) -> np.ndarray:
    """Apply a :func:`crop_transform`. image: H x W x 3 uint8 RGB -> size x size x 3 uint8 RGB."""
    return cv2.warpAffine(
        image, transform, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
