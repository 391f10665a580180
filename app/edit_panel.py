"""The slider panel: expression intensity overall, per emotion, upper / lower face, jaw, eyes and
temporal smoothing, for the whole clip or the selected in/out range. It only shows and reports
values ({slider: value}); the main window turns them into core.edit layers with undo."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

SCALE_SLIDERS = (("intensity", "Intensity"), ("upper_face", "Upper face"), ("lower_face", "Lower face"),
                 ("jaw", "Jaw"), ("eyes", "Eyes"))
EMOTION_SLIDERS = ("happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
SMOOTHING_STEPS = 20  # slider steps of 0.5 frames: 0 to 10 frames


class EditPanel(QWidget):
    """``edited(values, final)``: values is {slider key: value} (scales as factors, ``smoothing``
    in frames, emotions by name); final is False while a slider is being dragged, True on release.
    ``reset_requested()``: put the current scope back to no edit."""

    edited = Signal(dict, bool)
    reset_requested = Signal()
    scope_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.sliders: dict[str, QSlider] = {}
        self.value_labels: dict[str, QLabel] = {}
        layout = QVBoxLayout(self)
        scope_row = QHBoxLayout()
        scope_row.addWidget(QLabel("Apply to"))
        self.scope = QComboBox()
        self.scope.setObjectName("edit_scope")
        self.scope.addItem("Whole clip", "clip")
        self.scope.addItem("In/out range", "range")
        self.scope.currentIndexChanged.connect(lambda _: self.scope_changed.emit(self.scope.currentData()))
        scope_row.addWidget(self.scope, 1)
        layout.addLayout(scope_row)

        shape = QGroupBox("Expression")
        grid = QGridLayout(shape)
        for row, (key, label) in enumerate(SCALE_SLIDERS):
            self._add_slider(grid, row, key, label, 0, 200, 100)
        self._add_slider(grid, len(SCALE_SLIDERS), "smoothing", "Smoothing", 0, SMOOTHING_STEPS, 0)
        layout.addWidget(shape)

        emotions = QGroupBox("Emotion intensity")
        grid = QGridLayout(emotions)
        for row, name in enumerate(EMOTION_SLIDERS):
            self._add_slider(grid, row, name, name.capitalize(), 0, 200, 100)
        self.emotion_note = QLabel("Run the emotion analysis to scale emotions.")
        self.emotion_note.setWordWrap(True)
        self.emotion_note.setStyleSheet("color: #999;")
        grid.addWidget(self.emotion_note, len(EMOTION_SLIDERS), 0, 1, 3)
        layout.addWidget(emotions)

        self.reset_button = QPushButton("Reset")
        self.reset_button.setObjectName("edit_reset")
        self.reset_button.setToolTip("Remove the edits of the current scope")
        self.reset_button.clicked.connect(self.reset_requested)
        layout.addWidget(self.reset_button)
        layout.addStretch(1)
        self.set_available_emotions([])

    def _add_slider(self, grid: QGridLayout, row: int, key: str, label: str, low: int, high: int, value: int) -> None:
        slider = QSlider(Qt.Horizontal)
        slider.setObjectName(f"slider_{key}")
        slider.setRange(low, high)
        slider.setValue(value)
        slider.setPageStep(10 if high > 50 else 2)
        value_label = QLabel()
        value_label.setMinimumWidth(58)
        value_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        slider.valueChanged.connect(lambda _: self._moved(key))
        slider.sliderReleased.connect(lambda: self._released(key))
        grid.addWidget(QLabel(label), row, 0)
        grid.addWidget(slider, row, 1)
        grid.addWidget(value_label, row, 2)
        self.sliders[key] = slider
        self.value_labels[key] = value_label
        self._show_value(key)

    # -- values ----------------------------------------------------------------------------
    def value(self, key: str) -> float:
        raw = self.sliders[key].value()
        return raw * 0.5 if key == "smoothing" else raw / 100.0

    def values(self) -> dict:
        return {key: self.value(key) for key in self.sliders}

    def set_values(self, values: dict) -> None:
        """Show values without emitting ``edited`` (missing keys: no edit)."""
        for key, slider in self.sliders.items():
            value = values.get(key, 0.0 if key == "smoothing" else 1.0)
            slider.blockSignals(True)
            slider.setValue(int(round(value * 2 if key == "smoothing" else value * 100)))
            slider.blockSignals(False)
            self._show_value(key)

    def set_available_emotions(self, emotions: list[str]) -> None:
        for name in EMOTION_SLIDERS:
            self.sliders[name].setEnabled(name in emotions)
            self.sliders[name].setToolTip("" if name in emotions else f"this take shows no {name}")
        self.emotion_note.setVisible(not emotions)

    def current_scope(self) -> str:
        return self.scope.currentData()

    def _show_value(self, key: str) -> None:
        value = self.value(key)
        self.value_labels[key].setText(f"{value:.1f} fr" if key == "smoothing" else f"{round(value * 100)} %")

    def _moved(self, key: str) -> None:
        self._show_value(key)
        self.edited.emit(self.values(), not self.sliders[key].isSliderDown())

    def _released(self, key: str) -> None:
        self.edited.emit(self.values(), True)
