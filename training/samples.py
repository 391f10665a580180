"""Training samples as arrays (one struct of arrays per dataset) and batches as tensors.

Every dataset reader (training/data/) produces :class:`SampleArrays`; unknown targets are NaN, so
each loss uses the samples that have its target and ignores the others.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from core.emotion.types import EMOTIONS
from core.observe.landmark_ids import NUM_LANDMARKS


@dataclass(frozen=True)
class Texture:
    """An actor's texture for texture-warp rendering: image S x S x 3 uint8 (an aligned crop of a
    reference frame at the dataset's input size), uv (V + L) x 2 float32 (the model's V vertices,
    then its L landmarks, in that crop, in crop sides, from the reference frame's fit)."""

    image: np.ndarray
    uv: np.ndarray


@dataclass(frozen=True)
class SampleArrays:
    """N training samples (aligned crops of side S) and their targets.

    images: N x S x S x 3 uint8 RGB. landmarks: N x 478 x 3 float32, MediaPipe landmarks in crop
    space (crop sides; NaN when unknown). params: N x P float32 crop-space parameter targets in the
    encoder's flat order (NaN when unknown). param_weight: N float32 (1 ground truth, < 1 pseudo
    ground truth, 0 none). emotion: N x 8 probabilities over EMOTIONS (NaN). valence_arousal: N x 2
    (NaN). intensity: N emotion intensity in [0, 1] (NaN: derived from ``emotion``). texture: N
    int64 index into ``textures`` (-1: none). actor: N int64 performer id (-1 unknown). group: N
    int64 sequence id; order: N int64 position in its sequence (validation blocks follow them)."""

    images: np.ndarray
    landmarks: np.ndarray
    params: np.ndarray
    param_weight: np.ndarray
    emotion: np.ndarray
    valence_arousal: np.ndarray
    intensity: np.ndarray
    texture: np.ndarray
    actor: np.ndarray
    group: np.ndarray
    order: np.ndarray
    textures: tuple[Texture, ...] = ()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def input_size(self) -> int:
        return int(self.images.shape[1])

    @classmethod
    def empty_targets(cls, images: np.ndarray, num_params: int) -> SampleArrays:
        """Samples with images only: every target unknown."""
        n = len(images)
        nan = np.float32(np.nan)
        return cls(
            images=images, landmarks=np.full((n, NUM_LANDMARKS, 3), nan, np.float32),
            params=np.full((n, num_params), nan, np.float32), param_weight=np.zeros(n, np.float32),
            emotion=np.full((n, len(EMOTIONS)), nan, np.float32), valence_arousal=np.full((n, 2), nan, np.float32),
            intensity=np.full(n, nan, np.float32), texture=np.full(n, -1, np.int64), actor=np.full(n, -1, np.int64),
            group=np.zeros(n, np.int64), order=np.arange(n, dtype=np.int64),
        )

    def subset(self, rows: np.ndarray) -> SampleArrays:
        return replace(self, **{f.name: getattr(self, f.name)[rows] for f in fields(self) if f.name != "textures"})

    @classmethod
    def concatenate(cls, parts: list[SampleArrays]) -> SampleArrays:
        """Join datasets; texture, actor and group ids are renumbered so they stay distinct."""
        textures: list[Texture] = []
        out: dict[str, list[np.ndarray]] = {f.name: [] for f in fields(cls) if f.name != "textures"}
        actor_base = group_base = 0
        for part in parts:
            for name in out:
                value = getattr(part, name)
                if name == "texture":
                    value = np.where(value >= 0, value + len(textures), -1)
                elif name == "actor":
                    value = np.where(value >= 0, value + actor_base, -1)
                elif name == "group":
                    value = value + group_base
                out[name].append(value)
            textures += list(part.textures)
            actor_base += int(part.actor.max()) + 1 if len(part) and part.actor.max() >= 0 else 0
            group_base += int(part.group.max()) + 1 if len(part) else 0
        return cls(**{k: np.concatenate(v) for k, v in out.items()}, textures=tuple(textures))


@dataclass
class Batch:
    """B samples as tensors on one device (shapes as in SampleArrays; images B x 3 x S x S float
    in [0, 1]); texture_images T x 3 x S x S and texture_uv T x V x 2 (crop sides) for the textures
    the batch refers to, with ``texture`` re-indexed into them."""

    images: torch.Tensor
    landmarks: torch.Tensor
    params: torch.Tensor
    param_weight: torch.Tensor
    emotion: torch.Tensor
    valence_arousal: torch.Tensor
    intensity: torch.Tensor
    texture: torch.Tensor
    actor: torch.Tensor
    texture_images: torch.Tensor | None
    texture_uv: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.images)


def make_batch(data: SampleArrays, rows: np.ndarray, device: str = "cpu") -> Batch:
    """The samples ``rows`` of ``data`` as a Batch on ``device``."""
    rows = np.asarray(rows, np.int64)

    def t(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    images = t(data.images[rows]).permute(0, 3, 1, 2) / 255.0
    texture = data.texture[rows]
    used = np.unique(texture[texture >= 0])
    texture_images = texture_uv = None
    if len(used):
        remap = {int(k): i for i, k in enumerate(used)}
        texture = np.array([remap.get(int(k), -1) for k in texture], np.int64)
        texture_images = t(np.stack([data.textures[k].image for k in used])).permute(0, 3, 1, 2) / 255.0
        texture_uv = t(np.stack([data.textures[k].uv for k in used]))
    return Batch(
        images=images.contiguous(), landmarks=t(data.landmarks[rows]), params=t(data.params[rows]),
        param_weight=t(data.param_weight[rows]), emotion=t(data.emotion[rows]),
        valence_arousal=t(data.valence_arousal[rows]), intensity=t(data.intensity[rows]),
        texture=t(texture, torch.long), actor=t(data.actor[rows], torch.long),
        texture_images=texture_images, texture_uv=texture_uv,
    )


def split_blocks(data: SampleArrays, every: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows): inside each group, consecutive samples (by ``order``) form
    blocks of ``block``; every ``every``-th block (the 3rd, 8th, ... for every = 5, so the
    held-out part is spread over the clip, not only its end) is held out. every = 0: none."""
    n = len(data)
    if every <= 0 or n == 0:
        return np.arange(n), np.zeros(0, np.int64)
    held = np.zeros(n, bool)
    for g in np.unique(data.group):
        rows = np.nonzero(data.group == g)[0]
        rows = rows[np.argsort(data.order[rows], kind="stable")]
        blocks = np.arange(len(rows)) // max(block, 1)
        held[rows] = blocks % every == (every // 2)
    return np.nonzero(~held)[0], np.nonzero(held)[0]
