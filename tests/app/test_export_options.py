"""The export dialog's retarget map and key reduction, and an export from the window with both."""

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog, QPushButton

from app.export_dialog import ExportChoice, ExportDialog
from core.export import import_curves
from core.export.keyreduce import KeyReduction
from core.export.retarget import PRESETS
from core.facemodel.open_model import ARKIT_NAMES


def test_dialog_offers_a_map_and_key_reduction(qtbot, tmp_path, monkeypatch):
    dialog = ExportDialog(["abc", "curves_json", "fbx"], tmp_path / "clip", None)
    qtbot.addWidget(dialog)
    assert dialog.choice().retarget is None and dialog.choice().reduce is None  # defaults: as analysed, every key
    dialog.format.setCurrentIndex(0)  # abc: a mesh cache has no keys
    assert not dialog.reduce.isEnabled() and "abc stores every frame" in dialog.reduce.toolTip()
    dialog.format.setCurrentIndex(2)  # fbx
    assert dialog.reduce.isEnabled()
    assert not dialog.tolerance.isEnabled()
    dialog.reduce.setChecked(True)
    assert dialog.tolerance.isEnabled() and dialog.degrees.isEnabled()
    dialog.tolerance.setValue(0.02)
    dialog.degrees.setValue(0.25)
    preset = PRESETS / "custom_rig_example.yaml"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(preset), ""))
    dialog.findChild(QPushButton, "export_retarget_browse").click()
    choice = dialog.choice()
    assert choice.format == "fbx" and choice.retarget == preset
    assert choice.reduce == KeyReduction(0.02, degrees=0.25)
    dialog.format.setCurrentIndex(0)  # switching to a format without keys turns reduction off
    assert dialog.choice().reduce is None and dialog.choice().retarget == preset


def test_export_from_the_window_with_a_map_and_reduction(loaded, qtbot, tmp_path):
    out = tmp_path / "curves.json"
    choice = ExportChoice("curves_json", out, None, apply_edits=True, retarget=PRESETS / "custom_rig_example.yaml",
                          reduce=KeyReduction(0.02))
    with qtbot.waitSignal(loaded.job_finished, timeout=60000) as done:
        loaded.export(choice)
    assert done.args == ["export", True]
    curves = import_curves(out)
    assert list(curves["expression_names"])[:3] == ["JawDrop", "TeethApart", "Blink"]
    jaw = loaded.view.fit.expression[:, ARKIT_NAMES.index("jawOpen")]  # JawDrop is a rename of jawOpen
    faces = curves["has_face"]
    assert np.abs(curves["expression"][faces, 0] - jaw[faces]).max() <= 0.02 + 1e-6
    with open(out) as f:
        assert '"reduction": {"tolerance": 0.02' in f.read()


def test_a_bad_map_is_shown_as_an_error(loaded, qtbot, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("emocap_retarget: 1\nchannels:\n  Blink: eyeBlinkLeftt\n")
    with qtbot.waitSignal(loaded.job_finished, timeout=60000):
        loaded.export(ExportChoice("fbx", tmp_path / "x.fbx", None, True, retarget=Path(bad)))
    assert "line 3" in loaded.last_error.text() and "eyeBlinkLeftt" in loaded.last_error.text()
    loaded.last_error.close()
    assert not (tmp_path / "x.fbx").exists()
