"""The export dialog's ARKit-curves choice for FLAME takes (core.export.arkit_from_flame)."""

from app.export_dialog import ExportDialog


def test_dialog_offers_arkit_curves_for_a_flame_take(qtbot, tmp_path):
    plain = ExportDialog(["arkit_csv", "fbx"], tmp_path / "clip", None)
    qtbot.addWidget(plain)
    assert not plain.arkit.isEnabled() and plain.choice().curves == "model"  # an open-model take: ARKit already
    dialog = ExportDialog(["arkit_csv", "fbx"], tmp_path / "clip", None, flame_take=True)
    qtbot.addWidget(dialog)
    assert dialog.arkit.isEnabled() and dialog.choice().curves == "model"
    dialog.arkit.setChecked(True)
    choice = dialog.choice()
    assert choice.curves == "arkit" and choice.format == "arkit_csv"
