"""Scaled orthographic camera between model space and MediaPipe's image space.

Model space: metres, y up, z toward the viewer. Image space: pixels, x right, y down, z away from
the camera (MediaPipe's landmark frame). camera: B x 4 = (log scale [log px per metre], tx, ty, tz
[px]). ``image = scale * (x, -y, -z) + t``.
"""

from __future__ import annotations

import numpy as np
import torch

AXIS_FLIP = (1.0, -1.0, -1.0)


def project(points: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """points: B x L x 3 model space -> B x L x 3 image space."""
    flip = torch.tensor(AXIS_FLIP, dtype=points.dtype, device=points.device)
    return torch.exp(camera[:, 0])[:, None, None] * points * flip + camera[:, None, 1:4]


def flip_matrix() -> np.ndarray:
    return np.diag(AXIS_FLIP)
