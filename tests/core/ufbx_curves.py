"""Read an FBX's animation back with ufbx at every listed frame, in a subprocess of its own:

    python tests/core/ufbx_curves.py FILE.fbx OUT.npz FRAME [FRAME ...]

OUT.npz: channel_names (E blend channels), key_counts (E: keys on each DeformPercent curve),
weights (S x E blend weights 0..1 at time FRAME / fps, as ufbx evaluates the file's curves),
bone_names (J), bone_key_counts (J x 3: keys on each bone's Lcl Rotation X/Y/Z curves),
rotations (S x J x 4: each bone's evaluated local rotation quaternion, x y z w).
Wrappers are kept alive to the end (see ufbx_readback.py), the cyclic collector is off and the
process ends without tearing the interpreter down: freeing the wrappers can crash ufbx 0.0.5.
"""

from __future__ import annotations

import gc
import os
import sys

import numpy as np
import ufbx

KEEP: list = []


def keep(x):
    KEEP.append(x)
    return x


def curve_keys(layer, element, prop_name: str) -> list[int]:
    prop = keep(layer.find_anim_prop(element, prop_name))
    value = keep(prop.anim_value) if prop is not None else None
    out = []
    for i in range(3 if prop_name != "DeformPercent" else 1):
        curve = keep(value.curves[i]) if value is not None else None
        out.append(len(keep(list(keep(curve.keyframes)))) if curve is not None else 0)
    return out


def read(path: str, frames: list[int]) -> dict[str, np.ndarray]:
    scene = keep(ufbx.load_file(path))
    fps = ufbx.find_real(keep(keep(scene.settings).props), "CustomFrameRate", 0.0)
    mesh = keep(list(keep(scene.meshes)))[0]
    channels = keep(list(keep(keep(list(keep(mesh.blend_deformers)))[0].channels)))
    stack = keep(list(keep(scene.anim_stacks)))[0]
    anim = keep(stack.anim)
    layer = keep(list(keep(stack.layers)))[0]
    bones = [n for n in keep(list(keep(scene.nodes))) if keep(n.bone) is not None]
    key_counts = [curve_keys(layer, c, "DeformPercent")[0] for c in channels]
    bone_keys = [curve_keys(layer, b, "Lcl Rotation") for b in bones]
    bone_index = [b.typed_id for b in bones]
    weights, rotations = [], []
    for f in frames:
        t = f / fps
        weights.append([c.evaluate_blend_weight(anim, t) for c in channels])
        evaluated = keep(ufbx.evaluate_scene(scene, anim, t))
        nodes = keep(list(keep(evaluated.nodes)))
        by_id = {n.typed_id: n for n in nodes}
        row = []
        for i in bone_index:
            q = keep(keep(by_id[i].local_transform).rotation)
            row.append((q.x, q.y, q.z, q.w))
        rotations.append(row)
    return {"channel_names": np.array([c.name for c in channels], dtype=str), "key_counts": np.array(key_counts),
            "weights": np.array(weights, np.float64), "bone_names": np.array([b.name for b in bones], dtype=str),
            "bone_key_counts": np.array(bone_keys), "rotations": np.array(rotations, np.float64)}


if __name__ == "__main__":
    gc.disable()  # the wrapper also crashes when the collector frees its cyclic wrappers
    np.savez(sys.argv[2], **read(sys.argv[1], [int(a) for a in sys.argv[3:]]))
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown: it would free the kept wrappers
