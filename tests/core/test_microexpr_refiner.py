"""The refiner's self-supervised training on a window with a known motion, and its storage."""

import numpy as np
import pytest
import torch

from core.facemodel.loading import ModelChoice, load_face_model
from core.microexpr.config import RefineConfig
from core.microexpr.refiner import MicroExpressionRefiner, evaluate_window, train_window
from core.microexpr.results import load_weights, save_weights
from core.microexpr.stage import new_refiner
from tests.microexpr_clips import synthetic_window


@pytest.fixture(scope="module")
def model():
    return load_face_model(ModelChoice())


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(generator):
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            return stop.value


def test_untrained_refiner_reproduces_the_fit(model):
    data, regions, _ = synthetic_window(model, frames=12)
    config = RefineConfig(num_regions=regions.count, iterations=0)
    refiner = new_refiner(model.num_expression, config)
    result = run(train_window(model, refiner, regions, data, config))
    assert np.array_equal(result.expression, data.expression)
    assert np.allclose(result.rotation, data.rotation) and np.allclose(result.camera, data.camera)
    assert np.abs(result.offsets).max() == 0


def test_self_supervised_training_recovers_a_missed_expression(model):
    data, regions, truth = synthetic_window(model, frames=30)
    config = RefineConfig(num_regions=regions.count, iterations=60, frames_per_step=8)
    refiner = new_refiner(model.num_expression, config)
    before = evaluate_window(model, refiner, regions, data, config)
    result = run(train_window(model, refiner, regions, data, config))
    after = evaluate_window(model, refiner, regions, data, config)
    assert np.mean(result.losses["total"][-5:]) < 0.5 * np.mean(result.losses["total"][:5])
    assert after["coarse_flow"] < 0.5 * before["coarse_flow"]
    smile = model.expression_names.index("mouthSmileLeft")
    apex = int(np.argmax(truth[:, smile]))
    assert result.expression[apex, smile] > 0.4 * truth[apex, smile]  # fit: 0, truth: 0.3
    assert result.expression[data.onset, smile] == pytest.approx(0.0, abs=1e-6)
    # the offsets stay small (millimetres), smaller still at the neutral onset
    assert np.abs(result.offsets).max() < 0.004 and np.abs(result.offsets[data.onset]).max() < 0.0005


def test_weights_round_trip_and_configure_a_new_refiner(model, tmp_path):
    config = RefineConfig(num_regions=12)
    trained = MicroExpressionRefiner.from_config(model.num_expression, config)
    torch.nn.init.normal_(trained.dem.decoder[-1].weight)
    path = tmp_path / "refiner.pt"
    save_weights(trained, path, {"clips": 3})
    loaded = new_refiner(model.num_expression, RefineConfig(num_regions=12, weights=str(path)))
    assert torch.equal(loaded.dem.decoder[-1].weight, trained.dem.decoder[-1].weight)
    assert load_weights(MicroExpressionRefiner.from_config(model.num_expression, config), path) == {"clips": 3}


def test_unusable_weights_are_a_one_line_error(model, tmp_path):
    from core.errors import RefinerError

    path = tmp_path / "other.pt"
    save_weights(MicroExpressionRefiner.from_config(model.num_expression, RefineConfig(num_regions=8)), path)
    with pytest.raises(RefinerError, match="cannot use refiner weights"):
        new_refiner(model.num_expression, RefineConfig(num_regions=12, weights=str(path)))
