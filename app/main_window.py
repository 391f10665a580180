"""The main window: video panel and 3D viewport side by side, timelines below, sliders in a dock,
transport in a toolbar, background jobs in the status bar.

The window never computes: ``core`` does (a TakeView for what is shown, the Pipeline for analysis,
the export registry), heavy work runs in app.workers, and only this thread touches widgets.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QMessageBox, QSplitter

from app.carrier_menu import CarrierActions, carrier_options, stored_carrier
from app.curve_editor import CurveEditor
from app.edit_panel import EditPanel
from app.performer_menu import PerformerMenu, describe_performer, performer_options, stored_performer
from app.progress import ProgressPanel
from app.settings import AppSettings, SettingsDialog, ask_emonet_licence
from app.still_panel import StillPanel
from app.take_manifest import stored_manifest
from app.timelines import TimelinePanel
from app.transport import Player, TransportBar
from app.video_view import VideoView
from app.viewport import MeshViewport
from app.workers import FittedWindow, Job, analysis_job, engine_job, export_job, open_take_job, train_actor_job
from core.atomic import copy_folder_atomic
from core.errors import CancelledError, DamagedChunkError, EmoCapError
from core.take.store import is_take_folder
from core.video import open_source

log = logging.getLogger(__name__)

MAX_RECENT = 8
TIMELINE_REFRESH_SECONDS = 0.5  # redraw streamed curves at most this often during an analysis
MEDIA_FILTER = "Video or image (*.mp4 *.mov *.avi *.mkv *.m4v *.webm *.jpg *.jpeg *.png *.bmp *.tif *.tiff);;All files (*)"


class AnalysisStream:
    """What an analysis has streamed so far (before its take is loaded): landmarks of the frames
    seen (for the overlay), face confidence, and the expression curves of fitted windows."""

    def __init__(self, frames: int) -> None:
        self.landmarks: dict[int, np.ndarray] = {}
        self.has_face = np.zeros(frames, bool)
        self.confidence = np.full(frames, np.nan)
        self.expression: np.ndarray | None = None
        self.expression_names: list[str] = []
        self.frames_from_take = 0  # frames a resumed analysis took from the take instead of redoing

    def add(self, item) -> None:
        """Take in one core.progress_stream.FrameEvent or app.workers.FittedWindow."""
        from core.progress_stream import FrameEvent

        if isinstance(item, FrameEvent):
            self.frames_from_take += item.from_take
            if item.index < len(self.has_face) and item.has_face:
                self.landmarks[item.index] = item.landmarks
                self.has_face[item.index] = True
                self.confidence[item.index] = item.confidence
        elif isinstance(item, FittedWindow):
            if self.expression is None:
                self.expression_names = item.names
                self.expression = np.full((len(self.has_face), item.expression.shape[1]), np.nan)
            keep = item.rows < len(self.has_face)
            self.expression[item.rows[keep]] = item.expression[keep]


def stored_neutral(take_dir: Path) -> dict | None:
    """The neutral a take's fit was made with, as the take stores it: None (automatic, or no fit
    yet), {"frame": N} or {"image": {"path": ..., ...}}."""
    manifest = stored_manifest(take_dir)
    return None if manifest is None or manifest.fit is None else manifest.fit.neutral


def neutral_options(neutral: dict | None) -> list[str]:
    """``emocap analyze`` options that keep a take's neutral (so that a rerun resumes)."""
    if neutral is None:
        return []
    return ["--neutral", str(neutral["frame"]) if "frame" in neutral else neutral["image"]["path"]]


def describe_neutral(neutral: dict | None) -> str:
    if neutral is None:
        return "automatic (the clip's most neutral frames)"
    return f"frame {neutral['frame']}" if "frame" in neutral else f"image {Path(neutral['image']['path']).name}"


class EditCommand(QUndoCommand):
    """One committed edit, of the sliders or the curve editor (old and new core.edit.Edits)."""

    def __init__(self, window: MainWindow, old, new, text: str) -> None:
        super().__init__(text)
        self.window, self.old, self.new = window, old, new

    def redo(self) -> None:
        self.window.apply_edits(self.new, commit=True)

    def undo(self) -> None:
        self.window.apply_edits(self.old, commit=True)


class MainWindow(QMainWindow):
    """Signals for tests and scripts: ``frame_shown(index)``, ``take_loaded(take_dir)``,
    ``job_finished(name, ok)``."""

    frame_shown = Signal(int)
    take_loaded = Signal(str)
    job_finished = Signal(str, bool)

    def __init__(self, store: QSettings | None = None) -> None:
        super().__init__()
        self.store = store or QSettings()
        self.settings = AppSettings.load(self.store)
        self.setWindowTitle("EmoCap")
        self.setAcceptDrops(True)
        self.resize(1440, 900)
        self.source = None  # core.video.FrameSource shown (main thread only)
        self.input_path: Path | None = None
        self.take_dir: Path | None = None
        self.neutral: dict | None = None  # the open take's neutral (see stored_neutral)
        self.performer: str | None = None  # the open take's performer profile (app.performer_menu)
        self.carrier: str | None = None  # the open take's carrier photo (app.carrier_menu)
        self.view = None  # core.take_view.TakeView once results are loaded
        self.shown_view = None  # the view once all of it is on screen (take_loaded)
        self._newest_load: Job | None = None
        self.committed = None  # core.edit.Edits as last committed (undo stack state)
        self.job: Job | None = None
        self.jobs: list[Job] = []
        self.batch = None  # app.batch_dialog.BatchDialog once File > Batch… was opened
        self.current = 0
        self.range: tuple[int, int] | None = None
        self.first_frame_logged = False
        self._engine: Job | None = None
        self.engine_seconds: float | None = None  # how long loading torch and the views took
        self.stream: AnalysisStream | None = None
        self._timelines_updated = 0.0
        self.undo_stack = QUndoStack(self)
        self._pending_preview = None
        self._preview_timer = QTimer(self, singleShot=True, interval=0)
        self._preview_timer.timeout.connect(self._run_preview)
        self._autosave_timer = QTimer(self, singleShot=True, interval=400)
        self._autosave_timer.timeout.connect(self.save_edits)
        self._build_widgets()
        self._build_actions()
        self._update_take_actions()
        self.previous_exit_clean = self.store.value("session/clean_exit", True) in (True, "true")
        self.store.setValue("session/clean_exit", False)

    # -- construction ----------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.video = VideoView()
        self.viewport = MeshViewport()
        self.timelines = TimelinePanel()
        top = QSplitter(Qt.Horizontal)
        top.addWidget(self.video)
        top.addWidget(self.viewport)
        top.setSizes([700, 700])
        self.still = StillPanel()  # shown instead of the timelines for a single image
        self.still.hide()
        main = QSplitter(Qt.Vertical)
        main.addWidget(top)
        main.addWidget(self.timelines)
        main.addWidget(self.still)
        main.setSizes([470, 380, 380])
        self.setCentralWidget(main)
        self.edit_panel = EditPanel()
        self.edit_panel.setEnabled(False)
        dock = QDockWidget("Edit", self)
        dock.setObjectName("edit_dock")
        dock.setWidget(self.edit_panel)
        self.addDockWidget(Qt.RightDockWidgetArea, dock)
        self.edit_dock = dock
        self.player = Player(self)
        self.player.frame_due.connect(self.show_frame)
        self.transport = TransportBar(self, self.player, self.seek)
        self.addToolBar(Qt.BottomToolBarArea, self.transport)
        self.progress = ProgressPanel()
        self.progress.cancel_requested.connect(self.cancel_job)
        self.statusBar().addPermanentWidget(self.progress)
        self.timelines.seek.connect(self.seek)
        self.timelines.range_changed.connect(self._range_dragged)
        self.curve_editor = CurveEditor(self)
        self.edit_panel.edited.connect(self._slider_edited)
        self.edit_panel.reset_requested.connect(self.reset_edits)
        self.edit_panel.scope_changed.connect(lambda _: self._show_layer())

    def _action(self, menu, text: str, slot, shortcut=None, name: str | None = None, checkable=False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        if name:
            action.setObjectName(name)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(file, "&Open video or images…", self.open_dialog, QKeySequence.Open, "open")
        self._action(file, "Open image &folder…", self.open_folder_dialog, None, "open_folder")
        self._action(file, "Open &take…", self.open_take_dialog, "Ctrl+Shift+O", "open_take")
        self.recent_menu = file.addMenu("Recent")
        self._fill_recent()
        file.addSeparator()
        self._action(file, "Save take &as…", self.save_take_as_dialog, "Ctrl+Shift+S", "save_take_as")
        self._action(file, "&Export…", self.export_dialog, "Ctrl+E", "export")
        self._action(file, "&Batch…", self.batch_dialog, "Ctrl+B", "batch")
        file.addSeparator()
        self._action(file, "Settings…", self.settings_dialog, "Ctrl+,", "settings")
        self._action(file, "&Quit", self.close, QKeySequence.Quit, "quit")
        edit = bar.addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.Redo)
        edit.addAction(undo)
        edit.addAction(redo)
        edit.addSeparator()
        self._action(edit, "Set &in point", self.set_in_point, "I", "set_in")
        self._action(edit, "Set &out point", self.set_out_point, "O", "set_out")
        self._action(edit, "Clear in/out", self.clear_range, "Alt+X", "clear_range")
        self.curve_editor.add_actions(edit)
        view = bar.addMenu("&View")
        self.landmarks_action = self._action(view, "Landmarks on video", self._overlays_changed, "Ctrl+L", "landmarks", True)
        self.landmarks_action.setChecked(True)
        self.mesh_action = self._action(view, "Fitted mesh on video", self._overlays_changed, "Ctrl+M", "mesh_overlay", True)
        self.refined_action = self._action(view, "Micro-expression refinement", self._refined_toggled, "Ctrl+D",
                                           "show_refined", True)
        self.refined_action.setEnabled(False)
        self.refined_action.setToolTip("compare the refined reconstruction with the plain fit (after --refine)")
        view.addSeparator()
        self._action(view, "Reset 3D view", self.viewport.reset_view, "R")
        self._action(view, "Front view", lambda: self.viewport.set_preset("front"), "1")
        self._action(view, "Side view", lambda: self.viewport.set_preset("side"), "3")
        self._action(view, "Wireframe", lambda: self.viewport.set_wireframe(not self.viewport.wireframe), "W")
        self._action(view, "Performer's colours on the mesh", lambda: self.viewport.set_textured(not self.viewport.textured), "T")
        play = bar.addMenu("&Playback")
        self._action(play, "Play / pause", self.player.toggle, Qt.Key_Space, "play")
        self._action(play, "Play backwards (J)", lambda: self.player.shuttle(-1), Qt.Key_J)
        self._action(play, "Pause (K)", self.player.pause, Qt.Key_K)
        self._action(play, "Play forwards (L)", lambda: self.player.shuttle(1), Qt.Key_L)
        self._action(play, "Next frame", lambda: self.seek(self.current + 1), Qt.Key_Right, "next")
        self._action(play, "Previous frame", lambda: self.seek(self.current - 1), Qt.Key_Left, "previous")
        self._action(play, "Forward 10 frames", lambda: self.seek(self.current + 10), "Shift+Right")
        self._action(play, "Back 10 frames", lambda: self.seek(self.current - 10), "Shift+Left")
        self._action(play, "Start", lambda: self.seek(0), Qt.Key_Home, "home")
        self._action(play, "End", lambda: self.seek(self.player.frame_count - 1), Qt.Key_End, "end")
        analysis = bar.addMenu("&Analysis")
        self._action(analysis, "&Analyse (resume)", lambda: self.start_analysis(), "Ctrl+R", "analyse")
        self._action(analysis, "Analyse again from scratch", lambda: self.start_analysis(overwrite=True), None, "reanalyse")
        analysis.addSeparator()
        self.neutral_frame_action = self._action(analysis, "Use this frame as &neutral", self.use_frame_as_neutral,
                                                 None, "neutral_frame")
        self.neutral_frame_action.setToolTip("fit the performer's identity on the current frame (it must show "
                                             "a neutral face) and refit the take")
        self.neutral_auto_action = self._action(analysis, "Neutral: automatic", lambda: self.choose_neutral(None),
                                                None, "neutral_auto")
        self.neutral_auto_action.setToolTip("fit the performer's identity on the clip's most neutral frames")
        self.carrier_actions = CarrierActions(self, analysis)
        self.timecode_action = self._action(analysis, "Set start &timecode…", self.start_timecode_dialog, None,
                                            "start_timecode")
        self.timecode_action.setToolTip("the timecode of the clip's first frame, over the recording's own; "
                                        "exports (Live Link CSV, FBX, USD) carry it")
        analysis.addSeparator()
        self._action(analysis, "Train actor encoder from this take", lambda: self.train_actor(), None, "train_actor")
        self._action(analysis, "Cancel", self.cancel_job, "Esc", "cancel")
        self.performer_menu = PerformerMenu(self, bar)
        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&About EmoCap", self.show_about, None, "about")

    def show_about(self) -> None:
        from app.about import about_box

        about_box(self).open()

    # -- opening ---------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video or image", "", MEDIA_FILTER)
        if path:
            self.open_input(Path(path))

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if path:
            self.open_input(Path(path))

    def open_take_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a take folder", str(self.settings.takes_root()))
        if path:
            self.open_take(Path(path))

    def open_input(self, path: Path, analyse: bool | None = None) -> bool:
        """Show the recording at once (frame 0) and analyse it (or reopen its take)."""
        path = Path(path)
        try:
            source = open_source(path)
        except EmoCapError as err:
            self.show_error(err)
            return False
        self._close_current()
        self.source = source
        self.input_path = path
        self.take_dir = self.settings.take_dir_for(path)
        self._remember(path)
        self._configure_clip(source.info.frame_count, source.info.fps)
        self.transport.set_timecode(source.info.start_timecode())  # the take's, once it is loaded
        self._set_neutral(stored_neutral(self.take_dir))
        self.performer = stored_performer(self.take_dir)
        self.carrier = stored_carrier(self.take_dir)
        self.stream = AnalysisStream(source.info.frame_count)
        self.setWindowTitle(f"EmoCap — {path.name}")
        self.seek(0)
        analyse = self.settings.analyse_on_open if analyse is None else analyse
        if analyse:
            self.start_analysis()
        elif is_take_folder(self.take_dir):
            self.open_take(self.take_dir)
        return True

    def open_take(self, take_dir: Path) -> None:
        """Reopen a saved take (its recording is opened from where the take says it is). A damaged
        take.json is read from its backup; a take that cannot be read shows the one-line reason."""
        from core.take import Take

        take_dir = Path(take_dir)
        try:
            source_path = Path(Take.open(take_dir).manifest.source.path)
        except EmoCapError as err:
            self.show_error(err)
            return
        if self.input_path is None or Path(self.input_path).resolve() != source_path.resolve():
            if not source_path.exists():
                self.show_error(EmoCapError(f"the recording of this take is no longer at {source_path}"))
                return
            if not self.open_input(source_path, analyse=False):
                return
        self.take_dir = take_dir
        self._set_neutral(stored_neutral(take_dir))
        self.performer = stored_performer(take_dir)
        self.carrier = stored_carrier(take_dir)
        self._load_take()

    def _configure_clip(self, frames: int, fps: float) -> None:
        self.player.configure(fps, frames)
        self.timelines.clear()
        self.timelines.set_frame_count(frames)
        self.clear_range()
        still = frames == 1  # a photograph: bars instead of timelines, no transport
        self.still.clear()
        self.still.setVisible(still)
        self.timelines.setVisible(not still)
        self.transport.setVisible(not still)

    def _close_current(self) -> None:
        self.player.pause()
        if self.job_running:
            self.job.cancel()
        self.save_edits()
        self.undo_stack.clear()
        for item in (self.view, self.source):
            if item is not None:
                item.close()
        self.view = self.source = None
        self.committed = None
        self.stream = None
        self.edit_panel.setEnabled(False)
        self.viewport.clear()

    # -- jobs ------------------------------------------------------------------------------
    @property
    def job_running(self) -> bool:
        return self.job is not None and self.job.running

    def refuse_while_busy(self) -> bool:
        """True, said in the status bar, while a job runs (one job at a time)."""
        if self.job_running:
            self.statusBar().showMessage("a job is running; cancel it first", 4000)
            return True
        return False

    def refuse_without_fit(self) -> bool:
        """True, said in the status bar, when no fitted take is open."""
        if self.view is None or self.view.raw_fit is None:
            self.statusBar().showMessage("open a fitted take of the performer first", 5000)
            return True
        return False

    def _start_job(self, job: Job, text: str) -> None:
        self.job = job
        self.jobs.append(job)
        job.worker.finished.connect(lambda: self.jobs.remove(job) if job in self.jobs else None)
        job.worker.finished.connect(self._update_take_actions)
        self.progress.begin(text)
        job.start()
        self._update_take_actions()

    def load_engine(self) -> None:
        """Load torch and the views' modules in the background (once)."""
        if self._engine is None:
            self._engine = Job("engine", engine_job, on_done=self._engine_loaded, on_error=self._job_error)
            self._engine.start()

    def _engine_loaded(self, seconds: float) -> None:
        self.engine_seconds = seconds
        log.info("engine loaded in %.2f s", seconds)

    def start_analysis(self, overwrite: bool = False) -> None:
        if self.input_path is None:
            return
        if self.refuse_while_busy():
            return
        if self.settings.needs_emonet_answer():  # once: EmoNet is installed and its licence unanswered
            self.settings.answer_emonet(ask_emonet_licence(self))
            self.settings.save(self.store)
        try:
            options = (self.settings.analysis_options() + neutral_options(self.neutral)
                       + performer_options(self.performer) + carrier_options(self.carrier)
                       + (["--overwrite"] if overwrite else []))
        except EmoCapError as err:
            self.show_error(err)
            return
        self.store.setValue("session/take", str(self.take_dir))
        job = Job("analysis", analysis_job, self.input_path, self.take_dir, options,
                  on_batch=self._analysis_batch, on_done=self._analysis_done, on_error=self._job_error)
        self._start_job(job, "analysing")

    def use_frame_as_neutral(self) -> None:
        """Fit the performer's identity on the current frame: it must show a face."""
        view = self.view
        if view is not None and self.current < view.frame_count and not view.observations.has_face[self.current]:
            self.statusBar().showMessage(f"frame {self.current} shows no face; choose another neutral frame", 8000)
            return
        self.choose_neutral({"frame": self.current})

    def choose_neutral(self, neutral: dict | None) -> None:
        """Make ``neutral`` the open take's neutral (None: automatic) and refit the take with it."""
        if self.refuse_while_busy():
            return
        if self.settings.method != "fit":
            self.statusBar().showMessage("the neutral is for the fitter; the actor encoder is chosen in Settings", 8000)
            return
        if neutral == self.neutral:
            self.statusBar().showMessage(f"the neutral is already {describe_neutral(neutral)}", 5000)
            return
        self._set_neutral(neutral)
        self.start_analysis()
        self.statusBar().showMessage(f"neutral: {describe_neutral(neutral)}; refitting the take", 15000)

    def _set_neutral(self, neutral: dict | None) -> None:
        self.neutral = neutral
        self.timelines.set_neutral(None if neutral is None else neutral.get("frame"))
        self._update_take_actions()

    def _update_take_actions(self) -> None:
        idle = self.input_path is not None and not self.job_running
        self.neutral_frame_action.setEnabled(idle)
        self.neutral_auto_action.setEnabled(idle and self.neutral is not None)
        self.performer_menu.update_actions()
        self.carrier_actions.update_actions()

    def _analysis_batch(self, batch: list) -> None:
        from core.progress_stream import FrameEvent, StageEvent

        stream = self.stream
        if stream is None:
            return
        last = batch[-1]
        current_arrived = False
        for item in batch:
            stream.add(item)
            current_arrived |= isinstance(item, FrameEvent) and item.index == self.current
        if isinstance(last, FrameEvent):
            self.progress.update_stage("observing", last.position, last.total)
        elif isinstance(last, FittedWindow):
            self.progress.update_stage("fitting", last.position, last.total)
            if last.position >= last.total:
                self._load_take(while_analysing=True)  # the mesh and curves while the emotion stage runs
        elif isinstance(last, StageEvent):
            self.progress.update_stage(last.step, last.done, last.total)
        if self.view is None:
            now = time.monotonic()
            if now - self._timelines_updated > TIMELINE_REFRESH_SECONDS or isinstance(last, FittedWindow):
                self._timelines_updated = now
                self.timelines.set_confidence(stream.confidence, stream.has_face)
                if stream.expression is not None:
                    self.timelines.set_expression(stream.expression, stream.expression_names, stream.has_face)
            if current_arrived and not self.player.playing:
                self.show_frame(self.current)

    def _analysis_done(self, summary) -> None:
        self.progress.end()
        message = f"analysed {summary.frames} frames, face in {summary.frames_with_face}"
        if self.settings.method == "fit":
            message += f"; neutral: {describe_neutral(self.neutral)}; performer profile: {describe_performer(self.performer)}"
        if summary.warnings:
            message += "; " + "; ".join(summary.warnings)
        self.statusBar().showMessage(message, 15000)
        if summary.no_face:
            self.show_error(EmoCapError(f"no face found in {self.input_path.name} ({summary.frames} frames)"))
        else:
            self._load_take()
        self.job_finished.emit("analysis", True)

    def _load_take(self, while_analysing: bool = False) -> None:
        # Loads can overlap (the mesh is loaded when fitting ends, again once the emotion stage is
        # done): only the newest may be shown, or a slow older one would bring back stale curves.
        # While the analysis goes on it may rewrite what the load reads; the load at its end
        # reads the take again, so a file found changed then is no error.
        on_error = self._changed_while_analysing if while_analysing else self._job_error
        job = Job("open_take", open_take_job, self.take_dir, self.input_path,
                  on_done=lambda view: self._take_ready(view) if job is self._newest_load else view.close(),
                  on_error=on_error)
        self._newest_load = job
        self.jobs.append(job)
        job.worker.finished.connect(lambda: self.jobs.remove(job) if job in self.jobs else None)
        job.start()

    def _take_ready(self, view) -> None:
        if self.source is None or self.take_dir is None or Path(view.take.root) != Path(self.take_dir):
            view.close()
            return
        if self.view is not None:
            self.view.close()
        self.view = view
        self.committed = view.edits
        self.transport.set_timecode(view.take.manifest.timecode())  # --start-timecode over the recording's
        # One piece per event-loop turn, so that loading a take never blocks the window for long.
        steps = [self._show_topology, lambda: self.timelines.set_curves(view.curves()), self._show_edited_emotion,
                 lambda: self.still.set_curves(view.curves()) if view.frame_count == 1 else None, self._take_shown]
        self._next_step(view, steps)

    def _show_edited_emotion(self) -> None:
        """The emotion predicted for the edited curves, dashed in the reconstruction row while the
        take has edits."""
        view = self.view
        if view is not None and view.fit is not None:
            edited = not view.edits.is_identity
            self.timelines.set_reconstruction_emotion(view.reconstruction_emotion() if edited else None, view.fit.has_face)

    def _next_step(self, view, steps: list) -> None:
        if self.view is not view or not steps:
            return
        steps[0]()
        QTimer.singleShot(0, lambda: self._next_step(view, steps[1:]))

    def _show_topology(self) -> None:
        view = self.view
        if view.faces is not None:
            import torch  # loaded by the worker already

            with torch.no_grad():
                rest = view.model(view.model.zero_params(1)).vertices[0].numpy()
            self.viewport.set_topology(view.faces, rest)
            self.viewport.set_teeth(view.teeth.faces, view.teeth.shade, view.teeth.gum)
            self.video.set_edges(self.viewport.edges)
            self.edit_panel.setEnabled(True)
            self.edit_panel.set_available_emotions(view.emotions_with_direction)
            self._show_layer()
        self.refined_action.setEnabled(view.refinement is not None)
        self.refined_action.setChecked(view.show_refined)

    def _take_shown(self) -> None:
        self.shown_view = self.view
        self._update_take_actions()
        self.show_frame(self.current)
        self.take_loaded.emit(str(self.view.take.root))

    def train_actor(self, epochs: int | None = None) -> None:
        """Distil the open take into a fast encoder for its performer (emocap train-actor;
        epochs: None for its default schedule)."""
        if self.refuse_without_fit():
            return
        if self.refuse_while_busy():
            return
        job = Job("train_actor", train_actor_job, self.view.take.root, epochs,
                  on_batch=lambda lines: self.progress.stage.setText(f"training: {lines[-1]}"),
                  on_done=self._actor_trained, on_error=self._job_error)
        self._start_job(job, "training the actor encoder")

    def _actor_trained(self, report: dict) -> None:
        self.progress.end()
        self.settings.encoder_path = str(Path(self.view.take.root) / "encoder" / "encoder.pt")
        self.settings.save(self.store)
        held = report.get("held_out") or {}
        quality = f"; held-out landmarks {held['landmark_error_pct_iod']:.1f} % IOD" if "landmark_error_pct_iod" in held else ""
        self.statusBar().showMessage(f"actor encoder trained{quality}; choose it in Settings > Reconstruction for "
                                     "new clips of this performer", 15000)
        self.job_finished.emit("train_actor", True)

    def _changed_while_analysing(self, err: BaseException) -> None:
        if isinstance(err, DamagedChunkError):
            log.info("the take changed while it was read during the analysis (%s); it is read at the end", err)
            return
        self._job_error(err)

    def _job_error(self, err: BaseException) -> None:
        self.progress.end()
        if isinstance(err, CancelledError):
            self.statusBar().showMessage(str(err), 15000)
            self.job_finished.emit("cancelled", False)
            return
        self.show_error(err)
        self.job_finished.emit("error", False)

    def cancel_job(self) -> None:
        if self.job_running:
            self.job.cancel()
            self.progress.cancel.setEnabled(False)
            self.progress.stage.setText("cancelling…")

    def start_timecode_dialog(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        current = self.transport.timecode
        text, ok = QInputDialog.getText(
            self, "Start timecode", "Timecode of the first frame (HH:MM:SS:FF, HH:MM:SS;FF for drop-frame;\n"
            "empty: the recording's own):", text=str(current) if current else "")
        if ok:
            self.set_start_timecode(text)

    def set_start_timecode(self, label: str | None) -> None:
        """Store the take's start timecode (core.take.store.set_start_timecode) and show it."""
        from core.take.store import set_start_timecode

        if self.take_dir is None or not is_take_folder(self.take_dir):
            self.show_error(EmoCapError("analyse the clip first: the start timecode is kept in its take"))
            return
        try:
            timecode = set_start_timecode(self.take_dir, label)
        except EmoCapError as err:
            self.show_error(err)
            return
        self.transport.set_timecode(timecode)
        self.show_frame(self.current)

    # -- showing frames --------------------------------------------------------------------
    def seek(self, frame: int) -> None:
        if self.source is None:
            return
        frame = int(np.clip(frame, 0, self.source.info.frame_count - 1))
        self.player.pause()
        self.player.current = frame
        self.show_frame(frame)

    def show_frame(self, frame: int) -> None:
        if self.source is None:
            return
        self.current = frame
        self.player.current = frame
        try:
            image = self.source.read(frame)
        except EmoCapError as err:
            self.statusBar().showMessage(f"frame {frame}: {err}", 5000)
            return
        if self.view is not None and frame < self.view.frame_count:
            fv = self.view.frame(frame, image)
            self.video.set_frame(image, fv.landmarks, fv.projected)
            self.viewport.show_mesh(fv.vertices, fv.colours, fv.teeth)
        else:
            self.video.set_frame(image, self.stream.landmarks.get(frame) if self.stream else None)
        self.timelines.set_current(frame)
        self.transport.show_position(frame, self.source.info.frame_count, float(self.source.timestamps[frame]))
        self.frame_shown.emit(frame)
        if not self.first_frame_logged:
            self.first_frame_logged = True
            log.info("first frame shown at %.3f (wall clock)", time.time())
            QTimer.singleShot(0, self.load_engine)

    def _refined_toggled(self, on: bool) -> None:
        if self.view is not None:
            self.view.set_show_refined(on)
            self.apply_edits(self.view.edits, commit=False)

    def _overlays_changed(self) -> None:
        self.video.set_overlays(self.landmarks_action.isChecked(), self.mesh_action.isChecked())

    # -- range -----------------------------------------------------------------------------
    def set_in_point(self) -> None:
        stop = self.range[1] if self.range and self.range[1] > self.current else self.player.frame_count
        self._set_range(self.current, stop)

    def set_out_point(self) -> None:
        start = self.range[0] if self.range and self.range[0] <= self.current else 0
        self._set_range(start, self.current + 1)

    def clear_range(self) -> None:
        self._set_range(None, None)

    def _set_range(self, start, stop) -> None:
        self.range = None if start is None else (int(start), int(stop))
        self.timelines.set_range(start, stop)
        self._show_layer()

    def _range_dragged(self, start: int, stop: int) -> None:
        self.range = (start, stop)
        self._show_layer()

    # -- edits -----------------------------------------------------------------------------
    def _scope_range(self) -> tuple[int | None, int | None] | None:
        """The range the sliders act on; None when the range scope has no range set."""
        if self.edit_panel.current_scope() == "clip":
            return (None, None)
        return self.range

    def _show_layer(self) -> None:
        scope = self._scope_range()
        if self.view is None or scope is None:
            return
        self.edit_panel.set_values(self.view.edits.layer_for(*scope).slider_values())

    def _edits_with(self, values: dict):
        """The current edits with the current scope's layer set to the slider values."""
        from core.edit import EditLayer

        scope = self._scope_range()
        if scope is None:
            self.statusBar().showMessage("set an in/out range first (I and O keys, or drag on the timeline)", 5000)
            return None
        return self.view.edits.with_layer(EditLayer.from_slider_values(values, *scope, locked=self.curve_editor.locked()))

    def _slider_edited(self, values: dict, final: bool) -> None:
        if self.view is None:
            return
        try:
            edits = self._edits_with(values)
        except EmoCapError as err:
            self.statusBar().showMessage(str(err), 5000)
            return
        if edits is None:
            return
        if final:
            if edits != self.committed:
                self.undo_stack.push(EditCommand(self, self.committed, edits, "slider edit"))
        else:
            self._pending_preview = edits
            self._preview_timer.start()

    def _run_preview(self) -> None:
        if self._pending_preview is not None:
            self.apply_edits(self._pending_preview, commit=False)
            self._pending_preview = None

    def reset_edits(self) -> None:
        from core.edit import EditLayer

        scope = self._scope_range()
        if self.view is None or scope is None:
            return
        edits = self.view.edits.with_layer(EditLayer(start=scope[0], stop=scope[1]))
        if edits != self.committed:
            self.undo_stack.push(EditCommand(self, self.committed, edits, "reset edits"))

    def apply_edits(self, edits, commit: bool) -> None:
        """Show the take with ``edits``; a committed change is also saved (debounced)."""
        if self.view is None:
            return
        try:
            self.view.set_edits(edits)
        except EmoCapError as err:
            self.show_error(err)
            return
        if commit:
            self.committed = edits
            self._show_layer()
            self._autosave_timer.start()
        self._show_edited_emotion()
        self.timelines.set_expression(self.view.fit.expression, self.view.curves().expression_names, self.view.fit.has_face)
        if self.still.isVisible():
            self.still.set_expression(self.view.fit.expression, self.view.curves().expression_names)
        self.show_frame(self.current)

    def save_edits(self) -> None:
        if self.view is None or self.committed is None:
            return
        from core.edit import save_edits

        try:
            save_edits(self.view.take.root, self.committed)
        except EmoCapError as err:
            self.show_error(err)

    # -- takes and export ------------------------------------------------------------------
    def save_take_as_dialog(self) -> None:
        if self.take_dir is None or not is_take_folder(self.take_dir):
            self.statusBar().showMessage("nothing to save yet: open and analyse a clip", 5000)
            return
        path = QFileDialog.getSaveFileName(self, "Save take as", str(self.settings.takes_root() / self.take_dir.name))[0]
        if path:
            self.save_take_as(Path(path))

    def save_take_as(self, target: Path) -> None:
        """Copy the take (with its edits) to ``target`` and continue working there."""
        self.save_edits()
        if target.exists():
            self.show_error(EmoCapError(f"{target} already exists; choose a new name"))
            return
        try:
            copy_folder_atomic(self.take_dir, target)
        except OSError as err:
            self.show_error(EmoCapError(f"cannot save the take to {target}: {err.strerror or err}"))
            return
        self.take_dir = target
        self.store.setValue("session/take", str(target))
        self._load_take()
        self.statusBar().showMessage(f"take saved as {target}", 8000)

    def export_dialog(self) -> None:
        from app.export_dialog import ExportDialog
        from core.export import formats

        if self.view is None or self.view.raw_fit is None:
            self.statusBar().showMessage("nothing to export yet: analyse a clip first", 5000)
            return
        dialog = ExportDialog(formats(), Path.home() / "EmoCap" / "exports" / self.take_dir.name, self.range, self,
                              flame_take=getattr(self.view.model, "name", "open") != "open")
        if dialog.exec():
            self.export(dialog.choice())

    def export(self, choice) -> None:
        from core.edit import Edits

        if self.refuse_while_busy():
            return
        self.save_edits()
        edits = self.committed if choice.apply_edits else Edits()
        job = Job("export", export_job, self.take_dir, choice.format, choice.out, choice.frame_range, edits,
                  choice.retarget, choice.reduce, choice.curves,
                  on_done=lambda result: self._export_done(choice, result),
                  on_error=self._job_error)
        self._start_job(job, f"exporting {choice.format}")

    def _export_done(self, choice, result) -> None:
        self.progress.end()
        note = f"; {result.gap_frames} frames without a face: {result.gap_policy}" if result.gap_frames else ""
        note += "".join(f"; {line}" for line in result.notes)
        self.statusBar().showMessage(f"exported {result.frames} frames as {choice.format} to {choice.out}{note}", 15000)
        self.job_finished.emit("export", True)

    def batch_dialog(self) -> None:
        """File > Batch…: the (non-modal) batch dialog; a double-clicked finished take opens here."""
        from app.batch_dialog import BatchDialog

        if self.batch is None:
            self.batch = BatchDialog(self.settings.takes_root() / "batch", self)
            self.batch.take_chosen.connect(self.open_take)
        self.batch.show()
        self.batch.raise_()

    def settings_dialog(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            self.settings.save(self.store)

    # -- errors, recent files, session -----------------------------------------------------
    def show_error(self, err: BaseException) -> None:
        """A dialog with the one-line reason; the traceback under 'Show Details'."""
        log.error("%s", err)
        box = QMessageBox(QMessageBox.Critical, "EmoCap", str(err) or type(err).__name__, QMessageBox.Ok, self)
        box.setObjectName("error_dialog")
        box.setDetailedText("".join(traceback.format_exception(err)))
        box.open()
        self.last_error = box

    def _remember(self, path: Path) -> None:
        recent = [str(path.resolve())] + [p for p in self._recent() if p != str(path.resolve())]
        self.store.setValue("recent", recent[:MAX_RECENT])
        self._fill_recent()

    def _recent(self) -> list[str]:
        value = self.store.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_input(Path(p)))
        self.recent_menu.setEnabled(bool(self._recent()))

    def restore_session(self) -> bool:
        """After an unclean exit, reopen the take that was open; True when one was reopened."""
        if self.previous_exit_clean:
            return False
        take = self.store.value("session/take", "")
        if take and is_take_folder(Path(take)):
            self.open_take(Path(take))
            self.statusBar().showMessage(f"reopened {take} after an unexpected exit", 10000)
            return True
        return False

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt)
        urls = event.mimeData().urls()
        if urls:
            path = Path(urls[0].toLocalFile())
            self.open_take(path) if is_take_folder(path) else self.open_input(path)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        self.player.pause()
        self.save_edits()
        for job in list(self.jobs):
            job.cancel()
        if self.batch is not None:
            self.batch.cancel()
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(10000)
        for item in (self.view, self.source):
            if item is not None:
                item.close()
        self.view = self.source = None
        self.viewport.close_canvas()
        self.store.setValue("session/clean_exit", True)
        self.store.sync()
        super().closeEvent(event)
