"""What the training render draws: the model's triangles plus fillers that close its eye and mouth
holes, so a render never shows the input image through them.

The open model's mesh (MediaPipe's topology) has holes between the lids and between the inner
lips. Drawn over the input crop, those holes would show the *real* frame's eyes and mouth, and a
recogniser judging the render could then be satisfied by opening the holes rather than by the
right expression. As in core/render/reconstruction.py, each hole is closed by a strip of triangles
between its contours (on copies of the 478 landmarks placed behind the skin, so they show only
through the opening), textured from the reference frame like the skin; the mouth's strip is
darkened to read as the cavity. Models whose landmarks are not MediaPipe's full 478 (a FLAME file
with its own 105-point embedding) get no fillers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.facemodel.model import FaceModel
from core.observe.landmark_ids import NUM_LANDMARKS
from core.render.reconstruction import LEFT_EYE, MOUTH, RIGHT_EYE, strip_triangles

MOUTH_SHADE = 0.35  # the mouth strip is the reference's lips, stretched: darkened toward a cavity
FILLER_DEPTH = 3.0  # how far behind the skin the fillers sit, in face depths


@dataclass(frozen=True)
class RenderTopology:
    """faces: F x 3 over the render points (the V mesh vertices, then the L landmarks): the mesh's
    own ``skin_faces`` triangles first, then the fillers; shade: F colour factors; filler_points:
    whether the landmark copies carry fillers (and are pushed back)."""

    faces: torch.Tensor
    shade: torch.Tensor
    filler_points: bool
    skin_faces: int


def facing_viewer(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Triangles re-wound counter-clockwise in (x, y) of model space (their normal toward the
    viewer, +z), so back-face culling keeps them for a face seen from the front."""
    p = points[triangles]
    e1, e2 = p[:, 1, :2] - p[:, 0, :2], p[:, 2, :2] - p[:, 0, :2]
    flipped = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0] < 0
    out = triangles.copy()
    out[flipped] = out[flipped][:, [0, 2, 1]]
    return out


def render_topology(model: FaceModel) -> RenderTopology:
    faces = model.faces.cpu().numpy().astype(np.int64)
    ids = model.landmark_ids.cpu().numpy()
    if len(ids) != NUM_LANDMARKS or not (ids == np.arange(NUM_LANDMARKS)).all():
        return RenderTopology(torch.as_tensor(faces, device=model.faces.device),
                              torch.ones(len(faces), device=model.faces.device), False, len(faces))
    with torch.no_grad():
        neutral = model(model.zero_params(1)).landmarks[0].double().numpy()
    v = model.num_vertices

    def strip(upper, lower) -> np.ndarray:
        # wound on the neutral face with the hole held open (the lower contour 5 mm lower): with
        # the lips together, as in the open model's neutral, the strip is degenerate and its
        # winding arbitrary, and back-face culling would then drop random fillers
        opened = neutral.copy()
        opened[list(lower[1:-1]), 1] -= 0.005
        return facing_viewer(strip_triangles(np.array(upper), np.array(lower)), opened)

    eyes = [strip(u, lo) for u, lo in (RIGHT_EYE, LEFT_EYE)]
    mouth = strip(*MOUTH)
    all_faces = np.concatenate([faces, eyes[0] + v, eyes[1] + v, mouth + v])
    shade = np.ones(len(all_faces), np.float32)
    shade[len(all_faces) - len(mouth):] = MOUTH_SHADE
    device = model.faces.device
    return RenderTopology(torch.as_tensor(all_faces, device=device), torch.as_tensor(shade, device=device), True, len(faces))
