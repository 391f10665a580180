"""Modules that stay unimported until something uses them.

``import mediapipe`` imports every one of its legacy solutions, among them the drawing helpers,
which import ``matplotlib.pyplot``: about half a second of every start-up (the command line, the
app, each batch worker), and EmoCap never draws with them. :func:`defer` puts a stand-in in
``sys.modules`` before the package imports them; the real module is imported the first time any
of its attributes is read, and replaces the stand-in.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

MEDIAPIPE_DRAWING = ("mediapipe.python.solutions.drawing_utils", "mediapipe.python.solutions.drawing_styles")


class DeferredModule(ModuleType):
    """Stands in for the module of the same name until one of its attributes is read. Dunder
    names are never forwarded: the import system and tools that walk ``sys.modules`` (inspect,
    pytest) probe ``__file__``, ``__path__`` and the like, and must not import it."""

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(load(self.__name__), name)


def defer(names: tuple[str, ...]) -> None:
    """Put stand-ins for ``names`` (dotted module names not imported yet) in ``sys.modules``."""
    for name in names:
        if name not in sys.modules:
            sys.modules[name] = DeferredModule(name)


def bind(names: tuple[str, ...]) -> None:
    """Make the stand-ins of ``names`` attributes of their (now imported) packages, as an import
    would have (a module found in ``sys.modules`` is not bound to its package)."""
    for name in names:
        parent, _, child = name.rpartition(".")
        module, package = sys.modules.get(name), sys.modules.get(parent)
        if isinstance(module, DeferredModule) and package is not None and not hasattr(package, child):
            setattr(package, child, module)


def load(name: str) -> ModuleType:
    """The real module ``name``, imported now if a stand-in held its place (bound to its package)."""
    module = sys.modules.get(name)
    if not isinstance(module, DeferredModule):
        return importlib.import_module(name)
    del sys.modules[name]
    real = importlib.import_module(name)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, real)
    return real
