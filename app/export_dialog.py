"""The export dialog: a format from the export registry, where to write it, which frames, whether
the edits (sliders and curve keys) are applied, a retarget map (a YAML file; the presets in resources/retarget) and
key reduction (keyed formats only). The export itself runs in a worker (app.workers)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.export.keyreduce import KEYED_FORMATS, KeyReduction
from core.export.registry import SUFFIXES
from core.export.retarget import PRESETS

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
    retarget: Path | None = None  # a retarget map (core.export.retarget)
    reduce: KeyReduction | None = None  # key reduction (core.export.keyreduce)
    curves: str = "model"  # "arkit": a FLAME take's curves as the 52 ARKit ones (core.export.arkit_from_flame)


class ExportDialog(QDialog):
    def __init__(self, formats: list[str], default_stem: Path, selected_range: tuple[int, int] | None,
                 parent: QWidget | None = None, *, flame_take: bool = False) -> None:
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
        self.edits = QCheckBox("Apply the edits (sliders and curve keys)")
        self.edits.setChecked(True)
        self.retarget = QLineEdit()
        self.retarget.setObjectName("export_retarget")
        self.retarget.setPlaceholderText("none: EmoCap's own curve names")
        self.retarget.setToolTip("A retarget map (YAML) onto your rig's channel names; presets in " + str(PRESETS))
        pick_map = QPushButton("Choose…")
        pick_map.setObjectName("export_retarget_browse")
        pick_map.clicked.connect(self._browse_map)
        map_row = QHBoxLayout()
        map_row.addWidget(self.retarget, 1)
        map_row.addWidget(pick_map)
        self.reduce = QCheckBox("Reduce keys, largest error")
        self.reduce.setObjectName("export_reduce")
        self.tolerance = QDoubleSpinBox()
        self.tolerance.setObjectName("export_tolerance")
        self.tolerance.setDecimals(4)
        self.tolerance.setRange(0.0001, 1.0)
        self.tolerance.setSingleStep(0.005)
        self.tolerance.setValue(0.01)
        self.tolerance.setSuffix(" (curve units)")
        self.degrees = QDoubleSpinBox()
        self.degrees.setObjectName("export_degrees")
        self.degrees.setDecimals(3)
        self.degrees.setRange(0.001, 10.0)
        self.degrees.setSingleStep(0.05)
        self.degrees.setValue(0.1)
        self.degrees.setSuffix(" °")
        self.reduce.toggled.connect(self.tolerance.setEnabled)
        self.reduce.toggled.connect(self.degrees.setEnabled)
        self.tolerance.setEnabled(False)
        self.degrees.setEnabled(False)
        reduce_row = QHBoxLayout()
        reduce_row.addWidget(self.reduce)
        reduce_row.addWidget(self.tolerance)
        reduce_row.addWidget(self.degrees)
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Save to", row)
        form.addRow("Frames", self.whole)
        form.addRow("", self.selected)
        form.addRow("", self.edits)
        form.addRow("Retarget map", map_row)
        form.addRow("Keys", reduce_row)
        self.arkit = QCheckBox("ARKit curves (mapped from FLAME onto the open model's 52 shapes)")
        self.arkit.setObjectName("export_arkit")
        self.arkit.setEnabled(flame_take)
        self.arkit.setToolTip("" if flame_take else "this take's curves are ARKit's already")
        form.addRow("Curves", self.arkit)
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
        keyed = name in KEYED_FORMATS
        self.reduce.setEnabled(keyed)
        if not keyed:
            self.reduce.setChecked(False)
        self.reduce.setToolTip("" if keyed else f"{name} stores every frame; keys can be reduced in "
                                                 f"{', '.join(KEYED_FORMATS)}")

    def _browse_map(self) -> None:
        start = self.retarget.text() or str(PRESETS)
        path, _ = QFileDialog.getOpenFileName(self, "Retarget map", start, "Retarget maps (*.yaml *.yml)")
        if path:
            self.retarget.setText(path)

    def _browse(self) -> None:
        if self.format.currentData() == "obj_seq":
            path = QFileDialog.getExistingDirectory(self, "Export folder", str(self.default_stem.parent))
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to", self.path.text())
        if path:
            self.path.setText(path)

    def choice(self) -> ExportChoice:
        retarget = Path(self.retarget.text().strip()).expanduser() if self.retarget.text().strip() else None
        reduce = KeyReduction(self.tolerance.value(), degrees=self.degrees.value()) if self.reduce.isChecked() else None
        return ExportChoice(self.format.currentData(), Path(self.path.text()).expanduser(),
                            self.selected_range if self.selected.isChecked() else None, self.edits.isChecked(),
                            retarget, reduce, "arkit" if self.arkit.isChecked() else "model")
