"""The curve editor on the timelines' expression row.

Pick a curve in the list beside the timelines (click its name; it is shown and drawn thicker) and
its keys appear as points (every frame, or every n-th one when zoomed out, plus every edited
frame). In the expression row:

- drag a point: moves that frame's value; inside a selection it moves the whole selection, which
  blends back into the curve over a few frames on each side (no step);
- shift-drag: selects a range of frames (drag its edges to change it);
- ctrl-drag: draws the curve over the stretch the stroke passes;
- Smooth (Alt+S) smooths the selection (ends pinned), Reset (Alt+Backspace) removes the edits of the
  selection (or of the whole curve when nothing is selected);
- the region locks (Brows, Eyes, Mouth, Jaw) refuse edits of curves in a locked region and keep the
  sliders away from them (a slider layer made while a region is locked leaves its curves alone).

Drags elsewhere pan, as before. Every finished gesture is one undo step (Edit > Undo) and is
autosaved to TAKE/edits.json with the slider edits (core.curve_edits holds the operations).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.frame_range import frame_range_of, show_frame_range
from core.curve_edits import DRAG_FALLOFF, REGIONS, curve_region

HIT_PIXELS = 10  # a press this close to a key grabs it
MAX_POINTS = 400  # keys drawn when zoomed out (every n-th frame, plus the edited ones)


class CurveEditorBar(QWidget):
    """Smooth / Reset buttons and the region locks, under the curve list."""

    smooth_requested = Signal()
    reset_requested = Signal()
    locks_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("Click a curve's name to edit it")
        self.status.setObjectName("curve_editor_status")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: #aaa; font-size: 8pt;")
        layout.addWidget(self.status)
        row = QHBoxLayout()
        self.smooth_button = QPushButton("Smooth")
        self.smooth_button.setObjectName("curve_smooth")
        self.smooth_button.setToolTip("smooth the selected frames of the curve, ends pinned (Alt+S)")
        self.smooth_button.clicked.connect(self.smooth_requested)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setObjectName("curve_reset")
        self.reset_button.setToolTip("remove the curve edits of the selection, or of the whole curve (Alt+Backspace)")
        self.reset_button.clicked.connect(self.reset_requested)
        row.addWidget(self.smooth_button)
        row.addWidget(self.reset_button)
        layout.addLayout(row)
        locks = QGridLayout()
        locks.setSpacing(2)
        locks.addWidget(QLabel("Lock"), 0, 0, 1, 2)
        self.lock_buttons: dict[str, QPushButton] = {}
        for i, region in enumerate(REGIONS):
            button = QPushButton(region.capitalize())
            button.setObjectName(f"lock_{region}")
            button.setCheckable(True)
            button.setToolTip(f"lock the {region}: no curve edit or slider moves its curves")
            button.setStyleSheet("QPushButton:checked { background: #a33; color: white; }")
            button.toggled.connect(lambda _=False: self.locks_changed.emit())
            locks.addWidget(button, 1 + i // 2, i % 2)
            self.lock_buttons[region] = button
        layout.addLayout(locks)

    def locked(self) -> tuple[str, ...]:
        return tuple(region for region, button in self.lock_buttons.items() if button.isChecked())


class CurveViewBox(pg.ViewBox):
    """The expression row's view box: gives left-button drags to the timeline's curve editor when
    it wants them (a drag on a key, shift or ctrl), else pans."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.editor = None  # TimelinePanel: has curve_drag_event(viewbox, ev) -> bool

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (pyqtgraph)
        if self.editor is not None and ev.button() == Qt.LeftButton and self.editor.curve_drag_event(self, ev):
            ev.accept()
            return
        super().mouseDragEvent(ev, axis)


class KeyPoints(pg.ScatterPlotItem):
    """The selected curve's keys. Above the playhead, so a key under it can still be grabbed;
    a drag the editor does not want goes on to the items below (the playhead, then the view box)."""

    def __init__(self, gestures, **kwargs) -> None:
        super().__init__(**kwargs)
        self.gestures = gestures

    def mouseDragEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph)
        if ev.button() == Qt.LeftButton and self.gestures.drag_event(self.gestures.plot.vb, ev):
            ev.accept()
        else:
            ev.ignore()


class CurveGestures:
    """The timeline side of the editor: the selected curve's key points, the selection region, the
    drawn stroke and the mouse gestures. Lives in a TimelinePanel (``panel``), which emits
    ``curve_dragged(name, start, stop, falloff, delta, final)`` and
    ``curve_drawn(name, points, final)``."""

    def __init__(self, panel, plot: pg.PlotItem) -> None:
        self.panel = panel
        self.plot = plot
        self.selected: str | None = None
        self.selection: tuple[int, int] | None = None
        self.keyed_frames = lambda name: {}  # {frame: value} of a curve's edits (set by the window)
        self.points = KeyPoints(self, size=7, pen=pg.mkPen(255, 255, 255, 200), brush=pg.mkBrush(0, 0, 0, 0))
        self.points.setZValue(1000)  # above the playhead
        plot.addItem(self.points, ignoreBounds=True)
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(255, 170, 60, 45), pen=pg.mkPen(255, 170, 60), movable=True)
        self.region.setZValue(-5)
        self.region.hide()
        self.region.sigRegionChangeFinished.connect(self._region_moved)
        plot.addItem(self.region, ignoreBounds=True)
        self.stroke = pg.PlotDataItem(pen=pg.mkPen(255, 255, 255, width=1.2, style=Qt.DotLine))
        self.stroke.setZValue(25)
        plot.addItem(self.stroke, ignoreBounds=True)
        self._gesture: dict | None = None
        plot.vb.sigXRangeChanged.connect(lambda *_: self.update_points())

    # -- what is shown -------------------------------------------------------------------------
    def curve(self) -> np.ndarray | None:
        panel = self.panel
        if self.selected is None or panel._expression is None or self.selected not in panel._names:
            return None
        return panel._expression[:, panel._names.index(self.selected)]

    def update_points(self) -> None:
        curve = self.curve()
        if curve is None or self.selected not in self.panel.chosen_curves():
            self.points.setData([], [])
            return
        low, high = self.plot.vb.viewRange()[0]
        lo, hi = max(0, int(np.floor(low))), min(len(curve), int(np.ceil(high)) + 1)
        step = max(1, int(np.ceil((hi - lo) / MAX_POINTS)))
        keyed = self.keyed_frames(self.selected)
        frames = set(range(lo, hi, step)) | set(sorted(f for f in keyed if lo <= f < hi)[::step])
        frames = np.array(sorted(frames), np.int64)
        frames = frames[np.isfinite(curve[frames])] if len(frames) else frames
        colour = self.panel._curve_colours.get(self.selected, (255, 255, 255))
        brushes = [pg.mkBrush(*colour) if int(f) in keyed else pg.mkBrush(28, 29, 33) for f in frames]
        self.points.setData(frames.astype(np.float64), curve[frames], brush=brushes,
                            pen=pg.mkPen(*colour), size=7 if step == 1 else 5)

    def select_curve(self, name: str | None) -> None:
        self.selected = name
        self.update_points()

    def set_selection(self, start: int | None, stop: int | None = None) -> None:
        self.selection = show_frame_range(self.region, start, stop)
        self.panel.curve_selection_changed.emit(*(self.selection or (-1, -1)))

    def _region_moved(self) -> None:
        self.set_selection(*frame_range_of(self.region, self.panel.frame_count))

    # -- gestures -----------------------------------------------------------------------------
    def drag_event(self, vb, ev) -> bool:
        """Handle a left-button drag in the expression row; False: not ours (pan)."""
        if ev.isStart():
            self._gesture = self._begin(vb, ev)
        gesture = self._gesture
        if gesture is None:
            return False
        point = vb.mapSceneToView(ev.scenePos())
        final = ev.isFinish()
        if gesture["mode"] == "select":
            a, b = sorted((gesture["frame"], self.panel._frame_at(point.x())))
            self.set_selection(a, b + 1)
        elif gesture["mode"] == "drag":
            delta = float(point.y()) - gesture["y"]
            self.panel.curve_dragged.emit(self.selected, gesture["start"], gesture["stop"], gesture["falloff"],
                                          delta, final)
        else:  # draw
            gesture["points"].append((float(point.x()), float(point.y())))
            xy = np.array(gesture["points"])
            self.stroke.setData(xy[:, 0], xy[:, 1])
            self.panel.curve_drawn.emit(self.selected, list(gesture["points"]), final)
            if final:
                self.stroke.setData([], [])
        if final:
            self._gesture = None
        return True

    def _begin(self, vb, ev) -> dict | None:
        curve = self.curve()
        if curve is None or self.selected not in self.panel.chosen_curves():
            return None
        press = ev.buttonDownScenePos()
        point = vb.mapSceneToView(press)
        frame = self.panel._frame_at(point.x())
        mods = ev.modifiers()
        if mods & Qt.ShiftModifier:
            return {"mode": "select", "frame": frame}
        if mods & Qt.ControlModifier:
            return {"mode": "draw", "points": [(float(point.x()), float(point.y()))]}
        if not np.isfinite(curve[frame]):
            return None
        key = vb.mapViewToScene(QPointF(frame, float(curve[frame])))
        if (key - press).manhattanLength() > 2 * HIT_PIXELS:
            return None
        if self.selection is not None and self.selection[0] <= frame < self.selection[1]:
            start, stop, falloff = *self.selection, DRAG_FALLOFF
        else:
            start, stop, falloff = frame, frame + 1, 0
        return {"mode": "drag", "y": float(point.y()), "start": start, "stop": stop, "falloff": falloff}


class CurveEditor(QObject):
    """The window side: turns the timeline's gestures and the bar's buttons into core.curve_edits
    keys on the window's edits (preview while dragging, one undo step per finished gesture)."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        timelines = window.timelines
        self.bar: CurveEditorBar = timelines.editor_bar
        self.gestures: CurveGestures = timelines.gestures
        self.gestures.keyed_frames = self._keyed
        timelines.curve_dragged.connect(self._dragged)
        timelines.curve_drawn.connect(self._drawn)
        timelines.curve_selection_changed.connect(lambda *_: self._show_status())
        timelines.curve_selected.connect(lambda *_: self._show_status())
        self.bar.smooth_requested.connect(self.smooth_selection)
        self.bar.reset_requested.connect(self.reset_selection)
        self.bar.locks_changed.connect(self._show_status)
        self._base: np.ndarray | None = None  # the curve as shown when the gesture began

    def add_actions(self, menu) -> None:
        menu.addSeparator()
        self.window._action(menu, "Smooth curve selection", self.smooth_selection, "Alt+S", "curve_smooth")
        self.window._action(menu, "Reset curve selection", self.reset_selection, "Alt+Backspace", "curve_reset")

    def locked(self) -> tuple[str, ...]:
        return self.bar.locked()

    def _keyed(self, name: str) -> dict[int, float]:
        view = self.window.view
        return {} if view is None else view.edits.curves.keys(name)

    def _show_status(self) -> None:
        name = self.gestures.selected
        if name is None:
            self.bar.status.setText("Click a curve's name to edit it")
            return
        region = curve_region(name)
        sel = self.gestures.selection
        text = name + (f" ({region})" if region else "")
        text += f"; frames {sel[0]}-{sel[1] - 1}" if sel else "; drag a key, shift-drag to select, ctrl-drag to draw"
        if region in self.locked():
            text += f"; {region} locked"
        self.bar.status.setText(text)

    # -- turning gestures into edits ---------------------------------------------------------
    def _context(self, name: str):
        """(the curve as shown with the committed edits, has_face, bounds) or None."""
        view = self.window.view
        if view is None or view.fit is None or view.basis is None or name not in view.basis.names:
            return None
        from core.edit import apply_edits

        shown = apply_edits(view.base_fit, self.window.committed, view.basis)
        return shown.expression[:, list(view.basis.names).index(name)].astype(np.float64), shown.has_face, view.basis.bounds

    def _propose(self, name: str, make_keys, final: bool, text: str) -> None:
        """Preview (or, when final, commit as one undo step) the committed edits with the keys
        ``make_keys(curve, has_face)`` -> (frames, values) set on curve ``name``."""
        from app.main_window import EditCommand
        from core.errors import EmoCapError

        window = self.window
        if self._base is None:
            self._base = self._context(name)
        context = self._base
        if final:
            self._base = None
        if context is None:
            return
        curve, has_face, bounds = context
        committed = window.committed
        try:
            frames, values = make_keys(curve, has_face)
            edits = committed.with_curves(committed.curves.set(name, frames, values, has_face=has_face,
                                                               bounds=bounds, locked=self.locked()))
        except EmoCapError as err:
            window.statusBar().showMessage(str(err), 5000)
            if final:
                window.apply_edits(committed, commit=False)
            return
        if not final:
            window._pending_preview = edits
            window._preview_timer.start()
        elif edits != committed:
            window._pending_preview = None
            window.undo_stack.push(EditCommand(window, committed, edits, text))

    def _dragged(self, name: str, start: int, stop: int, falloff: int, delta: float, final: bool) -> None:
        from core.curve_edits import drag_keys

        self._propose(name, lambda curve, faces: drag_keys(curve, faces, start, stop, delta, falloff), final,
                      f"drag {name}")

    def _drawn(self, name: str, points: list, final: bool) -> None:
        from core.curve_edits import draw_keys

        self._propose(name, lambda curve, faces: draw_keys(points, faces), final, f"draw {name}")

    def smooth_selection(self) -> None:
        from core.curve_edits import smooth_keys

        name, sel = self.gestures.selected, self.gestures.selection
        if name is None or sel is None:
            self.window.statusBar().showMessage("pick a curve and shift-drag over the frames to smooth", 5000)
            return
        self._base = None
        self._propose(name, lambda curve, faces: smooth_keys(curve, faces, *sel), True, f"smooth {name}")

    def reset_selection(self) -> None:
        from app.main_window import EditCommand
        from core.errors import EmoCapError

        window = self.window
        name = self.gestures.selected
        if name is None or window.view is None:
            window.statusBar().showMessage("pick a curve first", 5000)
            return
        start, stop = self.gestures.selection or (0, window.view.frame_count)
        committed = window.committed
        try:
            edits = committed.with_curves(committed.curves.reset(name, start, stop, locked=self.locked()))
        except EmoCapError as err:
            window.statusBar().showMessage(str(err), 5000)
            return
        if edits != committed:
            window.undo_stack.push(EditCommand(window, committed, edits, f"reset {name}"))
