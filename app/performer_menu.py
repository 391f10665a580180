"""The Performer menu: a performer profile made from the open take (emocap calibrate) and the
profile the take is fitted with (analyze --performer), kept by the take like its neutral."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from app.take_manifest import stored_manifest
from app.workers import Job, calibrate_job

PROFILE_FILTER = "Performer profiles (*.npz)"


def stored_performer(take_dir: Path) -> str | None:
    """The performer profile a take's fit was made with (its path), or None."""
    manifest = stored_manifest(take_dir)
    return None if manifest is None or manifest.fit is None else manifest.fit.settings.get("performer")


def performer_options(performer: str | None) -> list[str]:
    """``emocap analyze`` options that keep a take's profile (so that a rerun resumes)."""
    return [] if performer is None else ["--performer", performer]


def describe_performer(performer: str | None) -> str:
    return "none (the open model's generic shapes)" if performer is None else Path(performer).name


class PerformerMenu:
    """Builds the menu on ``window`` (app.main_window.MainWindow) and runs its jobs there."""

    def __init__(self, window, bar) -> None:
        self.window = window
        menu = bar.addMenu("Pe&rformer")
        self.new_action = window._action(menu, "&New profile from this take…", self.new_profile_dialog, None,
                                         "performer_new")
        self.new_action.setToolTip("learn the performer's own neutral face and shapes from this take "
                                   "(emocap calibrate); a calibration clip of their range of motion works best")
        self.use_action = window._action(menu, "&Use a profile for this take…", self.use_profile_dialog, None,
                                         "performer_use")
        self.use_action.setToolTip("refit this take with a performer profile: their neutral face and shapes")
        self.none_action = window._action(menu, "Use &no profile (generic shapes)", lambda: self.use_profile(None),
                                          None, "performer_none")
        self.update_actions()

    # -- making a profile ------------------------------------------------------------------------
    def new_profile_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save performer profile", "", PROFILE_FILTER)
        if path:
            self.new_profile(Path(path))

    def new_profile(self, out: Path) -> None:
        """Calibrate a profile from the open take into ``out`` in the background."""
        window = self.window
        if window.refuse_without_fit() or window.refuse_while_busy():
            return
        job = Job("calibrate", calibrate_job, Path(window.view.take.root), Path(out),
                  on_batch=lambda lines: window.progress.stage.setText(f"calibrating: {lines[-1]}"),
                  on_done=self._calibrated, on_error=window._job_error)
        window._start_job(job, "calibrating the performer")

    def _calibrated(self, report: dict) -> None:
        window = self.window
        window.progress.end()
        held = report.get("held_out_residual_generic")
        quality = (f"; held-out landmark residual {100 * held:.2f} -> {100 * report['held_out_residual_performer']:.2f} "
                   "% of the eye distance" if held is not None else "")
        window.statusBar().showMessage(f"performer profile saved to {report['profile']}{quality}; "
                                       "Performer > Use a profile applies it", 20000)
        window.job_finished.emit("calibrate", True)

    # -- using one -------------------------------------------------------------------------------
    def use_profile_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Use performer profile", "", PROFILE_FILTER)
        if path:
            self.use_profile(path)

    def use_profile(self, performer: str | Path | None) -> None:
        """Refit the open take with ``performer`` (a profile's path; None: the generic shapes)."""
        window = self.window
        if window.refuse_while_busy():
            return
        if window.settings.method != "fit":
            window.statusBar().showMessage("a performer profile is for the fitter; the actor encoder is chosen in "
                                           "Settings", 8000)
            return
        performer = None if performer is None else str(Path(performer).resolve())
        if performer == window.performer:
            window.statusBar().showMessage(f"the profile is already {describe_performer(performer)}", 5000)
            return
        window.performer = performer
        self.update_actions()
        window.start_analysis()
        window.statusBar().showMessage(f"performer profile: {describe_performer(performer)}; refitting the take", 15000)

    def update_actions(self) -> None:
        window = self.window
        idle = not window.job_running
        self.new_action.setEnabled(idle and window.view is not None and window.performer is None)
        self.use_action.setEnabled(idle and window.input_path is not None)
        self.none_action.setEnabled(idle and window.input_path is not None and window.performer is not None)
