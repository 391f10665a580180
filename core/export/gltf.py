"""Binary glTF 2.0 (.glb) with morph targets, a skin and animation (pygltflib).

Content: one mesh "EmoCapFace", the neutral mesh (the take's identity applied, expression zero) as
POSITION, one morph target per expression (per target channel with a retarget map,
core.export.retarget; POSITION offsets; names in ``mesh.extras.targetNames``,
the convention Blender, three.js and Babylon read), skinned (JOINTS_n / WEIGHTS_n, the model's
skinning weights) to joint nodes with FLAME's chain root > neck > jaw, eye_left, eye_right at the
rest joints (inverse bind matrices are pure translations). One animation "EmoCap": a weights
sampler on the mesh node and rotation samplers on every joint, plus a translation sampler on the
root (its rest position + the head translation of core.export.rig.head_translation), all LINEAR
with one key per frame at the frame's time (video frame / fps seconds, so a range starts at its
own time, not 0). The clip's fps and first frame are in ``scenes[0].extras``. With key reduction
(``--reduce``) each sampler keeps only the keys core.export.keyreduce chooses, with its own times
(see :func:`add_animation`).

Units and axes: glTF's own, which are the model's: metres, right-handed, y up, +z toward the
viewer (front of the face). Blender's importer turns this into its z up (model (x, y, z) ->
Blender (x, -z, y)).

glTF keeps time in seconds, so the rate is implicit. Blender 5.0.1's glTF importer converts seconds
to frames with fps * fps_base (io_scene_gltf2 animation_weight.py / animation_node.py) instead of
fps / fps_base: import into a scene whose fps_base is 1 (then a 23.976 fps clip's frame N lands on
frame N * 24 / 23.976).

Exactness: glTF applies morph targets before skinning, as the model does, and the skin is linear
blend skinning with the model's weights, so the open model is reproduced to float32 precision.
FLAME's pose correctives cannot be expressed and are left out (``extra["max_corrective_m"]``).
Frames without a face hold the last pose with a face (HOLD_POLICY). Written atomically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.export.base import HOLD_POLICY, ExportRequest, ExportResult, write_file_atomic
from core.export.registry import register
from core.export.rig import FaceRig, RigAnimation, axis_angle_to_quaternion, build_rig

if TYPE_CHECKING:
    import pygltflib as g


class _Blob:
    """The binary chunk and its buffer views / accessors."""

    def __init__(self, gltf: g.GLTF2) -> None:
        import pygltflib as g

        self.g = g
        self.gltf = gltf
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, array: np.ndarray, kind: str, component: int, target: int | None = None,
            minmax: bool = False) -> int:
        """Append an accessor of ``array`` (rows = elements); returns its index."""
        g = self.g
        data = np.ascontiguousarray(array).tobytes()
        pad = -len(data) % 4
        self.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=self.size, byteLength=len(data), target=target))
        self.parts.append(data + b"\0" * pad)
        self.size += len(data) + pad
        flat = array.reshape(len(array), -1)
        accessor = g.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component, count=len(array),
                              type=kind)
        if minmax:
            accessor.min, accessor.max = flat.min(axis=0).tolist(), flat.max(axis=0).tolist()
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1

    def finish(self) -> None:
        blob = b"".join(self.parts)
        self.gltf.buffers.append(self.g.Buffer(byteLength=len(blob)))
        self.gltf.set_binary_blob(blob)


def skin_sets(weights: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """V x J weights -> [(V x 4 uint16 joints, V x 4 float32 weights), ...], as many sets of four
    influences as the most-influenced vertex needs (largest first; unused slots weigh 0)."""
    order = np.argsort(-weights, axis=1, kind="stable")
    sorted_w = np.take_along_axis(weights, order, axis=1)
    used = max(1, int((sorted_w > 0).sum(axis=1).max()))
    sets = []
    for start in range(0, used, 4):
        joints = np.zeros((len(weights), 4), np.uint16)
        w = np.zeros((len(weights), 4), np.float32)
        stop = min(start + 4, used)
        joints[:, :stop - start] = order[:, start:stop]
        w[:, :stop - start] = sorted_w[:, start:stop]
        joints[w == 0] = 0
        sets.append((joints, w))
    return sets


def build_gltf(rig: FaceRig, anim: RigAnimation) -> g.GLTF2:
    import pygltflib as g

    gltf = g.GLTF2(asset=g.Asset(generator="EmoCap", version="2.0"))
    blob = _Blob(gltf)
    attributes = g.Attributes(POSITION=blob.add(rig.neutral, g.VEC3, g.FLOAT, g.ARRAY_BUFFER, minmax=True))
    for i, (joints, weights) in enumerate(skin_sets(rig.skinning_weights)):
        setattr(attributes, f"JOINTS_{i}", blob.add(joints, g.VEC4, g.UNSIGNED_SHORT, g.ARRAY_BUFFER))
        setattr(attributes, f"WEIGHTS_{i}", blob.add(weights, g.VEC4, g.FLOAT, g.ARRAY_BUFFER))
    indices = blob.add(rig.faces.astype(np.uint32).reshape(-1, 1), g.SCALAR, g.UNSIGNED_INT, g.ELEMENT_ARRAY_BUFFER)
    targets = [{"POSITION": blob.add(d, g.VEC3, g.FLOAT, g.ARRAY_BUFFER, minmax=True)} for d in rig.expression_deltas]
    names = list(rig.expression_names)
    gltf.meshes.append(g.Mesh(name="EmoCapFace", weights=[0.0] * len(names), extras={"targetNames": names},
                              primitives=[g.Primitive(attributes=attributes, indices=indices, targets=targets)]))
    # nodes: 0 the mesh, 1.. the joints in rig order
    joint_nodes = [1 + j for j in range(len(rig.joint_names))]
    gltf.nodes.append(g.Node(name="EmoCapFace", mesh=0, skin=0))
    for j, (name, parent) in enumerate(zip(rig.joint_names, rig.joint_parents)):
        offset = rig.rest_joints[j] - (rig.rest_joints[parent] if parent >= 0 else 0.0)
        children = [joint_nodes[c] for c, p in enumerate(rig.joint_parents) if p == j]
        gltf.nodes.append(g.Node(name=name, translation=offset.astype(float).tolist(), children=children))
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (len(joint_nodes), 1, 1))
    inverse_bind[:, :3, 3] = -rig.rest_joints
    ibm = blob.add(inverse_bind.transpose(0, 2, 1).reshape(len(joint_nodes), 16), g.MAT4, g.FLOAT)  # column-major
    gltf.skins.append(g.Skin(name="EmoCapRig", joints=joint_nodes, skeleton=joint_nodes[0], inverseBindMatrices=ibm))
    gltf.scenes.append(g.Scene(name="EmoCap", nodes=[0, joint_nodes[0]],
                               extras={"fps": anim.fps, "first_frame": int(anim.frame_index[0])}))
    gltf.scene = 0
    add_animation(gltf, blob, rig, anim, joint_nodes)
    blob.finish()
    return gltf


def add_animation(gltf: g.GLTF2, blob: _Blob, rig: FaceRig, anim: RigAnimation, joint_nodes: list[int]) -> None:
    """One LINEAR sampler per channel; with key reduction each sampler keeps its own key times
    (core.export.keyreduce): the morph weights (one sampler for all targets, so their keys are
    shared; extremes kept exactly where a curve swings by SHARED_EVENT_SWING) within the weight tolerance, each joint's rotation (slerp) within the tolerance in
    degrees, the root translation within the tolerance in metres."""
    from core.export.keyreduce import SHARED_EVENT_SWING, keep_mask, keep_mask_quaternions

    g = blob.g
    red = anim.reduction
    everything = np.ones(len(anim), bool)
    time_accessors: dict[bytes, int] = {}
    samplers, channels = [], []

    def channel(node: int, path: str, values: np.ndarray, mask: np.ndarray, kind: str) -> None:
        rows = np.flatnonzero(mask)
        if rows.tobytes() not in time_accessors:
            time_accessors[rows.tobytes()] = blob.add(anim.timestamps[rows].astype(np.float32).reshape(-1, 1),
                                                      g.SCALAR, g.FLOAT, minmax=True)
        output = blob.add(np.ascontiguousarray(values[rows]).reshape(-1, {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[kind]),
                          kind, g.FLOAT)
        samplers.append(g.AnimationSampler(input=time_accessors[rows.tobytes()], output=output,
                                           interpolation=g.ANIM_LINEAR))
        channels.append(g.AnimationChannel(sampler=len(samplers) - 1, target=g.AnimationChannelTarget(node=node, path=path)))

    weights = anim.weights.astype(np.float32)
    mask = everything if red is None else keep_mask(weights, red.tolerance, event_swing=SHARED_EVENT_SWING)
    channel(0, "weights", weights, mask, "SCALAR")
    quats = axis_angle_to_quaternion(anim.joint_rotations)[..., [1, 2, 3, 0]].astype(np.float32)  # glTF: x, y, z, w
    for j, node in enumerate(joint_nodes):
        mask = everything if red is None else keep_mask_quaternions(quats[:, j], np.radians(red.degrees))
        channel(node, "rotation", quats[:, j], mask, "VEC4")
    root = (rig.rest_joints[0][None] + anim.translation).astype(np.float32)
    channel(joint_nodes[0], "translation", root, everything if red is None else keep_mask(root, red.metres), "VEC3")
    gltf.animations.append(g.Animation(name="EmoCap", samplers=samplers, channels=channels))


@register("gltf")
def gltf(req: ExportRequest) -> ExportResult:
    rig, anim = build_rig(req)
    data = b"".join(build_gltf(rig, anim).save_to_bytes())
    write_file_atomic(req.out, data)
    return ExportResult([req.out], req.num_frames, HOLD_POLICY, req.gap_frames,
                        extra={"max_corrective_m": rig.max_corrective_m, "model": rig.model_name})
