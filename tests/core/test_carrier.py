"""The carrier face: the curves that leave EmoCap, judged on a neutral face (core/emotion/carrier.py)."""

import dataclasses
import json

import cv2
import numpy as np
import pytest

from core.emotion.carrier import FRAME, NONE, PHOTO, CarrierChoice, CarrierError, carrier_choice, photo_carrier
from core.emotion.carrier import neutral_photo as stored_neutral_photo
from core.emotion.recognisers import load_recogniser
from core.emotion.stage import EmotionConfig
from core.emotion.types import EMOTIONS
from core.facemodel.loading import ModelChoice, load_face_model
from core.pipeline import Pipeline, PipelineConfig
from core.render.reconstruction import ReconstructionRenderer
from core.take import Take
from core.video import open_source
from tests.conftest import fixture_path, run_cli

HAPPY = EMOTIONS.index("happy")
FER_ONLY = EmotionConfig(recognisers=("fer",))


@pytest.fixture(scope="module")
def neutral_photo(tmp_path_factory):
    """The first frame of single_face.mp4 (a neutral face before the smile) as a PNG."""
    with open_source(fixture_path("single_face.mp4")) as source:
        rgb = source.read(0)
    path = tmp_path_factory.mktemp("carrier") / "neutral face.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def smile_on_carrier(tmp_path_factory, neutral_photo):
    """single_face.jpg (a broad smile) analysed with the neutral photo as its carrier."""
    take_dir = tmp_path_factory.mktemp("still") / "take"
    config = PipelineConfig(device="cpu", emotion=dataclasses.replace(FER_ONLY, carrier=str(neutral_photo)))
    summary = Pipeline(config).run(fixture_path("single_face.jpg"), take_dir)
    return summary, Take.open(take_dir)


def test_the_carrier_is_the_named_photo_then_the_neutral_photo_then_a_frame(tmp_path, neutral_photo):
    other = tmp_path / "other.png"
    other.write_bytes(neutral_photo.read_bytes())
    named = carrier_choice(str(other), str(neutral_photo), 1)
    assert named.kind == PHOTO and named.path == str(other.resolve()) and len(named.sha256) == 64
    assert carrier_choice(None, str(neutral_photo), 1).path == str(neutral_photo.resolve())
    stored_image = {"image": {"path": str(neutral_photo), "size": 1, "sha1": "0" * 40}}
    assert carrier_choice(None, stored_neutral_photo(stored_image), 1).path == str(neutral_photo.resolve())
    assert carrier_choice(None, stored_neutral_photo({"frame": 12}), 40).kind == FRAME  # a neutral frame of the clip
    assert carrier_choice(None, None, 40) == CarrierChoice(FRAME)
    alone = carrier_choice(None, None, 1)
    assert alone.kind == NONE and "--carrier" in alone.reason
    with pytest.raises(CarrierError, match="not a readable file"):
        carrier_choice(str(tmp_path / "missing.png"), None, 40)
    assert CarrierChoice.from_dict(named.to_dict()) == named


def test_a_frame_wearing_its_own_curves_renders_as_itself(single_emotion_take):
    _, take_dir = single_emotion_take
    take = Take.open(take_dir)
    fit, observations = take.read_fit(), take.load_observations()
    renderer = ReconstructionRenderer(load_face_model(ModelChoice()), fit, observations, reference_frame=0)
    with open_source(fixture_path("single_face.mp4")) as source:
        renderer.set_reference(0, source.read(0))
    smile = int(np.argmax(fit.expression[:, 23] + fit.expression[:, 24]))  # mouthSmileLeft + Right
    own, own_mask = renderer.render_crop_batch([smile])
    worn, worn_mask = renderer.render_expressions(smile, fit.expression[[smile]], fit.jaw[[smile]])
    assert np.array_equal(own, worn) and np.array_equal(own_mask, worn_mask)
    rest, _ = renderer.render_expressions(smile, np.zeros((1, fit.expression.shape[1])))
    assert np.abs(rest.astype(int) - own.astype(int)).mean() > 1.0  # the smile is in the curves
    with pytest.raises(ValueError, match="expression weights"):
        renderer.render_expressions(smile, np.zeros((1, 3)))


def test_a_smile_s_curves_on_a_neutral_carrier_read_happy_and_no_curves_do_not(smile_on_carrier, neutral_photo):
    summary, take = smile_on_carrier
    record = take.manifest.emotion
    assert record.carrier["kind"] == PHOTO and record.carrier["path"] == str(neutral_photo.resolve())
    fer = take.read_emotion().timelines["fer"]
    assert EMOTIONS[int(np.argmax(fer.carrier_raw[0]))] == "happy"
    assert 0.0 <= fer.carried[0] <= 1.0 and summary.mean_carried == {"fer": pytest.approx(float(fer.carried[0]), abs=1e-4)}
    assert summary.carrier == str(neutral_photo.resolve())

    # the control: the same carrier without the curves is not read as happy
    model = load_face_model(ModelChoice())
    carrier = photo_carrier(CarrierChoice.from_dict(record.carrier), take.root, model, ModelChoice(), "cpu")
    fit = take.read_fit()
    rest = carrier.render(dataclasses.replace(fit, expression=np.zeros_like(fit.expression)), [0])
    worn = carrier.render(fit, [0])
    probabilities = load_recogniser("fer").predict(np.concatenate([rest, worn])).probabilities
    assert probabilities[0, HAPPY] < 0.3 < probabilities[1, HAPPY]


def test_a_single_image_without_a_neutral_says_why_it_has_no_carrier(tmp_path):
    result = run_cli("analyze", str(fixture_path("single_face.jpg")), "--out", str(tmp_path / "take"),
                     "--device", "cpu", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["mean_carried"] == {"fer": None} and "--carrier" in summary["carrier"]
    take = Take.open(tmp_path / "take")
    assert take.manifest.emotion.carrier["kind"] == NONE
    assert take.read_emotion().timelines["fer"].carrier_probabilities is None


def test_a_missing_carrier_photo_is_a_user_error(tmp_path):
    result = run_cli("analyze", str(fixture_path("single_face.jpg")), "--out", str(tmp_path / "take"),
                     "--device", "cpu", "--carrier", str(tmp_path / "nobody.png"))
    assert result.returncode == 2 and "nobody.png is not a readable file" in result.stderr


def test_a_clip_s_curves_are_judged_on_its_own_neutral_frame(single_emotion_take):
    summary, take_dir = single_emotion_take
    take = Take.open(take_dir)
    record = take.manifest.emotion
    assert record.carrier["kind"] == FRAME and record.carrier["frame"] == record.reference_frame
    stored = take.read_emotion()
    for timeline in stored.timelines.values():
        carried = timeline.carrier_probabilities
        assert carried.shape == (summary.frames, len(EMOTIONS))
        measured = np.nonzero(np.isfinite(timeline.carrier_raw).all(axis=1))[0]
        step = int(round(EmotionConfig().carrier_step_seconds * summary.fps))
        assert measured[0] == 0 and measured[-1] == summary.frames - 1  # the run's ends ...
        assert np.array_equal(measured[:-1], np.arange(0, summary.frames - 1, step))  # ... and the period
        assert np.allclose(carried.sum(axis=1), 1.0, atol=1e-4)
    emonet = stored.timelines["emonet"]
    smiling, neutral = emonet.probabilities[:, HAPPY] > 0.9, emonet.probabilities[:, HAPPY] < 0.1
    assert smiling.sum() >= 10 and neutral.sum() >= 5
    # the performer's smile, and only the smile, reads happy on the carrier too
    assert emonet.carrier_probabilities[smiling, HAPPY].mean() > 0.7
    assert emonet.carrier_probabilities[neutral, HAPPY].mean() < 0.3
