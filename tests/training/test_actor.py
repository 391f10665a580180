"""emocap train-actor end to end on a short fitted take, then analysis with --method encoder."""

import json

import numpy as np

from core.encoder import load_encoder
from core.take import Take
from tests.conftest import fixture_path, run_cli

QUICK = ("--epochs", "8", "--width", "0.5", "--input-size", "64", "--threads", "1", "--device", "cpu")


def test_train_actor_then_analyze_with_the_actor_encoder(single_take, tmp_path):
    result = run_cli("train-actor", str(single_take), *QUICK, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["train_frames"] + report["validation_frames"] == 72 and report["validation_frames"] > 0
    held = report["held_out"]
    assert held["frames"] == report["validation_frames"]
    # on frames it never saw the distilled encoder follows the face (within 5 % of the eye distance
    # of MediaPipe's landmarks; the fitter: about 1 %) and the emotion branch learned the clip's
    # emotion (an untrained branch agrees by chance, about 1 in 8). This clip hardly changes
    # expression, so its mean expression is a strong baseline; benchmarks/bench_actor.py measures
    # the curves on the talking Wolfgang clip.
    assert held["landmark_error_pct_iod"] < 5.0
    assert held["emotion_branch_top_class_agreement"] >= 0.5
    assert held["mean_expression_baseline_mae"] > 0
    encoder_path = single_take / "encoder" / "encoder.pt"
    stored = json.loads((single_take / "encoder" / "report.json").read_text())
    assert stored["held_out"] == held and load_encoder(encoder_path).meta["report"] == held
    fitted = Take.open(single_take).read_fit()

    # the take it was trained on keeps the fit it learned from
    refused = run_cli("analyze", str(fixture_path("single_face.mp4")), "--out", str(single_take), "--method", "encoder",
                      "--encoder", str(encoder_path))
    assert refused.returncode == 2 and "analyse into another take" in refused.stderr
    np.testing.assert_array_equal(Take.open(single_take).read_fit().expression, fitted.expression)

    # the same clip analysed by the encoder into a new take
    analysed = run_cli("analyze", str(fixture_path("single_face.mp4")), "--out", str(tmp_path / "encoded"),
                       "--method", "encoder", "--encoder", str(encoder_path), "--json")
    assert analysed.returncode == 0, analysed.stderr
    summary = json.loads(analysed.stdout)
    assert summary["model"] == "open" and summary["frames_with_face"] == 72
    take = Take.open(tmp_path / "encoded")
    assert take.manifest.fit.settings["method"] == "encoder" and take.manifest.fit.status == "complete"
    encoded = take.read_fit()
    assert encoded.has_face.all() and np.isfinite(encoded.expression).all()
    assert ((encoded.expression >= 0) & (encoded.expression <= 1)).all()
    # close to the fit it was distilled from (all frames; most were training frames)
    assert np.abs(encoded.expression - fitted.expression).mean() < 0.1
    assert summary["fit_residual"] < 0.15

    # another take of the performer, with the checkpoint given explicitly
    other = run_cli("analyze", str(fixture_path("single_face.jpg")), "--out", str(tmp_path / "still"), "--method", "encoder",
                    "--encoder", str(encoder_path), "--json")
    assert other.returncode == 0, other.stderr
    assert Take.open(tmp_path / "still").manifest.fit.settings["encoder"] == str(encoder_path.resolve())


def test_default_epochs_keep_the_training_time_about_constant():
    from training.actor import SAMPLE_BUDGET, auto_epochs

    assert auto_epochs(376, most=30) == 30  # the Wolfgang take's training frames: capped
    assert auto_epochs(2400, most=30) == 5 == SAMPLE_BUDGET // 2400
    assert auto_epochs(100_000, most=30) == 3  # never fewer than 3
