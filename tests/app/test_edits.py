"""Slider edits in the app: live preview, undo / redo, ranges, per-emotion sliders, autosave."""

import numpy as np

from core.edit import load_edits
from core.emotion.types import EMOTIONS
from core.facemodel.open_model import ARKIT_NAMES

HAPPY = EMOTIONS.index("happy")


def drag(slider, value):
    """Press, move and release a slider as a user would."""
    slider.setSliderDown(True)
    slider.setValue(value)
    slider.setSliderDown(False)
    slider.sliderReleased.emit()


def test_intensity_slider_is_live_undoable_and_saved(loaded, qtbot):
    window = loaded
    view = window.view
    raw = view.raw_fit.expression.copy()
    faces = view.raw_fit.has_face
    window.seek(50)
    slider = window.edit_panel.sliders["intensity"]
    slider.setSliderDown(True)
    slider.setValue(50)  # while dragging: preview only
    qtbot.waitUntil(lambda: np.allclose(view.fit.expression[faces], 0.5 * raw[faces], atol=1e-6), timeout=2000)
    assert window.undo_stack.count() == 0
    slider.setSliderDown(False)
    slider.sliderReleased.emit()
    assert window.undo_stack.count() == 1
    assert window.edit_panel.value_labels["intensity"].text() == "50 %"
    qtbot.waitUntil(lambda: load_edits(view.take.root).layer_for().intensity == 0.5, timeout=10000)  # autosaved
    window.undo_stack.undo()
    np.testing.assert_array_equal(view.fit.expression, raw)
    assert window.edit_panel.sliders["intensity"].value() == 100
    window.undo_stack.redo()
    assert window.edit_panel.sliders["intensity"].value() == 50
    np.testing.assert_allclose(view.fit.expression[faces], 0.5 * raw[faces], atol=1e-6)
    window.edit_panel.reset_button.click()
    np.testing.assert_array_equal(view.fit.expression, raw)
    assert window.undo_stack.count() == 2


def test_muting_happiness_changes_the_mesh_and_the_reconstruction_emotion(loaded, qtbot):
    window = loaded
    view = window.view
    assert window.edit_panel.sliders["happy"].isEnabled()
    assert not window.edit_panel.sliders["contempt"].isEnabled()  # the clip shows no contempt
    smile_rows = np.nonzero(view.raw_fit.has_face)[0][-10:]
    before = view.reconstruction_emotion()[smile_rows, HAPPY].mean()
    window.seek(int(smile_rows[5]))
    mesh_before = window.viewport._last[0].copy()
    drag(window.edit_panel.sliders["happy"], 0)
    after = view.reconstruction_emotion()[smile_rows, HAPPY].mean()
    assert before > 0.8 and after < before - 0.3
    curve = window.timelines.items["reconstruction.happy"].getData()[1]
    assert np.nanmean(curve[smile_rows]) == np.float64(after).round(6) or abs(np.nanmean(curve[smile_rows]) - after) < 1e-5
    assert np.abs(window.viewport._last[0] - mesh_before).max() > 1e-3  # the smile left the mesh


def test_range_edits_leave_other_frames_alone(loaded, qtbot):
    window = loaded
    view = window.view
    raw = view.raw_fit.expression.copy()
    window.seek(20)
    window.set_in_point()
    window.seek(39)
    window.set_out_point()
    assert window.range == (20, 40)
    window.edit_panel.scope.setCurrentIndex(1)
    drag(window.edit_panel.sliders["jaw"], 0)
    jaw = ARKIT_NAMES.index("jawOpen")
    np.testing.assert_array_equal(view.fit.expression[:20], raw[:20])
    np.testing.assert_array_equal(view.fit.expression[40:], raw[40:])
    assert np.all(view.fit.expression[20:40, jaw] == 0)
    window.edit_panel.scope.setCurrentIndex(0)  # the whole-clip layer is untouched
    assert window.edit_panel.sliders["jaw"].value() == 100
    window.edit_panel.scope.setCurrentIndex(1)
    assert window.edit_panel.sliders["jaw"].value() == 0


def test_the_reconstruction_row_shows_the_curves_on_the_carrier_and_edits_dashed(loaded, qtbot):
    from PySide6.QtCore import Qt

    window = loaded
    view = window.view
    timelines = window.timelines
    carrier = view.take.read_emotion().main.carrier_probabilities
    shown = timelines.items["reconstruction.carrier happy"].getData()[1]
    faces = view.raw_fit.has_face
    assert np.allclose(shown[faces], carrier[faces, HAPPY], atol=1e-6)
    assert "frame" in timelines.plots["reconstruction"].titleLabel.text  # the take's own neutral frame
    assert "affect.carried" in timelines.items
    assert "reconstruction.happy" not in timelines.items  # no edits: no prediction drawn
    drag(window.edit_panel.sliders["happy"], 0)
    edited = timelines.items["reconstruction.happy"]
    assert edited.opts["pen"].style() == Qt.DashLine
    assert np.allclose(edited.getData()[1][faces], view.reconstruction_emotion()[faces, HAPPY], atol=1e-5)
    window.undo_stack.undo()
    qtbot.waitUntil(lambda: "reconstruction.happy" not in timelines.items, timeout=5000)


def test_the_consistency_of_sampled_renders_is_drawn_through_the_judged_frames(loaded):
    """The primary recogniser judges the reconstruction on some frames only: its consistency is
    one line through those frames (drawn frame by frame, isolated frames showed nothing)."""
    from app.timelines import measured_line

    window = loaded
    consistency = window.view.take.read_emotion().main.consistency
    judged = np.isfinite(consistency) & window.view.raw_fit.has_face
    assert 2 <= judged.sum() < 0.9 * len(judged)  # sampled
    x, y = window.timelines.items["affect.consistency"].getData()
    finite = np.isfinite(y)
    np.testing.assert_array_equal(x[finite], np.nonzero(judged)[0])
    np.testing.assert_allclose(y[finite], consistency[judged])
    rows = np.nonzero(judged)[0]
    faceless_between = (np.diff(np.cumsum(~window.view.raw_fit.has_face)[rows]) > 0).sum()
    assert (~finite).sum() == faceless_between  # joined wherever the face stays

    values = np.array([np.nan, 0.5, np.nan, 0.7, np.nan, np.nan, 0.9, 0.8])
    faces = np.array([1, 1, 1, 1, 0, 1, 1, 1], bool)
    x, y = measured_line(values, faces)  # a frame without a face breaks the line
    np.testing.assert_array_equal(x, [1, 3, 5.5, 6, 7])
    np.testing.assert_array_equal(np.isnan(y), [False, False, True, False, False])
