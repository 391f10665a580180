"""The export dialog: a format from the export registry, where to write it, which frames, and
whether the slider edits are applied. The export itself runs in a worker (app.workers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLineEdit, QPushButton,
    QRadioButton, QVBoxLayout, QWidget,
)

SUFFIXES = {"curves_npz": ".npz", "curves_json": ".json", "curves_csv": ".csv", "arkit_csv": ".csv", "fbx": ".fbx",
            "gltf": ".glb", "usd": ".usda", "abc": ".abc", "obj_seq": ""}
DESCRIPTIONS = {
    "curves_npz": "FLAME / ARKit animation curves (NumPy .npz)", "curves_json": "Animation curves (JSON)",
    "curves_csv": "Animation curves (CSV)", "arkit_csv": "ARKit 52 curves (Live Link Face CSV, Unreal / MetaHuman)",
    "obj_seq": "OBJ sequence (one mesh per frame, a folder)", "fbx": "FBX with shape keys and animation",
    "gltf": "glTF 2.0 binary with morph targets", "usd": "USD with UsdSkel blend shapes", "abc": "Alembic mesh cache",
}


@dataclass(frozen=True)
class ExportChoice:
    format: str
    out: Path
    frame_range: tuple[int, int] | None
    apply_edits: bool


class ExportDialog(QDialog):
    def __init__(self, formats: list[str], default_stem: Path, selected_range: tuple[int, int] | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.default_stem = Path(default_stem)
        self.format = QComboBox()
        self.format.setObjectName("export_format")
        for name in formats:
            self.format.addItem(f"{DESCRIPTIONS.get(name, name)}  [{name}]", name)
        self.format.currentIndexChanged.connect(self._format_changed)
        self.path = QLineEdit()
        self.path.setObjectName("export_path")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.whole = QRadioButton("Whole clip")
        self.whole.setChecked(True)
        self.selected = QRadioButton("In/out range" + (f" (frames {selected_range[0]}–{selected_range[1] - 1})" if selected_range else ""))
        self.selected.setEnabled(selected_range is not None)
        self.selected_range = selected_range
        self.edits = QCheckBox("Apply the slider edits")
        self.edits.setChecked(True)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Save to", row)
        form.addRow("Frames", self.whole)
        form.addRow("", self.selected)
        form.addRow("", self.edits)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._format_changed()

    def _format_changed(self) -> None:
        name = self.format.currentData()
        suffix = SUFFIXES.get(name, "")
        self.path.setText(str(self.default_stem.with_name(f"{self.default_stem.name}_{name}{suffix}")))

    def _browse(self) -> None:
        if self.format.currentData() == "obj_seq":
            path = QFileDialog.getExistingDirectory(self, "Export folder", str(self.default_stem.parent))
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text())
        if path:
            self.path.setText(path)

    def choice(self) -> ExportChoice:
        return ExportChoice(self.format.currentData(), Path(self.path.text()).expanduser(),
                            self.selected_range if self.selected.isChecked() else None, self.edits.isChecked())
