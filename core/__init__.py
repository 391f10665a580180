"""EmoCap core: video, face observation, face models, fitting, emotion, export.

This package never imports Qt (PySide6, vispy, pyqtgraph, superqt); ``tests/core/test_layering.py``
checks that.
"""

__version__ = "0.1.0"
