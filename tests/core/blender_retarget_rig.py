"""Drive a test rig in Blender with the shape-key animation of an imported FBX, in a subprocess:

    python tests/core/blender_retarget_rig.py FILE.fbx OUT.npz FPS KEYS FRAME [FRAME ...]

KEYS: comma-separated shape-key names of the test rig (a small plane "TestRig" built here, with
one shape key per name, in the given order, none named like EmoCap's ARKit curves). The FBX is
imported (anim_offset 0), the action on the imported mesh's shape keys is assigned to the test
rig's shape keys, as an animator reuses a face capture on their own rig; Blender binds F-Curves by
data path (``key_blocks["NAME"].value``), so only keys whose names match are driven.

OUT.npz: names (the rig's keys), weights (S x K values of the rig's keys at the frames, the
Blender frame where the importer put video frame FRAME), driven (K bool: a curve drives the key),
imported_names (the imported mesh's shape keys, without the basis).
"""

from __future__ import annotations

import sys

import bpy
import numpy as np


def test_rig(names: list[str]):
    mesh = bpy.data.meshes.new("TestRig")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new("TestRig", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.shape_key_add(name="Basis", from_mix=False)
    for i, name in enumerate(names):
        block = obj.shape_key_add(name=name, from_mix=False)
        block.slider_min, block.slider_max = -10.0, 10.0
        block.value = 0.25  # what an undriven key keeps
        block.data[i % 4].co.z = 0.1
    return obj


def main(path: str, out: str, fps: float, names: list[str], frames: list[int]) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    rig = test_rig(names)
    result = bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0)
    if "FINISHED" not in result:
        raise SystemExit(f"import of {path} returned {result}")
    imported = next(o for o in scene.objects if o.type == "MESH" and o is not rig)
    source = imported.data.shape_keys
    action = source.animation_data.action
    target = rig.data.shape_keys
    target.animation_data_create()
    target.animation_data.action = action
    if hasattr(target.animation_data, "action_slot") and source.animation_data.action_slot is not None:
        target.animation_data.action_slot = source.animation_data.action_slot
    source.animation_data.action = None  # only the test rig plays it now
    from bpy_extras import anim_utils

    bag = anim_utils.action_get_channelbag_for_slot(action, target.animation_data.action_slot)
    curves = {c.data_path for c in bag.fcurves}
    driven = [f'key_blocks["{n}"].value' in curves for n in names]
    step = scene.render.fps / fps  # Blender's FBX importer turns seconds into frames at the integer rate
    weights = []
    for f in frames:
        position = f * step
        scene.frame_set(int(np.floor(position)), subframe=float(position - np.floor(position)))
        weights.append([rig.data.shape_keys.key_blocks[n].value for n in names])
    np.savez(out, names=np.array(names, dtype=str), weights=np.array(weights, np.float64),
             driven=np.array(driven, bool), imported_names=np.array([b.name for b in list(source.key_blocks)[1:]], dtype=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4].split(","), [int(a) for a in sys.argv[5:]])
