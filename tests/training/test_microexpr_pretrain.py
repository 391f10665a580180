"""Pretraining the micro-expression refiner over several windows, and using its weights."""

import numpy as np

from core.facemodel.loading import ModelChoice, load_face_model
from core.microexpr.config import RefineConfig
from core.microexpr.refiner import evaluate_window
from core.microexpr.results import save_weights
from core.microexpr.stage import new_refiner
from tests.microexpr_clips import synthetic_window
from training.microexpr.pretrain import PretrainConfig, pretrain


def test_pretraining_over_windows_lowers_the_loss_and_its_weights_start_a_refiner(tmp_path):
    model = load_face_model(ModelChoice())
    smile, regions, _ = synthetic_window(model, frames=16, expression="mouthSmileLeft", peak=0.3)
    brow, _, _ = synthetic_window(model, frames=16, expression="browDownRight", peak=0.4)
    config = RefineConfig(num_regions=regions.count, frames_per_step=6)
    refiner, history = pretrain(model, regions, [smile, brow], config, PretrainConfig(epochs=6, steps_per_window=4))
    assert len(history) == 6 and history[-1] < 0.6 * history[0]
    path = tmp_path / "refiner.pt"
    save_weights(refiner, path, {"windows": 2})
    started = new_refiner(model.num_expression, RefineConfig(num_regions=regions.count, weights=str(path)))
    fresh = new_refiner(model.num_expression, RefineConfig(num_regions=regions.count))
    # without any per-clip training, the pretrained refiner already explains more of a window's flow
    pretrained_loss = evaluate_window(model, started, regions, smile, config)["coarse_flow"]
    fresh_loss = evaluate_window(model, fresh, regions, smile, config)["coarse_flow"]
    assert pretrained_loss < 0.9 * fresh_loss
    assert np.isfinite(pretrained_loss)
