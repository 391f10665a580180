"""Aligned crops and landmarks of still images (the image-folder, AffectNet-style and 4D-scan
datasets): each image is observed on its own (MediaPipe, the performer = the largest face), its
aligned crop warped at the encoder's input size."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from core.encoder.crop_space import landmarks_to_crop, scaled_transforms
from core.observe import FaceObserver
from core.observe.align import DEFAULT_CROP_SIZE, warp_crop

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files of a folder (and its subfolders when ``recursive``), sorted by path."""
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in Path(folder).glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_rgb(path: Path) -> np.ndarray | None:
    """H x W x 3 uint8 RGB, or None when the file is not a readable image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def observe_stills(paths: Iterable[Path], size: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Observe each image alone. Returns (crops K x size x size x 3 uint8, landmarks K x 478 x 3 in
    crop space (crop sides), the positions in ``paths`` of the K images with a face)."""
    crops, landmarks, kept = [], [], []
    with FaceObserver(crop_images=False) as observer:
        for k, path in enumerate(paths):
            image = read_rgb(path)
            if image is None:
                log.warning("skipping %s: not a readable image", path)
                continue
            observer.reset()
            obs = observer.observe(k, 0.0, image)
            if not obs.has_face:
                log.warning("skipping %s: no face found", path)
                continue
            transform = np.asarray(obs.crop_transform, np.float64)[None]
            crops.append(warp_crop(image, scaled_transforms(transform, DEFAULT_CROP_SIZE, size)[0], size))
            landmarks.append(landmarks_to_crop(obs.landmarks[None], transform, DEFAULT_CROP_SIZE)[0])
            kept.append(k)
    if not crops:
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 478, 3), np.float32), []
    return np.stack(crops), np.stack(landmarks), kept
