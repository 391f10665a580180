"""Per-frame rigid initialisation: head rotation and camera from a similarity alignment of the
model's neutral landmarks to the observed ones."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from core.fit.camera import flip_matrix
from core.observe import landmark_ids as ids
from core.observe.headpose import similarity_align_many


def rigid_rows(landmark_ids: np.ndarray) -> np.ndarray:
    """Rows of a model's landmarks that are rigid skull points (see landmark_ids.RIGID)."""
    rigid = set(ids.RIGID)
    rows = np.array([i for i, lid in enumerate(landmark_ids) if int(lid) in rigid], dtype=np.int64)
    return rows if len(rows) >= 4 else np.arange(len(landmark_ids))


def initial_rigid(
    model_landmarks: np.ndarray, root_joint: np.ndarray, observed: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """model_landmarks: L x 3 neutral model landmarks (metres), root_joint: (3,) the joint the head
    rotates about, observed: N x L x 3 image landmarks (only frames with a face). Returns rotation
    N x 3 (axis-angle, model space) and camera N x 4 (see camera.py)."""
    flip = flip_matrix()
    source = model_landmarks[rows] @ flip.T
    r_img, t_img, scale = similarity_align_many(source, observed[:, rows].astype(np.float64))
    r_model = flip @ r_img @ flip
    # image = s F (R (v - j) + j) + t  must equal  s F R v + t_img
    t = t_img - scale[:, None] * ((root_joint - r_model @ root_joint) @ flip.T)
    rotations = Rotation.from_matrix(r_model).as_rotvec() if len(observed) else np.zeros((0, 3))
    cameras = np.concatenate([np.log(scale)[:, None], t], axis=1)
    return rotations.astype(np.float32).reshape(-1, 3), cameras.astype(np.float32).reshape(-1, 4)
