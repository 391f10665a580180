"""Performer > New profile from this take / Use a profile / Use no profile: a profile calibrated
from the open take in the background, the take refitted with it (kept by the take, so later runs
and reopening keep it), and back to the generic shapes."""

import numpy as np
from PySide6.QtGui import QAction

from core.performer.profile import load_profile
from core.take import Take
from tests.app.test_neutral import take_on_screen
from tests.conftest import fixture_path


def action(window, name: str) -> QAction:
    return window.findChild(QAction, name)


def run_job(window, qtbot, trigger, name: str) -> None:
    with qtbot.waitSignal(window.job_finished, timeout=240000) as finished:
        trigger()
        assert window.job.running
        assert not action(window, "performer_use").isEnabled()
    assert finished.args == [name, True]
    qtbot.waitUntil(lambda: take_on_screen(window), timeout=60000)


def fit_settings(window) -> dict:
    return Take.open(window.take_dir).manifest.fit.settings


def test_a_profile_made_from_the_take_refits_it_and_stays_with_it(window, qtbot, tmp_path):
    window.settings.emotion = False
    assert not action(window, "performer_new").isEnabled() and not action(window, "performer_use").isEnabled()
    window.open_input(fixture_path("single_face.mp4"))
    run_job(window, qtbot, action(window, "analyse").trigger, "analysis")
    assert action(window, "performer_new").isEnabled() and not action(window, "performer_none").isEnabled()
    generic_identity = Take.open(window.take_dir).read_identity()

    profile = tmp_path / "actor.npz"
    run_job(window, qtbot, lambda: window.performer_menu.new_profile(profile), "calibrate")
    assert load_profile(profile).info["built_from"]["takes"][0]["take"] == str(window.take_dir)
    assert "performer profile saved to" in window.statusBar().currentMessage()

    run_job(window, qtbot, lambda: window.performer_menu.use_profile(profile), "analysis")
    assert fit_settings(window)["performer"] == str(profile.resolve())
    assert window.performer == str(profile.resolve())
    assert window.view.model.expression_basis.shape[2] == 52
    np.testing.assert_allclose(window.view.model.expression_basis.numpy(), load_profile(profile).expression_basis,
                               atol=1e-7)
    assert not np.allclose(Take.open(window.take_dir).read_identity(), generic_identity, atol=1e-6)
    assert action(window, "performer_none").isEnabled() and not action(window, "performer_new").isEnabled()

    fit_files = {p.name: p.stat().st_mtime_ns for p in (window.take_dir / "fit").glob("*.npz")}
    run_job(window, qtbot, action(window, "analyse").trigger, "analysis")  # resumes with the profile
    assert {p.name: p.stat().st_mtime_ns for p in (window.take_dir / "fit").glob("*.npz")} == fit_files

    window.open_input(fixture_path("single_face.jpg"))
    assert window.performer is None
    with qtbot.waitSignal(window.take_loaded, timeout=60000):
        window.open_input(fixture_path("single_face.mp4"))  # reopening the clip reads its take's profile
    assert window.performer == str(profile.resolve())

    run_job(window, qtbot, action(window, "performer_none").trigger, "analysis")
    assert "performer" not in fit_settings(window) and window.performer is None
    np.testing.assert_allclose(Take.open(window.take_dir).read_identity(), generic_identity, atol=1e-4)
    assert "performer profile: none" in window.statusBar().currentMessage()
