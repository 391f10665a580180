"""Opening, seeking, keyboard transport, playback and the timeline playhead, in a real window."""

import re
import time

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from tests.conftest import fixture_path


def test_open_shows_the_first_frame_without_analysing(window, qtbot):
    with qtbot.waitSignal(window.frame_shown, timeout=5000) as shown:
        assert window.open_input(fixture_path("single_face.mp4"))
    assert shown.args == [0]
    assert window.video._image is not None and window.video._image.width() == 640
    assert "frame 1 / 72" in window.transport.readout.text()
    assert window.job is None  # analyse_on_open is off in these settings
    assert "single_face.mp4" in window.windowTitle()


def test_keyboard_transport_steps_and_jumps(window, qtbot):
    window.open_input(fixture_path("single_face.mp4"))
    window.setFocus()
    QTest.keyClick(window, Qt.Key_Right)
    QTest.keyClick(window, Qt.Key_Right)
    assert window.current == 2
    QTest.keyClick(window, Qt.Key_Left)
    assert window.current == 1
    QTest.keyClick(window, Qt.Key_End)
    assert window.current == 71
    QTest.keyClick(window, Qt.Key_Right)  # stays on the last frame
    assert window.current == 71
    QTest.keyClick(window, Qt.Key_Home)
    assert window.current == 0
    QTest.keyClick(window, Qt.Key_Right, Qt.ShiftModifier)
    assert window.current == 10


def test_playback_keeps_the_clock_and_stops_at_the_end(window, qtbot):
    window.open_input(fixture_path("single_face.mp4"))  # 30 fps, 72 frames
    shown = []
    window.frame_shown.connect(shown.append)
    start = time.monotonic()
    QTest.keyClick(window, Qt.Key_Space)
    assert window.player.playing
    qtbot.wait(1000)
    elapsed = time.monotonic() - start
    # frames may be dropped but never slowed: the frame shown follows the wall clock
    assert abs(window.current - 30 * elapsed) <= 6
    assert shown == sorted(shown) and len(shown) >= 10
    qtbot.waitUntil(lambda: not window.player.playing, timeout=5000)
    assert window.current == 71
    QTest.keyClick(window, Qt.Key_K)
    QTest.keyClick(window, Qt.Key_J)  # backwards
    qtbot.wait(300)
    assert window.player.playing and window.current < 71
    QTest.keyClick(window, Qt.Key_K)
    assert not window.player.playing


def test_clicking_the_timeline_seeks(window, qtbot):
    window.open_input(fixture_path("single_face.mp4"))
    plot = window.timelines.plots["emotion"]
    qtbot.wait(100)
    scene_point = plot.vb.mapViewToScene(plot.vb.mapSceneToView(plot.vb.sceneBoundingRect().center()))
    target = plot.vb.mapSceneToView(scene_point).x()
    view_point = window.timelines.graphics.mapFromScene(scene_point)
    QTest.mouseClick(window.timelines.graphics.viewport(), Qt.LeftButton, Qt.NoModifier, QPoint(int(view_point.x()), int(view_point.y())))
    assert window.current == int(np.clip(round(target), 0, 71)) and window.current > 0


def test_a_broken_file_opens_an_error_dialog_and_keeps_the_open_clip(window, qtbot, tmp_path):
    window.open_input(fixture_path("single_face.mp4"))
    fake = tmp_path / "movie.mp4"
    fake.write_text("not a video")
    assert not window.open_input(fake)
    box = window.last_error
    assert box.isVisible() and "movie.mp4" in box.text() and "\n" not in box.text()
    assert "Traceback" in box.detailedText()
    box.close()
    assert window.source is not None and window.source.info.frame_count == 72


def test_opening_another_clip_clears_the_previous_results(loaded, qtbot):
    assert "curves.jawOpen" in loaded.timelines.items and loaded.viewport.has_mesh
    loaded.open_input(fixture_path("single_face.jpg"))
    assert loaded.view is None and not loaded.timelines.items and loaded.timelines.curve_list.count() == 0
    assert not loaded.viewport.has_mesh and loaded.player.frame_count == 1


def test_each_row_names_its_curves_in_their_colours(loaded):
    from app.timelines import EMOTION_COLOURS

    timelines = loaded.timelines

    def pen(key: str) -> tuple:
        return timelines.items[key].opts["pen"].color().getRgb()[:3]

    def keyed(row: str) -> dict[str, tuple]:
        """{name: colour} as the row's title shows them."""
        title = timelines.plots[row].titleLabel.text
        found = re.findall(r"color: rgb\((\d+), (\d+), (\d+)\)'>&#9632;&nbsp;([\w ]+)</span>", title)
        return {name: tuple(int(c) for c in rgb) for *rgb, name in found}

    assert timelines.plots["emotion"].legend is None  # no legend over the curves
    assert keyed("emotion") == EMOTION_COLOURS and pen("emotion.happy") == EMOTION_COLOURS["happy"]
    shown = keyed("curves")
    assert set(shown) == set(timelines.chosen_curves()) and all(pen(f"curves.{n}") == c for n, c in shown.items())
    # a newly picked curve takes a free colour; the others keep theirs
    items = {timelines.curve_list.item(i).text(): timelines.curve_list.item(i) for i in range(timelines.curve_list.count())}
    items["browDownLeft"].setCheckState(Qt.Checked)
    more = keyed("curves")
    assert {n: more[n] for n in shown} == shown and more["browDownLeft"] not in shown.values()
    assert pen("curves.browDownLeft") == more["browDownLeft"]
    items["jawOpen"].setCheckState(Qt.Unchecked)
    assert "jawOpen" not in keyed("curves") and "curves.jawOpen" not in timelines.items


def test_a_ticked_curve_has_mediapipe_s_score_dashed_in_its_colour(loaded):
    timelines, observations = loaded.timelines, loaded.view.observations
    names = loaded.view.curves().blendshape_names
    chosen = timelines.chosen_curves()
    assert chosen and "dashed: MediaPipe's network" in timelines.plots["curves"].titleLabel.text
    for name in chosen:
        solid, dashed = timelines.items[f"curves.{name}"], timelines.items[f"curves.mediapipe {name}"]
        pen, dashed_pen = solid.opts["pen"], dashed.opts["pen"]
        assert pen.style() == Qt.SolidLine and dashed_pen.style() == Qt.DashLine
        assert dashed_pen.color().getRgb() == pen.color().getRgb() and dashed_pen.widthF() < pen.widthF()
        expected = observations.blendshapes[:, names.index(name)].astype(np.float64)
        expected[~observations.has_face] = np.nan
        np.testing.assert_array_equal(dashed.getData()[1], expected)
    items = {timelines.curve_list.item(i).text(): timelines.curve_list.item(i)
             for i in range(timelines.curve_list.count())}
    items[chosen[0]].setCheckState(Qt.Unchecked)
    assert f"curves.mediapipe {chosen[0]}" not in timelines.items
    items["cheekSquintLeft"].setCheckState(Qt.Checked)
    assert timelines.items["curves.mediapipe cheekSquintLeft"].opts["pen"].style() == Qt.DashLine
    for item in items.values():
        item.setCheckState(Qt.Unchecked)
    assert not [key for key in timelines.items if key.startswith("curves.")]
    assert "MediaPipe" not in timelines.plots["curves"].titleLabel.text
    loaded.open_input(fixture_path("single_face.jpg"))
    assert timelines.plots["curves"].titleLabel.text == "Expression curves"
