"""Saving and reopening takes (edits included), reopening after a crash, settings, export."""

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from app.export_dialog import ExportChoice
from app.settings import AppSettings, SettingsDialog
from core.export import import_curves
from tests.synthetic_flame import write_synthetic_flame


def drag(slider, value):
    slider.setSliderDown(True)
    slider.setValue(value)
    slider.setSliderDown(False)
    slider.sliderReleased.emit()


def test_save_as_and_reopen_restores_the_edits(loaded, qtbot, tmp_path, store):
    from app.main_window import MainWindow

    drag(loaded.edit_panel.sliders["intensity"], 40)
    target = tmp_path / "saved_take"
    with qtbot.waitSignal(loaded.take_loaded, timeout=60000):
        loaded.save_take_as(target)
    assert (target / "edits.json").exists() and loaded.take_dir == target
    loaded.close()
    again = MainWindow(store)
    qtbot.addWidget(again)
    again.show()
    with qtbot.waitSignal(again.take_loaded, timeout=60000):
        again.open_take(target)
    assert again.edit_panel.sliders["intensity"].value() == 40
    faces = again.view.raw_fit.has_face
    np.testing.assert_allclose(again.view.fit.expression[faces], 0.4 * again.view.raw_fit.expression[faces], atol=1e-6)
    again.close()


def test_saving_over_an_existing_folder_is_refused(loaded, tmp_path):
    (tmp_path / "exists").mkdir()
    loaded.save_take_as(tmp_path / "exists")
    assert "already exists" in loaded.last_error.text()
    loaded.last_error.close()


def test_after_a_crash_the_take_is_reopened(loaded, qtbot, tmp_path):
    from app.main_window import MainWindow

    crashed = QSettings(str(tmp_path / "crashed.ini"), QSettings.IniFormat)
    crashed.setValue("session/take", str(loaded.view.take.root))
    crashed.setValue("session/clean_exit", False)  # what a killed app leaves behind
    window = MainWindow(crashed)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.take_loaded, timeout=60000):
        assert window.restore_session()
    assert "unexpected exit" in window.statusBar().currentMessage()
    window.close()
    assert crashed.value("session/clean_exit") in (True, "true")
    calm = MainWindow(crashed)
    qtbot.addWidget(calm)
    assert not calm.restore_session()  # a clean exit reopens nothing by itself
    calm.close()


def test_export_from_the_app_applies_the_edits(loaded, qtbot, tmp_path):
    drag(loaded.edit_panel.sliders["intensity"], 50)
    out = tmp_path / "curves.npz"
    with qtbot.waitSignal(loaded.job_finished, timeout=60000) as done:
        loaded.export(ExportChoice("curves_npz", out, (10, 30), apply_edits=True))
    assert done.args == ["export", True]
    curves = import_curves(out)
    raw = loaded.view.raw_fit
    np.testing.assert_allclose(curves["expression"], 0.5 * raw.expression[10:30], atol=1e-5)
    assert "exported 20 frames" in loaded.statusBar().currentMessage()


def test_cancelled_export_leaves_nothing(loaded, qtbot, tmp_path):
    out = tmp_path / "seq"
    with qtbot.waitSignal(loaded.job_finished, timeout=60000) as done:
        loaded.export(ExportChoice("obj_seq", out, None, apply_edits=True))
        loaded.cancel_job()
    assert done.args == ["cancelled", False]
    assert not out.exists() and not any(p.name.startswith(".seq") for p in tmp_path.iterdir())


def test_settings_dialog_validates_the_flame_file(qtbot, tmp_path, store):
    settings = AppSettings.load(store)
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(b"not a pickle")
    dialog.model.setCurrentIndex(1)
    dialog.flame_path.setText(str(bad))
    assert not dialog.check_flame()
    assert "✗" in dialog.flame_status.text() and "flame.is.tue.mpg.de" in dialog.flame_status.text()
    dialog.accept()
    assert dialog.result() == 0 and settings.model == "open"  # refused: nothing changed
    good = write_synthetic_flame(tmp_path / "flame2023.pkl").path
    dialog.flame_path.setText(str(good))
    dialog.shape.setValue(10)
    dialog.expression.setValue(10)
    assert dialog.check_flame() and "✓" in dialog.flame_status.text()
    dialog.accept()
    assert settings.model == "flame" and settings.flame_path == str(good)
    settings.save(store)
    again = AppSettings.load(store)
    assert again.model == "flame" and again.shape_components == 10
    options = again.analysis_options()
    assert options[options.index("--flame") + 1] == str(good) and options[options.index("--model") + 1] == "flame"


def test_flame_without_a_file_is_a_clear_error(store):
    settings = AppSettings.load(store)
    settings.model = "flame"
    with pytest.raises(Exception, match="no FLAME file"):
        settings.analysis_options()


def test_training_an_actor_encoder_from_the_app(loaded, qtbot):
    with qtbot.waitSignal(loaded.job_finished, timeout=300000) as done:
        loaded.train_actor(epochs=1)
    assert done.args == ["train_actor", True]
    encoder = loaded.view.take.root / "encoder" / "encoder.pt"
    assert encoder.is_file() and loaded.settings.encoder_path == str(encoder)
    assert "actor encoder trained" in loaded.statusBar().currentMessage()
    loaded.settings.method = "encoder"
    options = loaded.settings.analysis_options()
    assert options[options.index("--method") + 1] == "encoder" and options[options.index("--encoder") + 1] == str(encoder)
