"""Run inside the desktop bundle by packaging/smoke_test.py, as ``emocap smoke_gui.py TAKE OUT.png CLIP``
(the bundle's program runs a script by path the way Python would, see emocap_main.py): opens the
take in the app's main window, screenshots it from the screen (the 3D view is a native OpenGL window
of its own, so window.grab() would miss it), then opens CLIP and analyses it in the app (which runs
``emocap -m core.cli analyze`` as its child). Prints one JSON line: how many of the 3D viewport's
pixels differ from its empty background, and whether the app's analysis finished. Needs a display
(Xvfb)."""

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPoint, QSettings
from PySide6.QtWidgets import QApplication

from app.event_wait import wait_until

log = logging.getLogger("smoke_gui")


def main() -> int:
    take, out = Path(sys.argv[1]), Path(sys.argv[2])
    app = QApplication(sys.argv[:1])
    work = Path(tempfile.mkdtemp(prefix="emocap_smoke_gui_", dir=out.parent))  # removed with the smoke test's folder
    store = QSettings(str(work / "settings.ini"), QSettings.IniFormat)
    store.setValue("settings/takes_folder", str(work / "takes"))
    store.setValue("settings/emonet_licence", "declined")  # no modal question (EmoNet is not installed anyway)
    from app.main_window import MainWindow
    from app.theme import apply_dark_theme
    from app.viewport import BACKGROUND

    apply_dark_theme(app)
    window = MainWindow(store)
    window.resize(1440, 900)  # the app's own default size, as `emocap gui` opens it
    window.show()
    shown = []
    window.frame_shown.connect(shown.append)
    window.open_take(take)
    if not wait_until(app, lambda: window.view is not None and shown, 60):
        print(json.dumps({"error": "the take did not show"}))
        return 1
    window.seek(window.player.frame_count // 2)
    wait_until(app, lambda: False, 1.5)
    shot = app.primaryScreen().grabWindow(window.winId())
    shot.save(str(out))
    widget = window.viewport.canvas.widget
    corner = widget.mapTo(window, QPoint(0, 0))
    ratio = shot.devicePixelRatio()
    image = shot.toImage().convertToFormat(shot.toImage().Format.Format_RGB888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = pixels[:, : image.width() * 3].reshape(image.height(), image.width(), 3)
    x0, y0 = int(corner.x() * ratio), int(corner.y() * ratio)
    region = pixels[y0:y0 + int(widget.height() * ratio), x0:x0 + int(widget.width() * ratio)].astype(np.int16)
    background = np.round(np.array(BACKGROUND[:3]) * 255).astype(np.int16)
    drawn = np.abs(region - background).max(axis=2) > 16
    report = {"viewport": [x0, y0, region.shape[1], region.shape[0]], "drawn_fraction": float(drawn.mean()),
              "distinct_colours": int(len(np.unique(region.reshape(-1, 3), axis=0))), "frame": window.current,
              "screenshot": str(out)}
    finished = []
    window.job_finished.connect(lambda name, ok: finished.append((name, ok)))
    started = time.monotonic()
    window.open_input(Path(sys.argv[3]), analyse=True)
    wait_until(app, lambda: finished, 600)
    report["app_analysis"] = {"finished": finished[:1], "seconds": round(time.monotonic() - started, 1),
                              "frames_with_mesh": 0 if window.view is None else int(window.view.frame_count)}
    print(json.dumps(report))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
