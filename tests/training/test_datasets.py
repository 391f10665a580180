"""Dataset readers on small datasets made here from fixture frames (none of the real datasets ships)."""

import json

import cv2
import numpy as np
import pytest

from core.emotion.types import EMOTIONS
from core.encoder.config import EncoderConfig
from core.facemodel.loading import ModelChoice, load_face_model
from core.video import open_source
from tests.conftest import fixture_path
from training.data.affectnet import load_affectnet
from training.data.image_folder import load_image_folder
from training.data.scan4d import ScanLayoutError, load_scan4d
from training.data.take_clip import load_take_samples
from training.samples import SampleArrays, make_batch, split_blocks

SIZE = 64


@pytest.fixture(scope="module")
def model():
    return load_face_model(ModelChoice())


@pytest.fixture(scope="module")
def config(model):
    return EncoderConfig.for_model(model, width=0.5, input_size=SIZE)


@pytest.fixture(scope="module")
def frames():
    with open_source(fixture_path("single_face.mp4")) as source:
        return [source.read(i) for i in (0, 20, 40, 60)]


def write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_image_folder_keeps_faces_and_skips_the_rest(tmp_path, frames, config):
    write(tmp_path / "a.jpg", frames[0])
    write(tmp_path / "sub" / "b.png", frames[1])
    write(tmp_path / "blank.png", np.full((200, 200, 3), 127, np.uint8))  # no face: skipped
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path, config)
    assert len(data) == 2 and data.images.shape == (2, SIZE, SIZE, 3)
    assert np.isfinite(data.landmarks).all() and np.isnan(data.params).all() and np.isnan(data.emotion).all()
    # aligned crops: the eyes sit at the same place in every crop, about 40 % down
    assert np.allclose(data.landmarks[:, 468, 1], data.landmarks[0, 468, 1], atol=0.03)
    assert 0.3 < data.landmarks[0, 468, 1] < 0.5


def test_affectnet_folders_give_class_and_intensity(tmp_path, frames, config):
    write(tmp_path / "happy" / "x.jpg", frames[0])
    write(tmp_path / "happy" / "y.jpg", frames[1])
    write(tmp_path / "0" / "z.jpg", frames[2])  # AffectNet's id 0: neutral
    write(tmp_path / "9" / "w.jpg", frames[3])  # AffectNet's "uncertain": skipped
    (tmp_path / "annotations.csv").write_text("path,valence,arousal\nhappy/x.jpg,0.6,0.3\n")
    data = load_affectnet(tmp_path, config)
    assert len(data) == 3
    happy, neutral = EMOTIONS.index("happy"), EMOTIONS.index("neutral")
    by_intensity = {round(float(i), 4): p for i, p in zip(data.intensity, data.emotion)}
    faint = by_intensity[round(float(np.hypot(0.6, 0.3)), 4)]  # intensity from valence/arousal
    assert faint[happy] == pytest.approx(np.hypot(0.6, 0.3), abs=1e-6) and faint[neutral] == pytest.approx(1 - np.hypot(0.6, 0.3), abs=1e-6)
    assert by_intensity[1.0][happy] == 1.0  # no annotation: the class alone
    assert by_intensity[0.0][neutral] == 1.0
    assert np.isfinite(data.valence_arousal).all(axis=1).sum() == 1


def test_scan4d_sequences_give_ground_truth_expression(tmp_path, frames, config):
    seq = tmp_path / "F001" / "T1"
    for k, frame in enumerate(frames[:3]):
        write(seq / "frames" / f"{k:04d}.jpg", frame)
    rng = np.random.default_rng(0)
    expression = rng.normal(size=(2, 60)).astype(np.float32)
    jaw = rng.normal(scale=0.1, size=(2, 3)).astype(np.float32)
    np.savez(seq / "params.npz", expression=expression, jaw=jaw, frame=np.array([0, 2]))
    (seq / "emotion.json").write_text(json.dumps({"emotion": "happy", "intensity": [0.2, 0.9]}))
    data = load_scan4d(tmp_path, config)
    slices = config.group_slices()
    assert len(data) == 2 and (data.param_weight == 1).all()
    assert np.allclose(data.params[:, slices["expression"]], expression[:, :52])  # the model's first 52
    assert np.allclose(data.params[:, slices["jaw"]], jaw)
    assert np.isnan(data.params[:, slices["camera"]]).all()  # the scans' pose is not the video's
    assert np.allclose(data.intensity, [0.2, 0.9]) and list(data.order) == [0, 1]
    (seq / "params.npz").unlink()
    np.savez(seq / "params.npz", expression=expression[:, :10])
    with pytest.raises(ScanLayoutError, match="10 expression components"):
        load_scan4d(tmp_path, config)


def test_take_samples_carry_pseudo_ground_truth_emotion_and_a_texture(single_take_source, model, config):
    data = load_take_samples(single_take_source, model, config, pseudo_weight=0.5)
    assert len(data) == 72 and np.isfinite(data.params).all() and (data.param_weight == 0.5).all()
    assert np.allclose(data.emotion.sum(axis=1), 1.0, atol=1e-4)  # FER run on the crops (no timeline)
    assert len(data.textures) == 1 and data.textures[0].uv.shape == (model.num_vertices + 478, 2)
    # the texture's mesh lies on the face: its eye-corner vertices are near the observed ones
    ref = data.textures[0]
    assert 0.2 < ref.uv[:, 0].min() < ref.uv[:, 0].max() < 0.9
    batch = make_batch(data, np.arange(5))
    assert batch.images.shape == (5, 3, SIZE, SIZE) and batch.texture_images.shape == (1, 3, SIZE, SIZE)
    train, val = split_blocks(data, every=5, block=8)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 72
    assert list(val[:8]) == list(range(16, 24))  # the 3rd block of 8 frames


def test_concatenate_keeps_ids_apart(config):
    a = SampleArrays.empty_targets(np.zeros((2, SIZE, SIZE, 3), np.uint8), config.num_params)
    a.actor[:] = 0
    b = SampleArrays.empty_targets(np.zeros((3, SIZE, SIZE, 3), np.uint8), config.num_params)
    b.actor[:] = 0
    joined = SampleArrays.concatenate([a, b])
    assert list(joined.actor) == [0, 0, 1, 1, 1] and list(joined.group) == [0, 0, 1, 1, 1]
