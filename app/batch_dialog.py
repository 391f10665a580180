"""File > Batch…: analyse a shoot. Pick recordings (files or folders), the output folder, the
analysis options and the exports; Run starts ``emocap batch`` in the background (app.workers.
batch_job: a child process, which runs the recordings on Ray) and a table shows every recording's
status and progress. Double-clicking a finished recording opens its take in the main window."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.workers import Job, batch_job
from core.batch.progress import BatchStarted, RecordingProgress
from core.batch.summary import CANCELLED, FINISHED, PENDING, RUNNING, BatchSummary, RecordingResult
from core.export.registry import SUFFIXES

log = logging.getLogger(__name__)

COLUMNS = ("Recording", "Status", "Progress", "Frames", "Seconds", "Exports / reason")


class BatchDialog(QDialog):
    """The batch dialog (non-modal). ``take_chosen(path)``: a finished take was double-clicked;
    ``finished_batch(summary)``: a batch ended (None when it failed to run or was cancelled)."""

    take_chosen = Signal(Path)
    finished_batch = Signal(object)

    def __init__(self, default_out: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch: analyse a shoot")
        self.job: Job | None = None
        self.rows: dict[str, int] = {}
        self.takes: dict[str, Path] = {}
        self.summary: BatchSummary | None = None
        layout = QVBoxLayout(self)

        inputs = QGroupBox("Recordings (videos, image folders, or folders to search)")
        grid = QGridLayout(inputs)
        self.inputs = QListWidget()
        self.inputs.setObjectName("batch_inputs")
        self.inputs.setSelectionMode(QAbstractItemView.ExtendedSelection)
        grid.addWidget(self.inputs, 0, 0, 4, 1)
        for row, (text, slot, name) in enumerate((("Add files…", self._add_files_dialog, "batch_add_files"),
                                                  ("Add folder…", self._add_folder_dialog, "batch_add_folder"),
                                                  ("Remove", self._remove_selected, "batch_remove"))):
            button = QPushButton(text)
            button.setObjectName(name)
            button.clicked.connect(slot)
            grid.addWidget(button, row, 1)
        layout.addWidget(inputs)

        form = QFormLayout()
        out_row = QHBoxLayout()
        self.out = QLineEdit(str(default_out))
        self.out.setObjectName("batch_out")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._out_dialog)
        out_row.addWidget(self.out)
        out_row.addWidget(browse)
        form.addRow("Takes folder", out_row)
        self.emotion = QCheckBox("Measure emotion (FER)")
        self.refine = QCheckBox("Refine micro-expressions (optical flow)")
        options = QHBoxLayout()
        options.addWidget(self.emotion)
        options.addWidget(self.refine)
        form.addRow("Analysis", options)
        self.exports: dict[str, QCheckBox] = {}
        export_row = QHBoxLayout()
        for fmt in SUFFIXES:
            box = QCheckBox(fmt)
            box.setObjectName(f"batch_export_{fmt}")
            self.exports[fmt] = box
            export_row.addWidget(box)
        form.addRow("Exports", export_row)
        self.workers = QSpinBox()
        self.workers.setObjectName("batch_workers")
        self.workers.setRange(0, 4096)
        self.workers.setSpecialValueText("all cores")
        self.address = QLineEdit()
        self.address.setObjectName("batch_address")
        self.address.setPlaceholderText("this machine (or a Ray cluster: auto, HOST:PORT, ray://HOST:10001)")
        form.addRow("Recordings at once", self.workers)
        form.addRow("Ray cluster", self.address)
        layout.addLayout(form)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("batch_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.Stretch)
        self.table.cellDoubleClicked.connect(self._open_row)
        layout.addWidget(self.table, 1)

        buttons = QHBoxLayout()
        self.status = QLabel("add recordings, then Run")
        self.status.setObjectName("batch_status")
        self.run_button = QPushButton("Run")
        self.run_button.setObjectName("batch_run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel batch")
        self.cancel_button.setObjectName("batch_cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.resize(980, 640)

    # -- choosing ----------------------------------------------------------------------------
    def add_inputs(self, paths: list[Path]) -> None:
        present = {self.inputs.item(i).text() for i in range(self.inputs.count())}
        for path in paths:
            if str(path) not in present:
                self.inputs.addItem(str(path))

    def input_paths(self) -> list[Path]:
        return [Path(self.inputs.item(i).text()) for i in range(self.inputs.count())]

    def options(self) -> list[str]:
        """The ``emocap batch`` options the dialog's choices make."""
        args = []
        chosen = [fmt for fmt, box in self.exports.items() if box.isChecked()]
        if chosen:
            args += ["--export", ",".join(chosen)]
        if self.emotion.isChecked():
            args.append("--emotion")
        if self.refine.isChecked():
            args.append("--refine")
        if self.workers.value():
            args += ["--workers", str(self.workers.value())]
        if self.address.text().strip():
            args += ["--address", self.address.text().strip()]
        return args

    def _add_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add recordings", str(Path.home()))
        self.add_inputs([Path(f) for f in files])

    def _add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to search", str(Path.home()))
        if folder:
            self.add_inputs([Path(folder)])

    def _remove_selected(self) -> None:
        for item in self.inputs.selectedItems():
            self.inputs.takeItem(self.inputs.row(item))

    def _out_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Takes folder", self.out.text())
        if folder:
            self.out.setText(folder)

    # -- running -----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.job is not None and self.job.running

    def run(self) -> None:
        if self.running:
            return
        inputs = self.input_paths()
        if not inputs:
            self.status.setText("add recordings first")
            return
        self.table.setRowCount(0)
        self.rows.clear()
        self.takes.clear()
        self.summary = None
        out = Path(self.out.text()).expanduser()
        self.job = Job("batch", batch_job, inputs, out, self.options(), on_batch=self._events,
                       on_done=self._done, on_error=self._failed)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("starting Ray…")
        self.job.start()

    def cancel(self) -> None:
        if self.running:
            self.job.cancel()
            self.status.setText("cancelling: running recordings keep what they did")

    def _events(self, events: list) -> None:
        for event in events:
            if isinstance(event, BatchStarted):
                self._fill(event)
            elif isinstance(event, RecordingProgress):
                self._set_row(event.name, status=RUNNING, progress=f"{100 * event.fraction:.0f} % {event.step}"
                              + (f" (attempt {event.attempt})" if event.attempt > 1 else ""))
            elif isinstance(event, RecordingResult):
                self._show_result(event)

    def _fill(self, started: BatchStarted) -> None:
        self.table.setRowCount(len(started.recordings))
        for row, recording in enumerate(started.recordings):
            self.rows[recording["name"]] = row
            self.takes[recording["name"]] = Path(recording["take"])
            item = QTableWidgetItem(recording["name"])
            item.setToolTip(recording["source"])
            self.table.setItem(row, 0, item)
            self._set_row(recording["name"], status=PENDING, progress="")
        self.status.setText(f"{len(started.recordings)} recordings on {started.cluster}, {started.workers} at once")

    def _set_row(self, name: str, **cells) -> None:
        row = self.rows.get(name)
        if row is None:
            return
        for key, value in cells.items():
            column = {"status": 1, "progress": 2, "frames": 3, "seconds": 4, "detail": 5}[key]
            self.table.setItem(row, column, QTableWidgetItem(str(value)))

    def _show_result(self, result: RecordingResult) -> None:
        detail = result.reason or (", ".join(result.exports) if result.exports else "")
        self._set_row(result.name, status=result.status, progress="100 %" if result.status in FINISHED else "",
                      frames=result.frames, seconds=f"{result.seconds:.1f}", detail=detail)

    def _done(self, summary: BatchSummary) -> None:
        self.summary = summary
        for result in summary.results:
            self._show_result(result)
        self.status.setText(summary.text().strip().splitlines()[-1])
        self._stopped()
        self.finished_batch.emit(summary)

    def _failed(self, err: BaseException) -> None:
        for name, row in self.rows.items():
            status = self.table.item(row, 1)
            if status is not None and status.text() in (PENDING, RUNNING):
                self._set_row(name, status=CANCELLED)
        self.status.setText(str(err))
        self._stopped()
        self.finished_batch.emit(None)

    def _stopped(self) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def status_of(self, name: str) -> str | None:
        row = self.rows.get(name)
        item = None if row is None else self.table.item(row, 1)
        return None if item is None else item.text()

    def _open_row(self, row: int, _column: int) -> None:
        name = self.table.item(row, 0).text() if self.table.item(row, 0) else None
        if name is None or self.status_of(name) not in FINISHED:
            self.status.setText("only a finished recording's take can be opened")
            return
        self.take_chosen.emit(self.takes[name])

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        if self.running:
            self.job.cancel()
        super().closeEvent(event)

