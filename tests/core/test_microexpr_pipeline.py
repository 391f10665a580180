"""The refiner in the pipeline and the CLI, on a short high-frame-rate clip with a known lip-corner raise."""

import json
import shutil
import threading

import numpy as np
import pytest
import torch

from core.errors import CancelledError
from core.facemodel.loading import ModelChoice, load_face_model
from core.fit.camera import project
from core.microexpr.config import RefineConfig
from core.microexpr.results import reconstruct
from core.microexpr.stage import REFINE_STEP
from core.observe import FaceObserver
from core.pipeline import Pipeline, PipelineConfig
from core.results import StageProgress
from core.take import Take
from core.video import open_source
from tests.conftest import fixture_path, run_cli
from tests.microexpr_clips import Bump, MicroExpression, displacement_field, resample, warp_forward, write_video

FPS = 120
EVENT = MicroExpression("lip corner raised", (Bump(291, (0.8, -3.0), 0.1),), 0.25, 0.15)
CORNER = 291  # the performer's left lip corner (MediaPipe index = open-model vertex)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """0.6 s at 120 fps of a still face whose left lip corner rises 3 px for 150 ms."""
    with open_source(fixture_path("single_face.mp4")) as source:
        frame = source.read(10)
    with FaceObserver() as observer:
        landmarks = observer.observe(0, 0.0, frame).landmarks
    frames, _ = resample([frame], 30.0, FPS, 0.6)
    out = []
    for i, image in enumerate(frames):
        amplitude = float(EVENT.amplitude(i / FPS))
        out.append(warp_forward(image, displacement_field(image.shape[:2], landmarks, EVENT, amplitude)) if amplitude else image)
    return write_video(tmp_path_factory.mktemp("micro") / "lip.mp4", out, FPS)


@pytest.fixture(scope="module")
def fitted(clip, tmp_path_factory):
    """The clip observed and fitted once; tests copy the take."""
    take_dir = tmp_path_factory.mktemp("fitted") / "take"
    Pipeline(PipelineConfig(device="cpu")).run(clip, take_dir)
    return take_dir


def copy_take(fitted, tmp_path, name="take"):
    target = tmp_path / name
    shutil.copytree(fitted, target)
    return target


def test_cli_refine_recovers_the_lip_corner_and_reports_the_motion_energy(clip, fitted, tmp_path):
    take_dir = copy_take(fitted, tmp_path)
    result = run_cli("analyze", str(clip), "--out", str(take_dir), "--refine", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    micro = summary["micro_energy"]
    onset, offset = int(EVENT.onset_s * FPS), int((EVENT.onset_s + EVENT.duration_s) * FPS)
    assert onset <= micro["peak_frame"] <= offset
    assert micro["onsets"][0] <= onset + 2  # a neutral frame before the movement
    assert micro["peak_px"] > 0.8  # of the 3 px raise, what the fit's landmarks miss (the calibrated smile takes more)

    take = Take.open(take_dir)
    fit, refinement = take.read_fit(), take.read_refinement()
    assert refinement.refined.all() and refinement.expression.shape == fit.expression.shape
    assert refinement.vertex_offsets(0).shape == (478, 3)
    assert np.isfinite(refinement.motion_energy).all()
    quiet = refinement.motion_energy[: onset - 2]
    # (the calibrated open model follows MediaPipe's tracking drift on this still clip a little more:
    # 0.45 px in the quiet frames against 0.89 at the peak; 0.39 and 0.32 px with earlier models)
    assert refinement.motion_energy[micro["peak_frame"]] > 1.8 * max(quiet.max(), 0.05)

    # the refined mesh raises the lip corner in the image, nearer the true 3 px than the plain fit
    # (which, with the calibrated smile, already takes about half of it)
    model = load_face_model(ModelChoice())
    apex = int((EVENT.onset_s + EVENT.duration_s / 2) * FPS)
    rows = np.array([micro["onsets"][0], apex])

    def corner_rise(params, ref) -> float:
        vertices = reconstruct(model, params, ref, rows)
        camera = torch.as_tensor((params if ref is None else ref).camera[rows])
        image = project(torch.as_tensor(vertices), camera).numpy()
        return float(image[0, CORNER, 1] - image[1, CORNER, 1])  # y grows downward

    refined, plain = corner_rise(fit, refinement), corner_rise(fit, None)
    assert refined > 1.5 and refined > plain + 0.5, (refined, plain)

    # a second run keeps the complete refinement
    stored = (take_dir / "microexpr" / "refined.npz").stat().st_mtime_ns
    again = run_cli("analyze", str(clip), "--out", str(take_dir), "--refine", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["micro_energy"] == micro
    assert (take_dir / "microexpr" / "refined.npz").stat().st_mtime_ns == stored
    assert json.loads(run_cli("info", str(take_dir), "--json").stdout)["micro_energy"] == micro


@pytest.fixture
def two_torch_threads():
    """torch on two threads for the test (the refiner's last window uses them), as before after it."""
    from core.fit.fitter import torch_threads

    with torch_threads(2):
        yield


def test_an_interrupted_refinement_resumes_window_by_window_with_the_same_result(clip, fitted, tmp_path, two_torch_threads):
    # the last window trains on two threads, the others on one: the same in both runs
    config = PipelineConfig(device="cpu", refine=RefineConfig(window_s=0.25, overlap_s=0.05, iterations=15))
    whole = copy_take(fitted, tmp_path, "whole")
    Pipeline(config).run(clip, whole)
    reference = Take.open(whole).read_refinement()
    assert len(reference.windows) >= 2

    cut = copy_take(fitted, tmp_path, "cut")
    cancel = threading.Event()

    def stop_after_first_window(result) -> None:
        if isinstance(result, StageProgress) and result.step == REFINE_STEP and result.done == 15:
            cancel.set()

    with pytest.raises(CancelledError):
        Pipeline(config).run(clip, cut, on_frame=stop_after_first_window, cancel=cancel)
    assert Take.open(cut).manifest.microexpr.status == "cancelled"  # core/stages.py: a cancel marks the stage
    assert len(list((cut / "microexpr").glob("window_*.npz"))) == 1
    Pipeline(config).run(clip, cut)
    resumed = Take.open(cut).read_refinement()
    for name in ("expression", "rotation", "camera", "motion_energy", "windows"):
        assert np.array_equal(getattr(resumed, name), getattr(reference, name)), name
    assert np.allclose(resumed.vertex_offsets(np.arange(len(resumed))), reference.vertex_offsets(np.arange(len(reference))),
                       atol=1e-7)
    assert not list((cut / "microexpr").glob("window_*.npz"))  # assembled and tidied up


def test_changed_refine_settings_redo_the_refinement(clip, fitted, tmp_path):
    take_dir = copy_take(fitted, tmp_path)
    Pipeline(PipelineConfig(device="cpu", refine=RefineConfig(iterations=5))).run(clip, take_dir)
    first = Take.open(take_dir).manifest.microexpr
    Pipeline(PipelineConfig(device="cpu", refine=RefineConfig(iterations=6))).run(clip, take_dir)
    second = Take.open(take_dir).manifest.microexpr
    assert first.settings["iterations"] == 5 and second.settings["iterations"] == 6
    assert second.status == "complete"


def test_only_the_last_window_trains_on_all_of_torchs_threads(clip, fitted, monkeypatch, two_torch_threads):
    """The flow of the next window runs beside a window's training (torch on one thread); nothing
    runs beside the last one, which gets the caller's threads."""
    from core.microexpr import stage

    threads_per_window = []
    train = stage.train_window

    def recording(*args, **kwargs):
        seen = set()
        threads_per_window.append(seen)
        steps = train(*args, **kwargs)
        while True:
            seen.add(torch.get_num_threads())
            try:
                yield next(steps)
            except StopIteration as done:
                return done.value

    monkeypatch.setattr(stage, "train_window", recording)
    take = Take.open(fitted)
    model = load_face_model(ModelChoice())
    with open_source(clip) as source:
        for _ in stage.refine_clip(source, take.load_observations(), take.read_fit(), model,
                                   RefineConfig(window_s=0.25, overlap_s=0.05, iterations=3)):
            pass
    assert torch.get_num_threads() == 2
    assert len(threads_per_window) >= 3
    assert all(seen == {1} for seen in threads_per_window[:-1]) and threads_per_window[-1] == {2}
