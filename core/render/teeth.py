"""Teeth for a face model that has none: two arched bands placed behind the lips of the fitted
identity, the upper one carried by the skull and the lower one by the jaw.

Neither the open model nor FLAME has teeth, so an open mouth is a hole. Both the reconstruction
render (core/render/reconstruction.py, which the emotion recognisers judge) and the app's 3D
viewport draw these bands in it, so a laugh shows teeth as the performer's does.

The bands are built in the identity's neutral model space (metres; x to the performer's left, y
up, z forward): 17 columns over 1.04 x the inner mouth width, curving 12 mm back toward the ends;
the upper incisal edge 4.5 mm below the neutral upper inner lip, so relaxed parted lips show a
little of it and a smile shows more; the lower incisors 2 mm behind it and overlapping it by 2 mm;
10 and 9 mm crowns with 4 mm of gum beyond. :meth:`TeethRig.place` moves the upper band with the
skull (the head joint) and the lower one with the jaw: the rigid motion that best fits the fitted
chin and jaw-line landmarks, so it follows the jaw joint and the open model's jaw blendshapes alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.facemodel.open_model import JAW_LINE, LOWER_LIP_INNER, UPPER_LIP_INNER
from core.facemodel.types import JOINT_NAMES, FaceModelOutput

JAW_POINTS = tuple(dict.fromkeys((200, 199, 175, 152) + JAW_LINE))  # landmarks that move rigidly with the jaw
# The upper teeth follow this joint's world transform: FLAME's head joint ("neck"); the open model
# keeps the neck at zero and skins the skull to the root, so there it is the root's motion.
SKULL_JOINT = JOINT_NAMES.index("neck")
TEETH_COLUMNS = 17
TEETH_HALF_WIDTH = 0.52  # of the mouth width (inner-lip corner to corner)
TEETH_ARCH_BACK = 0.012  # how far the arch curves back at its ends
TEETH_SMILE_ARC = 0.0015  # how much higher the incisal edge is at the ends
UPPER_EDGE_BELOW_LIP = 0.0045  # upper incisal edge below the neutral upper inner lip
TEETH_BEHIND_LIPS = 0.004
UPPER_CROWN, LOWER_CROWN, GUM = 0.010, 0.009, 0.004
OVERBITE, OVERJET = 0.002, 0.002


def teeth_colours(shade: np.ndarray, gum: np.ndarray, tooth_rgb: np.ndarray, gum_rgb: np.ndarray,
                  shadow_rgb: np.ndarray) -> np.ndarray:
    """N x 3 colours of N teeth points (vertices, or pixels with the attributes interpolated) from
    their shade factor and gum weight (N each, TeethRig.shade and .gum): the tooth's colour turning
    into the gum's along the gum weight, darkened toward ``shadow_rgb`` as the shade falls."""
    rgb = (1.0 - gum[:, None]) * tooth_rgb + gum[:, None] * gum_rgb
    return shade[:, None] * rgb + (1.0 - shade[:, None]) * shadow_rgb


def kabsch(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigid motions (B x 3 x 3 rotations, B x 3 translations) best mapping K x 3 ``source`` points
    onto each of the B x K x 3 ``target`` sets (least squares)."""
    mu_s = source.mean(axis=0)
    mu_t = target.mean(axis=1)
    cov = np.einsum("ki,bkj->bij", source - mu_s, target - mu_t[:, None])
    u, _, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(np.einsum("bij,bjk->bik", u, vt)))
    fix = np.ones((len(target), 3))
    fix[:, 2] = d
    rot = np.einsum("bji,bj,bkj->bik", vt, fix, u)  # V diag(1, 1, d) U^T
    return rot, mu_t - np.einsum("bij,j->bi", rot, mu_s)


@dataclass(frozen=True)
class TeethRig:
    """The two bands of one identity, T = 6 x TEETH_COLUMNS vertices: upper band's rows (incisal
    edge, crown end, gum end), then the lower band's.

    upper, lower: 3C x 3 neutral model-space vertices (metres). skull_rest: 3, the skull joint at
    rest; neutral_jaw: K x 3, the JAW_POINTS landmarks of the neutral face. faces: F x 3 triangles
    into the T vertices. Per vertex (T each): shade, a brightness factor (the arch turns away from
    the light toward the corners, the lower row sits in the upper lip's shadow, crowns darken
    toward the gum); gum, 1 on the gum line; arc_mm, the distance along the arch from the midline
    (for the gaps between teeth); is_lower."""

    upper: np.ndarray
    lower: np.ndarray
    skull_rest: np.ndarray
    neutral_jaw: np.ndarray
    faces: np.ndarray
    shade: np.ndarray
    gum: np.ndarray
    arc_mm: np.ndarray
    is_lower: np.ndarray

    @classmethod
    def of_neutral(cls, neutral: FaceModelOutput) -> TeethRig:
        """The rig of the identity whose neutral face (no expression, no pose; batch of 1) is
        ``neutral``."""
        lm = neutral.landmarks[0].double().numpy()
        upper_lip, lower_lip = lm[list(UPPER_LIP_INNER)], lm[list(LOWER_LIP_INNER)]
        middle = len(upper_lip) // 2
        centre = (upper_lip[middle] + lower_lip[middle]) / 2
        width = np.linalg.norm(upper_lip[-1] - upper_lip[0])
        x = np.linspace(-1.0, 1.0, TEETH_COLUMNS)
        across = centre[0] + x * TEETH_HALF_WIDTH * width
        front_z = centre[2] - TEETH_BEHIND_LIPS - TEETH_ARCH_BACK * x**2
        edge_y = upper_lip[middle, 1] - UPPER_EDGE_BELOW_LIP + TEETH_SMILE_ARC * x**2

        def band(levels) -> np.ndarray:
            return np.concatenate([np.stack([across, edge_y + dy, front_z + dz], axis=1) for dy, dz in levels])

        n = TEETH_COLUMNS
        quads = [(base + level * n + i, base + level * n + i + 1) for base in (0, 3 * n)
                 for level in range(2) for i in range(n - 1)]
        side = 1.0 - 0.6 * x**2
        step = np.hypot(np.diff(across), np.diff(front_z)) * 1000.0
        arc = np.concatenate([[0.0], np.cumsum(step)])
        arc -= arc[n // 2]
        return cls(
            upper=band([(0.0, 0.0), (UPPER_CROWN, 0.0), (UPPER_CROWN + GUM, -0.001)]),
            lower=band([(OVERBITE, -OVERJET), (OVERBITE - LOWER_CROWN, -OVERJET - 0.001),
                        (OVERBITE - LOWER_CROWN - GUM, -OVERJET - 0.002)]),
            skull_rest=neutral.rest_joints[0, SKULL_JOINT].double().numpy(),
            neutral_jaw=lm[list(JAW_POINTS)],
            faces=np.array([t for a, b in quads for t in ((a, a + n, b), (b, a + n, b + n))], np.int64),
            shade=np.concatenate([side, 0.8 * side, 0.7 * side, 0.82 * side, 0.7 * side, 0.6 * side]),
            gum=np.tile(np.repeat([0.0, 0.0, 1.0], n), 2),
            arc_mm=np.tile(arc, 6),
            is_lower=np.repeat([False, True], 3 * n),
        )

    @property
    def num_vertices(self) -> int:
        return len(self.upper) + len(self.lower)

    def place(self, output: FaceModelOutput) -> np.ndarray:
        """B x T x 3 teeth vertices (float64, the space of ``output``'s vertices) of the B posed
        faces in ``output`` (the same identity)."""
        skull_rot = output.joint_rotations[:, SKULL_JOINT].double().numpy()
        skull_pos = output.joints[:, SKULL_JOINT].double().numpy()
        upper = np.einsum("bij,kj->bki", skull_rot, self.upper - self.skull_rest) + skull_pos[:, None]
        jaw_rot, jaw_t = kabsch(self.neutral_jaw, output.landmarks[:, list(JAW_POINTS)].double().numpy())
        lower = np.einsum("bij,kj->bki", jaw_rot, self.lower) + jaw_t[:, None]
        return np.concatenate([upper, lower], axis=1)
