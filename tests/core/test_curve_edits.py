"""The curve editor's keys and region locks (core/curve_edits.py, applied by core/edit.py)."""

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest

from core.curve_edits import (
    REGIONS,
    CurveEdits,
    curve_region,
    drag_keys,
    draw_keys,
    locked_mask,
    smooth_keys,
)
from core.edit import EditLayer, Edits, apply_edits, load_edits, model_basis, save_edits
from core.errors import EditError
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES
from core.fit.params import FitParams

JAW = ARKIT_NAMES.index("jawOpen")
SMILE = ARKIT_NAMES.index("mouthSmileLeft")
BROW = ARKIT_NAMES.index("browInnerUp")


@pytest.fixture(scope="module")
def basis():
    return model_basis(load_face_model(ModelChoice()))


@pytest.fixture(scope="module")
def fit():
    """60 frames of the 52 ARKit curves (smooth waves), frames 30-34 without a face."""
    n = 60
    t = np.arange(n)[:, None]
    expression = (0.4 + 0.3 * np.sin(t / 7.0 + np.arange(52)[None] / 3.0)).astype(np.float32)
    has_face = np.ones(n, bool)
    has_face[30:35] = False
    expression[~has_face] = np.nan
    rng = np.random.default_rng(0)
    base = FitParams.empty(np.arange(n), np.zeros(3), 52)
    pose = rng.normal(0, 0.05, (n, 3)).astype(np.float32)
    return dataclasses.replace(base, expression=expression, has_face=has_face, jaw=pose, eyes=np.tile(pose, 2),
                               rotation=pose.copy(), neck=pose.copy())


def test_every_arkit_curve_is_in_one_region_and_flame_components_in_none():
    regions = {name: curve_region(name) for name in ARKIT_NAMES}
    assert regions["browInnerUp"] == "brows" and regions["eyeBlinkLeft"] == "eyes"
    assert regions["jawOpen"] == "jaw" and regions["mouthSmileLeft"] == "mouth" and regions["cheekPuff"] == "mouth"
    assert None not in regions.values()
    assert [sum(r == k for r in regions.values()) for k in ("brows", "eyes", "mouth", "jaw")] == [5, 14, 29, 4]
    assert curve_region("exp003") is None
    assert locked_mask(["exp000", "jawOpen"], ["jaw"]).tolist() == [False, True]


def test_keys_replace_the_sliders_result_and_are_clamped_and_skip_gaps(fit, basis):
    keys = CurveEdits().set("jawOpen", [10, 11, 32], [0.9, 1.7, 0.5], has_face=fit.has_face, bounds=basis.bounds)
    assert keys.keys("jawOpen") == {10: 0.9, 11: 1.0}  # clamped; frame 32 has no face
    edits = Edits((EditLayer(intensity=0.5),), keys)
    out = apply_edits(fit, edits, basis).expression
    assert out[10, JAW] == np.float32(0.9) and out[11, JAW] == 1.0  # keys after the slider layer
    np.testing.assert_allclose(out[12, JAW], 0.5 * fit.expression[12, JAW], rtol=1e-6)  # unkeyed: the slider
    np.testing.assert_allclose(out[10, SMILE], 0.5 * fit.expression[10, SMILE], rtol=1e-6)  # other curves
    assert np.isnan(out[30:35]).all()
    # a key stored for a frame without a face (a refit lost the face) is not applied
    stale = Edits(curves=CurveEdits().with_keys("jawOpen", {31: 0.7}))
    assert np.isnan(apply_edits(fit, stale, basis).expression[31, JAW])
    assert CurveEdits().is_identity and not keys.is_identity
    assert keys.reset("jawOpen", 0, 11).keys("jawOpen") == {11: 1.0}
    assert keys.reset("jawOpen", 0, 60).is_identity


def test_a_dragged_range_moves_by_delta_and_blends_back_without_a_step(fit):
    curve = fit.expression[:, SMILE].astype(np.float64)
    frames, values = drag_keys(curve, fit.has_face, 10, 15, 0.2, falloff=6)
    moved = curve.copy()
    moved[frames] = values
    np.testing.assert_allclose(moved[10:15] - curve[10:15], 0.2)
    assert frames.min() == 4 and frames.max() == 20
    change = moved - curve
    assert np.all(np.abs(np.diff(change[2:24])) <= 0.2 / 6 * 1.6)  # no step anywhere
    assert change[3] == 0 and change[21] == 0
    # a range beside a gap never writes into it
    frames, _ = drag_keys(curve, fit.has_face, 26, 29, -0.1)
    assert not set(frames.tolist()) & set(range(30, 35))


def test_a_drawn_stroke_sets_every_frame_it_passes_and_skips_gaps(fit):
    frames, values = draw_keys([(20.2, 0.1), (24.0, 0.5), (36.0, 0.5)], fit.has_face)
    assert frames.tolist() == [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 35, 36]  # the ends snap to frames
    np.testing.assert_allclose(values[:5], 0.1 + np.arange(5) / 4 * 0.4)
    np.testing.assert_allclose(values[5:], 0.5)
    frames, values = draw_keys([(5, 0.2), (8, 0.8), (6, 0.0)], fit.has_face)  # doubling back: later wins
    assert dict(zip(frames.tolist(), values.tolist()))[7] == pytest.approx(0.4)


def test_smoothing_a_selection_pins_its_ends_and_leaves_the_rest(fit):
    rng = np.random.default_rng(1)
    curve = fit.expression[:, BROW].astype(np.float64) + np.where(fit.has_face, rng.normal(0, 0.05, 60), 0)
    frames, values = smooth_keys(curve, fit.has_face, 5, 28, sigma=2.0)
    assert frames.min() == 5 and frames.max() == 27
    assert values[0] == curve[5] and values[-1] == curve[27]
    out = curve.copy()
    out[frames] = values
    jitter = lambda a: np.abs(np.diff(a, 2)).mean()  # noqa: E731
    assert jitter(out[8:25]) < 0.5 * jitter(curve[8:25])
    frames, _ = smooth_keys(curve, fit.has_face, 25, 40)
    assert not set(frames.tolist()) & set(range(30, 35))


def test_a_locked_region_stays_bit_identical_under_any_slider_layer(fit, basis):
    layer = EditLayer(intensity=0.3, upper_face=1.8, jaw=0.0, eyes=1.5, smoothing=4.0, locked=("mouth", "jaw"))
    out = apply_edits(fit, Edits((layer,)), basis)
    held = locked_mask(ARKIT_NAMES, ["mouth", "jaw"])
    assert held.sum() == 33
    assert out.expression[:, held].tobytes() == fit.expression[:, held].tobytes()
    assert out.jaw.tobytes() == fit.jaw.tobytes()
    assert not np.allclose(out.expression[fit.has_face][:, ~held], fit.expression[fit.has_face][:, ~held])
    assert not np.allclose(out.eyes[fit.has_face], fit.eyes[fit.has_face])  # eyes were not locked
    unlocked = apply_edits(fit, Edits((dataclasses.replace(layer, locked=()),)), basis)
    assert not np.allclose(unlocked.expression[fit.has_face][:, held], fit.expression[fit.has_face][:, held])
    with pytest.raises(EditError, match="unknown face region"):
        EditLayer(intensity=0.5, locked=("nose",))


def test_a_curve_in_a_locked_region_cannot_be_edited(fit, basis):
    with pytest.raises(EditError, match="locked mouth region"):
        CurveEdits().set("mouthSmileLeft", [3], [0.5], has_face=fit.has_face, bounds=basis.bounds, locked=["mouth"])
    keyed = CurveEdits().set("browInnerUp", [3], [0.5], has_face=fit.has_face, bounds=basis.bounds, locked=["mouth"])
    out = apply_edits(fit, Edits(curves=keyed), basis).expression
    others = np.arange(52) != BROW
    assert out[:, others].tobytes() == fit.expression[:, others].tobytes()
    with pytest.raises(EditError, match="locked brows region"):
        keyed.reset("browInnerUp", 0, 10, locked=["brows"])


def test_curve_keys_and_locks_round_trip_and_old_edits_files_still_load(tmp_path):
    (tmp_path / "edits.json").write_text(json.dumps(
        {"format": 1, "layers": [{"intensity": 0.5, "upper_face": 1.0, "lower_face": 1.0, "jaw": 1.0, "eyes": 1.0,
                                  "smoothing": 0.0, "emotions": {}, "start": None, "stop": None}]}))
    old = load_edits(tmp_path)
    assert old.layers == (EditLayer(intensity=0.5),) and old.curves.is_identity
    edits = old.with_layer(EditLayer(jaw=0.5, start=3, stop=9, locked=("brows",))).with_curves(
        CurveEdits().with_keys("jawOpen", {4: 0.25, 2: 0.125}).with_keys("eyeBlinkLeft", {7: 1.0}))
    save_edits(tmp_path, edits)
    stored = json.loads((tmp_path / "edits.json").read_text())
    assert stored["format"] == 2 and stored["curves"]["jawOpen"] == {"frames": [2, 4], "values": [0.125, 0.25]}
    assert stored["layers"][1]["locked"] == ["brows"]
    assert load_edits(tmp_path) == edits
    # a later slider change keeps the curve keys
    assert edits.with_layer(EditLayer(intensity=0.7)).curves == edits.curves
    (tmp_path / "edits.json").write_text(json.dumps({"format": 3, "layers": []}))
    with pytest.raises(Exception, match="format 3"):
        load_edits(tmp_path)


def test_every_export_applies_the_curve_keys(single_emotion_take, tmp_path):
    """Keys saved in TAKE/edits.json reach the curves CSV and the Live Link CSV, read back as text."""
    from core.export import export
    from core.export.arkit_csv import LLF_NAMES
    from core.export.curves import import_curves
    from core.take import Take

    take_dir = tmp_path / "take"
    shutil.copytree(single_emotion_take[1], take_dir)
    fit = Take.open(take_dir).read_fit()
    frame = int(np.nonzero(fit.has_face)[0][5])
    assert abs(fit.expression[frame, JAW] - 0.8125) > 0.05
    save_edits(take_dir, Edits(curves=CurveEdits().with_keys("jawOpen", {frame: 0.8125})))
    export(take_dir, "curves_csv", tmp_path / "c.csv")
    curves = import_curves(tmp_path / "c.csv")
    row = int(np.nonzero(curves["frame_index"] == fit.frame_index[frame])[0][0])
    assert curves["expression"][row, JAW] == pytest.approx(0.8125, abs=1e-6)
    np.testing.assert_allclose(np.delete(curves["expression"][row], JAW), np.delete(fit.expression[frame], JAW), atol=1e-5)
    export(take_dir, "arkit_csv", tmp_path / "llf.csv")
    with open(tmp_path / "llf.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[frame][LLF_NAMES[JAW]]) == pytest.approx(0.8125, abs=1e-4)
    # without edits the exported value is the fit's
    export(take_dir, "curves_csv", tmp_path / "plain.csv", edits=Edits())
    assert import_curves(tmp_path / "plain.csv")["expression"][row, JAW] == pytest.approx(fit.expression[frame, JAW], abs=1e-5)


def test_flame_components_are_edited_unclamped_and_a_jaw_lock_holds_the_jaw_pose():
    from core.edit import EditBasis

    names = ("exp000", "exp001", "exp002")
    flame = EditBasis(upper_share=np.full(3, 0.5, np.float32), jaw_components=np.zeros(3, bool),
                      eye_components=np.zeros(3, bool), bounds=None, emotion_origin=np.zeros(3, np.float32), names=names)
    n = 10
    fit = dataclasses.replace(FitParams.empty(np.arange(n), np.zeros(3), 3), has_face=np.ones(n, bool),
                              expression=np.full((n, 3), 0.5, np.float32), jaw=np.full((n, 3), 0.2, np.float32),
                              eyes=np.full((n, 6), 0.1, np.float32))
    keys = CurveEdits().set("exp001", [4], [-2.5], has_face=fit.has_face, bounds=flame.bounds, locked=REGIONS)
    layer = EditLayer(intensity=0.5, locked=("jaw",))
    out = apply_edits(fit, Edits((layer,), keys), flame)
    assert out.expression[4, 1] == -2.5  # no bounds, no region: locks do not refuse it
    np.testing.assert_allclose(out.expression[5], 0.25)  # components have no region: the slider scales them
    assert out.jaw.tobytes() == fit.jaw.tobytes()
    np.testing.assert_allclose(out.eyes, fit.eyes)
