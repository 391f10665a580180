"""A dark Fusion theme, like the tools animators work in (the viewport and plots are dark too)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    p = QPalette()
    colours = {
        QPalette.Window: (45, 46, 50), QPalette.WindowText: (220, 220, 220), QPalette.Base: (32, 33, 36),
        QPalette.AlternateBase: (45, 46, 50), QPalette.ToolTipBase: (60, 60, 64), QPalette.ToolTipText: (230, 230, 230),
        QPalette.Text: (220, 220, 220), QPalette.Button: (55, 56, 60), QPalette.ButtonText: (220, 220, 220),
        QPalette.BrightText: (255, 90, 90), QPalette.Highlight: (60, 130, 210), QPalette.HighlightedText: (255, 255, 255),
        QPalette.Link: (90, 160, 240), QPalette.PlaceholderText: (130, 130, 130),
    }
    for role, rgb in colours.items():
        p.setColor(role, QColor(*rgb))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, QColor(120, 120, 120))
    app.setPalette(p)
