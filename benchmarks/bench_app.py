"""Desktop app timings under a real X display (run under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_app.py

1. time from ``emocap gui INPUT`` to the first frame on screen (the fixture, and a long synthetic
   clip: no full decode at open);
2. scrubbing rate with the 3D viewport at 1000x450 (decode + mesh + upload + draw, each frame on
   screen), against vispy's stock Mesh on its stock canvas redrawing the same vertices (the reference);
3. the longest main-thread stall while an analysis runs (a 5 ms timer's longest gap), and the one
   stall of loading torch once after start-up.
Prints a table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURE = ROOT.parent / "shared" / "fixtures" / "WolfgangLanger_Pexels.mp4"


def write_long_clip(path: Path, frames: int) -> Path:
    """A long H.264 clip (the fixture's first frames, looped) to time opening."""
    import av

    from core.video import open_source

    with open_source(FIXTURE) as source:
        images = [source.read(i)[::4, ::4] for i in range(0, 48)]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height = images[0].shape[1] // 2 * 2, images[0].shape[0] // 2 * 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "60"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(images[i % 48][: stream.height, : stream.width]), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def first_frame_seconds(clip: Path, work: Path) -> float:
    """Seconds from starting ``emocap gui CLIP`` to its log line 'first frame shown at T'."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(work / "config"), XDG_DATA_HOME=str(work / "data"))
    started = time.time()
    child = subprocess.Popen([sys.executable, "-m", "core.cli", "-v", "gui", str(clip)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stderr:
            if "first frame shown at" in line:
                return float(line.rsplit("at ", 1)[1].split()[0]) - started
        raise RuntimeError("the app exited before showing a frame")
    finally:
        child.kill()
        child.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long-frames", type=int, default=18000, help="frames of the long synthetic clip")
    parser.add_argument("--seconds", type=float, default=4.0, help="scrubbing time per measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_app_"))
    rows: list[tuple[str, str, str]] = []

    long_clip = write_long_clip(work / "long.mp4", args.long_frames)
    for name, clip in (("fixture, 472 frames", FIXTURE), (f"synthetic, {args.long_frames} frames", long_clip)):
        runs = [first_frame_seconds(clip, work) for _ in range(3)]
        rows.append((f"gui start to first frame ({name})", f"{min(runs):.2f} s", f"median {np.median(runs):.2f} s of 3"))

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    store = QSettings(str(work / "settings.ini"), QSettings.IniFormat)
    store.setValue("settings/takes_folder", str(work / "takes"))
    store.setValue("settings/emotion", False)
    from app.main_window import MainWindow

    window = MainWindow(store)
    window.resize(1500, 950)
    window.show()

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()

    gaps: list[float] = []
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    meter = QTimer(interval=5)
    meter.timeout.connect(tick)
    meter.start()
    window.open_input(FIXTURE, analyse=False)
    while window.engine_seconds is None:
        app.processEvents()
    pump(0.2)
    rows.append(("stall while torch loads once after start", f"{max(gaps) * 1000:.0f} ms",
                 f"engine loaded in {window.engine_seconds:.2f} s"))

    gaps.clear()
    last[0] = time.monotonic()
    finished = []
    window.job_finished.connect(lambda name, ok: finished.append(name))
    started = time.monotonic()
    window.start_analysis(overwrite=True)
    while "analysis" not in finished:
        app.processEvents()
        if time.monotonic() - started > 600:
            raise RuntimeError("analysis did not finish")
    analysis_seconds = time.monotonic() - started
    pump(1.0)  # the take loads
    ordered = sorted(gaps)
    rows.append(("longest main-thread stall during analysis", f"{ordered[-1] * 1000:.0f} ms",
                 f"p99 {ordered[int(0.99 * len(ordered))] * 1000:.0f} ms; analysis {analysis_seconds:.1f} s (child process)"))
    meter.stop()

    def longest_turn(seconds: float = 0.08) -> float:
        end, worst = time.monotonic() + seconds, 0.0
        while time.monotonic() < end:
            begun = time.perf_counter()
            app.processEvents()
            worst = max(worst, time.perf_counter() - begun)
        return worst

    repaints = []
    for i in range(20):
        window.statusBar().showMessage(f"status {i}")
        repaints.append(longest_turn())
    rows.append(("window repaint for a status-bar message", f"{np.median(repaints) * 1000:.1f} ms",
                 f"median of 20, max {max(repaints) * 1000:.1f} ms (3D view in a native child window)"))

    canvas = window.viewport.canvas
    canvas.widget.setFixedSize(1000, 450)
    pump(0.3)
    draws = [0]
    canvas.events.draw.connect(lambda event: draws.__setitem__(0, draws[0] + 1))

    def until_drawn(count: int) -> None:
        """Run the event loop until the canvas has drawn once more (a frame on screen)."""
        while draws[0] <= count:
            app.processEvents()

    frames = window.view.frame_count
    shown = 0
    start = time.monotonic()
    while time.monotonic() - start < args.seconds:
        before = draws[0]
        window.seek(shown % frames)
        until_drawn(before)
        shown += 1
    elapsed = time.monotonic() - start
    rows.append(("scrub: frames on screen per s (decode+mesh+draw)", f"{shown / elapsed:.1f}", "3D viewport at 1000x450, every frame drawn"))

    from vispy import scene

    reference = scene.SceneCanvas(app="pyside6", size=(1000, 450), show=True)
    ref_view = reference.central_widget.add_view()
    ref_view.camera = scene.TurntableCamera(up="+y")
    vertices = [window.view.posed(i)[0] for i in range(0, frames, max(1, frames // 50))]
    mesh = scene.visuals.Mesh(vertices=vertices[0], faces=window.view.faces, shading="smooth", parent=ref_view.scene)
    ref_view.camera.set_range()
    pump(0.3)
    ref_draws = [0]
    reference.events.draw.connect(lambda event: ref_draws.__setitem__(0, ref_draws[0] + 1))
    count = 0
    start = time.monotonic()
    while time.monotonic() - start < args.seconds:
        before = ref_draws[0]
        mesh.set_data(vertices=vertices[count % len(vertices)], faces=window.view.faces)
        reference.update()
        while ref_draws[0] <= before:
            app.processEvents()
        count += 1
    rows.append(("reference: stock vispy canvas, Mesh.set_data + draw per s", f"{count / (time.monotonic() - start):.1f}",
                 "same vertices, 1000x450, vispy's QOpenGLWidget"))
    reference.close()
    window.close()

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  notes")
    print("-" * (width + 60))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
