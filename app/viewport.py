"""The 3D viewport: the current frame's reconstructed mesh (vispy) with teeth in its mouth, orbit /
pan / zoom with the mouse (left drag orbits, shift + left or middle drag pans, wheel zooms), reset,
front and side views, wireframe and the performer's colours as toggles."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget
from vispy import scene

from app.gl_window import WindowSceneCanvas
from app.mesh_visual import IndexedMesh, MeshBuffers, mesh_edges, vertex_normals
from core.render.teeth import teeth_colours

log = logging.getLogger(__name__)

SKIN = np.array([0.80, 0.68, 0.60], np.float32)
TEETH = np.array([0.90, 0.87, 0.79], np.float32)
GUM = np.array([0.70, 0.38, 0.38], np.float32)
MOUTH_SHADOW = np.array([0.20, 0.08, 0.08], np.float32)  # what a tooth's shade fades toward
BACKGROUND = (0.13, 0.14, 0.16, 1.0)
NO_TRIANGLE = np.zeros((1, 3), np.uint32)  # a collapsed triangle: draws no pixel
PRESETS = {"front": (90.0, 0.0), "side": (0.0, 0.0)}  # (azimuth, elevation) degrees; +z faces the viewer at 90


class MeshViewport(QWidget):
    """Call :meth:`set_topology` once per model, then :meth:`show_mesh` per frame."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = WindowSceneCanvas(keys=None, bgcolor=BACKGROUND, parent=self)
        self.view = self.canvas.central_widget.add_view()
        self.view.camera = scene.TurntableCamera(up="+y", fov=20.0, azimuth=0.0, elevation=0.0)
        self.canvas.widget.setMinimumSize(200, 150)
        self.setFocusPolicy(Qt.ClickFocus)  # a click in the 3D view focuses this widget: its keys below
        self.canvas.native.pressed.connect(lambda: self.setFocus(Qt.MouseFocusReason))
        # The visuals are made once and drawn from the first paint on, so that their shaders are
        # built and compiled at start-up, not when a take's first mesh arrives mid-analysis
        # (~30 ms with software OpenGL); without a mesh the surface draws one collapsed triangle.
        self._buffers = MeshBuffers(3)
        self._surface = IndexedMesh(self._buffers, NO_TRIANGLE, "triangles", parent=self.view.scene)
        self._wire = IndexedMesh(self._buffers, NO_TRIANGLE[:, :2], "lines", parent=self.view.scene)
        self._wire.visible = False
        self._teeth_buffers = MeshBuffers(3)
        self._teeth = IndexedMesh(self._teeth_buffers, NO_TRIANGLE, "triangles", parent=self.view.scene)
        self._teeth.visible = False
        self._faces: np.ndarray | None = None
        self._teeth_faces: np.ndarray | None = None
        self._teeth_colours: np.ndarray | None = None
        self.edges: np.ndarray | None = None  # E x 2 mesh edges of the topology (the video overlay uses them too)
        self._centre = np.zeros(3, np.float32)
        self._radius = 0.12
        self.textured = True
        self.wireframe = False
        self._last: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None = None
        self.view.camera.transform.changed.connect(self._update_light)
        # A Qt label beside the buttons, not vispy text in the view: a vispy Text visual costs
        # ~0.2 s of glyph rendering on its first draw, and nothing can be drawn over the view's
        # native window. The empty view is made and drawn once at start-up, off the analysis' way.
        self.placeholder = QLabel("The reconstructed face appears here once the clip is fitted")
        self.placeholder.setStyleSheet("color: #999;")
        self._build_toolbar()

    def _build_toolbar(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        self.buttons: dict[str, QToolButton] = {}
        for key, text, tip in (("reset", "Reset", "Reset the view (R)"), ("front", "Front", "Front view (1)"),
                               ("side", "Side", "Side view (3)"), ("wire", "Wireframe", "Show the mesh edges (W)"),
                               ("texture", "Colours", "Colour the mesh with the performer's pixels (T)")):
            button = QToolButton(self)
            button.setText(text)
            button.setToolTip(tip)
            button.setObjectName(f"viewport_{key}")
            self.buttons[key] = button
            bar.addWidget(button)
        bar.addSpacing(12)
        bar.addWidget(self.placeholder)
        bar.addStretch(1)
        for key in ("wire", "texture"):
            self.buttons[key].setCheckable(True)
            self.buttons[key].setStyleSheet("QToolButton:checked { background: #2f6fb5; color: white; }")
        self.buttons["texture"].setChecked(True)
        self.buttons["reset"].clicked.connect(self.reset_view)
        self.buttons["front"].clicked.connect(lambda: self.set_preset("front"))
        self.buttons["side"].clicked.connect(lambda: self.set_preset("side"))
        self.buttons["wire"].toggled.connect(self.set_wireframe)
        self.buttons["texture"].toggled.connect(self.set_textured)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.canvas.widget, 1)

    # -- content ---------------------------------------------------------------------------
    def set_topology(self, faces: np.ndarray, rest_vertices: np.ndarray) -> None:
        """Upload the triangles (F x 3) once; frame the camera on the rest mesh (V x 3, metres)."""
        self.clear()
        self._faces = np.asarray(faces, np.int64)
        self.edges = mesh_edges(self._faces)
        self._surface.set_indices(self._faces)
        self._wire.set_indices(self.edges)
        low, high = rest_vertices.min(0), rest_vertices.max(0)
        self._centre = ((low + high) / 2).astype(np.float32)
        self._radius = float(np.linalg.norm(high - low) / 2)
        self.reset_view()
        self._update_light()
        self.show_mesh(rest_vertices, None)

    def set_teeth(self, faces: np.ndarray, shade: np.ndarray, gum: np.ndarray) -> None:
        """The teeth of this topology (core.render.teeth.TeethRig): F x 3 triangles of T vertices,
        per vertex a shade factor and a gum weight (T each), which colour them once; their
        vertices come with each frame (:meth:`show_mesh`)."""
        self._teeth_faces = np.asarray(faces, np.int64)
        self._teeth_colours = teeth_colours(shade, gum, TEETH, GUM, MOUTH_SHADOW).astype(np.float32)
        self._teeth.set_indices(self._teeth_faces)

    def show_mesh(self, vertices: np.ndarray | None, colours: np.ndarray | None, teeth: np.ndarray | None = None) -> None:
        """Show V x 3 vertices (model space, metres) with V x 3 colours in [0, 1] (None: skin), and
        the T x 3 vertices of the teeth (:meth:`set_teeth`; None: none). ``vertices=None`` hides the
        mesh (a frame without a face)."""
        if self._faces is None:
            return
        self.placeholder.hide()
        if vertices is None:
            self._surface.visible = False
            self._wire.visible = False
            self._teeth.visible = False
        else:
            self._last = (vertices, colours, teeth)
            shown = colours if (self.textured and colours is not None) else np.broadcast_to(SKIN, vertices.shape)
            self._buffers.update(vertices, vertex_normals(vertices, self._faces), shown)
            self._surface.visible = True
            self._wire.visible = self.wireframe
            self._teeth.visible = teeth is not None and self._teeth_faces is not None
            if self._teeth.visible:
                self._teeth_buffers.update(teeth, vertex_normals(teeth, self._teeth_faces), self._teeth_colours)
        self.canvas.update()

    def clear(self) -> None:
        """Forget the mesh (a new clip): the placeholder shows until the next topology."""
        self._surface.set_indices(NO_TRIANGLE)
        self._surface.visible = True  # drawing nothing, with its shaders kept built
        self._wire.visible = False
        self._teeth.visible = False
        self._faces = self.edges = self._last = self._teeth_faces = self._teeth_colours = None
        self.placeholder.show()
        self.canvas.update()

    @property
    def has_mesh(self) -> bool:
        return self._faces is not None and self._surface.visible

    # -- view ------------------------------------------------------------------------------
    def reset_view(self) -> None:
        self.set_preset("front")

    def set_preset(self, name: str) -> None:
        azimuth, elevation = PRESETS[name]
        camera = self.view.camera
        camera.center = tuple(float(c) for c in self._centre)
        camera.azimuth = azimuth
        camera.elevation = elevation
        camera.distance = self._radius / np.tan(np.radians(camera.fov / 2)) * 1.15
        self.canvas.update()

    def set_wireframe(self, on: bool) -> None:
        self.wireframe = bool(on)
        if self.buttons["wire"].isChecked() != self.wireframe:
            self.buttons["wire"].setChecked(self.wireframe)
        self._wire.visible = self.wireframe and self._surface.visible
        self.canvas.update()

    def set_textured(self, on: bool) -> None:
        self.textured = bool(on)
        if self.buttons["texture"].isChecked() != self.textured:
            self.buttons["texture"].setChecked(self.textured)
        if self._last is not None and self._surface.visible:
            self.show_mesh(*self._last)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt)
        keys = {Qt.Key_R: self.reset_view, Qt.Key_1: lambda: self.set_preset("front"),
                Qt.Key_3: lambda: self.set_preset("side"), Qt.Key_W: lambda: self.set_wireframe(not self.wireframe),
                Qt.Key_T: lambda: self.set_textured(not self.textured)}
        action = keys.get(event.key())
        if action is None:
            super().keyPressEvent(event)
        else:
            action()

    def _update_light(self, event=None) -> None:
        """A headlight: the light travels along the camera's viewing direction."""
        direction = self.view.camera.transform.map([0.0, 0.0, -1.0, 0.0])[:3]
        self._surface.set_light(direction)
        self._teeth.set_light(direction)

    def close_canvas(self) -> None:
        self.canvas.close()
