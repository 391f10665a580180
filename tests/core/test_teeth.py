"""The teeth placed in a face model's mouth (core/render/teeth.py): behind the lips, the upper band
carried by the skull and the lower one by the jaw."""

import dataclasses

import numpy as np
import pytest
import torch

from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES, LOWER_LIP_INNER, UPPER_LIP_INNER
from core.render.teeth import TEETH_COLUMNS, TeethRig, kabsch


@pytest.fixture(scope="module")
def model():
    return load_face_model(ModelChoice())


def posed(model, rotation=(0.0, 0.0, 0.0), **weights):
    params = model.zero_params(1)
    params = dataclasses.replace(params, shape=torch.full((1, model.num_shape), 0.5))
    params.rotation[0] = torch.tensor(rotation)
    for name, value in weights.items():
        params.expression[0, ARKIT_NAMES.index(name)] = value
    with torch.no_grad():
        return model(params)


def test_kabsch_recovers_a_rigid_motion():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(9, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    target = (source @ rot.T + [0.1, -0.2, 0.3])[None]
    got_rot, got_t = kabsch(source, target)
    np.testing.assert_allclose(got_rot[0], rot, atol=1e-12)
    np.testing.assert_allclose(got_t[0], [0.1, -0.2, 0.3], atol=1e-12)


def test_the_neutral_teeth_sit_behind_the_lips_across_the_mouth(model):
    neutral = model.neutral_face(np.full(model.num_shape, 0.5))
    rig = TeethRig.of_neutral(neutral)
    teeth = rig.place(neutral)[0]
    assert teeth.shape == (6 * TEETH_COLUMNS, 3) and rig.num_vertices == len(teeth)
    assert rig.faces.max() == len(teeth) - 1 and rig.is_lower.sum() == len(teeth) // 2
    np.testing.assert_allclose(np.concatenate([rig.upper, rig.lower]), teeth, atol=1e-9)  # at rest: as built
    lips = neutral.landmarks[0].numpy()[list(UPPER_LIP_INNER) + list(LOWER_LIP_INNER)]
    width = np.ptp(lips[:, 0])
    assert abs(teeth[:, 0].mean() - lips[:, 0].mean()) < 0.002  # centred on the mouth
    assert 0.9 * width < np.ptp(teeth[:, 0]) < 1.1 * width  # as wide as it (the ends hide in the cheeks)
    middle = neutral.landmarks[0].numpy()[[UPPER_LIP_INNER[len(UPPER_LIP_INNER) // 2]]]
    assert teeth[:, 2].max() < middle[0, 2] - 0.003  # z is forward: the front teeth 4 mm behind the lips


def test_the_upper_teeth_follow_the_skull_and_the_lower_ones_the_jaw(model):
    rig = TeethRig.of_neutral(model.neutral_face(np.full(model.num_shape, 0.5)))
    rest = rig.place(posed(model))[0]
    upper, lower = ~rig.is_lower, rig.is_lower
    opened = rig.place(posed(model, jawOpen=1.0))[0]
    np.testing.assert_allclose(opened[upper], rest[upper], atol=1e-9)  # the jaw leaves the skull
    chin = 152
    drop = posed(model).landmarks[0, chin, 1] - posed(model, jawOpen=1.0).landmarks[0, chin, 1]
    lowered = rest[lower, 1] - opened[lower, 1]
    assert float(drop) > 0.01 and lowered.min() > 0.3 * float(drop)  # the lower row drops with the chin
    # a head turn moves both rows rigidly with the head
    turned = rig.place(posed(model, rotation=(0.0, 0.5, 0.0)))[0]
    rot, shift = kabsch(rest, turned[None])
    np.testing.assert_allclose(rest @ rot[0].T + shift[0], turned, atol=2e-4)
    assert np.degrees(np.arccos((np.trace(rot[0]) - 1) / 2)) == pytest.approx(np.degrees(0.5), abs=1.0)
