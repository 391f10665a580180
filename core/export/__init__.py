"""Export a take's fit for animators: curves (NPZ/JSON/CSV), OBJ sequences, Live Link Face CSV,
and the rigged, animated face as FBX (Blender, in a subprocess), glTF (.glb), USD and Alembic.

``export(take_dir, fmt, out, frame_range=None, edits=None, retarget=None, reduce=None)`` runs one
format (with a retarget map, core.export.retarget, and key reduction, core.export.keyreduce);
``formats()`` lists them.
The format modules (and torch with them) load on first use, so importing this package, or the
command line's parser, stays fast."""

from __future__ import annotations

import importlib

from core.export.registry import formats, get_exporter, register

_LAZY = {"ExportRequest": "core.export.base", "ExportResult": "core.export.base", "prepare_export": "core.export.base",
         "import_curves": "core.export.curves"}


def export(take_dir, fmt: str, out, frame_range=None, edits=None, retarget=None, reduce=None, curves=None,
           shapes=None):
    """Export rows ``frame_range`` of a take as ``fmt`` to ``out``, with ``edits`` (core.edit.Edits;
    None: the take's stored edits) applied; returns the ExportResult. ``retarget``: a retarget map
    (path or preset name; core.export.retarget), applied by every format. ``reduce``: a key
    reduction tolerance or KeyReduction (core.export.keyreduce; curves, fbx, gltf, usd). ``curves``:
    "arkit" exports a FLAME take's curves as the 52 ARKit ones (core.export.arkit_from_flame).
    ``shapes``: "generic" puts a performer-profile take's curves on the open model's own shapes."""
    from core.export.base import prepare_export

    exporter = get_exporter(fmt)
    request = prepare_export(take_dir, fmt, out, frame_range, edits=edits, retarget=retarget, reduce=reduce,
                             curves=curves, shapes=shapes)
    result = exporter(request)
    result.notes.extend(request.notes)
    return result


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'core.export' has no attribute '{name}'")


__all__ = ["ExportRequest", "ExportResult", "export", "formats", "get_exporter", "import_curves",
           "prepare_export", "register"]
