"""--method encoder in the pipeline and the CLI, with an (untrained) encoder checkpoint."""

import shutil

import numpy as np
import pytest
import torch

from core.encoder import EncoderConfig, FaceEncoder, save_encoder
from core.encoder.predict import landmark_residual
from core.errors import EncoderError
from core.facemodel.loading import ModelChoice, load_face_model
from core.pipeline import Pipeline, PipelineConfig
from core.results import FitProgress
from core.take import Take
from tests.conftest import fixture_path, run_cli
from tests.synthetic_flame import write_synthetic_flame


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An open-model encoder whose outputs are a plausible mean face (its statistics), not trained."""
    model = load_face_model(ModelChoice())
    config = EncoderConfig.for_model(model, width=0.5, input_size=64, zero_groups=("neck", "jaw", "eyes"))
    torch.manual_seed(0)
    encoder = FaceEncoder(config)
    mean = np.zeros(config.num_params, np.float32)
    mean[config.group_slices()["expression"]] = 0.1
    mean[config.group_slices()["camera"]] = (np.log(1 / 0.2), 0.5, 0.45, 0.0)
    encoder.set_statistics(mean, np.full(config.num_params, 0.01, np.float32))
    return save_encoder(tmp_path_factory.mktemp("enc") / "encoder.pt", encoder.eval())


def test_encoder_method_stores_parameters_like_the_fitter(tmp_path, untrained):
    config = PipelineConfig(device="cpu", method="encoder", encoder=str(untrained))
    results = []
    summary = Pipeline(config).run(fixture_path("single_face.mp4"), tmp_path / "t", on_frame=results.append)
    assert summary.model == "open" and summary.frames_with_face == 72
    windows = [r for r in results if isinstance(r, FitProgress)]
    assert windows and windows[-1].position == 72
    take = Take.open(tmp_path / "t")
    fit = take.read_fit(closures=False)  # as the encoder gave it
    assert len(fit) == 72 and fit.has_face.all()
    assert np.allclose(fit.expression, 0.1, atol=0.05) and (fit.jaw == 0).all()
    # the closures stage follows the encoder as it follows the fitter: the blink (26-28) is reached
    blink = take.manifest.fit.expression_names.index("eyeBlinkLeft")
    assert (take.read_fit().expression[26:29, blink] >= 0.9).all()
    assert np.isfinite(fit.camera).all() and np.isfinite(fit.residual).all()
    assert take.manifest.fit.settings["method"] == "encoder"
    # the residual, posed a few frames a pass (as a long clip is), is the one stored
    rows = np.arange(len(fit))
    observations = take.load_observations(landmarks_on_demand=True)
    model = load_face_model(ModelChoice())
    assert np.allclose(landmark_residual(model, fit, rows, observations, rows_per_pass=5), fit.residual, rtol=1e-5)
    assert np.allclose(landmark_residual(model, fit, rows[::-1], observations, rows_per_pass=5), fit.residual[::-1],
                       rtol=1e-5)
    # an unchanged rerun keeps the stored result; the fitter replaces it
    again = []
    Pipeline(config).run(fixture_path("single_face.mp4"), tmp_path / "t", on_frame=again.append)
    assert not any(isinstance(r, FitProgress) for r in again)
    Pipeline(PipelineConfig(device="cpu")).run(fixture_path("single_face.mp4"), tmp_path / "t")
    assert "method" not in Take.open(tmp_path / "t").manifest.fit.settings


def test_no_encoder_is_a_one_line_error_that_says_what_to_do(tmp_path):
    result = run_cli("analyze", str(fixture_path("single_face.jpg")), "--out", str(tmp_path / "t"), "--method", "encoder")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("emocap:")]
    assert len(lines) == 1 and "--encoder" in lines[0] and "emocap train-actor" in lines[0]
    assert not (tmp_path / "t").exists()  # refused before any frame was read


def test_an_encoder_for_another_model_is_refused(tmp_path, untrained):
    flame = tmp_path / "generic_model.pkl"
    write_synthetic_flame(flame, num_shape=20, num_expression=10)
    config = PipelineConfig(device="cpu", method="encoder", encoder=str(untrained),
                            model=ModelChoice("flame", str(flame), 20, 10))
    with pytest.raises(EncoderError, match="predicts open parameters"):
        Pipeline(config).run(fixture_path("single_face.jpg"), tmp_path / "t")


def test_the_take_an_encoder_was_trained_on_keeps_its_fit(tmp_path, untrained):
    """--method encoder with the take's own encoder would overwrite that encoder's training labels."""
    take_dir = tmp_path / "t"
    Pipeline(PipelineConfig(device="cpu")).run(fixture_path("single_face.jpg"), take_dir)
    fitted = Take.open(take_dir).read_fit().expression.copy()
    (take_dir / "encoder").mkdir()
    shutil.copy(untrained, take_dir / "encoder" / "encoder.pt")
    own = take_dir / "encoder" / "encoder.pt"
    with pytest.raises(EncoderError, match="would replace it; analyse into another take"):
        Pipeline(PipelineConfig(device="cpu", method="encoder", encoder=str(own))).run(fixture_path("single_face.jpg"), take_dir)
    take = Take.open(take_dir)
    assert "method" not in take.manifest.fit.settings and take.manifest.fit.status == "complete"
    np.testing.assert_array_equal(take.read_fit().expression, fitted)
    # into another take, the same encoder runs
    Pipeline(PipelineConfig(device="cpu", method="encoder", encoder=str(own))).run(
        fixture_path("single_face.jpg"), tmp_path / "other")
    assert Take.open(tmp_path / "other").manifest.fit.settings["method"] == "encoder"
