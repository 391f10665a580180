"""Face observation on the real fixtures."""

import numpy as np
import pytest

from core.observe import FaceObserver
from core.observe import landmark_ids as ids
from core.video import open_source
from tests.conftest import fixture_path


def observe_all(path, stop=None):
    with open_source(path) as source, FaceObserver() as observer:
        return [
            observer.observe(i, float(source.timestamps[i]), image)
            for i, image in source.iter_frames(stop=stop)
        ], source.info


def test_talking_head_is_found_with_plausible_landmarks(wolfgang):
    observations, info = observe_all(wolfgang, stop=48)
    assert all(o.has_face for o in observations)
    for obs in observations:
        lms = obs.landmarks
        assert lms.shape == (478, 3) and lms.dtype == np.float32
        assert (lms[:, 0] >= 0).all() and (lms[:, 0] < info.width).all()
        assert (lms[:, 1] >= 0).all() and (lms[:, 1] < info.height).all()
        # image left to right: performer's right eye, nose, performer's left eye
        assert lms[ids.RIGHT_EYE_OUTER, 0] < lms[ids.NOSE_TIP, 0] < lms[ids.LEFT_EYE_OUTER, 0]
        # each iris centre lies between the corners of its own eye
        assert lms[ids.RIGHT_EYE_OUTER, 0] < lms[ids.RIGHT_IRIS_CENTER, 0] < lms[ids.RIGHT_EYE_INNER, 0]
        assert lms[ids.LEFT_EYE_INNER, 0] < lms[ids.LEFT_IRIS_CENTER, 0] < lms[ids.LEFT_EYE_OUTER, 0]
        assert 0.5 < obs.confidence <= 1.0
        assert obs.crop.shape == (256, 256, 3) and obs.crop.dtype == np.uint8
    # tracked frames do not rerun the full-frame detector
    assert observations[0].faces_detected == 1
    assert all(o.faces_detected == -1 for o in observations[1:])


def test_aligned_crop_puts_the_eyes_level_and_centred(wolfgang):
    observations, _ = observe_all(wolfgang, stop=5)
    for obs in observations:
        t = obs.crop_transform
        eyes = obs.landmarks[[ids.RIGHT_IRIS_CENTER, ids.LEFT_IRIS_CENTER], :2].astype(np.float64)
        in_crop = eyes @ t[:, :2].T + t[:, 2]
        assert abs(in_crop[0, 1] - in_crop[1, 1]) < 256 * 0.03  # level
        assert in_crop[0, 0] < 128 < in_crop[1, 0]  # either side of the centre
        assert 256 * 0.25 < in_crop.mean(axis=0)[1] < 256 * 0.55


def test_mirrored_image_mirrors_the_head_pose():
    import cv2

    image = cv2.cvtColor(cv2.imread(str(fixture_path("single_face.jpg"))), cv2.COLOR_BGR2RGB)
    with FaceObserver() as a, FaceObserver() as b:
        pose = a.observe(0, 0.0, image).head_pose
        mirrored = b.observe(0, 0.0, np.ascontiguousarray(image[:, ::-1])).head_pose
    yaw, pitch, roll = pose.yaw_pitch_roll_deg
    m_yaw, m_pitch, m_roll = mirrored.yaw_pitch_roll_deg
    assert m_yaw == pytest.approx(-yaw, abs=3.0)
    assert m_roll == pytest.approx(-roll, abs=3.0)
    assert m_pitch == pytest.approx(pitch, abs=3.0)


def test_group_photo_follows_the_largest_face_deterministically():
    path = fixture_path("multi_face.jpg")
    runs = [observe_all(path)[0][0] for _ in range(2)]
    first, second = runs
    assert first.has_face and first.faces_detected >= 2
    assert np.array_equal(first.landmarks, second.landmarks)
    with FaceObserver() as observer:
        observer.observe(0, 0.0, open_source(path).read(0))
        selection = observer.state.selection
    assert selection.faces_found == first.faces_detected
    # the chosen face is the one whose landmarks we got
    assert selection.box.iou(first.box) > 0.3


def test_no_face_is_flagged_and_nothing_is_invented():
    observations, _ = observe_all(fixture_path("no_face.mp4"))
    assert observations and not any(o.has_face for o in observations)
    assert all(o.landmarks is None and o.confidence == 0.0 for o in observations)


def test_face_leaving_the_frame_is_flagged_then_found_again():
    observations, _ = observe_all(fixture_path("face_noface.mov"))
    flags = np.array([o.has_face for o in observations])
    assert flags.any() and not flags.all()
    assert all(o.landmarks is None for o in observations if not o.has_face)


@pytest.mark.parametrize("name", ["happy__kdef__3.jpg", "disgust__kdef__4.jpg", "fear__kdef__4.jpg",
                                  "neutral__kdponce__1.jpg", "anger__kdponce__1.jpg"])
def test_half_profiles_and_faces_filling_a_large_photo_are_found(name):
    """The full-range detector misses these (45-degree views; a face 3 700 px wide); the observer
    falls back to the short-range detector on the whole frame."""
    from core.observe.detector import FaceDetector
    from tests.conftest import ROOT

    path = ROOT.parent / "shared" / "expressions" / name
    with open_source(path) as source:
        image = source.read(0)
    full_range = FaceDetector(full_range=True, min_score=0.5)
    try:
        assert full_range.detect(image) == []  # what the observer used to rely on alone
    finally:
        full_range.close()
    with FaceObserver(crop_images=False) as observer:
        observation = observer.observe(0, 0.0, image)
    assert observation.has_face
    lms = observation.landmarks
    assert lms[ids.RIGHT_EYE_OUTER, 1] < lms[ids.MOUTH_LEFT, 1]  # eyes above the mouth: a real face


def _rolled(image: np.ndarray, degrees: float) -> np.ndarray:
    """The image turned by ``degrees`` (counter-clockwise on screen) on a canvas that holds all of it."""
    import cv2

    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(h * sin + w * cos), int(h * cos + w * sin))
    matrix[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
    return cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("name, degrees", [("happy__epiasoo__1.jpg", 35), ("happy__epiasoo__1.jpg", 90),
                                           ("sad__uigafer__1.jpg", 90)])
def test_a_rolled_head_the_mesh_misses_in_a_level_crop_is_found_upright(name, degrees, monkeypatch):
    """The detector finds these heads but the mesh, on a level crop, does not; turned upright by
    the eyes' roll, the crop gives landmarks that are the face's, turned with it."""
    import core.observe.observer as observer_module
    from tests.conftest import ROOT

    with open_source(ROOT.parent / "shared" / "expressions" / name) as source:
        upright_image = source.read(0)
    image = _rolled(upright_image, degrees)
    with FaceObserver(crop_images=False) as observer:
        upright = observer.observe(0, 0.0, upright_image)
        observer.reset()
        found = observer.observe(0, 0.0, image)
        observer.reset()
        with monkeypatch.context() as patch:  # without the upright crop, as before
            patch.setattr(observer_module, "UPRIGHT_RETRY_DEG", float("inf"))
            assert not observer.observe(0, 0.0, image).has_face
    assert found.has_face and found.confidence > 0.5
    lms = found.landmarks
    eyes = lms[ids.LEFT_EYE_OUTER, :2] - lms[ids.RIGHT_EYE_OUTER, :2]
    assert np.degrees(np.arctan2(eyes[1], eyes[0])) == pytest.approx(-degrees, abs=10)
    # the same face: its landmarks turned back onto the upright photo's, up to a similarity
    from core.observe.headpose import similarity_align

    flat = np.zeros((len(lms), 3))
    target = flat.copy()
    flat[:, :2], target[:, :2] = lms[:, :2], upright.landmarks[:, :2]
    rotation, shift, scale = similarity_align(flat, target)
    back = scale * flat @ rotation.T + shift
    iod = np.linalg.norm(target[ids.LEFT_EYE_OUTER] - target[ids.RIGHT_EYE_OUTER])
    assert np.linalg.norm(back - target, axis=1).mean() < 0.04 * iod  # 1.3 and 2.6 % measured


def test_a_rolled_head_is_tracked_in_turned_crops_and_a_resumed_track_matches():
    """After the upright retry found a head rolled 35 degrees, the next frames are tracked in crops
    turned by its roll (no detector run per frame); a track restarted from its stored state at a
    chunk boundary, as the pipeline restarts it, gives the same landmarks as one that ran on."""
    from core.take.observations import track_state_from_arrays, track_state_to_arrays
    from tests.conftest import ROOT

    with open_source(ROOT.parent / "shared" / "expressions" / "happy__epiasoo__1.jpg") as source:
        image = _rolled(source.read(0), 35)
    frames = [np.roll(image, shift, axis=1) for shift in (0, 2, 4, 6, 8, 10)]  # the head drifts sideways

    def observe_all(restart_at: int | None) -> list:
        observer, out = FaceObserver(crop_images=False), []
        try:
            for index, frame in enumerate(frames):
                if index in (0, 3):  # the pipeline's chunk boundaries
                    state = track_state_to_arrays(observer.state)
                    if index == restart_at:  # a new process, from the stored state
                        observer.close()
                        observer = FaceObserver(crop_images=False)
                    observer.reset(track_state_from_arrays(state))
                out.append(observer.observe(index, index / 30, frame))
        finally:
            observer.close()
        return out

    ran_on, resumed = observe_all(None), observe_all(3)
    assert all(o.has_face for o in ran_on)
    assert [o.faces_detected >= 0 for o in ran_on] == [True] + [False] * 5  # the detector on the first frame only
    for a, b in zip(ran_on, resumed):
        assert np.array_equal(a.landmarks, b.landmarks)
    # the tracking crops were turned with the head (its eyes' roll, as drawn on screen)
    for o in ran_on[1:]:
        assert o.box.roll_deg == pytest.approx(-35, abs=5)


def test_a_graph_that_refuses_to_restart_is_built_again(caplog):
    from core.observe.mediapipe_runtime import QuietSolution

    class Solution:  # stands in for a MediaPipe solution whose restart fails (MediaPipe 0.10.21)
        built = 0

        def __init__(self):
            Solution.built += 1
            self.number = Solution.built

        def reset(self):
            raise RuntimeError("; RET_CHECK failure (mediapipe/framework/scheduler.cc:93) SetNonDefaultExecutor "
                               "must not be called after the scheduler has started")

        def process(self, image):
            return self.number

    solution = QuietSolution(Solution)
    assert solution.process(None) == 1
    solution.reset()
    assert solution.process(None) == 2 and Solution.built == 2
    assert "building it again" in caplog.text


def test_mediapipe_s_drawing_helpers_and_matplotlib_load_only_when_used():
    """import_mediapipe leaves matplotlib unimported (half a second of every start-up); MediaPipe's
    drawing helpers still work, imported on first use."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys\n"
        "from core.observe.mediapipe_runtime import import_mediapipe\n"
        "mp = import_mediapipe()\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported with mediapipe'\n"
        "assert hasattr(mp.solutions, 'drawing_utils') and 'matplotlib' not in sys.modules\n"
        "style = mp.solutions.drawing_styles.get_default_face_mesh_contours_style()\n"
        "spec = mp.solutions.drawing_utils.DrawingSpec(color=(1, 2, 3))\n"
        "assert style and spec.color == (1, 2, 3) and 'matplotlib.pyplot' in sys.modules\n"
        "assert type(sys.modules['mediapipe.python.solutions.drawing_utils']).__name__ == 'module'\n"
        "assert mp.solutions.drawing_utils is sys.modules['mediapipe.python.solutions.drawing_utils']\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
