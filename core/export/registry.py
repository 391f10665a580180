"""Export formats by name: ``@register("name")`` on a function ``(ExportRequest) -> ExportResult``.
The built-in format modules are imported on the first lookup (they bring torch)."""

from __future__ import annotations

import importlib
from typing import Callable

from core.errors import ExportError

FORMAT_MODULES = ("abc_cache", "arkit_csv", "curves", "fbx", "gltf", "obj_seq", "usd")

# The file name ending each format writes by default ("": a folder); the app's export dialog and
# ``emocap batch`` name their exports with it.
SUFFIXES = {"curves_npz": ".npz", "curves_json": ".json", "curves_csv": ".csv", "arkit_csv": ".csv", "fbx": ".fbx",
            "gltf": ".glb", "usd": ".usda", "abc": ".abc", "obj_seq": ""}

_EXPORTERS: dict[str, Callable] = {}
_loaded = False


def register(name: str) -> Callable[[Callable], Callable]:
    def deco(fn: Callable) -> Callable:
        _EXPORTERS[name] = fn
        return fn

    return deco


def _load_builtin_formats() -> None:
    global _loaded
    if not _loaded:
        for module in FORMAT_MODULES:
            importlib.import_module(f"core.export.{module}")
        _loaded = True


def formats() -> list[str]:
    _load_builtin_formats()
    return sorted(_EXPORTERS)


def get_exporter(name: str) -> Callable:
    _load_builtin_formats()
    try:
        return _EXPORTERS[name]
    except KeyError:
        raise ExportError(f"unknown export format '{name}': use one of {', '.join(formats())}") from None
