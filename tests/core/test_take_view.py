"""What viewers show of a take (core/take_view.py): frames, meshes, curves, edits, refinement."""

import shutil

import numpy as np
import pytest

from core.edit import EditLayer, Edits
from core.errors import InputNotFoundError
from core.microexpr.config import RefineConfig
from core.pipeline import Pipeline, PipelineConfig
from core.take_view import TakeView, sample_colours
from tests.core.test_microexpr_pipeline import clip, fitted  # noqa: F401  (fixtures)


def test_frames_meshes_and_curves_of_an_analysed_take(single_emotion_take):
    view = TakeView(single_emotion_take[1])
    assert view.frame_count == 72 and view.fps == 30.0
    frame = view.frame(40)
    assert frame.image.shape == (360, 640, 3) and frame.landmarks.shape == (478, 2)
    assert frame.vertices.shape == (478, 3) and frame.projected.shape == (478, 2)
    # the fitted mesh projects onto the observed landmarks (open model: vertex i = landmark i)
    error = np.linalg.norm(frame.projected - frame.landmarks, axis=1).mean()
    eyes = np.linalg.norm(frame.landmarks[33] - frame.landmarks[263])
    assert error < 0.05 * eyes
    np.testing.assert_allclose(frame.colours, sample_colours(frame.image, frame.projected))
    # the teeth in the mouth: the fitted identity's, behind the frame's lips in the image
    assert frame.teeth.shape == (view.teeth.num_vertices, 3)
    import torch

    from core.fit.camera import project

    teeth = project(torch.as_tensor(frame.teeth)[None], torch.as_tensor(view.fit.camera[[40]]))[0, :, :2].numpy()
    mouth = frame.landmarks[[13, 14]].mean(axis=0)  # between the inner lips' midpoints
    assert np.linalg.norm(teeth.mean(axis=0) - mouth) < 0.15 * eyes
    curves = view.curves()
    assert curves.primary == "emonet" and curves.emotion["emonet"].shape == (72, 8)
    assert curves.reconstruction_emotion.shape == (72, 8) and curves.micro_energy is None
    assert curves.expression.shape == (72, 52) and curves.expression_names[0] == "eyeBlinkLeft"
    assert curves.blendshape_names == curves.expression_names  # MediaPipe's scores, comparable by name
    np.testing.assert_array_equal(curves.blendshapes, view.observations.blendshapes)
    view.set_edits(Edits((EditLayer(intensity=0.0),)))
    assert np.nanmax(np.abs(view.fit.expression)) == 0  # the raw fit is untouched
    assert np.nanmax(view.raw_fit.expression) > 0.3
    view.close()


def test_a_frame_is_posed_on_one_torch_thread(single_emotion_take, monkeypatch):
    """One frame's tensors are tiny: with the cores busy (an analysis in the app's child process),
    torch's second thread made posing several times slower. The process's setting comes back."""
    import torch

    from core.fit.fitter import torch_threads

    view = TakeView(single_emotion_take[1])
    seen = []
    forward = type(view.model).forward

    def recorded(self, params):
        seen.append(torch.get_num_threads())
        return forward(self, params)

    monkeypatch.setattr(type(view.model), "forward", recorded)
    try:
        with torch_threads(2):
            view.frame(40)
            assert seen == [1] and torch.get_num_threads() == 2
    finally:
        view.close()


def test_a_moved_recording_is_a_clear_error(single_emotion_take, tmp_path):
    take = tmp_path / "take"
    shutil.copytree(single_emotion_take[1], take)
    with pytest.raises(InputNotFoundError, match="no longer at"):
        TakeView(take, source_path=tmp_path / "gone.mp4")


def test_the_refinement_is_shown_and_can_be_compared(clip, fitted, tmp_path):  # noqa: F811
    take = tmp_path / "take"
    shutil.copytree(fitted, take)
    Pipeline(PipelineConfig(device="cpu", refine=RefineConfig())).run(clip, take)
    view = TakeView(take)
    assert view.refinement is not None and view.show_refined
    energy = view.curves().micro_energy
    np.testing.assert_array_equal(energy, view.refinement.motion_energy)
    apex = int(np.nanargmax(energy))
    refined = view.frame(apex).vertices
    view.set_show_refined(False)
    plain = view.frame(apex).vertices
    assert np.abs(refined - plain).max() > 1e-4  # offsets and refined expression move the mesh
    np.testing.assert_array_equal(view.fit.expression, view.raw_fit.expression)
    view.close()
