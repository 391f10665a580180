"""The app with takes that are damaged or being written by another process: one-line messages in
the error dialog, never a crash."""

import os

from core.pipeline import Pipeline, PipelineConfig
from core.take.lock import TakeLock
from tests.conftest import fixture_path


def test_analysing_a_take_another_process_writes_says_who(window, qtbot):
    window.settings.emotion = False
    window.open_input(fixture_path("single_face.mp4"))
    with TakeLock(window.take_dir):  # this test process plays the other writer
        with qtbot.waitSignal(window.job_finished, timeout=120000) as finished:
            window.start_analysis()
    assert finished.args == ["error", False]
    text = window.last_error.text()
    assert window.last_error.isVisible() and f"is being written by process {os.getpid()}" in text
    assert "\n" not in text
    window.last_error.close()


def test_a_take_with_a_damaged_chunk_opens_an_error_naming_it(window, qtbot, tmp_path):
    take = tmp_path / "take"
    Pipeline(PipelineConfig(device="cpu")).run(fixture_path("single_face.mp4"), take)
    chunk = take / "fit" / "00000000.npz"
    chunk.write_bytes(chunk.read_bytes()[:100])
    window.open_take(take)
    qtbot.waitUntil(lambda: getattr(window, "last_error", None) is not None and window.last_error.isVisible(),
                    timeout=60000)
    assert "fit/00000000.npz is damaged" in window.last_error.text()
    window.last_error.close()
