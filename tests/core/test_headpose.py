import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.observe.headpose import canonical_face, estimate_head_pose, euler_yaw_pitch_roll, similarity_align


def test_similarity_align_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(40, 3))
    rotation = Rotation.from_euler("yxz", [25, -10, 5], degrees=True).as_matrix()
    target = 3.5 * source @ rotation.T + np.array([10.0, -4.0, 2.0])
    r, t, s = similarity_align(source, target)
    assert np.allclose(r, rotation, atol=1e-9)
    assert s == pytest.approx(3.5)
    assert np.allclose(t, [10.0, -4.0, 2.0])


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (30, 0, 0), (-20, 10, 0), (10, -15, 25)])
def test_euler_angles_round_trip(yaw, pitch, roll):
    rotation = Rotation.from_euler("YXZ", [yaw, pitch, roll], degrees=True).as_matrix()
    assert np.allclose(euler_yaw_pitch_roll(rotation), [yaw, pitch, roll], atol=1e-6)


def test_head_pose_of_a_posed_canonical_face():
    canonical = canonical_face()
    rotation = Rotation.from_euler("YXZ", [35, -12, 8], degrees=True).as_matrix()
    image_points = 120.0 * canonical @ rotation.T + np.array([320.0, 180.0, 0.0])
    pose = estimate_head_pose(image_points.astype(np.float32))
    assert np.allclose(pose.yaw_pitch_roll_deg, [35, -12, 8], atol=0.01)
    assert pose.scale == pytest.approx(120.0, rel=1e-4)
    assert pose.residual < 1e-4


def test_canonical_face_is_in_its_anatomical_frame():
    c = canonical_face()
    assert c.shape == (478, 3)
    assert np.allclose(c[33], [-0.5, 0, 0], atol=1e-4) and np.allclose(c[263], [0.5, 0, 0], atol=1e-4)
    assert c[1, 2] < -0.2  # nose tip toward the camera
    assert c[152, 1] > 1.0  # chin below the eyes
