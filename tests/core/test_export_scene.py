"""Scene exports (fbx, gltf, usd, abc): each read back by an independent reader (ufbx, pygltflib,
pxr, alembic) and by Blender's own importer (subprocess), checked against the face model."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import ExportError
from core.export import export, formats, prepare_export
from core.export.base import HOLD_POLICY
from core.export.cli_export import add_export_parser, run_export
from core.export.registry import get_exporter
from core.export.rig import axis_angle_to_quaternion, head_translation
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES
from core.facemodel.types import JOINT_NAMES
from core.fit.params import FitParams
from core.take.store import Take
from tests.conftest import refuse_writes_in
from tests.synthetic_flame import write_synthetic_flame

HERE = Path(__file__).resolve().parent
SCENE_FORMATS = {"fbx": "fbx", "gltf": "glb", "usd": "usdc", "abc": "abc"}
SAMPLES = (0, 1, 237, 471)  # export rows sampled on the 472-frame take


def run_reader(script: str, before: list, after: list) -> dict[str, np.ndarray]:
    """Run ``script BEFORE... OUT.npz AFTER...`` (a reader in tests/core) in a fresh interpreter;
    its npz output as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "read.npz"
        args = [*map(str, before), str(out), *map(str, after)]
        proc = subprocess.run([sys.executable, "-P", str(HERE / script), *args], capture_output=True, text=True,
                              timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert proc.returncode == 0, proc.stderr[-2000:]
        with np.load(out) as data:
            return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def take(wolfgang_take) -> Path:
    return wolfgang_take[1]


@pytest.fixture(scope="module")
def exports(take, tmp_path_factory) -> dict[str, Path]:
    """Every scene format of the whole take, written once."""
    folder = tmp_path_factory.mktemp("scene")
    return {fmt: export(take, fmt, folder / f"face.{suffix}").paths[0] for fmt, suffix in SCENE_FORMATS.items()}


def held(has_face: np.ndarray) -> np.ndarray:
    """The row each frame shows under the hold policy, written out independently of the exporter."""
    rows, last = [], int(np.nonzero(has_face)[0][0])
    for i, f in enumerate(has_face):
        last = i if f else last
        rows.append(last)
    return np.array(rows)


def expected(req, frames, *, correctives: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(weights K x E, vertices K x V x 3) the model gives the export rows ``frames``."""
    model = load_face_model(ModelChoice.from_settings(req.model_settings))
    if not correctives:
        model.pose_basis.zero_()
    rows = held(req.fit.has_face)
    video = Take.open(req.take_dir).manifest.video
    translation = head_translation(req.fit.camera[rows], (video.width / 2, video.height / 2))
    params = req.fit.to_face_params(rows[np.asarray(frames)])
    params.translation = torch.as_tensor(translation[np.asarray(frames)], dtype=torch.float32)
    with torch.no_grad():
        vertices = model(params).vertices.numpy()
    return req.fit.expression[rows[np.asarray(frames)]], vertices


# --- independent readers -------------------------------------------------------------------------------


def read_fbx(path: Path, req, frames) -> dict:
    d = run_reader("ufbx_readback.py", [path], [req.frame_index[f] for f in frames])
    assert abs(d["fps"] - req.fps) < 1e-9 and d["unit_meters"] == 1.0
    assert d["up_axis"] == 2  # ufbx CoordinateAxis.POSITIVE_Y
    assert list(d["bone_names"]) == list(JOINT_NAMES)
    assert (d["key_counts"] == req.num_frames).all()
    np.testing.assert_allclose(d["key_times"], req.timestamps, atol=1e-6)
    return {"names": list(d["channel_names"]), "weights": d["weights"], "vertices": d["vertices"]}


def _accessor(gltf, blob: bytes, index: int) -> np.ndarray:
    a = gltf.accessors[index]
    view = gltf.bufferViews[a.bufferView]
    dtype = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}[a.componentType]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[a.type]
    start = (view.byteOffset or 0) + (a.byteOffset or 0)
    return np.frombuffer(blob, dtype, a.count * width, start).reshape(a.count, width)


def _quat_matrix(q) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def read_gltf(path: Path, req, frames) -> dict:
    """Evaluate the .glb as the glTF 2.0 spec says (morph targets, then skinning) at key ``frames``."""
    import pygltflib

    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    mesh_node = next(i for i, n in enumerate(gltf.nodes) if n.mesh is not None)
    prim = gltf.meshes[gltf.nodes[mesh_node].mesh].primitives[0]
    base = _accessor(gltf, blob, prim.attributes.POSITION).astype(np.float64)
    targets = np.stack([_accessor(gltf, blob, t["POSITION"]) for t in prim.targets]).astype(np.float64)
    joints, weights = _accessor(gltf, blob, prim.attributes.JOINTS_0), _accessor(gltf, blob, prim.attributes.WEIGHTS_0)
    skin = gltf.skins[gltf.nodes[mesh_node].skin]
    ibm = _accessor(gltf, blob, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    parents = {c: i for i, n in enumerate(gltf.nodes) for c in n.children or []}
    animation = gltf.animations[0]
    times = None
    out_w, out_v = [], []
    for f in frames:
        local = {i: (np.array(n.translation or [0, 0, 0], float), np.array(n.rotation or [0, 0, 0, 1], float))
                 for i, n in enumerate(gltf.nodes)}
        w = None
        for ch in animation.channels:
            sampler = animation.samplers[ch.sampler]
            times = _accessor(gltf, blob, sampler.input)[:, 0]
            values = _accessor(gltf, blob, sampler.output)
            t, r = local[ch.target.node]
            if ch.target.path == "weights":
                w = values.reshape(len(times), -1)[f].astype(np.float64)
            elif ch.target.path == "rotation":
                local[ch.target.node] = (t, values[f].astype(np.float64))
            elif ch.target.path == "translation":
                local[ch.target.node] = (values[f].astype(np.float64), r)

        def world(i):
            m = np.eye(4)
            m[:3, :3], m[:3, 3] = _quat_matrix(local[i][1]), local[i][0]
            return world(parents[i]) @ m if i in parents else m

        mats = np.stack([world(j) @ ibm[k] for k, j in enumerate(skin.joints)])
        rest = base + np.einsum("e,evc->vc", w, targets)
        blended = np.einsum("vk,vkrc->vrc", weights.astype(np.float64), mats[joints.astype(np.int64)])
        out_v.append(np.einsum("vrc,vc->vr", blended[:, :3, :3], rest) + blended[:, :3, 3])
        out_w.append(w)
    np.testing.assert_allclose(times, req.timestamps, atol=1e-5)
    return {"names": list(gltf.meshes[0].extras["targetNames"]), "weights": np.array(out_w), "vertices": np.array(out_v)}


def read_usd(path: Path, req, frames) -> dict:
    """Posed points computed by pxr's own UsdSkel (blend shapes, then skinning)."""
    from pxr import Usd, UsdGeom, UsdSkel, Vt

    stage = Usd.Stage.Open(str(path))
    assert stage.GetTimeCodesPerSecond() == pytest.approx(req.fps, abs=1e-9)
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    cache = UsdSkel.Cache()
    cache.Populate(UsdSkel.Root(stage.GetDefaultPrim()), Usd.PrimDefaultPredicate)
    mesh = next(p for p in stage.Traverse() if p.IsA(UsdGeom.Mesh))
    binding = UsdSkel.BindingAPI(mesh)
    skinning = cache.GetSkinningQuery(mesh)
    skel = cache.GetSkelQuery(binding.GetInheritedSkeleton())
    shapes = UsdSkel.BlendShapeQuery(binding)
    anim = skel.GetAnimQuery()
    weights_attr = UsdSkel.Animation(anim.GetPrim()).GetBlendShapeWeightsAttr()
    assert weights_attr.GetTimeSamples() == [float(f) for f in req.frame_index]
    out_w, out_v = [], []
    for f in frames:
        time_code = Usd.TimeCode(float(req.frame_index[f]))
        w = anim.ComputeBlendShapeWeights(time_code)
        sub_w, shape_idx, sub_idx = shapes.ComputeSubShapeWeights(skinning.GetBlendShapeMapper().Remap(w))
        points = Vt.Vec3fArray(UsdGeom.Mesh(mesh).GetPointsAttr().Get(time_code))
        shapes.ComputeDeformedPoints(sub_w, shape_idx, sub_idx, shapes.ComputeBlendShapePointIndices(),
                                     shapes.ComputeSubShapePointOffsets(), points)
        assert skinning.ComputeSkinnedPoints(skel.ComputeSkinningTransforms(time_code), points, time_code)
        out_w.append(np.array(w))
        out_v.append(np.array(points))
    return {"names": list(anim.GetBlendShapeOrder()), "weights": np.array(out_w), "vertices": np.array(out_v)}


def read_abc(path: Path, req, frames) -> dict:
    from alembic3d.Abc import IArchive, ISampleSelector
    from alembic3d.AbcGeom import IPolyMesh

    archive = IArchive(str(path))
    schema = IPolyMesh(archive.getTop(), "EmoCapFace").getSchema()
    sampling = schema.getTimeSampling()
    assert schema.getNumSamples() == req.num_frames
    assert sampling.getTimeSamplingType().getTimePerCycle() == pytest.approx(1 / req.fps, abs=1e-12)
    out_v = []
    for f in frames:
        t = sampling.getSampleTime(f)
        assert t == pytest.approx(req.timestamps[f], abs=1e-9)
        sample = schema.getValue(ISampleSelector(t))
        out_v.append(np.array(sample.getPositions()))
    faces = np.array(sample.getFaceIndices()).reshape(-1, 3)
    return {"names": None, "weights": None, "vertices": np.array(out_v), "faces": faces}


READERS = {"fbx": read_fbx, "gltf": read_gltf, "usd": read_usd, "abc": read_abc}


def check(got: dict, req, frames, names, *, correctives: bool = True) -> None:
    weights, vertices = expected(req, frames, correctives=correctives)
    if got["weights"] is not None:
        assert got["names"] == list(names)
        np.testing.assert_allclose(got["weights"], weights, atol=1e-4)
    np.testing.assert_allclose(got["vertices"], vertices, atol=1e-5)


# --- tests -------------------------------------------------------------------------------------------


def test_scene_formats_registered():
    assert set(SCENE_FORMATS) <= set(formats())


@pytest.mark.parametrize("fmt", list(SCENE_FORMATS))
def test_independent_reader_matches_model(take, exports, fmt):
    req = prepare_export(take, fmt, exports[fmt])
    assert req.num_frames == 472 and req.fit.has_face.all()
    got = READERS[fmt](exports[fmt], req, SAMPLES)
    check(got, req, SAMPLES, ARKIT_NAMES)
    assert np.abs(np.diff(got["vertices"], axis=0)).max() > 1e-3  # the face moves between sampled frames
    if fmt == "abc":  # Alembic winds clockwise: each model triangle (a, b, c) is stored as (a, c, b)
        np.testing.assert_array_equal(got["faces"], load_face_model(ModelChoice()).faces.numpy()[:, [0, 2, 1]])


def _rotate_smallest_first(faces: np.ndarray) -> np.ndarray:
    """Each triangle's corners rotated (winding kept) so that its smallest index comes first."""
    shift = np.argmin(faces, axis=1)
    return np.stack([faces[np.arange(len(faces)), (shift + k) % 3] for k in range(3)], axis=1)


@pytest.mark.parametrize("fmt", list(SCENE_FORMATS))
def test_blender_importer_matches_model(take, exports, fmt):
    req = prepare_export(take, fmt, exports[fmt])
    d = run_reader("blender_readback.py", [fmt, exports[fmt]], [req.fps, *[req.frame_index[f] for f in SAMPLES]])
    weights, vertices = expected(req, SAMPLES)
    np.testing.assert_allclose(d["vertices"], vertices, atol=1e-5)
    # Blender's polygons have the model's winding (outward faces) whatever each format stores
    np.testing.assert_array_equal(_rotate_smallest_first(d["faces"]),
                                  _rotate_smallest_first(load_face_model(ModelChoice()).faces.numpy()))
    if fmt == "abc":
        assert d["shape_key_names"].size == 0  # a mesh cache: geometry only
        return
    assert list(d["shape_key_names"]) == list(ARKIT_NAMES)
    assert (d["key_counts"] == 472).all()
    np.testing.assert_allclose(d["weights"], weights, atol=1e-4)


def test_fbx_frame_rate_is_exact(take, exports):
    """23.976 fps: the FBX says TimeMode 13 (24/1.001) and CustomFrameRate 24000/1001."""
    req = prepare_export(take, "fbx", exports["fbx"])
    assert abs(req.fps - 24000 / 1001) < 1e-9
    d = run_reader("ufbx_readback.py", [exports["fbx"]], [0])
    assert d["time_mode"] == 13 and abs(d["fps"] - 24000 / 1001) < 1e-9


@pytest.fixture(scope="module")
def flame_request(take, tmp_path_factory):
    """FLAME parameters (jaw, neck, eyes, negative weights) on frames 100:140 of the take."""
    path = tmp_path_factory.mktemp("flame") / "generic_model.pkl"
    write_synthetic_flame(path, num_shape=20, num_expression=10)
    req = prepare_export(take, "fbx", path.with_suffix(".fbx"), (100, 140))
    n = req.num_frames
    t = np.linspace(0.0, 1.0, n)[:, None]
    rng = np.random.default_rng(0)
    fit = FitParams(
        identity=rng.normal(0, 1, 20).astype(np.float32), frame_index=req.fit.frame_index, has_face=req.fit.has_face,
        expression=(1.5 * np.sin(2 * np.pi * (t + rng.uniform(0, 1, 10)))).astype(np.float32),
        rotation=req.fit.rotation, neck=(0.1 * np.sin(3 * t) * [1, 0.5, 0]).astype(np.float32),
        jaw=(0.3 * np.abs(np.sin(5 * t)) * [1, 0, 0]).astype(np.float32),
        eyes=(0.2 * np.sin(4 * t) * [1, 1, 0, 1, 1, 0]).astype(np.float32), camera=req.fit.camera,
        residual=req.fit.residual)
    return replace(req, fit=fit, model="flame", expression_names=[f"exp{i:03d}" for i in range(10)],
                   model_settings={"model": "flame", "flame_path": str(path), "num_shape": 20, "num_expression": 10})


@pytest.mark.parametrize("fmt", list(SCENE_FORMATS))
def test_flame(flame_request, tmp_path, fmt):
    """exp000.. shape keys and FLAME's joints; everything but the pose correctives is exact, and the
    result says how large the left-out correctives are (the Alembic cache has them: it is exact)."""
    req = replace(flame_request, format=fmt, out=tmp_path / f"f.{SCENE_FORMATS[fmt]}")
    result = get_exporter(fmt)(req)
    frames = (0, 13, 39)
    got = READERS[fmt](req.out, req, frames)
    names = [f"exp{i:03d}" for i in range(10)]
    if fmt == "abc":
        check(got, req, frames, names)
        return
    check(got, req, frames, names, correctives=False)
    leftover = result.extra["max_corrective_m"]
    assert leftover > 1e-5
    _, exact = expected(req, frames)
    assert np.linalg.norm(got["vertices"] - exact, axis=2).max() <= leftover * 1.05 + 1e-5
    if fmt == "fbx":  # and Blender sees the same: negative weights and FLAME's joints survive the import
        d = run_reader("blender_readback.py", [fmt, req.out], [req.fps, *[req.frame_index[f] for f in frames]])
        np.testing.assert_allclose(d["vertices"], got["vertices"], atol=1e-5)
        np.testing.assert_allclose(d["weights"], got["weights"], atol=1e-4)


def test_fbx_refuses_weights_beyond_blender_range(flame_request, tmp_path):
    req = replace(flame_request, out=tmp_path / "w.fbx")
    req = replace(req, fit=replace(req.fit, expression=req.fit.expression * 10))  # reaches 15
    with pytest.raises(ExportError, match="within"):
        get_exporter("fbx")(req)
    assert list(tmp_path.iterdir()) == []


def _with_gaps(req, rows) -> object:
    """The request with ``rows`` turned into frames without a face (NaN parameters, as a take stores)."""
    fit = req.fit
    has_face = fit.has_face.copy()
    has_face[list(rows)] = False
    arrays = {}
    for k in ("expression", "rotation", "neck", "jaw", "eyes", "camera", "residual"):
        a = getattr(fit, k).copy()
        a[list(rows)] = np.nan
        arrays[k] = a
    return replace(req, fit=FitParams(identity=fit.identity, frame_index=fit.frame_index, has_face=has_face, **arrays))


@pytest.mark.parametrize("fmt", list(SCENE_FORMATS))
def test_frames_without_a_face_hold_the_last_pose(take, tmp_path, fmt):
    req = _with_gaps(prepare_export(take, fmt, tmp_path / f"g.{SCENE_FORMATS[fmt]}", (200, 215)), [0, 1, 6, 7, 8])
    result = get_exporter(fmt)(req)
    assert result.gap_policy == HOLD_POLICY and result.gap_frames == 5 and result.frames == 15
    got = READERS[fmt](req.out, req, (0, 1, 2, 5, 6, 8, 9))
    v = got["vertices"]
    same = dict(rtol=0, atol=1e-7)  # FBX keys rotations as baked Euler angles: equal to float rounding
    np.testing.assert_allclose(v[0], v[2], **same)  # leading gap: the first face pose
    np.testing.assert_allclose(v[1], v[2], **same)
    np.testing.assert_allclose(v[4], v[3], **same)  # a gap holds the last face pose
    np.testing.assert_allclose(v[5], v[3], **same)
    assert np.abs(v[6] - v[3]).max() > 1e-5  # and the next face frame moves again
    check(got, req, (0, 1, 2, 5, 6, 8, 9), ARKIT_NAMES)
    with pytest.raises(ExportError, match="no frame"):
        get_exporter(fmt)(_with_gaps(replace(req, out=tmp_path / f"none.{SCENE_FORMATS[fmt]}"), range(15)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [req.out.name]


def test_head_translation_in_metres():
    """Image-plane motion of the model origin / (px per metre), relative to the first frame; x right,
    y up; a pure scale change about the image centre is no translation."""
    s = 2000.0
    centre = (320.0, 180.0)
    camera = np.array([[np.log(s), 320, 180, 0], [np.log(s), 340, 180, 5], [np.log(s), 320, 150, 0],
                       [np.log(2 * s), 320, 180, 0]])
    np.testing.assert_allclose(head_translation(camera, centre),
                               [[0, 0, 0], [0.01, 0, 0], [0, 0.015, 0], [0, 0, 0]], atol=1e-12)


def test_quaternions_are_continuous():
    aa = np.array([[0, 0, 3.0], [0, 0, 3.2], [0, 0, -3.0]])  # crosses pi: the raw quaternion flips sign
    q = axis_angle_to_quaternion(aa)
    assert (np.sum(q[1:] * q[:-1], axis=1) > 0).all()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0)


def test_fbx_never_loads_bpy_here_and_names_a_missing_blender(take, tmp_path, monkeypatch):
    export(take, "fbx", tmp_path / "a.fbx", (0, 2))
    assert "bpy" not in sys.modules  # Blender ran in its own process
    monkeypatch.setitem(sys.modules, "bpy", None)  # what the import system reports for a missing module
    with pytest.raises(ExportError, match="FBX export needs Blender as a module: .*pip install bpy==5.0.1"):
        export(take, "fbx", tmp_path / "b.fbx", (0, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fbx"]


def test_fbx_worker_failure_is_an_export_error(tmp_path):
    from core.export.fbx import run_worker

    with pytest.raises(ExportError, match="Blender could not write x.fbx .*missing.npz"):
        run_worker(tmp_path / "missing.npz", tmp_path / "x.fbx", 1)
    assert list(tmp_path.iterdir()) == []


def test_fbx_cancel_leaves_nothing(take, tmp_path, monkeypatch):
    """Ctrl-C (SIGINT) while Blender writes: the worker is stopped, nothing is left beside the target."""
    # Ctrl-C raises KeyboardInterrupt, as in a terminal (a shell's background job inherits SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_fbx_export(take, tmp_path, monkeypatch)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_fbx_export(take, tmp_path, monkeypatch):
    import subprocess

    out = tmp_path / "out"
    out.mkdir()
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        process = real_popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    seen: list[int] = []

    def interrupt_when_blender_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not started:
            time.sleep(0.01)
        if started:
            time.sleep(0.3)  # Blender is importing; the parent waits on it
            if started[0].poll() is None:
                seen.append(started[0].pid)
                os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=interrupt_when_blender_runs, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        export(take, "fbx", out / "a.fbx")
    watcher.join()
    assert seen and b"blender_fbx_worker" in " ".join(map(str, started[0].args)).encode()
    assert started[0].returncode is not None and not Path(f"/proc/{seen[0]}").exists()  # killed and reaped
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("fmt", list(SCENE_FORMATS))
@pytest.mark.parametrize("target", ["write", "fsync"])
def test_enospc_leaves_nothing(take, tmp_path, monkeypatch, fmt, target):
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, target, full)
    with pytest.raises(ExportError, match="No space"):
        export(take, fmt, out_dir / f"a.{SCENE_FORMATS[fmt]}", (0, 3))
    monkeypatch.undo()
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("fmt", list(SCENE_FORMATS))
def test_unwritable_folder(take, tmp_path, monkeypatch, fmt):
    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    out_dir.chmod(0o555)
    refuse_writes_in(monkeypatch, out_dir)  # root ignores the permission bits
    try:
        with pytest.raises(ExportError, match="cannot write"):
            export(take, fmt, out_dir / f"a.{SCENE_FORMATS[fmt]}", (0, 2))
    finally:
        monkeypatch.undo()
        out_dir.chmod(0o755)
    assert list(out_dir.iterdir()) == []


def test_usd_text_and_suffixes(take, tmp_path):
    from pxr import Usd

    export(take, "usd", tmp_path / "a.usda", (0, 3))
    assert (tmp_path / "a.usda").read_text().startswith("#usda 1.0")
    assert Usd.Stage.Open(str(tmp_path / "a.usda")).GetStartTimeCode() == 0.0
    with pytest.raises(ExportError, match=r"\.usda"):
        export(take, "usd", tmp_path / "a.fbx", (0, 3))


def test_cli_lists_and_writes_scene_formats(take, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    assert run_export(parser.parse_args(["export", "--format", "list"])) == 0
    assert set(SCENE_FORMATS) <= set(capsys.readouterr().out.split())
    out = tmp_path / "c.glb"
    assert run_export(parser.parse_args(["export", str(take), "--format", "gltf", "--out", str(out), "--range", "5:9"])) == 0
    req = prepare_export(take, "gltf", out, (5, 9))
    check(read_gltf(out, req, (0, 3)), req, (0, 3), ARKIT_NAMES)
