"""Image-folder dataset: faces without labels, for self-supervised (landmark) training.

Layout: ``ROOT/**/<image>.{jpg,jpeg,png,bmp,webp}``, one performer face per image (the largest
face is used; images without a face are skipped with a warning). Targets: MediaPipe landmarks in
crop space only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.encoder.config import EncoderConfig
from training.data.stills import image_files, observe_stills
from training.samples import SampleArrays


def load_image_folder(root: str | Path, config: EncoderConfig, max_samples: int = 0) -> SampleArrays:
    files = image_files(Path(root), recursive=True)
    if max_samples and len(files) > max_samples:
        files = [files[i] for i in np.unique(np.linspace(0, len(files) - 1, max_samples).round().astype(int))]
    crops, landmarks, kept = observe_stills(files, config.input_size)
    data = SampleArrays.empty_targets(crops, config.num_params)
    data.landmarks[:] = landmarks
    data.order[:] = kept
    return data
