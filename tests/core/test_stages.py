"""The stage contract (core/stages.py) that every stage of an analysis follows: a current stage
only replays, a stale one starts (reset when its settings changed) and resumes, a cancel marks a
running record cancelled; and the stages' settings as the pipeline builds them."""

from __future__ import annotations

import threading

import pytest

from core.errors import CancelledError
from core.stages import RunContext, Stage, drain, json_ready
from core.take.records import CANCELLED, COMPLETE, RUNNING, StageRecord


class FakeTake:
    """What the contract touches of a take: its manifest is saved."""

    def __init__(self) -> None:
        self.saves = 0

    def save_manifest(self) -> None:
        self.saves += 1


class CountingStage(Stage):
    """Three items of work; stores each in ``done`` and its record in memory."""

    name = "counting"

    def __init__(self, settings: dict, record: StageRecord | None = None, done: list | None = None) -> None:
        self.wanted, self.stored_record, self.done = settings, record, list(done or [])
        self.calls: list[str] = []

    def settings(self, ctx):
        return self.wanted

    def record(self, take):
        return self.stored_record

    def replay(self, ctx):
        self.calls.append("replay")
        yield from (("stored", item) for item in self.done)

    def start(self, ctx, settings):
        self.calls.append("start")
        if self.stored_record is None or self.stored_record.settings != settings:
            self.done = []
        self.stored_record = StageRecord(settings, RUNNING)

    def resume(self, ctx, settings):
        self.calls.append("resume")
        for item in range(3):
            if item in self.done:
                yield "stored", item
                continue
            if ctx.cancel is not None and ctx.cancel.is_set():
                raise CancelledError("cancelled")
            self.done.append(item)
            yield "new", item
        self.stored_record.status = COMPLETE


def context(cancel: threading.Event | None = None) -> RunContext:
    return RunContext(FakeTake(), source=None, device="cpu", model_choice=None, cancel=cancel)


def test_a_current_stage_only_replays_what_it_stores():
    stage = CountingStage({"a": 1}, StageRecord({"a": 1}, COMPLETE), done=[0, 1, 2])
    progress = list(stage.run(context()))
    assert stage.calls == ["replay"] and progress == [("stored", 0), ("stored", 1), ("stored", 2)]


def test_an_unfinished_stage_resumes_after_what_it_stored():
    stage = CountingStage({"a": 1}, StageRecord({"a": 1}, CANCELLED), done=[0])
    progress = list(stage.run(context()))
    assert stage.calls == ["start", "resume"]
    assert progress == [("stored", 0), ("new", 1), ("new", 2)] and stage.stored_record.status == COMPLETE


def test_other_settings_start_the_stage_over():
    stage = CountingStage({"a": 2}, StageRecord({"a": 1}, COMPLETE), done=[0, 1, 2])
    assert [kind for kind, _ in stage.run(context())] == ["new", "new", "new"]
    assert stage.stored_record.settings == {"a": 2} and stage.stored_record.is_current({"a": 2})


def test_a_cancel_marks_the_running_record_cancelled_and_a_rerun_resumes():
    cancel = threading.Event()
    stage = CountingStage({"a": 1})
    ctx = context(cancel)
    stream = stage.run(ctx)
    assert next(stream) == ("new", 0)
    cancel.set()
    with pytest.raises(CancelledError):
        next(stream)
    assert stage.stored_record.status == CANCELLED and ctx.take.saves == 1
    cancel.clear()
    assert [kind for kind, _ in stage.run(ctx)] == ["stored", "new", "new"]


def test_drain_returns_what_the_generator_returns():
    def work():
        yield 1
        return "result"

    assert drain(work()) == "result"


def test_settings_compare_equal_after_a_json_round_trip():
    assert json_ready({"recognisers": ("fer", "emonet"), "nested": {"pair": (1, 2)}}) == {
        "recognisers": ["fer", "emonet"], "nested": {"pair": [1, 2]}}
