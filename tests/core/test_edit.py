"""Non-destructive slider edits (core/edit.py) on a real analysed take."""

import dataclasses

import numpy as np
import pytest

from core.edit import (
    EditBasis,
    EditLayer,
    Edits,
    apply_edits,
    load_edits,
    model_basis,
    save_edits,
    take_basis,
    with_emotion_directions,
)
from core.emotion.from_params import predict_from_params
from core.emotion.types import EMOTIONS
from core.errors import EditError
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES
from core.fit.params import FitParams
from core.take import Take

HAPPY = EMOTIONS.index("happy")


@pytest.fixture(scope="module")
def model():
    return load_face_model(ModelChoice())


@pytest.fixture(scope="module")
def edited_take(single_emotion_take, model):
    take = Take.open(single_emotion_take[1])
    return take, take.read_fit(), take_basis(take, model)


def test_region_weights_follow_the_arkit_names(model):
    basis = model_basis(model)
    share = dict(zip(ARKIT_NAMES, basis.upper_share))
    assert share["browInnerUp"] > 0.95 and share["eyeBlinkLeft"] > 0.95
    assert share["mouthSmileLeft"] < 0.3 and share["jawOpen"] < 0.05
    assert basis.jaw_components[ARKIT_NAMES.index("jawOpen")] and not basis.jaw_components[ARKIT_NAMES.index("mouthClose")]
    assert basis.eye_components.sum() == 14 and basis.bounds == (0.0, 1.0)


def test_identity_edits_return_the_fit_unchanged(edited_take):
    _, fit, basis = edited_take
    assert apply_edits(fit, Edits(), basis) is fit
    same = apply_edits(fit, Edits((EditLayer(intensity=1.0),)), basis)
    np.testing.assert_array_equal(same.expression, fit.expression)


def test_global_intensity_scales_expression_and_jaw_and_clamps(edited_take):
    _, fit, basis = edited_take
    faces = fit.has_face
    half = apply_edits(fit, Edits((EditLayer(intensity=0.5),)), basis)
    np.testing.assert_allclose(half.expression[faces], 0.5 * fit.expression[faces], atol=1e-6)
    np.testing.assert_allclose(half.jaw[faces], 0.5 * fit.jaw[faces], atol=1e-6)
    np.testing.assert_array_equal(half.rotation, fit.rotation)  # head motion is not expression
    double = apply_edits(fit, Edits((EditLayer(intensity=2.0),)), basis)
    assert double.expression[faces].max() <= 1.0
    assert np.allclose(double.expression[faces], np.clip(2 * fit.expression[faces], 0, 1), atol=1e-6)


def test_upper_face_slider_moves_brows_not_the_mouth(edited_take):
    _, fit, basis = edited_take
    muted = apply_edits(fit, Edits((EditLayer(upper_face=0.0),)), basis)
    faces = fit.has_face
    brow, mouth = ARKIT_NAMES.index("browInnerUp"), ARKIT_NAMES.index("mouthSmileLeft")
    assert np.abs(muted.expression[faces, brow]).max() < 0.05 * max(np.abs(fit.expression[faces, brow]).max(), 1e-3)
    np.testing.assert_allclose(muted.expression[faces, mouth], fit.expression[faces, mouth] * (1 - basis.upper_share[mouth]), atol=1e-6)


def test_range_layer_changes_only_its_frames(edited_take):
    _, fit, basis = edited_take
    edited = apply_edits(fit, Edits((EditLayer(intensity=0.0, start=10, stop=20),)), basis)
    np.testing.assert_array_equal(edited.expression[:10], fit.expression[:10])
    np.testing.assert_array_equal(edited.expression[20:], fit.expression[20:])
    assert np.nanmax(np.abs(edited.expression[10:20])) == 0


def test_per_emotion_slider_changes_the_predicted_emotion_of_the_smile(edited_take):
    take, fit, basis = edited_take
    assert "happy" in basis.emotion_directions  # the clip ends in a broad smile
    net = take.read_emotion().param_model(fit.expression.shape[1])
    rows = np.nonzero(fit.has_face)[0][-10:]  # the smiling end of the clip
    before = predict_from_params(net, fit.expression[rows]).probabilities[:, HAPPY].mean()
    layer = EditLayer().with_emotion("happy", 0.0)
    muted = apply_edits(fit, Edits((layer,)), basis)
    after = predict_from_params(net, muted.expression[rows]).probabilities[:, HAPPY].mean()
    assert before > 0.8 and after < before - 0.3
    smile = ARKIT_NAMES.index("mouthSmileLeft")
    assert muted.expression[rows, smile].mean() < 0.5 * fit.expression[rows, smile].mean()


def test_an_emotion_slider_scales_only_the_frames_that_show_it():
    """Sad and happy frames share a component (as fitted smiles in sad frames do); each slider
    still changes only its own frames, and with no neutral frames the rest face is the origin."""
    happy_face, sad_face = np.array([1.0, 0.0, 0.5, 0.0]), np.array([0.6, 1.0, 0.0, 0.0])
    expression = np.stack([happy_face] * 6 + [sad_face] * 6).astype(np.float32)
    probabilities = np.zeros((12, len(EMOTIONS)), np.float32)
    probabilities[:6, HAPPY] = probabilities[6:, EMOTIONS.index("sad")] = 1.0
    flat = EditBasis(upper_share=np.zeros(4, np.float32), jaw_components=np.zeros(4, bool),
                     eye_components=np.zeros(4, bool), bounds=None, emotion_origin=np.zeros(4, np.float32))
    basis = with_emotion_directions(flat, expression, probabilities)
    np.testing.assert_array_equal(basis.emotion_origin, 0.0)
    fit = dataclasses.replace(FitParams.empty(np.arange(12), np.zeros(3), 4), expression=expression,
                              has_face=np.ones(12, bool), jaw=np.zeros((12, 3), np.float32), eyes=np.zeros((12, 6), np.float32))

    def edited(name: str, scale: float) -> np.ndarray:
        return apply_edits(fit, Edits((EditLayer().with_emotion(name, scale),)), basis).expression

    no_sad = edited("sad", 0.0)
    np.testing.assert_allclose(no_sad[:6], expression[:6])
    np.testing.assert_allclose(no_sad[6:], 0.0, atol=1e-6)
    no_happy = edited("happy", 0.0)
    np.testing.assert_allclose(no_happy[:6], 0.0, atol=1e-6)
    np.testing.assert_allclose(no_happy[6:], expression[6:])
    np.testing.assert_allclose(edited("happy", 2.0)[:6], 2 * expression[:6], rtol=1e-5)
    # with neutral frames, the emotions are measured from the performer's neutral face
    rest = np.array([0.2, 0.0, 0.0, 0.1], np.float32)
    neutral_probabilities = np.zeros((4, len(EMOTIONS)), np.float32)
    neutral_probabilities[:, 0] = 1.0
    with_neutral = with_emotion_directions(flat, np.vstack([expression, [rest] * 4]),
                                           np.vstack([probabilities, neutral_probabilities]))
    np.testing.assert_allclose(with_neutral.emotion_origin, rest)


def test_a_photograph_has_the_direction_of_the_emotion_it_shows():
    """One frame read as 90 % happy: the happy slider scales its expression (from the model's rest,
    as there is no neutral frame); an emotion it does not show gets no direction."""
    face = np.array([[0.8, 0.0, 0.4, 0.1]], np.float32)
    probabilities = np.zeros((1, len(EMOTIONS)), np.float32)
    probabilities[0, HAPPY], probabilities[0, 0] = 0.9, 0.1
    flat = EditBasis(upper_share=np.zeros(4, np.float32), jaw_components=np.zeros(4, bool),
                     eye_components=np.zeros(4, bool), bounds=None, emotion_origin=np.zeros(4, np.float32))
    basis = with_emotion_directions(flat, face, probabilities)
    assert list(basis.emotion_directions) == ["happy"]
    np.testing.assert_array_equal(basis.emotion_origin, 0.0)
    fit = dataclasses.replace(FitParams.empty(np.arange(1), np.zeros(3), 4), expression=face,
                              has_face=np.ones(1, bool), jaw=np.zeros((1, 3), np.float32), eyes=np.zeros((1, 6), np.float32))
    halved = apply_edits(fit, Edits((EditLayer().with_emotion("happy", 0.5),)), basis).expression
    np.testing.assert_allclose(halved, face * (1 - 0.5 * 0.9), rtol=1e-5)


def test_smoothing_reduces_jitter_and_keeps_gaps(edited_take):
    _, fit, basis = edited_take
    smoothed = apply_edits(fit, Edits((EditLayer(smoothing=3.0),)), basis)
    smoother = apply_edits(fit, Edits((EditLayer(smoothing=8.0),)), basis)
    faces = fit.has_face
    jitter = lambda a: np.abs(np.diff(a[faces], 2, axis=0)).mean()  # noqa: E731
    assert jitter(smoother.expression) < jitter(smoothed.expression) < 0.75 * jitter(fit.expression)
    np.testing.assert_array_equal(np.isnan(smoothed.expression), np.isnan(fit.expression))


def test_bad_values_and_unknown_emotions_are_named_errors(edited_take):
    _, fit, basis = edited_take
    with pytest.raises(EditError, match="outside 0 to 2"):
        EditLayer(intensity=2.5)
    with pytest.raises(EditError, match="unknown emotion"):
        EditLayer(emotions=(("joy", 1.2),))
    with pytest.raises(EditError, match="empty"):
        EditLayer(start=5, stop=5)
    no_directions = model_basis(load_face_model(ModelChoice()))
    with pytest.raises(EditError, match="no contempt"):
        apply_edits(fit, Edits((EditLayer().with_emotion("contempt", 1.5),)), no_directions)


def test_slider_values_round_trip():
    layer = EditLayer(intensity=1.5, jaw=0.2, smoothing=2.5, start=4, stop=9).with_emotion("sad", 0.5)
    values = layer.slider_values()
    assert values["sad"] == 0.5 and values["smoothing"] == 2.5 and "happy" not in values
    assert EditLayer.from_slider_values(values | {"happy": 1.0}, 4, 9) == layer


def test_edits_round_trip_through_the_take_folder(tmp_path):
    edits = Edits().with_layer(EditLayer(intensity=1.3, smoothing=2.0)).with_layer(
        EditLayer(jaw=0.5, start=3, stop=9).with_emotion("happy", 1.4))
    assert load_edits(tmp_path) == Edits()
    save_edits(tmp_path, edits)
    assert load_edits(tmp_path) == edits
    assert edits.layer_for(3, 9).jaw == 0.5 and edits.layer_for(0, 1).is_identity
    # setting a layer back to neutral removes it
    assert edits.with_layer(EditLayer(start=3, stop=9)).layers == (EditLayer(intensity=1.3, smoothing=2.0),)


def test_export_applies_the_stored_edits(single_emotion_take, tmp_path):
    from core.export.base import prepare_export

    take_dir = single_emotion_take[1]
    plain = prepare_export(take_dir, "curves_npz", tmp_path / "a.npz", edits=Edits())
    half = prepare_export(take_dir, "curves_npz", tmp_path / "b.npz", edits=Edits((EditLayer(intensity=0.5),)))
    faces = plain.fit.has_face
    np.testing.assert_allclose(half.fit.expression[faces], 0.5 * plain.fit.expression[faces], atol=1e-6)
    assert half.edit_layers == 1 and plain.edit_layers == 0
