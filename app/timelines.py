"""Timelines (pyqtgraph), x in frames: the performer's emotion, the reconstruction's emotion (what
recognisers read on the curves worn by a neutral carrier face, core/emotion/carrier.py; with edits,
dashed, what the take's emotion-from-curves model predicts for the edited curves), valence /
arousal / intensity / consistency (image vs render) / carried (performer vs carrier), micro-expression energy
when present, and the expression curves the user picks, each with MediaPipe's blendshape network's
score of the same name as a thin dashed line in its colour. A playhead in every row; click to seek,
drag the playhead to scrub, wheel to zoom in time, drag the background to pan. Frames without a
face are gaps. An in/out range (I / O keys, or drag its edges) selects frames for the sliders. A
dashed line in every row marks the take's neutral frame (the frame its identity was fitted on).
The expression row is also a curve editor (app/curve_editor.py): click a curve's name to edit it."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QSplitter, QVBoxLayout, QWidget

from app.curve_editor import CurveEditorBar, CurveGestures, CurveViewBox
from app.frame_range import frame_range_of, show_frame_range
from core.emotion.types import EMOTIONS

EMOTION_COLOURS = {
    "neutral": (170, 170, 170), "happy": (250, 200, 40), "sad": (70, 130, 230), "surprise": (240, 120, 220),
    "fear": (150, 90, 220), "disgust": (90, 190, 90), "anger": (230, 60, 50), "contempt": (200, 140, 80),
}
AFFECT_COLOURS = {"valence": (60, 200, 200), "arousal": (240, 150, 50), "intensity": (220, 220, 220),
                  "consistency": (130, 220, 130), "carried": (255, 120, 160), "face confidence": (120, 120, 255)}
CURVE_COLOURS = [(255, 120, 120), (120, 200, 255), (255, 210, 110), (170, 255, 150), (220, 150, 255), (255, 170, 220)]
DEFAULT_CURVES = ("jawOpen", "mouthSmileLeft", "browInnerUp", "eyeBlinkLeft")
ROWS = ("emotion", "reconstruction", "affect", "micro", "curves")
CARRIER_KEY = "carrier "  # item key prefix (after "reconstruction.") of the carrier's emotion
NETWORK_KEY = "mediapipe "  # item key prefix (after "curves.") of the network's dashed lines
NETWORK_NOTE = "&nbsp;<span style='font-size: 8pt'>(dashed: MediaPipe's network)</span>"
NEUTRAL_COLOUR = (90, 200, 255)


def recognisers_text(names) -> str:
    """The recognisers that ran, each with its weights' licence: "fer (MIT), emonet (CC BY-NC-ND ...)"."""
    from core.emotion.choice import licence_of

    return ", ".join(f"{name} ({licence_of(name)})" for name in names)


def keyed_title(title: str, colours: dict[str, tuple[int, int, int]]) -> str:
    """A row title followed by its curves' names in their colours (the rows are too short for a
    legend inside the plot: it would sit on the curves)."""
    key = "&nbsp;&nbsp;".join(f"<span style='color: rgb{tuple(colour)}'>&#9632;&nbsp;{name}</span>"
                              for name, colour in colours.items())
    return f"{title}&nbsp;&nbsp;&nbsp;<span style='font-size: 8pt'>{key}</span>" if key else title


ROW_TITLES = {"emotion": keyed_title("Emotion (performer)", EMOTION_COLOURS),
              "reconstruction": "Emotion (the curves on a neutral face)",
              "affect": keyed_title("Affect", AFFECT_COLOURS), "micro": "Micro-expression energy",
              "curves": "Expression curves"}


def measured_line(values: np.ndarray, has_face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) to draw N per-frame values that may be measured on some frames only (the image-vs-
    render consistency of a sampled recogniser: NaN between its frames): the finite values of face
    frames joined in order, broken (a NaN) where a frame without a face lies between two of them.
    Drawn frame by frame, isolated measured frames would show nothing."""
    values = np.asarray(values, np.float64)
    faces = np.asarray(has_face, bool)[: len(values)]
    rows = np.flatnonzero(np.isfinite(values[: len(faces)]) & faces)
    x, y = rows.astype(np.float64), values[rows]
    without_face = np.cumsum(~faces)
    breaks = np.flatnonzero(without_face[rows[1:]] != without_face[rows[:-1]]) + 1
    return np.insert(x, breaks, rows[breaks] - 0.5), np.insert(y, breaks, np.nan)


class TimelinePanel(QWidget):
    """Emits ``seek(frame)`` when the user clicks or drags in time and ``range_changed(start, stop)``
    (stop exclusive; (-1, -1) when cleared). The curve editor's gestures: ``curve_selected(name)``,
    ``curve_selection_changed(start, stop)`` ((-1, -1): none), ``curve_dragged(name, start, stop,
    falloff, delta, final)``, ``curve_drawn(name, [(frame, value), ...], final)``."""

    seek = Signal(int)
    range_changed = Signal(int, int)
    curve_selected = Signal(str)
    curve_selection_changed = Signal(int, int)
    curve_dragged = Signal(str, int, int, int, float, bool)
    curve_drawn = Signal(str, list, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, background=(28, 29, 33), foreground=(200, 200, 200))
        self.graphics = pg.GraphicsLayoutWidget()
        self.plots: dict[str, pg.PlotItem] = {}
        self.playheads: dict[str, pg.InfiniteLine] = {}
        self.items: dict[str, pg.PlotDataItem] = {}
        self.neutral_markers: dict[str, pg.InfiniteLine] = {}
        self.frame_count = 0
        self.current = 0
        for row, key in enumerate(ROWS):
            plot = self.graphics.addPlot(row=row, col=0, title=ROW_TITLES[key],
                                         viewBox=CurveViewBox() if key == "curves" else None)
            plot.titleLabel.setAttr("justify", "left")
            plot.setMouseEnabled(x=True, y=False)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.getAxis("left").setWidth(38)
            if key != ROWS[0]:
                plot.setXLink(self.plots[ROWS[0]])
            if key == "affect":
                plot.setYRange(-1, 1, padding=0.05)
                plot.getAxis("left").setTicks([[(-1, "-1"), (0, "0"), (1, "1")]])
            elif key != "micro":
                plot.setYRange(0, 1, padding=0.05)
                plot.getAxis("left").setTicks([[(0, "0"), (0.5, ".5"), (1, "1")]])
            line = pg.InfiniteLine(0, movable=True, pen=pg.mkPen((255, 80, 80), width=2), hoverPen=pg.mkPen((255, 160, 160), width=3))
            line.sigDragged.connect(self._line_dragged)
            plot.addItem(line, ignoreBounds=True)
            self.plots[key] = plot
            self.playheads[key] = line
            marker = pg.InfiniteLine(0, pen=pg.mkPen(NEUTRAL_COLOUR, width=1.5, style=Qt.DashLine),
                                     label="neutral" if key == ROWS[0] else None,
                                     labelOpts={"position": 0.92, "color": NEUTRAL_COLOUR, "anchors": [(0, 0.5), (0, 0.5)]})
            marker.setToolTip("neutral frame: the performer's identity is fitted on it (Analysis menu)")
            marker.setZValue(line.zValue() - 1)
            marker.hide()
            plot.addItem(marker, ignoreBounds=True)
            self.neutral_markers[key] = marker
        self.plots["curves"].setMinimumHeight(120)  # the row where curves are edited: the tallest
        self.graphics.scene().sigMouseClicked.connect(self._clicked)
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(255, 255, 255, 25), movable=True)
        self.region.setZValue(-10)
        self.region.hide()
        self.region.sigRegionChangeFinished.connect(self._region_changed)
        self.plots["emotion"].addItem(self.region, ignoreBounds=True)
        self.range: tuple[int, int] | None = None
        self.plots["curves"].vb.editor = self
        self.gestures = CurveGestures(self, self.plots["curves"])

        self.curve_list = QListWidget()
        self.curve_list.setObjectName("curve_list")
        self.curve_list.setMaximumWidth(190)
        self.curve_list.itemChanged.connect(self._curve_choice_changed)
        self.curve_list.currentItemChanged.connect(self._curve_picked)
        self.editor_bar = CurveEditorBar()
        self.editor_bar.setMaximumWidth(190)
        picker = QWidget()
        picker_layout = QVBoxLayout(picker)
        picker_layout.setContentsMargins(2, 2, 2, 2)
        picker_layout.addWidget(QLabel("Expression curves"))
        picker_layout.addWidget(self.curve_list, 1)
        picker_layout.addWidget(self.editor_bar)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.graphics)
        splitter.addWidget(picker)
        splitter.setStretchFactor(0, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._expression: np.ndarray | None = None
        self._names: list[str] = []
        self._network: dict[str, np.ndarray] = {}  # MediaPipe's network's score per name, N (NaN: no face)
        self._curve_colours: dict[str, tuple[int, int, int]] = {}  # shown expression curve -> colour
        self.set_row_visible("micro", False)

    # -- data ------------------------------------------------------------------------------
    def _curve(self, row: str, key: str, x: np.ndarray, y: np.ndarray, colour, name: str | None = None,
               style=Qt.SolidLine, width: float = 1.6) -> None:
        item = self.items.get(f"{row}.{key}")
        if item is None:
            item = self.plots[row].plot(pen=pg.mkPen(colour, width=width, style=style), name=name, connect="finite")
            # Cached as pixmaps: moving the playhead then costs no curve repaint (+25 % scrub rate).
            item.curve.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            self.items[f"{row}.{key}"] = item
        item.setData(x, np.asarray(y, np.float64), connect="finite")

    def _set_title(self, row: str, html: str) -> None:
        """A row's title that may be cut at the right edge: a long one (the recognisers and their
        licences) otherwise widens every row past the window and hides the clip's last frames."""
        label = self.plots[row].titleLabel
        self.plots[row].setTitle(html)
        label.setMinimumWidth(0)
        label._sizeHint[Qt.SizeHint.MinimumSize] = (0, label._sizeHint[Qt.SizeHint.MinimumSize][1])
        label._sizeHint[Qt.SizeHint.PreferredSize] = (0, label._sizeHint[Qt.SizeHint.PreferredSize][1])
        label.updateGeometry()

    def clear(self) -> None:
        """Forget every curve (another clip is opened)."""
        for key, item in self.items.items():
            self.plots[key.split(".", 1)[0]].removeItem(item)
        self.items = {}
        self._expression = None
        self._names = []
        self._network = {}
        self._curve_colours = {}
        self.curve_list.clear()
        self.gestures.select_curve(None)
        self.gestures.set_selection(None)
        self.set_row_visible("micro", False)
        for row in ("emotion", "curves"):
            self._set_title(row, ROW_TITLES[row])

    def set_frame_count(self, frames: int) -> None:
        self.frame_count = frames
        for plot in self.plots.values():
            plot.setLimits(xMin=-0.5, xMax=max(frames, 1) - 0.5)
        self.plots["emotion"].setXRange(0, max(frames - 1, 1), padding=0.01)

    def set_curves(self, curves) -> None:
        """Show a core.take_view.Curves (or a partial one while an analysis runs)."""
        x = np.arange(len(curves.times), dtype=np.float64)
        faces = curves.has_face

        def gaps(values: np.ndarray) -> np.ndarray:
            out = np.asarray(values, np.float64).copy()
            out[~faces[: len(out)]] = np.nan
            return out

        if curves.primary and curves.primary in curves.emotion:
            probs = curves.emotion[curves.primary]
            for k, name in enumerate(EMOTIONS):
                self._curve("emotion", name, x, gaps(probs[:, k]), EMOTION_COLOURS[name], name)
            self._set_title("emotion", keyed_title(
                f"Emotion (performer, {curves.primary}; measured by {recognisers_text(curves.emotion)})", EMOTION_COLOURS))
        if curves.carrier_emotion is not None:
            for k, name in enumerate(EMOTIONS):
                self._curve("reconstruction", CARRIER_KEY + name, x, gaps(curves.carrier_emotion[:, k]), EMOTION_COLOURS[name])
        if curves.carrier is not None:
            where = (f"on {html.escape(Path(curves.carrier).name)}" if curves.carrier_emotion is not None
                     else f"none: {html.escape(curves.carrier)}")
            self._set_title("reconstruction", f"Emotion (the curves on a neutral face, {where})"
                                              "&nbsp;<span style='font-size: 8pt'>(dashed: with your edits, predicted)</span>")
        for key in ("valence", "arousal", "intensity", "consistency", "carried"):
            values = getattr(curves, key)
            if values is not None:
                self._curve("affect", key, *measured_line(values, faces), AFFECT_COLOURS[key], key)
        self.set_confidence(curves.confidence, faces)
        if curves.micro_energy is not None:
            self.set_row_visible("micro", True)
            self._curve("micro", "energy", x, gaps(curves.micro_energy), (255, 200, 120))
        self.set_network_scores(curves.blendshapes, curves.blendshape_names, faces)
        if curves.expression is not None:
            self.set_expression(curves.expression, curves.expression_names, faces)

    def set_confidence(self, confidence: np.ndarray, has_face: np.ndarray) -> None:
        """Per-frame face confidence (N, 0 to 1; streamed while observing)."""
        values = np.asarray(confidence, np.float64).copy()
        values[~has_face[: len(values)]] = np.nan
        self._curve("affect", "face confidence", np.arange(len(values), dtype=np.float64), values,
                    AFFECT_COLOURS["face confidence"], style=Qt.DotLine)

    def set_reconstruction_emotion(self, probabilities: np.ndarray | None, has_face: np.ndarray) -> None:
        """N x 8 emotion predicted for the edited curves, dashed (None: no edits, none shown)."""
        if probabilities is None:
            for name in EMOTIONS:
                item = self.items.pop(f"reconstruction.{name}", None)
                if item is not None:
                    self.plots["reconstruction"].removeItem(item)
            return
        x = np.arange(len(probabilities), dtype=np.float64)
        for k, name in enumerate(EMOTIONS):
            values = np.asarray(probabilities[:, k], np.float64).copy()
            values[~has_face[: len(values)]] = np.nan
            self._curve("reconstruction", name, x, values, EMOTION_COLOURS[name], style=Qt.DashLine, width=1.2)

    def set_expression(self, expression: np.ndarray, names: list[str], has_face: np.ndarray) -> None:
        """N x E curves; the picker lists the names (the first time, a few strong ones are on)."""
        self._expression = np.asarray(expression, np.float64).copy()
        self._expression[~has_face[: len(self._expression)]] = np.nan
        if names != self._names:
            self._names = list(names)
            self.curve_list.blockSignals(True)
            self.curve_list.clear()
            default = {names.index(n) for n in DEFAULT_CURVES if n in names}
            if not default:  # FLAME components: the three that move most
                with np.errstate(all="ignore"):
                    spread = np.nan_to_num(np.nanstd(self._expression, axis=0))
                default = set(np.argsort(-spread)[:3].tolist())
            for i, name in enumerate(names):
                item = QListWidgetItem(name)
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Checked if i in default else Qt.Unchecked)
                self.curve_list.addItem(item)
            self.curve_list.blockSignals(False)
        self._draw_expression()

    def set_network_scores(self, scores: np.ndarray, names: list[str], has_face: np.ndarray) -> None:
        """N x K scores of MediaPipe's blendshape network with their K names: a ticked expression
        curve of the same name gets the score as a dashed line."""
        values = np.asarray(scores, np.float64).copy()
        values[~has_face[: len(values)]] = np.nan
        self._network = {name: values[:, k] for k, name in enumerate(names)}
        self._draw_expression()

    def chosen_curves(self) -> list[str]:
        return [self.curve_list.item(i).text() for i in range(self.curve_list.count())
                if self.curve_list.item(i).checkState() == Qt.Checked]

    def _curve_choice_changed(self, item) -> None:
        self._draw_expression()

    def select_curve(self, name: str) -> None:
        """Edit the curve ``name`` (shown if it was not)."""
        self.curve_list.setCurrentRow(self._names.index(name))

    def _curve_picked(self, item, _previous=None) -> None:
        if item is None:
            self.gestures.select_curve(None)
            return
        self.gestures.selected = item.text()
        if item.checkState() != Qt.Checked:
            item.setCheckState(Qt.Checked)  # redraws
        else:
            self._draw_expression()
        self.curve_selected.emit(item.text())

    def curve_drag_event(self, vb, ev) -> bool:
        """A left-button drag in the expression row: the curve editor's (True) or a pan (False)."""
        return self.gestures.drag_event(vb, ev)

    def _draw_expression(self) -> None:
        chosen = set(self.chosen_curves())
        for key in [k for k in self.items if k.startswith("curves.")]:
            if key[len("curves."):].removeprefix(NETWORK_KEY) not in chosen:
                self.plots["curves"].removeItem(self.items.pop(key))
        if self._expression is None:
            return
        x = np.arange(len(self._expression), dtype=np.float64)
        for name in [n for n in self._curve_colours if n not in chosen]:
            del self._curve_colours[name]
        for name in sorted(chosen - set(self._curve_colours), key=self._names.index):
            # a curve keeps its colour while it is shown; a new one takes the first free colour
            free = [c for c in CURVE_COLOURS if c not in self._curve_colours.values()] or CURVE_COLOURS
            self._curve_colours[name] = free[0]
        colours = {name: self._curve_colours[name] for name in sorted(chosen, key=self._names.index)}
        for name, colour in colours.items():
            self._curve("curves", name, x, self._expression[:, self._names.index(name)], colour, name)
            self.items[f"curves.{name}"].setPen(pg.mkPen(colour, width=2.8 if name == self.gestures.selected else 1.6))
        compared = [name for name in colours if len(self._network.get(name, ())) == len(x)]
        for name in compared:
            self._curve("curves", NETWORK_KEY + name, x, self._network[name], colours[name],
                        style=Qt.DashLine, width=1.0)
        title = ROW_TITLES["curves"] + (NETWORK_NOTE if compared else "")
        self._set_title("curves", keyed_title(title, colours))
        self.gestures.update_points()

    def set_row_visible(self, row: str, visible: bool) -> None:
        self.plots[row].setVisible(visible)

    # -- time ------------------------------------------------------------------------------
    def set_current(self, frame: int) -> None:
        self.current = frame
        for line in self.playheads.values():
            if line.value() != frame:
                line.setValue(frame)

    def set_neutral(self, frame: int | None) -> None:
        """Mark the take's neutral frame in every row (None: no frame, the marker hides)."""
        for marker in self.neutral_markers.values():
            if frame is not None:
                marker.setValue(frame)
            marker.setVisible(frame is not None)

    def set_range(self, start: int | None, stop: int | None) -> None:
        """Show the in/out range (stop exclusive); None clears it."""
        self.range = show_frame_range(self.region, start, stop)

    def _region_changed(self) -> None:
        start, stop = frame_range_of(self.region, self.frame_count)
        self.range = (start, stop)
        self.range_changed.emit(start, stop)

    def _frame_at(self, x: float) -> int:
        return int(np.clip(round(x), 0, max(self.frame_count - 1, 0)))

    def _line_dragged(self, line) -> None:
        self.seek.emit(self._frame_at(line.value()))

    def _clicked(self, event) -> None:
        if event.button() != Qt.LeftButton or self.frame_count == 0:
            return
        for plot in self.plots.values():
            if plot.isVisible() and plot.vb.sceneBoundingRect().contains(event.scenePos()):
                self.seek.emit(self._frame_at(plot.vb.mapSceneToView(event.scenePos()).x()))
                return
