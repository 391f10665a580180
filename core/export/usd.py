"""USD (.usda text, .usdc or .usd binary crate) with UsdSkel blend shapes and a skeleton (usd-core).

Layout (default prim /EmoCap, a SkelRoot):
  /EmoCap/Skel        Skeleton: joints root, root/neck, root/neck/jaw, root/neck/eye_left,
                      root/neck/eye_right (FLAME's chain) at the rest joints; rest and bind
                      transforms are pure translations; skel:animationSource -> Anim.
  /EmoCap/Skel/Anim   SkelAnimation: blendShapes (the expression names), blendShapeWeights,
                      joint rotations and translations time-sampled once per frame (the root's
                      translation is its rest position + the head translation of
                      core.export.rig.head_translation), scales constant 1.
  /EmoCap/Face        Mesh: the neutral mesh (the take's identity applied, expression zero),
                      skinned (primvars:skel:jointIndices / jointWeights, the model's weights),
                      one BlendShape child per expression (offsets at weight 1, all points; per
                      target channel with a retarget map, core.export.retarget).
Time codes are frame numbers and timeCodesPerSecond = framesPerSecond = the clip's exact rate (as a
double: 24000/1001 = 23.976023976...), so time code N is N / rate seconds; start/endTimeCode bound
the exported range. Without a timecode the time codes are the video frame numbers; with one (the
recording's, or ``--start-timecode``) they are the frame numbers on the timecode's timeline, the
timecode's frame count from 00:00:00:00 plus the video frame (01:00:00:00 at 24 fps: video frame 0
at time code 86400), and the layer's customLayerData records ``timecode`` (of the first exported
frame, e.g. "01:00:00;00"), ``timecodeRate`` ("30000/1001") and ``dropFrame``. With key reduction
(``--reduce``) only the kept keys get time samples (:func:`sample_masks`); USD interpolates linearly
between them (quaternions by slerp).

Units and axes: metersPerUnit 1 (metres), upAxis Y, right-handed, +z toward the viewer: model
space unchanged. Blender's USD importer turns y up into its z up (model (x, y, z) -> Blender
(x, -z, y)).

Exactness: UsdSkel applies blend shapes before linear blend skinning, as the model does, so the
open model is reproduced to float32 precision; FLAME's pose correctives cannot be expressed and are
left out (``extra["max_corrective_m"]``). Frames without a face hold the last pose with a face
(HOLD_POLICY). Written atomically (core.export.native_file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import ExportError
from core.export.base import HOLD_POLICY, ExportRequest, ExportResult
from core.export.native_file import native_output
from core.export.registry import register
from core.export.rig import FaceRig, RigAnimation, axis_angle_to_quaternion, build_rig

SUFFIXES = (".usda", ".usdc", ".usd")


def joint_paths(rig: FaceRig) -> list[str]:
    """UsdSkel joint paths: each joint's ancestors' names joined by '/' (root, root/neck, ...)."""
    paths: list[str] = []
    for name, parent in zip(rig.joint_names, rig.joint_parents):
        paths.append(name if parent < 0 else f"{paths[parent]}/{name}")
    return paths


def influences(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """V x J weights -> (V*k joint indices int32, V*k weights float32, k) with k the most joints
    any vertex uses (largest first, unused slots 0)."""
    order = np.argsort(-weights, axis=1, kind="stable")
    sorted_w = np.take_along_axis(weights, order, axis=1)
    k = max(1, int((sorted_w > 0).sum(axis=1).max()))
    idx, w = order[:, :k].astype(np.int32), sorted_w[:, :k].astype(np.float32)
    idx[w == 0] = 0
    return idx.ravel(), w.ravel(), k


def sample_masks(anim: RigAnimation, quats: np.ndarray, root: np.ndarray) -> dict[str, np.ndarray]:
    """Frames that get a time sample, per attribute: all, or with key reduction
    (core.export.keyreduce) the kept keys. UsdSkel stores all blend-shape weights in one array
    attribute and all joints' rotations in another, so their keys are shared: weights within the
    weight tolerance (extremes kept exactly where a curve swings by SHARED_EVENT_SWING), rotations (slerp) within the tolerance in degrees for every joint, the root
    translation within the tolerance in metres."""
    from core.export.keyreduce import SHARED_EVENT_SWING, keep_mask, keep_mask_quaternions

    red = anim.reduction
    if red is None:
        every = np.ones(len(anim), bool)
        return {"weights": every, "rotations": every, "translations": every}
    return {"weights": keep_mask(anim.weights.astype(np.float32), red.tolerance, event_swing=SHARED_EVENT_SWING),
            "rotations": keep_mask_quaternions(quats, np.radians(red.degrees)),
            "translations": keep_mask(root.astype(np.float32), red.metres)}


def write_stage(path: Path, rig: FaceRig, anim: RigAnimation) -> None:
    from pxr import Gf, Tf, Usd, UsdGeom, UsdSkel, Vt

    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    rate = float(anim.rate) if anim.rate is not None else anim.fps
    stage.SetTimeCodesPerSecond(rate)
    stage.SetFramesPerSecond(rate)
    frames = anim.timeline_frames()
    stage.SetStartTimeCode(float(frames[0]))
    stage.SetEndTimeCode(float(frames[-1]))
    if anim.timecode is not None:
        first = anim.timecode.at(int(anim.frame_index[0]))
        stage.GetRootLayer().customLayerData = {"timecode": str(first), "timecodeRate": str(anim.timecode.rate),
                                                "dropFrame": first.drop_frame}
    root = UsdSkel.Root.Define(stage, "/EmoCap")
    stage.SetDefaultPrim(root.GetPrim())

    joints = joint_paths(rig)
    rest_local = [rig.rest_joints[j] - (rig.rest_joints[p] if p >= 0 else 0.0) for j, p in enumerate(rig.joint_parents)]

    def translations(points) -> Vt.Matrix4dArray:
        return Vt.Matrix4dArray([Gf.Matrix4d(1.0).SetTranslate(Gf.Vec3d(*map(float, p))) for p in points])

    skel = UsdSkel.Skeleton.Define(stage, "/EmoCap/Skel")
    skel.CreateJointsAttr(joints)
    skel.CreateJointNamesAttr(list(rig.joint_names))
    skel.CreateBindTransformsAttr(translations(rig.rest_joints))
    skel.CreateRestTransformsAttr(translations(rest_local))

    names = list(rig.expression_names)
    skel_anim = UsdSkel.Animation.Define(stage, "/EmoCap/Skel/Anim")
    skel_anim.CreateJointsAttr(joints)
    skel_anim.CreateBlendShapesAttr(names)
    skel_anim.CreateScalesAttr(Vt.Vec3hArray([Gf.Vec3h(1, 1, 1)] * len(joints)))
    rotations, trans_attr = skel_anim.CreateRotationsAttr(), skel_anim.CreateTranslationsAttr()
    weights_attr = skel_anim.CreateBlendShapeWeightsAttr()
    quats = axis_angle_to_quaternion(anim.joint_rotations)
    local = np.repeat(np.asarray(rest_local, np.float32)[None], len(anim), axis=0)
    local[:, 0] += anim.translation
    keys = sample_masks(anim, quats, local[:, 0])
    for i, frame in enumerate(frames.tolist()):
        t = Usd.TimeCode(float(frame))
        if keys["rotations"][i]:
            rotations.Set(Vt.QuatfArray([Gf.Quatf(float(q[0]), Gf.Vec3f(*map(float, q[1:]))) for q in quats[i]]), t)
        if keys["translations"][i]:
            trans_attr.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(local[i])), t)
        if keys["weights"][i]:
            weights_attr.Set(Vt.FloatArray.FromNumpy(np.ascontiguousarray(anim.weights[i])), t)
    UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([skel_anim.GetPath()])

    mesh = UsdGeom.Mesh.Define(stage, "/EmoCap/Face")
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(rig.neutral)))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray([3] * len(rig.faces)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(rig.faces.astype(np.int32).ravel()))
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, rig.neutral.min(0))), Gf.Vec3f(*map(float, rig.neutral.max(0)))]))
    binding = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
    binding.CreateSkeletonRel().SetTargets([skel.GetPath()])
    idx, w, k = influences(rig.skinning_weights)
    binding.CreateJointIndicesPrimvar(False, k).Set(Vt.IntArray.FromNumpy(idx))
    binding.CreateJointWeightsPrimvar(False, k).Set(Vt.FloatArray.FromNumpy(w))
    binding.CreateGeomBindTransformAttr(Gf.Matrix4d(1.0))
    binding.CreateBlendShapesAttr(names)
    targets, used = [], set()
    for name, delta in zip(names, rig.expression_deltas):
        prim_name = Tf.MakeValidIdentifier(name)  # a retarget map's channel may be "Brow Up"; the token keeps it
        while prim_name in used:
            prim_name += "_"
        used.add(prim_name)
        shape = UsdSkel.BlendShape.Define(stage, mesh.GetPath().AppendChild(prim_name))
        shape.CreateOffsetsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(delta)))
        targets.append(shape.GetPath())
    binding.CreateBlendShapeTargetsRel().SetTargets(targets)
    stage.GetRootLayer().documentation = ("EmoCap face export: metres, y up, time code = "
                                          + ("timecode frame" if anim.timecode is not None else "video frame"))
    if not stage.GetRootLayer().Save():
        raise ExportError(f"USD could not save {path.name}")


@register("usd")
def usd(req: ExportRequest) -> ExportResult:
    if Path(req.out).suffix.lower() not in SUFFIXES:
        raise ExportError(f"{req.out}: USD files end in {', '.join(SUFFIXES)} (.usda is text, the others binary)")
    rig, anim = build_rig(req)
    with native_output(req.out) as scratch:
        try:
            write_stage(scratch, rig, anim)
        except RuntimeError as err:  # pxr.Tf.ErrorException derives from RuntimeError
            raise ExportError(f"USD could not write {req.out}: {err}") from err
    return ExportResult([req.out], req.num_frames, HOLD_POLICY, req.gap_frames,
                        extra={"max_corrective_m": rig.max_corrective_m, "model": rig.model_name})
