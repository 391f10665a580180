"""Indices into MediaPipe's 478-point face mesh (468 surface points + 2 x 5 iris points).

"Left" and "right" are the performer's own sides, as animators and ARKit name them: the performer's
left eye appears on the right of an unmirrored image.
"""

from __future__ import annotations

NUM_LANDMARKS = 478
NUM_SURFACE_LANDMARKS = 468

RIGHT_IRIS_CENTER = 468
LEFT_IRIS_CENTER = 473
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)

RIGHT_EYE_OUTER = 33
RIGHT_EYE_INNER = 133
LEFT_EYE_INNER = 362
LEFT_EYE_OUTER = 263

# Each eye's opening, corner to corner along the upper lid and back along the lower (MediaPipe's
# FACEMESH_RIGHT_EYE / FACEMESH_LEFT_EYE points; "right" is the subject's right).
RIGHT_EYE_LIDS = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE_LIDS = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)

NOSE_TIP = 1
MOUTH_RIGHT = 61
MOUTH_LEFT = 291
UPPER_LIP_TOP = 0
LOWER_LIP_BOTTOM = 17

# The face's outline, clockwise in the image from the top of the forehead (MediaPipe's FACE_OVAL).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

# Points that move with the skull but hardly with expression: forehead, nose bridge, eye corners,
# cheekbones, temples. Used for the rigid head pose.
RIGID = (
    10, 151, 9, 8, 109, 338, 67, 297,
    168, 6, 197, 195, 5, 4,
    33, 133, 362, 263,
    234, 454, 93, 323, 116, 345, 123, 352,
    127, 356, 162, 389, 21, 251, 54, 284,
)
