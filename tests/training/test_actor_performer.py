"""train-actor on a take fitted with a performer profile learns that profile's face model."""

import shutil

import numpy as np

from core.facemodel.loading import load_face_model
from core.facemodel.open_model import load_open_model, open_model_digest
from core.performer.profile import PerformerProfile, save_profile
from core.take import Take
from training.actor import actor_config
from training.trainer import model_choice


def test_actor_config_takes_the_profile_the_take_was_fitted_with(wolfgang_take, tmp_path):
    _, take_dir = wolfgang_take
    generic = actor_config(take_dir, tmp_path / "run_generic", epochs=1)
    assert generic.model.performer is None

    base = load_open_model()
    profile = PerformerProfile(
        name="actor", identity=np.zeros(base.num_shape, np.float32),
        neutral_offset=np.zeros((base.num_vertices, 3), np.float32), expression_basis=1.2 * base.expression_basis,
        neutral_scores=np.zeros(base.num_expression, np.float32), base_model_sha256=open_model_digest())
    path = save_profile(profile, tmp_path / "actor.npz")
    copy = tmp_path / "take"
    shutil.copytree(take_dir, copy)
    take = Take.open(copy)
    take.manifest.fit.settings["performer"] = str(path)
    take.save_manifest()

    config = actor_config(copy, tmp_path / "run", epochs=1)
    assert config.model.performer == str(path)
    model = load_face_model(model_choice(config))
    np.testing.assert_allclose(model.expression_basis.numpy(), profile.expression_basis, atol=1e-7)
    assert model.name.endswith("+actor")
