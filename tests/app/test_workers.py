"""Background jobs (app/workers.py): a job's state and its result handlers stay in step."""

import os
import subprocess
import sys
import threading
import time

from PySide6.QtCore import QCoreApplication, QThreadPool

import app.workers
from app.workers import Job
from tests.conftest import fixture_path


def _returns(value, *, cancel: threading.Event):
    yield "working"
    return value


def _fails(*, cancel: threading.Event):
    yield "working"
    raise ValueError("broken input")


def test_a_job_is_never_seen_stopped_before_its_result_is_handled(qtbot):
    """Polling ``running`` (as the window and tests do) never sees a stopped job whose result
    handler has not run yet: a signal emitted in the worker thread posts one event per slot, and
    the window's thread can handle the first before the worker posts the next."""
    jobs = []  # kept until their workers end, as the window keeps its jobs
    for round_ in range(300):
        done = []
        job = Job("returns", _returns, round_, on_done=done.append)
        jobs.append(job)
        job.start()
        end = time.monotonic() + 5
        while job.running and time.monotonic() < end:
            QCoreApplication.processEvents()
        assert not job.running and done == [round_], f"round {round_}: stopped, result not handled yet"
    QThreadPool.globalInstance().waitForDone(5000)
    QCoreApplication.processEvents()


def test_a_failed_job_is_stopped_when_its_error_is_handled(qtbot):
    errors = []
    job = Job("fails", _fails, on_error=lambda err: errors.append((str(err), job.running)))
    job.start()
    qtbot.waitUntil(lambda: not job.running, timeout=5000)
    assert errors == [("broken input", False)]
    QThreadPool.globalInstance().waitForDone(5000)


def test_children_run_at_a_lower_priority_than_the_app(monkeypatch, tmp_path):
    """The child lowers its own priority (--nice): the app starts it without a preexec_fn, which
    would fork a process whose threads may hold locks."""
    monkeypatch.setattr(app.workers, "CHILD_NICENESS", 10)  # the shipped value (conftest sets 0)
    command = app.workers.child_command(["analyze", str(fixture_path("no_face.mp4")), "--out", str(tmp_path / "take"),
                                         "--no-emotion"])
    assert command[:2] == [sys.executable, "-m"]
    expected = min(os.getpriority(os.PRIO_PROCESS, 0) + 10, 19)
    child = subprocess.Popen(command, cwd=app.workers.PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = set()
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline and expected not in seen:
            try:
                seen.add(os.getpriority(os.PRIO_PROCESS, child.pid))
            except ProcessLookupError:
                break
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    assert expected in seen, seen
