"""FaceEncoder: an aligned face crop -> the face model's parameters and the face's emotion.

One shared backbone (MobileNetV2 or ResNet-50) feeds two heads:

- a parameter head regressing the flat vector of the groups in PARAM_GROUPS (identity S,
  expression E, head rotation 3, neck 3, jaw 3, eyes 6, camera 4), in *crop space*: the head
  rotation and the scaled-orthographic camera describe the face as it appears in the aligned crop
  (normalised so that the crop's side is 1), see core/encoder/crop_space.py for the conversion to
  the image-space values a take stores;
- an emotion branch: 8 logits over core.emotion.EMOTIONS, and valence and arousal in [-1, 1].

The parameter head predicts standardised values; ``param_mean`` and ``param_std`` (buffers, set
from the training targets) map them back, so every output starts near the data's mean and all
groups train at the same pace whatever their units. Groups in ``config.zero_groups`` are forced to
zero. Input normalisation is part of the module (and so of its ONNX export): images are
B x 3 x H x W float in [0, 1], RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.encoder.config import NUM_EMOTIONS, PARAM_GROUPS, EncoderConfig
from core.encoder.mobilenet import MobileNetV2
from core.encoder.resnet import ResNet50

OUTPUT_NAMES = (*PARAM_GROUPS, "emotion_logits", "valence_arousal")
# Per-channel statistics of natural images (ImageNet); any fixed values work when training from scratch.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderOutput:
    """What the encoder says about B crops (torch tensors or NumPy arrays, the same shapes).

    identity B x S, expression B x E, rotation B x 3 (crop-space axis-angle, radians), neck B x 3,
    jaw B x 3, eyes B x 6, camera B x 4 (crop-space: log crop-sides per metre, tx, ty, tz in crop
    sides), emotion_logits B x 8, valence_arousal B x 2."""

    identity: torch.Tensor | np.ndarray
    expression: torch.Tensor | np.ndarray
    rotation: torch.Tensor | np.ndarray
    neck: torch.Tensor | np.ndarray
    jaw: torch.Tensor | np.ndarray
    eyes: torch.Tensor | np.ndarray
    camera: torch.Tensor | np.ndarray
    emotion_logits: torch.Tensor | np.ndarray
    valence_arousal: torch.Tensor | np.ndarray

    @classmethod
    def from_tuple(cls, values) -> EncoderOutput:
        return cls(*values)

    @classmethod
    def concatenate(cls, parts: list[EncoderOutput]) -> EncoderOutput:
        """NumPy outputs of consecutive batches joined along B."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in OUTPUT_NAMES))

    @classmethod
    def empty(cls, config: EncoderConfig) -> EncoderOutput:
        """NumPy outputs for no crop at all (B = 0)."""
        sizes = [*config.group_sizes().values(), NUM_EMOTIONS, 2]
        return cls(*(np.zeros((0, n), np.float32) for n in sizes))

    def params_flat(self):
        """B x P, the parameter groups concatenated in PARAM_GROUPS order."""
        parts = [getattr(self, g) for g in PARAM_GROUPS]
        return torch.cat(parts, dim=1) if isinstance(parts[0], torch.Tensor) else np.concatenate(parts, axis=1)

    def emotion_probabilities(self):
        """B x 8 softmax of the logits."""
        if isinstance(self.emotion_logits, torch.Tensor):
            return torch.softmax(self.emotion_logits, dim=1)
        z = self.emotion_logits - self.emotion_logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def build_backbone(config: EncoderConfig) -> nn.Module:
    if config.backbone == "mobilenetv2":
        return MobileNetV2(config.width)
    return ResNet50()


class FaceEncoder(nn.Module):
    """images B x 3 x H x W in [0, 1] -> the tuple of OUTPUT_NAMES tensors (see EncoderOutput).
    Pure module: no I/O (checkpoints: core/encoder/checkpoint.py)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config)
        features = self.backbone.out_channels
        self.param_head = nn.Linear(features, config.num_params)
        self.emotion_head = nn.Sequential(nn.Linear(features, 256), nn.ReLU(inplace=True), nn.Linear(256, NUM_EMOTIONS + 2))
        nn.init.normal_(self.param_head.weight, std=1e-3)
        nn.init.zeros_(self.param_head.bias)
        self.register_buffer("image_mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1))
        self.register_buffer("param_mean", torch.zeros(config.num_params))
        self.register_buffer("param_std", torch.ones(config.num_params))
        keep = torch.ones(config.num_params)
        for name, part in config.group_slices().items():
            if name in config.zero_groups:
                keep[part] = 0.0
        self.register_buffer("param_keep", keep)

    def set_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Standardisation of the parameter head: P means and P (positive) standard deviations."""
        self.param_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.param_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.backbone((images - self.image_mean) / self.image_std)
        params = (self.param_head(features) * self.param_std + self.param_mean) * self.param_keep
        emotion = self.emotion_head(features)
        groups = torch.split(params, list(self.config.group_sizes().values()), dim=1)
        return (*groups, emotion[:, :NUM_EMOTIONS], torch.tanh(emotion[:, NUM_EMOTIONS:]))

    def encode(self, images: torch.Tensor) -> EncoderOutput:
        return EncoderOutput.from_tuple(self(images))
