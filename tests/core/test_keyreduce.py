"""Key reduction (core.export.keyreduce): the error bound, extremes (blinks, lip contacts) kept,
gaps never bridged; and the reduced FBX (read back by ufbx at every frame), glTF, USD and curve
files staying within the tolerance."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from core.errors import KeyReductionError
from core.export import export, import_curves, prepare_export
from core.export.keyreduce import KeyReduction, interpolate, keep_mask, keep_mask_quaternions
from core.export.rig import axis_angle_to_quaternion

HERE = Path(__file__).resolve().parent


def rebuilt(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    f = np.arange(len(values))
    return interpolate(f, f[mask], values[mask])


def blink_curve(n: int = 200, seed: int = 0) -> np.ndarray:
    """An eyeBlink-like curve: low noise, two fast blinks (peaks 0.97 at 50, 0.93 at 140)."""
    rng = np.random.default_rng(seed)
    v = 0.05 + 0.01 * rng.standard_normal(n)
    for centre, peak in ((50, 0.97), (140, 0.93)):
        v += (peak - 0.05) * np.exp(-0.5 * ((np.arange(n) - centre) / 1.2) ** 2)
    return v


def test_blinks_are_keyed_at_their_peak_and_every_frame_is_within_tolerance():
    v = blink_curve()
    mask = keep_mask(v, 0.02)
    assert mask[50] and mask[140]  # the blink peaks are keys: full closure survives exactly
    assert np.abs(rebuilt(v, mask) - v).max() <= 0.02
    assert mask.sum() < 0.5 * len(v)  # and the noise is not keyed frame by frame
    assert mask[0] and mask[-1]


def test_a_closed_mouth_stays_closed():
    """jawOpen: open, closed (0.0 held for 8 frames, with a little noise), open again."""
    n = 60
    t = np.arange(n)
    v = np.where((t >= 25) & (t < 33), 0.0, 0.4 + 0.1 * np.sin(t / 3.0))
    v[25:33] += np.array([0.0, 0.001, 0.0, 0.002, 0.0, 0.001, 0.0, 0.0])
    mask = keep_mask(v, 0.05)
    r = rebuilt(v, mask)
    assert mask[25] and mask[32]  # both ends of the held closure are keys
    assert r[25:33].max() <= 0.003  # closed between them (the noise, not the tolerance)
    assert np.abs(r - v).max() <= 0.05


def test_gaps_are_never_bridged():
    v = np.linspace(0, 1, 30)[:, None].repeat(2, axis=1)
    v[10:14] = np.nan
    mask = keep_mask(v, 0.1)
    assert mask[9] and mask[14] and not mask[10:14].any()
    np.testing.assert_allclose(rebuilt(v[:, 0], mask)[:10], v[:10, 0], atol=1e-9)


def test_vector_curves_bound_every_component():
    rng = np.random.default_rng(3)
    v = np.cumsum(rng.normal(0, 0.01, (300, 5)), axis=0)
    mask = keep_mask(v, 0.015)
    assert np.abs(rebuilt(v, mask) - v).max() <= 0.015 and mask.sum() < 300


def test_quaternions_stay_within_the_angle():
    t = np.linspace(0, 4, 400)[:, None]
    q = axis_angle_to_quaternion(np.concatenate([0.4 * np.sin(t), 0.2 * np.cos(2 * t), 0.1 * t], axis=1))
    tol = np.radians(0.2)
    mask = keep_mask_quaternions(q, tol)
    rows = np.flatnonzero(mask)
    worst = 0.0
    for a, b in zip(rows[:-1], rows[1:]):
        for i in range(a + 1, b):
            s = (i - a) / (b - a)
            qa, qb = q[a], q[b] * np.sign(q[a] @ q[b])
            omega = np.arccos(np.clip(qa @ qb, -1, 1))
            qi = qa if omega < 1e-12 else (np.sin((1 - s) * omega) * qa + np.sin(s * omega) * qb) / np.sin(omega)
            worst = max(worst, np.radians(quat_angle(qi, q[i])))
    assert worst <= tol and 2 < mask.sum() < 100


# --- the formats -----------------------------------------------------------------------------------

TOL, DEG = 0.01, 0.2


@pytest.fixture(scope="module")
def take(wolfgang_take) -> Path:
    return wolfgang_take[1]


def ufbx_curves(path: Path, frames) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "c.npz"
        proc = subprocess.run([sys.executable, "-P", str(HERE / "ufbx_curves.py"), str(path), str(out), *map(str, frames)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return dict(np.load(out))


def quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (degrees) between quaternions of the same layout, last axis, normalised: 4 asin(|a -
    b| / 2), well conditioned (2 acos(a . b) is not for float32 quaternions 0.1 degrees apart)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    b = b * np.where((a * b).sum(-1) < 0, -1.0, 1.0)[..., None]
    return np.degrees(4 * np.arcsin(np.clip(np.linalg.norm(a - b, axis=-1) / 2, 0, 1)))


def test_reduced_fbx_read_back_by_ufbx_stays_within_the_tolerance(take, tmp_path):
    """Every frame of the take, as ufbx evaluates the file: shape-key weights within TOL of the
    fit, bone rotations within DEG degrees of the unreduced FBX, with far fewer keys."""
    full = export(take, "fbx", tmp_path / "full.fbx").paths[0]
    reduced = export(take, "fbx", tmp_path / "reduced.fbx", reduce=KeyReduction(TOL, degrees=DEG)).paths[0]
    req = prepare_export(take, "fbx", full)
    frames = req.frame_index.tolist()
    a, b = ufbx_curves(full, frames), ufbx_curves(reduced, frames)
    assert (a["key_counts"] == len(frames)).all()
    ratio = b["key_counts"].sum() / a["key_counts"].sum()
    assert ratio < 0.35, ratio
    truth = req.fit.expression.astype(np.float64)
    np.testing.assert_allclose(a["weights"], truth, atol=1e-5)
    error = np.abs(b["weights"] - truth).max()
    assert 0.5 * TOL < error <= TOL + 1e-5  # within the tolerance, and the tolerance is used
    angles = quat_angle(a["rotations"], b["rotations"])
    assert angles.max() <= DEG + 1e-3
    root_keys = b["bone_key_counts"][list(b["bone_names"]).index("root")]
    assert (root_keys < len(frames)).all() and (root_keys > 2).all()  # the head moves: keyed, but not every frame
    eyes = [list(b["channel_names"]).index(n) for n in ("eyeBlinkLeft", "eyeBlinkRight")]
    from tests.core.test_export_scene import run_reader

    blender = run_reader("blender_readback.py", ["fbx", reduced], [req.fps, *frames])  # imports keys as linear too
    assert (blender["key_counts"] == b["key_counts"]).all()
    assert np.abs(blender["weights"] - truth).max() <= TOL + 1e-5
    for e in eyes:  # each eye's strongest blink is a key: exact
        peak = int(np.argmax(truth[:, e]))
        assert truth[peak, e] > 0.5
        np.testing.assert_allclose(b["weights"][peak, e], truth[peak, e], atol=1e-5)


def _gltf_sampled(path: Path):
    import pygltflib

    from tests.core.test_export_scene import _accessor

    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    out = {}
    for ch in gltf.animations[0].channels:
        s = gltf.animations[0].samplers[ch.sampler]
        out[(ch.target.node, ch.target.path)] = (_accessor(gltf, blob, s.input)[:, 0].astype(np.float64),
                                                 _accessor(gltf, blob, s.output).astype(np.float64))
    return out


def test_reduced_gltf_and_usd_stay_within_the_tolerance(take, tmp_path):
    from pxr import Usd, UsdSkel

    red = KeyReduction(TOL, degrees=DEG)
    req = prepare_export(take, "gltf", tmp_path / "a.glb")
    truth_w = req.fit.expression.astype(np.float64)
    glb = _gltf_sampled(export(take, "gltf", tmp_path / "r.glb", reduce=red).paths[0])
    full = _gltf_sampled(export(take, "gltf", tmp_path / "f.glb").paths[0])
    times, values = glb[(0, "weights")]
    assert len(times) < 0.8 * req.num_frames
    weights = interpolate(req.timestamps, times, values.reshape(len(times), -1))
    assert np.abs(weights - truth_w).max() <= TOL + 1e-6
    for (node, path), (t, v) in glb.items():
        if path != "rotation":
            continue
        ft, fv = full[(node, path)]
        for i, time in enumerate(ft):  # slerp as glTF says, at every frame
            k = min(max(np.searchsorted(t, time, side="right") - 1, 0), len(t) - 2)
            s = np.clip((time - t[k]) / (t[k + 1] - t[k]), 0, 1)
            qa, qb = v[k], v[k + 1] * np.sign(v[k] @ v[k + 1])
            omega = np.arccos(np.clip(qa @ qb, -1, 1))
            q = qa if omega < 1e-9 else (np.sin((1 - s) * omega) * qa + np.sin(s * omega) * qb) / np.sin(omega)
            assert quat_angle(q, fv[i]) <= DEG + 1e-3
    stage = Usd.Stage.Open(str(export(take, "usd", tmp_path / "r.usdc", reduce=red).paths[0]))
    anim = UsdSkel.Animation(stage.GetPrimAtPath("/EmoCap/Skel/Anim"))
    samples = anim.GetBlendShapeWeightsAttr().GetTimeSamples()
    assert len(samples) < 0.8 * req.num_frames
    got = np.array([np.array(anim.GetBlendShapeWeightsAttr().Get(Usd.TimeCode(float(f)))) for f in req.frame_index])
    assert np.abs(got - truth_w).max() <= TOL + 1e-6


@pytest.mark.parametrize("suffix", ["npz", "json", "csv"])
def test_reduced_curve_files(take, tmp_path, suffix):
    full = import_curves(export(take, f"curves_{suffix}", tmp_path / f"f.{suffix}").paths[0])
    path = export(take, f"curves_{suffix}", tmp_path / f"r.{suffix}", reduce=KeyReduction(TOL, degrees=DEG)).paths[0]
    got = import_curves(path)
    assert np.abs(got["expression"] - full["expression"]).max() <= TOL + 1e-6
    for k in ("rotation", "neck", "jaw", "eyes"):
        assert np.linalg.norm(got[k] - full[k], axis=1).max() <= np.radians(DEG) + 1e-6
    assert np.abs(got["camera"][:, 1:] - full["camera"][:, 1:]).max() <= 0.05 + 1e-4
    np.testing.assert_array_equal(got["has_face"], full["has_face"])
    if suffix == "npz":
        with np.load(path) as raw:
            assert len(raw["key_frame"]) < 0.3 * full["expression"].size
    assert path.stat().st_size < (tmp_path / f"f.{suffix}").stat().st_size


def test_reduce_is_refused_where_there_are_no_keys(take, tmp_path):
    for fmt, name in (("abc", "a.abc"), ("obj_seq", "seq"), ("arkit_csv", "a.csv")):
        with pytest.raises(KeyReductionError, match=f"{fmt} has no keys to reduce"):
            export(take, fmt, tmp_path / name, reduce=0.01)
    with pytest.raises(KeyReductionError, match="must be a positive number"):
        export(take, "fbx", tmp_path / "a.fbx", reduce=-1)
    assert list(tmp_path.iterdir()) == []


def test_cli_reduce(take, tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "c.json"
    proc = run_cli("export", str(take), "--format", "curves_json", "--out", str(out), "--reduce", "0.02",
                   "--reduce-degrees", "0.5", "--retarget", "custom_rig_example")
    assert proc.returncode == 0, proc.stderr
    got = import_curves(out)
    assert "Blink" in list(got["expression_names"])
    bad = run_cli("export", str(take), "--format", "abc", "--out", str(tmp_path / "a.abc"), "--reduce", "0.02")
    assert bad.returncode == 2 and "abc has no keys to reduce" in bad.stderr
