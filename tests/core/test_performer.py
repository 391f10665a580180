"""Per-performer calibration: the profile file, `emocap calibrate`, and analyses that use a profile."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.errors import FaceModelError, PerformerProfileError
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import load_open_model, open_model_digest
from core.performer.calibrate import without_joint_motion
from core.performer.profile import PerformerProfile, apply_profile, load_profile, profile_digest, save_profile
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def wolfgang_profile(tmp_path_factory, wolfgang_take):
    """A profile calibrated by the CLI on the analysed Wolfgang clip: (profile path, report)."""
    _, take_dir = wolfgang_take
    out = tmp_path_factory.mktemp("performer") / "wolfgang.npz"
    result = run_cli("calibrate", str(take_dir), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out, json.loads(result.stdout)


def _small_profile(base, name="p") -> PerformerProfile:
    rng = np.random.default_rng(1)
    return PerformerProfile(
        name=name, identity=rng.normal(size=base.num_shape).astype(np.float32),
        neutral_offset=(1e-3 * rng.normal(size=(base.num_vertices, 3))).astype(np.float32),
        expression_basis=1.1 * base.expression_basis, neutral_scores=np.zeros(base.num_expression, np.float32),
        base_model_sha256=open_model_digest(), info={"note": "test"})


def test_profile_round_trip_and_model(tmp_path):
    base = load_open_model()
    profile = _small_profile(base)
    path = save_profile(profile, tmp_path / "actor")
    assert path.name == "actor.npz"
    back = load_profile(path)
    for key in ("identity", "neutral_offset", "expression_basis", "neutral_scores"):
        np.testing.assert_allclose(getattr(back, key), getattr(profile, key), atol=1e-7)
    assert back.info == {"note": "test"} and back.base_model_sha256 == open_model_digest()
    applied = apply_profile(base, back)
    np.testing.assert_allclose(applied.template, base.template + back.neutral_offset, atol=1e-7)
    np.testing.assert_allclose(applied.expression_basis, back.expression_basis)
    assert applied.name.endswith("+p")


def test_a_profile_s_view_drift_is_stored_and_checked(tmp_path):
    from core.performer.view_drift import NUM_FEATURES, ViewDrift

    base = load_open_model()
    rng = np.random.default_rng(3)
    drift = ViewDrift(rng.normal(scale=0.01, size=(NUM_FEATURES, base.num_vertices, 3)), (-12.5, 20.0), (-9.0, 4.0))
    profile = PerformerProfile(**{**_small_profile(base).__dict__, "view_drift": drift})
    back = load_profile(save_profile(profile, tmp_path / "drifting"))
    np.testing.assert_allclose(back.view_drift.fields, drift.fields, atol=1e-7)
    assert back.view_drift.azimuth_range_deg == (-12.5, 20.0) and back.view_drift.elevation_range_deg == (-9.0, 4.0)
    assert load_profile(save_profile(_small_profile(base), tmp_path / "still")).view_drift is None
    wrong = PerformerProfile(**{**profile.__dict__, "view_drift": ViewDrift(drift.fields[:, :10], (0.0, 1.0), (0.0, 1.0))})
    with pytest.raises(PerformerProfileError, match="view drift"):
        apply_profile(base, wrong)


def test_bad_profiles_get_clear_errors(tmp_path):
    base = load_open_model()
    with pytest.raises(PerformerProfileError, match="not found"):
        load_profile(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a profile")
    with pytest.raises(PerformerProfileError, match="not a readable performer profile"):
        load_profile(tmp_path / "junk.npz")
    wrong = _small_profile(base)
    wrong = PerformerProfile(**{**wrong.__dict__, "expression_basis": wrong.expression_basis[..., :10]})
    with pytest.raises(PerformerProfileError, match="does not fit the open model"):
        apply_profile(base, wrong)
    other_build = PerformerProfile(**{**_small_profile(base).__dict__, "base_model_sha256": "0" * 16})
    path = save_profile(other_build, tmp_path / "old.npz")
    with pytest.raises(PerformerProfileError, match="another build of the open model"):
        load_face_model(ModelChoice(performer=str(path)))
    with pytest.raises(FaceModelError, match="open model only"):
        load_face_model(ModelChoice("flame", flame_path=str(tmp_path / "x.pkl"), performer=str(path)))


def test_held_out_blocks_are_spread_over_the_take():
    from core.performer.calibrate import MIN_CHECKED_FRAMES, held_out_blocks

    assert held_out_blocks(472, 0.2, 48) == [(94, 141), (330, 377)]
    blocks = held_out_blocks(3000, 0.2, 60)
    assert len(blocks) == 10 and all(b - a == 60 for a, b in blocks)
    starts = np.array([a for a, _ in blocks])
    np.testing.assert_array_equal(np.diff(starts), 300)  # evenly spread, the take's end included
    assert blocks[0][0] == 120 and blocks[-1][1] == 2880
    assert held_out_blocks(72, 0.2, 60) == [(29, 43)]  # a short clip: one block of its share
    assert held_out_blocks(MIN_CHECKED_FRAMES - 1, 0.2, 60) == [] and held_out_blocks(500, 0.0, 60) == []


def test_parts_of_a_take_without_a_face_are_left_out(wolfgang_take):
    import dataclasses

    from core.performer.calibrate import PerformerCalibration, PerformerTake, calibrate_performer
    from core.take import Take

    take = Take.open(wolfgang_take[1])
    observations, fit = take.load_observations(), take.read_fit(closures=False)

    def without_face(*spans) -> PerformerTake:
        gone = np.zeros(len(observations.index), bool)
        for a, b in spans:
            gone[a:b] = True
        return PerformerTake(dataclasses.replace(observations, has_face=observations.has_face & ~gone),
                             dataclasses.replace(fit, has_face=fit.has_face & ~gone), {"path": "wolfgang"})

    config = PerformerCalibration(rounds=1)
    # the face leaves for the whole stretch between the held-out blocks (94-140, 330-376)
    _, report = calibrate_performer("w", [without_face((141, 330))], load_open_model(), open_model_digest(), config)
    assert report.held_out_frames == 70 and report.held_out_residual_performer < report.held_out_residual_generic
    # ... or for both held-out blocks: nothing to report on, rather than NaN
    _, report = calibrate_performer("w", [without_face((94, 141), (330, 377))], load_open_model(), open_model_digest(),
                                    config)
    assert report.held_out_frames == 0 and report.held_out_residual_generic is None


def test_neutral_detail_moves_no_joint():
    base = load_open_model()
    offset = np.random.default_rng(2).normal(size=(base.num_vertices, 3)) * 1e-3
    kept = without_joint_motion(offset, base.joint_regressor)
    np.testing.assert_allclose(base.joint_regressor @ kept, 0.0, atol=1e-12)
    support = (base.joint_regressor != 0).any(axis=0)  # the vertices the joints are regressed from
    np.testing.assert_array_equal(kept[~support], offset[~support])
    assert np.abs(kept[support] - offset[support]).max() > 0


def test_calibrate_reports_held_out_residual(wolfgang_profile):
    path, report = wolfgang_profile
    # two held-out blocks of 47 frames (frames 94-140 and 330-376), judged less 6 frames at each end
    assert report["frames"] == 472 and report["held_out_frames"] == 70
    # learned on the stretches between, the performer's model fits its own frames and the held-out
    # blocks closer than the generic one (same identity)
    assert report["training_residual_performer"] < 0.9 * report["training_residual_generic"]
    assert report["held_out_residual_performer"] < 0.95 * report["held_out_residual_generic"]
    profile = load_profile(path)
    assert profile.info["built_from"]["takes"][0]["path"].endswith("WolfgangLanger_Pexels.mp4")
    assert profile.info["report"]["held_out_residual_generic"] == report["held_out_residual_generic"]
    base = load_open_model()
    moved = np.abs(profile.expression_basis - base.expression_basis).max(axis=(0, 1))
    names = list(base.expression_names)
    assert moved[names.index("noseSneerLeft")] == 0.0 and moved[names.index("mouthSmileLeft")] > 1e-3
    # shapes the fitter hardly uses keep the generic shape instead of growing to explain noise
    assert moved[names.index("jawLeft")] == 0.0 and moved[names.index("tongueOut")] == 0.0
    # mirror pairs stay exact, and the face's outline stays generic
    perm = np.asarray(base.info["mirror"])
    from core.facemodel.open_model_authoring import mirror_field
    from core.observe.landmark_ids import FACE_OVAL

    left, right = names.index("mouthSmileLeft"), names.index("mouthSmileRight")
    np.testing.assert_allclose(mirror_field(profile.expression_basis[..., left].astype(np.float64), perm),
                               profile.expression_basis[..., right], atol=1e-6)
    np.testing.assert_array_equal(profile.expression_basis[list(FACE_OVAL)], base.expression_basis[list(FACE_OVAL)])
    np.testing.assert_allclose(base.joint_regressor @ profile.neutral_offset, 0.0, atol=1e-6)
    # how the landmarks of this face drift as the head turns and nods is learned, and reported
    assert profile.view_drift is not None and report["view_drift_mm"] > 0.1
    assert profile.view_drift.azimuth_range_deg[1] - profile.view_drift.azimuth_range_deg[0] > 10.0
    # and how far each shape was seen, beside how far it moved: the clip laughs broadly
    reach = report["shape_reach"]
    assert set(reach) == set(names) and all(0.0 <= r <= 1.0 for r in reach.values())
    assert reach["mouthSmileLeft"] > 0.5 and reach["tongueOut"] < 0.1
    import dataclasses

    from core.performer.calibrate import CalibrationReport
    from core.performer.cli_calibrate import format_report

    fields = {f.name: report[f.name] for f in dataclasses.fields(CalibrationReport)}
    text = format_report("wolfgang", path, CalibrationReport(**fields))
    top = max(report["shape_change_mm"], key=report["shape_change_mm"].get)
    assert f"{top} {report['shape_change_mm'][top]:.1f} mm (seen up to {reach[top]:.2f})" in text


def test_generic_outline_decides_whether_the_outline_learns(wolfgang_take):
    from core.observe.landmark_ids import FACE_OVAL
    from core.performer.calibrate import PerformerCalibration, PerformerTake, calibrate_performer
    from core.take import Take

    take = Take.open(wolfgang_take[1])
    part = PerformerTake(take.load_observations(), take.read_fit(closures=False), {"path": "wolfgang"})
    base = load_open_model()
    outline = list(FACE_OVAL)
    inside = np.setdiff1d(np.arange(base.num_vertices), outline)
    profiles = {kept: calibrate_performer("w", [part], base, open_model_digest(),
                                          PerformerCalibration(rounds=1, generic_outline=kept))[0] for kept in (True, False)}
    np.testing.assert_array_equal(profiles[True].expression_basis[outline], base.expression_basis[outline])
    assert np.abs(profiles[False].expression_basis[outline] - base.expression_basis[outline]).max() > 1e-4
    # the rest of the face learns in both
    for profile in profiles.values():
        assert np.abs(profile.expression_basis[inside] - base.expression_basis[inside]).max() > 1e-3


def test_analyze_with_performer_uses_and_records_the_profile(tmp_path, wolfgang_profile, wolfgang):
    from core.pipeline import Pipeline, PipelineConfig
    from core.take import Take

    path, _ = wolfgang_profile
    profile = load_profile(path)
    take_dir = tmp_path / "with_profile"
    result = run_cli("analyze", str(wolfgang), "--out", str(take_dir), "--no-emotion", "--performer", str(path), "--json")
    assert result.returncode == 0, result.stderr
    take = Take.open(take_dir)
    # the fit read the landmarks with the performer's view drift taken out
    from core.fit.fitter import Fitter, slice_observations

    first_window = Fitter(load_face_model(ModelChoice())).config.window
    stored = take.read_fit(closures=False).expression[:first_window]
    window = slice_observations(take.load_observations(), 0, first_window)
    fitted = {}
    for drift in (None, profile.view_drift):
        fitter = Fitter(load_face_model(ModelChoice(performer=str(path))))
        fitter.use_neutral_scores(profile.neutral_scores)
        fitter.use_identity_mean(profile.identity)
        fitter.use_view_drift(drift)
        fitted[drift is None] = fitter.fit_window(window, take.read_identity()).expression
    np.testing.assert_array_equal(fitted[False], stored)  # as the analysis fitted its first window
    assert np.abs(fitted[True] - stored).max() > 0.01
    settings = take.manifest.fit.settings
    assert settings["performer"] == str(path.resolve()) and settings["performer_sha256"] == profile_digest(path)
    assert take.manifest.fit.model.endswith("+wolfgang")
    # the take's neutral refines the performer's identity: it stays nearer it than the mean face
    identity = take.read_identity()
    assert np.linalg.norm(identity - profile.identity) < 0.5 * np.linalg.norm(profile.identity)
    # everything downstream (views, exports) builds the performer's model from the take's settings
    model = load_face_model(ModelChoice.from_settings(settings))
    np.testing.assert_allclose(model.expression_basis.numpy(), profile.expression_basis, atol=1e-7)
    meshes = {}
    for shapes in ("performer", "generic"):
        out = tmp_path / f"obj_{shapes}"
        result = run_cli("export", str(take_dir), "--format", "obj_seq", "--out", str(out), "--range", "0:2",
                         "--shapes", shapes)
        assert result.returncode == 0, result.stderr
        first = sorted(out.glob("*.obj"))[0]
        meshes[shapes] = np.array([[float(x) for x in line.split()[1:4]] for line in first.read_text().splitlines()
                                   if line.startswith("v ")])
    # the same curves on the performer's mesh and shapes, or on the open model's own
    assert meshes["performer"].shape == meshes["generic"].shape
    assert np.abs(meshes["performer"] - meshes["generic"]).max() > 1e-4

    # a rerun with the same profile is current; a recalibrated profile is noticed, not silently used
    summary = Pipeline(PipelineConfig(device="cpu", model=ModelChoice(performer=str(path)))).run(wolfgang, take_dir)
    assert summary.status == "complete"
    changed = tmp_path / "changed.npz"
    shutil.copy(path, changed)
    fitted = dict(settings, performer=str(changed))
    save_profile(PerformerProfile(**{**profile.__dict__, "identity": profile.identity + 0.1}), changed)
    with pytest.raises(PerformerProfileError, match="changed since this take was fitted"):
        load_face_model(ModelChoice.from_settings(fitted))


def test_calibrate_analyses_a_recording_with_the_named_neutral(tmp_path):
    from core.take import Take
    from tests.conftest import fixture_path

    out = tmp_path / "actor.npz"
    result = run_cli("calibrate", str(fixture_path("single_face.mp4")), "--out", str(out), "--neutral", "5", "--json")
    assert result.returncode == 0, result.stderr
    take = Take.open(tmp_path / "actor.takes" / "single_face")
    assert take.manifest.fit.settings["neutral"] == {"frame": 5}
    assert load_profile(out).info["built_from"]["neutral_rows_first_take"] == [5]

    result = run_cli("calibrate", str(fixture_path("no_face.mp4")), "--out", str(tmp_path / "nobody.npz"))
    assert result.returncode == 3 and "no face found" in result.stderr
    assert not (tmp_path / "nobody.npz").exists()
