"""Learned expression appearance maps: the texture space, the learning, the shipped maps and their
build (core/render/appearance*.py, scripts/build_appearance_maps.py)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.facemodel.open_model import load_open_model
from core.render.appearance import AppearanceMaps, AppearanceMapsError, load_appearance_maps, save_appearance_maps
from core.render.appearance_learning import (
    edge_fade,
    learn_maps,
    log_brightness_change,
    near_outlines,
    texture_space,
    warp_to_texture,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model():
    return load_open_model()


@pytest.fixture(scope="module")
def space(model):
    return texture_space(model.template.astype(np.float64), model.faces)


def test_the_texture_space_is_the_template_from_the_front_with_mirror_pairs_flipped_exactly(model, space):
    perm = np.array(model.info["mirror"])
    height, width = space.size
    uv = space.vertex_uv.astype(np.float64)
    np.testing.assert_allclose(uv[perm, 0], width - 1 - uv[:, 0], atol=1e-4)
    np.testing.assert_allclose(uv[perm, 1], uv[:, 1], atol=1e-4)
    # 1 mm a pixel: the outer eye corners (MediaPipe 33, 263) lie as far apart as on the template
    template_mm = 1000 * np.linalg.norm(model.template[33, :2] - model.template[263, :2])
    assert abs(np.linalg.norm(uv[33] - uv[263]) - template_mm) < 1e-3
    assert uv[263, 0] > uv[33, 0]  # the performer's left is on the right, as in a photo of them
    assert (space.mask == space.mask[:, ::-1]).mean() > 0.99


def test_warping_carries_each_photo_pixel_to_its_point_on_the_face(model, space):
    """Landmarks that are an affine image of the template make the warp that affine map, so an
    image that is an affine function of its pixel coordinates arrives as that function of the
    texture's coordinates, pixel for pixel."""
    scale, shift = 2.5, np.array([210.0, 40.0])
    landmarks = scale * space.vertex_uv.astype(np.float64) + shift
    ys, xs = np.mgrid[0:600, 0:600].astype(np.float32)
    image = 0.2 * xs + 0.1 * ys + 3.0
    texture = warp_to_texture(image, landmarks, space)
    tys, txs = np.nonzero(space.mask)
    expected = 0.2 * (scale * txs + shift[0]) + 0.1 * (scale * tys + shift[1]) + 3.0
    np.testing.assert_allclose(texture[tys, txs], expected, atol=0.02)
    assert np.isnan(texture[~space.mask]).all()


def test_a_brighter_exposure_is_no_change_of_expression():
    rng = np.random.default_rng(0)
    neutral = rng.uniform(40, 200, (30, 20)).astype(np.float32)
    neutral[:3] = np.nan
    change = log_brightness_change(1.3 * neutral + 2.4, neutral)  # exposure, with the floor of 8 kept
    assert np.abs(change[3:]).max() < 1e-5 and (change[:3] == 0).all()
    darker = neutral.copy()
    darker[10:12, 5:8] *= 0.5  # a fold
    change = log_brightness_change(darker, neutral)
    assert np.all(change[10:12, 5:8] < -0.5) and np.abs(np.median(change[3:])) < 1e-6


def test_learning_recovers_known_maps_where_each_shape_may_act_and_keeps_mirror_pairs():
    rng = np.random.default_rng(1)
    height, width, n = 12, 10, 300
    ys, xs = np.mgrid[0:height, 0:width]
    support = np.zeros((3, height, width), bool)
    support[0] = xs < 6  # shape 0: the left side and past the midline
    support[1] = support[0][:, ::-1]  # its mirror partner
    support[2] = ys < 5  # a symmetric shape
    truth = np.zeros((3, height, width))
    truth[0] = np.where(support[0], np.sin(0.7 * xs + 0.3 * ys), 0.0)
    truth[1] = truth[0][:, ::-1]
    truth[2] = np.where(support[2], 0.5 * np.cos(0.9 * xs) * (xs - 4.5) ** 2 / 20, 0.0)
    truth[2] = 0.5 * (truth[2] + truth[2][:, ::-1])
    weights = rng.uniform(0, 1, (n, 3)) * (rng.uniform(size=(n, 3)) < 0.4)
    changes = np.einsum("ne,ehw->nhw", weights, truth) + rng.normal(0, 0.05, (n, height, width))
    mirror = np.array([1, 0, 2])
    maps = learn_maps(changes, weights, support, mirror, ridge=0.1)
    assert maps.shape == (3, height, width) and maps.dtype == np.float32
    assert np.abs(maps - truth)[support].max() < 0.08
    assert (maps[~support] == 0).all()
    np.testing.assert_array_equal(maps[1], maps[0][:, ::-1])
    np.testing.assert_array_equal(maps[2], maps[2][:, ::-1])
    # without the support, the shapes that co-occur would share each other's change
    free = learn_maps(changes, weights, np.ones_like(support), mirror, ridge=0.1)
    assert np.abs(free[2][ys >= 5]).max() < 0.08  # data still say: nothing there
    assert np.abs(free - truth).max() > np.abs(maps - truth).max()


def test_edges_and_features_fade_to_nothing(space):
    fade = edge_fade(space.mask, 6.0)
    assert fade[~space.mask].max() == 0 and fade.max() == pytest.approx(1.0)
    lips = near_outlines(space, ((61, 0, 291, 17),), 2.0)
    mouth = np.round(space.vertex_uv[[13, 14]].mean(axis=0)).astype(int)
    assert lips[mouth[1], mouth[0]] and not lips[int(space.vertex_uv[10, 1]), int(space.vertex_uv[10, 0])]


def test_maps_apply_only_to_models_that_have_their_shapes_and_vertices(tmp_path):
    maps = AppearanceMaps(("browDownLeft", "mouthSmileLeft"), np.zeros((2, 4, 3), np.float32),
                          np.zeros((478, 2), np.float32), {"note": "test"})
    assert maps.fits(478, ("jawOpen", "browDownLeft"))
    assert not maps.fits(5023, ("browDownLeft",))  # FLAME's mesh
    assert not maps.fits(478, ("exp000", "exp001"))
    used, rows = maps.columns(("jawOpen", "mouthSmileLeft", "browDownLeft"))
    assert used.tolist() == [1, 2] and rows.tolist() == [1, 0]
    save_appearance_maps(maps, tmp_path / "maps.npz")
    again = load_appearance_maps(tmp_path / "maps.npz")
    assert again.names == maps.names and again.info == {"note": "test"} and again.maps.shape == (2, 4, 3)
    with pytest.raises(ValueError, match="maps"):
        AppearanceMaps(("a",), np.zeros((2, 4, 3), np.float32), np.zeros((478, 2), np.float32))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for path in (tmp_path / "missing.npz", tmp_path / "junk.npz"):
        with pytest.raises(AppearanceMapsError, match="rebuild them with scripts/build_appearance_maps.py"):
            load_appearance_maps(path)


# --- the shipped maps and their build --------------------------------------------------------------


def region_mean(maps: AppearanceMaps, name: str, vertices, radius_px: float) -> float:
    """Mean of a shape's map within radius_px of the given vertices."""
    grid = maps.maps[maps.names.index(name)]
    ys, xs = np.mgrid[0:grid.shape[0], 0:grid.shape[1]]
    near = np.any([np.hypot(xs - u, ys - v) < radius_px for u, v in maps.vertex_uv[list(vertices)]], axis=0)
    return float(grid[near].mean())


def test_the_shipped_maps_darken_the_folds_each_shape_makes():
    maps = load_appearance_maps()
    assert "KDEF" in maps.info["sources"]["photos"] and "non-commercial" in maps.info["sources"]["photos"]
    # lowered brows shadow the skin between the brow and the upper lid (MediaPipe 286, 442, 443
    # on the performer's left)
    assert region_mean(maps, "browDownLeft", [286, 442, 443], 4) < -0.1
    # raised inner brows fold down beside the brows' outer ends (71, 301)
    assert region_mean(maps, "browInnerUp", [71, 301], 4) < -0.1
    # the brows, lips and eye openings themselves keep the reference's look: in the photos their
    # brightness changes mostly as the hair, teeth and sclera slide against a mesh too coarse for them
    for name in ("browDownLeft", "browInnerUp", "mouthSmileLeft", "eyeSquintLeft"):
        for feature in ([334, 296], [13, 14], [159, 145], [386, 374]):  # brow, inner lips, each eye's lids
            assert region_mean(maps, name, feature, 1) == 0, (name, feature)
    # a smile deepens the fold between the cheek and the upper lip (left: 410, 436, 426)
    assert region_mean(maps, "mouthSmileLeft", [410, 436, 426], 5) < -0.2
    # a sneer darkens beside the nose (309, 438)
    assert region_mean(maps, "noseSneerLeft", [309, 438], 4) < -0.1
    # and nothing far from a shape: the smile's map leaves the forehead, the brow's the chin
    assert region_mean(maps, "mouthSmileLeft", [151, 10], 10) == 0
    assert region_mean(maps, "browDownLeft", [152, 17], 10) == 0
    # blinks and gaze: the render's eye layer draws them; learned, they whitened closed lids
    for name in ("eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookInRight", "tongueOut"):
        assert not maps.maps[maps.names.index(name)].any(), name
    np.testing.assert_array_equal(maps.maps[maps.names.index("browDownLeft")],
                                  maps.maps[maps.names.index("browDownRight")][:, ::-1])


def build_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/build_appearance_maps.py", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_the_shipped_maps_are_built_from_the_current_model_sources_and_photos():
    """resources/appearance_maps.npz records the SHA-256 of every file that decides its numbers (the
    open model among them) and of the KDEF photos; they must be today's (else: rebuild with
    scripts/build_appearance_maps.py)."""
    result = build_script("--verify")
    assert result.returncode == 0, result.stderr
    build = load_appearance_maps().info["build"]
    assert build["people_limit"] is None and build["photo_count"] == 56 * 7


def test_a_quick_build_learns_maps_and_verify_rejects_other_inputs(tmp_path):
    out = tmp_path / "maps.npz"
    result = build_script("--people", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rebuilt = load_appearance_maps(out)
    shipped = load_appearance_maps()
    assert rebuilt.names == shipped.names and rebuilt.maps.shape == shipped.maps.shape
    assert rebuilt.info["expression_photos"] == 18 and rebuilt.info["build"]["inputs"] == shipped.info["build"]["inputs"]
    assert np.abs(rebuilt.maps).max() > 0.1
    assert build_script("--verify", "--out", str(out)).returncode == 0
    doctored = {**rebuilt.info, "build": {**rebuilt.info["build"], "inputs": {
        **rebuilt.info["build"]["inputs"], "resources/open_face_model.npz": "0" * 64}}}
    save_appearance_maps(AppearanceMaps(rebuilt.names, rebuilt.maps, rebuilt.vertex_uv, doctored), out)
    result = build_script("--verify", "--out", str(out))
    assert result.returncode == 1 and "resources/open_face_model.npz changed" in result.stderr


def test_the_judge_s_ceiling_drives_the_maps_by_the_curves_and_keeps_the_real_motion_s_geometry(tmp_path, model):
    """scripts/render_judge_ceiling.py's ``maps`` renders: the same mesh as without the maps (the
    motion less what its curves move is the extra shape), the skin changed only by the maps."""
    from scripts.render_judge_ceiling import analyse, render_shapes
    from tests.conftest import fixture_path

    fit, observations, image = analyse(fixture_path("single_face.jpg"), tmp_path / "carrier")
    names = list(model.expression_names)
    curves = np.zeros((1, len(names)))
    curves[0, [names.index("browDownLeft"), names.index("browDownRight")]] = 0.8
    motion = np.einsum("vce,ke->kvc", model.expression_basis.astype(np.float64), curves)
    plain, _ = render_shapes(model, fit, observations, image, motion, shading=True)
    mapped, _ = render_shapes(model, fit, observations, image, motion, shading=True, curves=curves)
    assert np.array_equal(plain[0], mapped[0])  # the carrier itself
    changed = np.abs(plain[1].astype(int) - mapped[1]).max(axis=2)
    rows = np.nonzero(changed > 8)[0]
    assert len(rows) > 50 and rows.max() < 0.65 * plain.shape[1]  # about the brows and eyes, never the mouth
    assert (np.abs(plain[1].astype(int) - mapped[1]) > 0).mean() < 0.2
