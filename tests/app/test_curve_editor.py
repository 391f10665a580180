"""The curve editor on the timelines, driven with mouse events in a real window: drag a key or a
selected range, draw, smooth, reset, region locks; undo, autosave, export and reopening."""

import os

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.export_dialog import ExportChoice
from core.curve_edits import locked_mask
from core.edit import load_edits
from core.export.curves import import_curves
from core.facemodel.open_model import ARKIT_NAMES

JAW = ARKIT_NAMES.index("jawOpen")
BROW = ARKIT_NAMES.index("browInnerUp")
SMILE = ARKIT_NAMES.index("mouthSmileLeft")


def at(window, frame: float, value: float) -> QPointF:
    """Viewport position of (frame, value) in the timelines' expression row."""
    vb = window.timelines.plots["curves"].vb
    return QPointF(window.timelines.graphics.mapFromScene(vb.mapViewToScene(QPointF(frame, value))))


def mouse_drag(window, qtbot, points, modifiers=Qt.NoModifier, steps: int = 6) -> None:
    """Press at the first (frame, value), move through the others, release at the last."""
    viewport = window.timelines.graphics.viewport()

    def send(kind, pos, button, buttons):
        event = QMouseEvent(kind, pos, viewport.mapToGlobal(pos), button, buttons, modifiers)
        QApplication.sendEvent(viewport, event)

    path = [at(window, *p) for p in points]
    send(QEvent.MouseButtonPress, path[0], Qt.LeftButton, Qt.LeftButton)
    for a, b in zip(path[:-1], path[1:]):
        for t in np.linspace(0, 1, steps + 1)[1:]:
            send(QEvent.MouseMove, a + (b - a) * float(t), Qt.NoButton, Qt.LeftButton)
            qtbot.wait(5)
    send(QEvent.MouseButtonRelease, path[-1], Qt.LeftButton, Qt.NoButton)
    qtbot.wait(20)


def face_frame(view, start: int) -> int:
    faces = np.nonzero(view.raw_fit.has_face)[0]
    return int(faces[faces >= start][0])


def pick(window, name: str) -> None:
    window.timelines.select_curve(name)
    assert window.timelines.gestures.selected == name and name in window.timelines.chosen_curves()


def test_dragging_a_key_edits_saves_exports_undoes_and_reopens(loaded, qtbot, tmp_path, take_copy):
    window, view = loaded, loaded.view
    raw = view.fit.expression.copy()
    frame = face_frame(view, 30)
    pick(window, "jawOpen")
    keys = window.timelines.gestures.points.getData()
    assert frame in keys[0].astype(int).tolist()  # the curve's keys are shown
    window.seek(frame)
    mesh_before = window.viewport._last[0].copy()
    recon_before = view.reconstruction_emotion()[frame].copy()
    y0 = float(raw[frame, JAW])
    target = min(0.95, y0 + 0.4)
    mouse_drag(window, qtbot, [(frame, y0), (frame, target)])
    edited = view.fit.expression
    assert edited[frame, JAW] == pytest.approx(target, abs=0.02)
    np.testing.assert_array_equal(np.delete(edited, frame, axis=0), np.delete(raw, frame, axis=0))  # one key
    assert window.undo_stack.count() == 1
    assert np.abs(window.viewport._last[0] - mesh_before).max() > 1e-4  # the 3D view follows
    assert not np.allclose(view.reconstruction_emotion()[frame], recon_before)  # and the emotion
    shown = window.timelines.items["reconstruction.happy"].getData()[1]
    assert shown[frame] == pytest.approx(view.reconstruction_emotion()[frame, 1], abs=1e-5)
    qtbot.waitUntil(lambda: frame in load_edits(take_copy).curves.keys("jawOpen"), timeout=10000)  # autosaved, 400 ms after the edit
    value = load_edits(take_copy).curves.keys("jawOpen")[frame]
    # the app's export writes the edited key
    out = tmp_path / "curves.csv"
    with qtbot.waitSignal(window.job_finished, timeout=60000):
        window.export(ExportChoice("curves_csv", out, None, apply_edits=True))
    curves = import_curves(out)
    assert curves["expression"][frame, JAW] == pytest.approx(value, abs=1e-6)
    # undo, redo
    window.undo_stack.undo()
    np.testing.assert_array_equal(view.fit.expression, raw)
    qtbot.waitUntil(lambda: not load_edits(take_copy).curves.keys("jawOpen"), timeout=10000)
    window.undo_stack.redo()
    assert view.fit.expression[frame, JAW] == pytest.approx(value)
    window.save_edits()
    # reopening the take shows the edit
    with qtbot.waitSignal(window.take_loaded, timeout=60000):
        window.open_take(take_copy)
    assert window.view is not view and window.view.fit.expression[frame, JAW] == pytest.approx(value)


def test_select_drag_smooth_and_reset_a_range(loaded, qtbot):
    window, view = loaded, loaded.view
    raw = view.fit.expression.copy()
    start = face_frame(view, 20)
    stop = start + 12
    assert view.raw_fit.has_face[start - 8:stop + 8].all()
    pick(window, "browInnerUp")
    mouse_drag(window, qtbot, [(start, 0.5), (stop - 1, 0.5)], Qt.ShiftModifier)
    assert window.timelines.gestures.selection == (start, stop)
    assert window.undo_stack.count() == 0  # selecting is no edit
    middle = start + 5
    y0 = float(raw[middle, BROW])
    mouse_drag(window, qtbot, [(middle, y0), (middle, y0 + 0.3)])
    change = view.fit.expression[:, BROW] - raw[:, BROW]
    assert np.allclose(change[start:stop], change[middle], atol=1e-5) and change[middle] == pytest.approx(0.3, abs=0.02)
    assert 0 < change[start - 3] < change[middle] and 0 < change[stop + 2] < change[middle]  # falloff, no step
    assert np.abs(np.diff(change[start - 8:stop + 8])).max() < 0.3 / 3
    np.testing.assert_array_equal(np.delete(view.fit.expression, BROW, axis=1), np.delete(raw, BROW, axis=1))
    # smoothing a noisy stretch: draw a zigzag, then smooth it
    zigzag = [(start + i, 0.3 + 0.2 * (i % 2)) for i in range(12)]
    mouse_drag(window, qtbot, zigzag, Qt.ControlModifier, steps=2)
    drawn = view.fit.expression[start:stop, BROW].copy()
    assert np.abs(np.diff(drawn)).mean() > 0.1
    window.timelines.editor_bar.smooth_button.click()
    smoothed = view.fit.expression[start:stop, BROW]
    assert smoothed[0] == drawn[0] and smoothed[-1] == drawn[-1]  # ends pinned
    assert np.abs(np.diff(smoothed[2:-2])).mean() < 0.5 * np.abs(np.diff(drawn[2:-2])).mean()
    assert window.undo_stack.count() == 3
    window.timelines.editor_bar.reset_button.click()  # the selection's edits go
    np.testing.assert_array_equal(view.fit.expression[start:stop], raw[start:stop])
    window.timelines.gestures.set_selection(None)
    window.timelines.editor_bar.reset_button.click()  # no selection: the whole curve
    np.testing.assert_array_equal(view.fit.expression, raw)
    assert window.view.edits.curves.is_identity


def test_ctrl_drag_draws_over_a_stretch(loaded, qtbot):
    window, view = loaded, loaded.view
    start = face_frame(view, 40)
    pick(window, "jawOpen")
    mouse_drag(window, qtbot, [(start, 0.8), (start + 10, 0.8)], Qt.ControlModifier)
    drawn = view.fit.expression[start:start + 11, JAW]
    np.testing.assert_allclose(drawn[view.fit.has_face[start:start + 11]], 0.8, atol=0.02)
    keyed = view.edits.curves.keys("jawOpen")
    assert set(keyed) <= set(np.nonzero(view.fit.has_face)[0].tolist())  # gaps get no keys
    assert window.undo_stack.count() == 1


def test_a_locked_region_refuses_curve_edits_and_sliders(loaded, qtbot):
    window, view = loaded, loaded.view
    raw = view.fit.expression.copy()
    frame = face_frame(view, 30)
    window.timelines.editor_bar.lock_buttons["mouth"].setChecked(True)
    pick(window, "mouthSmileLeft")
    y0 = float(raw[frame, SMILE])
    y1 = y0 + 0.3 if y0 < 0.6 else y0 - 0.3  # a drag that stays inside [0, 1]
    mouse_drag(window, qtbot, [(frame, y0), (frame, y1)])
    assert view.fit.expression.tobytes() == raw.tobytes()
    assert window.undo_stack.count() == 0
    assert "locked mouth region" in window.statusBar().currentMessage()
    assert "mouth locked" in window.timelines.editor_bar.status.text()
    # the sliders leave the locked region alone
    slider = window.edit_panel.sliders["intensity"]
    slider.setSliderDown(True)
    slider.setValue(40)
    slider.setSliderDown(False)
    slider.sliderReleased.emit()
    held = locked_mask(ARKIT_NAMES, ["mouth"])
    assert view.fit.expression[:, held].tobytes() == raw[:, held].tobytes()
    faces = view.fit.has_face
    assert np.allclose(view.fit.expression[faces][:, ~held], np.clip(0.4 * raw[faces][:, ~held], 0, 1), atol=1e-6)
    assert view.edits.layers[0].locked == ("mouth",)
    # unlocked, the same drag edits
    window.timelines.editor_bar.lock_buttons["mouth"].setChecked(False)
    mouse_drag(window, qtbot, [(frame, y0), (frame, y1)])
    assert view.fit.expression[frame, SMILE] == pytest.approx(y1, abs=0.02)


def test_screenshot_of_the_curve_editor(loaded, qtbot, tmp_path):
    """Edit a curve and save a picture of the window (EMOCAP_SCREENSHOT: where)."""
    window, view = loaded, loaded.view
    start = face_frame(view, 20)
    pick(window, "browInnerUp")
    mouse_drag(window, qtbot, [(start, 0.5), (start + 14, 0.5)], Qt.ShiftModifier)
    y0 = float(view.fit.expression[start + 7, BROW])
    mouse_drag(window, qtbot, [(start + 7, y0), (start + 7, y0 + 0.35)])
    window.timelines.editor_bar.lock_buttons["mouth"].setChecked(True)
    window.seek(start + 7)
    qtbot.wait(300)
    path = os.environ.get("EMOCAP_SCREENSHOT") or str(tmp_path / "curve_editor.png")
    # from the screen, not window.grab(): the 3D view is a native OpenGL window of its own
    assert window.screen().grabWindow(window.winId()).save(path)
