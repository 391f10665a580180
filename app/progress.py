"""The status-bar progress of a background job: stage, bar, rate, time left, Cancel."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

REFRESH_SECONDS = 0.2


def eta_text(done: int, total: int, elapsed: float) -> str:
    """'12 s left' from progress so far (empty until there is a rate)."""
    if done <= 0 or total <= done or elapsed <= 0.2:
        return ""
    left = (total - done) * elapsed / done
    if left < 60:
        return f"{left:.0f} s left"
    return f"{int(left // 60)} min {int(left % 60):02d} s left"


class ProgressPanel(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Fixed widths: a label that grows would re-lay out the whole window (GL views included)
        # on every progress update.
        self.stage = QLabel()
        self.stage.setObjectName("progress_stage")
        self.stage.setFixedWidth(260)
        self.bar = QProgressBar()
        self.bar.setObjectName("progress_bar")
        self.bar.setFixedWidth(220)
        self.bar.setTextVisible(True)
        self.eta = QLabel()
        self.eta.setObjectName("progress_eta")
        self.eta.setFixedWidth(110)
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("progress_cancel")
        self.cancel.clicked.connect(self.cancel_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.stage, self.bar, self.eta, self.cancel):
            layout.addWidget(widget)
        self._stage_name = ""
        self._stage_start = 0.0
        self._stage_first = 0
        self._shown = 0.0
        self._shown_stage = ""
        self.hide()

    def begin(self, text: str) -> None:
        self._stage_name = ""
        self.stage.setText(text)
        self.bar.setRange(0, 0)
        self.eta.clear()
        self.cancel.setEnabled(True)
        self.show()

    def update_stage(self, name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if name != self._stage_name:
            self._stage_name, self._stage_start, self._stage_first = name, now, done
        if now - self._shown < REFRESH_SECONDS and done < total and name == self._shown_stage:
            return
        self._shown, self._shown_stage = now, name
        self.stage.setText(f"{name} {done}/{total}")
        if self.bar.maximum() != max(total, 1):
            self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self.eta.setText(eta_text(done - self._stage_first, total - self._stage_first, now - self._stage_start))

    def end(self) -> None:
        self.hide()
