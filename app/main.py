"""``emocap gui [INPUT]``: start the desktop app (optionally opening a recording or a take)."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from core.errors import EmoCapError, InputNotFoundError
from core.take.store import is_take_folder

log = logging.getLogger(__name__)


def run(input_path: Path | None = None, argv: list[str] | None = None) -> int:
    """Open the main window and run the event loop; returns the exit status."""
    started = time.time()
    if input_path is not None and not Path(input_path).exists():
        raise InputNotFoundError(f"{input_path} does not exist")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        raise EmoCapError("no display to open the window on: run EmoCap on a desktop session (or under xvfb-run)")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    app.setOrganizationName("EmoCap")
    app.setApplicationName("EmoCap")
    from app.main_window import MainWindow
    from app.theme import apply_dark_theme

    apply_dark_theme(app)

    window = MainWindow()
    window.show()
    log.info("window shown %.3f s after start", time.time() - started)
    if input_path is not None:
        path = Path(input_path)
        window.open_take(path) if is_take_folder(path) else window.open_input(path)
    else:
        window.restore_session()
    return app.exec()
