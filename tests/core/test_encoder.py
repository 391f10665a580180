"""core/encoder: backbones, heads for both face models, crop-space pose, checkpoints, ONNX."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.encoder import EncoderConfig, FaceEncoder, load_encoder, save_encoder
from core.encoder.crop_space import landmarks_to_crop, pose_from_crop, pose_to_crop
from core.encoder.mobilenet import MobileNetV2
from core.encoder.model import OUTPUT_NAMES
from core.encoder.predict import root_joint
from core.encoder.resnet import ResNet50
from core.encoder.runtime import EncoderRuntime
from core.errors import EncoderError
from core.facemodel.flame import load_flame
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.model import FaceModel
from core.facemodel.types import FaceParams
from core.fit.camera import project
from core.observe.align import crop_transform
from tests.synthetic_flame import write_synthetic_flame

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def open_model():
    return load_face_model(ModelChoice())


@pytest.fixture(scope="module")
def flame_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    write_synthetic_flame(path, num_shape=20, num_expression=10)
    return FaceModel(load_flame(path, num_shape=20, num_expression=10))


def test_backbones_have_torchvisions_sizes():
    # torchvision's counts without the ImageNet classifier: mobilenet_v2 3,504,872 - 1,281,000;
    # resnet50 25,557,032 - 2,049,000
    assert sum(p.numel() for p in MobileNetV2(1.0).parameters()) == 2_223_872
    assert sum(p.numel() for p in ResNet50().parameters()) == 23_508_032
    x = torch.zeros(2, 3, 64, 64)
    assert MobileNetV2(0.5).eval()(x).shape == (2, 1280)
    assert ResNet50().eval()(x).shape == (2, 2048)


@pytest.mark.parametrize("which", ["open", "flame"])
def test_heads_follow_the_face_model(which, open_model, flame_model):
    model = open_model if which == "open" else flame_model
    config = EncoderConfig.for_model(model, width=0.5, input_size=64)
    out = FaceEncoder(config).eval().encode(torch.rand(3, 3, 64, 64))
    assert out.identity.shape == (3, model.num_shape) and out.expression.shape == (3, model.num_expression)
    sizes = {name: getattr(out, name).shape[1] for name in OUTPUT_NAMES}
    assert sizes | {"identity": 0, "expression": 0} == {"identity": 0, "expression": 0, "rotation": 3, "neck": 3,
                                                        "jaw": 3, "eyes": 6, "camera": 4, "emotion_logits": 8,
                                                        "valence_arousal": 2}
    assert (out.valence_arousal.abs() <= 1).all()
    assert config.expression_bounds == ((0.0, 1.0) if which == "open" else None)


def test_statistics_and_zero_groups_shape_the_outputs(open_model):
    config = EncoderConfig.for_model(open_model, width=0.5, input_size=64, zero_groups=("jaw", "eyes"))
    encoder = FaceEncoder(config)
    mean = np.arange(config.num_params, dtype=np.float32)
    encoder.set_statistics(mean, np.full(config.num_params, 1e-6, np.float32))
    out = encoder.eval().encode(torch.rand(2, 3, 64, 64))
    slices = config.group_slices()
    assert torch.allclose(out.camera, torch.as_tensor(mean[slices["camera"]]).expand(2, -1), atol=1e-3)
    assert (out.jaw == 0).all() and (out.eyes == 0).all()


def _posed(model, n=4, seed=0):
    rng = np.random.default_rng(seed)
    identity = rng.normal(size=model.num_shape).astype(np.float32)
    rotation = rng.normal(scale=0.3, size=(n, 3)).astype(np.float32)
    camera = np.stack([np.full(n, np.log(3000.0)), rng.uniform(200, 400, n), rng.uniform(100, 250, n),
                       rng.uniform(-10, 10, n)], axis=1).astype(np.float32)
    expression = rng.uniform(0, 0.5, (n, model.num_expression)).astype(np.float32)
    params = FaceParams(torch.as_tensor(identity)[None].expand(n, -1), torch.as_tensor(expression), torch.as_tensor(rotation),
                        torch.zeros(n, 3), torch.zeros(n, 3), torch.zeros(n, 6), torch.zeros(n, 3))
    return identity, rotation, camera, params


def test_crop_space_pose_projects_onto_the_crop_of_the_image_projection(open_model):
    identity, rotation, camera, params = _posed(open_model)
    with torch.no_grad():
        image = project(open_model(params).landmarks, torch.as_tensor(camera)).numpy()
    transforms = np.stack([crop_transform(points, 256) for points in image])
    root = root_joint(open_model, identity)
    rot_c, cam_c = pose_to_crop(rotation, camera, root, transforms, 256)
    params.rotation = torch.as_tensor(rot_c)
    with torch.no_grad():
        in_crop = project(open_model(params).landmarks, torch.as_tensor(cam_c)).numpy()
    expected = landmarks_to_crop(image, transforms, 256)
    assert np.abs(in_crop - expected).max() < 1e-5  # crop sides; x, y and the scaled depth
    assert np.abs(cam_c[:, 1:3] - 0.5).max() < 0.3  # the face sits in the crop
    back_rot, back_cam = pose_from_crop(rot_c, cam_c, root, transforms, 256)
    assert np.allclose(back_rot, rotation, atol=1e-5) and np.allclose(back_cam, camera, rtol=1e-5, atol=1e-3)


def test_checkpoint_reloads_to_identical_outputs(tmp_path, open_model):
    config = EncoderConfig.for_model(open_model, width=0.5, input_size=64, zero_groups=("neck",))
    torch.manual_seed(0)
    encoder = FaceEncoder(config)
    encoder.set_statistics(np.full(config.num_params, 0.3, np.float32), np.full(config.num_params, 2.0, np.float32))
    path = save_encoder(tmp_path / "deep" / "encoder.pt", encoder.eval(), meta={"note": "test"})
    assert not list(path.parent.glob(".*tmp"))  # written atomically, nothing left behind
    loaded = load_encoder(path)
    assert loaded.meta == {"note": "test"} and loaded.encoder.config == config
    x = torch.rand(2, 3, 64, 64)
    for a, b in zip(encoder(x), loaded.encoder(x)):
        assert torch.equal(a, b)


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(EncoderError, match="no encoder checkpoint"):
        load_encoder(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderError, match="not a readable encoder checkpoint"):
        load_encoder(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(EncoderError, match="not an EmoCap encoder"):
        load_encoder(other)


@pytest.mark.parametrize("backbone", ["mobilenetv2", "resnet50"])
def test_onnxruntime_matches_torch(backbone, open_model):
    config = EncoderConfig.for_model(open_model, backbone=backbone, width=0.5, input_size=64)
    torch.manual_seed(1)
    encoder = FaceEncoder(config).eval()
    crops = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    onnx = EncoderRuntime(encoder, threads=1, batch_size=3)
    eager = EncoderRuntime(encoder, backend="torch", batch_size=3)
    assert onnx.backend == "onnxruntime" and eager.backend == "torch"
    a, b = onnx.predict(crops), eager.predict(crops)
    for name in OUTPUT_NAMES:
        assert getattr(a, name).shape[0] == 5
        assert np.abs(getattr(a, name) - getattr(b, name)).max() < 1e-4, name


def test_core_does_not_import_training():
    code = ("import importlib, pkgutil, sys, core\n"
            "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n == 'training' or n.startswith('training.')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
