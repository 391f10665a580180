"""Starting the app: `emocap gui INPUT` shows the first frame; the window opens without torch."""

import os
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from tests.conftest import fixture_path, run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_window_module_does_not_load_torch():
    code = "import sys, app.main_window; print(sorted(m for m in ('torch', 'mediapipe', 'bpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_emocap_gui_shows_the_first_frame(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    started = time.time()
    child = subprocess.Popen([sys.executable, "-m", "core.cli", "-v", "gui", str(fixture_path("single_face.mp4"))],
                             cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        shown = next(line for line in child.stderr if "first frame shown at" in line)
    finally:
        child.kill()
        child.wait()
    assert 0 < float(shown.rsplit("at ", 1)[1].split()[0]) - started < 20


def test_emocap_gui_refuses_a_missing_file():
    result = run_cli("gui", "/no/such/clip.mp4")
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_dropping_a_file_opens_it(window, qtbot):
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(fixture_path("single_face.jpg")))])
    event = QDropEvent(QPoint(100, 100), Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.frame_shown, timeout=5000):
        window.dropEvent(event)
    assert window.source.info.kind == "image" and window.input_path.name == "single_face.jpg"
    assert window.store.value("recent")[0].endswith("single_face.jpg")


def test_dropping_a_file_on_the_3d_view_opens_it(window, qtbot):
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(fixture_path("single_face.jpg")))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window.viewport.canvas.native, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.frame_shown, timeout=5000):
        QApplication.sendEvent(window.viewport.canvas.native, drop)
    assert window.input_path.name == "single_face.jpg"
