"""Emotion by default in the app: FER (MIT) without asking; EmoNet only after the user accepted
its non-commercial licence in a one-time question, remembered in the settings; the emotion row
names the recognisers that ran and their licences."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

import app.main_window as main_window
import app.settings as app_settings
from app.settings import AppSettings
from tests.conftest import fixture_path

REAL_JOB = main_window.Job
STARTED: list[list[str]] = []


def fake_job(name, function, *args, **callbacks):
    """Stands in for the analysis job (records its options instead of analysing); other jobs run."""
    if name != "analysis":
        return REAL_JOB(name, function, *args, **callbacks)
    STARTED.append(list(args[2]))
    return None


def prepared(window, monkeypatch, answer: bool) -> list[bool]:
    """The window with EmoNet installed, its licence unanswered and the question answered
    ``answer``; returns the list of times it was asked."""
    asked = []
    monkeypatch.setattr(app_settings, "_recogniser_infos", lambda: [
        {"name": "fer", "licence": "MIT", "installed": True},
        {"name": "emonet", "licence": "CC BY-NC-ND 4.0 (non-commercial, no derivatives)", "installed": True}])
    monkeypatch.setattr(main_window, "ask_emonet_licence", lambda parent: asked.append(answer) or answer)
    window.settings.emonet_licence = ""
    window.open_input(fixture_path("single_face.jpg"))
    monkeypatch.setattr(main_window, "Job", fake_job)
    monkeypatch.setattr(window, "_start_job", lambda job, text: None)
    STARTED.clear()
    return asked


def test_emonet_is_asked_once_and_the_answer_is_remembered(window, store, monkeypatch):
    asked = prepared(window, monkeypatch, answer=True)
    window.start_analysis()
    window.start_analysis()
    assert asked == [True]  # one question, not one per analysis
    assert all("--accept-emonet-licence" in options and "--no-emotion" not in options for options in STARTED)
    reloaded = AppSettings.load(store)
    assert reloaded.emonet_licence == "accepted" and reloaded.recognisers == ["fer", "emonet"]


def test_declining_emonet_keeps_fer(window, store, monkeypatch):
    asked = prepared(window, monkeypatch, answer=False)
    window.start_analysis()
    assert asked == [False]
    options = STARTED[0]
    assert "--accept-emonet-licence" not in options and "--no-emotion" not in options  # FER, the default
    assert AppSettings.load(store).emonet_licence == "declined"


def test_emotion_options_follow_the_settings():
    assert AppSettings().emotion_options() == []  # the default: emotion on, FER
    assert AppSettings(emotion=False).emotion_options() == ["--no-emotion"]
    unanswered = AppSettings(recognisers=["fer", "emonet"])
    assert unanswered.emotion_options() == []  # EmoNet chosen but its licence not accepted: FER only
    accepted = AppSettings(recognisers=["emonet"], emonet_licence="accepted")
    assert accepted.emotion_options() == ["--recognisers", "emonet", "--accept-emonet-licence"]


def test_the_emotion_row_names_the_recognisers_and_their_licences(loaded):
    title = loaded.timelines.plots["emotion"].titleLabel.text
    assert "fer (MIT)" in title and "emonet (CC BY-NC-ND 4.0 (non-commercial" in title


def test_the_question_names_the_licence_and_takes_the_answer(window, qtbot):
    seen = []

    def answer_yes():
        box = QApplication.activeModalWidget()
        seen.append(box.text())
        box.button(QMessageBox.Yes).click()

    QTimer.singleShot(200, answer_yes)
    assert app_settings.ask_emonet_licence(window) is True
    assert "non-commercial" in seen[0] and "CC BY-NC-ND 4.0" in seen[0] and "FER model (MIT)" in seen[0]
