"""The 3D viewport renders the model's mesh with OpenGL (needs Xvfb): faces once, vertices per frame,
in a native window of its own that takes no keyboard focus and quits cleanly."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtOpenGL import QOpenGLWindow
from PySide6.QtOpenGLWidgets import QOpenGLWidget
from PySide6.QtTest import QTest

from app.mesh_visual import mesh_edges
from app.viewport import BACKGROUND, MeshViewport
from core.facemodel.loading import ModelChoice, load_face_model
from core.facemodel.open_model import ARKIT_NAMES

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_3d_view_is_a_native_window_not_an_opengl_widget(window):
    # A QOpenGLWidget anywhere in the window makes Qt compose the whole window through OpenGL on
    # every repaint of any widget (~22 ms with software OpenGL); the 3D view lives in its own window.
    assert window.findChildren(QOpenGLWidget) == []
    assert isinstance(window.viewport.canvas.native, QOpenGLWindow)
    assert window.viewport.isAncestorOf(window.viewport.canvas.widget)


def test_a_click_in_the_3d_view_leaves_the_keys_to_the_main_window(loaded, qtbot):
    viewport = loaded.viewport
    native = viewport.canvas.native
    QTest.mouseClick(native, Qt.LeftButton, Qt.NoModifier, QPoint(native.width() // 2, native.height() // 2))
    qtbot.waitUntil(viewport.hasFocus, timeout=2000)
    assert QGuiApplication.focusWindow() is loaded.windowHandle()  # the GL window took no focus
    QTest.keyClick(loaded.windowHandle(), Qt.Key_W)  # the viewport's own key
    assert viewport.wireframe
    QTest.keyClick(loaded.windowHandle(), Qt.Key_End)  # a main-window shortcut
    assert loaded.current == loaded.source.info.frame_count - 1


QUIT_WITHOUT_CLOSING = """
import sys
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from app.viewport import MeshViewport
kept, dropped = MeshViewport(), MeshViewport()
for view in (kept, dropped):
    view.show()
for _ in range(50):
    app.processEvents()
dropped.deleteLater()  # never processed: Qt deletes it while quitting
print("quitting")
"""


def test_quitting_with_3d_views_still_open_exits_cleanly():
    out = subprocess.run([sys.executable, "-c", QUIT_WITHOUT_CLOSING], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "quitting" in out.stdout


def test_a_new_topology_replaces_the_mesh_in_the_same_buffers(viewport, model):
    """Another model (more vertices, other triangles) reuses the index buffer and resizes the rest."""
    full = face_pixels(render(viewport))
    vertices = posed(model)
    faces = model.faces.numpy()
    lower = faces[vertices[faces].mean(1)[:, 1] < np.median(vertices[:, 1])]  # the lower half's triangles
    padded = np.concatenate([vertices, np.zeros((40, 3), np.float32)])  # and 40 vertices more
    index_buffer = viewport._surface._index_buffer
    viewport.set_topology(lower, padded)
    half = face_pixels(render(viewport))
    assert viewport._surface._index_buffer is index_buffer
    assert 0.2 * full.sum() < half.sum() < 0.8 * full.sum()
    ys = np.nonzero(half)[0]
    assert ys.mean() > np.nonzero(full)[0].mean()  # what is left is the lower half
    assert len(viewport.edges) < len(mesh_edges(faces))


def test_teeth_show_in_an_open_mouth_and_hide_behind_closed_lips(viewport, model):
    from app.viewport import TEETH
    from core.render.teeth import TeethRig

    rig = TeethRig.of_neutral(model.neutral_face(np.zeros(model.num_shape)))
    viewport.set_teeth(rig.faces, rig.shade, rig.gum)
    viewport.set_textured(False)

    def frame(**weights):
        params = model.zero_params(1)
        for name, value in weights.items():
            params.expression[0, ARKIT_NAMES.index(name)] = value
        with torch.no_grad():
            out = model(params)
        return out.vertices[0].numpy(), rig.place(out)[0]

    def toothlike(image: np.ndarray) -> np.ndarray:  # near the teeth's colour, brighter than skin
        return (np.abs(image - TEETH * 255).max(-1) < 45) & (image.min(-1) > 150)

    closed, closed_teeth = frame()
    viewport.show_mesh(closed, None)
    plain = render(viewport)
    viewport.show_mesh(closed, None, closed_teeth)
    np.testing.assert_array_equal(render(viewport), plain)  # a closed mouth hides them

    laugh, laugh_teeth = frame(jawOpen=0.5, mouthSmileLeft=1.0, mouthSmileRight=1.0, mouthUpperUpLeft=0.6,
                               mouthUpperUpRight=0.6)
    viewport.show_mesh(laugh, None)
    without = render(viewport)
    viewport.show_mesh(laugh, None, laugh_teeth)
    with_teeth = render(viewport)
    shown = toothlike(with_teeth) & ~toothlike(without)
    ys, xs = np.nonzero(shown)
    h, w = shown.shape
    assert shown.sum() > 100
    assert ys.mean() > h / 2 and abs(xs.mean() - w / 2) < w / 10  # in the mouth: below the middle, centred
    viewport.show_mesh(None, None)
    assert not face_pixels(render(viewport)).any()  # a frame without a face hides the teeth too
