"""The face model's maths (core.facemodel.lbs / model) against a direct NumPy implementation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from core.facemodel import FaceModel, FaceModelData, FaceParams
from core.facemodel.lbs import barycentric_points, batch_rodrigues, blend_shapes
from core.facemodel.types import JOINT_PARENTS, NUM_JOINTS
from tests.synthetic_flame import synthetic_face_model_data


@pytest.fixture(scope="module")
def data() -> FaceModelData:
    return synthetic_face_model_data(num_shape=20, num_expression=10)


@pytest.fixture(scope="module")
def model(data) -> FaceModel:
    return FaceModel(data)


def random_params(model: FaceModel, batch: int, seed: int, pose_scale: float = 0.3) -> FaceParams:
    g = torch.Generator().manual_seed(seed)

    def r(n: int, scale: float) -> torch.Tensor:
        return torch.randn(batch, n, generator=g) * scale

    return FaceParams(
        shape=r(model.num_shape, 1.0),
        expression=r(model.num_expression, 1.0),
        rotation=r(3, pose_scale),
        neck=r(3, pose_scale),
        jaw=r(3, pose_scale),
        eyes=r(6, pose_scale),
        translation=r(3, 0.05),
    )


def reference_forward(data: FaceModelData, shape, expression, pose, translation):
    """One face, loop by loop, float64. pose: J x 3 axis-angle. Returns (vertices, joints, landmarks)."""
    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    template, faces = f64(data.template), np.asarray(data.faces)
    num_vertices = len(template)
    identity = template + np.tensordot(f64(data.shape_basis), shape, axes=([2], [0]))
    joints = f64(data.joint_regressor) @ identity
    rest = identity + np.tensordot(f64(data.expression_basis), expression, axes=([2], [0]))
    rotations = [Rotation.from_rotvec(p).as_matrix() for p in pose]
    feature = np.concatenate([(rotations[j] - np.eye(3)).ravel() for j in range(1, NUM_JOINTS)])
    rest = rest + (feature @ f64(data.pose_basis)).reshape(num_vertices, 3)

    world = []
    for j, parent in enumerate(JOINT_PARENTS):
        local = np.eye(4)
        local[:3, :3] = rotations[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0.0)
        world.append(local if parent < 0 else world[parent] @ local)
    posed_joints = np.array([w[:3, 3] for w in world])
    skinning = []
    for j in range(NUM_JOINTS):
        a = world[j].copy()
        a[:3, 3] -= world[j][:3, :3] @ joints[j]
        skinning.append(a)
    weights = f64(data.skinning_weights)
    vertices = np.empty_like(rest)
    for v in range(num_vertices):
        t = sum(weights[v, j] * skinning[j] for j in range(NUM_JOINTS))
        vertices[v] = t[:3, :3] @ rest[v] + t[:3, 3]
    vertices += translation
    landmarks = np.array(
        [sum(data.landmark_barycentric[i, k] * vertices[faces[data.landmark_faces[i], k]] for k in range(3))
         for i in range(len(data.landmark_faces))]
    )
    return vertices, posed_joints + translation, landmarks


# --- rotations and blend shapes ---------------------------------------------------------------


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-7), (torch.float32, 2e-6)])
def test_rodrigues_matches_scipy(dtype, atol):
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(200, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    special = [0.0, 1e-7, 1e-4, 1e-2, 0.5, 1.0, 2.0, 3.0, 3.1, np.pi - 1e-3]
    angles = np.concatenate([rng.uniform(0, np.pi, 190), special])
    rotvecs = axes * angles[:, None]
    got = batch_rodrigues(torch.as_tensor(rotvecs, dtype=dtype)).double().numpy()
    expected = Rotation.from_rotvec(rotvecs).as_matrix()
    np.testing.assert_allclose(got, expected, atol=atol)
    assert np.allclose(got[190], np.eye(3))  # zero rotation is the identity
    np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=10 * atol)


def test_rodrigues_rotates_by_the_right_hand_rule():
    quarter_turn_z = batch_rodrigues(torch.tensor([[0.0, 0.0, np.pi / 2]], dtype=torch.float64))[0]
    # atol: the eps that keeps the angle smooth at zero shifts it by ~1e-9 rad
    np.testing.assert_allclose(quarter_turn_z.numpy() @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-8)


def test_blend_shapes_match_a_loop():
    rng = np.random.default_rng(2)
    basis = rng.normal(size=(7, 3, 4))
    coefficients = rng.normal(size=(2, 4))
    got = blend_shapes(torch.as_tensor(coefficients), torch.as_tensor(basis)).numpy()
    expected = np.zeros((2, 7, 3))
    for b in range(2):
        for k in range(4):
            expected[b] += coefficients[b, k] * basis[:, :, k]
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_barycentric_points_match_a_loop():
    rng = np.random.default_rng(3)
    vertices = rng.normal(size=(2, 6, 3))
    faces = np.array([[0, 1, 2], [2, 3, 4], [1, 4, 5]])
    face_index = np.array([2, 0, 1, 2])
    bary = rng.dirichlet(np.ones(3), size=4)
    got = barycentric_points(*(torch.as_tensor(a) for a in (vertices, faces, face_index, bary))).numpy()
    for b in range(2):
        for i in range(4):
            expected = sum(bary[i, k] * vertices[b, faces[face_index[i], k]] for k in range(3))
            np.testing.assert_allclose(got[b, i], expected, atol=1e-12)


# --- the full model on the synthetic FLAME-layout face ---------------------------------------


def test_zero_parameters_give_the_template_and_rest_joints(model, data):
    out = model(model.zero_params(1))
    np.testing.assert_allclose(out.vertices[0].numpy(), data.template, atol=1e-7)
    np.testing.assert_allclose(out.joints[0].numpy(), data.joint_regressor @ data.template, atol=1e-6)
    # landmarks sit on the true MediaPipe points (vertices 0..477 of the synthetic mesh)
    np.testing.assert_allclose(out.landmarks[0].numpy(), data.template[:478], atol=1e-7)


def test_forward_matches_numpy_lbs_for_random_poses(model, data):
    params = random_params(model, batch=3, seed=4, pose_scale=0.4)
    out = model(params)
    pose = params.full_pose().double().numpy()
    for b in range(3):
        vertices, joints, landmarks = reference_forward(
            data, params.shape[b].double().numpy(), params.expression[b].double().numpy(), pose[b],
            params.translation[b].double().numpy(),
        )
        # the pose really moves the mesh (so agreement below is not trivial): centimetres
        assert np.abs(vertices - data.template).max() > 0.01
        np.testing.assert_allclose(out.vertices[b].numpy(), vertices, atol=5e-6)
        np.testing.assert_allclose(out.joints[b].numpy(), joints, atol=5e-6)
        np.testing.assert_allclose(out.landmarks[b].numpy(), landmarks, atol=5e-6)


def test_landmarks_are_barycentric_points_of_the_posed_mesh(model, data):
    out = model(random_params(model, batch=2, seed=5))
    vertices = out.vertices.double().numpy()
    corners = vertices[:, data.faces[data.landmark_faces]]  # B x L x 3 x 3
    expected = (corners * data.landmark_barycentric[None, :, :, None]).sum(axis=2)
    np.testing.assert_allclose(out.landmarks.numpy(), expected, atol=1e-6)


def test_joints_drive_their_regions(data):
    # without pose correctives, a joint's rotation moves exactly the vertices skinned to it
    model = FaceModel(replace(data, pose_basis=np.zeros_like(data.pose_basis)))
    left, right = data.info["iris_left"], data.info["iris_right"]
    forehead = np.flatnonzero(data.template[:, 1] > data.template[left, 1].mean() + 0.02)
    chin = 152  # MediaPipe's chin point

    def displacement(**pose) -> np.ndarray:
        params = model.zero_params(1)
        for name, value in pose.items():
            getattr(params, name)[0] = torch.tensor(value)
        with torch.no_grad():
            vertices = model(params).vertices[0].numpy()
        return np.linalg.norm(vertices - data.template, axis=1)

    eye = displacement(eyes=[0.0, 0.3, 0.0, 0.0, 0.0, 0.0])  # the left eye turns
    assert eye[left].max() > 1e-3
    assert np.delete(eye, left).max() < 1e-7
    params = model.zero_params(1)  # the eyeball centre stays put under its own rotation
    params.eyes[0, :3] = torch.tensor([0.2, 0.3, 0.0])
    np.testing.assert_allclose(model(params).joints[0, 3].numpy(), (data.joint_regressor @ data.template)[3], atol=1e-6)

    jaw = displacement(jaw=[0.25, 0.0, 0.0])  # the jaw opens
    assert jaw[chin] > 5e-3
    assert jaw[forehead].max() < 1e-7
    assert jaw[right].max() < 1e-7
    # opening the jaw (positive rotation about x) moves the chin down and back, as FLAME's jaw does
    params = model.zero_params(1)
    params.jaw[0, 0] = 0.25
    chin_move = model(params).vertices[0, chin].numpy() - data.template[chin]
    assert chin_move[1] < -3e-3 and chin_move[2] < 0


def test_batch_of_four_equals_four_singles(model):
    params = random_params(model, batch=4, seed=6)
    batched = model(params)
    for b in range(4):
        single = FaceParams(**{name: getattr(params, name)[b : b + 1] for name in params.__dataclass_fields__})
        out = model(single)
        for field in ("vertices", "joints", "landmarks"):
            np.testing.assert_allclose(
                getattr(out, field)[0].numpy(), getattr(batched, field)[b].numpy(), atol=1e-6, err_msg=field
            )


def tiny_data(seed: int = 7) -> FaceModelData:
    """A 10-vertex model with every kind of component, for gradcheck."""
    rng = np.random.default_rng(seed)
    v, s, e = 10, 2, 3
    template = rng.normal(scale=0.05, size=(v, 3))
    weights = rng.dirichlet(np.ones(NUM_JOINTS), size=v)
    regressor = rng.dirichlet(np.ones(v), size=NUM_JOINTS)
    return FaceModelData(
        name="tiny",
        template=template,
        faces=np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8], [7, 8, 9], [1, 5, 9]]),
        shape_basis=rng.normal(scale=0.01, size=(v, 3, s)),
        expression_basis=rng.normal(scale=0.01, size=(v, 3, e)),
        pose_basis=rng.normal(scale=0.01, size=(36, v * 3)),
        joint_regressor=regressor,
        skinning_weights=weights,
        landmark_faces=np.array([0, 3, 5]),
        landmark_barycentric=rng.dirichlet(np.ones(3), size=3),
        landmark_ids=np.array([1, 2, 3]),
        expression_names=("a", "b", "c"),
    )


@pytest.mark.parametrize("pose_scale", [0.5, 0.0])
def test_gradcheck_float64(pose_scale):
    model = FaceModel(tiny_data()).double()
    g = torch.Generator().manual_seed(8)
    names = ("shape", "expression", "rotation", "neck", "jaw", "eyes", "translation")
    sizes = (2, 3, 3, 3, 3, 6, 3)
    poses = ("rotation", "neck", "jaw", "eyes")
    inputs = tuple(
        (torch.randn(2, n, generator=g, dtype=torch.float64) * (pose_scale if name in poses else 1.0)).requires_grad_()
        for name, n in zip(names, sizes)
    )

    def run(*args):
        out = model(FaceParams(*args))
        return out.vertices, out.joints, out.landmarks

    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradients_are_finite_and_nonzero_at_zero_pose(model):
    params = model.zero_params(2)
    for name in params.__dataclass_fields__:
        getattr(params, name).requires_grad_(True)
    model(params).landmarks.square().sum().backward()
    for name in params.__dataclass_fields__:
        grad = getattr(params, name).grad
        assert grad is not None and torch.isfinite(grad).all(), name
    assert params.jaw.grad.abs().max() > 0 and params.shape.grad.abs().max() > 0
