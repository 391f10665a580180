"""Build the face scene in Blender (bpy as a module) and write it with Blender's own FBX exporter.

Run only as a subprocess by core.export.fbx, so that bpy never loads in the app or CLI process:

    python -P core/export/blender_fbx_worker.py SCENE.npz OUT.fbx

(-P keeps the script's folder off sys.path, where the exporters' module names would shadow others.)

It imports nothing from EmoCap (only NumPy and bpy), so starting it does not import torch; bpy is
imported inside the functions, so importing this module (core's import checks do) loads nothing.
SCENE.npz holds a core.export.rig FaceRig + RigAnimation (see core.export.fbx.scene_arrays).

The Blender scene: an armature object "EmoCapRig" (bones root, neck, jaw, eye_left, eye_right at
the rest joints, each pointing along model +y with roll 0, so every bone's rest frame is the model
frame and a pose bone's rotation is the model's joint rotation unchanged; the root bone's location
is the head translation) rotated +90 degrees about x, which turns model space (y up) into
Blender's z up; a mesh object "EmoCapFace" parented to it with the neutral mesh (model space
coordinates), one shape key per expression (relative to "Basis"), one vertex group per joint with
the skinning weights and an Armature modifier (linear blend skinning, after the shape keys, as in
the model). Keys sit on Blender frames equal to the video frame numbers; the scene's frame rate is
the clip's (fractional rates as fps / fps_base, e.g. 24000 / 1001). In the FBX file every time is
shifted by the take's timecode (:func:`timecode_on_export`): video frame N's keys sit at
(timecode frames + N) / rate seconds, and the file's time span is that of the exported frames.

The FBX is written with axis_up Y, axis_forward -Z: the exporter's y-up conversion undoes the
armature's +90 degrees, so in the FBX file the mesh, bones and keys are in model space exactly
(metres: UnitScaleFactor 100, i.e. 1 unit = 1 m), no transform baked into the vertices. Every
frame of the range is keyed (bake with simplification off) unless SCENE.npz has ``reduce``
(see :func:`reduce_keys_on_export`); shape-key curves hold weights x 100 (FBX's DeformPercent),
as every FBX does.
"""

from __future__ import annotations

import logging
import math
import sys
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import bpy

log = logging.getLogger("emocap.blender_fbx_worker")
LINEAR = 1  # enum value of 'LINEAR' in Keyframe.interpolation (CONSTANT 0, LINEAR 1, BEZIER 2)
BONE_LENGTH_M = 0.03


def frame_rate(fps: float) -> tuple[int, float]:
    """(fps, fps_base) with fps / fps_base == the clip's rate: 24000 / 1001 for 23.976..."""
    exact = Fraction(fps).limit_denominator(1001)
    if abs(float(exact) - fps) <= 1e-9 * fps and exact.numerator <= 32767:
        return exact.numerator, float(exact.denominator)
    whole = max(1, round(fps))
    return whole, whole / fps


def exact_frame_rate(d) -> tuple[int, float]:
    """(fps, fps_base) for Blender's scene: the exact rate SCENE.npz gives (``rate``: numerator,
    denominator), else the float ``fps``."""
    if "rate" in d:
        num, den = (int(x) for x in d["rate"])
        if num <= 32767:  # Blender's fps is a short
            return num, float(den)
    return frame_rate(float(d["fps"]))


def timecode_on_export(d) -> None:
    """Place the file's animation on the timeline of the take's timecode: every key, the animation
    stack's LocalStart/Stop and ReferenceStart/Stop and the GlobalSettings' TimeSpanStart/Stop move
    by ``timecode_offset`` frames (from 00:00:00:00 to video frame 0) at the exact rate, so that
    video frame N's key sits at (offset + N) / rate seconds. Blender keeps its frames at the video
    frame numbers (its frames stop at 1048574, a timecode of 9.7 hours at 30 fps): only the FBX
    times move, in FBX ticks (46186158000 per second), computed exactly. TimeMode says NTSC
    drop-frame (8) for a drop-frame timecode at 29.97 fps, so FBX SDK applications show its
    timecode as the take does."""
    from io_scene_fbx import export_fbx_bin, fbx_utils

    num, den = (int(x) for x in d["rate"])
    ticks = int(fbx_utils.FBX_KTIME)
    offset = int(d.get("timecode_offset", 0))
    shift = round(Fraction(offset * ticks * den, num))
    first, last = (int(x) for x in d["frame_index"][[0, -1]])
    span = [round(Fraction((offset + f) * ticks * den, num)) for f in (first, last)]
    drop_frame = bool(d.get("drop_frame", False)) and Fraction(num, den) == Fraction(30000, 1001)

    set_keyframes = fbx_utils.AnimationCurveNodeWrapper.set_keyframes

    def shifted(self, keyframe_times, keyframe_values):
        set_keyframes(self, np.asarray(keyframe_times, np.int64) + shift, keyframe_values)

    fbx_utils.AnimationCurveNodeWrapper.set_keyframes = shifted
    to_ktime = export_fbx_bin.convert_sec_to_ktime  # the stack's and take's start and stop only
    export_fbx_bin.convert_sec_to_ktime = lambda seconds: to_ktime(seconds) + shift
    props_set = export_fbx_bin.elem_props_set
    replace = {b"TimeSpanStart": span[0], b"TimeSpanStop": span[1], **({b"TimeMode": 8} if drop_frame else {})}

    def props_set_timed(elem, ptype, name, value=None, *args, **kwargs):
        props_set(elem, ptype, name, replace.get(name, value), *args, **kwargs)

    export_fbx_bin.elem_props_set = props_set_timed


def keyed_curve(action, owner, data_path: str, index: int, frames: np.ndarray, values: np.ndarray) -> None:
    """One F-Curve with a linear key per frame."""
    curve = action.fcurve_ensure_for_datablock(owner, data_path, index=index)
    points = curve.keyframe_points
    points.add(len(frames))
    co = np.empty(2 * len(frames), np.float32)
    co[0::2] = frames
    co[1::2] = values
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(len(frames), LINEAR, np.int32))
    curve.update()


def new_action(owner, name: str):
    import bpy

    owner.animation_data_create()
    action = bpy.data.actions.new(name)
    owner.animation_data.action = action
    return action


def build_mesh(d) -> bpy.types.Object:
    import bpy

    neutral, faces = d["neutral"].astype(np.float32), d["faces"].astype(np.int32)
    mesh = bpy.data.meshes.new("EmoCapFace")
    mesh.vertices.add(len(neutral))
    mesh.vertices.foreach_set("co", neutral.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()
    face = bpy.data.objects.new("EmoCapFace", mesh)
    bpy.context.scene.collection.objects.link(face)
    face.shape_key_add(name="Basis", from_mix=False)
    low, high = (float(x) for x in d["slider_range"])
    for name, delta in zip(d["expression_names"].tolist(), d["expression_deltas"]):
        block = face.shape_key_add(name=name, from_mix=False)
        block.slider_min, block.slider_max = low, high
        block.points.foreach_set("co", (neutral + delta).astype(np.float32).ravel())
    mesh.shape_keys.use_relative = True
    return face


def build_armature(d) -> bpy.types.Object:
    import bpy

    arm = bpy.data.armatures.new("EmoCapSkeleton")
    rig = bpy.data.objects.new("EmoCapRig", arm)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    rig.select_set(True)
    bpy.ops.object.mode_set(mode="EDIT")
    bones = []
    for name, parent, head in zip(d["joint_names"].tolist(), d["joint_parents"].tolist(), d["rest_joints"]):
        bone = arm.edit_bones.new(name)
        bone.head = head.tolist()
        bone.tail = (head + np.array([0.0, BONE_LENGTH_M, 0.0])).tolist()
        bone.roll = 0.0
        if parent >= 0:
            bone.parent = bones[parent]
            bone.use_connect = False
        bones.append(bone)
    bpy.ops.object.mode_set(mode="OBJECT")
    rig.rotation_mode = "XYZ"
    rig.rotation_euler = (math.pi / 2, 0.0, 0.0)  # model y up -> Blender z up
    for pose_bone in rig.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    return rig


def skin(face, rig, d) -> None:
    weights = d["skinning_weights"]
    for j, name in enumerate(d["joint_names"].tolist()):
        group = face.vertex_groups.new(name=name)
        column = weights[:, j]
        for w in np.unique(column[column > 0]).tolist():
            group.add(np.nonzero(column == w)[0].tolist(), w, "REPLACE")
    face.parent = rig
    modifier = face.modifiers.new("Armature", "ARMATURE")
    modifier.object = rig
    modifier.use_vertex_groups = True
    modifier.use_bone_envelopes = False
    modifier.use_deform_preserve_volume = False


def animate(face, rig, d) -> None:
    frames = d["frame_index"].astype(np.float64)
    key = face.data.shape_keys
    action = new_action(key, "EmoCapExpressions")
    for e, name in enumerate(d["expression_names"].tolist()):
        keyed_curve(action, key, f'key_blocks["{name}"].value', 0, frames, d["weights"][:, e])
    action = new_action(rig, "EmoCapHead")
    quats, translation = d["quaternions"], d["translation"]
    for j, name in enumerate(d["joint_names"].tolist()):
        for i in range(4):
            keyed_curve(action, rig, f'pose.bones["{name}"].rotation_quaternion', i, frames, quats[:, j, i])
    for i in range(3):
        keyed_curve(action, rig, f'pose.bones["{d["joint_names"][0]}"].location', i, frames, translation[:, i])


def reduce_keys_on_export(weight_tol: float, degrees: float, metres: float) -> None:
    """Make Blender's FBX exporter keep only the keys core/export/keyreduce.py chooses on its
    per-frame samples, per curve: shape keys (DeformPercent, weights x 100) within ``weight_tol``,
    bone Euler rotations (degrees) each within ``degrees / 3`` (so the rotation angle is within
    ``degrees``), translations within ``metres`` (the file's
    unit is the metre; were it smaller, the bound only gets tighter). The exporter's own
    simplification (relative, without an error bound) is replaced."""
    import importlib.util
    from pathlib import Path

    from io_scene_fbx import fbx_utils

    spec = importlib.util.spec_from_file_location("emocap_keyreduce", Path(__file__).with_name("keyreduce.py"))
    keyreduce = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = keyreduce  # its dataclass looks its module up there
    spec.loader.exec_module(keyreduce)
    # Euler angles: a third of the tolerance each, so the rotation angle (at most their sum) is within it
    tolerances = {"DeformPercent": 100.0 * weight_tol, "Lcl Rotation": degrees / 3.0, "Lcl Translation": metres,
                  "Lcl Scaling": 1e-6}

    def simplify(self, fac, step, force_keep=False):
        if self._frame_times_array is None:
            return
        tol = tolerances.get(self.fbx_group[0])
        if tol is None:
            return
        for values, mask in zip(self._frame_values_array, self._frame_write_mask_array):
            mask[:] = keyreduce.keep_mask(values, tol)

    fbx_utils.AnimationCurveNodeWrapper.simplify = simplify


def main(scene_npz: str, out_fbx: str) -> int:
    import bpy

    with np.load(scene_npz) as z:
        d = {k: z[k] for k in z.files}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.unit_settings.system = "METRIC"
    scene.unit_settings.scale_length = 1.0
    scene.render.fps, scene.render.fps_base = exact_frame_rate(d)
    scene.frame_start, scene.frame_end = int(d["frame_index"][0]), int(d["frame_index"][-1])
    face = build_mesh(d)
    rig = build_armature(d)
    skin(face, rig, d)
    animate(face, rig, d)
    scene.frame_set(scene.frame_start)
    if "reduce" in d:
        reduce_keys_on_export(*(float(x) for x in d["reduce"]))
    if "rate" in d:
        timecode_on_export(d)
    result = bpy.ops.export_scene.fbx(
        filepath=out_fbx, check_existing=False, use_selection=False, object_types={"ARMATURE", "MESH"},
        use_mesh_modifiers=False, mesh_smooth_type="OFF", add_leaf_bones=False, primary_bone_axis="Y",
        secondary_bone_axis="X", armature_nodetype="NULL", use_armature_deform_only=False,
        bake_anim=True, bake_anim_use_all_bones=True, bake_anim_use_nla_strips=False,
        bake_anim_use_all_actions=False, bake_anim_force_startend_keying=True, bake_anim_step=1.0,
        bake_anim_simplify_factor=0.0, axis_forward="-Z", axis_up="Y", apply_unit_scale=True,
        apply_scale_options="FBX_SCALE_UNITS", global_scale=1.0, bake_space_transform=False, path_mode="AUTO",
    )
    if "FINISHED" not in result:
        log.error("Blender's FBX exporter returned %s", result)
        return 1
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    sys.exit(main(sys.argv[1], sys.argv[2]))
