"""Software rasteriser (exact coverage, barycentrics, z-buffer, texturing) and the reconstruction
renderer on a real fixture take."""

import dataclasses

import cv2
import numpy as np
import pytest

from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.model import FaceModel
from core.facemodel.open_model import load_open_model
from core.observe.align import warp_crop
from core.pipeline import Pipeline, PipelineConfig
from core.render.rasterizer import alpha_mask, interpolate, rasterize, render_shaded, render_textured
from core.render.reconstruction import FACE_OVAL, MOUTH, ReconstructionRenderer, choose_reference_frame
from core.render.shading import LUMA, SkinShadowColour, SurfaceShader, smooth_normals
from core.render.subdivision import LoopSubdivision, _loop_step
from core.take import Take
from core.video import open_source
from tests.conftest import fixture_path

# ---------------------------------------------------------------------------------------------------
# Rasteriser
# ---------------------------------------------------------------------------------------------------


def pixel_set(mask: np.ndarray) -> set[tuple[int, int]]:
    ys, xs = np.nonzero(mask)
    return set(zip(xs.tolist(), ys.tolist()))


def test_triangle_covers_exactly_the_pixel_centres_inside_it_by_the_top_left_rule():
    # right triangle (1,1) (5,1) (1,5): top edge y=1 and left edge x=1 are in, the hypotenuse
    # x + y = 6 is out (pixel centres are at integer coordinates)
    vertices = np.array([[1, 1, 0], [5, 1, 0], [1, 5, 0]], float)
    expected = {(x, y) for x in range(8) for y in range(8) if x >= 1 and y >= 1 and x + y < 6}
    for faces in ([[0, 1, 2]], [[0, 2, 1]]):  # either winding
        frags = rasterize(vertices, np.array(faces), (8, 8))
        assert pixel_set(frags.mask) == expected
        assert (frags.triangle[~frags.mask] == -1).all()
        assert np.isinf(frags.depth[~frags.mask]).all()
        assert (frags.barycentric[~frags.mask] == 0).all()
    assert len(expected) == 10


def test_back_faces_are_culled_on_request():
    vertices = np.array([[1, 1, 0], [5, 1, 0], [1, 5, 0]], float)
    ccw_on_screen = np.array([[0, 2, 1]])  # (1,1) -> (1,5) -> (5,1): counter-clockwise with y down
    cw_on_screen = np.array([[0, 1, 2]])
    assert rasterize(vertices, ccw_on_screen, (8, 8), cull_backfaces=True).mask.sum() == 10
    assert rasterize(vertices, cw_on_screen, (8, 8), cull_backfaces=True).mask.sum() == 0


def test_a_fan_around_an_off_grid_point_tiles_its_square_without_gaps_or_overlaps():
    rng = np.random.default_rng(0)
    corners = [(2, 3), (13, 3), (13, 11), (2, 11)]
    for _ in range(50):
        centre = (rng.uniform(2.5, 12.5), rng.uniform(3.5, 10.5))
        vertices = np.array([*corners, centre, (7.5, 3), (13, 7.25)], float)
        vertices = np.concatenate([vertices, np.zeros((len(vertices), 1))], axis=1)
        faces = np.array([[4, 0, 5], [4, 5, 1], [4, 1, 6], [4, 6, 2], [4, 2, 3], [4, 3, 0]])
        count = sum(rasterize(vertices, faces[[k]], (16, 16)).mask.astype(int) for k in range(len(faces)))
        square = np.zeros((16, 16), int)
        square[3:11, 2:13] = 1  # y in [3, 11), x in [2, 13)
        np.testing.assert_array_equal(count, square)
        assert (rasterize(vertices, faces, (16, 16)).mask == square.astype(bool)).all()


def test_barycentrics_sum_to_one_and_interpolate_the_vertices():
    vertices = np.array([[2.3, 1.7, 5.0], [27.9, 6.1, 1.0], [9.4, 28.2, 3.0]])
    frags = rasterize(vertices, np.array([[0, 1, 2]]), (32, 32))
    mask = frags.mask
    assert mask.sum() > 250
    bary = frags.barycentric[mask].astype(np.float64)
    np.testing.assert_allclose(bary.sum(axis=1), 1.0, atol=1e-6)
    assert (bary >= -1e-7).all()
    ys, xs = np.nonzero(mask)
    np.testing.assert_allclose(bary @ vertices[:, :2], np.stack([xs, ys], axis=1), atol=1e-4)
    np.testing.assert_allclose(frags.depth[mask], bary @ vertices[:, 2], atol=1e-5)
    np.testing.assert_allclose(interpolate(frags, vertices)[mask], bary @ vertices, atol=1e-4)


def test_z_buffer_keeps_the_nearer_of_two_overlapping_triangles():
    near = np.array([[0, 0, 1.0], [20, 0, 1.0], [0, 20, 1.0]])
    far = np.array([[4, 4, 5.0], [24, 4, 5.0], [4, 24, 5.0]])
    vertices = np.concatenate([far, near])
    for faces in ([[0, 1, 2], [3, 4, 5]], [[3, 4, 5], [0, 1, 2]]):  # drawing order does not matter
        faces = np.array(faces)
        frags = rasterize(vertices, faces, (32, 32))
        near_id = int(np.nonzero((faces == [3, 4, 5]).all(axis=1))[0][0])
        alone_near = rasterize(near, np.array([[0, 1, 2]]), (32, 32)).mask
        alone_far = rasterize(far, np.array([[0, 1, 2]]), (32, 32)).mask
        assert (alone_near & alone_far).sum() > 50
        assert (frags.triangle[alone_near] == near_id).all()
        assert (frags.triangle[alone_far & ~alone_near] == 1 - near_id).all()
        assert (frags.depth[alone_near] == 1.0).all()
        assert (frags.triangle[~(alone_near | alone_far)] == -1).all()


def test_textured_render_reproduces_the_texture_under_the_identity_mapping():
    rng = np.random.default_rng(1)
    texture = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    h, w = texture.shape[:2]
    vertices = np.array([[0, 0, 0], [w, 0, 0], [w, h, 0], [0, h, 0]], float)  # covers every centre
    faces = np.array([[0, 2, 1], [0, 3, 2]])
    frags = rasterize(vertices, faces, (h, w))
    assert frags.mask.all()
    np.testing.assert_array_equal(render_textured(frags, vertices[:, :2], texture), texture)
    # background where nothing is drawn
    half = rasterize(vertices, faces[:1], (h, w))
    out = render_textured(half, vertices[:, :2], texture, background=(7, 8, 9))
    np.testing.assert_array_equal(out[half.mask], texture[half.mask])
    assert (out[~half.mask] == (7, 8, 9)).all()


def test_shaded_render_and_alpha_mask():
    vertices = np.array([[4, 4, 0], [60, 4, 0], [4, 60, 0]], float)
    frags = rasterize(vertices, np.array([[0, 2, 1]]), (64, 64))
    shaded = render_shaded(frags, vertices, light_dir=(0, 0, -1), color=(200, 100, 50))
    assert (shaded[frags.mask] == (200, 100, 50)).all()  # flat, facing the light
    assert (shaded[~frags.mask] == 0).all()
    alpha = alpha_mask(frags, feather_px=2.0)
    assert alpha.min() == 0.0 and alpha.max() == 1.0
    assert (alpha[~frags.mask] == 0).all() and (alpha[frags.mask] > 0).all()
    assert alpha[10, 10] == 1.0 and alpha[4, 30] < 1.0


# ---------------------------------------------------------------------------------------------------
# Reconstruction renderer
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    take_dir = tmp_path_factory.mktemp("render") / "single_face"
    Pipeline(PipelineConfig(device="cpu")).run(fixture_path("single_face.mp4"), take_dir)
    take = Take.open(take_dir)
    return take, take.read_fit(), take.load_observations(), load_face_model(ModelChoice())


@pytest.fixture(scope="module")
def renderer(take):
    take_, fit, observations, model = take
    renderer = ReconstructionRenderer(model, fit, observations)
    with open_source(take_.manifest.source.path) as source:
        renderer.set_reference(renderer.reference_frame, source.read(renderer.reference_frame))
    return renderer


def real_crop(take_, observations, frame):
    with open_source(take_.manifest.source.path) as source:
        return warp_crop(source.read(frame), observations.crop_transform[frame].astype(np.float64))


def test_reference_is_the_frame_with_the_least_expression(take, renderer):
    _, fit, _, _ = take
    rows = np.nonzero(fit.has_face)[0]
    activity = np.abs(fit.expression[rows]).sum(axis=1)
    assert renderer.reference_frame == choose_reference_frame(fit) == int(fit.frame_index[rows[np.argmin(activity)]])


def test_reference_frame_renders_as_its_own_crop(take, renderer):
    take_, _, observations, _ = take
    frame = renderer.reference_frame
    rgb, mask = renderer.render_crop(frame)
    assert rgb.shape == (256, 256, 3) and rgb.dtype == np.uint8 and mask.shape == (256, 256)
    assert 0.15 < mask.mean() < 0.6
    crop = real_crop(take_, observations, frame)
    diff = np.abs(rgb.astype(np.float64) - crop)
    mad = diff[mask].mean()
    # skin only: the mesh's own triangles, away from the synthetic mouth and the feathered outline
    frags, _ = renderer.fragments(frame)
    skin = (frags.triangle >= 0) & (frags.triangle < renderer.layers["skin"][1])
    skin = cv2.erode(skin.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    mad_skin = diff[skin].mean()
    print(f"reference frame {frame}: mean abs difference {mad:.3f} in the mask, {mad_skin:.4f} on the skin")
    assert mad < 4.0
    assert mad_skin < 1.0
    # the render is not just the crop: outside the reference, the same texture moves with the fit
    assert diff[mask].max() > 0


def test_another_expression_renders_differently(take, renderer):
    take_, fit, observations, model = take
    ref = renderer.reference_frame
    rows = np.nonzero(fit.has_face)[0]
    distance = np.abs(fit.expression[rows] - fit.expression[ref]).sum(axis=1)
    frame = int(rows[np.argmax(distance)])
    assert distance.max() > 1.0
    rgb, mask = renderer.render_crop(frame)
    # the same frame (pose, camera, crop) with the reference's expression: only the expression differs
    expression = fit.expression.copy()
    expression[frame] = fit.expression[ref]
    neutral_fit = dataclasses.replace(fit, expression=expression)
    other = ReconstructionRenderer(model, neutral_fit, observations, reference_frame=ref)
    with open_source(take_.manifest.source.path) as source:
        other.set_reference(ref, source.read(ref))
    neutral_rgb, neutral_mask = other.render_crop(frame)
    both = mask | neutral_mask
    diff = np.abs(rgb.astype(np.float64) - neutral_rgb).max(axis=2)
    changed = (diff > 30) & both
    print(f"frame {frame} vs its expression set to the reference's: {changed.sum()} pixels differ by > 30, "
          f"mean abs difference {diff[both].mean():.2f}")
    assert changed.sum() > 150
    # the pose, camera and texture are the same: the change is local (eyes, brows, mouth)
    assert changed.sum() < 0.3 * both.sum()
    # and the render is not the frame's own crop (its pixels are never used)
    crop = real_crop(take_, observations, frame)
    assert not np.array_equal(rgb[mask], crop[mask])


def test_batch_equals_single_renders_and_errors_are_clear(take, renderer):
    _, fit, observations, model = take
    frames = [0, renderer.reference_frame, len(fit) - 1]
    rgb, mask = renderer.render_crop_batch(frames)
    assert rgb.shape == (3, 256, 256, 3) and mask.shape == (3, 256, 256)
    for k, frame in enumerate(frames):
        single, single_mask = renderer.render_crop(frame)
        # the model evaluated on a batch rounds a little differently from one frame alone
        diff = np.abs(rgb[k].astype(int) - single)
        assert diff.max() <= 3 and (diff > 0).mean() < 1e-3
        assert (mask[k] != single_mask).sum() <= 3
    fresh = ReconstructionRenderer(model, fit, observations, background="grey")
    with pytest.raises(RuntimeError, match="set_reference"):
        fresh.render_crop(0)
    with pytest.raises(ValueError, match="no fitted face"):
        fresh.render_crop_batch([len(fit) + 5])
    with pytest.raises(ValueError, match="uint8"):
        fresh.set_reference(0, np.zeros((10, 10, 3), np.float32))


def test_a_smaller_render_is_the_same_crop_with_fewer_pixels(take, renderer):
    """render_crop_batch(size=128) draws the same aligned crop as 256 does, at half the pixels:
    the face covers the same part of it, and the full render shrunk to 128 looks the same."""
    _, fit, _, _ = take
    frames = [renderer.reference_frame, len(fit) - 1]
    full_rgb, full_mask = renderer.render_crop_batch(frames)
    rgb, mask = renderer.render_crop_batch(frames, size=128)
    assert rgb.shape == (2, 128, 128, 3) and mask.shape == (2, 128, 128)
    for k in range(len(frames)):
        shrunk_mask = cv2.resize(full_mask[k].astype(np.float32), (128, 128), interpolation=cv2.INTER_AREA) > 0.5
        overlap = (mask[k] & shrunk_mask).sum() / (mask[k] | shrunk_mask).sum()
        shrunk = cv2.resize(full_rgb[k], (128, 128), interpolation=cv2.INTER_AREA).astype(np.float64)
        inside = cv2.erode(mask[k].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        difference = np.abs(rgb[k] - shrunk).max(axis=2)[inside].mean()
        print(f"frame {frames[k]}: mask overlap {overlap:.3f}, mean abs difference {difference:.2f} inside the face")
        assert overlap > 0.97
        assert difference < 6.0
    with pytest.raises(ValueError, match="positive"):
        renderer.render_crop_batch(frames, size=0)


def test_an_open_mouth_shows_its_cavity_when_the_neutral_lips_touch(take):
    """The mean face (identity 0) has exactly touching inner lips; its opened mouth must still be
    filled by the mouth layer (a strip wound from the closed lips faced away and was culled)."""
    take_, fit, observations, model = take
    frame = int(np.nonzero(fit.has_face)[0][0])
    expression = np.zeros_like(fit.expression)
    expression[:, list(model.expression_names).index("jawOpen")] = 0.6
    opened = dataclasses.replace(fit, identity=np.zeros_like(fit.identity), expression=expression)
    renderer_ = ReconstructionRenderer(model, opened, observations, reference_frame=frame)
    with open_source(take_.manifest.source.path) as source:
        renderer_.set_reference(frame, source.read(frame))
    frags, points = renderer_.fragments(frame)
    v = model.num_vertices
    contour = np.array(MOUTH[0] + MOUTH[1][::-1][1:-1]) + v
    opening = np.zeros(frags.mask.shape, np.uint8)
    cv2.fillPoly(opening, [np.round(points[contour, :2]).astype(np.int32)], 1)
    opening = cv2.erode(opening, np.ones((3, 3), np.uint8)).astype(bool)
    start, stop = renderer_.layers["mouth"]
    filled = (frags.triangle >= start) & (frags.triangle < stop)
    print(f"mouth opening {opening.sum()} px, filled by the mouth layer {filled[opening].mean():.3f}")
    assert opening.sum() > 200
    assert filled[opening].mean() > 0.95


# ---------------------------------------------------------------------------------------------------
# Surface shading (core/render/shading.py, core/render/subdivision.py)
# ---------------------------------------------------------------------------------------------------


def test_loop_subdivision_is_a_fixed_affine_map_that_keeps_a_plane_flat():
    # a 4 x 4 grid of squares, each split in two, in the plane z = 0.3 x - 0.2 y
    xs, ys = np.meshgrid(np.arange(5.0), np.arange(5.0))
    vertices = np.stack([xs.ravel(), ys.ravel(), 0.3 * xs.ravel() - 0.2 * ys.ravel()], axis=1)
    quads = [(r * 5 + c, r * 5 + c + 1, (r + 1) * 5 + c + 1, (r + 1) * 5 + c) for r in range(4) for c in range(4)]
    faces = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    sub = LoopSubdivision(faces, len(vertices), levels=2)
    assert sub.faces.shape == (16 * len(faces), 3) and sub.grid.shape == (len(faces), 5, 5)
    np.testing.assert_allclose(np.asarray(sub.matrix.sum(axis=1)).ravel(), 1.0)
    fine = sub.matrix @ vertices
    np.testing.assert_allclose(fine[:, 2], 0.3 * fine[:, 0] - 0.2 * fine[:, 1], atol=1e-12)  # still the plane
    normals = smooth_normals(vertices[None], sub)[0]
    np.testing.assert_allclose(normals, np.tile([-0.3, 0.2, 1.0] / np.linalg.norm([-0.3, 0.2, 1.0]), (len(fine), 1)),
                               atol=1e-9)
    # locate: a coarse corner is its refined vertex, and points inside coarse triangles land in
    # the refined triangle that covers them (a plane's refined and coarse points coincide)
    ids, weights = sub.locate(np.array([0, 5]), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    assert ids[0][np.argmax(weights[0])] == faces[0, 0] and ids[1][np.argmax(weights[1])] == faces[5, 2]
    rng = np.random.default_rng(2)
    tri = rng.integers(0, len(faces), 500)
    bary = rng.dirichlet([1, 1, 1], 500)
    ids, weights = sub.locate(tri, bary)
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    coarse_points = np.einsum("kj,kjc->kc", bary, vertices[faces[tri]])
    refined_points = np.einsum("kj,kjc->kc", weights, fine[ids])
    interior = np.abs(coarse_points[:, :2] - 2.0).max(axis=1) < 1.0  # away from the boundary rules
    np.testing.assert_allclose(refined_points[interior], coarse_points[interior], atol=1e-5)


def _loop_rules(faces: np.ndarray, num_vertices: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Loop's rules written out vertex by vertex and edge by edge: the dense (V + E) x V step, and
    the edges (low, high) in the order of their new vertices."""
    edges = sorted({tuple(sorted((int(f[i]), int(f[(i + 1) % 3])))) for f in faces for i in range(3)})
    faces_of = {e: [f for f in faces if set(e) <= set(f.tolist())] for e in edges}
    step = np.zeros((num_vertices + len(edges), num_vertices))
    for v in range(num_vertices):
        ring = {w for e in edges if v in e for w in e if w != v}
        rim = {w for e in edges if v in e and len(faces_of[e]) == 1 for w in e if w != v}
        step[v, v] = 1.0
        if len(rim) == 2:
            step[v, v] = 0.75
            step[v, list(rim)] = 0.125
        elif ring and not rim:
            beta = (0.625 - (0.375 + 0.25 * np.cos(2 * np.pi / len(ring))) ** 2) / len(ring)
            step[v, v] = 1.0 - len(ring) * beta
            step[v, list(ring)] = beta
    for e, (a, b) in enumerate(edges):
        row = num_vertices + e
        if len(faces_of[(a, b)]) == 2:
            step[row, [a, b]] = 0.375
            for f in faces_of[(a, b)]:
                step[row, [w for w in f.tolist() if w not in (a, b)]] += 0.125
        else:  # a boundary edge, or one that more than two triangles share
            step[row, [a, b]] = 0.5
    return step, edges


def test_a_loop_step_applies_loop_s_rules_at_boundaries_crease_corners_and_shared_edges():
    # a 3 x 3 grid of squares with the centre square left open (a hole), two triangles that touch
    # the grid at one corner only (two boundaries meet there: kept in place), a triangle that
    # makes an edge shared by three (a boundary edge's rule), and a vertex that nothing uses
    quads = [(r * 4 + c, r * 4 + c + 1, (r + 1) * 4 + c + 1, (r + 1) * 4 + c) for r in range(3) for c in range(3)
             if (r, c) != (1, 1)]
    faces = [t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))]
    faces += [(15, 16, 17), (15, 17, 18), (0, 5, 19)]
    faces = np.array(faces)
    step, edges = _loop_step(faces, 21)
    expected, edge_list = _loop_rules(faces, 21)
    np.testing.assert_allclose(step.toarray(), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.asarray(step.sum(axis=1)).ravel(), 1.0)
    assert step[15, 15] == 1.0 and step[20, 20] == 1.0  # the crease corner and the unused vertex stay
    assert step[21 + edge_list.index((0, 5)), 19] == 0.0  # the edge three triangles share
    a, b = np.array([5, 16, 1]), np.array([1, 15, 0])  # either order
    assert edges.ids(a, b).tolist() == [21 + edge_list.index(tuple(sorted(p))) for p in zip(a.tolist(), b.tolist())]


def test_surface_shader_changes_nothing_without_deformation_or_for_a_translation():
    data = load_open_model()
    head = data.template.astype(np.float64)
    shader = SurfaceShader(data.faces, head, head, head[list(FACE_OVAL)])
    shader.set_reference(head, np.full((10, 3), 128.0))
    rng = np.random.default_rng(3)
    tri = rng.integers(0, len(data.faces), 1000)
    bary = rng.dirichlet([1, 1, 1], 1000)
    factors = shader.factors(shader.frames(head[None]), 0, tri, bary)
    np.testing.assert_allclose(factors, 1.0, atol=1e-5)
    moved = shader.frames((head + [0.01, -0.02, 0.03])[None])
    np.testing.assert_allclose(shader.factors(moved, 0, tri, bary), 1.0, atol=1e-5)


def test_shadows_take_the_colour_the_photo_s_own_skin_has_where_it_is_darker():
    rng = np.random.default_rng(4)
    brightness = rng.uniform(0.5, 1.0, 2000)
    skin = np.stack([200 * brightness**0.8, 150 * brightness**1.1, 120 * brightness**1.3], axis=1)
    colour = SkinShadowColour.of(skin)
    pixel = np.array([[200 * 0.9**0.8, 150 * 0.9**1.1, 120 * 0.9**1.3]])  # a skin pixel at brightness 0.9
    target = np.array([[200 * 0.6**0.8, 150 * 0.6**1.1, 120 * 0.6**1.3]])  # the same skin at 0.6
    darkened = pixel * colour.darkening(pixel, (target @ LUMA) / (pixel @ LUMA))
    np.testing.assert_allclose(darkened, target, rtol=0.04)  # the skin's own colour there
    # an overexposed red channel that holds at 255 over the skin's brighter half keeps it there in
    # a mild shadow, while green and blue fall as the photo's do (a single clamped slope darkened
    # red too, and such shadows read olive on a pale face)
    clipped = skin.copy()
    clipped[:, 0] = np.minimum(255.0, 400 * brightness**0.8)
    pale = SkinShadowColour.of(clipped)
    bright = clipped[np.argmax(brightness)][None]
    factors = pale.darkening(bright, np.array([0.85]))[0]
    assert factors[0] > 0.99 and factors[1] < 0.9 and factors[2] < factors[1]
    # never brighter, in any channel, for any shadow
    pixels = clipped[:200]
    assert (pale.darkening(pixels, rng.uniform(0.3, 1.0, 200)) <= 1.0 + 1e-6).all()
    # too few pixels: every channel follows the luminance alike
    np.testing.assert_allclose(SkinShadowColour.of(skin[:50]).darkening(pixel, np.array([0.7])), 0.7, rtol=1e-5)


def extra_shape_renderers(take, shape: np.ndarray, turn=(0.0, 0.0, 0.0)):
    """Renderers (shading off, on) of two copies of the reference frame: frame 0 as fitted (the
    reference), frame 1 plus ``shape`` (V x 3 metres, model space) at weight 1 and its head
    rotation changed by the axis-angle ``turn``."""
    take_, fit, observations, _ = take
    ref = choose_reference_frame(fit)
    data = load_open_model()
    model = FaceModel(dataclasses.replace(
        data, expression_basis=np.concatenate([data.expression_basis, shape[:, :, None].astype(np.float32)], axis=2),
        expression_names=(*data.expression_names, "test_shape")))
    row = int(np.nonzero(fit.frame_index == ref)[0][0])

    def two(obj, row, index_field):
        values = {}
        for f in dataclasses.fields(obj):
            a = getattr(obj, f.name)
            values[f.name] = (a if f.name == "identity" else np.arange(2, dtype=a.dtype) if f.name == index_field
                              else np.repeat(a[row:row + 1], 2, axis=0))
        return type(obj)(**values)

    pair = two(fit, row, "frame_index")
    rotation = pair.rotation.copy()
    rotation[1] += turn
    pair = dataclasses.replace(pair, rotation=rotation,
                               expression=np.concatenate([pair.expression, [[0.0], [1.0]]], axis=1).astype(np.float32))
    observations2 = two(observations, int(np.nonzero(observations.index == ref)[0][0]), "index")
    with open_source(take_.manifest.source.path) as source:
        image = source.read(ref)
    out = []
    for shading in (False, True):
        r = ReconstructionRenderer(model, pair, observations2, reference_frame=0, shading=shading)
        r.set_reference(0, image)
        out.append(r)
    return out, model


def crop_scale(renderer_, template) -> float:
    """Crop pixels per metre of frame 1 (from the outer eye corners)."""
    corners = crop_positions(renderer_, [33, 263])
    return float(np.linalg.norm(corners[1] - corners[0]) / np.linalg.norm(template[33] - template[263]))


def crop_positions(renderer_, vertices) -> np.ndarray:
    """Crop-space x, y of mesh vertices in frame 1."""
    _, points = renderer_.fragments(1)
    return points[list(vertices), :2]


def test_reference_frame_and_a_turned_head_render_the_same_with_shading(take):
    (flat, shaded), model = extra_shape_renderers(take, np.zeros((478, 3)))
    a, mask_a = flat.render_crop(0)
    b, mask_b = shaded.render_crop(0)
    assert (mask_a == mask_b).all()
    assert np.abs(a.astype(int) - b).max() <= 1
    # the head turned, not deformed: shading is in the head's frame, so the same, too
    (flat, shaded), _ = extra_shape_renderers(take, np.zeros((478, 3)), turn=(0.1, 0.25, 0.05))
    a, mask = flat.render_crop(1)
    assert np.abs(a.astype(int) - shaded.render_crop(1)[0]).max() <= 1
    assert mask.sum() > 1000


def test_a_bump_is_lit_from_above_and_shaded_below_and_nothing_else_changes(take):
    data = load_open_model()
    template = data.template.astype(np.float64)
    centre = template[50]  # right cheek (MediaPipe 50)
    sigma = 0.015  # the mesh's cheek vertices are 1-2 cm apart: a narrower bump would be one vertex
    distance = np.linalg.norm(template - centre, axis=1)
    bump = np.zeros_like(template)
    bump[:, 2] = 0.005 * np.exp(-0.5 * (distance / sigma) ** 2)  # 5 mm toward the viewer
    (flat, shaded), _ = extra_shape_renderers(take, bump)
    a, mask = flat.render_crop(1)
    b, _ = shaded.render_crop(1)
    diff = b.astype(float).mean(axis=2) - a.astype(float).mean(axis=2)
    c = crop_positions(shaded, [50])[0]
    pixels_per_metre = crop_scale(shaded, template)
    ys, xs = np.mgrid[0:256, 0:256]
    dx, dy = (xs - c[0]) / pixels_per_metre, (ys - c[1]) / pixels_per_metre  # metres in the crop (y down)
    r = np.hypot(dx, dy)
    below = mask & (r < 2 * sigma) & (dy > 0.5 * sigma)
    above = mask & (r < 2 * sigma) & (dy < -0.5 * sigma)
    print(f"bump: mean change {diff[below].mean():.1f} below its top, {diff[above].mean():.1f} above; "
          f"largest outside 3.5 sigma {np.abs(diff[mask & (r > 3.5 * sigma)]).max():.1f}")
    assert diff[below].mean() < -2.5  # the lower slope turns away from the key light above
    assert diff[above].mean() > diff[below].mean() + 4.0
    assert np.abs(diff[mask & (r > 3.5 * sigma)]).max() <= 2.0


def test_raised_brows_leave_the_nose_and_cheeks_as_they_were(take):
    """The local average that takes out a region's tilt must not spread a large change nearby: a
    brow raise once darkened the nose and cheeks below it (a halo around the brightened brows)."""
    data = load_open_model()
    raise_ = data.expression_basis[:, :, data.expression_names.index("browInnerUp")].astype(np.float64)
    (flat, shaded), _ = extra_shape_renderers(take, raise_)
    a, mask = flat.render_crop(1)
    b, _ = shaded.render_crop(1)
    diff = b.astype(float).mean(axis=2) - a.astype(float).mean(axis=2)
    template = data.template.astype(np.float64)
    pixels_per_metre = crop_scale(shaded, template)
    ys, xs = np.mgrid[0:256, 0:256]

    def near(vertices, radius_m):
        """Face pixels within radius_m of any of the vertices in frame 1."""
        points = crop_positions(shaded, vertices)
        return mask & np.any([np.hypot(xs - x, ys - y) / pixels_per_metre < radius_m for x, y in points], axis=0)

    below = near([195, 5, 50, 280], 0.015)  # the nose and the cheeks beside it, around the nose's middle
    brows = near([105, 334], 0.012)
    print(f"brow raise: mean change {diff[below].mean():.2f} on the nose and cheeks, "
          f"mean |change| {np.abs(diff[brows]).mean():.2f} at the brows")
    assert np.abs(diff[brows]).mean() > 3.0  # the brows' own shading changes
    assert abs(diff[below].mean()) < 1.0


def test_compressed_skin_between_the_brows_folds_into_lines_there_only(take):
    data = load_open_model()
    template = data.template.astype(np.float64)
    centre = template[9]  # glabella, between the brows (MediaPipe 9)
    weight = np.exp(-0.5 * (np.linalg.norm(template - centre, axis=1) / 0.012) ** 2)
    knit = np.zeros_like(template)
    knit[:, 0] = -0.3 * (template[:, 0] - centre[0]) * weight  # skin drawn toward the midline
    (flat, shaded), _ = extra_shape_renderers(take, knit)
    a, mask = flat.render_crop(1)
    b, _ = shaded.render_crop(1)
    diff = b.astype(float).mean(axis=2) - a.astype(float).mean(axis=2)
    c = crop_positions(shaded, [9])[0]
    pixels_per_metre = crop_scale(shaded, template)
    ys, xs = np.mgrid[0:256, 0:256]
    r = np.hypot(xs - c[0], ys - c[1]) / pixels_per_metre
    near, far = mask & (r < 0.015), mask & (r > 0.04)
    print(f"knit brows: {np.sum(diff[near] < -8)} pixels darker by > 8 near the glabella, "
          f"largest change beyond 4 cm {np.abs(diff[far]).max():.1f}")
    assert np.sum(diff[near] < -8) > 20
    assert np.abs(diff[far]).max() <= 3.0


def test_shaded_renders_are_deterministic(take, renderer):
    _, fit, observations, model = take
    rows = np.nonzero(fit.has_face)[0]
    frame = int(rows[np.argmax(np.abs(fit.expression[rows]).sum(axis=1))])
    first, _ = renderer.render_crop(frame)
    again, _ = renderer.render_crop(frame)
    other = ReconstructionRenderer(model, fit, observations)
    take_ = take[0]
    with open_source(take_.manifest.source.path) as source:
        other.set_reference(other.reference_frame, source.read(other.reference_frame))
    assert np.array_equal(first, again)
    assert np.array_equal(first, other.render_crop(frame)[0])


def widened_eyes(take) -> tuple[int, int, object]:
    """(reference frame, another frame wearing the reference's curves with both eyes widened to
    eyeWide 1, the fit with that change) of the render fixture."""
    _, fit, _, model = take
    ref = choose_reference_frame(fit)
    frame = int(next(r for r in np.nonzero(fit.has_face)[0] if r != ref))
    expression = fit.expression.copy()
    expression[frame] = fit.expression[ref]
    names = list(model.expression_names)
    for side in ("Left", "Right"):
        expression[frame, names.index(f"eyeWide{side}")] = 1.0
    return ref, frame, dataclasses.replace(fit, expression=expression)


def renderer_with_reference(take, fit_, ref: int) -> ReconstructionRenderer:
    """A renderer of ``fit_`` on the render fixture, textured from frame ``ref``."""
    take_, _, observations, model = take
    renderer_ = ReconstructionRenderer(model, fit_, observations, reference_frame=ref)
    with open_source(take_.manifest.source.path) as source:
        renderer_.set_reference(ref, source.read(ref))
    return renderer_


def test_a_widened_eye_shows_white_above_the_iris_not_a_second_lid(take, monkeypatch):
    """Lids opened wider than the reference's reach past its opening onto its lid skin and lashes;
    the render shows the eyeball there: above the iris, the colour of the reference's own sclera,
    where without that fill the same pixels show the lid's skin (the fixture's skin is as bright as
    its sclera, so the difference is the colour: the whites are less saturated than skin). The
    band is two or three pixels tall, all of it near the softened lid margin, so it is judged by
    its mean colour, not pixel by pixel."""
    import core.render.reconstruction as reconstruction

    _, fit, _, model = take
    ref, frame, widened = widened_eyes(take)

    def renderer_for(fit_):
        return renderer_with_reference(take, fit_, ref)

    def band_above_irises(renderer_) -> list[np.ndarray]:
        """Per eye (right, left): RGB (N x 3) of its opening's pixels above its iris."""
        rgb, _ = renderer_.render_crop(frame)
        frags, points = renderer_.fragments(frame)
        v = model.num_vertices
        out = []
        for name, iris in (("right_eye", 468), ("left_eye", 473)):
            start, stop = renderer_.layers[name]
            ys, xs = np.nonzero((frags.triangle >= start) & (frags.triangle < stop))
            centre = points[v + iris, :2]
            radius = np.linalg.norm(points[v + iris + 1 : v + iris + 5, :2] - centre, axis=1).mean()
            above = (ys < centre[1] - radius) & (np.abs(xs - centre[0]) < radius)
            out.append(rgb[ys[above], xs[above]].astype(np.float64))
        return out

    def saturation(rgb: np.ndarray) -> float:
        """Mean saturation (max - min) / max of N x 3 RGB."""
        rgb = np.atleast_2d(rgb)
        return float(((rgb.max(axis=1) - rgb.min(axis=1)) / np.maximum(rgb.max(axis=1), 1.0)).mean())

    scleras = renderer_for(fit)._eyeballs
    shown = band_above_irises(renderer_for(widened))
    monkeypatch.setattr(reconstruction._Eyeball, "paint", lambda *args, **kwargs: None)
    lid = band_above_irises(renderer_for(widened))
    count = sum(len(band) for band in shown)
    print(f"{count} px above the irises; saturation with the eyeball "
          f"{[round(saturation(b), 3) for b in shown]}, without {[round(saturation(b), 3) for b in lid]}, "
          f"the scleras' {[round(saturation(e.sclera), 3) for e in scleras]}")
    assert count >= 10
    for with_eyeball, without, eye in zip(shown, lid, scleras):
        assert abs(saturation(with_eyeball) - saturation(eye.sclera)) < 0.04
        assert saturation(without) > saturation(eye.sclera) + 0.06


def _synthetic_eye(white_level: float) -> tuple:
    """A 60 x 100 reference eye: an almond opening 60 px wide and 16 tall around an iris of radius
    8 (RGB 60, 40, 30) on whites of ``white_level``; returns (image, outline, centre, radius,
    pixels inside the opening, their distances from the iris centre)."""
    image = np.full((60, 100, 3), 150, np.uint8)
    x = np.linspace(20, 80, 25)
    half = 8 * np.sqrt(np.clip(1 - ((x - 50) / 30) ** 2, 0, 1))
    outline = np.concatenate([np.stack([x, 30 - half], 1), np.stack([x[::-1], 30 + half[::-1]], 1)])
    opening = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(opening, [np.round(outline).astype(np.int32)], 1)
    image[opening > 0] = white_level
    ys, xs = np.nonzero(opening)
    centre = np.array([50.0, 30.0])
    distance = np.hypot(xs - centre[0], ys - centre[1])
    iris = distance < 8
    image[ys[iris], xs[iris]] = (60, 40, 30)
    return image, outline, centre, 8.0, image[ys, xs].astype(np.float64), distance


def test_a_shadowed_eye_lends_a_widened_eye_whites_no_darker_than_the_skin():
    """The whites of a narrow or hooded eye are in its lids' shadow (darker than the skin); the
    white a widened eye uncovers is lit, so its fill is at least the skin's median brightness,
    while whites brighter than that keep their own colour."""
    from core.render.reconstruction import LUMA, _Eyeball

    image, outline, centre, radius, pixels, distance = _synthetic_eye(white_level=90)
    shadowed = _Eyeball.of(outline, centre, radius, pixels, distance, skin_level=140.0)
    assert float(shadowed.sclera @ LUMA) == pytest.approx(140.0, abs=1.0)
    image, outline, centre, radius, pixels, distance = _synthetic_eye(white_level=200)
    lit = _Eyeball.of(outline, centre, radius, pixels, distance, skin_level=140.0)
    assert np.allclose(lit.sclera, 200.0, atol=1.0)


def test_the_eyeball_fill_leaves_the_reference_opening_alone_and_draws_a_pupil():
    """Where the rendered opening samples the reference inside its own opening nothing is painted
    (the reference frame renders as its own crop); beyond it the fill fades in within a few pixels,
    and the painted iris is darker at its centre (the pupil) than in its body."""
    from core.render.reconstruction import _Eyeball

    image, outline, centre, radius, pixels, distance = _synthetic_eye(white_level=200)
    eye = _Eyeball.of(outline, centre, radius, pixels, distance, skin_level=140.0)
    u = np.array([40.0, 50.0, 50.0, 50.0, 50.0])
    v = np.array([30.0, 30.0, 21.0, 10.0, 5.0])  # inside; iris centre; a pixel above the lid; beyond
    colour = np.full((len(u), 3), 123.0)
    eye.paint(colour, np.arange(len(u)), u, v, widened=False)
    assert np.array_equal(colour[:2], np.full((2, 3), 123.0))  # inside the opening: untouched
    assert np.allclose(colour[4], eye.sclera)  # 25 px above the iris centre: all sclera
    assert not np.allclose(colour[2], 123.0) and not np.allclose(colour[2], eye.sclera)  # the soft edge
    # with nothing of the reference's opening to keep, the whole iris is painted: pupil, body, rim
    bare = dataclasses.replace(eye, opening=np.zeros_like(eye.opening), within=np.zeros_like(eye.within))
    iris = np.zeros((3, 3))
    bare.paint(iris, np.arange(3), np.full(3, 50.0), np.array([30.0, 30.0 - 0.65 * radius, 30.0 - 0.88 * radius]),
               widened=True)
    pupil, body, rim = iris @ LUMA
    assert pupil < 0.6 * body and rim < body


def test_lid_margins_are_anti_aliased(take):
    """The eye fillings are a layer behind the skin, so a widened eye's lid margin was a one-pixel
    staircase; it is softened: the colour steps between neighbouring pixels across the openings'
    outlines are smaller than without the softening."""
    ref, frame, widened = widened_eyes(take)
    renderer = renderer_with_reference(take, widened, ref)
    frags, _ = renderer.fragments(frame)
    eyes = np.zeros(frags.triangle.shape, np.uint8)
    for name in ("right_eye", "left_eye"):
        start, stop = renderer.layers[name]
        eyes |= ((frags.triangle >= start) & (frags.triangle < stop)).astype(np.uint8)
    outline = cv2.dilate(eyes, np.ones((3, 3), np.uint8)) != cv2.erode(eyes, np.ones((3, 3), np.uint8))

    def steps() -> float:
        rgb = renderer.render_crop(frame)[0].astype(np.float64)
        dx = np.abs(np.diff(rgb, axis=1)).sum(axis=2)[:, :-1][outline[:, 1:-1]]
        dy = np.abs(np.diff(rgb, axis=0)).sum(axis=2)[:-1][outline[1:-1]]
        return float(np.concatenate([dx, dy]).mean())

    softened = steps()
    renderer._soften_lid_margins = lambda *args, **kwargs: None
    hard = steps()
    print(f"mean colour step across the lid margins: {softened:.1f} softened, {hard:.1f} without")
    assert softened < 0.8 * hard


def test_learned_appearance_folds_the_skin_where_a_curve_acts_and_leaves_the_reference_alone(take):
    """The learned maps (core/render/appearance.py) darken the skin between a lowered brow and the
    upper lid, relative to the reference frame's curves: the reference renders as without them, the
    chin of lowered brows does not change, and a model without the maps' shapes (FLAME) gets none."""
    take_, fit, observations, model = take
    ref = choose_reference_frame(fit)
    frame = ref + 5  # another frame of the clip, wearing lowered brows on the reference's curves
    names = list(model.expression_names)
    expression = fit.expression.copy()
    row = list(fit.frame_index).index
    expression[row(frame)] = expression[row(ref)]
    expression[row(frame), [names.index("browDownLeft"), names.index("browDownRight")]] = 1.0
    lowered = dataclasses.replace(fit, expression=expression)
    with open_source(take_.manifest.source.path) as source:
        image = source.read(ref)
    renderers = []
    for appearance in (True, None):
        r = ReconstructionRenderer(model, lowered, observations, reference_frame=ref, appearance=appearance)
        r.set_reference(ref, image)
        renderers.append(r)
    with_maps, without = renderers
    assert with_maps.appearance is not None and without.appearance is None
    assert np.array_equal(with_maps.render_crop(ref)[0], without.render_crop(ref)[0])

    a, mask = with_maps.render_crop(frame)
    b, _ = without.render_crop(frame)
    diff = a.astype(float).mean(axis=2) - b.astype(float).mean(axis=2)
    _, points = with_maps.fragments(frame)
    ys, xs = np.mgrid[0:256, 0:256]

    def near(vertices, radius_px):
        return mask & np.any([np.hypot(xs - x, ys - y) < radius_px for x, y in points[list(vertices), :2]], axis=0)

    lids = near([286, 442, 443, 56, 222, 223], 3)  # between each brow and its upper lid
    chin = near([152, 175, 199], 8)
    print(f"lowered brows: mean change {diff[lids].mean():.1f} between brows and lids, "
          f"largest on the chin {np.abs(diff[chin]).max():.1f}")
    assert diff[lids].mean() < -5
    assert np.abs(diff[chin]).max() <= 1

    flame_like = dataclasses.replace(load_open_model(), expression_names=tuple(f"exp{k:03d}" for k in range(52)))
    assert ReconstructionRenderer(FaceModel(flame_like), fit, observations, reference_frame=ref).appearance is None


def test_fragments_of_other_expressions_are_those_render_expressions_draws(renderer, take):
    """fragments(index, expression) rasterises the face wearing other curves, as
    render_expressions draws it: an opened jaw opens the mouth layer, and the face covers the same
    pixels as the render's mask."""
    _, fit, _, model = take
    frame = int(np.nonzero(fit.has_face)[0][0])
    row = int(np.nonzero(fit.frame_index == frame)[0][0])
    opened = fit.expression[row].copy()
    opened[list(model.expression_names).index("jawOpen")] = 0.6
    start, stop = renderer.layers["mouth"]

    def mouth_pixels(fragments) -> int:
        return int(((fragments.triangle >= start) & (fragments.triangle < stop)).sum())

    own, _ = renderer.fragments(frame)
    worn, _ = renderer.fragments(frame, opened)
    assert mouth_pixels(worn) > mouth_pixels(own) + 50
    _, mask = renderer.render_expressions(frame, opened[None])
    assert np.array_equal(mask[0], worn.triangle >= 0)
