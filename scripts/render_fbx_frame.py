"""Render one frame of an exported FBX with Blender (bpy as a module), headless.

    .venv/bin/python scripts/render_fbx_frame.py FACE.fbx OUT.png --frame N [--size 512] [--engine workbench|eevee]

Imports the FBX with Blender's own importer (``anim_offset=0``), goes to video frame N and renders
the face from the front (the model's +z, Blender's -y) with a camera framed on the evaluated mesh
(shape keys and the skeleton applied). ``--frame`` is the video frame number the export keyed;
Blender 5.0.1's FBX importer places keys at time * integer fps, so a 23.976 fps clip's frame N sits
at Blender frame N * 24 / 23.976, which this script accounts for (subframe).

Workbench renders a 512 px frame in about 2 s here; Eevee works headless too but takes about two
minutes on this CPU-only machine (software OpenGL). This is a visual check, not part of the app:
it loads bpy in its own process.
"""

from __future__ import annotations

import argparse
import math
import sys

import bpy
import numpy as np
from mathutils import Vector


def evaluated_points(obj) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    matrix = np.array(evaluated.matrix_world)
    evaluated.to_mesh_clear()
    return co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fbx")
    parser.add_argument("out")
    parser.add_argument("--frame", type=int, default=0, help="video frame number")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--engine", choices=("workbench", "eevee"), default="workbench")
    args = parser.parse_args()

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.import_scene.fbx(filepath=args.fbx, anim_offset=0.0)
    faces = [o for o in scene.objects if o.type == "MESH"]
    if not faces:
        print(f"{args.fbx} has no mesh", file=sys.stderr)
        return 1
    face = faces[0]
    position = args.frame * scene.render.fps_base  # = frame / real fps * integer fps (see docstring)
    scene.frame_set(int(math.floor(position)), subframe=position - math.floor(position))

    points = evaluated_points(face)
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    extent = float((points.max(axis=0) - points.min(axis=0)).max())
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.data.type = "ORTHO"
    camera.data.ortho_scale = extent * 1.25
    camera.location = Vector(centre) + Vector((0.0, -1.0, 0.0))  # in front of the face (model +z)
    camera.rotation_euler = (math.pi / 2, 0.0, 0.0)  # look along +y
    camera.data.clip_end = 10.0
    scene.camera = camera

    scene.render.resolution_x = scene.render.resolution_y = args.size
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = args.out
    if args.engine == "workbench":
        scene.render.engine = "BLENDER_WORKBENCH"
        shading = scene.display.shading
        shading.light = "STUDIO"
        shading.color_type = "SINGLE"
        shading.single_color = (0.8, 0.62, 0.52)
        shading.show_cavity = True
    else:
        scene.render.engine = "BLENDER_EEVEE"
        light = bpy.data.objects.new("Key", bpy.data.lights.new("Key", "SUN"))
        light.rotation_euler = (math.radians(60), 0.0, math.radians(-20))
        scene.collection.objects.link(light)
    world = bpy.data.worlds.new("World")
    world.color = (0.05, 0.05, 0.06)
    scene.world = world
    bpy.ops.render.render(write_still=True)
    print(f"rendered video frame {args.frame} (Blender frame {position:.3f}) of {args.fbx} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
