"""The training render closes the open model's eye and mouth holes (no input pixels leak through)."""

import numpy as np
import torch

from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES
from core.observe import landmark_ids as ids
from core.render.differentiable import coverage, texture_warp
from training.render_topology import MOUTH_SHADE, render_topology


def test_an_open_mouth_shows_the_darkened_filler_not_the_background():
    model = load_face_model(ModelChoice())
    topology = render_topology(model)
    assert topology.filler_points and topology.skin_faces == len(model.faces)
    params = model.zero_params(1)
    params.expression[0, ARKIT_NAMES.index("jawOpen")] = 1.0
    params.expression[0, ARKIT_NAMES.index("eyeWideLeft")] = 1.0
    with torch.no_grad():
        out = model(params)
    size = 128
    points = torch.cat([out.vertices, out.landmarks], dim=1)[0].double().numpy()
    px = np.stack([points[:, 0] * 500 + size / 2, -points[:, 1] * 500 + size / 2, -points[:, 2] * 500], axis=1)
    px[model.num_vertices:, 2] += 1000.0  # fillers behind the skin
    cov = coverage(px[None], topology.faces.numpy(), (size, size))
    texture = torch.full((1, 3, size, size), 0.8, dtype=torch.float64)
    background = torch.zeros(1, 3, size, size, dtype=torch.float64)
    image, mask = texture_warp(torch.as_tensor(px[None, :, :2]), torch.as_tensor(px[None, :, :2]), topology.faces, texture,
                               cov, background=background, shade=topology.shade.double())
    upper, lower = out.landmarks[0, 13].numpy(), out.landmarks[0, 14].numpy()  # inner-lip midpoints
    mouth = (upper + lower) / 2
    row, col = int(round(-mouth[1] * 500 + size / 2)), int(round(mouth[0] * 500 + size / 2))
    assert mask[0, 0, row, col] == 1  # covered: the mouth's filler, not the background
    assert abs(float(image[0, 0, row, col]) - 0.8 * MOUTH_SHADE) < 1e-6  # the darkened cavity
    eye = out.landmarks[0, ids.LEFT_IRIS_CENTER].numpy()
    assert mask[0, 0, int(round(-eye[1] * 500 + size / 2)), int(round(eye[0] * 500 + size / 2))] == 1
