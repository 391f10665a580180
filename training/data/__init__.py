"""Dataset readers; each returns training.samples.SampleArrays (layouts in each module's docstring).

- ``take``: an analysed take and its video (fitter pseudo ground truth, emotion timelines, an
  actor texture): training/data/take_clip.py
- ``image_folder``: unlabelled faces: training/data/image_folder.py
- ``affectnet``: emotion-labelled folders: training/data/affectnet.py
- ``scan4d``: 4D-scan FLAME parameter sequences with frames: training/data/scan4d.py
"""

from __future__ import annotations

from core.encoder.config import EncoderConfig
from core.facemodel.model import FaceModel
from training.config import DataSpec
from training.samples import SampleArrays


def load_dataset(spec: DataSpec, model: FaceModel, config: EncoderConfig) -> SampleArrays:
    """Read one dataset of a training config at the encoder's input size."""
    if spec.kind == "take":
        from training.data.take_clip import load_take_samples

        return load_take_samples(spec.path, model, config, emotion_recogniser=spec.emotion_recogniser,
                                 pseudo_weight=spec.pseudo_weight, max_samples=spec.max_samples)
    if spec.kind == "image_folder":
        from training.data.image_folder import load_image_folder

        return load_image_folder(spec.path, config, spec.max_samples)
    if spec.kind == "affectnet":
        from training.data.affectnet import load_affectnet

        return load_affectnet(spec.path, config, spec.max_samples)
    if spec.kind == "scan4d":
        from training.data.scan4d import load_scan4d

        return load_scan4d(spec.path, config, spec.max_samples)
    raise ValueError(f"unknown dataset kind {spec.kind!r}")
