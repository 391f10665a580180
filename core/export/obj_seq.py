"""One Wavefront OBJ per frame in a folder (frame_000000.obj, ... numbered by position in the
export, 0-based), the model's posed vertices in model space: metres, y up, the head's model origin
(translation 0; the camera is not applied). Every file has the same vertex order and triangles
(1-based OBJ indices). Frames without a face hold the last pose with a face (the first face pose
before any face): an OBJ sequence has no gaps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from core.atomic import AtomicFolder
from core.export.base import HOLD_POLICY, ExportRequest, ExportResult, export_errors, held_rows
from core.export.registry import register
from core.facemodel.loading import ModelChoice, load_face_model

BATCH = 64


def posed_vertices(req: ExportRequest, rows: np.ndarray, model=None):
    """N x V x 3 float32 vertices of the given rows of req.fit, and the F x 3 faces."""
    model = model or load_face_model(ModelChoice.from_settings(req.model_settings))
    fit = replace(req.fit, expression=req.model_expression())  # a retarget map's preview (core.export.retarget)
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), BATCH):
            params = fit.to_face_params(rows[i:i + BATCH])
            out.append(model(params).vertices.cpu().numpy())
    return np.concatenate(out), model.faces.cpu().numpy()


@register("obj_seq")
def obj_seq(req: ExportRequest) -> ExportResult:
    rows = held_rows(req.fit.has_face)
    unique, inverse = np.unique(rows, return_inverse=True)
    verts, faces = posed_vertices(req, unique)
    face_text = "".join(f"f {a} {b} {c}\n" for a, b, c in (faces + 1).tolist()).encode()
    paths = []
    with export_errors(req.out), AtomicFolder(req.out) as folder:
        cache: dict[int, bytes] = {}
        for i, u in enumerate(inverse.tolist()):
            if u not in cache:
                cache = {u: "".join(f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in verts[u].tolist()).encode()}
            name = f"frame_{i:06d}.obj"
            folder.write(name, b"# EmoCap obj_seq: model space, metres, y up\n" + cache[u] + face_text)
            paths.append(req.out / name)
    return ExportResult(paths, req.num_frames, HOLD_POLICY, req.gap_frames)
