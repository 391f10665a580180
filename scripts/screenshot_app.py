"""Screenshots of the desktop app at a few moments, for anyone to regenerate and look at.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_app.py \
        ../shared/fixtures/WolfgangLanger_Pexels.mp4 --out screenshots/

Writes 1_opened.png (right after opening), 2_analysing.png (mid-analysis), 3_analysed.png (after
the analysis, scrubbed to a frame), 4_edited.png (the happy slider at 0 %), 5_wireframe_side.png. Uses a private settings file and takes folder, so the user's are untouched.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.event_wait import wait_until  # noqa: E402

log = logging.getLogger("screenshot_app")


def settle(app: QApplication, seconds: float = 0.3) -> None:
    wait_until(app, lambda: False, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--frame", type=int, default=None, help="frame to show after analysis (default: the most emotional)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="emocap_shots_"))
    app = QApplication(sys.argv[:1])
    store = QSettings(str(work / "settings.ini"), QSettings.IniFormat)
    store.setValue("settings/takes_folder", str(work / "takes"))
    # EmoNet's licence answered (no), or its one-time question would wait for a click: FER measures emotion
    store.setValue("settings/emonet_licence", "declined")
    from app.main_window import MainWindow
    from app.theme import apply_dark_theme

    apply_dark_theme(app)

    window = MainWindow(store)
    window.resize(1500, 920)
    window.show()
    settle(app)

    def shot(name: str) -> None:
        settle(app, 0.4)
        # From the screen, not window.grab(): the 3D view is a native OpenGL window of its own.
        app.primaryScreen().grabWindow(window.winId()).save(str(args.out / name))
        log.info("wrote %s", args.out / name)

    window.open_input(args.input)
    wait_until(app, lambda: window.current == 0 and window.video._image is not None, 10)
    shot("1_opened.png")
    frames = window.source.info.frame_count
    wait_until(app, lambda: window.progress.bar.value() >= frames // 2, 120)
    shot("2_analysing.png")
    done = []
    window.job_finished.connect(lambda name, ok: done.append((name, ok)))
    window.take_loaded.connect(lambda _: done.append(("take", True)))
    if not wait_until(app, lambda: ("analysis", True) in done, 900):
        log.error("analysis did not finish")
        return 1
    wait_until(app, lambda: done.count(("take", True)) >= 2 or (window.view is not None and window.view.take.manifest.emotion), 60)
    settle(app, 1.0)
    view = window.view
    frame = args.frame
    if frame is None:
        curves = view.curves()
        probs = curves.emotion.get(curves.primary) if curves.primary else None
        frame = int(probs[:, 1:].max(1).argmax()) if probs is not None else frames // 2
    window.mesh_action.setChecked(True)
    window._overlays_changed()
    window.seek(frame)
    shot("3_analysed.png")
    panel = window.edit_panel
    if panel.sliders["happy"].isEnabled():
        panel.sliders["happy"].setValue(0)
    settle(app, 0.5)
    shot("4_edited.png")
    window.viewport.set_preset("side")
    window.viewport.set_wireframe(True)
    shot("5_wireframe_side.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
