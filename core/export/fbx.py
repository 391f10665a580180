"""FBX through Blender's own exporter (bpy 5.0.1 as a module), run in a subprocess.

Content: the neutral mesh (the take's identity applied, expression zero) "EmoCapFace"; one shape
key per expression (the 52 ARKit names for the open model, exp000.. for FLAME; with a retarget map
one per target channel, core.export.retarget), its weight keyed on every frame; a skeleton "EmoCapRig" with FLAME's joint chain (root, neck, jaw, eye_left,
eye_right) skinning the mesh, the head's motion on the root bone (rotation keys, and translation
keys from core.export.rig.head_translation) and the neck, jaw and eye rotations on their bones.
Keys sit at the video frame numbers, the scene rate is the clip's exactly (24000/1001 for 23.976).
With a timecode (the recording's, or ``--start-timecode``) the whole animation is placed on the
timecode's timeline: video frame N's keys sit at (T + N) / rate seconds, T the timecode's frame count
from 00:00:00:00 (01:00:00:00 at 24000/1001 is T = 86400, 3603.6 s), and the file's time span
(GlobalSettings TimeSpanStart/Stop, the animation stack's LocalStart/Stop) is that of the exported
frames; a drop-frame timecode at 29.97 sets TimeMode to NTSC drop-frame (8).

Units and axes: metres (the file's UnitScaleFactor is 100: 1 unit = 1 m), y up, z toward the
viewer, right-handed: model space unchanged, no transform baked into vertices. Blender's importer
turns this into its own z-up space (model (x, y, z) -> Blender (x, -z, y)).

Exactness: shape keys are linear offsets from the neutral mesh, applied before skinning, and the
bones are linear blend skinning with the model's weights, which is the model's own formula. The
open model has no pose correctives, so posed vertices match the model to float precision. FLAME's
pose correctives (offsets driven non-linearly by the neck/jaw/eye rotations) cannot be shape keys
with keyed weights and are left out; ``ExportResult.extra["max_corrective_m"]`` says how far they
would have moved any vertex in the exported frames. Expression weights must lie within
[-10, 10] (Blender's shape-key range).

Importers: ufbx (and FBX SDK readers) take the rate from TimeMode / CustomFrameRate exactly.
Blender 5.0.1's own FBX importer sets the scene to 24 / 1.001 fps but converts key times with the
integer 24 (import_fbx.py, blen_read_animations), so in Blender a 23.976 fps clip's frame N sits at
frame N * 1.001 (integer rates are unaffected); the values there are exact.

Key reduction (``--reduce``, core.export.keyreduce): Blender's exporter samples every frame; the
worker then keeps, per F-Curve of the file, the keys core.export.keyreduce chooses on those samples
(shape keys: the weight tolerance x 100, as DeformPercent; bone rotations: each Euler angle within
a third of the tolerance in degrees, so the rotation angle is within it; the head translation: within the tolerance in metres), interpolated
linearly between kept keys (the exporter writes linear keys). Without it every frame is keyed.

Frames without a face hold the last pose with a face (HOLD_POLICY). Written atomically
(core.export.native_file); bpy missing gives an ExportError that says how to install it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from core.errors import ExportError
from core.export.base import HOLD_POLICY, ExportRequest, ExportResult
from core.export.native_file import native_output
from core.export.registry import register
from core.export.rig import FaceRig, RigAnimation, axis_angle_to_quaternion, build_rig

log = logging.getLogger(__name__)

WORKER = Path(__file__).with_name("blender_fbx_worker.py")
SHAPE_KEY_RANGE = 10.0  # Blender clamps shape-key values to [-10, 10]
TIMEOUT_S_PER_FRAME = 0.5
BPY_MISSING = ("FBX export needs Blender as a module: install it with "
               "`.venv/bin/python -m pip install bpy==5.0.1` (821 MB, needs numpy<2)")
BPY_MISSING_IN_BUNDLE = ("FBX export needs Blender as a module (bpy), which this desktop bundle was built without "
                         "(packaging/build.sh --without-fbx): use a bundle built with it or the full install "
                         "(scripts/setup.sh), or export glTF, USD, Alembic or the ARKit CSV")


def bpy_missing_message() -> str:
    """Why FBX cannot be written here, and what to install."""
    return BPY_MISSING_IN_BUNDLE if getattr(sys, "frozen", False) else BPY_MISSING


def bpy_available() -> bool:
    """Whether ``import bpy`` would find Blender's module (checked without importing it)."""
    return importlib.util.find_spec("bpy") is not None


def scene_arrays(rig: FaceRig, anim: RigAnimation) -> dict[str, np.ndarray]:
    """What the worker reads (see core.export.blender_fbx_worker)."""
    extreme = float(np.abs(anim.weights).max()) if anim.weights.size else 0.0
    if extreme > SHAPE_KEY_RANGE:
        raise ExportError(f"an expression weight reaches {extreme:.2f}; FBX shape keys (Blender) hold "
                          f"weights within +-{SHAPE_KEY_RANGE:g} only")
    low = -SHAPE_KEY_RANGE if (anim.weights < 0).any() else 0.0
    high = 1.0 if extreme <= 1.0 else SHAPE_KEY_RANGE
    return {
        "neutral": rig.neutral, "faces": rig.faces, "expression_names": np.array(rig.expression_names, dtype=str),
        "expression_deltas": rig.expression_deltas, "joint_names": np.array(rig.joint_names, dtype=str),
        "joint_parents": np.array(rig.joint_parents, np.int64), "rest_joints": rig.rest_joints,
        "skinning_weights": rig.skinning_weights, "frame_index": anim.frame_index, "fps": np.float64(anim.fps),
        "weights": anim.weights, "quaternions": axis_angle_to_quaternion(anim.joint_rotations),
        "translation": anim.translation, "slider_range": np.array([low, high], np.float64),
        **reduction_arrays(anim), **timing_arrays(anim),
    }


def timing_arrays(anim: RigAnimation) -> dict[str, np.ndarray]:
    """``rate`` (numerator, denominator: the exact frame rate), ``timecode_offset`` (frames from
    00:00:00:00 to video frame 0) and ``drop_frame`` for the worker."""
    rate = anim.rate if anim.rate is not None else Fraction(anim.fps).limit_denominator(1001)
    return {"rate": np.array([rate.numerator, rate.denominator], np.int64),
            "timecode_offset": np.int64(anim.timecode_offset),
            "drop_frame": np.bool_(anim.timecode is not None and anim.timecode.drop_frame)}


def reduction_arrays(anim: RigAnimation) -> dict[str, np.ndarray]:
    """``reduce``: (weight tolerance, degrees, metres) for the worker, when keys are reduced."""
    r = anim.reduction
    return {} if r is None else {"reduce": np.array([r.tolerance, r.degrees, r.metres], np.float64)}


def run_worker(scene_npz: Path, out: Path, frames: int) -> None:
    """Run Blender in a fresh interpreter; ExportError with its last error lines when it fails.
    On any interruption the worker is killed before this returns."""
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    cmd = [sys.executable, "-P", str(WORKER), str(scene_npz), str(out)]  # -P: keep core/export off sys.path
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=60 + TIMEOUT_S_PER_FRAME * frames)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        tail = " | ".join(line for line in (stderr or stdout).strip().splitlines()[-3:])
        raise ExportError(f"Blender could not write {out.name} (exit {proc.returncode}): {tail}")
    log.debug("blender fbx worker: %s", stdout.strip().splitlines()[-1:] if stdout else "")


@register("fbx")
def fbx(req: ExportRequest) -> ExportResult:
    if not bpy_available():
        raise ExportError(bpy_missing_message())
    rig, anim = build_rig(req)
    arrays = scene_arrays(rig, anim)
    with native_output(req.out) as scratch:
        scene_npz = scratch.with_name("scene.npz")
        np.savez(scene_npz, **arrays)
        run_worker(scene_npz, scratch, len(anim))
    return ExportResult([req.out], req.num_frames, HOLD_POLICY, req.gap_frames,
                        extra={"max_corrective_m": rig.max_corrective_m, "model": rig.model_name})
