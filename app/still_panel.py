"""What a single photograph's analysis shows instead of timelines: bars a person reads at a glance.

Three columns: the performer's emotion (the primary recogniser's probabilities, strongest first,
in the emotion colours of the timelines), affect (valence and arousal from -1 to 1 around a centre
line, intensity from 0 to 1) and the strongest expression curves (the edited values, strongest
first, the ``TOP`` largest above ``SHOWN_FROM``). The video panel and the 3D viewport above show
the photo and its mesh side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.timelines import AFFECT_COLOURS, EMOTION_COLOURS, recognisers_text
from core.emotion.types import EMOTIONS

TOP = 12  # expression curves listed
SHOWN_FROM = 0.02  # smaller curve values are left out
CURVE_COLOUR = (120, 200, 255)
ROW_HEIGHT = 22


@dataclass(frozen=True)
class Bar:
    """One labelled bar: ``value`` within [``low``, ``high``], drawn from ``origin``."""

    label: str
    value: float
    colour: tuple[int, int, int]
    low: float = 0.0
    high: float = 1.0
    origin: float = 0.0


class BarList(QWidget):
    """Labelled horizontal bars with their values, one per row."""

    def __init__(self, label_width: int = 130) -> None:
        super().__init__()
        self.bars: list[Bar] = []
        self.label_width = label_width
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Minimum)

    def set_bars(self, bars: list[Bar]) -> None:
        self.bars = list(bars)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(320, max(1, len(self.bars)) * ROW_HEIGHT + 4)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(200, max(1, len(self.bars)) * ROW_HEIGHT + 4)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        text_colour = self.palette().color(QPalette.WindowText)
        window = self.palette().color(QPalette.Window)
        track_colour = QColor(*(int(0.8 * w + 0.2 * t) for w, t in zip(window.getRgb()[:3], text_colour.getRgb()[:3])))
        value_width = 48
        track = QRectF(self.label_width, 0, max(self.width() - self.label_width - value_width - 8, 20), ROW_HEIGHT - 8)
        for row, bar in enumerate(self.bars):
            y = 2 + row * ROW_HEIGHT
            painter.setPen(text_colour)
            painter.drawText(QRectF(0, y, self.label_width - 8, ROW_HEIGHT - 4), Qt.AlignRight | Qt.AlignVCenter, bar.label)
            area = QRectF(track.x(), y + 2, track.width(), track.height())
            painter.fillRect(area, track_colour)
            span = bar.high - bar.low

            def x_of(v: float) -> float:
                return area.x() + area.width() * (min(max(v, bar.low), bar.high) - bar.low) / span

            if np.isfinite(bar.value):
                left, right = sorted((x_of(bar.origin), x_of(bar.value)))
                painter.fillRect(QRectF(left, area.y(), max(right - left, 1.0), area.height()), QColor(*bar.colour))
            if bar.low < 0 < bar.high:
                painter.setPen(text_colour)
                painter.drawLine(int(x_of(0.0)), int(area.y()) - 1, int(x_of(0.0)), int(area.bottom()) + 1)
            painter.setPen(text_colour)
            text = f"{bar.value:+.2f}" if bar.low < 0 else f"{bar.value:.2f}"
            painter.drawText(QRectF(area.right() + 6, y, value_width, ROW_HEIGHT - 4), Qt.AlignLeft | Qt.AlignVCenter,
                             text if np.isfinite(bar.value) else "–")
        painter.end()


def emotion_bars(probabilities: np.ndarray) -> list[Bar]:
    """The 8 emotion probabilities, strongest first."""
    order = np.argsort(-np.nan_to_num(probabilities, nan=-1.0), kind="stable")
    return [Bar(EMOTIONS[k], float(probabilities[k]), EMOTION_COLOURS[EMOTIONS[k]]) for k in order]


def affect_bars(valence: float | None, arousal: float | None, intensity: float | None,
                emotion: str | None = None) -> list[Bar]:
    """Valence and arousal in [-1, 1] around 0, intensity in [0, 1] (those measured), the
    intensity in the colour of the strongest ``emotion``."""
    bars = []
    for name, value in (("valence", valence), ("arousal", arousal)):
        if value is not None:
            bars.append(Bar(name, float(value), AFFECT_COLOURS[name], low=-1.0))
    if intensity is not None:
        bars.append(Bar("intensity", float(intensity), EMOTION_COLOURS.get(emotion, AFFECT_COLOURS["intensity"])))
    return bars


def curve_bars(values: np.ndarray, names: list[str], top: int = TOP) -> list[Bar]:
    """The ``top`` strongest expression curves (above SHOWN_FROM), strongest first."""
    order = [i for i in np.argsort(-np.nan_to_num(values, nan=0.0), kind="stable") if values[i] >= SHOWN_FROM]
    return [Bar(names[i], float(values[i]), CURVE_COLOUR) for i in order[:top]]


class StillPanel(QWidget):
    """The analysis of a single image as bar lists (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.emotion = BarList(label_width=80)
        self.affect = BarList(label_width=80)
        self.curves = BarList(label_width=150)
        self.emotion_box = self._box("Emotion", self.emotion)
        self.affect_box = self._box("Affect", self.affect)
        self.curves_box = self._box("Strongest expression curves", self.curves)
        self.note = QLabel("Analysing…")
        self.note.setObjectName("still_note")
        self.note.setWordWrap(True)
        left = QVBoxLayout()
        left.addWidget(self.emotion_box)
        left.addWidget(self.affect_box)
        left.addStretch(1)
        columns = QHBoxLayout()
        columns.addLayout(left, 1)
        columns.addWidget(self.curves_box, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(columns, 1)

    @staticmethod
    def _box(title: str, content: QWidget) -> QGroupBox:
        box = QGroupBox(title)
        inner = QVBoxLayout(box)
        inner.addWidget(content)
        inner.addStretch(1)
        return box

    def clear(self) -> None:
        for bars in (self.emotion, self.affect, self.curves):
            bars.set_bars([])
        self.note.setText("Analysing…")

    def set_curves(self, curves) -> None:
        """Show frame 0 of a core.take_view.Curves."""
        if not bool(curves.has_face[0]):
            self.clear()
            self.note.setText("No face found in this image.")
            return
        strongest = None
        if curves.primary and curves.primary in curves.emotion:
            self.emotion.set_bars(emotion_bars(curves.emotion[curves.primary][0]))
            strongest = self.emotion.bars[0].label
            shown = f"{curves.primary} shown; " if len(curves.emotion) > 1 else ""
            self.emotion_box.setTitle(f"Emotion ({shown}measured by {recognisers_text(curves.emotion)})")
            self.note.setText("A single image: its analysis as bars (the photo and its mesh above).")
        else:
            self.emotion.set_bars([])
            self.note.setText("No emotion measured (the analysis ran with --no-emotion or without the FER model).")

        def first(values):
            return None if values is None or not np.isfinite(values[0]) else float(values[0])

        self.affect.set_bars(affect_bars(first(curves.valence), first(curves.arousal), first(curves.intensity), strongest))
        self.affect_box.setTitle("Affect" if curves.valence is not None else
                                 "Affect (valence and arousal come from EmoNet, which did not run)")
        self.set_expression(curves.expression, curves.expression_names)

    def set_expression(self, expression: np.ndarray | None, names: list[str]) -> None:
        """The (edited) expression curves of the image, strongest first."""
        self.curves.set_bars([] if expression is None else curve_bars(expression[0], names))
