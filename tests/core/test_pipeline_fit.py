"""Fitting inside the pipeline and the CLI: both models, takes, bad FLAME input."""

import json
import pickle
import threading

import numpy as np
import pytest

from core.errors import CancelledError
from core.facemodel.loading import ModelChoice
from core.facemodel.open_model import ARKIT_NAMES
from core.pipeline import Pipeline, PipelineConfig
from core.results import FitProgress, FrameResult
from core.take import Take
from tests.conftest import fixture_path, run_cli
from tests.synthetic_flame import write_synthetic_flame


@pytest.fixture(scope="module")
def flame_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    write_synthetic_flame(path)
    return path


def test_open_model_take_reports_the_52_curves(wolfgang_take):
    summary, take_dir = wolfgang_take
    assert summary.model == "open" and summary.status == "complete"
    assert summary.parameter_sizes["expression"] == 52
    assert list(summary.curves) == list(ARKIT_NAMES)
    for stats in summary.curves.values():
        assert 0.0 <= stats["min"] <= stats["mean"] <= stats["max"] <= 1.0
    assert summary.fit_residual < 0.05  # under 5 % of the eye distance
    fit = Take.open(take_dir).read_fit()
    assert len(fit) == 472 and fit.has_face.sum() == summary.frames_with_face
    # talking: the jaw opens and closes
    jaw = fit.expression[:, ARKIT_NAMES.index("jawOpen")]
    assert jaw.max() - jaw.min() > 0.1


def test_broad_smile_shows_both_smile_curves_among_the_strongest(tmp_path):
    result = run_cli("analyze", str(fixture_path("single_face.jpg")), "--out", str(tmp_path / "t"), "--json")
    assert result.returncode == 0, result.stderr
    curves = json.loads(result.stdout)["curves"]
    strongest = sorted(curves, key=lambda name: -curves[name]["max"])[:5]
    assert "mouthSmileLeft" in strongest and "mouthSmileRight" in strongest, strongest


def test_flame_through_the_cli(tmp_path, flame_file):
    result = run_cli(
        "analyze", str(fixture_path("single_face.mp4")), "--out", str(tmp_path / "t"), "--json",
        "--model", "flame", "--flame", str(flame_file), "--shape-components", "20", "--expression-components", "10",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == "flame2020"
    assert summary["parameter_sizes"]["identity"] == 20 and summary["parameter_sizes"]["expression"] == 10
    assert list(summary["curves"]) == [f"exp{i:03d}" for i in range(10)]
    info = json.loads(run_cli("info", str(tmp_path / "t"), "--json").stdout)
    assert info == summary


@pytest.mark.parametrize("problem", ["missing", "not_flame", "too_few"])
def test_bad_flame_input_is_a_one_line_error(tmp_path, flame_file, problem):
    path = {"missing": tmp_path / "nope.pkl", "not_flame": tmp_path / "other.pkl", "too_few": flame_file}[problem]
    if problem == "not_flame":
        path.write_bytes(pickle.dumps({"hello": np.zeros(3)}))
    extra = ["--shape-components", "20", "--expression-components", "80"] if problem == "too_few" else []
    result = run_cli("analyze", str(fixture_path("single_face.jpg")), "--out", str(tmp_path / "t"),
                     "--model", "flame", "--flame", str(path), *extra)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("emocap:")]
    assert len(lines) == 1
    if problem == "too_few":
        assert "80" in lines[0] and "10" in lines[0], lines[0]
    else:
        assert "flame.is.tue.mpg.de" in lines[0], lines[0]


def test_cancelled_fit_resumes_to_the_same_parameters(tmp_path, wolfgang, wolfgang_take):
    _, full_dir = wolfgang_take
    pipeline = Pipeline(PipelineConfig(device="cpu"))
    cancel = threading.Event()

    def on_result(result):
        if isinstance(result, FitProgress):
            cancel.set()

    with pytest.raises(CancelledError):
        pipeline.run(wolfgang, tmp_path / "t", on_frame=on_result, cancel=cancel)
    assert Take.open(tmp_path / "t").manifest.fit.status == "cancelled"
    pipeline.run(wolfgang, tmp_path / "t")
    resumed, full = Take.open(tmp_path / "t").read_fit(), Take.open(full_dir).read_fit()
    for name in ("expression", "rotation", "camera", "identity"):
        assert np.array_equal(getattr(resumed, name), getattr(full, name), equal_nan=True), name


def test_switching_model_refits_without_reobserving(tmp_path, flame_file):
    clip = fixture_path("single_face.mp4")
    first = Pipeline(PipelineConfig(device="cpu")).run(clip, tmp_path / "t")
    flame = ModelChoice("flame", str(flame_file), 20, 10)
    results = []
    second = Pipeline(PipelineConfig(device="cpu", model=flame)).run(clip, tmp_path / "t", on_frame=results.append)
    assert first.model == "open" and second.model == "flame2020"
    frames = [r for r in results if isinstance(r, FrameResult)]
    assert len(frames) == 72 and all(r.from_take for r in frames)  # no frame observed again


def test_a_rebuilt_open_model_refits_the_take(tmp_path, monkeypatch):
    """The fit records the open model file's digest: the same analysis after a rebuild (new shapes
    under the same model version) fits again; without one it does nothing."""
    import core.facemodel.open_model as open_model

    clip = fixture_path("single_face.mp4")
    Pipeline(PipelineConfig(device="cpu", emotion=None)).run(clip, tmp_path / "t")
    settings = Take.open(tmp_path / "t").manifest.fit.settings
    assert settings["open_model_sha256"] == open_model.open_model_digest() and len(settings["open_model_sha256"]) == 16

    def fitted_again() -> bool:
        progress = []
        Pipeline(PipelineConfig(device="cpu", emotion=None)).run(clip, tmp_path / "t", on_frame=progress.append)
        return any(isinstance(p, FitProgress) and not p.from_take for p in progress)

    assert not fitted_again()
    monkeypatch.setattr(open_model, "open_model_digest", lambda path=None: "0123456789abcdef")
    assert fitted_again()
    assert Take.open(tmp_path / "t").manifest.fit.settings["open_model_sha256"] == "0123456789abcdef"
