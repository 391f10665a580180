"""MediaPipe's yaw-dependent landmark drift: learning it, taking it out, and what the fit gains."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.digest import file_sha256
from core.facemodel.model import FaceModel
from core.facemodel.open_model import load_open_model
from core.facemodel.open_model_authoring import mirror_permutation
from core.fit.fitter import FitConfig, Fitter
from core.observe.headpose import canonical_face, estimate_head_pose
from core.observe.view_bias import (
    VIEW_BIAS_PATH,
    ViewBias,
    ViewBiasError,
    canonical_view,
    learn_score_drift,
    learn_view_bias,
    load_view_bias,
    observed_landmarks,
    observed_scores,
    save_view_bias,
    view_azimuth_deg,
)
from core.take.observations import ObservationArrays

ROOT = Path(__file__).resolve().parents[2]
KDEF = ROOT.parent / "shared" / "expressions" / "kdef"
FLIP = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def mirror() -> np.ndarray:
    return mirror_permutation(canonical_face())


def symmetric_field(rng: np.random.Generator, mirror: np.ndarray, odd: bool) -> np.ndarray:
    """A smooth-ish random 478 x 3 drift with the symmetry of an odd (sin yaw) or even term."""
    field = rng.normal(scale=0.02, size=(478, 3))
    return 0.5 * (field - field[mirror] * FLIP) if odd else 0.5 * (field + field[mirror] * FLIP)


def posed(points: np.ndarray, yaw_deg: float, scale: float = 180.0) -> tuple[np.ndarray, np.ndarray]:
    """Canonical points -> image landmarks under a head turned by ``yaw_deg`` (and a little pitch
    and roll); returns (landmarks, rotation)."""
    rotation = Rotation.from_euler("yxz", [yaw_deg, 4.0, -3.0], degrees=True).as_matrix()
    return scale * points @ rotation.T + np.array([320.0, 240.0, 0.0]), rotation


def test_learning_recovers_a_known_drift_and_correcting_takes_it_out(mirror):
    rng = np.random.default_rng(3)
    truth = ViewBias(symmetric_field(rng, mirror, odd=True), symmetric_field(rng, mirror, odd=False), 45.0)
    base = canonical_face()
    canonical, yaws, faces = [], [], []
    for _ in range(30):
        face = base + rng.normal(scale=0.03, size=base.shape)  # each person's own shape
        views = np.array([rng.normal(0, 2), rng.normal(40, 3), rng.normal(-40, 3)])
        canonical.append(face + truth.field(views) + rng.normal(scale=0.002, size=(3, *base.shape)))
        yaws.append(views)
        faces.append(face)
    learned = learn_view_bias(canonical, yaws, mirror, 45.0, {"sources": "synthetic"})
    assert learned.info == {"sources": "synthetic"}
    for name in ("odd", "even"):
        error = np.abs(getattr(learned, name) - getattr(truth, name)).max()
        assert error < 0.1 * np.abs(getattr(truth, name)).max(), name

    # a new face, turned 30 degrees, observed with the drift: the correction gives it back undrifted
    face = base + rng.normal(scale=0.03, size=base.shape)
    clean, rotation = posed(face, 30.0)
    drifted, _ = posed(face + truth.field(view_azimuth_deg(rotation[None]))[0], 30.0)
    corrected = learned.correct(drifted[None], rotation[None], np.array([180.0]))[0]
    assert np.abs(corrected - clean).max() < 0.1 * np.abs(drifted - clean).max()


def test_a_frontal_face_and_frames_without_a_pose_are_left_as_they_are(mirror):
    rng = np.random.default_rng(0)
    bias = ViewBias(symmetric_field(rng, mirror, True), symmetric_field(rng, mirror, False), 45.0)
    landmarks, rotation = posed(canonical_face(), 0.0)
    out = bias.correct(np.stack([landmarks, landmarks]), np.stack([rotation, np.full((3, 3), np.nan)]),
                       np.array([180.0, np.nan]))
    np.testing.assert_allclose(out, np.stack([landmarks, landmarks]), atol=1e-9)


def test_yaws_beyond_the_learned_range_are_not_extrapolated(mirror):
    rng = np.random.default_rng(1)
    bias = ViewBias(symmetric_field(rng, mirror, True), symmetric_field(rng, mirror, False), 45.0)
    fields = bias.field(np.array([45.0, 70.0, -45.0, -90.0, 20.0]))
    np.testing.assert_allclose(fields[1], fields[0])
    np.testing.assert_allclose(fields[3], fields[2])
    assert not np.allclose(fields[4], fields[0])
    # a face turned left is the mirror image of one turned right
    np.testing.assert_allclose(fields[2], fields[0][mirror] * FLIP, atol=1e-6)


def test_the_view_angle_is_the_cameras_azimuth_seen_from_the_head():
    """Upright, it is the head pose's yaw; for a head lying on its side, a turn about the camera's
    vertical axis shows the face from above or below, not from the side: no yaw drift."""
    from core.observe.headpose import euler_yaw_pitch_roll

    turn = Rotation.from_euler("y", 30, degrees=True).as_matrix()
    on_its_side = turn @ Rotation.from_euler("z", 90, degrees=True).as_matrix()
    assert view_azimuth_deg(turn[None])[0] == pytest.approx(30.0)
    assert view_azimuth_deg(turn[None])[0] == pytest.approx(euler_yaw_pitch_roll(turn)[0])
    assert euler_yaw_pitch_roll(on_its_side)[0] == pytest.approx(30.0)
    assert view_azimuth_deg(on_its_side[None])[0] == pytest.approx(0.0, abs=1e-9)


def test_learning_needs_people_seen_in_two_views(mirror):
    with pytest.raises(ValueError, match="two views"):
        learn_view_bias([canonical_face()[None]], [np.array([0.0])], mirror, 45.0)


def test_a_damaged_file_is_named_with_the_way_to_rebuild_it(tmp_path, mirror):
    path = tmp_path / "bias.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ViewBiasError, match="build_view_bias.py"):
        load_view_bias(path)
    rng = np.random.default_rng(2)
    save_view_bias(ViewBias(rng.normal(size=(10, 3)), rng.normal(size=(10, 3)), 45.0), path)
    with pytest.raises(ViewBiasError, match="478 x 3"):
        load_view_bias(path)
    good = ViewBias(symmetric_field(rng, mirror, True), symmetric_field(rng, mirror, False), 45.0, {"a": 1})
    save_view_bias(good, path)
    first = path.read_bytes()
    save_view_bias(good, path)
    assert path.read_bytes() == first  # the same field, the same bytes: a rebuild that changes nothing refits nothing
    again = load_view_bias(path)
    np.testing.assert_array_equal(again.odd, good.odd.astype(np.float32))
    assert again.info == {"a": 1} and again.max_yaw_deg == 45.0


def test_the_shipped_field_is_built_from_the_current_sources_and_says_where_it_came_from():
    """resources/landmark_view_bias.npz records the SHA-256 of the files that decide it; they must
    be today's (else: rebuild with scripts/build_view_bias.py). It states the photos' terms."""
    bias = load_view_bias(VIEW_BIAS_PATH)
    info = bias.info
    assert "KDEF" in info["sources"]["photos"] and "non-commercial" in info["sources"]["photos"]
    stale = [name for name, digest in info["inputs"].items() if file_sha256(ROOT / name) != digest]
    assert not stale, f"rebuild with scripts/build_view_bias.py: {stale} changed"
    assert info["people"] >= 50
    check = info["check"]  # people left out of the learning: most of the systematic drift goes
    assert check["gap_after"] < 0.6 * check["gap_before"]
    # their scores of one expression photographed frontally and from 45 degrees come closer
    assert check["score_gap_after"] < 0.95 * check["score_gap_before"]
    assert bias.score_odd is not None and bias.score_odd.shape == (52,) and len(info["score_curves"]) == 52
    assert bias.score_variance is not None and bias.score_variance.shape == (52,) and (bias.score_variance >= 0).all()


# --- the blendshape network's scores -------------------------------------------------------------------
NAMES = ("browDownLeft", "browDownRight", "browInnerUp", "eyeLookInLeft", "eyeLookInRight", "tongueOut")
CURVE_MIRROR = np.array([1, 0, 2, 4, 3, 5])


def yaw_rotation(yaw_deg: float) -> np.ndarray:
    return Rotation.from_euler("y", yaw_deg, degrees=True).as_matrix()


def test_learning_the_score_drift_recovers_a_known_one_with_its_mirror_symmetry():
    rng = np.random.default_rng(5)
    odd, even = np.array([-0.3, 0.3, 0.0, 0.0, 0.0, 0.0]), np.array([-0.2, -0.2, 0.1, 0.0, 0.0, 0.0])
    truth = ViewBias(np.zeros((478, 3)), np.zeros((478, 3)), 45.0, score_odd=odd, score_even=even)
    frontal_yaw = rng.normal(0, 2, 60)
    turned_yaw = np.where(rng.random(60) < 0.5, 40.0, -40.0) + rng.normal(0, 3, 60)
    face = rng.uniform(0.3, 0.7, (60, 6))  # each photo's own expression, scored alike from both sides
    frontal = face + truth.score_drift(frontal_yaw) + rng.normal(0, 0.02, (60, 6))
    turned = face + truth.score_drift(turned_yaw) + rng.normal(0, 0.02, (60, 6))
    turned[:, 3:5] += rng.normal(0, 0.3, (60, 2))  # gaze differs from photo to photo: held at zero
    fixed = np.array([False, False, False, True, True, True])
    learned_odd, learned_even, variance = learn_score_drift(frontal, turned, frontal_yaw, turned_yaw, CURVE_MIRROR,
                                                            45.0, fixed)
    np.testing.assert_allclose(learned_odd, odd, atol=0.05)
    np.testing.assert_allclose(learned_even, even, atol=0.05)
    assert (learned_odd[fixed] == 0).all() and (learned_even[fixed] == 0).all() and (variance[fixed] == 0).all()
    # what remains is the photos' noise (0.02 each, about 0.0008 in variance per pair at sin^2 ~ 0.4)
    assert (variance[:3] < 0.01).all()
    # a face turned left scores as the mirror image of one turned right
    drift = ViewBias(np.zeros((478, 3)), np.zeros((478, 3)), 45.0, score_odd=learned_odd,
                     score_even=learned_even).score_drift(np.array([30.0, -30.0]))
    np.testing.assert_allclose(drift[1], drift[0][CURVE_MIRROR], atol=1e-6)
    with pytest.raises(ValueError, match="two pairs"):
        learn_score_drift(frontal[:1], turned[:1], frontal_yaw[:1], turned_yaw[:1], CURVE_MIRROR, 45.0)


def test_a_score_that_wanders_on_one_side_of_a_turned_face_is_learned_as_less_certain_there():
    rng = np.random.default_rng(6)
    frontal_yaw = np.zeros(80)
    turned_yaw = np.where(np.arange(80) % 2 == 0, 40.0, -40.0)
    frontal = rng.uniform(0.3, 0.7, (80, 6))
    turned = frontal + rng.normal(0, 0.01, (80, 6))
    # the brow on the side that turns away (Right when the yaw is positive) is read anyhow
    far = np.where(turned_yaw > 0, 1, 0)
    turned[np.arange(80), far] += rng.normal(0, 0.3, 80)
    _, _, variance = learn_score_drift(frontal, turned, frontal_yaw, turned_yaw, CURVE_MIRROR, 45.0)
    assert variance[1] > 20 * variance[0] and variance[1] > 20 * variance[2]
    bias = ViewBias(np.zeros((478, 3)), np.zeros((478, 3)), 45.0, score_odd=np.zeros(6), score_even=np.zeros(6),
                    score_variance=variance)
    at = bias.score_variance_at(np.array([0.0, 40.0, -40.0, np.nan]), CURVE_MIRROR)
    assert (at[0] == 0).all() and (at[3] == 0).all()  # frontal, and no pose: as certain as ever
    assert at[1, 1] > 20 * at[1, 0]  # turned one way the right brow is uncertain ...
    assert at[2, 0] > 20 * at[2, 1]  # ... turned the other way the left one
    np.testing.assert_allclose(at[1], at[2][CURVE_MIRROR])


def test_correcting_scores_keeps_them_scores_and_leaves_what_it_cannot_know():
    bias = ViewBias(np.zeros((478, 3)), np.zeros((478, 3)), 45.0,
                    score_odd=np.array([-0.3, 0.3, 0.0, 0.0, 0.0, 0.0], np.float32),
                    score_even=np.array([-0.2, -0.2, 0.1, 0.0, 0.0, 0.0], np.float32))
    scores = np.array([[0.05, 0.05, 0.5, 0.2, 0.2, np.nan]] * 3)
    rotation = np.stack([yaw_rotation(40.0), yaw_rotation(0.0), np.full((3, 3), np.nan)])
    out = bias.correct_scores(scores, rotation)
    drift = bias.score_drift(np.array([40.0]))[0]
    np.testing.assert_allclose(out[0, :5], np.clip(scores[0, :5] - drift[:5], 0.0, 1.0))
    assert drift[0] < -0.2 and drift[1] > 0.1  # turned this way, one brow reads less lowered, the other more
    assert out[0, 0] > 0.25 and out[0, 1] == 0.0  # and a score stays a score
    np.testing.assert_array_equal(out[1], scores[1])  # frontal: no drift
    np.testing.assert_array_equal(out[2], scores[2])  # no head pose: as observed
    assert np.isnan(out[:, 5]).all()  # no output stays no output
    # beyond the learned range the drift is not extrapolated
    np.testing.assert_allclose(bias.score_drift(np.array([70.0])), bias.score_drift(np.array([45.0])))
    # a field without a score drift (an older file) leaves the scores as they are
    plain = ViewBias(np.zeros((478, 3)), np.zeros((478, 3)), 45.0)
    np.testing.assert_array_equal(plain.correct_scores(scores, rotation), scores)


def test_the_score_drift_is_stored_with_the_field(tmp_path, mirror):
    rng = np.random.default_rng(4)
    path = tmp_path / "bias.npz"
    odd, even = symmetric_field(rng, mirror, True), symmetric_field(rng, mirror, False)
    save_view_bias(ViewBias(odd, even, 45.0), path)
    assert load_view_bias(path).score_odd is None  # a file from before the score drift still loads
    score_odd, score_even = rng.normal(0, 0.1, 52).astype(np.float32), rng.normal(0, 0.1, 52).astype(np.float32)
    score_variance = rng.uniform(0, 0.1, 52).astype(np.float32)
    save_view_bias(ViewBias(odd, even, 45.0, score_odd=score_odd, score_even=score_even, score_variance=score_variance),
                   path)
    again = load_view_bias(path)
    np.testing.assert_array_equal(again.score_odd, score_odd)
    np.testing.assert_array_equal(again.score_even, score_even)
    np.testing.assert_array_equal(again.score_variance, score_variance)


# --- on real photos: the fit of a half profile ------------------------------------------------------


def single_photo(landmarks: np.ndarray) -> ObservationArrays:
    pose = estimate_head_pose(landmarks)
    observations = ObservationArrays.empty(1)
    observations.landmarks[0] = landmarks
    observations.has_face[0] = True
    observations.head_rotation[0] = pose.rotation
    observations.head_scale[0] = pose.scale
    observations.yaw_pitch_roll[0] = pose.yaw_pitch_roll_deg
    observations.blendshapes[0] = 0.0
    return observations


@pytest.fixture(scope="module")
def kdef_neutrals() -> dict[str, list[np.ndarray]]:
    """16 KDEF people's neutral photos observed (frontal, half-left, half-right image landmarks)."""
    if not (KDEF / "labels.csv").exists():
        pytest.fail("../shared/expressions/kdef is missing: ../shared must sit beside the checkout")
    sys.path.insert(0, str(ROOT))
    from scripts.build_open_model import kdef_photos, observe
    from scripts.build_view_bias import VIEWS

    photos = kdef_photos(KDEF, people=16)
    people = sorted({person for person, _, _ in photos})
    keys = [(p, "neutral", v) for p in people for v in VIEWS]
    landmarks = observe([photos[k] for k in keys])
    out = {}
    for k, person in enumerate(people):
        views = landmarks[3 * k: 3 * k + 3]
        if np.isfinite(views).all():
            out[person] = list(views)
    return out


def test_a_neutral_half_profile_fitted_with_the_frontal_identity_shows_less_false_expression(kdef_neutrals, mirror):
    """The field is learned here from 12 people and tried on 4 others: their neutral half profiles,
    fitted with the identity of their own frontal neutral, should show no expression; without the
    correction the fit reads the view's drift as expression (and leaves a larger residual)."""
    people = sorted(kdef_neutrals)
    learn_on, held_out = people[:12], people[12:]
    views = [[canonical_view(points) for points in kdef_neutrals[person]] for person in learn_on]
    bias = learn_view_bias([np.stack([c for c, _ in v]) for v in views], [np.array([y for _, y in v]) for v in views],
                           mirror, 45.0)
    model = FaceModel(load_open_model())
    false_expression, residual = {}, {}
    for corrected in (False, True):
        fitter = Fitter(model, FitConfig(view_bias=False))
        fitter.view_bias = bias if corrected else None
        totals, residuals = [], []
        for person in held_out:
            frontal, *halves = (single_photo(points) for points in kdef_neutrals[person])
            identity = fitter.fit_identity(frontal, named_neutral=True)
            for half in halves:
                fit = fitter.fit_window(half, identity)
                totals.append(np.abs(fit.expression[0]).sum())
                residuals.append(fit.residual[0])
        false_expression[corrected], residual[corrected] = np.mean(totals), np.mean(residuals)
    assert false_expression[True] < 0.85 * false_expression[False], false_expression
    assert residual[True] < 0.8 * residual[False], residual


def test_the_fit_reads_the_landmarks_with_the_drift_taken_out(kdef_neutrals):
    photo = single_photo(kdef_neutrals[sorted(kdef_neutrals)[0]][1])  # a half profile
    model = FaceModel(load_open_model())
    on, off = Fitter(model, FitConfig()), Fitter(model, FitConfig(view_bias=False))
    assert off.view_bias is None and on.view_bias is not None
    rows = np.array([0])
    np.testing.assert_array_equal(observed_landmarks(photo, rows, None), photo.landmarks[rows])
    moved = np.linalg.norm(observed_landmarks(photo, rows, on.view_bias) - photo.landmarks[rows], axis=2)
    assert moved.max() > 2.0  # pixels, on a 400 x 542 photo turned about 40 degrees
    identity = np.zeros(model.num_shape, np.float32)
    assert not np.allclose(on.fit_window(photo, identity).expression, off.fit_window(photo, identity).expression)
    assert dataclasses.asdict(FitConfig())["view_bias"] is True  # part of the fit's settings: a change refits


def test_the_fit_reads_the_scores_with_the_networks_drift_taken_out(kdef_neutrals):
    photo = single_photo(kdef_neutrals[sorted(kdef_neutrals)[0]][1])  # a half profile, about 40 degrees
    photo.blendshapes[0] = 0.5
    photo.blendshapes[0, -1] = np.nan  # tongueOut: no output
    model = FaceModel(load_open_model())
    on, off = Fitter(model, FitConfig()), Fitter(model, FitConfig(view_bias=False))
    rows = np.array([0])
    np.testing.assert_array_equal(off.observed_scores(photo, rows), photo.blendshapes[rows].astype(np.float64))
    read = on.observed_scores(photo, rows)
    np.testing.assert_array_equal(read, observed_scores(photo, rows, on.view_bias))
    yaw = view_azimuth_deg(photo.head_rotation[rows])
    assert abs(yaw[0]) > 25.0
    np.testing.assert_allclose(read[0, :-1], np.clip(0.5 - on.view_bias.score_drift(yaw)[0, :-1], 0.0, 1.0), atol=1e-6)
    assert np.abs(read[0, :-1] - 0.5).max() > 0.1 and np.isnan(read[0, -1])


def test_a_fit_made_with_another_field_or_without_one_is_redone():
    """The fit's stored settings name the field's digest (a rebuilt field refits the take) and
    whether it was used at all."""
    from types import SimpleNamespace

    from core.facemodel.loading import ModelChoice
    from core.fit.stage import FitStage
    from core.observe.view_bias import view_bias_digest

    ctx = SimpleNamespace(model_choice=ModelChoice())
    on, off = FitStage(FitConfig(), None).settings(ctx), FitStage(FitConfig(view_bias=False), None).settings(ctx)
    assert on["view_bias_sha256"] == view_bias_digest() == file_sha256(VIEW_BIAS_PATH)[:16]
    assert "view_bias_sha256" not in off and on["fit"]["view_bias"] and not off["fit"]["view_bias"]
