"""Parts of the micro-expression refiner: ODE, graph layer, correspondence, losses, flow, onset."""

from collections import deque

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from core.errors import CancelledError
from core.microexpr import losses as L
from core.microexpr.correspondence import (
    BARYCENTRIC_PATTERNS,
    MeshRegions,
    aggregate_to_vertices,
    apply_matrix,
    mesh_regions,
    pixel_correspondence,
    sample_set,
    visible_samples,
)
from core.microexpr.dem import DynamicEncodedModule, ExpressionDynamics, from_onset_with_torchdiffeq, integrate
from core.microexpr.dgmd import DynamicGuidedDeformation, mesh_edges, neighbour_sum, reverse_edges
from core.microexpr.flow import FlowCanvas, mesh_warp, track_window
from core.microexpr.midpoint import MidpointPath
from core.microexpr.motion import find_onset, motion_energy, remove_affine
from core.microexpr.results import Refinement, offsets_basis
from core.microexpr.stage import blend_weights, plan_windows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---- neural ODE ---------------------------------------------------------------------------------
class Decay(nn.Module):
    def forward(self, t, z):
        return -z


@pytest.mark.parametrize("method", ["rk4", "midpoint"])
def test_ode_integrates_exponential_decay(method):
    times = torch.linspace(0, 2, 41)
    z = integrate(Decay(), torch.ones(1, 3), times, method, 0.01)
    expected = torch.exp(-times)[:, None].expand(-1, 3)
    assert torch.allclose(z, expected, atol=2e-5 if method == "midpoint" else 1e-7)


def test_expression_dynamics_relax_to_a_constant_drive_as_an_exponential():
    dynamics = ExpressionDynamics(num_expression=2, hidden=4)  # g starts at zero
    rate = dynamics.rate.detach()
    times = torch.linspace(0, 0.2, 21)
    drive = torch.tensor([[0.3, -0.1]]).expand(len(times), -1)
    dynamics.drive(times, drive)
    z = integrate(dynamics, torch.zeros(1, 2), times, "rk4", 0.001).detach()
    expected = drive * (1 - torch.exp(-rate[None] * times[:, None]))
    assert torch.allclose(z, expected, atol=1e-5)


def test_dem_update_is_zero_at_the_onset_and_symmetric_in_time():
    torch.manual_seed(0)
    dem = DynamicEncodedModule(num_expression=3, static_dim=4, motion_dim=5, hidden=8)
    nn.init.normal_(dem.decoder[-1].weight, std=0.5)
    times = torch.linspace(0, 0.4, 41)
    motion = torch.zeros(41, 5)
    motion[25:] = 1.0  # a step after the onset ...
    motion[:16] = 1.0  # ... and the same step as far before it
    out = dem(torch.zeros(1, 4), motion, times, onset=20).detach()
    assert out.shape == (41, 3)
    assert torch.equal(out[20], torch.zeros(3))
    assert torch.allclose(out[:21].flip(0), out[20:], atol=1e-5)
    assert out[40].abs().max() > 1e-3  # it does move away from the onset


@pytest.mark.parametrize("onset", [0, 7, 20, 40])
def test_the_batched_midpoint_solver_steps_as_torchdiffeq_does(onset):
    """The default solver (both directions from the onset in one batch, the drive precomputed)
    against torchdiffeq's fixed-grid midpoint method on the same module: the same values and
    gradients up to float rounding, with a non-zero decoder and non-linear term."""
    torch.manual_seed(1)
    dem = DynamicEncodedModule(num_expression=6, static_dim=4, motion_dim=5, hidden=8)
    nn.init.normal_(dem.decoder[-1].weight, std=0.5)
    nn.init.normal_(dem.dynamics.g[-1].weight, std=0.5)
    times = torch.arange(41, dtype=torch.float32) / 120 + 0.37  # 120 fps: steps do not fall on frames
    static, motion = torch.randn(1, 4), torch.randn(41, 5)

    def solved(solve) -> tuple[torch.Tensor, list[torch.Tensor]]:
        dem.zero_grad()
        out = solve(times - times[onset], dem.drive(static, motion))
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        return out.detach(), [p.grad.clone() for p in dem.parameters()]

    reference, reference_grads = solved(lambda rel, u: from_onset_with_torchdiffeq(dem.dynamics, rel, u, onset, "midpoint",
                                                                                 dem.step_s))
    fast, fast_grads = solved(lambda rel, u: dem.dynamics.midpoint_from_onset(rel, u, onset, dem.step_s))
    assert dem.method == "midpoint"
    torch.testing.assert_close(dem(static, motion, times, onset).detach(), fast, atol=0, rtol=0)
    assert reference.abs().max() > 0.1 and torch.equal(fast[onset], torch.zeros(6))
    torch.testing.assert_close(fast, reference, atol=1e-6, rtol=0)
    for ours, theirs in zip(fast_grads, reference_grads):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_the_midpoint_steps_backward_pass_is_their_exact_gradient():
    """The midpoint recurrence as one autograd node (numpy steps, a hand-written adjoint) against
    finite differences in double precision, with a branch that ends early (dt 0 after it)."""
    rng = np.random.default_rng(3)
    steps, branches, width, hidden = 9, 2, 4, 5

    def tensor(*shape, scale=0.5):
        return torch.tensor(rng.normal(scale=scale, size=shape), dtype=torch.float64, requires_grad=True)

    dt = torch.full((steps, branches, 1), 0.01, dtype=torch.float64)
    dt[6:, 1] = 0.0
    inputs = (tensor(steps, branches, hidden), tensor(steps, branches, hidden), tensor(steps, branches, width),
              tensor(steps, branches, width), torch.tensor(rng.uniform(5, 20, width), requires_grad=True),
              tensor(width, hidden), tensor(hidden, width, scale=2.0), 0.5 * dt, dt)
    path = MidpointPath.apply(*inputs)
    assert path.shape == (steps + 1, branches, width) and torch.equal(path[0], torch.zeros(branches, width))
    assert torch.equal(path[6:, 1], path[6:7, 1].expand(4, -1))  # the ended branch stays where it stopped
    assert torch.autograd.gradcheck(MidpointPath.apply, inputs, eps=1e-6, atol=1e-7)


# ---- graph network over the mesh ----------------------------------------------------------------
def grid_faces(n: int) -> np.ndarray:
    faces = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            faces += [(a, b, e), (a, e, d)]
    return np.array(faces)


def ring_distance(faces: np.ndarray, count: int, source: int) -> np.ndarray:
    neighbours = [set() for _ in range(count)]
    for f in faces:
        for i in range(3):
            neighbours[f[i]].add(f[(i + 1) % 3])
            neighbours[f[(i + 1) % 3]].add(f[i])
    distance = np.full(count, np.inf)
    distance[source] = 0
    queue = deque([source])
    while queue:
        v = queue.popleft()
        for u in neighbours[v]:
            if distance[u] == np.inf:
                distance[u] = distance[v] + 1
                queue.append(u)
    return distance


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_graph_network_reaches_exactly_the_k_ring(layers):
    n = 9
    faces = grid_faces(n)
    count = n * n
    torch.manual_seed(layers)
    net = DynamicGuidedDeformation(in_dim=5, motion_dim=2, hidden=8, layers=layers)
    nn.init.normal_(net.head[-1].weight, std=1.0)  # the head starts at zero; make it speak
    edges = mesh_edges(faces, count)
    features, motion = torch.randn(1, count, 5), torch.randn(1, count, 2)
    centre = 4 * n + 4
    changed_features, changed_motion = features.clone(), motion.clone()
    changed_features[0, centre] += 1.0
    changed_motion[0, centre] += 1.0
    with torch.no_grad():
        delta = (net(changed_features, changed_motion, edges) - net(features, motion, edges)).abs().sum(dim=2)[0]
    distance = ring_distance(faces, count, centre)
    assert (delta[torch.as_tensor(distance > layers)] == 0).all()
    assert (delta[torch.as_tensor(distance == layers)] > 0).any()


def test_mesh_edges_are_the_triangle_edges_both_ways_plus_self_loops():
    edges = mesh_edges(np.array([[0, 1, 2], [1, 3, 2]]), 4).T.tolist()
    expected = {(a, b) for a, b in [(0, 1), (1, 2), (0, 2), (1, 3), (2, 3)]}
    expected |= {(b, a) for a, b in expected} | {(v, v) for v in range(4)}
    assert set(map(tuple, edges)) == expected and len(edges) == len(expected)


def test_neighbour_sum_and_its_gradients_equal_the_gather_and_scatter_add():
    count = 36
    edges = mesh_edges(grid_faces(6), count)
    source, target = edges
    torch.manual_seed(0)
    values = torch.randn(3, count, 5, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(3, edges.shape[1], dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(3, count, 5, dtype=torch.float64)
    plain = torch.zeros(3, count, 5, dtype=torch.float64).index_add_(1, target, values.index_select(1, source) * weights[..., None])
    expected = [plain, *torch.autograd.grad(plain, (values, weights), upstream)]
    fast = neighbour_sum(values, weights, edges)
    got = [fast, *torch.autograd.grad(fast, (values, weights), upstream)]
    for a, b in zip(got, expected):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-12)
    small = (values[:1, :, :2].detach().requires_grad_(), weights[:1].detach().requires_grad_())
    assert torch.autograd.gradcheck(lambda v, w: neighbour_sum(v, w, edges), small)


def test_reverse_edges_pair_each_edge_with_its_reverse_and_refuse_one_way_edges():
    edges = mesh_edges(grid_faces(4), 16)
    reverse = reverse_edges(edges, 16)
    assert torch.equal(edges[:, reverse], edges.flip(0))
    one_way = edges[:, ~((edges[0] == 0) & (edges[1] == 1))]  # (0, 1) removed, (1, 0) kept
    with pytest.raises(ValueError, match="reverse"):
        reverse_edges(one_way, 16)


# ---- region-based pixel-vertex correspondence ---------------------------------------------------
def pixels_inside(triangle: np.ndarray, size: tuple[int, int]) -> set[tuple[int, int]]:
    """Brute force: pixel centres strictly inside the triangle (no centre lies on an edge here)."""
    (x0, y0), (x1, y1), (x2, y2) = triangle[:, :2]
    out = set()
    for r in range(size[0]):
        for c in range(size[1]):
            d = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
            a = ((y1 - y2) * (c - x2) + (x2 - x1) * (r - y2)) / d
            b = ((y2 - y0) * (c - x2) + (x0 - x2) * (r - y2)) / d
            if a > 0 and b > 0 and 1 - a - b > 0:
                out.add((r, c))
    return out


def test_a_projected_triangle_maps_to_exactly_its_pixels():
    # counter-clockwise on screen (x right, y down) = facing the camera
    triangle = np.array([[1.3, 1.2, 0.0], [3.1, 9.7, 0.0], [11.6, 4.4, 0.0]])
    size = (12, 14)
    pixels = pixel_correspondence(triangle, np.array([[0, 1, 2]]), size)
    assert pixels.pixels_of_triangle(0) == pixels_inside(triangle, size)
    assert len(pixels.rows) > 20
    # the barycentric weights of each pixel reproduce its centre
    centre = (pixels.barycentric[:, :, None] * triangle[None, :, :2]).sum(axis=1)
    assert np.allclose(centre, np.stack([pixels.cols, pixels.rows], axis=1), atol=1e-4)


def test_hidden_triangles_own_no_pixels_and_their_samples_are_not_visible():
    near = np.array([[0.5, 0.5, 1.0], [0.5, 9.5, 1.0], [9.5, 0.5, 1.0]])
    far = near + np.array([0.0, 0.0, 5.0])  # the same pixels, farther away
    vertices = np.concatenate([near, far])
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    pixels = pixel_correspondence(vertices, faces, (10, 10))
    assert pixels.pixels_of_triangle(1) == set()
    regions = MeshRegions(np.zeros(6, np.int64), np.zeros(2, np.int64), np.array([0]))
    samples = sample_set(faces, regions, np.array([0, 1]), 4)
    visible = visible_samples(samples, vertices, (10, 10))
    assert visible[samples.triangle == 0].all() and not visible[samples.triangle == 1].any()


def test_samples_spread_inside_triangles_and_aggregate_back_to_vertices():
    for pattern in BARYCENTRIC_PATTERNS.values():
        assert np.allclose(pattern.sum(axis=1), 1) and (pattern > 0).all()
    faces = grid_faces(5)
    vertices = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2)
    regions = mesh_regions(np.concatenate([vertices, np.zeros((25, 1))], 1), faces, 4)
    assert sorted(np.unique(regions.vertex_region)) == [0, 1, 2, 3]
    samples = sample_set(faces, regions, np.arange(len(faces)), 6)
    assert len(samples) == 6 * len(faces)
    points = samples.points(vertices[None])
    assert torch.allclose(apply_matrix(samples.matrix(25), torch.as_tensor(vertices[None], dtype=torch.float32)),
                          torch.as_tensor(points, dtype=torch.float32), atol=1e-5)
    # a linear field sampled at the points and aggregated to the vertices is the field at the
    # vertices in the interior (each vertex's samples are symmetric about it on this grid)
    field = torch.as_tensor(points * np.array([2.0, -1.0]), dtype=torch.float32)
    per_vertex, weight = aggregate_to_vertices(field, samples, 25, torch.ones(1, len(samples)))
    interior = np.array([6, 7, 8, 11, 12, 13, 16, 17, 18])
    assert (weight[0] > 0).all()
    assert np.allclose(per_vertex[0, interior].numpy(), vertices[interior] * np.array([2.0, -1.0]), atol=0.35)
    # with uneven weights per frame: each vertex's mean over the samples that reach it, weighted by
    # the sample's weight times its barycentric weight at that vertex (a plain loop as reference)
    rng = np.random.default_rng(1)
    values, weights = rng.normal(size=(2, len(samples), 3)), rng.uniform(size=(2, len(samples)))
    weights[:, :5] = 0.0
    total, norm = np.zeros((2, 25, 3)), np.zeros((2, 25))
    for k, (corners, bary) in enumerate(zip(samples.corners(), samples.barycentric)):
        for corner, b in zip(corners, bary):
            total[:, corner] += (weights[:, k] * b)[:, None] * values[:, k]
            norm[:, corner] += weights[:, k] * b
    means, weight = aggregate_to_vertices(torch.as_tensor(values), samples, 25, torch.as_tensor(weights))
    assert np.allclose(weight.numpy(), norm) and np.allclose(means.numpy(), total / norm[..., None])


def test_sample_cap_keeps_an_even_subset():
    faces = grid_faces(11)
    regions = MeshRegions(np.zeros(121, np.int64), np.zeros(len(faces), np.int64), np.array([0]))
    samples = sample_set(faces, regions, np.arange(len(faces)), 4, max_samples=100)
    assert len(samples) <= 100 and len(np.unique(samples.triangle)) == len(samples) // 4


# ---- losses: zero on consistent input, positive otherwise ---------------------------------------
def mesh() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    faces_np = grid_faces(5)
    xy = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2)
    z = 0.1 * ((xy - 2) ** 2).sum(axis=1, keepdims=True)  # a curved surface
    vertices = torch.as_tensor(np.concatenate([xy, z], 1), dtype=torch.float32)[None]
    faces = torch.as_tensor(faces_np)
    edges = mesh_edges(faces_np, 25)
    return vertices, faces, edges, L.adjacent_face_pairs(faces_np)


def test_flow_and_landmark_losses():
    motion = torch.randn(3, 10, 2)
    assert L.flow_guided_loss(motion, motion.clone(), torch.rand(3, 10)) == 0
    assert L.flow_guided_loss(motion + 0.5, motion, torch.ones(3, 10)) > 0
    assert L.landmark_loss(motion, motion.clone()) == 0
    assert L.landmark_loss(motion, motion + 0.5) > 0
    # a confidence of zero silences a wrong sample
    wrong = motion.clone()
    wrong[:, 0] += 10
    weights = torch.ones(3, 10)
    weights[:, 0] = 0
    assert L.flow_guided_loss(wrong, motion, weights) == 0


def test_expression_consistency_loss():
    coarse = torch.rand(4, 6) * 0.8 + 0.1
    assert L.expression_consistency_loss(coarse.clone(), coarse, (0.0, 1.0)) == 0
    assert L.expression_consistency_loss(coarse + 0.05, coarse, (0.0, 1.0)) > 0
    outside = coarse.clone()
    outside[0, 0] = 1.2
    pure_deviation = ((outside - coarse) ** 2).sum(1).mean()
    assert L.expression_consistency_loss(outside, coarse, (0.0, 1.0)) > pure_deviation


def test_identity_loss():
    offsets = torch.randn(6, 25, 3)
    offsets = offsets - offsets.mean(dim=0, keepdim=True)
    offsets[2] = 0.0
    offsets = offsets - offsets.mean(dim=0, keepdim=True)  # mean 0 but the onset row is not 0 now
    assert L.identity_loss(torch.zeros(6, 25, 3), torch.tensor([2])) == 0
    zero_mean = torch.randn(6, 25, 3)
    zero_mean = zero_mean - zero_mean.mean(dim=0, keepdim=True)
    assert L.identity_loss(zero_mean) < 1e-10
    assert L.identity_loss(zero_mean, torch.tensor([2])) > 0
    assert L.identity_loss(torch.ones(6, 25, 3)) > 0


def test_laplacian_loss():
    _, _, edges, _ = mesh()
    lap = L.uniform_laplacian(edges, 25)
    assert L.laplacian_loss(torch.ones(2, 25, 3) * 0.7, lap) < 1e-12  # a translation is smooth
    bump = torch.zeros(2, 25, 3)
    bump[:, 12, 2] = 1.0
    assert L.laplacian_loss(bump, lap) > 0


def test_normal_consistency_loss():
    vertices, faces, _, pairs = mesh()
    angle = 0.4
    rotation = torch.tensor([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]],
                            dtype=torch.float32)
    moved = vertices @ rotation.T + torch.tensor([0.3, -2.0, 1.0])
    assert L.normal_consistency_loss(moved, vertices, faces, pairs) < 1e-10  # rigid motion keeps the folds
    folded = vertices.clone()
    folded[0, 12, 2] += 0.8
    assert L.normal_consistency_loss(folded, vertices, faces, pairs) > 1e-4


def test_pose_correction_loss():
    assert L.pose_correction_loss(torch.zeros(5, 6)) == 0
    assert L.pose_correction_loss(torch.full((5, 6), 0.1)) > 0


# ---- flow tracks, motion energy, onset ----------------------------------------------------------
def texture(size: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
    return cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def test_flow_tracks_a_subpixel_translation_from_a_middle_reference():
    base = texture()
    shifts = [(-1.2, 0.4), (-0.6, 0.2), (0.0, 0.0), (0.8, -0.5), (1.6, -1.0)]
    frames = [shifted(base, dx, dy) for dx, dy in shifts] + [texture(seed=5)]  # then something else
    canvas = FlowCanvas(1.0, np.zeros(2), base.shape)
    points = np.stack(np.meshgrid(np.arange(30.0, 91, 10), np.arange(30.0, 91, 10)), -1).reshape(-1, 2)
    tracks = track_window(frames, 2, canvas, points)
    error = tracks.positions[:5] - points[None] - np.array(shifts)[:, None, :]
    assert np.abs(error.mean(axis=1)).max() < 0.08  # DIS is accurate on average ...
    assert np.abs(error).max() < 0.5  # ... and within half a pixel everywhere
    assert np.array_equal(tracks.positions[2], points)
    assert np.median(tracks.confidence[:5]) > 0.6  # consistent tracks are trusted ...
    assert np.median(tracks.confidence[5]) < 0.1  # ... tracks into an unrelated image are not


def test_the_two_directions_from_the_reference_track_side_by_side_as_each_would_alone():
    """The frames after the reference are tracked on a thread beside those before it: each half
    is what tracking that half alone gives, bit for bit; progress counts every frame once; a cancel
    raised in one direction stops the window."""
    base = texture()
    frames = [shifted(base, 0.3 * k, -0.2 * k) for k in range(-6, 7)]
    canvas = FlowCanvas(1.0, np.zeros(2), base.shape)
    points = np.stack(np.meshgrid(np.arange(30.0, 91, 15), np.arange(30.0, 91, 15)), -1).reshape(-1, 2)
    counted = []
    both = track_window(frames, 6, canvas, points, progress=counted.append)
    assert len(counted) == len(frames)
    before, after = track_window(frames[:7], 6, canvas, points), track_window(frames[6:], 0, canvas, points)
    assert np.array_equal(both.positions[:7], before.positions) and np.array_equal(both.positions[6:], after.positions)
    assert np.array_equal(both.confidence[:7], before.confidence)
    assert np.array_equal(both.confidence[6:], after.confidence)

    calls = []

    def cancelled_after_four(n: int) -> None:
        calls.append(n)
        if len(calls) > 4:
            raise CancelledError("cancelled")

    with pytest.raises(CancelledError):
        track_window(frames, 6, canvas, points, progress=cancelled_after_four)
    assert len(calls) < len(frames)


def test_mesh_guided_flow_follows_a_large_motion_the_mesh_predicts():
    base = texture(160)
    big = (9.0, -6.0)  # the fitted mesh says the face moved this much ...
    small = (0.7, 0.5)  # ... and it really moved a little more
    frames = [base, shifted(base, big[0] + small[0], big[1] + small[1])]
    canvas = FlowCanvas(1.0, np.zeros(2), base.shape)
    corners = np.array([[10.0, 10.0, 0], [10.0, 150.0, 0], [150.0, 150.0, 0], [150.0, 10.0, 0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])  # counter-clockwise on screen
    warp = mesh_warp(corners, faces, canvas.size)
    assert np.allclose(warp.field(corners[:, :2])[warp.rows, warp.cols], np.stack([warp.cols, warp.rows], 1), atol=1e-4)
    moved = corners[:, :2] + np.array(big)
    points = np.stack(np.meshgrid(np.arange(40.0, 121, 10), np.arange(40.0, 121, 10)), -1).reshape(-1, 2)
    tracks = track_window(frames, 0, canvas, points, lambda i: warp.field(corners[:, :2] if i == 0 else moved))
    error = tracks.positions[1] - points - (np.array(big) + np.array(small))
    assert np.abs(error.mean(axis=0)).max() < 0.08 and np.abs(error).max() < 0.5


def test_affine_motion_is_removed_and_local_motion_dominates_the_energy():
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 100, (200, 2))
    region = (points[:, 0] // 50).astype(np.int64) + 2 * (points[:, 1] // 50).astype(np.int64)
    affine = np.array([[0.02, -0.01], [0.015, 0.01]])
    motion = np.stack([points @ affine.T * t + np.array([3.0, -1.0]) * t for t in range(5)])
    assert np.abs(remove_affine(motion, points, np.ones((5, 200)))).max() < 1e-6
    local = motion.copy()
    local[3, region == 3] += np.array([0.0, 2.0])
    energy = motion_energy(local, points, region, 4, np.ones((5, 200)))
    assert energy[3] > 0.8 and np.all(np.delete(energy, 3) < 1e-6)


def test_onset_is_a_quiet_frame_before_the_movement():
    fps = 200.0
    t = np.arange(200) / fps
    speed = 0.05 + np.where((t > 0.5) & (t < 0.6), np.sin(np.pi * (t - 0.5) / 0.1), 0.0)
    speed = speed + 0.01 * np.random.default_rng(0).standard_normal(200)
    onset, peak = find_onset(speed, fps, lag=4)
    assert 0.55 - 0.02 <= peak / fps <= 0.55 + 0.02
    assert 0.40 <= onset / fps <= 0.5  # before the rise, not long before


# ---- windows and storage ------------------------------------------------------------------------
def test_windows_cover_face_runs_and_cross_fade():
    has_face = np.ones(500, bool)
    has_face[300:305] = False
    windows = plan_windows(has_face, fps=100, window_s=1.0, overlap_s=0.2)
    covered = np.zeros(500, bool)
    for a, b in windows:
        covered[a:b] = True
        assert b - a <= 110 and has_face[a:b].all()
    assert np.array_equal(covered, has_face)
    weights = blend_weights(windows, 500)
    total = np.zeros(500)
    for (a, b), w in zip(windows, weights):
        assert w.shape == (b - a,) and (w > 0).all()
        total[a:b] += w
    assert np.allclose(total[has_face], 1) and (total[~has_face] == 0).all()
    first, second = windows[0], windows[1]
    overlap = second[0], first[1]
    assert np.all(np.diff(weights[0][overlap[0] - first[0]:]) < 0)
    assert np.all(np.diff(weights[1][: overlap[1] - second[0]]) > 0)


def test_assembly_streams_the_windows_and_cross_fades_them_as_one_clip_would():
    """The clip is assembled from windows loaded one at a time (never more than two windows'
    offsets alive, each window loaded three times), and gives what cross-fading all of them in
    one N x V x 3 array gives."""
    import gc
    import weakref

    from core.fit.params import FitParams
    from core.microexpr.stage import WindowResult, assemble

    rng = np.random.default_rng(5)
    n, v, e = 620, 30, 4
    has_face = np.ones(n, bool)
    has_face[400:410] = False
    windows = plan_windows(has_face, fps=100, window_s=1.0, overlap_s=0.3)
    assert len(windows) >= 6 and any(b > a2 for (_, b), (a2, _) in zip(windows, windows[1:]))
    fit = FitParams.empty(np.arange(n) + 1000, np.zeros(3, np.float32), e)
    fit = FitParams(**{**vars(fit), "has_face": has_face, "expression": rng.random((n, e), dtype=np.float32),
                       "rotation": np.zeros((n, 3), np.float32), "camera": np.ones((n, 4), np.float32)})
    shapes = rng.standard_normal((3, v, 3)) * 1e-3  # low rank: the basis keeps all of it
    stored = {a: WindowResult(a, b, a + (b - a) // 3, rng.random(b - a, dtype=np.float32),
                              rng.random((b - a, e), dtype=np.float32), np.zeros((b - a, 3), np.float32),
                              np.ones((b - a, 4), np.float32),
                              np.einsum("tk,kvc->tvc", rng.standard_normal((b - a, 3)), shapes).astype(np.float32), {})
              for a, b in windows}
    alive, loads = [], []

    def load(start: int) -> WindowResult:
        gc.collect()
        alive[:] = [ref for ref in alive if ref() is not None]
        assert len(alive) <= 2, "more than two windows' offsets held at once"
        arrays = {k: value.copy() if isinstance(value, np.ndarray) else value for k, value in vars(stored[start]).items()}
        window = WindowResult(**arrays)  # fresh arrays, as a read from the take gives
        alive.append(weakref.ref(window.offsets))
        loads.append(start)
        return window

    refinement = assemble(windows, load, fit, v)
    assert sorted(loads) == sorted([a for a, _ in windows] * 3)  # parameters, Gram matrix, coefficients

    expected = np.zeros((n, v, 3))
    expression = np.where(has_face[:, None], 0.0, fit.expression)
    for (a, b), k in zip(windows, blend_weights(windows, n)):
        expected[a:b] += k[:, None, None] * stored[a].offsets
        expression[a:b] += k[:, None] * stored[a].expression
    np.testing.assert_allclose(refinement.vertex_offsets(np.arange(n)), expected, atol=1e-8)
    np.testing.assert_allclose(refinement.expression, expression, atol=1e-6)
    assert (refinement.offset_coefficients[~has_face] == 0).all() and len(refinement.offset_basis) == 3
    assert refinement.windows[:, 0].tolist() == [a + 1000 for a, _ in windows]


def test_offsets_are_stored_compactly_and_read_back():
    rng = np.random.default_rng(2)
    basis = rng.standard_normal((3, 40, 3))
    offsets = np.einsum("nk,kvc->nvc", rng.standard_normal((50, 3)), basis) * 1e-3
    stored_basis, coefficients = offsets_basis(offsets)
    assert len(stored_basis) == 3
    n = 50
    refinement = Refinement(
        frame_index=np.arange(n), refined=np.ones(n, bool), onset=np.zeros(n, np.int64), motion_energy=np.zeros(n, np.float32),
        expression=np.zeros((n, 4), np.float32), rotation=np.zeros((n, 3), np.float32), camera=np.zeros((n, 4), np.float32),
        offset_basis=stored_basis, offset_coefficients=coefficients, windows=np.array([[0, n, 0]]),
    )
    again = Refinement.from_npz_dict(refinement.to_npz_dict())
    assert np.allclose(again.vertex_offsets(np.arange(n)), offsets, atol=1e-7)
    assert np.allclose(again.vertex_offsets(7), offsets[7], atol=1e-7)


def test_the_offsets_basis_is_the_truncated_svd_computed_in_blocks():
    """The basis comes from the Gram matrix summed block by block (memory flat in the clip's
    length); it keeps what the SVD of all offsets at once keeps, to float32 precision."""
    rng = np.random.default_rng(3)
    offsets = np.einsum("nk,kvc->nvc", rng.standard_normal((300, 5)), rng.standard_normal((5, 40, 3))) * 1e-3
    offsets += rng.standard_normal(offsets.shape) * 1e-7  # noise far below the tolerance
    flat = offsets.reshape(300, -1)
    u, s, vt = np.linalg.svd(flat, full_matrices=False)
    for block in (7, 2048):
        basis, coefficients = offsets_basis(offsets, block=block)
        assert len(basis) == 5 and coefficients.shape == (300, 5)
        np.testing.assert_allclose(coefficients @ basis.reshape(5, -1), (u[:, :5] * s[:5]) @ vt[:5], atol=1e-8)
    zero = np.zeros((4, 40, 3))
    assert offsets_basis(zero)[0].shape == (0, 40, 3) and offsets_basis(zero)[1].shape == (4, 0)


@pytest.mark.parametrize("rows, width", [(180, 85), (7, 13), (3, 5), (40, 3)])
def test_the_running_median_is_scipys_median_filter_along_time(rows, width):
    from scipy.ndimage import median_filter

    from core.microexpr.stage import running_median

    values = np.random.default_rng(rows).standard_normal((rows, 50, 2)).astype(np.float32)
    values[rows // 2] = 0.0  # ties
    expected = median_filter(values, size=(width, 1, 1), mode="nearest")
    assert np.array_equal(running_median(values, width), expected)


def test_fast_part_keeps_a_brief_motion_and_drops_a_slow_drift():
    from core.microexpr.stage import fast_part

    fps = 100.0
    t = np.arange(200) / fps
    brief = np.where((t > 0.9) & (t < 1.1), np.sin(np.pi * (t - 0.9) / 0.2) ** 2, 0.0)
    drift = 1.0 * t  # 1 px per second
    residual = np.stack([brief + drift, drift], axis=1)[:, None, :]  # T x 1 x 2
    fast = fast_part(residual, fps, detrend_s=0.7)
    assert np.abs(fast[:, 0, 1]).max() < 0.05  # the drift is gone ...
    assert fast[100, 0, 0] > 0.8 and np.abs(fast[:60, 0, 0]).max() < 0.05  # ... the brief motion is kept
    assert np.array_equal(fast_part(residual, fps, detrend_s=0.0), residual)
    noisy = residual + 0.3 * np.random.default_rng(0).standard_normal(residual.shape)
    smoothed = fast_part(noisy, fps, detrend_s=0.7, smooth_s=0.02)
    assert np.std(smoothed[:60, 0, 1]) < 0.5 * np.std(fast_part(noisy, fps, detrend_s=0.7)[:60, 0, 1])
