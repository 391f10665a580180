"""Analysis > Use this frame as neutral / Neutral: automatic: the take's identity refitted on the
frame the user names, the choice kept by the take (later runs resume), the marker in the timelines."""

import numpy as np
from PySide6.QtGui import QAction

from core.take import Take
from tests.conftest import fixture_path, run_cli

NEUTRAL = 60  # single_face.mp4 smiles here: a frame that gives another identity than the automatic choice


def action(window, name: str) -> QAction:
    return window.findChild(QAction, name)


def take_on_screen(window) -> bool:
    """Whether no job runs and the newest loaded take is wholly on screen."""
    return not window.jobs and window.view is not None and window.shown_view is window.view


def analyse(window, qtbot, trigger) -> None:
    """Run an analysis through ``trigger`` and wait until it finished and its take is on screen."""
    with qtbot.waitSignal(window.job_finished, timeout=180000) as finished:
        trigger()
        assert window.job.running
        assert not action(window, "neutral_frame").isEnabled() and not action(window, "neutral_auto").isEnabled()
    assert finished.args == ["analysis", True]
    qtbot.waitUntil(lambda: take_on_screen(window), timeout=60000)


def stored(window) -> tuple[dict | None, np.ndarray, dict[str, int]]:
    """The take's neutral, identity and the modification times of its fit files."""
    take = Take.open(window.take_dir)
    times = {path.name: path.stat().st_mtime_ns for path in (take.root / "fit").glob("*.npz")}
    return take.manifest.fit.neutral, take.read_identity(), times


def marker_at(window) -> int | None:
    timelines = window.timelines
    markers = [marker for row, marker in timelines.neutral_markers.items() if timelines.plots[row].isVisible()]
    shown = {int(marker.value()) for marker in markers if marker.isVisible()}
    assert len(shown) <= 1 and (not shown or all(marker.isVisible() for marker in markers))
    return shown.pop() if shown else None


def test_a_chosen_neutral_frame_refits_the_take_and_later_runs_resume(window, qtbot):
    window.settings.emotion = False
    assert not action(window, "neutral_frame").isEnabled()  # no clip open
    window.open_input(fixture_path("single_face.mp4"))
    assert action(window, "neutral_frame").isEnabled() and not action(window, "neutral_auto").isEnabled()
    analyse(window, qtbot, action(window, "analyse").trigger)
    neutral, automatic_identity, _ = stored(window)
    assert neutral is None and marker_at(window) is None

    window.seek(NEUTRAL)
    analyse(window, qtbot, action(window, "neutral_frame").trigger)
    neutral, identity, times = stored(window)
    assert neutral == {"frame": NEUTRAL}
    assert not np.allclose(identity, automatic_identity, atol=1e-3)
    assert marker_at(window) == NEUTRAL
    assert f"neutral: frame {NEUTRAL}" in window.statusBar().currentMessage()
    assert action(window, "neutral_auto").isEnabled()

    analyse(window, qtbot, action(window, "analyse").trigger)  # resumes: nothing is refitted
    assert stored(window)[0] == {"frame": NEUTRAL} and stored(window)[2] == times

    window.seek(NEUTRAL)
    action(window, "neutral_frame").trigger()  # the same frame again: nothing to do
    assert not window.job.running and "already frame" in window.statusBar().currentMessage()

    window.open_input(fixture_path("single_face.jpg"))
    assert window.neutral is None and marker_at(window) is None
    with qtbot.waitSignal(window.take_loaded, timeout=60000):
        window.open_input(fixture_path("single_face.mp4"))  # reopening the clip reads its take's choice
    assert window.neutral == {"frame": NEUTRAL} and marker_at(window) == NEUTRAL

    analyse(window, qtbot, action(window, "neutral_auto").trigger)
    neutral, identity, _ = stored(window)
    assert neutral is None and window.neutral is None and marker_at(window) is None
    np.testing.assert_allclose(identity, automatic_identity, atol=1e-4)
    assert "neutral: automatic" in window.statusBar().currentMessage()
    assert not action(window, "neutral_auto").isEnabled()


def test_a_frame_without_a_face_is_refused(window, qtbot):
    window.settings.emotion = False
    window.open_input(fixture_path("face_noface.mov"))  # the face leaves the frame at frame 72
    analyse(window, qtbot, window.start_analysis)
    window.seek(100)
    action(window, "neutral_frame").trigger()
    assert "frame 100 shows no face; choose another neutral frame" in window.statusBar().currentMessage()
    assert not window.job.running and not window.jobs
    assert window.neutral is None and marker_at(window) is None
    assert stored(window)[0] is None


def test_a_take_with_a_neutral_image_keeps_it(window, qtbot, tmp_path):
    image = fixture_path("single_face.jpg")
    take_dir = tmp_path / "cli_take"
    done = run_cli("analyze", str(fixture_path("single_face.mp4")), "--out", str(take_dir), "--device", "cpu",
                   "--neutral", str(image))
    assert done.returncode == 0, done.stderr
    window.settings.emotion = False
    with qtbot.waitSignal(window.take_loaded, timeout=60000):
        window.open_take(take_dir)
    assert window.neutral["image"]["path"] == str(image.resolve()) and marker_at(window) is None
    _, _, times = stored(window)
    analyse(window, qtbot, action(window, "analyse").trigger)
    assert stored(window)[2] == times  # the image's path was passed again: resumed, not refitted
    assert "neutral: image single_face.jpg" in window.statusBar().currentMessage()
