"""The frozen recogniser as a differentiable function agrees with the recogniser itself."""

import numpy as np
import torch

from core.emotion.recognisers import load_recogniser
from core.observe import FaceObserver
from core.video import open_source
from tests.conftest import fixture_path
from training.recogniser import DifferentiableRecogniser


def test_differentiable_fer_matches_fer_and_passes_gradients():
    crops = []
    with open_source(fixture_path("WolfgangLanger_Pexels.mp4")) as source, FaceObserver() as observer:
        for index in range(0, 472, 59):
            observer.reset()
            crops.append(observer.observe(index, 0.0, source.read(index)).crop)
    crops = np.stack(crops)
    reference = load_recogniser("fer").predict(crops).probabilities
    recogniser = DifferentiableRecogniser("fer")
    images = (torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255).requires_grad_(True)
    probabilities = recogniser(images)
    ours = probabilities.detach().numpy()
    assert np.allclose(ours.sum(axis=1), 1.0, atol=1e-5) and (ours[:, 7] == 0).all()  # FER has no contempt
    assert (ours.argmax(axis=1) == reference.argmax(axis=1)).all()
    assert np.abs(ours - reference).mean() < 0.02  # OpenCV's and torch's resampling differ slightly
    probabilities[:, 1].sum().backward()  # "happy": the gradient reaches the pixels
    assert images.grad.abs().sum() > 0 and not any(p.requires_grad for p in recogniser.parameters())
