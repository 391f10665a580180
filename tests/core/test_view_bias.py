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
    learn_view_bias,
    load_view_bias,
    observed_landmarks,
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
