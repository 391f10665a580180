"""Help > About: EmoCap's version (pyproject's, with the git commit it was built from) and where
its models live."""

from __future__ import annotations

import html
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def about_text() -> str:
    from core.emotion.store import store_dir
    from core.version import version_text

    frozen = getattr(sys, "frozen", False)
    lines = [
        f"<b>{html.escape(version_text())}</b>",
        "Emotion-faithful 3D face animation from video, for animators.",
        f"Installed as: {'desktop bundle' if frozen else 'Python environment'} ({html.escape(sys.executable)})",
        f"Model store: {html.escape(str(store_dir()))} (emotion recognisers: <tt>emocap models install</tt>)",
    ]
    return "<br>".join(lines)


def about_box(parent: QWidget) -> QMessageBox:
    """The About box, not yet shown (``open()`` it: it does not block)."""
    box = QMessageBox(QMessageBox.Information, "About EmoCap", about_text(), QMessageBox.Ok, parent)
    box.setObjectName("about_box")
    box.setAttribute(Qt.WA_DeleteOnClose)
    return box
