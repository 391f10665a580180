"""The pipeline on real footage: results, take storage, cancel and resume, damaged input."""

import json
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from core.errors import CancelledError, TakeError
from core.pipeline import Pipeline, PipelineConfig
from core.results import FrameResult
from core.take import Take
from core.take_summary import summarize
from tests.conftest import ROOT, fixture_path


def assert_same_observations(a: Take, b: Take) -> None:
    x, y = a.load_observations(), b.load_observations()
    assert len(x) == len(y)
    for name in ("index", "has_face", "landmarks", "confidence", "head_rotation", "crop_transform", "faces_detected",
                 "blendshapes"):
        assert np.array_equal(getattr(x, name), getattr(y, name), equal_nan=True), name


def test_talking_head_clip_is_analysed_completely(wolfgang_take):
    summary, take_dir = wolfgang_take
    assert summary.status == "complete"
    assert summary.frames == 472
    assert summary.frames_with_face >= 0.99 * 472
    assert (summary.width, summary.height) == (640, 360)
    assert summary.fps == pytest.approx(23.976, abs=1e-3)
    assert summary.seconds == pytest.approx(472 / 23.976, abs=0.01)
    assert summary.device == "cpu"
    obs = Take.open(take_dir).load_observations()
    assert np.array_equal(obs.index, np.arange(472))
    assert np.all(np.diff(obs.timestamp) > 0)
    assert obs.landmarks.shape == (472, 478, 3)
    # stored compactly: no images in the take
    size = sum(p.stat().st_size for p in take_dir.rglob("*") if p.is_file())
    assert size < 472 * 478 * 3 * 4 * 1.2


def test_results_stream_in_order_with_progress(wolfgang, tmp_path):
    stream = Pipeline(PipelineConfig(device="cpu")).analyze(wolfgang, tmp_path / "t")
    first = [next(stream) for _ in range(3)]
    stream.close()
    assert [r.index for r in first] == [0, 1, 2]
    assert [r.position for r in first] == [1, 2, 3]
    assert all(r.total == 472 and not r.from_take for r in first)


def test_cancel_keeps_whole_chunks_and_resume_equals_an_uninterrupted_run(wolfgang, wolfgang_take, tmp_path):
    _, full_dir = wolfgang_take
    pipeline = Pipeline(PipelineConfig(device="cpu"))
    cancel = threading.Event()
    seen = []

    def on_frame(result):
        seen.append(result.index)
        if result.index == 300:
            cancel.set()

    with pytest.raises(CancelledError, match="resumes"):
        pipeline.run(wolfgang, tmp_path / "t", on_frame=on_frame, cancel=cancel)
    take = Take.open(tmp_path / "t")
    assert take.manifest.status == "cancelled"
    assert take.manifest.frames_done == 256  # two whole chunks of 128; the partial one is redone
    results = []
    summary = pipeline.run(wolfgang, tmp_path / "t", on_frame=results.append)
    resumed = [r for r in results if isinstance(r, FrameResult)]
    assert summary.status == "complete" and summary.frames == 472
    assert sum(r.from_take for r in resumed) == 256
    assert [r.index for r in resumed] == list(range(472))
    assert_same_observations(Take.open(tmp_path / "t"), Take.open(full_dir))


def test_killed_run_resumes_to_the_same_result(wolfgang, wolfgang_take, tmp_path):
    _, full_dir = wolfgang_take
    take_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "core.cli", "analyze", str(wolfgang), "--out", str(take_dir), "--device", "cpu"]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list((take_dir / "observations").glob("*.npz"))) < 2:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert Take.open(take_dir).manifest.status == "running"
    done = subprocess.run(args + ["--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["frames"] == 472
    assert_same_observations(Take.open(take_dir), Take.open(full_dir))


def test_a_completed_take_is_not_recomputed(wolfgang, wolfgang_take):
    summary, take_dir = wolfgang_take
    results = []
    again = Pipeline(PipelineConfig(device="cpu")).run(wolfgang, take_dir, on_frame=results.append)
    assert len(results) == 472 + 2  # stored frames, then the two stored fit windows
    assert again == summarize(Take.open(take_dir)) and again.frames == summary.frames
    assert all(r.from_take for r in results)


def test_a_take_of_another_recording_is_not_mixed_in(wolfgang_take):
    _, take_dir = wolfgang_take
    with pytest.raises(TakeError, match="another recording"):
        Pipeline(PipelineConfig(device="cpu")).run(fixture_path("single_face.mp4"), take_dir)


def test_truncated_video_keeps_the_readable_frames(wolfgang, tmp_path):
    cut = tmp_path / "cut.mp4"
    data = wolfgang.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.5)])
    summary = Pipeline(PipelineConfig(device="cpu")).run(cut, tmp_path / "t")
    assert summary.status == "complete"
    assert 100 < summary.frames < 472
    assert summary.truncated_at == summary.frames
    assert summary.frames_with_face >= 0.99 * summary.frames
    assert any("truncated" in w or "decoding stopped" in w for w in summary.warnings)


def test_face_leaving_the_frame_is_flagged_in_the_summary(tmp_path):
    summary = Pipeline(PipelineConfig(device="cpu")).run(fixture_path("face_noface.mov"), tmp_path / "t")
    assert 0 < summary.frames_with_face < summary.frames
    assert any("no face in" in w for w in summary.warnings)
    obs = Take.open(tmp_path / "t").load_observations()
    assert np.isnan(obs.landmarks[~obs.has_face]).all()
    assert not np.isnan(obs.landmarks[obs.has_face]).any()
    assert np.isnan(obs.blendshapes[~obs.has_face]).all()  # MediaPipe's network's scores: none without a face
    assert not np.isnan(obs.blendshapes[obs.has_face][:, :-1]).any()  # all but tongueOut, which it lacks


def test_image_folder_is_a_clip(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        shutil.copy(fixture_path("single_face.jpg"), frames / f"f{i}.jpg")
    summary = Pipeline(PipelineConfig(device="cpu", image_fps=24.0)).run(frames, tmp_path / "t")
    assert summary.frames == 3 and summary.frames_with_face == 3 and summary.fps == 24.0


def test_each_frame_is_described_on_a_thread_while_the_next_is_tracked_with_the_same_observations(tmp_path, monkeypatch):
    from core.observe import FaceObserver
    from core.take.observations import track_state_from_arrays, track_state_to_arrays
    from core.video import open_source

    threads = set()
    describe = FaceObserver.describe

    def recording(self, tracked, image):
        threads.add(threading.current_thread().name)
        return describe(self, tracked, image)

    monkeypatch.setattr(FaceObserver, "describe", recording)
    chunk = 32
    Pipeline(PipelineConfig(device="cpu", model=None, emotion=None, chunk_size=chunk)).run(
        fixture_path("single_face.mp4"), tmp_path / "take")
    stored = Take.open(tmp_path / "take").load_observations()
    assert threads and all(name.startswith("face-description") for name in threads)

    # the same frames observed one after the other, tracking restarted at the same chunk boundaries
    monkeypatch.undo()
    with open_source(fixture_path("single_face.mp4")) as source, FaceObserver(crop_images=False) as observer:
        plain = []
        for index, image in source.iter_frames():
            if index % chunk == 0:
                observer.reset(track_state_from_arrays(track_state_to_arrays(observer.state)))
            plain.append(observer.observe(index, float(source.timestamps[index]), image))
    assert len(plain) == len(stored) and sum(o.has_face for o in plain) > 0
    assert np.array_equal(stored.has_face, [o.has_face for o in plain])
    for row, observation in ((row, o) for row, o in enumerate(plain) if o.has_face):
        assert np.array_equal(stored.landmarks[row], observation.landmarks)
        assert np.array_equal(stored.blendshapes[row], observation.blendshapes, equal_nan=True)
        assert np.array_equal(stored.crop_transform[row], observation.crop_transform.astype(stored.crop_transform.dtype))
