"""Driving the app from a script (screenshots, the bundle's smoke test): run Qt's events until
something is true."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtWidgets import QApplication


def wait_until(app: QApplication, condition: Callable[[], bool], timeout: float) -> bool:
    """Process ``app``'s events until ``condition()`` holds (True) or ``timeout`` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.01)
    return False
