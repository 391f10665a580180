"""Fixtures of the desktop app's tests: a main window with private settings and takes folder.
GL views need a real X display: run under Xvfb (scripts/test.sh does)."""

import atexit
import os
import shutil
import subprocess

import pytest
from PySide6.QtCore import QSettings


def _private_display() -> None:
    """Give this pytest-xdist worker its own Xvfb (before Qt opens a display): on one shared display
    the windows of two workers take each other's keyboard focus, and key presses miss the window
    under test."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or shutil.which("Xvfb") is None:
        return
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    number = b""
    while not number.endswith(b"\n"):
        chunk = os.read(read, 16)
        if not chunk:
            raise RuntimeError("Xvfb for this test worker did not start")
        number += chunk
    os.close(read)
    os.environ["DISPLAY"] = f":{number.decode().strip()}"
    atexit.register(server.terminate)


_private_display()


@pytest.fixture
def store(tmp_path):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    settings.setValue("settings/takes_folder", str(tmp_path / "takes"))
    settings.setValue("settings/analyse_on_open", False)
    # EmoNet's licence answered (no): analyses measure emotion with FER, the default; the one-time
    # question itself is tested in test_emotion_default.py
    settings.setValue("settings/emonet_licence", "declined")
    return settings


@pytest.fixture
def window(qtbot, store):
    from app.main_window import MainWindow

    win = MainWindow(store)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitActive(win)  # shortcuts reach only the active window
    yield win
    win.close()  # cancels the window's jobs and waits up to 10 s for them
    from PySide6.QtCore import QThreadPool

    # a job still running holds one of the pool's threads (as many as cores) for every later test
    # of this worker: fail here, not in the tests whose jobs then never start
    assert QThreadPool.globalInstance().activeThreadCount() == 0, "a job of this test was still running after close"


@pytest.fixture
def take_copy(single_emotion_take, tmp_path):
    """A private copy of the analysed single_face.mp4 take (fit + emotion), free to edit."""
    target = tmp_path / "take"
    shutil.copytree(single_emotion_take[1], target)
    return target


@pytest.fixture
def loaded(window, qtbot, take_copy):
    """The window with the analysed take open."""
    with qtbot.waitSignal(window.take_loaded, timeout=60000):
        window.open_take(take_copy)
    return window


@pytest.fixture(autouse=True)
def children_at_the_test_run_s_priority(monkeypatch):
    """The app starts its analyses and trainings at a lower priority so that the window stays
    responsive; in the test run the other pytest worker is a normal-priority process that keeps both
    cores busy, and a child at niceness 10 then gets about a tenth of a core (a 20 s actor training
    took over 300 s in CI). The shipped niceness itself is tested in test_workers.py."""
    import app.workers

    monkeypatch.setattr(app.workers, "CHILD_NICENESS", 0)
