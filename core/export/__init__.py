"""Export a take's fit for animators: curves (NPZ/JSON/CSV), OBJ sequences, Live Link Face CSV.

``export(take_dir, fmt, out, frame_range=None)`` runs one format; ``formats()`` lists them."""

from __future__ import annotations

from core.export import arkit_csv, curves, obj_seq  # noqa: F401  (register the formats)
from core.export.base import ExportRequest, ExportResult, prepare_export
from core.export.curves import import_curves
from core.export.registry import formats, get_exporter, register


def export(take_dir, fmt: str, out, frame_range=None) -> ExportResult:
    exporter = get_exporter(fmt)
    return exporter(prepare_export(take_dir, fmt, out, frame_range))


__all__ = ["ExportRequest", "ExportResult", "export", "formats", "get_exporter", "import_curves",
           "prepare_export", "register"]
