"""Alembic mesh cache (.abc, Ogawa) of the posed face (alembic3d, PyAlembic's bindings).

Content: one animated polygon mesh /EmoCapFace: constant triangles, and the model's posed vertices on
every frame: expressions, head rotation (root joint), neck, jaw and eyes, pose correctives (FLAME),
head translation (core.export.rig.head_translation). So the cache is exact for FLAME too, but it
carries no expression curves or rig: it is geometry only.
Time sampling: uniform, one sample per frame, 1 / fps seconds apart, starting at the first
exported frame's time (video frame / fps seconds). Read sample i by its time:
``schema.getValue(ISampleSelector(schema.getTimeSampling().getSampleTime(i)))``; note that
``ISampleSelector(9)`` means time 9.0 s, not sample 9.

Winding: Alembic's convention is clockwise front faces (Maya's and Houdini's writers, Blender's
reader reverses every polygon), so each model triangle (a, b, c), counter-clockwise seen from
outside, is stored as (a, c, b).

Units and axes: metres, y up, +z toward the viewer (model space; Alembic's usual y up). Blender's
Alembic importer turns y up into its z up (model (x, y, z) -> Blender (x, -z, y)).
Frames without a face hold the last pose with a face (HOLD_POLICY). Written atomically
(core.export.native_file).
"""

from __future__ import annotations

import numpy as np

from core.errors import ExportError
from core.export.base import HOLD_POLICY, ExportRequest, ExportResult
from core.export.native_file import native_output
from core.export.registry import register
from core.export.rig import animated_vertices, build_rig, load_model

BATCH = 64  # frames posed at once


def write_archive(path, faces: np.ndarray, frames_vertices, start_s: float, fps: float) -> None:
    """faces: F x 3 model triangles (counter-clockwise). frames_vertices: iterable of V x 3
    float32 arrays, one per frame."""
    import imath
    from alembic3d.Abc import OArchive
    from alembic3d.AbcCoreAbstract import TimeSampling
    from alembic3d.AbcGeom import OPolyMesh, OPolyMeshSchemaSample

    archive = OArchive(str(path))
    sampling = archive.addTimeSampling(TimeSampling(1.0 / fps, start_s))
    mesh = OPolyMesh(archive.getTop(), "EmoCapFace", sampling)
    schema = mesh.getSchema()
    clockwise = faces[:, [0, 2, 1]]  # Alembic winding, see the module docstring
    indices = imath.IntArrayFromBuffer(np.ascontiguousarray(clockwise, np.int32).ravel())
    counts = imath.IntArrayFromBuffer(np.full(len(faces), 3, np.int32))
    for vertices in frames_vertices:
        points = imath.V3fArrayFromBuffer(np.ascontiguousarray(vertices, np.float32))
        schema.set(OPolyMeshSchemaSample(points, indices, counts))
    del schema, mesh, archive  # the archive is written when its last reference goes


@register("abc")
def abc(req: ExportRequest) -> ExportResult:
    model = load_model(req)
    rig, anim = build_rig(req, model)

    def frames():
        for start in range(0, len(anim), BATCH):
            yield from animated_vertices(model, anim, req.fit.identity, np.arange(start, min(start + BATCH, len(anim))))

    with native_output(req.out) as scratch:
        try:
            write_archive(scratch, rig.faces, frames(), float(anim.timestamps[0]), anim.fps)
        except RuntimeError as err:
            raise ExportError(f"Alembic could not write {req.out}: {err}") from err
    return ExportResult([req.out], req.num_frames, HOLD_POLICY, req.gap_frames, extra={"model": rig.model_name})
