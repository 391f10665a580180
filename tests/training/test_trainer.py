"""The trainer: a tiny run whose loss falls, checkpoints that reload exactly, resuming, the CLI."""

import json
import threading

import numpy as np
import pytest
import torch
import yaml

from core.encoder import load_encoder
from core.errors import CancelledError
from tests.conftest import run_cli
from training.augment import augment
from training.config import AugmentSpec, ConfigError, config_from_dict
from training.samples import Batch
from training.trainer import Trainer


def tiny_config(take, out, epochs=6, **losses):
    return config_from_dict({
        "out": str(out), "device": "cpu", "threads": 1, "seed": 3,
        "data": [{"kind": "take", "path": str(take)}],
        "encoder": {"width": 0.5, "input_size": 64},
        "validation": {"every": 4, "block": 8},
        "optim": {"epochs": epochs, "batch_size": 16, "lr": 0.003},
        "losses": losses,
    })


def test_tiny_training_run_learns_and_its_checkpoint_reloads_exactly(single_take_source, tmp_path):
    config = tiny_config(single_take_source, tmp_path / "run", epochs=6, photometric=0.5, consistency=0.1,
                         reconstruction_emotion=0.1)
    result = Trainer(config).run()
    first, last = result.history[0], result.history[-1]
    assert {"landmarks", "expression", "parameters", "emotion", "photometric", "consistency",
            "reconstruction_emotion"} <= set(last["train"])
    assert np.mean([h["train"]["total"] for h in result.history[-2:]]) < 0.7 * first["train"]["total"]
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 7))
    loaded = load_encoder(result.encoder_path)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(result.encoder(x), loaded.encoder(x)):
            assert torch.equal(a, b)
    assert loaded.meta["model"] == "open" and len(loaded.meta["expression_names"]) == 52


def test_an_interrupted_run_resumes_to_the_same_weights(single_take_source, tmp_path):
    whole = Trainer(tiny_config(single_take_source, tmp_path / "whole", epochs=3)).run()
    cancel = threading.Event()
    interrupted = Trainer(tiny_config(single_take_source, tmp_path / "parts", epochs=3))
    with pytest.raises(CancelledError, match="after epoch 1"):
        interrupted.run(cancel=cancel, on_epoch=lambda entry: cancel.set())
    resumed = Trainer(tiny_config(single_take_source, tmp_path / "parts", epochs=3)).run()
    assert resumed.resumed_from == 1
    a, b = whole.encoder.state_dict(), resumed.encoder.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="other settings"):
        Trainer(tiny_config(single_take_source, tmp_path / "parts", epochs=4)).run()


def test_emocap_train_reads_a_yaml_config(single_take_source, tmp_path):
    config = {"out": "run", "device": "cpu", "threads": 1, "data": [{"kind": "take", "path": str(single_take_source)}],
              "encoder": {"width": 0.5, "input_size": 64}, "optim": {"epochs": 2, "batch_size": 16}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_cli("train", str(path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "encoder.pt").exists() and "encoder" in result.stdout
    assert result.stderr.count("epoch ") == 2
    path.write_text(yaml.safe_dump(config | {"bogus": 1}))
    bad = run_cli("train", str(path))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "unknown key(s) bogus" in bad.stderr


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="needs 'out'"):
        config_from_dict({"data": []})
    with pytest.raises(ConfigError, match="unknown kind 'videos'"):
        config_from_dict({"out": "x", "data": [{"kind": "videos", "path": "."}]})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) landmark in losses"):
        config_from_dict({"out": "x", "data": [{"kind": "take", "path": "."}], "losses": {"landmark": 1}})


def test_augmentation_moves_targets_with_the_image():
    size = 64
    image = torch.zeros(1, 3, size, size)
    image[0, :, 40, 20] = 1.0  # a dot at crop point (20, 40) px
    landmarks = torch.zeros(1, 478, 3)
    landmarks[0, :, 0], landmarks[0, :, 1] = 20 / size, 40 / size
    camera = torch.tensor([[2.0, 0.5, 0.5, 0.1]])
    batch = Batch(image, landmarks, camera, torch.ones(1), torch.zeros(1, 8), torch.zeros(1, 2), torch.zeros(1),
                  torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long), None, None)
    out = augment(batch, AugmentSpec(shift=0.1, scale=0.2, colour=0.0), slice(0, 4), torch.Generator().manual_seed(3))
    weights = out.images[0, 0]
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.stack([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
    assert torch.allclose(centre, out.landmarks[0, 0, :2] * size, atol=0.25)
    scale = float(torch.exp(out.params[0, 0] - 2.0))  # the camera's scale grew with the image
    assert torch.allclose(out.params[0, 1:3], scale * (torch.tensor([0.5, 0.5]) - 0.5) + 0.5 + (out.landmarks[0, 0, :2] - scale * (landmarks[0, 0, :2] - 0.5) - 0.5))
    assert out.params[0, 3].item() == pytest.approx(0.1 * scale)


def test_a_flame_take_trains_a_flame_encoder(tmp_path):
    from core.facemodel.loading import ModelChoice
    from core.pipeline import Pipeline, PipelineConfig
    from tests.conftest import fixture_path
    from tests.synthetic_flame import write_synthetic_flame

    flame = tmp_path / "generic_model.pkl"
    write_synthetic_flame(flame, num_shape=20, num_expression=10)
    take = tmp_path / "take"
    Pipeline(PipelineConfig(device="cpu", model=ModelChoice("flame", str(flame), 20, 10))).run(
        fixture_path("single_face.mp4"), take)
    config = config_from_dict({
        "out": str(tmp_path / "run"), "device": "cpu", "threads": 1, "data": [{"kind": "take", "path": str(take)}],
        "model": {"kind": "flame", "flame_path": str(flame), "num_shape": 20, "num_expression": 10},
        "encoder": {"width": 0.5, "input_size": 64}, "optim": {"epochs": 2, "batch_size": 16},
        "losses": {"photometric": 0.5, "consistency": 0.1}})
    result = Trainer(config).run()
    out = result.encoder.encode(torch.rand(2, 3, 64, 64))
    assert out.expression.shape == (2, 10) and out.identity.shape == (2, 20)
    assert result.encoder.config.expression_bounds is None and "jaw" not in result.encoder.config.zero_groups
    assert np.isfinite(result.history[-1]["train"]["photometric"]) and result.history[-1]["train"]["photometric"] > 0
