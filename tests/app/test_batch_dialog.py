"""File > Batch… in a real window: a batch of a face clip and a corrupt file runs in the background
(``emocap batch --progress-jsonl`` in a child process, on a local Ray instance bound to
127.0.0.1), the table shows each recording's outcome, and a double-click opens the finished take."""

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from tests.conftest import fixture_path


def test_a_batch_runs_from_the_file_menu_and_opens_a_finished_take(window, qtbot, tmp_path):
    window.findChild(QAction, "batch").trigger()
    dialog = window.batch
    qtbot.waitExposed(dialog)
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"not a video at all" * 100)
    dialog.add_inputs([fixture_path("single_face.mp4"), corrupt])
    out = tmp_path / "shoot"
    dialog.out.setText(str(out))
    dialog.exports["curves_csv"].setChecked(True)
    dialog.workers.setValue(1)
    assert dialog.options() == ["--export", "curves_csv", "--workers", "1"]

    with qtbot.waitSignal(dialog.finished_batch, timeout=240000) as ended:
        qtbot.mouseClick(dialog.run_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=120000)  # the batch's first event
    summary = ended.args[0]
    assert summary is not None, dialog.status.text()
    assert dialog.status_of("single_face") == "complete"
    assert dialog.status_of("broken") == "failed"
    row = dialog.rows["broken"]
    assert "broken.mp4" in dialog.table.item(row, 5).text()  # the one-line reason
    assert (out / "single_face_curves_csv.csv").exists()
    assert "1 complete, 1 failed" in dialog.status.text()
    assert dialog.run_button.isEnabled() and not dialog.cancel_button.isEnabled()

    with qtbot.waitSignal(window.take_loaded, timeout=60000) as loaded:
        rect = dialog.table.visualItemRect(dialog.table.item(dialog.rows["single_face"], 0))
        # a real double-click: press and release, then the double-click event (item views
        # open only an index that was pressed first)
        qtbot.mouseClick(dialog.table.viewport(), Qt.LeftButton, pos=rect.center())
        qtbot.mouseDClick(dialog.table.viewport(), Qt.LeftButton, pos=rect.center())
    assert Path(loaded.args[0]) == out / "single_face"
    assert window.take_dir == out / "single_face"
