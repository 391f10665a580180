"""Playback: a clock that says which frame is due (frames are dropped rather than slowing down)
and the transport bar (start, step back, play/pause, step forward, end, frame, timecode and time)."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QStyle, QToolBar, QWidget

from core.timecode import Timecode

MAX_SPEED = 8.0


class PlaybackClock:
    """Frame due at wall time ``now`` when playing from ``start_frame`` at ``fps`` x ``speed``
    (negative speed plays backwards)."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.speed = 1.0
        self.start_frame = 0
        self.start_time = 0.0

    def restart(self, frame: int, now: float, speed: float | None = None) -> None:
        self.start_frame = frame
        self.start_time = now
        if speed is not None:
            self.speed = speed

    def due(self, now: float) -> int:
        return self.start_frame + int((now - self.start_time) * self.fps * self.speed)


class Player(QObject):
    """Drives ``frame_due(frame)`` while playing; stops at either end. J / K / L semantics:
    :meth:`shuttle` (+1 forward faster, -1 backward faster), :meth:`pause`."""

    frame_due = Signal(int)
    state_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.clock = PlaybackClock(30.0)
        self.frame_count = 0
        self.current = 0
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.timeout.connect(self._tick)

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def configure(self, fps: float, frame_count: int) -> None:
        self.pause()
        self.clock.fps = fps
        self.frame_count = frame_count

    def play(self, speed: float = 1.0) -> None:
        if self.frame_count < 2:
            return
        if speed > 0 and self.current >= self.frame_count - 1:
            self.current = 0
            self.frame_due.emit(0)
        self.clock.restart(self.current, time.monotonic(), speed)
        self.timer.start(max(5, int(1000 / (self.clock.fps * abs(speed)) / 2)))
        self.state_changed.emit(True)

    def pause(self) -> None:
        if self.timer.isActive():
            self.timer.stop()
            self.state_changed.emit(False)

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def shuttle(self, direction: int) -> None:
        speed = self.clock.speed if self.playing else 0.0
        if speed * direction <= 0:
            self.play(float(direction))
        else:
            self.play(max(-MAX_SPEED, min(MAX_SPEED, speed * 2)))

    def _tick(self) -> None:
        frame = self.clock.due(time.monotonic())
        last = self.frame_count - 1
        forward = self.clock.speed > 0
        if (forward and frame >= last) or (not forward and frame <= 0):
            frame = max(0, min(last, frame))
            self.pause()
        if frame != self.current:
            self.current = frame
            self.frame_due.emit(frame)


class TransportBar(QToolBar):
    """Buttons for the player and a frame / time read-out."""

    def __init__(self, parent: QWidget, player: Player, seek) -> None:
        super().__init__("Transport", parent)
        self.setObjectName("transport")
        style = self.style()
        self.player = player
        self.actions_by_name = {}
        for name, icon, tip, slot in (
            ("start", QStyle.SP_MediaSkipBackward, "Go to start (Home)", lambda: seek(0)),
            ("back", QStyle.SP_MediaSeekBackward, "Previous frame (Left)", lambda: seek(player.current - 1)),
            ("play", QStyle.SP_MediaPlay, "Play / pause (Space)", player.toggle),
            ("forward", QStyle.SP_MediaSeekForward, "Next frame (Right)", lambda: seek(player.current + 1)),
            ("end", QStyle.SP_MediaSkipForward, "Go to end (End)", lambda: seek(player.frame_count - 1)),
        ):
            action = self.addAction(style.standardIcon(icon), tip.split(" (")[0])
            action.setToolTip(tip)
            action.triggered.connect(slot)
            self.actions_by_name[name] = action
        self.readout = QLabel("  no clip")
        self.readout.setObjectName("frame_readout")
        self.readout.setMinimumWidth(260)
        self.addWidget(self.readout)
        self.timecode_label = QLabel("")
        self.timecode_label.setObjectName("timecode_readout")
        self.timecode_label.setToolTip("Timecode of the frame shown (HH:MM:SS:FF; HH:MM:SS;FF is drop-frame)")
        self.timecode_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.addWidget(self.timecode_label)
        self.timecode: Timecode | None = None
        player.state_changed.connect(self._state)

    def _state(self, playing: bool) -> None:
        icon = QStyle.SP_MediaPause if playing else QStyle.SP_MediaPlay
        self.actions_by_name["play"].setIcon(self.style().standardIcon(icon))

    def set_timecode(self, timecode: Timecode | None) -> None:
        """The timecode of the clip's frame 0 (core.timecode.Timecode; None: the clip has none, the
        timecode read-out is hidden). The read-out follows the next :meth:`show_position`."""
        self.timecode = timecode
        self.timecode_label.setText("")
        self.timecode_label.setVisible(timecode is not None)
        if timecode is not None:
            kind = "drop-frame" if timecode.drop_frame else "non-drop-frame"
            self.timecode_label.setToolTip(f"Timecode of the frame shown ({float(timecode.rate):.6g} fps, {kind}); "
                                           f"frame 1 is {timecode}")

    def show_position(self, frame: int, frames: int, seconds: float) -> None:
        minutes, secs = divmod(seconds, 60)
        self.readout.setText(f"  frame {frame + 1} / {frames}    {int(minutes):02d}:{secs:06.3f}")
        if self.timecode is not None:
            self.timecode_label.setText(f"TC {self.timecode.at(frame)}  ")
