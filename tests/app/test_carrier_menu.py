"""Analysis > Carrier face…: the take's curves judged on a neutral photo the user picks, the fit
kept, the choice kept by the take; the reconstruction row names the carrier."""

import cv2

from core.take import Take
from core.video import open_source
from tests.app.test_neutral import action, analyse
from tests.conftest import fixture_path


def test_a_carrier_photo_judges_the_curves_without_refitting_and_stays_with_the_take(window, qtbot, tmp_path):
    with open_source(fixture_path("single_face.mp4")) as source:
        neutral = source.read(0)  # a neutral face, before the clip's smile
    photo = tmp_path / "carrier.png"
    cv2.imwrite(str(photo), cv2.cvtColor(neutral, cv2.COLOR_RGB2BGR))

    window.open_input(fixture_path("single_face.jpg"))
    analyse(window, qtbot, action(window, "analyse").trigger)
    title = window.timelines.plots["reconstruction"].titleLabel.text
    assert "none: a single image has no neutral face" in title
    assert "reconstruction.carrier happy" not in window.timelines.items
    assert not action(window, "carrier_own").isEnabled()
    fit_files = {p.name: p.stat().st_mtime_ns for p in (window.take_dir / "fit").glob("*.npz")}

    analyse(window, qtbot, lambda: window.carrier_actions.use_carrier(photo))
    take = Take.open(window.take_dir)
    assert take.manifest.emotion.carrier["path"] == str(photo.resolve())
    assert {p.name: p.stat().st_mtime_ns for p in (window.take_dir / "fit").glob("*.npz")} == fit_files
    assert "on carrier.png" in window.timelines.plots["reconstruction"].titleLabel.text
    happy = window.timelines.items["reconstruction.carrier happy"].getData()[1]
    assert happy[0] > 0.5  # the still's smile, carried by its curves onto the neutral face
    assert action(window, "carrier_own").isEnabled()

    take_dir = window.take_dir
    window.carrier = None  # forgotten: reopening the take must restore it
    window.open_take(take_dir)
    qtbot.waitUntil(lambda: window.view is not None and window.carrier == str(photo.resolve()), timeout=60000)


def test_a_take_that_changes_while_the_analysis_runs_is_read_again_at_its_end_without_an_error(window, qtbot):
    """The view loaded when fitting ends may find a file the analysis is rewriting (the emotion
    timelines of a new carrier); the load at the analysis' end reads the take again, so that is
    no error. Any other failure of that load still is."""
    from core.errors import EmoCapError, MissingChunkError

    finished = []
    window.job_finished.connect(lambda *args: finished.append(args))
    window._changed_while_analysing(MissingChunkError("take", "emotion/timelines.npz"))
    assert finished == [] and getattr(window, "last_error", None) is None
    window._changed_while_analysing(EmoCapError("the recording is gone"))
    assert finished == [("error", False)] and "the recording is gone" in window.last_error.text()
    window.last_error.close()
