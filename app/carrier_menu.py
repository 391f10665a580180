"""The carrier face of the open take (Analysis menu): the neutral photo whose face wears the curves
so that the recognisers judge what the curves carry (analyze --carrier, core/emotion/carrier.py),
kept by the take like its neutral."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app.take_manifest import stored_manifest

PHOTO_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp)"


def stored_carrier(take_dir: Path) -> str | None:
    """The carrier photo a take's emotion analysis was asked for (its path), or None (the take's
    own neutral photo or frame)."""
    manifest = stored_manifest(take_dir)
    return None if manifest is None or manifest.emotion is None else manifest.emotion.settings.get("carrier")


def carrier_options(carrier: str | None) -> list[str]:
    """``emocap analyze`` options that keep a take's carrier (so that a rerun resumes)."""
    return [] if carrier is None else ["--carrier", carrier]


def describe_carrier(carrier: str | None) -> str:
    return "the take's own neutral" if carrier is None else Path(carrier).name


class CarrierActions:
    """Adds the carrier's actions to ``menu`` of ``window`` (app.main_window.MainWindow)."""

    def __init__(self, window, menu) -> None:
        self.window = window
        self.photo_action = window._action(menu, "&Carrier face…", self.choose_photo_dialog, None, "carrier_photo")
        self.photo_action.setToolTip("a neutral photo (best another person's) whose face wears the curves, so that "
                                     "the reconstruction's emotion row shows what the curves carry onto a rig")
        self.own_action = window._action(menu, "Carrier: the take's own neutral", lambda: self.use_carrier(None), None,
                                         "carrier_own")
        self.update_actions()

    def choose_photo_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Carrier face: a neutral photo", "", PHOTO_FILTER)
        if path:
            self.use_carrier(path)

    def use_carrier(self, carrier: str | Path | None) -> None:
        """Judge the open take's curves on ``carrier`` (a photo's path; None: the take's own neutral):
        the emotion stage runs again, the fit stays."""
        window = self.window
        if window.refuse_while_busy():
            return
        carrier = None if carrier is None else str(Path(carrier).resolve())
        if carrier == window.carrier:
            window.statusBar().showMessage(f"the carrier face is already {describe_carrier(carrier)}", 5000)
            return
        window.carrier = carrier
        self.update_actions()
        window.start_analysis()
        window.statusBar().showMessage(f"carrier face: {describe_carrier(carrier)}; judging the curves on it", 15000)

    def update_actions(self) -> None:
        window = self.window
        idle = not window.job_running and window.input_path is not None
        self.photo_action.setEnabled(idle)
        self.own_action.setEnabled(idle and window.carrier is not None)
