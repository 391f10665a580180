"""Read an exported file back with Blender's own importers (bpy), in a subprocess of its own:

    python tests/core/blender_readback.py FORMAT FILE OUT.npz FPS FRAME [FRAME ...]

FORMAT: fbx | gltf | usd | abc. FPS: the clip's frame rate, given to the scene before importing
(glTF and Alembic store seconds; Blender turns them into frames at the scene's rate; FBX and USD
set it themselves, and ``fps`` reports what the scene has after the import). FRAME: video frames
to sample, i.e. times FRAME / FPS seconds. The exports put video frame N at N / fps seconds, which
an importer should put on Blender frame N. Two of Blender 5.0.1's importers get fractional rates
wrong, so the sample is taken where they put the frame instead:
- FBX converts key times to frames with the integer ``scene.render.fps``, not fps / fps_base
  (import_fbx.py, blen_read_animations), so a 23.976 fps clip's frame N lands on N * 24 / 23.976;
  ``anim_offset=0.0`` is needed too (the default 1.0 shifts keys by a frame);
- glTF multiplies by fps_base instead of dividing (io_scene_gltf2 animation_weight.py,
  animation_node.py); the scene is given the integer rate (fps_base 1) before the import, so frame
  N lands on N * 24 / 23.976 as with FBX.

OUT.npz: fps (scene fps / fps_base after import), shape_key_names (E, without the basis; empty for
a mesh cache), key_counts (E: keyframes on each shape key's F-Curve), weights (S x E, shape-key
values at the frames), vertices (S x V x 3: the evaluated mesh (shape keys, armature, mesh cache)
in world space, converted from Blender's z up back to model axes: model (x, y, z) = Blender
(x, z, -y)), faces (F x 3: the imported mesh's triangles, vertex indices in Blender's winding).
"""

from __future__ import annotations

import sys
from fractions import Fraction

import bpy
import numpy as np
from bpy_extras import anim_utils

IMPORTERS = {
    "fbx": lambda path: bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0),
    "gltf": lambda path: bpy.ops.import_scene.gltf(filepath=path, merge_vertices=False, disable_bone_shape=True),
    "usd": lambda path: bpy.ops.wm.usd_import(filepath=path, set_frame_range=True),
    "abc": lambda path: bpy.ops.wm.alembic_import(filepath=path, set_frame_range=True, as_background_job=False),
}
BLENDER_TO_MODEL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def shape_key_curves(key) -> dict[str, object]:
    """F-Curves of a shape-key datablock by key name (slotted actions, Blender 4.4+)."""
    adt = key.animation_data if key is not None else None
    if adt is None or adt.action is None:
        return {}
    bag = anim_utils.action_get_channelbag_for_slot(adt.action, adt.action_slot)
    out = {}
    for curve in bag.fcurves if bag is not None else []:
        if curve.data_path.startswith('key_blocks["') and curve.data_path.endswith('"].value'):
            out[curve.data_path[len('key_blocks["'):-len('"].value')]] = curve
    return out


def world_vertices(obj) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, np.float64)
    mesh.vertices.foreach_get("co", co)
    matrix = np.array(evaluated.matrix_world)
    evaluated.to_mesh_clear()
    co = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    return co @ BLENDER_TO_MODEL.T


def main(fmt: str, path: str, out: str, fps: float, frames: list[int]) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    if fmt == "gltf":
        scene.render.fps, scene.render.fps_base = round(fps), 1.0
    else:
        rate = Fraction(fps).limit_denominator(1001)
        scene.render.fps, scene.render.fps_base = rate.numerator, float(rate.denominator)
    result = IMPORTERS[fmt](path)
    if "FINISHED" not in result:
        raise SystemExit(f"import of {path} returned {result}")
    meshes = [o for o in scene.objects if o.type == "MESH"]
    if len(meshes) != 1:
        raise SystemExit(f"expected one mesh, found {[o.name for o in meshes]}")
    obj = meshes[0]
    key = obj.data.shape_keys
    blocks = list(key.key_blocks)[1:] if key is not None else []
    names = [b.name for b in blocks]
    curves = shape_key_curves(key)
    # Blender frames per video frame, as each importer maps time to frames (see the docstring)
    step = scene.render.fps / fps if fmt in ("fbx", "gltf") else 1.0
    weights, vertices = [], []
    for f in frames:
        position = f * step
        scene.frame_set(int(np.floor(position)), subframe=float(position - np.floor(position)))
        weights.append([b.value for b in blocks])
        vertices.append(world_vertices(obj))
    faces = np.array([list(p.vertices) for p in obj.data.polygons], np.int64)
    np.savez(out, faces=faces, fps=np.float64(scene.render.fps / scene.render.fps_base), shape_key_names=np.array(names, dtype=str),
             key_counts=np.array([len(curves[n].keyframe_points) if n in curves else 0 for n in names], np.int64),
             weights=np.array(weights, np.float64).reshape(len(frames), len(names)),
             vertices=np.array(vertices, np.float64))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), [int(a) for a in sys.argv[5:]])
