"""Read an FBX back with ufbx (an independent C reader), in a subprocess of its own:

    python tests/core/ufbx_readback.py FILE.fbx OUT.npz FRAME [FRAME ...]

ufbx 0.0.5's Python wrapper crashes when an element wrapper is released and fetched again, so
every wrapper fetched here is kept in ``KEEP`` until the process ends, and tests run this file in a
subprocess (a crash then fails one test, not the run).

OUT.npz: fps (the file's CustomFrameRate), time_mode, unit_meters, up_axis (ufbx CoordinateAxis
value), channel_names (E), key_counts (E: keys on each channel's DeformPercent curve), key_times
(K: times in seconds of the first channel's keys), weights (S x E, blend weights 0..1 evaluated at
time FRAME / fps), vertices (S x V x 3, skinned world positions evaluated at those times, file
units), bone_names.
"""

from __future__ import annotations

import sys

import numpy as np
import ufbx

KEEP: list = []


def keep(x):
    KEEP.append(x)
    return x


def vec3s(values) -> np.ndarray:
    values = keep(values)
    return np.array([(v.x, v.y, v.z) for v in values], np.float64)


def read(path: str, frames: list[int]) -> dict[str, np.ndarray]:
    scene = keep(ufbx.load_file(path))
    settings = keep(scene.settings)
    fps = ufbx.find_real(keep(settings.props), "CustomFrameRate", 0.0)
    meshes = keep(list(keep(scene.meshes)))
    mesh = meshes[0]
    deformer = keep(list(keep(mesh.blend_deformers)))[0]
    channels = keep(list(keep(deformer.channels)))
    stack = keep(list(keep(scene.anim_stacks)))[0]
    anim = keep(stack.anim)
    layer = keep(list(keep(stack.layers)))[0]
    key_counts, key_times = [], None
    for channel in channels:
        prop = keep(layer.find_anim_prop(channel, "DeformPercent"))
        value = keep(prop.anim_value) if prop is not None else None
        curve = keep(value.curves[0]) if value is not None else None
        keys = keep(list(keep(curve.keyframes))) if curve is not None else []
        key_counts.append(len(keys))
        if key_times is None:
            key_times = np.array([k.time for k in keys], np.float64)
    weights, vertices = [], []
    for f in frames:
        t = f / fps
        weights.append([channel.evaluate_blend_weight(anim, t) for channel in channels])
        evaluated = keep(ufbx.evaluate_scene(scene, anim, t, evaluate_skinning=True))
        emesh = keep(list(keep(evaluated.meshes)))[0]
        skinned = keep(emesh.skinned_position)
        points = vec3s(skinned.values)
        if emesh.skinned_is_local:
            node = keep(list(keep(emesh.instances)))[0]
            m = keep(node.geometry_to_world)
            rot = np.array([[m.m00, m.m01, m.m02], [m.m10, m.m11, m.m12], [m.m20, m.m21, m.m22]])
            points = points @ rot.T + np.array([m.m03, m.m13, m.m23])
        vertices.append(points)
    bones = [n.name for n in keep(list(keep(scene.nodes))) if keep(n.bone) is not None]
    return {
        "fps": np.float64(fps), "time_mode": np.int64(int(settings.time_mode)), "unit_meters": np.float64(settings.unit_meters),
        "up_axis": np.int64(int(keep(settings.axes).up)), "channel_names": np.array([c.name for c in channels], dtype=str),
        "key_counts": np.array(key_counts, np.int64), "key_times": key_times, "weights": np.array(weights, np.float64),
        "vertices": np.array(vertices, np.float64), "bone_names": np.array(bones, dtype=str),
    }


if __name__ == "__main__":
    np.savez(sys.argv[2], **read(sys.argv[1], [int(a) for a in sys.argv[3:]]))
    sys.stdout.flush()
