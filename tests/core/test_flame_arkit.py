"""FLAME <-> ARKit (core.facemodel.flame_arkit): the map solved from a synthetic FLAME-format file
(never a real FLAME), its cache, ARKit exports of a FLAME take and ARKit curves back to FLAME."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import pytest
import torch

import core.export.rig as rig
from core.cli import main as cli_main
from core.digest import file_sha256
from core.errors import ExportError, FaceModelError, FlameArkitError
from core.export.arkit_csv import HEADER, LLF_NAMES
from core.export.arkit_from_flame import arkit_request
from core.export.base import ExportRequest
from core.export.cli_export import add_export_parser, run_export
from core.export.from_arkit import read_live_link_csv
from core.export.options import with_options
from core.export.registry import get_exporter
from core.facemodel import FaceModel, FaceParams
from core.facemodel import flame_arkit as fa
from core.facemodel.flame import load_flame
from core.facemodel.open_model import ARKIT_NAMES
from core.fit.params import FitParams
from tests.synthetic_flame import write_synthetic_embedding, write_synthetic_flame

E = 10


@pytest.fixture(scope="module")
def flame(tmp_path_factory):
    """(path, FaceModelData, cache folder, map): the synthetic FLAME file and its map, solved once."""
    root = tmp_path_factory.mktemp("flame_arkit")
    path = root / "model" / "generic_model.pkl"
    path.parent.mkdir()
    write_synthetic_flame(path, num_shape=20, num_expression=E)
    data = load_flame(path, num_shape=20, num_expression=E)
    cache = root / "cache" / "flame_arkit"
    amap = fa.load_or_solve(path, num_expression=E, flame_data=data, cache_dir=cache)
    return path, data, cache, amap


def landmarks(data, expression: np.ndarray, jaw: np.ndarray) -> np.ndarray:
    """FLAME's landmarks through the face model itself (identity 0), metres."""
    model = FaceModel(data).double()
    n = len(expression)
    params = FaceParams.zeros(n, data.num_shape, data.num_expression)
    params = FaceParams(**{k: v.double() for k, v in vars(params).items()})
    params.expression, params.jaw = torch.as_tensor(expression), torch.as_tensor(jaw)
    with torch.no_grad():
        return model(params).landmarks.numpy()


def test_round_trip_on_held_out_expressions(flame):
    """Fresh FLAME expressions and jaw poses (not the solver's samples) come back close: the round
    trip keeps most of the motion (the synthetic model's random expression fields are partly
    outside what 52 ARKit shapes can show, so not all of it), and the table reports the same."""
    _, data, _, amap = flame
    rng = np.random.default_rng(123)
    n = 60
    expression = np.where(rng.random((n, E)) < 0.3, np.clip(rng.normal(0, 1, (n, E)), -2, 2), 0.0)
    jaw = np.zeros((n, 3))
    jaw[:, 0] = rng.uniform(0, np.radians(22), n)
    back_e, back_j = amap.to_flame(amap.to_arkit(expression, jaw))
    neutral = landmarks(data, np.zeros((1, E)), np.zeros((1, 3)))
    truth = landmarks(data, expression, jaw)
    error = np.linalg.norm(landmarks(data, back_e, back_j) - truth, axis=-1)
    motion = np.linalg.norm(truth - neutral, axis=-1)
    eye = np.linalg.norm(neutral[0, 33] - neutral[0, 263])
    print(f"round trip mean {error.mean() * 1e3:.2f} mm ({error.mean() / eye:.1%} of eye distance), "
          f"p95 {np.percentile(error, 95) * 1e3:.2f} mm; motion {motion.mean() * 1e3:.2f} mm")
    assert error.mean() < 0.5 * motion.mean()
    assert error.mean() / eye < 0.02
    h = amap.heldout
    assert h.samples == fa.MapSettings().heldout_samples
    assert h.round_trip_mean_mm < 0.5 * h.motion_mean_mm and h.round_trip_p95_mm >= h.round_trip_mean_mm
    assert h.to_arkit_mean_mm <= 1.1 * h.to_arkit_best_mean_mm + 0.05  # the map is nearly the best fit
    assert abs(h.eye_distance_mm - eye * 1e3) < 1e-6
    assert "round trip FLAME->ARKit->FLAME" in h.table()


def test_jaw_open_maps_to_jaw_open_and_back(flame):
    _, _, _, amap = flame
    names = list(ARKIT_NAMES)
    jaw = np.array([[0.0, 0.0, 0.0], [np.radians(20), 0.0, 0.0]])
    weights = amap.to_arkit(np.zeros((2, E)), jaw)
    assert weights.shape == (2, 52) and weights.min() >= 0 and weights.max() <= 1
    assert (weights[0] == 0).all()  # neutral stays neutral
    assert weights[1, names.index("jawOpen")] > 0.6
    assert weights[1].argmax() == names.index("jawOpen")
    expression, jaw_back = amap.to_flame(np.eye(52)[[names.index("jawOpen")]])
    assert expression.shape == (1, E) and jaw_back[0, 0] > np.radians(15)
    nan = amap.to_arkit(np.full((1, E), np.nan), np.full((1, 3), np.nan))
    assert np.isnan(nan).all()  # a frame without a face stays a gap


def test_cache_hit_is_identical_and_keys_follow_the_file(flame, tmp_path, monkeypatch):
    path, data, cache, amap = flame
    assert amap.flame_sha256 == file_sha256(path)
    assert [p.name for p in cache.iterdir()] == [f"{amap.key}.npz"]

    def no_solve(*args, **kwargs):
        raise AssertionError("solved again instead of reading the cache")

    monkeypatch.setattr(fa, "solve_map", no_solve)
    again = fa.load_or_solve(path, num_expression=E, flame_data=data, cache_dir=cache)
    np.testing.assert_array_equal(again.to_arkit_matrix, amap.to_arkit_matrix)
    np.testing.assert_array_equal(again.to_flame_matrix, amap.to_flame_matrix)
    assert again.heldout == amap.heldout and again.key == amap.key
    other = tmp_path / "other" / "generic_model.pkl"
    other.parent.mkdir()
    write_synthetic_flame(other, num_shape=20, num_expression=E, seed=1)
    other_data = load_flame(other, num_shape=20, num_expression=E)
    other_key = fa.map_key(file_sha256(other), other_data, fa.MapSettings())
    assert other_key != amap.key and other_key.split("-")[0] != amap.key.split("-")[0]
    assert fa.map_key(amap.flame_sha256, data, fa.MapSettings(seed=1)) != amap.key
    monkeypatch.setenv(fa.CACHE_ENV, str(tmp_path / "c"))
    assert fa.cache_folder() == tmp_path / "c" / "flame_arkit"


def test_flame_with_its_own_105_point_embedding(tmp_path):
    """FLAME's mediapipe_landmark_embedding.npz (105 points, no eye corners among them): the map
    uses those points and the eye distance comes from the open model brought into FLAME's units."""
    from core.facemodel.open_model import load_open_model

    model = write_synthetic_flame(tmp_path / "generic_model.pkl", num_shape=20, num_expression=E)
    write_synthetic_embedding(tmp_path / "mediapipe_landmark_embedding.npz", model)
    data = load_flame(model.path, num_shape=1, num_expression=E)
    assert len(data.landmark_ids) == 105 and 33 not in data.landmark_ids
    amap = fa.solve_map(data, load_open_model(),
                        settings=fa.MapSettings(train_samples=200, reverse_samples=100, heldout_samples=40))
    assert abs(amap.heldout.eye_distance_mm - 95.0) < 2.0  # the synthetic face's eye-corner distance
    # the synthetic FLAME's expressions are random smooth fields on the lower face, which the 52 ARKit
    # shapes express only in part (on these 105 points their best bounded fit leaves about 0.7 of
    # the motion): the map must lose nothing beyond what the shapes cannot express
    heldout = amap.heldout
    assert heldout.round_trip_mean_mm < min(heldout.to_arkit_best_mean_mm, 0.7 * heldout.motion_mean_mm)
    assert amap.to_arkit(np.zeros((1, E)), np.array([[np.radians(20), 0, 0]]))[0, 17] > 0.6  # jawOpen


def test_wrong_files_and_shapes_are_named_errors(flame, tmp_path):
    _, _, _, amap = flame
    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(FaceModelError, match="flame.is.tue.mpg.de"):
        fa.load_or_solve(bad, num_expression=E, cache_dir=tmp_path / "cache")
    with pytest.raises(FlameArkitError, match="solved for 10 FLAME expression components, not 50"):
        amap.to_arkit(np.zeros((1, 50)), np.zeros((1, 3)))
    with pytest.raises(FlameArkitError, match="N x 52"):
        amap.to_flame(np.zeros((1, 51)))


# --- exports of a FLAME take -------------------------------------------------------------------------


@pytest.fixture
def flame_request(flame, tmp_path, monkeypatch) -> ExportRequest:
    """A FLAME take's export request (40 frames, jaw opening and closing, one frame without a face),
    its map in the test's cache; the frame size a take folder would give is patched in."""
    path, _, cache, _ = flame
    monkeypatch.setenv(fa.CACHE_ENV, str(cache.parent))
    monkeypatch.setattr(rig, "image_centre", lambda req: (320.0, 240.0))
    n = 40
    t = np.linspace(0, 1, n)[:, None]
    rng = np.random.default_rng(0)
    has_face = np.ones(n, bool)
    has_face[7] = False
    jaw = (np.radians(20) * np.abs(np.sin(3 * t)) * [1, 0, 0]).astype(np.float32)
    expression = (0.8 * np.sin(2 * np.pi * (t + rng.uniform(0, 1, E)))).astype(np.float32)
    camera = np.tile(np.array([np.log(3000.0), 320.0, 240.0, 0.0], np.float32), (n, 1))
    fit = FitParams(identity=rng.normal(0, 1, 20).astype(np.float32), frame_index=np.arange(n), has_face=has_face,
                    expression=expression, rotation=(0.1 * np.sin(2 * t) * [0, 1, 0]).astype(np.float32),
                    neck=np.zeros((n, 3), np.float32), jaw=jaw, eyes=np.zeros((n, 6), np.float32), camera=camera,
                    residual=np.zeros(n, np.float32))
    for name in ("expression", "rotation", "neck", "jaw", "eyes", "camera"):
        getattr(fit, name)[~has_face] = np.nan
    fps = 30.0
    return ExportRequest(take_dir=tmp_path / "take", format="arkit_csv", out=tmp_path / "a.csv", start=0, stop=n,
                         fit=fit, fps=fps, frame_index=np.arange(n), timestamps=np.arange(n) / fps, model="flame",
                         model_settings={"model": "flame", "flame_path": str(path), "num_shape": 20,
                                         "num_expression": E},
                         expression_names=[f"exp{i:03d}" for i in range(E)])


def test_flame_take_exports_live_link_csv_with_arkit_columns(flame_request, flame, tmp_path):
    req = with_options(flame_request, curves="arkit")
    assert req.model == "open" and req.expression_names == list(ARKIT_NAMES)
    get_exporter("arkit_csv")(req)
    with open(req.out, newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == HEADER and len(rows) == 41
    columns = rows[0][2:54]
    assert columns == list(LLF_NAMES) and len(columns) == 52
    assert rows[8][2:54] == [""] * 52  # frame 7 has no face: a gap
    values = np.array([[float(x) for x in r[2:54]] for i, r in enumerate(rows[1:]) if i != 7])
    assert values.min() >= 0 and values.max() <= 1
    jaw_open = values[:, list(ARKIT_NAMES).index("jawOpen")]
    opening = np.delete(flame_request.fit.jaw[:, 0], 7)
    assert np.corrcoef(jaw_open, opening)[0, 1] > 0.95
    # ... and back to FLAME: the CSV through the reverse map, by the command line
    out = tmp_path / "back.npz"
    assert cli_main(["convert", "--from-arkit", str(req.out), "--flame", flame_request.model_settings["flame_path"],
                     "--out", str(out), "--expression-components", str(E)]) == 0
    with np.load(out) as back:
        assert back["expression"].shape == (40, E) and back["jaw"].shape == (40, 3)
        assert not back["has_face"][7] and np.isnan(back["expression"][7]).all() and back["has_face"].sum() == 39
        assert str(back["flame_sha256"]) == flame[3].flame_sha256
        assert np.corrcoef(np.delete(back["jaw"][:, 0], 7), opening)[0, 1] > 0.95
        assert list(back["timecode"][:2]) == [rows[1][0], rows[2][0]]


def test_flame_take_exports_gltf_with_arkit_shape_keys(flame_request, tmp_path):
    import pygltflib

    req = with_options(ExportRequest(**{**vars(flame_request), "format": "gltf", "out": tmp_path / "f.glb"}),
                       curves="arkit")
    get_exporter("gltf")(req)
    gltf = pygltflib.GLTF2().load(str(req.out))
    mesh = gltf.meshes[0]
    assert mesh.extras["targetNames"] == list(ARKIT_NAMES)
    assert len(mesh.primitives[0].targets) == 52
    positions = gltf.accessors[mesh.primitives[0].attributes.POSITION]
    assert positions.count == 478  # the open model's mesh


def test_curves_option_is_checked_and_wired(flame_request, tmp_path, monkeypatch):
    with pytest.raises(ExportError, match="--curves must be one of model, arkit"):
        with_options(flame_request, curves="blendshapes")
    open_req = ExportRequest(**{**vars(flame_request), "model": "open", "expression_names": list(ARKIT_NAMES)})
    assert arkit_request(open_req) is open_req  # an open-model take has ARKit curves already
    no_file = ExportRequest(**{**vars(flame_request), "model_settings": {"model": "flame"}})
    with pytest.raises(FlameArkitError, match="FLAME file"):
        arkit_request(no_file)
    seen = {}

    def fake_export(*args, **kwargs):
        seen.update(kwargs)
        raise ExportError("stop here")

    import core.export

    monkeypatch.setattr(core.export, "export", fake_export)
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(ExportError, match="stop here"):
        run_export(parser.parse_args(["export", "TAKE", "--format", "arkit_csv", "--out", "a.csv", "--curves", "arkit"]))
    assert seen["curves"] == "arkit"


def test_live_link_reader_names_missing_columns(tmp_path, flame):
    path = tmp_path / "bad.csv"
    path.write_text("Timecode,BlendShapeCount,EyeBlinkLeft\n00:00:00:00.000,61,0.5\n")
    with pytest.raises(FlameArkitError, match="51 ARKit columns missing"):
        read_live_link_csv(path)
    assert cli_main(["convert", "--from-arkit", str(path), "--flame", str(flame[0]), "--out",
                     str(tmp_path / "x.npz")]) != 0
    good = tmp_path / "good.csv"
    good.write_text(",".join(["Timecode", *[n[0].lower() + n[1:] for n in LLF_NAMES]]) + "\n"
                    + ",".join(["t0", *["0.25"] * 52]) + "\n")
    curves = read_live_link_csv(good)  # ARKit's own spelling is accepted
    assert curves.timecode == ("t0",) and (curves.weights == 0.25).all()
    assert not Path(tmp_path / "x.npz").exists()


def test_flame_take_exports_fbx_with_arkit_shape_keys(flame_request, tmp_path):
    """Read back by ufbx (an independent reader, in a subprocess as the scene tests do)."""
    from tests.core.test_export_scene import run_reader

    req = with_options(ExportRequest(**{**vars(flame_request), "format": "fbx", "out": tmp_path / "f.fbx"}),
                       curves="arkit")
    get_exporter("fbx")(req)
    d = run_reader("ufbx_readback.py", [req.out], [0, 20])
    assert list(d["channel_names"]) == list(ARKIT_NAMES)
    jaw_open = list(ARKIT_NAMES).index("jawOpen")
    np.testing.assert_allclose(d["weights"][:, jaw_open], req.fit.expression[[0, 20], jaw_open], atol=1e-3)
    assert d["vertices"].shape[1] == 478
