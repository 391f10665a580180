"""Fitted face parameters of a clip (NumPy), the compact per-frame form a take stores; torch only
in :meth:`FitParams.to_face_params`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from core.facemodel.types import FaceParams

PER_FRAME = ("frame_index", "has_face", "expression", "rotation", "neck", "jaw", "eyes", "camera", "residual")


@dataclass(frozen=True)
class FitParams:
    """Parameters of N frames fitted with one identity. Rows without a face hold NaN.

    identity: S. frame_index: N int64. has_face: N bool. expression: N x E (ARKit weights in
    [0, 1] for the open model). rotation, neck, jaw: N x 3 axis-angle radians (model space).
    eyes: N x 6 (left, right). camera: N x 4 (log px-per-metre, tx, ty, tz px; core.fit.camera).
    residual: N, mean 2D landmark error as a fraction of the inter-ocular distance.
    """

    identity: np.ndarray
    frame_index: np.ndarray
    has_face: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    neck: np.ndarray
    jaw: np.ndarray
    eyes: np.ndarray
    camera: np.ndarray
    residual: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)

    @classmethod
    def empty(cls, frame_index: np.ndarray, identity: np.ndarray, num_expression: int) -> FitParams:
        n = len(frame_index)

        def nan(*shape: int) -> np.ndarray:
            return np.full((n, *shape), np.nan, np.float32)

        return cls(
            identity=identity.astype(np.float32), frame_index=np.asarray(frame_index, np.int64),
            has_face=np.zeros(n, bool), expression=nan(num_expression), rotation=nan(3), neck=nan(3),
            jaw=nan(3), eyes=nan(6), camera=nan(4), residual=np.full(n, np.nan, np.float32),
        )

    def to_face_params(self, rows: np.ndarray | None = None, device: str = "cpu") -> FaceParams:
        """Torch parameters of the given rows (default: all rows with a face); model translation 0."""
        import torch  # here: reading a take's fit (``emocap info``) needs no torch

        from core.facemodel.types import FaceParams

        rows = np.nonzero(self.has_face)[0] if rows is None else rows

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a[rows]), dtype=torch.float32, device=device)

        shape = torch.as_tensor(self.identity, dtype=torch.float32, device=device)[None].expand(len(rows), -1)
        return FaceParams(
            shape=shape.contiguous(), expression=t(self.expression), rotation=t(self.rotation),
            neck=t(self.neck), jaw=t(self.jaw), eyes=t(self.eyes),
            translation=torch.zeros(len(rows), 3, device=device),
        )

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_npz_dict(cls, data) -> FitParams:
        return cls(**{f.name: np.asarray(data[f.name]) for f in fields(cls)})

    @classmethod
    def concatenate(cls, parts: list[FitParams]) -> FitParams:
        first = parts[0]
        return cls(identity=first.identity, **{k: np.concatenate([getattr(p, k) for p in parts]) for k in PER_FRAME})
