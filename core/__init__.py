"""EmoCap core: video, face observation, face models, fitting, emotion, export.

This package never imports Qt (PySide6, vispy, pyqtgraph, superqt); ``tests/core/test_layering.py``
checks that.
"""


def __getattr__(name: str):
    # ``core.__version__``: the one version string, pyproject's (see core/version.py)
    if name == "__version__":
        from core.version import version

        return version()
    raise AttributeError(f"module 'core' has no attribute {name!r}")
