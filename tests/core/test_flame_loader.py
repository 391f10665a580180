"""core.facemodel.flame.load_flame on synthetic files in FLAME's exact layout (never a real FLAME)."""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import struct
import sys
import time
import zlib

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from core.errors import EmoCapError, FaceModelError
from core.facemodel import FaceModel
from core.facemodel.correspondence import closest_point_embedding, embedded_points
from core.facemodel.flame import FLAME_HINT, load_flame
from tests.synthetic_flame import write_synthetic_embedding, write_synthetic_flame

SITE = "https://flame.is.tue.mpg.de"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """Synthetic models in separate folders (so no embedding file sits beside them)."""
    root = tmp_path_factory.mktemp("flame")
    out = {}
    for key, name, kwargs in (
        ("chumpy", "FLAME2020/generic_model.pkl", {"version": "2020", "with_chumpy": True}),
        ("plain", "FLAME2023/flame2023.pkl", {"version": "2023", "with_chumpy": False}),
        ("npz", "converted/model.npz", {}),
    ):
        path = root / name
        path.parent.mkdir(parents=True)
        out[key] = write_synthetic_flame(path, num_shape=20, num_expression=10, **kwargs)
    return out


@pytest.fixture(scope="module")
def loaded(files) -> dict:
    return {key: load_flame(model.path, num_shape=20, num_expression=10) for key, model in files.items()}


def assert_flame_error(err: pytest.ExceptionInfo, *words: str) -> None:
    message = str(err.value)
    assert isinstance(err.value, EmoCapError)
    assert "\n" not in message
    assert SITE in message, message
    for word in words:
        assert word in message, (word, message)


# --- formats -----------------------------------------------------------------------------------


def test_chumpy_pickle_is_read_without_chumpy(files, loaded):
    assert importlib.util.find_spec("chumpy") is None, "chumpy must not be installed for this test to mean anything"
    assert "chumpy" not in sys.modules
    raw = files["chumpy"].path.read_bytes()
    assert b"chumpy.ch" in raw and b"scipy.sparse" in raw  # the file really holds chumpy and sparse objects
    assert b"U\x01x" in raw  # Ch's state key 'x' as a Python 2 byte string (needs encoding="latin1")
    data = loaded["chumpy"]
    assert data.info["chumpy"] is True and data.info["format"] == "pickle"
    assert data.name == "flame2020"


@pytest.mark.parametrize("key", ["chumpy", "plain", "npz"])
def test_arrays_are_read_in_flame_layout(files, loaded, key):
    model, data = files[key], loaded[key]
    arrays = model.arrays
    v = len(arrays["v_template"])
    np.testing.assert_allclose(data.template, arrays["v_template"], atol=1e-7)
    assert data.faces.dtype == np.int64 and np.array_equal(data.faces, arrays["f"].astype(np.int64))
    np.testing.assert_allclose(data.shape_basis, arrays["shapedirs"][:, :, :20], atol=1e-9)
    np.testing.assert_allclose(data.expression_basis, arrays["shapedirs"][:, :, 20:30], atol=1e-9)
    # pose_basis[k, 3 * vertex + axis] == posedirs[vertex, axis, k] (smplx: reshape(-1, 36).T)
    assert data.pose_basis.shape == (36, v * 3)
    for vertex, axis, k in ((0, 0, 0), (17, 2, 35), (v - 1, 1, 20)):
        assert data.pose_basis[k, 3 * vertex + axis] == pytest.approx(arrays["posedirs"][vertex, axis, k], abs=1e-9)
    np.testing.assert_allclose(data.joint_regressor, arrays["J_regressor"].toarray(), atol=1e-6)
    np.testing.assert_allclose(data.joint_regressor @ data.template, model.joints, atol=1e-6)
    np.testing.assert_allclose(data.skinning_weights, arrays["weights"], atol=1e-7)
    assert data.expression_names[:2] == ("exp000", "exp001") and len(data.expression_names) == 10
    assert data.expression_bounds is None
    assert data.info["eye_joints_swapped"] is False
    data.validate()


def test_names_come_from_the_file_or_folder_name(loaded, tmp_path, files):
    assert loaded["chumpy"].name == "flame2020"
    assert loaded["plain"].name == "flame2023"
    assert loaded["npz"].name == "flame"
    renamed = tmp_path / "generic_model.pkl"
    shutil.copy(files["plain"].path, renamed)
    assert load_flame(renamed, num_shape=3, num_expression=2).name == "flame2020"


def test_full_width_shapedirs_split_at_300(tmp_path):
    """The real layout (300 identity + 100 expression, no extra key): expressions start at column 300."""
    model = write_synthetic_flame(tmp_path / "generic_model.pkl", num_shape=20, num_expression=10, full_width=True)
    data = load_flame(model.path, num_shape=100, num_expression=50)
    assert "num_shape_components" not in model.arrays
    assert data.num_shape == 100 and data.num_expression == 50
    assert data.info["file_shape_components"] == 300 and data.info["file_expression_components"] == 100
    np.testing.assert_allclose(data.expression_basis[:, :, :10], model.arrays["shapedirs"][:, :, 300:310], atol=1e-9)
    assert np.abs(data.expression_basis[:, :, :10]).max() > 1e-3
    np.testing.assert_allclose(data.shape_basis[:, :, :20], model.arrays["shapedirs"][:, :, :20], atol=1e-9)


# --- component selection -----------------------------------------------------------------------


def test_fewer_components_are_the_leading_ones(files):
    model = files["chumpy"]
    data = load_flame(model.path, num_shape=5, num_expression=3)
    assert data.shape_basis.shape[2] == 5 and data.expression_basis.shape[2] == 3
    np.testing.assert_allclose(data.shape_basis, model.arrays["shapedirs"][:, :, :5], atol=1e-9)
    np.testing.assert_allclose(data.expression_basis, model.arrays["shapedirs"][:, :, 20:23], atol=1e-9)
    assert len(data.expression_names) == 3


@pytest.mark.parametrize("kwargs,numbers", [
    ({"num_shape": 21, "num_expression": 10}, ("21", "20")),
    ({"num_shape": 20, "num_expression": 11}, ("11", "10")),
])
def test_asking_for_more_components_than_the_file_has(files, kwargs, numbers):
    with pytest.raises(FaceModelError) as err:
        load_flame(files["chumpy"].path, **kwargs)
    for number in numbers:
        assert number in str(err.value)


@pytest.mark.parametrize(
    "kwargs", [{"num_shape": 0}, {"num_shape": 301}, {"num_expression": 0}, {"num_expression": 101}]
)
def test_component_counts_outside_flame_are_refused(files, kwargs):
    with pytest.raises(FaceModelError, match=r"1\.\.(300|100)"):
        load_flame(files["chumpy"].path, **kwargs)


# --- wrong files -------------------------------------------------------------------------------


def tiny_png() -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\xff\x00" * 2)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_text("this is not a face model\n")
    with pytest.raises(FaceModelError) as err:
        load_flame(path)
    assert_flame_error(err, "neither a pickle nor an .npz", str(path))


def test_image_is_refused(tmp_path):
    path = tmp_path / "flame2023.pkl"
    path.write_bytes(tiny_png())
    with pytest.raises(FaceModelError) as err:
        load_flame(path)
    assert_flame_error(err, "PNG image")


def test_pickle_with_wrong_shapes_is_refused(tmp_path, files):
    arrays = dict(files["plain"].arrays)
    arrays["shapedirs"] = np.zeros((10, 3, 30))
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=2))
    with pytest.raises(FaceModelError) as err:
        load_flame(path, num_shape=5, num_expression=5)
    assert_flame_error(err, "shapedirs", "(10, 3, 30)")


def test_pickle_of_a_dict_without_flame_keys_is_refused(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((5, 3)), "weights": np.ones((5, 5)) / 5}))
    with pytest.raises(FaceModelError) as err:
        load_flame(path)
    assert_flame_error(err, "missing", "f, shapedirs, posedirs, J_regressor, kintree_table")


def test_inconsistent_kintree_is_refused(tmp_path, files):
    arrays = dict(files["plain"].arrays)
    arrays["kintree_table"] = np.array([[-1, 0, 1, 2, 1], [0, 1, 2, 3, 4]])
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=2))
    with pytest.raises(FaceModelError) as err:
        load_flame(path, num_shape=5, num_expression=5)
    assert_flame_error(err, "kintree_table")


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_pickle_with_code_is_refused_not_run(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil()}, protocol=2))
    with pytest.raises(FaceModelError) as err:
        load_flame(path)
    assert_flame_error(err, "refusing to load", "getcwd")


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "generic_model.pkl"
    with pytest.raises(FaceModelError) as err:
        load_flame(path)
    assert_flame_error(err, "not found", str(path))
    assert FLAME_HINT in str(err.value)


# --- landmarks ---------------------------------------------------------------------------------


def test_explicit_embedding_file_is_used(files, tmp_path):
    model = files["plain"]
    face_idx, bary, ids = write_synthetic_embedding(tmp_path / "my_embedding.npz", model)
    data = load_flame(model.path, num_shape=20, num_expression=10, embedding_path=tmp_path / "my_embedding.npz")
    assert len(ids) == 105
    assert np.array_equal(data.landmark_ids, ids) and np.array_equal(data.landmark_faces, face_idx)
    np.testing.assert_allclose(data.landmark_barycentric, bary)
    assert data.info["landmarks"].startswith("embedding")
    out = FaceModel(data)(FaceModel(data).zero_params(1))
    np.testing.assert_allclose(out.landmarks[0].numpy(), model.landmarks[ids], atol=1e-6)


def test_embedding_beside_the_model_is_found(files, tmp_path):
    model = files["npz"]
    path = tmp_path / "model.npz"
    shutil.copy(model.path, path)
    _, _, ids = write_synthetic_embedding(tmp_path / "mediapipe_landmark_embedding.npz", model)
    data = load_flame(path, num_shape=20, num_expression=10)
    assert np.array_equal(data.landmark_ids, ids)
    assert "mediapipe_landmark_embedding.npz" in data.info["landmarks"]


def test_broken_embedding_is_refused(files, tmp_path):
    np.savez(
        tmp_path / "emb.npz",
        lmk_face_idx=np.array([10**6]), lmk_b_coords=np.ones((1, 3)) / 3, landmark_indices=np.array([1]),
    )
    with pytest.raises(FaceModelError, match="lmk_face_idx"):
        load_flame(files["plain"].path, num_shape=5, num_expression=5, embedding_path=tmp_path / "emb.npz")


def test_computed_correspondence_lands_on_the_true_points(files, loaded):
    model, data = files["chumpy"], loaded["chumpy"]
    assert data.info["landmarks"] == "computed"
    assert np.array_equal(data.landmark_ids, np.arange(478))
    points = embedded_points(data.template, data.faces, data.landmark_faces, data.landmark_barycentric)
    error = np.linalg.norm(points - model.landmarks, axis=1)
    assert error.max() < 1e-3, error.max()  # within 1 mm of the true MediaPipe points
    # the registration recovered the synthetic face's 0.095 m eye-corner distance from the 0.09 m prior
    assert data.info["correspondence_scale_m"] == pytest.approx(0.095, rel=1e-3)
    assert data.info["correspondence_rms_m"] < 1e-4


def test_closest_point_embedding_is_exact_against_brute_force(files):
    model = files["plain"]
    vertices, faces = model.arrays["v_template"], model.faces
    rng = np.random.default_rng(0)
    points = model.landmarks[rng.choice(478, 60, replace=False)] + rng.normal(scale=0.004, size=(60, 3))
    face_index, bary = closest_point_embedding(vertices, faces, points)
    assert np.allclose(bary.sum(1), 1) and bary.min() >= 0
    got = np.linalg.norm(embedded_points(vertices, faces, face_index, bary) - points, axis=1)
    # brute force: dense barycentric sampling of every triangle can only be farther
    grid = np.array([(a, b, 1 - a - b) for a in np.linspace(0, 1, 13) for b in np.linspace(0, 1 - a, 13)])
    samples = np.einsum("gk,fkc->fgc", grid, vertices[faces]).reshape(-1, 3)
    brute, _ = cKDTree(samples).query(points)
    assert (got <= brute + 1e-12).all()
    assert (brute - got).max() < 2e-3  # and the sampling is close, so the comparison has teeth


def test_swapped_eye_joints_are_put_in_flame_order(tmp_path):
    model = write_synthetic_flame(tmp_path / "generic_model.pkl", swap_eyes=True, with_chumpy=False)
    assert model.arrays["J_regressor"].toarray()[3] @ model.arrays["v_template"][:, 0] < 0  # joint 3 is at -x
    data = load_flame(model.path, num_shape=20, num_expression=10)
    assert data.info["eye_joints_swapped"] is True
    joints = data.joint_regressor @ data.template
    np.testing.assert_allclose(joints, model.joints, atol=1e-6)
    assert joints[3, 0] > 0 > joints[4, 0]
    (tmp_path / "ref").mkdir()
    reference = write_synthetic_flame(tmp_path / "ref" / "generic_model.pkl", with_chumpy=False)
    np.testing.assert_allclose(data.skinning_weights, reference.arrays["weights"], atol=1e-7)
    expected_pose_basis = reference.arrays["posedirs"].reshape(-1, 36).T
    np.testing.assert_allclose(data.pose_basis, expected_pose_basis, atol=1e-9)


# --- the model built from the file -------------------------------------------------------------


def test_face_model_from_loaded_data_runs(files, loaded):
    model, data = files["chumpy"], loaded["chumpy"]
    face = FaceModel(data)
    params = face.zero_params(2)
    params.expression[:] = torch.randn(2, 10, generator=torch.Generator().manual_seed(0))
    params.jaw[:, 0] = 0.2
    params.rotation[:, 1] = 0.3
    out = face(params)
    assert out.vertices.shape == (2, len(data.template), 3) and out.landmarks.shape == (2, 478, 3)
    assert torch.isfinite(out.vertices).all() and torch.isfinite(out.landmarks).all()
    rest = face(face.zero_params(1))
    np.testing.assert_allclose(rest.landmarks[0].numpy(), model.landmarks, atol=1e-3)


def test_load_time(files):
    started = time.perf_counter()
    load_flame(files["chumpy"].path, num_shape=20, num_expression=10)
    assert time.perf_counter() - started < 5.0
