"""Help > About shows the one version string (pyproject's) and the git commit."""

import tomllib
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

ROOT = Path(__file__).resolve().parents[2]


def test_help_about_shows_the_version_and_commit(window, qtbot):
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    action = next(a for a in window.actions() if a.objectName() == "about")
    action.trigger()
    box = window.findChild(QMessageBox, "about_box")
    qtbot.waitUntil(lambda: box.isVisible(), timeout=3000)
    assert f"EmoCap {version}" in box.text()
    assert "(commit " in box.text()  # the tests run from a git checkout
    box.accept()
