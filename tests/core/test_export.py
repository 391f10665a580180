"""Exports of a take: curves round trip, OBJ sequence, Live Link Face CSV, gaps, atomic writes."""

from __future__ import annotations

import argparse
import csv
import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import ExportError
from core.export import export, formats, import_curves, prepare_export
from core.export.arkit_csv import HEADER
from core.export.cli_export import add_export_parser, run_export
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES
from core.pipeline import Pipeline, PipelineConfig
from core.take.store import Take
from tests.conftest import refuse_writes_in

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"  # ../shared/fixtures beside the repo


@pytest.fixture(scope="module")
def take(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("take") / "single"
    Pipeline(PipelineConfig(device="cpu")).run(FIXTURES / "single_face.mp4", root)
    return root


@pytest.fixture(scope="module")
def gap_take(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("take") / "gaps"
    Pipeline(PipelineConfig(device="cpu")).run(FIXTURES / "face_noface.mov", root)
    return root


def _fit(root: Path):
    return Take.open(root).read_fit()


def test_formats_registered():
    assert {"curves_npz", "curves_json", "curves_csv", "obj_seq", "arkit_csv"} <= set(formats())
    with pytest.raises(ExportError, match="curves_npz"):
        export("x", "nope", "y")


@pytest.mark.parametrize("fmt,suffix", [("curves_npz", "npz"), ("curves_json", "json"), ("curves_csv", "csv")])
def test_curves_round_trip(take, tmp_path, fmt, suffix):
    fit = _fit(take)
    out = tmp_path / f"c.{suffix}"
    result = export(take, fmt, out, (1, 6))
    assert result.paths == [out] and result.frames == 5
    data = import_curves(out)
    assert str(data["model"]) == "open"
    assert list(data["expression_names"]) == list(ARKIT_NAMES)
    assert float(data["fps"]) > 0
    np.testing.assert_array_equal(data["frame_index"], fit.frame_index[1:6])
    np.testing.assert_allclose(data["timestamp"], fit.frame_index[1:6] / float(data["fps"]), atol=1e-9)
    np.testing.assert_allclose(data["identity"], fit.identity, atol=1e-6)
    for k in ("expression", "rotation", "neck", "jaw", "eyes", "camera"):
        np.testing.assert_allclose(data[k], getattr(fit, k)[1:6], atol=1e-6, err_msg=k)
    assert "pose" not in data  # FLAME layout only for FLAME takes


def test_flame_layout(take, tmp_path):
    from dataclasses import replace

    from core.export.curves import curve_arrays

    req = replace(prepare_export(take, "curves_npz", tmp_path / "f.npz"), model="flame")
    arr = curve_arrays(req)
    n = req.num_frames
    assert arr["pose"].shape == (n, 15) and arr["trans"].shape == (n, 3) and not arr["trans"].any()
    np.testing.assert_array_equal(arr["pose"][:, 6:9], req.fit.jaw)
    np.testing.assert_array_equal(arr["pose"][:, 12:15], req.fit.eyes[:, 3:])
    np.testing.assert_array_equal(arr["shape"], req.fit.identity)
    from core.export.registry import get_exporter

    for fmt, suffix in (("curves_csv", "csv"), ("curves_json", "json"), ("curves_npz", "npz")):
        out = tmp_path / f"f.{suffix}"
        get_exporter(fmt)(replace(req, out=out))
        back = import_curves(out)
        np.testing.assert_allclose(back["pose"], arr["pose"], atol=1e-6, err_msg=fmt)
        np.testing.assert_allclose(back["exp"], arr["exp"], atol=1e-6, err_msg=fmt)
        np.testing.assert_allclose(back["shape"], arr["shape"], atol=1e-6, err_msg=fmt)
        assert back["trans"].shape == (n, 3) and not back["trans"].any()


def test_obj_seq_matches_model(take, tmp_path):
    import torch
    import trimesh

    fit = _fit(take)
    out = tmp_path / "objs"
    t0 = time.perf_counter()
    result = export(take, "obj_seq", out, (0, 8))
    print(f"obj_seq 8 frames: {time.perf_counter() - t0:.2f}s")
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.obj" for i in range(8)] and result.frames == 8
    model = load_face_model(ModelChoice())
    faces0 = None
    for i in (0, 3, 7):
        mesh = trimesh.load(out / names[i], process=False, force="mesh")
        with torch.no_grad():
            expected = model(fit.to_face_params(np.array([i]))).vertices[0].numpy()
        np.testing.assert_allclose(np.asarray(mesh.vertices), expected, atol=1e-5)
        faces0 = np.asarray(mesh.faces) if faces0 is None else faces0
        np.testing.assert_array_equal(np.asarray(mesh.faces), faces0)
    np.testing.assert_array_equal(faces0, model.faces.numpy())


def test_arkit_csv_layout_and_values(take, tmp_path):
    fit = _fit(take)
    out = tmp_path / "llf.csv"
    export(take, "arkit_csv", out)
    with open(out, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert tuple(header) == HEADER
    assert header[:4] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft", "EyeLookDownLeft"]
    assert header[2 + 51] == "TongueOut" and header[54:57] == ["HeadYaw", "HeadPitch", "HeadRoll"]
    assert len(body) == len(fit)
    for r in (0, len(fit) // 2, len(fit) - 1):
        assert body[r][1] == "61"
        values = np.array([float(v) for v in body[r][2:54]])
        assert len(values) == 52
        np.testing.assert_allclose(values, fit.expression[r], atol=1e-4)
    assert body[0][0].count(":") == 3 and "." in body[0][0]


def test_arkit_timecode():
    from core.export.arkit_csv import timecode

    assert timecode(0.0, 30) == "00:00:00:00.000"
    assert timecode(3661 + 5 / 30, 30) == "01:01:01:05.000"


def test_bad_ranges_and_no_fit(take, tmp_path):
    n = len(_fit(take))
    with pytest.raises(ExportError, match="empty"):
        prepare_export(take, "curves_npz", tmp_path / "a.npz", (3, 3))
    with pytest.raises(ExportError, match="outside"):
        prepare_export(take, "curves_npz", tmp_path / "a.npz", (0, n + 1))
    with pytest.raises(ExportError, match="outside"):
        prepare_export(take, "curves_npz", tmp_path / "a.npz", "-1:2")
    no_fit = tmp_path / "nofit"
    Pipeline(PipelineConfig(device="cpu", model=None)).run(FIXTURES / "single_face.jpg", no_fit)
    with pytest.raises(ExportError, match="no fit"):
        prepare_export(no_fit, "curves_npz", tmp_path / "a.npz")


def test_gap_policy(gap_take, tmp_path):
    fit = _fit(gap_take)
    gaps = ~fit.has_face
    assert gaps.any() and fit.has_face.any()
    result = export(gap_take, "curves_csv", tmp_path / "g.csv")
    assert result.gap_frames == int(gaps.sum()) and "gap" in result.gap_policy
    data = import_curves(tmp_path / "g.csv")
    assert np.isnan(data["expression"][gaps]).all() and not np.isnan(data["expression"][~gaps]).any()
    data = import_curves(export(gap_take, "curves_json", tmp_path / "g.json").paths[0])
    assert np.isnan(data["rotation"][gaps]).all()
    # OBJ: a gap frame holds the last pose with a face (the first face pose before any face)
    g = int(np.nonzero(gaps)[0][0])
    before = np.nonzero(fit.has_face[:g])[0]
    held = int(before[-1]) if len(before) else int(np.nonzero(fit.has_face)[0][0])
    lo, hi = min(g, held), max(g, held) + 1
    result = export(gap_take, "obj_seq", tmp_path / "objs", (lo, hi))
    assert "hold" in result.gap_policy and result.frames == hi - lo
    read = lambda i: (tmp_path / "objs" / f"frame_{i - lo:06d}.obj").read_text()  # noqa: E731
    assert read(g) == read(held)
    if not fit.has_face.all():
        only_gaps = np.nonzero(gaps)[0]
        with pytest.raises(ExportError, match="no frame"):
            export(gap_take, "obj_seq", tmp_path / "none", (int(only_gaps[0]), int(only_gaps[0]) + 1))
        assert not (tmp_path / "none").exists()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt,name", [("curves_npz", "c.npz"), ("arkit_csv", "a.csv"), ("obj_seq", "objs")])
@pytest.mark.parametrize("target", ["write", "fsync"])
def test_enospc_leaves_nothing(take, tmp_path, monkeypatch, fmt, name, target):
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, target, full)
    with pytest.raises(ExportError, match="No space"):
        export(take, fmt, out_dir / name, (0, 3))
    monkeypatch.undo()
    assert _leftovers(out_dir) == []


@pytest.mark.parametrize("fmt,name", [("curves_json", "c.json"), ("arkit_csv", "a.csv"), ("obj_seq", "objs")])
def test_unwritable_folder(take, tmp_path, monkeypatch, fmt, name):
    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    out_dir.chmod(0o555)
    refuse_writes_in(monkeypatch, out_dir)  # root ignores the permission bits
    try:
        with pytest.raises(ExportError, match="cannot write"):
            export(take, fmt, out_dir / name, (0, 2))
    finally:
        monkeypatch.undo()
        out_dir.chmod(0o755)
    assert _leftovers(out_dir) == []


def test_flame_take_has_no_arkit(take, tmp_path, monkeypatch):
    from dataclasses import replace

    import core.export as ex

    req = replace(prepare_export(take, "arkit_csv", tmp_path / "a.csv"), model="flame")
    with pytest.raises(ExportError, match="no ARKit"):
        ex.get_exporter("arkit_csv")(req)
    assert not (tmp_path / "a.csv").exists()


def test_cli(take, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    assert run_export(parser.parse_args(["export", "--format", "list"])) == 0
    assert "obj_seq" in capsys.readouterr().out
    out = tmp_path / "c.npz"
    t0 = time.perf_counter()
    args = parser.parse_args(["export", str(take), "--format", "curves_npz", "--out", str(out), "--range", "0:4"])
    assert run_export(args) == 0
    print(f"curves_npz: {time.perf_counter() - t0:.2f}s")
    assert len(import_curves(out)["frame_index"]) == 4
    with pytest.raises(ExportError):
        run_export(parser.parse_args(["export", str(take), "--format", "curves_npz", "--out", str(out), "--range", "x"]))


def test_export_creates_missing_parent_folders(tmp_path, take):
    from core.export.base import prepare_export
    from core.export.registry import get_exporter

    for fmt, out in (("curves_npz", tmp_path / "a" / "b" / "c.npz"), ("obj_seq", tmp_path / "x" / "y" / "objs")):
        request = prepare_export(take, fmt, out)
        get_exporter(fmt)(request)
        assert out.exists()
