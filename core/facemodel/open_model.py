"""EmoCap's own open face model: a FLAME-style model on MediaPipe's 478-point mesh, no licence needed.

The model is data the project authors itself, rebuilt deterministically by
``scripts/build_open_model.py`` (the construction: core/facemodel/open_model_authoring.py, the
calibration on photographs: core/facemodel/open_model_calibration.py) and stored in
``resources/open_face_model.npz``. This module is what runtime needs: :func:`load_open_model` reads
that file (:func:`save_open_model` writes it), and the names and landmark contours of the model.

Model space: metres, x toward the performer's left, y up, z toward the viewer (FLAME's frame);
origin between the outer eye corners. Expressions: the 52 ARKit blendshapes in Apple's order
(:data:`ARKIT_NAMES`), weights in [0, 1]; jawOpen at 1 is a 25 degree jaw rotation. The model's
``info`` says what it was built from and how.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from core.atomic import write_bytes_atomic
from core.errors import FaceModelError
from core.facemodel.types import FaceModelData

OPEN_MODEL_PATH = Path(__file__).resolve().parents[2] / "resources" / "open_face_model.npz"
BUILD_COMMAND = "python scripts/build_open_model.py"
MODEL_VERSION = 2

ARKIT_NAMES = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight", "tongueOut",
)

# --- the model's meaning (radians) ---------------------------------------------------------------
JAW_OPEN_RAD = np.radians(25.0)  # jawOpen at weight 1 is this rotation of the jaw joint

# --- MediaPipe contours (performer's left/right) --------------------------------------------------
RIGHT_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)  # outer (33) -> inner (133)
RIGHT_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
LEFT_UPPER_LID = (466, 388, 387, 386, 385, 384, 398)  # outer (263) -> inner (362)
LEFT_LOWER_LID = (249, 390, 373, 374, 380, 381, 382)
RIGHT_BROW_UPPER = (70, 63, 105, 66, 107)  # outer -> inner
RIGHT_BROW_LOWER = (46, 53, 52, 65, 55)
LEFT_BROW_UPPER = (300, 293, 334, 296, 336)
LEFT_BROW_LOWER = (276, 283, 282, 295, 285)
RIGHT_NOSE_WING = (45, 220, 115, 48, 64, 98, 97)
LEFT_NOSE_WING = (275, 440, 344, 278, 294, 327, 326)
# right corner -> left corner
UPPER_LIP_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_LIP_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
UPPER_LIP_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_LIP_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIP_CORNERS = (61, 78, 291, 308)
CHIN_MIDLINE = (18, 200, 199, 175, 152)
JAW_LINE = (172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397)
FACE_SIDES = (234, 454, 93, 323, 127, 356, 162, 389)
NOSE = (1, 2, 4, 5, 19, 94, 195, 197, 6, 168) + RIGHT_NOSE_WING + LEFT_NOSE_WING
FOREHEAD_TOP = (10, 109, 338, 67, 297, 103, 332, 54, 284, 151)
NOSE_BRIDGE = (168, 6, 197, 195)


# ==================================================================================================
# Loading and saving
# ==================================================================================================

_ARRAY_KEYS = (
    "template", "faces", "shape_basis", "expression_basis", "pose_basis", "joint_regressor",
    "skinning_weights", "landmark_faces", "landmark_barycentric", "landmark_ids",
)


@functools.lru_cache(maxsize=4)
def open_model_digest(path: str | Path = OPEN_MODEL_PATH) -> str:
    """The first 16 hex digits of the SHA-256 of the model file: stored with every fit, so that a
    rebuilt model (new shapes under the same MODEL_VERSION) makes the fits made with the old one
    stale. FaceModelError when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise FaceModelError(f"open face model {path} is missing: rebuild it with `{BUILD_COMMAND}`")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_open_model(path: str | Path = OPEN_MODEL_PATH) -> FaceModelData:
    """Read the open face model from ``path`` (built by ``scripts/build_open_model.py``).

    Raises FaceModelError, saying how to rebuild it, when the file is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FaceModelError(f"open face model {path} is missing: rebuild it with `{BUILD_COMMAND}`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in _ARRAY_KEYS}
            name = str(npz["name"])
            names = tuple(str(n) for n in npz["expression_names"])
            bounds = tuple(float(b) for b in npz["expression_bounds"])
            info = json.loads(str(npz["info"]))
        data = FaceModelData(
            name=name,
            template=arrays["template"].astype(np.float32),
            faces=arrays["faces"].astype(np.int64),
            shape_basis=arrays["shape_basis"].astype(np.float32),
            expression_basis=arrays["expression_basis"].astype(np.float32),
            pose_basis=arrays["pose_basis"].astype(np.float32),
            joint_regressor=arrays["joint_regressor"].astype(np.float32),
            skinning_weights=arrays["skinning_weights"].astype(np.float32),
            landmark_faces=arrays["landmark_faces"].astype(np.int64),
            landmark_barycentric=arrays["landmark_barycentric"].astype(np.float32),
            landmark_ids=arrays["landmark_ids"].astype(np.int64),
            expression_names=names,
            expression_bounds=(bounds[0], bounds[1]) if len(bounds) == 2 else None,
            info=info,
        )
        data.validate()
    except FaceModelError:
        raise
    except Exception as err:  # noqa: BLE001 - any damage to the file means the same to the user
        raise FaceModelError(
            f"open face model {path} is unreadable ({type(err).__name__}: {err}): "
            f"rebuild it with `{BUILD_COMMAND}`"
        ) from err
    return data


def save_open_model(data: FaceModelData, path: str | Path) -> None:
    """Write ``data`` atomically as a compressed npz whose bytes depend only on the arrays (fixed
    zip dates)."""
    data.validate()
    entries = {key: np.ascontiguousarray(getattr(data, key)) for key in _ARRAY_KEYS}
    for key in ("template", "shape_basis", "expression_basis", "pose_basis", "joint_regressor",
                "skinning_weights", "landmark_barycentric"):
        entries[key] = entries[key].astype(np.float32)
    for key in ("faces", "landmark_faces", "landmark_ids"):
        entries[key] = entries[key].astype(np.int64)
    entries["name"] = np.array(data.name)
    entries["expression_names"] = np.array(data.expression_names)
    entries["expression_bounds"] = np.array(data.expression_bounds or (), np.float64)
    entries["info"] = np.array(json.dumps(data.info, sort_keys=True))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = io.BytesIO()
    with zipfile.ZipFile(content, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(entries):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, entries[key], allow_pickle=False)
            item = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            item.compress_type = zipfile.ZIP_DEFLATED
            item.external_attr = 0o644 << 16
            archive.writestr(item, buffer.getvalue(), compresslevel=9)
    write_bytes_atomic(path, content.getvalue())
