"""ARKit-52 curves as CSV in the column layout of Epic's Live Link Face app:
``Timecode,BlendShapeCount,EyeBlinkLeft,...,TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,
LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll`` (BlendShapeCount 61).
Timecode: when the take has one (the recording's tmcd track or tag, or ``--start-timecode``), each row's
is the timecode of its video frame, ``HH:MM:SS:FF.000`` (``HH:MM:SS;FF.000`` drop-frame at 29.97 and
59.94: SMPTE's separator, which parsers of timecode read as drop-frame; ``.000``: the sample sits on
the frame, no subframe), FF counted at the nominal rate (0-23 at 23.976). Without one (takes made
before timecodes were read, recordings without one) it is ``HH:MM:SS:FF.mmm`` from the frame's time
since the clip's start (mmm: milliseconds within that frame), as before. Head and eye angles
are radians (yaw about y, pitch about x, roll about z of the model's axis-angle rotation).
Frames without a face are gaps: empty cells (the Timecode and BlendShapeCount are still written).
Only open-model takes have ARKit curves; a FLAME take's are mapped onto them with ``curves="arkit"``
(core/export/arkit_from_flame.py). With a retarget map, its targets must be the 52 ARKit names,
e.g. resources/retarget/arkit_identity.yaml edited for gains and clamps."""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from core.errors import ExportError
from core.export.base import GAP_POLICY, ExportRequest, ExportResult, write_file_atomic
from core.export.registry import register
from core.facemodel.open_model import ARKIT_NAMES

LLF_NAMES = tuple(n[0].upper() + n[1:] for n in ARKIT_NAMES)
ANGLE_NAMES = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
               "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER = ("Timecode", "BlendShapeCount") + LLF_NAMES + ANGLE_NAMES


def timecode(seconds: float, fps: float) -> str:
    """HH:MM:SS:FF.mmm (FF: frame within the second at ``fps``, mmm: milliseconds within that frame)."""
    whole = math.floor(seconds)
    frac = seconds - whole
    frame = math.floor(frac * fps + 1e-9)
    sub = int(round((frac - frame / fps) * 1000))
    h, rem = divmod(int(whole), 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{frame:02d}.{max(sub, 0):03d}"


def yaw_pitch_roll(axis_angle: np.ndarray) -> np.ndarray:
    """N x 3 axis-angle to N x 3 (yaw, pitch, roll) radians, R = Ry(yaw) Rx(pitch) Rz(roll)."""
    theta = np.linalg.norm(axis_angle, axis=1, keepdims=True)
    k = np.where(theta > 1e-12, axis_angle / np.maximum(theta, 1e-12), 0.0)
    kx, ky, kz = k[:, 0], k[:, 1], k[:, 2]
    c, s = np.cos(theta[:, 0]), np.sin(theta[:, 0])
    t = 1 - c
    r02 = t * kx * kz + s * ky
    r22 = c + t * kz * kz
    r12 = t * ky * kz - s * kx
    r10 = t * kx * ky + s * kz
    r11 = c + t * ky * ky
    return np.stack([np.arctan2(r02, r22), np.arcsin(np.clip(-r12, -1, 1)), np.arctan2(r10, r11)], axis=1)


@register("arkit_csv")
def arkit_csv(req: ExportRequest) -> ExportResult:
    if req.retarget is not None and list(req.expression_names) != list(ARKIT_NAMES):
        raise ExportError(f"the Live Link Face CSV has the 52 ARKit columns; the retarget map '{req.retarget.name}' "
                          f"gives {len(req.expression_names)} other channels ({', '.join(req.expression_names[:3])}, ...): "
                          "use a map onto the ARKit names, or a curves format")
    if req.model != "open" or list(req.expression_names) != list(ARKIT_NAMES):
        raise ExportError(f"{req.take_dir} was fitted with the {req.model} model, which has no ARKit curves; "
                          "map them onto ARKit's with --curves arkit, use curves_npz/curves_json/curves_csv, "
                          "or analyse with --model open")
    fit = req.fit
    angles = np.concatenate([yaw_pitch_roll(fit.rotation.astype(np.float64)),
                             yaw_pitch_roll(fit.eyes[:, :3].astype(np.float64)),
                             yaw_pitch_roll(fit.eyes[:, 3:].astype(np.float64))], axis=1)
    values = np.concatenate([fit.expression.astype(np.float64), angles], axis=1)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    start = req.timecode
    for r in range(req.num_frames):
        cells = ["" if not fit.has_face[r] or math.isnan(x) else f"{x:.6f}" for x in values[r].tolist()]
        label = timecode(float(req.timestamps[r]), req.fps) if start is None else f"{start.at(int(req.frame_index[r]))}.000"
        w.writerow([label, 61] + cells)
    write_file_atomic(req.out, buf.getvalue().encode())
    return ExportResult([req.out], req.num_frames, GAP_POLICY, req.gap_frames)
