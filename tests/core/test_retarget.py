"""Retarget maps (core.export.retarget): the YAML format and its errors, the arithmetic, the presets,
and every export format applying a map (read back by independent readers; an FBX driving a test
rig's differently named shape keys in Blender)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ExportError, RetargetMapError
from core.export import export, import_curves, prepare_export
from core.export.retarget import load_map, presets
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES

HERE = Path(__file__).resolve().parent
CUSTOM = "custom_rig_example"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "map.yaml"
    path.write_text(text)
    return path


# --- the format ------------------------------------------------------------------------------------


def test_rename_gain_offset_clamp_and_combination(tmp_path):
    rmap = load_map(write(tmp_path, """\
emocap_retarget: 1
channels:
  Jaw: a
  Loud: {source: b, gain: 2, offset: 0.1, clamp: [0, 1]}
  Mix:
    sources: {a: 0.5, c: 0.5}
  Low: {source: c, clamp: [null, 0.2]}
"""))
    bound = rmap.bind(["a", "b", "c", "d"])
    assert bound.targets == ("Jaw", "Loud", "Mix", "Low")
    src = np.array([[0.2, 0.3, 0.6, 0.9], [0.0, 0.6, 0.1, 0.0], [np.nan] * 4], np.float32)
    got = bound.curves(src)
    np.testing.assert_allclose(got[0], [0.2, 0.7, 0.4, 0.2], atol=1e-6)
    np.testing.assert_allclose(got[1], [0.0, 1.0, 0.05, 0.1], atol=1e-6)  # 2*0.6+0.1 clamped to 1
    assert np.isnan(got[2]).all()  # a gap stays a gap
    # the preview shapes: a rename keeps its source's shape, a mix holds the smallest mix giving 1
    deltas = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    shapes = bound.shape_deltas(deltas)
    np.testing.assert_allclose(shapes[0], deltas[0])
    np.testing.assert_allclose(shapes[2], deltas[0] + deltas[2])  # (0.5, 0.5) / 0.5
    np.testing.assert_allclose(bound.curves(bound.model_weights(np.array([[0, 0, 1, 0]])))[0, 2], 1.0, atol=1e-6)


def test_one_source_drives_several_targets_and_unmapped_keep(tmp_path):
    rmap = load_map(write(tmp_path, "emocap_retarget: 1\nunmapped: keep\nchannels:\n  X: a\n  Y: {source: a, gain: 0.5}\n"))
    bound = rmap.bind(["a", "b"])
    assert bound.targets == ("X", "Y", "b")
    np.testing.assert_allclose(bound.curves(np.array([[0.8, 0.3]])), [[0.8, 0.4, 0.3]], atol=1e-6)


@pytest.mark.parametrize("text, message", [
    ("emocap_retarget: 1\nchannels:\n  A: a\n  B: nosuch\n", r"map\.yaml, line 4: channel 'B' reads the unknown source curve 'nosuch'"),
    ("emocap_retarget: 1\nchannels:\n  A:\n    source: a\n    gain: loud\n", r"line 5: 'A\.gain' must be a finite number, not 'loud'"),
    ("emocap_retarget: 1\nchannels:\n  A: {sources: {a: .nan}}\n", r"line 3: 'A\.sources\.a' must be a finite number"),
    ("emocap_retarget: 1\nchannels:\n  A: [a\n  B: b\n", r"map\.yaml, line \d+: not valid YAML"),
    ("emocap_retarget: 1\nchannels:\n  A: {source: a, gian: 2}\n", r"line 3: channel 'A' has an unknown key 'gian'"),
    ("emocap_retarget: 1\nchannels:\n  A: {source: a, clamp: [1, 0]}\n", r"line 3: 'A\.clamp' low 1 is above high 0"),
    ("emocap_retarget: 1\nchannels:\n  A: {source: a, sources: {b: 1}}\n", r"line 3: channel 'A' needs exactly one"),
    ("emocap_retarget: 2\nchannels: {A: a}\n", r"line 1: format version 2 is not supported"),
    ("channels: {A: a}\n", r"missing 'emocap_retarget: 1'"),
    ("emocap_retarget: 1\nchanels: {A: a}\n", r"line 2: unknown key 'chanels'"),
    ("emocap_retarget: 1\nchannels:\n  A: a\n  A: b\n", r"line 4: 'A' appears twice"),
    ("", r"the file is empty"),
])
def test_errors_name_the_line_and_key(tmp_path, text, message):
    with pytest.raises(RetargetMapError, match=message):
        load_map(write(tmp_path, text)).bind(["a", "b"])


def test_missing_file_is_a_named_error(tmp_path):
    with pytest.raises(RetargetMapError, match="cannot read the retarget map"):
        load_map(tmp_path / "none.yaml")
    with pytest.raises(RetargetMapError, match=r"no retarget map 'arkit': not a file, and not a preset \(arkit_identity"):
        load_map("arkit")


def test_presets():
    assert {"arkit_identity", "flame_blender_addon", CUSTOM} <= set(presets())
    identity = load_map("arkit_identity").bind(ARKIT_NAMES)
    assert identity.targets == tuple(ARKIT_NAMES)
    np.testing.assert_array_equal(identity.matrix, np.eye(52))
    flame = load_map("flame_blender_addon").bind([f"exp{i:03d}" for i in range(10)])  # fewer components: skipped
    assert flame.targets == tuple(f"Exp{i:03d}" for i in range(10))
    custom = load_map(CUSTOM).bind(ARKIT_NAMES)
    assert {"Blink", "JawDrop", "TeethApart"} <= set(custom.targets)
    with pytest.raises(RetargetMapError, match="unknown source curve 'jawOpen'"):  # an ARKit map on a FLAME take
        load_map(CUSTOM).bind([f"exp{i:03d}" for i in range(10)])


# --- through the exports ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def take(wolfgang_take) -> Path:
    return wolfgang_take[1]


@pytest.fixture(scope="module")
def mapped(take):
    """(raw ARKit curves, the custom map bound) of the whole take."""
    raw = prepare_export(take, "curves_npz", "unused.npz").fit.expression
    return raw, load_map(CUSTOM).bind(ARKIT_NAMES)


@pytest.mark.parametrize("fmt, suffix", [("curves_npz", "npz"), ("curves_json", "json"), ("curves_csv", "csv")])
def test_curve_files_carry_the_target_channels(take, mapped, tmp_path, fmt, suffix):
    raw, bound = mapped
    out = export(take, fmt, tmp_path / f"c.{suffix}", retarget=CUSTOM).paths[0]
    got = import_curves(out)
    assert list(got["expression_names"]) == list(bound.targets)
    i, j = bound.targets.index("Blink"), bound.targets.index("Smile_L")
    blink = 0.5 * raw[:, ARKIT_NAMES.index("eyeBlinkLeft")] + 0.5 * raw[:, ARKIT_NAMES.index("eyeBlinkRight")]
    np.testing.assert_allclose(got["expression"][:, i], np.clip(blink, 0, 1), atol=1e-6)
    smile = np.clip(1.25 * raw[:, ARKIT_NAMES.index("mouthSmileLeft")], 0, 1)
    np.testing.assert_allclose(got["expression"][:, j], smile, atol=1e-6)
    assert (smile == 1.0).any()  # the clamp is reached on this take (a strong smile)


def test_live_link_csv_needs_arkit_targets(take, tmp_path):
    out = export(take, "arkit_csv", tmp_path / "a.csv", retarget="arkit_identity").paths[0]
    assert out.read_text().splitlines()[0].startswith("Timecode,BlendShapeCount,EyeBlinkLeft")
    with pytest.raises(ExportError, match="52 ARKit columns; the retarget map 'Custom rig example' gives 11"):
        export(take, "arkit_csv", tmp_path / "b.csv", retarget=CUSTOM)
    assert not (tmp_path / "b.csv").exists()


def test_identity_map_changes_nothing_in_a_scene(take, tmp_path):
    from tests.core.test_export_scene import read_gltf

    plain = read_gltf(export(take, "gltf", tmp_path / "a.glb", (0, 20)).paths[0],
                      prepare_export(take, "gltf", tmp_path / "a.glb", (0, 20)), (0, 7, 19))
    out = export(take, "gltf", tmp_path / "b.glb", (0, 20), retarget="arkit_identity").paths[0]
    same = read_gltf(out, prepare_export(take, "gltf", out, (0, 20)), (0, 7, 19))
    assert same["names"] == plain["names"] == list(ARKIT_NAMES)
    np.testing.assert_array_equal(same["vertices"], plain["vertices"])


def test_mesh_formats_show_the_preview(take, mapped, tmp_path):
    """glTF (shape keys named as the targets, keyed with the mapped values) and the Alembic cache
    both show neutral + sum(value_t * preview shape_t): the same mesh."""
    from alembic3d.Abc import IArchive, ISampleSelector
    from alembic3d.AbcGeom import IPolyMesh

    from tests.core.test_export_scene import read_gltf

    raw, bound = mapped
    frames = (0, 120, 300)
    glb = export(take, "gltf", tmp_path / "m.glb", retarget=CUSTOM).paths[0]
    req = prepare_export(take, "gltf", glb, retarget=CUSTOM)
    got = read_gltf(glb, req, frames)
    assert got["names"] == list(bound.targets)
    np.testing.assert_allclose(got["weights"], bound.curves(raw)[list(frames)], atol=1e-6)
    abc = export(take, "abc", tmp_path / "m.abc", retarget=CUSTOM).paths[0]
    schema = IPolyMesh(IArchive(str(abc)).getTop(), "EmoCapFace").getSchema()
    sampling = schema.getTimeSampling()
    cache = np.array([np.array(schema.getValue(ISampleSelector(sampling.getSampleTime(f))).getPositions()) for f in frames])
    np.testing.assert_allclose(cache, got["vertices"], atol=2e-6)
    # and the preview is not the analysed face (the map has gains, clamps, a mix and a shared source)
    plain = read_gltf(export(take, "gltf", tmp_path / "p.glb").paths[0], req, frames)
    assert np.abs(plain["vertices"] - got["vertices"]).max() > 1e-4


def test_fbx_drives_a_test_rig_with_other_names_in_blender(take, mapped, tmp_path):
    """The FBX exported with the custom map, imported in Blender, drives a rig whose shape keys
    carry the map's names (in another order, beside a key the map does not name)."""
    raw, bound = mapped
    out = export(take, "fbx", tmp_path / "rig.fbx", retarget=CUSTOM).paths[0]
    req = prepare_export(take, "fbx", out)
    frames = [0, 37, 200, 471]
    names = ["Sneer", "Blink", "Unrelated", "JawDrop", "Smile_L", "TeethApart"]
    read = tmp_path / "rig.npz"
    proc = subprocess.run([sys.executable, "-P", str(HERE / "blender_retarget_rig.py"), str(out), str(read), repr(req.fps),
                           ",".join(names), *[str(req.frame_index[f]) for f in frames]], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    d = dict(np.load(read))
    assert list(d["imported_names"]) == list(bound.targets)
    assert list(d["driven"]) == [n != "Unrelated" for n in names]
    expected = bound.curves(raw)[frames]
    for k, name in enumerate(names):
        if name == "Unrelated":
            np.testing.assert_allclose(d["weights"][:, k], 0.25)  # not driven: keeps its value
        else:
            np.testing.assert_allclose(d["weights"][:, k], expected[:, bound.targets.index(name)], atol=1e-4)
    assert np.ptp(d["weights"][:, names.index("Blink")]) > 0.1  # the key really moves


def test_flame_take_onto_the_flame_addon_names(take, tmp_path):
    """FLAME curves exp000.. become the add-on's Exp000.. shape keys (a rename: the mesh is exact)."""
    from dataclasses import replace

    from core.export.options import with_options
    from core.export.registry import get_exporter
    from tests.core.test_export_scene import read_gltf
    from tests.synthetic_flame import write_synthetic_flame

    path = tmp_path / "generic_model.pkl"
    write_synthetic_flame(path, num_shape=20, num_expression=10)
    req = prepare_export(take, "gltf", tmp_path / "f.glb", (100, 110))
    rng = np.random.default_rng(1)
    fit = replace(req.fit, identity=rng.normal(0, 1, 20).astype(np.float32),
                  expression=rng.normal(0, 1, (10, 10)).astype(np.float32), jaw=np.zeros((10, 3), np.float32))
    req = replace(req, fit=fit, model="flame", expression_names=[f"exp{i:03d}" for i in range(10)],
                  model_settings={"model": "flame", "flame_path": str(path), "num_shape": 20, "num_expression": 10})
    get_exporter("gltf")(req)
    plain = read_gltf(req.out, req, (0, 5))
    named = with_options(replace(req, out=tmp_path / "g.glb"), retarget="flame_blender_addon")
    get_exporter("gltf")(named)
    got = read_gltf(named.out, named, (0, 5))
    assert got["names"] == [f"Exp{i:03d}" for i in range(10)]
    np.testing.assert_allclose(got["vertices"], plain["vertices"], atol=1e-6)


def test_cli_retarget_errors_exit_2(take, tmp_path):
    from tests.conftest import run_cli

    bad = write(tmp_path, "emocap_retarget: 1\nchannels:\n  Blink: eyeBlinkLeftt\n")
    proc = run_cli("export", str(take), "--format", "curves_json", "--out", str(tmp_path / "x.json"), "--retarget", str(bad))
    assert proc.returncode == 2 and "line 3: channel 'Blink' reads the unknown source curve 'eyeBlinkLeftt'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x.json").exists()
    ok = run_cli("export", str(take), "--format", "curves_json", "--out", str(tmp_path / "y.json"), "--retarget", CUSTOM)
    assert ok.returncode == 0, ok.stderr
    assert "Blink" in list(import_curves(tmp_path / "y.json")["expression_names"])


def test_identity_preset_keeps_the_model_shapes():
    """The map's preview shapes are built from the model's own deltas: a rename reproduces them."""
    model = load_face_model(ModelChoice())
    deltas = model.expression_basis.permute(2, 0, 1).numpy()
    bound = load_map("arkit_identity").bind(model.expression_names)
    np.testing.assert_array_equal(bound.shape_deltas(deltas), deltas)
