"""The 3D viewport renders the model's mesh with OpenGL (needs Xvfb): faces once, vertices per frame."""

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from app.viewport import BACKGROUND, MeshViewport
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES


@pytest.fixture(scope="module")
def model():
    return load_face_model(ModelChoice())


def posed(model, **weights):
    params = model.zero_params(1)
    for name, value in weights.items():
        params.expression[0, ARKIT_NAMES.index(name)] = value
    with torch.no_grad():
        return model(params).vertices[0].numpy()


@pytest.fixture
def viewport(qtbot, model):
    widget = MeshViewport()
    qtbot.addWidget(widget)
    widget.resize(500, 400)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_topology(model.faces.numpy(), posed(model))
    return widget


def render(widget) -> np.ndarray:
    return widget.canvas.render()[..., :3].astype(np.int16)


def face_pixels(image: np.ndarray) -> np.ndarray:
    background = np.array(BACKGROUND[:3]) * 255
    return np.abs(image - background).sum(-1) > 30


def test_the_face_fills_the_middle_of_the_view(viewport):
    image = render(viewport)
    mask = face_pixels(image)
    h, w = mask.shape
    assert mask[h // 2, w // 2]  # the nose is in the middle
    assert 0.1 < mask.mean() < 0.6
    assert not mask[:5].any() and not mask[:, :5].any()  # framed with a margin


def test_only_vertices_are_uploaded_per_frame_and_the_mesh_moves(viewport, model):
    index_buffer = viewport._surface._index_buffer
    before = render(viewport)
    viewport.show_mesh(posed(model, jawOpen=1.0), None)
    after = render(viewport)
    assert viewport._surface._index_buffer is index_buffer
    changed = np.abs(after - before).sum(-1) > 30
    ys = np.nonzero(changed)[0]
    assert changed.sum() > 200 and ys.mean() > before.shape[0] / 2  # the jaw (lower half) moved


def test_colours_wireframe_presets_and_hiding(viewport, model):
    vertices = posed(model)
    red = np.tile([1.0, 0.0, 0.0], (len(vertices), 1)).astype(np.float32)
    viewport.show_mesh(vertices, red)
    image = render(viewport)
    mask = face_pixels(image)
    assert image[mask][:, 0].mean() > 2 * image[mask][:, 1].mean()  # the performer's colours
    viewport.set_textured(False)
    image = render(viewport)
    assert image[face_pixels(image)][:, 1].mean() > 60  # skin again
    front = face_pixels(render(viewport))
    viewport.set_preset("side")
    side = face_pixels(render(viewport))
    assert side.sum() < 0.8 * front.sum()  # a profile is narrower
    viewport.reset_view()
    np.testing.assert_array_equal(face_pixels(render(viewport)), front)
    plain = render(viewport)
    viewport.set_wireframe(True)
    assert np.abs(render(viewport) - plain).sum(-1).astype(bool).sum() > 500
    viewport.show_mesh(None, None)
    assert not face_pixels(render(viewport)).any()


def test_dragging_orbits_the_camera(viewport, qtbot):
    azimuth = viewport.view.camera.azimuth
    native = viewport.canvas.native
    centre = QPoint(native.width() // 2, native.height() // 2)
    QTest.mousePress(native, Qt.LeftButton, Qt.NoModifier, centre)
    for dx in range(10, 110, 10):
        QTest.mouseMove(native, centre + QPoint(dx, 0))
        qtbot.wait(5)
    QTest.mouseRelease(native, Qt.LeftButton, Qt.NoModifier, centre + QPoint(100, 0))
    assert abs(viewport.view.camera.azimuth - azimuth) > 5
