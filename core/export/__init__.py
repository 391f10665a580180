"""Export a take's fit for animators: curves (NPZ/JSON/CSV), OBJ sequences, Live Link Face CSV,
and the rigged, animated face as FBX (Blender, in a subprocess), glTF (.glb), USD and Alembic.

``export(take_dir, fmt, out, frame_range=None)`` runs one format; ``formats()`` lists them."""

from __future__ import annotations

from core.export import abc_cache, arkit_csv, curves, fbx, gltf, obj_seq, usd  # noqa: F401  (register the formats)
from core.export.base import ExportRequest, ExportResult, prepare_export
from core.export.curves import import_curves
from core.export.registry import formats, get_exporter, register


def export(take_dir, fmt: str, out, frame_range=None, edits=None) -> ExportResult:
    """Export rows ``frame_range`` of a take as ``fmt`` to ``out``, with ``edits`` (core.edit.Edits;
    None: the take's stored edits) applied."""
    exporter = get_exporter(fmt)
    return exporter(prepare_export(take_dir, fmt, out, frame_range, edits=edits))


__all__ = ["ExportRequest", "ExportResult", "export", "formats", "get_exporter", "import_curves",
           "prepare_export", "register"]
