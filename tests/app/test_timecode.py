"""The transport bar shows the timecode of the frame shown (drop-frame with ';'), in a real window:
the recording's own (a QuickTime tmcd track) as soon as the clip opens, the take's once it loads,
and one set from the app (Analysis > Set start timecode)."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.take.manifest import MANIFEST_NAME
from tests.conftest import fixture_path
from tests.timecode_clips import has_tmcd_box, write_timecode_clip

START = "00:00:59;20"  # 29.97 drop-frame: ten frames later comes 00:01:00;02


@pytest.fixture(scope="module")
def tc_take(tmp_path_factory):
    """A 24-frame drop-frame clip with a tmcd track, analysed (no emotion): (clip, take)."""
    from core.pipeline import Pipeline, PipelineConfig

    folder = tmp_path_factory.mktemp("tc_app")
    clip = write_timecode_clip(fixture_path("WolfgangLanger_Pexels.mp4"), folder / "df.mov", 24,
                               Fraction(30000, 1001), START)
    assert has_tmcd_box(clip)
    Pipeline(PipelineConfig(device="cpu")).run(clip, folder / "take")
    return clip, folder / "take"


@pytest.fixture
def tc_window(window, qtbot, tc_take, tmp_path):
    take = tmp_path / "take"
    shutil.copytree(tc_take[1], take)
    with qtbot.waitSignal(window.take_loaded, timeout=60000):
        window.open_take(take)
    return window


def readout(window) -> str:
    return window.transport.timecode_label.text().strip()


def test_opening_the_clip_shows_its_timecode(window, qtbot, tc_take):
    with qtbot.waitSignal(window.frame_shown, timeout=5000):
        assert window.open_input(tc_take[0], analyse=False)
    assert window.transport.timecode_label.isVisible()
    assert readout(window) == f"TC {START}"
    window.seek(10)
    assert readout(window) == "TC 00:01:00;02"  # ;00 and ;01 do not exist at minute 1
    assert "frame 11 / 24" in window.transport.readout.text()


def test_a_clip_without_timecode_shows_none(window, qtbot):
    with qtbot.waitSignal(window.frame_shown, timeout=5000):
        window.open_input(fixture_path("single_face.mp4"), analyse=False)
    assert not window.transport.timecode_label.isVisible() and readout(window) == ""


def test_the_take_timecode_follows_the_frame_shown(tc_window, qtbot):
    window = tc_window
    assert readout(window) == f"TC {START}"
    window.setFocus()
    for _ in range(9):
        QTest.keyClick(window, Qt.Key_Right)
    assert readout(window) == "TC 00:00:59;29"
    QTest.keyClick(window, Qt.Key_Right)
    assert window.current == 10 and readout(window) == "TC 00:01:00;02"
    QTest.keyClick(window, Qt.Key_End)
    assert readout(window) == "TC 00:01:00;15"
    window.grab().save(str(window.take_dir.parent / "timecode.png"))


def test_setting_a_start_timecode_in_the_app(tc_window, qtbot):
    window = tc_window
    window.seek(1)
    window.set_start_timecode("09:59:59;29")
    assert readout(window) == "TC 10:00:00;00"
    assert json.loads((window.take_dir / MANIFEST_NAME).read_text())["start_timecode"] == "09:59:59;29"
    window.set_start_timecode("00:01:00;00")  # not a drop-frame label: refused, nothing changes
    assert "does not exist" in window.last_error.text()
    window.last_error.close()
    assert readout(window) == "TC 10:00:00;00"
    window.set_start_timecode("")  # back to the recording's own
    assert readout(window) == "TC 00:00:59;21"
    assert json.loads((window.take_dir / MANIFEST_NAME).read_text())["start_timecode"] is None
